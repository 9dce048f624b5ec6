"""One run's section of the participant report, built from the files the run wrote.

:class:`RunSummary` lists what the report needs from one ASL run (its output files, the
methods parameters and the warnings); :func:`run_report` turns it into the figures, tables and
text of a :class:`~aslmig.reports.participant.RunReport`. The summary is saved as JSON
between the run's workflow and the participant's report node.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import nibabel as nb
import numpy as np
import pandas as pd

from aslmig.reports.boilerplate import MethodsParameters, methods_text
from aslmig.reports.mosaics import (
    EDGE_COLOR,
    canonical_volume,
    contour_overlay,
    edge_overlay,
    mosaic,
)
from aslmig.reports.participant import RunReport
from aslmig.reports.svg import colorbar, line_plot_svg

#: Display range of the CBF mosaics, mL/100 g/min.
CBF_RANGE = (0.0, 100.0)
#: Display range of the ATT mosaics, s.
ATT_RANGE = (0.5, 2.5)
#: Units of the QC metrics shown in the report.
QC_UNITS = {
    "mean_gm_cbf": "mL/100 g/min",
    "mean_wm_cbf": "mL/100 g/min",
    "negative_gm_cbf_percent": "%",
    "gm_spatial_cov_percent": "%",
    "mean_fd_mm": "mm",
    "max_fd_mm": "mm",
}
#: Columns of the regional table shown in the report (when present).
REGION_COLUMNS = (
    "roi",
    "n_voxels",
    "coverage",
    "mean",
    "mean_se",
    "gm_restricted_mean",
    "relative_to_reference",
    "asymmetry_index",
    "asymmetry_ci_low",
    "asymmetry_ci_high",
    "asymmetry_note",
    "status",
)

#: Colour of the grey/white border (WM probability 0.5) in the registration figures.
WHITE_BORDER_COLOR = EDGE_COLOR
#: Colour of the outer grey-matter border (GM + WM probability 0.5).
BRAIN_BORDER_COLOR = (0, 220, 255)
#: Slicing axis and name of the three views of the registration figures.
VIEWS = ((2, "axial"), (1, "coronal"), (0, "sagittal"))
#: Slices per view in the registration figures.
REGISTRATION_SLICES = 6

_PATH_FIELDS = (
    "cbf", "mask", "anat_in_asl", "confounds", "qc", "att", "cbf_std", "region_atlas",
    "reference", "gm", "wm",
)  # fmt: skip


@dataclass(frozen=True)
class RunSummary:
    """What the participant report needs from one ASL run.

    Attributes
    ----------
    name : str
        Run label, e.g. ``"sub-01_ses-1"``.
    cbf, mask : Path
        Native-space CBF map and brain mask.
    anat_in_asl : Path
        The T1w (or the template) resampled onto the ASL grid, under the mask's outline.
    anat_name : str
        What ``anat_in_asl`` is, for the caption (``"T1w"`` or ``"<space> template"``).
    confounds : Path
        Confounds table (motion parameters, framewise displacement).
    qc : Path
        QC metrics (JSON).
    methods : MethodsParameters
        How the run was processed.
    att : Path, optional
        Native-space ATT map (multi-delay data).
    warnings : tuple of str
        Problems to show first (including those found in the QC metrics).
    cbf_std : Path, optional
        Template-space CBF, the background of the region outlines.
    region_tables : tuple of Path
        Template-space regional tables; the first is shown.
    region_atlas : Path, optional
        Label image of the first atlas, for the outlines.
    reference : Path, optional
        The ASL reference image (background of the registration figures).
    gm, wm : Path, optional
        Grey- and white-matter probability maps of the anatomy on the ASL grid (their borders
        are drawn in the registration figures).
    """

    name: str
    cbf: Path
    mask: Path
    anat_in_asl: Path
    anat_name: str
    confounds: Path
    qc: Path
    methods: MethodsParameters
    att: Path | None = None
    warnings: tuple[str, ...] = ()
    cbf_std: Path | None = None
    region_tables: tuple[Path, ...] = ()
    region_atlas: Path | None = None
    reference: Path | None = None
    gm: Path | None = None
    wm: Path | None = None

    def __post_init__(self) -> None:
        for name in _PATH_FIELDS:
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        object.__setattr__(self, "warnings", tuple(str(w) for w in self.warnings))
        object.__setattr__(self, "region_tables", tuple(Path(p) for p in self.region_tables))

    def to_json(self) -> str:
        """Return the summary as JSON (paths as strings)."""
        return json.dumps(asdict(self), indent=2, default=str)

    @classmethod
    def from_json(cls, text: str) -> RunSummary:
        """Read a summary written by :meth:`to_json`."""
        values = json.loads(text)
        values["methods"] = MethodsParameters.from_dict(values["methods"])
        return cls(**values)


def _motion_svgs(confounds_file: Path, fd_threshold_mm: float | None) -> tuple[str, ...]:
    table = pd.read_csv(confounds_file, sep="\t", na_values="n/a")
    translations = {axis: table[f"trans_{axis}"].to_numpy(float) for axis in "xyz"}
    rotations = {axis: np.degrees(table[f"rot_{axis}"].to_numpy(float)) for axis in "xyz"}
    return (
        line_plot_svg(translations, ylabel="translation (mm)", title="Translations"),
        line_plot_svg(rotations, ylabel="rotation (degrees)", title="Rotations"),
        line_plot_svg(
            {"FD": table["framewise_displacement"].to_numpy(float)},
            ylabel="FD (mm)",
            threshold=fd_threshold_mm,
            title="Framewise displacement",
        ),
    )


def region_outlines(labels: np.ndarray) -> np.ndarray:
    """Merge the first two levels of a 4-D atlas (small structures win) into one 3-D image."""
    if labels.ndim == 3:
        return labels
    merged = labels[..., 0].copy()
    if labels.shape[3] > 1:
        merged = np.where(merged > 0, merged, labels[..., 1])
    return merged


def _regions(summary: RunSummary) -> dict[str, Any]:
    """Return the regional table and the region outlines over template-space CBF, if any."""
    if not summary.region_tables:
        return {}
    first = summary.region_tables[0]
    table = pd.read_csv(first, sep="\t", na_values="n/a", keep_default_na=False)
    shown = table[[column for column in REGION_COLUMNS if column in table.columns]]
    result: dict[str, Any] = {"rois": shown.round(3)}
    if summary.cbf_std is not None and summary.region_atlas is not None:
        cbf, voxel = canonical_volume(nb.load(summary.cbf_std))
        atlas = nb.as_closest_canonical(nb.load(summary.region_atlas))
        labels = region_outlines(np.asanyarray(atlas.dataobj).astype(np.int32))
        result["roi_overlay"] = edge_overlay(
            cbf, labels, edges="gradient", edge_percentile=0.0, vmin=CBF_RANGE[0],
            vmax=CBF_RANGE[1], voxel_size=voxel,
        )  # fmt: skip
        result["roi_caption"] = (
            f"{first.name}: region outlines (structures and larger regions) over "
            "the template-space CBF (grey scale 0-100 mL/100 g/min)"
        )
    return result


def _tissue_border_figures(
    summary: RunSummary, cbf: np.ndarray, mask: np.ndarray, voxel: tuple[float, float, float]
) -> dict[str, np.ndarray]:
    """Return the anatomy's tissue borders over the ASL reference and the CBF map, three views.

    The borders are the 0.5 iso-lines of the white-matter map (the grey/white border) and of
    grey + white matter (the outer grey-matter border), both carried onto the ASL grid by the
    run's registration; a misregistration shows as lines crossing the ASL image's own edges.
    """
    if summary.reference is None or summary.gm is None or summary.wm is None:
        return {}
    reference, _ = canonical_volume(nb.load(summary.reference))
    gm, _ = canonical_volume(nb.load(summary.gm))
    wm, _ = canonical_volume(nb.load(summary.wm))
    borders = [(gm + wm, BRAIN_BORDER_COLOR), (wm, WHITE_BORDER_COLOR)]
    underlays = (("ASL reference", reference, (None, None)), ("CBF map", cbf, CBF_RANGE))
    figures = {}
    for underlay_name, underlay, (low, high) in underlays:
        for axis, view in VIEWS:
            caption = (
                f"{summary.anat_name} tissue borders on the {underlay_name}, {view} "
                "(cyan: outer grey-matter border; red: grey/white border; probability 0.5)"
            )
            figures[caption] = contour_overlay(
                underlay, borders, REGISTRATION_SLICES, axis, vmin=low, vmax=high,
                mask=mask, voxel_size=voxel,
            )  # fmt: skip
    return figures


def _qc_rows(qc: Mapping[str, Any]) -> dict[str, Any]:
    """QC metric -> value, or -> (value, unit) for the metrics with a unit."""
    return {key: (value, QC_UNITS[key]) if key in QC_UNITS else value for key, value in qc.items()}


def run_report(summary: RunSummary) -> RunReport:
    """Build the report section of one run from its summary.

    Parameters
    ----------
    summary : RunSummary
        The run's files, methods parameters and warnings.

    Returns
    -------
    RunReport
        Figures, tables and text for the participant report.
    """
    cbf, voxel = canonical_volume(nb.load(summary.cbf))
    mask, _ = canonical_volume(nb.load(summary.mask))
    anat, _ = canonical_volume(nb.load(summary.anat_in_asl))
    figures: dict[str, Any] = {
        "cbf_mosaic": mosaic(
            cbf, vmin=CBF_RANGE[0], vmax=CBF_RANGE[1], mask=mask > 0, voxel_size=voxel
        ),
        "cbf_colorbar": colorbar(*CBF_RANGE, label="CBF (mL/100 g/min)"),
    }
    if summary.att is not None:
        att, _ = canonical_volume(nb.load(summary.att))
        figures["att_mosaic"] = mosaic(
            att, vmin=ATT_RANGE[0], vmax=ATT_RANGE[1], cmap="heat", mask=mask > 0, voxel_size=voxel
        )
        figures["att_colorbar"] = colorbar(*ATT_RANGE, cmap="heat", label="ATT (s)")
    registration = _tissue_border_figures(summary, cbf, mask > 0, voxel)
    registration[f"ASL brain-mask boundary on the {summary.anat_name}"] = edge_overlay(
        anat, mask, edges="mask", voxel_size=voxel
    )
    methods, references = methods_text(summary.methods)
    qc = json.loads(summary.qc.read_text())
    figures.update(_regions(summary))
    return RunReport(
        name=summary.name,
        registration=registration,
        motion_svgs=_motion_svgs(summary.confounds, qc.get("fd_threshold_mm")),
        qc=_qc_rows(qc),
        methods=methods,
        references=tuple(references),
        warnings=summary.warnings,
        **figures,
    )
