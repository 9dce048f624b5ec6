"""Quality control of the anatomy: mask overlap, and whether a T1w brain mask is plausible.

A brain extraction that went wrong (a template registration that started from the neck, a
skull-stripped input treated as a head) gives a mask of the wrong size or in the wrong place
without any error. :func:`check_brain_mask` measures what can be checked without a truth mask
and turns what is out of range into plain-language warnings, for the log, the QC JSON and the
top of the participant report.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np
from nibabel.affines import voxel_sizes
from nibabel.processing import resample_from_to

from aslmig.anat._images import load_nifti
from aslmig.anat.fov import head_mask, superior_axis
from aslmig.errors import InputError

_GRID_ATOL = 1e-3

#: Plausible volume of an adult brain mask (mL): brain and the CSF around it. Real sub-X
#: (35 y, correct mask) 1,5xx mL; adults 1.1-1.8 L; children and atrophy reach the ends.
BRAIN_VOLUME_RANGE_ML = (900.0, 2000.0)
#: Largest plausible distance from the top of the head to the top of the brain mask (mm):
#: scalp, skull and CSF are 10-20 mm thick at the vertex.
MAX_VERTEX_GAP_MM = 30.0
#: Smallest fraction of the brain mask that must lie inside the head.
MIN_INSIDE_HEAD = 0.95
#: Smallest correlation of the T1w brain, warped to the template, with the template inside
#: its brain mask.
MIN_TEMPLATE_CORRELATION = 0.5


def dice(mask_a: str | Path, mask_b: str | Path, threshold: float = 0.0) -> float:
    """Dice coefficient 2|A∩B| / (|A| + |B|) of two 3D masks.

    A voxel belongs to a mask when its value exceeds ``threshold``. If the grids differ
    (shape or affine), ``mask_b`` is resampled onto the grid of ``mask_a`` by nearest
    neighbour (:func:`nibabel.processing.resample_from_to`, through the two affines);
    voxels of ``mask_a`` outside ``mask_b``'s field of view count as outside ``mask_b``.

    Parameters
    ----------
    mask_a, mask_b : str or Path
        3D mask images (binary, or probabilistic with a suitable ``threshold``).
    threshold : float
        Values above it are inside.

    Returns
    -------
    float
        Dice coefficient in [0, 1]; 0 when exactly one mask is empty.

    Raises
    ------
    InputError
        If a file is missing or unreadable, not 3D, or both masks are empty.
    """
    image_a = load_nifti(mask_a, "mask", allow_empty=True)
    image_b = load_nifti(mask_b, "mask", allow_empty=True)
    a = np.asanyarray(image_a.dataobj).reshape(image_a.shape[:3]) > threshold
    b = _on_grid_of(image_b, image_a) > threshold
    total = int(a.sum()) + int(b.sum())
    if total == 0:
        raise InputError(
            f"{mask_a} and {mask_b}", "both masks are empty, so their Dice is undefined"
        )
    return 2.0 * int(np.logical_and(a, b).sum()) / total


def _on_grid_of(image: nb.Nifti1Image, target: nb.Nifti1Image) -> np.ndarray:
    """Return the data of ``image`` resampled (nearest neighbour) onto ``target``'s grid."""
    data = np.asanyarray(image.dataobj).reshape(image.shape[:3]).astype(np.float32)
    shape = tuple(target.shape[:3])
    if data.shape == shape and np.allclose(image.affine, target.affine, atol=_GRID_ATOL):
        return data
    source = nb.Nifti1Image(data, image.affine)
    return np.asanyarray(resample_from_to(source, (shape, target.affine), order=0).dataobj)


@dataclass(frozen=True)
class BrainMaskCheck:
    """Plausibility of a T1w brain mask (see :func:`check_brain_mask`).

    Attributes
    ----------
    volume_ml : float
        Volume of the mask, mL.
    vertex_gap_mm : float
        Distance from the top of the head to the top of the mask along the superior axis, mm.
    inside_head : float
        Fraction of the mask inside the head (foreground of the T1w).
    template_correlation : float or None
        Correlation of the T1w, warped to the template, with the template inside the
        template brain mask (None when not measured).
    warnings : tuple of str
        One sentence per value out of its plausible range.
    """

    volume_ml: float
    vertex_gap_mm: float
    inside_head: float
    template_correlation: float | None
    warnings: tuple[str, ...]

    def metrics(self) -> dict[str, float | list[str] | None]:
        """Return the values for a QC JSON, named ``t1w_*``."""
        return {
            "t1w_brain_volume_ml": round(self.volume_ml, 1),
            "t1w_vertex_gap_mm": round(self.vertex_gap_mm, 1),
            "t1w_mask_inside_head": round(self.inside_head, 4),
            "t1w_template_correlation": None
            if self.template_correlation is None
            else round(self.template_correlation, 3),
            "t1w_warnings": list(self.warnings),
        }


