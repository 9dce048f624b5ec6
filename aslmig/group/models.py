"""ROI-level group statistics (pure pandas/numpy/scipy; no I/O).

Input: a long table with one row per subject x session x ROI x measure and the columns
``subject, session, group, phase, age, sex, site, roi, measure, value``. Output: one row per
model x test x contrast x measure x ROI with the columns of :data:`ROI_STATISTICS_COLUMNS`.

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

import numpy as np
import pandas as pd
from scipy import stats

from aslmig.bids.derivatives import ROI_STATISTICS_COLUMNS
from aslmig.group.primitives import (
    benjamini_hochberg,
    describe,
    hedges_g_one,
    hedges_g_two,
    near_constant,
    not_estimable,
    ols,
    reml_random_intercept,
    t_summary,
)
from aslmig.group.timecourse import CLOCKS, fit_timecourse

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


def _row(**fields) -> dict:
    row = {column: ("" if column in _TEXT else np.nan) for column in ROI_STATISTICS_COLUMNS}
    row.update(fields)
    return row


def _tested(estimate: float, se: float, df: float, spread: float, values, terms: tuple) -> dict:
    """t-test fields, or the reason in ``note`` when the model is not estimable.

    ``terms`` is ``(n_observations, n_terms)`` for :func:`not_estimable`; ``spread`` (an SD of
    the data or residuals) is checked against ``values`` by :func:`near_constant`.
    """
    reason = not_estimable(df, *terms) or near_constant(spread, values)
    if reason:
        return {"estimate": np.nan, "note": reason}
    return t_summary(estimate, se, df)


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
    y = data["value"].to_numpy(float)
    fit, reason = _fit_checked(y, design)
    described = {level: describe(data.loc[data["group"] == level, "value"]) for level in present}
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
        if reason:
            row["note"] = reason
        else:
            contrast = np.zeros(len(names))
            for level, sign in ((level_a, 1.0), (level_b, -1.0)):
                if level != present[0]:
                    contrast[names.index(f"group[{level}]")] = sign
            estimate = float(contrast @ fit.beta)
            se = float(np.sqrt(contrast @ fit.cov @ contrast))
            row.update(t_summary(estimate, se, fit.df))
            g = hedges_g_two(estimate, sd_a, sd_b, n_a, n_b)
            row.update(hedges_g=g[0], g_ci_low=g[1], g_ci_high=g[2])
        rows.append(row)
    rows.append(_omnibus(y, len(present) - 1, design, fit, reason, formula, present))
    return rows


def _fit_checked(y: np.ndarray, design: np.ndarray):
    """OLS fit and "" , or None and the reason it is not estimable or not testable."""
    n, p = design.shape
    reason = not_estimable(n - p, n, p)
    if reason:
        return None, reason
    fit = ols(y, design)
    if fit is None:
        return None, "not estimable: rank-deficient design (a term is constant or collinear)"
    reason = near_constant(np.sqrt(fit.rss / fit.df), y)
    return (None, reason) if reason else (fit, "")


def _omnibus(y, k: int, design, fit, reason: str, formula: str, present) -> dict:
    row = _row(
        test="ancova_F",
        contrast="omnibus " + " = ".join(present),
        formula=formula,
        group_a=" ".join(present),
        group_b="",
        n_obs=len(y),
    )
    if reason:
        row["note"] = reason
        return row
    reduced_fit = ols(y, np.delete(design, range(1, 1 + k), axis=1))
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
    n, mean_d, sd_d = describe(differences)
    _, mean_a, sd_a = describe(means[phase])
    _, mean_b, sd_b = describe(means[reference])
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
    scale = means.to_numpy(float)
    t_row = _row(test="paired_t", formula=formula, **common)
    t_row.update(_tested(mean_d, sd_d / np.sqrt(n), n - 1, sd_d, scale, (n, 1)))
    if "p" in t_row and np.isfinite(t_row["p"]):
        g = hedges_g_one(mean_d, sd_d, n)
        t_row.update(hedges_g=g[0], g_ci_low=g[1], g_ci_high=g[2])
    w_row = _row(test="wilcoxon", formula=formula + " (signed ranks)", **common)
    w_row.update(_wilcoxon(differences, scale))
    return [t_row, w_row]


def _wilcoxon(values: np.ndarray, scale: np.ndarray) -> dict:
    values = np.asarray(values, float)
    if values.size < 2 or not np.any(values != 0):
        return {"note": "fewer than two non-zero values"}
    reason = near_constant(float(np.max(np.abs(values))), scale)
    if reason:
        return {"note": reason}
    result = stats.wilcoxon(values)
    return {
        "estimate": float(np.median(values)),
        "statistic_name": "W",
        "statistic": float(result.statistic),
        "p": float(result.pvalue),
        "note": "estimate is the median",
    }


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
        (between-within method). A model that is not estimable (too few residual df,
        rank-deficient, near-constant values) has NaN numbers and the reason as note.
    """
    n_subjects = data["subject"].nunique()
    df = len(data) - n_subjects - within
    reason = not_estimable(df, len(data), n_subjects + within)
    if reason or n_subjects < 2:
        return np.nan, np.nan, np.nan, reason or "not estimable: fewer than two subjects"
    y = data["value"].to_numpy(float)
    design = np.column_stack([np.ones(len(data)), data[list(columns)].to_numpy(float)])
    fit = reml_random_intercept(y, design, data["subject"].to_numpy())
    if fit is None:
        return np.nan, np.nan, np.nan, "not estimable: rank-deficient design"
    reason = near_constant(np.sqrt(fit.sigma2), y)
    if reason:
        return np.nan, np.nan, np.nan, reason
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
    n, _, sd_d = describe(differences)
    _, mean_a, sd_a = describe(means[phase])
    _, mean_b, sd_b = describe(means[reference])
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
    row.update(t_summary(estimate, se, df), note=note)
    if np.isfinite(estimate):
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
        changes[level] = describe((means[phase] - means[reference]).to_numpy(float))
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
    row.update(t_summary(estimate, se, df), note=note)
    if np.isfinite(estimate):
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
    n, mean, sd = describe(means)
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
    t_row.update(_tested(mean, sd / np.sqrt(n), n - 1, sd, means, (n, 1)))
    if "p" in t_row and np.isfinite(t_row["p"]):
        g = hedges_g_one(mean, sd, n)
        t_row.update(hedges_g=g[0], g_ci_low=g[1], g_ci_high=g[2])
    w_row = _row(test="wilcoxon", formula="value ~ 1 (per-subject mean; signed ranks)", **common)
    w_row.update(_wilcoxon(means, means))
    return [t_row, w_row]


