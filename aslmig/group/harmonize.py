"""ComBat harmonisation of regional values across acquisition sites (empirical Bayes).

Equations of Johnson, Li & Rabinovic (2007, Biostatistics 8:118) as used for imaging by
Fortin et al. (2017, NeuroImage 161:149; 2018, NeuroImage 167:104). For feature (ROI) ``g``,
site ``i`` and session ``j``::

    y_ijg = alpha_g + X_ij beta_g + gamma_ig + delta_ig e_ijg

``X`` holds the effects to **preserve** (group x phase cells, age, sex): they are fitted
together with the site effects and put back unchanged. The steps:

1. least squares per feature on ``[site indicators, X]``; ``alpha_g`` is the sample-weighted
   mean of the site coefficients; ``sigma_g^2`` the mean squared residual (denominator N);
2. standardise ``z = (y - alpha - X beta) / sigma``;
3. per site and feature ``gamma_hat`` (mean of z) and ``delta_hat^2`` (variance, ddof 1);
4. across features of a site, a normal prior for gamma (mean ``gamma_bar``, variance
   ``tau^2``) and an inverse-gamma prior for delta^2 (method of moments: ``a = (2 s^2 + m^2) /
   s^2``, ``b = (m s^2 + m^3) / s^2``);
5. the posterior means ``gamma* = (n tau^2 gamma_hat + delta*^2 gamma_bar) /
   (n tau^2 + delta*^2)`` and ``delta*^2 = (b + sum (z - gamma*)^2 / 2) / (n / 2 + a - 1)``,
   iterated until both change by less than 1e-4 relatively (relative to the signed old
   value, as in sva's ComBat and neuroCombat);
6. ``y* = sigma (z - gamma*) / delta* + alpha + X beta``.

Our own code, kept instead of ``neuroCombat`` (MIT, last release 2021; used as the test
oracle, equal to 1e-9 on the same numbers) because it prints progress to stdout and needs
every feature of every session, and ``neuroHarmonize`` pins numpy < 2 and pandas < 3.
Missing values (an ROI outside a session's field of view) are left out of every sum here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

#: Relative change of gamma* and delta*^2 at which the iteration stops (as neuroCombat).
CONVERGENCE = 1e-4
MAX_ITERATIONS = 1000
#: Fewest sessions a site needs (a variance per site and feature needs two).
MIN_PER_SITE = 2
#: Measures that are harmonised (asymmetry indices are ratios within a session: a site's
#: multiplicative effect cancels in them).
HARMONISED_MEASURES = ("cbf", "rcbf", "att")


@dataclass(frozen=True)
class CombatFit:
    """The adjusted data and the estimates of one ComBat run.

    Attributes
    ----------
    data : numpy.ndarray
        Harmonised values, ``(n_features, n_samples)``; NaN where the input was NaN.
    sites : list of str
        Site order of the rows of ``gamma_star`` / ``delta_star``.
    gamma_star, delta_star : numpy.ndarray
        Posterior additive (in pooled SD units) and multiplicative (variance ratio) site
        effects, ``(n_sites, n_features)``.
    """

    data: np.ndarray
    sites: list[str]
    gamma_star: np.ndarray
    delta_star: np.ndarray


def combat(data: np.ndarray, sites: np.ndarray, preserve: np.ndarray) -> CombatFit:
    """Harmonise features across sites, preserving the effects in ``preserve``.

    Parameters
    ----------
    data : numpy.ndarray
        ``(n_features, n_samples)``, NaN for missing values.
    sites : numpy.ndarray
        Site of each sample (at least two sites, each with :data:`MIN_PER_SITE` samples).
    preserve : numpy.ndarray
        ``(n_samples, q)`` design of the effects to keep (no intercept column).

    Returns
    -------
    CombatFit
        The harmonised data and the site estimates.

    Raises
    ------
    ValueError
        Fewer than two sites, a site with too few samples, or a rank-deficient design.
    """
    y = np.asarray(data, float)
    names, codes, counts = np.unique(np.asarray(sites).astype(str), return_inverse=True,
                                     return_counts=True)  # fmt: skip
    if names.size < 2 or counts.min() < MIN_PER_SITE:
        raise ValueError(f"ComBat needs two or more sites with {MIN_PER_SITE}+ sessions each")
    indicators = (codes[:, None] == np.arange(names.size)[None, :]).astype(float)
    design = np.column_stack([indicators, np.asarray(preserve, float)])
    if np.linalg.matrix_rank(design) < design.shape[1]:
        raise ValueError("the site and covariate design is rank-deficient")
    beta = np.column_stack([_least_squares(row, design) for row in y])  # (p, features)
    observed = np.isfinite(y)
    weights = np.array([observed[:, codes == k].sum(axis=1) for k in range(names.size)])
    grand = (weights * beta[: names.size]).sum(axis=0) / weights.sum(axis=0)
    fitted = (design @ beta).T
    variance = np.nanmean((y - fitted) ** 2, axis=1)
    variance[variance == 0] = np.median(variance[variance != 0])
    kept = (design[:, names.size :] @ beta[names.size :]).T
    standard = (y - grand[:, None] - kept) / np.sqrt(variance)[:, None]
    gamma, delta = _empirical_bayes(standard, codes, names.size)
    adjusted = standard.copy()
    for k in range(names.size):
        columns = codes == k
        adjusted[:, columns] = (standard[:, columns] - gamma[k][:, None]) / np.sqrt(
            delta[k]
        )[:, None]
    harmonised = adjusted * np.sqrt(variance)[:, None] + grand[:, None] + kept
    return CombatFit(np.where(observed, harmonised, np.nan), list(names), gamma, delta)


def _least_squares(row: np.ndarray, design: np.ndarray) -> np.ndarray:
    present = np.isfinite(row)
    solution, *_ = np.linalg.lstsq(design[present], row[present], rcond=None)
    return solution


def _empirical_bayes(
    standard: np.ndarray, codes: np.ndarray, n_sites: int
) -> tuple[np.ndarray, np.ndarray]:
    """Posterior gamma* and delta*^2 per site (rows) and feature (columns)."""
    gamma_star, delta_star = [], []
    for k in range(n_sites):
        z = standard[:, codes == k]
        n = np.isfinite(z).sum(axis=1)
        gamma_hat = np.nanmean(z, axis=1)
        delta_hat = np.nanvar(z, axis=1, ddof=1)
        delta_hat[delta_hat == 0] = 1.0
        gamma_bar, tau2 = gamma_hat.mean(), gamma_hat.var(ddof=1)
        m, s2 = delta_hat.mean(), delta_hat.var(ddof=1)
        a, b = (2 * s2 + m**2) / s2, (m * s2 + m**3) / s2
        gamma_old, delta_old = gamma_hat, delta_hat
        for _ in range(MAX_ITERATIONS):
            gamma_new = (tau2 * n * gamma_hat + delta_old * gamma_bar) / (tau2 * n + delta_old)
            squares = np.nansum((z - gamma_new[:, None]) ** 2, axis=1)
            delta_new = (0.5 * squares + b) / (n / 2.0 + a - 1.0)
            # relative to the signed old value, as sva's ComBat and neuroCombat do
            change = max(
                np.max(np.abs(gamma_new - gamma_old) / gamma_old),
                np.max(np.abs(delta_new - delta_old) / delta_old),
            )
            gamma_old, delta_old = gamma_new, delta_new
            if change <= CONVERGENCE:
                break
        gamma_star.append(gamma_old)
        delta_star.append(delta_old)
    return np.array(gamma_star), np.array(delta_star)


def preserved_design(units: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Design of the effects ComBat keeps: group x phase cells, centred age, sex.

    Parameters
    ----------
    units : pandas.DataFrame
        One row per session: ``group, phase, age, sex``.

    Returns
    -------
    design : numpy.ndarray
        Indicators of every group x phase cell but the first, age when known for every
        session and not constant, and sex indicators (first level sorted is the reference).
    names : list of str
        Column names.
    """
    cells = (units["group"].astype(str) + ":" + units["phase"].astype(str)).to_numpy()
    columns, names = [], []
    for cell in sorted(set(cells))[1:]:
        columns.append((cells == cell).astype(float))
        names.append(cell)
    age = pd.to_numeric(units["age"], errors="coerce")
    if age.notna().all() and age.std() > 0:
        columns.append((age - age.mean()).to_numpy(float))
        names.append("age")
    for level in sorted(set(units["sex"].astype(str)))[1:]:
        columns.append((units["sex"].astype(str) == level).to_numpy(float))
        names.append(f"sex[{level}]")
    design = np.column_stack(columns) if columns else np.zeros((len(units), 0))
    return design, names


