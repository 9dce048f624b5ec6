"""End-to-end: ``aslmig slurm`` scripts on a real single-node SLURM started by the test.

The test installs Debian's ``slurm-wlm`` and ``munge`` when they are missing (as root),
starts ``munged``, ``slurmctld`` and ``slurmd`` by hand on localhost with a private
``slurm.conf`` (private ports, munge socket and state folders), submits the participant
array of a simulated 3-participant dataset and the dependent group job through the
generated ``submit.sh``, waits for both, checks the derivatives and the job states, and
stops every daemon it started (checking that none is left).
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from system_packages import ensure_commands

from aslmig.cli.run import main
from aslmig.hpc.slurm import PARTICIPANTS_FILE

pytestmark = pytest.mark.slow

DAEMONS = ("slurmctld", "slurmd", "slurmstepd", "munged")
COMMANDS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol")
JOB_TIMEOUT_S = 20 * 60
START_TIMEOUT_S = 60
MEMORY_MARGIN_MB = 2048


# --------------------------------------------------------------------------- installation


@pytest.fixture(scope="session")
def slurm_installed() -> None:
    """Make sure SLURM and munge are installed (installing them with apt-get as root)."""
    if os.geteuid() != 0:
        pytest.skip("the single-node SLURM test runs its daemons as root; not running as root")
    ensure_commands(COMMANDS, ["slurm-wlm", "munge"])


# --------------------------------------------------------------------------- cluster


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _real_memory_mb() -> int:
    text = Path("/proc/meminfo").read_text()
    total_kb = int(re.search(r"^MemTotal:\s+(\d+) kB", text, re.MULTILINE).group(1))
    return max(total_kb // 1024 - MEMORY_MARGIN_MB, 1024)


def _slurm_conf(root: Path) -> str:
    ctld_port, slurmd_port = _free_port(), _free_port()
    return "\n".join(
        [
            "ClusterName=aslmigtest",
            "SlurmctldHost=localhost",
            "SlurmUser=root",
            f"SlurmctldPort={ctld_port}",
            f"SlurmdPort={slurmd_port}",
            "AuthType=auth/munge",
            "CredType=cred/munge",
            f"AuthInfo=socket={root / 'munge' / 'munge.socket'}",
            f"StateSaveLocation={root / 'state'}",
            f"SlurmdSpoolDir={root / 'spool'}",
            f"SlurmctldPidFile={root / 'slurmctld.pid'}",
            f"SlurmdPidFile={root / 'slurmd.pid'}",
            f"SlurmctldLogFile={root / 'slurmctld.log'}",
            f"SlurmdLogFile={root / 'slurmd.log'}",
            "ProctrackType=proctrack/linuxproc",
            "TaskPlugin=task/none",
            "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_Core_Memory",
            "DefMemPerCPU=1024",
            "ReturnToService=2",
            "MinJobAge=3600",
            "DependencyParameters=kill_invalid_depend",
            "MpiDefault=none",
            "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none",
            f"NodeName=localhost NodeHostname=localhost CPUs={os.cpu_count()} "
            f"RealMemory={_real_memory_mb()} State=UNKNOWN",
            "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP",
            "",
        ]
    )


def _daemon_pids() -> set[int]:
    """Pids of every running SLURM or munge daemon on the machine."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in DAEMONS:
                    pids.add(int(entry.name))
            except OSError:
                continue
    return pids


def _start_munge(root: Path, log) -> subprocess.Popen:
    key_dir = root / "munge"
    key_dir.mkdir(mode=0o700)
    key = key_dir / "munge.key"
    key.write_bytes(os.urandom(1024))
    key.chmod(0o600)
    command = [
        "munged",
        "--foreground",
        "--force",
        f"--key-file={key}",
        f"--socket={key_dir / 'munge.socket'}",
        f"--pid-file={key_dir / 'munged.pid'}",
        f"--log-file={key_dir / 'munged.log'}",
        f"--seed-file={key_dir / 'munged.seed'}",
    ]
    return subprocess.Popen(command, stdout=log, stderr=log, start_new_session=True)


