"""The participant report: one self-contained, offline HTML file per participant.

The page is the template ``participant.html`` (:mod:`aslmig.reports.templating`): figures are
embedded as PNG ``data:`` URIs and SVG is inline, every piece of text that may come from input
data (participant and run names, metadata values, table cells, warnings, methods text) is
escaped by the template engine, and SVG figures are checked against an allow-list
(:func:`aslmig.reports.svg.check_svg`) when a :class:`RunReport` is made and again when
embedded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

import numpy as np

from aslmig.bids.derivatives import atomic_write
from aslmig.reports.svg import check_svg
from aslmig.reports.templating import render


def _check_rgb(image: Any, name: str) -> np.ndarray:
    array = np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"{name} must be an (H, W, 3) uint8 RGB image, got {array.shape}")
    return array


@dataclass(frozen=True, eq=False)
class RunReport:
    """Everything the participant report shows for one ASL run.

    Attributes
    ----------
    name : str
        Run label shown as the section title (e.g. ``"ses-1_run-1"``); escaped.
    cbf_mosaic : ndarray of uint8, shape (H, W, 3)
        CBF mosaic (:func:`aslmig.reports.mosaics.mosaic`).
    cbf_colorbar : str
        Its colour bar, SVG (:func:`aslmig.reports.svg.colorbar`).
    att_mosaic : ndarray of uint8, optional
        ATT mosaic (multi-delay data).
    att_colorbar : str, optional
        Its colour bar, SVG.
    registration : Mapping[str, ndarray]
        Caption -> overlay RGB (:func:`aslmig.reports.mosaics.edge_overlay`), e.g.
        ``{"ASL reference edges on T1w": ..., "T1w edges on MNI152NLin2009cAsym": ...}``.
    motion_svgs : tuple of str
        Motion plots, SVG (:func:`aslmig.reports.svg.line_plot_svg`), e.g. the six
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


def _qc_rows(qc: Mapping[str, Any]) -> list[tuple[str, Any, str]]:
    """Return (metric, value, unit) rows; an entry is a value or a ``(value, unit)`` pair."""
    rows = []
    for name, entry in qc.items():
        value, unit = entry if isinstance(entry, tuple) and len(entry) == 2 else (entry, "")
        rows.append((str(name), value, str(unit or "")))
    return rows


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


def _shared_methods(runs: Sequence[RunReport]) -> tuple[str, tuple[str, ...]] | None:
    """Return the methods shared by all runs (shown once), or None if they differ."""
    texts = {(run.methods, run.references) for run in runs if run.methods}
    if len(texts) == 1 and all(run.methods for run in runs):
        return next(iter(texts))
    return None


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
    runs = list(runs)
    return render(
        "participant.html",
        title=f"aslmig: {subject}",
        heading=subject,
        subtitle="ASL perfusion report",
        runs=runs,
        shared_methods=_shared_methods(runs),
        qc_rows=_qc_rows,
        table_rows=_table_rows,
    )


def render_participant_report(
    subject: str, runs: Sequence[RunReport], out_file: Path | str
) -> Path:
    """Write the participant report to ``out_file``, atomically.

    Parameters
    ----------
    subject : str
        Participant label (e.g. ``"sub-01"``); escaped.
    runs : sequence of RunReport
        The runs, in display order.
    out_file : Path or str
        Destination, e.g. ``OUTPUT_DIR/sub-01.html``; parent folders are created. Nothing
        is left behind if rendering or writing fails.

    Returns
    -------
    Path
        ``out_file``.
    """
    document = build_participant_html(subject, runs)
    out_path = Path(out_file)
    atomic_write(out_path, lambda temporary: temporary.write_text(document, encoding="utf-8"))
    return out_path
