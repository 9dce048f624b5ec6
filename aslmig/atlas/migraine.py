"""The ``MigraineASL`` regions, defined from a template's tissue maps and MNI coordinates.

No openly licensed atlas that can be obtained offline labels the dorsal rostral pons or the
hypothalamus, so aslmig defines these regions itself, in the open: each region is a rule over
MNI coordinates (mm, voxel centres; x < 0 is left) and the template's grey/white matter/CSF
probabilities. The rules are data (:data:`REGIONS`), the same rules build the atlas on any
MNI152 template (the shipped copy is built on the bundled ICBM 2009a template by
``tools/build_atlas.py``; on TemplateFlow's MNI152NLin2009cAsym it is built from that
template's own tissue maps), and ``docs/regions.md`` explains every choice.

Regions overlap by nature (the occipital cortex lies in the PCA territory and in the grey
matter), so the atlas has four *levels*, each a non-overlapping label volume of a 4-D image:
0 = small structures, 1 = the larger regions that contain some of them (pons, occipital
cortex), 2 = tissue classes, 3 = arterial territories. The territories are the JHU arterial
territory atlas's level 2 (Liu et al. 2023, CC BY-SA 4.0; :mod:`aslmig.atlas.territories`)
within the template's brain tissue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from aslmig.atlas.territories import CITATION as TERRITORY_CITATION
from aslmig.atlas.territories import territory_at

ATLAS_NAME = "MigraineASL"
LEVELS = ("structures", "regions", "tissue", "territories")
MIDLINE_MM = 1.0  # voxels whose centre is closer to x = 0 belong to neither hemisphere
GM_THRESHOLD = 0.5
DEEP_WM_THRESHOLD = 0.9
TISSUE_THRESHOLD = 0.5  # GM + WM probability for "tissue" (not CSF, not background)
LICENCE = (
    "CC0-1.0 for the region definitions (aslmig); voxels derived from the ICBM 2009 "
    "template tissue maps under the McConnell Brain Imaging Centre permission notice; "
    "arterial territories CC BY-SA 4.0 (JHU arterial territory atlas, Liu et al. 2023)"
)


@dataclass(frozen=True)
class Grid:
    """Voxel-centre coordinates (MNI mm) and tissue probabilities of a template grid."""

    x: np.ndarray
    y: np.ndarray
    z: np.ndarray
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    brain: np.ndarray

    @classmethod
    def from_arrays(
        cls,
        affine: np.ndarray,
        gm: np.ndarray,
        wm: np.ndarray,
        csf: np.ndarray,
        brain: np.ndarray,
    ) -> Grid:
        """Build the grid from a template's probability maps and affine."""
        shape = gm.shape
        index = np.indices(shape, dtype=float).reshape(3, -1)
        world = (affine[:3, :3] @ index + affine[:3, 3:4]).reshape(3, *shape)
        return cls(world[0], world[1], world[2], gm, wm, csf, brain.astype(bool))

    @property
    def tissue(self) -> np.ndarray:
        """Brain tissue (GM + WM >= 0.5, inside the brain mask)."""
        return self.brain & (self.gm + self.wm >= TISSUE_THRESHOLD)

    @property
    def grey(self) -> np.ndarray:
        """Grey matter (probability >= 0.5, inside the brain mask)."""
        return self.brain & (self.gm >= GM_THRESHOLD)

    def side(self, hemisphere: str) -> np.ndarray:
        """Voxels of one hemisphere (``"L"``: x <= -1 mm, ``"R"``: x >= 1 mm)."""
        return self.x <= -MIDLINE_MM if hemisphere == "L" else self.x >= MIDLINE_MM

    def ellipsoid(
        self, centre: tuple[float, float, float], radii: tuple[float, float, float]
    ) -> np.ndarray:
        """Voxels inside an axis-aligned ellipsoid (mm); ``x`` of the centre is mirrored by side."""
        cx, cy, cz = centre
        rx, ry, rz = radii
        return (
            ((np.abs(self.x) - cx) / rx) ** 2
            + ((self.y - cy) / ry) ** 2
            + ((self.z - cz) / rz) ** 2
        ) <= 1.0

    def above_tentorium(self) -> np.ndarray:
        """Cerebrum side of a plane approximating the tentorium cerebelli."""
        height = (
            TENTORIUM_Z0
            + TENTORIUM_SLOPE_Y * (self.y - TENTORIUM_Y0)
            - TENTORIUM_SLOPE_X * np.abs(self.x)
        )
        return self.z > height



