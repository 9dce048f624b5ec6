"""Regional statistics of a parameter map (CBF, ATT) over the ROIs of a label image.

Pure numpy/pandas: arrays in, a long-format table out (one row per ROI). A ROI whose
field-of-view coverage is below a threshold is reported with ``status`` giving the reason
and no values, rather than with a number computed from a few edge voxels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

DEFAULT_MIN_COVERAGE = 0.5
DEFAULT_GM_THRESHOLD = 0.5
#: ``gm_restricted_mean`` needs this many grey-matter voxels, and this share of the region's
#: valid voxels: otherwise a few stray voxels (e.g. in the white-matter region) make it.
MIN_GREY_VOXELS = 10
MIN_GREY_FRACTION = 0.1
#: A region smaller than this many ASL voxels (a 2 x 2 x 2 block) on the ASL grid is below
#: the resolution: its value mixes in its neighbours (partial volume).
MIN_ROI_ASL_VOXELS = 8
#: Two-sided level of the asymmetry index's confidence interval.
CONFIDENCE_LEVEL = 0.95
COLUMNS = (
    "roi",
    "index",
    "hemisphere",
    "n_voxels",
    "n_valid",
    "coverage",
    "mean",
    "mean_se",
    "median",
    "sd",
    "gm_weighted_mean",
    "n_grey",
    "gm_restricted_mean",
    "relative_to_reference",
    "asymmetry_index",
    "asymmetry_ci_low",
    "asymmetry_ci_high",
    "asymmetry_note",
    "status",
)


@dataclass(frozen=True)
class Roi:
    """One region of a label image.

    Attributes
    ----------
    index : int
        Its value in the label image.
    name : str
        Its name, with ``_L``/``_R`` for lateralised regions (e.g. ``occipital_cortex_L``).
    level : int
        Volume of a 4-D label image that holds it (0 for 3-D label images).
    """

    index: int
    name: str
    level: int = 0

    @property
    def hemisphere(self) -> str | None:
        """``"L"``, ``"R"`` or None, from the name's suffix."""
        suffix = self.name.rsplit("_", 1)[-1] if "_" in self.name else ""
        return suffix if suffix in ("L", "R") else None


def roi_mask(labels: np.ndarray, roi: Roi) -> np.ndarray:
    """Boolean mask of ``roi`` in a 3-D or 4-D (one level per volume) label array."""
    if labels.ndim == 4:
        return labels[..., roi.level] == roi.index
    return labels == roi.index


def reference_mean(
    values: np.ndarray,
    valid: np.ndarray,
    gm: np.ndarray,
    gm_threshold: float = DEFAULT_GM_THRESHOLD,
) -> float:
    """Mean of ``values`` over the valid voxels with GM probability >= ``gm_threshold``.

    This whole-grey-matter mean normalises the relative CBF of every ROI.
    """
    grey = np.asarray(valid, bool) & np.isfinite(values) & (np.asarray(gm) >= gm_threshold)
    return float(np.mean(values[grey])) if grey.any() else float("nan")


def _roi_row(
    roi: Roi,
    values: np.ndarray,
    in_roi: np.ndarray,
    valid: np.ndarray,
    gm: np.ndarray | None,
    gm_threshold: float,
    min_coverage: float,
    coverage: float | None = None,
) -> dict[str, object]:
    n_voxels = int(in_roi.sum())
    use = in_roi & valid
    n_valid = int(use.sum())
    measured_here = coverage is None
    if measured_here:
        coverage = n_valid / n_voxels if n_voxels else 0.0
    row: dict[str, object] = {
        "roi": roi.name,
        "index": roi.index,
        "hemisphere": roi.hemisphere,
        "n_voxels": n_voxels,
        "n_valid": n_valid,
        "coverage": coverage,
    }
    if n_voxels == 0 and measured_here:
        return {**row, "status": "n/a: the ROI has no voxel in the label image"}
    if coverage < min_coverage:
        return {**row, "status": f"n/a: coverage {coverage:.2f} < {min_coverage:g}"}
    if n_valid == 0:
        return {**row, "status": "n/a: no voxel of the ROI with data on this grid"}
    data = values[use]
    row.update(
        mean=float(data.mean()),
        median=float(np.median(data)),
        sd=float(data.std(ddof=1)) if data.size > 1 else float("nan"),
        status="ok",
    )
    if gm is not None:
        weights = np.clip(gm[use], 0.0, 1.0)
        if weights.sum() > 0:
            row["gm_weighted_mean"] = float((weights * data).sum() / weights.sum())
        grey = weights >= gm_threshold
        row["n_grey"] = int(grey.sum())
        if grey.sum() >= max(MIN_GREY_VOXELS, MIN_GREY_FRACTION * n_valid):
            row["gm_restricted_mean"] = float(data[grey].mean())
    return row


