"""Rigid-body registration and resampling of small 3D volumes (numpy/scipy; nibabel for FWHM).

Conventions
-----------
Every transform is a 4x4 **world** (scanner, mm) matrix ``A`` that maps a point ``x`` of the
*fixed* (reference) image to the point ``A @ x`` of the *moving* image that shows the same
tissue; the aligned image is ``moving(A @ x)`` sampled on the fixed grid.  This is the
"object motion" of the head: a head that moved by ``A`` after the reference was acquired is
corrected by sampling the moved image at ``A @ x``.

Rigid parameters are ``(trans_x, trans_y, trans_z, rot_x, rot_y, rot_z)`` with translations in
mm and rotations in radians, and ``A = T(t) @ Rx(rot_x) @ Ry(rot_y) @ Rz(rot_z)``: rotations
about the **world origin** (x = 0 mm, not the image centre), right-handed, applied z first,
then y, then x, then the translation.  This is the convention of SPM (``spm_matrix``) and of
the asldro motion model.  ``Rx = [[1, 0, 0], [0, c, -s], [0, s, c]]``,
``Ry = [[c, 0, s], [0, 1, 0], [-s, 0, c]]``, ``Rz = [[c, -s, 0], [s, c, 0], [0, 0, 1]]``.

Method
------
:func:`register_rigid` minimises the sum of squared differences between the fixed image and a
linearly rescaled (``a * moving + b``, refitted at every iteration) moving image over a mask of
the fixed image, by inverse-compositional Gauss-Newton (Baker & Matthews 2004, IJCV 56:221;
the fixed image's gradient makes a constant Jacobian, as in SPM's realignment).  The moving
image is interpolated with cubic B-splines.  A coarse level on Gaussian-smoothed images
(6 mm FWHM by default) precedes the full-resolution level, for a capture range of several mm.
Points that map outside the moving image's field of view are left out of the cost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from nibabel.processing import fwhm2sigma
from scipy import ndimage

#: Default smoothing (FWHM, mm) of the coarse-to-fine levels of :func:`register_rigid`.
DEFAULT_LEVELS_MM = (6.0, 0.0)
#: Stop when an update moves no point within 50 mm of the centre by more than this (mm).
DEFAULT_TOLERANCE_MM = 1e-3
DEFAULT_MAX_ITERATIONS = 40
_LEVER_MM = 50.0
_SPLINE_ORDER = 3
_COARSE_STRIDE = 2


class RegistrationError(RuntimeError):
    """A registration that cannot proceed (the images stopped overlapping)."""


def rotation_matrix(rot_x: float, rot_y: float, rot_z: float) -> np.ndarray:
    """Return ``Rx(rot_x) @ Ry(rot_y) @ Rz(rot_z)`` (radians, right-handed).

    Parameters
    ----------
    rot_x, rot_y, rot_z : float
        Rotation angles about the x, y and z axes, rad.

    Returns
    -------
    ndarray
        3x3 rotation matrix.
    """
    ca, sa = np.cos(rot_x), np.sin(rot_x)
    cb, sb = np.cos(rot_y), np.sin(rot_y)
    cc, sc = np.cos(rot_z), np.sin(rot_z)
    rx = np.array([[1.0, 0.0, 0.0], [0.0, ca, -sa], [0.0, sa, ca]])
    ry = np.array([[cb, 0.0, sb], [0.0, 1.0, 0.0], [-sb, 0.0, cb]])
    rz = np.array([[cc, -sc, 0.0], [sc, cc, 0.0], [0.0, 0.0, 1.0]])
    return rx @ ry @ rz


def rigid_matrix(params: Sequence[float]) -> np.ndarray:
    """Return the 4x4 world matrix of rigid parameters (see the module conventions).

    Parameters
    ----------
    params : sequence of float
        ``(trans_x, trans_y, trans_z, rot_x, rot_y, rot_z)``: mm and rad.

    Returns
    -------
    ndarray
        ``T(t) @ Rx @ Ry @ Rz``, shape (4, 4).
    """
    p = np.asarray(params, float)
    if p.shape != (6,):
        raise ValueError(f"rigid parameters need 6 values, got shape {p.shape}")
    matrix = np.eye(4)
    matrix[:3, :3] = rotation_matrix(*p[3:])
    matrix[:3, 3] = p[:3]
    return matrix


def rigid_parameters(matrix: np.ndarray) -> np.ndarray:
    """Decompose a rigid 4x4 world matrix into ``(tx, ty, tz, rot_x, rot_y, rot_z)``.

    Parameters
    ----------
    matrix : ndarray
        4x4 rigid matrix ``T @ Rx @ Ry @ Rz``.

    Returns
    -------
    ndarray
        Translations (mm) and rotations (rad), the inverse of :func:`rigid_matrix`
        (rot_y in [-pi/2, pi/2]).
    """
    m = np.asarray(matrix, float)
    rot = m[:3, :3]
    rot_y = np.arcsin(np.clip(rot[0, 2], -1.0, 1.0))
    rot_x = np.arctan2(-rot[1, 2], rot[2, 2])
    rot_z = np.arctan2(-rot[0, 1], rot[0, 0])
    return np.array([*m[:3, 3], rot_x, rot_y, rot_z])


def _small_rigid(delta: np.ndarray, centre: np.ndarray) -> np.ndarray:
    """Rigid matrix of an update: rotation ``delta[3:]`` about ``centre``, then ``delta[:3]``."""
    matrix = np.eye(4)
    matrix[:3, :3] = rotation_matrix(*delta[3:])
    matrix[:3, 3] = centre - matrix[:3, :3] @ centre + delta[:3]
    return matrix


def smooth(image: np.ndarray, fwhm_mm: float, affine: np.ndarray) -> np.ndarray:
    """Gaussian-smooth a 3D image by ``fwhm_mm`` (no-op for 0).

    Parameters
    ----------
    image : ndarray
        3D image.
    fwhm_mm : float
        Full width at half maximum, mm.
    affine : ndarray
        Voxel-to-world matrix (gives the voxel size).

    Returns
    -------
    ndarray
        Smoothed image (float64).
    """
    image = np.asarray(image, float)
    if fwhm_mm <= 0:
        return image
    voxel = np.linalg.norm(np.asarray(affine, float)[:3, :3], axis=0)
    return ndimage.gaussian_filter(image, fwhm2sigma(fwhm_mm) / voxel, mode="nearest")


def spline_coefficients(image: np.ndarray) -> np.ndarray:
    """Cubic B-spline coefficients of a 3D image (for repeated interpolation).

    Parameters
    ----------
    image : ndarray
        3D image.

    Returns
    -------
    ndarray
        Coefficients for ``ndimage.map_coordinates(..., prefilter=False)``.
    """
    return ndimage.spline_filter(np.asarray(image, float), order=_SPLINE_ORDER, mode="nearest")


def _grid_points(shape: Sequence[int], mask: np.ndarray | None = None) -> np.ndarray:
    """Voxel indices (3, N) of a grid, all voxels or those in ``mask``."""
    if mask is not None:
        return np.array(np.nonzero(mask), dtype=float)
    return np.indices(shape, dtype=float).reshape(3, -1)


def _to_moving_voxels(
    points_world: np.ndarray, matrix: np.ndarray, moving_affine: np.ndarray
) -> np.ndarray:
    """Moving-image voxel coordinates (3, N) of fixed world points under ``matrix``."""
    full = np.linalg.inv(moving_affine) @ matrix
    return full[:3, :3] @ points_world + full[:3, 3:4]


def _inside(voxels: np.ndarray, shape: Sequence[int], margin: float = 0.0) -> np.ndarray:
    """Points within the grid, extended by ``margin`` voxels on each side."""
    upper = np.asarray(shape, float)[:, None] - 1.0 + margin
    return np.all((voxels >= -margin) & (voxels <= upper), axis=0)


def resample(
    image: np.ndarray,
    image_affine: np.ndarray,
    matrix: np.ndarray,
    target_shape: Sequence[int],
    target_affine: np.ndarray,
    *,
    coefficients: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Sample ``image`` at ``matrix @ x`` for every voxel ``x`` of a target grid (cubic spline).

    Parameters
    ----------
    image : ndarray
        3D image to sample.
    image_affine : ndarray
        Its voxel-to-world matrix.
    matrix : ndarray
        4x4 world matrix, target world -> image world.
    target_shape : sequence of int
        Shape of the output grid.
    target_affine : ndarray
        Voxel-to-world matrix of the output grid.
    coefficients : ndarray, optional
        Precomputed :func:`spline_coefficients` of ``image``.

    Returns
    -------
    resampled : ndarray
        Image on the target grid (float64). Points outside the field of view take the
        nearest edge value.
    inside : ndarray of bool
        Voxels whose sample point lay inside the image's field of view (within the extent
        of its edge voxels, i.e. half a voxel beyond their centres).
    """
    coef = spline_coefficients(image) if coefficients is None else coefficients
    points = _grid_points(target_shape)
    world = target_affine[:3, :3] @ points + target_affine[:3, 3:4]
    voxels = _to_moving_voxels(world, matrix, image_affine)
    values = ndimage.map_coordinates(
        coef, voxels, order=_SPLINE_ORDER, mode="nearest", prefilter=False
    )
    shape = tuple(target_shape)
    return values.reshape(shape), _inside(voxels, np.shape(image), 0.5).reshape(shape)


