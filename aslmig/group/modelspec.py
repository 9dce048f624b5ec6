"""The group model file: a documented TOML with ``[labels]``, ``[inputs]`` and ``[[model]]``.

Every key is optional; a missing file or table means the defaults of :func:`default_spec`.
Unknown keys are errors (a typo must not silently fall back to a default). The resolved
specification is written next to the group outputs (:func:`spec_to_toml`) and can be read back.

Example (the defaults)::

    [labels]
    group_column = "group"
    phase_column = "migraine_phase"
    preictal_hours = 48.0

    [labels.groups]
    MwA = ["MwA"]
    MwoA = ["MwoA"]
    HC = ["HC"]

    [inputs]
    space = "template"
    measures = ["cbf", "rcbf", "ai", "att"]
    unsided_asymmetry = "keep"
    harmonize = "none"

    [[model]]
    name = "between_group"
    kind = "ancova"
    phase = "interictal"
    groups = ["MwA", "MwoA", "HC"]
    covariates = ["age", "sex"]
    site = "auto"
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from aslmig.errors import InputError, quote
from aslmig.group.collect import MEASURES
from aslmig.group.labels import DERIVE_CHOICES, LabelSpec
from aslmig.group.timecourse import DEFAULT_WINDOW

try:  # Python 3.11+
    import tomllib
except ModuleNotFoundError:  # pragma: no cover - Python 3.10
    import tomli as tomllib

#: Kinds of model.
MODEL_KINDS = ("ancova", "within", "interaction", "one_sample", "timecourse")
#: Harmonisation across sites of ``[inputs] harmonize``.
HARMONIZE_CHOICES = ("none", "combat")
#: Clocks of a ``timecourse`` model and their default windows (hours).
TIMECOURSE_CLOCKS = DEFAULT_WINDOW
#: Covariates an ANCOVA can adjust for (their columns are named in ``[labels]``).
COVARIATES = ("age", "sex")
_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,39}")


@dataclass(frozen=True)
class InputSpec:
    """Which participant tables are read and how.

    Attributes
    ----------
    space : str
        ``"template"`` (the ``space-<TEMPLATE>`` tables), ``"native"`` or a template name.
    measures : tuple of str
        Measures to model (of ``cbf``, ``rcbf``, ``ai``, ``att``).
    unsided_asymmetry : str
        ``"keep"``: units without an aura side keep the left-minus-right index;
        ``"exclude"``: their asymmetry indices are left out.
    harmonize : str
        ``"none"`` or ``"combat"``: ComBat across the ``site`` column
        (:mod:`aslmig.group.harmonize`) before any model.
    """

    space: str = "template"
    measures: tuple[str, ...] = MEASURES
    unsided_asymmetry: str = "keep"
    harmonize: str = "none"


@dataclass(frozen=True)
class ModelSpec:
    """One ROI-level model.

    Attributes
    ----------
    name : str
        Identifier (letters, digits, ``_``), written in the ``model`` column.
    kind : str
        One of :data:`MODEL_KINDS`.
    measures : tuple of str
        Measures to fit (empty: all of ``[inputs] measures``).
    groups : tuple of str
        ``ancova``: groups compared (first = reference of the coding);
        ``within``: subsets, each one group or several joined by ``+``;
        ``interaction``: exactly two groups (a - b); ``one_sample``: groups tested.
    phase, reference : str
        ``ancova``: the phase whose sessions are compared (``phase``);
        ``within``/``interaction``: ``phase`` - ``reference``; ``timecourse``: the phase of
        the sessions that anchor the curve at zero (``reference``, default interictal).
    phases : tuple of str
        ``one_sample``: phases tested.
    covariates : tuple of str
        ``ancova``: of ``age``, ``sex``.
    site : str
        ``ancova``: ``"auto"`` (adjust for site when present) or ``"never"``.
    clock : str
        ``timecourse``: ``"since_onset"`` (hours since the attack onset) or
        ``"to_next_onset"`` (hours to the next onset).
    window_hours : float
        ``timecourse``: sessions up to this many hours on the clock make the curve.
    """

    name: str
    kind: str
    measures: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    phase: str = ""
    reference: str = ""
    phases: tuple[str, ...] = ()
    covariates: tuple[str, ...] = ()
    site: str = "auto"
    clock: str = "since_onset"
    window_hours: float = DEFAULT_WINDOW["since_onset"]


@dataclass(frozen=True)
class GroupSpec:
    """The whole group-level specification."""

    labels: LabelSpec = field(default_factory=LabelSpec)
    inputs: InputSpec = field(default_factory=InputSpec)
    models: tuple[ModelSpec, ...] = ()

    def covariates(self) -> tuple[str, ...]:
        """Covariates any model needs."""
        needed = {name for model in self.models for name in model.covariates}
        return tuple(name for name in COVARIATES if name in needed)


def default_models() -> tuple[ModelSpec, ...]:
    """Return the default models: between-group, ictal vs interictal, aura x phase, AI, time course.

    The time course is fitted only when some session has ``hours_since_attack_onset``.
    """
    return (
        ModelSpec(
            name="between_group",
            kind="ancova",
            groups=("MwA", "MwoA", "HC"),
            phase="interictal",
            covariates=("age", "sex"),
        ),
        ModelSpec(
            name="ictal_vs_interictal",
            kind="within",
            groups=("MwA+MwoA", "MwA", "MwoA"),
            phase="ictal",
            reference="interictal",
        ),
        ModelSpec(
            name="aura_by_phase",
            kind="interaction",
            groups=("MwA", "MwoA"),
            phase="ictal",
            reference="interictal",
        ),
        ModelSpec(
            name="asymmetry",
            kind="one_sample",
            measures=("ai",),
            groups=("MwA",),
            phases=("interictal", "ictal"),
        ),
        ModelSpec(
            name="attack_time_course",
            kind="timecourse",
            groups=("MwA", "MwoA"),
            reference="interictal",
        ),
    )


def default_spec() -> GroupSpec:
    """Return the specification used without ``--model``."""
    return GroupSpec(models=default_models())


def read_model_file(path: Path | None) -> GroupSpec:
    """Read and validate a model file (None: the defaults).

    Parameters
    ----------
    path : Path or None
        A TOML model file.

    Returns
    -------
    GroupSpec
        The validated specification.
    """
    if path is None:
        return default_spec()
    path = Path(path)
    try:
        content = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(path, "the model file does not exist", "check the --model path") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise InputError(path, f"invalid TOML: {error}") from None
    return parse_spec(content, path)


def parse_spec(content: dict[str, Any], source: Path | str) -> GroupSpec:
    """Validate the content of a model file.

    Parameters
    ----------
    content : dict
        Parsed TOML.
    source : Path or str
        The file (named in errors).

    Returns
    -------
    GroupSpec
        The validated specification.
    """
    _known(source, "", content, {"labels", "inputs", "model"})
    labels = _labels(source, dict(content.get("labels", {})))
    inputs = _inputs(source, dict(content.get("inputs", {})))
    raw_models = content.get("model")
    if raw_models is None:
        models = default_models()
    elif not isinstance(raw_models, list) or not raw_models:
        raise InputError(source, "[[model]] must be one or more tables", "see docs/group.md")
    else:
        models = tuple(
            _model(source, index, item, labels) for index, item in enumerate(raw_models, start=1)
        )
    names = [model.name for model in models]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InputError(
            source,
            f"model name {quote(duplicates[0])} is used twice",
            "give each [[model]] its own name",
        )
    for model in models:
        _check_levels(source, model, labels)
    return GroupSpec(labels=labels, inputs=inputs, models=models)


def _known(source, table: str, values: Any, known: set[str]) -> None:
    if not isinstance(values, dict):
        raise InputError(source, f"[{table}] must be a table")
    for key in values:
        if key not in known:
            where = f"{table}.{key}" if table else key
            raise InputError(
                source, f"unknown key {quote(where)}", f"known keys: {', '.join(sorted(known))}"
            )


def _labels(source, values: dict[str, Any]) -> LabelSpec:
    fields = {item.name: item for item in dataclasses.fields(LabelSpec)}
    _known(source, "labels", values, set(fields))
    checked: dict[str, Any] = {}
    for key, value in values.items():
        name = f"labels.{key}"
        if key in ("groups", "phases"):
            checked[key] = _levels(source, name, value)
        elif key.endswith("_hours"):
            if not _is_number(value) or value < 0:
                raise InputError(source, f"{name} is {quote(value)}, not a number >= 0")
            checked[key] = float(value)
        elif not isinstance(value, str) or (key.endswith("_column") and not value.strip()):
            raise InputError(source, f"{name} is {quote(value)}, not a text")
        else:
            checked[key] = value.strip()
    if checked.get("derive_phase", "missing") not in DERIVE_CHOICES:
        raise InputError(
            source,
            f"labels.derive_phase is {quote(checked['derive_phase'])}",
            f"use one of {', '.join(DERIVE_CHOICES)}",
        )
    return LabelSpec(**checked)


def _levels(source, name: str, value: Any) -> dict[str, tuple[str, ...]]:
    if not isinstance(value, dict) or not value:
        raise InputError(source, f"{name} must be a table of level = [spellings]")
    levels: dict[str, tuple[str, ...]] = {}
    seen: dict[str, str] = {}
    for level, spellings in value.items():
        if not _NAME.fullmatch(level):
            raise InputError(
                source,
                f"{name}: level {quote(level)} is not a plain name",
                "use letters, digits and _",
            )
        if not isinstance(spellings, list) or not all(isinstance(s, str) for s in spellings):
            raise InputError(source, f"{name}.{level} must be a list of texts")
        for spelling in (level, *spellings):
            key = spelling.strip().casefold()
            if seen.get(key, level) != level:
                raise InputError(
                    source, f"{name}: {quote(spelling)} names both {seen[key]} and {level}"
                )
            seen[key] = level
        levels[level] = tuple(spellings)
    return levels


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _inputs(source, values: dict[str, Any]) -> InputSpec:
    _known(source, "inputs", values, {item.name for item in dataclasses.fields(InputSpec)})
    checked: dict[str, Any] = {}
    if "space" in values:
        if not isinstance(values["space"], str) or not values["space"].isalnum():
            raise InputError(
                source,
                f"inputs.space is {quote(values['space'])}",
                "use 'template', 'native' or a template name",
            )
        checked["space"] = values["space"]
    if "measures" in values:
        checked["measures"] = _measures(source, "inputs.measures", values["measures"])
    if "unsided_asymmetry" in values:
        if values["unsided_asymmetry"] not in ("keep", "exclude"):
            raise InputError(
                source,
                f"inputs.unsided_asymmetry is {quote(values['unsided_asymmetry'])}",
                "use 'keep' or 'exclude'",
            )
        checked["unsided_asymmetry"] = values["unsided_asymmetry"]
    if "harmonize" in values:
        if values["harmonize"] not in HARMONIZE_CHOICES:
            raise InputError(
                source,
                f"inputs.harmonize is {quote(values['harmonize'])}",
                f"use {' or '.join(HARMONIZE_CHOICES)}",
            )
        checked["harmonize"] = values["harmonize"]
    return InputSpec(**checked)


def _measures(source, name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not value or any(item not in MEASURES for item in value):
        raise InputError(
            source, f"{name} is {quote(value)}", f"use a list of {', '.join(MEASURES)}"
        )
    return tuple(item for item in MEASURES if item in value)


_MODEL_KEYS = {
    "ancova": {"name", "kind", "measures", "groups", "phase", "covariates", "site"},
    "within": {"name", "kind", "measures", "groups", "phase", "reference"},
    "interaction": {"name", "kind", "measures", "groups", "phase", "reference"},
    "one_sample": {"name", "kind", "measures", "groups", "phases"},
    "timecourse": {"name", "kind", "measures", "groups", "reference", "clock", "window_hours"},
}


def _model(source, index: int, values: Any, labels: LabelSpec) -> ModelSpec:
    where = f"model {index}"
    if not isinstance(values, dict):
        raise InputError(source, f"[[model]] {index} must be a table")
    kind = values.get("kind")
    if kind not in MODEL_KINDS:
        raise InputError(
            source, f"{where}: kind is {quote(kind)}", f"use one of {', '.join(MODEL_KINDS)}"
        )
    _known(source, f"model {index}", values, _MODEL_KEYS[kind])
    name = values.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError(
            source,
            f"{where}: name is {quote(name)}",
            "use letters, digits and _ (starting with a letter)",
        )
    checked: dict[str, Any] = {"name": name, "kind": kind}
    for key in ("groups", "phases", "covariates"):
        if key in values:
            value = values[key]
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise InputError(source, f"{where}: {key} must be a list of texts")
            checked[key] = tuple(value)
    for key in ("phase", "reference", "site", "clock"):
        if key in values:
            if not isinstance(values[key], str):
                raise InputError(source, f"{where}: {key} must be a text")
            checked[key] = values[key]
    if checked.get("clock", "since_onset") not in TIMECOURSE_CLOCKS:
        raise InputError(
            source,
            f"{where}: clock is {quote(checked['clock'])}",
            f"use {' or '.join(TIMECOURSE_CLOCKS)}",
        )
    if "window_hours" in values:
        if not _is_number(values["window_hours"]) or values["window_hours"] <= 0:
            raise InputError(
                source,
                f"{where}: window_hours is {quote(values['window_hours'])}",
                "give a number of hours > 0, e.g. 72",
            )
        checked["window_hours"] = float(values["window_hours"])
    elif kind == "timecourse":
        checked["window_hours"] = TIMECOURSE_CLOCKS[checked.get("clock", "since_onset")]
    if "measures" in values:
        checked["measures"] = _measures(source, f"{where}: measures", values["measures"])
    defaults = {
        "ancova": {
            "groups": tuple(labels.groups),
            "phase": labels.control_phase,
            "covariates": COVARIATES,
        },
        "within": {
            "groups": tuple(g for g in labels.groups if g != labels.control_group),
            "phase": "ictal",
            "reference": "interictal",
        },
        "interaction": {"phase": "ictal", "reference": "interictal"},
        "one_sample": {"phases": (labels.control_phase,)},
        "timecourse": {
            "groups": tuple(g for g in labels.groups if g != labels.control_group),
            "reference": labels.control_phase,
        },
    }[kind]
    return ModelSpec(**{**defaults, **checked})


def _check_levels(source, model: ModelSpec, labels: LabelSpec) -> None:
    where = f"model {quote(model.name)}"
    members = [member for subset in model.groups for member in subset.split("+")]
    for member in members:
        if member not in labels.groups:
            raise InputError(
                source,
                f"{where}: group {quote(member)} is not a level of [labels.groups]",
                f"use {', '.join(labels.groups)}",
            )
    for phase in (model.phase, model.reference, *model.phases):
        if phase and phase not in labels.phases:
            raise InputError(
                source,
                f"{where}: phase {quote(phase)} is not a level of [labels.phases]",
                f"use {', '.join(labels.phases)}",
            )
    for covariate in model.covariates:
        if covariate not in COVARIATES:
            raise InputError(
                source,
                f"{where}: covariate {quote(covariate)} is unknown",
                f"use {', '.join(COVARIATES)}",
            )
    if model.site not in ("auto", "never"):
        raise InputError(source, f"{where}: site is {quote(model.site)}", "use auto or never")
    needs = {
        "ancova": len(model.groups) >= 2 and bool(model.phase),
        "within": bool(model.groups) and bool(model.phase and model.reference),
        "interaction": len(model.groups) == 2 and bool(model.phase and model.reference),
        "one_sample": bool(model.groups) and bool(model.phases),
        "timecourse": bool(model.groups) and bool(model.reference),
    }[model.kind]
    same = model.kind in ("within", "interaction") and model.phase == model.reference
    if not needs or same:
        raise InputError(
            source,
            f"{where}: incomplete {model.kind} model (groups {list(model.groups)}, "
            f"phase {quote(model.phase)}, reference {quote(model.reference)})",
            "see the model kinds in docs/group.md",
        )


def spec_to_toml(spec: GroupSpec) -> str:
    """Serialise a resolved specification as a model file :func:`read_model_file` reads back.

    Parameters
    ----------
    spec : GroupSpec
        The specification.

    Returns
    -------
    str
        TOML text (written with ``tomli-w``).
    """
    models = []
    for model in spec.models:
        keys = ("name", "kind", *sorted(_MODEL_KEYS[model.kind] - {"name", "kind"}))
        entry = {key: getattr(model, key) for key in keys}
        if not entry.get("measures", True):
            del entry["measures"]
        models.append(entry)
    document = {
        "labels": dataclasses.asdict(spec.labels),
        "inputs": dataclasses.asdict(spec.inputs),
        "model": models,
    }
    header = "# aslmig group model file (resolved: every default written out)\n"
    return header + tomli_w.dumps(document)
