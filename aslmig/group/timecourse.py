"""Regional CBF across the migraine attack: a within-patient curve and a test of "biphasic".

Model (``docs/group.md``, "Time course across the attack")
----------------------------------------------------------
For the sessions of one group subset, one ROI and one measure::

    value_ij = b0 + u_i + A_ij f(t_ij) + e_ij,   u_i ~ N(0, tau2),  e_ij ~ N(0, sigma2)

``u_i`` is the participant's random intercept, ``A_ij`` is 1 for a session on the clock
(``0 <= t <= window``; ``t`` = hours since the attack onset, or hours to the next onset) and 0
for a reference (interictal) session, which anchors ``f = 0``. ``f`` is a restricted (natural)
cubic spline in ``u = log(1 + t)`` (Harrell 2015, section 2.4.5): linear beyond its outer
knots, smooth, with ``k`` parameters for ``k`` knots at Harrell's quantiles of the observed
``u``. Log time because the changes are fast early in an attack (aura and the first hours of
headache last minutes to an hour) and slow later (hyperperfusion over many hours): equal
resolution per doubling of time. ``k = 3`` below 15 sessions on the clock, 4 below 30, else 5,
never more than the residual degrees of freedom allow: on simulated biphasic courses
(-20 % at 0-2 h, +15 % at 6-24 h; true sign change 4.3 h; 20 patients with an interictal, an
ictal and a postictal session) 4 knots put the sign change at 3.4 h (median of 8 cohorts) and
5 knots at 4.1 h, so 5 knots are used as soon as there are 30 sessions on the clock (Harrell's
rule of thumb would wait for 100). The fit is REML
(:func:`aslmig.group.primitives.reml_random_intercept`), with between-within df
``n_sessions - n_participants - k``.

Reported per ROI and measure:

* the curve ``f(t)`` on a grid with its pointwise 95 % confidence band and a simultaneous
  (sup-t) 95 % band;
* ``timecourse_F``: the Wald F test of ``f = 0`` everywhere (any change across the attack);
* ``biphasic``: the intersection-union test (Berger 1982) of "significantly negative at some
  time, and significantly positive at a later time" against "monophasic". Each part is a sup-t
  test over the grid (``p = P(max_g T_g >= s)`` under the multivariate t of the curve's
  estimates, by Monte Carlo), and ``p_biphasic = max(p_negative, p_positive)``: the union of
  monophasic nulls is rejected only when both parts are. The estimate is the time of the sign
  change (the first crossing of ``f`` from below zero to above, after its minimum), with a 95 %
  interval from draws of the spline coefficients.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd
from scipy import stats

from aslmig.group.primitives import (
    MixedFit,
    near_constant,
    not_estimable,
    reml_random_intercept,
)

#: Clocks of a time-course model: the label column they read.
CLOCKS = {"since_onset": "hours_since_onset", "to_next_onset": "hours_to_next_onset"}
#: Default window (hours) of each clock.
DEFAULT_WINDOW = {"since_onset": 72.0, "to_next_onset": 48.0}
#: Knot positions (quantiles of log(1 + hours)) by number of knots (Harrell 2015, table 2.3).
KNOT_QUANTILES = {
    3: (0.10, 0.50, 0.90),
    4: (0.05, 0.35, 0.65, 0.95),
    5: (0.05, 0.275, 0.50, 0.725, 0.95),
}
GRID_POINTS = 60
#: Monte Carlo draws of the sup-t null distribution and of the sign-change interval.
NULL_DRAWS = 10000
ROOT_DRAWS = 2000
SEED = 20230071  # fixed: the same data always give the same p values and intervals


@dataclass(frozen=True)
class SplineBasis:
    """A restricted cubic spline in ``u = log(1 + hours)`` with intercept.

    Attributes
    ----------
    knots : numpy.ndarray
        Knot positions in ``u``, increasing, at least three.
    """

    knots: np.ndarray

    @classmethod
    def at_quantiles(cls, hours: np.ndarray, count: int) -> SplineBasis:
        """Knots at Harrell's quantiles of ``log(1 + hours)``."""
        u = np.log1p(np.asarray(hours, float))
        return cls(np.quantile(u, KNOT_QUANTILES[count]))

    @property
    def size(self) -> int:
        """Number of columns (and of parameters of ``f``): the number of knots."""
        return len(self.knots)

    def __call__(self, hours: np.ndarray) -> np.ndarray:
        """Columns ``1, u, h_1(u), ..., h_{k-2}(u)`` (Harrell's normalised truncated cubics)."""
        u = np.log1p(np.asarray(hours, float))
        t = self.knots
        k = t.size
        scale = (t[-1] - t[0]) ** 2

        def cube(x: np.ndarray) -> np.ndarray:
            return np.maximum(x, 0.0) ** 3

        columns = [np.ones_like(u), u]
        for j in range(k - 2):
            columns.append(
                (
                    cube(u - t[j])
                    - cube(u - t[-2]) * (t[-1] - t[j]) / (t[-1] - t[-2])
                    + cube(u - t[-1]) * (t[-2] - t[j]) / (t[-1] - t[-2])
                )
                / scale
            )
        return np.column_stack(columns)


