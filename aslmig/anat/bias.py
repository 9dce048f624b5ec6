"""N4 bias-field correction (Tustison et al. 2010, IEEE TMI 29:1310) through antspyx."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aslmig.anat._images import (
    ants_module,
    from_array,
    read_image,
    require_same_grid,
    write_image,
)

#: B-spline control-point spacing in mm (as sMRIPrep for T1w; ANTs' default is 200 too
#: in antsBrainExtraction.sh): a smooth field, as expected at 1.5-3 T.
SPLINE_DISTANCE_MM = 200.0
#: Maximum iterations per resolution level (4 levels) and convergence threshold.
ITERATIONS = (50, 50, 50, 50)
TOLERANCE = 1e-7


def n4_bias_correct(
    in_file: str | Path,
    out_file: str | Path,
    mask_file: str | Path | None = None,
    shrink_factor: int = 4,
    *,
    spline_distance: float = SPLINE_DISTANCE_MM,
    bias_file: str | Path | None = None,
) -> Path:
    """Remove a smooth multiplicative intensity bias with N4.

    Negative voxel values (interpolation ringing) are set to zero first, because N4 works
    on log intensities. Without a mask, N4 fits the field over all voxels; with a mask, over
    the mask only, but the field is removed from the whole image. Iterations are
    ``ITERATIONS`` (four levels) with convergence threshold ``TOLERANCE``; intensities are
    not rescaled afterwards (antspyx default), so only relative intensities are meaningful.

    Parameters
    ----------
    in_file : str or Path
        A 3D image.
    out_file : str or Path
        Where to write the corrected image (float32).
    mask_file : str or Path, optional
        A 3D mask on the grid of ``in_file``; non-zero voxels are used for fitting.
    shrink_factor : int
        Subsampling of the image for fitting (1 = none); 4 is usual for 1 mm T1w.
    spline_distance : float
        B-spline control-point spacing in mm.
    bias_file : str or Path, optional
        Where to write the estimated bias field as well.

    Returns
    -------
    Path
        ``out_file``.
    """
    if isinstance(shrink_factor, bool) or not isinstance(shrink_factor, int) or shrink_factor < 1:
        raise ValueError(f"shrink_factor must be a positive integer, not {shrink_factor!r}")
    ants = ants_module()
    image = read_image(in_file, "image to bias-correct").clone("float")
    image = from_array(np.clip(image.numpy(), 0, None).astype(np.float32), like=image)
    mask = None
    if mask_file is not None:
        mask = read_image(mask_file, "bias-correction mask")
        require_same_grid(image, mask, mask_file, in_file)
        mask = from_array((mask.numpy() != 0).astype(np.float32), like=image)
    options = {
        "mask": mask,
        "shrink_factor": shrink_factor,
        "convergence": {"iters": list(ITERATIONS), "tol": TOLERANCE},
        "spline_param": float(spline_distance),
    }
    field = ants.n4_bias_field_correction(image, return_bias_field=True, **options).numpy()
    if bias_file is not None:
        write_image(from_array(field.astype(np.float32), like=image), bias_file, "float")
    corrected = image.numpy() / np.where(field > 0, field, 1.0)
    return write_image(from_array(corrected.astype(np.float32), like=image), out_file, "float")
