"""Benchmark: two hand-written components against the maintained library that could replace them.

Part 1, voxelwise TFCE permutation inference: :func:`aslmig.group.voxelwise.permutation_test`
against ``nilearn.mass_univariate.permuted_ols(..., tfce=True)``. 20 maps (two groups of 10)
of smoothed Gaussian noise (sigma 1 voxel) inside an ellipsoid mask of a 30x36x30 grid, with a
spherical effect (radius 5 voxels, 1 sd) in the second group; two-sided two-sample t test,
200 permutations, one process each. Prints the wall and CPU time per permutation (from a run
with 200 and one with none, so that fixed costs such as compiling the numba kernel and the
observed maps cancel), the connectivity each supports and how the observed TFCE maps agree:
with aslmig set to nilearn's conventions (6-connectivity, 100 equal steps up to the map's
maximum, sum not multiplied by the step) and with aslmig's defaults (26-connectivity,
``dh = 0.1``, multiplied by ``dh`` as in Smith & Nichols 2009).
Needs nilearn, which aslmig does not depend on; without it part 1 is skipped with a message.
Run it in a separate environment, for example::

    python3 -m venv /tmp/nlvenv
    /tmp/nlvenv/bin/pip install nilearn numba nibabel pandas scipy
    PYTHONPATH=. /tmp/nlvenv/bin/python benchmarks/kept_versus_libraries.py --part tfce

Part 2, head-motion correction: :func:`aslmig.asl.motion.realign_series` against
``ants.motion_correction`` (antspyx, rigid) on the phantom of ``tests/asl/test_asl_motion.py``
(1 m0scan + 8 control/label pairs, random motion within +-3 mm / +-3 deg, noise sd 0.3; the
unmoved m0scan is the reference of both). Prints the largest and mean error of the recovered
motion (translation mm, rotation deg, and the displacement of a point 70 mm from the centre)
and the wall time. Needs antspyx and the phantom of the tests::

    PYTHONPATH=.:tests/asl python benchmarks/kept_versus_libraries.py --part motion

Threads: BLAS and ITK are limited to one thread (set below, before numpy is imported) so that
CPU and wall time compare like with like; ``ANTS_RANDOM_SEED=1`` makes ANTs' random sampling
repeatable. Prints figures; never asserts.
"""

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")
os.environ.setdefault("ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS", "1")
os.environ.setdefault("ANTS_RANDOM_SEED", "1")  # antsRegistration reads it (random sampling)

import argparse  # noqa: E402
import importlib.util  # noqa: E402
import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402
from scipy import ndimage  # noqa: E402

SHAPE = (30, 36, 30)
N_PER_GROUP = 10
N_PERMUTATIONS = 200
RADIUS_MM = 70.0


# ------------------------------------------------------------------------------------- part 1
def group_maps(rng):
    """Return (mask, data (20, n_voxels), design, group) of the two-group TFCE case."""
    index = np.indices(SHAPE, dtype=float)
    centre = (np.array(SHAPE) - 1)[:, None, None, None] / 2
    semi = (np.array(SHAPE) / 2 - 1)[:, None, None, None]
    mask = (((index - centre) / semi) ** 2).sum(0) <= 1
    blob = (((index - (centre + np.array([5, 6, 3])[:, None, None, None])) ** 2).sum(0)) <= 25
    group = np.r_[np.zeros(N_PER_GROUP), np.ones(N_PER_GROUP)]
    data = np.empty((group.size, int(mask.sum())))
    for row, member in enumerate(group):
        volume = ndimage.gaussian_filter(rng.normal(size=SHAPE), 1.0) / 0.19
        data[row] = (volume + member * blob)[mask]
    design = np.column_stack([np.ones(group.size), group])
    return mask, data, design, group


def clocks():
    return time.perf_counter(), time.process_time()