@dataclass(frozen=True)
class FixedImage:
    """A fixed image prepared for repeated registrations at one smoothing level.

    Attributes
    ----------
    values : ndarray
        Fixed intensities at the mask points, shape (N,).
    points_world : ndarray
        World coordinates of the mask points, shape (3, N).
    jacobian : ndarray
        Steepest-descent images ``dF/dp`` at the mask points, shape (N, 6).
    centre : ndarray
        Centre (mm) about which the update rotations turn (mask centroid).
    fwhm_mm : float
        Smoothing applied to fixed and moving images at this level.
    hessian : ndarray
        ``jacobian.T @ jacobian``, (6, 6).
    """

    values: np.ndarray
    points_world: np.ndarray
    jacobian: np.ndarray
    centre: np.ndarray
    fwhm_mm: float
    hessian: np.ndarray


def prepare_fixed(
    fixed: np.ndarray, affine: np.ndarray, mask: np.ndarray, fwhm_mm: float, stride: int = 1
) -> FixedImage:
    """Precompute what the Gauss-Newton iterations need from the fixed image.

    Parameters
    ----------
    fixed : ndarray
        3D fixed (reference) image.
    affine : ndarray
        Its voxel-to-world matrix.
    mask : ndarray of bool
        Voxels that enter the cost.
    fwhm_mm : float
        Gaussian smoothing, mm (0 for none).
    stride : int
        Use every ``stride``-th voxel along each axis (coarse levels need fewer points).

    Returns
    -------
    FixedImage
        Values, world points and the constant Jacobian at the mask points.
    """
    image = smooth(fixed, fwhm_mm, affine)
    mask = np.asarray(mask, bool)
    if stride > 1:
        sparse = np.zeros_like(mask)
        sparse[::stride, ::stride, ::stride] = True
        mask = mask & sparse
    voxels = _grid_points(image.shape, mask)
    index = tuple(voxels.astype(int))
    gradient_voxel = np.stack([g[index] for g in np.gradient(image)])
    gradient = np.linalg.inv(affine[:3, :3]).T @ gradient_voxel
    world = affine[:3, :3] @ voxels + affine[:3, 3:4]
    centre = world.mean(axis=1)
    lever = world - centre[:, None]
    jacobian = np.ascontiguousarray(np.concatenate([gradient, np.cross(lever, gradient, axis=0)]).T)
    return FixedImage(image[index], world, jacobian, centre, fwhm_mm, jacobian.T @ jacobian)


