"""Statistical primitives of the group level: least squares, REML, FDR, Hedges' g, guards.

Pure numpy/scipy, no pandas tables and no I/O: :mod:`aslmig.group.models` builds the ROI
models from these pieces, :mod:`aslmig.group.timecourse` and :mod:`aslmig.group.harmonize`
reuse them.

Estimability
------------
A test is reported only when it can mean something. :func:`not_estimable` refuses a model
whose residual degrees of freedom are fewer than :data:`MIN_RESIDUAL_DF` (with 1 or 2 df the
t reference distribution has no finite variance, and one near-exact fit of a handful of
subjects gives |t| in the hundreds: the demo of an earlier version reported ``t = -715
(df 1)`` as significant), and :func:`near_constant` refuses values whose spread is below
:data:`RELATIVE_SD_FLOOR` of their magnitude (participant tables are written with eight
significant digits, so a spread of 1e-8 relative is rounding, not biology; identical values
gave ``t = 3e135`` and ``q = 0`` before this guard). Refused rows carry ``n/a`` statistics
and the reason in their ``note``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats
from scipy.optimize import minimize_scalar

#: Fewest residual degrees of freedom a t or F test is reported with.
MIN_RESIDUAL_DF = 3
#: Spread (SD) below this fraction of the values' magnitude counts as no spread at all.
RELATIVE_SD_FLOOR = 1e-6
#: Two-sided 95 % normal quantile.
Z975 = float(stats.norm.ppf(0.975))


def not_estimable(df: float, n_observations: int, n_terms: int) -> str:
    """Return why a model with ``df`` residual degrees of freedom is not estimable, or "".

    Parameters
    ----------
    df : float
        Residual degrees of freedom of the model.
    n_observations : int
        Observations in the fit (subjects or sessions).
    n_terms : int
        Fixed-effect terms (columns, with the intercept), or, for mixed models, what the
        between-within degrees of freedom subtract.

    Returns
    -------
    str
        ``"not estimable: ..."`` naming the counts, or "" when ``df >= MIN_RESIDUAL_DF``.
    """
    if np.isfinite(df) and df >= MIN_RESIDUAL_DF:
        return ""
    shown = int(df) if np.isfinite(df) else 0
    return (
        f"not estimable: {n_observations} observations for {n_terms} terms leave {shown} "
        f"residual df (at least {MIN_RESIDUAL_DF} needed)"
    )


def near_constant(spread: float, values: np.ndarray) -> str:
    """Return a reason when ``spread`` is negligible against the values' magnitude, or "".

    Parameters
    ----------
    spread : float
        A standard deviation or standard error of the values.
    values : numpy.ndarray
        The values it describes (their largest magnitude sets the scale).

    Returns
    -------
    str
        ``"n/a: ..."`` when ``spread <= RELATIVE_SD_FLOOR * max|values|`` (or is not finite).
    """
    values = np.asarray(values, float)
    scale = float(np.max(np.abs(values))) if values.size else 0.0
    if np.isfinite(spread) and spread > RELATIVE_SD_FLOOR * scale and spread > 0:
        return ""
    return (
        f"n/a: the values are (near-)constant (spread {spread:.3g} <= "
        f"{RELATIVE_SD_FLOOR:g} x {scale:.3g}); there is no variance to test against"
    )


def t_summary(estimate: float, se: float, df: float) -> dict:
    """Estimate, SE, 95 % CI, t, df and two-sided p (fields of a statistics row).

    Call it only after :func:`not_estimable` and :func:`near_constant` found nothing;
    a non-finite or non-positive SE gives the estimate alone.
    """
    if not (np.isfinite(estimate) and np.isfinite(se) and se > 0 and df >= 1):
        return {"estimate": estimate, "se": se, "df": df if df >= 1 else np.nan}
    t = estimate / se
    half = stats.t.ppf(0.975, df) * se
    return {
        "estimate": estimate,
        "se": se,
        "ci_low": estimate - half,
        "ci_high": estimate + half,
        "statistic_name": "t",
        "statistic": t,
        "df": df,
        "p": 2.0 * stats.t.sf(abs(t), df),
    }


def describe(values: np.ndarray) -> tuple[int, float, float]:
    """Return ``n, mean, SD (ddof 1)`` (NaN where undefined)."""
    values = np.asarray(values, float)
    n = values.size
    mean = float(values.mean()) if n else np.nan
    sd = float(values.std(ddof=1)) if n > 1 else np.nan
    return n, mean, sd


@dataclass(frozen=True)
class OlsFit:
    """An ordinary least-squares fit.

    Attributes
    ----------
    beta : numpy.ndarray
        Coefficients.
    cov : numpy.ndarray
        Their covariance, ``s^2 (X'X)^-1``.
    rss : float
        Residual sum of squares.
    df : int
        Residual degrees of freedom, ``n - p``.
    """

    beta: np.ndarray
    cov: np.ndarray
    rss: float
    df: int


def ols(y: np.ndarray, design: np.ndarray) -> OlsFit | None:
    """Fit ``y = X b + e`` by least squares; None if X is rank-deficient or df < 1.

    Parameters
    ----------
    y : numpy.ndarray
        Responses, shape ``(n,)``.
    design : numpy.ndarray
        Design matrix, shape ``(n, p)``.

    Returns
    -------
    OlsFit or None
        The fit.
    """
    n, p = design.shape
    if n - p < 1 or np.linalg.matrix_rank(design) < p:
        return None
    q, r = np.linalg.qr(design)
    beta = np.linalg.solve(r, q.T @ y)
    residuals = y - design @ beta
    rss = float(residuals @ residuals)
    r_inv = np.linalg.inv(r)
    cov = rss / (n - p) * (r_inv @ r_inv.T)
    return OlsFit(beta=beta, cov=cov, rss=rss, df=n - p)


def benjamini_hochberg(p: Sequence[float]) -> np.ndarray:
    """Benjamini-Hochberg (1995) adjusted p values (q); NaN p values stay NaN, uncounted.

    ``scipy.stats.false_discovery_control`` on the finite p values (it refuses NaN), put
    back in the input order.

    Parameters
    ----------
    p : sequence of float
        p values of one family.

    Returns
    -------
    numpy.ndarray
        ``q_(i) = min_{j >= i} min(1, m p_(j) / j)`` in the input order.
    """
    p = np.asarray(p, dtype=float)
    q = np.full(p.shape, np.nan)
    finite = np.isfinite(p)
    if finite.any():
        q[finite] = stats.false_discovery_control(p[finite], method="bh")
    return q


def hedges_j(df: float) -> float:
    """Small-sample correction J = 1 - 3 / (4 df - 1) (Hedges 1981)."""
    return 1.0 - 3.0 / (4.0 * df - 1.0) if df > 0 else np.nan


def hedges_g_two(
    estimate: float, sd_a: float, sd_b: float, n_a: int, n_b: int
) -> tuple[float, float, float]:
    """Hedges' g of a two-group difference, standardised by the pooled SD, with 95% CI.

    Parameters
    ----------
    estimate : float
        The (possibly covariate-adjusted) difference a - b.
    sd_a, sd_b : float
        Standard deviations of the two groups (ddof 1).
    n_a, n_b : int
        Group sizes.

    Returns
    -------
    tuple of float
        ``g, ci_low, ci_high`` with ``SE^2 = (n_a + n_b) / (n_a n_b) + g^2 / (2 (n_a + n_b))``.
    """
    df = n_a + n_b - 2
    if n_a < 2 or n_b < 2:
        return np.nan, np.nan, np.nan
    pooled = np.sqrt(((n_a - 1) * sd_a**2 + (n_b - 1) * sd_b**2) / df)
    if not pooled > 0:
        return np.nan, np.nan, np.nan
    g = hedges_j(df) * estimate / pooled
    se = np.sqrt((n_a + n_b) / (n_a * n_b) + g**2 / (2.0 * (n_a + n_b)))
    return g, g - Z975 * se, g + Z975 * se


def hedges_g_one(estimate: float, sd: float, n: int) -> tuple[float, float, float]:
    """Hedges' g of a one-sample (or paired-difference) mean, with 95% CI.

    Parameters
    ----------
    estimate : float
        The mean (difference).
    sd : float
        SD of the values (differences), ddof 1.
    n : int
        Number of values.

    Returns
    -------
    tuple of float
        ``g, ci_low, ci_high`` with ``g = J(n - 1) estimate / sd`` and
        ``SE^2 = 1 / n + g^2 / (2 n)``.
    """
    if n < 2 or not sd > 0:
        return np.nan, np.nan, np.nan
    g = hedges_j(n - 1) * estimate / sd
    se = np.sqrt(1.0 / n + g**2 / (2.0 * n))
    return g, g - Z975 * se, g + Z975 * se


@dataclass(frozen=True)
class MixedFit:
    """A random-intercept linear mixed model fitted by REML.

    Attributes
    ----------
    beta : numpy.ndarray
        Fixed effects (GLS at the REML variance components).
    cov : numpy.ndarray
        Their covariance ``(X' V^-1 X)^-1``.
    sigma2 : float
        Residual (within-subject) variance.
    tau2 : float
        Random-intercept (between-subject) variance.
    """

    beta: np.ndarray
    cov: np.ndarray
    sigma2: float
    tau2: float


def reml_random_intercept(y: np.ndarray, design: np.ndarray, groups: np.ndarray) -> MixedFit | None:
    """Fit ``y = X b + u_subject + e`` by restricted maximum likelihood (REML).

    Kept instead of statsmodels ``MixedLM``: at the variance boundary (``tau2 = 0``) MixedLM
    returned zero group effects in this project's measurements (issue 15), while this closed
    form gives the OLS fit there (``test_reml_at_the_boundary_gives_ols``). With
    ``gamma = tau2 / sigma2`` and ``c_i = gamma / (1 + n_i gamma)`` for a subject with ``n_i``
    observations,
    ``V_i^-1 = (I - c_i 1 1') / sigma2``, so ``X'V^-1X``, ``X'V^-1y`` and the residual sum
    of squares need only the per-subject sums of X and y. ``sigma2`` is profiled out and the
    REML criterion ``(N - p) log RSS(gamma) + sum_i log(1 + n_i gamma) + log det X'W X`` is
    minimised over ``gamma >= 0`` (bounded Brent on ``gamma / (1 + gamma)``).

    Parameters
    ----------
    y : numpy.ndarray
        Responses, shape ``(N,)``.
    design : numpy.ndarray
        Fixed-effect design, shape ``(N, p)``, full rank.
    groups : numpy.ndarray
        Subject of each observation.

    Returns
    -------
    MixedFit or None
        None when the design is rank-deficient or ``N - p < 1``.
    """
    design = np.ascontiguousarray(design, dtype=float)
    y = np.ascontiguousarray(y, dtype=float)
    n, p = design.shape
    if n - p < 1 or np.linalg.matrix_rank(design) < p:
        return None
    _, codes, sizes = np.unique(groups, return_inverse=True, return_counts=True)
    sum_x = np.zeros((sizes.size, p))
    np.add.at(sum_x, codes, design)
    sum_y = np.bincount(codes, weights=y, minlength=sizes.size)
    xtx, xty, yty = design.T @ design, design.T @ y, float(y @ y)

    def solve(gamma: float):
        c = gamma / (1.0 + sizes * gamma)
        a = xtx - sum_x.T @ (c[:, None] * sum_x)
        b = xty - sum_x.T @ (c * sum_y)
        beta = np.linalg.solve(a, b)
        rss = yty - float(c @ sum_y**2) - float(b @ beta)
        return a, beta, max(rss, 1e-300)

    def criterion(u: float) -> float:
        gamma = u / (1.0 - u)
        a, _, rss = solve(gamma)
        _, logdet = np.linalg.slogdet(a)
        return (n - p) * np.log(rss) + float(np.sum(np.log1p(sizes * gamma))) + logdet

    best = minimize_scalar(
        criterion, bounds=(0.0, 1.0 - 1e-9), method="bounded", options={"xatol": 1e-12}
    )
    u = best.x if criterion(best.x) < criterion(0.0) else 0.0
    gamma = u / (1.0 - u)
    a, beta, rss = solve(gamma)
    sigma2 = rss / (n - p)
    return MixedFit(beta=beta, cov=sigma2 * np.linalg.inv(a), sigma2=sigma2, tau2=gamma * sigma2)
