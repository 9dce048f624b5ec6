"""Template anatomy of a simulated cohort: tissue maps, subject grids, poses, resampling.

Conventions follow :mod:`aslmig.asl.rigid`: a subject's head sits at the 4x4 world matrix
``H = R(pose) @ S(scale)`` (a rigid pose times a global scaling about the world origin), so a
subject-space point ``x`` shows the template at ``H^-1 · x``. Every output voxel is the mean
of 3x3x3 sub-samples of the (trilinearly interpolated) template, so coarse grids carry
partial-volume fractions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import nibabel as nb
import numpy as np
from scipy import ndimage

from aslmig.asl.rigid import rigid_matrix
from aslmig.atlas.templates import BUNDLED_SPACE, bundle_root, file_name

TISSUES = ("GM", "WM", "CSF")
#: Field of view (mm) of the simulated ASL and T1w grids, and its centre in world space.
FIELD_OF_VIEW_MM = (168.0, 204.0, 156.0)
FIELD_CENTRE_MM = (0.0, -18.0, 12.0)
SUBSAMPLES = 3


@dataclass(frozen=True)
class TemplateAnatomy:
    """Tissue probability maps on a template grid.

    Attributes
    ----------
    space : str
        Template identifier (``MNI152NLin2009aSym`` for the bundled one).
    gm, wm, csf : ndarray
        Probability maps (0-1), same shape.
    affine : ndarray
        4x4 voxel-to-world matrix of the maps.
    """

    space: str
    gm: np.ndarray
    wm: np.ndarray
    csf: np.ndarray
    affine: np.ndarray

    @property
    def shape(self) -> tuple[int, int, int]:
        """Shape of the template grid."""
        return tuple(self.gm.shape)

    def tissue(self, name: str) -> np.ndarray:
        """Return the probability map of ``"GM"``, ``"WM"`` or ``"CSF"``."""
        return {"GM": self.gm, "WM": self.wm, "CSF": self.csf}[name]


def load_template_anatomy(res: str = "02") -> TemplateAnatomy:
    """Load the bundled MNI152NLin2009aSym tissue probability maps.

    Parameters
    ----------
    res : str
        TemplateFlow resolution index of the bundle (only ``"02"``, 2 mm, is shipped).

    Returns
    -------
    TemplateAnatomy
        The maps, clipped to [0, 1].
    """
    folder = bundle_root() / f"tpl-{BUNDLED_SPACE}"
    maps = {}
    for tissue in TISSUES:
        image = nb.load(folder / file_name(BUNDLED_SPACE, res, f"label-{tissue}", "probseg"))
        maps[tissue] = np.clip(np.asanyarray(image.dataobj, dtype=float), 0.0, 1.0)
    return TemplateAnatomy(BUNDLED_SPACE, maps["GM"], maps["WM"], maps["CSF"], image.affine)


def grid_for(voxel_mm: float, fov_mm=FIELD_OF_VIEW_MM, centre_mm=FIELD_CENTRE_MM):
    """Return the shape and affine of an isotropic grid covering the field of view.

    Parameters
    ----------
    voxel_mm : float
        Voxel size, mm.
    fov_mm, centre_mm : tuple of float
        Field of view and its centre in world coordinates, mm.

    Returns
    -------
    shape : tuple of int
        Grid shape.
    affine : ndarray
        4x4 voxel-to-world matrix (RAS, axis-aligned).
    """
    shape = tuple(max(1, math.ceil(f / voxel_mm)) for f in fov_mm)
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = np.asarray(centre_mm) - 0.5 * voxel_mm * (np.asarray(shape) - 1)
    return shape, affine


def head_matrix(pose: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Return ``H = R(pose) @ S(scale)``: where the template head sits in subject space.

    Parameters
    ----------
    pose : ndarray
        Rigid parameters ``(tx, ty, tz, rx, ry, rz)`` in mm and rad.
    scale : float
        Global isotropic scaling of the head about the world origin.

    Returns
    -------
    ndarray
        4x4 world matrix.
    """
    return rigid_matrix(pose) @ np.diag([scale, scale, scale, 1.0])


