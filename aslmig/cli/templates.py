"""``aslmig templates {fetch,list}``: cache TemplateFlow templates, or show which are used."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from aslmig.atlas.templates import (
    DEFAULT_SPACE,
    TemplateFetchError,
    TemplateFiles,
    fetch_templates,
    resolve_template,
    templateflow_home,
)
from aslmig.cli.parser import CommandParser, UsageError
from aslmig.errors import InputError

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
ROLES_SHOWN = ("t1w", "brain_mask", "gm", "wm", "csf")



def build_templates_parser() -> argparse.ArgumentParser:
    """Return the parser of ``aslmig templates``."""
    parser = CommandParser(
        prog="aslmig templates",
        description="Cache TemplateFlow templates for offline runs, or show which templates "
        "aslmig would use.",
    )
    commands = parser.add_subparsers(dest="command", required=True, parser_class=CommandParser)
    fetch = commands.add_parser(
        "fetch",
        help=f"download the {DEFAULT_SPACE} files aslmig needs (needs the network)",
        description=f"Download {DEFAULT_SPACE} T1w, brain mask and GM/WM/CSF probability maps "
        "into the TemplateFlow home, so that later runs work offline.",
    )
    show = commands.add_parser(
        "list",
        help="show the template files aslmig would use, and where they come from",
        description="Show the template files aslmig would use (never downloads).",
    )
    for sub in (fetch, show):
        sub.add_argument(
            "--home",
            type=Path,
            default=None,
            help="TemplateFlow home (default: $TEMPLATEFLOW_HOME or "
            "templateflow's default cache folder)",
        )
        sub.add_argument(
            "--resolution",
            type=int,
            default=2,
            metavar="MM",
            help="isotropic voxel size in mm (default: 2)",
        )
    show.add_argument("--json", action="store_true", help="print the selection as JSON")
    return parser


def format_selection(files: TemplateFiles, home: Path) -> str:
    """Describe a template selection for people.

    Parameters
    ----------
    files : TemplateFiles
        The resolved files.
    home : Path
        The TemplateFlow home that was searched.

    Returns
    -------
    str
        A multi-line description.
    """
    where = {
        "templateflow": f"from the TemplateFlow home {home}",
        "bundled": f"bundled with aslmig (TemplateFlow home {home} has no complete "
        f"{DEFAULT_SPACE} set; 'aslmig templates fetch' caches it)",
    }[files.origin]
    lines = [f"space: {files.space} ({files.resolution_mm} mm), {where}"]
    lines += [f"  {role}: {getattr(files, role)}" for role in ROLES_SHOWN]
    lines += [f"citation: {files.citation}", f"licence: {files.licence}"]
    return "\n".join(lines)


def run_fetch(args: argparse.Namespace) -> int:
    """Download the files; print them; return the exit status."""
    home = args.home.absolute() if args.home else templateflow_home()
    print(f"Fetching {DEFAULT_SPACE} ({args.resolution} mm) into {home} ...")
    try:
        paths = fetch_templates(home, resolution_mm=args.resolution)
    except TemplateFetchError as error:
        print(f"aslmig templates: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    for path in paths:
        print(f"  {path}")
    return EXIT_OK


def run_list(args: argparse.Namespace) -> int:
    """Print which template files would be used; return the exit status."""
    home = args.home.absolute() if args.home else templateflow_home()
    files = resolve_template(args.resolution, home=home)
    if args.json:
        print(json.dumps({**files.to_dict(), "templateflow_home": str(home)}, indent=2))
    else:
        print(format_selection(files, home))
    return EXIT_OK


def templates_command(argv: list[str]) -> int:
    """Run ``aslmig templates ...`` and return its exit status.

    Parameters
    ----------
    argv : list of str
        Arguments after ``templates`` (e.g. ``['fetch', '--home', '/opt/templateflow']``).

    Returns
    -------
    int
        0 success, 1 download failure, 2 usage or input error.
    """
    try:
        args = build_templates_parser().parse_args(argv)
        return {"fetch": run_fetch, "list": run_list}[args.command](args)
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    except InputError as error:
        print(f"aslmig: error: {error.message}", file=sys.stderr)
        return EXIT_USAGE
