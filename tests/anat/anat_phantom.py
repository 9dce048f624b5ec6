"""A small synthetic T1w head phantom with known tissue labels, for tests of aslmig.anat.

The head is a set of nested, modulated ellipsoids in world (RAS, mm) coordinates centred
on the origin: scalp, skull, then the brain (outer CSF, GM with a wavy inner border,
WM with two unequal ventricles and a deep-GM nucleus, placed asymmetrically so that
rigid registration has a unique answer). Images are sampled with 2x2x2 supersampling,
so edges have partial-volume values, and labels are the majority label of each voxel.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np

BACKGROUND, SCALP, SKULL, CSF, GM, WM = range(6)
INTENSITY = {BACKGROUND: 0.0, SCALP: 750.0, SKULL: 100.0, CSF: 250.0, GM: 550.0, WM: 900.0}
HEAD_AXES = np.array([40.0, 44.0, 32.0])
SHAPE = (48, 48, 48)
SPACING = 2.0
_VENTRICLES = (((-8.0, 4.0, 5.0), (4.5, 11.0, 5.0)), ((7.0, 6.0, 4.0), (4.0, 9.0, 4.5)))
_NUCLEUS = ((10.0, -10.0, -5.0), (5.0, 5.0, 5.0))
#: Small asymmetric features in the GM and WM: (centre, semi-axes, label).
_FEATURES = (
    ((-12.0, -16.0, 8.0), (3.5, 3.5, 6.0), CSF),
    ((14.0, 14.0, -8.0), (6.0, 3.0, 3.0), WM),
    ((-4.0, 22.0, -12.0), (4.0, 4.0, 4.0), GM),
    ((0.0, -24.0, 10.0), (8.0, 3.0, 3.0), WM),
)


@dataclass(frozen=True)
class Phantom:
    """Files of one phantom image."""

    t1w: Path
    labels: Path
    brain_mask: Path


def grid_affine(shape: tuple[int, int, int] = SHAPE, spacing: float = SPACING) -> np.ndarray:
    """Return the NIfTI affine of a grid centred on the world origin."""
    affine = np.diag([spacing, spacing, spacing, 1.0])
    affine[:3, 3] = -spacing * (np.asarray(shape) - 1) / 2.0
    return affine


def texture_at(points: np.ndarray) -> np.ndarray:
    """Return a smooth +-15 % intensity texture (wavelengths 14-22 mm) at world points."""
    x, y, z = points[..., 0], points[..., 1], points[..., 2]
    waves = np.sin(2 * np.pi * x / 18 + 0.3) * np.sin(2 * np.pi * y / 22 + 1.1)
    waves = waves + np.sin(2 * np.pi * z / 14 + 0.7) * np.cos(2 * np.pi * (x + y) / 20)
    return 1.0 + 0.075 * waves


def labels_at(points: np.ndarray) -> np.ndarray:
    """Return the tissue label at world points of shape (..., 3)."""
    x, y, z = (points[..., k] / HEAD_AXES[k] for k in range(3))
    radius = np.sqrt(x**2 + y**2 + z**2)
    theta = np.arctan2(y, x)
    phi = np.arccos(np.clip(z / np.maximum(radius, 1e-9), -1.0, 1.0))
    labels = np.full(points.shape[:-1], BACKGROUND, dtype=np.uint8)
    labels[radius < 1.0] = SCALP
    labels[radius < 0.88] = SKULL
    labels[radius < 0.78] = CSF
    labels[radius < 0.66 + 0.02 * np.sin(3 * theta) * np.sin(2 * phi)] = GM
    labels[radius < 0.48 + 0.06 * np.sin(4 * theta) * np.sin(3 * phi)] = WM
    for centre, axes in _VENTRICLES:
        labels[_inside(points, centre, axes)] = CSF
    labels[_inside(points, *_NUCLEUS)] = GM
    for centre, axes, label in _FEATURES:
        labels[_inside(points, centre, axes)] = label
    return labels


def _inside(points: np.ndarray, centre: tuple, axes: tuple) -> np.ndarray:
    scaled = (points - np.asarray(centre)) / np.asarray(axes)
    return (scaled**2).sum(axis=-1) < 1.0


def sample(
    transform: np.ndarray | None = None,
    shape: tuple[int, int, int] = SHAPE,
    spacing: float = SPACING,
    supersample: int = 2,
    texture: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample intensities (partial volume) and majority labels on a grid.

    Parameters
    ----------
    transform : array (4, 4), optional
        Maps the grid's world points into the phantom frame (the image shows the phantom
        moved by the inverse of this map).
    shape, spacing : grid
    supersample : int
        Sub-samples per voxel and axis.
    texture : bool
        Modulate brain intensities by :func:`texture_at` (features for registration).

    Returns
    -------
    intensity, labels : arrays of ``shape``
    """
    transform = np.eye(4) if transform is None else transform
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    index = np.stack(np.meshgrid(*[np.arange(n) for n in shape], indexing="ij"), axis=-1)
    matrix = transform @ grid_affine(shape, spacing)
    lookup = np.array([INTENSITY[k] for k in sorted(INTENSITY)])
    intensity = np.zeros(shape)
    counts = np.zeros((*shape, len(INTENSITY)))
    for dx in offsets:
        for dy in offsets:
            for dz in offsets:
                points = (index + np.array([dx, dy, dz])) @ matrix[:3, :3].T + matrix[:3, 3]
                labels = labels_at(points)
                values = lookup[labels]
                if texture:
                    values = np.where(labels >= CSF, values * texture_at(points), values)
                intensity += values
                counts[..., :] += labels[..., None] == np.arange(len(INTENSITY))
    return intensity / supersample**3, np.argmax(counts, axis=-1).astype(np.uint8)


