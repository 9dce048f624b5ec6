"""M0 calibration: the equilibrium magnetisation that converts ΔM into CBF.

ASL-BIDS ``M0Type`` decides the source:

* ``Separate`` / ``Included``: M0 volumes (a separate scan, or ``m0scan`` volumes of the ASL
  series). Several volumes are averaged; when ``RepetitionTimePreparation`` is short the
  incomplete recovery is corrected, M0 / (1 − e^(−TR/T1_tissue)); an optional Gaussian
  smoothing and a vendor scale factor ``m0_scale`` (M0 is multiplied by it) are applied.
* ``Estimate``: the sidecar's scalar ``M0Estimate``.
* ``Absent``: no M0. Refused unless the caller chooses the documented alternative,
  :class:`ReferenceRegionCalibration`: blood M0 from the mean control signal in a CSF (or WM)
  reference mask (Chalela et al. 2000; Chappell et al., FSL BASIL), valid only for control
  images acquired without background suppression.

The result is always a *tissue* M0 (map or scalar) for the white-paper equations, in which M0
appears as M0_tissue/λ = M0_blood; a reference-region M0 is returned as λ·M0_blood.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from nibabel.processing import fwhm2sigma
from scipy import ndimage

M0_TYPES = ("Separate", "Included", "Estimate", "Absent")
TR_CORRECTION_MODES = ("auto", "always", "never")
#: With "auto", M0 volumes with RepetitionTimePreparation below this (s) are TR-corrected.
LONG_TR_THRESHOLD_S = 5.0

BASIL_DEFAULTS = (
    "Chappell MA, MacIntosh BJ, Okell TW. Introduction to Perfusion Quantification using "
    "Arterial Spin Labelling (Oxford Neuroimaging Primers), 2018; FSL BASIL reference-tissue "
    "defaults"
)
HERSCOVITCH_1985 = (
    "Herscovitch P, Raichle ME. What is the correct value for the brain-blood partition "
    "coefficient for water? J Cereb Blood Flow Metab 1985;5:65-69"
)


@dataclass(frozen=True)
class ReferenceTissue:
    """Relaxation and water-content constants of a calibration reference tissue (3 T).

    Attributes
    ----------
    t1 : float
        T1 of the reference tissue, s.
    t2 : float
        T2 of the reference tissue, s (used only when an echo time is given).
    partition_coefficient : float
        Water content of the tissue relative to blood (mL/g).
    source : str
        Citation.
    """

    t1: float
    t2: float
    partition_coefficient: float
    source: str


REFERENCE_TISSUES = {
    "csf": ReferenceTissue(4.3, 0.75, 1.15, BASIL_DEFAULTS),
    "wm": ReferenceTissue(1.0, 0.05, 0.82, f"{BASIL_DEFAULTS}; {HERSCOVITCH_1985}"),
}
#: T2 of arterial blood at 3 T, s (for the optional echo-time correction).
T2_BLOOD_S = 0.15


@dataclass(frozen=True)
class ReferenceRegionCalibration:
    """The documented alternative when ``M0Type`` is ``Absent``.

    Attributes
    ----------
    control_mean : ndarray
        Mean of the control volumes (spatial shape).
    reference_mask : ndarray of bool
        CSF (or WM) reference-region mask, spatial shape.
    repetition_time : float
        ``RepetitionTimePreparation`` of the control volumes, s.
    tissue : str
        ``"csf"`` or ``"wm"``.
    background_suppression : bool
        Whether the control volumes were background suppressed (then this method is refused).
    echo_time : float, optional
        Echo time, s; when given, T2 decay of reference and blood is corrected.
    t1_reference, t2_reference, partition_coefficient_reference : float, optional
        Override the tabulated reference-tissue values.
    """

    control_mean: np.ndarray
    reference_mask: np.ndarray
    repetition_time: float
    tissue: str = "csf"
    background_suppression: bool = False
    echo_time: float | None = None
    t1_reference: float | None = None
    t2_reference: float | None = None
    partition_coefficient_reference: float | None = None


def tr_correction_factor(repetition_time: float | np.ndarray, t1_tissue: float) -> np.ndarray:
    """Return 1 / (1 − e^(−TR/T1)), the factor that restores full recovery.

    Parameters
    ----------
    repetition_time : float or ndarray
        Repetition time(s), s.
    t1_tissue : float
        Tissue T1, s.

    Returns
    -------
    ndarray
        The multiplicative correction.
    """
    tr = np.asarray(repetition_time, float)
    if np.any(~np.isfinite(tr)) or np.any(tr <= 0):
        raise ValueError(f"RepetitionTimePreparation={repetition_time!r} must be positive (s)")
    if not t1_tissue > 0:
        raise ValueError(f"tissue T1={t1_tissue} must be positive (s)")
    return 1.0 / -np.expm1(-tr / t1_tissue)


def smooth_m0(
    m0: np.ndarray,
    fwhm_mm: float,
    voxel_size_mm: Sequence[float],
    mask: np.ndarray | None = None,
) -> np.ndarray:
    """Gaussian-smooth an M0 map, within a mask by normalised convolution.

    Parameters
    ----------
    m0 : ndarray
        M0 map.
    fwhm_mm : float
        Full width at half maximum, mm.
    voxel_size_mm : sequence of float
        Voxel size along each axis, mm.
    mask : ndarray of bool, optional
        Only voxels in the mask contribute and are smoothed; others keep their value.

    Returns
    -------
    ndarray
        Smoothed M0.
    """
    voxel = np.asarray(voxel_size_mm, float)
    if voxel.size != m0.ndim or np.any(voxel <= 0):
        raise ValueError(f"voxel_size_mm={voxel_size_mm!r} needs one positive size per axis")
    sigma = fwhm2sigma(fwhm_mm) / voxel
    if mask is None:
        return ndimage.gaussian_filter(m0, sigma, mode="nearest")
    weights = np.asarray(mask, float)
    smoothed = ndimage.gaussian_filter(m0 * weights, sigma, mode="constant")
    norm = ndimage.gaussian_filter(weights, sigma, mode="constant")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(norm > 1e-6, smoothed / norm, m0)
    return np.where(mask, out, m0)


def _check_scale(m0_scale: float) -> float:
    if not (np.isfinite(m0_scale) and m0_scale > 0):
        raise ValueError(f"m0_scale={m0_scale} must be a positive number")
    return float(m0_scale)


def _m0_from_volumes(
    m0_volumes: np.ndarray,
    repetition_time: float | Sequence[float] | None,
    t1_tissue: float | None,
    tr_correction: str,
    long_tr_threshold_s: float,
) -> tuple[np.ndarray, dict]:
    volumes = np.asarray(m0_volumes, float)
    if volumes.ndim < 2 or volumes.shape[-1] == 0:
        raise ValueError("m0_volumes must hold at least one volume on its last axis")
    n = volumes.shape[-1]
    info: dict = {"n_m0_volumes": n, "tr_correction": tr_correction}
    if tr_correction not in TR_CORRECTION_MODES:
        raise ValueError(f"tr_correction={tr_correction!r}; use one of {TR_CORRECTION_MODES}")
    factors = np.ones(n)
    if tr_correction != "never":
        if repetition_time is None:
            raise ValueError("M0 TR correction needs RepetitionTimePreparation of the M0 volumes")
        tr = np.broadcast_to(np.asarray(repetition_time, float), (n,))
        short = tr < long_tr_threshold_s if tr_correction == "auto" else np.ones(n, bool)
        if np.any(short):
            if t1_tissue is None:
                raise ValueError("M0 TR correction needs the tissue T1 (overrides['t1_tissue'])")
            factors = np.where(short, tr_correction_factor(tr, t1_tissue), 1.0)
        info.update(repetition_time_s=[float(v) for v in tr], t1_tissue_s=t1_tissue)
    info["tr_correction_factors"] = [float(f) for f in factors]
    return (volumes * factors).mean(axis=-1), info


def _reference_region_m0(
    ref: ReferenceRegionCalibration, partition_coefficient: float
) -> tuple[float, dict]:
    if ref.background_suppression:
        raise ValueError(
            "reference-region calibration from control images is invalid with background "
            "suppression; provide an M0 scan or M0Estimate instead"
        )
    if ref.tissue not in REFERENCE_TISSUES:
        raise ValueError(f"reference tissue {ref.tissue!r}; use one of {sorted(REFERENCE_TISSUES)}")
    table = REFERENCE_TISSUES[ref.tissue]
    t1 = ref.t1_reference or table.t1
    t2 = ref.t2_reference or table.t2
    pc = ref.partition_coefficient_reference or table.partition_coefficient
    mask = np.asarray(ref.reference_mask, bool)
    control = np.asarray(ref.control_mean, float)
    if mask.shape != control.shape or not np.any(mask):
        raise ValueError("reference_mask must be a non-empty mask with the control image's shape")
    signal = float(np.mean(control[mask]))
    if not signal > 0:
        raise ValueError(f"mean control signal in the {ref.tissue} mask is {signal}; check mask")
    m0_reference = signal * float(tr_correction_factor(ref.repetition_time, t1))
    if ref.echo_time:
        m0_reference *= np.exp(ref.echo_time / t2) * np.exp(-ref.echo_time / T2_BLOOD_S)
    m0_blood = m0_reference / pc
    info = {
        "method": f"reference region ({ref.tissue}) from mean control signal",
        "reference_signal": signal,
        "reference_t1_s": t1,
        "reference_partition_coefficient": pc,
        "echo_time_s": ref.echo_time,
        "reference_source": table.source,
        "m0_blood": m0_blood,
        "repetition_time_s": ref.repetition_time,
    }
    return partition_coefficient * m0_blood, info


def calibrate_m0(
    m0_type: str,
    *,
    m0_volumes: np.ndarray | None = None,
    m0_estimate: float | None = None,
    repetition_time: float | Sequence[float] | None = None,
    t1_tissue: float | None = None,
    partition_coefficient: float = 0.9,
    m0_scale: float = 1.0,
    tr_correction: str = "auto",
    long_tr_threshold_s: float = LONG_TR_THRESHOLD_S,
    smoothing_fwhm_mm: float | None = None,
    voxel_size_mm: Sequence[float] | None = None,
    mask: np.ndarray | None = None,
    reference_region: ReferenceRegionCalibration | None = None,
) -> tuple[np.ndarray | float, dict]:
    """Return the tissue M0 to divide ΔM by, with a provenance record.

    Parameters
    ----------
    m0_type : str
        ASL-BIDS ``M0Type``: Separate, Included, Estimate or Absent.
    m0_volumes : ndarray, optional
        M0 volumes, volumes on the last axis (Separate/Included).
    m0_estimate : float, optional
        ``M0Estimate`` (Estimate).
    repetition_time : float or sequence, optional
        ``RepetitionTimePreparation`` of the M0 volumes, s.
    t1_tissue : float, optional
        Tissue T1 for the TR correction, s.
    partition_coefficient : float
        λ, mL/g (reference-region calibration only).
    m0_scale : float
        Vendor scale factor; M0 is multiplied by it (not applied to a reference-region M0,
        which comes from the ASL series itself).
    tr_correction : str
        ``"auto"`` (correct when TR < ``long_tr_threshold_s``), ``"always"`` or ``"never"``.
    long_tr_threshold_s : float
        Threshold for ``"auto"``, s.
    smoothing_fwhm_mm : float, optional
        Gaussian smoothing of the M0 map, mm FWHM (needs ``voxel_size_mm``).
    voxel_size_mm : sequence of float, optional
        Voxel size, mm.
    mask : ndarray of bool, optional
        Brain mask for smoothing.
    reference_region : ReferenceRegionCalibration, optional
        The alternative used when ``m0_type`` is Absent.

    Returns
    -------
    m0 : ndarray or float
        Tissue M0 (map for Separate/Included, scalar otherwise).
    provenance : dict
        How it was obtained.
    """
    scale = _check_scale(m0_scale)
    info: dict = {"m0_type": m0_type, "m0_scale": scale}
    if m0_type in ("Separate", "Included"):
        if m0_volumes is None:
            raise ValueError(f"M0Type is {m0_type!r} but no M0 volumes were given")
        m0, detail = _m0_from_volumes(
            m0_volumes, repetition_time, t1_tissue, tr_correction, long_tr_threshold_s
        )
        info.update(detail, method="voxel-wise M0")
        if smoothing_fwhm_mm:
            if voxel_size_mm is None:
                raise ValueError("M0 smoothing needs voxel_size_mm")
            m0 = smooth_m0(m0, smoothing_fwhm_mm, voxel_size_mm, mask)
        info["smoothing_fwhm_mm"] = smoothing_fwhm_mm
        return m0 * scale, info
    if m0_type == "Estimate":
        if m0_estimate is None or not (np.isfinite(m0_estimate) and m0_estimate > 0):
            raise ValueError(f"M0Type is 'Estimate' but M0Estimate={m0_estimate!r} is not > 0")
        info.update(method="scalar M0Estimate", m0_estimate=float(m0_estimate))
        return float(m0_estimate) * scale, info
    if m0_type == "Absent":
        if reference_region is None:
            raise ValueError(
                "M0Type is 'Absent': there is no M0 to calibrate with; choose reference-region "
                "calibration (control images without background suppression + CSF/WM mask) "
                "or supply an M0 scan or M0Estimate"
            )
        m0, detail = _reference_region_m0(reference_region, partition_coefficient)
        # control images share the ASL series' scaling, so a vendor M0 scale does not apply
        info.update(detail, m0_scale=1.0)
        return m0, info
    raise ValueError(f"unknown M0Type {m0_type!r}; ASL-BIDS allows {', '.join(M0_TYPES)}")
