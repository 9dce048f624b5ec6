"""Rebuild tests/data/real_dcm_qa_asl_anat/ from the real-dcm_qa_asl dataset.

The copy is sub-X's whole-head sagittal MPRAGE (Siemens Prisma 3 T, 1 mm, 192 x 256 x 256,
face, skull base and neck) downsampled to 2 mm in the same storage order and orientation:
smoothed by the Gaussian that takes 1 mm voxels to 2 mm (FWHM sqrt(3) mm), then sampled at
the centres of 2 x 2 x 2 blocks (linear), stored as int16. The anatomical steps of aslmig work
on a 2 mm grid, so the copy exercises the same code as the original at an eighth of the size.

Run: python tools/make_real_anat_copy.py /path/to/real-dcm_qa_asl [OUT_DIR]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import nibabel as nb
import numpy as np
from nibabel.processing import resample_from_to, smooth_image

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "real_dcm_qa_asl_anat"
SOURCE = Path("sub-X") / "anat" / "sub-X_T1w.nii.gz"
VOXEL_MM = 2.0


def downsample(image: nb.Nifti1Image, factor: int) -> nb.Nifti1Image:
    """Smooth and resample an image onto a grid ``factor`` times coarser, same axes."""
    data = np.asanyarray(image.dataobj, dtype=np.float32)
    sizes = np.linalg.norm(image.affine[:3, :3], axis=0)
    smoothed = smooth_image(
        nb.Nifti1Image(data, image.affine), np.sqrt((factor * sizes) ** 2 - sizes**2)
    )
    shape = tuple(int(n) // factor for n in image.shape[:3])
    affine = image.affine.copy()
    affine[:3, :3] = image.affine[:3, :3] * factor
    # block centres: voxel (i) of the new grid sits at old voxel factor*i + (factor-1)/2
    affine[:3, 3] = image.affine[:3, :3] @ np.full(3, (factor - 1) / 2) + image.affine[:3, 3]
    resampled = resample_from_to(smoothed, (shape, affine), order=1)
    out = nb.Nifti1Image(
        np.clip(np.rint(np.asanyarray(resampled.dataobj)), 0, 32767).astype(np.int16), affine
    )
    out.header.set_xyzt_units("mm", "sec")
    return out


def main(source_root: Path, out_dir: Path = OUT) -> None:
    """Write the downsampled T1w, its sidecar and the licence."""
    image = nb.load(str(source_root / SOURCE))
    out_dir.mkdir(parents=True, exist_ok=True)
    downsample(image, int(VOXEL_MM)).to_filename(str(out_dir / "sub-X_T1w.nii.gz"))
    shutil.copyfile(source_root / SOURCE.with_suffix("").with_suffix(".json"),
                    out_dir / "sub-X_T1w.json")  # fmt: skip
    shutil.copyfile(source_root / "LICENSE", out_dir / "LICENSE")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]) if len(sys.argv) > 2 else OUT)
