"""A small geometric template (tissue maps + a fake atlas) for fast simulation tests.

Template grid: 3 mm voxels covering the simulation field of view. An ellipsoidal head: a
12 mm grey-matter shell (thick enough for pure grey-matter voxels after resampling to 4 mm),
white matter inside, and a CSF "ventricle" sphere in the middle. The fake atlas has the
occipital cortex (grey matter behind y = -60 mm, split at x = 0) and a thalamus sphere per
side, on the same grid (as the real ``MigraineASL`` atlas is on the template grid).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from aslmig.atlas.extract import Roi
from aslmig.sim.anatomy import FIELD_CENTRE_MM, FIELD_OF_VIEW_MM, TemplateAnatomy, grid_for

VOXEL_MM = 3.0
RADII_MM = np.array([66.0, 84.0, 62.0])
CENTRE_MM = np.array([0.0, -18.0, 12.0])
GM_THICKNESS_MM = 12.0
VENTRICLE_RADIUS_MM = 12.0


def _coordinates(shape, affine) -> np.ndarray:
    ijk = np.indices(shape, dtype=float).reshape(3, -1)
    return (affine[:3, :3] @ ijk + affine[:3, 3:4]).reshape(3, *shape)


def phantom_anatomy() -> TemplateAnatomy:
    """Binary tissue maps of the ellipsoidal phantom."""
    shape, affine = grid_for(VOXEL_MM, FIELD_OF_VIEW_MM, FIELD_CENTRE_MM)
    x, y, z = _coordinates(shape, affine) - CENTRE_MM[:, None, None, None]
    outer = (x / RADII_MM[0]) ** 2 + (y / RADII_MM[1]) ** 2 + (z / RADII_MM[2]) ** 2 <= 1
    inner_radii = RADII_MM - GM_THICKNESS_MM
    inner = (x / inner_radii[0]) ** 2 + (y / inner_radii[1]) ** 2 + (z / inner_radii[2]) ** 2 <= 1
    ventricle = x**2 + y**2 + z**2 <= VENTRICLE_RADIUS_MM**2
    gm = (outer & ~inner).astype(float)
    csf = ventricle.astype(float)
    wm = (inner & ~ventricle).astype(float)
    return TemplateAnatomy("Phantom", gm, wm, csf, affine)


@dataclass(frozen=True)
class FakeAtlas:
    """Stand-in for :class:`aslmig.atlas.rois.Atlas` (``rois`` and ``label_array``)."""

    name: str
    labels: np.ndarray
    affine: np.ndarray
    table: pd.DataFrame

    def rois(self) -> list[Roi]:
        return [
            Roi(int(i), str(n))
            for i, n in zip(self.table["index"], self.table["name"], strict=True)
        ]

    def label_array(self) -> tuple[np.ndarray, np.ndarray]:
        return self.labels.copy(), self.affine


ROI_NAMES = ("occipital_cortex_L", "occipital_cortex_R", "thalamus_L", "thalamus_R")


def fake_atlas(anatomy: TemplateAnatomy) -> FakeAtlas:
    """Occipital cortex and thalamus labels on the phantom grid."""
    x, y, z = _coordinates(anatomy.shape, anatomy.affine)
    labels = np.zeros(anatomy.shape, np.int16)
    occipital = (anatomy.gm > 0) & (y < -60)
    labels[occipital & (x < 0)] = 1
    labels[occipital & (x > 0)] = 2
    for index, side in ((3, -1), (4, 1)):
        sphere = (x - side * 12.0) ** 2 + (y + 18.0) ** 2 + (z - 20.0) ** 2 <= 8.0**2
        labels[sphere] = index
    table = pd.DataFrame({"index": [1, 2, 3, 4], "name": list(ROI_NAMES)})
    return FakeAtlas("FakeMigraine", labels, anatomy.affine, table)
