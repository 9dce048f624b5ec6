"""Quantify one ASL series: arrays in, maps and provenance out (no file I/O).

:func:`quantify_series` splits the series by volume type, calibrates M0, and computes CBF
with the white-paper single-delay equation (QUIPSS I with its own, Wong et al. 1998) or the
multi-delay kinetic fit (CBF, ATT and, when asked, the arterial component). It chooses the
engine functions from the :class:`~aslmig.cbf.acquisition.Acquisition`; the interface
:mod:`aslmig.interfaces.cbf` only reads and writes the files.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from aslmig.cbf.acquisition import Acquisition, quipss_bolus
from aslmig.cbf.calibration import calibrate_m0
from aslmig.cbf.constants import QuantificationConstants, resolve_constants
from aslmig.cbf.kinetic_fit import ArrivalPriors
from aslmig.cbf.multi_delay import FitSummary, fit_multi_delay, tissue_t1_map
from aslmig.cbf.single_delay import deltam_to_cbf, effective_delays, quantify_single_delay
from aslmig.cbf.volumes import split_asl_series


@dataclass(frozen=True)
class QuantifyOptions:
    """User choices for quantification (all written to the provenance).

    Attributes
    ----------
    averaging : str
        Single delay: ``mean``, ``median`` or ``score``.
    m0_scale : float
        Multiplies M0 (vendor scaling not described by the sidecar).
    m0_smoothing_fwhm_mm : float
        Gaussian smoothing of M0 (0: none).
    multi_delay_model : str
        ``full`` or ``whitepaper`` kinetic model.
    min_m0_fraction : float
        Brain voxels with M0 below this fraction of the brain's median M0 are left out.
    arterial : bool
        Multi-delay: fit the arterial component (see
        :func:`aslmig.cbf.acquisition.arterial_component`).
    arterial_reason : str
        Why (the decision's reason), written to the provenance.
    arrival_priors : bool
        Multi-delay: BASIL's arrival-time priors, weighted by each voxel's repeat noise.
    """

    averaging: str = "mean"
    m0_scale: float = 1.0
    m0_smoothing_fwhm_mm: float = 0.0
    multi_delay_model: str = "full"
    min_m0_fraction: float = 0.25
    arterial: bool = False
    arterial_reason: str = ""
    arrival_priors: bool = True


@dataclass(frozen=True)
class TissueMaps:
    """Tissue probability maps on the ASL grid.

    Attributes
    ----------
    gm, wm, csf : ndarray or None
        Probabilities.
    own_segmentation : bool
        Whether they come from the participant's own T1w (else a template's priors).
    """

    gm: np.ndarray | None = None
    wm: np.ndarray | None = None
    csf: np.ndarray | None = None
    own_segmentation: bool = False


@dataclass
class Quantification:
    """Maps and provenance of one quantified series.

    Attributes
    ----------
    maps : dict of str to ndarray
        ``cbf`` (always), ``deltam``, ``cbf_timeseries`` (single delay), ``att``, ``r2``,
        ``abv`` (multi-delay, ``abv`` with the arterial component), ``cbf_replicates``
        (CBF with each repetition left out in turn, when there are repetitions).
    provenance : dict
        Model, equation, constants with their sources, M0, options, warnings, fit summary.
    fit_summary : FitSummary or None
        Multi-delay: counts of the voxels that did not fit cleanly.
    """

    maps: dict[str, np.ndarray] = field(default_factory=dict)
    provenance: dict[str, Any] = field(default_factory=dict)
    fit_summary: FitSummary | None = None


def resolve_acquisition_constants(
    acquisition: Acquisition, overrides: Mapping[str, float] | None = None
) -> QuantificationConstants:
    """Resolve the constants of a series from its acquisition and the user's overrides.

    Parameters
    ----------
    acquisition : Acquisition
        The series.
    overrides : mapping, optional
        Physics overrides (see :func:`aslmig.cbf.constants.resolve_constants`).

    Returns
    -------
    QuantificationConstants
        The constants, each with its source.
    """
    return resolve_constants(
        acquisition.labeling_type,
        acquisition.magnetic_field_strength,
        sidecar_labeling_efficiency=acquisition.labeling_efficiency,
        bs_pulses=acquisition.background_suppression_pulses,
        overrides=overrides,
    )


def _m0_volumes(
    acquisition: Acquisition, included: np.ndarray | None, separate: np.ndarray | None
) -> tuple[np.ndarray | None, tuple[float, ...] | None]:
    """Return the M0 volumes and their TRs from the series (Included) or the M0 scan."""
    if acquisition.m0_type == "Included":
        tr = tuple(
            tr
            for tr, kind in zip(
                acquisition.repetition_time_preparation, acquisition.volume_types, strict=True
            )
            if kind == "m0scan"
        )
        return included, tr
    if acquisition.m0_type == "Separate":
        if separate is None:
            raise ValueError("M0Type is Separate but no M0 image was given")
        m0 = separate[..., np.newaxis] if separate.ndim == 3 else separate
        return m0, acquisition.m0_repetition_time_preparation
    return None, None


def _reliable_m0(
    mask: np.ndarray, m0: np.ndarray | float, min_fraction: float
) -> tuple[np.ndarray, dict[str, float | int]]:
    """Drop brain-mask voxels whose M0 is a small fraction of the brain's median M0.

    Dividing by a near-zero M0 (edge slices, signal dropout) gives meaningless CBF values
    of thousands of mL/100 g/min; such voxels are left out (set to 0) and counted.
    """
    if np.ndim(m0) == 0:
        return mask, {"fraction_of_median": min_fraction, "voxels_excluded": 0}
    median = float(np.median(m0[mask])) if mask.any() else 0.0
    if median <= 0:
        raise ValueError(
            f"the M0 image has no positive signal in the brain mask (median {median:g}); "
            "check the M0 scan and m0_scale"
        )
    threshold = min_fraction * median
    reliable = mask & (m0 > threshold)
    record = {
        "fraction_of_median": min_fraction,
        "threshold": threshold,
        "voxels_excluded": int(mask.sum() - reliable.sum()),
    }
    return reliable, record


def _tissue_t1(
    constants: QuantificationConstants, tissues: TissueMaps
) -> tuple[np.ndarray | float, str]:
    """Tissue T1 of the full kinetic model: a GM/WM map from the participant's own T1w.

    A template's tissue priors, warped to a low-resolution ASL grid, do not place this
    brain's white matter well enough for a voxel-wise T1: on the real multi-delay series
    (sub-O2019, no T1w) a map built from them gave white matter more CBF than grey matter,
    and on asldro data (template registration) grey matter +1.5 %. Without the
    participant's own segmentation, the grey-matter T1 is used everywhere (as FSL BASIL).
    """
    own = tissues.own_segmentation and tissues.gm is not None and tissues.wm is not None
    if constants.t1_white_matter is not None and own:
        t1_map = tissue_t1_map(
            tissues.gm, tissues.wm, constants.t1_tissue, constants.t1_white_matter
        )
        return t1_map, (
            f"per voxel from the T1w's GM/WM probabilities weighted by fraction x flow "
            f"(GM {constants.t1_tissue} s, WM {constants.t1_white_matter} s)"
        )
    why = "" if own else " (no own T1w segmentation)"
    return constants.t1_tissue, f"{constants.t1_tissue} s everywhere{why}"


def _timing(acquisition: Acquisition, split: Any, mask: np.ndarray) -> dict[str, Any]:
    return {
        "labeling_duration": split.deltam_labeling_durations,
        "bolus_cutoff_delay_time": acquisition.bolus_cutoff_delay_time,
        "slice_timing": acquisition.slice_timing,
        "slice_axis": acquisition.slice_axis,
        "mask": mask,
    }


def _multi_delay(
    split: Any,
    m0: np.ndarray | float,
    acquisition: Acquisition,
    constants: QuantificationConstants,
    tissues: TissueMaps,
    timing: dict[str, Any],
    options: QuantifyOptions,
) -> Quantification:
    if acquisition.bolus_cutoff_technique == "QUIPSS":
        raise ValueError(
            "multi-delay PASL with QUIPSS I bolus cut-off is not modelled (the kinetic model "
            "assumes QUIPSS II/Q2TIPS); quantify each TI as a single-delay series"
        )
    t1_tissue, t1_note = _tissue_t1(constants, tissues)
    priors = ArrivalPriors.basil(constants.labeling_type) if options.arrival_priors else None
    fit = fit_multi_delay(
        split.deltam,
        m0,
        split.deltam_plds,
        constants,
        model=options.multi_delay_model,
        t1_tissue=t1_tissue,
        arterial=options.arterial,
        priors=priors,
        **timing,
    )
    fit.provenance["tissue_t1"] = t1_note
    if options.arterial_reason:
        fit.provenance["arterial_component_reason"] = options.arterial_reason
    maps = {"cbf": fit.cbf, "att": fit.att, "r2": fit.r2}
    if fit.abv is not None:
        maps["abv"] = fit.abv
    if fit.cbf_replicates is not None:
        maps["cbf_replicates"] = fit.cbf_replicates
    return Quantification(maps, fit.provenance, fit.summary)


def _single_delay(
    split: Any,
    m0: np.ndarray | float,
    acquisition: Acquisition,
    constants: QuantificationConstants,
    tissues: TissueMaps,
    timing: dict[str, Any],
    options: QuantifyOptions,
) -> Quantification:
    series = deltam_to_cbf(split.deltam, m0, split.deltam_plds, constants, **timing)
    quipss = None
    if acquisition.labeling_type == "PASL" and acquisition.bolus_cutoff_technique == "QUIPSS":
        quipss = _quipss_i_factor(acquisition, split, series.shape)
        series = series * quipss
    cbf, provenance = quantify_single_delay(
        split.deltam, m0, split.deltam_plds, constants, averaging=options.averaging,
        gm=tissues.gm, wm=tissues.wm, csf=tissues.csf, series=series, **timing,
    )  # fmt: skip
    if quipss is not None:
        _, source = quipss_bolus(acquisition)
        provenance["equation"] = "CBF = 6000*lambda*dM*exp(TI/T1b) / (2*alpha*(TI-TI1)*M0)"
        provenance["equation_source"] = f"QUIPSS I: {source}"
    maps = {"cbf": cbf, "cbf_timeseries": series}
    if series.shape[-1] > 1:
        maps["cbf_replicates"] = leave_one_out_means(series)
    return Quantification(maps, provenance)


def leave_one_out_means(series: np.ndarray) -> np.ndarray:
    """Return the mean of a series with each volume left out in turn (volumes last).

    Their jackknife standard error equals the series' SD/√n, the standard error of the mean
    of the per-pair CBF (whatever the averaging of the map itself).

    Parameters
    ----------
    series : ndarray
        Per-volume values, at least two volumes.

    Returns
    -------
    ndarray
        Same shape.
    """
    n = series.shape[-1]
    return (series.sum(axis=-1, keepdims=True) - series) / (n - 1)


def _quipss_i_factor(acquisition: Acquisition, split: Any, shape: tuple[int, ...]) -> np.ndarray:
    """Ratio of QUIPSS I to QUIPSS II CBF per voxel: TI1 / (TI − TI1), TI per slice."""
    quipss_bolus(acquisition)  # refuses TI <= TI1
    ti1 = acquisition.bolus_duration
    delays = effective_delays(split.deltam_plds, shape[-1], shape[:-1], acquisition.slice_timing,
                              acquisition.slice_axis)  # fmt: skip
    return ti1 / (np.asarray(delays) - ti1)


def quantify_series(
    data: np.ndarray,
    acquisition: Acquisition,
    mask: np.ndarray,
    *,
    voxel_size_mm: Sequence[float],
    separate_m0: np.ndarray | None = None,
    tissues: TissueMaps | None = None,
    overrides: Mapping[str, float] | None = None,
    options: QuantifyOptions | None = None,
    warnings: Sequence[str] = (),
) -> Quantification:
    """Quantify CBF (and ATT, aBV for multi-delay series) in the native ASL space.

    Parameters
    ----------
    data : ndarray
        The (motion-corrected) series, volumes on the last axis.
    acquisition : Acquisition
        Its acquisition.
    mask : ndarray of bool
        Brain mask.
    voxel_size_mm : sequence of float
        Voxel size (M0 smoothing).
    separate_m0 : ndarray, optional
        The separate M0 scan on the ASL grid (M0Type Separate).
    tissues : TissueMaps, optional
        Tissue probabilities on the ASL grid (SCORE averaging, multi-delay tissue T1).
    overrides : mapping, optional
        Physics constant overrides.
    options : QuantifyOptions, optional
        User choices.
    warnings : sequence of str
        Acquisition warnings to record in the provenance.

    Returns
    -------
    Quantification
        Maps, provenance and (multi-delay) fit summary.
    """
    options, tissues = options or QuantifyOptions(), tissues or TissueMaps()
    data = data[..., np.newaxis] if data.ndim == 3 else data
    data = data * acquisition.scaling.volume_factors(acquisition.volume_types)
    if separate_m0 is not None:
        separate_m0 = separate_m0 * acquisition.scaling.m0_factor
    constants = resolve_acquisition_constants(acquisition, overrides)
    split = split_asl_series(data, acquisition.volume_types,
                             plds=acquisition.post_labeling_delay,
                             labeling_durations=acquisition.labeling_duration)  # fmt: skip
    if split.deltam is None:
        cbf = split.cbf.mean(axis=-1) if split.cbf.ndim == 4 else split.cbf
        provenance = {
            "model": "scanner CBF maps passed through (mean)",
            "scaling": acquisition.scaling.to_dict(),
        }
        return Quantification({"cbf": np.where(mask, cbf, 0.0)}, provenance)
    m0_volumes, m0_tr = _m0_volumes(acquisition, split.m0scan, separate_m0)
    m0, m0_info = calibrate_m0(
        acquisition.m0_type,
        m0_volumes=m0_volumes,
        m0_estimate=acquisition.m0_estimate,
        repetition_time=m0_tr,
        t1_tissue=constants.t1_tissue,
        partition_coefficient=constants.partition_coefficient,
        m0_scale=options.m0_scale,
        smoothing_fwhm_mm=options.m0_smoothing_fwhm_mm or None,
        voxel_size_mm=voxel_size_mm,
        mask=mask,
    )
    mask, m0_floor = _reliable_m0(mask, m0, options.min_m0_fraction)
    m0_info["low_m0_floor"] = m0_floor
    timing = _timing(acquisition, split, mask)
    engine = _multi_delay if len(set(split.deltam_plds.tolist())) > 1 else _single_delay
    result = engine(split, m0, acquisition, constants, tissues, timing, options)
    result.maps["deltam"] = split.deltam.mean(axis=-1)
    result.provenance["m0"] = m0_info
    result.provenance["scaling"] = acquisition.scaling.to_dict()
    result.provenance["options"] = asdict(options)
    result.provenance["acquisition_warnings"] = list(warnings)
    return result
