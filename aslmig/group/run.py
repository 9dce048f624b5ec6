"""Orchestration of ``aslmig BIDS_DIR OUTPUT_DIR group``: validate, model, write.

Everything is read and validated before anything is written: the model file, the labels in
``participants.tsv`` / ``sub-X_sessions.tsv`` and every participant ROI table. Only then are
the tables computed and written, atomically, into ``OUTPUT_DIR/group/<label>/``; nothing
else in OUTPUT_DIR is touched. Same inputs give byte-identical files (stable sort, fixed
float formatting, no time stamps).
"""

from __future__ import annotations

import logging
import platform
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aslmig.__about__ import __version__
from aslmig.bids.derivatives import (
    ROI_STATISTICS_COLUMNS,
    ROI_VALUES_COLUMNS,
    atomic_write,
    group_level_dir,
    unit_name,
    write_sidecar,
)
from aslmig.bids.entities import is_label
from aslmig.errors import InputError, quote
from aslmig.group.collect import (
    MEASURES,
    RoiTable,
    find_roi_tables,
    orient_asymmetry,
    read_roi_values,
    sha256,
)
from aslmig.group.harmonize import harmonise_values
from aslmig.group.labels import Labels, label_units, read_labels, resolve_problems
from aslmig.group.maps import MapSettings, load_unit_maps
from aslmig.group.models import fit_models, timecourse_curves
from aslmig.group.modelspec import GroupSpec, read_model_file, spec_to_toml
from aslmig.group.report import write_maps_and_report

LOGGER = logging.getLogger("aslmig.group")
#: Columns of ``exclusions.tsv``.
EXCLUSION_COLUMNS = ("subject", "session", "stage", "reason")
_INTEGER_COLUMNS = {"n_a", "n_b", "n_obs", "df_num", "df", "n_runs"}
_GROUP_LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
FLOAT_FORMAT = ".8g"


@dataclass(frozen=True)
class GroupResult:
    """Everything the group level writes, computed before writing.

    Attributes
    ----------
    values, statistics, exclusions : pandas.DataFrame
        The three tables.
    timecourse : pandas.DataFrame
        Curves and session points of the time-course models (empty without timed sessions).
    harmonization : pandas.DataFrame or None
        ComBat's site estimates (None without ``[inputs] harmonize = "combat"``).
    spec : GroupSpec
        The resolved model specification.
    sources : dict
        Source (BIDS URI) -> ``sha256:...`` of every file read.
    """

    values: pd.DataFrame
    statistics: pd.DataFrame
    exclusions: pd.DataFrame
    timecourse: pd.DataFrame
    harmonization: pd.DataFrame | None
    spec: GroupSpec
    sources: dict[str, str]


def group_dir(output_dir: Path, label: str) -> Path:
    """Return ``OUTPUT_DIR/group/<label>`` after checking the label."""
    if not _GROUP_LABEL.fullmatch(label):
        raise InputError(
            "--group-label",
            f"{quote(label)} is not a plain name",
            "use letters, digits, - and _ (e.g. 'default', 'ictal2024')",
        )
    return group_level_dir(output_dir, label)


def run_group(config) -> int:
    """Run the group level of one configured invocation.

    Parameters
    ----------
    config : aslmig.config.RunConfig
        The run configuration (its ``group`` section, paths and participant/session filters).

    Returns
    -------
    int
        0 on success (input errors raise :class:`~aslmig.errors.InputError`).
    """
    settings = config.group
    destination = group_dir(Path(config.output_dir), settings.label)
    if not is_label(settings.atlas):
        raise InputError(
            "--group-atlas",
            f"{quote(settings.atlas)} is not an atlas name",
            "use the atlas entity of the participant tables, e.g. MigraineASL",
        )
    spec = read_model_file(Path(settings.model) if settings.model else None)
    result = compute_group(
        Path(config.bids_dir),
        Path(config.output_dir),
        spec,
        atlas=settings.atlas,
        missing=settings.missing,
        unlabelled=settings.unlabelled,
        participants=config.participant_labels,
        sessions=config.session_labels,
    )
    _report(result)
    maps = load_unit_maps(Path(config.output_dir), result.values) if settings.voxelwise else None
    if config.dry_run:
        print(
            f"aslmig: dry run: would write {len(result.statistics)} statistics rows "
            f"to {destination}"
        )
        return 0
    write_group(destination, result)
    map_settings = MapSettings(
        permutations=settings.permutations,
        seed=settings.seed,
        tfce=settings.tfce,
        cluster_threshold=settings.cluster_threshold,
    )
    report = write_maps_and_report(
        destination, Path(config.output_dir), result.statistics, result.values, maps,
        map_settings, list(result.sources), result.timecourse,
    )  # fmt: skip
    print(f"aslmig: group statistics written to {destination}")
    print(f"Group report: {report}")
    return 0


