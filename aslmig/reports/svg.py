r"""Inline SVG figures of the reports: colour bars, line plots, box/strip, paired and forest plots.

One module writes every SVG figure of both reports, and :func:`check_svg` is the allow-list
every embedded SVG must pass (the templates run it again when they embed a figure). Every
text is escaped by :func:`escape_text`, which also shows control characters (e.g. terminal
escape sequences, which XML forbids) as visible ``\xNN`` codes. Output is deterministic: the
horizontal jitter of the strip plots is a fixed low-discrepancy sequence.

Hand-written rather than matplotlib's SVG backend, for a measured reason: the same motion
plot (three series of 60 volumes, threshold line, legend) takes 2.7 ms and 4.8 kB here, and
280 ms and 19 kB with matplotlib (3.11, ``svg.fonttype="none"``), whose output also needs
``style`` attributes, ``<defs>``, ``<clipPath>`` and ``<use href>`` that the allow-list
refuses; a group report draws about two plots per region.
"""

from __future__ import annotations

import html
import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from aslmig.reports.colormaps import get_cmap

#: SVG elements allowed in a report (what this module writes).
SVG_ELEMENTS = frozenset(
    {"svg", "g", "title", "desc", "rect", "line", "polyline", "path", "circle", "text", "tspan"}
)


def check_svg(svg: str, name: str = "svg") -> str:
    """Return ``svg`` unchanged if it only uses harmless SVG, else raise ``ValueError``.

    Parameters
    ----------
    svg : str
        One ``<svg>`` element.
    name : str, optional
        What it is, for the error message.

    Returns
    -------
    str
        The same string.

    Raises
    ------
    ValueError
        Not well-formed XML, a root other than ``<svg>``, an element outside
        :data:`SVG_ELEMENTS` (e.g. ``script``, ``foreignObject``, ``image``), an event-handler
        (``on*``) attribute, a ``style`` attribute, or any ``href``.
    """
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as err:
        raise ValueError(f"{name} is not well-formed SVG: {err}") from None
    if _local(root.tag) != "svg":
        raise ValueError(f"{name} must be an <svg> element, got <{_local(root.tag)}>")
    for element in root.iter():
        if _local(element.tag) not in SVG_ELEMENTS:
            raise ValueError(f"{name} contains a disallowed <{_local(element.tag)}> element")
        for attribute in element.attrib:
            local = _local(attribute).lower()
            if local.startswith("on") or local == "href" or local == "style":
                raise ValueError(f"{name} contains a disallowed attribute {local!r}")
    return svg


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


# --------------------------------------------------------------------------------------------
# Shared pieces: text, numbers, ranges, axes
# --------------------------------------------------------------------------------------------

#: Line colours, in order of the series (and of the groups of a box plot).
PLOT_COLORS = ("#1c7ed6", "#e8590c", "#2f9e44", "#7048e8", "#0c8599", "#8d5524")
#: Colour of a threshold line, of highlighted forest rows and of decreases in paired plots.
HIGHLIGHT_COLOR = "#c92a2a"
#: Colour of text, of the reference line at zero, of means and of confidence intervals.
INK = "#222"
#: Fractional part of multiples of the golden ratio conjugate: the jitter sequence.
_GOLDEN = 0.6180339887498949
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")
#: Maps a data coordinate to an SVG coordinate.
_Scale = Callable[[float], float]
_SVG_OPEN = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
    'role="img" font-family="Helvetica, Arial, sans-serif" font-size="11" class="{cls}">'
)


def visible_text(value: object) -> str:
    r"""Return ``str(value)`` with control characters shown as ``\xNN`` (not escaped).

    Parameters
    ----------
    value : object
        Any value; ``None`` becomes ``"n/a"``.

    Returns
    -------
    str
        Text that can be placed in HTML or XML once escaped.
    """
    text = "n/a" if value is None else str(value)
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


def escape_text(value: object) -> str:
    r"""Return ``str(value)`` with control characters shown as ``\xNN``, XML-escaped.

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
    """Format an SVG coordinate compactly."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def format_number(value: float, digits: int = 3) -> str:
    """Format a number with ``digits`` significant digits (``"n/a"`` when not finite)."""
    if value is None or not math.isfinite(float(value)):
        return "n/a"
    text = f"{float(value):.{digits}g}"
    return "0" if text in ("-0", "0") else text


