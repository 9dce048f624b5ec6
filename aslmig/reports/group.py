r"""The group report: one self-contained, offline HTML file with the group-level results.

Sections: a results table (one row per ROI x contrast x measure, with estimate [95% CI],
Hedges g [CI], the test statistic, p and the FDR q; rows with ``q < q_threshold`` are
highlighted), a forest plot of Hedges g, box/strip plots per ROI and group, paired lines
(interictal -> ictal) per subject, optional map figures (t / TFCE-p mosaics, patient z maps
with territory outlines) and the methods text.

As in the participant report, figures are PNG ``data:`` URIs or inline SVG, there is no
script, a Content-Security-Policy forbids loading anything from outside the file, and every
string that may come from input data is escaped (control characters shown as ``\xNN``).
The output depends on the inputs only, so the same inputs give the same bytes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from aslmig.__about__ import __version__
from aslmig.reports.participant import CONTENT_SECURITY_POLICY, CSS, check_svg
from aslmig.reports.png import data_uri, encode_png
from aslmig.reports.svgplots import (
    ForestRow,
    box_strip_svg,
    clean_text,
    forest_svg,
    format_number,
    paired_lines_svg,
)

#: Columns the ``statistics`` table must have (produced by :mod:`aslmig.group.models`).
STATISTICS_COLUMNS = (
    "model",
    "contrast",
    "measure",
    "roi",
    "family",
    "formula",
    "group_a",
    "group_b",
    "n_a",
    "n_b",
    "mean_a",
    "sd_a",
    "mean_b",
    "sd_b",
    "estimate",
    "ci_low",
    "ci_high",
    "hedges_g",
    "g_ci_low",
    "g_ci_high",
    "statistic_name",
    "statistic",
    "df",
    "p",
    "q",
)
#: Columns the long ``values`` table must have (others are ignored).
VALUES_COLUMNS = ("subject", "session", "group", "phase", "roi", "measure", "value")

GROUP_CSS = """
tr.sig td { background: #fff1e6; font-weight: 600; }
.plots { display: flex; flex-wrap: wrap; gap: 10px 18px; }
.plots figure { margin: 4px 0; }
p.note { font-size: 13px; color: var(--muted); }
details { margin: 6px 0; }
summary { cursor: pointer; font-weight: 600; }
"""


@dataclass(frozen=True, eq=False)
class MapFigure:
    """A map figure of the group report.

    Attributes
    ----------
    title : str
        Heading (escaped).
    image : ndarray of uint8, shape (H, W, 3)
        The mosaic, e.g. from :func:`aslmig.reports.figures.mosaic` or
        :func:`aslmig.group.voxelwise.territory_overlay`.
    caption : str
        Caption (escaped), e.g. thresholds and orientation.
    colorbar : str, optional
        Colour bar SVG (:func:`aslmig.reports.figures.colorbar`).
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


def _td(text: str, cls: str) -> str:
    attribute = f' class="{cls}"' if cls else ""
    return f"<td{attribute}>{clean_text(text)}</td>"


def _families(statistics: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Return the rows of each correction family, in order of first appearance."""
    grouped = statistics.groupby("family", sort=False, dropna=False)
    return [(_text(name), rows) for name, rows in grouped]


def _family_block(name: str, rows: pd.DataFrame, threshold: float, content: str) -> str:
    """Return a collapsible block for one family, open when a result has q < threshold."""
    hits = sum(_significant(row, threshold) for _, row in rows.iterrows())
    summary = f"{name}: {len(rows)} result(s), {hits} with q < {threshold:g}"
    opened = " open" if hits else ""
    return f"<details{opened}><summary>{clean_text(summary)}</summary>{content}</details>"


def _result_row(row: pd.Series, threshold: float) -> str:
    css = ' class="sig"' if _significant(row, threshold) else ""
    groups = f"{_text(row['group_a'])} vs {_text(row['group_b'])}"
    sizes = f"{_count(row['n_a'])} / {_count(row['n_b'])}"
    cells = [
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
    ]
    return f"<tr{css}>{''.join(_td(text, cls) for text, cls in cells)}</tr>"


def _results_table(statistics: pd.DataFrame, threshold: float) -> str:
    if statistics.empty:
        return '<p class="muted">No statistics.</p>'
    head = (
        "<th>model</th><th>contrast</th><th>measure</th><th>ROI</th><th>groups</th>"
        "<th>n</th><th>estimate [95% CI]</th><th>Hedges g [95% CI]</th><th>statistic</th>"
        "<th>p</th><th>q</th>"
    )
    blocks = []
    for name, rows in _families(statistics):
        body = "".join(_result_row(row, threshold) for _, row in rows.iterrows())
        table = (
            f'<div class="table-wrap"><table class="results"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>"
        )
        blocks.append(_family_block(name, rows, threshold, table))
    limit = clean_text(f"{threshold:g}")
    return "".join(blocks) + (
        '<p class="note">One block per correction family (open when it holds a result '
        f"with q &lt; {limit}); highlighted rows: q &lt; {limit} (Benjamini-Hochberg within "
        "each family).</p>"
    )


def _forest(statistics: pd.DataFrame, threshold: float) -> str:
    blocks = []
    for name, rows in _families(statistics):
        forest_rows = [
            ForestRow(
                label=f"{_text(row['roi'])} | {_text(row['contrast'])} | {_text(row['measure'])}",
                estimate=_float(row["hedges_g"]),
                low=_float(row["g_ci_low"]),
                high=_float(row["g_ci_high"]),
                highlight=_significant(row, threshold),
            )
            for _, row in rows.iterrows()
        ]
        svg = forest_svg(forest_rows, title=f"Effect sizes: {name}", xlabel="Hedges g (95% CI)")
        figure = f"<figure>{check_svg(svg, 'forest plot')}</figure>"
        blocks.append(_family_block(name, rows, threshold, figure))
    return "".join(blocks)


def _ordered(values: pd.Series) -> list[str]:
    """Distinct non-missing values as strings, in order of first appearance."""
    return list(dict.fromkeys(_text(v) for v in values if not _is_missing(v)))


def _category(frame: pd.DataFrame) -> pd.Series:
    """Group, or ``group phase`` when a group's rows have more than one phase."""
    groups = frame["group"].map(_text)
    phases = frame["phase"].map(lambda v: "" if _is_missing(v) else str(v))
    several = phases.groupby(groups).transform(lambda s: s[s != ""].nunique() > 1)
    return groups.where(~several.astype(bool), groups + " " + phases)


def _box_plots(values: pd.DataFrame) -> tuple[str, int]:
    parts, count = [], 0
    for measure in _ordered(values["measure"]):
        subset = values[values["measure"].map(_text) == measure]
        figures = []
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
            svg = box_strip_svg(groups, title=roi, ylabel=measure)
            figures.append(f"<figure>{check_svg(svg, f'box plot of {roi!r}')}</figure>")
            count += 1
        parts.append(f'<h3>{clean_text(measure)}</h3><div class="plots">{"".join(figures)}</div>')
    return "".join(parts), count


def _paired_plots(values: pd.DataFrame, phases: tuple[str, str]) -> str:
    phase = values["phase"].map(_text)
    chosen = values[phase.isin(phases)].assign(phase=phase[phase.isin(phases)])
    if chosen.empty:
        return ""
    parts = []
    for measure in _ordered(chosen["measure"]):
        figures = []
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
            svg = paired_lines_svg(pairs, conditions=phases, title=roi, ylabel=measure)
            figures.append(f"<figure>{check_svg(svg, f'paired plot of {roi!r}')}</figure>")
        if figures:
            parts.append(
                f'<h3>{clean_text(measure)}</h3><div class="plots">{"".join(figures)}</div>'
            )
    if not parts:
        return ""
    note = (
        f'<p class="note">One line per subject with sessions in both phases '
        f"({clean_text(phases[0])}, {clean_text(phases[1])}; sessions of one phase averaged); "
        f"red: lower in {clean_text(phases[1])}, blue: higher; black: mean.</p>"
    )
    return note + "".join(parts)


def _maps(maps: Sequence[MapFigure]) -> str:
    parts = []
    for figure in maps:
        caption = f"<figcaption>{clean_text(figure.caption)}</figcaption>" if figure.caption else ""
        bar = f"<figure>{figure.colorbar}</figure>" if figure.colorbar else ""
        parts.append(
            f"<h3>{clean_text(figure.title)}</h3><figure>"
            f'<img src="{data_uri(encode_png(figure.image))}" alt="{clean_text(figure.title)}">'
            f"{caption}</figure>{bar}"
        )
    return "".join(parts)


def _methods(methods: str) -> str:
    paragraphs = [p.strip() for p in str(methods).split("\n\n") if p.strip()]
    if not paragraphs:
        return '<p class="muted">No methods text.</p>'
    return (
        '<div class="methods">' + "".join(f"<p>{clean_text(p)}</p>" for p in paragraphs) + "</div>"
    )


def _section(anchor: str, heading: str, body: str) -> str:
    return f'<section class="card" id="{anchor}"><h2>{clean_text(heading)}</h2>{body}</section>'


def build_group_html(
    *,
    title: str,
    statistics: pd.DataFrame,
    values: pd.DataFrame,
    methods: str,
    maps: Sequence[MapFigure] = (),
    q_threshold: float = 0.05,
    paired_phases: tuple[str, str] = ("interictal", "ictal"),
) -> str:
    """Return the group report as one HTML string (see :func:`write_group_report`)."""
    _require(statistics, STATISTICS_COLUMNS, "statistics")
    _require(values, VALUES_COLUMNS, "values")
    boxes, _ = _box_plots(values)
    paired = _paired_plots(values, paired_phases)
    sections = [
        ("results", "Results", _results_table(statistics, q_threshold)),
        ("effects", "Effect sizes", _forest(statistics, q_threshold)),
        ("regions", "Regional values by group", boxes or '<p class="muted">No values.</p>'),
    ]
    if paired:
        sections.append(
            ("paired", f"{paired_phases[0]} and {paired_phases[1]} per subject", paired)
        )
    if maps:
        sections.append(("maps", "Maps", _maps(maps)))
    sections.append(("methods", "Methods", _methods(methods)))
    nav = "".join(
        f'<a href="#{anchor}">{clean_text(heading)}</a>' for anchor, heading, _ in sections
    )
    body = "".join(_section(*section) for section in sections)
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{clean_text(title)}</title><style>{CSS}{GROUP_CSS}</style></head><body>"
        f"<header><h1>{clean_text(title)}</h1>"
        f"<p>Group-level perfusion report, aslmig {clean_text(__version__)}</p></header>"
        f"<nav>{nav}</nav><main>{body}</main>"
        f"<footer>Generated by aslmig {clean_text(__version__)}. This file is self-contained "
        "and can be opened offline.</footer></body></html>\n"
    )


def write_group_report(
    path: Path,
    *,
    title: str,
    statistics: pd.DataFrame,
    values: pd.DataFrame,
    methods: str,
    maps: Sequence[MapFigure] = (),
) -> None:
    """Write the group report, a self-contained HTML page.

    Parameters
    ----------
    path : Path
        Destination (parent folders are created; written atomically).
    title : str
        Page title; escaped.
    statistics : pandas.DataFrame
        One row per ROI x contrast x measure with the columns :data:`STATISTICS_COLUMNS`;
        shown in row order in the results table and the forest plot.
    values : pandas.DataFrame
        Long table with the columns :data:`VALUES_COLUMNS` (others ignored): the box/strip
        plots (one per measure and ROI, by group, or by group and phase when a group has
        several phases) and the paired interictal -> ictal lines.
    methods : str
        Methods text, plain; paragraphs separated by blank lines; escaped.
    maps : sequence of MapFigure, optional
        Map figures shown in order.
    """
    from aslmig.bids.derivatives import atomic_write

    document = build_group_html(
        title=title, statistics=statistics, values=values, methods=methods, maps=maps
    )
    atomic_write(Path(path), lambda temporary: temporary.write_text(document, encoding="utf-8"))
