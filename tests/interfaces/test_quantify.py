"""quantify_run on the built-in phantom dataset, whose ground truth is known."""

from __future__ import annotations

import dataclasses
import json

import nibabel as nb
import numpy as np
import pytest

from aslmig.bids.layout import collect_runs, open_layout
from aslmig.cli.demo import example_dataset
from aslmig.interfaces.cbf import QuantifyCBF, quantify_run


@pytest.fixture(scope="module")
def runs():
    return collect_runs(open_layout(example_dataset()))


def run_metadata(run) -> dict:
    metadata = dataclasses.asdict(run.metadata)
    metadata["m0_repetition_time_preparation"] = run.m0_metadata.repetition_time_preparation
    return metadata


def phantom_regions(shape):
    """The phantom's tissue layout (tools/make_example_dataset.py), eroded by one voxel."""
    axes = [np.linspace(-1, 1, n) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    radius = np.sqrt((x / 0.85) ** 2 + (y / 0.85) ** 2 + (z / 0.8) ** 2)
    grey = (radius > 0.68) & (radius < 0.9)
    white = radius < 0.5
    return grey & (y > -0.2), grey & (y < -0.4), white


def test_single_delay_phantom(runs, tmp_path):
    outputs = {}
    for run in runs:
        mask = tmp_path / f"{run.name}_mask.nii.gz"
        m0 = nb.load(run.m0_file)
        nb.Nifti1Image((m0.get_fdata() > 500).astype(np.uint8), m0.affine).to_filename(mask)
        result = quantify_run(
            str(run.asl_file),
            run_metadata(run),
            str(mask),
            tmp_path / run.name,
            m0_file=str(run.m0_file),
        )
        outputs[run.name] = nb.load(result["cbf"]).get_fdata()
        assert result["provenance"]["m0"]["m0_type"] == "Separate"
    anterior, posterior, white = phantom_regions(outputs["sub-hc01_ses-1"].shape)
    # Noise: sd 2 per volume, 4 pairs -> about 12 mL/100 g/min per voxel. Each regional mean
    # must lie within 3 standard errors of the truth, and the standard error must be small.
    for name in outputs:
        for region, truth in ((anterior, 60.0), (white, 20.0)):
            values = outputs[name][region]
            standard_error = values.std(ddof=1) / np.sqrt(values.size)
            assert standard_error < 1.5
            assert values.mean() == pytest.approx(truth, abs=3 * standard_error)
    ictal = outputs["sub-mwa01_ses-2"][posterior].mean()
    interictal = outputs["sub-mwa01_ses-1"][posterior].mean()
    assert ictal / interictal == pytest.approx(0.85, abs=0.04)


def test_interface_writes_provenance(runs, tmp_path):
    run = runs[0]
    mask = tmp_path / "mask.nii.gz"
    m0 = nb.load(run.m0_file)
    nb.Nifti1Image((m0.get_fdata() > 500).astype(np.uint8), m0.affine).to_filename(mask)
    node = QuantifyCBF(
        asl_file=str(run.asl_file),
        metadata=run_metadata(run),
        mask_file=str(mask),
        m0_file=str(run.m0_file),
    )
    result = node.run(cwd=str(tmp_path))
    provenance = json.loads(open(result.outputs.provenance).read())
    assert provenance["constants"]["t1_blood"]["value"] == 1.65
    assert provenance["options"]["averaging"] == "mean"
    assert nb.load(result.outputs.cbf_timeseries).shape[-1] == 4
