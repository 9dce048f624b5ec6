"""The batched kinetic fit never raises on a voxel, flags what it cannot fit, and is exact
where the data determine the parameters (issue 13 items 1-3)."""

import numpy as np
import pytest
from scipy.optimize import least_squares

from aslmig.cbf.constants import resolve_constants
from aslmig.cbf.kinetic import KineticSettings, kinetic_signal
from aslmig.cbf.kinetic_fit import (
    ArrivalPriors,
    FitBounds,
    FitOptions,
    FitStatus,
    _solve_damped,
    earliest_resolvable_att,
    fit_kinetic_curves,
)

ROUND_TRIP_RTOL = 1e-6
#: sub-O2019's protocol (the real multi-delay series): 6 PLDs, labeling 1.4 s
O2019_PLDS = np.array([0.25, 0.5, 0.75, 1.0, 1.25, 1.5])
O2019_TAU = 1.4
#: its mean grey-matter ΔM/M0 curve, as measured (issue 13)
O2019_GM_CURVE = np.array([0.0080, 0.0073, 0.0060, 0.0050, 0.0041, 0.0035])


def _settings(kind="PCASL", model="full"):
    constants = resolve_constants(kind, 3.0)
    return constants, KineticSettings.from_constants(constants, model)


def _check_never_fails(result, n, n_parameters):
    """Finite parameters inside the bounds, or NaN with the non-finite-input flag."""
    assert result.params.shape == (n, n_parameters)
    not_fitted = (result.status & FitStatus.NON_FINITE_INPUT) > 0
    assert np.isnan(result.params[not_fitted]).all()
    fitted = result.params[~not_fitted]
    lower, upper = FitBounds().arrays(n_parameters)
    assert np.isfinite(fitted[:, :3]).all()
    if n_parameters == 4:  # arterial arrival NaN only where the tissue-only fit was kept
        assert (fitted[np.isnan(fitted[:, 3]), 2] == 0).all()
    finite = np.nan_to_num(fitted, nan=lower[-1])
    assert (finite >= lower - 1e-12).all() and (finite <= upper + 1e-12).all()
    assert np.isfinite(result.sse[~not_fitted]).all()
    flagged = (result.status[~not_fitted] & FitStatus.NOT_CONVERGED) > 0
    np.testing.assert_array_equal(flagged, ~result.converged[~not_fitted])


def _fuzz_curves(rng, n_each=300):
    """Random curves of every hostile kind, on the O2019 protocol (6 delays)."""
    clean = np.broadcast_to(O2019_GM_CURVE, (n_each, 6))
    kinds = {
        "noise 0-200 %": clean
        * (1 + rng.uniform(0, 2, (n_each, 1)) * rng.normal(size=(n_each, 6))),
        "flat": np.full((n_each, 6), 0.005),
        "zero": np.zeros((n_each, 6)),
        "negative": -np.abs(clean) * rng.uniform(0.1, 3.0, (n_each, 1)),
        "spike": np.where(rng.random((n_each, 6)) < 0.2, 50.0, clean),
        "huge": clean * 1e6,
        "tiny": clean * 1e-12,
        "pure noise": rng.normal(0, 0.01, (n_each, 6)),
    }
    nan = clean.copy()
    nan[rng.random((n_each, 6)) < 0.3] = np.nan
    nan[:, 0] = np.where(rng.random(n_each) < 0.5, np.inf, nan[:, 0])
    kinds["NaN/inf"] = nan
    return np.concatenate(list(kinds.values()))


@pytest.mark.parametrize("arterial", [False, True])
@pytest.mark.parametrize(("kind", "model"), [("PCASL", "full"), ("PCASL", "whitepaper"),
                                             ("PASL", "full")])  # fmt: skip
