r"""The group report: one self-contained, offline HTML file with the group-level results.

Sections: a results table (one row per ROI x contrast x measure, with estimate [95% CI],
Hedges g [CI], the test statistic, p and the FDR q; rows with ``q < q_threshold`` are
highlighted), a forest plot of Hedges g, box/strip plots per ROI and group, paired lines
(interictal -> ictal) per subject, optional map figures (t / TFCE-p mosaics, patient z maps
with territory outlines) and the methods text.

The page is the template ``group.html``, which shares its layout with the participant report
(:mod:`aslmig.reports.templating`): figures are PNG ``data:`` URIs or inline SVG, there is no
script, a Content-Security-Policy forbids loading anything from outside the file, and every
string that may come from input data is escaped (control characters shown as ``\xNN``).
The output depends on the inputs only, so the same inputs give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aslmig.bids.derivatives import ROI_STATISTICS_COLUMNS, ROI_VALUES_COLUMNS, atomic_write
from aslmig.reports.svg import (
    ForestRow,
    box_strip_svg,
    check_svg,
    forest_svg,
    format_number,
    paired_lines_svg,
)
from aslmig.reports.templating import render


@dataclass(frozen=True, eq=False)
class MapFigure:
    """A map figure of the group report.

    Attributes
    ----------
    title : str
        Heading (escaped).
    image : ndarray of uint8, shape (H, W, 3)
        The mosaic, e.g. from :func:`aslmig.reports.mosaics.mosaic` or
        :func:`aslmig.reports.overlays.territory_overlay`.
    caption : str
        Caption (escaped), e.g. thresholds and orientation.
    colorbar : str, optional
        Colour bar SVG (:func:`aslmig.reports.svg.colorbar`).
    """

    title: str
    image: np.ndarray
    caption: str = ""
    colorbar: str | None = None

    def __post_init__(self) -> None:
        array = np.asarray(self.image)
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise ValueError(f"MapFigure.image must be (H, W, 3) uint8, got {array.shape}")
        if self.colorbar is not None:
            check_svg(self.colorbar, f"colour bar of {self.title!r}")


def _require(table: pd.DataFrame, columns: Sequence[str], name: str) -> None:
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"the {name} table lacks the column(s) {missing}")


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _float(value: Any) -> float:
    try:
        return float(value) if not _is_missing(value) else math.nan
    except (TypeError, ValueError):
        return math.nan


def _p_text(value: Any) -> str:
    number = _float(value)
    if not math.isfinite(number):
        return "n/a"
    return "<0.001" if number < 0.001 else f"{number:.3f}"


def _interval(estimate: Any, low: Any, high: Any) -> str:
    return (
        f"{format_number(_float(estimate))} "
        f"[{format_number(_float(low))}, {format_number(_float(high))}]"
    )


def _text(value: Any) -> str:
    return "n/a" if _is_missing(value) else str(value)


def _significant(row: pd.Series, threshold: float) -> bool:
    q = _float(row["q"])
    return math.isfinite(q) and q < threshold


def _count(value: Any) -> str:
    """Format a sample size as an integer (``n/a`` when missing)."""
    return "n/a" if _is_missing(value) else str(int(round(_float(value))))


def _statistic_text(row: pd.Series) -> str:
    text = f"{_text(row['statistic_name'])} = {format_number(_float(row['statistic']))}"
    df = _float(row["df"])
    return text + (f" (df {format_number(df, 4)})" if math.isfinite(df) else "")


@dataclass(frozen=True)
class ResultRow:
    """One row of the results table: (text, CSS class) cells, and whether q < threshold."""

    cells: tuple[tuple[str, str], ...]
    significant: bool


@dataclass(frozen=True)
class Family:
    """The results of one correction family: table rows and forest plot (SVG)."""

    name: str
    rows: tuple[ResultRow, ...]
    forest: str
    hits: int = field(init=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "hits", sum(row.significant for row in self.rows))


def _result_row(row: pd.Series, threshold: float) -> ResultRow:
    groups = f"{_text(row['group_a'])} vs {_text(row['group_b'])}"
    sizes = f"{_count(row['n_a'])} / {_count(row['n_b'])}"
    cells = (
        (_text(row["model"]), ""),
        (_text(row["contrast"]), ""),
        (_text(row["measure"]), ""),
        (_text(row["roi"]), ""),
        (groups, ""),
        (sizes, "num"),
        (_interval(row["estimate"], row["ci_low"], row["ci_high"]), "num"),
        (_interval(row["hedges_g"], row["g_ci_low"], row["g_ci_high"]), "num"),
        (_statistic_text(row), "num"),
        (_p_text(row["p"]), "num"),
        (_p_text(row["q"]), "num"),
    )
    return ResultRow(cells, _significant(row, threshold))


def _forest_row(row: pd.Series, threshold: float) -> ForestRow:
    return ForestRow(
        label=f"{_text(row['roi'])} | {_text(row['contrast'])} | {_text(row['measure'])}",
        estimate=_float(row["hedges_g"]),
        low=_float(row["g_ci_low"]),
        high=_float(row["g_ci_high"]),
        highlight=_significant(row, threshold),
    )


def _families(statistics: pd.DataFrame, threshold: float) -> list[Family]:
    """Return the results of each correction family, in order of first appearance."""
    families = []
    for name, rows in statistics.groupby("family", sort=False, dropna=False):
        records = [row for _, row in rows.iterrows()]
        forest = forest_svg(
            [_forest_row(row, threshold) for row in records],
            title=f"Effect sizes: {_text(name)}",
            xlabel="Hedges g (95% CI)",
        )
        rows_shown = tuple(_result_row(row, threshold) for row in records)
        families.append(Family(_text(name), rows_shown, forest))
    return families


def _ordered(values: pd.Series) -> list[str]:
    """Distinct non-missing values as strings, in order of first appearance."""
    return list(dict.fromkeys(_text(v) for v in values if not _is_missing(v)))


def _category(frame: pd.DataFrame) -> pd.Series:
    """Group, or ``group phase`` when a group's rows have more than one phase."""
    groups = frame["group"].map(_text)
    phases = frame["phase"].map(lambda v: "" if _is_missing(v) else str(v))
    several = phases.groupby(groups).transform(lambda s: s[s != ""].nunique() > 1)
    return groups.where(~several.astype(bool), groups + " " + phases)


