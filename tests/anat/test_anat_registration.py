"""Registration, transform composition and resampling (aslmig.anat.registration).

Tolerances: a rigid fit of two 1.5 mm textured phantoms (64^3) recovers the true map within
0.5 degrees of rotation and 0.5 mm at every point of the head (radius ~35 mm) with mean
squares, the metric for a same-contrast pair; with Mattes mutual information (the default,
for any contrast) within 1 degree / 1 mm: on this phantom its optimum is as sharp, but the
optimiser stops 0.1-0.5 degrees short of it (12 seeds, 2 threads). Composed transforms
are checked exactly where one resampling must be exact (integer-voxel shifts).
"""

from __future__ import annotations

from pathlib import Path

import nibabel as nb
import numpy as np
import pytest
from anat_phantom import grid_affine, read, rigid, write_phantom

from aslmig.anat import (
    Registration,
    affine_matrix,
    apply_transforms,
    compose_transforms,
    register,
)
from aslmig.errors import InputError

TOLERANCE = {"meansquares": (0.5, 0.5), "mattes": (1.0, 1.0)}  # (degrees, mm)
TRUE_RIGID = rigid((4.0, -3.0, 5.0), (3.0, -2.0, 1.5))
FINE_GRID = {"shape": (64, 64, 64), "spacing": 1.5}


def _rotation_angle_deg(a: np.ndarray, b: np.ndarray) -> float:
    relative = a[:3, :3].T @ b[:3, :3]
    return float(np.degrees(np.arccos(np.clip((np.trace(relative) - 1) / 2, -1.0, 1.0))))


def _head_points() -> np.ndarray:
    """Points over the phantom head (mm): the centre and a shell at ~35 mm."""
    directions = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1], [-1, 1, -1]], float)
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    return np.vstack([np.zeros(3), 35 * directions, -35 * directions])


def _map(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:3, :3].T + matrix[:3, 3]


@pytest.fixture(scope="module")
def rigid_pair(tmp_path_factory):
    folder = tmp_path_factory.mktemp("rigid")
    fixed = write_phantom(folder, "fixed", texture=True, **FINE_GRID)
    moving = write_phantom(
        folder, "moving", transform=TRUE_RIGID, noise=10.0, seed=1, texture=True, **FINE_GRID
    )
    return folder, fixed, moving


@pytest.fixture(scope="module")
def rigid_case(rigid_pair):
    folder, fixed, moving = rigid_pair
    result = register(moving.t1w, fixed.t1w, folder / "out" / "rig_", "rigid", metric="mattes")
    return folder, moving, result


def _check_rigid(result: Registration, metric: str) -> None:
    degrees, mm = TOLERANCE[metric]
    estimated = affine_matrix(result.forward_transforms[0])
    # The forward transform maps fixed (template) points to moving points: inverse of truth.
    truth = np.linalg.inv(TRUE_RIGID)
    assert _rotation_angle_deg(estimated, truth) < degrees
    error = np.linalg.norm(_map(estimated, _head_points()) - _map(truth, _head_points()), axis=1)
    assert error.max() < mm
    assert np.allclose(np.linalg.det(estimated[:3, :3]), 1.0, atol=1e-4)  # rigid


def test_rigid_recovers_known_rotation_and_translation(rigid_pair):
    folder, fixed, moving = rigid_pair
    result = register(moving.t1w, fixed.t1w, folder / "ms_", "rigid", metric="meansquares")
    _check_rigid(result, "meansquares")


def test_rigid_with_mutual_information(rigid_case):
    _check_rigid(rigid_case[2], "mattes")


def test_registration_outputs_are_stable_files(rigid_case):
    folder, moving, result = rigid_case
    assert isinstance(result, Registration)
    assert result.kind == "rigid" and result.metric == "mattes"
    assert result.forward_transforms == (folder / "out" / "rig_0GenericAffine.mat",)
    assert result.inverse_transforms == result.forward_transforms
    assert result.inverse_invert_flags == (True,)
    assert result.forward_invert_flags == (False,)
    assert all(path.is_file() for path in (*result.forward_transforms, result.warped))
    assert np.isfinite(result.metric_value) and result.metric_value < 0  # -MI
    assert result.moving == moving.t1w
    with pytest.raises(AttributeError):
        result.kind = "affine"  # frozen


