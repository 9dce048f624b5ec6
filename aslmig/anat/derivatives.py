"""Anatomy taken from an fMRIPrep/sMRIPrep dataset, brought onto aslmig's working grid.

The derivative's preprocessed T1w is already bias-corrected and its brain mask and tissue maps
are final, so nothing is estimated here: each image is put on the 2 mm working grid of
:func:`aslmig.anat.fov.working_image` (the grid the ASL -> T1w registration and the tissue
maps of the ASL workflow use, as for aslmig's own anatomy), the mask by thresholding its
resampled fraction at one half.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np

from aslmig.anat.fov import working_image

#: A working-grid voxel belongs to the brain when at least this fraction of it did.
MASK_FRACTION = 0.5


@dataclass(frozen=True)
class WorkingAnatomy:
    """The derivative anatomy on the working grid.

    Attributes
    ----------
    t1w : Path
        The preprocessed T1w.
    brain : Path
        The T1w times the brain mask.
    mask : Path
        The brain mask (uint8).
    tissues : dict of str to Path
        ``gm``, ``wm``, ``csf`` probability maps.
    """

    t1w: Path
    brain: Path
    mask: Path
    tissues: dict[str, Path]


def working_anatomy(
    t1w: str | Path, mask: str | Path, tissues: dict[str, str | Path], out_dir: str | Path
) -> WorkingAnatomy:
    """Put a derivative T1w, its brain mask and tissue maps on the working grid.

    Parameters
    ----------
    t1w : str or Path
        The derivative's preprocessed T1w.
    mask : str or Path
        Its brain mask (same grid).
    tissues : dict of str to str or Path
        ``gm``, ``wm``, ``csf`` probability maps (same grid).
    out_dir : str or Path
        Output folder.

    Returns
    -------
    WorkingAnatomy
        The images on the working grid.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    work_t1w = working_image(t1w, out_dir / "t1w_work.nii.gz")
    fraction = nb.load(working_image(mask, out_dir / "mask_fraction.nii.gz"))
    inside = fraction.get_fdata() >= MASK_FRACTION
    work_mask = out_dir / "t1w_work_mask.nii.gz"
    nb.Nifti1Image(inside.astype(np.uint8), fraction.affine).to_filename(work_mask)
    image = nb.load(work_t1w)
    brain = out_dir / "t1w_work_brain.nii.gz"
    nb.Nifti1Image(
        (image.get_fdata(dtype=np.float32) * inside).astype(np.float32), image.affine
    ).to_filename(brain)
    maps = {
        tissue: working_image(path, out_dir / f"{tissue}_work.nii.gz")
        for tissue, path in tissues.items()
    }
    return WorkingAnatomy(t1w=work_t1w, brain=brain, mask=work_mask, tissues=maps)
