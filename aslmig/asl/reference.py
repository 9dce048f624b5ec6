"""Reference image and brain mask of an ASL run.

The reference is the image that anatomy-like steps (brain mask, registration to T1w or a
template) use: the M0 when there is one (mean of the ``m0scan`` volumes of the series, or of a
separate M0 scan), else the mean control image, else (``deltam``/``cbf``-only series without
M0) the mean of all volumes. M0 smoothing for calibration lives in
:func:`aslmig.cbf.calibration.smooth_m0`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from aslmig.cbf.volumes import split_asl_series
from aslmig.errors import InputError

#: Morphological scale of :func:`brain_mask` (mm): erosion that cuts thin bridges to the scalp
#: and the closing radius.
MASK_SCALE_MM = 3.0
_HISTOGRAM_BINS = 256
_CLIP_PERCENTILE = 99.5


@dataclass(frozen=True)
class ReferenceImage:
    """The reference image of an ASL run and where it came from.

    Attributes
    ----------
    data : ndarray
        3D image (float64).
    source : str
        ``"m0scan"`` (mean of the series' m0scan volumes), ``"separate_m0"``, ``"control"``
        (mean control) or ``"mean"`` (mean of all volumes; no M0 and no control).
    n_volumes : int
        Number of volumes averaged.
    """

    data: np.ndarray
    source: str
    n_volumes: int


def reference_image(
    series: np.ndarray,
    volume_types: Sequence[str],
    m0: np.ndarray | None = None,
    *,
    source: str | Path = "ASL series",
) -> ReferenceImage:
    """Return the M0 (when available), else the mean control, as the run's reference image.

    Pass the motion-corrected series (:attr:`aslmig.asl.motion.Realignment.realigned`, and
    :attr:`~aslmig.asl.motion.Realignment.m0` for a separate M0 scan).

    Parameters
    ----------
    series : ndarray
        ASL series (X, Y, Z, T).
    volume_types : sequence of str
        ``aslcontext`` volume type of each volume.
    m0 : ndarray, optional
        Separate M0 scan on the same grid, 3D or 4D (volumes on the last axis); it wins over
        everything else.
    source : str or Path
        File name for error messages.

    Returns
    -------
    ReferenceImage
        The image, its source and the number of volumes averaged.

    Raises
    ------
    InputError
        A series that is not 4D, or an M0 whose grid differs from the series'.
    """
    series = np.asarray(series)
    if series.ndim == 3:
        series = series[..., None]
    if series.ndim != 4:
        raise InputError(source, f"ASL data has {series.ndim} dimensions", "use a 3D/4D image")
    if m0 is not None:
        m0 = np.asarray(m0, float)
        m0 = m0[..., None] if m0.ndim == 3 else m0
        if m0.shape[:3] != series.shape[:3]:
            raise InputError(
                source,
                f"M0 grid {m0.shape[:3]} differs from the ASL grid {series.shape[:3]}",
                "resample the M0 onto the ASL grid (realign_series does) before this step",
            )
        return ReferenceImage(m0.mean(axis=-1), "separate_m0", m0.shape[-1])
    split = split_asl_series(series, volume_types)
    if split.m0scan is not None:
        return ReferenceImage(
            split.m0scan.mean(axis=-1, dtype=float), "m0scan", split.m0scan.shape[-1]
        )
    if split.control_mean is not None:
        n_control = sum(1 for kind in volume_types if str(kind).strip() == "control")
        return ReferenceImage(np.asarray(split.control_mean, float), "control", n_control)
    return ReferenceImage(series.mean(axis=-1, dtype=float), "mean", series.shape[-1])


def otsu_threshold(values: np.ndarray, bins: int = _HISTOGRAM_BINS) -> float:
    """Otsu's threshold (maximal between-class variance) of a set of values.

    Parameters
    ----------
    values : ndarray
        Intensities (any shape).
    bins : int
        Histogram bins.

    Returns
    -------
    float
        The threshold (a bin edge; the middle one when several split equally well).

    Raises
    ------
    ValueError
        When all values are equal.
    """
    values = np.asarray(values, float).ravel()
    counts, edges = np.histogram(values, bins=bins)
    centres = 0.5 * (edges[1:] + edges[:-1])
    weight_low = np.cumsum(counts)[:-1]
    weight_high = values.size - weight_low
    sum_low = np.cumsum(counts * centres)[:-1]
    with np.errstate(divide="ignore", invalid="ignore"):
        mean_low = sum_low / weight_low
        mean_high = (sum_low[-1] + counts[-1] * centres[-1] - sum_low) / weight_high
        between = weight_low * weight_high * (mean_low - mean_high) ** 2
    if not np.any(between > 0):
        raise ValueError("Otsu's threshold needs at least two distinct values")
    # the middle of a plateau of equal maxima (well-separated classes leave a flat gap)
    best = np.flatnonzero(between >= np.nanmax(between) * (1.0 - 1e-9))
    return float(edges[1:-1][(best[0] + best[-1]) // 2])


def _largest_component(mask: np.ndarray) -> np.ndarray:
    labels, n = ndimage.label(mask)
    if n <= 1:
        return mask
    sizes = np.bincount(labels.ravel())
    sizes[0] = 0
    return labels == np.argmax(sizes)


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill holes in 3D, then slice by slice along the last (slice) axis."""
    mask = ndimage.binary_fill_holes(mask)
    for k in range(mask.shape[2]):
        mask[..., k] = ndimage.binary_fill_holes(mask[..., k])
    return mask


def _iterations(affine: np.ndarray) -> int:
    voxel = np.linalg.norm(np.asarray(affine, float)[:3, :3], axis=0)
    return max(1, int(round(MASK_SCALE_MM / float(voxel.min()))))


def brain_mask(reference: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Brain mask of an M0 or mean-control image.

    1. threshold at Otsu's value of the intensities (clipped at the 99.5th percentile, so
       a few very bright vessel or fat voxels do not move it);
    2. erode by ~3 mm (``MASK_SCALE_MM``; at least one voxel, 6-connected), keep the largest
       connected component, dilate back by the same amount within the thresholded mask:
       thin bridges to scalp, eyes or neck are cut;
    3. close with the same scale and fill holes (3D, then each slice along the last axis), so
       dark CSF, vessels or signal drop-outs inside the brain stay in the mask.

    Parameters
    ----------
    reference : ndarray
        3D reference image (M0 or mean control).
    affine : ndarray
        Voxel-to-world matrix (for the voxel size of the morphological steps).

    Returns
    -------
    ndarray of bool
        The brain mask.

    Raises
    ------
    ValueError
        A reference that is not 3D, not finite, or flat (no contrast to threshold).
    """
    image = np.asarray(reference, float)
    if image.ndim != 3 or not np.all(np.isfinite(image)):
        raise ValueError(f"reference must be a finite 3D image, got shape {image.shape}")
    high = np.percentile(image, _CLIP_PERCENTILE)
    if not high > image.min():
        raise ValueError("reference image is flat: no brain to mask")
    low = min(float(image.min()), 0.0)
    clipped = np.clip(image, low, high)
    foreground = clipped > otsu_threshold(clipped)
    n = _iterations(affine)
    core = ndimage.binary_erosion(foreground, iterations=n)
    if not core.any():
        core = foreground
    core = _largest_component(core)
    mask = ndimage.binary_dilation(core, iterations=n) & foreground
    mask = _largest_component(mask)
    padded = np.pad(mask, n + 1)
    closed = ndimage.binary_closing(padded, iterations=n)[
        n + 1 : -n - 1, n + 1 : -n - 1, n + 1 : -n - 1
    ]
    return _fill_holes(closed | mask)
