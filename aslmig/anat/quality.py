"""Overlap measures for quality control."""

from __future__ import annotations

from pathlib import Path

import nibabel as nb
import numpy as np
from scipy import ndimage

from aslmig.anat._images import load_nifti
from aslmig.errors import InputError

_GRID_ATOL = 1e-3


def dice(mask_a: str | Path, mask_b: str | Path, threshold: float = 0.0) -> float:
    """Dice coefficient 2|A∩B| / (|A| + |B|) of two 3D masks.

    A voxel belongs to a mask when its value exceeds ``threshold``. If the grids differ
    (shape or affine), ``mask_b`` is resampled onto the grid of ``mask_a`` by nearest
    neighbour (through the two NIfTI affines, i.e. in world coordinates); voxels of
    ``mask_a`` outside ``mask_b``'s field of view count as outside ``mask_b``.

    Parameters
    ----------
    mask_a, mask_b : str or Path
        3D mask images (binary, or probabilistic with a suitable ``threshold``).
    threshold : float
        Values above it are inside.

    Returns
    -------
    float
        Dice coefficient in [0, 1]; 0 when exactly one mask is empty.

    Raises
    ------
    InputError
        If a file is missing or unreadable, not 3D, or both masks are empty.
    """
    image_a = load_nifti(mask_a, "mask", allow_empty=True)
    image_b = load_nifti(mask_b, "mask", allow_empty=True)
    a = np.asanyarray(image_a.dataobj).reshape(image_a.shape[:3]) > threshold
    b = _on_grid_of(image_b, image_a) > threshold
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        raise InputError(
            f"{mask_a} and {mask_b}", "both masks are empty, so their Dice is undefined"
        )
    return 2.0 * int(np.logical_and(a, b).sum()) / total


def _on_grid_of(image: nb.Nifti1Image, target: nb.Nifti1Image) -> np.ndarray:
    """Return the data of ``image`` resampled (nearest neighbour) onto ``target``'s grid."""
    data = np.asanyarray(image.dataobj).reshape(image.shape[:3]).astype(np.float32)
    shape = tuple(target.shape[:3])
    if data.shape == shape and np.allclose(image.affine, target.affine, atol=_GRID_ATOL):
        return data
    target_to_source = np.linalg.inv(image.affine) @ target.affine
    return ndimage.affine_transform(
        data,
        target_to_source[:3, :3],
        offset=target_to_source[:3, 3],
        output_shape=shape,
        order=0,
        mode="constant",
        cval=0.0,
    )
