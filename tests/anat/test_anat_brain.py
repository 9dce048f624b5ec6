"""Template-based brain extraction on the phantom.

The subject is the template phantom moved by an affine (rotation 3-6 deg, scaling 5-6 %,
translation 2-3 mm), with a bias field and noise. Tolerance: Dice >= 0.9 with its true
brain mask (CSF+GM+WM), for a template with skull and for a skull-stripped one.
"""

from __future__ import annotations

import nibabel as nb
import numpy as np
import pytest
from anat_phantom import read

from aslmig.anat import BrainExtraction, apply_transforms, dice, extract_brain

DICE_MIN = 0.9


@pytest.mark.parametrize("which", ["template", "stripped_template"])
def test_brain_mask_matches_truth(tmp_path, request, which, subject):
    template = request.getfixturevalue(which)
    result = extract_brain(subject.t1w, template.t1w, template.brain_mask, tmp_path)
    assert isinstance(result, BrainExtraction)
    assert dice(result.mask, subject.brain_mask) >= DICE_MIN
    mask = read(result.mask)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) == {0, 1}
    brain = read(result.brain)
    assert np.all(brain[mask == 0] == 0) and brain[mask == 1].mean() > 0
    assert nb.load(result.mask).shape == nb.load(subject.t1w).shape


def test_returned_transforms_take_the_subject_to_the_template(tmp_path, template, subject):
    result = extract_brain(subject.t1w, template.t1w, template.brain_mask, tmp_path)
    transforms = result.template_transforms
    assert transforms.kind == "syn"
    in_template = apply_transforms(
        subject.brain_mask,
        template.t1w,
        transforms.forward_transforms,
        tmp_path / "mask_in_template.nii.gz",
        interpolation="nearestNeighbor",
    )
    assert dice(in_template, template.brain_mask) >= DICE_MIN
