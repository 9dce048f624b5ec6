"""Process guards of a participant run: one aslmig per participant, no worker outlives aslmig.

- :func:`participant_locks`: a second aslmig started on the same participants with the same
  work directory (the nipype cache both would write) is refused at once, with the process
  id of the first, instead of both failing later on each other's half-written files.
- :func:`workers_die_with_aslmig`: nipype's MultiProc workers are ordinary child processes;
  when aslmig is killed (SIGTERM or SIGKILL, e.g. at a SLURM time limit) they are
  re-parented to PID 1 and keep computing. Each worker asks the Linux kernel to kill it
  when its parent dies (``prctl(PR_SET_PDEATHSIG)``), which also holds for SIGKILL, where no
  handler of the parent could run.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import os
import signal
from collections.abc import Iterator, Sequence
from pathlib import Path

from aslmig.errors import InputError, reading

#: Environment variable that tells a worker which process must be its parent.
PARENT_VARIABLE = "ASLMIG_PARENT_PID"
_PR_SET_PDEATHSIG = 1
LOCK_FOLDER = "locks"


@contextlib.contextmanager
def participant_locks(work_dir: Path, subjects: Sequence[str]) -> Iterator[None]:
    """Hold one exclusive lock per participant in the work directory while the block runs.

    The locks are ``flock`` locks: the kernel releases them when the process ends, however
    it ends, so a killed run never leaves a stale lock behind.

    Parameters
    ----------
    work_dir : Path
        The nipype work directory of the run.
    subjects : sequence of str
        Participant labels.

    Raises
    ------
    InputError
        When another process holds the lock of one of the participants.
    """
    folder = Path(work_dir) / LOCK_FOLDER
    with reading(folder, "cannot be written"):
        folder.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:
        for subject in subjects:
            path = folder / f"sub-{subject}.lock"
            with reading(path, "cannot be written"):
                handle = stack.enter_context(open(path, "a+"))
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                handle.seek(0)
                holder = handle.read().strip() or "unknown"
                raise InputError(
                    f"sub-{subject}",
                    f"is being processed by another aslmig (process {holder}) with the work "
                    f"directory {work_dir}",
                    "wait for it to finish, or give this run another -w",
                ) from None
            handle.seek(0)
            handle.truncate()
            handle.write(str(os.getpid()))
            handle.flush()
        yield


def _die_with_parent(parent: int) -> None:
    """Ask the kernel to SIGKILL this process when its parent dies (Linux only)."""
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except AttributeError:  # not Linux: no such guarantee
        return
    if prctl(_PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0) == 0 and os.getppid() != parent:
        os._exit(1)  # the parent died before the request was made


def worker_initializer(cwd: str) -> None:
    """Start a MultiProc worker: die with aslmig, then do what nipype's initializer does.

    Parameters
    ----------
    cwd : str
        The working directory nipype hands to its workers.
    """
    parent = os.environ.get(PARENT_VARIABLE)
    if parent and parent.isdigit():
        _die_with_parent(int(parent))
    os.chdir(cwd)
    os.environ["NIPYPE_NO_ET"] = "1"


def workers_die_with_aslmig() -> None:
    """Make every MultiProc worker started from now on die when this process dies.

    nipype's MultiProc builds its process pool with the module-level ``process_initializer``
    (two lines: change directory, disable the version check); it is replaced by
    :func:`worker_initializer`, which does the same after the ``prctl`` request.
    """
    from nipype.pipeline.plugins import multiproc

    os.environ[PARENT_VARIABLE] = str(os.getpid())
    multiproc.process_initializer = worker_initializer
