"""NIfTI reading and writing shared by the interfaces."""

from __future__ import annotations

from pathlib import Path

import nibabel as nb
import numpy as np


def load_array(path: str | Path) -> np.ndarray:
    """Read an image's voxels as float64 (scaling applied)."""
    return np.asanyarray(nb.load(str(path)).dataobj, dtype=float)


def save_array(
    array: np.ndarray, affine: np.ndarray, path: str | Path, dtype: type = np.float32
) -> str:
    """Write an array as NIfTI (mm, s units) and return the path as a string."""
    image = nb.Nifti1Image(np.asarray(array, dtype=dtype), affine)
    image.header.set_xyzt_units("mm", "sec")
    image.to_filename(str(path))
    return str(path)
