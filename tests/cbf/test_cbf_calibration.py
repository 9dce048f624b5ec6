"""M0 calibration: TR correction, averaging, smoothing, scale, Estimate, Absent."""

import numpy as np
import pytest

from aslmig.cbf.calibration import (
    ReferenceRegionCalibration,
    calibrate_m0,
    smooth_m0,
    tr_correction_factor,
)


def test_tr_correction_factor_is_one_over_saturation_recovery():
    assert tr_correction_factor(2.0, 1.3) == pytest.approx(1 / (1 - np.exp(-2.0 / 1.3)), rel=1e-14)
    assert tr_correction_factor(60.0, 1.3) == pytest.approx(1.0, abs=1e-15)


def test_separate_m0_short_tr_is_corrected_and_volumes_averaged():
    true_m0 = np.full((2, 2, 2), 1000.0)
    recovered = true_m0 * (1 - np.exp(-2.0 / 1.3))
    volumes = np.stack([recovered * 0.98, recovered * 1.02], axis=-1)
    m0, info = calibrate_m0("Separate", m0_volumes=volumes, repetition_time=2.0, t1_tissue=1.3)
    np.testing.assert_allclose(m0, true_m0, rtol=1e-12)
    assert info["n_m0_volumes"] == 2
    assert info["tr_correction_factors"][0] == pytest.approx(1 / (1 - np.exp(-2.0 / 1.3)))


def test_long_tr_is_not_corrected_in_auto_mode_but_is_when_asked():
    volumes = np.full((2, 2, 1, 1), 900.0)
    m0, _ = calibrate_m0("Included", m0_volumes=volumes, repetition_time=6.0, t1_tissue=1.3)
    np.testing.assert_allclose(m0, 900.0)
    m0, _ = calibrate_m0(
        "Included", m0_volumes=volumes, repetition_time=6.0, t1_tissue=1.3, tr_correction="always"
    )
    np.testing.assert_allclose(m0, 900.0 / (1 - np.exp(-6.0 / 1.3)))


def test_per_volume_tr_corrects_each_volume():
    volumes = np.stack(
        [np.full((1, 1, 1), 1000 * (1 - np.exp(-t / 1.3))) for t in (1.5, 3.0)], axis=-1
    )
    m0, _ = calibrate_m0("Separate", m0_volumes=volumes, repetition_time=[1.5, 3.0], t1_tissue=1.3)
    np.testing.assert_allclose(m0, 1000.0, rtol=1e-12)


def test_m0_scale_multiplies_m0():
    volumes = np.full((2, 2, 1, 1), 100.0)
    m0, info = calibrate_m0("Separate", m0_volumes=volumes, m0_scale=10.0, tr_correction="never")
    np.testing.assert_allclose(m0, 1000.0)
    assert info["m0_scale"] == 10.0


def test_smoothing_keeps_a_uniform_map_inside_the_mask_and_blurs_an_edge():
    mask = np.zeros((12, 12, 6), bool)
    mask[2:10, 2:10, 1:5] = True
    uniform = np.where(mask, 1000.0, 0.0)
    smoothed = smooth_m0(uniform, 6.0, (3.0, 3.0, 4.0), mask)
    np.testing.assert_allclose(smoothed[mask], 1000.0, rtol=1e-10)
    step = np.where(np.arange(12)[:, None, None] < 6, 1000.0, 500.0) * np.ones((12, 12, 6))
    blurred = smooth_m0(step, 6.0, (3.0, 3.0, 4.0))
    assert 500.0 < blurred[6, 6, 3] < blurred[5, 6, 3] < 1000.0


def test_estimate_gives_a_scaled_scalar():
    m0, info = calibrate_m0("Estimate", m0_estimate=2500.0, m0_scale=2.0)
    assert m0 == 5000.0 and info["method"] == "scalar M0Estimate"


def test_absent_without_alternative_is_refused_with_a_fix():
    with pytest.raises(ValueError, match="M0Type is 'Absent'.*reference-region"):
        calibrate_m0("Absent")


def test_reference_region_recovers_tissue_equivalent_m0_from_csf_controls():
    m0_blood = 1100.0
    tr = 4.0
    csf_signal = 1.15 * m0_blood * (1 - np.exp(-tr / 4.3))
    control = np.full((4, 4, 2), 800.0)
    mask = np.zeros((4, 4, 2), bool)
    mask[1:3, 1:3, :] = True
    control[mask] = csf_signal
    ref = ReferenceRegionCalibration(control, mask, repetition_time=tr, tissue="csf")
    m0, info = calibrate_m0("Absent", reference_region=ref, partition_coefficient=0.9)
    assert m0 == pytest.approx(0.9 * m0_blood, rel=1e-12)  # lambda * M0_blood
    assert info["m0_blood"] == pytest.approx(m0_blood, rel=1e-12)


def test_reference_region_refuses_background_suppressed_controls():
    ref = ReferenceRegionCalibration(
        np.ones((2, 2, 1)), np.ones((2, 2, 1), bool), 4.0, background_suppression=True
    )
    with pytest.raises(ValueError, match="background suppression"):
        calibrate_m0("Absent", reference_region=ref)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"m0_type": "Separate"}, "no M0 volumes"),
        ({"m0_type": "Estimate", "m0_estimate": -3.0}, "M0Estimate"),
        ({"m0_type": "Estimate", "m0_estimate": 3.0, "m0_scale": 0.0}, "m0_scale"),
        ({"m0_type": "Guess"}, "unknown M0Type"),
        (
            {"m0_type": "Separate", "m0_volumes": np.ones((2, 2, 1, 1)), "t1_tissue": 1.3},
            "RepetitionTimePreparation",
        ),
        (
            {
                "m0_type": "Separate",
                "m0_volumes": np.ones((2, 2, 1, 1)),
                "repetition_time": -1.0,
                "t1_tissue": 1.3,
            },
            "must be positive",
        ),
    ],
)
def test_bad_calibration_input_is_a_value_error(args, message):
    m0_type = args.pop("m0_type")
    with pytest.raises(ValueError, match=message):
        calibrate_m0(m0_type, **args)
