"""Benchmark: indexing and one-participant dry runs on large ASL-BIDS datasets.

Builds (once, cached under ``--root``) valid ASL-BIDS datasets of N participants, each with
one session holding a 4 x 4 x 4 x 4 PCASL series, its aslcontext.tsv and sidecar, a separate
M0 scan and a tiny T1w. Every file of a type shares one pre-gzipped byte string, so writing
1,000 participants takes seconds. Then, each in a fresh subprocess (no warm caches inside
Python), it times ``aslmig BIDS OUT participant --dry-run --participant-label <one>``:

* with ``--bids-database-dir DB``, first call (the index is built and saved),
* the same again (the saved index is reused),
* without ``--bids-database-dir`` (the index is rebuilt in memory on every call),

with the peak resident memory of each process (``os.wait4``). Finally it runs the group ROI
stage on 5,000 synthetic runs (``benchmarks/group_roi.py``). Prints figures; never asserts.

Run: ``python benchmarks/scale.py [--sizes 100 300 1000] [--root DIR] [--group-runs 5000]
[--repeat 3]``
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NIPYPE_NO_ET", "1")
sys.path.insert(0, str(PROJECT / "tests"))
from builders import PCASL as ASL_SIDECAR  # noqa: E402 - the tests' complete PCASL sidecar

M0_SIDECAR = {"RepetitionTimePreparation": 6.0}
ASLCONTEXT = "volume_type\ncontrol\nlabel\ncontrol\nlabel\n"
COMPLETE = ".scale_complete"


def nifti_gz(shape: tuple[int, ...], seed: int) -> bytes:
    """Return a gzipped NIfTI-1 image of positive float32 voxels.

    Parameters
    ----------
    shape : tuple of int
        Image shape.
    seed : int
        Random seed for the voxel values.

    Returns
    -------
    bytes
        The ``.nii.gz`` file content.
    """
    rng = np.random.default_rng(seed)
    data = (100 + 10 * rng.random(shape)).astype(np.float32)
    image = nb.Nifti1Image(data, np.diag([3.0, 3.0, 4.0, 1.0]))
    return gzip.compress(image.to_bytes(), compresslevel=1)


def build_dataset(root: Path, n_participants: int) -> float:
    """Write an ASL-BIDS dataset of ``n_participants`` unless it is already complete.

    Parameters
    ----------
    root : Path
        Dataset root.
    n_participants : int
        Number of participants (``sub-s00000`` ...).

    Returns
    -------
    float
        Seconds spent writing (0 when the cached dataset was reused).
    """
    if (root / COMPLETE).is_file():
        return 0.0
    start = time.perf_counter()
    if root.exists():
        shutil.rmtree(root)
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "scale", "BIDSVersion": "1.9.0", "DatasetType": "raw"})
    )
    asl, m0, t1w = nifti_gz((4, 4, 4, 4), 0), nifti_gz((4, 4, 4), 1), nifti_gz((6, 6, 5), 2)
    asl_json, m0_json = json.dumps(ASL_SIDECAR).encode(), json.dumps(M0_SIDECAR).encode()
    rows = ["participant_id\tage"]
    for number in range(n_participants):
        subject = f"sub-s{number:05d}"
        rows.append(f"{subject}\t{20 + number % 50}")
        session = root / subject / "ses-1"
        perf, anat = session / "perf", session / "anat"
        perf.mkdir(parents=True)
        anat.mkdir()
        stem = f"{subject}_ses-1"
        (perf / f"{stem}_asl.nii.gz").write_bytes(asl)
        (perf / f"{stem}_asl.json").write_bytes(asl_json)
        (perf / f"{stem}_aslcontext.tsv").write_text(ASLCONTEXT)
        (perf / f"{stem}_m0scan.nii.gz").write_bytes(m0)
        (perf / f"{stem}_m0scan.json").write_bytes(m0_json)
        (anat / f"{stem}_T1w.nii.gz").write_bytes(t1w)
    (root / "participants.tsv").write_text("\n".join(rows) + "\n")
    (root / COMPLETE).write_text(f"{n_participants}\n")
    return time.perf_counter() - start


@dataclass
class Measure:
    """Wall time and peak resident memory of one subprocess."""

    seconds: float
    peak_mb: float
    status: int


def run_child(arguments: list[str]) -> Measure:
    """Run ``python -m aslmig ARGUMENTS`` in a fresh process and measure it.

    Parameters
    ----------
    arguments : list of str
        Command-line arguments of ``aslmig``.

    Returns
    -------
    Measure
        Wall time (interpreter start-up and imports included), peak RSS and exit status.
    """
    start = time.perf_counter()
    child = subprocess.Popen(
        [sys.executable, "-m", "aslmig", *arguments],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=PROJECT,
    )
    assert child.stderr is not None
    errors = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode:
        print(f"  ! exit {child.returncode}: {errors.decode(errors='replace')[-500:]}")
    # ru_maxrss is in kilobytes on Linux (bytes on macOS).
    scale = 1 / 1024 if sys.platform != "darwin" else 1 / 1024**2
    return Measure(seconds, usage.ru_maxrss * scale, child.returncode)


def database_size_mb(folder: Path) -> float:
    """Total size of the files in the pybids database folder, in MB."""
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file()) / 1024**2


def median_of(measures: list[Measure]) -> Measure:
    """Median wall time and peak memory of repeated calls (worst exit status)."""
    return Measure(
        float(np.median([m.seconds for m in measures])),
        float(np.median([m.peak_mb for m in measures])),
        max(m.status for m in measures),
    )


def measure_size(base: Path, n_participants: int, repeat: int) -> dict[str, float]:
    """Build (or reuse) the dataset of one size and time the three kinds of dry run.

    Parameters
    ----------
    base : Path
        Folder that holds the cached datasets.
    n_participants : int
        Dataset size.
    repeat : int
        Each kind of call is made this many times; medians are reported.

    Returns
    -------
    dict
        Figures of this size, by name.
    """
    folder = base / f"n{n_participants}"
    bids, out, database = folder / "bids", folder / "out", folder / "db"
    index_file = database / "layout_index.sqlite"
    write_time = build_dataset(bids, n_participants)
    label = f"s{n_participants // 2:05d}"
    common = [str(bids), str(out), "participant", "--dry-run", "--participant-label", label]
    calls: dict[str, list[Measure]] = {"first": [], "cached": [], "plain": [], "startup": []}
    reused = True
    for _ in range(repeat):
        shutil.rmtree(database, ignore_errors=True)
        calls["first"].append(run_child([*common, "--bids-database-dir", str(database)]))
        stamp = (index_file.stat().st_ino, index_file.stat().st_mtime_ns)
        calls["cached"].append(run_child([*common, "--bids-database-dir", str(database)]))
        reused &= (index_file.stat().st_ino, index_file.stat().st_mtime_ns) == stamp
        calls["plain"].append(run_child(common))
        calls["startup"].append(run_child(["--version"]))
    row: dict[str, float] = {"n": n_participants, "write": write_time}
    for name, measures in calls.items():
        middle = median_of(measures)
        row[name], row[f"{name}_mb"] = middle.seconds, middle.peak_mb
        row["failed"] = max(row.get("failed", 0.0), float(middle.status))
    row["db_mb"], row["reused"] = database_size_mb(database), float(reused)
    return row


def group_stage(n_runs: int) -> None:
    """Run ``benchmarks/group_roi.py`` on ``n_runs`` runs and time it as a whole."""
    print(f"\ngroup ROI stage on {n_runs} runs (benchmarks/group_roi.py):")
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, str(PROJECT / "benchmarks" / "group_roi.py"), str(n_runs)],
        check=False,
        cwd=PROJECT,
    )
    print(f"(whole script incl. writing the synthetic tables: {time.perf_counter() - start:.1f} s)")


def print_table(rows: list[dict[str, float]]) -> None:
    """Print the figures of every dataset size."""
    print(
        "\none-participant --dry-run, each call a fresh process; seconds wall / peak RSS MB, "
        "median of the repeats"
    )
    print(
        f"{'N':>6} {'write s':>8} {'index+dry first':>16} {'cached':>14} "
        f"{'no database':>14} {'db MB':>6} {'reused':>6}"
    )
    for row in rows:
        written = f"{row['write']:.2f}" if row["write"] else "cached"
        print(
            f"{row['n']:>6.0f} {written:>8} "
            f"{row['first']:>7.2f} /{row['first_mb']:>5.0f} MB "
            f"{row['cached']:>5.2f} /{row['cached_mb']:>5.0f} MB "
            f"{row['plain']:>5.2f} /{row['plain_mb']:>5.0f} MB "
            f"{row['db_mb']:>6.1f} {'yes' if row['reused'] else 'NO':>6}"
            + ("  (a call FAILED)" if row["failed"] else "")
        )
    startup = rows[-1]
    print(
        f"for scale: 'aslmig --version' takes {startup['startup']:.2f} s / "
        f"{startup['startup_mb']:.0f} MB (interpreter and imports); load average "
        + " ".join(f"{load:.1f}" for load in os.getloadavg())
        + f" on {os.cpu_count()} CPUs"
    )


def main(argv: list[str] | None = None) -> None:
    """Parse the options, run every size and the group stage, print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 300, 1000])
    parser.add_argument("--root", type=Path, help="cache folder (default: a temporary one)")
    parser.add_argument("--group-runs", type=int, default=5000, help="0 skips the group stage")
    parser.add_argument("--repeat", type=int, default=3, help="calls per kind (median shown)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="scale_") as tmp:
        base = args.root or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        rows = []
        for n_participants in args.sizes:
            print(f"N = {n_participants} ...", flush=True)
            rows.append(measure_size(base, n_participants, args.repeat))
        print_table(rows)
        if args.group_runs:
            group_stage(args.group_runs)


if __name__ == "__main__":
    main()
