"""The participant report: one self-contained, offline HTML file per participant.

Figures are embedded as PNG ``data:`` URIs and SVG is inline; the page has a small embedded
style sheet, no script, and a Content-Security-Policy that forbids loading anything from
outside the file. Every piece of text that may come from input data (participant and run
names, metadata values, table cells, warnings, methods text) is HTML-escaped here. SVG figures
must come from :mod:`aslmig.reports.figures`; they are checked against an allow-list of
elements and attributes before they are embedded.
"""

from __future__ import annotations

import html
import math
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from aslmig.__about__ import __version__
from aslmig.reports.png import data_uri, encode_png

#: SVG elements allowed in a report (what :mod:`aslmig.reports.figures` writes).
SVG_ELEMENTS = frozenset(
    {"svg", "g", "title", "desc", "rect", "line", "polyline", "path", "circle", "text", "tspan"}
)

CSS = """
:root { --ink: #1d2329; --muted: #5c6770; --rule: #d8dde2; --accent: #1c5d99;
        --warn-bg: #fff4e0; --warn-rule: #e8a33d; }
* { box-sizing: border-box; }
body { margin: 0; color: var(--ink); background: #f6f7f9;
       font: 15px/1.5 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; }
header { background: #1d2b3a; color: #fff; padding: 18px 32px; }
header h1 { margin: 0; font-size: 22px; font-weight: 600; }
header p { margin: 4px 0 0; color: #c5d0db; font-size: 13px; }
nav { background: #fff; border-bottom: 1px solid var(--rule); padding: 8px 32px;
      position: sticky; top: 0; z-index: 1; font-size: 14px; }
nav a { color: var(--accent); margin-right: 18px; text-decoration: none; }
nav a:hover { text-decoration: underline; }
main { max-width: 1180px; margin: 0 auto; padding: 8px 32px 40px; }
section { scroll-margin-top: 48px; }
section.card { background: #fff; border: 1px solid var(--rule); border-radius: 6px;
               padding: 4px 24px 20px; margin: 22px 0; }
h2 { font-size: 20px; margin: 18px 0 8px; border-bottom: 2px solid var(--accent);
     padding-bottom: 4px; word-break: break-all; }
h3 { font-size: 16px; margin: 22px 0 8px; color: var(--accent); }
figure { margin: 8px 0 14px; }
figure img { display: block; max-width: 100%; height: auto; image-rendering: pixelated;
             border-radius: 3px; background: #000; }
figure svg { display: block; max-width: 100%; height: auto; }
figcaption { font-size: 13px; color: var(--muted); margin-top: 4px; }
table { border-collapse: collapse; font-size: 13.5px; margin: 6px 0 10px; }
th, td { border-bottom: 1px solid var(--rule); padding: 4px 12px 4px 6px; text-align: left;
         vertical-align: top; }
th { background: #eef1f4; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tbody tr:nth-child(even) { background: #fafbfc; }
.table-wrap { max-width: 100%; overflow-x: auto; }
.warnings { background: var(--warn-bg); border-left: 4px solid var(--warn-rule);
            padding: 8px 14px; margin: 12px 0; border-radius: 3px; }
.warnings h3 { color: #8a5300; margin: 2px 0 4px; }
.warnings ul { margin: 0; padding-left: 20px; }
.ok { color: #2b7a3d; }
.muted { color: var(--muted); }
.methods p { max-width: 900px; }
ol.refs { font-size: 13px; color: #333; max-width: 900px; padding-left: 28px; }
footer { text-align: center; color: var(--muted); font-size: 12px; padding: 16px; }
"""
#: Forbids scripts and every load that is not the file itself or a data: image.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _check_rgb(image: Any, name: str) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{name} must be an (H, W, 3) uint8 RGB image, got {array.shape}")
    return array


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
        (``on*``) attribute, or any ``href``.
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


