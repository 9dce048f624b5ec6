"""Report figures from numpy arrays alone: colour maps, slice mosaics, edge overlays, SVG plots.

No plotting library is used. Raster figures are ``uint8`` RGB arrays (encode them with
:func:`aslmig.reports.png.encode_png`); the colour bar and line plots are inline SVG strings in
which every piece of text is XML-escaped.

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

import html
import math
from collections.abc import Callable, Mapping, Sequence
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike
from scipy import ndimage

# --------------------------------------------------------------------------------------------
# Colour maps
# --------------------------------------------------------------------------------------------

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


def _build_lut(points: Sequence[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    """Interpolate colour control points to a read-only ``(LUT_SIZE, 3)`` uint8 table."""
    positions = np.array([p for p, _ in points], dtype=float)
    colours = np.array([c for _, c in points], dtype=float)
    grid = np.linspace(0.0, 1.0, LUT_SIZE)
    lut = np.stack([np.interp(grid, positions, colours[:, i]) for i in range(3)], axis=1)
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


# --------------------------------------------------------------------------------------------
# Slices and tiles
# --------------------------------------------------------------------------------------------


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


# A 5 x 7 bitmap font for the orientation letters.
_GLYPHS = MappingProxyType(
    {
        "A": (" ### ", "#   #", "#   #", "#####", "#   #", "#   #", "#   #"),
        "P": ("#### ", "#   #", "#   #", "#### ", "#    ", "#    ", "#    "),
        "L": ("#    ", "#    ", "#    ", "#    ", "#    ", "#    ", "#####"),
        "R": ("#### ", "#   #", "#   #", "#### ", "# #  ", "#  # ", "#   #"),
        "S": (" ####", "#    ", "#    ", " ### ", "    #", "    #", "#### "),
        "I": (" ### ", "  #  ", "  #  ", "  #  ", "  #  ", "  #  ", " ### "),
    }
)


def _glyph(letter: str, scale: int) -> np.ndarray:
    bitmap = np.array([[c == "#" for c in row] for row in _GLYPHS[letter]], dtype=bool)
    return _upsample(bitmap, scale, scale)


def _stamp(canvas: np.ndarray, letter: str, top: int, left: int, scale: int) -> None:
    """Draw a letter in light grey with a dark shadow, in place."""
    bitmap = _glyph(letter, scale)
    height, width = bitmap.shape
    for offset, colour in ((scale, (0, 0, 0)), (0, (235, 235, 235))):
        region = canvas[top + offset : top + offset + height, left + offset : left + offset + width]
        region[bitmap[: region.shape[0], : region.shape[1]]] = colour


def _annotate(canvas: np.ndarray, tile_shape: tuple[int, ...], axis: int) -> None:
    """Write the left/right edge letters into the bottom corners of the first tile."""
    height, width = tile_shape[:2]
    scale = max(1, min(height, width) // 64)
    glyph_h, glyph_w, margin = 7 * scale, 5 * scale, 2 * scale
    if width < 2 * (glyph_w + 2 * margin) or height < glyph_h + 3 * margin:
        return
    left_letter, right_letter = EDGE_LETTERS[axis]
    top = height - glyph_h - 2 * margin
    _stamp(canvas, left_letter, top, margin, scale)
    _stamp(canvas, right_letter, top, width - glyph_w - 2 * margin, scale)


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
    chosen = (
        select_slices(data, n_slices, axis, support)
        if slices is None
        else _check_slices(slices, data.shape[axis])
    )
    low, high = robust_range(data, support)
    low = low if vmin is None else float(vmin)
    high = high if vmax is None else float(vmax)
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


def _mask_edges(plane: np.ndarray, factors: tuple[int, int]) -> np.ndarray:
    """Return the one-pixel inner boundary of an upsampled binary slice."""
    inside = _upsample(np.nan_to_num(plane) > 0, *factors)
    cross = ndimage.generate_binary_structure(2, 1)
    return inside & ~ndimage.binary_erosion(inside, structure=cross, border_value=0)


def _gradient_magnitude(plane: np.ndarray, factors: tuple[int, int]) -> np.ndarray:
    """Return the Sobel gradient magnitude of a linearly upsampled slice."""
    smooth = ndimage.zoom(
        np.nan_to_num(plane.astype(float)), factors, order=1, grid_mode=True, mode="nearest"
    )
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
    chosen = (
        select_slices(front, n_slices, axis, support)
        if slices is None
        else _check_slices(slices, back.shape[axis])
    )
    low, high = robust_range(back)
    low = low if vmin is None else float(vmin)
    high = high if vmax is None else float(vmax)
    factors = pixel_factors(back.shape, axis, zoom, voxel_size)
    front_planes = [oriented_slice(front, k, axis).astype(float) for k in chosen]
    tiles = []
    edge_maps = _edge_maps(front_planes, mode, factors, edge_percentile)
    for index, edge in zip(chosen, edge_maps, strict=True):
        tile = _upsample(apply_cmap(oriented_slice(back, index, axis), low, high, "grey"), *factors)
        tile[edge] = color
        tiles.append(tile)
    canvas = _tile(tiles, ncols)
    if annotate:
        _annotate(canvas, tiles[0].shape, axis)
    return canvas


# --------------------------------------------------------------------------------------------
# SVG: colour bar and line plots
# --------------------------------------------------------------------------------------------

#: Line colours of :func:`line_plot_svg`, in order of the series.
PLOT_COLORS = ("#1c7ed6", "#e8590c", "#2f9e44", "#7048e8", "#0c8599", "#8d5524")
#: Colour of the threshold line.
THRESHOLD_COLOR = "#c92a2a"
#: Maps a data coordinate to an SVG coordinate.
_Scale = Callable[[float], float]
_SVG_OPEN = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {w} {h}" width="{w}" height="{h}" '
    'role="img" font-family="Helvetica, Arial, sans-serif" font-size="11" class="{cls}">'
)


def _esc(text: object) -> str:
    """Escape text for XML/HTML content and double- or single-quoted attributes."""
    return html.escape(str(text), quote=True)


def _num(value: float) -> str:
    """Format an SVG coordinate compactly."""
    return f"{value:.1f}".rstrip("0").rstrip(".")


def nice_ticks(low: float, high: float, target: int = 5) -> list[float]:
    """Return round tick values within ``[low, high]``.

    Parameters
    ----------
    low, high : float
        The range (``high > low``).
    target : int, optional
        Approximate number of ticks.

    Returns
    -------
    list of float
        Multiples of 1, 2, 2.5 or 5 times a power of ten.
    """
    step = _tick_step(low, high, target)
    first = math.ceil(low / step - 1e-9)
    last = math.floor(high / step + 1e-9)
    return [round(k * step, 12) + 0.0 for k in range(first, last + 1)]


def _tick_step(low: float, high: float, target: int) -> float:
    raw = (high - low) / max(1, target)
    power = 10.0 ** math.floor(math.log10(raw))
    return next(m * power for m in (1, 2, 2.5, 5, 10) if m * power >= raw - 1e-12)


def _format_tick(value: float, step: float) -> str:
    decimals = max(0, -math.floor(math.log10(step) + 1e-9))
    if not math.isclose(round(step, decimals), step, rel_tol=1e-9):
        decimals += 1
    text = f"{value:.{decimals}f}"
    return "0" if float(text) == 0 else text


def _format_limit(value: float) -> str:
    """Format a colour limit with up to 4 significant digits, without exponent when possible."""
    text = f"{value:.4g}"
    if "e" in text and 1e-3 <= abs(value) < 1e6:
        text = f"{value:.3f}".rstrip("0").rstrip(".")
    return "0" if text in ("-0", "0.0") else text


def _colorbar_ticks(vmin: float, vmax: float, target: int) -> list[tuple[float, str]]:
    """Return (value, label) pairs: both limits, plus round values not too close to them."""
    step = _tick_step(vmin, vmax, target)
    room = 0.1 * (vmax - vmin)
    inner = [t for t in nice_ticks(vmin, vmax, target) if vmin + room < t < vmax - room]
    ends = [(vmin, _format_limit(vmin)), (vmax, _format_limit(vmax))]
    return [ends[0], *((t, _format_tick(t, step)) for t in inner), ends[1]]


def colorbar(
    vmin: float,
    vmax: float,
    cmap: str | np.ndarray = "perfusion",
    label: str = "",
    *,
    width: int = 360,
    height: int = 58,
    n_ticks: int = 5,
) -> str:
    """Return a horizontal colour bar as inline SVG.

    Parameters
    ----------
    vmin, vmax : float
        Limits of the colour map (as used for the mosaic).
    cmap : str or ndarray, optional
        Colour map.
    label : str, optional
        Quantity and units, e.g. ``"CBF (mL/100 g/min)"``; escaped.
    width, height : int, optional
        Size in pixels.
    n_ticks : int, optional
        Approximate number of tick labels.

    Returns
    -------
    str
        An ``<svg>`` element; values beyond the limits are shown in the end colours.
    """
    if not vmax > vmin:
        raise ValueError(f"vmax ({vmax}) must be greater than vmin ({vmin})")
    lut = get_cmap(cmap)
    left, right, bar_top, bar_h = 12.0, width - 12.0, 4.0, 16.0
    n_steps = 128
    step_w = (right - left) / n_steps
    parts = [_SVG_OPEN.format(w=width, h=height, cls="aslmig-colorbar")]
    parts.append(f"<title>{_esc(label or 'colour scale')}</title>")
    parts.append('<g shape-rendering="crispEdges">')
    for i in range(n_steps):
        r, g, b = lut[round(i / (n_steps - 1) * (len(lut) - 1))]
        parts.append(
            f'<rect x="{_num(left + i * step_w)}" y="{_num(bar_top)}" '
            f'width="{_num(step_w + 0.6)}" height="{_num(bar_h)}" fill="rgb({r},{g},{b})"/>'
        )
    parts.append("</g>")
    parts.append(
        f'<rect x="{_num(left)}" y="{_num(bar_top)}" width="{_num(right - left)}" '
        f'height="{_num(bar_h)}" fill="none" stroke="#444" stroke-width="0.8"/>'
    )
    for tick, text in _colorbar_ticks(vmin, vmax, n_ticks):
        x = left + (tick - vmin) / (vmax - vmin) * (right - left)
        y0 = bar_top + bar_h
        parts.append(
            f'<line x1="{_num(x)}" y1="{_num(y0)}" x2="{_num(x)}" y2="{_num(y0 + 4)}" '
            'stroke="#444" stroke-width="0.8"/>'
        )
        parts.append(
            f'<text x="{_num(x)}" y="{_num(y0 + 15)}" text-anchor="middle" '
            f'fill="#222">{_esc(text)}</text>'
        )
    if label:
        parts.append(
            f'<text x="{_num(width / 2)}" y="{_num(height - 4)}" text-anchor="middle" '
            f'fill="#222" font-weight="bold">{_esc(label)}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _series_arrays(series: Mapping[str, ArrayLike]) -> dict[str, np.ndarray]:
    arrays = {}
    for name, values in series.items():
        array = np.asarray(values, dtype=float)
        if array.ndim != 1:
            raise ValueError(f"series {name!r} must be one-dimensional, got shape {array.shape}")
        arrays[str(name)] = array
    return arrays


def _value_range(arrays: Mapping[str, np.ndarray], threshold: float | None) -> tuple[float, float]:
    finite = [a[np.isfinite(a)] for a in arrays.values()]
    values = np.concatenate(finite + [np.array([] if threshold is None else [threshold])])
    if values.size == 0:
        return 0.0, 1.0
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-12 * max(1.0, abs(high)):
        pad = max(abs(high) * 0.1, 1.0)
        return low - pad, high + pad
    pad = 0.05 * (high - low)
    return low - pad if low < 0 or low - pad >= 0 else 0.0, high + pad


def _segments(values: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Split a series at non-finite values into runs of (index, value)."""
    index = np.arange(values.size)
    finite = np.isfinite(values)
    runs = np.split(index[finite], np.flatnonzero(np.diff(index[finite]) > 1) + 1)
    return [(run, values[run]) for run in runs if run.size]