def _data_range(values: np.ndarray, pad: float, floor_at_zero: bool = False) -> tuple[float, float]:
    """Return the finite values' range widened by ``pad`` of its width on both sides.

    A flat range is widened by 10 % of its value (at least 1); an empty one is (0, 1). With
    ``floor_at_zero``, non-negative data keep a lower limit of at least 0.
    """
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return 0.0, 1.0
    low, high = float(finite.min()), float(finite.max())
    if high - low < 1e-12 * max(1.0, abs(high)):
        widen = max(abs(high) * 0.1, 1.0)
        return low - widen, high + widen
    margin = pad * (high - low)
    if floor_at_zero and low >= 0 and low - margin < 0:
        return 0.0, high + margin
    return low - margin, high + margin


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Return round tick values within ``[low, high]``.

    Parameters
    ----------
    low, high : float
        The range (``high > low``).
    target : int, optional
        Approximate number of ticks.

    Returns
    -------
    list of float
        Multiples of 1, 2, 2.5 or 5 times a power of ten.
    """
    step = _tick_step(low, high, target)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [round(k * step, 12) + 0.0 for k in range(first, last + 1)]


def _tick_step(low: float, high: float, target: int) -> float:
    raw = (high - low) / max(1, target)
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw - 1e-12)


def _format_tick(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if not math.isclose(round(step, decimals), step, rel_tol=1e-9):
        decimals += 1
    text = f"{value:.{decimals}f}"
    return "0" if float(text) == 0 else text


def _format_limit(value: float) -> str:
    """Format a colour limit with up to 4 significant digits, without exponent when possible."""
    text = f"{value:.4g}"
    if "e" in text and 1e-3 <= abs(value) < 1e6:
        text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "0.0") else text


def _colorbar_ticks(vmin: float, vmax: float, target: int) -> list[tuple[float, str]]:
    """Return (value, label) pairs: both limits, plus round values not too close to them."""
    step = _tick_step(vmin, vmax, target)
    room = 0.1 * (vmax - vmin)
    inner = [t for t in nice_ticks(vmin, vmax, target) if vmin + room < t < vmax - room]
    ends = [(vmin, _format_limit(vmin)), (vmax, _format_limit(vmax))]
    return [ends[0], *((t, _format_tick(t, step)) for t in inner), ends[1]]


def _y_axis(
    low: float, high: float, left: float, right: float, sy: _Scale, target: int = 4
) -> list[str]:
    """Return SVG grid lines and labels of a y axis (about ``target`` ticks)."""
    step = _tick_step(low, high, target)
    out = []
    for tick in nice_ticks(low, high, target):
        y = _num(sy(tick))
        out.append(
            f'<line x1="{_num(left)}" y1="{y}" x2="{_num(right)}" y2="{y}" '
            'stroke="#e3e3e3" stroke-width="0.8"/>'
        )
        out.append(
            f'<text x="{_num(left - 5)}" y="{y}" dy="0.35em" text-anchor="end" '
            f'fill="#444">{escape_text(_format_tick(tick, step))}</text>'
        )
    return out


def _x_axis(x_high: float, bottom: float, sx: _Scale) -> list[str]:
    step = max(1.0, _tick_step(0.0, x_high, 8))
    out = []
    for tick in nice_ticks(0.0, x_high, 8):
        if tick != int(tick):
            continue
        x = _num(sx(tick))
        out.append(
            f'<line x1="{x}" y1="{_num(bottom)}" x2="{x}" y2="{_num(bottom + 4)}" '
            'stroke="#888" stroke-width="0.8"/>'
        )
        out.append(
            f'<text x="{x}" y="{_num(bottom + 15)}" text-anchor="middle" '
            f'fill="#444">{escape_text(_format_tick(tick, step))}</text>'
        )
    return out


def _threshold_line(
    threshold: float, label: str | None, left: float, right: float, sy: _Scale
) -> list[str]:
    y = _num(sy(float(threshold)))
    text = label if label is not None else f"threshold {float(threshold):g}"
    return [
        f'<line x1="{_num(left)}" y1="{y}" x2="{_num(right)}" y2="{y}" '
        f'stroke="{HIGHLIGHT_COLOR}" stroke-width="1.2" stroke-dasharray="5 3"/>',
        f'<text x="{_num(right - 4)}" y="{y}" dy="-0.4em" text-anchor="end" '
        f'fill="{HIGHLIGHT_COLOR}">{escape_text(text)}</text>',
    ]


def _legend(names: list[str], right: float, top: float) -> list[str]:
    """Lay out legend entries right-aligned in one row just above the plot area."""
    out = []
    x = right
    for number in reversed(range(len(names))):
        label = names[number]
        color = PLOT_COLORS[number % len(PLOT_COLORS)]
        text_w = 6.2 * len(label)
        x -= text_w
        out.append(
            f'<text x="{_num(x)}" y="{_num(top - 6)}" fill="{INK}">{escape_text(label)}</text>'
        )
        out.append(
            f'<line x1="{_num(x - 18)}" y1="{_num(top - 10)}" x2="{_num(x - 4)}" '
            f'y2="{_num(top - 10)}" stroke="{color}" stroke-width="2.5"/>'
        )
        x -= 30
    return out


# --------------------------------------------------------------------------------------------
# Colour bar and line plots
# --------------------------------------------------------------------------------------------


def colorbar(
    vmin: float,
    vmax: float,
    cmap: str | np.ndarray = "perfusion",
    label: str = "",
    *,
    width: int = 360,
    height: int = 58,
    n_ticks: int = 5,
) -> str:
    """Return a horizontal colour bar as inline SVG.

    Parameters
    ----------
    vmin, vmax : float
        Limits of the colour map (as used for the mosaic).
    cmap : str or ndarray, optional
        Colour map.
    label : str, optional
        Quantity and units, e.g. ``"CBF (mL/100 g/min)"``; escaped.
    width, height : int, optional
        Size in pixels.
    n_ticks : int, optional
        Approximate number of tick labels.

    Returns
    -------
    str
        An ``<svg>`` element; values beyond the limits are shown in the end colours.
    """
    if not vmax > vmin:
        raise ValueError(f"vmax ({vmax}) must be greater than vmin ({vmin})")
    lut = get_cmap(cmap)
    left, right, bar_top, bar_h = 12.0, width - 12.0, 4.0, 16.0
    n_steps = 128
    step_w = (right - left) / n_steps
    parts = [_SVG_OPEN.format(w=width, h=height, cls="aslmig-colorbar")]
    parts.append(f"<title>{escape_text(label or 'colour scale')}</title>")
    parts.append('<g shape-rendering="crispEdges">')
    for i in range(n_steps):
        r, g, b = lut[round(i / (n_steps - 1) * (len(lut) - 1))]
        parts.append(
            f'<rect x="{_num(left + i * step_w)}" y="{_num(bar_top)}" '
            f'width="{_num(step_w + 0.6)}" height="{_num(bar_h)}" fill="rgb({r},{g},{b})"/>'
        )
    parts.append("</g>")
    parts.append(
        f'<rect x="{_num(left)}" y="{_num(bar_top)}" width="{_num(right - left)}" '
        f'height="{_num(bar_h)}" fill="none" stroke="#444" stroke-width="0.8"/>'
    )
    for tick, text in _colorbar_ticks(vmin, vmax, n_ticks):
        x = left + (tick - vmin) / (vmax - vmin) * (right - left)
        y0 = bar_top + bar_h
        parts.append(
            f'<line x1="{_num(x)}" y1="{_num(y0)}" x2="{_num(x)}" y2="{_num(y0 + 4)}" '
            'stroke="#444" stroke-width="0.8"/>'
        )
        parts.append(
            f'<text x="{_num(x)}" y="{_num(y0 + 15)}" text-anchor="middle" '
            f'fill="{INK}">{escape_text(text)}</text>'
        )
    if label:
        parts.append(
            f'<text x="{_num(width / 2)}" y="{_num(height - 4)}" text-anchor="middle" '
            f'fill="{INK}" font-weight="bold">{escape_text(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _series_arrays(series: Mapping[str, ArrayLike]) -> dict[str, np.ndarray]:
    arrays = {}
    for name, values in series.items():
        array = np.asarray(values, dtype=float)
        if array.ndim != 1:
            raise ValueError(f"series {name!r} must be one-dimensional, got shape {array.shape}")
        arrays[str(name)] = array
    return arrays


def _segments(values: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split a series at non-finite values into runs of (index, value)."""
    index = np.arange(values.size)
    finite = np.isfinite(values)
    runs = np.split(index[finite], np.flatnonzero(np.diff(index[finite]) > 1) + 1)
    return [(run, values[run]) for run in runs if run.size]