def per_permutation(run, count):
    """(wall, CPU) seconds per permutation: a run with ``count`` minus a run with none."""
    run(0)  # warm-up (numba compilation, imports)
    wall0, cpu0 = clocks()
    base = run(0)
    wall1, cpu1 = clocks()
    full = run(count)
    wall2, cpu2 = clocks()
    wall = ((wall2 - wall1) - (wall1 - wall0)) / count
    cpu = ((cpu2 - cpu1) - (cpu1 - cpu0)) / count
    return wall, cpu, base, full


def agreement(a, b):
    """Pearson r and the largest |a - b| relative to max |b|."""
    r = float(np.corrcoef(a, b)[0, 1])
    return r, float(np.abs(a - b).max() / np.abs(b).max())


def part_tfce():
    if importlib.util.find_spec("nilearn") is None:
        print(
            "part 1 (TFCE against nilearn) skipped: nilearn is not installed here; run this "
            "script in a separate venv with `pip install nilearn numba nibabel pandas scipy`"
        )
        return
    import nibabel as nib
    import nilearn
    from nilearn.maskers import NiftiMasker
    from nilearn.mass_univariate import permuted_ols
    from nilearn.mass_univariate._utils import calculate_tfce

    from aslmig.group.tfce import TFCEParams, tfce_transform
    from aslmig.group.voxelwise import permutation_test

    mask, data, design, group = group_maps(np.random.default_rng(0))
    print(
        f"part 1: {data.shape[0]} maps, {data.shape[1]:,} in-mask voxels of a "
        f"{'x'.join(map(str, SHAPE))} grid, two-sided two-group t, {N_PERMUTATIONS} "
        f"permutations, nilearn {nilearn.__version__}"
    )
    masker = NiftiMasker(mask_img=nib.Nifti1Image(mask.astype(np.int8), np.eye(4))).fit()

    def ours(count, connectivity=26):
        return permutation_test(
            data,
            mask,
            design,
            [0, 1],
            n_permutations=count + 1,  # the identity and ``count`` random ones
            seed=1,
            connectivity=connectivity,
        )

    def theirs(count):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return permuted_ols(
                group[:, None],
                data,
                n_perm=count,
                random_state=1,
                n_jobs=1,
                masker=masker,
                tfce=True,
                two_sided_test=True,
            )

    timings = {}
    for label, run in (
        ("aslmig, 26-connectivity", ours),
        ("aslmig, 6-connectivity", lambda count: ours(count, 6)),
        ("nilearn permuted_ols", theirs),
    ):
        wall, cpu, base, full = per_permutation(run, N_PERMUTATIONS)
        timings[label] = (wall, cpu, base, full)
        print(f"  {label:26s} {1e3 * wall:7.1f} ms wall, {1e3 * cpu:7.1f} ms CPU per permutation")
    ratio = timings["nilearn permuted_ols"][1] / timings["aslmig, 6-connectivity"][1]
    print(f"  nilearn / aslmig CPU per permutation at equal (6) connectivity: {ratio:.0f}x")

    print(
        "  connectivity: aslmig 26 (default) or 6; nilearn 6 only (permuted_ols builds "
        "generate_binary_structure(3, 1) itself, no parameter)"
    )
    ours_full, theirs_full = (
        timings["aslmig, 26-connectivity"][3],
        timings["nilearn permuted_ols"][3],
    )
    t_ours = ours_full.t[mask]
    t_theirs = np.ravel(theirs_full["t"])
    print(f"  observed t: largest difference {np.abs(t_ours - t_theirs).max():.1e}")

    # nilearn's TFCE of the observed map, and aslmig's under nilearn's conventions and its own
    tfce_theirs = np.ravel(theirs_full["tfce"])
    t_volume = np.zeros(SHAPE)
    t_volume[mask] = t_ours
    step = np.abs(t_ours).max() / 100
    matched = tfce_transform(t_volume, TFCEParams(dh=step), connectivity=6)[mask] / step
    r, rel = agreement(matched, tfce_theirs)
    print(
        f"  observed TFCE, aslmig with nilearn's conventions (6-conn., dh = max|t|/100 = "
        f"{step:.4f}, divided by dh): r = {r:.6f}, max rel. difference {rel:.1e}"
    )
    # the same kernel of nilearn on a map it labels with 26-connectivity: only the levels differ
    own26 = calculate_tfce(t_volume[..., None], ndimage.generate_binary_structure(3, 3))
    matched26 = tfce_transform(t_volume, TFCEParams(dh=step), connectivity=26)[mask] / step
    r26, rel26 = agreement(matched26, own26[..., 0][mask])
    print(
        f"  same at 26-connectivity (nilearn's private calculate_tfce given a 26 structure): "
        f"r = {r26:.6f}, max rel. difference {rel26:.1e}"
    )
    default = ours_full.tfce[mask]
    r_default = float(np.corrcoef(default, tfce_theirs)[0, 1])
    scale = float(np.abs(tfce_theirs).max() / np.abs(default).max())
    print(
        f"  observed TFCE, aslmig defaults (26-conn., dh = 0.1, times dh) vs nilearn: "
        f"r = {r_default:.4f}, peak ratio nilearn/aslmig {scale:.1f}"
    )
    p_ours = ours_full.p_fwe_tfce[mask]
    p_theirs = 10.0 ** -np.ravel(theirs_full["logp_max_tfce"])
    p_six = timings["aslmig, 6-connectivity"][3].p_fwe_tfce[mask]
    print(
        f"  voxels with FWE p(TFCE) < 0.05: aslmig 26-conn. {int((p_ours < 0.05).sum())}, "
        f"aslmig 6-conn. {int((p_six < 0.05).sum())}, nilearn {int((p_theirs < 0.05).sum())} "
        "(different random permutations)"
    )


