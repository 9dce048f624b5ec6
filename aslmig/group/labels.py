"""Participant and session labels of the group level: group, phase, covariates and aura side.

Labels come from ``participants.tsv`` (group, age, sex, optional site and typical aura side)
and each ``sub-X/sub-X_sessions.tsv`` (migraine phase, optional hours since the attack onset
or to the next onset, optional aura side of that attack). Column names and level names are
configurable (:class:`LabelSpec`); level names match case-insensitively.

A bad or missing value is not raised at once: it becomes a :class:`Problem`, so that every
problem of a dataset can be listed in one error, or the units concerned excluded with a
logged reason (:func:`resolve_problems`). Structural mistakes (a missing column, an unreadable
file) raise :class:`~aslmig.errors.InputError` straight away.

Labels are represented as a :class:`pandas.DataFrame` with one row per (subject, session)
(``session`` is ``""`` for datasets without sessions) and the columns of :data:`UNIT_LABEL_COLUMNS`.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from aslmig.bids.derivatives import UNIT_LABEL_COLUMNS
from aslmig.bids.entities import is_label
from aslmig.errors import InputError, quote

#: Default group levels: canonical name -> accepted spellings (case-insensitive).
DEFAULT_GROUPS: dict[str, tuple[str, ...]] = {
    "MwA": ("MwA",),
    "MwoA": ("MwoA",),
    "HC": ("HC",),
}
#: Default migraine phases: canonical name -> accepted spellings (case-insensitive).
DEFAULT_PHASES: dict[str, tuple[str, ...]] = {
    "interictal": ("interictal",),
    "preictal": ("preictal",),
    "ictal": ("ictal",),
    "postictal": ("postictal",),
}
#: Accepted spellings of the aura side (case-insensitive) -> ``L`` / ``R``.
SIDES = {"left": "L", "l": "L", "right": "R", "r": "R"}
#: Values that mean "no value" in a BIDS TSV.
MISSING = ("", "n/a")
#: How the phase is chosen: from the column, derived where the column is empty, or always.
DERIVE_CHOICES = ("missing", "always", "never")
_HOURS = ("hours_since_onset", "hours_to_next_onset")


@dataclass(frozen=True)
class LabelSpec:
    """Where the labels are and how their values are spelled.

    Attributes
    ----------
    group_column, age_column, sex_column, site_column, aura_side_column : str
        Columns of ``participants.tsv``. The site and aura-side columns are optional.
    phase_column, session_aura_side_column : str
        Columns of ``sub-X_sessions.tsv`` (``phase_column`` is also looked up in
        ``participants.tsv`` for datasets without sessions).
    hours_since_onset_column, hours_to_next_onset_column : str
        Optional timing columns of ``sub-X_sessions.tsv`` used to derive the phase.
    derive_phase : str
        ``"missing"`` (derive where the phase column is empty), ``"always"`` or ``"never"``.
    preictal_hours : float
        A session at most this long before the next attack onset is preictal (48 h).
    postictal_hours : float
        A session at most this long after the attack ended is postictal (24 h).
    attack_duration_hours : float
        Assumed duration of the headache phase, because ``sessions.tsv`` records the onset
        and not the end of an attack: a session at most this long after onset is ictal.
    control_group : str
        The group without attacks; its sessions without a phase get ``control_phase``.
    control_phase : str
        Phase given to control sessions without a phase (``interictal``).
    default_phase : str
        Phase given to other sessions without a phase ("" = none: a problem).
    groups, phases : dict
        Canonical level -> accepted spellings (case-insensitive).
    """

    group_column: str = "group"
    age_column: str = "age"
    sex_column: str = "sex"
    site_column: str = "site"
    aura_side_column: str = "aura_side_typical"
    phase_column: str = "migraine_phase"
    session_aura_side_column: str = "aura_side"
    hours_since_onset_column: str = "hours_since_attack_onset"
    hours_to_next_onset_column: str = "hours_to_next_attack_onset"
    derive_phase: str = "missing"
    preictal_hours: float = 48.0
    postictal_hours: float = 24.0
    attack_duration_hours: float = 24.0
    control_group: str = "HC"
    control_phase: str = "interictal"
    default_phase: str = ""
    groups: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_GROUPS))
    phases: dict[str, tuple[str, ...]] = field(default_factory=lambda: dict(DEFAULT_PHASES))


@dataclass(frozen=True)
class Problem:
    """One bad or missing label of one unit (a subject, or a subject's session)."""

    source: str
    subject: str
    session: str
    column: str
    text: str

    def describe(self) -> str:
        """Return ``'sub-X ses-Y: <text>'`` (the subject and session are quoted if odd)."""
        unit = _unit_name(self.subject, self.session)
        return f"{unit}: {self.text}"


@dataclass(frozen=True)
class Labels:
    """The labels read from the input dataset.

    Attributes
    ----------
    participants : pandas.DataFrame
        One row per subject: ``subject, group, age, sex, site, aura_side, phase``.
    sessions : pandas.DataFrame
        One row per listed session: ``subject, session, phase, phase_source, aura_side,
        hours_since_onset, hours_to_next_onset`` (hours NaN when not given).
    problems : list of Problem
        Every bad or missing value found.
    sources : list of Path
        The label files read.
    """

    participants: pd.DataFrame
    sessions: pd.DataFrame
    problems: list[Problem]
    sources: list[Path]


def _unit_name(subject: str, session: str) -> str:
    name = f"sub-{subject}" if is_label(subject) else f"sub-{quote(subject)}"
    if session:
        name += f" ses-{session}" if is_label(session) else f" ses-{quote(session)}"
    return name


def _safe(label: str) -> str:
    return label if not label or is_label(label) else quote(label)


def read_tsv(path: Path) -> pd.DataFrame:
    """Read a BIDS TSV as strings (nothing converted; ``n/a`` stays text; no quoting).

    Parameters
    ----------
    path : Path
        The file.

    Returns
    -------
    pandas.DataFrame
        All values as stripped strings.
    """
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(path, "the file does not exist") from None
    except UnicodeDecodeError:
        raise InputError(path, "the table is not UTF-8 text") from None
    lines = [line.rstrip("\r") for line in text.split("\n")]
    lines = [line for line in lines if line.strip()]
    if not lines:
        raise InputError(path, "the table is empty", "write a header row")
    header = [name.strip() for name in lines[0].split("\t")]
    duplicated = sorted({name for name in header if header.count(name) > 1})
    if duplicated:
        raise InputError(path, f"column {quote(duplicated[0])} appears twice")
    rows = [[value.strip() for value in line.split("\t")] for line in lines[1:]]
    for number, row in enumerate(rows, start=2):
        if len(row) != len(header):
            raise InputError(
                path,
                f"line {number} has {len(row)} tab-separated values, the header {len(header)}",
                "use one tab between values and n/a for missing values",
            )
    return pd.DataFrame(rows, columns=header, dtype=object)


def level_lookup(levels: dict[str, Sequence[str]]) -> dict[str, str]:
    """Map every accepted spelling (case-folded) and canonical name to the canonical name."""
    lookup: dict[str, str] = {}
    for canonical, spellings in levels.items():
        for spelling in (canonical, *spellings):
            lookup[str(spelling).strip().casefold()] = canonical
    return lookup


def _require(path: Path, table: pd.DataFrame, column: str, key: str) -> None:
    if column not in table.columns:
        shown = ", ".join(quote(name) for name in list(table.columns)[:8])
        raise InputError(
            path,
            f"no column {quote(column)} (columns: {shown})",
            f"add the column, or name yours in the model file: [labels] {key} = '...'",
        )


def _number(text: str) -> float | None:
    """Return a finite float, None for n/a, or raise ValueError."""
    if text in MISSING:
        return None
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def read_participants(
    bids_dir: Path, spec: LabelSpec, covariates: Iterable[str] = ("age", "sex")
) -> tuple[pd.DataFrame, list[Problem], list[Path]]:
    """Read and check ``participants.tsv`` (and ``participants.json`` when present).

    Parameters
    ----------
    bids_dir : Path
        The input dataset.
    spec : LabelSpec
        Column and level names.
    covariates : iterable of str
        Covariates the models need (``age``, ``sex``): their columns are required.

    Returns
    -------
    participants : pandas.DataFrame
        One row per subject: ``subject, group, age, sex, site, aura_side, phase``.
    problems : list of Problem
        Unknown or missing values.
    sources : list of Path
        The files read.
    """
    path = Path(bids_dir) / "participants.tsv"
    table = read_tsv(path)
    sources = [path]
    sidecar = path.with_suffix(".json")
    if sidecar.exists():
        try:
            json.loads(sidecar.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise InputError(sidecar, f"invalid JSON ({error})") from None
        sources.append(sidecar)
    _require(path, table, "participant_id", "participant_id")
    _require(path, table, spec.group_column, "group_column")
    covariates = set(covariates)
    if "age" in covariates:
        _require(path, table, spec.age_column, "age_column")
    if "sex" in covariates:
        _require(path, table, spec.sex_column, "sex_column")
    groups = level_lookup(spec.groups)
    phases = level_lookup(spec.phases)
    rows, problems = [], []
    seen: set[str] = set()
    for record in table.to_dict("records"):
        row, row_problems = _participant_row(path, record, spec, groups, phases, covariates)
        if row is None:
            problems.extend(row_problems)
            continue
        if row["subject"] in seen:
            raise InputError(path, f"participant_id sub-{row['subject']} is listed twice")
        seen.add(row["subject"])
        rows.append(row)
        problems.extend(row_problems)
    columns = ["subject", "group", "age", "sex", "site", "aura_side", "phase"]
    return pd.DataFrame(rows, columns=columns), problems, sources


def _participant_row(
    path: Path,
    record: dict[str, str],
    spec: LabelSpec,
    groups: dict[str, str],
    phases: dict[str, str],
    covariates: set[str],
) -> tuple[dict | None, list[Problem]]:
    source = str(path)
    identifier = record["participant_id"]
    subject = identifier[4:] if identifier.startswith("sub-") else identifier
    if not identifier.startswith("sub-") or not is_label(subject):
        problem = Problem(
            source,
            subject,
            "",
            "participant_id",
            f"participant_id {quote(identifier)} is not 'sub-<alphanumeric label>'",
        )
        return None, [problem]
    problems = []

    def flag(column: str, text: str) -> None:
        problems.append(Problem(source, subject, "", column, text))

    group = _level(record[spec.group_column], groups, spec.group_column, flag)
    age = None
    if "age" in covariates:
        try:
            age = _number(record[spec.age_column])
        except ValueError:
            flag(
                spec.age_column,
                f"{spec.age_column} {quote(record[spec.age_column])} is not a number",
            )
        else:
            if age is None:
                flag(spec.age_column, f"{spec.age_column} is n/a")
    sex = record.get(spec.sex_column, "")
    if "sex" in covariates and sex in MISSING:
        flag(spec.sex_column, f"{spec.sex_column} is n/a")
    elif "sex" in covariates and not re.fullmatch(r"[\w ]{1,40}", sex):
        flag(spec.sex_column, f"{spec.sex_column} {quote(sex)} is not a plain word")
    site = record.get(spec.site_column, "")
    if site not in MISSING and not re.fullmatch(r"[\w .-]{1,40}", site):
        flag(spec.site_column, f"{spec.site_column} {quote(site)} is not a plain name")
    side = _side(record.get(spec.aura_side_column, ""), spec.aura_side_column, flag)
    phase = ""
    if record.get(spec.phase_column, "") not in MISSING:
        phase = _level(record[spec.phase_column], phases, spec.phase_column, flag)
    row = {
        "subject": subject,
        "group": group,
        "age": age,
        "sex": sex.upper() if sex not in MISSING else "",
        "site": site if site not in MISSING else "",
        "aura_side": side,
        "phase": phase,
    }
    return row, problems


def _level(value: str, lookup: dict[str, str], column: str, flag) -> str:
    if value in MISSING:
        flag(column, f"{column} is n/a")
        return ""
    canonical = lookup.get(value.casefold())
    if canonical is None:
        known = sorted(set(lookup.values()))
        flag(column, f"{column} {quote(value)} is not one of {', '.join(known)}")
        return ""
    return canonical


def _side(value: str, column: str, flag) -> str:
    if value in MISSING:
        return ""
    side = SIDES.get(value.casefold())
    if side is None:
        flag(column, f"{column} {quote(value)} is not left, right or n/a")
        return ""
    return side


def read_sessions(
    bids_dir: Path, subjects: Iterable[str], spec: LabelSpec
) -> tuple[pd.DataFrame, list[Problem], list[Path]]:
    """Read and check each subject's ``sub-X_sessions.tsv`` (when it exists).

    The phase of a session comes from the phase column; where that is empty (or always,
    with ``derive_phase = "always"``) it is derived from the timing columns with
    :func:`derive_phase`.

    Parameters
    ----------
    bids_dir : Path
        The input dataset.
    subjects : iterable of str
        Subject labels (without ``sub-``).
    spec : LabelSpec
        Column and level names, phase windows.

    Returns
    -------
    sessions : pandas.DataFrame
        One row per session: ``subject, session, phase, phase_source, aura_side,
        hours_since_onset, hours_to_next_onset`` (``phase`` is "" when it is neither given
        nor derivable; hours are None when not given).
    problems : list of Problem
        Unknown values, negative or non-numeric hours.
    sources : list of Path
        The files read.
    """
    phases = level_lookup(spec.phases)
    rows, problems, sources = [], [], []
    for subject in sorted(subjects):
        path = Path(bids_dir) / f"sub-{subject}" / f"sub-{subject}_sessions.tsv"
        if not path.exists():
            continue
        table = read_tsv(path)
        sources.append(path)
        _require(path, table, "session_id", "session_id")
        for record in table.to_dict("records"):
            row, row_problems = _session_row(path, subject, record, spec, phases)
            problems.extend(row_problems)
            if row is not None:
                rows.append(row)
    columns = ["subject", "session", "phase", "phase_source", "aura_side", *_HOURS]
    return pd.DataFrame(rows, columns=columns), problems, sources


def _session_row(
    path: Path, subject: str, record: dict[str, str], spec: LabelSpec, phases: dict[str, str]
) -> tuple[dict | None, list[Problem]]:
    identifier = record["session_id"]
    session = identifier[4:] if identifier.startswith("ses-") else identifier
    if not identifier.startswith("ses-") or not is_label(session):
        text = f"session_id {quote(identifier)} is not 'ses-<alphanumeric label>'"
        return None, [Problem(str(path), subject, "", "session_id", text)]
    problems: list[Problem] = []

    def flag(column: str, text: str) -> None:
        problems.append(Problem(str(path), subject, session, column, text))

    hours = {}
    for column in (spec.hours_since_onset_column, spec.hours_to_next_onset_column):
        try:
            hours[column] = _number(record.get(column, ""))
        except ValueError:
            flag(column, f"{column} {quote(record[column])} is not a number")
            hours[column] = None
        if hours[column] is not None and hours[column] < 0:
            flag(column, f"{column} is {hours[column]:g}; hours must be >= 0")
            hours[column] = None
    since, to_next = hours[spec.hours_since_onset_column], hours[spec.hours_to_next_onset_column]
    given = record.get(spec.phase_column, "")
    phase, source = "", ""
    if given not in MISSING and spec.derive_phase != "always":
        phase, source = _level(given, phases, spec.phase_column, flag), "column"
    elif spec.derive_phase != "never":
        derived = derive_phase(since, to_next, spec)
        if derived:
            phase, source = derived, "derived"
    side = _side(record.get(spec.session_aura_side_column, ""), spec.session_aura_side_column, flag)
    row = {
        "subject": subject,
        "session": session,
        "phase": phase,
        "phase_source": source,
        "aura_side": side,
        "hours_since_onset": since,
        "hours_to_next_onset": to_next,
    }
    return row, problems


def derive_phase(
    hours_since_onset: float | None, hours_to_next_onset: float | None, spec: LabelSpec
) -> str:
    """Migraine phase of a session from its timing (after Peng & May 2020).

    In order: ictal when ``hours_since_onset <= attack_duration_hours``; postictal when
    ``hours_since_onset <= attack_duration_hours + postictal_hours``; preictal when
    ``hours_to_next_onset <= preictal_hours``; interictal otherwise (when any timing is known).

    Parameters
    ----------
    hours_since_onset : float or None
        Hours from the onset of the last attack to the session.
    hours_to_next_onset : float or None
        Hours from the session to the onset of the next attack.
    spec : LabelSpec
        The windows.

    Returns
    -------
    str
        The canonical phase, or "" when neither timing is known.
    """
    if hours_since_onset is None and hours_to_next_onset is None:
        return ""
    if hours_since_onset is not None and hours_since_onset <= spec.attack_duration_hours:
        return "ictal"
    postictal_end = spec.attack_duration_hours + spec.postictal_hours
    if hours_since_onset is not None and hours_since_onset <= postictal_end:
        return "postictal"
    if hours_to_next_onset is not None and hours_to_next_onset <= spec.preictal_hours:
        return "preictal"
    return "interictal"


def read_labels(
    bids_dir: Path, spec: LabelSpec, covariates: Iterable[str] = ("age", "sex")
) -> Labels:
    """Read ``participants.tsv`` and every ``sub-X_sessions.tsv`` of a dataset.

    Parameters
    ----------
    bids_dir : Path
        The input dataset.
    spec : LabelSpec
        Column and level names, phase windows.
    covariates : iterable of str
        Covariates the models need.

    Returns
    -------
    Labels
        Participants, sessions, the problems found and the files read.
    """
    participants, problems, sources = read_participants(bids_dir, spec, covariates)
    sessions, session_problems, session_sources = read_sessions(
        bids_dir, participants["subject"], spec
    )
    return Labels(participants, sessions, problems + session_problems, sources + session_sources)


def label_units(
    units: pd.DataFrame, labels: Labels, spec: LabelSpec
) -> tuple[pd.DataFrame, list[Problem]]:
    """Attach labels to the units (subject, session) that have participant outputs.

    Parameters
    ----------
    units : pandas.DataFrame
        Columns ``subject, session`` (``session`` "" when the dataset has no sessions).
    labels : Labels
        From :func:`read_labels`.
    spec : LabelSpec
        Column and level names.

    Returns
    -------
    table : pandas.DataFrame
        One row per unit with the columns of :data:`UNIT_LABEL_COLUMNS`; labels that are missing
        are "" (``age`` NaN).
    problems : list of Problem
        Subjects without a row in ``participants.tsv`` and sessions without a phase.
    """
    participants = labels.participants.set_index("subject")
    sessions = labels.sessions.set_index(["subject", "session"])
    rows, problems = [], []
    participants_file = str(labels.sources[0]) if labels.sources else "participants.tsv"
    # the spelling read_sessions used, so that one file is named once in an error
    session_files = {
        Path(source).name[4 : -len("_sessions.tsv")]: str(source)
        for source in labels.sources
        if Path(source).name.endswith("_sessions.tsv")
    }
    for subject, session in units[["subject", "session"]].itertuples(index=False):
        row = {"subject": subject, "session": session}
        if subject not in participants.index:
            problems.append(
                Problem(
                    participants_file,
                    subject,
                    session,
                    "participant_id",
                    "has participant outputs but no row in participants.tsv",
                )
            )
            continue
        person = participants.loc[subject]
        row.update(group=person["group"], age=person["age"], sex=person["sex"], site=person["site"])
        phase, source, side = person["phase"], "participants" if person["phase"] else "", ""
        if session:
            sessions_file = session_files.get(subject, f"sub-{subject}/sub-{subject}_sessions.tsv")
            if (subject, session) not in sessions.index:
                phase, source = "", ""
                text = f"is not listed in {sessions_file}"
            else:
                listed = sessions.loc[(subject, session)]
                phase, source, side = listed["phase"], listed["phase_source"], listed["aura_side"]
                row.update({column: listed[column] for column in _HOURS})
                text = f"has no {spec.phase_column} (and no timing to derive it)"
        else:
            sessions_file = participants_file
            text = f"has no {spec.phase_column} in participants.tsv"
        if not phase and person["group"] == spec.control_group:
            phase, source = spec.control_phase, "control"
        elif not phase and spec.default_phase:
            phase, source = spec.default_phase, "default"
        if not phase:
            problems.append(Problem(sessions_file, subject, session, spec.phase_column, text))
        row.update(phase=phase, phase_source=source, aura_side=side or person["aura_side"])
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(UNIT_LABEL_COLUMNS))
    for column in ("age", *_HOURS):
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(float)
    return table, problems


def resolve_problems(problems: Sequence[Problem], policy: str, limit: int = 6) -> pd.DataFrame:
    """Raise one error listing every problem, or return them as exclusions.

    Parameters
    ----------
    problems : sequence of Problem
        All problems found in the labels and the inputs.
    policy : str
        ``"error"`` raises :class:`InputError`; ``"exclude"`` returns the exclusions.
    limit : int
        How many problems the error message spells out.

    Returns
    -------
    pandas.DataFrame
        ``subject, session, reason`` of the units to exclude.
    """
    unique = sorted(
        set(problems), key=lambda item: (item.subject, item.session, item.column, item.text)
    )
    if unique and policy == "error":
        files = sorted({item.source for item in unique})
        source = files[0] + (f" (and {len(files) - 1} more files)" if len(files) > 1 else "")
        shown = "; ".join(f"{item.describe()} [{item.column}]" for item in unique[:limit])
        more = f"; and {len(unique) - limit} more" if len(unique) > limit else ""
        raise InputError(
            source,
            f"{len(unique)} label problem{'s' if len(unique) > 1 else ''}: {shown}{more}",
            "correct the values, map spellings in the model file [labels.groups] / "
            "[labels.phases], or leave these units out with --unlabelled exclude",
        )
    rows = [
        {
            "subject": _safe(item.subject),
            "session": _safe(item.session),
            "reason": f"{item.text} ({item.column} in {Path(item.source).name})",
        }
        for item in unique
    ]
    return pd.DataFrame(rows, columns=["subject", "session", "reason"])
