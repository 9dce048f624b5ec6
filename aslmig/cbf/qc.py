"""Quality-control metrics of CBF maps and ASL series.

Tissue maps may be boolean masks or probability maps; probabilities are binarised at
``threshold`` (default 0.7). All CBF values are mL/100 g/min.

* mean GM / WM CBF and their ratio;
* percentage of negative CBF voxels in GM;
* spatial coefficient of variation, sCoV = 100 · SD / mean of CBF in GM (Mutsaerts et al.
  2017, J Cereb Blood Flow Metab 37:3184);
* a quality evaluation index in the spirit of QEI (Dolui et al. 2024, J Magn Reson Imaging;
  coefficients as in ASLPrep): the geometric mean of a structural-similarity term, a
  spatial-variability term and a negative-GM term, each in [0, 1];
* temporal SNR of ΔM;
* a motion summary from a framewise-displacement series supplied by the caller.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np
from nibabel.processing import fwhm2sigma
from scipy import ndimage

from aslmig.cbf.constants import GM_WM_FLOW_RATIO

DEFAULT_TISSUE_THRESHOLD = 0.7
DEFAULT_FD_THRESHOLD_MM = 0.5
#: QEI terms: exp(-a x^b) for variability and negative-GM fraction, 1 - exp(-a r^b) for
#: the correlation with the pseudo-CBF map (Dolui et al. 2024; ASLPrep's coefficients).
QEI_VARIABILITY = (0.054, 0.9272)
QEI_NEGATIVE_GM = (2.8478, 0.5196)
QEI_STRUCTURE = (3.0126, 2.4419)
#: Pseudo-CBF map: GM perfusion taken as 2.5 times WM perfusion.
PSEUDO_CBF_GM_WEIGHT = GM_WM_FLOW_RATIO


def tissue_mask(tissue: np.ndarray, threshold: float = DEFAULT_TISSUE_THRESHOLD) -> np.ndarray:
    """Return a boolean mask from a mask or probability map.

    Parameters
    ----------
    tissue : ndarray
        Boolean mask or probability map.
    threshold : float
        Probability at or above which a voxel is in the tissue.

    Returns
    -------
    ndarray of bool
        The mask.
    """
    tissue = np.asarray(tissue)
    return tissue if tissue.dtype == bool else tissue >= threshold


def _values(cbf: np.ndarray, tissue: np.ndarray, threshold: float) -> np.ndarray:
    cbf = np.asarray(cbf, float)
    mask = tissue_mask(tissue, threshold)
    if mask.shape != cbf.shape:
        raise ValueError(f"tissue map shape {mask.shape} does not match CBF shape {cbf.shape}")
    values = cbf[mask & np.isfinite(cbf)]
    if values.size == 0:
        raise ValueError("tissue mask is empty; check the tissue map and threshold")
    return values


def mean_tissue_cbf(
    cbf: np.ndarray, tissue: np.ndarray, threshold: float = DEFAULT_TISSUE_THRESHOLD
) -> float:
    """Mean CBF within a tissue.

    Parameters
    ----------
    cbf : ndarray
        CBF map.
    tissue : ndarray
        Tissue mask or probability map.
    threshold : float
        Binarisation threshold for probability maps.

    Returns
    -------
    float
        Mean CBF, mL/100 g/min.
    """
    return float(np.mean(_values(cbf, tissue, threshold)))


def gm_wm_ratio(
    cbf: np.ndarray, gm: np.ndarray, wm: np.ndarray, threshold: float = DEFAULT_TISSUE_THRESHOLD
) -> float:
    """Ratio of mean GM to mean WM CBF.

    Parameters
    ----------
    cbf : ndarray
        CBF map.
    gm, wm : ndarray
        Tissue masks or probability maps.
    threshold : float
        Binarisation threshold.

    Returns
    -------
    float
        GM/WM CBF ratio (NaN if WM CBF is 0).
    """
    wm_mean = mean_tissue_cbf(cbf, wm, threshold)
    return float(mean_tissue_cbf(cbf, gm, threshold) / wm_mean) if wm_mean else float("nan")


def negative_gm_percent(
    cbf: np.ndarray, gm: np.ndarray, threshold: float = DEFAULT_TISSUE_THRESHOLD
) -> float:
    """Percentage of GM voxels with negative CBF.

    Parameters
    ----------
    cbf : ndarray
        CBF map.
    gm : ndarray
        GM mask or probability map.
    threshold : float
        Binarisation threshold.

    Returns
    -------
    float
        Percentage (0-100).
    """
    values = _values(cbf, gm, threshold)
    return float(100.0 * np.count_nonzero(values < 0) / values.size)


def spatial_cov(
    cbf: np.ndarray, tissue: np.ndarray, threshold: float = DEFAULT_TISSUE_THRESHOLD
) -> float:
    """Spatial coefficient of variation, 100 · SD / mean, of CBF in a tissue (usually GM).

    Parameters
    ----------
    cbf : ndarray
        CBF map.
    tissue : ndarray
        Tissue mask or probability map.
    threshold : float
        Binarisation threshold.

    Returns
    -------
    float
        sCoV in percent.
    """
    values = _values(cbf, tissue, threshold)
    mean = np.mean(values)
    return float(100.0 * np.std(values, ddof=1) / mean) if mean else float("nan")


def _pooled_variance(cbf: np.ndarray, masks: list[np.ndarray]) -> float:
    masks = [m for m in masks if np.count_nonzero(m) > 1]
    total = sum((np.count_nonzero(m) - 1) * np.var(cbf[m]) for m in masks)
    dof = sum(np.count_nonzero(m) for m in masks) - len(masks)
    return float(total / dof) if dof > 0 else float("nan")


def quality_evaluation_index(
    cbf: np.ndarray,
    gm: np.ndarray,
    wm: np.ndarray,
    csf: np.ndarray | None = None,
    *,
    threshold: float = DEFAULT_TISSUE_THRESHOLD,
    smoothing_fwhm_mm: float | None = None,
    voxel_size_mm: Sequence[float] | None = None,
) -> float:
    """Quality evaluation index of a CBF map, in [0, 1] (higher is better).

    QEI = (S · V · N)^(1/3) with S = 1 − exp(−3.0126 · r^2.4419), r the correlation of CBF
    with the pseudo-CBF map 2.5·p_GM + p_WM (negative r counts as 0); V = exp(−0.054 ·
    CV^0.9272), CV the pooled within-tissue variance over |mean GM CBF|; and
    N = exp(−2.8478 · n^0.5196), n the fraction of negative GM voxels.

    Parameters
    ----------
    cbf : ndarray
        CBF map.
    gm, wm : ndarray
        Probability maps (preferred) or masks.
    csf : ndarray, optional
        CSF probability map or mask.
    threshold : float
        Binarisation threshold for the tissue terms.
    smoothing_fwhm_mm : float, optional
        Smooth CBF first (Dolui et al. use 5 mm); needs ``voxel_size_mm``.
    voxel_size_mm : sequence of float, optional
        Voxel size, mm.

    Returns
    -------
    float
        QEI.
    """
    cbf = np.asarray(cbf, float)
    if smoothing_fwhm_mm:
        if voxel_size_mm is None:
            raise ValueError("QEI smoothing needs voxel_size_mm")
        sigma = fwhm2sigma(smoothing_fwhm_mm) / np.asarray(voxel_size_mm, float)
        cbf = ndimage.gaussian_filter(np.nan_to_num(cbf), sigma)
    p_gm, p_wm = np.asarray(gm, float), np.asarray(wm, float)
    pseudo = PSEUDO_CBF_GM_WEIGHT * p_gm + p_wm
    support = np.isfinite(cbf) & (cbf != 0) & ((p_gm + p_wm) > 0)
    r = max(0.0, float(np.corrcoef(cbf[support], pseudo[support])[0, 1]))
    masks = [tissue_mask(t, threshold) for t in (gm, wm, csf) if t is not None]
    gm_values = _values(cbf, gm, threshold)
    variability = _pooled_variance(cbf, masks) / abs(float(np.mean(gm_values)))
    negative = np.count_nonzero(gm_values < 0) / gm_values.size
    terms = (
        1.0 - np.exp(-QEI_STRUCTURE[0] * r ** QEI_STRUCTURE[1]),
        np.exp(-QEI_VARIABILITY[0] * variability ** QEI_VARIABILITY[1]),
        np.exp(-QEI_NEGATIVE_GM[0] * negative ** QEI_NEGATIVE_GM[1]),
    )
    return float(np.prod(terms) ** (1.0 / 3.0))


def deltam_tsnr_map(deltam: np.ndarray) -> np.ndarray:
    """Voxel-wise temporal SNR of ΔM: mean over volumes / SD over volumes.

    Parameters
    ----------
    deltam : ndarray
        ΔM series, volumes on the last axis (at least 2).

    Returns
    -------
    ndarray
        tSNR map (NaN where the SD is 0).
    """
    deltam = np.asarray(deltam, float)
    if deltam.shape[-1] < 2:
        raise ValueError("ΔM tSNR needs at least 2 ΔM volumes")
    sd = deltam.std(axis=-1, ddof=1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(sd > 0, deltam.mean(axis=-1) / sd, np.nan)


def deltam_tsnr(deltam: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Median voxel-wise ΔM tSNR within a mask.

    Parameters
    ----------
    deltam : ndarray
        ΔM series, volumes on the last axis.
    mask : ndarray, optional
        Mask (e.g. GM); all voxels if None.

    Returns
    -------
    float
        Median tSNR.
    """
    tsnr = deltam_tsnr_map(deltam)
    values = tsnr if mask is None else tsnr[tissue_mask(mask)]
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def motion_summary(
    framewise_displacement: Sequence[float] | np.ndarray,
    threshold_mm: float = DEFAULT_FD_THRESHOLD_MM,
) -> dict[str, float | int]:
    """Summarise a framewise-displacement series computed by the caller.

    Parameters
    ----------
    framewise_displacement : sequence of float
        FD per volume, mm. The first entry (0 or NaN: the first volume has no predecessor)
        is left out, as in fMRIPrep and MRIQC; other NaN entries are ignored.
    threshold_mm : float
        FD above which a volume counts as high-motion.

    Returns
    -------
    dict
        ``mean_fd_mm``, ``max_fd_mm``, ``n_fd_above_threshold``, ``fd_threshold_mm``.
    """
    fd = np.asarray(framewise_displacement, float).ravel()[1:]
    fd = fd[np.isfinite(fd)]
    if fd.size == 0:
        raise ValueError("framewise displacement series has no finite values")
    return {
        "mean_fd_mm": float(fd.mean()),
        "max_fd_mm": float(fd.max()),
        "n_fd_above_threshold": int(np.count_nonzero(fd > threshold_mm)),
        "fd_threshold_mm": float(threshold_mm),
    }


