"""The rigid registration engine: parameter convention, resampling, recovery of known motion."""

import numpy as np
import pytest
from asl_phantom import grid, image

from aslmig.asl import rigid


def test_parameters_and_matrix_round_trip():
    params = np.array([1.5, -2.0, 0.7, 0.05, -0.03, 0.02])
    matrix = rigid.rigid_matrix(params)
    np.testing.assert_allclose(rigid.rigid_parameters(matrix), params, atol=1e-12)
    np.testing.assert_allclose(matrix[:3, :3] @ matrix[:3, :3].T, np.eye(3), atol=1e-12)


def test_rotation_order_is_x_then_y_then_z_matrices_multiplied():
    """T @ Rx @ Ry @ Rz, right-handed: a +90 deg rot_z turns +x into +y."""
    rz = rigid.rigid_matrix([0, 0, 0, 0, 0, np.pi / 2])
    np.testing.assert_allclose(rz[:3, :3] @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    a, b, c = 0.1, 0.2, 0.3
    expected = (
        rigid.rigid_matrix([0, 0, 0, a, 0, 0])
        @ rigid.rigid_matrix([0, 0, 0, 0, b, 0])
        @ rigid.rigid_matrix([0, 0, 0, 0, 0, c])
    )
    np.testing.assert_allclose(rigid.rigid_matrix([0, 0, 0, a, b, c]), expected, atol=1e-12)


def test_rigid_matrix_rejects_wrong_length():
    with pytest.raises(ValueError, match="6 values"):
        rigid.rigid_matrix([1.0, 2.0])


def test_resample_with_identity_returns_the_image():
    affine = grid()
    img = image("control", affine=affine)
    out, inside = rigid.resample(img, affine, np.eye(4), img.shape, affine)
    np.testing.assert_allclose(out, img, atol=1e-9)
    assert inside.all()


@pytest.mark.parametrize("intensity", ["none", "global", "smooth"])
def test_register_rigid_recovers_a_known_motion(intensity):
    affine = grid()
    params = np.array([2.5, -1.8, 2.2, np.radians(2.5), np.radians(-2.0), np.radians(3.0)])
    motion = rigid.rigid_matrix(params)
    fixed = image("control", affine=affine)
    moving = image("control", affine=affine, motion=motion)
    found = rigid.register_rigid(fixed, affine, moving, affine, intensity=intensity)
    error = rigid.rigid_parameters(found) - params
    assert np.abs(error[:3]).max() < 0.02
    assert np.degrees(np.abs(error[3:])).max() < 0.02


def test_register_rigid_across_grids_and_contrasts():
    """An M0-like image on a 2.5 mm grid with another origin, against a control image."""
    fixed_affine = grid()
    moving_shape = (48, 48, 30)
    moving_affine = grid(moving_shape, 2.5, shift=(4.0, -3.0, 2.0))
    params = np.array([-1.0, 2.0, 1.0, np.radians(-1.5), np.radians(1.0), np.radians(2.0)])
    fixed = image("control", affine=fixed_affine)
    moving = 3.0 * image("m0scan", moving_shape, moving_affine, rigid.rigid_matrix(params))
    found = rigid.register_rigid(fixed, fixed_affine, moving, moving_affine)
    error = rigid.rigid_parameters(found) - params
    assert np.abs(error[:3]).max() < 0.1
    assert np.degrees(np.abs(error[3:])).max() < 0.1


def test_register_rigid_rejects_unknown_intensity_model():
    affine = grid()
    img = image("control", affine=affine)
    with pytest.raises(ValueError, match="intensity"):
        rigid.register_rigid(img, affine, img, affine, intensity="mutual")
