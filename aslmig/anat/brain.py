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
   a dilated mask there drops the Dice from 0.98 to 0.6-0.9). The start is the alignment of
   the centres of mass; if the T1w then correlates with the template below
   ``GOOD_TEMPLATE_CORRELATION`` inside its brain mask, starts turned by ``RETRY_PITCH_DEG``
   are tried in turn and the best fit is kept (a tilted head can send the affine stage far off).
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

import nibabel as nb
import numpy as np
from nibabel.affines import voxel_sizes
from scipy import ndimage

from aslmig.anat._images import (
    ants_module,
    from_array,
    load_nifti,
    read_image,
    same_grid,
    write_image,
)
from aslmig.anat.bias import n4_bias_correct
from aslmig.anat.quality import template_correlation
from aslmig.anat.registration import SYN_ITERATIONS, Registration, apply_transforms, register

#: Dilation of the template brain mask used as the registration metric mask (mm).
REGISTRATION_MASK_DILATION_MM = 8.0
#: Further starts (pitch about the left-right axis, deg), tried in order only when the
#: registration from the centres of mass leaves the T1w correlated with the template below
#: ``GOOD_TEMPLATE_CORRELATION`` inside its brain mask; the best fit is kept. The real sub-X
#: MPRAGE nodded by -15 deg and stored LPS on an oblique grid sent the affine stage 19 cm away
#: (scales 1.66/1.42, mask 392 mL, correlation -0.06) although it needs only ~5 deg of turn.
RETRY_PITCH_DEG = (-10.0, 10.0, -20.0, 20.0)
#: Correlation of a good fit: real sub-X 0.85 upright, 0.84-0.86 turned by 10-20 deg; asldro
#: 0.91. A wrong fit reached 0.73 (the head nodded +15 deg from a -10 deg start: 2,194 mL).
GOOD_TEMPLATE_CORRELATION = 0.8
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
    full_mask : Path or None
        The brain mask made again on the grid of ``full_grid`` (e.g. the original 1 mm T1w
        when the steps run on a coarser working grid), None when not asked for.
    """

    mask: Path
    brain: Path
    bias_corrected: Path
    template_transforms: Registration
    full_mask: Path | None = None


def extract_brain(
    t1w: str | Path,
    template_t1w: str | Path,
    template_mask: str | Path,
    out_dir: str | Path,
    *,
    bias_correct: bool = True,
    syn_iterations: tuple[int, ...] = SYN_ITERATIONS,
    skull_stripped: bool = False,
    full_grid: str | Path | None = None,
) -> BrainExtraction:
    """Extract the brain of a T1w image by registering a template to it.

    With ``skull_stripped``, the T1w is already a brain: its mask is its non-zero voxels
    (largest component, holes filled), and it is registered to the template's brain only.

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
    skull_stripped : bool
        The T1w has no skull (``--skull-strip-t1w skip``, or detected by
        :func:`looks_skull_stripped`).
    full_grid : str or Path, optional
        A finer image of the same head (the original T1w): the mask is also made on its grid,
        from the template mask warped there directly (not an upsampled coarse mask).

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
    if skull_stripped:
        own_mask = _binary_mask(head, out_dir / "stripped_mask.nii.gz", nonzero=True)
        template_brain = _template_brain(template_t1w, template_mask, out_dir)
        registration_mask, stripped = unit_mask, True
    else:
        own_mask, template_brain = None, Path(template_t1w)
        registration_mask, stripped = _registration_mask(template_t1w, template_mask, out_dir)
    transforms, fit = None, -np.inf
    for pitch in (0.0, *RETRY_PITCH_DEG):
        attempt = register(
            head,
            template_brain,
            out_dir
            / ("t1w_to_template_" if pitch == 0.0 else f"t1w_to_template_pitch{pitch:+.0f}_"),
            "syn",
            moving_mask=own_mask,
            fixed_mask=registration_mask,
            syn_iterations=syn_iterations,
            mask_all_stages=stripped,
            start_pitch_deg=pitch,
        )
        attempt_fit = template_correlation(attempt.warped, template_brain, unit_mask)
        if transforms is None or attempt_fit > fit:
            transforms, fit = attempt, attempt_fit
        if fit >= GOOD_TEMPLATE_CORRELATION:
            break
    if own_mask is not None:
        mask = write_image(read_image(own_mask, "mask"), out_dir / "brain_mask.nii.gz")
    else:
        mask = _warped_mask(unit_mask, head, transforms, out_dir, "")
    full_mask = None
    if full_grid is not None:
        full_mask = (
            _binary_mask(full_grid, out_dir / "brain_mask_full.nii.gz", nonzero=True)
            if skull_stripped
            else _warped_mask(unit_mask, full_grid, transforms, out_dir, "_full")
        )
    brain = _masked_brain(head, mask, out_dir)
    return BrainExtraction(
        mask=mask,
        brain=brain,
        bias_corrected=head,
        template_transforms=transforms,
        full_mask=full_mask,
    )


