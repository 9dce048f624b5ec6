"""ASL preprocessing of one run: motion correction, reference image, brain mask, confounds.

The step the nipype interface :class:`aslmig.interfaces.asl.PreprocessASL` runs; it reads
the files, calls the array functions of :mod:`aslmig.asl.motion` and
:mod:`aslmig.asl.reference`, and writes the results.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import nibabel as nb
import numpy as np

from aslmig.asl.motion import confounds_table, realign_series
from aslmig.asl.reference import brain_mask

if TYPE_CHECKING:
    from aslmig.bids.metadata import AslMetadata


@dataclass(frozen=True)
class PreprocessedAsl:
    """Files written by :func:`preprocess_asl`.

    Attributes
    ----------
    realigned : Path
        Motion-corrected series.
    reference : Path
        Reference image (mean M0, else mean control).
    mask : Path
        Brain mask of the reference (uint8).
    confounds : Path
        Motion parameters and framewise displacement (TSV, ``n/a`` for missing values).
    m0 : Path or None
        The separate M0 scan realigned onto the series grid (None without one).
    """

    realigned: Path
    reference: Path
    mask: Path
    confounds: Path
    m0: Path | None = None


def motion_slice_axis(metadata: AslMetadata) -> int | None:
    """Slice axis of a 2D multi-slice readout (its slices get their own gains), else None."""
    return metadata.slice_axis if metadata.acquisition_type == "2D" else None


def preprocess_asl(
    asl_file: str | Path,
    metadata: AslMetadata,
    out_dir: str | Path,
    m0_file: str | Path | None = None,
) -> PreprocessedAsl:
    """Realign an ASL series (and its separate M0), and derive its reference and brain mask.

    Controls and labels are realigned within each post-labeling delay (see
    :mod:`aslmig.asl.motion`); 2D readouts link groups of different contrast with one gain
    per slice.

    Parameters
    ----------
    asl_file : str or Path
        The raw ASL series.
    metadata : AslMetadata
        Its validated metadata (volume types, delays, readout).
    out_dir : str or Path
        Where the outputs are written (``realigned``, ``reference``, ``mask``, ``m0``
        ``.nii.gz`` and ``confounds.tsv``).
    m0_file : str or Path, optional
        A separate M0 scan, realigned with the series onto its grid.

    Returns
    -------
    PreprocessedAsl
        The files written.
    """
    out_dir = Path(out_dir)
    image = nb.load(str(asl_file))
    series = np.asanyarray(image.dataobj, dtype=np.float32)
    m0_image = None if m0_file is None else nb.load(str(m0_file))
    realignment = realign_series(
        series,
        image.affine,
        metadata.volume_types,
        post_labeling_delays=metadata.post_labeling_delay,
        slice_axis=motion_slice_axis(metadata),
        m0=None if m0_image is None else np.asanyarray(m0_image.dataobj, dtype=np.float32),
        m0_affine=None if m0_image is None else m0_image.affine,
        source=asl_file,
    )
    affine = image.affine
    mask = brain_mask(realignment.reference, affine)
    confounds = out_dir / "confounds.tsv"
    confounds_table(realignment.parameters, metadata.volume_types).to_csv(
        confounds, sep="\t", index=False, na_rep="n/a"
    )
    return PreprocessedAsl(
        realigned=_save(realignment.realigned, affine, out_dir / "realigned.nii.gz"),
        reference=_save(realignment.reference, affine, out_dir / "reference.nii.gz"),
        mask=_save(mask, affine, out_dir / "mask.nii.gz", np.uint8),
        confounds=confounds,
        m0=None if realignment.m0 is None else _save(realignment.m0, affine, out_dir / "m0.nii.gz"),
    )


def _save(array: np.ndarray, affine: np.ndarray, path: Path, dtype: type = np.float32) -> Path:
    """Write an array as NIfTI (mm, s units)."""
    image = nb.Nifti1Image(np.asarray(array, dtype=dtype), affine)
    image.header.set_xyzt_units("mm", "sec")
    image.to_filename(str(path))
    return path
