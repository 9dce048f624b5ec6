"""N4 bias correction on the phantom.

Tolerance: the white-matter coefficient of variation (eroded WM, so no partial volume)
falls by at least half, to within 1.5x the noise-only floor (noise 15 / WM 900 = 0.017).
"""

from __future__ import annotations

import numpy as np
from anat_phantom import WM, read
from scipy import ndimage

from aslmig.anat import n4_bias_correct

NOISE_FLOOR = 15.0 / 900.0


def _wm_cov(image: np.ndarray, labels: np.ndarray) -> float:
    core = ndimage.binary_erosion(labels == WM)
    values = image[core]
    return float(values.std() / values.mean())


def test_n4_removes_known_bias_within_brain_mask(tmp_path, subject):
    labels = read(subject.labels)
    before = _wm_cov(read(subject.t1w), labels)
    out = n4_bias_correct(
        subject.t1w,
        tmp_path / "n4.nii.gz",
        mask_file=subject.brain_mask,
        shrink_factor=2,
        bias_file=tmp_path / "bias.nii.gz",
    )
    after = _wm_cov(read(out), labels)
    assert before > 3 * NOISE_FLOOR  # the bias is there to remove
    assert after < 0.5 * before
    assert after < 1.5 * NOISE_FLOOR
    corrected, field = read(out), read(tmp_path / "bias.nii.gz")
    assert np.allclose(corrected * field, read(subject.t1w), rtol=1e-4, atol=1e-2)


def test_n4_without_mask_still_reduces_bias(tmp_path, subject):
    labels = read(subject.labels)
    before = _wm_cov(read(subject.t1w), labels)
    after = _wm_cov(read(n4_bias_correct(subject.t1w, tmp_path / "n4.nii.gz")), labels)
    assert after < 0.75 * before