def _warped_mask(
    unit_mask: Path, reference: str | Path, transforms: Registration, out_dir: Path, tag: str
) -> Path:
    """Warp the template brain mask onto a grid of the T1w and make it binary."""
    probability = apply_transforms(
        unit_mask,
        reference,
        transforms.inverse_transforms,
        out_dir / f"template_mask_prob{tag}.nii.gz",
        interpolation="linear",
        invert_flags=transforms.inverse_invert_flags,
    )
    return _binary_mask(probability, out_dir / f"brain_mask{tag}.nii.gz")


def _template_brain(template_t1w: str | Path, template_mask: str | Path, out_dir: Path) -> Path:
    """Write the template times its brain mask (for a skull-stripped input)."""
    template = read_image(template_t1w, "template T1w").clone("float")
    mask = read_image(template_mask, "template brain mask")
    if not same_grid(template, mask):
        mask = ants_module().resample_image_to_target(
            mask.clone("float"), template, interp_type="nearestNeighbor"
        )
    brain = np.where(mask.numpy() > 0, template.numpy(), 0.0).astype(np.float32)
    return write_image(from_array(brain, like=template), out_dir / "template_brain.nii.gz")


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


def _binary_mask(image_file: str | Path, out_file: Path, *, nonzero: bool = False) -> Path:
    """Keep voxels at least ``MASK_THRESHOLD`` (or non-zero): largest component, holes filled."""
    image = read_image(image_file, "image to mask")
    data = image.numpy()
    mask = data != 0 if nonzero else data >= MASK_THRESHOLD
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


#: A T1w whose non-zero voxels (largest component, holes filled) fill less than this volume
#: (mL) is taken as already skull-stripped: a brain is 1.0-1.9 L, a head with its skull,
#: even cut at the skull base, more than 3 L.
SKULL_STRIPPED_MAX_ML = 2500.0
#: ... and at least this fraction of its voxels must be exactly zero (a stripped background).
SKULL_STRIPPED_MIN_ZERO_FRACTION = 0.3


def looks_skull_stripped(t1w: str | Path) -> bool:
    """Whether a T1w image is already skull-stripped (``--skull-strip-t1w auto``).

    True when at least ``SKULL_STRIPPED_MIN_ZERO_FRACTION`` of the voxels are exactly zero and
    the rest (largest connected component, holes filled) is smaller than
    ``SKULL_STRIPPED_MAX_ML``. Whole-head images have a noisy, or zeroed but much larger,
    foreground.

    Parameters
    ----------
    t1w : str or Path
        The T1w image.

    Returns
    -------
    bool
        True for a skull-stripped image.
    """
    image = load_nifti(t1w, "T1w image")
    data = np.asanyarray(image.dataobj).reshape(image.shape[:3])
    nonzero = data != 0
    if 1.0 - nonzero.mean() < SKULL_STRIPPED_MIN_ZERO_FRACTION:
        return False
    labels, count = ndimage.label(nonzero)
    if count > 1:
        sizes = np.bincount(labels.ravel())
        sizes[0] = 0
        nonzero = labels == int(np.argmax(sizes))
    volume_ml = float(ndimage.binary_fill_holes(nonzero).sum()) * _voxel_ml(image)
    return volume_ml < SKULL_STRIPPED_MAX_ML


def _voxel_ml(image: nb.Nifti1Image) -> float:
    return float(np.prod(voxel_sizes(image.affine))) / 1000.0
