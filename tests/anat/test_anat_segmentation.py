"""Atropos tissue segmentation on the phantom.

Tolerance: per class (CSF, GM, WM), Dice >= 0.85 between the most probable class and the
phantom's majority labels, inside the true brain mask (k-means and template priors).
"""

from __future__ import annotations

import nibabel as nb
import numpy as np
import pytest
from anat_phantom import CSF, GM, WM, read, write_phantom
from scipy import ndimage

from aslmig.anat import segment_tissues
from aslmig.errors import InputError

DICE_MIN = 0.85
CODES = {"csf": CSF, "gm": GM, "wm": WM}


@pytest.fixture(scope="module")
def brain(tmp_path_factory):
    """A noisy phantom (no bias: segmentation takes bias-corrected input)."""
    return write_phantom(tmp_path_factory.mktemp("seg"), "brain", noise=20.0, seed=3)


def _dice_per_class(maps: dict, labels: np.ndarray, inside: np.ndarray) -> dict[str, float]:
    stack = np.stack([read(maps[tissue]) for tissue in CODES])
    winner = np.array(list(CODES.values()))[np.argmax(stack, axis=0)]
    scores = {}
    for tissue, code in CODES.items():
        a, b = (winner == code) & inside, (labels == code) & inside
        scores[tissue] = 2 * (a & b).sum() / (a.sum() + b.sum())
    return scores


def test_kmeans_segmentation_recovers_classes(tmp_path, brain):
    maps = segment_tissues(brain.t1w, brain.brain_mask, None, tmp_path)
    assert set(maps) == {"gm", "wm", "csf"}
    labels, inside = read(brain.labels), read(brain.brain_mask) > 0
    scores = _dice_per_class(maps, labels, inside)
    assert min(scores.values()) >= DICE_MIN, scores
    total = sum(read(maps[tissue]) for tissue in maps)
    assert np.allclose(total[inside], 1.0, atol=1e-3)
    assert np.all(total[~inside] == 0)
    dseg = read(tmp_path / "dseg.nii.gz")
    assert set(np.unique(dseg)) == {0, 1, 2, 3}
    assert np.mean(dseg[labels == WM] == 3) > 0.85


def test_prior_segmentation_recovers_classes(tmp_path, brain):
    affine = nb.load(brain.labels).affine
    labels, inside = read(brain.labels), read(brain.brain_mask) > 0
    priors = {}
    for tissue, code in CODES.items():  # blurred truth, as if warped from a template
        prior = ndimage.gaussian_filter((labels == code).astype(np.float32), 1.0)
        priors[tissue.upper()] = tmp_path / f"prior_{tissue}.nii.gz"
        nb.Nifti1Image(prior, affine).to_filename(priors[tissue.upper()])
    maps = segment_tissues(brain.t1w, brain.brain_mask, priors, tmp_path / "out")
    scores = _dice_per_class(maps, labels, inside)
    assert min(scores.values()) >= DICE_MIN, scores


def test_priors_must_be_complete_and_on_grid(tmp_path, brain):
    with pytest.raises(ValueError, match="csf"):
        segment_tissues(brain.t1w, brain.brain_mask, {"gm": brain.t1w, "wm": brain.t1w}, tmp_path)
    other = tmp_path / "other.nii.gz"
    nb.Nifti1Image(np.ones((10, 10, 10), np.float32), np.eye(4)).to_filename(other)
    with pytest.raises(InputError, match="not on the voxel grid"):
        segment_tissues(brain.t1w, other, None, tmp_path)
