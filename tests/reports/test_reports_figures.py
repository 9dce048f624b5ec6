from __future__ import annotations

import xml.etree.ElementTree as ET

import numpy as np
import pytest

from aslmig.reports.colormaps import BACKGROUND, COLORMAPS, apply_cmap
from aslmig.reports.mosaics import (
    EDGE_COLOR,
    TILE_GAP,
    canonical_volume,
    edge_overlay,
    mosaic,
    orientation_letter,
    pixel_factors,
    select_slices,
)
from aslmig.reports.svg import check_svg, colorbar, line_plot_svg, nice_ticks

HOSTILE = "<script>alert(1)</script> \"onload=x '&"
SVG = "{http://www.w3.org/2000/svg}"


def _lightness(lut: np.ndarray) -> np.ndarray:
    """CIE L* of sRGB colours."""
    c = lut / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    y = linear @ np.array([0.2126, 0.7152, 0.0722])
    return np.where(y > 216 / 24389, 116 * np.cbrt(y) - 16, y * 24389 / 27)


# ----------------------------------------------------------------------------- colour maps


def test_colormaps_are_read_only_uint8_tables():
    for lut in COLORMAPS.values():
        assert lut.shape == (256, 3) and lut.dtype == np.uint8
        with pytest.raises(ValueError):
            lut[0, 0] = 1


@pytest.mark.parametrize("name", ["perfusion", "heat", "grey"])
def test_sequential_maps_increase_in_lightness(name):
    lightness = _lightness(COLORMAPS[name].astype(float))
    # non-decreasing up to uint8 quantisation, and a wide range overall
    assert np.all(np.diff(lightness) > -0.05)
    assert lightness[-1] - lightness[0] > 60


def test_diverging_map_is_lightest_in_the_middle():
    lightness = _lightness(COLORMAPS["diverging"].astype(float))
    assert np.argmax(lightness) in (127, 128)


def test_apply_cmap_limits_clipping_and_nan():
    rgb = apply_cmap(np.array([0.0, 100.0, -5.0, 500.0, np.nan]), 0, 100, "perfusion")
    lut = COLORMAPS["perfusion"]
    assert np.array_equal(rgb[0], lut[0]) and np.array_equal(rgb[2], lut[0])
    assert np.array_equal(rgb[1], lut[-1]) and np.array_equal(rgb[3], lut[-1])
    assert tuple(rgb[4]) == BACKGROUND
    with pytest.raises(ValueError):
        apply_cmap(np.zeros(3), 1, 1)
    with pytest.raises(ValueError):
        apply_cmap(np.zeros(3), 0, 1, "jet")


# ----------------------------------------------------------------------------- mosaics

TOP = tuple(COLORMAPS["grey"][-1])


def _single(volume, axis, index):
    return mosaic(
        volume, axis=axis, slices=[index], vmin=0, vmax=1, cmap="grey", zoom=1, annotate=False
    )


def test_axial_orientation_anterior_up_left_on_left():
    volume = np.zeros((10, 12, 6))
    volume[0, 11, 3] = 1  # subject's far left, most anterior
    volume[9, 0, 3] = 1  # subject's far right, most posterior
    tile = _single(volume, 2, 3)
    assert tile.shape == (12, 10, 3)  # rows: anterior-posterior, columns: left-right
    lit = np.argwhere(tile.any(axis=2))
    assert lit.tolist() == [[0, 0], [11, 9]]
    assert tuple(tile[0, 0]) == TOP


def test_coronal_orientation_superior_up_left_on_left():
    volume = np.zeros((10, 12, 6))
    volume[0, 4, 5] = 1  # left, most superior
    tile = _single(volume, 1, 4)
    assert tile.shape == (6, 10, 3)
    assert np.argwhere(tile.any(axis=2)).tolist() == [[0, 0]]


def test_sagittal_orientation_superior_up_anterior_on_right():
    volume = np.zeros((10, 12, 6))
    volume[2, 11, 5] = 1  # most anterior, most superior
    tile = _single(volume, 0, 2)
    assert tile.shape == (6, 12, 3)
    assert np.argwhere(tile.any(axis=2)).tolist() == [[0, 11]]


def test_tiles_run_row_by_row_in_increasing_slice_order():
    volume = np.zeros((4, 5, 8))
    volume[0, 4, 6] = 1  # top-left pixel of slice 6 only
    image = mosaic(
        volume, slices=[1, 3, 6, 7], ncols=2, vmin=0, vmax=1, zoom=1, annotate=False, cmap="grey"
    )
    assert image.shape == (2 * 5 + TILE_GAP, 2 * 4 + TILE_GAP, 3)
    # third tile: second row, first column
    assert np.argwhere(image.any(axis=2)).tolist() == [[5 + TILE_GAP, 0]]


