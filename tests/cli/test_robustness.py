"""End to end: a failing participant does not stop the others, crashes are summarised,
reruns use the cache and always complete OUTPUT_DIR, and no process outlives aslmig."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest

from aslmig.cli.demo import example_dataset
from aslmig.cli.guards import participant_locks
from aslmig.cli.run import main

pytestmark = pytest.mark.slow

#: Interfaces that write into OUTPUT_DIR: they run on every invocation, by design.
SAVING_NODES = ("save_", "participant_report")


def _example_without_anatomy(tmp_path: Path) -> Path:
    bids = tmp_path / "bids"
    shutil.copytree(example_dataset(), bids)
    for anat in bids.glob("sub-*/ses-*/anat"):  # without T1w: faster, still the full ASL path
        shutil.rmtree(anat)
    return bids


def _files(folder: Path) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*") if path.is_file()}


def _computed(work: Path, subject: str) -> dict[Path, int]:
    """Result files of the nodes that compute (not the ones that save outputs)."""
    results = work.rglob(f"single_subject_{subject}_wf/**/result_*.pklz")
    return {
        path: path.stat().st_mtime_ns
        for path in results
        if not path.parent.name.startswith(SAVING_NODES)
    }


def test_one_failing_participant_and_reruns(tmp_path, capsys):
    bids = _example_without_anatomy(tmp_path)
    # sub-mwa01 ses-1: a negative M0 scan passes input validation but cannot calibrate CBF
    m0_file = bids / "sub-mwa01/ses-1/perf/sub-mwa01_ses-1_m0scan.nii.gz"
    m0 = nb.load(m0_file)
    nb.Nifti1Image(-np.abs(m0.get_fdata()) - 1.0, m0.affine).to_filename(m0_file)
    output, work = tmp_path / "out", tmp_path / "work"
    args = [str(bids), str(output), "participant", "-w", str(work), "--nprocs", "2"]

    assert main(args) == 1
    captured = capsys.readouterr()
    assert "some steps failed" in captured.err
    assert "crash-" in captured.err and "(details: " in captured.err
    assert list((output / "logs" / "crash").glob("crash-*.txt"))
    # the other runs finished and wrote their outputs and reports
    assert (output / "sub-hc01.html").is_file()
    assert (output / "sub-mwa01/ses-2/perf/sub-mwa01_ses-2_cbf.nii.gz").is_file()
    assert not (output / "sub-mwa01/ses-1/perf/sub-mwa01_ses-1_cbf.nii.gz").exists()
    assert not (output / "sub-mwa01.html").exists()
    leftovers = [
        path
        for path in output.rglob(".*")
        if path.name != ".bidsignore" and path.name != ".aslmig.lock"
    ]
    assert leftovers == []

    # a rerun of the healthy participant reuses nipype's cache: no computing node runs again
    hc01 = ["--participant-label", "hc01"]
    stamps = _computed(work, "hc01")
    assert main([*args, *hc01]) == 0
    assert _computed(work, "hc01") == stamps
    complete = _files(output)

    # issue 17: outputs deleted since the last run are written again (the cache alone would
    # say every step is done), still without computing anything again
    (output / "sub-hc01.html").unlink()
    for cbf in (output / "sub-hc01").rglob("*_cbf.*"):
        cbf.unlink()
    assert main([*args, *hc01]) == 0
    assert "aslmig: finished" in capsys.readouterr().out
    assert _files(output) == complete
    assert _computed(work, "hc01") == stamps

    # ... and so is a deleted OUTPUT_DIR (it was a TraitError and 25 of 26 outputs missing)
    shutil.rmtree(output)
    assert main([*args, *hc01]) == 0
    first_run_only = ("sub-mwa01", "logs/crash", "logs/config_participant_all")
    rebuilt = {name for name in complete if not name.startswith(first_run_only)}
    assert _files(output) == rebuilt
    assert _computed(work, "hc01") == stamps

    # ... and so is a work directory that lost files of a finished step (a /tmp cleaner):
    # that step runs again, the others stay cached
    quantify = next(work.rglob("single_subject_hc01_wf/*/quantify"))
    (quantify / "cbf.nii.gz").unlink()
    shutil.rmtree(output)
    assert main([*args, *hc01]) == 0
    assert "1 cached step(s) lost files" in capsys.readouterr().out
    assert _files(output) == rebuilt
    after = _computed(work, "hc01")
    assert {path for path in stamps if after.get(path) != stamps[path]} == {
        quantify / "result_quantify.pklz"
    }


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                parent = int((entry / "stat").read_text().split(")")[-1].split()[1])
            except (FileNotFoundError, ProcessLookupError, IndexError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    found, stack = set(), [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.add(child)
            stack.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        return (Path("/proc") / str(pid) / "stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc")
@pytest.mark.parametrize("sent", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_second_launch_refused_and_no_process_outlives_a_killed_aslmig(tmp_path, capsys, sent):
    bids = _example_without_anatomy(tmp_path)
    output, work = tmp_path / "out", tmp_path / "work"
    args = [str(bids), str(output), "participant", "-w", str(work), "--nprocs", "2",
            "--participant-label", "hc01"]  # fmt: skip
    first = subprocess.Popen(
        [sys.executable, "-m", "aslmig", *args],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env={**os.environ},
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 300
        workers: set[int] = set()
        while not workers and time.monotonic() < deadline and first.poll() is None:
            time.sleep(0.2)
            workers = _descendants(first.pid)
        assert workers, "aslmig started no worker process"

        # the same participant, launched again while the first runs: refused at once
        assert main(args) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1
        assert f"sub-hc01: is being processed by another aslmig (process {first.pid})" in error

        first.send_signal(sent)
        first.wait(timeout=60)
        deadline = time.monotonic() + 15
        while any(map(_alive, workers)) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not any(map(_alive, workers)), "nipype workers outlived aslmig"
    finally:
        if first.poll() is None:
            first.kill()
    with participant_locks(work, ["hc01"]):  # the lock died with its holder
        pass
