"""Raster figures of the reports: slice mosaics of a map and edge overlays (registration checks).

Figures are ``uint8`` RGB arrays built with numpy (encode them with
:func:`aslmig.reports.png.encode_png`), one image pixel per display pixel, so that a voxel stays
a sharp square; the only text, the orientation letters, is drawn with matplotlib's font
renderer (:func:`orientation_letter`).

Orientation
-----------
Volumes are expected in **RAS+ voxel order**: array axis 0 runs from the subject's left to
right, axis 1 from posterior to anterior, axis 2 from inferior to superior (as returned by
``nibabel.as_closest_canonical(img).get_fdata()``; see :func:`canonical_volume`). Slices are
displayed in the neurological convention:

============  ==========  ==========================  =========================
``axis``      view        image up                    image left -> right
============  ==========  ==========================  =========================
2             axial       anterior                    subject left -> right
1             coronal     superior                    subject left -> right
0             sagittal    superior                    posterior -> anterior
============  ==========  ==========================  =========================

Mosaic tiles run in increasing slice index (inferior to superior, posterior to anterior, left
to right) from the top-left tile, row by row. With ``annotate=True`` the first tile carries
the letters of its left and right edges (``L``/``R`` or ``P``/``A``).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from pathlib import Path
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

from aslmig.reports.colormaps import BACKGROUND, apply_cmap, robust_range

#: Default colour of edges drawn by :func:`edge_overlay`.
EDGE_COLOR = (255, 70, 0)
#: Gap between mosaic tiles, pixels.
TILE_GAP = 2
#: Automatic upsampling aims for tiles at least this many pixels on their longer side.
MIN_TILE_PX = 160
#: Upper bound of the automatic upsampling factor.
MAX_AUTO_ZOOM = 8
#: Letters of the left and right edges of a tile, by slicing axis.
EDGE_LETTERS = MappingProxyType({0: ("P", "A"), 1: ("L", "R"), 2: ("L", "R")})


def canonical_volume(img: object) -> tuple[np.ndarray, tuple[float, float, float]]:
    """Return the data of a nibabel image in RAS+ voxel order, and its voxel size.

    Parameters
    ----------
    img : nibabel spatial image
        A 3-D image (a 4-D image is averaged over its last axis).

    Returns
    -------
    data : ndarray of float
        The reoriented data.
    voxel_size : tuple of float
        Voxel size in mm along the three RAS axes.
    """
    import nibabel as nib

    canonical = nib.as_closest_canonical(img)
    data = np.asarray(canonical.get_fdata(dtype=np.float32))
    if data.ndim == 4:
        data = data.mean(axis=3)
    zooms = tuple(float(z) for z in canonical.header.get_zooms()[:3])
    return data, zooms  # type: ignore[return-value]


def _check_volume(volume: ArrayLike, name: str) -> np.ndarray:
    data = np.asarray(volume)
    if data.ndim != 3 or min(data.shape) == 0:
        raise ValueError(f"{name} must be a non-empty 3-D array, got shape {data.shape}")
    return data


def _check_axis(axis: int) -> int:
    if axis not in (0, 1, 2):
        raise ValueError(f"axis must be 0 (sagittal), 1 (coronal) or 2 (axial), got {axis!r}")
    return axis


def _check_mask(mask: ArrayLike | None, shape: tuple[int, ...]) -> np.ndarray | None:
    if mask is None:
        return None
    array = np.asarray(mask)
    if array.shape != shape:
        raise ValueError(f"mask shape {array.shape} does not match the volume shape {shape}")
    return array.astype(bool)


def select_slices(
    volume: ArrayLike, n_slices: int = 12, axis: int = 2, mask: ArrayLike | None = None
) -> list[int]:
    """Choose evenly spaced slice indices across the extent of the data.

    Parameters
    ----------
    volume : array_like, 3-D
        The image; its finite non-zero voxels define the extent when no mask is given.
    n_slices : int, optional
        How many slices (fewer when the extent is shorter).
    axis : int, optional
        Slicing axis (0 sagittal, 1 coronal, 2 axial).
    mask : array_like of bool, optional
        Voxels defining the extent.

    Returns
    -------
    list of int
        Increasing slice indices. Within an extent longer than ``n_slices`` the outermost
        slices are skipped (they usually show little).
    """
    data = _check_volume(volume, "volume")
    _check_axis(axis)
    if n_slices < 1:
        raise ValueError(f"n_slices must be at least 1, got {n_slices}")
    support = _check_mask(mask, data.shape)
    if support is None:
        numeric = data.astype(float)
        support = np.isfinite(numeric) & (numeric != 0)
    other = tuple(a for a in range(3) if a != axis)
    present = np.flatnonzero(support.any(axis=other))
    low, high = (present[0], present[-1]) if present.size else (0, data.shape[axis] - 1)
    if high - low + 1 <= n_slices:
        return list(range(int(low), int(high) + 1))
    picks = np.round(np.linspace(low, high, n_slices + 2)[1:-1]).astype(int)
    return sorted({int(k) for k in picks})


def _check_slices(slices: Sequence[int], length: int) -> list[int]:
    chosen = [int(k) for k in slices]
    if not chosen or any(not 0 <= k < length for k in chosen):
        raise ValueError(f"slices must be a non-empty list of indices in [0, {length - 1}]")
    return chosen


def _shown_slices(
    volume: np.ndarray,
    n_slices: int,
    axis: int,
    support: np.ndarray | None,
    slices: Sequence[int] | None,
) -> list[int]:
    """Return the explicit ``slices`` (checked), else :func:`select_slices`'s choice."""
    if slices is None:
        return select_slices(volume, n_slices, axis, support)
    return _check_slices(slices, volume.shape[axis])


