"""Checks that an image file holds usable voxels, with errors that name the file.

Everything here runs during validation (also in ``--dry-run``), so that an image that would
fail or mislead later is refused before anything is written.
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import nibabel as nb
import numpy as np
from nibabel.affines import voxel_sizes

from aslmig.errors import InputError, reading, regular_file_size

_CHUNK_VOLUMES = 16
_SMALLEST_NIFTI_BYTES = 32  # a gzipped NIfTI-1 header alone is larger than this
#: Deflate (gzip) cannot expand data by more than about 1032:1 (RFC 1951 block limits).
_LARGEST_GZIP_RATIO = 1032
_GZIP_BLOCK_BYTES = 1 << 22
_CORRUPT_FIX = "re-export it from the scanner data, or copy it again"


def load_image(path: Path, shown_as: str) -> nb.Nifti1Image:
    """Open a NIfTI image after checking its file and header, refusing what cannot be used.

    Refused: unreadable files (permissions, broken or looping links, git-annex content
    not fetched), empty files, non-NIfTI files, headers with no orientation (qform and
    sform codes both 0), zero or non-finite voxel sizes, complex or RGB voxels, and headers
    that claim more voxel data than the file can hold.

    Parameters
    ----------
    path : Path
        The image file.
    shown_as : str
        How to name the file in error messages.

    Returns
    -------
    nibabel.Nifti1Image
        The image, its voxels not yet read.
    """
    size = regular_file_size(path, shown_as)
    with reading(shown_as), open(path, "rb"):
        pass
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
    if len(image.shape) not in (3, 4):
        raise InputError(
            shown_as,
            f"the image has {len(image.shape)} dimensions, not 3 or 4",
            "give a 3-D image or a 4-D series",
        )
    _check_header(image, path, size, shown_as)
    return image


def _check_header(image: nb.Nifti1Image, path: Path, size: int, shown_as: str) -> None:
    header = image.header
    dtype = header.get_data_dtype()
    if dtype.kind == "c":
        raise InputError(
            shown_as,
            f"holds complex voxel values ({dtype.name}); only their real part would be used",
            "give the magnitude image",
        )
    if dtype.kind not in "iuf":
        kind = "RGB colour" if dtype.names else dtype.name
        raise InputError(shown_as, f"holds {kind} voxels, not scalar intensities", _CORRUPT_FIX)
    if int(header.get("qform_code", 0)) == 0 and int(header.get("sform_code", 0)) == 0:
        raise InputError(
            shown_as,
            "has no orientation: its qform_code and sform_code are both 0, so its position "
            "in the scanner is unknown and registration would fail silently",
            "convert the DICOM data again (dcm2niix writes both), or set the sform",
        )
    sizes = voxel_sizes(image.affine)
    if not (np.isfinite(sizes).all() and (sizes > 0).all()):
        shown = ", ".join(f"{size:g}" for size in sizes)
        raise InputError(
            shown_as, f"has voxel sizes ({shown}) mm in its orientation matrix", _CORRUPT_FIX
        )
    claimed = int(np.prod(image.shape, dtype=object)) * dtype.itemsize
    compressed = path.name.endswith(".gz")
    capacity = size * _LARGEST_GZIP_RATIO if compressed else size
    if claimed > capacity:
        shape = "x".join(str(n) for n in image.shape)
        raise InputError(
            shown_as,
            f"the header claims {shape} voxels ({claimed / 1e9:.3g} GB) but the "
            f"{size}-byte file cannot hold them: it is truncated or its header is corrupt",
            _CORRUPT_FIX,
        )


#: Largest difference between two affines (mm) for images to be on the same grid.
GRID_TOLERANCE_MM = 1e-3


def same_grid(
    image: nb.spatialimages.SpatialImage, reference: nb.spatialimages.SpatialImage
) -> bool:
    """Whether two loaded images share a voxel grid: the same 3-D shape and affine.

    Parameters
    ----------
    image, reference : nibabel image
        Loaded images (only their headers are read).

    Returns
    -------
    bool
        Shapes equal and affines within :data:`GRID_TOLERANCE_MM`.
    """
    return image.shape[:3] == reference.shape[:3] and np.allclose(
        image.affine, reference.affine, atol=GRID_TOLERANCE_MM
    )


def image_shape(path: Path, shown_as: str) -> tuple[int, ...]:
    """Return the shape of a NIfTI image from its checked header (see :func:`load_image`).

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
    return tuple(int(n) for n in load_image(path, shown_as).shape)