def line_plot_svg(
    series: Mapping[str, ArrayLike],
    xlabel: str = "volume",
    ylabel: str = "",
    threshold: float | None = None,
    *,
    title: str | None = None,
    threshold_label: str | None = None,
    width: int = 720,
    height: int = 220,
) -> str:
    """Return a line plot of one or more series as inline SVG (motion parameters, FD).

    Parameters
    ----------
    series : Mapping[str, array_like]
        Name -> 1-D values, plotted against their index; non-finite values leave gaps.
    xlabel, ylabel : str, optional
        Axis labels; escaped.
    threshold : float, optional
        A horizontal dashed line (e.g. the FD threshold in mm).
    title : str, optional
        Title above the plot; escaped.
    threshold_label : str, optional
        Text next to the threshold line (default ``"threshold <value>"``); escaped.
    width, height : int, optional
        Size in pixels.

    Returns
    -------
    str
        An ``<svg>`` element with axes, ticks, a legend and the lines.
    """
    arrays = _series_arrays(series)
    top = 40.0 if title else 24.0
    left, right, bottom = 58.0, width - 14.0, height - 36.0
    low, high = _value_range(arrays, threshold)
    length = max((a.size for a in arrays.values()), default=0)
    x_high = float(max(length - 1, 1))

    def sx(x: float) -> float:
        return left + x / x_high * (right - left)

    def sy(y: float) -> float:
        return bottom - (y - low) / (high - low) * (bottom - top)

    parts = [_SVG_OPEN.format(w=width, h=height, cls="aslmig-plot")]
    parts.append(f"<title>{_esc(title or ylabel or 'plot')}</title>")
    if title:
        parts.append(
            f'<text x="{_num(left)}" y="16" font-size="13" font-weight="bold" '
            f'fill="#222">{_esc(title)}</text>'
        )
    parts.extend(y_axis_svg(low, high, left, right, sy))
    parts.extend(_x_axis(x_high, bottom, sx))
    parts.append(
        f'<rect x="{_num(left)}" y="{_num(top)}" width="{_num(right - left)}" '
        f'height="{_num(bottom - top)}" fill="none" stroke="#888" stroke-width="0.8"/>'
    )
    if threshold is not None:
        parts.extend(_threshold_line(threshold, threshold_label, left, right, sy))
    for number, values in enumerate(arrays.values()):
        colour = PLOT_COLORS[number % len(PLOT_COLORS)]
        for xs, ys in _segments(values):
            if xs.size == 1:
                parts.append(
                    f'<circle cx="{_num(sx(xs[0]))}" cy="{_num(sy(ys[0]))}" r="1.8" '
                    f'fill="{colour}"/>'
                )
                continue
            points = " ".join(f"{_num(sx(x))},{_num(sy(y))}" for x, y in zip(xs, ys, strict=True))
            parts.append(
                f'<polyline points="{points}" fill="none" stroke="{colour}" '
                'stroke-width="1.4" stroke-linejoin="round"/>'
            )
    if not any(np.isfinite(a).any() for a in arrays.values()):
        parts.append(
            f'<text x="{_num((left + right) / 2)}" y="{_num((top + bottom) / 2)}" '
            'text-anchor="middle" fill="#888">no data</text>'
        )
    parts.extend(_legend(list(arrays), right, top))
    parts.append(
        f'<text x="{_num((left + right) / 2)}" y="{_num(height - 4)}" '
        f'text-anchor="middle" fill="#222">{_esc(xlabel)}</text>'
    )
    parts.append(
        f'<text transform="translate(14 {_num((top + bottom) / 2)}) rotate(-90)" '
        f'text-anchor="middle" fill="#222">{_esc(ylabel)}</text>'
    )
    parts.append("</svg>")
    return "".join(parts)