def test_mosaic_shape_with_zoom_and_default_grid():
    volume = np.random.default_rng(0).random((8, 9, 30)) + 1
    image = mosaic(volume, n_slices=12, zoom=3, annotate=False)
    assert image.dtype == np.uint8
    assert image.shape == (2 * 27 + TILE_GAP, 6 * 24 + 5 * TILE_GAP, 3)


def test_zoom_repeats_pixels():
    volume = np.zeros((3, 3, 1))
    volume[0, 2, 0] = 1
    tile = mosaic(volume, slices=[0], vmin=0, vmax=1, cmap="grey", zoom=4, annotate=False)
    assert tile.shape == (12, 12, 3)
    assert np.argwhere(tile.any(axis=2)).min(axis=0).tolist() == [0, 0]
    assert np.argwhere(tile.any(axis=2)).max(axis=0).tolist() == [3, 3]


def test_anisotropic_voxels_keep_their_aspect():
    assert pixel_factors((64, 64, 20), axis=1, zoom=2, voxel_size=(3, 3, 6)) == (4, 2)
    assert pixel_factors((64, 64, 20), axis=2, zoom=2, voxel_size=(3, 3, 6)) == (2, 2)
    assert pixel_factors((64, 64, 20), axis=2) == (3, 3)  # automatic: 64 * 3 >= 160


def test_mask_blanks_outside_voxels():
    volume = np.ones((4, 4, 1))
    mask = np.zeros((4, 4, 1), dtype=bool)
    mask[1:3, 1:3] = True
    tile = mosaic(volume, slices=[0], mask=mask, vmin=0, vmax=1, zoom=1, annotate=False)
    lit = tile.any(axis=2)
    assert lit.sum() == 4 and lit[1:3, 1:3].all()


def test_nan_is_background():
    volume = np.full((3, 3, 1), np.nan)
    tile = mosaic(volume, slices=[0], vmin=0, vmax=1, zoom=1, annotate=False)
    assert not tile.any()


def test_annotation_writes_only_into_the_first_tile_corners():
    volume = np.random.default_rng(2).random((64, 64, 10)) + 1
    plain = mosaic(volume, n_slices=4, vmin=0, vmax=3, zoom=2, annotate=False)
    marked = mosaic(volume, n_slices=4, vmin=0, vmax=3, zoom=2, annotate=True)
    changed = np.argwhere((plain != marked).any(axis=2))
    assert changed.size
    assert changed[:, 0].min() > 64 and changed[:, 1].max() < 128  # lower half of tile 1


def test_orientation_letters_are_drawn_from_a_font():
    letter_l, letter_r = orientation_letter("L", 14), orientation_letter("R", 14)
    for letter in (letter_l, letter_r):
        assert abs(letter.shape[0] - 14) <= 1 and letter.min() >= 0 and letter.max() <= 1
    assert letter_l[:, 0].min() > 0.9 and letter_l[-1].min() > 0.9  # stem and foot of an L
    middle = letter_r.shape[1] // 2
    assert letter_r[0, 0] > 0.9 and letter_r[-1, -1] > 0.5 and letter_r[-1, middle] < 0.1


def test_select_slices():
    volume = np.zeros((5, 5, 40))
    volume[:, :, 10:30] = 1
    chosen = select_slices(volume, 6)
    assert len(chosen) == 6 and chosen == sorted(chosen)
    assert 10 < chosen[0] and chosen[-1] < 29
    assert select_slices(volume, 50) == list(range(10, 30))
    assert select_slices(np.zeros((3, 3, 4)), 12) == [0, 1, 2, 3]


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="3-D"):
        mosaic(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="axis"):
        mosaic(np.zeros((4, 4, 4)), axis=3)
    with pytest.raises(ValueError, match="mask shape"):
        mosaic(np.zeros((4, 4, 4)), mask=np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="slices"):
        mosaic(np.zeros((4, 4, 4)), slices=[4])


def test_canonical_volume_reorients_to_ras():
    nib = pytest.importorskip("nibabel")
    data = np.zeros((4, 5, 6), dtype=np.float32)
    data[0, 0, 0] = 1
    affine = np.diag([-2.0, 2.0, 3.0, 1.0])  # LAS: first axis runs right to left
    ras, zooms = canonical_volume(nib.Nifti1Image(data, affine))
    assert zooms == (2.0, 2.0, 3.0)
    assert ras[3, 0, 0] == 1


# ----------------------------------------------------------------------------- edge overlay


def test_mask_edges_are_drawn_only_on_the_boundary():
    background = np.full((10, 10, 3), 100.0)
    moving = np.zeros((10, 10, 3), dtype=bool)
    moving[3:7, 2:8, :] = True
    image = edge_overlay(background, moving, slices=[1], zoom=1, vmin=0, vmax=200, annotate=False)
    edge = np.all(image == EDGE_COLOR, axis=2)
    inside = moving[:, :, 1].T[::-1, :]  # displayed orientation
    ring = inside.copy()
    ring[1:-1, 1:-1] &= ~(
        inside[:-2, 1:-1] & inside[2:, 1:-1] & inside[1:-1, :-2] & inside[1:-1, 2:]
    )
    assert np.array_equal(edge, ring)
    grey = image[~edge]
    assert np.all(grey == grey[0]) and grey[0, 0] == grey[0, 1] == grey[0, 2]