def test_inverse_transforms_bring_the_template_to_the_moving_grid(rigid_case, rigid_pair):
    folder, moving, result = rigid_case
    back = apply_transforms(
        rigid_pair[1].labels,
        moving.t1w,
        result.inverse_transforms,
        folder / "labels_in_moving.nii.gz",
        interpolation="nearestNeighbor",
        invert_flags=result.inverse_invert_flags,
    )
    assert nb.load(back).get_data_dtype() == np.uint8  # labels keep their type
    agreement = np.mean(read(back) == read(moving.labels))
    assert agreement > 0.95


def test_syn_writes_warp_pair_in_ants_order(tmp_path, template, subject):
    result = register(
        subject.t1w, template.t1w, tmp_path / "syn_", "syn", syn_iterations=(10, 5, 0)
    )
    names = [path.name for path in result.forward_transforms]
    assert names == ["syn_1Warp.nii.gz", "syn_0GenericAffine.mat"]
    names = [path.name for path in result.inverse_transforms]
    assert names == ["syn_0GenericAffine.mat", "syn_1InverseWarp.nii.gz"]
    assert result.inverse_invert_flags == (True, False)
    assert nb.load(result.warped).shape == nb.load(template.t1w).shape


# --- composition ------------------------------------------------------------------------


def _translation_file(folder: Path, name: str, mm: tuple[float, float, float]) -> Path:
    """An ANTs translation transform (ITK LPS coordinates; z is the same in RAS)."""
    import ants

    transform = ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3, translation=mm
    )
    path = folder / f"{name}.mat"
    ants.write_transform(transform, str(path))
    return path


def _rigid_file(
    folder: Path, name: str, angle_deg: float, mm: tuple[float, float, float], axis: int = 2
) -> Path:
    """An ANTs rigid transform: rotation about one axis (ITK LPS), then a translation."""
    import ants

    c, s = np.cos(np.deg2rad(angle_deg)), np.sin(np.deg2rad(angle_deg))
    i, j = [k for k in range(3) if k != axis]
    matrix = np.eye(3)
    matrix[i, i], matrix[i, j], matrix[j, i], matrix[j, j] = c, -s, s, c
    transform = ants.create_ants_transform(
        transform_type="AffineTransform", dimension=3, matrix=matrix, translation=mm
    )
    path = folder / f"{name}.mat"
    ants.write_transform(transform, str(path))
    return path


@pytest.fixture
def smooth_volume(tmp_path) -> Path:
    """A smooth 3D blob image (2 mm grid) whose resampling is easy to compare."""
    shape = (32, 32, 32)
    affine = grid_affine(shape, 2.0)
    x, y, z = np.meshgrid(*[np.arange(n) * 2.0 - 31.0 for n in shape], indexing="ij")
    data = 100 * np.exp(-((x - 4) ** 2 + (y + 3) ** 2 + (z - 2) ** 2) / (2 * 9.0**2))
    data += 50 * np.exp(-((x + 10) ** 2 + (y - 8) ** 2 + (z + 6) ** 2) / (2 * 5.0**2))
    path = tmp_path / "blob.nii.gz"
    nb.Nifti1Image(data.astype(np.float32), affine).to_filename(path)
    return path


def test_compose_orders_chains_last_first(tmp_path):
    a = _translation_file(tmp_path, "asl_to_t1w", (0.0, 0.0, 1.0))
    warp = tmp_path / "t1w_to_tpl_1Warp.nii.gz"
    warp.write_bytes(b"placeholder")
    affine = _translation_file(tmp_path, "t1w_to_tpl_0GenericAffine", (0.0, 0.0, 1.0))
    composed = compose_transforms(a, [warp, affine])
    assert composed == [str(warp), str(affine), str(a)]
    with pytest.raises(InputError, match="does not exist"):
        compose_transforms(tmp_path / "missing.mat")
    with pytest.raises(ValueError):
        compose_transforms()


def test_composed_half_voxel_shifts_resample_once(tmp_path, smooth_volume):
    """Two 1 mm shifts on a 2 mm grid: one resampling is an exact 1-voxel shift."""
    asl_to_t1w = _translation_file(tmp_path, "a", (0.0, 0.0, 1.0))
    t1w_to_tpl = _translation_file(tmp_path, "b", (0.0, 0.0, 1.0))
    once = apply_transforms(
        smooth_volume,
        smooth_volume,
        compose_transforms(asl_to_t1w, t1w_to_tpl),
        tmp_path / "once.nii.gz",
    )
    source = read(smooth_volume)
    # The image is moved by -t: output(k) = input(k + 1 voxel) along z.
    assert np.allclose(read(once)[:, :, :-1], source[:, :, 1:], atol=1e-3)
    step = apply_transforms(smooth_volume, smooth_volume, asl_to_t1w, tmp_path / "s1.nii.gz")
    twice = apply_transforms(step, smooth_volume, t1w_to_tpl, tmp_path / "s2.nii.gz")
    # Two linear resamplings blur: measurably different, yet close.
    difference = np.abs(read(twice)[:, :, :-1] - source[:, :, 1:])
    assert difference.max() > 0.05
    assert difference.max() < 0.05 * source.max()


