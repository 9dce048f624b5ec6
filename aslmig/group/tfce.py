"""Threshold-free cluster enhancement (TFCE) and cluster labelling of 3-D statistic images.

numpy and scipy only; used by the permutation engine of :mod:`aslmig.group.voxelwise`.
TFCE follows Smith & Nichols (2009): ``H = 2``, ``E = 0.5``, step ``dh``, extent in voxels;
clusters are 26-connected (faces, edges and corners; default) or 6-connected (faces). For
two-sided images the positive and the negative part are enhanced separately (signed result).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

#: Accepted values of ``tail``.
TAILS = ("two-sided", "greater", "less")


@dataclass(frozen=True)
class TFCEParams:
    """Parameters of threshold-free cluster enhancement.

    Attributes
    ----------
    h : float
        Height exponent ``H`` (default 2).
    e : float
        Extent exponent ``E`` (default 0.5); extent is counted in voxels.
    dh : float
        Threshold step: thresholds are ``dh, 2 dh, ...`` up to the image maximum (default 0.1).
    """

    h: float = 2.0
    e: float = 0.5
    dh: float = 0.1

    def __post_init__(self) -> None:
        if not (self.dh > 0 and self.h >= 0 and self.e >= 0):
            raise ValueError(f"TFCE needs dh > 0, H >= 0 and E >= 0, got {self}")


def connectivity_structure(connectivity: int) -> np.ndarray:
    """Return the 3-D neighbourhood of 6 (faces) or 26 (faces, edges, corners) connectivity."""
    if connectivity not in (6, 26):
        raise ValueError(f"connectivity must be 6 or 26, got {connectivity!r}")
    return ndimage.generate_binary_structure(3, 1 if connectivity == 6 else 3)


def bounding_box(above: np.ndarray) -> tuple[slice, slice, slice]:
    """Return the bounding box of the true voxels (there is at least one)."""
    plane = above.any(axis=2)
    ranges = (plane.any(axis=1), plane.any(axis=0), above.any(axis=(0, 1)))
    box = []
    for hits in ranges:
        where = np.flatnonzero(hits)
        box.append(slice(int(where[0]), int(where[-1]) + 1))
    return box[0], box[1], box[2]


#: Above this many touching positive/negative voxel pairs, a TFCE level labels each sign
#: separately instead of labelling ``|t| >= h`` once and splitting the mixed clusters.
MAX_CONTACTS = 64


def _split_mixed(
    labels: np.ndarray, count: int, signed: np.ndarray, mixed: np.ndarray, structure: np.ndarray
) -> tuple[np.ndarray, int]:
    """Relabel each cluster in ``mixed`` by sign, in place; new clusters get new numbers."""
    objects = ndimage.find_objects(labels, max_label=int(mixed.max()))
    for label in mixed:
        box = objects[label - 1]
        region = labels[box] == label
        part = signed[box]
        positive, n_positive = ndimage.label(region & (part > 0), structure)
        negative, n_negative = ndimage.label(region & (part < 0), structure)
        pieces = np.where(negative > 0, negative + n_positive, positive)
        mapping = np.concatenate(([0, label], count + np.arange(1, n_positive + n_negative)))
        labels[box][region] = mapping[pieces[region]]
        count += n_positive + n_negative - 1
    return labels, count


def _level_labels(
    signed: np.ndarray,
    above: np.ndarray,
    contacts: tuple[np.ndarray, ...],
    structure: np.ndarray,
) -> tuple[np.ndarray, int]:
    """Label the clusters of ``{|t| >= h}`` of each sign.

    ``contacts`` are the (box) coordinates of the positive voxels that touch a negative voxel
    at this level. Without contacts one ``ndimage.label`` call suffices; with a few, the mixed
    clusters are split by sign; with many, each sign is labelled separately.
    """
    if contacts[0].size > MAX_CONTACTS:
        positive, n_positive = ndimage.label(above & (signed > 0), structure)
        negative, n_negative = ndimage.label(above & (signed < 0), structure)
        positive[negative > 0] = negative[negative > 0] + n_positive
        return positive, n_positive + n_negative
    labels, count = ndimage.label(above, structure)
    if contacts[0].size:
        labels, count = _split_mixed(labels, count, signed, np.unique(labels[contacts]), structure)
    return labels, count


def _sorted_voxels(selected: np.ndarray, levels: np.ndarray) -> tuple[tuple, np.ndarray]:
    """Return the coordinates of the selected voxels, and their levels, by increasing level."""
    coords = np.nonzero(selected)
    order = np.argsort(levels[coords], kind="stable")
    coords = tuple(c[order] for c in coords)
    return coords, levels[coords]


def _from(coords: tuple, levels: np.ndarray, height: float, box: tuple) -> tuple:
    """Return the box coordinates of the voxels whose level is at least ``height``."""
    first = int(np.searchsorted(levels, height, side="left"))
    return tuple(c[first:] - b.start for c, b in zip(coords, box, strict=True))


def _tfce_core(
    data: np.ndarray, params: TFCEParams, structure: np.ndarray, peaks_only: bool = False
) -> np.ndarray | float:
    """Signed TFCE of ``data`` (positive and negative parts enhanced separately).

    ``sum_k e_k(v)^E h_k^H dh`` over ``h_k = k dh <= |t(v)|``; each level is labelled by
    :func:`_level_labels` within the bounding box of ``{|t| >= h}``. With ``peaks_only`` only
    the maximum of ``|TFCE|`` is returned: it is reached at a regional maximum of ``t`` (or
    minimum, for the negative part), because the peak of a cluster shares every lower level
    with all of the cluster's voxels and has further levels of its own.
    """
    magnitude = np.abs(data)
    top = float(magnitude.max()) if data.size else 0.0
    lowest = ndimage.minimum_filter(data, footprint=structure, mode="constant", cval=0.0)
    touching = np.minimum(data, -lowest)  # level up to which a positive voxel touches a negative
    contact_coords, contact_levels = _sorted_voxels(touching > 0, touching)
    if peaks_only:
        highest = ndimage.maximum_filter(data, footprint=structure, mode="constant", cval=0.0)
        peaks = ((data > 0) & (data >= highest)) | ((data < 0) & (data <= lowest))
        peak_coords, peak_levels = _sorted_voxels(peaks, magnitude)
        accumulated = np.zeros(peak_levels.size)
    else:
        out = np.zeros(data.shape)
    box = tuple(slice(0, size) for size in data.shape)
    step = 1
    while step * params.dh <= top:
        height = step * params.dh
        above = magnitude[box] >= height
        inner = bounding_box(above)
        above = above[inner]
        box = tuple(
            slice(b.start + i.start, b.start + i.stop) for b, i in zip(box, inner, strict=True)
        )
        contacts = _from(contact_coords, contact_levels, height, box)
        labels, count = _level_labels(data[box], above, contacts, structure)
        sizes = np.bincount(labels.ravel(), minlength=count + 1).astype(float)
        weight = sizes**params.e * height**params.h * params.dh
        weight[0] = 0.0
        if peaks_only:
            local = _from(peak_coords, peak_levels, height, box)
            accumulated[accumulated.size - local[0].size :] += weight[labels[local]]
        else:
            out[box] += weight[labels]
        step += 1
    if peaks_only:
        return float(accumulated.max()) if accumulated.size else 0.0
    return out * np.sign(data)


def tail_part(data: np.ndarray, tail: str) -> np.ndarray:
    """Return the part of ``data`` a tail enhances (positive, negative or both)."""
    if tail == "greater":
        return np.maximum(data, 0.0)
    return np.minimum(data, 0.0) if tail == "less" else data


def tfce_transform(
    volume: ArrayLike,
    params: TFCEParams | None = None,
    *,
    connectivity: int = 26,
    tail: str = "two-sided",
) -> np.ndarray:
    """Return the threshold-free cluster enhancement of a 3-D statistic image.

    Parameters
    ----------
    volume : array_like, 3-D
        Statistic image; non-finite voxels count as 0.
    params : TFCEParams, optional
        ``H``, ``E`` and ``dh`` (default 2, 0.5, 0.1).
    connectivity : {26, 6}, optional
        Voxel neighbourhood of the clusters.
    tail : {"two-sided", "greater", "less"}, optional
        ``"greater"``: TFCE of the positive part; ``"less"``: minus the TFCE of the negative
        part; ``"two-sided"``: the difference of both (signed, the parts do not overlap).

    Returns
    -------
    ndarray
        ``TFCE(v) = sum_{k >= 1, k dh <= t(v)} e(k dh, v)^E (k dh)^H dh``, where ``e(h, v)`` is
        the number of voxels of the cluster of ``{t >= h}`` containing ``v``.
    """
    data = np.nan_to_num(np.asarray(volume, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    if data.ndim != 3:
        raise ValueError(f"volume must be 3-D, got shape {data.shape}")
    if tail not in TAILS:
        raise ValueError(f"tail must be one of {TAILS}, got {tail!r}")
    params = params or TFCEParams()
    return _tfce_core(tail_part(data, tail), params, connectivity_structure(connectivity))


def max_tfce(volume: np.ndarray, params: TFCEParams, structure: np.ndarray, tail: str) -> float:
    """Return ``max |TFCE|`` of a 3-D statistic image (computed at its regional extrema only).

    Parameters
    ----------
    volume : ndarray, 3-D
        Finite statistic image.
    params : TFCEParams
        ``H``, ``E`` and ``dh``.
    structure : ndarray
        Neighbourhood from :func:`connectivity_structure`.
    tail : {"two-sided", "greater", "less"}
        Part of the image enhanced (see :func:`tfce_transform`).

    Returns
    -------
    float
        The maximum of ``|tfce_transform(volume)|``.
    """
    return float(_tfce_core(tail_part(volume, tail), params, structure, peaks_only=True))


def signed_parts(tail: str) -> tuple[int, ...]:
    """Return the signs whose clusters a tail looks at."""
    return {"two-sided": (1, -1), "greater": (1,), "less": (-1,)}[tail]


def cluster_labels(
    volume: np.ndarray, threshold: float, sign: int, structure: np.ndarray
) -> tuple[np.ndarray, int]:
    """Label the clusters of ``sign * volume >= threshold``; return the labels and their count."""
    return ndimage.label(sign * volume >= threshold, structure)


def max_cluster_mass(
    volume: np.ndarray, threshold: float, tail: str, structure: np.ndarray
) -> float:
    """Return the largest cluster mass (sum of ``|t|``) of the clusters of a tail, 0 if none."""
    best = 0.0
    for sign in signed_parts(tail):
        labels, count = cluster_labels(volume, threshold, sign, structure)
        if count:
            mass = np.bincount(labels.ravel(), weights=np.abs(volume).ravel())[1:]
            best = max(best, float(mass.max()))
    return best
