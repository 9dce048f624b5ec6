"""One run's report section from its summary (aslmig.reports.run)."""

from __future__ import annotations

import json

import nibabel as nb
import numpy as np
import pandas as pd
import pytest
from scipy import ndimage

from aslmig.reports.boilerplate import MethodsParameters
from aslmig.reports.participant import build_participant_html
from aslmig.reports.run import (
    BRAIN_BORDER_COLOR,
    WHITE_BORDER_COLOR,
    RunSummary,
    region_outlines,
    run_report,
)

METHODS = MethodsParameters("PCASL", plds=1.8, labeling_duration=[1.8, 1.8], fd_threshold_mm=0.3)


def _image(path, data):
    nb.Nifti1Image(np.asarray(data, np.float32), np.diag([3.0, 3.0, 3.0, 1.0])).to_filename(path)
    return path


@pytest.fixture
def summary(tmp_path):
    grid = np.indices((16, 18, 10)).astype(float)
    brain = ((grid[0] - 7.5) ** 2 / 49 + (grid[1] - 8.5) ** 2 / 64 + (grid[2] - 4.5) ** 2 / 16) < 1
    confounds = pd.DataFrame(
        {
            name: np.linspace(0, 0.01, 6)
            for name in ("trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z")
        }  # fmt: skip
    ).assign(framewise_displacement=[np.nan, 0.1, 0.2, 0.6, 0.1, 0.1])
    confounds.to_csv(tmp_path / "confounds.tsv", sep="\t", index=False, na_rep="n/a")
    qc = {"mean_gm_cbf": 55.5, "mean_fd_mm": 0.22, "fd_threshold_mm": 0.4, "qei": 0.8}
    (tmp_path / "qc.json").write_text(json.dumps(qc))
    rois = pd.DataFrame({"roi": ["pons_L"], "mean": [41.23456], "extra": ["hidden"]})
    rois.to_csv(tmp_path / "rois.tsv", sep="\t", index=False)
    labels = np.zeros((16, 18, 10, 2))
    labels[4:8, 4:8, 3:6, 0] = 1
    labels[2:12, 2:14, 2:8, 1] = 2
    return RunSummary(
        name="sub-01_ses-1",
        cbf=_image(tmp_path / "cbf.nii.gz", 60.0 * brain),
        mask=_image(tmp_path / "mask.nii.gz", brain),
        anat_in_asl=_image(tmp_path / "t1w.nii.gz", 500.0 * brain + 10),
        anat_name="T1w",
        confounds=tmp_path / "confounds.tsv",
        qc=tmp_path / "qc.json",
        methods=METHODS,
        att=_image(tmp_path / "att.nii.gz", 1.2 * brain),
        warnings=("check this",),
        cbf_std=_image(tmp_path / "cbf_std.nii.gz", 60.0 * brain),
        region_tables=(str(tmp_path / "rois.tsv"),),
        region_atlas=_image(tmp_path / "atlas.nii.gz", labels),
        reference=_image(tmp_path / "reference.nii.gz", 900.0 * brain + 100),
        gm=_image(tmp_path / "gm.nii.gz", 0.6 * brain),
        wm=_image(tmp_path / "wm.nii.gz", ndimage.binary_erosion(brain, iterations=2)),
    )


def test_summary_round_trips_through_json(summary):
    again = RunSummary.from_json(summary.to_json())
    assert again == summary
    assert (
        again.methods.labeling_duration == (1.8, 1.8) and again.region_tables[0].name == "rois.tsv"
    )


def test_run_report_shows_the_run(summary):
    report = run_report(summary)
    assert report.name == "sub-01_ses-1" and report.warnings == ("check this",)
    assert report.att_mosaic is not None and report.roi_overlay is not None
    assert report.qc["mean_gm_cbf"] == (55.5, "mL/100 g/min") and report.qc["qei"] == 0.8
    assert list(report.rois.columns) == ["roi", "mean"] and report.rois["mean"][0] == 41.235
    assert "post-labeling delay was 1.8 s" in report.methods and report.references
    assert list(report.registration)[-1] == "ASL brain-mask boundary on the T1w"
    # the FD plot draws the threshold the QC used (0.4 mm), not a constant of the report
    assert "threshold 0.4" in report.motion_svgs[2]
    document = build_participant_html("sub-01", [report])
    assert "check this" in document and "pons_L" in document


def test_tissue_borders_over_both_underlays_in_three_views(summary):
    report = run_report(summary)
    captions = list(report.registration)[:-1]
    expected = [
        (underlay, view)
        for underlay in ("ASL reference", "CBF map")
        for view in ("axial", "coronal", "sagittal")
    ]
    assert [
        (underlay, view) for underlay, view in expected
        if any(f"on the {underlay}, {view}" in caption for caption in captions)
    ] == expected and len(captions) == 6  # fmt: skip
    for caption in captions:
        figure = report.registration[caption]
        for color in (BRAIN_BORDER_COLOR, WHITE_BORDER_COLOR):
            assert np.all(figure == np.array(color, np.uint8), axis=-1).any(), (caption, color)
    document = build_participant_html("sub-01", [report])
    assert "T1w tissue borders on the CBF map, sagittal" in document


def test_optional_parts_absent(summary):
    import dataclasses

    bare = dataclasses.replace(
        summary, att=None, region_tables=(), warnings=(), reference=None, gm=None, wm=None
    )
    report = run_report(bare)
    assert report.att_mosaic is None and report.rois is None and report.warnings == ()
    assert list(report.registration) == ["ASL brain-mask boundary on the T1w"]


def test_region_outlines_prefer_the_small_structures():
    labels = np.zeros((2, 2, 1, 2), int)
    labels[0, 0, 0] = (3, 9)
    labels[1, 1, 0] = (0, 9)
    merged = region_outlines(labels)
    assert merged[0, 0, 0] == 3 and merged[1, 1, 0] == 9 and merged[0, 1, 0] == 0
    assert region_outlines(merged) is merged
