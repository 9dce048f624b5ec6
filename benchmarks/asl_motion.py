"""Benchmark: volume-type-aware head-motion correction of a small PCASL series.

A 64x64x24 (3 mm) brain-like phantom series with 1 m0scan + 10 control/label pairs
(21 volumes), each volume rigidly moved (up to 2 mm / 2 degrees) with a little noise, is
realigned by :func:`aslmig.asl.motion.realign_series`. Prints the wall time, the peak
resident memory of the process and the largest parameter error; never asserts.

Run: python benchmarks/asl_motion.py
"""

import resource
import sys
import time

import numpy as np
from scipy import ndimage

from aslmig.asl import rigid
from aslmig.asl.motion import framewise_displacement, realign_series

SHAPE = (64, 64, 24)
VOXEL_MM = 3.0
N_PAIRS = 10


def phantom():
    affine = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    affine[:3, 3] = -(np.array(SHAPE) - 1) / 2 * VOXEL_MM
    x, y, z = np.tensordot(affine[:3, :3], np.indices(SHAPE, dtype=float), 1)
    x, y, z = x + affine[0, 3], y + affine[1, 3], z + affine[2, 3]
    r = np.sqrt((x / 65) ** 2 + (y / 80) ** 2 + (z / 32) ** 2)
    brain, gm = r < 1, (r < 1) & (r > 0.8)
    ventricles = ((x - 8) / 8) ** 2 + (y / 22) ** 2 + (z / 9) ** 2 < 1
    wm = brain & ~gm & ~ventricles
    control = ndimage.gaussian_filter(90.0 * gm + 70.0 * wm + 110.0 * (ventricles & brain), 0.7)
    m0 = ndimage.gaussian_filter(100.0 * gm + 85.0 * wm + 115.0 * (ventricles & brain), 0.7)
    deltam = ndimage.gaussian_filter(0.9 * gm, 0.7)
    return affine, control, deltam, m0


def main():
    rng = np.random.default_rng(0)
    affine, control, deltam, m0 = phantom()
    types = ["m0scan"] + ["control", "label"] * N_PAIRS
    params = np.zeros((len(types), 6))
    params[1:, :3] = rng.uniform(-2.0, 2.0, (len(types) - 1, 3))
    params[1:, 3:] = np.radians(rng.uniform(-2.0, 2.0, (len(types) - 1, 3)))
    series = np.empty((*SHAPE, len(types)), np.float32)
    for t, kind in enumerate(types):
        source = {"m0scan": m0, "control": control, "label": control - deltam}[kind]
        moved, _ = rigid.resample(
            source, affine, np.linalg.inv(rigid.rigid_matrix(params[t])), SHAPE, affine
        )
        series[..., t] = moved + rng.normal(0.0, 0.5, SHAPE)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    start = time.perf_counter()
    result = realign_series(series, affine, types)
    seconds = time.perf_counter() - start
    framewise_displacement(result.parameters)

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    scale = 1 if sys.platform == "darwin" else 1024  # bytes on macOS, KiB on Linux
    error = result.parameters - params
    print(f"series {SHAPE + (len(types),)} float32 (1 m0scan + {N_PAIRS} control/label pairs)")
    print(f"realign_series: {seconds:.2f} s")
    print(
        f"peak RSS: {rss * scale / 2**20:.0f} MiB (before realignment "
        f"{rss_before * scale / 2**20:.0f} MiB)"
    )
    print(
        f"max |error|: translation {np.abs(error[:, :3]).max():.3f} mm, "
        f"rotation {np.degrees(np.abs(error[:, 3:]).max()):.3f} deg"
    )


if __name__ == "__main__":
    main()