def _wait_for(ready, what: str, processes: list[subprocess.Popen]) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if ready():
            return
        dead = [process.args[0] for process in processes if process.poll() is not None]
        if dead:
            raise AssertionError(f"{', '.join(dead)} exited before {what} was ready")
        time.sleep(0.25)
    raise AssertionError(f"{what} not ready after {START_TIMEOUT_S} s")


def _node_idle(environment: dict[str, str]) -> bool:
    result = subprocess.run(
        ["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, env=environment
    )
    return result.returncode == 0 and result.stdout.strip() == "idle"


def _stop(processes: list[subprocess.Popen], environment: dict[str, str]) -> None:
    subprocess.run(["scancel", "--full", "--user", "root"], capture_output=True, env=environment)
    for process in reversed(processes):
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)


@pytest.fixture()
def slurm_cluster(slurm_installed, tmp_path_factory):
    """A running single-node SLURM; yields the environment of its client commands."""
    root = tmp_path_factory.mktemp("hpc_slurm")
    for name in ("state", "spool"):
        (root / name).mkdir()
    conf = root / "slurm.conf"
    conf.write_text(_slurm_conf(root))
    environment = {**os.environ, "SLURM_CONF": str(conf), "LOGNAME": "root"}
    before = _daemon_pids()
    processes: list[subprocess.Popen] = []
    started = time.monotonic()
    with open(root / "daemons.out", "wb") as log:
        try:
            processes.append(_start_munge(root, log))
            socket_file = root / "munge" / "munge.socket"
            _wait_for(socket_file.exists, "munged socket", processes)
            for command in (["slurmctld", "-D"], ["slurmd", "-D", "-N", "localhost"]):
                processes.append(
                    subprocess.Popen(
                        [*command, "-f", str(conf)],
                        stdout=log,
                        stderr=log,
                        env=environment,
                        start_new_session=True,
                    )
                )
            _wait_for(lambda: _node_idle(environment), "idle node", processes)
            print(f"SLURM daemons ready in {time.monotonic() - started:.1f} s")
            yield environment
        finally:
            _stop(processes, environment)
            _assert_no_daemon_left(before)


def _assert_no_daemon_left(before: set[int]) -> None:
    deadline = time.monotonic() + 30
    while (left := _daemon_pids() - before) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not left, f"daemons still running after the test: {sorted(left)}"


# --------------------------------------------------------------------------- jobs


