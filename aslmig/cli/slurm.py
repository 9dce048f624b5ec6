"""``aslmig slurm BIDS_DIR OUTPUT_DIR``: write SLURM job-array scripts for a dataset.

The participants come from pybids (respecting ``--participant-label``); the scripts run one
participant per array task and a group job that waits for the whole array
(``--dependency=afterok``). See ``docs/hpc.md``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from aslmig.cli.parser import CommandParser, positive_int
from aslmig.errors import InputError
from aslmig.hpc.slurm import (
    SUBMIT_SCRIPT,
    SlurmOptions,
    split_args,
    validate_options,
    write_scripts,
)

EXIT_OK = 0




def build_slurm_parser() -> argparse.ArgumentParser:
    """Build the parser of ``aslmig slurm``."""
    parser = CommandParser(
        prog="aslmig slurm",
        description="Write SLURM scripts for a dataset: participants.txt, an array job with "
        "one participant per task (aslmig_participant.sbatch), a group job "
        "(aslmig_group.sbatch) and submit.sh, which submits the array and then the group "
        "job with --dependency=afterok.",
    )
    parser.add_argument("bids_dir", type=Path, help="the input ASL-BIDS dataset")
    parser.add_argument("output_dir", type=Path, help="the derivatives folder of the jobs")
    parser.add_argument(
        "--participant-label",
        "--participant_label",
        nargs="+",
        metavar="LABEL",
        help="only these participants (default: every participant with ASL data)",
    )
    resources = parser.add_argument_group("resources of each job")
    resources.add_argument(
        "--cpus-per-task",
        type=positive_int,
        default=4,
        metavar="N",
        help="CPUs of each job, aslmig's --nprocs (default %(default)s)",
    )
    resources.add_argument(
        "--mem-gb",
        type=positive_int,
        default=16,
        metavar="G",
        help="memory of each job in GB (default %(default)s)",
    )
    resources.add_argument(
        "--time",
        default="12:00:00",
        metavar="HH:MM:SS",
        help="wall-time limit of each job, [D-]HH:MM:SS (default %(default)s)",
    )
    resources.add_argument(
        "--max-parallel",
        type=positive_int,
        default=20,
        metavar="M",
        help="array tasks running at once (default %(default)s)",
    )
    resources.add_argument("--partition", metavar="P", help="SLURM partition of every job")
    resources.add_argument("--account", metavar="A", help="SLURM account of every job")
    software = parser.add_argument_group("software")
    where = software.add_mutually_exclusive_group()
    where.add_argument("--container", type=Path, metavar="IMAGE.sif", help="Apptainer image")
    where.add_argument(
        "--venv",
        type=Path,
        metavar="DIR",
        help="virtual environment holding bin/aslmig (default: the one running this command)",
    )
    software.add_argument(
        "--templateflow-home",
        type=Path,
        metavar="DIR",
        help="TEMPLATEFLOW_HOME of the jobs (bound into the container)",
    )
    paths = parser.add_argument_group("arguments and folders")
    paths.add_argument("--extra-args", metavar='"..."', help="more participant-level arguments")
    paths.add_argument("--group-args", metavar='"..."', help="more group-level arguments")
    paths.add_argument(
        "--bids-database-dir",
        type=Path,
        metavar="DIR",
        help="pybids index of BIDS_DIR: built (or reused) now, read by every array task",
    )
    paths.add_argument(
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="parent of the per-participant work folders (default OUT_DIR/work)",
    )
    paths.add_argument(
        "--out-dir",
        type=Path,
        default=Path("aslmig-slurm"),
        metavar="DIR",
        help="where the scripts and logs go (default %(default)s)",
    )
    return parser


def select_participants(
    bids_dir: Path, labels: list[str] | None, database_dir: Path | None = None
) -> list[str]:
    """Return the participants with ASL data, restricted to ``labels`` when given.

    Parameters
    ----------
    bids_dir : Path
        The dataset.
    labels : list of str, optional
        ``--participant-label`` values (with or without ``sub-``).
    database_dir : Path, optional
        Where pybids' index is saved (or reused from), for the jobs to reuse.

    Returns
    -------
    list of str
        Labels without ``sub-``, sorted unless given explicitly.
    """
    from aslmig.bids.layout import normalise_labels, open_layout

    wanted = normalise_labels(labels, "sub-", "--participant-label")
    layout = open_layout(bids_dir, database_dir=database_dir)
    available = sorted(layout.get_subjects(suffix="asl", datatype="perf"))
    if not available:
        raise InputError(bids_dir, "holds no ASL series (perf/*_asl.nii[.gz])")
    if not wanted:
        return available
    missing = [label for label in wanted if label not in available]
    if missing:
        raise InputError(
            "--participant-label",
            f"no participant {missing[0]!r} with ASL data in the dataset",
            f"available: {', '.join(available[:10])}{' ...' if len(available) > 10 else ''}",
        )
    return wanted


def _absolute(path: Path | None) -> Path | None:
    return None if path is None else Path(path).expanduser().absolute()


def _software(args: argparse.Namespace) -> tuple[Path | None, Path | None]:
    container, venv = _absolute(args.container), _absolute(args.venv)
    if container is not None:
        if not container.is_file():
            raise InputError("--container", f"{container} is not a file")
        return container, None
    venv = venv or Path(sys.prefix).absolute()
    if not (venv / "bin" / "aslmig").is_file():
        raise InputError("--venv", f"{venv} has no bin/aslmig", "give the aslmig environment")
    return None, venv


def options_from_args(args: argparse.Namespace) -> SlurmOptions:
    """Turn parsed arguments into :class:`~aslmig.hpc.slurm.SlurmOptions` (paths absolute)."""
    container, venv = _software(args)
    script_dir = _absolute(args.out_dir)
    return SlurmOptions(
        bids_dir=_absolute(args.bids_dir),
        output_dir=_absolute(args.output_dir),
        script_dir=script_dir,
        work_dir=_absolute(args.work_dir) or script_dir / "work",
        cpus_per_task=args.cpus_per_task,
        mem_gb=args.mem_gb,
        time=args.time,
        max_parallel=args.max_parallel,
        partition=args.partition,
        account=args.account,
        container=container,
        venv=venv,
        templateflow_home=_absolute(args.templateflow_home),
        bids_database_dir=_absolute(args.bids_database_dir),
        extra_args=split_args(args.extra_args, "--extra-args"),
        group_args=split_args(args.group_args, "--group-args"),
    )


def slurm_command(argv: list[str]) -> int:
    """Write the SLURM scripts and print how to submit them.

    Parameters
    ----------
    argv : list of str
        Arguments after ``slurm``.

    Returns
    -------
    int
        0 (errors raise ``UsageError``/``InputError``, exit status 2).
    """
    args = build_slurm_parser().parse_args(argv)
    options = options_from_args(args)
    validate_options(options)
    labels = select_participants(
        options.bids_dir, args.participant_label, options.bids_database_dir
    )
    written = write_scripts(options, labels)
    print(f"{len(labels)} participant(s): {', '.join(labels)}")
    for path in written.values():
        print(f"Wrote {path}")
    print(f"Submit with: bash {written[SUBMIT_SCRIPT]}")
    return EXIT_OK