# Tentorium surface z = Z0 + SLOPE_Y (y - Y0) - SLOPE_X |x| (two planes meeting at the
# midline, a tent), read off the ICBM 2009 template's sagittal and coronal sections.
TENTORIUM_Y0, TENTORIUM_Z0, TENTORIUM_SLOPE_Y, TENTORIUM_SLOPE_X = -60.0, -4.0, 0.33, 0.4
OCCIPITAL_Y_MAX = -70.0  # anterior limit of the occipital lobe proxy (mm)
PONS_BOX = {"x": 13.0, "y": (-40.0, -12.0), "z": (-44.0, -18.0)}
DORSAL_PONS_Y_MAX = -28.0  # dorsal (tegmental) part of the pons: y <= -28 mm
ROSTRAL_PONS_Z_MIN = -32.0  # rostral half of the pons: z >= -32 mm
DORSAL_PONS_X_MAX = 9.0
HYPOTHALAMUS_BOX = {"x": (MIDLINE_MM, 7.0), "y": (-14.0, 0.0), "z": (-14.0, -4.0)}
THALAMUS = {"centre": (11.0, -18.0, 7.0), "radii": (8.0, 15.0, 9.0)}
CALCARINE = {"x": 17.0, "z": (-12.0, 20.0)}


TENTORIUM_TEXT = (
    f"z = {TENTORIUM_Z0:g} + {TENTORIUM_SLOPE_Y:g} (y - ({TENTORIUM_Y0:g})) "
    f"- {TENTORIUM_SLOPE_X:g} |x| mm"
)


def _range(bounds: tuple[float, float], axis: str) -> str:
    return f"{bounds[0]:g} <= {axis} <= {bounds[1]:g}"


def _point(values: tuple[float, ...]) -> str:
    return ", ".join(f"{value:g}" for value in values)


@dataclass(frozen=True)
class RegionRule:
    """One region: its name, atlas level, rule and documentation."""

    name: str
    level: int
    rule: Callable[[Grid], np.ndarray]
    definition: str
    reference: str

    @property
    def hemisphere(self) -> str:
        """``L``, ``R`` or ``n/a`` from the name's suffix."""
        suffix = self.name.rsplit("_", 1)[-1]
        return suffix if suffix in ("L", "R") else "n/a"


def _pons(grid: Grid) -> np.ndarray:
    low_y, high_y = PONS_BOX["y"]
    low_z, high_z = PONS_BOX["z"]
    return (
        grid.tissue
        & (np.abs(grid.x) <= PONS_BOX["x"])
        & (grid.y >= low_y)
        & (grid.y <= high_y)
        & (grid.z >= low_z)
        & (grid.z <= high_z)
    )


def _dorsal_rostral_pons(side: str) -> Callable[[Grid], np.ndarray]:
    def rule(grid: Grid) -> np.ndarray:
        return (
            _pons(grid)
            & grid.side(side)
            & (grid.y <= DORSAL_PONS_Y_MAX)
            & (grid.z >= ROSTRAL_PONS_Z_MIN)
            & (np.abs(grid.x) <= DORSAL_PONS_X_MAX)
        )

    return rule


def _between(values: np.ndarray, bounds: tuple[float, float]) -> np.ndarray:
    return (values >= bounds[0]) & (values <= bounds[1])


def _hypothalamus(side: str) -> Callable[[Grid], np.ndarray]:
    def rule(grid: Grid) -> np.ndarray:
        box = HYPOTHALAMUS_BOX
        return (
            grid.tissue
            & (grid.csf < 0.5)
            & grid.side(side)
            & _between(np.abs(grid.x), box["x"])
            & _between(grid.y, box["y"])
            & _between(grid.z, box["z"])
        )

    return rule