@dataclass(frozen=True, eq=False)
class RunReport:
    """Everything the participant report shows for one ASL run.

    Attributes
    ----------
    name : str
        Run label shown as the section title (e.g. ``"ses-1_run-1"``); escaped.
    cbf_mosaic : ndarray of uint8, shape (H, W, 3)
        CBF mosaic (:func:`aslmig.reports.figures.mosaic`).
    cbf_colorbar : str
        Its colour bar, SVG (:func:`aslmig.reports.figures.colorbar`).
    att_mosaic : ndarray of uint8, optional
        ATT mosaic (multi-delay data).
    att_colorbar : str, optional
        Its colour bar, SVG.
    registration : Mapping[str, ndarray]
        Caption -> overlay RGB (:func:`aslmig.reports.figures.edge_overlay`), e.g.
        ``{"ASL reference edges on T1w": ..., "T1w edges on MNI152NLin2009cAsym": ...}``.
    motion_svgs : tuple of str
        Motion plots, SVG (:func:`aslmig.reports.figures.line_plot_svg`), e.g. the six
        motion parameters and the framewise displacement.
    qc : Mapping[str, Any]
        Metric name -> value, or -> ``(value, unit)``.
    rois : pandas.DataFrame or sequence of mappings, optional
        Regional table; every column is shown.
    roi_overlay : ndarray of uint8, optional
        The regions' outlines over the participant's template-space CBF.
    roi_caption : str
        Caption of ``roi_overlay``.
    methods : str
        Methods paragraph (:func:`aslmig.reports.boilerplate.methods_text`), plain text.
    references : tuple of str
        Its references; entry ``n - 1`` is citation ``[n]``.
    warnings : tuple of str
        Problems to bring to the reader's attention, shown first.
    orientation_note : str
        Caption of the mosaics stating the displayed orientation.
    """

    name: str
    cbf_mosaic: np.ndarray
    cbf_colorbar: str
    att_mosaic: np.ndarray | None = None
    att_colorbar: str | None = None
    registration: Mapping[str, np.ndarray] = field(default_factory=dict)
    motion_svgs: tuple[str, ...] = ()
    qc: Mapping[str, Any] = field(default_factory=dict)
    rois: Any = None
    roi_overlay: np.ndarray | None = None
    roi_caption: str = ""
    methods: str = ""
    references: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    orientation_note: str = (
        "Axial slices, inferior to superior; anterior is up and the subject's left is on the "
        "image's left (neurological convention)."
    )

    def __post_init__(self) -> None:
        _check_rgb(self.cbf_mosaic, "cbf_mosaic")
        check_svg(self.cbf_colorbar, "cbf_colorbar")
        if self.att_mosaic is not None:
            _check_rgb(self.att_mosaic, "att_mosaic")
        if self.att_colorbar is not None:
            check_svg(self.att_colorbar, "att_colorbar")
        if self.roi_overlay is not None:
            _check_rgb(self.roi_overlay, "roi_overlay")
        for caption, image in self.registration.items():
            _check_rgb(image, f"registration[{caption!r}]")
        object.__setattr__(self, "registration", MappingProxyType(dict(self.registration)))
        object.__setattr__(self, "qc", MappingProxyType(dict(self.qc)))
        for attribute in ("motion_svgs", "references", "warnings"):
            value = getattr(self, attribute)
            if isinstance(value, str):
                raise TypeError(f"RunReport.{attribute} must be a sequence of strings, not a str")
            object.__setattr__(self, attribute, tuple(str(v) for v in value))
        for number, svg in enumerate(self.motion_svgs):
            check_svg(svg, f"motion_svgs[{number}]")


# --------------------------------------------------------------------------------------------
# HTML pieces
# --------------------------------------------------------------------------------------------


