"""Hemispheric asymmetry maps: the left-right mirror of a template grid and the asymmetry index.

numpy only; the equations are in ``docs/group-voxelwise.md`` section 8.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike


def mirror_index(affine: ArrayLike, size: int, *, midline_tolerance: float = 0.0) -> np.ndarray:
    """Return, for each index along voxel axis 0, the index of its mirror image across x = 0.

    Parameters
    ----------
    affine : array_like, shape (4, 4)
        Voxel-to-world matrix; voxel axis 0 must map to world x alone (no rotation or shear
        mixing x with the other axes).
    size : int
        Number of voxels along axis 0.
    midline_tolerance : float, optional
        Largest accepted distance, in voxels, between the midline ``x = 0`` and the nearest voxel
        centre or boundary (default 0: the midline must be one, up to 1e-6 voxel).

    Returns
    -------
    ndarray of int, shape (size,)
        Mirror index ``m - i`` (``m`` = twice the midline index), or -1 where the mirror is
        outside the grid.

    Raises
    ------
    ValueError
        If axis 0 is not aligned with x, or the midline is neither a voxel centre nor a voxel
        boundary within the tolerance.
    """
    matrix = np.asarray(affine, dtype=float)
    if matrix.shape != (4, 4):
        raise ValueError(f"affine must be 4 x 4, got {matrix.shape}")
    scale = matrix[0, 0]
    off_axis = np.abs([matrix[0, 1], matrix[0, 2], matrix[1, 0], matrix[2, 0]]).max()
    if abs(scale) < 1e-12 or off_axis > 1e-6 * abs(scale):
        raise ValueError(
            "voxel axis 0 must map to world x alone to flip left and right by an index flip; "
            f"got affine rows {matrix[:3].tolist()}"
        )
    twice_midline = -2.0 * matrix[0, 3] / scale
    low, high = math.floor(twice_midline), math.ceil(twice_midline)
    near = min((low, high), key=lambda m: (abs(twice_midline - m), abs(m - (size - 1))))
    error = abs(twice_midline - near) / 2
    if error > max(midline_tolerance, 1e-6):
        raise ValueError(
            f"the midline x = 0 falls at voxel index {twice_midline / 2:g} along axis 0, "
            f"{error:g} voxel ({error * abs(scale):g} mm) from the nearest voxel centre or "
            "boundary, so the left-right flip is not a voxel-index flip on this grid; resample "
            "to a grid symmetric about x = 0, or accept the error with "
            f"midline_tolerance >= {error:g}"
        )
    mirror = near - np.arange(size)
    return np.where((mirror >= 0) & (mirror < size), mirror, -1)


def flip_x(volume: ArrayLike, affine: ArrayLike, *, midline_tolerance: float = 0.0) -> np.ndarray:
    """Return a 3-D volume mirrored across x = 0 (NaN where the mirror is off the grid).

    Parameters
    ----------
    volume : array_like, 3-D
        Image on the grid of ``affine``.
    affine : array_like, shape (4, 4)
        Its voxel-to-world matrix (see :func:`mirror_index`).
    midline_tolerance : float, optional
        See :func:`mirror_index`.

    Returns
    -------
    ndarray of float
        ``out[i, j, k] = volume[mirror(i), j, k]``.
    """
    data = np.asarray(volume, dtype=float)
    if data.ndim != 3:
        raise ValueError(f"volume must be 3-D, got shape {data.shape}")
    mirror = mirror_index(affine, data.shape[0], midline_tolerance=midline_tolerance)
    out = data[np.maximum(mirror, 0)]
    out[mirror < 0] = np.nan
    return out


def asymmetry_map(
    volume: ArrayLike,
    affine: ArrayLike,
    mask: ArrayLike | None = None,
    *,
    midline_tolerance: float = 0.0,
) -> np.ndarray:
    """Return the hemispheric asymmetry index ``2 (v - v_flipped) / (v + v_flipped)``.

    Parameters
    ----------
    volume : array_like, 3-D
        A map on a left-right symmetric template grid (e.g. CBF in MNI152NLin2009aSym).
    affine : array_like, shape (4, 4)
        Its voxel-to-world matrix; the flip is across x = 0 (see :func:`mirror_index`).
    mask : array_like of bool, optional
        Voxels to keep (both a voxel and its mirror must be inside); NaN elsewhere.
    midline_tolerance : float, optional
        See :func:`mirror_index`.

    Returns
    -------
    ndarray of float
        Positive where a voxel exceeds its mirror; antisymmetric; NaN where
        ``v + v_flipped <= 0``, outside the mask or off the grid.
    """
    data = np.asarray(volume, dtype=float)
    flipped = flip_x(data, affine, midline_tolerance=midline_tolerance)
    total = data + flipped
    with np.errstate(divide="ignore", invalid="ignore"):
        index = np.where(total > 0, 2.0 * (data - flipped) / total, np.nan)
    if mask is not None:
        keep = np.asarray(mask, dtype=bool)
        if keep.shape != data.shape:
            raise ValueError(f"mask shape {keep.shape} differs from the volume {data.shape}")
        keep = keep & flip_x(keep, affine, midline_tolerance=midline_tolerance).astype(bool)
        index[~keep] = np.nan
    return index
