"""The time course across the attack against simulated truth (no images: ROI-level cohorts).

Tolerances (stated in docs/group.md): with 40 MwA patients, each with an interictal, an ictal
(0.5-24 h, log-uniform) and a postictal (24-72 h) session (the simulator's default
variability and 5 % measurement error), and the truth ``biphasic(-0.20@0-2h,+0.15@6-24h)``
(sign change at 4.29 h), the estimated sign change lies within 1.5 h of the truth and the
biphasic test rejects at 0.05 in every cohort, and its 95 % interval covers the truth in at
least 5 of 6 (measured on 20 cohorts: median 4.12 h, largest error 1.27 h, coverage 0.95,
power 1.0; at 20 patients the power is about 0.8). Under a flat truth (20 patients) the
false-positive rate of the biphasic test and of the F test is at most 0.07 (100 cohorts), and
a monophasic dip is not called biphasic.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.interpolate import CubicSpline

from aslmig.group import timecourse
from aslmig.group.models import fit_models
from aslmig.group.modelspec import ModelSpec
from aslmig.sim.roitable import simulate_roi_values
from aslmig.sim.spec import CohortSpec, parse_effect, profile_change

TRUE_CHANGE = 2.0 + 4.0 * 0.20 / 0.35  # linear ramp from -0.20 at 2 h to +0.15 at 6 h
BIPHASIC = "MwA:occipital_cortex_L=biphasic(-0.20@0-2h,+0.15@6-24h)"
PHASES = ("interictal", "ictal", "postictal")


def cohort(seed: int, effect: str | None = BIPHASIC, n: int = 40, roi="occipital_cortex_L"):
    effects = (parse_effect(effect),) if effect else ()
    spec = CohortSpec(n_per_group={"MwA": n}, phases=PHASES, effects=effects, seed=seed)
    return simulate_roi_values(spec, [roi], measurement_sd=0.05)


def test_profile_syntax_and_truth():
    effect = parse_effect(BIPHASIC)
    assert effect.profile == ((-0.20, 0.0, 2.0), (0.15, 6.0, 24.0))
    assert profile_change(effect.profile, 1.0) == pytest.approx(-0.20)
    assert profile_change(effect.profile, TRUE_CHANGE) == pytest.approx(0.0, abs=1e-12)
    assert profile_change(effect.profile, 10.0) == pytest.approx(0.15)
    assert profile_change(effect.profile, 30.0) == 0.0
    assert effect.change_at("MwA", "ictal", None) == 0.0
    assert effect.change_at("MwoA", "ictal", 1.0) == 0.0
    assert parse_effect(str(effect)) == effect


@pytest.mark.parametrize(
    "text",
    [
        "MwA:occipital_cortex_L=biphasic(-0.20@0-2h)",
        "MwA:occipital_cortex_L=biphasic(-0.20@0-2h,-0.1@6-24h)",
        "MwA:occipital_cortex_L=profile(-0.20@3-2h)",
        "MwA:occipital_cortex_L=profile(-0.20@0-8h,0.1@6-24h)",
        "MwA:occipital_cortex_L=profile(minus@0-2h)",
    ],
)
def test_bad_profiles_are_one_line_errors(text):
    from aslmig.errors import InputError

    with pytest.raises(InputError, match="--effect"):
        parse_effect(text)


def test_restricted_cubic_spline_spans_the_natural_cubic_splines():
    """Any natural cubic spline through the knots (scipy) lies in the basis' span."""
    basis = timecourse.SplineBasis(np.log1p(np.array([0.5, 3.0, 12.0, 30.0, 60.0])))
    hours = np.expm1(np.linspace(0.0, np.log1p(72.0), 400))
    rng = np.random.default_rng(0)
    for _ in range(3):
        natural = CubicSpline(basis.knots, rng.normal(size=5), bc_type="natural")
        u = np.log1p(hours)
        target = np.where(
            u < basis.knots[0],
            natural(basis.knots[0]) + natural(basis.knots[0], 1) * (u - basis.knots[0]),
            np.where(
                u > basis.knots[-1],
                natural(basis.knots[-1]) + natural(basis.knots[-1], 1) * (u - basis.knots[-1]),
                natural(u),
            ),
        )
        columns = basis(hours)
        coefficients, *_ = np.linalg.lstsq(columns, target, rcond=None)
        np.testing.assert_allclose(columns @ coefficients, target, atol=1e-9)


