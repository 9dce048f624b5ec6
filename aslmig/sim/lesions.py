"""Template-space CBF maps with a focal lesion drawn inside one arterial territory or across two.

The validation of the territory-crossing analysis (:mod:`aslmig.group.territories`) needs
patients whose abnormality is known to stay inside one territory (stroke-like) or to straddle
a border (aura-like), at a stated signal-to-noise ratio, and many of them: this module draws
them directly on the template grid, without the participant pipeline.

Each map is ``baseline x (1 + e)``: the baseline is ``gm_cbf x GM + wm_cbf x WM`` of the
template's tissue maps, ``e`` a Gaussian random field (white noise smoothed to ``fwhm_mm``,
scaled to SD ``cov`` in the brain) that stands for between-subject and measurement variation;
a lesion multiplies its voxels by ``1 + effect``. The contrast-to-noise ratio of a lesion is
``|effect| / cov``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

ONE_TERRITORY, TWO_TERRITORIES = "one", "two"


@dataclass(frozen=True)
class MapNoise:
    """Variation of the simulated CBF maps.

    Attributes
    ----------
    cov : float
        Voxel SD of the multiplicative field (default 0.15: 15 % between-subject CoV of
        template-space CBF).
    fwhm_mm : float
        Smoothness of the field (default 8 mm, a smoothed 4 mm ASL acquisition).
    gm_cbf, wm_cbf : float
        Baseline CBF of pure grey and white matter (mL/100 g/min).
    """

    cov: float = 0.15
    fwhm_mm: float = 8.0
    gm_cbf: float = 60.0
    wm_cbf: float = 20.0


def baseline_cbf(gm: np.ndarray, wm: np.ndarray, noise: MapNoise) -> np.ndarray:
    """Return the noise-free CBF map of the tissue probability maps."""
    return noise.gm_cbf * gm + noise.wm_cbf * wm


def subject_map(
    baseline: np.ndarray, affine: np.ndarray, noise: MapNoise, rng: np.random.Generator,
    brain: np.ndarray,
) -> np.ndarray:
    """Return one subject's CBF map: ``baseline x (1 + e)``, ``e`` smooth with SD ``cov``."""
    voxel_mm = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    sigma = noise.fwhm_mm / np.sqrt(8.0 * np.log(2.0)) / voxel_mm
    field = ndimage.gaussian_filter(rng.standard_normal(baseline.shape), sigma, mode="constant")
    field *= noise.cov / field[brain].std()
    return baseline * (1.0 + field)


def _ball(shape: tuple[int, ...], centre: np.ndarray, radius_mm: float, voxel_mm: np.ndarray):
    grid = np.indices(shape, sparse=True)
    distance = sum(((g - c) * v) ** 2 for g, c, v in zip(grid, centre, voxel_mm, strict=True))
    return distance <= radius_mm**2


def draw_lesion(
    territories: np.ndarray,
    names: Mapping[int, str],
    first: str,
    second: str | None,
    radius_mm: float,
    affine: np.ndarray,
    rng: np.random.Generator,
    *,
    min_share: float = 0.3,
    attempts: int = 50,
) -> np.ndarray | None:
    """Draw a lesion inside ``first`` (``second`` None) or across ``first`` and ``second``.

    A one-territory lesion is a ball of ``radius_mm`` centred at least ``radius_mm / 2`` deep
    in ``first``, cut to ``first`` (a stroke fills its territory up to the border); a
    two-territory lesion is a ball centred on the border of the two, cut to their union, and
    kept when each holds at least ``min_share`` of it.

    Returns
    -------
    ndarray of bool or None
        The lesion, or None when no position fits in ``attempts`` draws.
    """
    code = {name: label for label, name in names.items()}
    inside = territories == code[first]
    voxel_mm = np.sqrt((np.asarray(affine)[:3, :3] ** 2).sum(axis=0))
    if second is None:
        depth = ndimage.distance_transform_edt(inside, sampling=voxel_mm)
        candidates = np.argwhere(depth >= min(radius_mm / 2.0, depth.max()))
        allowed = inside
    else:
        other = territories == code[second]
        candidates = np.argwhere(inside & ndimage.binary_dilation(other, iterations=1))
        allowed = inside | other
    if not len(candidates):
        return None
    for _ in range(attempts):
        centre = candidates[rng.integers(len(candidates))]
        lesion = _ball(territories.shape, centre, radius_mm, voxel_mm) & allowed
        if second is None:
            return lesion
        share = (lesion & inside).sum() / max(lesion.sum(), 1)
        if min_share <= share <= 1.0 - min_share:
            return lesion
    return None
