"""Benchmark: single-delay CBF for a 96x96x40x80 PCASL series (40 control/label pairs).

The series is written as a gzipped float32 NIfTI to a temporary directory with nibabel; then
reading it and quantifying it (split volumes, white-paper CBF per pair, mean) are timed
separately. Quantification should cost less than reading. Prints figures; never asserts.

Run: python benchmarks/single_delay_cbf.py
"""

import tempfile
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from aslmig.cbf import quantify_single_delay, resolve_constants, split_asl_series

SHAPE = (96, 96, 40)
N_PAIRS = 40
PLD, TAU, M0 = 1.8, 1.8, 1000.0


def make_series(rng):
    constants = resolve_constants("PCASL", 3.0)
    cbf = rng.uniform(20.0, 80.0, SHAPE)
    ratio = cbf / 6000 / 0.9 * 2 * constants.labeling_efficiency * constants.t1_blood
    ratio *= np.exp(-PLD / constants.t1_blood) * -np.expm1(-TAU / constants.t1_blood)
    control = np.full((*SHAPE, N_PAIRS), 0.9 * M0, dtype=np.float32)
    control += rng.normal(0.0, 5.0, control.shape).astype(np.float32)
    label = control - (ratio * M0)[..., None].astype(np.float32)
    series = np.empty((*SHAPE, 2 * N_PAIRS), dtype=np.float32)
    series[..., 0::2], series[..., 1::2] = control, label
    return series, ["control", "label"] * N_PAIRS, constants


def main():
    rng = np.random.default_rng(0)
    series, context, constants = make_series(rng)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "sub-01_asl.nii.gz"
        start = time.perf_counter()
        nib.save(nib.Nifti1Image(series, np.diag([3.0, 3.0, 3.5, 1.0])), path)
        write_s = time.perf_counter() - start
        size_mb = path.stat().st_size / 1e6
        del series

        start = time.perf_counter()
        data = np.asanyarray(nib.load(path).dataobj)
        read_s = time.perf_counter() - start

        start = time.perf_counter()
        split = split_asl_series(data, context, plds=PLD)
        cbf, provenance = quantify_single_delay(
            split.deltam, M0, split.deltam_plds, constants, labeling_duration=TAU
        )
        quantify_s = time.perf_counter() - start
    print(
        f"series {SHAPE + (2 * N_PAIRS,)} float32, {size_mb:.0f} MB gzipped, "
        f"written in {write_s:.1f} s"
    )
    print(f"read: {read_s:.2f} s (nibabel, gunzip + decode)")
    print(
        f"quantify: {quantify_s:.2f} s (split {N_PAIRS} pairs, per-pair CBF, mean; "
        f"mean CBF {cbf.mean():.1f} mL/100 g/min)"
    )
    print(
        f"single-delay CBF: read {read_s:.2f} s, quantify {quantify_s:.2f} s "
        f"({quantify_s / read_s:.2f}x the read time)"
    )


if __name__ == "__main__":
    main()