def _box_plots(values: pd.DataFrame) -> list[tuple[str, list[str]]]:
    """Return (measure, box/strip plots, one per ROI) pairs."""
    plots = []
    for measure in _ordered(values["measure"]):
        subset = values[values["measure"].map(_text) == measure]
        svgs = []
        for roi in _ordered(subset["roi"]):
            rows = subset[subset["roi"].map(_text) == roi]
            categories = _category(rows)
            groups = {
                name: [
                    (f"{_text(r.subject)} {_text(r.session)}", _float(r.value))
                    for r in rows[categories == name].itertuples()
                ]
                for name in _ordered(categories)
            }
            svgs.append(box_strip_svg(groups, title=roi, ylabel=measure))
        plots.append((measure, svgs))
    return plots


def _paired_plots(values: pd.DataFrame, phases: tuple[str, str]) -> list[tuple[str, list[str]]]:
    """Return (measure, paired-line plots, one per ROI with pairs) pairs."""
    phase = values["phase"].map(_text)
    chosen = values[phase.isin(phases)].assign(phase=phase[phase.isin(phases)])
    plots = []
    for measure in _ordered(chosen["measure"]):
        svgs = []
        subset = chosen[chosen["measure"].map(_text) == measure]
        for roi in _ordered(subset["roi"]):
            rows = subset[subset["roi"].map(_text) == roi]
            means = rows.assign(
                subject=rows["subject"].map(_text), value=rows["value"].map(_float)
            ).pivot_table(
                index="subject", columns="phase", values="value", aggfunc="mean", sort=False
            )
            if not all(p in means.columns for p in phases):
                continue
            means = means.dropna(subset=list(phases))
            if means.empty:
                continue
            pairs = {
                str(s): (float(r[phases[0]]), float(r[phases[1]])) for s, r in means.iterrows()
            }
            svgs.append(paired_lines_svg(pairs, conditions=phases, title=roi, ylabel=measure))
        if svgs:
            plots.append((measure, svgs))
    return plots


