r"""Inline SVG plots of the group report: box/strip plots, paired lines and forest plots.

No plotting library. Every text is XML-escaped by :func:`clean_text`, which also replaces
control characters (e.g. terminal escape sequences, which XML forbids) by visible ``\xNN``
codes. Output only uses the elements allowed by :func:`aslmig.reports.participant.check_svg`
and is deterministic: the horizontal jitter of the strip plots is a fixed low-discrepancy
sequence of the point's position in its group.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from aslmig.reports.figures import PLOT_COLORS, nice_ticks, y_axis_svg
from aslmig.reports.templating import visible_text

_SVG_OPEN = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
    'role="img" font-family="Helvetica, Arial, sans-serif" font-size="11" class="{cls}">'
)
#: Fractional part of multiples of the golden ratio conjugate: the jitter sequence.
_GOLDEN = 0.6180339887498949
#: Colour of the reference line at zero, of means and of confidence intervals.
INK = "#222"


def clean_text(value: object) -> str:
    r"""Return ``str(value)`` with control characters shown as ``\xNN``, HTML/XML-escaped.

    Parameters
    ----------
    value : object
        Any value; ``None`` becomes ``"n/a"``.

    Returns
    -------
    str
        Safe in element content and in quoted attributes.
    """
    return html.escape(visible_text(value), quote=True)


def _num(value: float) -> str:
    return f"{value:.1f}".rstrip("0").rstrip(".")


def format_number(value: float, digits: int = 3) -> str:
    """Format a number with ``digits`` significant digits (``"n/a"`` when not finite)."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    text = f"{float(value):.{digits}g}"
    return "0" if text in ("-0", "0") else text


def _range(values: np.ndarray, include_zero: bool = False) -> tuple[float, float]:
    finite = values[np.isfinite(values)]
    if include_zero:
        finite = np.append(finite, 0.0)
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if high - low < 1e-12 * max(1.0, abs(high)):
        pad = max(abs(high) * 0.1, 1.0)
        return low - pad, high + pad
    pad = 0.06 * (high - low)
    return low - pad, high + pad


def _frame(title: str, ylabel: str, width: int, height: int, cls: str) -> list[str]:
    parts = [_SVG_OPEN.format(w=width, h=height, cls=cls), f"<title>{clean_text(title)}</title>"]
    parts.append(
        f'<text x="8" y="16" font-size="12" font-weight="bold" fill="{INK}">'
        f"{clean_text(title)}</text>"
    )
    if ylabel:
        parts.append(
            f'<text transform="translate(13 {_num(height / 2)}) rotate(-90)" '
            f'text-anchor="middle" fill="{INK}">{clean_text(ylabel)}</text>'
        )
    return parts


def jitter(count: int) -> np.ndarray:
    """Return ``count`` deterministic offsets in ``[-0.5, 0.5)`` (golden-ratio sequence)."""
    return np.mod(np.arange(1, count + 1) * _GOLDEN, 1.0) - 0.5


def _box_parts(values: np.ndarray, centre: float, half: float, colour: str, sy) -> list[str]:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    iqr = q3 - q1
    inside = values[(values >= q1 - 1.5 * iqr) & (values <= q3 + 1.5 * iqr)]
    low, high = float(inside.min()), float(inside.max())
    x0, x1 = _num(centre - half), _num(centre + half)
    return [
        f'<line x1="{_num(centre)}" y1="{_num(sy(low))}" x2="{_num(centre)}" '
        f'y2="{_num(sy(q1))}" stroke="{colour}" stroke-width="1"/>',
        f'<line x1="{_num(centre)}" y1="{_num(sy(q3))}" x2="{_num(centre)}" '
        f'y2="{_num(sy(high))}" stroke="{colour}" stroke-width="1"/>',
        f'<rect x="{x0}" y="{_num(sy(q3))}" width="{_num(2 * half)}" '
        f'height="{_num(max(sy(q1) - sy(q3), 0.5))}" fill="{colour}" fill-opacity="0.15" '
        f'stroke="{colour}" stroke-width="1.2"/>',
        f'<line x1="{x0}" y1="{_num(sy(median))}" x2="{x1}" y2="{_num(sy(median))}" '
        f'stroke="{colour}" stroke-width="2"/>',
    ]