def compute_qc_metrics(
    cbf: np.ndarray,
    gm: np.ndarray,
    wm: np.ndarray,
    csf: np.ndarray | None = None,
    *,
    deltam: np.ndarray | None = None,
    framewise_displacement: Sequence[float] | None = None,
    fd_threshold_mm: float = DEFAULT_FD_THRESHOLD_MM,
    threshold: float = DEFAULT_TISSUE_THRESHOLD,
) -> dict[str, float | int]:
    """All QC metrics of one CBF map in one dictionary (for the ``desc-qc_cbf.json``).

    Parameters
    ----------
    cbf : ndarray
        Mean CBF map.
    gm, wm : ndarray
        Tissue probability maps or masks.
    csf : ndarray, optional
        CSF probability map or mask.
    deltam : ndarray, optional
        ΔM series (for tSNR).
    framewise_displacement : sequence of float, optional
        FD series (for the motion summary; left out for a single volume).
    fd_threshold_mm : float
        FD threshold, mm.
    threshold : float
        Tissue binarisation threshold.

    Returns
    -------
    dict
        Metric name to value.
    """
    metrics: dict[str, float | int] = {
        "mean_gm_cbf": mean_tissue_cbf(cbf, gm, threshold),
        "mean_wm_cbf": mean_tissue_cbf(cbf, wm, threshold),
        "gm_wm_cbf_ratio": gm_wm_ratio(cbf, gm, wm, threshold),
        "negative_gm_cbf_percent": negative_gm_percent(cbf, gm, threshold),
        "gm_spatial_cov_percent": spatial_cov(cbf, gm, threshold),
        "qei": quality_evaluation_index(cbf, gm, wm, csf, threshold=threshold),
        "tissue_threshold": threshold,
    }
    if deltam is not None and np.shape(deltam)[-1] > 1:
        metrics["deltam_tsnr_gm"] = deltam_tsnr(deltam, tissue_mask(gm, threshold))
    if framewise_displacement is not None and np.size(framewise_displacement) > 1:
        # one volume has no displacement to measure: the motion metrics are left out
        metrics.update(motion_summary(framewise_displacement, fd_threshold_mm))
    return metrics