def test_sign_change_interpolates_in_log_time():
    hours = np.array([1.0, 3.0, 7.0, 15.0])
    assert np.isnan(timecourse.sign_change(hours, np.array([1.0, 2.0, 1.0, 3.0])))
    assert np.isnan(timecourse.sign_change(hours, np.array([-1.0, -2.0, -1.0, -0.5])))
    change = timecourse.sign_change(hours, np.array([0.5, -1.0, 1.0, 2.0]))
    assert change == pytest.approx(np.expm1((np.log1p(3.0) + np.log1p(7.0)) / 2))


@pytest.mark.parametrize("seed", range(100, 106))
def test_biphasic_course_is_recovered(seed):
    fit = timecourse.fit_timecourse(cohort(seed), "since_onset", 72.0)
    test = fit.biphasic()
    print(f"\nseed {seed}: sign change {test.change_hours:.2f} h "
          f"[{test.change_low:.2f}, {test.change_high:.2f}], p {test.p:.2g}")  # fmt: skip
    assert test.p < 0.05
    assert abs(test.change_hours - TRUE_CHANGE) < 1.5
    curve = fit.curve()
    early = curve[curve["hours"] < 1.5]
    late = curve[(curve["hours"] > 8) & (curve["hours"] < 20)]
    assert (early["ci_high"] < 0).all() and (late["ci_low"] > 0).all()
    assert (curve["band_high"] - curve["band_low"] > curve["ci_high"] - curve["ci_low"]).all()


def test_sign_change_interval_covers_the_truth():
    covered = []
    for seed in range(100, 106):
        test = timecourse.fit_timecourse(cohort(seed), "since_onset", 72.0).biphasic()
        covered.append(test.change_low <= TRUE_CHANGE <= test.change_high)
    assert sum(covered) >= 5, covered


def test_false_positive_rate_under_a_flat_truth():
    biphasic, anything = [], []
    for seed in range(100):
        fit = timecourse.fit_timecourse(cohort(5000 + seed, effect=None, n=20), "since_onset", 72.0)
        biphasic.append(fit.biphasic().p < 0.05)
        anything.append(fit.f_test()[2] < 0.05)
    print(f"\nflat truth, 100 cohorts: biphasic FPR {np.mean(biphasic):.2f}, "
          f"F FPR {np.mean(anything):.2f}")  # fmt: skip
    assert np.mean(biphasic) <= 0.07 and np.mean(anything) <= 0.07


def test_a_monophasic_dip_is_not_biphasic():
    results = [
        timecourse.fit_timecourse(
            cohort(seed, effect="MwA:occipital_cortex_L=profile(-0.15@0-24h)"), "since_onset", 72
        )
        for seed in range(300, 306)
    ]
    assert all(fit.f_test()[2] < 0.05 for fit in results)
    assert all(fit.biphasic().p >= 0.05 for fit in results)


def test_model_rows_and_reasons():
    values = cohort(7)
    spec = ModelSpec(name="course", kind="timecourse", groups=("MwA",), reference="interictal")
    table = fit_models([spec], values, ["cbf"]).set_index("test")
    assert list(table.index) == ["timecourse_F", "biphasic"]
    assert table.loc["biphasic", "q"] < 0.05 and table.loc["timecourse_F", "q"] < 0.05
    assert abs(table.loc["biphasic", "estimate"] - TRUE_CHANGE) < 1.5
    assert table.loc["timecourse_F", "n_a"] == 80 and table.loc["timecourse_F", "n_b"] == 40
    untimed = values.assign(hours_since_onset=np.nan)
    assert fit_models([spec], untimed, ["cbf"]).empty  # no timed session: no rows at all
    few = values[values["subject"].isin(values["subject"].unique()[:2])]
    rows = fit_models([spec], few, ["cbf"])
    assert rows["p"].isna().all() and rows["note"].str.startswith("not estimable").all()


def test_points_are_the_curve_sessions_without_their_baselines():
    fit = timecourse.fit_timecourse(cohort(8), "since_onset", 72.0)
    assert len(fit.points) == 80 and set(fit.points.columns) == {
        "subject", "session", "hours", "value"
    }  # fmt: skip
    curve = np.interp(fit.points["hours"], fit.grid, fit.curve()["estimate"])
    residual = fit.points["value"] - curve
    assert abs(residual.mean()) < 2.0 and residual.std() < 10.0
    assert isinstance(fit.points, pd.DataFrame)