def prepare_levels(
    fixed: np.ndarray,
    affine: np.ndarray,
    mask: np.ndarray | None = None,
    levels_mm: Sequence[float] = DEFAULT_LEVELS_MM,
) -> list[FixedImage]:
    """Prepare the coarse-to-fine levels of a fixed image (smoothed levels use every 2nd voxel).

    Parameters
    ----------
    fixed : ndarray
        3D fixed image.
    affine : ndarray
        Its voxel-to-world matrix.
    mask : ndarray of bool, optional
        Voxels that enter the cost (default :func:`registration_mask`).
    levels_mm : sequence of float
        Gaussian smoothing (FWHM, mm) of each level.

    Returns
    -------
    list of FixedImage
        One per level.
    """
    fixed = np.asarray(fixed, float)
    mask = registration_mask(fixed) if mask is None else np.asarray(mask, bool)
    return [
        prepare_fixed(fixed, affine, mask, fwhm, stride=_COARSE_STRIDE if fwhm > 0 else 1)
        for fwhm in levels_mm
    ]


def registration_mask(image: np.ndarray, dilation: int = 2) -> np.ndarray:
    """Voxels worth registering: above a tenth of the robust maximum, dilated.

    Parameters
    ----------
    image : ndarray
        3D reference image.
    dilation : int
        Dilation iterations (voxels) so that the head's edges are included.

    Returns
    -------
    ndarray of bool
        The mask (all voxels when the image is flat).
    """
    image = np.asarray(image, float)
    high = np.percentile(image, 99.0)
    if not high > 0:
        return np.ones(image.shape, bool)
    mask = image > 0.1 * high
    return ndimage.binary_dilation(mask, iterations=dilation) if dilation else mask


