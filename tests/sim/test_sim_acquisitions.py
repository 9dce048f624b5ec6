"""Acquisition variants: sidecars are complete, aslcontext matches, the engine accepts them."""

from __future__ import annotations

import json

import nibabel as nb
import pytest

from aslmig.cli.run import main
from aslmig.sim import CohortSpec, simulate_cohort

COMMON = (
    "ArterialSpinLabelingType",
    "PostLabelingDelay",
    "M0Type",
    "BackgroundSuppression",
    "MagneticFieldStrength",
    "MRAcquisitionType",
    "TotalAcquiredPairs",
    "RepetitionTimePreparation",
    "EchoTime",
)
VARIANTS = {
    "pcasl-3d-separate": dict(),
    "pasl-2d-included-bs": dict(
        labeling_type="PASL",
        plds=(1.8,),
        readout="2D",
        m0_type="Included",
        background_suppression_pulses=4,
        field_strength=1.5,
    ),
    "pcasl-multidelay-2d": dict(plds=(0.5, 1.0, 1.5, 2.0, 2.5), readout="2D", pairs=1),
    "pasl-multidelay-motion": dict(
        labeling_type="PASL",
        plds=(1.2, 1.8, 2.4),
        pairs=1,
        motion_translation_mm=1.0,
        motion_rotation_deg=1.0,
    ),
}


@pytest.mark.parametrize("name", list(VARIANTS))
def test_variant_is_complete_and_accepted(tmp_path, anatomy, name, capsys):
    options = {"pairs": 2, **VARIANTS[name]}
    spec = CohortSpec(
        n_per_group={"MwA": 1}, phases=("ictal",), region_sd=0.0, t1w_voxel_mm=4.0, **options
    )
    result = simulate_cohort(tmp_path / "bids", spec, anatomy=anatomy)
    perf = result.bids_dir / "sub-mwa01" / "ses-1" / "perf"
    sidecar = json.loads((perf / "sub-mwa01_ses-1_asl.json").read_text())
    for field in COMMON:
        assert field in sidecar, field
    context = (perf / "sub-mwa01_ses-1_aslcontext.tsv").read_text().split()
    assert context[0] == "volume_type"
    n_volumes = nb.load(perf / "sub-mwa01_ses-1_asl.nii.gz").shape[3]
    assert len(context) - 1 == n_volumes
    n_pairs = len(spec.plds) * spec.pairs
    assert context.count("control") == context.count("label") == n_pairs
    assert sidecar["TotalAcquiredPairs"] == n_pairs
    assert sidecar["M0Type"] == spec.m0_type
    assert sidecar["MagneticFieldStrength"] == spec.field_strength
    assert sidecar["MRAcquisitionType"] == spec.readout
    if spec.labeling_type == "PASL":
        assert sidecar["BolusCutOffFlag"] is True
        assert sidecar["BolusCutOffDelayTime"] == spec.bolus_cutoff
        assert "LabelingDuration" not in sidecar
    else:
        assert "LabelingDuration" in sidecar
    if spec.readout == "2D":
        assert len(sidecar["SliceTiming"]) == nb.load(perf / "sub-mwa01_ses-1_asl.nii.gz").shape[2]
    else:
        assert "SliceTiming" not in sidecar
    if spec.m0_type == "Included":
        assert context.count("m0scan") == 1
        assert len(sidecar["PostLabelingDelay"]) == n_volumes
        assert not (perf / "sub-mwa01_ses-1_m0scan.nii.gz").exists()
    else:
        m0 = json.loads((perf / "sub-mwa01_ses-1_m0scan.json").read_text())
        assert m0["IntendedFor"] == "ses-1/perf/sub-mwa01_ses-1_asl.nii.gz"
    if spec.background_suppression_pulses:
        assert sidecar["BackgroundSuppression"] is True
        assert sidecar["BackgroundSuppressionNumberPulses"] == 4
    if spec.is_multi_delay:
        assert sorted(set(sidecar["PostLabelingDelay"])) == sorted(spec.plds)
    assert main([str(result.bids_dir), str(tmp_path / "out"), "participant", "--dry-run"]) == 0
    out = capsys.readouterr().out
    expected = "general kinetic model fit" if spec.is_multi_delay else "white-paper single-delay"
    assert expected in out


def test_motion_moves_the_head_within_the_limits(tmp_path, anatomy):
    spec = CohortSpec(
        n_per_group={"HC": 1},
        region_sd=0.0,
        pairs=3,
        t1w_voxel_mm=4.0,
        motion_translation_mm=2.0,
        motion_rotation_deg=1.5,
    )
    result = simulate_cohort(tmp_path / "bids", spec, anatomy=anatomy)
    import numpy as np
    import pandas as pd

    motion = pd.read_csv(
        result.truth_dir / "sub-hc01/ses-1/perf/sub-hc01_ses-1_desc-motion_timeseries.tsv",
        sep="\t",
    ).to_numpy()
    assert motion.shape == (6, 6)
    assert np.all(motion[0] == 0)
    np.testing.assert_allclose(np.linalg.norm(motion[:, :3], axis=1).max(), 2.0)
    np.testing.assert_allclose(np.rad2deg(np.linalg.norm(motion[:, 3:], axis=1)).max(), 1.5)
