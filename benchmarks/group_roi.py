"""Benchmark: the group ROI stage on 5,000 participant runs (synthetic ROI tables).

1,000 controls (one interictal session) and 2,000 patients (MwA/MwoA, interictal + ictal)
give 5,000 template-space ROI tables of the 21 MigraineASL ROIs, written to a temporary
OUTPUT_DIR (not timed). Then reading the labels and tables, fitting the default models and
writing the group tables are timed separately. Prints figures; never asserts.

Run: python benchmarks/group_roi.py [N_RUNS]
"""

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from aslmig.group.collect import find_roi_tables, read_roi_values
from aslmig.group.models import fit_models
from aslmig.group.modelspec import default_spec
from aslmig.group.run import compute_group, write_group

ROIS = ["grey_matter", "white_matter", "pons"] + [
    f"{name}_{side}"
    for name in (
        "dorsal_rostral_pons",
        "hypothalamus",
        "thalamus",
        "occipital_cortex",
        "calcarine",
        "territory_ACA",
        "territory_MCA",
        "territory_PCA",
        "territory_VB",
    )
    for side in ("L", "R")
]
HEADER = (
    "roi\tindex\themisphere\tn_voxels\tn_valid\tcoverage\tmean\tmedian\tsd\t"
    "gm_weighted_mean\tgm_restricted_mean\trelative_to_reference\tasymmetry_index\tstatus"
)


def table_text(values):
    lines = [HEADER]
    for index, roi in enumerate(ROIS):
        side = roi[-1] if roi[-2:] in ("_L", "_R") else "n/a"
        ai = "n/a"
        if side != "n/a":
            left, right = values[ROIS.index(roi[:-2] + "_L")], values[ROIS.index(roi[:-2] + "_R")]
            ai = f"{2 * (left - right) / (left + right):.6f}"
        mean = values[index]
        lines.append(
            f"{roi}\t{index + 1}\t{side}\t100\t100\t1\t{mean:.4f}\t{mean:.4f}\t5\t"
            f"{mean:.4f}\t{mean:.4f}\t{mean / values[0]:.6f}\t{ai}\tok"
        )
    return "\n".join(lines) + "\n"


def make_dataset(root, n_runs, rng):
    bids, out = root / "bids", root / "out"
    bids.mkdir()
    n_controls = n_runs // 5
    n_patients = (n_runs - n_controls) // 2
    participants = ["participant_id\tgroup\tage\tsex\taura_side_typical"]
    runs = 0
    for number in range(n_controls + n_patients):
        group = "HC" if number < n_controls else ("MwA", "MwoA")[number % 2]
        subject = f"{group.lower()}{number:05d}"
        side = ("left", "right")[number % 2] if group == "MwA" else "n/a"
        participants.append(
            f"sub-{subject}\t{group}\t{rng.integers(18, 65)}\t{'FM'[number % 2]}\t{side}"
        )
        phases = ["interictal"] if group == "HC" else ["interictal", "ictal"]
        folder = bids / f"sub-{subject}"
        folder.mkdir()
        (folder / f"sub-{subject}_sessions.tsv").write_text(
            "session_id\tmigraine_phase\n"
            + "".join(f"ses-{i}\t{phase}\n" for i, phase in enumerate(phases, 1))
        )
        level = 50 + rng.normal(0, 6)
        for i, _ in enumerate(phases, 1):
            perf = out / f"sub-{subject}" / f"ses-{i}" / "perf"
            perf.mkdir(parents=True)
            name = f"sub-{subject}_ses-{i}_space-MNI152NLin2009cAsym_atlas-MigraineASL_cbf.tsv"
            (perf / name).write_text(table_text(level + rng.normal(0, 5, len(ROIS))))
            runs += 1
    (bids / "participants.tsv").write_text("\n".join(participants) + "\n")
    return bids, out, runs


def main():
    n_runs = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    rng = np.random.default_rng(0)
    spec = default_spec()
    with tempfile.TemporaryDirectory() as tmp:
        bids, out, runs = make_dataset(Path(tmp), n_runs, rng)
        start = time.perf_counter()
        tables = find_roi_tables(out, "MigraineASL")
        values = read_roi_values(out, tables).values
        read_time = time.perf_counter() - start
        print(
            f"{runs} runs: find + read {len(tables)} ROI tables: {read_time:.2f} s "
            f"({len(values)} values)"
        )
        start = time.perf_counter()
        result = compute_group(bids, out, spec)
        total = time.perf_counter() - start
        fit_start = time.perf_counter()
        fit_models(spec.models, result.values, ["cbf", "rcbf", "ai"])
        fit_time = time.perf_counter() - fit_start
        print(
            f"labels + read + models (compute_group): {total:.2f} s "
            f"({len(result.statistics)} statistics rows); models alone: {fit_time:.2f} s"
        )
        start = time.perf_counter()
        write_group(out / "group" / "default", result)
        print(f"writing the group tables: {time.perf_counter() - start:.2f} s")


if __name__ == "__main__":
    main()