def _display_range(
    volume: np.ndarray, support: np.ndarray | None, vmin: float | None, vmax: float | None
) -> tuple[float, float]:
    """Return the given limits, each defaulting to the volume's robust range."""
    low, high = robust_range(volume, support)
    return (low if vmin is None else float(vmin)), (high if vmax is None else float(vmax))


def oriented_slice(volume: np.ndarray, index: int, axis: int) -> np.ndarray:
    """Return one slice of a RAS+ volume as displayed (see the module's orientation table).

    Parameters
    ----------
    volume : ndarray, 3-D
        RAS+ ordered data.
    index : int
        Slice index along ``axis``.
    axis : int
        Slicing axis.

    Returns
    -------
    ndarray, 2-D
        Row 0 is the top of the picture (anterior for axial, superior otherwise).
    """
    plane = np.take(volume, index, axis=axis)
    return plane.T[::-1, :]


def pixel_factors(
    shape: tuple[int, ...],
    axis: int,
    zoom: int | None = None,
    voxel_size: Sequence[float] | None = None,
) -> tuple[int, int]:
    """Return the integer upsampling factors (rows, columns) of a displayed slice.

    Parameters
    ----------
    shape : tuple of int
        Volume shape.
    axis : int
        Slicing axis.
    zoom : int, optional
        Pixels per voxel along the finer in-plane axis; by default the smallest factor
        (at most :data:`MAX_AUTO_ZOOM`) giving tiles of :data:`MIN_TILE_PX` pixels.
    voxel_size : sequence of float, optional
        Voxel size (mm) per axis; anisotropic voxels then get proportionally more pixels along
        their longer side (rounded to an integer ratio).

    Returns
    -------
    tuple of int
        ``(row_factor, column_factor)``, each >= 1.
    """
    col_axis, row_axis = (a for a in range(3) if a != axis)
    ratio_col, ratio_row = 1.0, 1.0
    if voxel_size is not None:
        size_col, size_row = float(voxel_size[col_axis]), float(voxel_size[row_axis])
        if size_col <= 0 or size_row <= 0:
            raise ValueError(f"voxel sizes must be positive, got {tuple(voxel_size)}")
        finer = min(size_col, size_row)
        ratio_col, ratio_row = size_col / finer, size_row / finer
    if zoom is None:
        longest = max(shape[col_axis] * ratio_col, shape[row_axis] * ratio_row)
        zoom = int(min(MAX_AUTO_ZOOM, max(1, math.ceil(MIN_TILE_PX / longest))))
    if int(zoom) < 1:
        raise ValueError(f"zoom must be a positive integer, got {zoom}")
    return max(1, round(zoom * ratio_row)), max(1, round(zoom * ratio_col))


