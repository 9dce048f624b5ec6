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
    """Set up the example dataset in DIR and run the participant level on it (dry run).

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
        description="Copy the built-in example (two participants: HC and MwA with ictal and "
        "interictal sessions) to DIR/bids and plan its processing.",
    )
    parser.add_argument("directory", nargs="?", type=Path, default=Path("aslmig-demo"))
    args = parser.parse_args(argv)
    bids_dir = copy_example(args.directory / "bids")
    print(f"Example dataset: {bids_dir}")
    return main([str(bids_dir), str(args.directory / "derivatives"), "participant", "--dry-run"])
