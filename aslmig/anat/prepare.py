"""First anatomical step: decide whether the T1w has a skull, crop it, make the working image.

Order: ``--skull-strip-t1w`` (``auto`` asks :func:`aslmig.anat.brain.looks_skull_stripped`);
a head with its skull is cropped to ``HEAD_EXTENT_MM`` below the vertex
(:func:`aslmig.anat.fov.crop_to_head`); the result is resampled to the 2 mm working grid
(:func:`aslmig.anat.fov.working_image`) and bias-corrected with N4 there, fitted on 8 mm
(shrink 4): 7.5x less CPU than the 4 mm fit of a 1 mm image (13.7 vs 103.5 s on the real
sub-X T1w), a field that differs by at most 7 % inside the brain (N4 itself moves by 12-16 %
between 50 and 20 final iterations).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from aslmig.anat.bias import n4_bias_correct
from aslmig.anat.brain import looks_skull_stripped
from aslmig.anat.fov import HeadCrop, crop_to_head, working_image

#: N4 shrink factor on the working grid (2 mm voxels -> 8 mm fitting voxels).
WORKING_N4_SHRINK = 4


@dataclass(frozen=True)
class PreparedT1w:
    """Outputs of :func:`prepare_t1w`.

    Attributes
    ----------
    image : Path
        The bias-corrected working image (2 mm RAS+, or the T1w's own grid when it is no finer),
        the "T1w space" of the later steps.
    skull_stripped : bool
        Whether the T1w is taken as already skull-stripped.
    crop : HeadCrop or None
        The field-of-view crop (None for a skull-stripped image).
    """

    image: Path
    skull_stripped: bool
    crop: HeadCrop | None


def prepare_t1w(t1w: str | Path, out_dir: str | Path, skull_strip: str = "auto") -> PreparedT1w:
    """Crop a whole-head T1w to the head, resample it to the working grid and run N4.

    Parameters
    ----------
    t1w : str or Path
        The raw T1w.
    out_dir : str or Path
        Folder for ``t1w_crop.nii.gz``, ``t1w_work.nii.gz`` and ``t1w_work_n4.nii.gz``.
    skull_strip : {"auto", "skip", "force"}
        ``force``: the T1w has a skull; ``skip``: it is already skull-stripped; ``auto``:
        decide from the image.

    Returns
    -------
    PreparedT1w
        The working image and the decisions taken.
    """
    if skull_strip not in ("auto", "skip", "force"):
        raise ValueError(f"skull_strip must be auto, skip or force, not {skull_strip!r}")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stripped = skull_strip == "skip" or (skull_strip == "auto" and looks_skull_stripped(t1w))
    crop = None if stripped else crop_to_head(t1w, out_dir / "t1w_crop.nii.gz")
    source = t1w if crop is None else crop.cropped
    work = working_image(source, out_dir / "t1w_work.nii.gz")
    image = n4_bias_correct(work, out_dir / "t1w_work_n4.nii.gz", shrink_factor=WORKING_N4_SHRINK)
    return PreparedT1w(image=image, skull_stripped=stripped, crop=crop)
