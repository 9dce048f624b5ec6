"""Field-of-view cropping of a whole-head T1w image (in the spirit of FSL ``robustfov``).

Most scanners write a sagittal T1w with face, skull base and neck. Registered to a brain
template from the centres of mass, the neck pulls the start 3-4 cm too low and the brain
mask lands over the orbits and the upper neck (real MPRAGE of ``real-dcm_qa_asl`` sub-X:
1,977 mL, Dice 0.47 with the ASL mask). Keeping only the ``HEAD_EXTENT_MM`` below the vertex,
as ``robustfov`` does, removes the neck and most of the face.

The crop is a voxel slicing of the image (no resampling, same voxel lattice, same world
coordinates); on an oblique grid, voxels well below the cut plane are also zeroed. The
superior direction is the world +z axis (RAS+), whatever the storage order: the voxel axis
closest to it is cropped, so sagittal, coronal, LPS or oblique storage all work.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np
from nibabel.affines import voxel_sizes
from nibabel.processing import resample_to_output, smooth_image
from scipy import ndimage

from aslmig.anat._images import load_nifti
from aslmig.asl.reference import otsu_threshold

#: Height kept below the top of the head (mm): ``robustfov``'s default brain size.
HEAD_EXTENT_MM = 170.0
#: Fraction of the head's voxels allowed above the point taken as the vertex (robust top).
_TOP_QUANTILE = 0.999
#: Voxels of the crop lower than this below the cut plane (world z) are set to 0. On an oblique
#: grid the kept slab of voxel slices reaches far below the plane on one side (real sub-X
#: MPRAGE pitched 20 deg in the world and stored on an LPS grid tilted 15 deg: 232 mm of
#: slices kept, with the neck; the brain mask came out at 3,996 mL). With this margin the
#: nearly straight grid of the upright sub-X (3 deg oblique, 256 mm wide) loses no voxel (with
#: 8 mm it lost 4,099 head voxels).
_CUT_MARGIN_MM = 12.0
#: The head is found on every ``_STRIDE``-th voxel along each axis (8x fewer voxels at 2; the
#: top of the head needs no finer than 2 voxels).
_STRIDE = 2


@dataclass(frozen=True)
class HeadCrop:
    """A T1w cropped to the head, and where the crop sits in the original grid.

    Attributes
    ----------
    cropped : Path
        The cropped image (the original's voxels, unchanged).
    original : Path
        The input image.
    start, stop : tuple of int
        Voxel ranges kept along each axis of the original: ``original[start:stop]``.
    vertex_mm : float
        World z (superior) of the top of the head, mm.
    removed_mm : float
        Extent cut away along the superior voxel axis (0 when the field of view was already
        small).
    """

    cropped: Path
    original: Path
    start: tuple[int, int, int]
    stop: tuple[int, int, int]
    vertex_mm: float
    removed_mm: float


def superior_axis(affine: np.ndarray) -> tuple[int, int]:
    """Return the voxel axis closest to world +z and its sign (+1: index grows upwards)."""
    column = np.asarray(affine, float)[2, :3] / voxel_sizes(affine)
    axis = int(np.argmax(np.abs(column)))
    return axis, int(np.sign(column[axis]))


def head_mask(data: np.ndarray, axis: int | None = None) -> np.ndarray:
    """Head (foreground) of a T1w: Otsu threshold of the smoothed image, largest component.

    With ``axis`` (the superior one), holes are also filled slice by slice across it, so that
    dark CSF, bone and sinuses enclosed by the scalp count as head even where the field of
    view cuts the head open at the bottom.
    """
    smooth = ndimage.gaussian_filter(np.asarray(data, np.float32), 1.0)
    high = np.percentile(smooth, 99.5)
    clipped = np.clip(smooth, 0.0, high)
    mask = clipped > otsu_threshold(clipped)
    labels, count = ndimage.label(ndimage.binary_opening(mask, iterations=2))
    if count:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        mask = labels == int(np.argmax(sizes))
    if axis is not None:
        mask = np.moveaxis(mask, axis, 0)
        mask = np.stack([ndimage.binary_fill_holes(plane) for plane in mask])
        mask = np.moveaxis(mask, 0, axis)
    return ndimage.binary_fill_holes(mask)


def _world_z(shape: tuple[int, ...], affine: np.ndarray, stride: int = 1) -> np.ndarray:
    """World z (mm) of every ``stride``-th voxel of a grid, shape of the strided grid."""
    index = np.indices(tuple(-(-n // stride) for n in shape), dtype=np.float32) * stride
    return np.tensordot(affine[2, :3], index, axes=1) + affine[2, 3]


def crop_to_head(
    t1w: str | Path, out_file: str | Path, extent_mm: float = HEAD_EXTENT_MM
) -> HeadCrop:
    """Keep the voxels within ``extent_mm`` below the top of the head (world z).

    The top of the head is the 99.9th percentile of the world z of the head's voxels; the
    crop is the range of the superior voxel axis whose slices hold head above
    ``top - extent_mm`` (plus a voxel or two). On an oblique grid that range reaches below the
    cut plane on one side: voxels more than ``_CUT_MARGIN_MM`` below the plane are zeroed.
    A head that lies entirely within ``extent_mm`` of its top (no neck in the field of view)
    keeps the whole field of view: trimming only empty slices changes the domain of the N4
    bias-field fit, which moved the asldro occipital asymmetry index from -0.2158 to -0.2105
    (truth -0.2222) with two near-empty slices removed from a brain-only 3 mm T1w.

    Parameters
    ----------
    t1w : str or Path
        The T1w image (any orientation).
    out_file : str or Path
        Where to write the cropped image.
    extent_mm : float
        Height kept below the vertex, mm.

    Returns
    -------
    HeadCrop
        The cropped file and the voxel ranges kept.
    """
    image = load_nifti(t1w, "T1w image")
    data = np.asanyarray(image.dataobj).reshape(image.shape[:3])
    axis, _ = superior_axis(image.affine)
    coarse = np.asarray(data[::_STRIDE, ::_STRIDE, ::_STRIDE], np.float32)
    head = head_mask(coarse)
    height = _world_z(data.shape, image.affine, _STRIDE)
    vertex = float(np.quantile(height[head], _TOP_QUANTILE))
    start, stop = [0, 0, 0], list(data.shape)
    cut = bool((head & (height < vertex - extent_mm)).any())
    if cut:
        above = head & (height >= vertex - extent_mm)
        slabs = np.flatnonzero(np.moveaxis(above, axis, 0).any(axis=(1, 2)))
        # whole coarse slabs, one more on each side (the cut lies within a slab)
        start[axis] = max(0, int(slabs[0] - 1) * _STRIDE)
        stop[axis] = min(data.shape[axis], int(slabs[-1] + 2) * _STRIDE)
    shift = np.eye(4)
    shift[:3, 3] = start
    slices = tuple(slice(a, b) for a, b in zip(start, stop, strict=True))
    kept = np.array(data[slices])
    if cut:
        kept[_world_z(kept.shape, image.affine @ shift) < vertex - extent_mm - _CUT_MARGIN_MM] = 0
    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    nb.Nifti1Image(kept, image.affine @ shift, image.header.copy()).to_filename(str(out_file))
    spacing = float(voxel_sizes(image.affine)[axis])
    return HeadCrop(
        cropped=out_file,
        original=Path(t1w),
        start=(start[0], start[1], start[2]),
        stop=(stop[0], stop[1], stop[2]),
        vertex_mm=vertex,
        removed_mm=(data.shape[axis] - (stop[axis] - start[axis])) * spacing,
    )


#: Voxel size (mm) of the working grid of the anatomical steps: ASL is analysed at 3-4 mm,
#: and the template is 2 mm, so a finer T1w only costs time (N4, registration and Atropos
#: take 8x longer on a 1 mm grid; see ``benchmarks/participant.py``).
WORKING_VOXEL_MM = 2.0


def working_image(
    t1w: str | Path, out_file: str | Path, voxel_mm: float = WORKING_VOXEL_MM
) -> Path:
    """Resample a T1w onto an axis-aligned (RAS+) grid of ``voxel_mm`` voxels.

    An image whose voxels are all ``voxel_mm`` or coarser is kept on its own grid.

    The image is first smoothed by the Gaussian that takes its voxel size to ``voxel_mm``
    (FWHM ``sqrt(voxel_mm**2 - voxel**2)`` per axis, no aliasing), then resampled linearly
    (:func:`nibabel.processing.resample_to_output`; oblique or LPS storage becomes RAS+).
    Axes whose voxels are already ``voxel_mm`` or coarser keep their voxel size.

    Parameters
    ----------
    t1w : str or Path
        The T1w image.
    out_file : str or Path
        Where to write the working image (float32).
    voxel_mm : float
        Target voxel size, mm.

    Returns
    -------
    Path
        ``out_file``.
    """
    image = load_nifti(t1w, "T1w image")
    image = nb.Nifti1Image(
        np.asanyarray(image.dataobj, dtype=np.float32).reshape(image.shape[:3]), image.affine
    )
    sizes = voxel_sizes(image.affine)
    if np.all(sizes >= voxel_mm - 1e-3):
        # already coarse enough: interpolating onto a shifted grid would only blur it
        # (asldro's 3 mm T1w: native occipital asymmetry -0.210 instead of -0.222)
        return _write_float(image.get_fdata(dtype=np.float32), image.affine, out_file)
    fwhm = np.sqrt(np.clip(voxel_mm**2 - sizes**2, 0.0, None))
    smoothed = smooth_image(image, fwhm) if np.any(fwhm > 0) else image
    target = np.maximum(sizes, voxel_mm)
    working = resample_to_output(smoothed, voxel_sizes=target, order=1, mode="constant")
    return _write_float(np.asanyarray(working.dataobj, dtype=np.float32), working.affine, out_file)


def _write_float(data: np.ndarray, affine: np.ndarray, out_file: str | Path) -> Path:
    """Write a non-negative float32 image in mm."""
    out = nb.Nifti1Image(np.clip(data, 0.0, None).astype(np.float32), affine)
    out.header.set_xyzt_units("mm")
    Path(out_file).parent.mkdir(parents=True, exist_ok=True)
    out.to_filename(str(out_file))
    return Path(out_file)
