"""The ASL preprocessing step: typed metadata in; realigned series, mask, confounds out."""

import nibabel as nb
import numpy as np
import pandas as pd
import pytest
from asl_phantom import grid, multi_delay_series

from aslmig.asl import preprocess
from aslmig.asl.motion import CONFOUND_COLUMNS
from aslmig.bids.metadata import AslMetadata

TYPES = ("m0scan", "label", "control", "label", "control", "label", "control", "label", "control")
DELAYS = (0.0, 0.5, 0.5, 1.5, 1.5, 0.5, 0.5, 1.5, 1.5)


def _metadata(acquisition_type="2D"):
    return AslMetadata(
        labeling_type="PCASL",
        volume_types=TYPES,
        post_labeling_delay=DELAYS,
        labeling_duration=(0.0,) + (1.4,) * 8,
        bolus_cutoff_flag=None,
        bolus_cutoff_delay_time=None,
        bolus_cutoff_technique=None,
        background_suppression=True,
        background_suppression_pulses=2,
        background_suppression_pulse_times=None,
        m0_type="Included",
        m0_estimate=None,
        repetition_time_preparation=(4.1,) * 9,
        echo_time=0.014,
        magnetic_field_strength=3.0,
        acquisition_type=acquisition_type,
        slice_timing=None,
        slice_axis=2,
        labeling_efficiency=None,
        total_acquired_pairs=4,
        image_shape=(40, 40, 24, 9),
    )


@pytest.fixture(scope="module")
def asl_file(tmp_path_factory):
    data = multi_delay_series(TYPES, DELAYS, np.zeros((9, 6)), np.random.default_rng(0), 0.3)
    path = tmp_path_factory.mktemp("asl") / "sub-01_asl.nii.gz"
    nb.Nifti1Image(data.astype(np.float32), grid()).to_filename(path)
    return path


def test_preprocess_writes_every_output(asl_file, tmp_path):
    result = preprocess.preprocess_asl(asl_file, _metadata(), tmp_path)
    assert result.m0 is None
    assert nb.load(result.realigned).shape == (40, 40, 24, 9)
    mask = np.asanyarray(nb.load(result.mask).dataobj)
    assert mask.dtype == np.uint8 and 0 < mask.mean() < 0.6
    confounds = pd.read_csv(result.confounds, sep="\t")
    assert list(confounds.columns) == list(CONFOUND_COLUMNS)
    assert list(confounds["volume_type"]) == list(TYPES)
    # still head, background-suppressed contrast changing with the delay: no motion read
    assert confounds["framewise_displacement"].max() < 0.1


@pytest.mark.parametrize(("readout", "slice_axis"), [("2D", 2), ("3D", None)])
def test_delays_and_slice_axis_reach_the_realignment(asl_file, tmp_path, monkeypatch, readout,
                                                     slice_axis):  # fmt: skip
    seen = {}
    realign = preprocess.realign_series

    def spy(*args, **kwargs):
        seen.update(kwargs)
        return realign(*args, **kwargs)

    monkeypatch.setattr(preprocess, "realign_series", spy)
    preprocess.preprocess_asl(asl_file, _metadata(readout), tmp_path)
    assert seen["post_labeling_delays"] == DELAYS
    assert seen["slice_axis"] == slice_axis