def y_axis_svg(
    low: float, high: float, left: float, right: float, sy: _Scale, target: int = 4
) -> list[str]:
    """Return SVG grid lines and labels of a y axis (about ``target`` ticks)."""
    step = _tick_step(low, high, target)
    out = []
    for tick in nice_ticks(low, high, target):
        y = _num(sy(tick))
        out.append(
            f'<line x1="{_num(left)}" y1="{y}" x2="{_num(right)}" y2="{y}" '
            'stroke="#e3e3e3" stroke-width="0.8"/>'
        )
        out.append(
            f'<text x="{_num(left - 5)}" y="{y}" dy="0.35em" text-anchor="end" '
            f'fill="#444">{_esc(_format_tick(tick, step))}</text>'
        )
    return out


def _x_axis(x_high: float, bottom: float, sx: _Scale) -> list[str]:
    step = max(1.0, _tick_step(0.0, x_high, 8))
    out = []
    for tick in nice_ticks(0.0, x_high, 8):
        if tick != int(tick):
            continue
        x = _num(sx(tick))
        out.append(
            f'<line x1="{x}" y1="{_num(bottom)}" x2="{x}" y2="{_num(bottom + 4)}" '
            'stroke="#888" stroke-width="0.8"/>'
        )
        out.append(
            f'<text x="{x}" y="{_num(bottom + 15)}" text-anchor="middle" '
            f'fill="#444">{_esc(_format_tick(tick, step))}</text>'
        )
    return out


