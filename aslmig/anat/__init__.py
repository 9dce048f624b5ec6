"""Anatomical processing and registration: pure functions over NIfTI paths (ANTs via antspyx).

Every function takes file paths and writes file paths; nothing here imports nipype. antspyx
is imported on first use. Call :func:`set_threads` before the first of them in a process.
"""

from aslmig.anat.bias import n4_bias_correct
from aslmig.anat.brain import BrainExtraction, extract_brain
from aslmig.anat.quality import dice
from aslmig.anat.registration import (
    Registration,
    affine_matrix,
    apply_transforms,
    compose_transforms,
    register,
)
from aslmig.anat.segmentation import segment_tissues
from aslmig.anat.threads import set_threads

__all__ = [
    "BrainExtraction",
    "Registration",
    "affine_matrix",
    "apply_transforms",
    "compose_transforms",
    "dice",
    "extract_brain",
    "n4_bias_correct",
    "register",
    "segment_tissues",
    "set_threads",
]
