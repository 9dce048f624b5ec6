"""Multi-delay fit: round trips over a parameter grid, slice timing, arterial component,
agreement with scipy on noisy data, repeats, errors."""

import itertools

import numpy as np
import pytest
from scipy.optimize import least_squares

from aslmig.cbf.constants import resolve_constants
from aslmig.cbf.kinetic import KineticSettings, arterial_signal_and_jacobian, kinetic_signal
from aslmig.cbf.kinetic_fit import FitOptions, fit_kinetic_curves
from aslmig.cbf.multi_delay import fit_multi_delay

ROUND_TRIP_RTOL = 1e-6
PCASL_PLDS = np.array([0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5])
PASL_TIS = np.arange(0.4, 3.01, 0.2)
CBF_GRID = [8.0, 25.0, 60.0, 110.0]
ATT_GRID = [0.53, 0.87, 1.21, 1.64, 2.03]


def _grid():
    cbf, att = np.meshgrid(CBF_GRID, ATT_GRID, indexing="ij")
    return cbf.reshape(4, 5, 1), att.reshape(4, 5, 1)


@pytest.mark.parametrize(
    ("kind", "model"), list(itertools.product(["PCASL", "PASL"], ["full", "whitepaper"]))
)
def test_round_trip_over_a_parameter_grid(kind, model):
    c = resolve_constants(kind, 3.0)
    delays, tau = (PCASL_PLDS, 1.8) if kind == "PCASL" else (PASL_TIS, 0.8)
    cbf, att = _grid()
    m0 = np.linspace(900, 1500, 20).reshape(4, 5, 1)
    ratio = kinetic_signal(
        cbf[..., None], att[..., None], delays, c, labeling_duration=tau, model=model
    )
    timing = {"labeling_duration": tau} if kind == "PCASL" else {"bolus_cutoff_delay_time": tau}
    fit = fit_multi_delay(ratio * m0[..., None], m0, delays, c, model=model, **timing)
    np.testing.assert_allclose(fit.cbf, cbf, rtol=ROUND_TRIP_RTOL)
    np.testing.assert_allclose(fit.att, att, rtol=ROUND_TRIP_RTOL)
    assert fit.converged.all()
    np.testing.assert_allclose(fit.r2, 1.0, atol=1e-9)
    assert np.all(fit.rmse < 1e-9)
    assert fit.provenance["delays_s"] == pytest.approx(list(delays))


def test_round_trip_with_2d_slice_timing():
    c = resolve_constants("PCASL", 3.0)
    cbf, att = _grid()  # axis 1 (5 long) holds the slices
    slice_timing = np.arange(5) * 0.06
    per_voxel_plds = PCASL_PLDS + slice_timing[None, :, None, None]
    ratio = kinetic_signal(cbf[..., None], att[..., None], per_voxel_plds, c, labeling_duration=1.8)
    fit = fit_multi_delay(
        ratio * 1000.0,
        1000.0,
        PCASL_PLDS,
        c,
        labeling_duration=1.8,
        slice_timing=slice_timing,
        slice_axis=1,
    )
    np.testing.assert_allclose(fit.cbf, cbf, rtol=ROUND_TRIP_RTOL)
    np.testing.assert_allclose(fit.att, att, rtol=ROUND_TRIP_RTOL)
    wrong = fit_multi_delay(ratio * 1000.0, 1000.0, PCASL_PLDS, c, labeling_duration=1.8)
    assert np.max(np.abs(wrong.att[:, -1] - att[:, -1])) > 0.2  # slice timing matters