def check_brain_mask(
    head: str | Path,
    mask: str | Path,
    *,
    warped: str | Path | None = None,
    template: str | Path | None = None,
    template_mask: str | Path | None = None,
) -> BrainMaskCheck:
    """Check that a T1w brain mask has the size and place of a brain.

    Parameters
    ----------
    head : str or Path
        The T1w the mask was made on (with its skull, or already skull-stripped).
    mask : str or Path
        The brain mask, on the grid of ``head``.
    warped, template, template_mask : str or Path, optional
        The T1w resampled onto the template grid by the T1w -> template registration, the
        template and its brain mask: their correlation inside the mask measures how well the
        registration, which placed the mask, worked.

    Returns
    -------
    BrainMaskCheck
        The measures and a warning for each one out of range.
    """
    head_image = load_nifti(head, "T1w image")
    mask_image = load_nifti(mask, "T1w brain mask", allow_empty=True)
    inside = _on_grid_of(mask_image, head_image) > 0
    voxel_ml = float(np.prod(voxel_sizes(head_image.affine))) / 1000.0
    volume = float(inside.sum()) * voxel_ml
    axis, _ = superior_axis(head_image.affine)
    data = np.asanyarray(head_image.dataobj).reshape(head_image.shape[:3])
    foreground = head_mask(data, axis)
    inside_head = float((inside & foreground).sum() / max(int(inside.sum()), 1))
    gap = _vertex_gap(foreground, inside, head_image.affine)
    correlation = None
    if warped is not None and template is not None and template_mask is not None:
        correlation = template_correlation(warped, template, template_mask)
    return BrainMaskCheck(
        volume_ml=volume,
        vertex_gap_mm=gap,
        inside_head=inside_head,
        template_correlation=correlation,
        warnings=_warnings(volume, gap, inside_head, correlation),
    )


def _vertex_gap(foreground: np.ndarray, mask: np.ndarray, affine: np.ndarray) -> float:
    """Distance (mm) between the highest head voxel and the highest mask voxel."""
    if not mask.any():
        return float("inf")
    axis, sign = superior_axis(affine)
    index = np.indices(mask.shape)[axis]
    spacing = float(voxel_sizes(affine)[axis])
    top = (lambda values: values.max()) if sign > 0 else (lambda values: -values.min())
    return float(top(index[foreground]) - top(index[mask])) * spacing


def template_correlation(
    warped: str | Path, template: str | Path, template_mask: str | Path
) -> float:
    """Pearson correlation of a T1w warped to the template with the template, inside its mask."""
    reference = load_nifti(template, "template T1w")
    moved = _on_grid_of(load_nifti(warped, "T1w warped to the template"), reference)
    inside = _on_grid_of(load_nifti(template_mask, "template brain mask"), reference) > 0
    values = np.asanyarray(reference.dataobj).reshape(reference.shape[:3])[inside]
    return float(np.corrcoef(values.astype(float), moved[inside].astype(float))[0, 1])


def _warnings(
    volume: float, gap: float, inside_head: float, correlation: float | None
) -> tuple[str, ...]:
    low, high = BRAIN_VOLUME_RANGE_ML
    found = []
    if not low <= volume <= high:
        found.append(
            f"T1w brain mask volume {volume:.0f} mL is outside {low:.0f}-{high:.0f} mL: "
            "brain extraction probably failed (check the T1w mask figure; if the T1w is "
            "already skull-stripped, use --skull-strip-t1w skip)."
        )
    if gap > MAX_VERTEX_GAP_MM:
        found.append(
            f"T1w brain mask stops {gap:.0f} mm below the top of the head (> "
            f"{MAX_VERTEX_GAP_MM:.0f} mm): it is misplaced downwards, over the face or neck."
        )
    if inside_head < MIN_INSIDE_HEAD:
        found.append(
            f"Only {100 * inside_head:.0f} % of the T1w brain mask lies inside the head: the "
            "mask is misplaced."
        )
    if correlation is not None and correlation < MIN_TEMPLATE_CORRELATION:
        found.append(
            f"The T1w matches the template poorly after registration (correlation "
            f"{correlation:.2f} < {MIN_TEMPLATE_CORRELATION}): brain mask and template-space "
            "maps may be wrong."
        )
    return tuple(found)
