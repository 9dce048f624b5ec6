"""Participant report: each run writes a summary; one node renders ``OUTPUT_DIR/sub-X.html``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import nibabel as nb
import numpy as np
import pandas as pd
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from aslmig.bids.derivatives import atomic_write, participant_report_path
from aslmig.interfaces.qc import qc_warnings
from aslmig.reports import RunReport, colorbar, edge_overlay, line_plot_svg, methods_text, mosaic
from aslmig.reports.mosaics import canonical_volume
from aslmig.reports.participant import build_participant_html

CBF_RANGE = (0.0, 100.0)
ATT_RANGE = (0.5, 2.5)
FD_THRESHOLD_MM = 0.5
QC_UNITS = {
    "mean_gm_cbf": "mL/100 g/min",
    "mean_wm_cbf": "mL/100 g/min",
    "negative_gm_cbf_percent": "%",
    "gm_spatial_cov_percent": "%",
    "mean_fd_mm": "mm",
    "max_fd_mm": "mm",
}


def _canonical(path: str) -> tuple[np.ndarray, tuple[float, ...]]:
    return canonical_volume(nb.load(path))


def _motion_svgs(confounds_file: str) -> tuple[str, ...]:
    table = pd.read_csv(confounds_file, sep="\t", na_values="n/a")
    translations = {axis: table[f"trans_{axis}"].to_numpy(float) for axis in "xyz"}
    rotations = {axis: np.degrees(table[f"rot_{axis}"].to_numpy(float)) for axis in "xyz"}
    return (
        line_plot_svg(translations, ylabel="translation (mm)", title="Translations"),
        line_plot_svg(rotations, ylabel="rotation (degrees)", title="Rotations"),
        line_plot_svg(
            {"FD": table["framewise_displacement"].to_numpy(float)},
            ylabel="FD (mm)",
            threshold=FD_THRESHOLD_MM,
            title="Framewise displacement",
        ),
    )


REGION_COLUMNS = (
    "roi",
    "n_voxels",
    "coverage",
    "mean",
    "gm_restricted_mean",
    "relative_to_reference",
    "asymmetry_index",
    "status",
)


def region_outlines(labels: np.ndarray) -> np.ndarray:
    """Merge the first two levels of a 4-D atlas (small structures win) into one 3-D image."""
    if labels.ndim == 3:
        return labels
    merged = labels[..., 0].copy()
    if labels.shape[3] > 1:
        merged = np.where(merged > 0, merged, labels[..., 1])
    return merged


def _regions(summary: dict[str, Any]) -> dict[str, Any]:
    """Return the regional table and the region outlines over template-space CBF, if any."""
    tables = summary.get("region_tables") or []
    if not tables:
        return {}
    table = pd.read_csv(tables[0], sep="\t", na_values="n/a", keep_default_na=False)
    shown = table[[column for column in REGION_COLUMNS if column in table.columns]]
    result: dict[str, Any] = {"rois": shown.round(3)}
    if summary.get("cbf_std") and summary.get("region_atlas"):
        cbf, voxel = _canonical(summary["cbf_std"])
        atlas = nb.as_closest_canonical(nb.load(summary["region_atlas"]))
        labels = region_outlines(np.asanyarray(atlas.dataobj).astype(np.int32))
        result["roi_overlay"] = edge_overlay(
            cbf, labels, edges="gradient", edge_percentile=0.0, vmin=CBF_RANGE[0],
            vmax=CBF_RANGE[1], voxel_size=voxel,
        )  # fmt: skip
        result["roi_caption"] = (
            f"{Path(tables[0]).name}: region outlines (structures and larger regions) over "
            "the template-space CBF (grey scale 0-100 mL/100 g/min)"
        )
    return result


def run_report(summary: dict[str, Any]) -> RunReport:
    """Build the report section of one run from its summary (file paths and parameters).

    Parameters
    ----------
    summary : dict
        Keys ``name``, ``cbf``, ``mask``, ``anat_in_asl``, ``confounds``, ``qc``,
        ``methods`` and optionally ``att`` and ``warnings``.

    Returns
    -------
    RunReport
        Figures, tables and text for the participant report.
    """
    cbf, voxel = _canonical(summary["cbf"])
    mask, _ = _canonical(summary["mask"])
    anat, _ = _canonical(summary["anat_in_asl"])
    figures: dict[str, Any] = {
        "cbf_mosaic": mosaic(
            cbf, vmin=CBF_RANGE[0], vmax=CBF_RANGE[1], mask=mask > 0, voxel_size=voxel
        ),
        "cbf_colorbar": colorbar(*CBF_RANGE, label="CBF (mL/100 g/min)"),
    }
    if summary.get("att"):
        att, _ = _canonical(summary["att"])
        figures["att_mosaic"] = mosaic(
            att, vmin=ATT_RANGE[0], vmax=ATT_RANGE[1], cmap="heat", mask=mask > 0, voxel_size=voxel
        )
        figures["att_colorbar"] = colorbar(*ATT_RANGE, cmap="heat", label="ATT (s)")
    overlay = edge_overlay(anat, mask, edges="mask", voxel_size=voxel)
    qc = json.loads(Path(summary["qc"]).read_text())
    warnings = [*summary.get("warnings", ()), *qc_warnings(qc)]
    methods, references = methods_text(summary["methods"])
    figures.update(_regions(summary))
    return RunReport(
        name=summary["name"],
        registration={f"ASL brain-mask boundary on the {summary['anat_name']}": overlay},
        motion_svgs=_motion_svgs(summary["confounds"]),
        qc={key: (value, QC_UNITS[key]) if key in QC_UNITS else value for key, value in qc.items()},
        methods=methods,
        references=tuple(references),
        warnings=tuple(warnings),
        **figures,
    )


class _SummaryInputSpec(BaseInterfaceInputSpec):
    name = traits.Str(mandatory=True, desc="run name, e.g. sub-01_ses-1")
    cbf = File(exists=True, mandatory=True)
    att = File(exists=True)
    mask = File(exists=True, mandatory=True)
    anat_in_asl = File(exists=True, mandatory=True, desc="T1w or template on the ASL grid")
    anat_name = traits.Str("T1w", usedefault=True)
    confounds = File(exists=True, mandatory=True)
    qc = File(exists=True, mandatory=True)
    methods = traits.Dict(mandatory=True, desc="parameters for the methods boilerplate")
    warnings = traits.List(traits.Str)
    cbf_std = File(exists=True, desc="template-space CBF (background of the region outlines)")
    region_tables = InputMultiObject(File(exists=True), desc="template-space regional tables")
    region_atlas = traits.Str(desc="label image of the first atlas (for the outlines)")


class _SummaryOutputSpec(TraitedSpec):
    out_file = File(desc="run summary (JSON)")


class RunSummary(SimpleInterface):
    """Collect what the participant report needs from one run into a JSON file."""

    input_spec = _SummaryInputSpec
    output_spec = _SummaryOutputSpec

    def _run_interface(self, runtime):
        summary = {
            name: getattr(self.inputs, name)
            for name in self.inputs.copyable_trait_names()
            if isdefined(getattr(self.inputs, name))
        }
        out_file = Path(runtime.cwd) / "summary.json"
        out_file.write_text(json.dumps(summary, indent=2, default=str))
        self._results["out_file"] = str(out_file)
        return runtime


class _ReportInputSpec(BaseInterfaceInputSpec):
    subject = traits.Str(mandatory=True)
    summaries = InputMultiObject(File(exists=True), mandatory=True)
    output_dir = traits.Str(mandatory=True)


class _ReportOutputSpec(TraitedSpec):
    out_file = File(desc="OUTPUT_DIR/sub-X.html")


class ParticipantReport(SimpleInterface):
    """Render the participant's self-contained HTML report into OUTPUT_DIR."""

    input_spec = _ReportInputSpec
    output_spec = _ReportOutputSpec

    def _run_interface(self, runtime):
        runs = [run_report(json.loads(Path(path).read_text())) for path in self.inputs.summaries]
        html = build_participant_html(self.inputs.subject, runs)
        out_file = participant_report_path(self.inputs.output_dir, self.inputs.subject)
        atomic_write(out_file, lambda temporary: temporary.write_text(html, encoding="utf-8"))
        self._results["out_file"] = str(out_file)
        return runtime