def test_fuzz_never_raises_and_flags(kind, model, arterial):
    rng = np.random.default_rng(13)
    _, settings = _settings(kind, model)
    curves = _fuzz_curves(rng)
    taus = O2019_TAU if kind == "PCASL" else 0.8
    delays = O2019_PLDS if kind == "PCASL" else O2019_PLDS + 0.8
    result = fit_kinetic_curves(curves, delays, taus, settings, weights=np.full(6, 8),
                                arterial=arterial)  # fmt: skip
    _check_never_fails(result, curves.shape[0], 4 if arterial else 2)
    assert ((result.status & FitStatus.NON_FINITE_INPUT) > 0).sum() == np.sum(
        ~np.isfinite(curves).all(axis=1)
    )


@pytest.mark.parametrize("arterial", [False, True])
def test_fuzz_with_a_single_delay_repeated(arterial):
    """Six copies of one PLD: CBF and ATT are not separable, yet nothing raises."""
    rng = np.random.default_rng(1)
    _, settings = _settings()
    curves = _fuzz_curves(rng, 50)
    result = fit_kinetic_curves(curves, np.full(6, 0.75), O2019_TAU, settings, arterial=arterial)
    _check_never_fails(result, curves.shape[0], 4 if arterial else 2)


def test_the_issue_reproduction_fits_every_voxel():
    """Issue 13: sub-O2019's GM curve + 50 % noise, 20,000 curves raised LinAlgError."""
    rng = np.random.default_rng(2019)
    curves = O2019_GM_CURVE * (1 + 0.5 * rng.normal(size=(20_000, 6)))
    for model in ("full", "whitepaper"):
        _, settings = _settings(model=model)
        result = fit_kinetic_curves(curves, O2019_PLDS, O2019_TAU, settings,
                                    weights=np.full(6, 8))  # fmt: skip
        _check_never_fails(result, 20_000, 2)
        assert result.converged.mean() > 0.99


def test_arterial_white_paper_model_on_many_noise_free_voxels():
    """Issue 13: arterial=True with the white-paper model raised on >= 200 noise-free voxels."""
    constants, settings = _settings(model="whitepaper")
    rng = np.random.default_rng(5)
    n = 400
    cbf, att = rng.uniform(20, 90, (n, 1)), rng.uniform(0.6, 1.6, (n, 1))
    curves = kinetic_signal(cbf, att, O2019_PLDS, constants, labeling_duration=O2019_TAU,
                            model="whitepaper")  # fmt: skip
    result = fit_kinetic_curves(curves, O2019_PLDS, O2019_TAU, settings, arterial=True)
    _check_never_fails(result, n, 4)
    # no arterial signal: the tissue-only fit is kept and exact
    np.testing.assert_allclose(result.params[:, 0], cbf[:, 0], rtol=ROUND_TRIP_RTOL)
    assert (result.params[:, 2] == 0).all()


def _identifiable_arterial_grid():
    """Arterial configurations the O2019 protocol can tell apart: the arterial arrival at
    least 0.15 s after the first PLD and 0.3 s before tissue arrival."""
    rows = []
    for cbf in (25.0, 55.0, 85.0):
        for att in (0.9, 1.2, 1.5):
            for abv in (0.005, 0.015):
                for lag in (0.3, 0.5):
                    att_a = att - lag
                    if att_a >= O2019_PLDS[0] + 0.15:
                        rows.append((cbf, att, abv, att_a))
    return np.array(rows)


@pytest.mark.parametrize("model", ["full", "whitepaper"])
def test_arterial_round_trip_on_the_real_protocol(model):
    constants, settings = _settings(model=model)
    truth = _identifiable_arterial_grid()
    curves = kinetic_signal(truth[:, :1], truth[:, 1:2], O2019_PLDS, constants,
                            labeling_duration=O2019_TAU, model=model, abv=truth[:, 2:3],
                            att_arterial=truth[:, 3:4])  # fmt: skip
    result = fit_kinetic_curves(curves, O2019_PLDS, O2019_TAU, settings, arterial=True)
    np.testing.assert_allclose(result.params, truth, rtol=ROUND_TRIP_RTOL)
    assert result.converged.all() and (result.status == 0).all()


