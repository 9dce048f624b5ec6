"""Repair nipype's cache before a rerun: a step whose cached files are gone runs again.

nipype takes a step as done when its folder in the work directory holds its result file
and the hash of its inputs. It does not check that the files the step produced are still
there; when they are not (the default work directory lives in the system's temporary
folder, which cleaners empty file by file), the next step fails on a missing input and the
rerun leaves OUTPUT_DIR incomplete. Removing the result file of such a step makes nipype
run it again; the steps after it find identical inputs and stay cached.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

LOGGER = logging.getLogger("aslmig")


def _paths_in(value: Any) -> Iterator[Path]:
    """Yield the absolute paths held by an output value (nested lists and dicts included)."""
    if isinstance(value, str) and value.startswith("/"):
        yield Path(value)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _paths_in(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from _paths_in(item)


def _damaged(result_file: Path, work_dir: Path) -> str | None:
    """Say why a cached step cannot be trusted (None when it can)."""
    from nipype.pipeline.engine.utils import load_resultfile

    try:
        result = load_resultfile(result_file)
        outputs = result.outputs.get() if getattr(result, "outputs", None) else {}
    except Exception as error:  # a truncated or foreign pickle: any error means "run again"
        return f"its result file cannot be read ({type(error).__name__})"
    for path in _paths_in(list(outputs.values())):
        if work_dir in path.parents and not path.exists():
            return f"{path.name} is missing"
    return None


def forget_damaged_steps(work_dir: Path, subjects: Iterable[str]) -> list[str]:
    """Make nipype run again every cached step of these participants whose files are gone.

    Parameters
    ----------
    work_dir : Path
        The nipype work directory.
    subjects : iterable of str
        Participant labels (only their folders are examined).

    Returns
    -------
    list of str
        One line per step that will run again.
    """
    work_dir = Path(work_dir).absolute()
    forgotten = []
    for subject in subjects:
        folder = work_dir / "aslmig_wf" / f"single_subject_{subject}_wf"
        for result_file in sorted(folder.rglob("result_*.pklz")):
            reason = _damaged(result_file, work_dir)
            if reason is not None:
                result_file.unlink()
                step = str(result_file.parent.relative_to(work_dir / "aslmig_wf"))
                forgotten.append(f"{step}: {reason}")
                LOGGER.info("step %s runs again: %s", step, reason)
    return forgotten