@pytest.mark.parametrize("kind", ["PCASL", "PASL"])
def test_arterial_component_round_trip(kind):
    c = resolve_constants(kind, 3.0)
    delays, tau = (np.arange(0.2, 3.01, 0.2), 1.8) if kind == "PCASL" else (PASL_TIS, 0.8)
    s = KineticSettings.from_constants(c, "full")
    cbf = np.array([[22.0], [61.0], [47.0]])
    att = np.array([[0.93], [1.37], [1.12]])
    abv = np.array([[0.004], [0.017], [0.011]])
    att_a = np.array([[0.47], [0.73], [0.58]])
    ratio = kinetic_signal(cbf, att, delays, c, labeling_duration=tau, abv=abv, att_arterial=att_a)
    result = fit_kinetic_curves(ratio, delays, tau, s, arterial=True)
    truth = np.hstack([cbf, att, abv, att_a])
    np.testing.assert_allclose(result.params, truth, rtol=ROUND_TRIP_RTOL)
    tissue_only = fit_kinetic_curves(ratio, delays, tau, s)
    assert np.max(np.abs(tissue_only.params[:, 0] - cbf[:, 0]) / cbf[:, 0]) > 0.01
    assert arterial_signal_and_jacobian(abv, att_a, delays, tau, s, 0.1)[0].max() > 0


def test_noisy_fit_matches_scipy_least_squares_per_voxel():
    """Same minimum as scipy's trust-region solver started at the truth, never a worse one.

    The cost has kinks where ATT equals a PLD; a minimum can sit exactly on one, where
    scipy's smooth solver stops slightly short, so parameters are compared off the kinks.
    """
    c = resolve_constants("PCASL", 3.0)
    s = KineticSettings.from_constants(c, "full")
    rng = np.random.default_rng(7)
    n = 60
    cbf = rng.uniform(20, 90, (n, 1))
    att = rng.uniform(0.6, 1.8, (n, 1))
    clean = kinetic_signal(cbf, att, PCASL_PLDS, c, labeling_duration=1.8)
    noisy = clean + rng.normal(0, 5e-4, clean.shape)
    ours = fit_kinetic_curves(noisy, PCASL_PLDS, 1.8, s)
    compared = 0
    for i in range(n):

        def residual(p, i=i):
            return kinetic_signal(p[0], p[1], PCASL_PLDS, c, labeling_duration=1.8) - noisy[i]

        ref = least_squares(
            residual,
            [cbf[i, 0], att[i, 0]],
            bounds=([-100, 0], [500, 4]),
            xtol=1e-15,
            ftol=1e-15,
            gtol=1e-15,
        )
        assert ours.sse[i] / 2 <= ref.cost * (1 + 1e-9)  # our sse is twice scipy's cost
        if np.min(np.abs(ref.x[1] - PCASL_PLDS)) > 1e-3:
            np.testing.assert_allclose(ours.params[i], ref.x, rtol=1e-6)
            compared += 1
    assert compared > n // 2


def test_repeats_are_averaged_and_weighted():
    c = resolve_constants("PCASL", 3.0)
    plds = np.repeat([0.5, 1.0, 1.5, 2.0], 3)
    ratio = kinetic_signal(50.0, 1.1, plds, c, labeling_duration=1.8)
    deltam = np.broadcast_to(ratio * 1000.0, (2, 2, 1, plds.size))
    fit = fit_multi_delay(deltam, 1000.0, plds, c, labeling_duration=1.8)
    np.testing.assert_allclose(fit.cbf, 50.0, rtol=ROUND_TRIP_RTOL)
    assert fit.provenance["repeats_per_delay"] == [3, 3, 3, 3]


def test_threads_and_chunks_give_identical_results():
    c = resolve_constants("PCASL", 3.0)
    s = KineticSettings.from_constants(c, "full")
    rng = np.random.default_rng(3)
    cbf, att = rng.uniform(10, 100, (500, 1)), rng.uniform(0.4, 2.2, (500, 1))
    ratio = kinetic_signal(cbf, att, PCASL_PLDS, c, labeling_duration=1.8)
    ratio = ratio + rng.normal(0, 3e-4, ratio.shape)
    one = fit_kinetic_curves(ratio, PCASL_PLDS, 1.8, s)
    many = fit_kinetic_curves(
        ratio, PCASL_PLDS, 1.8, s, options=FitOptions(n_threads=2, chunk_size=77)
    )
    np.testing.assert_array_equal(one.params, many.params)


