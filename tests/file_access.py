"""Make file permissions apply to the tests, also when they run as root (as CI does)."""

from __future__ import annotations

import contextlib
import ctypes
import os
from collections.abc import Iterator

_CAPABILITY_VERSION_3 = 0x20080522
#: CAP_DAC_OVERRIDE and CAP_DAC_READ_SEARCH: root's permission to ignore file modes.
_FILE_ACCESS_OVERRIDES = (1 << 1) | (1 << 2)


class _Header(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _Data(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


def _set_effective(libc, header, data) -> None:
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset failed")


@contextlib.contextmanager
def file_permissions_apply() -> Iterator[None]:
    """Inside the block, the calling thread honours file modes even as root.

    Root ignores file modes through two capabilities; they are dropped from the thread's
    effective set (they stay permitted, and are restored at the end). For other users the
    modes apply anyway and nothing is changed.
    """
    if os.geteuid() != 0:
        yield
        return
    libc = ctypes.CDLL(None, use_errno=True)
    header, data = _Header(_CAPABILITY_VERSION_3, 0), (_Data * 2)()
    if libc.capget(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capget failed")
    saved = data[0].effective
    data[0].effective = saved & ~_FILE_ACCESS_OVERRIDES
    _set_effective(libc, header, data)
    try:
        yield
    finally:
        data[0].effective = saved
        _set_effective(libc, header, data)
