"""Single-delay quantification: reference values, analytic round trips, slice timing."""

import itertools

import numpy as np
import pytest

from aslmig.cbf.constants import resolve_constants
from aslmig.cbf.kinetic import kinetic_signal
from aslmig.cbf.single_delay import deltam_to_cbf, quantify_single_delay, single_delay_signal

ROUND_TRIP_RTOL = 1e-6  # noise-free: the engine must invert the forward model exactly
PCASL = resolve_constants("PCASL", 3.0)
PASL = resolve_constants("PASL", 3.0)
M0 = 1234.5


def test_pcasl_reference_value():
    ratio = single_delay_signal(60, 1.8, PCASL, labeling_duration=1.8)
    assert ratio == pytest.approx(0.0069525, rel=1e-5)
    hand = 60 / 6000 / 0.9 * 2 * 0.85 * 1.65 * np.exp(-1.8 / 1.65) * (1 - np.exp(-1.8 / 1.65))
    assert ratio == pytest.approx(hand, rel=1e-12)


def test_pasl_reference_value():
    ratio = single_delay_signal(60, 1.8, PASL, bolus_cutoff_delay_time=0.8)
    assert ratio == pytest.approx(0.0058523, rel=1e-5)
    hand = 60 / 6000 / 0.9 * 2 * 0.98 * 0.8 * np.exp(-1.8 / 1.65)
    assert ratio == pytest.approx(hand, rel=1e-12)


def test_reference_values_come_back_as_cbf_60():
    cbf, _ = quantify_single_delay(
        np.full((1, 1, 1, 1), 0.0069525 * M0), M0, 1.8, PCASL, labeling_duration=1.8
    )
    assert cbf[0, 0, 0] == pytest.approx(60.0, rel=1e-5)
    cbf, _ = quantify_single_delay(
        np.full((1, 1, 1, 1), 0.0058523 * M0), M0, 1.8, PASL, bolus_cutoff_delay_time=[0.8, 1.6]
    )
    assert cbf[0, 0, 0] == pytest.approx(60.0, rel=1e-5)


@pytest.mark.parametrize(
    ("kind", "field", "pld", "tau"),
    list(itertools.product(["PCASL", "CASL"], [1.5, 3.0], [0.8, 1.8, 2.5], [0.7, 1.8])),
)
def test_continuous_round_trip_over_a_grid(kind, field, pld, tau):
    c = resolve_constants(kind, field, bs_pulses=2)
    truth = np.array([5.0, 20.0, 60.0, 120.0]).reshape(2, 2, 1)
    m0 = np.array([800.0, 1000.0, 1200.0, 1500.0]).reshape(2, 2, 1)
    deltam = (single_delay_signal(truth, pld, c, labeling_duration=tau) * m0)[..., None]
    cbf, prov = quantify_single_delay(deltam, m0, pld, c, labeling_duration=tau)
    np.testing.assert_allclose(cbf, truth, rtol=ROUND_TRIP_RTOL)
    assert prov["constants"]["labeling_efficiency"]["value"] == c.labeling_efficiency


@pytest.mark.parametrize(("ti", "ti1"), list(itertools.product([1.2, 1.8, 2.4], [0.6, 0.8])))
def test_pasl_round_trip_over_a_grid(ti, ti1):
    truth = np.array([5.0, 20.0, 60.0, 120.0]).reshape(4, 1, 1)
    deltam = single_delay_signal(truth, ti, PASL, bolus_cutoff_delay_time=ti1) * M0
    cbf, prov = quantify_single_delay(
        np.repeat(deltam[..., None], 3, -1), M0, ti, PASL, bolus_cutoff_delay_time=ti1
    )
    np.testing.assert_allclose(cbf, truth, rtol=ROUND_TRIP_RTOL)
    assert prov["equation"].startswith("CBF = 6000*lambda*dM*exp(TI/T1b) / (2*alpha*TI1")


@pytest.mark.parametrize("slice_axis", [0, 2])
def test_2d_slice_timing_round_trip(slice_axis):
    shape = [3, 3, 3]
    n_slices = 6
    shape[slice_axis] = n_slices
    slice_timing = np.arange(n_slices) * 0.045
    truth = np.random.default_rng(0).uniform(10, 90, shape)
    slice_pld = np.expand_dims(1.8 + slice_timing, [a for a in range(3) if a != slice_axis])
    deltam = single_delay_signal(truth, slice_pld, PCASL, labeling_duration=1.8) * M0
    deltam = np.stack([deltam, deltam], axis=-1)
    cbf, prov = quantify_single_delay(
        deltam,
        M0,
        1.8,
        PCASL,
        labeling_duration=1.8,
        slice_timing=slice_timing,
        slice_axis=slice_axis,
    )
    np.testing.assert_allclose(cbf, truth, rtol=ROUND_TRIP_RTOL)
    assert prov["slice_timing_applied"] is True
    ignored, _ = quantify_single_delay(deltam, M0, 1.8, PCASL, labeling_duration=1.8)
    last = [slice(None)] * 3
    last[slice_axis] = -1
    np.testing.assert_allclose(ignored[tuple(last)], truth[tuple(last)] * np.exp(-0.225 / 1.65))


