"""``aslmig demo [DIR]``: simulate a small migraine cohort, then run both analysis levels.

The cohort is made by the simulator (:mod:`aslmig.sim`) with a known effect, processed by the
participant level, and compared by the group level; the command prints where the reports
are. The small digital-phantom dataset shipped in ``aslmig/data/example`` stays available
for tests and examples (:func:`example_dataset`).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

from aslmig.bids.derivatives import participant_report_path
from aslmig.cli.parser import CommandParser
from aslmig.errors import InputError

EXAMPLE_NAME = "aslmig example: digital-phantom migraine ASL study"
DEMO_EFFECT = "MwA:ictal:occipital_cortex_L=-0.15"
DEMO_SEED = 1


def example_dataset() -> Path:
    """Return the path of the example ASL-BIDS dataset shipped with the package."""
    return Path(str(resources.files("aslmig") / "data" / "example"))


def demo_spec():
    """Return the demo cohort: 2 HC, 2 MwA, 2 MwoA, interictal and ictal, -15 % aura effect.

    Returns
    -------
    aslmig.sim.CohortSpec
        4 mm PCASL, 8 pairs, SNR 200, seeded.
    """
    from aslmig.sim import CohortSpec, parse_effect

    return CohortSpec(
        n_per_group={"HC": 2, "MwA": 2, "MwoA": 2},
        phases=("interictal", "ictal"),
        effects=(parse_effect(DEMO_EFFECT),),
        pairs=8,
        snr=200.0,
        seed=DEMO_SEED,
    )


def prepare_cohort(bids_dir: Path) -> Path:
    """Simulate the demo cohort into ``bids_dir`` (reused when it already holds it).

    Parameters
    ----------
    bids_dir : Path
        Destination of the dataset.

    Returns
    -------
    Path
        ``bids_dir``.
    """
    from aslmig.sim import simulate_cohort
    from aslmig.sim.cohort import COHORT_NAME

    description = bids_dir / "dataset_description.json"
    if description.is_file():
        if json.loads(description.read_text()).get("Name") != COHORT_NAME:
            raise InputError(bids_dir, "holds another dataset", "choose an empty demo folder")
        return bids_dir
    if bids_dir.exists() and any(bids_dir.iterdir()):
        raise InputError(bids_dir, "is not empty", "choose an empty demo folder")
    simulate_cohort(bids_dir, demo_spec())
    return bids_dir



def demo(argv: list[str]) -> int:
    """Simulate the demo cohort in DIR/bids and run the participant and group levels.

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

    parser = CommandParser(
        prog="aslmig demo",
        description="Simulate a small migraine cohort (2 healthy controls, 2 MwA and 2 MwoA "
        f"patients with interictal and ictal sessions; {DEMO_EFFECT}) in DIR/bids, process "
        "it into DIR/derivatives and compare the groups.",
    )
    parser.add_argument("directory", nargs="?", type=Path, default=Path("aslmig-demo"))
    parser.add_argument("--dry-run", action="store_true", help="only print the plan")
    parser.add_argument("--nprocs", default="2", help="processes nipype may run at once")
    args = parser.parse_args(argv)
    bids_dir = prepare_cohort(args.directory / "bids")
    output_dir = args.directory / "derivatives"
    print(f"Demo dataset: {bids_dir}")
    arguments = [str(bids_dir), str(output_dir)]
    if args.dry_run:
        return main([*arguments, "participant", "--dry-run"])
    work = ["-w", str(args.directory / "work"), "--nprocs", args.nprocs]
    status = main([*arguments, "participant", *work])
    if status != 0:
        return status
    status = main([*arguments, "group"])
    if status == 0:
        for report in sorted(output_dir.glob(participant_report_path(output_dir, "*").name)):
            print(f"Participant report: {report}")
    return status