def bias_field(strength: float, shape: tuple[int, int, int] = SHAPE) -> np.ndarray:
    """Return a smooth multiplicative field, exp(strength * polynomial), mean about 1."""
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in shape], indexing="ij")
    return np.exp(strength * (0.6 * x - 0.4 * y + 0.5 * z**2 - 0.3 * x * z))


def write_phantom(
    out_dir: Path,
    name: str,
    transform: np.ndarray | None = None,
    bias: float = 0.0,
    noise: float = 0.0,
    skull: bool = True,
    seed: int = 0,
    texture: bool = False,
    shape: tuple[int, int, int] = SHAPE,
    spacing: float = SPACING,
) -> Phantom:
    """Write a phantom T1w, its labels and its brain mask (CSF+GM+WM)."""
    intensity, labels = sample(transform, shape, spacing, texture=texture)
    if not skull:
        intensity = np.where(labels >= CSF, intensity, 0.0)
    intensity = intensity * bias_field(bias, shape) if bias else intensity
    if noise:
        rng = np.random.default_rng(seed)
        intensity = np.abs(intensity + rng.normal(0.0, noise, intensity.shape))
    affine = grid_affine(shape, spacing)
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = Phantom(
        out_dir / f"{name}_T1w.nii.gz",
        out_dir / f"{name}_labels.nii.gz",
        out_dir / f"{name}_mask.nii.gz",
    )
    nb.Nifti1Image(intensity.astype(np.float32), affine).to_filename(paths.t1w)
    nb.Nifti1Image(labels, affine).to_filename(paths.labels)
    nb.Nifti1Image((labels >= CSF).astype(np.uint8), affine).to_filename(paths.brain_mask)
    return paths


def rigid(angles_deg: tuple[float, float, float], translation: tuple[float, float, float]):
    """Return a 4x4 rigid map: rotations about x, y, z (degrees), then a translation (mm)."""
    ax, ay, az = np.deg2rad(angles_deg)
    rx = np.array([[1, 0, 0], [0, np.cos(ax), -np.sin(ax)], [0, np.sin(ax), np.cos(ax)]])
    ry = np.array([[np.cos(ay), 0, np.sin(ay)], [0, 1, 0], [-np.sin(ay), 0, np.cos(ay)]])
    rz = np.array([[np.cos(az), -np.sin(az), 0], [np.sin(az), np.cos(az), 0], [0, 0, 1]])
    matrix = np.eye(4)
    matrix[:3, :3] = rz @ ry @ rx
    matrix[:3, 3] = translation
    return matrix


def read(path: Path) -> np.ndarray:
    """Return the voxel data of a NIfTI file."""
    return np.asanyarray(nb.load(str(path)).dataobj)
