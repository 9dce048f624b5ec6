"""Input checks, Dice, and the thread setting of aslmig.anat."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest
from anat_phantom import grid_affine

from aslmig.anat import apply_transforms, dice, n4_bias_correct, register, set_threads
from aslmig.errors import InputError


def _write(path: Path, data: np.ndarray, affine: np.ndarray | None = None) -> Path:
    nb.Nifti1Image(data, np.eye(4) if affine is None else affine).to_filename(path)
    return path


@pytest.fixture
def volume(tmp_path) -> Path:
    data = np.zeros((12, 12, 12), np.float32)
    data[3:9, 3:9, 3:9] = 100.0
    return _write(tmp_path / "volume.nii.gz", data)


def test_missing_file_names_the_file(tmp_path):
    missing = tmp_path / "nope.nii.gz"
    with pytest.raises(InputError) as error:
        n4_bias_correct(missing, tmp_path / "out.nii.gz")
    assert str(missing) in error.value.message
    assert "does not exist" in error.value.message


def test_zero_byte_file(tmp_path):
    empty = tmp_path / "empty.nii.gz"
    empty.write_bytes(b"")
    with pytest.raises(InputError, match="empty"):
        n4_bias_correct(empty, tmp_path / "out.nii.gz")


def test_all_zero_image(tmp_path):
    zeros = _write(tmp_path / "zeros.nii.gz", np.zeros((8, 8, 8), np.float32))
    with pytest.raises(InputError, match="every voxel"):
        n4_bias_correct(zeros, tmp_path / "out.nii.gz")


def test_nan_image(tmp_path):
    data = np.ones((8, 8, 8), np.float32)
    data[2, 2, 2] = np.nan
    with pytest.raises(InputError, match="NaN"):
        n4_bias_correct(_write(tmp_path / "nan.nii.gz", data), tmp_path / "out.nii.gz")


def test_4d_where_3d_needed(tmp_path, volume):
    series = _write(tmp_path / "series.nii.gz", np.ones((8, 8, 8, 3), np.float32))
    with pytest.raises(InputError, match="must be a 3D image"):
        register(series, volume, tmp_path / "x_", "rigid")


def test_single_volume_4d_counts_as_3d(tmp_path, volume):
    data = np.asanyarray(nb.load(volume).dataobj)[..., None]
    single = _write(tmp_path / "single.nii.gz", data)
    out = apply_transforms(single, volume, [], tmp_path / "out.nii.gz")
    assert nb.load(out).shape == (12, 12, 12)


def test_sheared_affine_is_refused_with_a_fix(tmp_path):
    affine = np.eye(4)
    affine[0, 1] = 0.5  # non-orthonormal direction cosines: ITK cannot represent them
    sheared = _write(tmp_path / "sheared.nii.gz", np.ones((8, 8, 8), np.float32), affine)
    with pytest.raises(InputError, match="orientation") as error:
        n4_bias_correct(sheared, tmp_path / "out.nii.gz")
    assert "reslice" in error.value.message


def test_mask_on_another_grid_is_refused(tmp_path, volume):
    mask = _write(tmp_path / "mask.nii.gz", np.ones((10, 12, 12), np.uint8))
    with pytest.raises(InputError, match="not on the voxel grid"):
        n4_bias_correct(volume, tmp_path / "out.nii.gz", mask_file=mask)


def test_bad_arguments_are_programming_errors(tmp_path, volume):
    with pytest.raises(ValueError, match="kind"):
        register(volume, volume, tmp_path / "x_", "elastic")
    with pytest.raises(ValueError, match="interpolation"):
        apply_transforms(volume, volume, [], tmp_path / "o.nii.gz", interpolation="cubic")
    with pytest.raises(ValueError, match="shrink_factor"):
        n4_bias_correct(volume, tmp_path / "o.nii.gz", shrink_factor=0)
    with pytest.raises(ValueError, match="threads"):
        set_threads(0)


# --- Dice -------------------------------------------------------------------------------


def test_dice_matches_numpy(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.random((20, 18, 16)) > 0.6
    b = rng.random((20, 18, 16)) > 0.3
    expected = 2 * np.logical_and(a, b).sum() / (a.sum() + b.sum())
    path_a = _write(tmp_path / "a.nii.gz", a.astype(np.uint8))
    path_b = _write(tmp_path / "b.nii.gz", b.astype(np.uint8))
    assert dice(path_a, path_b) == pytest.approx(expected, abs=1e-12)
    assert dice(path_a, path_a) == 1.0


def test_dice_threshold_for_probabilistic_masks(tmp_path):
    a = np.zeros((10, 10, 10), np.float32)
    a[2:6] = 0.9
    a[6:8] = 0.2
    b = np.zeros((10, 10, 10), np.float32)
    b[2:6] = 1.0
    path_a, path_b = _write(tmp_path / "a.nii.gz", a), _write(tmp_path / "b.nii.gz", b)
    assert dice(path_a, path_b) == pytest.approx(2 * 400 / (600 + 400))
    assert dice(path_a, path_b, threshold=0.5) == 1.0


def test_dice_resamples_other_grid_nearest(tmp_path):
    """A 2 mm mask against the same box on a 1 mm grid (same world extent): Dice 1."""
    coarse = np.zeros((16, 16, 16), np.uint8)
    coarse[4:12, 5:10, 3:13] = 1
    fine = np.repeat(np.repeat(np.repeat(coarse, 2, 0), 2, 1), 2, 2)
    affine_coarse = grid_affine((16, 16, 16), 2.0)
    affine_fine = grid_affine((32, 32, 32), 1.0)
    path_coarse = _write(tmp_path / "coarse.nii.gz", coarse, affine_coarse)
    path_fine = _write(tmp_path / "fine.nii.gz", fine, affine_fine)
    assert dice(path_coarse, path_fine) == pytest.approx(1.0)
    assert dice(path_fine, path_coarse) == pytest.approx(1.0)


def test_dice_of_empty_masks(tmp_path):
    a = np.zeros((6, 6, 6), np.uint8)
    b = a.copy()
    b[1:3, 1:3, 1:3] = 1
    path_a, path_b = _write(tmp_path / "a.nii.gz", a), _write(tmp_path / "b.nii.gz", b)
    assert dice(path_a, path_b) == 0.0
    with pytest.raises(InputError, match="both masks are empty"):
        dice(path_a, path_a)


# --- threads ----------------------------------------------------------------------------

_THREAD_PROBE = textwrap.dedent(
    """
    import sys
    import numpy as np, nibabel as nb
    from aslmig.anat import apply_transforms, set_threads

    def threads():
        with open("/proc/self/status") as status:
            return next(int(l.split()[1]) for l in status if l.startswith("Threads:"))

    set_threads(int(sys.argv[1]))
    import ants  # noqa: F401  (load the library before counting)
    before = threads()
    data = np.random.default_rng(0).random((40, 40, 40)).astype(np.float32) + 1
    nb.Nifti1Image(data, np.eye(4)).to_filename(sys.argv[2])
    apply_transforms(sys.argv[2], sys.argv[2], [], sys.argv[2])
    print(threads() - before)
    """
)


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="needs Linux /proc")
@pytest.mark.parametrize("n", [1, 3])  # 3: more than the cores, so not a default
def test_set_threads_sizes_the_itk_pool(tmp_path, n):
    """ITK keeps its worker threads: after one call the process has exactly n more."""
    result = subprocess.run(
        [sys.executable, "-c", _THREAD_PROBE, str(n), str(tmp_path / "x.nii.gz")],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(result.stdout.strip().splitlines()[-1]) == n


def test_set_threads_warns_once_ants_has_run(monkeypatch):
    from aslmig.anat import threads

    monkeypatch.setattr(threads, "_first_use_seen", True)
    monkeypatch.setattr(threads, "_threads_at_first_use", "2")
    monkeypatch.setenv(threads.THREADS_VARIABLE, "2")
    set_threads(2)  # same value: silent
    with pytest.warns(RuntimeWarning, match="only once"):
        set_threads(1)