def _format_value(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "n/a" if not math.isfinite(float(value)) else f"{float(value):.4g}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def _cell(value: Any) -> str:
    css = ' class="num"' if _is_number(value) else ""
    return f"<td{css}>{_esc(_format_value(value))}</td>"


def _img(image: np.ndarray, alt: str) -> str:
    return f'<img src="{data_uri(encode_png(image))}" alt="{_esc(alt)}">'


def _figure(body: str, caption: str = "") -> str:
    cap = f"<figcaption>{_esc(caption)}</figcaption>" if caption else ""
    return f"<figure>{body}{cap}</figure>"


def _warnings_html(warnings: Sequence[str]) -> str:
    if not warnings:
        return '<p class="ok">No warnings.</p>'
    items = "".join(f"<li>{_esc(w)}</li>" for w in warnings)
    return f'<div class="warnings"><h3>Warnings</h3><ul>{items}</ul></div>'


def _qc_html(qc: Mapping[str, Any]) -> str:
    if not qc:
        return '<p class="muted">No quality-control metrics.</p>'
    rows = []
    for name, entry in qc.items():
        value, unit = entry if isinstance(entry, tuple) and len(entry) == 2 else (entry, "")
        rows.append(
            f'<tr><th scope="row">{_esc(name)}</th>{_cell(value)}<td>{_esc(unit or "")}</td></tr>'
        )
    head = "<thead><tr><th>metric</th><th>value</th><th>unit</th></tr></thead>"
    table = f'<table class="qc">{head}<tbody>{"".join(rows)}</tbody></table>'
    return f'<div class="table-wrap">{table}</div>'


def _table_rows(table: Any) -> tuple[list[str], list[list[Any]]]:
    """Return column names and rows of a DataFrame or a sequence of mappings."""
    if hasattr(table, "columns") and hasattr(table, "itertuples"):
        columns = [str(c) for c in table.columns]
        return columns, [list(row) for row in table.itertuples(index=False, name=None)]
    records = list(table)
    columns: list[str] = []
    for record in records:
        if not isinstance(record, Mapping):
            raise TypeError("ROI table rows must be mappings (column -> value) or a DataFrame")
        columns.extend(str(k) for k in record if str(k) not in columns)
    return columns, [[_get(record, c) for c in columns] for record in records]


def _get(record: Mapping[Any, Any], column: str) -> Any:
    for key, value in record.items():
        if str(key) == column:
            return value
    return None


def _roi_html(run: RunReport) -> str:
    if run.rois is None:
        return ""
    overlay = (
        _figure(_img(run.roi_overlay, "Regions over CBF"), run.roi_caption)
        if run.roi_overlay is not None
        else ""
    )
    columns, rows = _table_rows(run.rois)
    if not rows:
        return f'<h3>Regional CBF</h3>{overlay}<p class="muted">The regional table is empty.</p>'
    head = "".join(f"<th>{_esc(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return (
        f'<h3>Regional CBF</h3>{overlay}<div class="table-wrap"><table class="rois">'
        f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
    )


def _maps_html(run: RunReport) -> str:
    parts = [
        "<h3>CBF</h3>",
        _figure(_img(run.cbf_mosaic, f"CBF of {run.name}"), run.orientation_note),
        _figure(run.cbf_colorbar),
    ]
    if run.att_mosaic is not None:
        parts += [
            "<h3>Arterial transit time</h3>",
            _figure(_img(run.att_mosaic, f"ATT of {run.name}"), run.orientation_note),
        ]
        if run.att_colorbar is not None:
            parts.append(_figure(run.att_colorbar))
    return "".join(parts)


def _registration_html(run: RunReport) -> str:
    if not run.registration:
        return ""
    figures = "".join(
        _figure(_img(image, caption), caption) for caption, image in run.registration.items()
    )
    return f"<h3>Registration</h3>{figures}"


def _motion_html(run: RunReport) -> str:
    if not run.motion_svgs:
        return ""
    return "<h3>Head motion</h3>" + "".join(_figure(svg) for svg in run.motion_svgs)


def _methods_html(methods: str, references: Sequence[str]) -> str:
    if not methods:
        return ""
    refs = "".join(f"<li>{_esc(r)}</li>" for r in references)
    ref_list = f'<ol class="refs">{refs}</ol>' if refs else ""
    return f'<div class="methods"><p>{_esc(methods)}</p>{ref_list}</div>'


def _run_html(number: int, run: RunReport, show_methods: bool) -> str:
    parts = [
        f'<section class="card run" id="run-{number}">',
        f"<h2>{_esc(run.name)}</h2>",
        _warnings_html(run.warnings),
        _maps_html(run),
        _registration_html(run),
        _motion_html(run),
        "<h3>Quality control</h3>",
        _qc_html(run.qc),
        _roi_html(run),
    ]
    if show_methods and run.methods:
        parts += ["<h3>Methods</h3>", _methods_html(run.methods, run.references)]
    parts.append("</section>")
    return "".join(parts)


def _summary_html(runs: Sequence[RunReport]) -> str:
    rows = []
    for number, run in enumerate(runs):
        count = len(run.warnings)
        status = f"{count} warning{'s' if count != 1 else ''}" if count else "no warnings"
        rows.append(
            f'<tr><td><a href="#run-{number}">{_esc(run.name)}</a></td><td>{_esc(status)}</td></tr>'
        )
    if not rows:
        return '<p class="muted">No ASL runs were processed for this participant.</p>'
    return (
        '<section id="summary"><h2>Summary</h2><table><thead><tr><th>run</th><th>status</th>'
        f"</tr></thead><tbody>{''.join(rows)}</tbody></table></section>"
    )


def _shared_methods(runs: Sequence[RunReport]) -> tuple[str, tuple[str, ...]] | None:
    """Return the methods shared by all runs (shown once), or None if they differ."""
    texts = {(run.methods, run.references) for run in runs if run.methods}
    if len(texts) == 1 and all(run.methods for run in runs):
        return next(iter(texts))
    return None


def _nav_html(runs: Sequence[RunReport], shared: bool) -> str:
    links = ['<a href="#summary">Summary</a>']
    links += [f'<a href="#run-{n}">{_esc(run.name)}</a>' for n, run in enumerate(runs)]
    if shared:
        links.append('<a href="#methods">Methods</a>')
    return f"<nav>{''.join(links)}</nav>"


def build_participant_html(subject: str, runs: Sequence[RunReport]) -> str:
    """Return the participant report as one HTML string.

    Parameters
    ----------
    subject : str
        Participant label (e.g. ``"sub-01"``); escaped.
    runs : sequence of RunReport
        The runs, in display order.

    Returns
    -------
    str
        A complete, self-contained HTML5 document.
    """
    shared = _shared_methods(runs)
    title = f"aslmig: {subject}"
    body = [
        f"<header><h1>{_esc(subject)}</h1>"
        f"<p>ASL perfusion report, aslmig {_esc(__version__)}</p></header>",
        _nav_html(runs, shared is not None),
        "<main>",
        _summary_html(runs),
        *(_run_html(n, run, shared is None) for n, run in enumerate(runs)),
    ]
    if shared is not None:
        body.append(
            f'<section class="card" id="methods"><h2>Methods</h2>{_methods_html(*shared)}</section>'
        )
    body.append("</main>")
    body.append(
        f"<footer>Generated by aslmig {_esc(__version__)}. This file is self-contained "
        "and can be opened offline.</footer>"
    )
    return (
        '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta http-equiv="Content-Security-Policy" content="{CONTENT_SECURITY_POLICY}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_esc(title)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def render_participant_report(
    subject: str, runs: Sequence[RunReport], out_file: Path | str
) -> Path:
    """Write the participant report to ``out_file``.

    Parameters
    ----------
    subject : str
        Participant label (e.g. ``"sub-01"``); escaped.
    runs : sequence of RunReport
        The runs, in display order.
    out_file : Path or str
        Destination, e.g. ``OUTPUT_DIR/sub-01.html``; parent folders are created.

    Returns
    -------
    Path
        ``out_file``.
    """
    document = build_participant_html(subject, list(runs))
    out_path = Path(out_file)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    partial = out_path.with_name(out_path.name + ".part")
    partial.write_text(document, encoding="utf-8")
    partial.replace(out_path)
    return out_path
