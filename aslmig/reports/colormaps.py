"""Colour maps of the report figures: lookup tables, value-to-colour mapping, display range.

The maps are this package's own (a few control points, interpolated linearly in sRGB) so that
the figures need no plotting library at run time and look the same everywhere.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike

#: Control points (position in [0, 1], sRGB 0-255) of the colour maps, interpolated linearly
#: in sRGB to 256 entries. ``perfusion`` (dark violet -> blue -> teal -> green -> yellow) and
#: ``heat`` (near-black -> purple -> red -> orange -> pale yellow) are this package's own
#: sequential maps with monotonically increasing lightness; ``diverging`` runs
#: blue -> near-white -> red for signed maps (e.g. z-maps).
COLORMAP_CONTROL_POINTS: Mapping[str, tuple[tuple[float, tuple[int, int, int]], ...]] = (
    MappingProxyType(
        {
            "grey": ((0.0, (0, 0, 0)), (1.0, (255, 255, 255))),
            "perfusion": (
                (0.00, (40, 10, 70)),
                (0.25, (55, 85, 140)),
                (0.50, (35, 140, 140)),
                (0.75, (95, 195, 95)),
                (1.00, (250, 230, 40)),
            ),
            "heat": (
                (0.00, (5, 5, 20)),
                (0.25, (80, 15, 100)),
                (0.50, (180, 50, 80)),
                (0.75, (240, 130, 30)),
                (1.00, (252, 250, 170)),
            ),
            "diverging": (
                (0.00, (30, 60, 160)),
                (0.50, (245, 245, 245)),
                (1.00, (175, 25, 35)),
            ),
        }
    )
)
#: Number of entries of each lookup table.
LUT_SIZE = 256
#: Colour of pixels outside the mask or without a finite value.
BACKGROUND = (0, 0, 0)


def _build_lut(points: Sequence[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    """Interpolate colour control points to a read-only ``(LUT_SIZE, 3)`` uint8 table."""
    positions = np.array([p for p, _ in points], dtype=float)
    colors = np.array([c for _, c in points], dtype=float)
    grid = np.linspace(0.0, 1.0, LUT_SIZE)
    lut = np.stack([np.interp(grid, positions, colors[:, i]) for i in range(3)], axis=1)
    lut = np.round(lut).astype(np.uint8)
    lut.setflags(write=False)
    return lut


#: The lookup tables, ``(256, 3)`` uint8, by name.
COLORMAPS: Mapping[str, np.ndarray] = MappingProxyType(
    {name: _build_lut(points) for name, points in COLORMAP_CONTROL_POINTS.items()}
)


def get_cmap(cmap: str | np.ndarray) -> np.ndarray:
    """Return a colour lookup table.

    Parameters
    ----------
    cmap : str or ndarray
        A name from :data:`COLORMAPS`, or an ``(N, 3)`` uint8 table (N >= 2).

    Returns
    -------
    ndarray of uint8, shape (N, 3)
        The lookup table.

    Raises
    ------
    ValueError
        Unknown name or malformed table.
    """
    if isinstance(cmap, str):
        if cmap not in COLORMAPS:
            raise ValueError(f"unknown colour map {cmap!r}; choose one of {sorted(COLORMAPS)}")
        return COLORMAPS[cmap]
    lut = np.asarray(cmap)
    if lut.ndim != 2 or lut.shape[1] != 3 or lut.shape[0] < 2 or lut.dtype != np.uint8:
        raise ValueError(
            f"a colour map table must be (N >= 2, 3) uint8, got {lut.shape} {lut.dtype}"
        )
    return lut


def apply_cmap(
    values: ArrayLike,
    vmin: float,
    vmax: float,
    cmap: str | np.ndarray = "grey",
    nan_color: tuple[int, int, int] = BACKGROUND,
) -> np.ndarray:
    """Map values to RGB through a lookup table, clipping to ``[vmin, vmax]``.

    Parameters
    ----------
    values : array_like
        Any shape.
    vmin, vmax : float
        Values mapped to the first and last colour (``vmax > vmin``).
    cmap : str or ndarray, optional
        Colour map name or table (see :func:`get_cmap`).
    nan_color : tuple of int, optional
        Colour of non-finite values.

    Returns
    -------
    ndarray of uint8
        ``values.shape + (3,)``.
    """
    lut = get_cmap(cmap)
    if not vmax > vmin:
        raise ValueError(f"vmax ({vmax}) must be greater than vmin ({vmin})")
    data = np.asarray(values, dtype=float)
    finite = np.isfinite(data)
    scaled = (np.where(finite, data, vmin) - vmin) / (vmax - vmin)
    index = np.clip(np.round(scaled * (len(lut) - 1)), 0, len(lut) - 1).astype(np.intp)
    rgb = lut[index]
    rgb[~finite] = nan_color
    return rgb


def robust_range(
    volume: ArrayLike,
    mask: ArrayLike | None = None,
    percentiles: tuple[float, float] = (2.0, 98.0),
) -> tuple[float, float]:
    """Return display limits from percentiles of the finite (masked, else non-zero) values.

    Parameters
    ----------
    volume : array_like
        Image values.
    mask : array_like of bool, optional
        Voxels to consider; without it, the finite non-zero voxels.
    percentiles : tuple of float, optional
        Lower and upper percentile (default 2 and 98).

    Returns
    -------
    tuple of float
        ``(vmin, vmax)`` with ``vmax > vmin`` (``(0, 1)`` when there is no usable value).
    """
    data = np.asarray(volume, dtype=float)
    keep = np.isfinite(data) & (data != 0 if mask is None else np.asarray(mask, dtype=bool))
    if not keep.any():
        return 0.0, 1.0
    low, high = np.percentile(data[keep], percentiles)
    if not high > low:
        high = low + max(abs(low), 1.0)
    return float(low), float(high)