def test_composition_matches_sequential_application(tmp_path, smooth_volume):
    """Non-commuting rigid maps: single-step = sequential (within interpolation blur)."""
    asl_to_t1w = _rigid_file(tmp_path, "asl_to_t1w", 20.0, (3.0, -2.0, 1.0), axis=2)
    t1w_to_tpl = _rigid_file(tmp_path, "t1w_to_tpl", -25.0, (-4.0, 1.0, 2.5), axis=0)
    one_step = read(
        apply_transforms(
            smooth_volume,
            smooth_volume,
            compose_transforms(asl_to_t1w, t1w_to_tpl),
            tmp_path / "one.nii.gz",
        )
    )
    in_t1w = apply_transforms(smooth_volume, smooth_volume, asl_to_t1w, tmp_path / "t1w.nii.gz")
    sequential = read(apply_transforms(in_t1w, smooth_volume, t1w_to_tpl, tmp_path / "tpl.nii.gz"))
    wrong_order = read(
        apply_transforms(
            smooth_volume,
            smooth_volume,
            compose_transforms(t1w_to_tpl, asl_to_t1w),
            tmp_path / "wrong.nii.gz",
        )
    )
    peak = read(smooth_volume).max()
    assert np.abs(one_step - sequential).max() < 0.04 * peak  # blur of the extra resampling
    assert np.abs(wrong_order - sequential).max() > 0.1 * peak


def test_4d_series_resampled_volume_by_volume(tmp_path, smooth_volume):
    volume = read(smooth_volume)
    series = np.stack([volume, 2 * volume, 3 * volume], axis=-1)
    image = nb.Nifti1Image(series.astype(np.float32), nb.load(smooth_volume).affine)
    image.header.set_zooms((2.0, 2.0, 2.0, 4.5))
    series_path = tmp_path / "series.nii.gz"
    image.to_filename(series_path)
    shift = _rigid_file(tmp_path, "r", 6.0, (1.5, -2.0, 0.7))
    out = apply_transforms(series_path, smooth_volume, [shift], tmp_path / "series_out.nii.gz")
    single = read(apply_transforms(smooth_volume, smooth_volume, [shift], tmp_path / "v.nii.gz"))
    result = nb.load(out)
    assert result.shape == (32, 32, 32, 3)
    assert result.header.get_zooms()[3] == pytest.approx(4.5)
    for k in range(3):
        assert np.allclose(result.get_fdata()[..., k], (k + 1) * single, atol=1e-3)
    # A 4D reference lends its spatial grid only.
    on_series = apply_transforms(smooth_volume, series_path, [shift], tmp_path / "s.nii.gz")
    assert np.allclose(read(on_series), single, atol=1e-4)


def test_apply_inverts_only_on_request(tmp_path, smooth_volume):
    shift = _translation_file(tmp_path, "t", (0.0, 0.0, 2.0))
    forward = read(apply_transforms(smooth_volume, smooth_volume, shift, tmp_path / "f.nii.gz"))
    inverse = read(
        apply_transforms(
            smooth_volume, smooth_volume, shift, tmp_path / "i.nii.gz", invert_flags=[True]
        )
    )
    source = read(smooth_volume)
    assert np.allclose(forward[:, :, :-1], source[:, :, 1:], atol=1e-3)
    assert np.allclose(inverse[:, :, 1:], source[:, :, :-1], atol=1e-3)
    with pytest.raises(ValueError, match="invert flags"):
        apply_transforms(
            smooth_volume, smooth_volume, shift, tmp_path / "x.nii.gz", invert_flags=[True, False]
        )


def test_identity_when_no_transforms(tmp_path, smooth_volume):
    out = apply_transforms(smooth_volume, smooth_volume, [], tmp_path / "same.nii.gz")
    assert np.allclose(read(out), read(smooth_volume), atol=1e-4)
