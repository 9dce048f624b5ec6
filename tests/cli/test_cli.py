"""The aslmig command: BIDS-Apps contract, exit codes, options, dry run."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from builders import tree_digest

from aslmig import __version__
from aslmig.cli.run import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "aslmig", *args], capture_output=True, text=True, timeout=120
    )


def test_version_and_help():
    version = run_cli("--version")
    assert version.returncode == 0
    assert version.stdout.strip() == f"aslmig {__version__}"
    help_text = run_cli("--help")
    assert help_text.returncode == 0
    for option in (
        "--participant-label",
        "--bids-filter-file",
        "--dry-run",
        "--plugin-args",
        "--bids-database-dir",
        "--omp-nthreads",
        "--config-file",
    ):
        assert option in help_text.stdout


@pytest.mark.parametrize(
    "args",
    [
        [],
        ["bids"],
        ["bids", "out", "subject"],
        ["bids", "out", "participant", "--nprocs", "0"],
        ["bids", "out", "participant", "--plugin", "Condor"],
        ["bids", "out", "participant", "--plugin-args", "[1]"],
        ["bids", "out", "participant", "--no-such-option"],
    ],
)
def test_usage_errors_exit_2(args, capsys):
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_dry_run_reports_decisions(example, tmp_path, capsys):
    root = example("asl004")
    before = tree_digest(root)
    code = main(
        [
            str(root),
            str(tmp_path / "out"),
            "participant",
            "--dry-run",
            "--participant-label",
            "sub-Sub1",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "PCASL, 3 T, background suppression (2 pulses)" in out
    assert "PLD 0.25, 0.5, 0.75, 1, 1.25, 1.5 s" in out
    assert "Separate: sub-Sub1/perf/sub-Sub1_m0scan.nii.gz" in out
    assert "reverse phase-encoded M0 sub-Sub1/fmap/sub-Sub1_dir-pa_m0scan.nii.gz" in out
    assert "2D (24 slices" in out
    assert "general kinetic model fit (CBF + ATT) over 6 delays" in out
    assert tree_digest(root) == before
    assert not (tmp_path / "out").exists()


def test_output_inside_input_is_refused(example, capsys):
    root = example("asl005")
    assert main([str(root), str(root / "out"), "participant", "--dry-run"]) == 2
    assert "inside the input dataset" in capsys.readouterr().err


def test_output_under_derivatives_is_allowed(example, capsys):
    root = example("asl005")
    assert main([str(root), str(root / "derivatives" / "aslmig"), "participant", "--dry-run"]) == 0


def test_work_dir_inside_input_is_refused(example, tmp_path, capsys):
    root = example("asl005")
    args = [str(root), str(tmp_path / "o"), "participant", "--dry-run", "-w", str(root / "w")]
    assert main(args) == 2
    assert "--work-dir" in capsys.readouterr().err


def test_bids_database_dir_is_reused(example, tmp_path, capsys):
    root = example("asl005")
    database = tmp_path / "db"
    args = [
        str(root),
        str(tmp_path / "o"),
        "participant",
        "--dry-run",
        "--bids-database-dir",
        str(database),
    ]
    assert main(args) == 0
    index = sorted(database.iterdir())
    assert index, "pybids wrote no index"
    stamps = {path: path.stat().st_mtime_ns for path in index}
    assert main(args) == 0
    assert {path: path.stat().st_mtime_ns for path in sorted(database.iterdir())} == stamps


def test_unknown_participant_exit_2(example, tmp_path, capsys):
    root = example("asl005")
    assert (
        main(
            [
                str(root),
                str(tmp_path / "o"),
                "participant",
                "--participant-label",
                "nobody",
                "--dry-run",
            ]
        )
        == 2
    )
    assert "no participant 'nobody'" in capsys.readouterr().err


def test_config_file_errors(example, tmp_path, capsys):
    root = example("asl005")
    config = tmp_path / "c.toml"
    config.write_text("[physics]\nt1_blod = 1.6\n")
    assert (
        main(
            [
                str(root),
                str(tmp_path / "o"),
                "participant",
                "--dry-run",
                "--config-file",
                str(config),
            ]
        )
        == 2
    )
    err = capsys.readouterr().err
    assert str(config) in err and "t1_blod" in err


def test_placeholder_examples_exit_2_naming_the_empty_file(tmp_path, capsys):
    from builders import EXAMPLES

    code = main([str(EXAMPLES / "asl002"), str(tmp_path / "o"), "participant", "--dry-run"])
    assert code == 2
    assert "sub-Sub103/perf/sub-Sub103_asl.nii.gz: the image file is empty" in (
        capsys.readouterr().err
    )


def test_plugin_args_json(example, tmp_path):
    from aslmig.cli.parser import build_parser
    from aslmig.cli.run import config_from_args

    args = build_parser().parse_args(
        [
            "b",
            "o",
            "participant",
            "--plugin",
            "SLURM",
            "--plugin-args",
            json.dumps({"sbatch_args": "--time=1:00:00"}),
            "--nprocs",
            "2",
        ]
    )
    config = config_from_args(args)
    assert config.execution.plugin == "SLURM"
    assert config.execution.plugin_args == {"sbatch_args": "--time=1:00:00"}
    assert config.execution.nprocs == 2


def test_database_dir_inside_input_is_refused(example, tmp_path, capsys):
    root = example("asl005")
    args = [
        str(root),
        str(tmp_path / "o"),
        "participant",
        "--dry-run",
        "--bids-database-dir",
        str(root / "db"),
    ]
    assert main(args) == 2
    assert "--bids-database-dir" in capsys.readouterr().err
    assert not (root / "db").exists()


def test_session_label_and_filter_session_conflict(dataset, tmp_path, capsys):
    dataset.asl("01", "1")
    dataset.m0("01", "1")
    filters = tmp_path / "f.json"
    filters.write_text(json.dumps({"asl": {"session": "1"}}))
    args = [
        str(dataset.root),
        str(tmp_path / "o"),
        "participant",
        "--dry-run",
        "--session-label",
        "1",
        "--bids-filter-file",
        str(filters),
    ]
    assert main(args) == 2
    assert "--session-label" in capsys.readouterr().err


def test_dry_run_piped_into_head_is_quiet(example, tmp_path):
    root = example("asl004")
    command = (
        f"{sys.executable} -m aslmig {root} {tmp_path / 'o'} participant --dry-run | head -n 1"
    )
    result = subprocess.run(command, shell=True, capture_output=True, text=True, timeout=120)
    assert result.stdout.startswith("aslmig dry run: 1 ASL run(s)")
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("plugin", "graph"),
    [("SLURMGraph", True), ("SGEGraph", True), ("SLURM", False), ("SGE", False), ("PBS", False),
     ("LSF", False), ("MultiProc", False), ("Linear", False)],
)  # fmt: skip
def test_graph_plugins_are_recognised(plugin, graph):
    """Graph plugins return once the jobs are queued: aslmig must not say 'finished'."""
    from aslmig.cli.execute import is_graph_plugin

    assert is_graph_plugin(plugin) is graph


def test_cluster_plugin_without_its_scheduler_exits_2(example, tmp_path, capsys, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "python3").symlink_to(sys.executable)
    monkeypatch.setenv("PATH", str(bin_dir))  # no sbatch
    root = example("asl005")
    out = tmp_path / "o"
    code = main([str(root), str(out), "participant", "--plugin", "SLURMGraph"])
    assert code == 2
    error = capsys.readouterr().err.strip()
    assert error.count("\n") == 0 and "SLURMGraph needs sbatch, which is not on PATH" in error
    assert not out.exists()


def test_failed_graph_submission_is_reported_as_an_error(tmp_path, capsys):
    from aslmig.cli.execute import report_submission

    failure = RuntimeError("Command:\nbash submit_jobs.sh\nsbatch: error: invalid partition")
    assert report_submission("SLURMGraph", 37, tmp_path, failure) == 1
    assert capsys.readouterr().err == (
        "aslmig: error: SLURMGraph could not submit the jobs: sbatch: error: invalid partition\n"
    )
    assert report_submission("SLURMGraph", 37, tmp_path, None) == 0
    assert "submitted the 37 steps" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("plugin", "seconds"), [("MultiProc", 0.1), ("SLURM", 2.0), ("Linear", 2.0)]
)
def test_multiproc_polls_ten_times_a_second_cluster_plugins_every_two(tmp_path, plugin, seconds):
    """nipype's 2 s sleep per pass cost 41 of 88 s on 4 simulated sessions; squeue keeps 2 s."""
    from aslmig.cli.execute import _nipype_settings
    from aslmig.config import ExecutionConfig, RunConfig

    config = RunConfig(
        "bids", str(tmp_path), "participant", execution=ExecutionConfig(plugin=plugin)
    )
    settings = _nipype_settings(config, tmp_path / "work")
    assert settings["execution"]["poll_sleep_duration"] == seconds