def test_mask_edges_stay_one_pixel_thin_when_upsampled():
    background = np.full((6, 6, 1), 1.0)
    moving = np.zeros((6, 6, 1))
    moving[1:5, 1:5] = 1
    image = edge_overlay(background, moving, slices=[0], zoom=4, annotate=False)
    edge = np.all(image == EDGE_COLOR, axis=2)
    assert edge.sum() == 4 * 16 - 4  # perimeter of a 16 x 16 square, one pixel wide
    assert edge[4, 4:20].all() and not edge[5, 5:19].any()


def test_gradient_edges_follow_an_intensity_step():
    background = np.full((20, 20, 2), 50.0)
    moving = np.full((20, 20, 2), 10.0)
    moving[:, 10:, :] = 80.0  # step between y = 9 and 10 (rows 9/10 from the top)
    image = edge_overlay(background, moving, slices=[0], zoom=1, annotate=False, edges="gradient")
    rows = np.unique(np.argwhere(np.all(image == EDGE_COLOR, axis=2))[:, 0])
    assert set(rows.tolist()) <= {8, 9, 10, 11} and rows.size


def test_edge_overlay_needs_one_grid():
    with pytest.raises(ValueError, match="resample"):
        edge_overlay(np.zeros((4, 4, 4)), np.zeros((4, 4, 5)))


# ----------------------------------------------------------------------------- SVG


def _texts(svg: str) -> list[str]:
    return [el.text or "" for el in ET.fromstring(svg).iter(f"{SVG}text")]


def test_colorbar_is_wellformed_and_escapes_its_label():
    svg = colorbar(0, 120, "perfusion", f"CBF {HOSTILE}")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg"
    assert "<script>" not in svg
    texts = _texts(svg)
    assert f"CBF {HOSTILE}" in texts
    assert texts[:-1] == ["0", "25", "50", "75", "100", "120"]
    assert _texts(colorbar(0.2, 2.55, "heat")) == ["0.2", "0.5", "1.0", "1.5", "2.0", "2.55"]
    with pytest.raises(ValueError):
        colorbar(1, 1)


def test_line_plot_is_wellformed_and_escapes_all_text():
    fd = np.r_[np.nan, np.linspace(0, 0.8, 20)]
    svg = line_plot_svg(
        {HOSTILE: fd, "trans x": np.zeros(21)},
        xlabel=HOSTILE,
        ylabel=f"FD {HOSTILE}",
        threshold=0.5,
        title=HOSTILE,
        threshold_label=HOSTILE,
    )
    root = ET.fromstring(svg)
    assert "<script>" not in svg and "onload=x" not in svg.replace("&quot;onload=x", "")
    assert _texts(svg).count(HOSTILE) == 4  # title, legend, x label, threshold label
    assert f"FD {HOSTILE}" in _texts(svg)
    lines = root.findall(f"{SVG}polyline")
    assert len(lines) == 2
    assert any(el.get("stroke-dasharray") for el in root.iter(f"{SVG}line"))


def test_line_plot_breaks_lines_at_gaps_and_handles_no_data():
    svg = line_plot_svg({"a": [1.0, 2.0, np.nan, 3.0, 4.0]})
    assert len(ET.fromstring(svg).findall(f"{SVG}polyline")) == 2
    empty = line_plot_svg({"a": [np.nan, np.nan]}, threshold=None)
    assert "no data" in _texts(empty)
    constant = line_plot_svg({"a": np.ones(5)})
    ET.fromstring(constant)
    with pytest.raises(ValueError, match="one-dimensional"):
        line_plot_svg({"a": np.zeros((2, 2))})


def test_nice_ticks():
    assert nice_ticks(0, 100, 5) == [0, 20, 40, 60, 80, 100]
    assert nice_ticks(0.0, 1.0, 4) == [0, 0.25, 0.5, 0.75, 1.0]
    assert nice_ticks(-0.3, 0.3, 4) == pytest.approx([-0.2, 0.0, 0.2])


def test_control_characters_in_plot_text_keep_the_svg_valid():
    plot = line_plot_svg({"a\x1b[31m": [1.0, 2.0]}, title="t\x07", ylabel="y\x00")
    bar = colorbar(0, 1, label="c\x1b")
    for svg in (plot, bar):
        assert check_svg(svg) and "\x1b" not in svg and "\x00" not in svg
    assert "a\\x1b[31m" in plot and "t\\x07" in plot and "c\\x1b" in bar
