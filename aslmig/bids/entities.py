r"""The BIDS label rule, defined once for the whole package.

A BIDS label (the value of an entity such as ``sub-<label>``) is made of ASCII letters
and digits only. Every check uses :func:`re.fullmatch`: with ``re.match`` and a ``^...$``
pattern, ``$`` also matches before a trailing newline, so ``"01\n"`` would pass and later
write two-line table cells or folder names with a newline in them.
"""

from __future__ import annotations

import re

#: Regular-expression fragment of one label, for patterns that parse file names.
LABEL_CHARACTERS = "[A-Za-z0-9]+"
LABEL_PATTERN = re.compile(LABEL_CHARACTERS)


def is_label(value: object) -> bool:
    r"""Tell whether ``value`` is a BIDS label (a whole string of ASCII letters and digits).

    Parameters
    ----------
    value : object
        Anything read from user input.

    Returns
    -------
    bool
        True for ``"01"`` or ``"mwa01"``; False for ``"01\n"``, ``"sub-01"``, ``"²"`` or ``""``.
    """
    return isinstance(value, str) and LABEL_PATTERN.fullmatch(value) is not None