def _job_records(job_id: str, environment: dict[str, str]) -> list[dict[str, str]]:
    result = subprocess.run(
        ["scontrol", "-o", "show", "job", job_id],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    records = []
    for line in result.stdout.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        records.append(fields)
    return records


def _wait_for_jobs(job_ids: list[str], environment: dict[str, str]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < JOB_TIMEOUT_S:
        result = subprocess.run(
            ["squeue", "-h", "-j", ",".join(job_ids), "-o", "%i %T"],
            capture_output=True,
            text=True,
            env=environment,
        )
        if result.returncode == 0 and not result.stdout.strip():
            return time.monotonic() - started
        time.sleep(2)
    raise AssertionError(f"jobs {job_ids} not finished after {JOB_TIMEOUT_S} s")


def _simulate(bids: Path, groups: tuple[str, ...] = ("HC=1", "MwA=1", "MwoA=1")) -> None:
    status = main(
        [
            "simulate",
            str(bids),
            "--n",
            *groups,
            "--phases",
            "interictal",
            "--voxel",
            "6",
            "--pairs",
            "2",
            "--seed",
            "3",
        ]
    )
    assert status == 0


def test_array_and_dependent_group_job(slurm_cluster, tmp_path):
    environment = slurm_cluster
    bids, output, scripts = tmp_path / "bids", tmp_path / "derivatives", tmp_path / "slurm jobs"
    _simulate(bids)
    venv = Path(sys.executable).parent.parent
    arguments = [str(bids), str(output), "--venv", str(venv), "--out-dir", str(scripts),
                 "--bids-database-dir", str(tmp_path / "index")]  # fmt: skip
    resources = ["--cpus-per-task", "1", "--mem-gb", "2", "--time", "00:30:00"]
    assert main(["slurm", *arguments, *resources, "--group-args=--no-voxelwise"]) == 0
    labels = (scripts / PARTICIPANTS_FILE).read_text().split()
    assert labels == ["hc01", "mwa01", "mwoa01"]

    submitted = subprocess.run(
        ["bash", str(scripts / "submit.sh")],
        capture_output=True,
        text=True,
        env=environment,
        check=True,
    )
    array_id = re.search(r"participant array job: (\d+)", submitted.stdout).group(1)
    group_id = re.search(r"group job: (\d+)", submitted.stdout).group(1)
    wall = _wait_for_jobs([array_id, group_id], environment)
    print(f"array + group jobs finished in {wall:.0f} s")

    logs = scripts / "logs"
    tasks = _job_records(array_id, environment)
    assert sorted(int(task["ArrayTaskId"]) for task in tasks) == [1, 2, 3]
    for task in tasks:
        log = logs / f"participant_{array_id}_{task['ArrayTaskId']}.out"
        assert task["JobState"] == "COMPLETED", log.read_text()[-3000:]
        assert task["ExitCode"] == "0:0"
        assert "aslmig: participant" in log.read_text()
    (group,) = _job_records(group_id, environment)
    group_log = logs / f"group_{group_id}.out"
    assert group["JobState"] == "COMPLETED", group_log.read_text()[-3000:]
    assert group["ExitCode"] == "0:0"
    # The group job started only after every participant task had ended.
    last_task_end = max(task["EndTime"] for task in tasks)
    assert group["StartTime"] >= last_task_end

    for label in labels:
        assert (output / f"sub-{label}.html").is_file()
        config = (output / "logs" / f"config_participant_sub-{label}.toml").read_text()
        assert f'bids_database_dir = "{tmp_path / "index"}"' in config
    assert (output / "group" / "default" / "report.html").is_file()


def _job_ids(environment: dict[str, str]) -> set[str]:
    result = subprocess.run(["scontrol", "-o", "show", "jobs"], capture_output=True, text=True,
                            env=environment, check=True)  # fmt: skip
    return set(re.findall(r"^JobId=(\d+)", result.stdout, re.MULTILINE))


def test_nipype_slurmgraph_plugin_splits_one_participant_into_jobs(slurm_cluster, tmp_path):
    """``--plugin SLURMGraph``: every step becomes a job; aslmig returns once they are queued."""
    environment = slurm_cluster
    bids, output, work = tmp_path / "bids", tmp_path / "derivatives", tmp_path / "work"
    _simulate(bids, ("HC=1",))
    before = _job_ids(environment)
    sbatch = {"sbatch_args": "--mem=1G --cpus-per-task=1 --time=00:30:00"}
    command = [str(Path(sys.executable).parent / "aslmig"), str(bids), str(output),
               "participant", "--participant-label", "hc01", "-w", str(work),
               "--plugin", "SLURMGraph", "--plugin-args", json.dumps(sbatch)]  # fmt: skip
    submitted = subprocess.run(command, capture_output=True, text=True, env=environment)
    assert submitted.returncode == 0, submitted.stderr[-3000:]
    assert "submitted the" in submitted.stdout and "(SLURMGraph)" in submitted.stdout
    jobs = sorted(_job_ids(environment) - before, key=int)
    assert len(jobs) > 10, "one job per step"
    wall = _wait_for_jobs(jobs, environment)
    print(f"{len(jobs)} SLURMGraph jobs finished in {wall:.0f} s")
    records = [record for job in jobs for record in _job_records(job, environment)]
    failed = [record["JobId"] for record in records if record["JobState"] != "COMPLETED"]
    assert not failed, f"jobs not completed: {failed}"
    perf = output / "sub-hc01" / "ses-1" / "perf"
    assert (perf / "sub-hc01_ses-1_cbf.nii.gz").is_file()
    assert (perf / "sub-hc01_ses-1_space-MNI152NLin2009aSym_atlas-MigraineASL_cbf.tsv").is_file()
    assert (output / "sub-hc01.html").is_file()
