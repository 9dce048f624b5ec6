"""Volume outlier rejection for CBF series: SCORE (Dolui et al. 2017).

Structural Correlation based Outlier REjection (Dolui S, Wang Z, Shinohara RT, Wolk DA,
Detre JA. J Magn Reson Imaging 2017;45:1786-1797), as implemented here:

1. Volumes whose mean grey-matter CBF lies more than ``n_sd`` robust standard deviations
   (1.4826 × median absolute deviation) from the median over volumes are discarded.
2. Iteratively, the remaining volume most correlated with the current mean CBF map (within
   the union of the tissue masks) is the removal candidate — an outlier dominates the mean.
   It is removed if that lowers the pooled within-tissue variance of the mean map,
   V = Σ_tissue (n_tissue − 1)·var_tissue(mean CBF); otherwise the iteration stops.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Median absolute deviation to standard deviation for normal data.
MAD_TO_SD = 1.4826


@dataclass(frozen=True)
class ScoreResult:
    """Outcome of SCORE.

    Attributes
    ----------
    kept : ndarray of bool
        Which volumes were kept.
    mean_cbf : ndarray
        Mean CBF over the kept volumes (spatial shape).
    reasons : dict
        ``{volume index: reason}`` for each dropped volume.
    pooled_variance : float
        Pooled within-tissue variance of ``mean_cbf``.
    """

    kept: np.ndarray
    mean_cbf: np.ndarray
    reasons: dict[int, str]
    pooled_variance: float

    @property
    def dropped(self) -> list[int]:
        """Indices of the dropped volumes."""
        return [int(i) for i in np.flatnonzero(~self.kept)]


def _tissue_masks(
    shape: tuple[int, ...], maps: list[np.ndarray | None], threshold: float
) -> list[np.ndarray]:
    masks = []
    for tissue_map in maps:
        if tissue_map is None:
            continue
        tissue_map = np.asarray(tissue_map)
        if tissue_map.shape != shape:
            raise ValueError(
                f"tissue map shape {tissue_map.shape} does not match the CBF shape {shape}"
            )
        mask = tissue_map if tissue_map.dtype == bool else tissue_map >= threshold
        if np.count_nonzero(mask) > 1:
            masks.append(mask)
    return masks


def pooled_tissue_variance(cbf: np.ndarray, tissue_masks: list[np.ndarray]) -> float:
    """Return Σ_tissue (n_tissue − 1)·var(cbf within tissue).

    Parameters
    ----------
    cbf : ndarray
        CBF map.
    tissue_masks : list of ndarray of bool
        One mask per tissue.

    Returns
    -------
    float
        Pooled variance.
    """
    return float(sum((np.count_nonzero(m) - 1) * np.var(cbf[m]) for m in tissue_masks))


def _initial_outliers(gm_means: np.ndarray, n_sd: float) -> np.ndarray:
    median = np.median(gm_means)
    robust_sd = MAD_TO_SD * np.median(np.abs(gm_means - median))
    if robust_sd == 0:
        return np.zeros(gm_means.shape, bool)
    return np.abs(gm_means - median) > n_sd * robust_sd


def _correlations(voxels: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """Pearson correlation of each column of ``voxels`` (n_vox, n_vol) with ``reference``."""
    centred = voxels - voxels.mean(axis=0)
    ref = reference - reference.mean()
    denominator = np.sqrt((centred**2).sum(axis=0) * (ref**2).sum())
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denominator > 0, (centred * ref[:, None]).sum(axis=0) / denominator, 0.0)


def score_outlier_rejection(
    cbf_series: np.ndarray,
    gm: np.ndarray,
    wm: np.ndarray,
    csf: np.ndarray | None = None,
    *,
    tissue_threshold: float = 0.7,
    n_sd: float = 2.5,
    min_volumes: int = 2,
) -> ScoreResult:
    """Reject outlier volumes from a CBF series with SCORE.

    Parameters
    ----------
    cbf_series : ndarray
        CBF, volumes on the last axis.
    gm, wm : ndarray
        Grey- and white-matter probability maps (or boolean masks), spatial shape.
    csf : ndarray, optional
        CSF probability map or mask.
    tissue_threshold : float
        Probability at or above which a voxel belongs to a tissue.
    n_sd : float
        Robust standard deviations beyond which a volume's mean GM CBF is an outlier.
    min_volumes : int
        Never keep fewer volumes than this.

    Returns
    -------
    ScoreResult
        Kept volumes, their mean CBF and the reason each dropped volume was dropped.
    """
    cbf_series = np.asarray(cbf_series, float)
    spatial, n_volumes = cbf_series.shape[:-1], cbf_series.shape[-1]
    masks = _tissue_masks(spatial, [gm, wm, csf], tissue_threshold)
    if len(masks) < 2:
        raise ValueError("SCORE needs grey- and white-matter masks with at least 2 voxels each")
    gm_mask = masks[0]
    kept = np.ones(n_volumes, bool)
    reasons: dict[int, str] = {}
    gm_means = cbf_series[gm_mask].mean(axis=0)
    for index in np.flatnonzero(_initial_outliers(gm_means, n_sd)):
        if np.count_nonzero(kept) > min_volumes:
            kept[index] = False
            reasons[int(index)] = f"mean GM CBF beyond {n_sd} robust SD of the median"

    union = np.logical_or.reduce(masks)
    voxels = cbf_series[union]  # (n_vox, n_vol)
    total = cbf_series[..., kept].sum(axis=-1)
    mean_cbf = total / np.count_nonzero(kept)
    variance = pooled_tissue_variance(mean_cbf, masks)
    while np.count_nonzero(kept) > min_volumes:
        candidates = np.flatnonzero(kept)
        corr = _correlations(voxels[:, candidates], mean_cbf[union])
        candidate = int(candidates[np.argmax(corr)])
        trial_total = total - cbf_series[..., candidate]
        trial_mean = trial_total / (candidates.size - 1)
        trial_variance = pooled_tissue_variance(trial_mean, masks)
        if trial_variance >= variance:
            break
        kept[candidate] = False
        total, mean_cbf, variance = trial_total, trial_mean, trial_variance
        reasons[candidate] = "removal reduced the pooled tissue variance of the mean CBF"
    return ScoreResult(kept=kept, mean_cbf=mean_cbf, reasons=reasons, pooled_variance=variance)