def regional_statistics(
    values: np.ndarray,
    labels: np.ndarray,
    rois: Sequence[Roi],
    *,
    valid: np.ndarray | None = None,
    gm: np.ndarray | None = None,
    reference_value: float | None = None,
    gm_threshold: float = DEFAULT_GM_THRESHOLD,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    coverage: Mapping[str, float] | None = None,
    uncertainty: RepetitionUncertainty | None = None,
) -> pd.DataFrame:
    """Summarise a parameter map within each ROI.

    Parameters
    ----------
    values : ndarray
        The map (e.g. CBF in mL/100 g/min), on the grid of ``labels``.
    labels : ndarray of int
        The label image (0 = background), 3-D or 4-D with one level per volume.
    rois : sequence of Roi
        The regions to report, in order.
    valid : ndarray of bool, optional
        Voxels with data (inside the acquired field of view and brain mask). Default: finite
        values. Non-finite values are never used.
    gm : ndarray, optional
        Grey-matter probability on the same grid, for the GM-weighted and GM-restricted means.
    reference_value : float, optional
        The value that normalises ``relative_to_reference`` (e.g. :func:`reference_mean`).
    gm_threshold : float
        Grey-matter probability at or above which a voxel counts as grey matter.
    min_coverage : float
        Smallest fraction of an ROI's voxels with data for its values to be reported.
    coverage : mapping of str to float, optional
        Coverage per ROI name measured elsewhere (e.g. in template space, where the whole ROI
        exists, for a native-space table whose grid may cut the ROI); default: measured here.
    uncertainty : RepetitionUncertainty, optional
        Standard errors from :func:`repetition_uncertainty` (e.g. measured on the ASL grid):
        fills ``mean_se``, ``asymmetry_ci_low``/``_high`` (the index ± t·SE) and
        ``asymmetry_note`` (the interval includes 0; a region of the pair below
        :data:`MIN_ROI_ASL_VOXELS` ASL voxels).

    Returns
    -------
    pandas.DataFrame
        One row per ROI with the columns of :data:`COLUMNS`; ``asymmetry_index`` is
        2·(L − R)/(L + R) of the pair's means, on both rows of a left/right pair.
    """
    values = np.asarray(values, dtype=float)
    labels = np.asarray(labels)
    grid = labels.shape[:3]
    if values.shape != grid or (gm is not None and np.shape(gm) != grid):
        raise ValueError("values, labels (and gm) must be on the same grid")
    finite = np.isfinite(values)
    usable = finite if valid is None else (np.asarray(valid, bool) & finite)
    gm_array = None if gm is None else np.asarray(gm, dtype=float)
    rows = [
        _roi_row(
            roi,
            values,
            roi_mask(labels, roi),
            usable,
            gm_array,
            gm_threshold,
            min_coverage,
            None if coverage is None else coverage.get(roi.name),
        )
        for roi in rois
    ]
    table = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    if reference_value is not None:
        table["relative_to_reference"] = table["mean"] / reference_value
    pairs = asymmetry_indices(table).set_index("region")["asymmetry_index"]
    regions = table["roi"].str.rsplit("_", n=1).str[0]
    lateral = table["hemisphere"].isin(("L", "R"))
    table["asymmetry_index"] = regions.map(pairs).where(lateral)
    if uncertainty is not None:
        _add_uncertainty(table, uncertainty, regions, lateral)
    return table


@dataclass(frozen=True)
class RepetitionUncertainty:
    """Standard errors of regional values from the repetition-to-repetition variability.

    Attributes
    ----------
    n_repetitions : int
        Repetitions (label/control pairs, or multi-delay repeats) behind the values.
    mean_se : Mapping[str, float]
        Per ROI, the jackknife standard error of its mean.
    asymmetry_se : Mapping[str, float]
        Per left/right region (name without ``_L``/``_R``), that of its asymmetry index.
    asl_voxels : Mapping[str, int]
        Per ROI, its voxels on the ASL grid (to flag regions below the resolution).
    """

    n_repetitions: int
    mean_se: Mapping[str, float]
    asymmetry_se: Mapping[str, float]
    asl_voxels: Mapping[str, int]


def _jackknife_se(replicates: np.ndarray) -> np.ndarray:
    """Jackknife standard error over the first axis: √((n−1)/n · Σ(θ_i − θ̄)²)."""
    n = replicates.shape[0]
    deviation = replicates - np.nanmean(replicates, axis=0)
    return np.sqrt((n - 1) / n * np.nansum(deviation**2, axis=0))