@dataclass(frozen=True)
class TimecourseFit:
    """The fitted curve of one ROI, measure and group subset.

    Attributes
    ----------
    basis : SplineBasis
        The spline.
    coefficients : numpy.ndarray
        The spline coefficients (``f = basis(hours) @ coefficients``).
    covariance : numpy.ndarray
        Their covariance.
    df : float
        Between-within residual degrees of freedom.
    n_curve, n_reference, n_subjects : int
        Sessions on the clock, reference sessions, participants.
    grid : numpy.ndarray
        Hours at which the curve is reported.
    points : pandas.DataFrame
        ``subject, session, hours, value``: each clock session's value minus the intercept and
        its participant's predicted random intercept (what the curve describes).
    """

    basis: SplineBasis
    coefficients: np.ndarray
    covariance: np.ndarray
    df: float
    n_curve: int
    n_reference: int
    n_subjects: int
    grid: np.ndarray
    points: pd.DataFrame

    def curve(self) -> pd.DataFrame:
        """``hours, estimate, se, ci_low, ci_high, band_low, band_high`` on the grid."""
        design = self.basis(self.grid)
        estimate = design @ self.coefficients
        se = np.sqrt(np.einsum("gi,ij,gj->g", design, self.covariance, design))
        half = stats.t.ppf(0.975, self.df) * se
        band = float(np.quantile(np.max(np.abs(self._null_draws), axis=1), 0.95)) * se
        return pd.DataFrame(
            {
                "hours": self.grid,
                "estimate": estimate,
                "se": se,
                "ci_low": estimate - half,
                "ci_high": estimate + half,
                "band_low": estimate - band,
                "band_high": estimate + band,
            }
        )

    @cached_property
    def _null_draws(self) -> np.ndarray:
        """Draws of ``(f* - f) / se`` on the grid under the multivariate t of the estimates."""
        rng = np.random.default_rng(SEED)
        design = self.basis(self.grid)
        se = np.sqrt(np.einsum("gi,ij,gj->g", design, self.covariance, design))
        root = np.linalg.cholesky(self.covariance + 1e-15 * np.eye(self.basis.size))
        normal = rng.standard_normal((NULL_DRAWS, self.basis.size)) @ root.T
        chi = np.sqrt(rng.chisquare(self.df, size=(NULL_DRAWS, 1)) / self.df)
        return (normal @ design.T) / se / chi

    def f_test(self) -> tuple[float, float, float]:
        """Wald F of ``f = 0`` everywhere: ``F, df_num, p``."""
        k = self.basis.size
        solved = np.linalg.solve(self.covariance, self.coefficients)
        f = float(self.coefficients @ solved) / k
        return f, float(k), float(stats.f.sf(f, k, self.df))

    def biphasic(self) -> BiphasicTest:
        """Intersection-union test of early-negative-then-positive; sign-change time."""
        curve = self.curve()
        t = (curve["estimate"] / curve["se"]).to_numpy()
        lowest = int(np.argmin(t))
        negative = float(-t[lowest])
        positive = float(np.max(t[lowest:]))
        maxima = np.max(self._null_draws, axis=1)  # symmetric: serves both signs
        p_negative = (np.count_nonzero(maxima >= negative) + 1.0) / (maxima.size + 1.0)
        p_positive = (np.count_nonzero(maxima >= positive) + 1.0) / (maxima.size + 1.0)
        change = sign_change(self.grid, curve["estimate"].to_numpy())
        low, high = self._change_interval() if np.isfinite(change) else (np.nan, np.nan)
        return BiphasicTest(
            statistic=min(negative, positive),
            p=max(p_negative, p_positive),
            p_negative=p_negative,
            p_positive=p_positive,
            change_hours=change,
            change_low=low,
            change_high=high,
        )

    def _change_interval(self) -> tuple[float, float]:
        rng = np.random.default_rng(SEED + 1)
        root = np.linalg.cholesky(self.covariance + 1e-15 * np.eye(self.basis.size))
        draws = self.coefficients + rng.standard_normal((ROOT_DRAWS, self.basis.size)) @ root.T
        curves = draws @ self.basis(self.grid).T
        roots = np.array([sign_change(self.grid, row) for row in curves])
        # a draw without a crossing has none on the grid: the interval is then open
        if np.mean(np.isfinite(roots)) < 0.95:
            return np.nan, np.nan
        ordered = np.sort(np.where(np.isfinite(roots), roots, np.inf))
        low, high = ordered[int(0.025 * ordered.size)], ordered[int(0.975 * ordered.size) - 1]
        return float(low), float(high) if np.isfinite(high) else np.nan