@pytest.mark.parametrize("kind", ["PCASL", "PASL"])
def test_arterial_round_trip_with_slice_timing(kind):
    constants, settings = _settings(kind)
    truth = _identifiable_arterial_grid()
    tau = O2019_TAU if kind == "PCASL" else 0.8
    base = O2019_PLDS if kind == "PCASL" else O2019_PLDS + 0.8
    delays = base + np.linspace(0.0, 0.3, truth.shape[0])[:, None]  # one slice per voxel
    # the arterial bolus's trailing edge (PCASL: at PLD = ATTa; PASL: at TI = ATTa + TI1)
    # must pass after the slice's first delay for the data to see it
    trailing_edge = truth[:, 3] + (tau if kind == "PASL" else 0.0)
    seen = trailing_edge >= delays[:, 0] + 0.15
    truth, delays = truth[seen], delays[seen]
    assert truth.shape[0] >= 10
    curves = kinetic_signal(truth[:, :1], truth[:, 1:2], delays, constants, labeling_duration=tau,
                            abv=truth[:, 2:3], att_arterial=truth[:, 3:4])  # fmt: skip
    result = fit_kinetic_curves(curves, delays, tau, settings, arterial=True)
    np.testing.assert_allclose(result.params, truth, rtol=ROUND_TRIP_RTOL)


def test_att_at_or_below_the_first_pld_white_paper_convention():
    """Every ATT <= the first PLD gives the same white-paper curve: CBF is exact, ATT is set
    to the first PLD (the latest ATT the data allow) and flagged, not a random value."""
    constants, settings = _settings(model="whitepaper")
    att = np.array([[0.0], [0.1], [0.2], [0.25]])
    curves = kinetic_signal(60.0, att, O2019_PLDS, constants, labeling_duration=O2019_TAU,
                            model="whitepaper")  # fmt: skip
    result = fit_kinetic_curves(curves, O2019_PLDS, O2019_TAU, settings)
    np.testing.assert_allclose(result.params[:, 0], 60.0, rtol=ROUND_TRIP_RTOL)
    np.testing.assert_allclose(result.params[:, 1], O2019_PLDS[0], atol=1e-5)
    assert (result.status & FitStatus.ATT_UNRESOLVED).all()
    assert result.converged.all()


def test_att_below_the_first_pld_is_recovered_by_the_full_model():
    """The full model still tells ATTs below the first PLD apart (through the tissue T1
    term); on noise-free data the fit finds them (issue 13: 1.3-1.5 % of voxels were 1 % off
    in CBF and 0.5 s off in ATT yet flagged converged)."""
    constants, settings = _settings()
    rng = np.random.default_rng(3)
    cbf, att = rng.uniform(10, 100, (2000, 1)), rng.uniform(0.0, 2.0, (2000, 1))
    plds = np.array([0.25, 0.5, 1.0, 1.5, 2.0, 2.5])
    curves = kinetic_signal(cbf, att, plds, constants, labeling_duration=1.8)
    result = fit_kinetic_curves(curves, plds, 1.8, settings)
    np.testing.assert_allclose(result.params, np.hstack([cbf, att]), rtol=1e-5, atol=1e-6)
    flagged = (result.status & FitStatus.ATT_UNRESOLVED) > 0
    np.testing.assert_array_equal(flagged, att[:, 0] <= plds[0] + 1e-9)


def test_earliest_resolvable_att_by_labeling_type():
    assert earliest_resolvable_att(np.array([0.5, 1.0]), np.array([1.8, 1.8]), False) == 0.5
    assert earliest_resolvable_att(np.array([1.2, 2.0]), np.array([0.8, 0.8]), True) == (
        pytest.approx(0.4)
    )