def _thalamus(side: str) -> Callable[[Grid], np.ndarray]:
    def rule(grid: Grid) -> np.ndarray:
        shape = grid.ellipsoid(THALAMUS["centre"], THALAMUS["radii"])
        return grid.tissue & (grid.csf < 0.5) & grid.side(side) & shape

    return rule


def _occipital(grid: Grid) -> np.ndarray:
    return grid.grey & (grid.y <= OCCIPITAL_Y_MAX) & grid.above_tentorium()


def _occipital_cortex(side: str) -> Callable[[Grid], np.ndarray]:
    return lambda grid: _occipital(grid) & grid.side(side)


def _calcarine(side: str) -> Callable[[Grid], np.ndarray]:
    def rule(grid: Grid) -> np.ndarray:
        return (
            _occipital(grid)
            & grid.side(side)
            & (np.abs(grid.x) <= CALCARINE["x"])
            & _between(grid.z, CALCARINE["z"])
        )

    return rule


def _grey_matter(grid: Grid) -> np.ndarray:
    return grid.grey


def _white_matter(grid: Grid) -> np.ndarray:
    return grid.brain & (grid.wm >= DEEP_WM_THRESHOLD)


def _territory(kind: str, side: str) -> Callable[[Grid], np.ndarray]:
    name = f"territory_{kind}_{side}"

    def rule(grid: Grid) -> np.ndarray:
        return grid.tissue & grid.side(side) & (territory_at(grid.x, grid.y, grid.z) == name)

    return rule


WEILLER_1995 = (
    "Weiller C, May A, Limmroth V, et al. Brain stem activation in spontaneous human migraine "
    "attacks. Nat Med 1995;1:658-660. doi:10.1038/nm0795-658"
)
AFRIDI_2005 = (
    "Afridi SK, Giffin NJ, Kaube H, et al. A positron emission tomographic study in "
    "spontaneous migraine. Arch Neurol 2005;62:1270-1275. doi:10.1001/archneur.62.8.1270"
)
SCHULTE_MAY_2016 = (
    "Schulte LH, May A. The migraine generator revisited: continuous scanning of the migraine "
    "cycle over 30 days and three spontaneous attacks. Brain 2016;139:1987-1993. "
    "doi:10.1093/brain/aww097"
)
HADJIKHANI_2001 = (
    "Hadjikhani N, Sanchez del Rio M, Wu O, et al. Mechanisms of migraine aura revealed by "
    "functional MRI in human visual cortex. PNAS 2001;98:4687-4692. doi:10.1073/pnas.071582498"
)
ICBM = (
    "Fonov VS, Evans AC, Botteron K, et al. Unbiased average age-appropriate atlases for "
    "pediatric studies. NeuroImage 2011;54:313-327. doi:10.1016/j.neuroimage.2010.07.033"
)


