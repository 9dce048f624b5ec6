"""Errors that the command line turns into one-line messages and exit status 2."""

from __future__ import annotations

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