def dice(first: np.ndarray, second: np.ndarray) -> float:
    """Dice overlap of two boolean masks on the same grid (NaN when both are empty).

    Parameters
    ----------
    first, second : ndarray
        Masks.

    Returns
    -------
    float
        2·|A ∩ B| / (|A| + |B|).
    """
    first, second = np.asarray(first, bool), np.asarray(second, bool)
    total = first.sum() + second.sum()
    return float(2.0 * np.logical_and(first, second).sum() / total) if total else float("nan")


@dataclass(frozen=True)
class QcMetrics:
    """The QC metrics of one run (the ``desc-qc_cbf.json``); None where not measured.

    Attributes
    ----------
    mean_gm_cbf, mean_wm_cbf, gm_wm_cbf_ratio, negative_gm_cbf_percent : float, optional
        Tissue CBF (see :func:`compute_qc_metrics`).
    gm_spatial_cov_percent, qei, tissue_threshold : float, optional
        Spatial CoV, QEI and the tissue binarisation threshold.
    deltam_tsnr_gm : float, optional
        ΔM temporal SNR in GM.
    mean_fd_mm, max_fd_mm, n_fd_above_threshold, fd_threshold_mm : optional
        Motion summary.
    registration_dice : float, optional
        Brain-mask overlap after registration.
    brain_mask_voxels : int, optional
        Voxels of the ASL brain mask.
    fit_voxels, fit_not_converged_percent, fit_at_bound_percent : optional
        Multi-delay fit: voxels fitted, % not converged, % with a parameter at a bound.
    fit_att_unresolved_percent : float, optional
        % of fitted voxels whose ATT is at or below the earliest resolvable delay.
    fit_non_finite_voxels : int, optional
        Voxels whose data held NaN or infinity (not fitted).
    """

    mean_gm_cbf: float | None = None
    mean_wm_cbf: float | None = None
    gm_wm_cbf_ratio: float | None = None
    negative_gm_cbf_percent: float | None = None
    gm_spatial_cov_percent: float | None = None
    qei: float | None = None
    tissue_threshold: float | None = None
    deltam_tsnr_gm: float | None = None
    mean_fd_mm: float | None = None
    max_fd_mm: float | None = None
    n_fd_above_threshold: int | None = None
    fd_threshold_mm: float | None = None
    registration_dice: float | None = None
    brain_mask_voxels: int | None = None
    fit_voxels: int | None = None
    fit_not_converged_percent: float | None = None
    fit_at_bound_percent: float | None = None
    fit_att_unresolved_percent: float | None = None
    fit_non_finite_voxels: int | None = None

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> QcMetrics:
        """Build from a QC JSON (unknown keys ignored, missing optional ones None).

        Parameters
        ----------
        values : mapping
            As written by :meth:`to_dict`.

        Returns
        -------
        QcMetrics
            The metrics.
        """
        known = {item.name for item in fields(cls)}
        return cls(**{key: value for key, value in values.items() if key in known})

    def to_dict(self) -> dict[str, Any]:
        """Return the measured metrics as plain JSON values (non-finite as None)."""
        out = {}
        for key, value in asdict(self).items():
            if isinstance(value, np.generic):
                value = value.item()
            if isinstance(value, float) and not np.isfinite(value):
                value = None
            if value is not None:
                out[key] = value
        return out