def compute_group(
    bids_dir: Path,
    output_dir: Path,
    spec: GroupSpec,
    atlas: str = "MigraineASL",
    missing: str = "report",
    unlabelled: str = "error",
    participants: tuple[str, ...] | None = None,
    sessions: tuple[str, ...] | None = None,
) -> GroupResult:
    """Read and validate every input, then fit the models (nothing is written).

    Parameters
    ----------
    bids_dir : Path
        The input dataset (labels).
    output_dir : Path
        The derivatives dataset (participant ROI tables).
    spec : GroupSpec
        The models and label settings.
    atlas : str
        Atlas entity of the participant tables.
    missing : str
        ``"report"``: participants without outputs are listed in the exclusions;
        ``"error"``: they are an input error.
    unlabelled : str
        ``"error"``: label problems are one input error; ``"exclude"``: those units are
        left out with the reason recorded.
    participants, sessions : tuple of str, optional
        Only these subject / session labels.

    Returns
    -------
    GroupResult
        The tables to write.
    """
    labels = read_labels(bids_dir, spec.labels, spec.covariates())
    _check_selected(bids_dir, labels, participants)
    tables = find_roi_tables(output_dir, atlas, spec.inputs.space)
    tables = [
        table
        for table in tables
        if (participants is None or table.subject in participants)
        and (sessions is None or table.session in sessions)
    ]
    _check_one_space(output_dir, tables)
    units = _units(tables)
    unit_labels, unit_problems = label_units(units, labels, spec.labels)
    problems = [*labels.problems, *unit_problems]
    if participants is not None:
        problems = [item for item in problems if item.subject in participants]
    excluded = resolve_problems(problems, unlabelled).assign(stage="labels")
    absent = _missing_outputs(labels, units, participants, sessions, atlas)
    if missing == "error" and len(absent):
        shown = ", ".join(unit_name(row.subject, row.session) for row in absent.itertuples())
        raise InputError(
            output_dir,
            f"{len(absent)} labelled unit(s) have no {atlas} ROI table: {shown[:300]}",
            "run the participant level for them, or pass --missing report",
        )
    exclusions = pd.concat([excluded, absent], ignore_index=True)
    keep = _keep(unit_labels, excluded)
    used = [table for table in tables if (table.subject, table.session) in keep]
    if not used:
        raise InputError(
            output_dir,
            f"no participant ROI table of atlas {quote(atlas)} to model",
            "run the participant level first, or check --group-atlas",
        )
    collected = read_roi_values(output_dir, used, spec.inputs.measures)
    exclusions = pd.concat([exclusions, collected.damaged], ignore_index=True)
    checksums = collected.checksums
    values = _attach_labels(collected.values, unit_labels, spec)
    harmonization = _harmonised(values, spec, bids_dir)
    if harmonization is not None:
        values, harmonization = harmonization
    measures = [measure for measure in MEASURES if measure in set(values["measure"])]
    statistics = fit_models(spec.models, values, measures)
    timecourse = timecourse_curves(spec.models, values, measures)
    sources = _sources(bids_dir, labels, checksums)
    exclusions = exclusions[list(EXCLUSION_COLUMNS)].sort_values(
        ["subject", "session", "stage", "reason"], kind="stable"
    )
    exclusions = exclusions.reset_index(drop=True)
    return GroupResult(values, statistics, exclusions, timecourse, harmonization, spec, sources)


def _check_selected(
    bids_dir: Path, labels: Labels, participants: tuple[str, ...] | None
) -> None:
    """Refuse ``--participant-label`` values that name no participant of the dataset."""
    if participants is None:
        return
    unknown = sorted(set(participants) - set(labels.participants["subject"]))
    if unknown:
        shown = ", ".join(quote(f"sub-{label}") for label in unknown[:5])
        raise InputError(
            Path(bids_dir) / "participants.tsv",
            f"no such participant: {shown}",
            "check --participant-label against participant_id in participants.tsv",
        )


