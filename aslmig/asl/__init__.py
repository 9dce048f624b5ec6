"""ASL preprocessing: volume-type-aware head-motion correction, reference image, brain mask.

Pure functions on arrays (no nipype, no file I/O): :mod:`aslmig.asl.motion`,
:mod:`aslmig.asl.reference`, and the rigid registration engine :mod:`aslmig.asl.rigid`.
"""

from aslmig.asl.motion import (
    Realignment,
    confounds_table,
    framewise_displacement,
    realign_series,
)
from aslmig.asl.reference import ReferenceImage, brain_mask, reference_image

__all__ = [
    "Realignment",
    "ReferenceImage",
    "brain_mask",
    "confounds_table",
    "framewise_displacement",
    "realign_series",
    "reference_image",
]
