"""Template-based brain extraction of a T1w image that still has its skull.

Method (the registration core of ``antsBrainExtraction.sh``: Avants et al. 2011,
NeuroImage 54:2033; Tustison et al. 2014, NeuroImage 99:166; without its Atropos-based
refinement):

1. N4 bias correction of the whole head (:func:`aslmig.anat.bias.n4_bias_correct`).
2. Registration of the T1w (moving) to the template (fixed): affine, then SyN. If the
   template has a skull, the metric mask of the SyN stage is the template brain mask
   dilated by ``REGISTRATION_MASK_DILATION_MM``. If the template is skull-stripped (less
   than ``SKULL_STRIPPED_FRACTION`` of its intensity outside the brain mask), the metric
   mask is the brain mask itself, in every stage, so that the subject's skull and scalp
   are never matched to the template's empty background (on the phantom of the tests,
   a dilated mask there drops the Dice from 0.98 to 0.6-0.9).
3. The template brain mask (scaled to [0, 1] if stored as 0/255) is warped to the T1w
   grid through the inverse transforms (linear interpolation), thresholded at
   ``MASK_THRESHOLD``, reduced to its largest connected component and hole-filled.
4. The brain image is the T1w bias-corrected again with N4 inside that mask, times the mask.

The T1w -> template registration computed in step 2 is returned, so the workflow does not
register twice. It is registered with the skull on, the deformation being tuned to place
the brain mask; it is adequate for ASL resolution (3-4 mm), not for fine normalisation.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from aslmig.anat._images import ants_module, from_array, read_image, same_grid, write_image
from aslmig.anat.bias import n4_bias_correct
from aslmig.anat.registration import SYN_ITERATIONS, Registration, apply_transforms, register

#: Dilation of the template brain mask used as the registration metric mask (mm).
REGISTRATION_MASK_DILATION_MM = 8.0
#: Threshold on the warped (interpolated) template brain mask.
MASK_THRESHOLD = 0.5
#: A template whose intensity outside the brain mask is below this fraction of its
#: total intensity is treated as skull-stripped.
SKULL_STRIPPED_FRACTION = 0.02


@dataclass(frozen=True)
class BrainExtraction:
    """Outputs of :func:`extract_brain`, all on the T1w grid except the transforms.

    Attributes
    ----------
    mask : Path
        Binary brain mask (uint8).
    brain : Path
        Bias-corrected (within the mask) T1w times the mask (float32).
    bias_corrected : Path
        The whole-head N4-corrected T1w used for the registration.
    template_transforms : Registration
        T1w (moving) -> template (fixed): ``forward_transforms`` bring T1w-space images
        to the template; ``inverse_transforms`` (with ``inverse_invert_flags``) bring
        template-space images (priors, atlases) to the T1w.
    """

    mask: Path
    brain: Path
    bias_corrected: Path
    template_transforms: Registration


def extract_brain(
    t1w: str | Path,
    template_t1w: str | Path,
    template_mask: str | Path,
    out_dir: str | Path,
    *,
    bias_correct: bool = True,
    syn_iterations: tuple[int, ...] = SYN_ITERATIONS,
) -> BrainExtraction:
    """Extract the brain of a T1w image by registering a template to it.

    Parameters
    ----------
    t1w : str or Path
        The T1w image, with skull.
    template_t1w : str or Path
        The template T1w (with skull preferably; a skull-stripped one also works).
    template_mask : str or Path
        The template brain mask, on the template grid.
    out_dir : str or Path
        Folder for the outputs (created): ``t1w_n4.nii.gz``, ``brain_mask.nii.gz``,
        ``brain.nii.gz``, ``template_mask_prob.nii.gz`` and ``t1w_to_template_*``.
    bias_correct : bool
        Run N4 on the whole head first; pass False if ``t1w`` is already corrected.
    syn_iterations : tuple of int
        SyN iterations per level (see :mod:`aslmig.anat.registration`).

    Returns
    -------
    BrainExtraction
        Mask, brain image, the head image registered, and the T1w -> template transforms.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    unit_mask = _unit_mask(template_mask, out_dir / "template_mask_unit.nii.gz")
    head = Path(t1w)
    if bias_correct:
        head = n4_bias_correct(t1w, out_dir / "t1w_n4.nii.gz")
    registration_mask, stripped = _registration_mask(template_t1w, template_mask, out_dir)
    transforms = register(
        head,
        template_t1w,
        out_dir / "t1w_to_template_",
        "syn",
        fixed_mask=registration_mask,
        syn_iterations=syn_iterations,
        mask_all_stages=stripped,
    )
    probability = apply_transforms(
        unit_mask,
        head,
        transforms.inverse_transforms,
        out_dir / "template_mask_prob.nii.gz",
        interpolation="linear",
        invert_flags=transforms.inverse_invert_flags,
    )
    mask = _binary_mask(probability, out_dir / "brain_mask.nii.gz")
    brain = _masked_brain(t1w, mask, out_dir)
    return BrainExtraction(
        mask=mask, brain=brain, bias_corrected=head, template_transforms=transforms
    )


