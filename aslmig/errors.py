"""Errors that the command line turns into one-line messages and exit status 2."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

_MAX_QUOTED = 60


def quote(value: object) -> str:
    """Return a short, printable, escaped representation of a user-supplied value.

    Strings from sidecars may be hostile (terminal escapes, very long text, markup);
    they are shown through ``repr`` and cut to a fixed length.

    Parameters
    ----------
    value : object
        Any value read from user input.

    Returns
    -------
    str
        A single-line representation of at most about 60 characters.
    """
    text = repr(value)
    if len(text) > _MAX_QUOTED:
        text = text[: _MAX_QUOTED - 3] + "..."
    return text


class InputError(Exception):
    """Bad user input: a file, a field in it, and what would fix it.

    Parameters
    ----------
    source : str or Path
        The file (or command-line option) holding the bad value.
    problem : str
        What is wrong, naming the field.
    fix : str, optional
        What the user can do about it.
    """

    def __init__(self, source: str | Path, problem: str, fix: str | None = None) -> None:
        self.source = str(source)
        self.problem = problem
        self.fix = fix
        super().__init__(self.message)

    @property
    def message(self) -> str:
        """The one-line message shown to the user."""
        text = f"{self.source}: {self.problem}"
        if self.fix:
            text += f" ({self.fix})"
        return " ".join(text.split())


#: What an operating-system error means for a file the user gave, and what fixes it.
_OS_PROBLEMS = {
    errno.EACCES: ("permission denied", "make it readable by the user running aslmig"),
    errno.EPERM: ("operation not permitted", "check the permissions of the file and its folders"),
    errno.ENOENT: ("does not exist", "check the path"),
    errno.EISDIR: ("is a folder, not a file", "give the file itself"),
    errno.ENOTDIR: ("a part of its path is a file, not a folder", "check the path"),
    errno.ELOOP: ("is a symbolic link that loops", "fix or remove the link"),
    errno.ENAMETOOLONG: ("has a name that is too long", "use a shorter path"),
    errno.EROFS: ("is on a read-only file system", "choose a writable folder"),
    errno.ENOSPC: ("no space is left on its device", "free some space"),
    errno.EDQUOT: ("the disk quota is exceeded", "free some space"),
}
#: Where git-annex (and so DataLad) keeps file content; links into it may be dangling.
ANNEX_OBJECTS = ".git/annex/objects/"


def describe_os_error(error: OSError) -> tuple[str, str | None]:
    """Return (problem, fix) for an ``OSError`` raised on a user's file.

    A missing file that is a symbolic link is a broken link; one that points into
    ``.git/annex/objects`` is a DataLad/git-annex file whose content was never fetched.

    Parameters
    ----------
    error : OSError
        The error, with its ``filename`` when the system gave one.

    Returns
    -------
    problem, fix : str
        A short description and what would fix it (None when nothing general helps).
    """
    name = error.filename
    if error.errno == errno.ENOENT and name is not None and os.path.islink(name):
        target = os.readlink(name)
        if ANNEX_OBJECTS in str(target):
            return (
                "is a git-annex link whose content is not present",
                "fetch it with 'datalad get' (or 'git annex get') first",
            )
        return f"is a broken symbolic link (to {quote(str(target))})", "fix or remove the link"
    return _OS_PROBLEMS.get(error.errno, (error.strerror or type(error).__name__, None))


@contextlib.contextmanager
def reading(source: str | Path, what: str = "cannot be read") -> Iterator[None]:
    """Turn an ``OSError`` raised inside the block into an :class:`InputError` naming ``source``.

    Parameters
    ----------
    source : str or Path
        How the file is named in the message (a dataset-relative name, or an option).
    what : str
        What failed, e.g. ``"cannot be read"`` or ``"cannot be written"``.
    """
    try:
        yield
    except OSError as error:
        problem, fix = describe_os_error(error)
        raise InputError(source, f"{what}: {problem}", fix) from None


#: Largest text input (sidecar, aslcontext, configuration, table) read whole into memory.
LARGEST_TEXT_BYTES = 10 * 1024 * 1024


def regular_file_size(path: str | Path, shown_as: str | Path, limit: int | None = None) -> int:
    """Return the size of a regular file, refusing devices, pipes, folders and huge files.

    ``/dev/zero`` or a named pipe given as a sidecar, a table or a configuration file would
    be read forever (or block); a folder is not a file.

    Parameters
    ----------
    path : str or Path
        The file (symbolic links are followed).
    shown_as : str or Path
        How to name it in messages.
    limit : int, optional
        Largest accepted size in bytes.

    Returns
    -------
    int
        The size in bytes.
    """
    with reading(shown_as):
        status = os.stat(path)
    if stat.S_ISDIR(status.st_mode):
        raise InputError(
            shown_as, "cannot be read: is a folder, not a file", "give the file itself"
        )
    if not stat.S_ISREG(status.st_mode):
        raise InputError(
            shown_as, "is not a regular file (a device, pipe or socket)", "give the file itself"
        )
    if limit is not None and status.st_size > limit:
        raise InputError(
            shown_as, f"is {status.st_size} bytes, more than the {limit} this file may hold"
        )
    return status.st_size
