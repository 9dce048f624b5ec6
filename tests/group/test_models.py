"""Every statistic of aslmig.group.models against an independent computation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.formula.api as smf
from scipy import stats
from statsmodels.stats.anova import anova_lm
from statsmodels.stats.multitest import multipletests

from aslmig.bids.derivatives import ROI_STATISTICS_COLUMNS
from aslmig.group import models, primitives
from aslmig.group.modelspec import ModelSpec, default_models

TIGHT = {"rtol": 1e-10, "atol": 1e-12}


def between_data(seed: int = 1, n=(9, 7, 8), site: bool = True) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for group, count, shift in zip(("HC", "MwA", "MwoA"), n, (0.0, -3.0, 1.5), strict=True):
        for index in range(count):
            age = float(rng.integers(18, 65))
            sex = "F" if rng.random() < 0.7 else "M"
            value = 50 + shift + 0.1 * (age - 40) + (2.0 if sex == "M" else 0) + rng.normal(0, 4)
            rows.append(
                {
                    "subject": f"{group}{index:02d}",
                    "group": group,
                    "age": age,
                    "sex": sex,
                    "site": f"s{index % 3}" if site else "",
                    "value": value,
                }
            )
    return pd.DataFrame(rows)


def paired_data(n: int = 15, seed: int = 2, effect: float = -3.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    base = 50 + rng.normal(0, 6, n)
    rows = []
    for index in range(n):
        for phase, shift in (("interictal", 0.0), ("ictal", effect)):
            rows.append(
                {
                    "subject": f"p{index:02d}",
                    "group": "MwA" if index % 2 else "MwoA",
                    "phase": phase,
                    "value": base[index] + shift + rng.normal(0, 3),
                }
            )
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- FDR and g


def test_benjamini_hochberg_equals_statsmodels():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=50) ** 2
    p[[3, 17]] = np.nan
    q = primitives.benjamini_hochberg(p)
    finite = np.isfinite(p)
    expected = multipletests(p[finite], method="fdr_bh")[1]
    np.testing.assert_allclose(q[finite], expected, **TIGHT)
    assert np.isnan(q[~finite]).all()


def test_hedges_g_two_groups_equals_hand_formula():
    a = np.array([51.0, 47.2, 55.1, 49.9, 53.3])
    b = np.array([44.0, 46.5, 41.2, 48.8, 43.1, 45.0])
    na, nb = a.size, b.size
    pooled = np.sqrt(((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2))
    j = 1 - 3 / (4 * (na + nb) - 9)
    g = j * (a.mean() - b.mean()) / pooled
    se = np.sqrt((na + nb) / (na * nb) + g**2 / (2 * (na + nb)))
    result = primitives.hedges_g_two(a.mean() - b.mean(), a.std(ddof=1), b.std(ddof=1), na, nb)
    np.testing.assert_allclose(
        result, (g, g - 1.959963984540054 * se, g + 1.959963984540054 * se), **TIGHT
    )


def test_hedges_g_one_sample_equals_hand_formula():
    d = np.array([-2.0, -3.5, 0.4, -1.1, -4.2, -2.7, 0.9])
    n = d.size
    g = (1 - 3 / (4 * n - 5)) * d.mean() / d.std(ddof=1)
    se = np.sqrt(1 / n + g**2 / (2 * n))
    result = primitives.hedges_g_one(d.mean(), d.std(ddof=1), n)
    np.testing.assert_allclose(
        result, (g, g - stats.norm.ppf(0.975) * se, g + stats.norm.ppf(0.975) * se), **TIGHT
    )


# --------------------------------------------------------------------------- ANCOVA


@pytest.mark.parametrize("site", [True, False])
def test_ancova_contrasts_and_f_equal_statsmodels(site):
    data = between_data(site=site)
    rows = models.ancova(data, ("HC", "MwA", "MwoA"), ("age", "sex"), "auto")
    formula = "value ~ C(group, Treatment('HC')) + age + C(sex)" + (" + C(site)" if site else "")
    fit = smf.ols(formula, data=data).fit()
    names = {level: f"C(group, Treatment('HC'))[T.{level}]" for level in ("MwA", "MwoA")}
    by_contrast = {row["contrast"]: row for row in rows}
    for a, b in (("HC", "MwA"), ("HC", "MwoA"), ("MwA", "MwoA")):
        vector = pd.Series(0.0, index=fit.params.index)
        if a != "HC":
            vector[names[a]] += 1
        if b != "HC":
            vector[names[b]] -= 1
        test = fit.t_test(vector.to_numpy()[None, :])
        row = by_contrast[f"{a} - {b}"]
        np.testing.assert_allclose(row["estimate"], float(test.effect[0]), **TIGHT)
        np.testing.assert_allclose(row["se"], float(test.sd[0, 0]), **TIGHT)
        np.testing.assert_allclose(row["statistic"], float(test.tvalue[0, 0]), **TIGHT)
        np.testing.assert_allclose(row["p"], float(test.pvalue), rtol=1e-9)
        np.testing.assert_allclose([row["ci_low"], row["ci_high"]], test.conf_int()[0], **TIGHT)
        assert row["df"] == fit.df_resid
        group_a, group_b = data[data.group == a].value, data[data.group == b].value
        assert row["n_a"] == len(group_a) and row["n_b"] == len(group_b)
        np.testing.assert_allclose([row["mean_a"], row["sd_a"]], [group_a.mean(), group_a.std()])
        g = primitives.hedges_g_two(
            row["estimate"], group_a.std(), group_b.std(), len(group_a), len(group_b)
        )
        np.testing.assert_allclose(row["hedges_g"], g[0], **TIGHT)
    omnibus = by_contrast["omnibus HC = MwA = MwoA"]
    table = anova_lm(fit, typ=2)
    effect = table.loc["C(group, Treatment('HC'))"]
    np.testing.assert_allclose(omnibus["statistic"], effect["F"], rtol=1e-9)
    np.testing.assert_allclose(omnibus["p"], effect["PR(>F)"], rtol=1e-8)
    assert omnibus["df_num"] == 2 and omnibus["df"] == fit.df_resid


def test_ancova_leaves_out_groups_of_one_and_reports_rank_deficiency():
    data = between_data(n=(5, 1, 5), site=False)
    rows = models.ancova(data, ("HC", "MwA", "MwoA"), ("age", "sex"), "auto")
    assert [row["contrast"] for row in rows] == ["HC - MwoA", "omnibus HC = MwoA"]
    data = between_data(site=False).assign(sex="F")  # one level: sex is dropped, not singular
    rows = models.ancova(data, ("HC", "MwA", "MwoA"), ("age", "sex"), "auto")
    assert "C(sex)" not in rows[0]["formula"] and np.isfinite(rows[0]["p"])


# --------------------------------------------------------------------------- within subjects


def test_paired_t_and_wilcoxon_equal_scipy():
    data = paired_data()
    t_row, w_row = models.paired_tests(data, "ictal", "interictal", "MwA+MwoA")
    wide = data.pivot(index="subject", columns="phase", values="value")
    expected = stats.ttest_rel(wide["ictal"], wide["interictal"])
    np.testing.assert_allclose(t_row["statistic"], expected.statistic, **TIGHT)
    np.testing.assert_allclose(t_row["p"], expected.pvalue, rtol=1e-9)
    assert t_row["df"] == len(wide) - 1
    d = wide["ictal"] - wide["interictal"]
    np.testing.assert_allclose(t_row["estimate"], d.mean(), **TIGHT)
    ci = stats.t.interval(0.95, len(d) - 1, loc=d.mean(), scale=d.std() / np.sqrt(len(d)))
    np.testing.assert_allclose([t_row["ci_low"], t_row["ci_high"]], ci, **TIGHT)
    wilcoxon = stats.wilcoxon(wide["ictal"], wide["interictal"])
    np.testing.assert_allclose(w_row["statistic"], wilcoxon.statistic, **TIGHT)
    np.testing.assert_allclose(w_row["p"], wilcoxon.pvalue, **TIGHT)


def test_paired_tests_use_subject_means_and_skip_unpaired_subjects():
    data = paired_data(n=8)
    extra = pd.DataFrame(
        [
            {"subject": "p00", "group": "MwoA", "phase": "ictal", "value": 10.0},
            {"subject": "solo", "group": "MwA", "phase": "ictal", "value": 99.0},
        ]
    )
    t_row, _ = models.paired_tests(pd.concat([data, extra]), "ictal", "interictal", "all")
    assert t_row["n_a"] == 8
    wide = data.pivot(index="subject", columns="phase", values="value")
    wide.loc["p00", "ictal"] = (wide.loc["p00", "ictal"] + 10.0) / 2
    expected = stats.ttest_rel(wide["ictal"], wide["interictal"])
    np.testing.assert_allclose(t_row["statistic"], expected.statistic, **TIGHT)


def test_mixed_model_on_balanced_pairs_equals_the_paired_difference():
    data = paired_data(n=20, seed=5)
    row = models.within_lmm(data, "ictal", "interictal", "MwA+MwoA")
    wide = data.pivot(index="subject", columns="phase", values="value")
    d = wide["ictal"] - wide["interictal"]
    # GLS with any variance components gives the mean paired difference on balanced data.
    np.testing.assert_allclose(row["estimate"], d.mean(), rtol=1e-9)
    # With a positive subject variance, REML gives the paired-t standard error (closed form)
    # and between-within df = n - 1.
    np.testing.assert_allclose(row["se"], d.std() / np.sqrt(len(d)), rtol=1e-3)
    assert row["df"] == len(d) - 1
    assert row["n_obs"] == 40


def test_interaction_on_balanced_pairs_equals_the_two_sample_test_of_changes():
    data = paired_data(n=20, seed=7)
    row = models.interaction_lmm(data, "MwA", "MwoA", "ictal", "interictal")
    wide = data.pivot(index="subject", columns="phase", values="value")
    change = wide["ictal"] - wide["interictal"]
    group = data.groupby("subject")["group"].first()
    a, b = change[group == "MwA"], change[group == "MwoA"]
    np.testing.assert_allclose(row["estimate"], a.mean() - b.mean(), rtol=1e-9)
    expected = stats.ttest_ind(a, b)
    np.testing.assert_allclose(row["se"], (a.mean() - b.mean()) / expected.statistic, rtol=1e-3)
    assert row["df"] == len(a) + len(b) - 2
    np.testing.assert_allclose([row["mean_a"], row["mean_b"]], [a.mean(), b.mean()], **TIGHT)


def test_one_sample_equals_scipy():
    rng = np.random.default_rng(3)
    data = pd.DataFrame(
        {
            "subject": [f"s{i}" for i in range(12)],
            "group": "MwA",
            "phase": "ictal",
            "value": rng.normal(0.02, 0.05, 12),
        }
    )
    t_row, w_row = models.one_sample(data, "MwA", "ictal")
    expected = stats.ttest_1samp(data["value"], 0.0)
    np.testing.assert_allclose(
        [t_row["statistic"], t_row["p"]], [expected.statistic, expected.pvalue], rtol=1e-9
    )
    wilcoxon = stats.wilcoxon(data["value"])
    np.testing.assert_allclose(
        [w_row["statistic"], w_row["p"]], [wilcoxon.statistic, wilcoxon.pvalue], **TIGHT
    )


# --------------------------------------------------------------------------- families


def long_table(n: int = 10, seed: int = 0, effect: dict | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    rois = ("occipital_cortex_L", "occipital_cortex_R", "pons", "hypothalamus_L")
    for group in ("HC", "MwA", "MwoA"):
        for index in range(n):
            subject = f"{group}{index:02d}"
            age, sex = float(rng.integers(20, 60)), "FM"[index % 2]
            level = rng.normal(50, 6)
            phases = ("interictal",) if group == "HC" else ("interictal", "ictal")
            for session, phase in enumerate(phases, start=1):
                for roi in rois:
                    shift = (effect or {}).get((group, phase, roi), 0.0)
                    value = (level + rng.normal(0, 3)) * (1 + shift)
                    rows.append(
                        {
                            "subject": subject,
                            "session": str(session),
                            "group": group,
                            "phase": phase,
                            "age": age,
                            "sex": sex,
                            "site": "",
                            "roi": roi,
                            "measure": "cbf",
                            "value": value,
                        }
                    )
    return pd.DataFrame(rows)


def test_fit_models_assigns_families_and_q_per_family():
    table = models.fit_models(default_models()[:3], long_table(), ["cbf"])
    assert list(table.columns) == list(ROI_STATISTICS_COLUMNS)
    assert set(table["family"]) == {
        "between_group/cbf/ancova",
        "between_group/cbf/ancova_F",
        "ictal_vs_interictal/cbf/paired_t",
        "ictal_vs_interictal/cbf/wilcoxon",
        "ictal_vs_interictal/cbf/lmm",
        "aura_by_phase/cbf/lmm",
    }
    for _, family in table.groupby("family"):
        expected = multipletests(family["p"], method="fdr_bh")[1]
        np.testing.assert_allclose(family["q"], expected, **TIGHT)
    ancova_rows = table[table["family"] == "between_group/cbf/ancova"]
    assert len(ancova_rows) == 3 * 4  # 3 pairwise contrasts x 4 ROIs


def test_model_measures_restrict_the_fit():
    spec = ModelSpec(
        name="only_rcbf",
        kind="ancova",
        measures=("rcbf",),
        groups=("HC", "MwA"),
        phase="interictal",
        covariates=("age",),
    )
    assert models.fit_models([spec], long_table(), ["cbf"]).empty


def unbalanced_sessions(seed: int = 11) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for index in range(24):
        level = 50 + rng.normal(0, 6)
        group = "MwA" if index % 2 else "MwoA"
        phases = [
            ["interictal", "ictal"],
            ["interictal", "interictal", "ictal"],
            ["ictal"],
            ["interictal"],
            ["interictal", "ictal", "ictal"],
        ][index % 5]
        for phase in phases:
            shift = -4.0 if phase == "ictal" and group == "MwA" else 0.0
            rows.append(
                {
                    "subject": f"p{index:02d}",
                    "group": group,
                    "phase": phase,
                    "value": level + shift + rng.normal(0, 3),
                }
            )
    return pd.DataFrame(rows)


@pytest.mark.parametrize("interaction", [False, True])
def test_reml_random_intercept_equals_statsmodels_mixedlm(interaction):
    from statsmodels.regression.mixed_linear_model import MixedLM

    data = unbalanced_sessions()
    is_phase = (data["phase"] == "ictal").to_numpy(float)
    columns = [np.ones(len(data)), is_phase]
    if interaction:
        is_a = (data["group"] == "MwA").to_numpy(float)
        columns = [np.ones(len(data)), is_a, is_phase, is_a * is_phase]
    design = np.column_stack(columns)
    ours = primitives.reml_random_intercept(data["value"].to_numpy(), design, data["subject"])
    theirs = MixedLM(data["value"].to_numpy(), design, groups=data["subject"]).fit(reml=True)
    assert theirs.converged and ours.tau2 > 0
    # statsmodels' own optimisers (bfgs vs nm) agree on gamma = tau2/sigma2 to about 1e-5.
    np.testing.assert_allclose(ours.beta, theirs.fe_params, rtol=1e-5)
    np.testing.assert_allclose(ours.sigma2, theirs.scale, rtol=1e-4)
    tau2 = float(np.asarray(theirs.cov_re)[0, 0])
    np.testing.assert_allclose(ours.tau2, tau2, rtol=1e-3)
    # Fixed-effect covariance (X' V^-1 X)^-1 with a dense V built from statsmodels' variance
    # components (the nlme/lme4/SAS convention; statsmodels' bse_fe uses the observed
    # information of all parameters and differs by a few percent on unbalanced data).
    same = data["subject"].to_numpy()[:, None] == data["subject"].to_numpy()[None, :]
    v = theirs.scale * np.eye(len(data)) + tau2 * same
    expected = np.linalg.inv(design.T @ np.linalg.solve(v, design))
    np.testing.assert_allclose(ours.cov, expected, rtol=1e-4)
    # and the row built from it uses between-within df: N - subjects - within effects
    if interaction:
        row = models.interaction_lmm(data, "MwA", "MwoA", "ictal", "interictal")
        assert row["df"] == len(data) - 24 - 2
    else:
        row = models.within_lmm(data, "ictal", "interictal", "all")
        assert row["df"] == len(data) - 24 - 1
    np.testing.assert_allclose(row["estimate"], ours.beta[-1], **TIGHT)
    p = 2 * stats.t.sf(abs(row["estimate"] / row["se"]), row["df"])
    np.testing.assert_allclose(row["p"], p, **TIGHT)


def test_reml_at_the_boundary_gives_ols():
    rng = np.random.default_rng(4)
    groups = np.repeat(np.arange(10), 2)
    design = np.column_stack([np.ones(20), np.tile([0.0, 1.0], 10)])
    y = rng.normal(0, 1, 20)
    y -= np.bincount(groups, y)[groups] / 2 * 1.5  # negative within-subject correlation
    fit = primitives.reml_random_intercept(y, design, groups)
    assert fit.tau2 == 0
    ols = primitives.ols(y, design)
    np.testing.assert_allclose(fit.beta, ols.beta, rtol=1e-9)
    np.testing.assert_allclose(fit.cov, ols.cov, rtol=1e-9)


# --------------------------------------------------------------------------- estimability


def test_ancova_with_too_few_residual_df_is_not_estimable():
    """2 subjects per group, age and sex: 6 subjects for 5 terms leave 1 df (the old demo's
    calcarine ai had t = -715 there): every row says why, none has a p value."""
    data = between_data(n=(2, 2, 2), site=False)
    data.loc[data.index[::2], "sex"] = "M"
    data.loc[data.index[1::2], "sex"] = "F"
    rows = models.ancova(data, ("HC", "MwA", "MwoA"), ("age", "sex"), "auto")
    assert len(rows) == 4
    for row in rows:
        assert not np.isfinite(row["p"]) and not np.isfinite(row.get("statistic", np.nan))
        assert row["note"].startswith("not estimable: 6 observations for 5 terms leave 1")


@pytest.mark.parametrize("noise", [0.0, 1e-13])
def test_near_constant_values_give_na_not_a_huge_t(noise):
    """Identical ROI values (up to rounding) gave t = 3e135 and q = 0."""
    rng = np.random.default_rng(0)
    data = paired_data(n=10).assign(value=lambda d: 50.0 + noise * rng.standard_normal(len(d)))
    t_row, w_row = models.paired_tests(data, "ictal", "interictal", "all")
    lmm = models.within_lmm(data, "ictal", "interictal", "all")
    between = between_data(site=False).assign(value=lambda d: 40.0 + noise * d["age"])
    ancova = models.ancova(between, ("HC", "MwA"), ("age",), "auto")
    for row in (t_row, w_row, lmm, *ancova):
        assert not np.isfinite(row["p"]), row
        assert "constant" in row["note"] or "non-zero" in row["note"]


def test_fit_models_q_is_na_where_p_is_na():
    table = long_table(n=10)
    table.loc[table["roi"] == "pons", "value"] = 50.0
    result = models.fit_models(default_models()[1:2], table, ["cbf"])
    pons = result[result["roi"] == "pons"]
    assert pons["q"].isna().all() and pons["p"].isna().all()
    others = result[result["roi"] != "pons"]
    assert others["q"].notna().all()


def test_minimum_df_is_applied_to_paired_and_one_sample_tests():
    data = paired_data(n=3)
    t_row, _ = models.paired_tests(data, "ictal", "interictal", "all")
    assert "leave 2 residual df" in t_row["note"] and not np.isfinite(t_row["p"])
    t_row, _ = models.paired_tests(paired_data(n=4), "ictal", "interictal", "all")
    assert np.isfinite(t_row["p"]) and t_row["df"] == primitives.MIN_RESIDUAL_DF
