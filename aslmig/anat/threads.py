"""How many threads ANTs (ITK) may use.

ITK reads ``ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS`` once per process, when its first filter
runs, and keeps that pool size for the life of the process (checked with antspyx 0.6.3:
setting the variable after the first ANTs call changes nothing). So :func:`set_threads`
must run before the first ANTs call of a process; in nipype, every interface that calls
ANTs should call it first with the same number.
"""

from __future__ import annotations

import os
import warnings

THREADS_VARIABLE = "ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"

_threads_at_first_use: str | None = None
_first_use_seen = False


def set_threads(n: int) -> None:
    """Let ANTs use ``n`` threads in this process.

    Parameters
    ----------
    n : int
        Number of threads, at least 1.

    Raises
    ------
    ValueError
        If ``n`` is not a positive integer.

    Warns
    -----
    RuntimeWarning
        If an ``aslmig.anat`` function already ran ANTs in this process with another thread
        count: ITK keeps its first value, so the new one has no effect here.
    """
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the number of threads must be a positive integer, not {n!r}")
    os.environ[THREADS_VARIABLE] = str(n)
    if _first_use_seen and _threads_at_first_use != str(n):
        warnings.warn(
            f"ANTs already ran in this process with {_threads_at_first_use or 'all'} threads; "
            f"ITK reads {THREADS_VARIABLE} only once, so {n} takes effect in new processes only",
            RuntimeWarning,
            stacklevel=2,
        )


def note_ants_use() -> None:
    """Record the thread setting in force when ANTs is first used by this package."""
    global _first_use_seen, _threads_at_first_use
    if not _first_use_seen:
        _first_use_seen = True
        _threads_at_first_use = os.environ.get(THREADS_VARIABLE)