def _rules() -> list[RegionRule]:
    rules = [
        RegionRule(
            "pons",
            1,
            _pons,
            f"brain tissue (GM+WM >= {TISSUE_THRESHOLD:g}) with |x| <= {PONS_BOX['x']:g}, "
            f"{_range(PONS_BOX['y'], 'y')}, {_range(PONS_BOX['z'], 'z')} mm",
            WEILLER_1995,
        )
    ]
    for side in ("L", "R"):
        rules.append(RegionRule(
            f"dorsal_rostral_pons_{side}",
            0,
            _dorsal_rostral_pons(side),
            f"pons voxels that are dorsal (y <= {DORSAL_PONS_Y_MAX:g} mm, away from the "
            f"ventral basilar artery), rostral (z >= {ROSTRAL_PONS_Z_MIN:g} mm) and "
            f"{_range((MIDLINE_MM, DORSAL_PONS_X_MAX), '|x|')} mm",
            f"{WEILLER_1995}; {AFRIDI_2005}",
        ))  # fmt: skip
    for side in ("L", "R"):
        rules.append(RegionRule(
            f"hypothalamus_{side}",
            0,
            _hypothalamus(side),
            "brain tissue with CSF probability < 0.5 (third ventricle masked out), "
            f"{_range(HYPOTHALAMUS_BOX['x'], '|x|')}, {_range(HYPOTHALAMUS_BOX['y'], 'y')}, "
            f"{_range(HYPOTHALAMUS_BOX['z'], 'z')} mm",
            SCHULTE_MAY_2016,
        ))  # fmt: skip
    for side in ("L", "R"):
        rules.append(RegionRule(
            f"thalamus_{side}",
            0,
            _thalamus(side),
            "brain tissue with CSF probability < 0.5 in an ellipsoid centred at "
            f"(+/-{_point(THALAMUS['centre'])}) mm with semi-axes "
            f"({_point(THALAMUS['radii'])}) mm",
            ICBM,
        ))  # fmt: skip
    for side in ("L", "R"):
        rules.append(RegionRule(
            f"occipital_cortex_{side}",
            1,
            _occipital_cortex(side),
            f"grey matter (p >= {GM_THRESHOLD:g}) posterior to y = {OCCIPITAL_Y_MAX:g} mm "
            f"and above the tentorium surface {TENTORIUM_TEXT}",
            HADJIKHANI_2001,
        ))  # fmt: skip
    for side in ("L", "R"):
        rules.append(RegionRule(
            f"calcarine_{side}",
            0,
            _calcarine(side),
            "medial occipital grey matter (V1 proxy): occipital cortex voxels with "
            f"{_range((MIDLINE_MM, CALCARINE['x']), '|x|')} mm and "
            f"{_range(CALCARINE['z'], 'z')} mm",
            HADJIKHANI_2001,
        ))  # fmt: skip
    rules += [
        RegionRule(
            "grey_matter", 2, _grey_matter, f"template GM probability >= {GM_THRESHOLD:g}", ICBM
        ),
        RegionRule(
            "white_matter",
            2,
            _white_matter,
            f"template WM probability >= {DEEP_WM_THRESHOLD:g} (deep WM)",
            ICBM,
        ),
    ]
    meaning = {"ACA": "anterior cerebral artery", "MCA": "middle cerebral artery",
               "PCA": "posterior cerebral artery (with the thalamoperforating and choroidal "
               "arteries)", "VB": "vertebrobasilar (basilar and cerebellar arteries)"}  # fmt: skip
    for kind in ("ACA", "MCA", "PCA", "VB"):
        for side in ("L", "R"):
            rules.append(RegionRule(
                f"territory_{kind}_{side}",
                3,
                _territory(kind, side),
                f"brain tissue (GM+WM >= {TISSUE_THRESHOLD:g}) in the {meaning[kind]} territory "
                "of the JHU arterial territory atlas, level 2 (sampled at the voxel's MNI "
                f"coordinates), on its side of the midline (|x| >= {MIDLINE_MM:g} mm)",
                TERRITORY_CITATION,
            ))  # fmt: skip
    return rules


REGIONS: tuple[RegionRule, ...] = tuple(_rules())


def build_migraine_atlas(grid: Grid) -> tuple[np.ndarray, pd.DataFrame]:
    """Label the ``MigraineASL`` regions on a template grid.

    Parameters
    ----------
    grid : Grid
        The template's voxel coordinates and tissue maps.

    Returns
    -------
    labels : ndarray of uint8, shape (X, Y, Z, 4)
        One label volume per level; region ``k`` (1-based, in :data:`REGIONS` order) is
        labelled ``k`` in its level's volume.
    table : pandas.DataFrame
        ``index, name, level, hemisphere, definition, source, reference, licence``.

    Raises
    ------
    ValueError
        If a region is empty on this grid or two regions of one level overlap.
    """
    labels = np.zeros((*grid.gm.shape, len(LEVELS)), dtype=np.uint8)
    rows = []
    for index, region in enumerate(REGIONS, start=1):
        mask = region.rule(grid)
        if not mask.any():
            raise ValueError(f"region {region.name} is empty on this template grid")
        volume = labels[..., region.level]
        if (volume[mask] != 0).any():
            raise ValueError(f"region {region.name} overlaps another region of its level")
        volume[mask] = index
        rows.append({
            "index": index,
            "name": region.name,
            "level": region.level,
            "hemisphere": region.hemisphere,
            "definition": region.definition,
            "source": "aslmig rule on the template tissue maps (aslmig/atlas/migraine.py)",
            "reference": region.reference,
            "licence": LICENCE,
        })  # fmt: skip
    return labels, pd.DataFrame(rows)