# --------------------------------------------------------------------------- time course


def timecourse_rows(data: pd.DataFrame, spec, label: str) -> list[dict]:
    """Return the ``timecourse_F`` and ``biphasic`` rows of one subset (:mod:`.timecourse`).

    Parameters
    ----------
    data : pandas.DataFrame
        Sessions of the subset: ``subject, session, phase, value`` and the hours columns.
    spec : aslmig.group.modelspec.ModelSpec
        A ``timecourse`` model (``clock``, ``window_hours``, ``reference``).
    label : str
        Name of the subset of groups.

    Returns
    -------
    list of dict
        Two rows; the biphasic row's estimate is the sign-change time in hours.
    """
    column = CLOCKS[spec.clock]
    formula = (
        f"value ~ on_clock * rcs(log(1 + {column}), knots) + (1 | subject); "
        f"reference: {spec.reference} sessions"
    )
    fit = fit_timecourse(data, spec.clock, spec.window_hours, spec.reference)
    common = {"formula": formula, "group_a": f"{label} {column} <= {spec.window_hours:g}",
              "group_b": f"{label} {spec.reference}"}  # fmt: skip
    f_row = _row(test="timecourse_F", contrast=f"{label}: f({column}) = 0", **common)
    b_row = _row(test="biphasic", contrast=f"{label}: early < 0, later > 0", **common)
    if isinstance(fit, str):
        return [{**f_row, "note": fit}, {**b_row, "note": fit}]
    counts = {"n_a": fit.n_curve, "n_b": fit.n_reference, "n_obs": fit.n_curve + fit.n_reference}
    f, df_num, p = fit.f_test()
    knots = ", ".join(f"{value:.3g}" for value in np.expm1(fit.basis.knots))
    f_row.update(counts, statistic_name="F", statistic=f, df_num=df_num, df=fit.df, p=p,
                 note=f"{fit.basis.size} knots at {knots} h")  # fmt: skip
    test = fit.biphasic()
    b_row.update(
        counts,
        estimate=test.change_hours,
        ci_low=test.change_low,
        ci_high=test.change_high,
        statistic_name="sup-t (min of negative and positive parts)",
        statistic=test.statistic,
        df=fit.df,
        p=test.p,
        note=(
            f"estimate: hours at which the curve turns from negative to positive "
            f"(intersection-union p; p negative part {test.p_negative:.3g}, "
            f"p positive part {test.p_positive:.3g})"
        ),
    )
    return [f_row, b_row]


