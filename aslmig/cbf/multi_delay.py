"""Multi-delay CBF and ATT maps: repeats averaged, the kinetic model fitted in every voxel.

The batched fit itself is :mod:`aslmig.cbf.kinetic_fit`; this module turns ΔM volumes, M0 and
timing into the curves it fits, and its per-voxel results back into maps, a status map and a
:class:`FitSummary` of the voxels that did not fit cleanly.

Residuals are computed on ΔM/M0; repeated volumes at the same delay are averaged first and
weighted by their count, which gives the same estimate as fitting every volume. The spread of
the repeats around their mean gives each voxel's noise variance, which weighs the optional
arrival-time priors.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from aslmig.cbf.constants import GM_WM_FLOW_RATIO, QuantificationConstants
from aslmig.cbf.kinetic import KineticSettings
from aslmig.cbf.kinetic_fit import (
    ARTERIAL_SELECTION_ALPHA,
    ArrivalPriors,
    FitBounds,
    FitOptions,
    FitStatus,
    fit_kinetic_curves,
    leave_one_out_cbf,
)
from aslmig.cbf.single_delay import bolus_duration, effective_delays, m0_array, valid_voxels


@dataclass(frozen=True)
class FitSummary:
    """Counts of the voxels of a multi-delay fit that did not fit cleanly.

    Attributes
    ----------
    n_fitted : int
        Voxels fitted (brain mask with positive M0 and finite data).
    n_not_converged, n_at_bound, n_att_unresolved : int
        Fitted voxels with each :class:`~aslmig.cbf.kinetic_fit.FitStatus` flag.
    n_non_finite_input : int
        Voxels whose ΔM/M0 curve held NaN or infinity (not fitted; CBF = fill value).
    n_nonpositive_m0 : int
        Mask voxels left out because M0 was not positive.
    """

    n_fitted: int
    n_not_converged: int
    n_at_bound: int
    n_att_unresolved: int
    n_non_finite_input: int
    n_nonpositive_m0: int

    @classmethod
    def from_status(cls, status: np.ndarray, n_nonpositive_m0: int) -> FitSummary:
        """Count the flags of a status array (one entry per voxel with positive M0).

        Parameters
        ----------
        status : ndarray of uint8
            :class:`~aslmig.cbf.kinetic_fit.FitStatus` flags.
        n_nonpositive_m0 : int
            Mask voxels without positive M0.

        Returns
        -------
        FitSummary
            The counts.
        """

        def count(flag: FitStatus) -> int:
            return int(np.count_nonzero(status & np.uint8(flag)))

        non_finite = count(FitStatus.NON_FINITE_INPUT)
        return cls(
            n_fitted=int(status.size - non_finite),
            n_not_converged=count(FitStatus.NOT_CONVERGED),
            n_at_bound=count(FitStatus.AT_BOUND),
            n_att_unresolved=count(FitStatus.ATT_UNRESOLVED),
            n_non_finite_input=non_finite,
            n_nonpositive_m0=n_nonpositive_m0,
        )

    def percent(self, count: int) -> float:
        """Return a count as a percentage of the fitted voxels (0 when none was)."""
        return 100.0 * count / self.n_fitted if self.n_fitted else 0.0

    def to_dict(self) -> dict[str, int | float]:
        """Return the counts and percentages, for provenance and the QC JSON."""
        return {
            "n_voxels_fitted": self.n_fitted,
            "n_not_converged": self.n_not_converged,
            "n_at_bound": self.n_at_bound,
            "n_att_unresolved": self.n_att_unresolved,
            "n_non_finite_input": self.n_non_finite_input,
            "n_nonpositive_m0_voxels": self.n_nonpositive_m0,
            "not_converged_percent": self.percent(self.n_not_converged),
            "at_bound_percent": self.percent(self.n_at_bound),
            "att_unresolved_percent": self.percent(self.n_att_unresolved),
        }


@dataclass(frozen=True)
class MultiDelayFit:
    """Maps from :func:`fit_multi_delay` (spatial shape; ``fill_value`` outside the mask).

    Attributes
    ----------
    cbf : ndarray
        CBF, mL/100 g/min.
    att : ndarray
        Arterial transit time, s.
    rmse : ndarray
        Root-mean-square residual, in the units of the input ΔM.
    r2 : ndarray
        Coefficient of determination of the fit.
    converged : ndarray of bool
        Convergence flag.
    status : ndarray of uint8
        :class:`~aslmig.cbf.kinetic_fit.FitStatus` flags (0 outside the fitted voxels).
    summary : FitSummary
        Counts of the flagged voxels.
    abv : ndarray or None
        Arterial blood volume fraction (arterial component only).
    att_arterial : ndarray or None
        Arterial arrival time, s (arterial component only).
    cbf_replicates : ndarray or None
        CBF with each repeat left out in turn (volumes on the last axis; first-order, see
        :func:`aslmig.cbf.kinetic_fit.leave_one_out_cbf`); None without repeats.
    provenance : dict
        Model, constants, delays, options, summary.
    """

    cbf: np.ndarray
    att: np.ndarray
    rmse: np.ndarray
    r2: np.ndarray
    converged: np.ndarray
    status: np.ndarray
    summary: FitSummary
    abv: np.ndarray | None = None
    att_arterial: np.ndarray | None = None
    cbf_replicates: np.ndarray | None = None
    provenance: dict = field(default_factory=dict)


def average_repeats(
    deltam: np.ndarray, plds: np.ndarray, taus: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Average ΔM volumes that share PLD and labeling duration.

    Parameters
    ----------
    deltam : ndarray
        ΔM, volumes on the last axis.
    plds, taus : ndarray
        PLD/TI and labeling/bolus duration per volume, s.

    Returns
    -------
    mean_deltam : ndarray
        One volume per distinct (PLD, τ).
    unique_plds, unique_taus : ndarray
        Their timing.
    counts : ndarray
        Number of volumes averaged into each.
    variance : ndarray or None
        Per voxel, the variance of one ΔM volume around its delay's mean (pooled over the
        delays, n − 1 per delay); None when no delay is repeated.
    """
    unique, inverse, counts = _timing_groups(plds, taus)
    mean = np.stack([deltam[..., inverse == k].mean(axis=-1) for k in range(len(unique))], axis=-1)
    dof = deltam.shape[-1] - len(unique)
    variance = None
    if dof > 0:
        variance = ((deltam - mean[..., inverse]) ** 2).sum(axis=-1) / dof
    return mean, unique[:, 0], unique[:, 1], counts, variance