def _hessian(fixed: FixedImage, inside: np.ndarray) -> np.ndarray:
    """Gauss-Newton matrix ``J^T J`` over the points inside the moving field of view."""
    if inside.all():
        return fixed.hessian
    outside = fixed.jacobian[~inside]
    return fixed.hessian - outside.T @ outside


def gain_basis(points_world: np.ndarray, centre: np.ndarray, degree: int = 2) -> np.ndarray:
    """Polynomial basis (N, K) of a smooth multiplicative gain field, up to ``degree``.

    Parameters
    ----------
    points_world : ndarray
        World coordinates (3, N), mm.
    centre : ndarray
        Centre, mm; coordinates are scaled by 100 mm.
    degree : int
        0, 1 or 2 (1, 4 or 10 terms).

    Returns
    -------
    ndarray
        Basis functions at the points.
    """
    u = (points_world - centre[:, None]) / 100.0
    columns = [np.ones(u.shape[1])]
    if degree >= 1:
        columns += list(u)
    if degree >= 2:
        columns += [u[i] * u[j] for i in range(3) for j in range(i, 3)]
    return np.stack(columns, axis=1)


def slice_basis(points_world: np.ndarray, affine: np.ndarray, slice_axis: int) -> np.ndarray:
    """One indicator column per slice (N, K): a gain of its own for each acquired slice.

    Parameters
    ----------
    points_world : ndarray
        World coordinates (3, N), mm.
    affine : ndarray
        Voxel-to-world matrix of the grid whose slices are meant.
    slice_axis : int
        Voxel axis (0, 1 or 2) along which the slices were acquired.

    Returns
    -------
    ndarray
        ``basis[n, k] = 1`` when point ``n`` lies in the ``k``-th slice present.
    """
    voxels = np.linalg.inv(affine)[:3] @ np.vstack([points_world, np.ones(points_world.shape[1])])
    index = np.rint(voxels[slice_axis]).astype(int)
    return (index[:, None] == np.unique(index)[None, :]).astype(float)


#: Polynomial degree of the gain field of each intensity model. Degrees 3+ were tried and
#: start to trade gain for translation (the x^3 term mimics a shift along x).
_GAIN_DEGREE = {"global": 0, "smooth": 2}
INTENSITY_MODELS = ("none", "global", "smooth", "slices")


def _intensity_basis(
    level: FixedImage, intensity: str, affine: np.ndarray, slice_axis: int | None
) -> np.ndarray | None:
    """Gain basis at a level's points for an intensity model (None: plain SSD)."""
    if intensity == "none":
        return None
    if intensity == "slices":
        if slice_axis not in (0, 1, 2):
            raise ValueError(f"intensity='slices' needs slice_axis 0, 1 or 2, not {slice_axis!r}")
        return slice_basis(level.points_world, affine, slice_axis)
    return gain_basis(level.points_world, level.centre, _GAIN_DEGREE[intensity])


def _intensity_fit(moving: np.ndarray, fixed: np.ndarray, basis: np.ndarray) -> np.ndarray:
    """Least-squares fit of ``fixed`` by ``gain(x) * moving + offset``; returns the fit."""
    columns = np.concatenate([basis * moving[:, None], np.ones((moving.size, 1))], axis=1)
    gram = columns.T @ columns
    scale = np.sqrt(np.diag(gram))
    scale[scale == 0] = 1.0
    coef = np.linalg.lstsq(gram / np.outer(scale, scale), columns.T @ fixed / scale, rcond=None)[0]
    return columns @ (coef / scale)


