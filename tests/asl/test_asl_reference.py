"""Reference image and brain mask: asldro ground-truth masks and a phantom with a scalp."""

from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from asl_phantom import grid, world_points
from scipy import ndimage

from aslmig.asl.reference import brain_mask, otsu_threshold, reference_image
from aslmig.errors import InputError

DATA = Path(__file__).resolve().parents[1] / "data" / "asldro"


def dice(a, b):
    return 2.0 * np.logical_and(a, b).sum() / (a.sum() + b.sum())


def _series(values, shape=(4, 4, 3)):
    return np.broadcast_to(np.asarray(values, float), (*shape, len(values))).copy()


def test_reference_prefers_separate_m0_then_m0scan_then_control():
    data = _series([1000.0, 980.0, 100.0, 99.0, 102.0, 101.0])
    types = ["m0scan", "m0scan", "control", "label", "control", "label"]
    ref = reference_image(data, types)
    assert (ref.source, ref.n_volumes) == ("m0scan", 2)
    np.testing.assert_allclose(ref.data, 990.0)
    ref = reference_image(data[..., 2:], types[2:])
    assert (ref.source, ref.n_volumes) == ("control", 2)
    np.testing.assert_allclose(ref.data, 101.0)
    m0 = np.full((4, 4, 3, 2), 500.0)
    m0[..., 1] = 700.0
    ref = reference_image(data[..., 2:], types[2:], m0=m0)
    assert (ref.source, ref.n_volumes) == ("separate_m0", 2)
    np.testing.assert_allclose(ref.data, 600.0)


def test_reference_of_a_deltam_only_series_is_its_mean():
    ref = reference_image(_series([1.0, 3.0]), ["deltam", "deltam"])
    assert ref.source == "mean"
    np.testing.assert_allclose(ref.data, 2.0)


def test_reference_rejects_m0_on_another_grid():
    with pytest.raises(InputError, match="M0 grid"):
        reference_image(_series([1.0, 2.0]), ["control", "label"], m0=np.ones((5, 4, 3)))


def test_otsu_threshold_splits_two_classes():
    rng = np.random.default_rng(0)
    values = np.concatenate([rng.normal(10, 2, 5000), rng.normal(100, 5, 3000)])
    assert 20 < otsu_threshold(values) < 90


@pytest.mark.parametrize("name", ["pcasl_exact", "pcasl_noisy/snr10"])
def test_brain_mask_of_asldro_m0_matches_its_segmentation(name):
    folder = DATA / name
    if not (folder / "m0scan.nii.gz").exists():
        pytest.skip("asldro test data not present")
    image = nib.load(folder / "m0scan.nii.gz")
    truth = np.asarray(nib.load(folder / "truth_dseg.nii.gz").dataobj) > 0
    mask = brain_mask(np.asarray(image.dataobj, float), image.affine)
    assert dice(mask, truth) >= 0.9  # measured 0.997 (noise-free) and 0.988 (SNR 10)


def _head(noise, rng, dark_csf=False):
    """Brain (with ventricles), a 3.5 mm dark skull and a bright scalp; magnitude noise."""
    shape = (40, 40, 24)
    affine = grid(shape)
    x, y, z = world_points(shape, affine).reshape(3, *shape)

    def inside(grow):
        return (x / (50 + grow)) ** 2 + (y / (56 + grow)) ** 2 + (z / (30 + grow)) ** 2 < 1

    brain = inside(0)
    scalp = inside(8) & ~inside(3.5)
    ventricles = ((x - 5) / 7) ** 2 + (y / 16) ** 2 + (z / 7) ** 2 < 1
    csf = 10.0 if dark_csf else 140.0
    img = np.where(brain, 100.0, 0.0) + np.where(ventricles, csf - 100.0, 0.0) + 70.0 * scalp
    img = ndimage.gaussian_filter(img, 0.6) * (1.0 + 0.2 * x / 60.0)  # receive-coil bias
    noisy = img + rng.normal(0, noise, shape) + 1j * rng.normal(0, noise, shape)
    return np.abs(noisy), affine, brain, scalp


@pytest.mark.parametrize("noise", [1.0, 10.0])
@pytest.mark.parametrize("dark_csf", [False, True])
def test_brain_mask_of_a_phantom_drops_the_scalp_and_keeps_the_ventricles(noise, dark_csf):
    image, affine, brain, scalp = _head(noise, np.random.default_rng(0), dark_csf)
    mask = brain_mask(image, affine)
    assert dice(mask, brain) >= 0.95
    assert not (mask & scalp).any()
    assert ndimage.binary_fill_holes(mask).sum() == mask.sum()


def test_brain_mask_rejects_flat_or_bad_images():
    with pytest.raises(ValueError, match="flat"):
        brain_mask(np.ones((5, 5, 5)), np.eye(4))
    with pytest.raises(ValueError, match="3D"):
        brain_mask(np.ones((5, 5)), np.eye(4))