def test_per_pair_series_and_mean():
    truth = np.array([[[40.0]], [[70.0]]])
    one = single_delay_signal(truth, 1.8, PCASL, labeling_duration=1.8) * M0
    deltam = np.concatenate([one[..., None] * s for s in (0.9, 1.0, 1.1)], axis=-1)
    series = deltam_to_cbf(deltam, M0, [1.8] * 3, PCASL, labeling_duration=1.8)
    np.testing.assert_allclose(series[..., 0], 0.9 * truth, rtol=ROUND_TRIP_RTOL)
    cbf, prov = quantify_single_delay(deltam, M0, 1.8, PCASL, labeling_duration=1.8)
    np.testing.assert_allclose(cbf, truth, rtol=ROUND_TRIP_RTOL)
    assert prov["dropped_volumes"] == [] and prov["n_volumes"] == 3
    median, prov = quantify_single_delay(
        deltam, M0, 1.8, PCASL, labeling_duration=1.8, averaging="median"
    )
    np.testing.assert_allclose(median, truth, rtol=ROUND_TRIP_RTOL)


@pytest.mark.parametrize("kind", ["PCASL", "PASL"])
@pytest.mark.parametrize("att", [0.6, 1.2])
def test_full_model_inversion_with_assumed_att(kind, att):
    c = resolve_constants(kind, 3.0)
    tau = 1.8 if kind == "PCASL" else 0.8
    truth = np.array([10.0, 60.0, 150.0]).reshape(3, 1, 1)
    ratio = kinetic_signal(truth, att, 1.8, c, labeling_duration=tau, model="full")
    timing = {"labeling_duration": tau} if kind == "PCASL" else {"bolus_cutoff_delay_time": tau}
    cbf, prov = quantify_single_delay(
        (ratio * M0)[..., None], M0, 1.8, c, model="full", att=att, **timing
    )
    np.testing.assert_allclose(cbf, truth, rtol=ROUND_TRIP_RTOL)
    assert prov["assumed_att_s"] == att
    whitepaper, _ = quantify_single_delay((ratio * M0)[..., None], M0, 1.8, c, **timing)
    assert np.all(whitepaper < 0.9 * truth)  # the full model differs from the white paper


def test_mask_and_nonpositive_m0_voxels_get_the_fill_value():
    deltam = np.full((2, 2, 1, 1), 8.0)
    m0 = np.array([[[1000.0], [0.0]], [[1000.0], [1000.0]]])
    mask = np.array([[[True], [True]], [[True], [False]]])
    cbf, prov = quantify_single_delay(deltam, m0, 1.8, PCASL, labeling_duration=1.8, mask=mask)
    assert cbf[0, 1, 0] == 0 and cbf[1, 1, 0] == 0 and cbf[0, 0, 0] > 0
    assert prov["n_nonpositive_m0_voxels"] == 1


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"m0": 0.0}, "M0=0.0 must be a positive"),
        ({"m0": np.zeros((2, 2, 1))}, "non-positive everywhere"),
        ({"m0": np.ones((3, 3, 3))}, "resample M0"),
        ({"plds": [1.8, 1.8, 1.8]}, "PostLabelingDelay has 3 values"),
        ({"labeling_duration": None}, "needs LabelingDuration"),
        ({"model": "full"}, "assumed ATT"),
        ({"model": "magic"}, "unknown single-delay model"),
        ({"averaging": "score"}, "grey- and white-matter"),
        ({"slice_timing": [0.0, 0.1]}, "SliceTiming has 2 values"),
    ],
)
def test_bad_physics_input_is_a_value_error(kwargs, message):
    args = {"m0": 1000.0, "plds": 1.8, "labeling_duration": 1.8, **kwargs}
    m0, plds = args.pop("m0"), args.pop("plds")
    with pytest.raises(ValueError, match=message):
        quantify_single_delay(np.ones((2, 2, 1, 2)), m0, plds, PCASL, **args)


def test_pasl_without_bolus_cutoff_is_refused():
    with pytest.raises(ValueError, match="BolusCutOffDelayTime"):
        quantify_single_delay(np.ones((2, 1, 1, 1)), 1000.0, 1.8, PASL)


def test_precomputed_series_gives_the_same_result():
    constants = resolve_constants("PCASL", 3.0, bs_pulses=0)
    rng = np.random.default_rng(3)
    deltam = 0.007 * 1000 + rng.normal(0, 1, (4, 4, 3, 6))
    series = deltam_to_cbf(deltam, 1000.0, 1.8, constants, labeling_duration=1.8)
    direct, info = quantify_single_delay(deltam, 1000.0, 1.8, constants, labeling_duration=1.8)
    reused, info_reused = quantify_single_delay(
        deltam, 1000.0, 1.8, constants, labeling_duration=1.8, series=series
    )
    np.testing.assert_array_equal(direct, reused)
    assert info == info_reused
