"""Group-report figure: a z map mosaic with the outlines of labelled regions (territories)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike

from aslmig.reports.mosaics import mosaic, select_slices

#: Outline colour of :func:`territory_overlay`.
OUTLINE_COLOR = (0, 0, 0)


def territory_overlay(
    zmap: ArrayLike,
    labels: ArrayLike,
    *,
    vmax: float = 4.0,
    mask: ArrayLike | None = None,
    n_slices: int = 12,
    axis: int = 2,
    slices: Sequence[int] | None = None,
    ncols: int | None = None,
    zoom: int | None = None,
    color: tuple[int, int, int] = OUTLINE_COLOR,
    annotate: bool = True,
) -> np.ndarray:
    """Return a z-map mosaic (diverging colours) with the outlines of labelled regions.

    Parameters
    ----------
    zmap : array_like, 3-D
        The z map, RAS+ voxel order (see :mod:`aslmig.reports.mosaics`).
    labels : array_like of int, 3-D
        Integer label image on the same grid (e.g. vascular territories); 0 is background.
        At most 255 distinct non-zero labels.
    vmax : float, optional
        Colour limits ``[-vmax, vmax]`` (default 4).
    mask : array_like of bool, optional
        Voxels shown (default: the finite voxels of the z map).
    n_slices, axis, slices, ncols, zoom, annotate
        As in :func:`aslmig.reports.mosaics.mosaic`.
    color : tuple of int, optional
        Outline colour.

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        The mosaic; each label's in-plane inner boundary is drawn one pixel wide.
    """
    z = np.asarray(zmap, dtype=float)
    codes = _label_codes(labels, z.shape)
    support = np.isfinite(z) if mask is None else np.asarray(mask, dtype=bool)
    chosen = list(slices) if slices is not None else select_slices(z, n_slices, axis, support)
    common = {"axis": axis, "slices": chosen, "ncols": ncols, "zoom": zoom}
    canvas = mosaic(
        z, vmin=-vmax, vmax=vmax, cmap="diverging", mask=support, annotate=annotate, **common
    )
    rendered = mosaic(codes, vmin=0.0, vmax=255.0, cmap="grey", annotate=False, **common)[:, :, 0]
    canvas[_outline(rendered)] = color
    return canvas


def _label_codes(labels: ArrayLike, shape: tuple[int, ...]) -> np.ndarray:
    """Return labels renumbered 1..K (0 stays background) as floats."""
    array = np.asarray(labels)
    if array.shape != shape:
        raise ValueError(f"labels shape {array.shape} differs from the z map {shape}")
    values = np.unique(array[array != 0])
    if values.size > 255:
        raise ValueError(f"at most 255 labels can be outlined, got {values.size}")
    codes = np.zeros(shape)
    codes[array != 0] = np.searchsorted(values, array[array != 0]) + 1
    return codes


def _outline(codes: np.ndarray) -> np.ndarray:
    """Return labelled pixels with a 4-neighbour of another code."""
    padded = np.pad(codes, 1, mode="edge")
    centre = padded[1:-1, 1:-1]
    differs = (
        (padded[:-2, 1:-1] != centre)
        | (padded[2:, 1:-1] != centre)
        | (padded[1:-1, :-2] != centre)
        | (padded[1:-1, 2:] != centre)
    )
    return differs & (codes > 0)
