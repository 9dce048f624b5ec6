"""Run the participant graph with nipype: settings, progress, crash summaries, exit status."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, TextIO

from aslmig.bids.derivatives import (
    atomic_write,
    config_log_path,
    crash_dir,
    init_derivatives,
)
from aslmig.bids.layout import AslRun
from aslmig.cli.cache import forget_damaged_steps
from aslmig.cli.guards import participant_locks, workers_die_with_aslmig
from aslmig.config import RunConfig, to_toml
from aslmig.errors import InputError

LOGGER = logging.getLogger("aslmig")


def default_work_dir(output_dir: str) -> Path:
    """Return a work directory outside OUTPUT_DIR that stays the same for reruns of one output."""
    digest = hashlib.sha1(str(Path(output_dir).resolve()).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"aslmig-work-{digest}"


class Progress:
    """Print one short line per finished node: done/total, participant, stage."""

    def __init__(self, total: int, stream: TextIO | None = None) -> None:
        self.total = total
        self.done = 0
        self.failed = 0
        self.start = time.monotonic()
        # sys.stdout is looked up now, not when the module was imported (it may be replaced)
        self.stream = sys.stdout if stream is None else stream

    def __call__(self, node: Any, status: str) -> None:
        """Report a node (nipype ``status_callback``), called with 'start', 'end' or 'exception'."""
        if status == "start":
            return
        self.done += 1
        if status == "exception":
            self.failed += 1
        label = node.fullname.replace("aslmig_wf.", "").replace("_wf.", " ")
        state = "FAILED" if status == "exception" else "done"
        elapsed = time.monotonic() - self.start
        print(
            f"[{self.done:>3}/{self.total}] {elapsed:6.0f} s  {label}: {state}",
            file=self.stream,
            flush=True,
        )


#: Seconds nipype's MultiProc scheduler sleeps between its passes over the graph. nipype's
#: default (2 s, kept for the cluster plugins, whose every pass asks the scheduler) is paid once
#: per step along each chain of dependent steps: 4 simulated 4 mm sessions of 2 participants
#: (101 steps, anatomy from ``--derivatives``) took 88 s on 2 cores with it and 47 s with 0.1 s
#: (load 2-5), identical outputs; most of the difference was sleeping.
LOCAL_POLL_SECONDS = 0.1
NIPYPE_POLL_SECONDS = 2.0


def _nipype_settings(config: RunConfig, work_dir: Path) -> dict[str, dict[str, Any]]:
    local = config.execution.plugin == "MultiProc"
    return {
        "execution": {
            "poll_sleep_duration": LOCAL_POLL_SECONDS if local else NIPYPE_POLL_SECONDS,
            "crashdump_dir": str(crash_dir(config.output_dir)),
            "crashfile_format": "txt",
            "stop_on_first_crash": config.execution.stop_on_first_crash,
            "remove_unnecessary_outputs": False,
            "hash_method": "content",
            "check_version": False,
        },
        "logging": {"workflow_level": "WARNING", "interface_level": "WARNING"},
    }


#: Commands each nipype cluster plugin runs (submission, then polling).
SCHEDULER_COMMANDS = {
    "SLURM": ("sbatch", "squeue"),
    "SLURMGraph": ("sbatch",),
    "SGE": ("qsub", "qstat"),
    "SGEGraph": ("qsub",),
    "PBS": ("qsub", "qstat"),
    "LSF": ("bsub", "bjobs"),
}


#: The accepted plugins (:data:`aslmig.config.PLUGINS`) that submit the whole graph.
GRAPH_PLUGINS = ("SLURMGraph", "SGEGraph")


def check_scheduler(plugin: str) -> None:
    """Refuse a cluster plugin whose scheduler commands are not on ``PATH`` (``InputError``).

    Without this check, nipype's graph plugins write their submission script and report
    success although nothing was submitted.
    """
    missing = [name for name in SCHEDULER_COMMANDS.get(plugin, ()) if not shutil.which(name)]
    if missing:
        raise InputError(
            "--plugin",
            f"{plugin} needs {' and '.join(missing)}, which is not on PATH",
            "run aslmig on a login node of the cluster, or use --plugin MultiProc",
        )


def is_graph_plugin(plugin: str) -> bool:
    """Return True for the nipype plugins that submit the whole graph and return at once.

    ``SLURMGraph`` and ``SGEGraph`` hand the graph to the scheduler with job dependencies
    and return before any step has run.
    """
    return plugin in GRAPH_PLUGINS


def report_submission(plugin: str, total: int, output_dir: Path, failure: Exception | None) -> int:
    """Say what a graph plugin did (it returns once the jobs are queued); return the status.

    Parameters
    ----------
    plugin : str
        The nipype graph plugin.
    total : int
        Number of steps submitted.
    output_dir : Path
        Where the outputs will appear.
    failure : Exception or None
        What nipype raised while submitting, if anything.

    Returns
    -------
    int
        0 when the jobs were queued, 1 when the submission failed.
    """
    if failure is not None:
        reason = next(
            (line.strip() for line in reversed(str(failure).splitlines()) if line.strip()),
            type(failure).__name__,
        )
        print(f"aslmig: error: {plugin} could not submit the jobs: {reason}", file=sys.stderr)
        return 1
    print(
        f"aslmig: submitted the {total} steps to the scheduler as jobs that depend on each "
        f"other ({plugin}); the outputs appear in {output_dir} as the jobs finish "
        f"(crash files in {output_dir / 'logs' / 'crash'})"
    )
    return 0


def _plugin(config: RunConfig, progress: Progress) -> tuple[str, dict[str, Any]]:
    execution = config.execution
    args = dict(execution.plugin_args)
    plugin = execution.plugin
    if plugin == "MultiProc":
        args.setdefault("n_procs", execution.nprocs)
        if execution.mem_gb:
            args.setdefault("memory_gb", execution.mem_gb)
        args.setdefault("raise_insufficient", False)
    if plugin in ("MultiProc", "Linear"):
        args["status_callback"] = progress
    if is_graph_plugin(plugin):
        # nipype's SLURMGraph/SGEGraph fail with an AttributeError when it is not given
        args.setdefault("dont_resubmit_completed_jobs", False)
    return plugin, args


def summarise_crashes(output_dir: Path, since: float) -> list[str]:
    """One line per crash file written during this run (node and the error's last line)."""
    lines = []
    for crash in sorted(crash_dir(output_dir).glob("crash-*.txt")):
        if crash.stat().st_mtime < since:
            continue
        text = crash.read_text(errors="replace").strip().splitlines()
        node = next(
            (line.split(":", 1)[1].strip() for line in text if line.startswith("Node:")), crash.name
        )
        error = next((line for line in reversed(text) if line.strip()), "unknown error")
        lines.append(f"{node}: {error.strip()} (details: {crash})")
    return lines


def execute(config: RunConfig, runs: list[AslRun]) -> int:
    """Build and run the participant workflow; return the exit status (0 or 1).

    Parameters
    ----------
    config : RunConfig
        The run configuration.
    runs : list of AslRun
        The validated runs to process.

    Returns
    -------
    int
        0 when every node finished, 1 when any failed (see ``OUTPUT_DIR/logs/``).
    """
    from nipype import config as nipype_config
    from nipype import logging as nipype_logging

    from aslmig.workflows.base import init_aslmig_wf

    check_scheduler(config.execution.plugin)
    output_dir = Path(config.output_dir)
    work_dir = Path(config.execution.work_dir or default_work_dir(config.output_dir))
    subjects = sorted({run.subject for run in runs})
    with participant_locks(work_dir, subjects):
        forgotten = forget_damaged_steps(work_dir, subjects)
        if forgotten:
            print(
                f"aslmig: {len(forgotten)} cached step(s) lost files in the work directory "
                f"and run again (e.g. {forgotten[0]})",
                flush=True,
            )
        init_derivatives(output_dir, Path(config.bids_dir), config.anatomy.anat_derivatives)
        log_path = config_log_path(
            config.output_dir, config.analysis_level, config.participant_labels or ()
        )
        atomic_write(log_path, lambda temporary: temporary.write_text(to_toml(config)))
        nipype_config.update_config(_nipype_settings(config, work_dir))
        nipype_logging.update_logging(nipype_config)
        os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(config.execution.omp_nthreads)
        os.environ.setdefault("OMP_NUM_THREADS", str(config.execution.omp_nthreads))
        workflow = init_aslmig_wf(config, runs)
        workflow.base_dir = str(work_dir)
        return _run_workflow(workflow, config, len(runs), work_dir)


def _run_workflow(workflow: Any, config: RunConfig, n_runs: int, work_dir: Path) -> int:
    """Run the graph, then check that every output it plans exists; return the exit status."""
    from nipype.interfaces.utility import IdentityInterface

    output_dir = Path(config.output_dir)
    nodes = workflow._get_all_nodes()
    total = sum(not isinstance(node.interface, IdentityInterface) for node in nodes)
    progress = Progress(total)
    plugin, plugin_args = _plugin(config, progress)
    print(f"aslmig: {n_runs} run(s), {total} steps; work directory {work_dir}", flush=True)
    started = time.time()
    failure = None
    workers_die_with_aslmig()
    try:
        workflow.run(plugin=plugin, plugin_args=plugin_args)
    except RuntimeError as error:
        failure = error
        LOGGER.debug("nipype reported: %s", error)
    if is_graph_plugin(plugin):
        return report_submission(plugin, total, output_dir, failure)
    crashes = summarise_crashes(output_dir, started)
    if crashes:
        print("aslmig: some steps failed:", file=sys.stderr)
        for line in crashes:
            print(f"  {line}", file=sys.stderr)
        return 1
    missing = missing_outputs(nodes)
    if missing:
        print(
            f"aslmig: error: {len(missing)} output(s) were not written, e.g. {missing[0]}; "
            f"delete the work directory {work_dir} and run again",
            file=sys.stderr,
        )
        return 1
    print(f"aslmig: finished in {time.time() - started:.0f} s; outputs in {output_dir}")
    return 0


def missing_outputs(nodes: list[Any]) -> list[Path]:
    """Return the outputs that the saving nodes of a finished graph should have written.

    nipype's cache only knows which nodes ran; this looks at the files themselves.

    Parameters
    ----------
    nodes : list of nipype Node
        Every node of the graph.

    Returns
    -------
    list of Path
        Planned outputs (``planned_outputs()`` of the saving interfaces) that do not exist.
    """
    planned = [
        path
        for node in nodes
        if hasattr(node.interface, "planned_outputs")
        for path in node.interface.planned_outputs()
    ]
    return [path for path in planned if not path.exists()]