# ------------------------------------------------------------------------------------- part 2
def motion_errors(matrices, truth):
    """Per volume |error|: largest translation (mm), rotation (deg), displacement at RADIUS_MM.

    The error is ``inv(M_true) @ M_found`` (identity when exact); the displacement is the
    largest movement it gives to the six points at ``RADIUS_MM`` on the axes about the centre
    of the head (the world origin of the phantom).
    """
    from aslmig.asl import rigid

    points = RADIUS_MM * np.hstack([np.eye(3), -np.eye(3)])
    rows = []
    for found, true in zip(matrices, truth, strict=True):
        parameters = rigid.rigid_parameters(found) - np.asarray(true)  # as the tests compare
        error = np.linalg.inv(rigid.rigid_matrix(true)) @ found
        moved = error[:3, :3] @ points + error[:3, 3:4]
        rows.append(
            (
                np.abs(parameters[:3]).max(),
                np.degrees(np.abs(parameters[3:])).max(),
                np.linalg.norm(moved - points, axis=0).max(),
            )
        )
    return np.array(rows)


def ants_image(volume, affine):
    """An ANTs image (LPS world) of a volume on a diagonal RAS affine."""
    import ants

    flip = np.diag([-1.0, -1.0, 1.0])
    image = ants.from_numpy(np.ascontiguousarray(volume, dtype=np.float32))
    image.set_spacing(tuple(float(v) for v in np.abs(np.diag(affine[:3, :3]))))
    image.set_origin(tuple(float(v) for v in flip @ affine[:3, 3]))
    image.set_direction(flip @ np.sign(affine[:3, :3]))
    return image