#: Columns of ``timecourse.tsv``: curve rows (``kind = curve``) and session points.
TIMECOURSE_COLUMNS = (
    "model", "subset", "measure", "roi", "clock", "kind", "hours", "estimate", "se", "ci_low",
    "ci_high", "band_low", "band_high", "subject", "session",
)  # fmt: skip


def timecourse_curves(
    specs: Sequence, values: pd.DataFrame, measures: Sequence[str]
) -> pd.DataFrame:
    """Return the curves and the sessions as points of every estimable time-course model.

    Parameters
    ----------
    specs : sequence of ModelSpec
        The models (others than ``timecourse`` are skipped).
    values : pandas.DataFrame
        The modelled long table.
    measures : sequence of str
        Measures present.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`TIMECOURSE_COLUMNS`; a session point has its partial value in
        ``estimate`` (value minus intercept and its patient's random intercept).
    """
    values = values[np.isfinite(values["value"].to_numpy(float))]
    frames = []
    for spec in specs:
        if spec.kind != "timecourse" or not has_clock(values, spec.clock):
            continue
        wanted = [m for m in measures if m in (spec.measures or measures)]
        for (measure, roi), data in values.groupby(["measure", "roi"], sort=True):
            for subset in spec.groups if measure in wanted else ():
                selected = data[data["group"].isin(subset.split("+"))]
                fit = fit_timecourse(selected, spec.clock, spec.window_hours, spec.reference)
                if isinstance(fit, str):
                    continue
                points = fit.points.rename(columns={"value": "estimate"})
                keys = {"model": spec.name, "subset": subset, "measure": measure, "roi": roi,
                        "clock": CLOCKS[spec.clock]}  # fmt: skip
                frames += [fit.curve().assign(kind="curve", **keys),
                           points.assign(kind="session", **keys)]  # fmt: skip
    if not frames:
        return pd.DataFrame(columns=list(TIMECOURSE_COLUMNS))
    return pd.concat(frames, ignore_index=True).reindex(columns=list(TIMECOURSE_COLUMNS))


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
    elif spec.kind == "timecourse":
        for subset in spec.groups:
            selected = data[data["group"].isin(subset.split("+"))]
            rows.extend(timecourse_rows(selected, spec, subset))
    else:  # pragma: no cover - the model file parser refuses other kinds
        raise ValueError(f"unknown model kind {spec.kind!r}")
    return rows


def has_clock(values: pd.DataFrame, clock: str) -> bool:
    """Whether any session has a time on a time-course clock."""
    column = CLOCKS[clock]
    return column in values and bool(pd.to_numeric(values[column], errors="coerce").notna().any())


def fit_models(specs: Sequence, values: pd.DataFrame, measures: Sequence[str]) -> pd.DataFrame:
    """Fit every model to every ROI and measure; add FDR q values per family.

    Parameters
    ----------
    specs : sequence of ModelSpec
        The models, in output order.
    values : pandas.DataFrame
        Long table: ``subject, session, group, phase, age, sex, site, roi, measure, value``
        (and ``hours_since_onset``, ``hours_to_next_onset`` for time-course models).
    measures : sequence of str
        Measure order.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`ROI_STATISTICS_COLUMNS`, sorted by model (file order), measure, test,
        contrast and ROI; ``family`` is ``model/measure/test``. A time-course model is
        left out when no session has a time on its clock.
    """
    values = values[np.isfinite(values["value"].to_numpy(float))]
    by_measure_roi = {key: frame for key, frame in values.groupby(["measure", "roi"], sort=True)}
    rows = []
    for order, spec in enumerate(specs):
        if spec.kind == "timecourse" and not has_clock(values, spec.clock):
            continue  # no session of the dataset is timed: nothing to model, nothing to say
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
        return pd.DataFrame(columns=list(ROI_STATISTICS_COLUMNS))
    table = pd.DataFrame(rows)
    table["_model"] = [key[0] for key in table["_order"]]
    table["_measure"] = [key[1] for key in table["_order"]]
    table["_position"] = [key[2] for key in table["_order"]]
    table = table.sort_values(["_model", "_measure", "_position", "roi"], kind="stable")
    table["q"] = np.nan
    for _, index in table.groupby("family", sort=False).groups.items():
        table.loc[index, "q"] = benjamini_hochberg(table.loc[index, "p"].to_numpy(float))
    return table[list(ROI_STATISTICS_COLUMNS)].reset_index(drop=True)
