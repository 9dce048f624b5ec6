"""Entry point of the ``aslmig`` command: parse, validate, plan or run; own the exit status.

Exit status: 0 success, 1 processing failure, 2 usage or input error.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import Any

from aslmig.bids.anat_derivatives import AnatDerivatives, find_anat_derivatives
from aslmig.bids.filters import load_bids_filters
from aslmig.bids.layout import (
    DATABASE_FILE,
    AslRun,
    collect_runs,
    normalise_labels,
    open_layout,
)
from aslmig.cli.parser import UsageError, build_parser, explicit_sections, is_bids_app_call
from aslmig.cli.plan import anatomy_lines, format_plan, quantification_lines
from aslmig.config import RunConfig, build_config, read_config_file
from aslmig.errors import InputError, describe_os_error, quote, reading
from aslmig.workflows.constants import constants_for, constants_for_run, plan_quantification

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as shells report it
#: Errors of the machine rather than of the input (exit status 1, not 2).
_ENVIRONMENT_ERRORS = {errno.ENOSPC, errno.EDQUOT, errno.EIO}
LOGGER = logging.getLogger("aslmig")

# nipype asks the network for its latest version unless told not to.
os.environ.setdefault("NIPYPE_NO_ET", "1")


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """Turn parsed arguments (and an optional ``--config-file``) into a :class:`RunConfig`.

    Parameters
    ----------
    args : argparse.Namespace
        Parsed command-line arguments.

    Returns
    -------
    RunConfig
        The resolved configuration.
    """
    participants = normalise_labels(args.participant_label, "sub-", "--participant-label")
    sessions = normalise_labels(args.session_label, "ses-", "--session-label")
    file_sections = read_config_file(args.config_file) if args.config_file else {}
    base = {
        "bids_dir": str(Path(args.bids_dir).absolute()),
        "output_dir": str(Path(args.output_dir).absolute()),
        "analysis_level": args.analysis_level,
        "participant_labels": tuple(participants) if participants else None,
        "session_labels": tuple(sessions) if sessions else None,
        "bids_filter_file": str(args.bids_filter_file) if args.bids_filter_file else None,
        "dry_run": args.dry_run,
        "verbosity": args.verbosity,
    }
    config = build_config(base, file_sections, explicit_sections(args))
    _refuse_undecodable_text(dataclasses.asdict(config))
    return config


def _refuse_undecodable_text(values: Any, name: str = "") -> None:
    """Refuse paths and names that are not valid UTF-8 (Linux hands them over as surrogates).

    They could not be written into the saved TOML configuration or the JSON sidecars, which
    are UTF-8: refused here, before anything is written, instead of half-way through a run.
    """
    if isinstance(values, dict):
        for key, value in values.items():
            _refuse_undecodable_text(value, key)
    elif isinstance(values, list | tuple):
        for value in values:
            _refuse_undecodable_text(value, name)
    elif isinstance(values, str):
        try:
            values.encode("utf-8")
        except UnicodeEncodeError:
            option = name.upper() if name in ("bids_dir", "output_dir") else name
            raise InputError(
                option,
                f"{quote(values)} is not valid UTF-8 text",
                "rename it with UTF-8 characters",
            ) from None


def check_paths(config: RunConfig) -> None:
    """Refuse unusable output, work and index folders before anything is written.

    Each must be a folder (or creatable as one), writable by the user running aslmig,
    and outside the input dataset (except under its ``derivatives/``).

    Parameters
    ----------
    config : RunConfig
        The run configuration.
    """
    bids_dir = Path(config.bids_dir).resolve()
    if not bids_dir.is_dir():
        raise InputError(config.bids_dir, "BIDS_DIR does not exist or is not a directory")
    allowed = bids_dir / "derivatives"
    output = Path(config.output_dir).resolve()
    for option, folder in (
        ("OUTPUT_DIR", config.output_dir),
        ("--work-dir", config.execution.work_dir),
        ("--bids-database-dir", config.execution.bids_database_dir),
    ):
        if folder is None:
            continue
        path = Path(folder).resolve()
        inside = path == bids_dir or bids_dir in path.parents
        if inside and not (path == allowed or allowed in path.parents):
            raise InputError(
                option,
                f"{folder} lies inside the input dataset, which is never written to",
                f"choose a folder outside it, or under {allowed}",
            )
        if option == "--work-dir" and (path == output or output in path.parents):
            raise InputError(
                option,
                f"{folder} lies inside OUTPUT_DIR, which would fill the derivatives dataset "
                "with intermediate files",
                "choose a work folder outside OUTPUT_DIR",
            )
        reused_index = option == "--bids-database-dir" and (path / DATABASE_FILE).is_file()
        _check_folder(option, Path(folder), writable=not reused_index)


def _check_folder(option: str, folder: Path, writable: bool) -> None:
    """Refuse a folder option that names a file, or a folder aslmig could not write into."""
    with reading(option, f"{folder} cannot be checked"):
        existing = next(path for path in (folder, *folder.absolute().parents) if path.exists())
    if not existing.is_dir():
        problem = f"{folder} is a file" if existing == folder else f"{existing} is a file"
        raise InputError(
            option, f"{problem}, not a folder", "give a folder (it is created if missing)"
        )
    if writable and not os.access(existing, os.W_OK | os.X_OK, effective_ids=True):
        raise InputError(
            option,
            f"{existing} is not writable by the user running aslmig (uid {os.geteuid()})",
            "choose a folder you may write to, or change its permissions",
        )


def collect(config: RunConfig) -> list[AslRun]:
    """Query and validate the input selected by the configuration.

    Parameters
    ----------
    config : RunConfig
        The run configuration.

    Returns
    -------
    list of AslRun
        The validated runs.
    """
    check_paths(config)
    filters = load_bids_filters(Path(config.bids_filter_file)) if config.bids_filter_file else {}
    execution = config.execution
    database = Path(execution.bids_database_dir) if execution.bids_database_dir else None
    layout = open_layout(
        Path(config.bids_dir), database, validate=not execution.skip_bids_validation
    )
    return collect_runs(
        layout,
        list(config.participant_labels) if config.participant_labels else None,
        list(config.session_labels) if config.session_labels else None,
        filters,
    )


def _constants_for(config: RunConfig):
    """Return a function giving the constants the CBF engine will use for a run."""
    return lambda run: constants_for_run(run, config.physics)


def run(config: RunConfig) -> int:
    """Execute one configured invocation.

    Parameters
    ----------
    config : RunConfig
        The run configuration.

    Returns
    -------
    int
        The exit status.
    """
    if config.analysis_level == "group":
        from aslmig.group.run import run_group

        check_paths(config)
        return run_group(config)
    runs = collect(config)
    check_regions(config)
    anatomy = anat_derivatives_of(config, runs)
    plans = {run.name: plan_quantification(run, config.physics) for run in runs}
    if config.dry_run:
        root = runs[0].dataset_root

        def decisions(run: AslRun) -> list[tuple[str, str]]:
            return anatomy_lines(anatomy.get(run.name)) + quantification_lines(plans[run.name])

        print(format_plan(runs, root, constants=_constants_for(config), decisions=decisions))
        return EXIT_OK
    for run in runs:  # every constant must resolve before anything is written
        constants_for(run, config.physics)
        for message in plans[run.name].warning_messages:
            LOGGER.warning("warning: %s: %s", run.name, message)
    from aslmig.cli.execute import execute

    return execute(config, runs)


def anat_derivatives_of(config: RunConfig, runs: list[AslRun]) -> dict[str, AnatDerivatives]:
    """Find every run's anatomy in the ``--derivatives anat=`` dataset (none without it).

    A missing, ambiguous or unusable file is an :class:`InputError` before anything is written.
    """
    dataset = config.anatomy.anat_derivatives
    if dataset is None:
        return {}
    from aslmig.atlas.templates import resolve_template

    space = resolve_template().space
    return {
        run.name: find_anat_derivatives(dataset, run.subject, run.session, space) for run in runs
    }


def check_regions(config: RunConfig) -> None:
    """Validate the ``--atlas`` and ``--roi-spheres`` inputs before anything is written."""
    from aslmig.atlas.rois import BUILTIN_ATLASES, resolve_atlases
    from aslmig.atlas.templates import resolve_template

    regions = config.regions
    if regions.roi_spheres is None and all(name in BUILTIN_ATLASES for name in regions.atlases):
        return
    resolve_atlases(regions.atlases, regions.roi_spheres, resolve_template(), build_dir=None)


#: Helper commands: name -> (module, function taking the arguments after the name).
HELPER_COMMANDS = {
    "demo": ("aslmig.cli.demo", "demo"),
    "slurm": ("aslmig.cli.slurm", "slurm_command"),
    "simulate": ("aslmig.cli.simulate", "simulate_command"),
    "power": ("aslmig.cli.power", "power_command"),
    "templates": ("aslmig.cli.templates", "templates_command"),
}


def helper_command(argv: list[str]) -> str | None:
    """Return the helper command that ``argv`` asks for, or None for a BIDS-App call.

    ``aslmig demo out participant`` processes a dataset folder named ``demo``; ``aslmig
    demo`` and ``aslmig demo DIR`` run the demo (see :func:`is_bids_app_call`).
    """
    if not argv or argv[0] not in HELPER_COMMANDS or is_bids_app_call(argv):
        return None
    return argv[0]


def main(argv: list[str] | None = None) -> int:
    """Run the ``aslmig`` command and return its exit status.

    Parameters
    ----------
    argv : list of str, optional
        Arguments (defaults to ``sys.argv[1:]``).

    Returns
    -------
    int
        0 ok, 1 processing failure, 2 usage or input error.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    logging.basicConfig(level=logging.WARNING, format="%(name)s: %(message)s")
    try:
        command = helper_command(argv)
        if command is not None:
            module, function = HELPER_COMMANDS[command]
            return getattr(importlib.import_module(module), function)(argv[1:])
        args = build_parser().parse_args(argv)
        if args.verbosity:
            LOGGER.setLevel(logging.INFO if args.verbosity == 1 else logging.DEBUG)
        return run(config_from_args(args))
    except UsageError as error:
        print(str(error), file=sys.stderr)
        return EXIT_USAGE
    except InputError as error:
        print(f"aslmig: error: {error.message}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as error:  # a file problem no check foresaw: still one line
        problem, fix = describe_os_error(error)
        message = InputError(error.filename or "aslmig", problem, fix).message
        print(f"aslmig: error: {message}", file=sys.stderr)
        return EXIT_FAILURE if error.errno in _ENVIRONMENT_ERRORS else EXIT_USAGE


def entry_point() -> None:
    """Console-script entry point (a closed pipe, as in ``aslmig ... | head``, is not an error)."""
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = EXIT_OK
    except KeyboardInterrupt:
        print("aslmig: interrupted", file=sys.stderr)
        status = EXIT_INTERRUPTED
    sys.exit(status)
