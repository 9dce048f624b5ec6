"""Single-delay CBF quantification (white paper, Alsop et al. 2015), optionally the full model.

Arrays: ``deltam`` has its volumes on the **last** axis (a single 3-D volume is passed as
``(..., 1)``); ``m0`` is a scalar or broadcasts to ``deltam.shape[:-1]``; masks and tissue maps
have the spatial shape ``deltam.shape[:-1]``.

White-paper equations (CBF in mL/100 g/min):

* PCASL/CASL: CBF = 6000·λ·ΔM·e^(PLD/T1b) / (2·α·T1b·M0·(1 − e^(−τ/T1b)))
* PASL (QUIPSS II/Q2TIPS): CBF = 6000·λ·ΔM·e^(TI/T1b) / (2·α·TI1·M0)

For 2-D readouts, slice k is read ``SliceTiming[k]`` seconds after the nominal PLD/TI.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aslmig.cbf.constants import QuantificationConstants
from aslmig.cbf.kinetic import KineticSettings, tissue_signal_and_jacobian
from aslmig.cbf.outliers import score_outlier_rejection
from aslmig.cbf.volumes import per_volume_values

SINGLE_DELAY_MODELS = ("whitepaper", "full")
AVERAGING_METHODS = ("mean", "median", "score")
_NEWTON_ITERATIONS = 30

PCASL_EQUATION = "CBF = 6000*lambda*dM*exp(PLD/T1b) / (2*alpha*T1b*M0*(1-exp(-tau/T1b)))"
PASL_EQUATION = "CBF = 6000*lambda*dM*exp(TI/T1b) / (2*alpha*TI1*M0)"


def bolus_duration_from_cutoff(bolus_cutoff_delay_time: float | Sequence[float]) -> float:
    """Return TI1 from ``BolusCutOffDelayTime`` (QUIPSS II: a number; Q2TIPS: the first value).

    Parameters
    ----------
    bolus_cutoff_delay_time : float or sequence of float
        The sidecar value, s.

    Returns
    -------
    float
        TI1 (bolus duration), s.
    """
    values = np.atleast_1d(np.asarray(bolus_cutoff_delay_time, dtype=float))
    if values.size == 0 or not np.all(np.isfinite(values)) or values[0] <= 0:
        raise ValueError(
            f"BolusCutOffDelayTime={bolus_cutoff_delay_time!r} must be a positive time in "
            "seconds (QUIPSS II) or a list starting with one (Q2TIPS)"
        )
    return float(values[0])


def bolus_duration(
    constants: QuantificationConstants,
    n_volumes: int,
    labeling_duration: float | Sequence[float] | None,
    bolus_cutoff_delay_time: float | Sequence[float] | None,
) -> np.ndarray:
    """Return τ (PCASL/CASL ``LabelingDuration``) or TI1 (PASL) for each volume.

    Parameters
    ----------
    constants : QuantificationConstants
        Gives the labeling type.
    n_volumes : int
        Number of ΔM volumes.
    labeling_duration : float or sequence, optional
        ``LabelingDuration`` (PCASL/CASL), one value or one per volume.
    bolus_cutoff_delay_time : float or sequence, optional
        ``BolusCutOffDelayTime`` (PASL).

    Returns
    -------
    ndarray
        One duration per volume, s.
    """
    if constants.labeling_type == "PASL":
        if bolus_cutoff_delay_time is None:
            raise ValueError(
                "PASL quantification needs BolusCutOffDelayTime (TI1, QUIPSS II/Q2TIPS); "
                "without bolus cut-off the bolus duration is unknown"
            )
        return np.full(n_volumes, bolus_duration_from_cutoff(bolus_cutoff_delay_time))
    if labeling_duration is None:
        raise ValueError(f"{constants.labeling_type} quantification needs LabelingDuration (s)")
    taus = per_volume_values(labeling_duration, n_volumes, "LabelingDuration")
    if np.any(~np.isfinite(taus)) or np.any(taus <= 0):
        raise ValueError(f"LabelingDuration={labeling_duration!r} must be positive seconds")
    return taus


def effective_delays(
    plds: float | Sequence[float],
    n_volumes: int,
    spatial_shape: tuple[int, ...],
    slice_timing: Sequence[float] | None = None,
    slice_axis: int = 2,
) -> np.ndarray:
    """Return the PLD (or TI) of every voxel and volume, broadcastable to the data.

    Parameters
    ----------
    plds : float or sequence of float
        Nominal PLD/TI, one value or one per volume, s.
    n_volumes : int
        Number of volumes (last axis of the data).
    spatial_shape : tuple of int
        Spatial shape of the data.
    slice_timing : sequence of float, optional
        ``SliceTiming`` of a 2-D readout: slice k is read ``slice_timing[k]`` s later.
    slice_axis : int
        Spatial axis along which slices are stacked.

    Returns
    -------
    ndarray
        Shape ``(1, ..., n_slices, ..., 1, n_volumes)`` (or ``(n_volumes,)`` without slice
        timing).
    """
    delays = per_volume_values(plds, n_volumes, "PostLabelingDelay")
    if np.any(~np.isfinite(delays)) or np.any(delays < 0):
        raise ValueError(f"PostLabelingDelay={plds!r} must be non-negative seconds")
    if slice_timing is None:
        return delays
    timing = np.asarray(slice_timing, dtype=float).ravel()
    if not 0 <= slice_axis < len(spatial_shape):
        raise ValueError(f"slice_axis={slice_axis} is not a spatial axis of {spatial_shape}")
    if timing.size != spatial_shape[slice_axis]:
        raise ValueError(
            f"SliceTiming has {timing.size} values but axis {slice_axis} has "
            f"{spatial_shape[slice_axis]} slices; give one time per slice or fix slice_axis"
        )
    shape = [1] * (len(spatial_shape) + 1)
    shape[slice_axis] = timing.size
    return delays + timing.reshape(shape)


def whitepaper_scale(
    delays: np.ndarray, taus: np.ndarray, constants: QuantificationConstants
) -> np.ndarray:
    """Return the factor K such that CBF = K · ΔM/M0 (white-paper equations).

    Parameters
    ----------
    delays : ndarray
        PLD (PCASL/CASL) or TI (PASL), s.
    taus : ndarray
        Labeling duration τ (PCASL/CASL) or TI1 (PASL), s.
    constants : QuantificationConstants
        Resolved constants.

    Returns
    -------
    ndarray
        K in mL/100 g/min per unit ΔM/M0.
    """
    c = constants
    numerator = c.unit_scale * c.partition_coefficient * np.exp(delays / c.t1_blood)
    if c.labeling_type == "PASL":
        return numerator / (2.0 * c.labeling_efficiency * taus)
    saturation = -np.expm1(-taus / c.t1_blood)
    return numerator / (2.0 * c.labeling_efficiency * c.t1_blood * saturation)


def single_delay_signal(
    cbf: np.ndarray | float,
    plds: np.ndarray | float,
    constants: QuantificationConstants,
    *,
    labeling_duration: np.ndarray | float | None = None,
    bolus_cutoff_delay_time: float | Sequence[float] | None = None,
) -> np.ndarray:
    """Forward white-paper model: ΔM/M0 produced by a CBF at a PLD (or TI).

    Parameters
    ----------
    cbf : ndarray or float
        CBF, mL/100 g/min.
    plds : ndarray or float
        PLD (PCASL/CASL) or TI (PASL), s.
    constants : QuantificationConstants
        Resolved constants.
    labeling_duration : ndarray or float, optional
        τ for PCASL/CASL, s.
    bolus_cutoff_delay_time : float or sequence, optional
        TI1 for PASL, s.

    Returns
    -------
    ndarray
        ΔM/M0.
    """
    if constants.labeling_type == "PASL":
        taus = np.asarray(bolus_duration_from_cutoff(bolus_cutoff_delay_time))
    else:
        taus = np.asarray(labeling_duration, dtype=float)
    return np.asarray(cbf, float) / whitepaper_scale(np.asarray(plds, float), taus, constants)


def m0_array(m0: np.ndarray | float, spatial_shape: tuple[int, ...]) -> np.ndarray:
    """Return M0 broadcast to the ASL volume's spatial shape.

    Parameters
    ----------
    m0 : numpy.ndarray or float
        M0 image (same spatial shape) or one positive value.
    spatial_shape : tuple of int
        Spatial shape of the ASL volume.

    Returns
    -------
    numpy.ndarray
        M0 per voxel (a read-only broadcast view for a single value).

    Raises
    ------
    ValueError
        A non-positive single value, or an image whose shape does not match.
    """
    m0 = np.asarray(m0, dtype=float)
    if m0.ndim == 0 and not (np.isfinite(m0) and m0 > 0):
        raise ValueError(f"M0={float(m0)} must be a positive number; check M0Estimate/m0_scale")
    try:
        return np.broadcast_to(m0, spatial_shape)
    except ValueError:
        raise ValueError(
            f"M0 shape {m0.shape} does not match the ASL volume shape {spatial_shape}; "
            "resample M0 to the ASL grid"
        ) from None


def valid_voxels(m0: np.ndarray, mask: np.ndarray | None) -> tuple[np.ndarray, int]:
    """Return the voxels that can be quantified and how many of the mask's cannot.

    Parameters
    ----------
    m0 : numpy.ndarray
        M0 per voxel.
    mask : numpy.ndarray or None
        Brain mask (None: every voxel).

    Returns
    -------
    valid : numpy.ndarray of bool
        In the mask with a finite, positive M0.
    n_bad_m0 : int
        Mask voxels left out for a non-positive or non-finite M0.

    Raises
    ------
    ValueError
        The mask does not match M0's shape, or M0 is non-positive everywhere in it.
    """
    positive = np.isfinite(m0) & (m0 > 0)
    region = np.ones(m0.shape, bool) if mask is None else np.asarray(mask, bool)
    if region.shape != m0.shape:
        raise ValueError(f"mask shape {region.shape} does not match the volume shape {m0.shape}")
    if not np.any(positive & region):
        raise ValueError("M0 is non-positive everywhere in the mask; check the M0 image and mask")
    return positive & region, int(np.count_nonzero(region & ~positive))


def _invert_full_model(
    ratio: np.ndarray,
    delays: np.ndarray,
    taus: np.ndarray,
    att: np.ndarray,
    settings: KineticSettings,
) -> np.ndarray:
    """Solve tissue_signal(CBF, ATT) = ratio for CBF by Newton iterations (vectorised)."""
    cbf = np.zeros(np.broadcast_shapes(ratio.shape, delays.shape, att.shape))
    unit, slope, _ = tissue_signal_and_jacobian(1.0, att, delays, taus, settings)
    no_signal = np.broadcast_to(slope <= 0, cbf.shape)
    cbf = np.where(no_signal, 0.0, ratio / np.where(slope > 0, slope, 1.0))
    for _ in range(_NEWTON_ITERATIONS):
        signal, d_cbf, _ = tissue_signal_and_jacobian(cbf, att, delays, taus, settings)
        step = np.where(no_signal, 0.0, (signal - ratio) / np.where(d_cbf > 0, d_cbf, 1.0))
        cbf = cbf - step
        if np.max(np.abs(step), initial=0.0) < 1e-12 * max(1.0, np.max(np.abs(cbf))):
            break
    return np.where(no_signal, np.nan, cbf)


def deltam_to_cbf(
    deltam: np.ndarray,
    m0: np.ndarray | float,
    plds: float | Sequence[float],
    constants: QuantificationConstants,
    *,
    labeling_duration: float | Sequence[float] | None = None,
    bolus_cutoff_delay_time: float | Sequence[float] | None = None,
    slice_timing: Sequence[float] | None = None,
    slice_axis: int = 2,
    mask: np.ndarray | None = None,
    model: str = "whitepaper",
    att: np.ndarray | float | None = None,
    t1_tissue: np.ndarray | float | None = None,
    fill_value: float = 0.0,
) -> np.ndarray:
    """Convert each ΔM volume to CBF (mL/100 g/min).

    Parameters
    ----------
    deltam : ndarray
        ΔM, volumes on the last axis (``(..., 1)`` for a single volume).
    m0 : ndarray or float
        Calibrated tissue M0 (scalar or spatial map).
    plds : float or sequence of float
        PLD (PCASL/CASL) or TI (PASL) per volume, s.
    constants : QuantificationConstants
        Resolved constants.
    labeling_duration : float or sequence, optional
        ``LabelingDuration`` τ, s (PCASL/CASL).
    bolus_cutoff_delay_time : float or sequence, optional
        ``BolusCutOffDelayTime`` (PASL): TI1 is its first value.
    slice_timing : sequence of float, optional
        ``SliceTiming`` for 2-D readouts.
    slice_axis : int
        Spatial axis of the slices.
    mask : ndarray of bool, optional
        Voxels to quantify; others get ``fill_value``.
    model : str
        ``"whitepaper"`` (closed form) or ``"full"`` (Buxton model with tissue T1, inverted
        voxel-wise for an assumed ``att``).
    att : ndarray or float, optional
        Assumed arterial transit time (s), required by ``model="full"``.
    t1_tissue : ndarray or float, optional
        Tissue T1 (s) for ``model="full"``, a number or a spatial map; default
        ``constants.t1_tissue``.
    fill_value : float
        Value outside the mask and where M0 is not positive.

    Returns
    -------
    ndarray
        CBF per volume, same shape as ``deltam``.
    """
    deltam = np.asarray(deltam, dtype=float)
    if deltam.ndim < 2:
        raise ValueError("deltam must have volumes on its last axis; pass one volume as (..., 1)")
    spatial, n_volumes = deltam.shape[:-1], deltam.shape[-1]
    m0_map = m0_array(m0, spatial)
    valid, _ = valid_voxels(m0_map, mask)
    delays = effective_delays(plds, n_volumes, spatial, slice_timing, slice_axis)
    taus = bolus_duration(constants, n_volumes, labeling_duration, bolus_cutoff_delay_time)
    inverse_m0 = np.zeros(spatial)
    inverse_m0[valid] = 1.0 / m0_map[valid]
    ratio = deltam * inverse_m0[..., None]  # 0 outside the valid voxels
    if model == "whitepaper":
        ratio *= whitepaper_scale(delays, taus, constants)
        cbf = ratio
    elif model == "full":
        if att is None:
            raise ValueError("model='full' on single-delay data needs an assumed ATT (s)")
        att_arr, t1_arr = (
            None if v is None else np.asarray(v, float)[..., None] for v in (att, t1_tissue)
        )
        settings = KineticSettings.from_constants(constants, "full", t1_arr)
        cbf = _invert_full_model(ratio, delays, taus, att_arr, settings)
    else:
        raise ValueError(f"unknown single-delay model {model!r}; use one of {SINGLE_DELAY_MODELS}")
    if fill_value != 0:
        cbf[~valid] = fill_value
    not_finite = ~np.isfinite(cbf)
    if np.any(not_finite):
        cbf[not_finite] = fill_value
    return cbf


def average_cbf_series(
    cbf_series: np.ndarray,
    method: str = "mean",
    *,
    gm: np.ndarray | None = None,
    wm: np.ndarray | None = None,
    csf: np.ndarray | None = None,
    tissue_threshold: float = 0.7,
) -> tuple[np.ndarray, dict]:
    """Average a CBF series over volumes, optionally rejecting outlier volumes (SCORE).

    Parameters
    ----------
    cbf_series : ndarray
        CBF, volumes on the last axis.
    method : str
        ``"mean"``, ``"median"`` or ``"score"`` (Dolui et al. 2017; needs ``gm`` and ``wm``).
    gm, wm, csf : ndarray, optional
        Tissue probability maps or masks (spatial shape) for SCORE.
    tissue_threshold : float
        Probability above which a voxel counts as that tissue.

    Returns
    -------
    cbf : ndarray
        Averaged CBF map.
    info : dict
        ``averaging``, ``n_volumes``, ``kept_volumes`` and ``dropped_volumes``.
    """
    n_volumes = cbf_series.shape[-1]
    info: dict = {"averaging": method, "n_volumes": n_volumes}
    if method == "mean":
        kept = np.ones(n_volumes, bool)
        cbf = cbf_series.mean(axis=-1)
    elif method == "median":
        kept = np.ones(n_volumes, bool)
        cbf = np.median(cbf_series, axis=-1)
    elif method == "score":
        if gm is None or wm is None:
            raise ValueError("SCORE averaging needs grey- and white-matter maps (gm=, wm=)")
        result = score_outlier_rejection(cbf_series, gm, wm, csf, tissue_threshold=tissue_threshold)
        kept, cbf = result.kept, result.mean_cbf
        info["dropped_reasons"] = result.reasons
    else:
        raise ValueError(f"unknown averaging {method!r}; use one of {AVERAGING_METHODS}")
    info["kept_volumes"] = [int(i) for i in np.flatnonzero(kept)]
    info["dropped_volumes"] = [int(i) for i in np.flatnonzero(~kept)]
    return cbf, info


def quantify_single_delay(
    deltam: np.ndarray,
    m0: np.ndarray | float,
    plds: float | Sequence[float],
    constants: QuantificationConstants,
    *,
    labeling_duration: float | Sequence[float] | None = None,
    bolus_cutoff_delay_time: float | Sequence[float] | None = None,
    slice_timing: Sequence[float] | None = None,
    slice_axis: int = 2,
    mask: np.ndarray | None = None,
    model: str = "whitepaper",
    att: np.ndarray | float | None = None,
    t1_tissue: np.ndarray | float | None = None,
    averaging: str = "mean",
    gm: np.ndarray | None = None,
    wm: np.ndarray | None = None,
    csf: np.ndarray | None = None,
    tissue_threshold: float = 0.7,
    fill_value: float = 0.0,
    series: np.ndarray | None = None,
) -> tuple[np.ndarray, dict]:
    """Quantify single-delay ASL: per-volume CBF, then the (robust) average.

    Parameters are those of :func:`deltam_to_cbf` and :func:`average_cbf_series`.
    The per-volume series is :func:`deltam_to_cbf` of the same arguments.

    Parameters
    ----------
    deltam, m0, plds, constants
        See :func:`deltam_to_cbf`.
    labeling_duration, bolus_cutoff_delay_time, slice_timing, slice_axis, mask, model, att
        See :func:`deltam_to_cbf`.
    t1_tissue
        See :func:`deltam_to_cbf`.
    averaging : str
        ``"mean"``, ``"median"`` or ``"score"``.
    gm, wm, csf, tissue_threshold
        Tissue maps for SCORE, see :func:`average_cbf_series`.
    fill_value : float
        Value outside the mask.
    series : ndarray, optional
        The per-volume CBF series when the caller already has it (:func:`deltam_to_cbf` of
        the same arguments); it is then not computed again.

    Returns
    -------
    cbf : ndarray
        Mean (or robust average) CBF map, mL/100 g/min.
    provenance : dict
        Model, equation, constants (values and sources), timing, averaging, dropped volumes.
    """
    deltam = np.asarray(deltam, dtype=float)
    if series is None:
        series = deltam_to_cbf(
            deltam,
            m0,
            plds,
            constants,
            labeling_duration=labeling_duration,
            bolus_cutoff_delay_time=bolus_cutoff_delay_time,
            slice_timing=slice_timing,
            slice_axis=slice_axis,
            mask=mask,
            model=model,
            att=att,
            t1_tissue=t1_tissue,
            fill_value=fill_value,
        )
    cbf, info = average_cbf_series(
        series, averaging, gm=gm, wm=wm, csf=csf, tissue_threshold=tissue_threshold
    )
    spatial = deltam.shape[:-1]
    _, n_bad_m0 = valid_voxels(m0_array(m0, spatial), mask)
    taus = bolus_duration(constants, deltam.shape[-1], labeling_duration, bolus_cutoff_delay_time)
    provenance = {
        "model": model,
        "equation": PASL_EQUATION if constants.labeling_type == "PASL" else PCASL_EQUATION,
        "constants": constants.to_dict(),
        "post_labeling_delays_s": sorted({float(v) for v in np.atleast_1d(plds)}),
        "bolus_duration_s": sorted({float(v) for v in taus}),
        "slice_timing_applied": slice_timing is not None,
        "slice_axis": slice_axis if slice_timing is not None else None,
        "assumed_att_s": None if model == "whitepaper" else _summarise(att),
        "t1_tissue_s": None
        if model == "whitepaper"
        else _summarise(constants.t1_tissue if t1_tissue is None else t1_tissue),
        "n_nonpositive_m0_voxels": n_bad_m0,
        "units": "mL/100 g/min",
        **info,
    }
    return cbf, provenance


def _summarise(value: np.ndarray | float | None) -> float | str | None:
    if value is None:
        return None
    arr = np.asarray(value, float)
    return float(arr) if arr.ndim == 0 else "voxel-wise map"