def resample_channels(
    channels: np.ndarray,
    source_affine: np.ndarray,
    head: np.ndarray,
    shape: tuple[int, ...],
    affine: np.ndarray,
    subsamples: int = SUBSAMPLES,
) -> np.ndarray:
    """Resample template-space channels onto a subject grid whose head sits at ``head``.

    Parameters
    ----------
    channels : ndarray
        ``(n_channels, *template_shape)``.
    source_affine : ndarray
        Template voxel-to-world matrix.
    head : ndarray
        Head matrix (see :func:`head_matrix`).
    shape : tuple of int
        Output grid shape.
    affine : ndarray
        Output voxel-to-world matrix.
    subsamples : int
        Sub-samples per axis averaged into each output voxel.

    Returns
    -------
    ndarray
        ``(n_channels, *shape)``; 0 outside the template.
    """
    voxel_map = np.linalg.inv(source_affine) @ np.linalg.inv(head) @ affine
    offsets = (np.arange(subsamples) - (subsamples - 1) / 2.0) / subsamples
    total = np.zeros((channels.shape[0], *shape))
    for dx in offsets:
        for dy in offsets:
            for dz in offsets:
                shift = voxel_map[:3, :3] @ np.array([dx, dy, dz]) + voxel_map[:3, 3]
                for index, channel in enumerate(channels):
                    total[index] += ndimage.affine_transform(
                        channel, voxel_map[:3, :3], shift, output_shape=shape, order=1
                    )
    return total / offsets.size**3


def random_pose(rng: np.random.Generator, translation_mm: float, rotation_deg: float):
    """Draw rigid parameters uniformly within ±``translation_mm`` and ±``rotation_deg``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    translation_mm, rotation_deg : float
        Largest absolute translation (per axis, mm) and rotation (per axis, degrees).

    Returns
    -------
    ndarray
        ``(tx, ty, tz, rx, ry, rz)`` in mm and rad.
    """
    translation = rng.uniform(-1.0, 1.0, 3) * translation_mm
    rotation = np.deg2rad(rng.uniform(-1.0, 1.0, 3) * rotation_deg)
    return np.concatenate([translation, rotation])


def motion_trajectory(
    rng: np.random.Generator, n_volumes: int, translation_mm: float, rotation_deg: float
) -> np.ndarray:
    """Smooth head motion across a series, starting at rest.

    The head drifts along one random direction (translation) and about one random axis
    (rotation), with a random smooth amplitude profile whose largest value is the maximum:
    the largest translation is ``translation_mm`` and the largest rotation ``rotation_deg``.

    Parameters
    ----------
    rng : numpy.random.Generator
        Random stream.
    n_volumes : int
        Number of volumes.
    translation_mm, rotation_deg : float
        Largest displacement (mm) and rotation (degrees) over the series.

    Returns
    -------
    ndarray
        ``(n_volumes, 6)`` rigid parameters (mm, rad); the first row is zero.
    """
    params = np.zeros((n_volumes, 6))
    if n_volumes < 2 or (translation_mm <= 0 and rotation_deg <= 0):
        return params
    for columns, largest in (
        (slice(0, 3), translation_mm),
        (slice(3, 6), np.deg2rad(rotation_deg)),
    ):
        direction = rng.normal(size=3)
        direction /= np.linalg.norm(direction)
        steps = np.abs(rng.normal(size=n_volumes - 1)) + 0.2
        profile = np.concatenate([[0.0], np.cumsum(steps)])
        params[:, columns] = largest * (profile / profile[-1])[:, None] * direction
    return params


def resample_labels(
    labels: np.ndarray, label_affine: np.ndarray, shape: tuple[int, ...], affine: np.ndarray
) -> np.ndarray:
    """Nearest-neighbour resampling of an integer label image onto another grid.

    Parameters
    ----------
    labels : ndarray of int
        Label image.
    label_affine : ndarray
        Its voxel-to-world matrix.
    shape : tuple of int
        Target grid shape.
    affine : ndarray
        Target voxel-to-world matrix.

    Returns
    -------
    ndarray of int
        Labels on the target grid (0 outside the source).
    """
    if tuple(labels.shape) == tuple(shape) and np.allclose(label_affine, affine, atol=1e-4):
        return np.asarray(labels)
    voxel_map = np.linalg.inv(label_affine) @ affine
    return ndimage.affine_transform(
        np.asarray(labels),
        voxel_map[:3, :3],
        voxel_map[:3, 3],
        output_shape=shape,
        order=0,
        mode="constant",
        cval=0,
    )