def _crossing_rows(table: pd.DataFrame) -> list[list[str]]:
    """Cells of the territory-crossing table (``territories.tsv``), one row per cluster."""
    rows = []
    for row in table.itertuples(index=False):
        if not int(row.cluster):
            rows.append([row.session_map, "none", "", "", "", "", "", "n/a"])
            continue
        shares = ", ".join(f"{name.removeprefix('territory_')} {float(share):.0%}"
                           for name, share in (item.split("=") for item in
                                               str(row.shares).split(";") if item))  # fmt: skip
        rows.append([
            row.session_map, str(int(row.cluster)), row.direction, f"{float(row.volume_ml):.2f}",
            f"{float(row.peak_z):.2f}",
            f"({float(row.peak_x_mm):.0f}, {float(row.peak_y_mm):.0f}, {float(row.peak_z_mm):.0f})",
            shares, row.crosses_territories,
        ])  # fmt: skip
    return rows


def build_group_html(
    *,
    title: str,
    statistics: pd.DataFrame,
    values: pd.DataFrame,
    methods: str,
    maps: Sequence[MapFigure] = (),
    timecourse: Sequence[MapFigure] = (),
    crossing: pd.DataFrame | None = None,
    crossing_note: str = "",
    q_threshold: float = 0.05,
    paired_phases: tuple[str, str] = ("interictal", "ictal"),
) -> str:
    """Return the group report as one HTML string (see :func:`write_group_report`)."""
    _require(statistics, ROI_STATISTICS_COLUMNS, "statistics")
    _require(values, ROI_VALUES_COLUMNS, "values")
    paired = _paired_plots(values, paired_phases)
    sections = [("results", "Results"), ("effects", "Effect sizes")]
    sections.append(("regions", "Regional values by group"))
    if paired:
        sections.append(("paired", f"{paired_phases[0]} and {paired_phases[1]} per subject"))
    if timecourse:
        sections.append(("timecourse", "Time course across the attack"))
    if maps:
        sections.append(("maps", "Maps"))
    if crossing is not None:
        sections.append(("territories", "Patient sessions and arterial territories"))
    sections.append(("methods", "Methods"))
    return render(
        "group.html",
        title=title,
        heading=title,
        subtitle="Group-level perfusion report",
        sections=sections,
        families=_families(statistics, q_threshold),
        threshold=f"{q_threshold:g}",
        box_plots=_box_plots(values),
        paired_plots=paired,
        paired_phases=paired_phases,
        maps=list(maps),
        timecourse=list(timecourse),
        crossing_rows=[] if crossing is None else _crossing_rows(crossing),
        crossing_note=crossing_note,
        methods_paragraphs=[p.strip() for p in str(methods).split("\n\n") if p.strip()],
    )


def write_group_report(
    path: Path,
    *,
    title: str,
    statistics: pd.DataFrame,
    values: pd.DataFrame,
    methods: str,
    maps: Sequence[MapFigure] = (),
    timecourse: Sequence[MapFigure] = (),
    crossing: pd.DataFrame | None = None,
    crossing_note: str = "",
) -> None:
    """Write the group report, a self-contained HTML page.

    Parameters
    ----------
    path : Path
        Destination (parent folders are created; written atomically).
    title : str
        Page title; escaped.
    statistics : pandas.DataFrame
        One row per ROI x contrast x measure with the columns :data:`ROI_STATISTICS_COLUMNS`;
        shown in row order in the results table and the forest plot.
    values : pandas.DataFrame
        Long table with the columns :data:`ROI_VALUES_COLUMNS` (others ignored): the box/strip
        plots (one per measure and ROI, by group, or by group and phase when a group has
        several phases) and the paired interictal -> ictal lines.
    methods : str
        Methods text, plain; paragraphs separated by blank lines; escaped.
    maps : sequence of MapFigure, optional
        Map figures shown in order.
    timecourse : sequence of MapFigure, optional
        Time-course figures (:mod:`aslmig.reports.timecourse`).
    crossing : pandas.DataFrame, optional
        The territory-crossing table (``territories.tsv``,
        :data:`aslmig.group.territories.CLUSTER_COLUMNS`): one row per patient-session cluster.
    crossing_note : str, optional
        How the clusters were found and the method's measured false-cluster and detection rates.
    """
    document = build_group_html(
        title=title,
        statistics=statistics,
        values=values,
        methods=methods,
        maps=maps,
        timecourse=timecourse,
        crossing=crossing,
        crossing_note=crossing_note,
    )
    atomic_write(Path(path), lambda temporary: temporary.write_text(document, encoding="utf-8"))
