"""Benchmark: voxelwise permutation inference, 200 maps at 2 mm, 5,000 permutations.

The maps are smoothed Gaussian noise inside the bundled MNI152NLin2009aSym 2 mm brain mask
(about 237,000 voxels); the design is two groups of 100 with an age covariate (Freedman-Lane,
two-sided, TFCE H = 2, E = 0.5, dh = 0.1, 26-connectivity).

Probes (one run with 1 permutation, one with ``--probe``) measure the fixed cost and the
cost per further permutation of (a) the blocked GLM alone (max-t, uncorrected p), (b) GLM +
TFCE in one process and (c) GLM + TFCE with ``--jobs`` worker processes. If the full run is
predicted to take longer than ``--budget`` minutes it is not run: the measured probe times
and the extrapolation to ``--permutations`` are printed, clearly labelled. Prints figures;
never asserts.

Run: python benchmarks/group_voxelwise.py [--permutations 5000] [--probe 60] [--budget 20]
"""

import argparse
import os
import resource
import time

import nibabel as nib
import numpy as np
from scipy import ndimage

from aslmig.atlas.templates import from_bundle
from aslmig.group.voxelwise import permutation_test

N_MAPS = 200


def make_data(mask, rng):
    data = np.empty((N_MAPS, int(mask.sum())))
    for row in range(N_MAPS):
        volume = ndimage.gaussian_filter(rng.normal(size=mask.shape), 1.0)
        data[row] = volume[mask] / 0.19
    return data


def design_matrix(rng):
    group = np.r_[np.zeros(N_MAPS // 2), np.ones(N_MAPS - N_MAPS // 2)]
    age = rng.uniform(18, 65, N_MAPS)
    return np.column_stack([np.ones(N_MAPS), group, age - age.mean()])


def cpu_seconds():
    """CPU time of this process and its finished worker processes (user + system)."""
    own, children = (
        resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)
    )
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(data, mask, design, count, use_tfce, n_jobs):
    """Return (wall seconds, CPU seconds, result) of one permutation test."""
    start, cpu = time.perf_counter(), cpu_seconds()
    result = permutation_test(
        data,
        mask,
        design,
        [0, 1, 0],
        n_permutations=count,
        seed=1,
        use_tfce=use_tfce,
        n_jobs=n_jobs,
    )
    return time.perf_counter() - start, cpu_seconds() - cpu, result


def probe(data, mask, design, count, use_tfce, n_jobs, label):
    """Return (fixed seconds, seconds per permutation) from runs with 1 and ``count``.

    Also prints the CPU time per permutation (all processes), which does not depend on how
    loaded the machine is.
    """
    fixed, fixed_cpu, _ = timed(data, mask, design, 1, use_tfce, n_jobs)
    total, total_cpu, result = timed(data, mask, design, count, use_tfce, n_jobs)
    per = (total - fixed) / (count - 1)
    per_cpu = (total_cpu - fixed_cpu) / (count - 1)
    print(
        f"MEASURED {label}: 1 permutation {fixed:.1f} s (fit, observed map, setup); "
        f"{count} permutations {total:.1f} s -> {per * 1e3:.0f} ms wall, "
        f"{per_cpu * 1e3:.0f} ms CPU per further permutation; load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )
    return fixed, per, result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--permutations", type=int, default=5000)
    parser.add_argument("--probe", type=int, default=60)
    parser.add_argument("--budget", type=float, default=20.0, help="minutes")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    args = parser.parse_args()

    mask = np.asarray(nib.load(from_bundle(2).brain_mask).dataobj) > 0
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    data, design = make_data(mask, rng), design_matrix(rng)
    print(
        f"{N_MAPS} maps x {data.shape[1]} in-mask voxels (grid {mask.shape}), "
        f"made in {time.perf_counter() - start:.1f} s; CPUs: {os.cpu_count()}; "
        f"n_jobs for TFCE: {args.jobs}"
    )
    glm = probe(data, mask, design, args.probe, False, 1, "GLM only (max-t, uncorrected p)")
    serial = probe(data, mask, design, args.probe, True, 1, "GLM + TFCE, n_jobs=1")
    runs = {"GLM only": glm, "GLM + TFCE, n_jobs=1": serial}
    if args.jobs > 1:
        label = f"GLM + TFCE, n_jobs={args.jobs}"
        runs[label] = probe(data, mask, design, args.probe, True, args.jobs, label)
    result = serial[2]
    print(
        f"observed max |t| {np.nanmax(np.abs(result.t)):.2f}, "
        f"max |TFCE| {np.nanmax(np.abs(result.tfce)):.0f}"
    )
    for label, (fixed, per, _) in runs.items():
        minutes = (fixed + per * (args.permutations - 1)) / 60
        print(f"EXTRAPOLATED {args.permutations} permutations, {label}: {minutes:.1f} min")
    fixed, per, _ = runs[list(runs)[-1]]
    predicted = (fixed + per * (args.permutations - 1)) / 60
    if predicted > args.budget:
        print(f"full run skipped: predicted {predicted:.1f} min > budget {args.budget} min")
        return
    total, total_cpu, _ = timed(data, mask, design, args.permutations, True, args.jobs)
    print(
        f"MEASURED full run, {args.permutations} permutations, GLM + TFCE, "
        f"n_jobs={args.jobs}: {total / 60:.1f} min wall, {total_cpu / 60:.1f} min CPU; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs"
    )


if __name__ == "__main__":
    main()
