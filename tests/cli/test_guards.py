"""One aslmig per participant; MultiProc workers die with aslmig (fast checks, no pipeline)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from aslmig.cli.guards import participant_locks
from aslmig.errors import InputError


def test_second_holder_of_a_participant_is_refused(tmp_path):
    with participant_locks(tmp_path, ["01", "02"]):
        with pytest.raises(InputError) as refused:
            with participant_locks(tmp_path, ["02"]):
                pass
        assert f"process {os.getpid()}" in refused.value.message
        assert "another -w" in refused.value.message
        with participant_locks(tmp_path, ["03"]):  # other participants are free
            pass
    with participant_locks(tmp_path, ["02"]):  # released at the end of the block
        pass


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


POOL = textwrap.dedent(
    """
    import os, sys, time
    from concurrent.futures import ProcessPoolExecutor
    from aslmig.cli import guards
    os.environ[guards.PARENT_VARIABLE] = str(os.getpid())
    pool = ProcessPoolExecutor(2, initializer=guards.worker_initializer, initargs=(os.getcwd(),))
    print(pool.submit(os.getpid).result(), flush=True)
    time.sleep(600)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux")
@pytest.mark.parametrize("sent", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_worker_dies_with_its_parent(tmp_path, sent):
    parent = subprocess.Popen(
        [sys.executable, "-c", POOL], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    worker = int(parent.stdout.readline())
    assert _alive(worker)
    parent.send_signal(sent)
    parent.wait(timeout=30)
    deadline = time.monotonic() + 10
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(worker), "the worker outlived its parent"


def _write_file(name: str) -> str:
    from pathlib import Path

    Path(name).write_text("output")
    return str(Path(name).absolute())


def test_cached_step_whose_files_are_gone_runs_again(tmp_path):
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from aslmig.cli.cache import forget_damaged_steps

    subject = pe.Workflow(name="single_subject_01_wf")
    for name in ("kept", "lost"):
        node = pe.Node(
            niu.Function(input_names=["name"], output_names=["out"], function=_write_file),
            name=name,
        )
        node.inputs.name = f"{name}.txt"
        subject.add_nodes([node])
    top = pe.Workflow(name="aslmig_wf", base_dir=str(tmp_path))
    top.add_nodes([subject])
    top.run(plugin="Linear")
    folder = tmp_path / "aslmig_wf" / "single_subject_01_wf"
    (folder / "lost" / "lost.txt").unlink()

    assert forget_damaged_steps(tmp_path, ["01", "02"]) == [
        "single_subject_01_wf/lost: lost.txt is missing"
    ]
    assert not (folder / "lost" / "result_lost.pklz").exists()
    assert (folder / "kept" / "result_kept.pklz").exists()
    assert forget_damaged_steps(tmp_path, ["01"]) == []
