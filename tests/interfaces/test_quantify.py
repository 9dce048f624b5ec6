"""quantify_run on the built-in example dataset, whose ground truth is known exactly."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from aslmig.bids.layout import collect_runs, open_layout
from aslmig.cli.demo import example_dataset
from aslmig.interfaces.cbf import QuantifyCBF, quantify_run
from aslmig.workflows.constants import acquisition_of

TOOL = Path(__file__).parents[2] / "tools" / "make_example_dataset.py"


@pytest.fixture(scope="module")
def maker():
    spec = importlib.util.spec_from_file_location("make_example_dataset", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def runs():
    return {run.name: run for run in collect_runs(open_layout(example_dataset()))}


def write_mask(run, path: Path) -> Path:
    m0 = nb.load(run.m0_file)
    nb.Nifti1Image((m0.get_fdata() > 400).astype(np.uint8), m0.affine).to_filename(path)
    return path


@pytest.mark.parametrize(
    ("name", "pose_index", "ictal"),
    [("sub-hc01_ses-1", 0, False), ("sub-mwa01_ses-1", 1, False), ("sub-mwa01_ses-2", 1, True)],
)
def test_white_paper_cbf_matches_the_truth(maker, runs, tmp_path, name, pose_index, ictal):
    run = runs[name]
    result = quantify_run(
        str(run.asl_file),
        acquisition_of(run),
        str(write_mask(run, tmp_path / "mask.nii.gz")),
        tmp_path,
        m0_file=str(run.m0_file),
    )
    cbf = nb.load(result["cbf"]).get_fdata()
    m0_cbf, m0_map, _ = maker.perfusion_truth(maker.PARTICIPANTS[pose_index][5], ictal)
    grey = m0_map > 900  # mostly grey-matter voxels
    truth = m0_cbf[grey] / m0_map[grey]
    # Per-voxel noise: sd 1.5 per volume, 4 pairs -> about 9 mL/100 g/min; the mean over
    # thousands of voxels must be within 3 standard errors of the truth (about 0.5).
    error = cbf[grey] - truth
    standard_error = error.std(ddof=1) / np.sqrt(error.size)
    assert standard_error < 0.3
    assert abs(error.mean()) < 3 * standard_error
    assert result["provenance"]["m0"]["m0_type"] == "Separate"


def test_interface_writes_provenance(runs, tmp_path):
    run = runs["sub-hc01_ses-1"]
    node = QuantifyCBF(
        asl_file=str(run.asl_file),
        acquisition=acquisition_of(run),
        mask_file=str(write_mask(run, tmp_path / "mask.nii.gz")),
        m0_file=str(run.m0_file),
    )
    result = node.run(cwd=str(tmp_path))
    provenance = json.loads(Path(result.outputs.provenance).read_text())
    assert provenance["constants"]["t1_blood"]["value"] == 1.65
    assert provenance["options"]["averaging"] == "mean"
    assert nb.load(result.outputs.cbf_timeseries).shape[-1] == 4