def _unit_mask(template_mask: str | Path, out_file: Path) -> Path:
    """Scale a template mask to [0, 1] (0/1, 0/255 or probabilistic masks alike)."""
    image = read_image(template_mask, "template brain mask").clone("float")
    data = np.clip(image.numpy(), 0.0, None)
    data = data / max(float(data.max()), 1.0)
    return write_image(from_array(data.astype(np.float32), like=image), out_file, "float")


def _registration_mask(
    template_t1w: str | Path, template_mask: str | Path, out_dir: Path
) -> tuple[Path, bool]:
    """Return the metric mask for the registration and whether the template has no skull.

    With a skull, the template brain mask dilated by ``REGISTRATION_MASK_DILATION_MM``;
    without, the brain mask itself (dilating it would add empty background that the
    subject's scalp cannot match).
    """
    template = read_image(template_t1w, "template T1w")
    mask_image = read_image(template_mask, "template brain mask")
    mask = mask_image.numpy() > 0
    stripped = _is_skull_stripped(template, mask_image)
    if not stripped:
        spacing = np.asarray(mask_image.spacing)
        radius = np.ceil(REGISTRATION_MASK_DILATION_MM / spacing).astype(int)
        mask = ndimage.binary_dilation(mask, structure=_ellipsoid(radius))
    path = write_image(
        from_array(mask.astype(np.uint8), like=mask_image),
        out_dir / "template_registration_mask.nii.gz",
        "unsigned char",
    )
    return path, stripped


def _is_skull_stripped(template: Any, mask_image: Any) -> bool:
    """Whether almost none of the template's intensity lies outside its brain mask."""
    if same_grid(template, mask_image):
        inside = mask_image.numpy() > 0
    else:
        resampled = ants_module().resample_image_to_target(
            mask_image.clone("float"), template, interp_type="nearestNeighbor"
        )
        inside = resampled.numpy() > 0
    values = np.clip(template.numpy(), 0, None)
    total = float(values.sum())
    return total > 0 and float(values[~inside].sum()) / total < SKULL_STRIPPED_FRACTION


def _ellipsoid(radius: np.ndarray) -> np.ndarray:
    """Return a boolean ellipsoid structuring element with the given radii (voxels)."""
    grids = np.ogrid[tuple(slice(-r, r + 1) for r in radius)]
    distance = sum((g / max(r, 1)) ** 2 for g, r in zip(grids, radius, strict=True))
    return distance <= 1.0


def _binary_mask(probability: Path, out_file: Path) -> Path:
    """Threshold, keep the largest connected component, fill holes."""
    image = read_image(probability, "warped template mask")
    mask = image.numpy() >= MASK_THRESHOLD
    labels, count = ndimage.label(mask)
    if count > 1:
        sizes = ndimage.sum_labels(mask, labels, index=np.arange(1, count + 1))
        mask = labels == (1 + int(np.argmax(sizes)))
    mask = ndimage.binary_fill_holes(mask)
    return write_image(from_array(mask.astype(np.uint8), like=image), out_file, "unsigned char")


def _masked_brain(t1w: str | Path, mask: Path, out_dir: Path) -> Path:
    """N4 inside the brain mask, then zero outside it."""
    corrected = n4_bias_correct(t1w, out_dir / "t1w_n4_brain.nii.gz", mask_file=mask)
    image = read_image(corrected, "bias-corrected T1w")
    inside = read_image(mask, "brain mask").numpy() > 0
    brain = np.where(inside, image.numpy(), 0.0).astype(np.float32)
    return write_image(from_array(brain, like=image), out_dir / "brain.nii.gz", "float")