def _gauss_newton(
    fixed: FixedImage,
    coefficients: np.ndarray,
    shape: Sequence[int],
    moving_affine: np.ndarray,
    matrix: np.ndarray,
    basis: np.ndarray | None,
    tolerance_mm: float,
    max_iterations: int,
) -> np.ndarray:
    """Inverse-compositional Gauss-Newton iterations at one level; returns the matrix.

    ``basis`` is the gain basis of the intensity model at the level's points (None: SSD).
    """
    for _ in range(max_iterations):
        voxels = _to_moving_voxels(fixed.points_world, matrix, moving_affine)
        inside = _inside(voxels, shape)
        if inside.sum() < 100:
            raise RegistrationError("rigid registration lost the overlap between the images")
        warped = ndimage.map_coordinates(
            coefficients, voxels[:, inside], order=_SPLINE_ORDER, mode="nearest", prefilter=False
        )
        target = fixed.values[inside]
        if basis is not None:
            warped = _intensity_fit(warped, target, basis[inside])
        delta = np.linalg.solve(
            _hessian(fixed, inside), fixed.jacobian[inside].T @ (warped - target)
        )
        matrix = matrix @ np.linalg.inv(_small_rigid(delta, fixed.centre))
        if np.abs(delta[:3]).max() + _LEVER_MM * np.abs(delta[3:]).max() < tolerance_mm:
            break
    return matrix


def register_rigid(
    fixed: np.ndarray | Sequence[FixedImage],
    fixed_affine: np.ndarray,
    moving: np.ndarray,
    moving_affine: np.ndarray,
    *,
    initial: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    levels_mm: Sequence[float] = DEFAULT_LEVELS_MM,
    intensity: Literal["none", "global", "smooth", "slices"] = "global",
    slice_axis: int | None = None,
    tolerance_mm: float = DEFAULT_TOLERANCE_MM,
    max_iterations: int = DEFAULT_MAX_ITERATIONS,
) -> np.ndarray:
    """Rigidly register ``moving`` to ``fixed``; return the world matrix fixed -> moving.

    Parameters
    ----------
    fixed : ndarray or sequence of FixedImage
        3D fixed image, or its :func:`prepare_fixed` levels (reused across many moving images;
        then ``mask`` and ``levels_mm`` are ignored).
    fixed_affine : ndarray
        Voxel-to-world matrix of the fixed image.
    moving : ndarray
        3D moving image (any grid).
    moving_affine : ndarray
        Its voxel-to-world matrix.
    initial : ndarray, optional
        Starting 4x4 world matrix (identity by default).
    mask : ndarray of bool, optional
        Fixed-image voxels that enter the cost (default :func:`registration_mask`).
    levels_mm : sequence of float
        Gaussian smoothing (FWHM, mm) of each coarse-to-fine level.
    intensity : {"none", "global", "smooth", "slices"}
        Intensity model refitted (least squares) at each iteration: ``"global"``:
        ``a * moving + b`` (images whose scale differs, e.g. M0 against control);
        ``"smooth"``: a quadratic gain field ``a(x) * moving + b``, which also absorbs smooth
        multiplicative differences such as a perfusion gradient (ΔM ~ 1 % of control that
        varies slowly across the brain) instead of reading them as motion; ``"slices"``: a
        gain of its own for each slice of the fixed grid along ``slice_axis``, ``a_k *
        moving + b`` (2D multi-slice readouts, where background suppression and the slice
        timing give every slice its own static-tissue level, which a smooth or global model
        reads as a through-plane shift and tilt); ``"none"``: plain sum of squared
        differences.
    slice_axis : int, optional
        Slice axis of the fixed grid, for ``intensity="slices"``.
    tolerance_mm : float
        Convergence threshold on the largest update displacement within 50 mm, mm.
    max_iterations : int
        Iterations per level.

    Returns
    -------
    ndarray
        4x4 world matrix ``A``: ``moving(A @ x)`` matches ``fixed(x)``.

    Raises
    ------
    RegistrationError
        When fewer than 100 mask points still map into the moving image.
    """
    if intensity not in INTENSITY_MODELS:
        raise ValueError(f"intensity={intensity!r}; use one of {INTENSITY_MODELS}")
    fixed_affine = np.asarray(fixed_affine, float)
    moving_affine = np.asarray(moving_affine, float)
    if isinstance(fixed, np.ndarray):
        prepared = prepare_levels(fixed, fixed_affine, mask, levels_mm)
    else:
        prepared = list(fixed)
    moving = np.asarray(moving, float)
    matrix = np.eye(4) if initial is None else np.asarray(initial, float)
    for level in prepared:
        coefficients = spline_coefficients(smooth(moving, level.fwhm_mm, moving_affine))
        matrix = _gauss_newton(
            level,
            coefficients,
            moving.shape,
            moving_affine,
            matrix,
            _intensity_basis(level, intensity, fixed_affine, slice_axis),
            tolerance_mm,
            max_iterations,
        )
    return matrix
