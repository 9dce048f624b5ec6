"""One typed run configuration: defaults < ``--config-file`` (TOML) < command-line options.

Unknown keys are errors (a typo must not silently fall back to a default), and the
resolved configuration is saved as TOML next to the outputs.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from aslmig.cbf.constants import CONSTANT_RANGES, check_constant
from aslmig.errors import LARGEST_TEXT_BYTES, InputError, quote, reading, regular_file_size

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib


#: nipype execution plugins that aslmig accepts.
PLUGINS = ("Linear", "MultiProc", "SLURM", "SLURMGraph", "SGE", "SGEGraph", "PBS", "LSF")


@dataclass(frozen=True)
class ExecutionConfig:
    """How nipype runs the graph and how the input is indexed."""

    work_dir: str | None = None
    nprocs: int = 1
    omp_nthreads: int = 1
    mem_gb: float | None = None
    plugin: str = "MultiProc"
    plugin_args: dict[str, Any] = field(default_factory=dict)
    stop_on_first_crash: bool = False
    bids_database_dir: str | None = None
    skip_bids_validation: bool = False


@dataclass(frozen=True)
class PhysicsConfig:
    """Overrides of the physical constants (None keeps the documented default).

    Each value, default or not, is written to the sidecars of the outputs.
    """

    labeling_efficiency: float | None = None
    bs_pulse_efficiency: float | None = None
    t1_blood: float | None = None
    t1_tissue: float | None = None
    partition_coefficient: float | None = None
    m0_scale: float = 1.0
    m0_smoothing_fwhm_mm: float = 0.0
    arterial_component: str = "auto"

    def overrides(self) -> dict[str, float]:
        """Return the overrides that were set, by name (for the CBF engine)."""
        skip = {"m0_scale", "m0_smoothing_fwhm_mm", "arterial_component"}
        return {
            item.name: getattr(self, item.name)
            for item in dataclasses.fields(self)
            if item.name not in skip and getattr(self, item.name) is not None
        }


@dataclass(frozen=True)
class RegionsConfig:
    """Which ROI sets the participant level summarises, and how."""

    atlases: tuple[str, ...] = ("MigraineASL",)
    roi_spheres: str | None = None
    min_coverage: float = 0.5


#: ``--skull-strip-t1w`` choices, as in the nipreps apps.
SKULL_STRIP_CHOICES = ("auto", "skip", "force")


@dataclass(frozen=True)
class AnatomyConfig:
    """How the T1w anatomy is obtained (``[anatomy]`` table)."""

    #: "force": extract the brain; "skip": the T1w is already skull-stripped; "auto": decide
    #: from the image (:func:`aslmig.anat.brain.looks_skull_stripped`).
    skull_strip_t1w: str = "auto"
    #: ``--derivatives anat=PATH``: an fMRIPrep/sMRIPrep derivatives dataset whose T1w brain
    #: mask, tissue maps and T1w <-> template transforms replace aslmig's anatomy stage.
    anat_derivatives: str | None = None


@dataclass(frozen=True)
class GroupConfig:
    """The group level: model file, output label, atlas and how to treat gaps in the input."""

    model: str | None = None
    label: str = "default"
    atlas: str = "MigraineASL"
    missing: str = "report"
    unlabelled: str = "error"
    voxelwise: bool = True
    permutations: int = 1000
    tfce: bool = False
    cluster_threshold: float = 3.1
    seed: int = 1


@dataclass(frozen=True)
class RunConfig:
    """Everything one invocation of ``aslmig`` needs to know."""

    bids_dir: str
    output_dir: str
    analysis_level: str
    participant_labels: tuple[str, ...] | None = None
    session_labels: tuple[str, ...] | None = None
    bids_filter_file: str | None = None
    dry_run: bool = False
    verbosity: int = 0
    execution: ExecutionConfig = field(default_factory=ExecutionConfig)
    physics: PhysicsConfig = field(default_factory=PhysicsConfig)
    regions: RegionsConfig = field(default_factory=RegionsConfig)
    anatomy: AnatomyConfig = field(default_factory=AnatomyConfig)
    group: GroupConfig = field(default_factory=GroupConfig)


SECTIONS: dict[str, type] = {
    "execution": ExecutionConfig,
    "physics": PhysicsConfig,
    "regions": RegionsConfig,
    "anatomy": AnatomyConfig,
    "group": GroupConfig,
}
RECORD_SECTION = "run"


def read_config_file(path: Path) -> dict[str, dict[str, Any]]:
    """Read and type-check a TOML configuration file.

    Parameters
    ----------
    path : Path
        A TOML file with ``[execution]`` and/or ``[physics]`` tables.

    Returns
    -------
    dict
        Section name -> checked values.
    """
    path = Path(path)
    try:
        if not path.exists():
            raise FileNotFoundError
        regular_file_size(path, path, limit=LARGEST_TEXT_BYTES)
        with reading(path):
            text = path.read_text(encoding="utf-8")
        content = tomllib.loads(text)
    except FileNotFoundError:
        raise InputError(path, "the configuration file does not exist") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(path, f"invalid TOML: {error}") from None
    checked: dict[str, dict[str, Any]] = {}
    content.pop(RECORD_SECTION, None)  # written by aslmig; describes a past invocation
    for section, values in content.items():
        if section not in SECTIONS or not isinstance(values, dict):
            raise InputError(
                path, f"unknown table [{quote(section)}]", f"use {', '.join(SECTIONS)}"
            )
        checked[section] = _check_section(path, section, values)
    return checked


def _check_section(path: Path, section: str, values: dict[str, Any]) -> dict[str, Any]:
    known = {item.name: item for item in dataclasses.fields(SECTIONS[section])}
    for key, value in values.items():
        if key not in known:
            raise InputError(
                path,
                f"unknown key {section}.{quote(key)}",
                f"known keys: {', '.join(sorted(known))}",
            )
        _check_value(path, f"{section}.{key}", known[key].type, value)
    return dict(values)


# Numbers that may be zero; every other number must be positive.
_ZERO_ALLOWED = {"physics.m0_smoothing_fwhm_mm", "group.seed"}
_FRACTIONS = {"regions.min_coverage"}
_CHOICES = {
    "execution.plugin": PLUGINS,
    "anatomy.skull_strip_t1w": SKULL_STRIP_CHOICES,
    "group.missing": ("report", "error"),
    "group.unlabelled": ("error", "exclude"),
    "physics.arterial_component": ("auto", "on", "off"),
}


def _check_value(path: Path, name: str, declared: str, value: Any) -> None:
    """Check a value against the declared annotation (as a string, e.g. 'float | None')."""
    section, _, key = name.partition(".")
    if section == "physics" and key in CONSTANT_RANGES:
        try:
            check_constant(key, value if not isinstance(value, bool) else None)
        except ValueError as error:
            raise InputError(path, f"{name}: {error}") from None
    if name in _CHOICES and value not in _CHOICES[name]:
        raise InputError(
            path, f"{name} is {quote(value)}", f"use one of {', '.join(_CHOICES[name])}"
        )
    if "tuple" in declared:
        ok = isinstance(value, list) and all(isinstance(item, str) for item in value)
    elif "float" in declared:
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        too_small = ok and (value < 0 if name in _ZERO_ALLOWED else value <= 0)
        too_small = too_small or (ok and name in _FRACTIONS and value > 1)
        if ok and (not math.isfinite(value) or too_small):
            bound = ">= 0" if name in _ZERO_ALLOWED else "> 0"
            bound += " and <= 1" if name in _FRACTIONS else ""
            raise InputError(path, f"{name} is {value}; it must be a finite number {bound}")
    elif "int" in declared:
        lowest = 0 if name in _ZERO_ALLOWED else 1
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= lowest
    elif "bool" in declared:
        ok = isinstance(value, bool)
    elif "dict" in declared:
        ok = isinstance(value, dict)
    else:
        ok = isinstance(value, str)
    if not ok:
        raise InputError(path, f"{name} is {quote(value)}, not a valid {declared}")


def build_config(
    base: dict[str, Any], file_sections: dict[str, dict[str, Any]], cli_sections: dict
) -> RunConfig:
    """Merge defaults, the configuration file and command-line options (in that order).

    Parameters
    ----------
    base : dict
        Top-level ``RunConfig`` fields (paths, labels, level).
    file_sections : dict
        Section values from ``--config-file``.
    cli_sections : dict
        Section values given explicitly on the command line.

    Returns
    -------
    RunConfig
        The resolved configuration.
    """
    sections = {}
    for name, section_type in SECTIONS.items():
        merged = {**file_sections.get(name, {}), **cli_sections.get(name, {})}
        tuples = {item.name for item in dataclasses.fields(section_type) if "tuple" in item.type}
        merged = {key: tuple(value) if key in tuples else value for key, value in merged.items()}
        sections[name] = section_type(**merged)
    check_execution(sections["execution"])
    return RunConfig(**base, **sections)


#: Smallest ``--mem-gb``: one participant step (antspyx registration of a T1w) needs more
#: than 1 GB, and nipype's MultiProc never starts any step below 0.01 GB (it waits forever).
SMALLEST_MEM_GB = 1.0
_PLUGIN_ARGS_OPTION = "--plugin-args (or [execution] plugin_args in --config-file)"
#: What each nipype plugin argument must hold (MultiProc takes only these).
_MULTIPROC_ARGS: dict[str, Any] = {
    "n_procs": "count",
    "memory_gb": "memory",
    "n_gpu_procs": "count or 0",
    "raise_insufficient": "true or false",
    "scheduler": ("tsort", "mem_thread"),
    "mp_context": ("fork", "spawn", "forkserver"),
    "maxtasksperchild": "count",
    "non_daemon": "true or false",
    "max_jobs": "count",
}
#: Cluster plugins pass other arguments to nipype; these are type-checked.
_CLUSTER_ARGS: dict[str, Any] = {
    "max_jobs": "count",
    "max_tries": "count",
    "retry_timeout": "seconds",
    "poll_sleep_duration": "seconds",
    "dont_resubmit_completed_jobs": "true or false",
    "template": "text",
    "sbatch_args": "text",
    "qsub_args": "text",
    "bsub_args": "text",
}
#: Rule name -> (what the value must be, check).
_ARGUMENT_CHECKS = {
    "count": ("a whole number >= 1", lambda value: _is_int(value) and value >= 1),
    "count or 0": ("a whole number >= 0", lambda value: _is_int(value) and value >= 0),
    "memory": (
        f"a number of GB >= {SMALLEST_MEM_GB:g}",
        lambda value: _is_number(value) and value >= SMALLEST_MEM_GB,
    ),
    "seconds": ("a number of seconds >= 0", lambda value: _is_number(value) and value >= 0),
    "true or false": ("true or false", lambda value: isinstance(value, bool)),
    "text": ("a string", lambda value: isinstance(value, str)),
}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def check_execution(execution: ExecutionConfig) -> None:
    """Refuse execution settings nipype would accept but then hang on, ignore or crash on.

    ``--mem-gb`` below :data:`SMALLEST_MEM_GB` (nothing ever starts below 0.01 GB), and
    ``--plugin-args`` with a wrong type (``{"n_procs": 0}`` or ``"two"``) or, for MultiProc
    and Linear, a key nipype does not know (a typo would be ignored silently).

    Parameters
    ----------
    execution : ExecutionConfig
        The merged ``[execution]`` settings.
    """
    if execution.mem_gb is not None and not execution.mem_gb >= SMALLEST_MEM_GB:
        raise InputError(
            "--mem-gb (or [execution] mem_gb in --config-file)",
            f"is {execution.mem_gb:g} GB; a participant step needs more than "
            f"{SMALLEST_MEM_GB:g} GB",
            f"give at least {SMALLEST_MEM_GB:g}, or leave it out to plan with 90 % of the memory",
        )
    cluster = execution.plugin not in ("MultiProc", "Linear")
    known = _CLUSTER_ARGS if cluster else _MULTIPROC_ARGS if execution.plugin == "MultiProc" else {}
    for key, value in execution.plugin_args.items():
        rule = known.get(key)
        if rule is None and not cluster:
            names = ", ".join(sorted(known)) or "none"
            raise InputError(
                _PLUGIN_ARGS_OPTION,
                f"{execution.plugin} does not take {quote(key)}",
                f"its arguments: {names}",
            )
        if rule is None:
            continue
        if isinstance(rule, tuple):
            wanted, ok = " or ".join(rule), value in rule
        else:
            wanted, check = _ARGUMENT_CHECKS[rule]
            ok = check(value)
        if not ok:
            raise InputError(_PLUGIN_ARGS_OPTION, f"{key} is {quote(value)}", f"give {wanted}")


#: First lines of a saved configuration.
TOML_HEADER = (
    "# aslmig run configuration. [execution], [physics], [regions], [anatomy] and [group]\n"
    "# can be reused with --config-file; the [run] table records the invocation and is\n"
    "# ignored.\n"
)


def to_toml(config: RunConfig) -> str:
    """Serialise a configuration as TOML that :func:`read_config_file` reads back unchanged.

    Settings without a value (None) are left out: TOML has no null, and None is the
    default of every such setting, so reading the file back gives the same configuration.

    Parameters
    ----------
    config : RunConfig
        The configuration.

    Returns
    -------
    str
        TOML text (written with ``tomli-w``).
    """
    record = {
        key: value
        for key, value in dataclasses.asdict(config).items()
        if key not in SECTIONS and value is not None
    }
    document = {RECORD_SECTION: record}
    for section in SECTIONS:
        values = dataclasses.asdict(getattr(config, section))
        document[section] = {key: value for key, value in values.items() if value is not None}
    return TOML_HEADER + tomli_w.dumps(document)