@dataclass(frozen=True)
class BiphasicTest:
    """Result of :meth:`TimecourseFit.biphasic`.

    Attributes
    ----------
    statistic : float
        ``min(s_negative, s_positive)``: the smaller of the two sup-t statistics.
    p, p_negative, p_positive : float
        Intersection-union p and its two parts.
    change_hours : float
        Hours at which the estimated curve first crosses from negative to positive after its
        minimum (NaN when it does not).
    change_low, change_high : float
        95 % interval of that time (NaN when more than 5 % of the draws do not cross).
    """

    statistic: float
    p: float
    p_negative: float
    p_positive: float
    change_hours: float
    change_low: float
    change_high: float


def sign_change(hours: np.ndarray, curve: np.ndarray) -> float:
    """Hours of the first crossing from below to above zero after the curve's minimum.

    Linear interpolation in ``log(1 + hours)`` between grid points; NaN when the minimum is
    not below zero or the curve does not rise above zero after it.
    """
    lowest = int(np.argmin(curve))
    if curve[lowest] >= 0:
        return np.nan
    after = np.flatnonzero(curve[lowest:] > 0)
    if after.size == 0:
        return np.nan
    right = lowest + int(after[0])
    left = right - 1
    u = np.log1p(hours)
    fraction = -curve[left] / (curve[right] - curve[left])
    return float(np.expm1(u[left] + fraction * (u[right] - u[left])))


def knot_count(n_curve: int, df_available: int) -> int:
    """3 knots below 15 sessions on the clock, 4 below 30, else 5 (within the df)."""
    count = 3 if n_curve < 15 else 4 if n_curve < 30 else 5
    return int(max(3, min(count, df_available)))