def _timing_groups(plds: np.ndarray, taus: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (PLD, τ) rows, the row of each volume, and the volumes per row."""
    timing = np.round(np.column_stack([plds, taus]), 9)
    unique, inverse, counts = np.unique(timing, axis=0, return_inverse=True, return_counts=True)
    return unique, inverse.ravel(), counts


def repeats_by_delay(ratio: np.ndarray, plds: np.ndarray, taus: np.ndarray) -> np.ndarray:
    """Arrange per-volume values as ``(n_repeats, ..., n_delays)`` (NaN where missing).

    The r-th volume of each distinct delay (in series order) is repeat r.

    Parameters
    ----------
    ratio : ndarray
        Values per volume on the last axis.
    plds, taus : ndarray
        Timing of each volume.

    Returns
    -------
    ndarray
        One slice per repeat, delays in :func:`average_repeats` order.
    """
    _, inverse, counts = _timing_groups(plds, taus)
    out = np.full((int(counts.max()), *ratio.shape[:-1], counts.size), np.nan)
    seen = np.zeros(counts.size, int)
    for volume, delay in enumerate(inverse):
        out[seen[delay], ..., delay] = ratio[..., volume]
        seen[delay] += 1
    return out


def fit_multi_delay(
    deltam: np.ndarray,
    m0: np.ndarray | float,
    plds: Sequence[float],
    constants: QuantificationConstants,
    *,
    labeling_duration: float | Sequence[float] | None = None,
    bolus_cutoff_delay_time: float | Sequence[float] | None = None,
    mask: np.ndarray | None = None,
    model: str = "full",
    arterial: bool = False,
    arterial_dispersion_sd: float = 0.1,
    priors: ArrivalPriors | None = None,
    slice_timing: Sequence[float] | None = None,
    slice_axis: int = 2,
    t1_tissue: np.ndarray | float | None = None,
    bounds: FitBounds | None = None,
    options: FitOptions | None = None,
    fill_value: float = 0.0,
    noise_variance: float | None = None,
) -> MultiDelayFit:
    """Fit CBF and ATT (and optionally an arterial component) to multi-delay ASL.

    Never raises on a voxel: voxels that do not fit cleanly are flagged in ``status`` and
    counted in ``summary`` (see :func:`aslmig.cbf.kinetic_fit.fit_kinetic_curves`); voxels
    with non-finite data get ``fill_value``.

    Parameters
    ----------
    deltam : ndarray
        ΔM, volumes on the last axis (repeats allowed; they are averaged per delay).
    m0 : ndarray or float
        Calibrated tissue M0.
    plds : sequence of float
        PLD (PCASL/CASL) or TI (PASL) of each ΔM volume, s.
    constants : QuantificationConstants
        Resolved constants.
    labeling_duration : float or sequence, optional
        τ per volume (PCASL/CASL), s.
    bolus_cutoff_delay_time : float or sequence, optional
        ``BolusCutOffDelayTime`` (PASL); TI1 is its first value.
    mask : ndarray of bool, optional
        Voxels to fit.
    model : str
        ``"full"`` (tissue T1 after arrival) or ``"whitepaper"`` (blood T1 throughout).
    arterial : bool
        Add an arterial (macrovascular) component with its own arrival time and aBV.
    arterial_dispersion_sd : float
        Gaussian edge smoothing of the arterial bolus, s.
    priors : ArrivalPriors, optional
        Arrival-time priors, weighted by each voxel's noise variance from its repeats
        (without repeats the fit is plain least squares).
    slice_timing : sequence of float, optional
        ``SliceTiming`` of a 2-D readout (added to each slice's delays).
    slice_axis : int
        Spatial axis of the slices.
    t1_tissue : ndarray or float, optional
        Tissue T1 (s) for the full model, a number or a spatial map (e.g. from a T1 map, or
        grey/white-matter values weighted by tissue probabilities); default
        ``constants.t1_tissue``.
    bounds : FitBounds, optional
        Box constraints.
    options : FitOptions, optional
        Iteration and threading options.
    fill_value : float
        Value outside the mask.
    noise_variance : float, optional
        Variance of one ΔM volume when known from elsewhere (e.g. a simulation); default the
        median over the mask of the repeat-to-repeat variance, or none without repeats (then
        the arrival priors are not used and the arterial model choice uses each voxel's
        residual variance).

    Returns
    -------
    MultiDelayFit
        CBF, ATT, fit quality, status flags and provenance.
    """
    deltam = np.asarray(deltam, float)
    if deltam.ndim < 2:
        raise ValueError("deltam must have its volumes on the last axis")
    spatial, n_volumes = deltam.shape[:-1], deltam.shape[-1]
    m0_map = m0_array(m0, spatial)
    valid, n_bad_m0 = valid_voxels(m0_map, mask)
    if t1_tissue is not None and np.ndim(t1_tissue) > 0:
        t1_map = np.broadcast_to(np.asarray(t1_tissue, float), spatial)
        t1_tissue = t1_map[valid]
    settings = KineticSettings.from_constants(constants, model, t1_tissue)
    pld_values = effective_delays(plds, n_volumes, spatial)
    taus = bolus_duration(constants, n_volumes, labeling_duration, bolus_cutoff_delay_time)
    mean_dm, unique_plds, unique_taus, counts, variance = average_repeats(deltam, pld_values, taus)
    if unique_plds.size < (4 if arterial else 2):
        raise ValueError(
            f"{unique_plds.size} distinct delay(s) cannot determine CBF and ATT"
            + (" and the arterial component" if arterial else "")
            + "; use quantify_single_delay for single-delay data"
        )
    m0_vox = m0_map[valid]
    ratio = mean_dm[valid] / m0_vox[:, None]
    noise_source = "given noise_variance"
    if noise_variance is None and variance is not None:
        noise_variance = float(np.median(variance[valid]))
        noise_source = "median repeat-to-repeat variance of one ΔM volume over the mask"
    elif noise_variance is None:
        noise_source = "none (no repeats): each voxel's arterial-fit residual variance"
    noise = None if noise_variance is None else noise_variance / m0_vox**2
    delays = unique_plds
    if slice_timing is not None:
        per_slice = effective_delays(
            unique_plds, unique_plds.size, spatial, slice_timing, slice_axis
        )
        delays = np.broadcast_to(per_slice, (*spatial, unique_plds.size))[valid]
    result = fit_kinetic_curves(
        ratio,
        delays,
        unique_taus,
        settings,
        weights=counts,
        arterial=arterial,
        arterial_dispersion_sd=arterial_dispersion_sd,
        bounds=bounds,
        options=options,
        priors=priors,
        noise_variance=noise,
    )
    fitted = np.isfinite(result.params[:, 0])
    rmse = np.sqrt(result.sse / counts.sum()) * m0_vox
    replicates = None
    if variance is not None and noise is not None:
        repeats = repeats_by_delay(deltam[valid] / m0_vox[:, None], pld_values, taus)
        replicates = leave_one_out_cbf(
            result, repeats, delays, unique_taus, settings, weights=counts,
            arterial_dispersion_sd=arterial_dispersion_sd, priors=priors, noise_variance=noise,
        )  # fmt: skip
    summary = FitSummary.from_status(result.status, n_bad_m0)

    def to_map(values: np.ndarray, fill: float | bool = fill_value) -> np.ndarray:
        out = np.full(spatial, fill, dtype=values.dtype if values.dtype.kind in "bu" else float)
        out[valid] = np.where(fitted, values, fill) if values.dtype.kind == "f" else values
        return out

    provenance = {
        "model": f"Buxton general kinetic model ({model})",
        "labeling_type": constants.labeling_type,
        "constants": constants.to_dict(),
        "delays_s": [float(v) for v in unique_plds],
        "bolus_duration_s": [float(v) for v in unique_taus],
        "repeats_per_delay": [int(c) for c in counts],
        "arterial_component": arterial,
        "arterial_selection": _arterial_selection(result.params, fitted, noise_source)
        if arterial
        else None,
        "arterial_dispersion_sd_s": arterial_dispersion_sd if arterial else None,
        "arrival_priors": None if priors is None or noise is None else priors.to_dict(),
        "slice_timing_applied": slice_timing is not None,
        "t1_tissue_s": _describe_t1(t1_tissue, constants) if model == "full" else None,
        "bounds": vars(bounds or FitBounds()),
        "fit": "batched Levenberg-Marquardt, analytic Jacobian, grid start"
        + (" (best of the deepest valleys)" if arterial else ""),
        "fit_summary": summary.to_dict(),
        "status_flags": {flag.name: int(flag) for flag in FitStatus},
        "rmse_units": "same as input deltam",
    }
    return MultiDelayFit(
        cbf=to_map(result.params[:, 0]),
        att=to_map(result.params[:, 1]),
        rmse=to_map(rmse),
        r2=to_map(result.r2),
        converged=to_map(result.converged, False),
        status=to_map(result.status, np.uint8(0)),
        summary=summary,
        abv=to_map(result.params[:, 2]) if arterial else None,
        cbf_replicates=None
        if replicates is None
        else np.stack([to_map(values) for values in replicates], axis=-1),
        att_arterial=to_map(result.params[:, 3]) if arterial else None,
        provenance=provenance,
    )


def _arterial_selection(
    params: np.ndarray,
    fitted: np.ndarray,
    noise_source: str,
) -> dict[str, object]:
    """Provenance of the per-voxel choice between the tissue-only and the arterial model."""
    n_fitted = int(fitted.sum())
    n_selected = int((params[fitted, 2] > 0).sum())
    return {
        "criterion": "F-test of the nested models: keep the arterial fit where "
        "(SSE_tissue - SSE_arterial)/2/sigma^2 > the F(2, dof) quantile at level "
        f"{ARTERIAL_SELECTION_ALPHA}",
        "noise_estimate": noise_source,
        "n_voxels_selected": n_selected,
        "fraction_selected": n_selected / n_fitted if n_fitted else 0.0,
    }


def _describe_t1(
    t1_tissue: np.ndarray | float | None, constants: QuantificationConstants
) -> float | str | None:
    if t1_tissue is None:
        return constants.t1_tissue
    return float(t1_tissue) if np.ndim(t1_tissue) == 0 else "voxel-wise map"


def tissue_t1_map(
    gm: np.ndarray,
    wm: np.ndarray,
    t1_grey_matter: float,
    t1_white_matter: float,
    min_tissue: float = 0.05,
    flow_ratio: float = GM_WM_FLOW_RATIO,
) -> np.ndarray:
    """Per-voxel tissue T1 from grey/white-matter probabilities (for the full kinetic model).

    The label in a voxel that holds both tissues comes from each in proportion to its
    fraction times its flow, so the T1 that describes the voxel's signal is weighted the same
    way: T1 = (r·p_GM·T1_GM + p_WM·T1_WM) / (r·p_GM + p_WM), with r the grey/white flow
    ratio. Pure voxels get their tissue's T1; voxels with less than ``min_tissue`` of grey
    plus white matter get the grey-matter T1. (Weighting by the fractions alone gives a
    partial-volume voxel a T1 too close to white matter, and CBF too high: on asldro data
    registered to a template, +1.5 % in grey matter.)

    Parameters
    ----------
    gm, wm : ndarray
        Tissue probability maps on the ASL grid.
    t1_grey_matter, t1_white_matter : float
        Tissue T1 values, s.
    min_tissue : float
        Smallest GM+WM fraction for which the weighted value is used.
    flow_ratio : float
        Grey- over white-matter perfusion r (1 weights by the fractions alone).

    Returns
    -------
    ndarray
        Tissue T1 map, s.
    """
    gm = np.clip(np.asarray(gm, float), 0.0, 1.0)
    wm = np.clip(np.asarray(wm, float), 0.0, 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        weighted = (flow_ratio * gm * t1_grey_matter + wm * t1_white_matter) / (
            flow_ratio * gm + wm
        )
    return np.where(gm + wm >= min_tissue, weighted, t1_grey_matter)
