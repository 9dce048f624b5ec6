"""Private helpers: checked image reading, writing, and a scratch folder for antspyx."""

from __future__ import annotations

import contextlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nibabel as nb
import numpy as np

from aslmig.anat.threads import note_ants_use
from aslmig.errors import InputError

_SMALLEST_NIFTI_BYTES = 32  # a gzipped NIfTI-1 header alone is larger than this
_GRID_ATOL_MM = 1e-3


def ants_module() -> Any:
    """Import antspyx on first use (it takes about 2 s) and record the thread setting.

    Returns
    -------
    module
        The ``ants`` module.
    """
    try:
        import ants
    except ImportError as error:  # pragma: no cover - depends on the installation
        raise RuntimeError(
            "the anatomical steps need the antspyx package (pip install antspyx)"
        ) from error
    note_ants_use()
    return ants


def spatial_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """Drop trailing singleton dimensions beyond the third (``(x, y, z, 1)`` is 3D)."""
    shape = tuple(int(n) for n in shape)
    while len(shape) > 3 and shape[-1] == 1:
        shape = shape[:-1]
    return shape


def load_nifti(
    path: str | Path, role: str, ndims: tuple[int, ...] = (3,), *, allow_empty: bool = False
) -> nb.Nifti1Image:
    """Load a NIfTI image and refuse missing, empty, non-finite or wrongly shaped ones.

    Parameters
    ----------
    path : str or Path
        The image file.
    role : str
        What the image is, for error messages (e.g. ``"T1w image"``).
    ndims : tuple of int
        Accepted numbers of dimensions (trailing singleton dimensions do not count).
    allow_empty : bool
        Accept an image whose voxels are all zero.

    Returns
    -------
    nibabel.Nifti1Image
        The image, with its data already checked.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, f"the {role} file does not exist", "check the path")
    if path.stat().st_size < _SMALLEST_NIFTI_BYTES:
        raise InputError(path, f"the {role} file is empty", "replace it with a NIfTI image")
    try:
        image = nb.load(str(path))
    except Exception as error:  # nibabel raises many types for corrupt files
        raise InputError(
            path, f"the {role} cannot be read as NIfTI ({type(error).__name__})"
        ) from None
    shape = spatial_shape(image.shape)
    if len(shape) not in ndims:
        wanted = " or ".join(f"{n}D" for n in ndims)
        raise InputError(
            path,
            f"the {role} must be a {wanted} image, but its shape is {tuple(image.shape)}",
            "pass a single volume" if ndims == (3,) else "pass a 3D image or a 4D series",
        )
    if min(shape) < 1:
        raise InputError(path, f"the {role} has no voxels (shape {tuple(image.shape)})")
    _check_values(image, path, role, allow_empty)
    return image


def _check_values(image: nb.Nifti1Image, path: Path, role: str, allow_empty: bool) -> None:
    try:
        data = np.asanyarray(image.dataobj)
    except Exception as error:  # truncated gzip, short file, ...
        raise InputError(path, f"the {role} data are truncated or corrupt ({error})") from None
    if not np.isfinite(data).all():
        raise InputError(path, f"the {role} holds NaN or infinite voxel values", "re-export it")
    if not allow_empty and not data.any():
        raise InputError(path, f"every voxel of the {role} is zero", "check the file")


def read_image(path: str | Path, role: str, ndims: tuple[int, ...] = (3,)) -> Any:
    """Check an image with :func:`load_nifti`, then read it with antspyx.

    Parameters
    ----------
    path : str or Path
        The image file.
    role : str
        What the image is, for error messages.
    ndims : tuple of int
        Accepted numbers of dimensions.

    Returns
    -------
    ants.ANTsImage
        The image (ITK drops trailing singleton dimensions itself).
    """
    load_nifti(path, role, ndims)
    ants = ants_module()
    try:
        return ants.image_read(str(path))
    except RuntimeError as error:
        problem = "orientation" if "orthonormal" in str(error) else "header"
        raise InputError(
            path,
            f"ITK cannot read the {role} ({problem}: {str(error).strip().splitlines()[-1]})",
            "reslice it to an orthonormal (non-sheared) grid",
        ) from None


def write_image(image: Any, out_file: str | Path, pixeltype: str | None = None) -> Path:
    """Write an antspyx image, creating the folder; return the path.

    Parameters
    ----------
    image : ants.ANTsImage
        The image.
    out_file : str or Path
        Where to write it (``.nii.gz`` or ``.nii``).
    pixeltype : str, optional
        ANTs pixel type to cast to first (e.g. ``"unsigned char"`` for masks).

    Returns
    -------
    Path
        ``out_file``.
    """
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    if pixeltype is not None and image.pixeltype != pixeltype:
        image = image.clone(pixeltype)
    ants_module().image_write(image, str(out_file))
    return out_file


def from_array(array: np.ndarray, like: Any) -> Any:
    """Make an antspyx image from an array on the grid of ``like``."""
    return ants_module().from_numpy(
        np.ascontiguousarray(array),
        origin=like.origin,
        spacing=like.spacing,
        direction=like.direction,
    )


def same_grid(first: Any, second: Any) -> bool:
    """Whether two antspyx images share shape, origin, spacing and direction."""
    return (
        first.shape == second.shape
        and np.allclose(first.origin, second.origin, atol=_GRID_ATOL_MM)
        and np.allclose(first.spacing, second.spacing, atol=_GRID_ATOL_MM)
        and np.allclose(first.direction, second.direction, atol=1e-5)
    )


def require_same_grid(image: Any, mask: Any, mask_path: str | Path, image_path: str | Path) -> None:
    """Refuse a mask that is not on the grid of its image."""
    if not same_grid(image, mask):
        raise InputError(
            mask_path,
            f"the mask is not on the voxel grid of {Path(image_path).name} "
            f"(shape {mask.shape} vs {image.shape}, or origin/spacing/direction differ)",
            "resample the mask onto that image first",
        )


@contextlib.contextmanager
def ants_scratch() -> Iterator[Path]:
    """Send the temporary files that antspyx names with ``mktemp`` to a private folder.

    antspyx writes registration outputs and Atropos posteriors to ``tempfile.gettempdir()``
    and never deletes them; this redirects them to a folder removed on exit. It changes
    ``tempfile.tempdir`` for the duration, so it is not meant for threaded use.

    Yields
    ------
    Path
        The scratch folder.
    """
    with tempfile.TemporaryDirectory(prefix="aslmig-ants-") as scratch:
        previous = tempfile.tempdir
        tempfile.tempdir = scratch
        try:
            yield Path(scratch)
        finally:
            tempfile.tempdir = previous