def repetition_uncertainty(
    replicates: np.ndarray,
    labels: np.ndarray,
    rois: Sequence[Roi],
    valid: np.ndarray | None = None,
) -> RepetitionUncertainty:
    """Jackknife standard errors of ROI means and asymmetry indices.

    ``replicates`` holds the map with each repetition left out in turn (single delay: the
    mean of the per-pair CBF without that pair; multi-delay: the first-order refit without
    that repeat). Each ROI's mean is computed in every replicate; the spread of those means,
    and of the asymmetry indices 2(L − R)/(L + R) computed from them, gives the standard
    errors (Efron & Tibshirani 1993, An Introduction to the Bootstrap, ch. 11). For the mean
    of the per-pair CBF this is exactly the standard deviation over pairs / √n.

    Parameters
    ----------
    replicates : ndarray
        ``(..., n_repetitions)`` on the grid of ``labels``.
    labels : ndarray of int
        3-D or 4-D label image.
    rois : sequence of Roi
        The regions.
    valid : ndarray of bool, optional
        Voxels with data.

    Returns
    -------
    RepetitionUncertainty
        Standard errors and ASL-grid sizes.
    """
    replicates = np.asarray(replicates, float)
    n_repetitions = replicates.shape[-1]
    usable = np.isfinite(replicates).all(axis=-1)
    if valid is not None:
        usable &= np.asarray(valid, bool)
    means, sizes = {}, {}
    for roi in rois:
        inside = roi_mask(labels, roi)
        sizes[roi.name] = int(inside.sum())
        use = inside & usable
        if use.any():
            means[roi.name] = replicates[use].mean(axis=0)
    mean_se = {name: float(_jackknife_se(values[:, None])[0]) for name, values in means.items()}
    asymmetry_se = {}
    for roi in rois:
        region, _, side = roi.name.rpartition("_")
        right = f"{region}_R"
        if side == "L" and roi.name in means and right in means:
            left_values, right_values = means[roi.name], means[right]
            with np.errstate(divide="ignore", invalid="ignore"):
                index = 2 * (left_values - right_values) / (left_values + right_values)
            asymmetry_se[region] = float(_jackknife_se(index[:, None])[0])
    return RepetitionUncertainty(n_repetitions, mean_se, asymmetry_se, sizes)


def _add_uncertainty(
    table: pd.DataFrame,
    uncertainty: RepetitionUncertainty,
    regions: pd.Series,
    lateral: pd.Series,
) -> None:
    """Fill the standard error, the asymmetry index's interval and its note (in place)."""
    table["mean_se"] = table["roi"].map(uncertainty.mean_se).where(table["status"] == "ok")
    n = uncertainty.n_repetitions
    half_width = regions.map(uncertainty.asymmetry_se) * (
        stats.t.ppf(0.5 + CONFIDENCE_LEVEL / 2, n - 1) if n > 1 else np.nan
    )
    index = table["asymmetry_index"]
    table["asymmetry_ci_low"] = (index - half_width).where(lateral)
    table["asymmetry_ci_high"] = (index + half_width).where(lateral)
    small = table["roi"].map(uncertainty.asl_voxels) < MIN_ROI_ASL_VOXELS
    pair_small = small.groupby(regions).transform("any")
    excludes_zero = (table["asymmetry_ci_low"] > 0) | (table["asymmetry_ci_high"] < 0)
    notes = []
    for has_index, clear, tiny in zip(lateral & index.notna(), excludes_zero, pair_small,
                                      strict=True):  # fmt: skip
        note = []
        if has_index and not clear:
            note.append(f"{CONFIDENCE_LEVEL:.0%} interval includes 0")
        if has_index and tiny:
            note.append(f"region below {MIN_ROI_ASL_VOXELS} ASL voxels")
        notes.append("; ".join(note) or None)
    table["asymmetry_note"] = notes


def asymmetry_indices(table: pd.DataFrame, column: str = "mean") -> pd.DataFrame:
    """Hemispheric asymmetry index 2·(L − R)/(L + R) of each left/right ROI pair.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`regional_statistics`.
    column : str
        The statistic compared (``mean``, ``gm_restricted_mean`` ...).

    Returns
    -------
    pandas.DataFrame
        Columns ``region``, ``left``, ``right``, ``asymmetry_index`` (NaN when a side is n/a).
    """
    sides = table.dropna(subset=["hemisphere"]).assign(
        region=lambda frame: frame["roi"].str.rsplit("_", n=1).str[0]
    )
    left = sides[sides["hemisphere"] == "L"].set_index("region")[column]
    right = sides[sides["hemisphere"] == "R"].set_index("region")[column]
    pairs = pd.concat({"left": left, "right": right}, axis=1, join="inner")
    total = pairs["left"] + pairs["right"]
    pairs["asymmetry_index"] = 2.0 * (pairs["left"] - pairs["right"]) / total.where(total != 0)
    return pairs.reset_index()