def _upsample(image: np.ndarray, row_factor: int, col_factor: int) -> np.ndarray:
    return np.repeat(np.repeat(image, row_factor, axis=0), col_factor, axis=1)


def _tile(tiles: list[np.ndarray], ncols: int | None) -> np.ndarray:
    """Arrange equally shaped RGB tiles in a grid, row by row, separated by gaps."""
    count = len(tiles)
    columns = min(count, 6) if ncols is None else max(1, min(int(ncols), count))
    rows = math.ceil(count / columns)
    height, width = tiles[0].shape[:2]
    canvas = np.zeros(
        (rows * height + (rows - 1) * TILE_GAP, columns * width + (columns - 1) * TILE_GAP, 3),
        dtype=np.uint8,
    )
    canvas[...] = BACKGROUND
    for number, tile in enumerate(tiles):
        top = (number // columns) * (height + TILE_GAP)
        left = (number % columns) * (width + TILE_GAP)
        canvas[top : top + height, left : left + width] = tile
    return canvas


#: Font of the orientation letters (shipped with matplotlib).
LETTER_FONT = "DejaVuSans-Bold.ttf"
#: Height of a capital letter in DejaVu Sans Bold, as a fraction of the font size.
_CAP_HEIGHT = 0.73


@functools.cache
def orientation_letter(letter: str, height: int) -> np.ndarray:
    """Return a letter as an anti-aliased coverage bitmap (matplotlib's FreeType renderer).

    Parameters
    ----------
    letter : str
        One character.
    height : int
        Wanted height of a capital letter, pixels.

    Returns
    -------
    ndarray of float, shape (rows, columns)
        Coverage in [0, 1], trimmed to the letter's ink.
    """
    import matplotlib
    from matplotlib.ft2font import FT2Font

    font = FT2Font(str(Path(matplotlib.get_data_path()) / "fonts" / "ttf" / LETTER_FONT))
    font.set_size(height / _CAP_HEIGHT, 72)
    font.set_text(letter, 0.0)
    font.draw_glyphs_to_bitmap(antialiased=True)
    coverage = np.asarray(font.get_image(), dtype=float) / 255.0
    rows, columns = np.nonzero(coverage)
    if rows.size:
        coverage = coverage[rows.min() : rows.max() + 1, columns.min() : columns.max() + 1]
    coverage.setflags(write=False)
    return coverage


def _stamp(canvas: np.ndarray, letter: str, top: int, left: int, height: int) -> int:
    """Draw a letter in light grey with a dark shadow, in place; return its width."""
    coverage = orientation_letter(letter, height)
    shadow = max(1, height // 7)
    for offset, color in ((shadow, (0, 0, 0)), (0, (235, 235, 235))):
        region = canvas[top + offset : top + offset + coverage.shape[0],
                        left + offset : left + offset + coverage.shape[1]]  # fmt: skip
        alpha = coverage[: region.shape[0], : region.shape[1], np.newaxis]
        region[...] = np.round(region * (1 - alpha) + np.array(color) * alpha).astype(np.uint8)
    return coverage.shape[1]


def _annotate(canvas: np.ndarray, tile_shape: tuple[int, ...], axis: int) -> None:
    """Write the left/right edge letters into the bottom corners of the first tile."""
    height, width = tile_shape[:2]
    scale = max(1, min(height, width) // 64)
    letter_h, margin = 7 * scale, 2 * scale
    left_letter, right_letter = EDGE_LETTERS[axis]
    letters_w = sum(orientation_letter(c, letter_h).shape[1] for c in (left_letter, right_letter))
    if width < letters_w + 4 * margin + 2 * scale or height < letter_h + 3 * margin:
        return
    top = height - letter_h - 2 * margin
    _stamp(canvas, left_letter, top, margin, letter_h)
    right_w = orientation_letter(right_letter, letter_h).shape[1]
    _stamp(canvas, right_letter, top, width - right_w - 2 * margin, letter_h)


# --------------------------------------------------------------------------------------------
# Mosaics
# --------------------------------------------------------------------------------------------


def mosaic(
    volume: ArrayLike,
    n_slices: int = 12,
    axis: int = 2,
    vmin: float | None = None,
    vmax: float | None = None,
    cmap: str | np.ndarray = "perfusion",
    mask: ArrayLike | None = None,
    *,
    slices: Sequence[int] | None = None,
    ncols: int | None = None,
    zoom: int | None = None,
    voxel_size: Sequence[float] | None = None,
    annotate: bool = True,
) -> np.ndarray:
    """Render slices of a 3-D map as a grid of coloured tiles.

    Parameters
    ----------
    volume : array_like, 3-D
        RAS+ ordered data (see the module docstring for the displayed orientation).
    n_slices : int, optional
        Number of slices (default 12), chosen by :func:`select_slices`.
    axis : int, optional
        Slicing axis: 2 axial (default), 1 coronal, 0 sagittal.
    vmin, vmax : float, optional
        Colour limits; by default the 2nd and 98th percentiles (:func:`robust_range`).
    cmap : str or ndarray, optional
        Colour map (default ``"perfusion"``).
    mask : array_like of bool, optional
        Voxels outside it are drawn in the background colour; it also bounds the slices.
    slices : sequence of int, optional
        Explicit slice indices, instead of ``n_slices``.
    ncols : int, optional
        Tiles per row (default ``min(n, 6)``).
    zoom : int, optional
        Integer pixels per voxel (default: automatic, see :func:`pixel_factors`).
    voxel_size : sequence of float, optional
        Voxel size in mm, to keep the aspect ratio of anisotropic voxels.
    annotate : bool, optional
        Write the edge letters into the first tile (default True).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        The mosaic. Non-finite voxels are background.
    """
    data = _check_volume(volume, "volume").astype(float)
    _check_axis(axis)
    support = _check_mask(mask, data.shape)
    chosen = _shown_slices(data, n_slices, axis, support, slices)
    low, high = _display_range(data, support, vmin, vmax)
    factors = pixel_factors(data.shape, axis, zoom, voxel_size)
    tiles = []
    for index in chosen:
        plane = oriented_slice(data, index, axis)
        rgb = apply_cmap(plane, low, high, cmap)
        if support is not None:
            rgb[~oriented_slice(support, index, axis)] = BACKGROUND
        tiles.append(_upsample(rgb, *factors))
    canvas = _tile(tiles, ncols)
    if annotate:
        _annotate(canvas, tiles[0].shape, axis)
    return canvas


def _is_binary(volume: np.ndarray) -> bool:
    if volume.dtype == bool:
        return True
    values = np.unique(volume[np.isfinite(volume)])
    return values.size <= 2 and bool(np.all(np.isin(values, (0, 1))))


def _inner_boundary(inside: np.ndarray, frame: bool = True) -> np.ndarray:
    """Return the pixels of a binary picture with a 4-neighbour outside it.

    With ``frame=False`` the picture's own border does not count as outside (a region cut by
    the field of view is not outlined along the cut).
    """
    cross = ndimage.generate_binary_structure(2, 1)
    eroded = ndimage.binary_erosion(inside, structure=cross, border_value=0 if frame else 1)
    return inside & ~eroded


def _mask_edges(plane: np.ndarray, factors: tuple[int, int]) -> np.ndarray:
    """Return the one-pixel inner boundary of an upsampled binary slice."""
    return _inner_boundary(_upsample(np.nan_to_num(plane) > 0, *factors))


def _linear_upsample(plane: np.ndarray, factors: tuple[int, int]) -> np.ndarray:
    """Return a slice linearly interpolated onto the display pixels (centres aligned)."""
    return ndimage.zoom(
        np.nan_to_num(plane.astype(float)), factors, order=1, grid_mode=True, mode="nearest"
    )


def _gradient_magnitude(plane: np.ndarray, factors: tuple[int, int]) -> np.ndarray:
    """Return the Sobel gradient magnitude of a linearly upsampled slice."""
    smooth = _linear_upsample(plane, factors)
    return np.hypot(ndimage.sobel(smooth, axis=0), ndimage.sobel(smooth, axis=1))


def _edge_maps(
    planes: list[np.ndarray], mode: str, factors: tuple[int, int], percentile: float
) -> list[np.ndarray]:
    if mode == "mask":
        return [_mask_edges(plane, factors) for plane in planes]
    magnitudes = [_gradient_magnitude(plane, factors) for plane in planes]
    pooled = np.concatenate([m[m > 0] for m in magnitudes] + [np.zeros(1)])
    threshold = np.percentile(pooled, percentile) if pooled.size > 1 else np.inf
    return [(m >= threshold) & (m > 0) for m in magnitudes]


def edge_overlay(
    background: ArrayLike,
    moving: ArrayLike,
    n_slices: int = 12,
    axis: int = 2,
    *,
    edges: str = "auto",
    color: tuple[int, int, int] = EDGE_COLOR,
    vmin: float | None = None,
    vmax: float | None = None,
    mask: ArrayLike | None = None,
    slices: Sequence[int] | None = None,
    ncols: int | None = None,
    zoom: int | None = None,
    voxel_size: Sequence[float] | None = None,
    edge_percentile: float = 90.0,
    annotate: bool = True,
) -> np.ndarray:
    """Draw the edges of one image in colour over another in grey (registration check).

    Parameters
    ----------
    background : array_like, 3-D
        Image shown in grey (e.g. the T1w or the template), RAS+ ordered.
    moving : array_like, 3-D
        Image whose edges are drawn, on the same grid (e.g. the ASL reference or its brain
        mask resampled into the background's space).
    n_slices, axis, slices, ncols, zoom, voxel_size, annotate
        As in :func:`mosaic`.
    edges : {"auto", "mask", "gradient"}, optional
        ``"mask"``: the one-pixel in-plane boundary of ``moving > 0``; ``"gradient"``: pixels
        whose Sobel gradient magnitude (of the linearly upsampled slice) reaches the
        ``edge_percentile`` of the non-zero magnitudes over the shown slices; ``"auto"``
        (default): ``"mask"`` for boolean or 0/1 images, else ``"gradient"``.
    color : tuple of int, optional
        Edge colour (default :data:`EDGE_COLOR`).
    vmin, vmax : float, optional
        Grey limits of the background (default: its robust range).
    mask : array_like of bool, optional
        Bounds the slice selection (default: non-zero voxels of ``moving``).
    edge_percentile : float, optional
        Threshold of gradient edges (default 90).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        The overlay mosaic.
    """
    back = _check_volume(background, "background").astype(float)
    front = _check_volume(moving, "moving")
    if front.shape != back.shape:
        raise ValueError(
            f"moving shape {front.shape} differs from background shape {back.shape}; resample "
            "both onto one grid first"
        )
    if edges not in ("auto", "mask", "gradient"):
        raise ValueError(f"edges must be 'auto', 'mask' or 'gradient', got {edges!r}")
    mode = ("mask" if _is_binary(front) else "gradient") if edges == "auto" else edges
    _check_axis(axis)
    support = _check_mask(mask, back.shape)
    chosen = _shown_slices(front, n_slices, axis, support, slices)
    low, high = _display_range(back, None, vmin, vmax)
    factors = pixel_factors(back.shape, axis, zoom, voxel_size)
    front_planes = [oriented_slice(front, k, axis).astype(float) for k in chosen]
    edge_maps = _edge_maps(front_planes, mode, factors, edge_percentile)
    lines = [[(edge, color)] for edge in edge_maps]
    return _lines_over_grey(back, chosen, axis, (low, high), factors, lines, ncols, annotate)


def contour_pixels(plane: np.ndarray, level: float, factors: tuple[int, int]) -> np.ndarray:
    """Return the display pixels of the ``level`` iso-line of a slice.

    The slice is linearly interpolated onto the display pixels (the interpolant whose
    iso-lines marching squares would trace) and the one-pixel inner boundary of
    ``value >= level`` is the line; so the line moves smoothly, by fractions of a voxel, as the
    map moves, unlike the blocky outline of the voxels above the level. A map cut by the field
    of view is not outlined along the cut.

    Parameters
    ----------
    plane : ndarray, 2-D
        A displayed slice (:func:`oriented_slice`), e.g. a tissue probability map.
    level : float
        Iso-value (0.5 for the border of a tissue probability map).
    factors : tuple of int
        Display pixels per voxel (rows, columns), :func:`pixel_factors`.

    Returns
    -------
    ndarray of bool
        The line's pixels, shape ``(rows * factors[0], columns * factors[1])``.
    """
    return _inner_boundary(_linear_upsample(plane, factors) >= level, frame=False)


def contour_overlay(
    background: ArrayLike,
    boundaries: Sequence[tuple[ArrayLike, tuple[int, int, int]]],
    n_slices: int = 6,
    axis: int = 2,
    *,
    level: float = 0.5,
    vmin: float | None = None,
    vmax: float | None = None,
    mask: ArrayLike | None = None,
    slices: Sequence[int] | None = None,
    ncols: int | None = None,
    zoom: int | None = None,
    voxel_size: Sequence[float] | None = None,
    annotate: bool = True,
) -> np.ndarray:
    """Draw iso-lines of maps (e.g. tissue borders) in colour over an image in grey.

    The registration check of the participant report, in the manner of the nipreps reports'
    anatomical contours over the functional reference: tissue probability maps carried onto
    the ASL grid by the registration are outlined at ``level`` over the ASL reference or the
    CBF map; a misregistration shows as lines that cut across the image's own edges.

    Parameters
    ----------
    background : array_like, 3-D
        Image shown in grey, RAS+ ordered (see the module docstring).
    boundaries : sequence of (array_like, colour)
        Maps on the same grid and the RGB colour of their iso-line; later maps are drawn on
        top.
    n_slices, axis, slices, ncols, zoom, voxel_size, annotate
        As in :func:`mosaic` (default 6 slices).
    level : float, optional
        Iso-value of the lines (default 0.5).
    vmin, vmax : float, optional
        Grey limits of the background (default: its robust range within ``mask``).
    mask : array_like of bool, optional
        Bounds the slice selection and the robust range (default: non-zero background).

    Returns
    -------
    ndarray of uint8, shape (H, W, 3)
        The overlay mosaic.
    """
    back = _check_volume(background, "background").astype(float)
    maps = [
        (_check_volume(volume, "boundary map").astype(float), color) for volume, color in boundaries
    ]
    if not maps or any(volume.shape != back.shape for volume, _ in maps):
        raise ValueError(
            f"boundaries must hold at least one map on the background's grid {back.shape}"
        )
    _check_axis(axis)
    support = _check_mask(mask, back.shape)
    chosen = _shown_slices(back, n_slices, axis, support, slices)
    low, high = _display_range(back, support, vmin, vmax)
    factors = pixel_factors(back.shape, axis, zoom, voxel_size)
    lines = [
        [(contour_pixels(oriented_slice(volume, index, axis), level, factors), color)
         for volume, color in maps]
        for index in chosen
    ]  # fmt: skip
    return _lines_over_grey(back, chosen, axis, (low, high), factors, lines, ncols, annotate)


def _lines_over_grey(
    back: np.ndarray,
    chosen: Sequence[int],
    axis: int,
    grey_range: tuple[float, float],
    factors: tuple[int, int],
    lines: Sequence[Sequence[tuple[np.ndarray, tuple[int, int, int]]]],
    ncols: int | None,
    annotate: bool,
) -> np.ndarray:
    """Tile the chosen slices of ``back`` in grey with each tile's (pixels, colour) lines."""
    tiles = []
    for index, tile_lines in zip(chosen, lines, strict=True):
        tile = _upsample(apply_cmap(oriented_slice(back, index, axis), *grey_range, "grey"),
                         *factors)  # fmt: skip
        for pixels, color in tile_lines:
            tile[pixels] = color
        tiles.append(tile)
    canvas = _tile(tiles, ncols)
    if annotate:
        _annotate(canvas, tiles[0].shape, axis)
    return canvas