def test_mask_limits_the_fit_and_fills_outside():
    c = resolve_constants("PCASL", 3.0)
    ratio = kinetic_signal(40.0, 1.0, PCASL_PLDS, c, labeling_duration=1.8)
    deltam = np.broadcast_to(ratio * 1000.0, (3, 1, 1, PCASL_PLDS.size))
    mask = np.array([True, False, True]).reshape(3, 1, 1)
    fit = fit_multi_delay(
        deltam, 1000.0, PCASL_PLDS, c, labeling_duration=1.8, mask=mask, fill_value=np.nan
    )
    assert np.isnan(fit.cbf[1, 0, 0]) and not fit.converged[1, 0, 0]
    np.testing.assert_allclose(fit.cbf[[0, 2]], 40.0, rtol=ROUND_TRIP_RTOL)
    assert fit.provenance["fit_summary"]["n_voxels_fitted"] == 2


@pytest.mark.parametrize(
    ("plds", "kwargs", "message"),
    [
        ([1.8, 1.8, 1.8, 1.8], {}, "distinct delay"),
        ([0.5, 1.0, 1.5], {}, "PostLabelingDelay has 3 values"),
        ([0.5, 1.0, 1.5, 2.0], {"model": "buxton"}, "unknown kinetic model"),
        ([0.5, 1.0, 1.5, 2.0], {"labeling_duration": None}, "LabelingDuration"),
    ],
)
def test_bad_input_is_a_value_error(plds, kwargs, message):
    c = resolve_constants("PCASL", 3.0)
    args = {"labeling_duration": 1.8, **kwargs}
    with pytest.raises(ValueError, match=message):
        fit_multi_delay(np.ones((2, 1, 1, 4)), 1000.0, plds, c, **args)


def test_tissue_t1_map_weights_grey_and_white_matter():
    from aslmig.cbf.multi_delay import tissue_t1_map

    gm = np.array([1.0, 0.0, 0.5, 0.0, 0.02])
    wm = np.array([0.0, 1.0, 0.5, 0.0, 0.02])
    # mixed voxels: weighted by fraction x flow (grey matter 2.5 x white matter)
    mixed = (2.5 * 0.5 * 1.3 + 0.5 * 0.8) / (2.5 * 0.5 + 0.5)
    t1 = tissue_t1_map(gm, wm, 1.3, 0.8)
    np.testing.assert_allclose(t1, [1.3, 0.8, mixed, 1.3, 1.3], rtol=0, atol=1e-12)
    by_fraction = tissue_t1_map(gm, wm, 1.3, 0.8, flow_ratio=1.0)
    np.testing.assert_allclose(by_fraction, [1.3, 0.8, 1.05, 1.3, 1.3], rtol=0, atol=1e-12)


@pytest.mark.parametrize("arterial", [False, True])
def test_leave_one_repeat_out_cbf_matches_refits(arterial):
    """The first-order leave-one-out CBF equals refitting without that repeat (within 1 %
    of the change), so its jackknife standard error is the refits' one."""
    c = resolve_constants("PCASL", 3.0)
    plds = np.array([0.25, 0.5, 0.75, 1.0, 1.25, 1.5])
    n_repeats = 4
    rng = np.random.default_rng(5)
    cbf = rng.uniform(40, 70, (30, 1))
    extra = {"abv": 0.01, "att_arterial": 0.6} if arterial else {}
    ratio = kinetic_signal(cbf, 1.1, plds, c, labeling_duration=1.4, **extra)
    series = np.tile(ratio, n_repeats) + rng.normal(0, 2e-4, (30, 6 * n_repeats))
    volumes = np.tile(plds, n_repeats)
    deltam = (series * 1000.0).reshape(30, 1, 1, -1)
    fit = fit_multi_delay(deltam, 1000.0, volumes, c, labeling_duration=1.4, arterial=arterial)
    assert fit.cbf_replicates.shape == (30, 1, 1, n_repeats)
    for left_out in range(n_repeats):
        keep = np.repeat(np.arange(n_repeats) != left_out, 6)
        refit = fit_multi_delay(deltam[..., keep], 1000.0, volumes[keep], c,
                                labeling_duration=1.4, arterial=arterial)  # fmt: skip
        change = refit.cbf - fit.cbf
        error = fit.cbf_replicates[..., left_out] - refit.cbf
        assert np.median(np.abs(error) / np.abs(change)) < 0.02
        assert np.max(np.abs(error)) < 0.05 * np.max(np.abs(change)) + 1e-3