def ants_realign(data, affine, reference_index, type_of_transform):
    """Return the world matrices (aslmig's convention) found by ``ants.motion_correction``."""
    import ants

    flip = np.diag([-1.0, -1.0, 1.0])
    series = ants.from_numpy(np.ascontiguousarray(data, dtype=np.float32))
    series.set_spacing((*(float(v) for v in np.abs(np.diag(affine[:3, :3]))), 1.0))
    series.set_origin((*(float(v) for v in flip @ affine[:3, 3]), 0.0))
    direction = np.eye(4)
    direction[:3, :3] = flip @ np.sign(affine[:3, :3])
    series.set_direction(direction)
    fixed = ants_image(data[..., reference_index], affine)
    result = ants.motion_correction(series, fixed=fixed, type_of_transform=type_of_transform)
    lps = np.diag([-1.0, -1.0, 1.0, 1.0])
    matrices = []
    for transforms in result["motion_parameters"]:
        transform = ants.read_transform(transforms[0])
        parameters = np.asarray(transform.parameters)
        centre = np.asarray(transform.fixed_parameters)
        rotation = parameters[:9].reshape(3, 3)
        matrix = np.eye(4)
        # ITK: a fixed-image point x maps to R (x - c) + c + t in the moving image, the same
        # direction as aslmig's matrices; LPS -> RAS on both sides
        matrix[:3, :3], matrix[:3, 3] = rotation, parameters[9:] + centre - rotation @ centre
        matrices.append(lps @ matrix @ lps)
    return np.array(matrices)


def part_motion():
    if importlib.util.find_spec("ants") is None:
        print("part 2 (motion against ANTs) skipped: antspyx is not installed here")
        return
    try:
        from asl_phantom import grid, random_motion, series
    except ImportError:
        print("part 2 skipped: put tests/asl on PYTHONPATH (the phantom of the motion tests)")
        return
    from aslmig.asl import rigid
    from aslmig.asl.motion import realign_series

    types = ["m0scan"] + ["control", "label"] * 8
    rng = np.random.default_rng(0)
    truth = random_motion(rng, len(types))
    truth[0] = 0.0
    data = series(types, truth, rng, 0.3)
    affine = grid()
    print(
        f"part 2: phantom {'x'.join(map(str, data.shape[:3]))} voxels of 3 mm x {data.shape[3]} "
        "volumes (1 unmoved m0scan = reference, 8 control/label pairs), motion within +-3 mm / "
        "+-3 deg, noise sd 0.3; errors largest / mean over the 16 moved volumes"
    )
    runs = [("aslmig realign_series", lambda: realign_series(data, affine, types).matrices)]
    for kind in ("BOLDRigid", "Rigid", "DenseRigid"):
        label = f"ants {kind}" + (" (default)" if kind == "BOLDRigid" else "")
        runs.append((label, lambda kind=kind: ants_realign(data, affine, 0, kind)))
    for label, run in runs:
        wall, cpu = clocks()
        matrices = run()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        errors = motion_errors(matrices[1:], truth[1:])
        largest, mean = errors.max(0), errors.mean(0)
        print(
            f"  {label:22s} translation {largest[0]:.3f} / {mean[0]:.3f} mm, rotation "
            f"{largest[1]:.3f} / {mean[1]:.3f} deg, at {RADIUS_MM:.0f} mm {largest[2]:.3f} / "
            f"{mean[2]:.3f} mm; {wall:.1f} s wall, {cpu:.1f} s CPU"
        )
        found = np.array([rigid.rigid_parameters(m) for m in matrices[1:]]) - truth[1:]
        worst = np.abs(found).max(0) * np.r_[1.0, 1.0, 1.0, np.degrees([1.0, 1.0, 1.0])]
        print(
            "  "
            + " " * 22
            + " largest per parameter (x, y, z mm; x, y, z deg): "
            + ", ".join(f"{v:.3f}" for v in worst)
        )
    print(
        "  ANTs samples 20 % of the voxels at random (Mattes MI, 32 bins; DenseRigid: all) "
        "(ANTS_RANDOM_SEED=1 here); the phantom is nearly round in the axial plane (52 x 56 "
        "mm), so the rotation about z is the weakly constrained parameter"
    )


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--part", choices=("tfce", "motion", "both"), default="both")
    args = parser.parse_args()
    if args.part in ("tfce", "both"):
        part_tfce()
    if args.part in ("motion", "both"):
        part_motion()


if __name__ == "__main__":
    main()