def run_quality(
    cbf: np.ndarray,
    mask: np.ndarray,
    gm: np.ndarray,
    wm: np.ndarray,
    csf: np.ndarray | None,
    *,
    framewise_displacement: Sequence[float] | None = None,
    registered_mask: np.ndarray | None = None,
    target_mask: np.ndarray | None = None,
    fit_summary: Mapping[str, Any] | None = None,
) -> QcMetrics:
    """All QC metrics of one run: CBF in tissue, motion, registration and the fit.

    Parameters
    ----------
    cbf : ndarray
        Native-space mean CBF.
    mask : ndarray of bool
        ASL brain mask.
    gm, wm, csf : ndarray
        Tissue probabilities on the ASL grid (multiplied by the mask).
    framewise_displacement : sequence of float, optional
        FD series.
    registered_mask, target_mask : ndarray, optional
        The ASL brain mask in the registration target's space and the target's own mask.
    fit_summary : mapping, optional
        A multi-delay fit's :meth:`~aslmig.cbf.multi_delay.FitSummary.to_dict`.

    Returns
    -------
    QcMetrics
        The metrics.
    """
    mask = np.asarray(mask, bool)
    tissues = [None if t is None else np.asarray(t, float) * mask for t in (gm, wm, csf)]
    values = compute_qc_metrics(
        np.nan_to_num(np.where(mask, cbf, 0.0)), *tissues,
        framewise_displacement=framewise_displacement,
    )  # fmt: skip
    values["brain_mask_voxels"] = int(mask.sum())
    if registered_mask is not None and target_mask is not None:
        values["registration_dice"] = dice(registered_mask > 0.5, target_mask > 0.5)
    if fit_summary:
        values.update(
            fit_voxels=fit_summary["n_voxels_fitted"],
            fit_not_converged_percent=fit_summary["not_converged_percent"],
            fit_at_bound_percent=fit_summary["at_bound_percent"],
            fit_att_unresolved_percent=fit_summary["att_unresolved_percent"],
            fit_non_finite_voxels=fit_summary["n_non_finite_input"],
        )
    return QcMetrics.from_dict(values)


