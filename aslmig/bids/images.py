"""Checks that an image file holds usable voxels, with errors that name the file."""

from __future__ import annotations

import zlib
from pathlib import Path

import nibabel as nb
import numpy as np

from aslmig.errors import InputError

_CHUNK_VOLUMES = 16
_SMALLEST_NIFTI_BYTES = 32  # a gzipped NIfTI-1 header alone is larger than this


def image_shape(path: Path, shown_as: str) -> tuple[int, ...]:
    """Return the shape of a NIfTI image from its header, refusing unreadable files.

    Parameters
    ----------
    path : Path
        The image file.
    shown_as : str
        How to name the file in error messages.

    Returns
    -------
    tuple of int
        The image shape.
    """
    size = path.stat().st_size
    if size < _SMALLEST_NIFTI_BYTES:
        raise InputError(
            shown_as,
            f"the image file is empty ({size} bytes)",
            "replace the placeholder with the real NIfTI image",
        )
    try:
        image = nb.load(str(path))
    except Exception as error:  # nibabel raises many types for corrupt files
        raise InputError(shown_as, f"cannot be read as NIfTI ({type(error).__name__})") from None
    return tuple(int(n) for n in image.shape)


def check_voxels(path: Path, shown_as: str) -> None:
    """Refuse images whose voxels are NaN/inf, or all zero, or that cannot be decompressed.

    The data are read in blocks of volumes so that long series do not need to be
    held in memory twice.

    Parameters
    ----------
    path : Path
        The image file.
    shown_as : str
        How to name the file in error messages.
    """
    image_shape(path, shown_as)
    image = nb.load(str(path))
    proxy = image.dataobj
    n_volumes = image.shape[3] if len(image.shape) > 3 else 1
    any_nonzero = False
    try:
        for start in range(0, n_volumes, _CHUNK_VOLUMES):
            block = np.asarray(
                proxy[..., start : start + _CHUNK_VOLUMES] if len(image.shape) > 3 else proxy
            )
            if not np.isfinite(block).all():
                raise InputError(
                    shown_as,
                    "the image holds NaN or infinite voxel values",
                    "re-export it from the scanner data",
                )
            any_nonzero = any_nonzero or bool(np.any(block))
    except (OSError, EOFError, ValueError, zlib.error) as error:
        raise InputError(shown_as, f"the image data are truncated or corrupt ({error})") from None
    if not any_nonzero:
        raise InputError(shown_as, "every voxel of the image is zero", "check the conversion")