def _check_one_space(output_dir: Path, tables: list[RoiTable]) -> None:
    """Refuse tables of several template spaces: their ROIs are not the same voxels."""
    spaces: dict[str, str] = {}
    for table in tables:
        spaces.setdefault(table.space or "native", table.path)
    if len(spaces) > 1:
        (first, first_path), (second, second_path) = sorted(spaces.items())[:2]
        raise InputError(
            Path(output_dir) / second_path,
            f"ROI tables of {len(spaces)} spaces would be pooled ({quote(first)} in "
            f"{first_path}, {quote(second)} here)",
            "choose one with 'space' in the model file [inputs] (e.g. space = "
            f"{quote(first)}), or rerun the participant level with one template",
        )


def _harmonised(
    values: pd.DataFrame, spec: GroupSpec, bids_dir: Path
) -> tuple[pd.DataFrame, pd.DataFrame] | None:
    """ComBat across sites when the model file asks for it (one-line error if impossible)."""
    if spec.inputs.harmonize != "combat":
        return None
    try:
        return harmonise_values(values)
    except ValueError as error:
        sites = sorted(set(values["site"].fillna("")) - {""})
        raise InputError(
            Path(bids_dir) / "participants.tsv",
            f"[inputs] harmonize = 'combat' but the sites ({', '.join(sites) or 'none'}) "
            f"cannot be harmonised: {error}",
            f"fill the {spec.labels.site_column} column (two or more sites, two or more "
            "sessions each), or remove harmonize from the model file",
        ) from None


def _units(tables: list[RoiTable]) -> pd.DataFrame:
    pairs = sorted({(table.subject, table.session) for table in tables})
    return pd.DataFrame(pairs, columns=["subject", "session"])


def _keep(unit_labels: pd.DataFrame, excluded: pd.DataFrame) -> set[tuple[str, str]]:
    whole = set(excluded.loc[excluded["session"] == "", "subject"])
    parts = set(zip(excluded["subject"], excluded["session"], strict=True))
    return {
        (subject, session)
        for subject, session in zip(unit_labels["subject"], unit_labels["session"], strict=True)
        if subject not in whole and (subject, session) not in parts
    }


def _missing_outputs(
    labels: Labels,
    units: pd.DataFrame,
    participants: tuple[str, ...] | None,
    sessions: tuple[str, ...] | None,
    atlas: str,
) -> pd.DataFrame:
    """Labelled units (participants.tsv / sessions.tsv rows) without a participant table."""
    have = set(zip(units["subject"], units["session"], strict=True))
    subjects_with_output = set(units["subject"])
    listed = labels.sessions.groupby("subject")["session"].apply(list).to_dict()
    rows = []
    for subject in labels.participants["subject"]:
        if participants is not None and subject not in participants:
            continue
        expected = listed.get(subject) or [""]
        for session in expected:
            if sessions is not None and session and session not in sessions:
                continue
            found = (subject, session) in have or (not session and subject in subjects_with_output)
            if not found:
                rows.append(
                    {
                        "subject": subject,
                        "session": session,
                        "stage": "inputs",
                        "reason": f"no participant ROI table (atlas-{atlas}) in OUTPUT_DIR",
                    }
                )
    return pd.DataFrame(rows, columns=list(EXCLUSION_COLUMNS))


def _attach_labels(raw: pd.DataFrame, unit_labels: pd.DataFrame, spec: GroupSpec) -> pd.DataFrame:
    values = raw.merge(unit_labels, on=["subject", "session"], how="inner", validate="m:1")
    values = orient_asymmetry(values, spec.inputs.unsided_asymmetry)
    order = {measure: index for index, measure in enumerate(MEASURES)}
    values = values.assign(_measure=values["measure"].map(order))
    values = values.sort_values(["subject", "session", "_measure", "roi"], kind="stable")
    return values[list(ROI_VALUES_COLUMNS)].reset_index(drop=True)


def _sources(bids_dir: Path, labels: Labels, checksums: dict[str, str]) -> dict[str, str]:
    sources = {}
    for path in labels.sources:
        relative = Path(path).relative_to(bids_dir).as_posix()
        sources[f"bids:raw:{relative}"] = sha256(Path(path).read_bytes())
    for relative, digest in sorted(checksums.items()):
        sources[f"bids::{relative}"] = digest
    return sources