# Warning thresholds of the participant report (policy, not physics).
MIN_REGISTRATION_DICE = 0.8
MAX_NEGATIVE_GM_PERCENT = 10.0
GM_CBF_RANGE = (20.0, 120.0)
#: Multi-delay fit: a share of voxels above these is reported.
MAX_FIT_AT_BOUND_PERCENT = 5.0
MAX_FIT_NOT_CONVERGED_PERCENT = 1.0
MAX_ATT_UNRESOLVED_PERCENT = 10.0


def _fit_warnings(metrics: QcMetrics) -> list[str]:
    warnings = []
    if metrics.fit_non_finite_voxels:
        warnings.append(
            f"{metrics.fit_non_finite_voxels} brain voxel(s) had NaN or infinite ΔM/M0 and were "
            "not fitted (CBF 0 there)."
        )
    checks = (
        (metrics.fit_not_converged_percent, MAX_FIT_NOT_CONVERGED_PERCENT,
         "of the fitted voxels did not converge within the iteration limit"),
        (metrics.fit_at_bound_percent, MAX_FIT_AT_BOUND_PERCENT,
         "of the fitted voxels ended with CBF, ATT or aBV on a bound of the fit"),
        (metrics.fit_att_unresolved_percent, MAX_ATT_UNRESOLVED_PERCENT,
         "of the fitted voxels have an ATT at or below the earliest delay, which the data "
         "cannot place (ATT there is a convention; CBF is still measured)"),
    )  # fmt: skip
    for percent, limit, words in checks:
        if percent is not None and percent > limit:
            warnings.append(f"{percent:.1f} % {words}.")
    return warnings


def quality_warnings(metrics: QcMetrics) -> list[str]:
    """Plain-language warnings for QC values outside their usual range.

    Parameters
    ----------
    metrics : QcMetrics
        A run's metrics.

    Returns
    -------
    list of str
        One sentence per problem (empty when nothing stands out).
    """
    warnings = []
    dice_value = metrics.registration_dice
    if dice_value is not None and dice_value < MIN_REGISTRATION_DICE:
        warnings.append(
            f"Brain-mask overlap after registration is low (Dice {dice_value:.2f} < "
            f"{MIN_REGISTRATION_DICE}): check the registration figure."
        )
    if metrics.n_fd_above_threshold:
        warnings.append(
            f"{metrics.n_fd_above_threshold} volume(s) moved more than "
            f"{metrics.fd_threshold_mm} mm (framewise displacement)."
        )
    negative = metrics.negative_gm_cbf_percent
    if negative is not None and negative > MAX_NEGATIVE_GM_PERCENT:
        warnings.append(f"{negative:.1f} % of grey-matter voxels have negative CBF.")
    grey = metrics.mean_gm_cbf
    if grey is not None and not GM_CBF_RANGE[0] <= grey <= GM_CBF_RANGE[1]:
        warnings.append(
            f"Mean grey-matter CBF {grey:.1f} mL/100 g/min is outside "
            f"{GM_CBF_RANGE[0]:g}-{GM_CBF_RANGE[1]:g}: check M0 scaling and labeling."
        )
    return warnings + _fit_warnings(metrics)