def test_status_flags_bounds_and_non_convergence():
    constants, settings = _settings()
    curves = np.vstack([
        kinetic_signal(60.0, 1.0, O2019_PLDS, constants, labeling_duration=O2019_TAU) * 20,
        kinetic_signal(60.0, 1.0, O2019_PLDS, constants, labeling_duration=O2019_TAU),
    ])  # fmt: skip
    result = fit_kinetic_curves(curves, O2019_PLDS, O2019_TAU, settings)
    assert result.status[0] & FitStatus.AT_BOUND and result.params[0, 0] == 500.0
    assert result.status[1] == 0
    rushed = fit_kinetic_curves(curves, O2019_PLDS, O2019_TAU, settings,
                                options=FitOptions(max_iterations=1))  # fmt: skip
    assert (rushed.status & FitStatus.NOT_CONVERGED).any()


def test_a_singular_system_falls_back_instead_of_raising():
    singular = np.array([[[1.0, 1.0], [1.0, 1.0]], [[2.0, 0.0], [0.0, 2.0]], [[np.nan, 0], [0, 1]]])
    rhs = np.array([[1.0, 1.0], [2.0, 4.0], [1.0, 1.0]])
    step = _solve_damped(singular, rhs)
    np.testing.assert_allclose(step[0], [0.5, 0.5])
    np.testing.assert_allclose(step[1], [1.0, 2.0])
    np.testing.assert_array_equal(step[2], [0.0, 0.0])


def test_priors_vanish_on_noise_free_data():
    constants, settings = _settings()
    truth = np.array([[40.0, 0.7], [70.0, 1.9]])
    curves = kinetic_signal(truth[:, :1], truth[:, 1:], O2019_PLDS, constants,
                            labeling_duration=O2019_TAU)  # fmt: skip
    result = fit_kinetic_curves(
        curves,
        O2019_PLDS,
        O2019_TAU,
        settings,
        priors=ArrivalPriors.basil("PCASL"),
        noise_variance=np.zeros(2),
    )
    np.testing.assert_allclose(result.params, truth, rtol=ROUND_TRIP_RTOL)


def test_priors_give_the_maximum_a_posteriori_estimate():
    """Against scipy's least_squares on the same cost: data residuals plus prior rows."""
    constants, settings = _settings()
    rng = np.random.default_rng(11)
    n = 40
    noise_sd = 1e-3
    curves = kinetic_signal(rng.uniform(30, 80, (n, 1)), rng.uniform(0.6, 1.6, (n, 1)),
                            O2019_PLDS, constants, labeling_duration=O2019_TAU)  # fmt: skip
    curves = curves + rng.normal(0, noise_sd / np.sqrt(8), curves.shape)
    priors = ArrivalPriors(att_mean=1.3, att_sd=0.5)
    variance = np.full(n, noise_sd**2)
    ours = fit_kinetic_curves(curves, O2019_PLDS, O2019_TAU, settings, weights=np.full(6, 8),
                              priors=priors, noise_variance=variance)  # fmt: skip
    compared = 0
    for i in range(n):

        def residual(p, i=i):
            model = kinetic_signal(p[0], p[1], O2019_PLDS, constants, labeling_duration=O2019_TAU)
            prior = noise_sd * (p[1] - 1.3) / 0.5
            return np.append(np.sqrt(8) * (model - curves[i]), prior)

        ref = least_squares(residual, ours.params[i] * [1.02, 0.97], bounds=([-100, 0], [500, 4]),
                            xtol=1e-15, ftol=1e-15, gtol=1e-15, x_scale=[10, 0.1])  # fmt: skip
        assert (residual(ours.params[i]) ** 2).sum() <= 2 * ref.cost * (1 + 1e-8)
        if np.min(np.abs(ref.x[1] - O2019_PLDS)) > 1e-3:
            np.testing.assert_allclose(ours.params[i], ref.x, rtol=1e-5)
            compared += 1
    assert compared > n // 2


