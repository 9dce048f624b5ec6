"""``aslmig demo [DIR]``: copy the built-in example dataset and run aslmig on it."""

from __future__ import annotations

import argparse
import json
import shutil
from importlib import resources
from pathlib import Path

from aslmig.cli.parser import UsageError
from aslmig.errors import InputError

EXAMPLE_NAME = "aslmig example: digital-phantom migraine ASL study"


def example_dataset() -> Path:
    """Return the path of the example ASL-BIDS dataset shipped with the package."""
    return Path(str(resources.files("aslmig") / "data" / "example"))


def copy_example(bids_dir: Path) -> Path:
    """Copy the example dataset to ``bids_dir`` (reused when it already holds it).

    Parameters
    ----------
    bids_dir : Path
        Destination of the copy.

    Returns
    -------
    Path
        ``bids_dir``.
    """
    description = bids_dir / "dataset_description.json"
    if description.is_file():
        if json.loads(description.read_text()).get("Name") != EXAMPLE_NAME:
            raise InputError(bids_dir, "holds another dataset", "choose an empty demo folder")
        return bids_dir
    if bids_dir.exists() and any(bids_dir.iterdir()):
        raise InputError(bids_dir, "is not empty", "choose an empty demo folder")
    shutil.copytree(example_dataset(), bids_dir, dirs_exist_ok=True)
    return bids_dir


class _DemoParser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # noqa: D102 - argparse hook
        raise UsageError(f"{self.prog}: {message}")


def demo(argv: list[str]) -> int:
    """Set up the example dataset in DIR and run the participant level on it.

    Parameters
    ----------
    argv : list of str
        Arguments after ``demo``.

    Returns
    -------
    int
        Exit status of the run.
    """
    from aslmig.cli.run import main

    parser = _DemoParser(
        prog="aslmig demo",
        description="Copy the built-in example (two participants: HC, and MwA with ictal and "
        "interictal sessions) to DIR/bids and process it into DIR/derivatives.",
    )
    parser.add_argument("directory", nargs="?", type=Path, default=Path("aslmig-demo"))
    parser.add_argument("--dry-run", action="store_true", help="only print the plan")
    parser.add_argument("--nprocs", default="2", help="processes nipype may run at once")
    args = parser.parse_args(argv)
    bids_dir = copy_example(args.directory / "bids")
    output_dir = args.directory / "derivatives"
    print(f"Example dataset: {bids_dir}")
    arguments = [str(bids_dir), str(output_dir), "participant"]
    if args.dry_run:
        return main([*arguments, "--dry-run"])
    status = main([*arguments, "-w", str(args.directory / "work"), "--nprocs", args.nprocs])
    if status == 0:
        for report in sorted(output_dir.glob("sub-*.html")):
            print(f"Participant report: {report}")
    return status