def select_sessions(
    data: pd.DataFrame, clock: str, window: float, reference: str
) -> pd.DataFrame:
    """Sessions on the clock (``on_clock``) and reference sessions of one subset.

    Parameters
    ----------
    data : pandas.DataFrame
        Sessions: ``subject, session, phase, value`` and the clock's hours column.
    clock : str
        A key of :data:`CLOCKS`.
    window : float
        Largest hours on the clock.
    reference : str
        Phase of the reference sessions (their clock hours are not used).

    Returns
    -------
    pandas.DataFrame
        The selected sessions with a boolean ``on_clock`` and float ``hours`` column.
    """
    hours = pd.to_numeric(data[CLOCKS[clock]], errors="coerce")
    on_clock = hours.notna() & (hours >= 0) & (hours <= window)
    is_reference = (data["phase"] == reference) & ~on_clock
    keep = (on_clock | is_reference) & np.isfinite(data["value"].to_numpy(float))
    return data[keep].assign(on_clock=on_clock[keep], hours=hours[keep].fillna(0.0))


def fit_timecourse(
    data: pd.DataFrame, clock: str, window: float, reference: str = "interictal"
) -> TimecourseFit | str:
    """Fit the time-course model of one subset, ROI and measure.

    Parameters
    ----------
    data : pandas.DataFrame
        Sessions (see :func:`select_sessions`).
    clock : str
        ``"since_onset"`` or ``"to_next_onset"``.
    window : float
        Hours on the clock that the curve covers.
    reference : str
        Phase of the sessions that anchor ``f = 0``.

    Returns
    -------
    TimecourseFit or str
        The fit, or the reason it is not estimable.
    """
    sessions = select_sessions(data, clock, window, reference)
    timed = sessions[sessions["on_clock"]]
    n_subjects = sessions["subject"].nunique()
    if timed.empty:
        return f"not estimable: no session with {CLOCKS[clock]} within {window:g} h"
    if timed["hours"].nunique() < 3 or not (~sessions["on_clock"]).any():
        return (
            "not estimable: the curve needs sessions at three or more times and "
            f"{reference} sessions as the reference"
        )
    df_available = len(sessions) - n_subjects - 3
    count = knot_count(len(timed), df_available)
    reason = not_estimable(len(sessions) - n_subjects - count, len(sessions), n_subjects + count)
    if reason:
        return reason
    basis = SplineBasis.at_quantiles(timed["hours"].to_numpy(), count)
    if np.any(np.diff(basis.knots) <= 1e-9):
        return "not estimable: too few distinct session times for the spline knots"
    y = sessions["value"].to_numpy(float)
    on_clock = sessions["on_clock"].to_numpy(float)[:, None]
    design = np.column_stack([np.ones(len(sessions)), on_clock * basis(sessions["hours"])])
    fit = reml_random_intercept(y, design, sessions["subject"].to_numpy())
    if fit is None:
        return "not estimable: rank-deficient design (too few distinct session times)"
    reason = near_constant(np.sqrt(fit.sigma2), y)
    if reason:
        return reason
    grid = np.expm1(np.linspace(*np.log1p(timed["hours"].agg(["min", "max"])), GRID_POINTS))
    points = _partial_values(sessions, design, fit)
    return TimecourseFit(
        basis=basis,
        coefficients=fit.beta[1:],
        covariance=fit.cov[1:, 1:],
        df=float(len(sessions) - n_subjects - count),
        n_curve=len(timed),
        n_reference=len(sessions) - len(timed),
        n_subjects=n_subjects,
        grid=grid,
        points=points,
    )


def _partial_values(sessions: pd.DataFrame, design: np.ndarray, fit: MixedFit) -> pd.DataFrame:
    """Clock sessions' values minus the intercept and their participant's BLUP."""
    y = sessions["value"].to_numpy(float)
    residual = y - design @ fit.beta
    codes, subjects = pd.factorize(sessions["subject"])
    sizes = np.bincount(codes)
    gamma = fit.tau2 / fit.sigma2 if fit.sigma2 > 0 else 0.0
    blup = gamma / (1.0 + sizes * gamma) * np.bincount(codes, weights=residual)
    partial = y - fit.beta[0] - blup[codes]
    timed = sessions["on_clock"].to_numpy(bool)
    return pd.DataFrame(
        {
            "subject": sessions["subject"].to_numpy()[timed],
            "session": sessions["session"].to_numpy()[timed],
            "hours": sessions["hours"].to_numpy(float)[timed],
            "value": partial[timed],
        }
    )