@pytest.mark.parametrize("noise_sd", [5e-4, 2e-3])  # 6 % and 25 % of the first-PLD signal
def test_arterial_component_is_kept_only_where_the_data_need_it(noise_sd):
    """Detection rate at sub-O2019's median aBV (1.35 %) with its 8 repeats per delay:
    measured 100 % at noise SD 6-25 % of the first-PLD GM signal (3 seeds x 250 curves; 93-95 %
    at 50 %), false selection 0.8-2 %."""
    constants, settings = _settings()
    rng = np.random.default_rng(21)
    n = 300
    cbf, att = rng.uniform(30, 80, (n, 1)), rng.uniform(0.8, 1.5, (n, 1))
    abv = np.where(np.arange(n)[:, None] < n // 2, 0.0135, 0.0)
    clean = kinetic_signal(cbf, att, O2019_PLDS, constants, labeling_duration=O2019_TAU,
                           abv=abv, att_arterial=att - 0.4)  # fmt: skip
    curves = clean + rng.normal(0, noise_sd / np.sqrt(8), clean.shape)
    result = fit_kinetic_curves(
        curves,
        O2019_PLDS,
        O2019_TAU,
        settings,
        weights=np.full(6, 8),
        arterial=True,
        noise_variance=np.full(n, noise_sd**2),
    )
    with_arterial = result.params[:, 2] > 0
    assert with_arterial[: n // 2].mean() >= 0.95
    assert with_arterial[n // 2 :].mean() <= 0.05
    assert np.isnan(result.params[~with_arterial, 3]).all()


@pytest.mark.parametrize(("noise_sd", "repeats"), [(2e-4, 8), (2e-4, 1), (1e-3, 1)])
def test_arterial_component_false_selection_is_controlled(noise_sd, repeats):
    """Tissue-only curves plus noise keep the arterial component in few voxels, with or
    without repeats (a residual variance with 2 degrees of freedom once kept it in 49-53 %).

    The F-test's level is 1 %; the arterial arrival is a nonlinear parameter searched over
    several starts, which inflates the rate: measured 0.9-1.8 % on 2,000 voxels, bound 3 %
    (1 % plus more than 6 binomial standard errors of 600 voxels).
    """
    constants, settings = _settings()
    rng = np.random.default_rng(repeats)
    n = 600
    cbf, att = rng.uniform(30, 80, (n, 1)), rng.uniform(0.8, 1.5, (n, 1))
    clean = kinetic_signal(cbf, att, O2019_PLDS, constants, labeling_duration=O2019_TAU)
    curves = clean + rng.normal(0, noise_sd / np.sqrt(repeats), clean.shape)
    known = {"weights": np.full(6, repeats), "noise_variance": np.full(n, noise_sd**2)}
    result = fit_kinetic_curves(
        curves, O2019_PLDS, O2019_TAU, settings, arterial=True, **(known if repeats > 1 else {})
    )
    assert (result.params[:, 2] > 0).mean() <= 0.03
    # the tissue-only fit kept in the others is unbiased
    assert np.median(result.params[:, 1] - att[:, 0]) == pytest.approx(0.0, abs=0.01)


def test_a_known_noise_variance_without_repeats_keeps_the_arterial_component():
    """A noise variance given for single curves is known (ν = ∞): the χ²(2)/2 quantile.

    scipy's F(2, ∞) quantile is NaN, which once made the comparison false everywhere, so
    the component was never kept with a given variance and no repeats.
    """
    constants, settings = _settings()
    rng = np.random.default_rng(22)
    n = 200
    cbf, att = rng.uniform(30, 80, (n, 1)), rng.uniform(0.8, 1.5, (n, 1))
    clean = kinetic_signal(cbf, att, O2019_PLDS, constants, labeling_duration=O2019_TAU,
                           abv=0.015, att_arterial=att - 0.4)  # fmt: skip
    noise_sd = 7e-5  # 2e-4 over the 8 repeats of sub-O2019, averaged
    curves = clean + rng.normal(0, noise_sd, clean.shape)
    result = fit_kinetic_curves(curves, O2019_PLDS, O2019_TAU, settings, arterial=True,
                                noise_variance=np.full(n, noise_sd**2))  # fmt: skip
    assert (result.params[:, 2] > 0).mean() > 0.95


def test_selection_level_one_keeps_the_four_parameter_fit_everywhere():
    """Level 1.0 (to compare with a fitter of the four-parameter model): no tissue-only
    fallback where the arterial fit lowers the misfit, and the same fit where it is kept."""
    constants, settings = _settings()
    rng = np.random.default_rng(23)
    n = 200
    cbf, att = rng.uniform(30, 80, (n, 1)), rng.uniform(0.8, 1.5, (n, 1))
    clean = kinetic_signal(cbf, att, O2019_PLDS, constants, labeling_duration=O2019_TAU)
    curves = clean + rng.normal(0, 2e-4, clean.shape)
    args = (curves, O2019_PLDS, O2019_TAU, settings)
    default = fit_kinetic_curves(*args, arterial=True)
    every = fit_kinetic_curves(*args, arterial=True,
                               options=FitOptions(arterial_selection_level=1.0))  # fmt: skip
    assert (default.params[:, 2] > 0).mean() < 0.05
    assert np.isfinite(every.params[:, 3]).mean() > 0.9
    kept = np.isfinite(default.params[:, 3])
    np.testing.assert_array_equal(every.params[kept], default.params[kept])


def test_arterial_start_grid_finds_the_lowest_local_minima():
    """The numba start-grid kernel against a brute-force least-squares scan of the grid."""
    from aslmig.cbf.kinetic import arterial_signal_and_jacobian
    from aslmig.cbf.kinetic_fit import _att_grid, _PairGrid, _tissue_basis

    _, settings = _settings()
    rng = np.random.default_rng(24)
    taus = np.full(6, O2019_TAU)
    att_grid = _att_grid(0.0, 4.0, 0.05, O2019_PLDS, taus, False)
    art_grid = np.arange(0.0, 1.85, 0.05)
    tissue = _tissue_basis(att_grid, O2019_PLDS, taus, settings)
    arterial = arterial_signal_and_jacobian(1.0, art_grid[:, None], O2019_PLDS, taus,
                                            settings, 0.1)[0]  # fmt: skip
    w = np.ones(6)
    y = O2019_GM_CURVE * (1 + 0.3 * rng.normal(size=(20, 6)))
    starts, starts_sse = _PairGrid(att_grid, art_grid, tissue, arterial, w).best_minima(y)
    for v in range(y.shape[0]):
        sse = np.full((att_grid.size + 2, art_grid.size + 2), np.inf)
        for i in range(att_grid.size):
            for j in range(art_grid.size):
                if art_grid[j] > att_grid[i]:
                    continue
                design = np.column_stack([tissue[i], arterial[j]])
                coef, *_ = np.linalg.lstsq(design, y[v], rcond=None)
                if coef[1] > 0:
                    sse[i + 1, j + 1] = np.sum((design @ coef - y[v]) ** 2)
        inner = sse[1:-1, 1:-1]
        shifted = [sse[di : di + inner.shape[0], dj : dj + inner.shape[1]]
                   for di in range(3) for dj in range(3) if (di, dj) != (1, 1)]  # fmt: skip
        local = np.isfinite(inner) & np.all([inner <= s for s in shifted], axis=0)
        expected = np.sort(inner[local])[:3]
        np.testing.assert_allclose(starts_sse[v, : expected.size], expected, rtol=1e-6,
                                   atol=1e-14)  # fmt: skip
        # each start sits on a local minimum (to rounding: ATTs past the signal tie exactly)
        slack = 1e-9 * np.abs(inner) + 1e-18
        near_local = np.isfinite(inner) & np.all([inner <= s + slack for s in shifted], axis=0)
        for k in range(expected.size):
            i = np.flatnonzero(att_grid == starts[v, k, 1])[0]
            j = np.flatnonzero(art_grid == starts[v, k, 3])[0]
            assert near_local[i, j]
            assert inner[i, j] == pytest.approx(starts_sse[v, k], rel=1e-6, abs=1e-14)