def box_strip_svg(
    groups: Mapping[str, Sequence[tuple[str, float]]],
    *,
    title: str = "",
    ylabel: str = "",
    width: int | None = None,
    height: int = 240,
) -> str:
    """Return box plots with the individual points (strip plot) per group, as SVG.

    Parameters
    ----------
    groups : Mapping[str, sequence of (str, float)]
        Group name -> (point label, value) pairs; labels become tooltips. Non-finite values
        are left out.
    title, ylabel : str, optional
        Plot title and y-axis label; escaped.
    width : int, optional
        Width in pixels (default: from the number of groups).
    height : int, optional
        Height in pixels.

    Returns
    -------
    str
        An ``<svg class="aslmig-boxplot">`` element: box from the quartiles, median line,
        whiskers to the most extreme points within 1.5 IQR, every point jittered.
    """
    names = [str(name) for name in groups]
    width = width or max(220, 70 + 90 * len(names))
    left, right, top, bottom = 50.0, width - 10.0, 26.0, height - 30.0
    arrays = {
        name: [(str(label), float(v)) for label, v in points if math.isfinite(float(v))]
        for name, points in zip(names, groups.values(), strict=True)
    }
    every = np.array([v for points in arrays.values() for _, v in points])
    low, high = _range(every)

    def sy(y: float) -> float:
        return bottom - (y - low) / (high - low) * (bottom - top)

    parts = _frame(title, ylabel, width, height, "aslmig-boxplot")
    parts.extend(y_axis_svg(low, high, left, right, sy, target=5))
    slot = (right - left) / max(1, len(names))
    for number, name in enumerate(names):
        colour = PLOT_COLORS[number % len(PLOT_COLORS)]
        centre, half = left + slot * (number + 0.5), min(30.0, slot * 0.3)
        points = arrays[name]
        values = np.array([v for _, v in points])
        if values.size:
            parts.extend(_box_parts(values, centre, half, colour, sy))
        for (label, value), offset in zip(points, jitter(len(points)), strict=True):
            parts.append(
                f'<circle cx="{_num(centre + offset * 1.4 * half)}" cy="{_num(sy(value))}" r="2.6" '
                f'fill="{colour}" fill-opacity="0.75"><title>{clean_text(label)}: '
                f"{clean_text(format_number(value, 4))}</title></circle>"
            )
        parts.append(
            f'<text x="{_num(centre)}" y="{_num(bottom + 16)}" text-anchor="middle" '
            f'fill="{INK}">{clean_text(name)} (n={values.size})</text>'
        )
    parts.append(
        f'<rect x="{_num(left)}" y="{_num(top)}" width="{_num(right - left)}" '
        f'height="{_num(bottom - top)}" fill="none" stroke="#888" stroke-width="0.8"/>'
    )
    parts.append("</svg>")
    return "".join(parts)


def paired_lines_svg(
    pairs: Mapping[str, tuple[float, float]],
    *,
    conditions: tuple[str, str] = ("interictal", "ictal"),
    title: str = "",
    ylabel: str = "",
    width: int = 260,
    height: int = 240,
) -> str:
    """Return one line per subject between two conditions, and the mean, as SVG.

    Parameters
    ----------
    pairs : Mapping[str, tuple of float]
        Subject -> (value in the first condition, value in the second).
    conditions : tuple of str, optional
        Names of the two conditions, left and right; escaped.
    title, ylabel : str, optional
        Plot title and y-axis label; escaped.
    width, height : int, optional
        Size in pixels.

    Returns
    -------
    str
        An ``<svg class="aslmig-paired">`` element; each subject's line has its name as tooltip.
    """
    left, right, top, bottom = 50.0, width - 14.0, 26.0, height - 30.0
    values = np.array([[float(a), float(b)] for a, b in pairs.values()]).reshape(-1, 2)
    low, high = _range(values.ravel())
    x_a, x_b = left + (right - left) * 0.25, left + (right - left) * 0.75

    def sy(y: float) -> float:
        return bottom - (y - low) / (high - low) * (bottom - top)

    parts = _frame(title, ylabel, width, height, "aslmig-paired")
    parts.extend(y_axis_svg(low, high, left, right, sy, target=5))
    for subject, (a, b) in pairs.items():
        if not (math.isfinite(float(a)) and math.isfinite(float(b))):
            continue
        colour = "#c92a2a" if b < a else "#1c7ed6"
        parts.append(
            f'<polyline points="{_num(x_a)},{_num(sy(a))} {_num(x_b)},{_num(sy(b))}" '
            f'fill="none" stroke="{colour}" stroke-opacity="0.6" stroke-width="1.2">'
            f"<title>{clean_text(subject)}: {clean_text(format_number(a, 4))} -&gt; "
            f"{clean_text(format_number(b, 4))}</title></polyline>"
        )
    finite = values[np.all(np.isfinite(values), axis=1)]
    if finite.size:
        mean_a, mean_b = finite.mean(axis=0)
        parts.append(
            f'<polyline points="{_num(x_a)},{_num(sy(mean_a))} {_num(x_b)},{_num(sy(mean_b))}" '
            f'fill="none" stroke="{INK}" stroke-width="3"><title>mean</title></polyline>'
        )
    for x, name in ((x_a, conditions[0]), (x_b, conditions[1])):
        parts.append(
            f'<text x="{_num(x)}" y="{_num(bottom + 16)}" text-anchor="middle" '
            f'fill="{INK}">{clean_text(name)}</text>'
        )
    parts.append(
        f'<text x="{_num(right)}" y="{_num(height - 2)}" text-anchor="end" fill="#555">'
        f"n={len(finite)}</text>"
    )
    parts.append("</svg>")
    return "".join(parts)


