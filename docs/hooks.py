"""MkDocs hook: put the real ``aslmig --help`` text into the CLI reference.

``docs/cli.md`` holds the marker line ``<!-- aslmig-cli-help -->``. At build time it is
replaced by ``build_parser().format_help()`` in a fenced code block, so the reference is
generated from the parser itself and cannot drift from it.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from collections.abc import Iterator
from pathlib import Path

MARKER = "<!-- aslmig-cli-help -->"
CLI_PAGE = "cli.md"
HELP_COLUMNS = 80
_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a block, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def cli_help() -> str:
    """Return the ``aslmig --help`` text, wrapped at a fixed width, without colour codes.

    Returns
    -------
    str
        The help text of :func:`aslmig.cli.parser.build_parser`.
    """
    if str(_PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(_PROJECT_ROOT))
    from aslmig.cli.parser import build_parser

    # argparse wraps at COLUMNS - 2; newer Pythons may colour help unless NO_COLOR is set.
    with _environment(COLUMNS=str(HELP_COLUMNS), NO_COLOR="1"):
        text = build_parser().format_help()
    return _ANSI_ESCAPE.sub("", text).rstrip() + "\n"


def insert_cli_help(markdown: str) -> str:
    """Replace the marker line in ``markdown`` with the help text in a fenced code block.

    Parameters
    ----------
    markdown : str
        Content of ``docs/cli.md``.

    Returns
    -------
    str
        The content with the marker replaced.

    Raises
    ------
    ValueError
        If the marker line is missing.
    """
    lines = markdown.splitlines(keepends=True)
    positions = [number for number, line in enumerate(lines) if line.strip() == MARKER]
    if not positions:
        raise ValueError(f"{CLI_PAGE} has no marker line {MARKER}")
    block = "```text\n" + cli_help() + "```\n"
    for number in positions:
        lines[number] = block
    return "".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    """MkDocs ``on_page_markdown`` event: fill in the help text on the CLI page.

    Parameters
    ----------
    markdown : str
        The page's Markdown source.
    page : mkdocs.structure.pages.Page
        The page being built.
    config : mkdocs.config.defaults.MkDocsConfig
        The site configuration.
    files : mkdocs.structure.files.Files
        All files of the site.

    Returns
    -------
    str
        The (possibly changed) Markdown.
    """
    if page.file.src_uri != CLI_PAGE:
        return markdown
    from mkdocs.exceptions import PluginError

    try:
        return insert_cli_help(markdown)
    except ValueError as error:
        raise PluginError(str(error)) from None