def _check_gzip_stream(path: Path, shown_as: str) -> None:
    """Decompress a ``.gz`` file to its end, so that its checksum and length are verified.

    nibabel reads only the bytes it needs, so a corrupt stream can yield garbage voxels
    (reported as NaN) before the checksum at its end is ever read.
    """
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(_GZIP_BLOCK_BYTES):
                pass
    except (OSError, EOFError, zlib.error) as error:
        raise InputError(
            shown_as, f"the gzip data are truncated or corrupt ({error})", _CORRUPT_FIX
        ) from None


def check_voxels(path: Path, shown_as: str, volume_types: tuple[str, ...] | None = None) -> None:
    """Refuse images whose voxels are NaN/inf, or all zero, or that cannot be decompressed.

    For an ASL series (``volume_types`` given), also refuse a perfusion signal that is zero
    everywhere: label volumes equal to the control volumes (a conversion that wrote one
    type twice, or labelling switched off), or ``deltam`` volumes that are all zero. Such a
    series would give a CBF map of zeros. The data are read once, in blocks of volumes, so
    that long series are never held in memory twice.

    Parameters
    ----------
    path : Path
        The image file.
    shown_as : str
        How to name the file in error messages.
    volume_types : tuple of str, optional
        The ``aslcontext.tsv`` volume types of an ASL series, one per volume.
    """
    image = load_image(path, shown_as)
    if path.name.endswith(".gz"):
        _check_gzip_stream(path, shown_as)
    n_volumes = image.shape[3] if len(image.shape) > 3 else 1
    kinds = np.asarray(volume_types if volume_types and len(volume_types) == n_volumes else [])
    signal = _PerfusionSignal(kinds)
    any_nonzero = False
    for start, block in _volume_blocks(image, shown_as):
        if not np.isfinite(block).all():
            raise InputError(
                shown_as,
                "the image holds NaN or infinite voxel values",
                "re-export it from the scanner data",
            )
        any_nonzero = any_nonzero or bool(np.any(block))
        signal.add(start, block)
    if not any_nonzero:
        raise InputError(shown_as, "every voxel of the image is zero", "check the conversion")
    problem = signal.problem()
    if problem:
        raise InputError(
            shown_as,
            f"ΔM is zero everywhere: {problem}",
            "check that the series and its aslcontext.tsv hold both label and control images",
        )


class _PerfusionSignal:
    """Accumulate, block by block, what tells whether an ASL series has any perfusion signal."""

    def __init__(self, kinds: np.ndarray) -> None:
        self.kinds = kinds
        self.sums: dict[str, np.ndarray] = {}
        self.deltam_nonzero = False

    def add(self, start: int, block: np.ndarray) -> None:
        if not self.kinds.size:
            return
        volumes = block.reshape(*block.shape[:3], -1)
        kinds = self.kinds[start : start + volumes.shape[-1]]
        for kind in ("control", "label"):
            chosen = volumes[..., kinds == kind].sum(axis=-1, dtype=np.float64)
            self.sums[kind] = self.sums.get(kind, 0.0) + chosen
        self.deltam_nonzero = self.deltam_nonzero or bool(np.any(volumes[..., kinds == "deltam"]))

    def problem(self) -> str | None:
        counts = {kind: int(np.sum(self.kinds == kind)) for kind in ("control", "label", "deltam")}
        if counts["control"] and counts["label"]:
            difference = (
                self.sums["control"] / counts["control"] - self.sums["label"] / counts["label"]
            )
            if not np.any(difference):
                return "the label volumes equal the control volumes"
        if counts["deltam"] and not self.deltam_nonzero:
            return "every deltam volume is zero"
        return None


def _volume_blocks(image: nb.Nifti1Image, shown_as: str):
    """Yield (first volume, voxels) in blocks of at most ``_CHUNK_VOLUMES`` volumes."""
    proxy = image.dataobj
    n_volumes = image.shape[3] if len(image.shape) > 3 else 1
    try:
        for start in range(0, n_volumes, _CHUNK_VOLUMES):
            yield (
                start,
                np.asarray(
                    proxy[..., start : start + _CHUNK_VOLUMES] if len(image.shape) > 3 else proxy
                ),
            )
    except (OSError, EOFError, ValueError, zlib.error) as error:
        raise InputError(
            shown_as, f"the image data are truncated or corrupt ({error})", _CORRUPT_FIX
        ) from None
