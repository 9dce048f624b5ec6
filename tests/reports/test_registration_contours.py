"""Tissue borders over the ASL images (the registration figure): a misregistration must show."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from aslmig.reports.mosaics import contour_overlay, contour_pixels, oriented_slice

VOXEL_MM = 3.0
SHAPE = (48, 56, 44)
CENTRE = (24.0, 28.0, 20.0)
#: Radii (mm) of the white matter, the outer grey-matter border and the CSF around it.
WM_RADIUS, BRAIN_RADIUS, HEAD_RADIUS = 36.0, 54.0, 62.0
WHITE, CYAN = (255, 0, 0), (0, 255, 255)
#: The registration error of the test: 6 mm (two voxels) to the subject's right.
SHIFT_VOXELS = 2


def _inside(radius_mm: float) -> np.ndarray:
    """Partial-volume fraction of a sphere: a linear ramp one voxel wide across its surface."""
    grid = np.indices(SHAPE).astype(float)
    distance = VOXEL_MM * np.sqrt(sum((g - c) ** 2 for g, c in zip(grid, CENTRE, strict=True)))
    return np.clip((radius_mm - distance) / VOXEL_MM + 0.5, 0.0, 1.0)


@pytest.fixture(scope="module")
def head():
    """An M0-like reference (CSF > GM > WM) and its grey- and white-matter maps."""
    wm = _inside(WM_RADIUS)
    gm = _inside(BRAIN_RADIUS) - wm
    csf = _inside(HEAD_RADIUS) - _inside(BRAIN_RADIUS)
    reference = 1.0 * gm + 0.6 * wm + 1.5 * csf
    return reference, gm, wm


def _line_pixels(image: np.ndarray, color: tuple[int, int, int]) -> np.ndarray:
    return np.all(image == np.array(color, np.uint8), axis=-1)


def _edges(reference: np.ndarray, index: int, axis: int, zoom: int) -> np.ndarray:
    """The reference's own edges: Sobel magnitude >= 10 % of its maximum, display pixels."""
    plane = ndimage.zoom(oriented_slice(reference, index, axis), zoom, order=1, grid_mode=True,
                         mode="nearest")  # fmt: skip
    magnitude = np.hypot(ndimage.sobel(plane, axis=0), ndimage.sobel(plane, axis=1))
    return magnitude >= 0.1 * magnitude.max()


def _figure(reference, gm, wm, axis, index, shift=0):
    moved = [np.roll(tissue, shift, axis=0) for tissue in (gm + wm, wm)]
    return contour_overlay(
        reference, [(moved[0], CYAN), (moved[1], WHITE)], axis=axis, slices=[index], zoom=3,
        annotate=False,
    )  # fmt: skip


@pytest.mark.parametrize(("axis", "index"), [(2, 20), (1, 28)])
def test_a_6_mm_misregistration_takes_the_borders_off_the_image_edges(head, axis, index):
    reference, gm, wm = head
    edges = _edges(reference, index, axis, zoom=3)
    shares = {}
    for shift in (0, SHIFT_VOXELS):
        figure = _figure(reference, gm, wm, axis, index, shift)
        lines = _line_pixels(figure, CYAN) | _line_pixels(figure, WHITE)
        assert lines.sum() > 200
        shares[shift] = (lines & edges).sum() / lines.sum()
    # measured: 1.0 aligned, 0.32 shifted (both views); only the stretches of border parallel
    # to the shift stay on an edge of the reference
    assert shares[0] >= 0.95
    assert shares[SHIFT_VOXELS] <= 0.5


def test_the_border_lines_move_by_the_registration_error(head):
    reference, gm, wm = head
    columns = {}
    for shift in (0, SHIFT_VOXELS):
        figure = _figure(reference, gm, wm, axis=2, index=20, shift=shift)
        columns[shift] = np.nonzero(_line_pixels(figure, WHITE))[1].mean()
    # axial view, zoom 3 on 3 mm voxels: one pixel per mm, the subject's right to the right
    assert columns[SHIFT_VOXELS] - columns[0] == pytest.approx(SHIFT_VOXELS * VOXEL_MM, abs=0.3)


def test_contour_follows_the_half_level_between_voxels():
    plane = np.zeros((4, 8))
    plane[:, 4:] = 1.0  # the 0.5 line lies halfway between columns 3 and 4
    line = contour_pixels(plane, 0.5, (4, 4))
    assert set(np.nonzero(line)[1]) == {16}  # inner boundary: the first pixel at or above 0.5
    assert contour_pixels(plane, 0.5, (1, 1)).sum() == 4


def test_later_maps_are_drawn_on_top_and_the_background_is_grey(head):
    reference, gm, wm = head
    figure = contour_overlay(reference, [(wm, CYAN), (wm, WHITE)], slices=[20], zoom=2)
    assert _line_pixels(figure, WHITE).any() and not _line_pixels(figure, CYAN).any()
    plain = ~_line_pixels(figure, WHITE)
    assert np.all(figure[plain][:, 0] == figure[plain][:, 1])


def test_contour_overlay_needs_maps_on_one_grid(head):
    reference, _, wm = head
    with pytest.raises(ValueError, match="grid"):
        contour_overlay(reference, [(wm[:-1], WHITE)])
    with pytest.raises(ValueError, match="grid"):
        contour_overlay(reference, [])