@dataclass(frozen=True)
class ForestRow:
    """One row of a forest plot.

    Attributes
    ----------
    label : str
        Row label (escaped).
    estimate, low, high : float
        Point estimate and confidence limits (NaN allowed: the row shows ``n/a``).
    highlight : bool
        Draw in the highlight colour (e.g. significant after FDR correction).
    """

    label: str
    estimate: float
    low: float
    high: float
    highlight: bool = False


def forest_svg(
    rows: Sequence[ForestRow],
    *,
    title: str = "",
    xlabel: str = "Hedges g",
    width: int = 760,
    label_width: int = 300,
) -> str:
    """Return a forest plot (estimates with confidence intervals, reference line at 0) as SVG.

    Parameters
    ----------
    rows : sequence of ForestRow
        Rows, top to bottom.
    title, xlabel : str, optional
        Title and x-axis label; escaped.
    width : int, optional
        Width in pixels.
    label_width : int, optional
        Width of the label column.

    Returns
    -------
    str
        An ``<svg class="aslmig-forest">`` element with one ``<g class="forest-row">`` per row.
    """
    row_h, top = 18.0, 30.0
    height = int(top + row_h * max(1, len(rows)) + 40)
    left, right = float(label_width), width - 130.0
    limits = np.array([[r.estimate, r.low, r.high] for r in rows], dtype=float).ravel()
    low, high = _range(limits, include_zero=True)
    bottom = top + row_h * max(1, len(rows))

    def sx(x: float) -> float:
        return left + (min(max(x, low), high) - low) / (high - low) * (right - left)

    parts = [_SVG_OPEN.format(w=width, h=height, cls="aslmig-forest")]
    parts.append(f"<title>{clean_text(title or 'forest plot')}</title>")
    parts.append(
        f'<text x="8" y="16" font-size="12" font-weight="bold" fill="{INK}">'
        f"{clean_text(title)}</text>"
    )
    for tick in nice_ticks(low, high, 6):
        x = _num(sx(tick))
        parts.append(
            f'<line x1="{x}" y1="{_num(top)}" x2="{x}" y2="{_num(bottom)}" stroke="#e3e3e3" '
            'stroke-width="0.8"/>'
        )
        parts.append(
            f'<text x="{x}" y="{_num(bottom + 14)}" text-anchor="middle" fill="#444">'
            f"{clean_text(f'{tick:g}')}</text>"
        )
    parts.append(
        f'<line x1="{_num(sx(0.0))}" y1="{_num(top - 4)}" x2="{_num(sx(0.0))}" '
        f'y2="{_num(bottom)}" stroke="{INK}" stroke-width="1" stroke-dasharray="4 3"/>'
    )
    for number, row in enumerate(rows):
        parts.append(_forest_row(row, top + row_h * (number + 0.5), sx, left, right))
    parts.append(
        f'<text x="{_num((left + right) / 2)}" y="{_num(bottom + 30)}" text-anchor="middle" '
        f'fill="{INK}">{clean_text(xlabel)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _forest_row(row: ForestRow, y: float, sx, left: float, right: float) -> str:
    colour = "#c92a2a" if row.highlight else INK
    weight = ' font-weight="bold"' if row.highlight else ""
    finite = all(math.isfinite(float(v)) for v in (row.estimate, row.low, row.high))
    parts = [
        '<g class="forest-row">',
        f'<text x="{_num(left - 8)}" y="{_num(y)}" dy="0.35em" text-anchor="end" '
        f'fill="{colour}"{weight}>{clean_text(row.label)}</text>',
    ]
    if finite:
        parts.append(
            f'<line x1="{_num(sx(row.low))}" y1="{_num(y)}" x2="{_num(sx(row.high))}" '
            f'y2="{_num(y)}" stroke="{colour}" stroke-width="1.4"/>'
        )
        parts.append(
            f'<rect x="{_num(sx(row.estimate) - 3.5)}" y="{_num(y - 3.5)}" width="7" height="7" '
            f'fill="{colour}"/>'
        )
        text = (
            f"{format_number(row.estimate, 2)} [{format_number(row.low, 2)}, "
            f"{format_number(row.high, 2)}]"
        )
    else:
        text = "n/a"
    parts.append(
        f'<text x="{_num(right + 10)}" y="{_num(y)}" dy="0.35em" fill="{colour}"{weight}>'
        f"{clean_text(text)}</text>"
    )
    parts.append("</g>")
    return "".join(parts)