def _report(result: GroupResult) -> None:
    if result.exclusions.empty:
        return
    LOGGER.warning(
        "%d unit(s) left out (listed in exclusions.tsv): %s",
        len(result.exclusions),
        "; ".join(
            f"{unit_name(row.subject, row.session)}: {row.reason}"
            for row in result.exclusions.head(5).itertuples()
        ),
    )


# --------------------------------------------------------------------------- writing


def format_table(table: pd.DataFrame) -> pd.DataFrame:
    """Format a table for writing: fixed float format, integers, ``n/a`` for missing.

    Parameters
    ----------
    table : pandas.DataFrame
        Any table.

    Returns
    -------
    pandas.DataFrame
        All columns as strings.
    """
    formatted = {}
    for column in table.columns:
        series = table[column]
        if column in _INTEGER_COLUMNS:
            numbers = pd.to_numeric(series, errors="coerce")
            formatted[column] = [
                "n/a" if not np.isfinite(value) else str(int(round(value))) for value in numbers
            ]
        elif pd.api.types.is_numeric_dtype(series):
            formatted[column] = [
                "n/a" if not np.isfinite(value) else format(float(value), FLOAT_FORMAT)
                for value in series.to_numpy(float)
            ]
        else:
            formatted[column] = [
                "n/a" if value is None or value == "" or value != value else str(value)
                for value in series
            ]
    return pd.DataFrame(formatted, columns=list(table.columns))


def write_tsv(path: Path, table: pd.DataFrame) -> None:
    """Write a formatted table atomically as TSV."""
    text = format_table(table).to_csv(sep="\t", index=False, lineterminator="\n")
    atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def software_versions() -> dict[str, str]:
    """Versions of the software that computed the statistics."""
    import scipy

    return {
        "aslmig": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "pandas": pd.__version__,
        "scipy": scipy.__version__,
    }


def write_group(destination: Path, result: GroupResult) -> None:
    """Write the group tables, their sidecars and the resolved model file.

    Parameters
    ----------
    destination : Path
        ``OUTPUT_DIR/group/<label>``.
    result : GroupResult
        From :func:`compute_group`.
    """
    destination = Path(destination)
    model_text = spec_to_toml(result.spec)
    model_path = destination / "model.toml"
    common: dict[str, Any] = {
        "Sources": list(result.sources),
        "SourceChecksums": result.sources,
        "ModelFile": "model.toml",
        "ModelChecksum": sha256(model_text.encode("utf-8")),
        "Software": software_versions(),
    }
    families = sorted(set(result.statistics["family"]))
    tables = {
        "roi_values": (
            result.values,
            "The long table that was modelled: one row per subject, "
            "session, ROI and measure (runs of a session averaged).",
        ),
        "roi_statistics": (
            result.statistics,
            "ROI-level group statistics; q values are "
            "Benjamini-Hochberg within each family (model/measure/test).",
        ),
        "exclusions": (result.exclusions, "Units left out, and why."),
    }
    if result.harmonization is not None:
        tables["harmonization"] = (
            result.harmonization,
            "ComBat (Johnson et al. 2007; Fortin et al. 2018) across sites, preserving the "
            "group x phase cells, age and sex: posterior additive (gamma_star, in pooled SD "
            "units) and multiplicative (delta_star, variance ratio) site effects per measure "
            "and ROI; roi_values.tsv holds the harmonised values.",
        )
    if not result.timecourse.empty:
        tables["timecourse"] = (
            result.timecourse,
            "Time-course models: the fitted change f(hours) with its pointwise 95% interval "
            "(ci_low, ci_high) and simultaneous 95% band (band_low, band_high) on a grid "
            "(kind = curve), and each session on the clock as a point (kind = session; "
            "estimate = its value minus the intercept and its participant's random intercept).",
        )
    atomic_write(model_path, lambda temporary: temporary.write_text(model_text, encoding="utf-8"))
    for name, (table, description) in tables.items():
        path = destination / f"{name}.tsv"
        write_tsv(path, table)
        fields = dict(common, Description=description)
        if name == "roi_statistics":
            fields["FDRFamilies"] = families
            fields["FDRMethod"] = "Benjamini-Hochberg (1995) within each family"
            fields["Columns"] = list(ROI_STATISTICS_COLUMNS)
        write_sidecar(
            path, list(result.sources), **{k: v for k, v in fields.items() if k != "Sources"}
        )