def harmonise_values(values: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """ComBat across ``site`` of each harmonised measure of the long values table.

    Parameters
    ----------
    values : pandas.DataFrame
        ``roi_values`` rows: ``subject, session, group, phase, age, sex, site, roi,
        measure, value``.

    Returns
    -------
    values : pandas.DataFrame
        The same rows, ``value`` harmonised for :data:`HARMONISED_MEASURES`.
    estimates : pandas.DataFrame
        ``measure, roi, site, n, gamma_star, delta_star``: the posterior site effects.

    Raises
    ------
    ValueError
        With the reason, when the sites cannot be harmonised.
    """
    values = values.copy()
    unsited = values.loc[values["site"].fillna("").astype(str).eq(""), "subject"].unique()
    if unsited.size:
        raise ValueError(f"{unsited.size} participant(s) have no site (e.g. sub-{unsited[0]})")
    rows = []
    for measure in [m for m in HARMONISED_MEASURES if m in set(values["measure"])]:
        selected = values[values["measure"] == measure]
        wide = selected.pivot(index="roi", columns=["subject", "session"], values="value")
        wide = wide.loc[wide.notna().sum(axis=1) > 0]
        units = (selected.drop_duplicates(["subject", "session"])
                 .set_index(["subject", "session"]).loc[wide.columns])  # fmt: skip
        design, _ = preserved_design(units.reset_index())
        fit = combat(wide.to_numpy(float), units["site"].to_numpy(), design)
        adjusted = pd.DataFrame(fit.data, index=wide.index, columns=wide.columns)
        stacked = adjusted.stack(["subject", "session"], future_stack=True).rename("harmonised")
        merged = selected.join(stacked, on=["roi", "subject", "session"])
        values.loc[merged.index, "value"] = merged["harmonised"].to_numpy(float)
        counts = units["site"].value_counts()
        for k, site in enumerate(fit.sites):
            for g, roi in enumerate(wide.index):
                rows.append({"measure": measure, "roi": roi, "site": site,
                             "n": int(counts[site]), "gamma_star": fit.gamma_star[k, g],
                             "delta_star": fit.delta_star[k, g]})  # fmt: skip
    columns = ["measure", "roi", "site", "n", "gamma_star", "delta_star"]
    return values, pd.DataFrame(rows, columns=columns)