def _threshold_line(
    threshold: float, label: str | None, left: float, right: float, sy: _Scale
) -> list[str]:
    y = _num(sy(float(threshold)))
    text = label if label is not None else f"threshold {float(threshold):g}"
    return [
        f'<line x1="{_num(left)}" y1="{y}" x2="{_num(right)}" y2="{y}" '
        f'stroke="{THRESHOLD_COLOR}" stroke-width="1.2" stroke-dasharray="5 3"/>',
        f'<text x="{_num(right - 4)}" y="{y}" dy="-0.4em" text-anchor="end" '
        f'fill="{THRESHOLD_COLOR}">{_esc(text)}</text>',
    ]


def _legend(names: list[str], right: float, top: float) -> list[str]:
    """Lay out legend entries right-aligned in one row just above the plot area."""
    out = []
    x = right
    for number in reversed(range(len(names))):
        label = names[number]
        colour = PLOT_COLORS[number % len(PLOT_COLORS)]
        text_w = 6.2 * len(label)
        x -= text_w
        out.append(f'<text x="{_num(x)}" y="{_num(top - 6)}" fill="#222">{_esc(label)}</text>')
        out.append(
            f'<line x1="{_num(x - 18)}" y1="{_num(top - 10)}" x2="{_num(x - 4)}" '
            f'y2="{_num(top - 10)}" stroke="{colour}" stroke-width="2.5"/>'
        )
        x -= 30
    return out
