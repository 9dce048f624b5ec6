"""Write SLURM scripts: one participant per array task, then a dependent group job.

The functions here are pure (no pybids, no SLURM): :func:`validate_options` checks every
value, :func:`render_scripts` returns the file contents and :func:`write_scripts` writes
them. Every path and argument that reaches a shell line goes through :func:`shlex.quote`;
``#SBATCH`` lines only carry values checked against strict patterns, and the log paths are
given to ``sbatch`` on the command line of ``submit.sh`` so that they are quoted too.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from aslmig.bids.entities import is_label
from aslmig.errors import InputError, quote

PARTICIPANTS_FILE = "participants.txt"
PARTICIPANT_SCRIPT = "aslmig_participant.sbatch"
GROUP_SCRIPT = "aslmig_group.sbatch"
SUBMIT_SCRIPT = "submit.sh"
LOG_DIR = "logs"

#: Partition and account names as SLURM allows them (no spaces, quotes or shell syntax).
NAME_PATTERN = re.compile(r"[A-Za-z0-9_.+-]{1,64}")
#: ``[D-]HH:MM:SS`` (other SLURM time forms are refused to keep the check simple).
TIME_PATTERN = re.compile(r"(?:(\d{1,3})-)?(\d{1,3}):([0-5]\d):([0-5]\d)")
#: Options the generated scripts set themselves, refused in ``--extra-args``/``--group-args``.
RESERVED_OPTIONS = (
    "--participant-label",
    "--participant_label",
    "-w",
    "--work-dir",
    "--nprocs",
    "--n-cpus",
    "--mem-gb",
    "--bids-database-dir",
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SlurmOptions:
    """What the generated scripts run and with which resources.

    Parameters
    ----------
    bids_dir, output_dir : Path
        The dataset and derivatives folders (absolute).
    script_dir : Path
        Where the scripts, the participant list and the logs go (absolute).
    work_dir : Path
        Parent of the per-participant nipype work folders (absolute).
    cpus_per_task : int
        CPUs of each array task and of the group job (``--nprocs`` of aslmig).
    mem_gb : int
        Memory of each task in GB (``--mem`` of SLURM, ``--mem-gb`` of aslmig).
    time : str
        Wall-time limit of each task, ``[D-]HH:MM:SS``.
    max_parallel : int
        Array tasks allowed to run at once (the ``%M`` of ``--array``).
    partition, account : str, optional
        ``--partition``/``--account`` of every job.
    container : Path, optional
        Apptainer image run with ``apptainer run --cleanenv``.
    venv : Path, optional
        Virtual environment whose ``bin/aslmig`` is run (used when no container is given).
    templateflow_home : Path, optional
        ``TEMPLATEFLOW_HOME`` of the jobs (bound into the container).
    bids_database_dir : Path, optional
        pybids index of the dataset, built before submission and reused by every array task
        (bound into the container).
    extra_args, group_args : tuple of str
        Further aslmig arguments of the participant and the group level.
    """

    bids_dir: Path
    output_dir: Path
    script_dir: Path
    work_dir: Path
    cpus_per_task: int = 4
    mem_gb: int = 16
    time: str = "12:00:00"
    max_parallel: int = 20
    partition: str | None = None
    account: str | None = None
    container: Path | None = None
    venv: Path | None = None
    templateflow_home: Path | None = None
    bids_database_dir: Path | None = None
    extra_args: tuple[str, ...] = field(default_factory=tuple)
    group_args: tuple[str, ...] = field(default_factory=tuple)


# --------------------------------------------------------------------------- validation


def split_args(text: str | None, option: str) -> tuple[str, ...]:
    """Split an ``--extra-args``-style string like a shell would, refusing reserved options.

    Parameters
    ----------
    text : str or None
        The argument string.
    option : str
        The option name, for messages.

    Returns
    -------
    tuple of str
        The arguments.
    """
    if not text:
        return ()
    if _CONTROL.search(text):
        raise InputError(option, "holds control characters such as a line break")
    try:
        tokens = tuple(shlex.split(text))
    except ValueError as error:
        raise InputError(option, f"cannot be split into arguments: {error}") from None
    for token in tokens:
        name = token.split("=", 1)[0]
        if name in RESERVED_OPTIONS:
            raise InputError(
                option, f"sets {quote(name)}", "the generated scripts set it; use the slurm options"
            )
    return tokens


def check_label(label: str) -> str:
    """Return ``label`` when it is a bare BIDS label (letters and digits)."""
    if not is_label(label):
        raise InputError("participants", f"{quote(label)} is not a BIDS label")
    return label


def _check_path(path: Path | None, option: str, bind: bool = False) -> None:
    if path is None:
        return
    text = str(path)
    if not path.is_absolute():
        raise InputError(option, f"{quote(text)} is not an absolute path")
    if _CONTROL.search(text):
        raise InputError(option, f"{quote(text)} holds control characters such as a line break")
    if bind and ("," in text or ":" in text):
        raise InputError(
            option, f"{quote(text)} holds ',' or ':'", "apptainer bind paths cannot hold them"
        )


def _check_resources(options: SlurmOptions) -> None:
    for name, value in (
        ("--cpus-per-task", options.cpus_per_task),
        ("--mem-gb", options.mem_gb),
        ("--max-parallel", options.max_parallel),
    ):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(name, f"{quote(value)} is not a positive whole number")
    if not TIME_PATTERN.fullmatch(options.time):
        raise InputError(
            "--time", f"{quote(options.time)} is not a time limit", "use HH:MM:SS or D-HH:MM:SS"
        )
    for name, value in (("--partition", options.partition), ("--account", options.account)):
        if value is not None and not NAME_PATTERN.fullmatch(value):
            raise InputError(
                name, f"{quote(value)} is not a SLURM name", "use letters, digits and _ . + -"
            )


def validate_options(options: SlurmOptions) -> None:
    """Refuse any value that would make a broken or unsafe script (``InputError``).

    Parameters
    ----------
    options : SlurmOptions
        The options to check.
    """
    _check_resources(options)
    if options.container is not None and options.venv is not None:
        raise InputError("--container", "and --venv exclude each other", "give one of them")
    if options.container is None and options.venv is None:
        raise InputError("--venv", "neither --container nor --venv is given")
    bind = options.container is not None
    for option, path in (
        ("BIDS_DIR", options.bids_dir),
        ("OUTPUT_DIR", options.output_dir),
        ("--work-dir", options.work_dir),
        ("--templateflow-home", options.templateflow_home),
        ("--bids-database-dir", options.bids_database_dir),
    ):
        _check_path(path, option, bind=bind)
    for option, path in (
        ("--out-dir", options.script_dir),
        ("--container", options.container),
        ("--venv", options.venv),
    ):
        _check_path(path, option)
    extra = (("--extra-args", options.extra_args), ("--group-args", options.group_args))
    for option, args in extra:
        for arg in args:
            if _CONTROL.search(arg):
                raise InputError(option, "holds control characters such as a line break")


# --------------------------------------------------------------------------- rendering


def _q(value: object) -> str:
    return shlex.quote(str(value))


def _header(options: SlurmOptions, job_name: str) -> list[str]:
    lines = [
        "#!/usr/bin/env bash",
        f"#SBATCH --job-name={job_name}",
        f"#SBATCH --cpus-per-task={options.cpus_per_task}",
        f"#SBATCH --mem={options.mem_gb}G",
        f"#SBATCH --time={options.time}",
    ]
    if options.partition:
        lines.append(f"#SBATCH --partition={options.partition}")
    if options.account:
        lines.append(f"#SBATCH --account={options.account}")
    return lines


def _environment(options: SlurmOptions) -> list[str]:
    lines = [
        "set -euo pipefail",
        "# nipype's SLURM plugin and getpass need a user name",
        'export LOGNAME="${LOGNAME:-$(id -un)}"',
    ]
    if options.templateflow_home is not None and options.container is None:
        lines.append(f"export TEMPLATEFLOW_HOME={_q(options.templateflow_home)}")
    return lines


def _launcher(options: SlurmOptions) -> str:
    """Return the shell words that start aslmig (container or venv)."""
    if options.venv is not None:
        return _q(options.venv / "bin" / "aslmig")
    binds = [
        f"{options.bids_dir}:{options.bids_dir}:ro",
        f"{options.output_dir}:{options.output_dir}",
        f"{options.work_dir}:{options.work_dir}",
    ]
    if options.bids_database_dir is not None:
        binds.append(f"{options.bids_database_dir}:{options.bids_database_dir}")
    words = ["apptainer", "run", "--cleanenv"]
    if options.templateflow_home is not None:
        binds.append(f"{options.templateflow_home}:{options.templateflow_home}")
        words += ["--env", _q(f"TEMPLATEFLOW_HOME={options.templateflow_home}")]
    for bind in binds:
        words += ["-B", _q(bind)]
    words.append(_q(options.container))
    return " ".join(words)


def _database_args(options: SlurmOptions) -> list[str]:
    if options.bids_database_dir is None:
        return []
    return [f"--bids-database-dir {_q(options.bids_database_dir)}"]


def _continued(words: list[str]) -> str:
    return " \\\n    ".join(words)


def render_participant_script(options: SlurmOptions, count: int) -> str:
    """Return the array script: task ``i`` processes line ``i`` of ``participants.txt``.

    Parameters
    ----------
    options : SlurmOptions
        Validated options.
    count : int
        Number of participants (the array size).

    Returns
    -------
    str
        The script text.
    """
    parallel = min(count, options.max_parallel)
    participants = _q(options.script_dir / PARTICIPANTS_FILE)
    work = _q(options.work_dir)
    command = [
        f"{_launcher(options)} {_q(options.bids_dir)} {_q(options.output_dir)} participant",
        '--participant-label "$label"',
        f'-w {work}/"$label"',
        '--nprocs "${SLURM_CPUS_PER_TASK:-1}"',
        f"--mem-gb {options.mem_gb}",
        *_database_args(options),
        *[_q(arg) for arg in options.extra_args],
    ]
    lines = [
        *_header(options, "aslmig-participant"),
        f"#SBATCH --array=1-{count}%{parallel}",
        *_environment(options),
        f'label="$(sed -n "${{SLURM_ARRAY_TASK_ID}}p" {participants})"',
        'if [[ ! "$label" =~ ^[A-Za-z0-9]+$ ]]; then',
        '    echo "aslmig: task ${SLURM_ARRAY_TASK_ID}: no participant label on that line" >&2',
        "    exit 2",
        "fi",
        f'mkdir -p {work}/"$label"',
        'echo "aslmig: participant $label on $(hostname)"',
        _continued(command),
    ]
    return "\n".join(lines) + "\n"


def render_group_script(options: SlurmOptions) -> str:
    """Return the group-level script (submitted with ``--dependency=afterok``)."""
    work = _q(options.work_dir)
    command = [
        f"{_launcher(options)} {_q(options.bids_dir)} {_q(options.output_dir)} group",
        f"-w {work}/group",
        '--nprocs "${SLURM_CPUS_PER_TASK:-1}"',
        f"--mem-gb {options.mem_gb}",
        *[_q(arg) for arg in options.group_args],
    ]
    lines = [
        *_header(options, "aslmig-group"),
        *_environment(options),
        f"mkdir -p {work}/group",
        _continued(command),
    ]
    return "\n".join(lines) + "\n"


def render_submit_script(options: SlurmOptions) -> str:
    """Return ``submit.sh``: submit the array, then the group job after it succeeded."""
    scripts = options.script_dir
    logs = scripts / LOG_DIR
    lines = [
        "#!/usr/bin/env bash",
        "# Submit the aslmig participant array, then the group job once every task succeeded.",
        "set -euo pipefail",
        f"mkdir -p {_q(logs)}",
        "array_id=$(sbatch --parsable \\",
        f"    --output={_q(logs / 'participant_%A_%a.out')} \\",
        f"    {_q(scripts / PARTICIPANT_SCRIPT)})",
        'array_id="${array_id%%;*}"',
        "group_id=$(sbatch --parsable \\",
        '    --dependency="afterok:${array_id}" \\',
        f"    --output={_q(logs / 'group_%j.out')} \\",
        f"    {_q(scripts / GROUP_SCRIPT)})",
        'group_id="${group_id%%;*}"',
        'echo "participant array job: ${array_id}"',
        'echo "group job: ${group_id} (runs after ${array_id} succeeded)"',
    ]
    return "\n".join(lines) + "\n"


def render_scripts(options: SlurmOptions, labels: list[str]) -> dict[str, str]:
    """Validate and return every file as ``{file name: text}``.

    Parameters
    ----------
    options : SlurmOptions
        The options (validated here).
    labels : list of str
        Participant labels without ``sub-``, one per array task.

    Returns
    -------
    dict
        ``participants.txt``, both sbatch scripts and ``submit.sh``.
    """
    validate_options(options)
    if not labels:
        raise InputError("participants", "none selected", "check --participant-label")
    checked = [check_label(label) for label in labels]
    return {
        PARTICIPANTS_FILE: "\n".join(checked) + "\n",
        PARTICIPANT_SCRIPT: render_participant_script(options, len(checked)),
        GROUP_SCRIPT: render_group_script(options),
        SUBMIT_SCRIPT: render_submit_script(options),
    }


def write_scripts(options: SlurmOptions, labels: list[str]) -> dict[str, Path]:
    """Render everything first, then write it into ``options.script_dir``.

    Parameters
    ----------
    options : SlurmOptions
        The options.
    labels : list of str
        Participant labels.

    Returns
    -------
    dict
        File name -> written path.
    """
    contents = render_scripts(options, labels)
    if options.script_dir.exists() and not options.script_dir.is_dir():
        raise InputError(options.script_dir, "exists and is not a directory")
    options.script_dir.mkdir(parents=True, exist_ok=True)
    written: dict[str, Path] = {}
    for name, text in contents.items():
        path = options.script_dir / name
        path.write_text(text)
        if name != PARTICIPANTS_FILE:
            path.chmod(0o755)
        written[name] = path
    return written