def line_plot_svg(
    series: Mapping[str, ArrayLike],
    xlabel: str = "volume",
    ylabel: str = "",
    threshold: float | None = None,
    *,
    title: str | None = None,
    threshold_label: str | None = None,
    width: int = 720,
    height: int = 220,
) -> str:
    """Return a line plot of one or more series as inline SVG (motion parameters, FD).

    Parameters
    ----------
    series : Mapping[str, array_like]
        Name -> 1-D values, plotted against their index; non-finite values leave gaps.
    xlabel, ylabel : str, optional
        Axis labels; escaped.
    threshold : float, optional
        A horizontal dashed line (e.g. the FD threshold in mm).
    title : str, optional
        Title above the plot; escaped.
    threshold_label : str, optional
        Text next to the threshold line (default ``"threshold <value>"``); escaped.
    width, height : int, optional
        Size in pixels.

    Returns
    -------
    str
        An ``<svg>`` element with axes, ticks, a legend and the lines.
    """
    arrays = _series_arrays(series)
    top = 40.0 if title else 24.0
    left, right, bottom = 58.0, width - 14.0, height - 36.0
    extra = np.array([] if threshold is None else [float(threshold)])
    low, high = _data_range(np.concatenate([*arrays.values(), extra]), 0.05, floor_at_zero=True)
    length = max((a.size for a in arrays.values()), default=0)
    x_high = float(max(length - 1, 1))

    def sx(x: float) -> float:
        return left + x / x_high * (right - left)

    def sy(y: float) -> float:
        return bottom - (y - low) / (high - low) * (bottom - top)

    parts = [_SVG_OPEN.format(w=width, h=height, cls="aslmig-plot")]
    parts.append(f"<title>{escape_text(title or ylabel or 'plot')}</title>")
    if title:
        parts.append(
            f'<text x="{_num(left)}" y="16" font-size="13" font-weight="bold" '
            f'fill="{INK}">{escape_text(title)}</text>'
        )
    parts.extend(_y_axis(low, high, left, right, sy))
    parts.extend(_x_axis(x_high, bottom, sx))
    parts.append(
        f'<rect x="{_num(left)}" y="{_num(top)}" width="{_num(right - left)}" '
        f'height="{_num(bottom - top)}" fill="none" stroke="#888" stroke-width="0.8"/>'
    )
    if threshold is not None:
        parts.extend(_threshold_line(threshold, threshold_label, left, right, sy))
    for number, values in enumerate(arrays.values()):
        color = PLOT_COLORS[number % len(PLOT_COLORS)]
        for xs, ys in _segments(values):
            if xs.size == 1:
                parts.append(
                    f'<circle cx="{_num(sx(xs[0]))}" cy="{_num(sy(ys[0]))}" r="1.8" '
                    f'fill="{color}"/>'
                )
                continue
            points = " ".join(f"{_num(sx(x))},{_num(sy(y))}" for x, y in zip(xs, ys, strict=True))
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{color}" '
                'stroke-width="1.4" stroke-linejoin="round"/>'
            )
    if not any(np.isfinite(a).any() for a in arrays.values()):
        parts.append(
            f'<text x="{_num((left + right) / 2)}" y="{_num((top + bottom) / 2)}" '
            'text-anchor="middle" fill="#888">no data</text>'
        )
    parts.extend(_legend(list(arrays), right, top))
    parts.append(
        f'<text x="{_num((left + right) / 2)}" y="{_num(height - 4)}" '
        f'text-anchor="middle" fill="{INK}">{escape_text(xlabel)}</text>'
    )
    parts.append(
        f'<text transform="translate(14 {_num((top + bottom) / 2)}) rotate(-90)" '
        f'text-anchor="middle" fill="{INK}">{escape_text(ylabel)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# Group plots: box/strip, paired lines, forest
# --------------------------------------------------------------------------------------------


def _frame(title: str, ylabel: str, width: int, height: int, cls: str) -> list[str]:
    parts = [_SVG_OPEN.format(w=width, h=height, cls=cls), f"<title>{escape_text(title)}</title>"]
    parts.append(
        f'<text x="8" y="16" font-size="12" font-weight="bold" fill="{INK}">'
        f"{escape_text(title)}</text>"
    )
    if ylabel:
        parts.append(
            f'<text transform="translate(13 {_num(height / 2)}) rotate(-90)" '
            f'text-anchor="middle" fill="{INK}">{escape_text(ylabel)}</text>'
        )
    return parts


def jitter(count: int) -> np.ndarray:
    """Return ``count`` deterministic offsets in ``[-0.5, 0.5)`` (golden-ratio sequence)."""
    return np.mod(np.arange(1, count + 1) * _GOLDEN, 1.0) - 0.5


def _box_parts(values: np.ndarray, centre: float, half: float, color: str, sy) -> list[str]:
    q1, median, q3 = np.percentile(values, [25, 50, 75])
    iqr = q3 - q1
    inside = values[(values >= q1 - 1.5 * iqr) & (values <= q3 + 1.5 * iqr)]
    low, high = float(inside.min()), float(inside.max())
    x0, x1 = _num(centre - half), _num(centre + half)
    return [
        f'<line x1="{_num(centre)}" y1="{_num(sy(low))}" x2="{_num(centre)}" '
        f'y2="{_num(sy(q1))}" stroke="{color}" stroke-width="1"/>',
        f'<line x1="{_num(centre)}" y1="{_num(sy(q3))}" x2="{_num(centre)}" '
        f'y2="{_num(sy(high))}" stroke="{color}" stroke-width="1"/>',
        f'<rect x="{x0}" y="{_num(sy(q3))}" width="{_num(2 * half)}" '
        f'height="{_num(max(sy(q1) - sy(q3), 0.5))}" fill="{color}" fill-opacity="0.15" '
        f'stroke="{color}" stroke-width="1.2"/>',
        f'<line x1="{x0}" y1="{_num(sy(median))}" x2="{x1}" y2="{_num(sy(median))}" '
        f'stroke="{color}" stroke-width="2"/>',
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
    low, high = _data_range(every, 0.06)

    def sy(y: float) -> float:
        return bottom - (y - low) / (high - low) * (bottom - top)

    parts = _frame(title, ylabel, width, height, "aslmig-boxplot")
    parts.extend(_y_axis(low, high, left, right, sy, target=5))
    slot = (right - left) / max(1, len(names))
    for number, name in enumerate(names):
        color = PLOT_COLORS[number % len(PLOT_COLORS)]
        centre, half = left + slot * (number + 0.5), min(30.0, slot * 0.3)
        points = arrays[name]
        values = np.array([v for _, v in points])
        if values.size:
            parts.extend(_box_parts(values, centre, half, color, sy))
        for (label, value), offset in zip(points, jitter(len(points)), strict=True):
            parts.append(
                f'<circle cx="{_num(centre + offset * 1.4 * half)}" cy="{_num(sy(value))}" r="2.6" '
                f'fill="{color}" fill-opacity="0.75"><title>{escape_text(label)}: '
                f"{escape_text(format_number(value, 4))}</title></circle>"
            )
        parts.append(
            f'<text x="{_num(centre)}" y="{_num(bottom + 16)}" text-anchor="middle" '
            f'fill="{INK}">{escape_text(name)} (n={values.size})</text>'
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
    low, high = _data_range(values.ravel(), 0.06)
    x_a, x_b = left + (right - left) * 0.25, left + (right - left) * 0.75

    def sy(y: float) -> float:
        return bottom - (y - low) / (high - low) * (bottom - top)

    parts = _frame(title, ylabel, width, height, "aslmig-paired")
    parts.extend(_y_axis(low, high, left, right, sy, target=5))
    for subject, (a, b) in pairs.items():
        if not (math.isfinite(float(a)) and math.isfinite(float(b))):
            continue
        color = HIGHLIGHT_COLOR if b < a else PLOT_COLORS[0]
        parts.append(
            f'<polyline points="{_num(x_a)},{_num(sy(a))} {_num(x_b)},{_num(sy(b))}" '
            f'fill="none" stroke="{color}" stroke-opacity="0.6" stroke-width="1.2">'
            f"<title>{escape_text(subject)}: {escape_text(format_number(a, 4))} -&gt; "
            f"{escape_text(format_number(b, 4))}</title></polyline>"
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
            f'fill="{INK}">{escape_text(name)}</text>'
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
    low, high = _data_range(np.append(limits, 0.0), 0.06)
    bottom = top + row_h * max(1, len(rows))

    def sx(x: float) -> float:
        return left + (min(max(x, low), high) - low) / (high - low) * (right - left)

    parts = [_SVG_OPEN.format(w=width, h=height, cls="aslmig-forest")]
    parts.append(f"<title>{escape_text(title or 'forest plot')}</title>")
    parts.append(
        f'<text x="8" y="16" font-size="12" font-weight="bold" fill="{INK}">'
        f"{escape_text(title)}</text>"
    )
    for tick in nice_ticks(low, high, 6):
        x = _num(sx(tick))
        parts.append(
            f'<line x1="{x}" y1="{_num(top)}" x2="{x}" y2="{_num(bottom)}" stroke="#e3e3e3" '
            'stroke-width="0.8"/>'
        )
        parts.append(
            f'<text x="{x}" y="{_num(bottom + 14)}" text-anchor="middle" fill="#444">'
            f"{escape_text(f'{tick:g}')}</text>"
        )
    parts.append(
        f'<line x1="{_num(sx(0.0))}" y1="{_num(top - 4)}" x2="{_num(sx(0.0))}" '
        f'y2="{_num(bottom)}" stroke="{INK}" stroke-width="1" stroke-dasharray="4 3"/>'
    )
    for number, row in enumerate(rows):
        parts.append(_forest_row(row, top + row_h * (number + 0.5), sx, left, right))
    parts.append(
        f'<text x="{_num((left + right) / 2)}" y="{_num(bottom + 30)}" text-anchor="middle" '
        f'fill="{INK}">{escape_text(xlabel)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def _forest_row(row: ForestRow, y: float, sx, left: float, right: float) -> str:
    color = HIGHLIGHT_COLOR if row.highlight else INK
    weight = ' font-weight="bold"' if row.highlight else ""
    finite = all(math.isfinite(float(v)) for v in (row.estimate, row.low, row.high))
    parts = [
        '<g class="forest-row">',
        f'<text x="{_num(left - 8)}" y="{_num(y)}" dy="0.35em" text-anchor="end" '
        f'fill="{color}"{weight}>{escape_text(row.label)}</text>',
    ]
    if finite:
        parts.append(
            f'<line x1="{_num(sx(row.low))}" y1="{_num(y)}" x2="{_num(sx(row.high))}" '
            f'y2="{_num(y)}" stroke="{color}" stroke-width="1.4"/>'
        )
        parts.append(
            f'<rect x="{_num(sx(row.estimate) - 3.5)}" y="{_num(y - 3.5)}" width="7" height="7" '
            f'fill="{color}"/>'
        )
        text = (
            f"{format_number(row.estimate, 2)} [{format_number(row.low, 2)}, "
            f"{format_number(row.high, 2)}]"
        )
    else:
        text = "n/a"
    parts.append(
        f'<text x="{_num(right + 10)}" y="{_num(y)}" dy="0.35em" fill="{color}"{weight}>'
        f"{escape_text(text)}</text>"
    )
    parts.append("</g>")
    return "".join(parts)
