"""The simulator's known anatomy as an fMRIPrep-like derivatives dataset (``--derivatives``).

A simulated participant's head is the template moved by a known affine ``H`` (pose times
scale, :func:`aslmig.sim.anatomy.head_matrix`), so its brain mask, tissue maps and T1w <->
template transforms are known exactly. Written into the ground-truth dataset under
fMRIPrep's names, they let ``aslmig ... participant --derivatives anat=<truth>`` skip the
anatomical stage (N4, brain extraction, T1w -> template SyN, Atropos), which is most of a
simulated session's cost; the ASL -> T1w registration, CBF, regions and reports still run.
``aslmig demo`` uses it so that a cohort large enough for its group-level claim fits in
minutes.

ITK transforms map points of the output (fixed) space to the input (moving) space, in LPS
millimetres: the T1w -> template transform maps a template point ``p`` to ``H p``.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from scipy import ndimage

from aslmig.sim.anatomy import TemplateAnatomy, grid_for, head_matrix, resample_channels
from aslmig.sim.io import write_nifti

#: RAS <-> LPS (ITK's physical space) flip of the first two axes.
_LPS = np.diag([-1.0, -1.0, 1.0, 1.0])
#: A T1w voxel belongs to the brain mask when its GM + WM probability reaches this (holes, the
#: ventricles, filled). GM + WM + CSF, or the template's brain mask, take in the dark outer CSF
#: of the skull-less simulated T1w: only 94 % of such a mask lies inside the head that
#: :func:`aslmig.anat.quality.check_brain_mask` finds, which it flags; this one: 98.9 %.
MASK_PROBABILITY = 0.5
#: Sub-samples per axis of the tissue maps: trilinear interpolation of the 2 mm template onto
#: the 2 mm T1w grid. The 3x3x3 sub-sampling of the images took 17 s of a participant's 26 s
#: (measured); tissue maps are estimates in any real derivatives dataset too.
TRUTH_SUBSAMPLES = 1


def write_itk_affine(matrix_ras: np.ndarray, path: Path) -> Path:
    """Write a 4x4 RAS world matrix as an ITK affine transform file (``.h5`` or ``.mat``).

    Parameters
    ----------
    matrix_ras : ndarray
        Maps output-space points to input-space points, RAS millimetres.
    path : Path
        Destination; the extension chooses ITK's format.

    Returns
    -------
    Path
        ``path``.
    """
    import ants

    lps = _LPS @ matrix_ras @ _LPS
    transform = ants.create_ants_transform(
        transform_type="AffineTransform",
        precision="double",
        dimension=3,
        matrix=lps[:3, :3],
        translation=lps[:3, 3],
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    ants.write_transform(transform, str(path))
    return path


def write_participant_anatomy(
    folder: Path,
    prefix: str,
    t1w: Path,
    anatomy: TemplateAnatomy,
    pose: np.ndarray,
    scale: float,
    t1w_voxel_mm: float,
) -> list[Path]:
    """Write one participant's known anatomy under fMRIPrep's names.

    Parameters
    ----------
    folder : Path
        ``<truth>/sub-X/anat`` (no session: one anatomy serves every session, as fMRIPrep's).
    prefix : str
        ``sub-X``.
    t1w : Path
        The simulated T1w (noise-free of bias, so it is its own ``desc-preproc`` image).
    anatomy : TemplateAnatomy
        The template the participant was drawn from.
    pose : ndarray
        Head pose of the T1w's session.
    scale : float
        Head scale of the participant.
    t1w_voxel_mm : float
        Voxel size of the T1w grid.

    Returns
    -------
    list of Path
        The files written.
    """
    head = head_matrix(pose, scale)
    shape, affine = grid_for(t1w_voxel_mm)
    channels = np.stack([anatomy.gm, anatomy.wm, anatomy.csf])
    resampled = resample_channels(channels, anatomy.affine, head, shape, affine, TRUTH_SUBSAMPLES)
    gm, wm, csf = np.clip(resampled, 0.0, 1.0)
    folder.mkdir(parents=True, exist_ok=True)
    written = [folder / f"{prefix}_desc-preproc_T1w.nii.gz"]
    shutil.copyfile(t1w, written[0])
    mask = ndimage.binary_fill_holes(gm + wm >= MASK_PROBABILITY).astype(np.uint8)
    written.append(write_nifti(folder / f"{prefix}_desc-brain_mask.nii.gz", mask, affine, np.uint8))
    for label, data in (("GM", gm), ("WM", wm), ("CSF", csf)):
        written.append(write_nifti(folder / f"{prefix}_label-{label}_probseg.nii.gz", data, affine))
    xfm = "mode-image_xfm.h5"
    written.append(write_itk_affine(head, folder / f"{prefix}_from-T1w_to-{anatomy.space}_{xfm}"))
    written.append(
        write_itk_affine(
            np.linalg.inv(head), folder / f"{prefix}_from-{anatomy.space}_to-T1w_{xfm}"
        )
    )
    return written
