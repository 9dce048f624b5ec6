"""An analytic head phantom for the ASL preprocessing tests.

Images are functions of world position (mm), so a rigidly moved volume is made by evaluating
the phantom at ``M^-1 x`` on the grid: no interpolation enters the simulated data.

Tissues (smooth edges, logistic profile of width ``EDGE_MM``): a brain ellipsoid with a
cortical grey-matter shell, white matter, two lateral ventricles (CSF) and an off-centre deep
grey-matter nucleus (to break the symmetry). Without background suppression, as in asldro:
control = GM 90 / WM 70 / CSF 110 (+15 in the nucleus); M0 = GM 100 / WM 85 / CSF 115.
ΔM = 0.9 in grey matter (1 % of the control signal) times ``1 + 0.5 tanh(x / 20 mm)``: more
perfusion on the +x side, the kind of smooth asymmetry that biases registration between
control and label images.
"""

import numpy as np

EDGE_MM = 1.2
SHAPE = (40, 40, 24)
VOXEL_MM = 3.0
BRAIN_AXES = (52.0, 56.0, 28.0)


def grid(shape=SHAPE, voxel_mm=VOXEL_MM, shift=(0.0, 0.0, 0.0)):
    """An affine centred on the world origin (plus ``shift`` mm)."""
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = -(np.asarray(shape) - 1) / 2 * voxel_mm + np.asarray(shift)
    return affine


def _inside(points, centre, axes):
    """Smooth indicator of an ellipsoid (approximate signed distance through a logistic)."""
    u = (points - np.asarray(centre, float)[:, None]) / np.asarray(axes, float)[:, None]
    r = np.sqrt((u**2).sum(axis=0))
    distance = (1.0 - r) * min(axes)
    return 0.5 * (1.0 + np.tanh(distance / (2.0 * EDGE_MM)))


def tissues(points):
    """Tissue fractions at world points (3, N)."""
    brain = _inside(points, (0, 0, 0), BRAIN_AXES)
    inner = _inside(points, (0, 0, 0), [0.8 * a for a in BRAIN_AXES])
    ventricles = np.clip(
        _inside(points, (9, 4, 2), (6, 18, 7)) + _inside(points, (-9, 6, 2), (5, 15, 6)), 0, 1
    )
    nucleus = _inside(points, (-16, -18, 4), (8, 8, 7))
    gm = np.clip(brain - inner + nucleus * inner, 0, 1)
    csf = ventricles * inner
    wm = np.clip(inner - csf - nucleus * inner, 0, 1)
    return {"gm": gm, "wm": wm, "csf": csf, "brain": brain}


def images(points):
    """Control, ΔM and M0 at world points (3, N)."""
    t = tissues(points)
    control = 90 * t["gm"] + 70 * t["wm"] + 110 * t["csf"]
    deltam = 0.9 * t["gm"] * (1.0 + 0.5 * np.tanh(points[0] / 20.0))
    m0 = 100 * t["gm"] + 85 * t["wm"] + 115 * t["csf"]
    return {
        "control": control,
        "label": control - deltam,
        "deltam": deltam,
        "m0scan": m0,
        "brain": t["brain"],
    }


def world_points(shape, affine):
    index = np.indices(shape, dtype=float).reshape(3, -1)
    return affine[:3, :3] @ index + affine[:3, 3:4]


def image(kind, shape=SHAPE, affine=None, motion=None):
    """``kind`` ("control", "label", "deltam", "m0scan", "brain") of a head moved by ``motion``.

    ``motion`` is the 4x4 world matrix M of the object motion: the volume shows at ``x``
    what the unmoved head had at ``M^-1 x``.
    """
    affine = grid(shape) if affine is None else affine
    points = world_points(shape, affine)
    if motion is not None:
        inverse = np.linalg.inv(motion)
        points = inverse[:3, :3] @ points + inverse[:3, 3:4]
    return images(points)[kind].reshape(shape)


def random_motion(rng, n, max_mm=3.0, max_deg=3.0):
    """(n, 6) parameters uniformly within +-max_mm and +-max_deg (rad)."""
    params = np.empty((n, 6))
    params[:, :3] = rng.uniform(-max_mm, max_mm, (n, 3))
    params[:, 3:] = np.radians(rng.uniform(-max_deg, max_deg, (n, 3)))
    return params


def series(types, params, rng, noise=0.0, shape=SHAPE, affine=None):
    """A series of volume types, volume t moved by rigid_matrix(params[t]), Gaussian noise."""
    from aslmig.asl.rigid import rigid_matrix

    affine = grid(shape) if affine is None else affine
    data = np.empty((*shape, len(types)))
    for t, kind in enumerate(types):
        data[..., t] = image(kind, shape, affine, rigid_matrix(params[t]))
    if noise:
        data += rng.normal(0.0, noise, data.shape)
    return data


#: Background suppression of the multi-delay phantom: the static signal of a tissue with T1
#: ``T1_S[tissue]`` read out at ``tau = PLD + slice time`` is scaled by
#: ``0.45 + 0.55 exp(-tau / T1)``: it falls with the delay, differently for each tissue and,
#: in a 2D readout, for each slice (grey matter to 0.57 of its first value over the series,
#: as the mean control of the real multi-delay series, 378 -> 223 between PLD 0.25 and 1.5 s).
BS_T1_S = {"gm": 1.33, "wm": 0.83, "csf": 4.0}
#: Time between consecutive slices of the 2D readout (s), slices along the last axis.
SLICE_STEP_S = 0.045


def background_suppressed(kind, pld, shape=SHAPE, affine=None, motion=None):
    """A background-suppressed 2D multi-slice ``control``/``label``/``m0scan`` volume.

    M0 has no suppression; ΔM is left as it is (the label arrives after the pulses).
    """
    affine = grid(shape) if affine is None else affine
    points = world_points(shape, affine)
    slice_time = np.indices(shape, dtype=float)[2].ravel() * SLICE_STEP_S
    if motion is not None:
        # the slice is a property of the grid; the tissue there is the moved head's
        inverse = np.linalg.inv(motion)
        points = inverse[:3, :3] @ points + inverse[:3, 3:4]
    values = images(points)
    if kind == "m0scan":
        return values["m0scan"].reshape(shape)
    t = tissues(points)
    tau = pld + slice_time
    weights = {"gm": 90.0, "wm": 70.0, "csf": 110.0}
    control = sum(
        weights[name] * t[name] * (0.45 + 0.55 * np.exp(-tau / BS_T1_S[name])) for name in weights
    )
    signal = control if kind == "control" else control - values["deltam"]
    return signal.reshape(shape)


def multi_delay_series(types, plds, params, rng, noise=0.0):
    """A background-suppressed multi-delay series, volume t moved by rigid_matrix(params[t])."""
    from aslmig.asl.rigid import rigid_matrix

    data = np.empty((*SHAPE, len(types)))
    for t, (kind, pld) in enumerate(zip(types, plds, strict=True)):
        data[..., t] = background_suppressed(kind, pld, motion=rigid_matrix(params[t]))
    if noise:
        data += rng.normal(0.0, noise, data.shape)
    return data
