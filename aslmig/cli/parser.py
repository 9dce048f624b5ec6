"""Command-line parser following the BIDS-Apps contract.

``aslmig BIDS_DIR OUTPUT_DIR {participant,group} [options]``, plus helper commands
(``aslmig demo``) that do not take the BIDS-App positionals.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from aslmig.__about__ import __version__
from aslmig.cbf.constants import check_constant
from aslmig.config import PLUGINS, SKULL_STRIP_CHOICES
from aslmig.errors import quote

ANALYSIS_LEVELS = ("participant", "group")


class UsageError(Exception):
    """A command-line usage mistake (exit status 2)."""


class CommandParser(argparse.ArgumentParser):
    """The argparse parser of every aslmig command: it raises instead of exiting.

    The caller (:func:`aslmig.cli.run.main`) turns :class:`UsageError` into one line on
    stderr and exit status 2, so every command reports usage mistakes the same way.
    """

    def error(self, message: str) -> None:  # noqa: D102 - argparse hook
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _parse_number(text: str, kind: type) -> Any:
    try:
        value = kind(text)
    except ValueError:
        what = "a whole number" if kind is int else "a number"
        raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
    if kind is float and not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def whole_number(text: str) -> int:
    """Argparse type: an integer (``"two"`` or ``"1.5"`` is a usage error)."""
    return _parse_number(text, int)


def number(text: str) -> float:
    """Argparse type: a finite number (``nan`` and ``inf`` are usage errors)."""
    return _parse_number(text, float)


def positive_int(text: str) -> int:
    """Argparse type: a whole number of at least 1."""
    value = whole_number(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def non_negative_int(text: str) -> int:
    """Argparse type: a whole number of at least 0."""
    value = whole_number(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not an integer >= 0")
    return value


def physics_constant(name: str):
    """Return an argparse type that checks a physical constant (same rule as the sidecar)."""

    def parse(text: str) -> float:
        try:
            return check_constant(name, text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    parse.__name__ = name  # argparse names the type in its message
    return parse


def positive_float(text: str) -> float:
    """Argparse type: a finite number greater than 0."""
    value = number(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


#: ``--derivatives`` kinds (NAME=PATH) and the configuration field each one sets.
DERIVATIVE_KINDS = {"anat": "anat_derivatives"}


def derivative_folder(text: str) -> tuple[str, Path]:
    """Argparse type: ``NAME=PATH`` with a known NAME (``anat``), e.g. ``anat=/data/fmriprep``."""
    kind, equals, folder = text.partition("=")
    if not equals or kind not in DERIVATIVE_KINDS or not folder:
        raise argparse.ArgumentTypeError(
            f"{quote(text)} is not NAME=PATH with NAME one of {', '.join(DERIVATIVE_KINDS)} "
            "(e.g. anat=/data/derivatives/fmriprep)"
        )
    return kind, Path(folder)


def _refuse_constant(name: str) -> None:
    raise ValueError(f"{name} is not a JSON number")


def json_object(text: str) -> dict:
    """Argparse type: a JSON object (no NaN/Infinity, no null values: TOML cannot hold them)."""
    try:
        value = json.loads(text, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        raise argparse.ArgumentTypeError(f"{quote(text)} is not a JSON object") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{quote(text)} is not a JSON object")
    if _holds_null(value):
        raise argparse.ArgumentTypeError(
            f"{quote(text)} holds null; leave the key out to keep the default"
        )
    return value


def _holds_null(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, dict):
        return any(_holds_null(item) for item in value.values())
    if isinstance(value, list):
        return any(_holds_null(item) for item in value)
    return False


def build_parser(with_help: bool = True) -> argparse.ArgumentParser:
    """Build the BIDS-App argument parser.

    Parameters
    ----------
    with_help : bool
        Add ``--help`` and ``--version`` (False for :func:`is_bids_app_call`, which must
        not print and exit).

    Returns
    -------
    argparse.ArgumentParser
        The parser; its help text is the CLI reference in ``docs/``.
    """
    parser = CommandParser(
        prog="aslmig",
        add_help=with_help,
        description=(
            "ASL perfusion MRI for migraine research: calibrated CBF (and ATT) per "
            "participant, regional tables, and group statistics, from an ASL-BIDS dataset."
        ),
        epilog=(
            "Helper commands: 'aslmig demo [DIR]' sets up and runs a built-in example; "
            "'aslmig templates {fetch,list}' prefetches or lists the template files; "
            "'aslmig simulate OUT_DIR' writes a simulated cohort with known truth; "
            "'aslmig power' estimates statistical power by simulation; "
            "'aslmig slurm BIDS_DIR OUTPUT_DIR' writes SLURM array and group job scripts. "
            "A dataset folder named like a helper command is still read as BIDS_DIR when "
            "OUTPUT_DIR and the analysis level follow it."
        ),
    )
    parser.add_argument("bids_dir", type=Path, help="the input ASL-BIDS dataset (read-only)")
    parser.add_argument("output_dir", type=Path, help="where the derivatives dataset is written")
    parser.add_argument("analysis_level", choices=ANALYSIS_LEVELS, help="processing stage")
    if with_help:
        parser.add_argument("--version", action="version", version=f"aslmig {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="count",
        default=0,
        help="more log output (repeat for more)",
    )

    selection = parser.add_argument_group("what to process")
    selection.add_argument(
        "--participant-label",
        "--participant_label",
        nargs="+",
        metavar="LABEL",
        help="participants to process ('01' or 'sub-01')",
    )
    selection.add_argument(
        "--session-label", nargs="+", metavar="LABEL", help="sessions to process ('1' or 'ses-1')"
    )
    selection.add_argument(
        "--bids-filter-file",
        type=Path,
        metavar="FILE",
        help="JSON entity filters per query (asl, m0scan, t1w); "
        'null = entity absent, "*" = any value',
    )
    selection.add_argument(
        "--bids-database-dir",
        type=Path,
        metavar="DIR",
        help="directory for pybids' index, reused on later runs",
    )
    selection.add_argument(
        "--skip-bids-validation",
        action="store_true",
        default=None,
        help="do not check file names against the BIDS specification",
    )
    selection.add_argument(
        "--dry-run",
        action="store_true",
        help="print the files and decisions per run, compute nothing",
    )

    execution = parser.add_argument_group("execution")
    execution.add_argument(
        "-w",
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="nipype working directory (reused by reruns)",
    )
    execution.add_argument(
        "--nprocs",
        "--n-cpus",
        type=positive_int,
        metavar="N",
        help="processes nipype may run at once",
    )
    execution.add_argument(
        "--omp-nthreads",
        type=positive_int,
        metavar="N",
        help="threads per process (ITK/ANTs, BLAS)",
    )
    execution.add_argument(
        "--mem-gb", type=positive_float, metavar="GB", help="memory nipype may plan for"
    )
    execution.add_argument(
        "--plugin",
        choices=PLUGINS,
        help="nipype execution plugin (SLURM/SGE split the graph into jobs)",
    )
    execution.add_argument(
        "--plugin-args",
        type=json_object,
        metavar="JSON",
        help='plugin arguments as a JSON object, e.g. \'{"sbatch_args": "--time=1:00:00"}\'',
    )
    execution.add_argument(
        "--stop-on-first-crash",
        action="store_true",
        default=None,
        help="stop everything at the first failing node",
    )
    execution.add_argument(
        "--config-file",
        type=Path,
        metavar="FILE",
        help="TOML file with [execution], [physics], [regions], [anatomy] and [group] tables "
        "(command-line options win)",
    )

    regions = parser.add_argument_group("regions of interest")
    regions.add_argument(
        "--atlas",
        dest="atlases",
        action="append",
        metavar="NAME|DIR",
        help="ROI set for the regional tables: 'MigraineASL' (default) or a folder with "
        "'<name>_dseg.nii.gz' + '<name>_dseg.tsv' (index, name) in the template's space; "
        "repeat for several",
    )
    regions.add_argument(
        "--roi-spheres",
        type=Path,
        metavar="FILE",
        help="TSV of spheres (name, x, y, z, radius_mm, space) in template millimetres",
    )
    regions.add_argument(
        "--min-coverage",
        type=positive_float,
        metavar="FRACTION",
        help="smallest fraction of an ROI's voxels with data for it to be reported (0.5)",
    )

    anatomy = parser.add_argument_group("anatomy")
    anatomy.add_argument(
        "--skull-strip-t1w",
        choices=SKULL_STRIP_CHOICES,
        help="extract the brain from the T1w (force), take the T1w as already skull-stripped "
        "(skip), or decide from the image (auto, default)",
    )
    anatomy.add_argument(
        "--derivatives",
        type=derivative_folder,
        nargs="+",
        metavar="anat=PATH",
        help="reuse the T1w brain mask, GM/WM/CSF maps and T1w<->template transforms of an "
        "fMRIPrep/sMRIPrep derivatives dataset at PATH instead of running aslmig's anatomy "
        "stage (see docs/cli.md)",
    )

    group = parser.add_argument_group("group level")
    group.add_argument(
        "--model",
        type=Path,
        metavar="FILE",
        help="group model file (TOML: [labels], [inputs], [[model]]; see docs/group.md); "
        "default: the built-in models",
    )
    group.add_argument(
        "--group-label",
        metavar="NAME",
        help="write the group outputs to OUTPUT_DIR/group/NAME/ (default 'default')",
    )
    group.add_argument(
        "--group-atlas",
        metavar="NAME",
        help="atlas of the participant ROI tables to model (default 'MigraineASL')",
    )
    group.add_argument(
        "--missing",
        choices=("report", "error"),
        help="labelled participants without outputs: list them (report, default) or stop",
    )
    group.add_argument(
        "--permutations",
        type=positive_int,
        metavar="N",
        help="permutations of the voxelwise tests (default 1000; all of them when fewer exist)",
    )
    group.add_argument(
        "--tfce",
        action="store_true",
        default=None,
        help="add threshold-free cluster enhancement to the voxelwise tests (slow)",
    )
    group.add_argument(
        "--no-voxelwise",
        dest="voxelwise",
        action="store_false",
        default=None,
        help="skip the voxelwise maps (ROI statistics only)",
    )
    group.add_argument(
        "--seed",
        type=non_negative_int,
        metavar="N",
        help="seed of the permutations, an integer >= 0 (default 1)",
    )
    group.add_argument(
        "--unlabelled",
        choices=("error", "exclude"),
        help="unknown or missing group/phase/covariate values: one error listing them "
        "(default) or leave those units out with the reason recorded",
    )

    physics = parser.add_argument_group("physics (defaults: ASL white paper, Alsop 2015)")
    physics.add_argument(
        "--labeling-efficiency",
        type=physics_constant("labeling_efficiency"),
        metavar="ALPHA",
        help="labeling efficiency (wins over the sidecar's LabelingEfficiency and "
        "the white-paper default)",
    )
    physics.add_argument(
        "--t1-blood",
        type=physics_constant("t1_blood"),
        metavar="S",
        help="longitudinal relaxation time of arterial blood (s)",
    )
    physics.add_argument(
        "--t1-tissue",
        type=physics_constant("t1_tissue"),
        metavar="S",
        help="longitudinal relaxation time of tissue (s), for M0 TR correction "
        "and the full kinetic model",
    )
    physics.add_argument(
        "--partition-coefficient",
        type=physics_constant("partition_coefficient"),
        metavar="LAMBDA",
        help="blood-brain partition coefficient (mL/g)",
    )
    physics.add_argument(
        "--arterial-component",
        choices=("auto", "on", "off"),
        help="multi-delay fit: add an arterial (macrovascular) component; auto (default): on "
        "when the earliest delay after the bolus is shorter than the arterial arrival time "
        "(1.0 s PCASL, 0.4 s PASL) and VascularCrushing is not true",
    )
    physics.add_argument(
        "--m0-scale",
        type=positive_float,
        metavar="F",
        help="multiply M0 by this vendor scaling factor",
    )
    return parser


def is_bids_app_call(argv: list[str]) -> bool:
    """Tell whether ``argv`` is a BIDS-App call: ``BIDS_DIR OUTPUT_DIR {participant,group}``.

    Helper commands (``aslmig demo``, ``aslmig slurm`` ...) are named by the first word, so
    a dataset folder called ``demo`` would be taken for the demo command if the first word
    alone decided. The BIDS-App form is recognised by its three positionals, the third being
    an analysis level, whatever the options around them.

    Parameters
    ----------
    argv : list of str
        The command-line arguments.

    Returns
    -------
    bool
        True when the BIDS-App parser finds its three positionals in ``argv``.
    """
    try:
        build_parser(with_help=False).parse_known_args(argv)
    except UsageError:
        return False
    return True


EXECUTION_OPTIONS = (
    "work_dir",
    "nprocs",
    "omp_nthreads",
    "mem_gb",
    "plugin",
    "plugin_args",
    "stop_on_first_crash",
    "bids_database_dir",
    "skip_bids_validation",
)
REGIONS_OPTIONS = ("atlases", "roi_spheres", "min_coverage")
ANATOMY_OPTIONS = ("skull_strip_t1w",)
#: Group-level options: argparse destination -> GroupConfig field.
GROUP_OPTIONS = {
    "model": "model",
    "group_label": "label",
    "group_atlas": "atlas",
    "missing": "missing",
    "unlabelled": "unlabelled",
    "permutations": "permutations",
    "tfce": "tfce",
    "voxelwise": "voxelwise",
    "seed": "seed",
}
PHYSICS_OPTIONS = (
    "labeling_efficiency",
    "t1_blood",
    "t1_tissue",
    "partition_coefficient",
    "m0_scale",
    "arterial_component",
)


def explicit_sections(args: argparse.Namespace) -> dict[str, dict]:
    """Collect the section options the user actually gave (None means not given)."""

    def given(names: tuple[str, ...]) -> dict:
        values = {name: getattr(args, name) for name in names}
        return {
            name: str(value) if isinstance(value, Path) else value
            for name, value in values.items()
            if value is not None
        }

    regions = given(REGIONS_OPTIONS)
    if "atlases" in regions:
        regions["atlases"] = tuple(regions["atlases"])
    anatomy = given(ANATOMY_OPTIONS)
    for kind, folder in getattr(args, "derivatives", None) or ():
        anatomy[DERIVATIVE_KINDS[kind]] = str(folder.absolute())
    return {
        "execution": given(EXECUTION_OPTIONS),
        "physics": given(PHYSICS_OPTIONS),
        "regions": regions,
        "anatomy": anatomy,
        "group": {GROUP_OPTIONS[key]: value for key, value in given(tuple(GROUP_OPTIONS)).items()},
    }
