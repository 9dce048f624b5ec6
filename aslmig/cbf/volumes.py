"""Split an ASL series into its volume types (ASL-BIDS ``aslcontext``).

The time axis is always the **last** axis of the data array. Control/label pairs are formed
from consecutive control/label volumes in the order they appear (either order within a pair);
ΔM = control − label. ``deltam`` volumes are kept as they are, ``cbf`` volumes are kept aside
(passed through), ``m0scan`` and ``noRF`` volumes are separated out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

VOLUME_TYPES = ("control", "label", "m0scan", "deltam", "cbf", "noRF")
_PLD_TOLERANCE_S = 1e-6
#: Plausible median ΔM/M0 within the brain (a few tenths of a percent to a few percent).
DELTAM_RATIO_RANGE = (1e-4, 0.05)
#: Plausible median CBF within the brain, mL/100 g/min.
CBF_RANGE = (5.0, 250.0)


@dataclass(frozen=True)
class SplitVolumes:
    """An ASL series split by volume type (time on the last axis of every array).

    Attributes
    ----------
    deltam : ndarray or None
        ΔM volumes (pairs subtracted, then ``deltam`` volumes), shape ``(..., n_deltam)``.
    deltam_plds : ndarray
        PLD (or TI) of each ΔM volume, s.
    deltam_labeling_durations : ndarray or None
        Labeling duration of each ΔM volume, s, when given.
    deltam_sources : tuple of tuple of int
        Input volume indices that made each ΔM volume (``(control, label)`` or ``(i,)``).
    control_mean : ndarray or None
        Mean of the control volumes (for reference-region calibration).
    m0scan : ndarray or None
        ``m0scan`` volumes, shape ``(..., n_m0)``.
    m0scan_indices : tuple of int
        Their input indices.
    norf : ndarray or None
        ``noRF`` volumes.
    cbf : ndarray or None
        ``cbf`` volumes (already quantified by the scanner).
    """

    deltam: np.ndarray | None
    deltam_plds: np.ndarray
    deltam_labeling_durations: np.ndarray | None
    deltam_sources: tuple[tuple[int, ...], ...]
    control_mean: np.ndarray | None
    m0scan: np.ndarray | None
    m0scan_indices: tuple[int, ...]
    norf: np.ndarray | None
    cbf: np.ndarray | None


def per_volume_values(
    values: float | Sequence[float] | None, n_volumes: int, name: str
) -> np.ndarray | None:
    """Expand a scalar or per-volume sidecar value to one value per volume.

    Parameters
    ----------
    values : float, sequence of float or None
        The sidecar value (e.g. ``PostLabelingDelay``).
    n_volumes : int
        Number of volumes in the series.
    name : str
        Field name, used in error messages.

    Returns
    -------
    ndarray or None
        Array of length ``n_volumes`` (None if ``values`` is None).
    """
    if values is None:
        return None
    arr = np.atleast_1d(np.asarray(values, dtype=float))
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a number or a 1-D list, got shape {arr.shape}")
    if arr.size == 1:
        return np.full(n_volumes, arr[0])
    if arr.size != n_volumes:
        raise ValueError(
            f"{name} has {arr.size} values but the series has {n_volumes} volumes; "
            "give one value per volume or a single number"
        )
    return arr


def _check_context(aslcontext: Sequence[str], n_volumes: int) -> list[str]:
    context = [str(v).strip() for v in aslcontext]
    if len(context) != n_volumes:
        raise ValueError(
            f"aslcontext lists {len(context)} volumes but the data has {n_volumes} along its "
            "last axis; the aslcontext.tsv must have one row per volume"
        )
    unknown = sorted(set(context) - set(VOLUME_TYPES))
    if unknown:
        raise ValueError(f"unknown aslcontext volume type(s) {unknown}; allowed: {VOLUME_TYPES}")
    return context


def _pair_indices(context: list[str]) -> list[tuple[int, int]]:
    """Return (control, label) index pairs from consecutive control/label volumes."""
    order = [i for i, kind in enumerate(context) if kind in ("control", "label")]
    if len(order) % 2:
        raise ValueError(
            f"{len(order)} control/label volumes cannot be paired; aslcontext must list them "
            "in complete control/label (or label/control) pairs"
        )
    pairs = []
    for first, second in zip(order[::2], order[1::2], strict=True):
        kinds = {context[first], context[second]}
        if kinds != {"control", "label"}:
            raise ValueError(
                f"volumes {first} and {second} are both {context[first]!r}; each consecutive "
                "pair must be one control and one label"
            )
        control, label = (first, second) if context[first] == "control" else (second, first)
        pairs.append((control, label))
    return pairs


def _pair_timing(
    values: np.ndarray | None, pairs: list[tuple[int, int]], name: str
) -> np.ndarray | None:
    if values is None:
        return None
    control_values = values[[c for c, _ in pairs]]
    label_values = values[[lab for _, lab in pairs]]
    bad = np.flatnonzero(np.abs(control_values - label_values) > _PLD_TOLERANCE_S)
    if bad.size:
        c, lab = pairs[bad[0]]
        raise ValueError(
            f"{name} differs within the pair of volumes {c} (control) and {lab} (label): "
            f"{values[c]} vs {values[lab]}; a control and its label must share the timing"
        )
    return label_values


def _take(data: np.ndarray, indices: list[int]) -> np.ndarray:
    """Volumes ``indices`` of ``data``: a strided view when they are evenly spaced."""
    if len(indices) > 1:
        step = indices[1] - indices[0]
        if step > 0 and np.all(np.diff(indices) == step):
            return data[..., indices[0] : indices[-1] + 1 : step]
    return data[..., indices]


def _select(data: np.ndarray, indices: list[int]) -> np.ndarray | None:
    return _take(data, indices) if indices else None


def split_asl_series(
    data: np.ndarray,
    aslcontext: Sequence[str],
    plds: float | Sequence[float] | None = None,
    labeling_durations: float | Sequence[float] | None = None,
) -> SplitVolumes:
    """Split an ASL series into ΔM, M0, noRF and CBF volumes.

    Parameters
    ----------
    data : ndarray
        ASL series, volumes on the last axis.
    aslcontext : sequence of str
        Volume type of each volume (``control``, ``label``, ``m0scan``, ``deltam``,
        ``cbf``, ``noRF``).
    plds : float or sequence of float, optional
        ``PostLabelingDelay`` (PCASL/CASL) or inversion time (PASL): one number, or one per
        volume (ASL-BIDS). Control and label of a pair must share it.
    labeling_durations : float or sequence of float, optional
        ``LabelingDuration``: one number or one per volume.

    Returns
    -------
    SplitVolumes
        The separated volumes.

    Raises
    ------
    ValueError
        Length mismatches, unknown volume types, unpairable control/label volumes or
        timing that differs within a pair.
    """
    data = np.asarray(data)
    n_volumes = data.shape[-1]
    context = _check_context(aslcontext, n_volumes)
    pld_values = per_volume_values(plds, n_volumes, "PostLabelingDelay")
    tau_values = per_volume_values(labeling_durations, n_volumes, "LabelingDuration")

    pairs = _pair_indices(context)
    direct = [i for i, kind in enumerate(context) if kind == "deltam"]
    sources = tuple(pairs) + tuple((i,) for i in direct)
    deltam_parts = []
    control_idx = [c for c, _ in pairs]
    if pairs:
        labels = _take(data, [lab for _, lab in pairs])
        deltam_parts.append(np.subtract(_take(data, control_idx), labels, dtype=float))
    if direct:
        deltam_parts.append(_take(data, direct).astype(float))
    if len(deltam_parts) > 1:
        deltam = np.concatenate(deltam_parts, axis=-1)
    else:
        deltam = deltam_parts[0] if deltam_parts else None

    def timing(values: np.ndarray | None, name: str) -> np.ndarray | None:
        if values is None:
            return None
        paired = _pair_timing(values, pairs, name)
        parts = ([paired] if paired is not None else []) + [values[direct]]
        return np.concatenate(parts) if parts else np.empty(0)

    dm_plds = timing(pld_values, "PostLabelingDelay")
    m0_idx = [i for i, kind in enumerate(context) if kind == "m0scan"]
    return SplitVolumes(
        deltam=deltam,
        deltam_plds=np.empty(0) if dm_plds is None else dm_plds,
        deltam_labeling_durations=timing(tau_values, "LabelingDuration"),
        deltam_sources=sources,
        control_mean=_take(data, control_idx).mean(axis=-1, dtype=float) if pairs else None,
        m0scan=_select(data, m0_idx),
        m0scan_indices=tuple(m0_idx),
        norf=_select(data, [i for i, kind in enumerate(context) if kind == "noRF"]),
        cbf=_select(data, [i for i, kind in enumerate(context) if kind == "cbf"]),
    )


def _median_in(values: np.ndarray, mask: np.ndarray | None) -> float:
    values = np.asarray(values, float)
    if mask is not None:
        values = values[np.broadcast_to(np.asarray(mask, bool), values.shape)]
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def check_deltam_scaling(
    deltam: np.ndarray, m0: np.ndarray | float, mask: np.ndarray | None = None
) -> list[str]:
    """Check that ΔM and M0 are on a consistent scale; return warnings (empty if fine).

    A median ΔM/M0 within the brain outside 1e-4–0.05 usually means vendor scaling (e.g. ΔM
    summed over averages, or an M0 scaled differently): set ``m0_scale``.

    Parameters
    ----------
    deltam : ndarray
        ΔM (mean over volumes, or a single volume), spatial shape.
    m0 : ndarray or float
        M0 (broadcastable to ``deltam``).
    mask : ndarray of bool, optional
        Brain mask.

    Returns
    -------
    list of str
        Human-readable warnings.
    """
    deltam = np.asarray(deltam, float)
    m0 = np.broadcast_to(np.asarray(m0, float), deltam.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(m0 > 0, deltam / m0, np.nan)
    median = _median_in(ratio, mask)
    low, high = DELTAM_RATIO_RANGE
    if not np.isfinite(median):
        return ["median ΔM/M0 could not be computed (no positive M0 in the mask)"]
    if not low <= median <= high:
        return [
            f"median ΔM/M0 in the brain is {median:.3g}, outside the plausible {low}-{high}; "
            "check vendor scaling of ΔM or M0 (set m0_scale)"
        ]
    return []


def check_cbf_scaling(cbf: np.ndarray, mask: np.ndarray | None = None) -> list[str]:
    """Check that scanner-provided CBF volumes look like mL/100 g/min; return warnings.

    Parameters
    ----------
    cbf : ndarray
        CBF map or series (volumes on the last axis).
    mask : ndarray of bool, optional
        Brain mask (spatial shape).

    Returns
    -------
    list of str
        Human-readable warnings (empty if the median is within 5–250 mL/100 g/min).
    """
    cbf = np.asarray(cbf, float)
    if mask is not None and np.ndim(mask) < cbf.ndim:
        cbf = cbf.mean(axis=-1)
    median = _median_in(cbf, mask)
    low, high = CBF_RANGE
    if np.isfinite(median) and low <= median <= high:
        return []
    return [
        f"median CBF in the brain is {median:.3g}, outside the plausible {low}-{high} "
        "mL/100 g/min; the cbf volumes may be in other units (mL/g/s?) or vendor-scaled"
    ]
