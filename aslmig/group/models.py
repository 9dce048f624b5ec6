"""ROI-level group statistics (pure pandas/numpy/scipy/statsmodels; no I/O).

Input: a long table with one row per subject x session x ROI x measure and the columns
``subject, session, group, phase, age, sex, site, roi, measure, value``. Output: one row per
model x test x contrast x measure x ROI with the columns of :data:`STAT_COLUMNS`.

Model kinds (formulas in ``docs/group.md``)
-------------------------------------------
``ancova``
    One value per subject (the mean of its sessions in ``phase``);
    ``value ~ group + age + sex [+ site]`` by ordinary least squares. All pairwise group
    contrasts (t) and the omnibus group F (full vs reduced model).
``within``
    Per-subject ``phase`` - ``reference`` differences in each subset of groups: paired t,
    Wilcoxon signed-rank, and a linear mixed model ``value ~ phase + (1 | subject)`` over all
    sessions (REML, :func:`reml_random_intercept`; checked against statsmodels ``MixedLM``
    in the tests) with between-within degrees of freedom.
``interaction``
    Difference between two groups in the ``phase`` - ``reference`` change: the
    ``group x phase`` term of ``value ~ group * phase + (1 | subject)``.
``one_sample``
    Per-subject mean at a phase against zero (t and Wilcoxon), e.g. for asymmetry indices.

Effect sizes are Hedges' g = J * estimate / SD with J = 1 - 3 / (4 df - 1) (Hedges 1981) and
the large-sample CI g +/- z SE (Hedges & Olkin 1985). Benjamini-Hochberg q values are computed
within each ``family`` (model/measure/test: all ROIs and contrasts of one test of one model on
one measure).
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

#: Columns of the statistics table, in order.
STAT_COLUMNS = (
    "model",
    "test",
    "contrast",
    "measure",
    "roi",
    "family",
    "formula",
    "group_a",
    "group_b",
    "n_a",
    "n_b",
    "n_obs",
    "mean_a",
    "sd_a",
    "mean_b",
    "sd_b",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "hedges_g",
    "g_ci_low",
    "g_ci_high",
    "statistic_name",
    "statistic",
    "df_num",
    "df",
    "p",
    "q",
    "note",
)
_TEXT = {
    "model",
    "test",
    "contrast",
    "measure",
    "roi",
    "family",
    "formula",
    "group_a",
    "group_b",
    "statistic_name",
    "note",
}
Z975 = stats.norm.ppf(0.975)


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
    finite = np.flatnonzero(np.isfinite(p))
    m = finite.size
    if m == 0:
        return q
    order = finite[np.argsort(p[finite], kind="stable")]
    ranked = p[order] * m / np.arange(1, m + 1)
    q[order] = np.minimum(1.0, np.minimum.accumulate(ranked[::-1])[::-1])
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


def _row(**fields) -> dict:
    row = {column: ("" if column in _TEXT else np.nan) for column in STAT_COLUMNS}
    row.update(fields)
    return row


def _t_summary(estimate: float, se: float, df: float) -> dict:
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


def _describe(values: np.ndarray) -> tuple[int, float, float]:
    values = np.asarray(values, float)
    n = values.size
    mean = float(values.mean()) if n else np.nan
    sd = float(values.std(ddof=1)) if n > 1 else np.nan
    return n, mean, sd


# --------------------------------------------------------------------------- ANCOVA


def ancova_design(
    data: pd.DataFrame, groups: Sequence[str], covariates: Sequence[str], site: bool
) -> tuple[np.ndarray, list[str]]:
    """Design matrix of ``value ~ group + covariates [+ site]`` (treatment coding).

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject: ``group``, ``age``, ``sex``, ``site``.
    groups : sequence of str
        Group levels; the first is the reference (no column).
    covariates : sequence of str
        ``age`` (centred) and/or ``sex`` (dummy columns, first level sorted is reference).
    site : bool
        Add site dummies (when the column has at least two levels).

    Returns
    -------
    design : numpy.ndarray
        Columns: intercept, groups[1:], covariates.
    names : list of str
        Column names.
    """
    columns = [np.ones(len(data))]
    names = ["Intercept"]
    for level in groups[1:]:
        columns.append((data["group"] == level).to_numpy(float))
        names.append(f"group[{level}]")
    factors = [name for name in covariates if name != "age"] + (["site"] if site else [])
    if "age" in covariates:
        age = data["age"].to_numpy(float)
        columns.append(age - age.mean())
        names.append("age")
    for factor in factors:
        levels = sorted(set(data[factor]))
        for level in levels[1:]:
            columns.append((data[factor] == level).to_numpy(float))
            names.append(f"{factor}[{level}]")
    return np.column_stack(columns), names


def ancova(
    data: pd.DataFrame,
    groups: Sequence[str],
    covariates: Sequence[str] = ("age", "sex"),
    site: str = "auto",
) -> list[dict]:
    """Between-group ANCOVA of one ROI and measure: pairwise contrasts and omnibus F.

    Parameters
    ----------
    data : pandas.DataFrame
        One row per subject: ``value, group, age, sex, site``.
    groups : sequence of str
        Groups to compare (those with fewer than two subjects are left out).
    covariates : sequence of str
        ``age`` and/or ``sex``.
    site : str
        ``"auto"`` (adjust for site when it has at least two levels) or ``"never"``.

    Returns
    -------
    list of dict
        One row per pairwise contrast (``test = "ancova"``) and one omnibus row
        (``test = "ancova_F"``).
    """
    data = data[data["group"].isin(groups) & np.isfinite(data["value"])]
    counts = data["group"].value_counts()
    present = [level for level in groups if counts.get(level, 0) >= 2]
    data = data[data["group"].isin(present)]
    use_site = site == "auto" and data["site"].nunique() > 1
    covariates = [name for name in covariates if name == "age" or data[name].nunique() > 1]
    formula = _ancova_formula(present, covariates, use_site)
    rows = []
    if len(present) < 2:
        note = "fewer than two groups with at least two subjects"
        return [_row(test="ancova_F", formula=formula, note=note)]
    design, names = ancova_design(data, present, covariates, use_site)
    fit = ols(data["value"].to_numpy(float), design)
    described = {level: _describe(data.loc[data["group"] == level, "value"]) for level in present}
    for level_a, level_b in itertools.combinations(present, 2):
        (n_a, mean_a, sd_a), (n_b, mean_b, sd_b) = described[level_a], described[level_b]
        row = _row(
            test="ancova",
            contrast=f"{level_a} - {level_b}",
            formula=formula,
            group_a=level_a,
            group_b=level_b,
            n_a=n_a,
            n_b=n_b,
            n_obs=len(data),
            mean_a=mean_a,
            sd_a=sd_a,
            mean_b=mean_b,
            sd_b=sd_b,
        )
        if fit is None:
            row["note"] = "rank-deficient design or too few subjects"
        else:
            contrast = np.zeros(len(names))
            for level, sign in ((level_a, 1.0), (level_b, -1.0)):
                if level != present[0]:
                    contrast[names.index(f"group[{level}]")] = sign
            estimate = float(contrast @ fit.beta)
            se = float(np.sqrt(contrast @ fit.cov @ contrast))
            row.update(_t_summary(estimate, se, fit.df))
            g = hedges_g_two(estimate, sd_a, sd_b, n_a, n_b)
            row.update(hedges_g=g[0], g_ci_low=g[1], g_ci_high=g[2])
        rows.append(row)
    rows.append(_omnibus(data, present, covariates, use_site, design, fit, formula))
    return rows


def _omnibus(data, present, covariates, use_site, design, fit, formula) -> dict:
    row = _row(
        test="ancova_F",
        contrast="omnibus " + " = ".join(present),
        formula=formula,
        group_a=" ".join(present),
        group_b="",
        n_obs=len(data),
    )
    if fit is None:
        row["note"] = "rank-deficient design or too few subjects"
        return row
    k = len(present) - 1
    reduced = np.delete(design, range(1, 1 + k), axis=1)
    reduced_fit = ols(data["value"].to_numpy(float), reduced)
    if reduced_fit is None or not fit.rss > 0:
        row["note"] = "degenerate fit"
        return row
    f = ((reduced_fit.rss - fit.rss) / k) / (fit.rss / fit.df)
    row.update(statistic_name="F", statistic=f, df_num=k, df=fit.df, p=stats.f.sf(f, k, fit.df))
    return row


def _ancova_formula(groups: Sequence[str], covariates: Sequence[str], site: bool) -> str:
    terms = [f"C(group, Treatment('{groups[0]}'))" if groups else "C(group)"]
    terms += [name if name == "age" else f"C({name})" for name in covariates]
    terms += ["C(site)"] if site else []
    return "value ~ " + " + ".join(terms)


# --------------------------------------------------------------------------- within subjects


def subject_phase_means(data: pd.DataFrame, phases: Sequence[str]) -> pd.DataFrame:
    """Mean value per subject and phase (columns ``phases``, index subject)."""
    data = data[data["phase"].isin(phases) & np.isfinite(data["value"])]
    table = data.groupby(["subject", "phase"], sort=True)["value"].mean().unstack("phase")
    return table.reindex(columns=list(phases))


def paired_tests(data: pd.DataFrame, phase: str, reference: str, label: str) -> list[dict]:
    """Paired t and Wilcoxon signed-rank tests of ``phase`` - ``reference`` per subject.

    Parameters
    ----------
    data : pandas.DataFrame
        Sessions: ``subject, phase, value``.
    phase, reference : str
        The two phases.
    label : str
        Name of the subset of groups (for the contrast column).

    Returns
    -------
    list of dict
        A ``paired_t`` and a ``wilcoxon`` row.
    """
    means = subject_phase_means(data, (phase, reference)).dropna()
    differences = (means[phase] - means[reference]).to_numpy(float)
    n, mean_d, sd_d = _describe(differences)
    _, mean_a, sd_a = _describe(means[phase])
    _, mean_b, sd_b = _describe(means[reference])
    common = {
        "contrast": f"{label}: {phase} - {reference}",
        "group_a": f"{label} {phase}",
        "group_b": f"{label} {reference}",
        "n_a": n,
        "n_b": n,
        "n_obs": n,
        "mean_a": mean_a,
        "sd_a": sd_a,
        "mean_b": mean_b,
        "sd_b": sd_b,
    }
    formula = f"d = value[{phase}] - value[{reference}] per subject; d ~ 1"
    t_row = _row(test="paired_t", formula=formula, **common)
    if n >= 2:
        t_row.update(_t_summary(mean_d, sd_d / np.sqrt(n), n - 1))
        g = hedges_g_one(mean_d, sd_d, n)
        t_row.update(hedges_g=g[0], g_ci_low=g[1], g_ci_high=g[2])
    else:
        t_row["note"] = "fewer than two subjects with both phases"
    w_row = _row(test="wilcoxon", formula=formula + " (signed ranks)", **common)
    w_row.update(_wilcoxon(differences))
    return [t_row, w_row]


def _wilcoxon(values: np.ndarray) -> dict:
    values = np.asarray(values, float)
    if values.size < 2 or not np.any(values != 0):
        return {"note": "fewer than two non-zero values"}
    result = stats.wilcoxon(values)
    return {
        "estimate": float(np.median(values)),
        "statistic_name": "W",
        "statistic": float(result.statistic),
        "p": float(result.pvalue),
        "note": "estimate is the median",
    }


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

    With ``gamma = tau2 / sigma2`` and ``c_i = gamma / (1 + n_i gamma)`` for a subject with
    ``n_i`` observations, ``V_i^-1 = (I - c_i 1 1') / sigma2``, so ``X'V^-1X``, ``X'V^-1y``
    and the residual sum of squares need only the per-subject sums of X and y. ``sigma2``
    is profiled out and the REML criterion
    ``(N - p) log RSS(gamma) + sum_i log(1 + n_i gamma) + log det X'W X``
    is minimised over ``gamma >= 0`` (bounded Brent on ``gamma / (1 + gamma)``).

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
    from scipy.optimize import minimize_scalar

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


def mixed_model(
    data: pd.DataFrame, columns: Sequence[str], within: int
) -> tuple[float, float, float, str]:
    """Random-intercept linear mixed model; the last fixed effect with BW df.

    Parameters
    ----------
    data : pandas.DataFrame
        Sessions: ``subject, value`` and the 0/1 fixed-effect columns.
    columns : sequence of str
        Fixed-effect columns (an intercept is added first).
    within : int
        Number of within-subject fixed effects (for the between-within df).

    Returns
    -------
    tuple
        ``estimate, se, df, note`` of the last column's coefficient (REML, see
        :func:`reml_random_intercept`); the df are ``n_observations - n_subjects - within``
        (between-within method).
    """
    n_subjects = data["subject"].nunique()
    df = len(data) - n_subjects - within
    if df < 1 or n_subjects < 2:
        return np.nan, np.nan, np.nan, "too few sessions for the mixed model"
    design = np.column_stack([np.ones(len(data)), data[list(columns)].to_numpy(float)])
    fit = reml_random_intercept(data["value"].to_numpy(float), design, data["subject"].to_numpy())
    if fit is None:
        return np.nan, np.nan, np.nan, "rank-deficient design"
    note = "random-intercept variance estimated as 0" if fit.tau2 == 0 else ""
    return float(fit.beta[-1]), float(np.sqrt(fit.cov[-1, -1])), float(df), note


def within_lmm(data: pd.DataFrame, phase: str, reference: str, label: str) -> dict:
    """Mixed model ``value ~ phase + (1 | subject)`` of ``phase`` vs ``reference``.

    Parameters
    ----------
    data : pandas.DataFrame
        Sessions: ``subject, phase, value``.
    phase, reference : str
        The two phases.
    label : str
        Name of the subset of groups.

    Returns
    -------
    dict
        An ``lmm`` row; ``n_a``/``mean_a``/... describe the subjects with both phases
        (as the paired tests), ``n_obs`` counts the sessions in the fit.
    """
    sessions = data[data["phase"].isin((phase, reference)) & np.isfinite(data["value"])]
    sessions = sessions.assign(effect=(sessions["phase"] == phase).astype(float))
    means = subject_phase_means(sessions, (phase, reference)).dropna()
    differences = (means[phase] - means[reference]).to_numpy(float)
    n, _, sd_d = _describe(differences)
    _, mean_a, sd_a = _describe(means[phase])
    _, mean_b, sd_b = _describe(means[reference])
    row = _row(
        test="lmm",
        contrast=f"{label}: {phase} - {reference}",
        formula=f"value ~ C(phase, Treatment('{reference}')) + (1 | subject)",
        group_a=f"{label} {phase}",
        group_b=f"{label} {reference}",
        n_a=n,
        n_b=n,
        n_obs=len(sessions),
        mean_a=mean_a,
        sd_a=sd_a,
        mean_b=mean_b,
        sd_b=sd_b,
    )
    estimate, se, df, note = mixed_model(sessions, ["effect"], within=1)
    row.update(_t_summary(estimate, se, df), note=note)
    g = hedges_g_one(estimate, sd_d, n)
    row.update(hedges_g=g[0], g_ci_low=g[1], g_ci_high=g[2])
    return row


def interaction_lmm(
    data: pd.DataFrame, group_a: str, group_b: str, phase: str, reference: str
) -> dict:
    """Group x phase term of ``value ~ group * phase + (1 | subject)``.

    The estimate is the difference between ``group_a`` and ``group_b`` in the change from
    ``reference`` to ``phase``. ``n``, ``mean`` and ``sd`` describe the per-subject changes
    of the subjects with both phases; g standardises the estimate by their pooled SD.

    Parameters
    ----------
    data : pandas.DataFrame
        Sessions: ``subject, group, phase, value``.
    group_a, group_b : str
        The two groups (a - b).
    phase, reference : str
        The two phases.

    Returns
    -------
    dict
        An ``lmm`` row.
    """
    keep = data["group"].isin((group_a, group_b)) & data["phase"].isin((phase, reference))
    sessions = data[keep & np.isfinite(data["value"])]
    is_a = (sessions["group"] == group_a).astype(float)
    is_phase = (sessions["phase"] == phase).astype(float)
    sessions = sessions.assign(group_effect=is_a, phase_effect=is_phase, both=is_a * is_phase)
    changes = {}
    for level in (group_a, group_b):
        means = subject_phase_means(sessions[sessions["group"] == level], (phase, reference))
        means = means.dropna()
        changes[level] = _describe((means[phase] - means[reference]).to_numpy(float))
    (n_a, mean_a, sd_a), (n_b, mean_b, sd_b) = changes[group_a], changes[group_b]
    row = _row(
        test="lmm",
        contrast=f"({group_a} - {group_b}): {phase} - {reference}",
        formula=(
            f"value ~ C(group, Treatment('{group_b}')) * "
            f"C(phase, Treatment('{reference}')) + (1 | subject)"
        ),
        group_a=group_a,
        group_b=group_b,
        n_a=n_a,
        n_b=n_b,
        n_obs=len(sessions),
        mean_a=mean_a,
        sd_a=sd_a,
        mean_b=mean_b,
        sd_b=sd_b,
    )
    estimate, se, df, note = mixed_model(
        sessions, ["group_effect", "phase_effect", "both"], within=2
    )
    row.update(_t_summary(estimate, se, df), note=note)
    g = hedges_g_two(estimate, sd_a, sd_b, n_a, n_b)
    row.update(hedges_g=g[0], g_ci_low=g[1], g_ci_high=g[2])
    return row


def one_sample(data: pd.DataFrame, group: str, phase: str) -> list[dict]:
    """Test the per-subject mean at ``phase`` in ``group`` against zero (t, Wilcoxon).

    Parameters
    ----------
    data : pandas.DataFrame
        Sessions: ``subject, group, phase, value``.
    group, phase : str
        The subset.

    Returns
    -------
    list of dict
        A ``one_sample_t`` and a ``wilcoxon`` row.
    """
    subset = data[(data["group"] == group)]
    means = subject_phase_means(subset, (phase,))[phase].dropna().to_numpy(float)
    n, mean, sd = _describe(means)
    common = {
        "contrast": f"{group} {phase} - 0",
        "group_a": f"{group} {phase}",
        "group_b": "0",
        "n_a": n,
        "n_b": 0,
        "n_obs": n,
        "mean_a": mean,
        "sd_a": sd,
    }
    t_row = _row(test="one_sample_t", formula="value ~ 1 (per-subject mean)", **common)
    if n >= 2:
        t_row.update(_t_summary(mean, sd / np.sqrt(n), n - 1))
        g = hedges_g_one(mean, sd, n)
        t_row.update(hedges_g=g[0], g_ci_low=g[1], g_ci_high=g[2])
    else:
        t_row["note"] = "fewer than two subjects"
    w_row = _row(test="wilcoxon", formula="value ~ 1 (per-subject mean; signed ranks)", **common)
    w_row.update(_wilcoxon(means))
    return [t_row, w_row]


# --------------------------------------------------------------------------- models


def subject_values(data: pd.DataFrame, phase: str) -> pd.DataFrame:
    """One row per subject: the mean of its sessions at ``phase`` with its covariates."""
    data = data[(data["phase"] == phase) & np.isfinite(data["value"])]
    first = data.groupby("subject", sort=True)[["group", "age", "sex", "site"]].first()
    first["value"] = data.groupby("subject", sort=True)["value"].mean()
    return first.reset_index()


def fit_roi(spec, data: pd.DataFrame) -> list[dict]:
    """All rows of one model for one ROI and measure.

    Parameters
    ----------
    spec : aslmig.group.modelspec.ModelSpec
        The model.
    data : pandas.DataFrame
        The sessions of one ROI and measure.

    Returns
    -------
    list of dict
        Rows (without ``model``, ``measure``, ``roi``, ``family``, ``q``).
    """
    if spec.kind == "ancova":
        return ancova(subject_values(data, spec.phase), spec.groups, spec.covariates, spec.site)
    rows = []
    if spec.kind == "within":
        for subset in spec.groups:
            members = subset.split("+")
            selected = data[data["group"].isin(members)]
            rows.extend(paired_tests(selected, spec.phase, spec.reference, subset))
            rows.append(within_lmm(selected, spec.phase, spec.reference, subset))
    elif spec.kind == "interaction":
        rows.append(
            interaction_lmm(data, spec.groups[0], spec.groups[1], spec.phase, spec.reference)
        )
    elif spec.kind == "one_sample":
        for group, phase in itertools.product(spec.groups, spec.phases):
            rows.extend(one_sample(data, group, phase))
    else:  # pragma: no cover - the model file parser refuses other kinds
        raise ValueError(f"unknown model kind {spec.kind!r}")
    return rows


def fit_models(specs: Sequence, values: pd.DataFrame, measures: Sequence[str]) -> pd.DataFrame:
    """Fit every model to every ROI and measure; add FDR q values per family.

    Parameters
    ----------
    specs : sequence of ModelSpec
        The models, in output order.
    values : pandas.DataFrame
        Long table: ``subject, session, group, phase, age, sex, site, roi, measure, value``.
    measures : sequence of str
        Measure order.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`STAT_COLUMNS`, sorted by model (file order), measure, test,
        contrast and ROI; ``family`` is ``model/measure/test``.
    """
    values = values[np.isfinite(values["value"].to_numpy(float))]
    by_measure_roi = {key: frame for key, frame in values.groupby(["measure", "roi"], sort=True)}
    rows = []
    for order, spec in enumerate(specs):
        wanted = [m for m in measures if m in (spec.measures or measures)]
        for (measure, roi), data in by_measure_roi.items():
            if measure not in wanted:
                continue
            for position, row in enumerate(fit_roi(spec, data)):
                row.update(
                    model=spec.name,
                    measure=measure,
                    roi=roi,
                    family=f"{spec.name}/{measure}/{row['test']}",
                )
                row["_order"] = (order, wanted.index(measure), position)
                rows.append(row)
    if not rows:
        return pd.DataFrame(columns=list(STAT_COLUMNS))
    table = pd.DataFrame(rows)
    table["_model"] = [key[0] for key in table["_order"]]
    table["_measure"] = [key[1] for key in table["_order"]]
    table["_position"] = [key[2] for key in table["_order"]]
    table = table.sort_values(["_model", "_measure", "_position", "roi"], kind="stable")
    table["q"] = np.nan
    for _, index in table.groupby("family", sort=False).groups.items():
        table.loc[index, "q"] = benjamini_hochberg(table.loc[index, "p"].to_numpy(float))
    return table[list(STAT_COLUMNS)].reset_index(drop=True)
