"""Fast tests of the SLURM script generator (``aslmig slurm``): content, quoting, syntax."""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from aslmig.cli.run import main
from aslmig.errors import InputError
from aslmig.hpc.slurm import (
    GROUP_SCRIPT,
    PARTICIPANT_SCRIPT,
    PARTICIPANTS_FILE,
    SUBMIT_SCRIPT,
    SlurmOptions,
    render_scripts,
    split_args,
    write_scripts,
)

LABELS = ["hc01", "mwa01", "mwoa01"]


def _options(tmp_path: Path, **changes) -> SlurmOptions:
    values = {
        "bids_dir": tmp_path / "my bids",
        "output_dir": tmp_path / "derivatives",
        "script_dir": tmp_path / "scripts",
        "work_dir": tmp_path / "work",
        "venv": tmp_path / "venv",
    }
    values.update(changes)
    return SlurmOptions(**values)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """A tiny simulated 3-participant dataset (one session each)."""
    root = tmp_path_factory.mktemp("hpc_dataset") / "bids"
    status = main(
        [
            "simulate",
            str(root),
            "--n",
            "HC=1",
            "MwA=1",
            "MwoA=1",
            "--phases",
            "interictal",
            "--voxel",
            "8",
            "--pairs",
            "1",
        ]
    )
    assert status == 0
    return root


def _bash_syntax(path: Path) -> None:
    result = subprocess.run(["bash", "-n", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------- rendering


def test_array_size_and_throttle(tmp_path):
    scripts = render_scripts(_options(tmp_path, max_parallel=2), LABELS)
    assert "#SBATCH --array=1-3%2\n" in scripts[PARTICIPANT_SCRIPT]
    assert scripts[PARTICIPANTS_FILE] == "hc01\nmwa01\nmwoa01\n"
    small = render_scripts(_options(tmp_path, max_parallel=50), LABELS[:1])
    assert "#SBATCH --array=1-1%1\n" in small[PARTICIPANT_SCRIPT]


def test_resources_and_task_command(tmp_path):
    options = _options(
        tmp_path, cpus_per_task=3, mem_gb=7, time="1-02:00:00", partition="short", account="lab_1"
    )
    script = render_scripts(options, LABELS)[PARTICIPANT_SCRIPT]
    for line in (
        "#SBATCH --cpus-per-task=3",
        "#SBATCH --mem=7G",
        "#SBATCH --time=1-02:00:00",
        "#SBATCH --partition=short",
        "#SBATCH --account=lab_1",
    ):
        assert line in script
    assert 'sed -n "${SLURM_ARRAY_TASK_ID}p"' in script
    assert '--participant-label "$label"' in script
    assert '--nprocs "${SLURM_CPUS_PER_TASK:-1}"' in script
    assert "--mem-gb 7" in script
    assert 'export LOGNAME="${LOGNAME:-$(id -un)}"' in script


def test_submit_wires_dependency(tmp_path):
    submit = render_scripts(_options(tmp_path), LABELS)[SUBMIT_SCRIPT]
    assert "array_id=$(sbatch --parsable" in submit
    assert '--dependency="afterok:${array_id}"' in submit
    assert submit.index(PARTICIPANT_SCRIPT) < submit.index(GROUP_SCRIPT)


def test_paths_with_spaces_are_quoted(tmp_path):
    scripts = render_scripts(_options(tmp_path), LABELS)
    bids = str(tmp_path / "my bids")
    assert shlex.quote(bids) in scripts[PARTICIPANT_SCRIPT]
    assert shlex.quote(bids) in scripts[GROUP_SCRIPT]
    # The shell sees the path as one word.
    command_line = scripts[GROUP_SCRIPT].split("\n")[-7:]
    words = shlex.split(" ".join(line.rstrip("\\") for line in command_line))
    assert bids in words


def test_venv_launcher(tmp_path):
    scripts = render_scripts(_options(tmp_path), LABELS)
    aslmig = shlex.quote(str(tmp_path / "venv" / "bin" / "aslmig"))
    assert aslmig in scripts[PARTICIPANT_SCRIPT]
    assert "apptainer" not in scripts[PARTICIPANT_SCRIPT]


def test_container_launcher(tmp_path):
    image = tmp_path / "aslmig.sif"
    home = tmp_path / "templateflow"
    options = _options(tmp_path, venv=None, container=image, templateflow_home=home)
    scripts = render_scripts(options, LABELS)
    for script in (scripts[PARTICIPANT_SCRIPT], scripts[GROUP_SCRIPT]):
        assert "apptainer run --cleanenv" in script
        assert f"--env TEMPLATEFLOW_HOME={home}" in script
        assert f"-B {tmp_path / 'derivatives'}:{tmp_path / 'derivatives'}" in script
        assert f"{tmp_path / 'work'}:{tmp_path / 'work'}" in script
        assert str(image) in script


def test_database_dir_is_passed_to_participant_tasks_and_bound(tmp_path):
    database = tmp_path / "pybids index"
    options = _options(tmp_path, venv=None, container=tmp_path / "a.sif",
                       bids_database_dir=database)  # fmt: skip
    scripts = render_scripts(options, LABELS)
    assert f"--bids-database-dir {shlex.quote(str(database))}" in scripts[PARTICIPANT_SCRIPT]
    assert shlex.quote(f"{database}:{database}") in scripts[PARTICIPANT_SCRIPT]
    assert "--bids-database-dir" not in scripts[GROUP_SCRIPT].split(str(options.container))[1]
    without = render_scripts(_options(tmp_path), LABELS)[PARTICIPANT_SCRIPT]
    assert "--bids-database-dir" not in without


def test_extra_and_group_args(tmp_path):
    options = _options(
        tmp_path,
        extra_args=split_args("--atlas harvard_oxford 'a b'", "--extra-args"),
        group_args=split_args("--no-voxelwise --permutations 10", "--group-args"),
    )
    scripts = render_scripts(options, LABELS)
    assert "--atlas \\\n    harvard_oxford \\\n    'a b'" in scripts[PARTICIPANT_SCRIPT]
    assert "--no-voxelwise" in scripts[GROUP_SCRIPT]
    assert "--no-voxelwise" not in scripts[PARTICIPANT_SCRIPT]


def test_written_scripts_pass_bash_syntax_check(tmp_path):
    for options in (
        _options(tmp_path),
        _options(tmp_path, venv=None, container=tmp_path / "a.sif", templateflow_home=tmp_path),
    ):
        written = write_scripts(options, LABELS)
        for name in (PARTICIPANT_SCRIPT, GROUP_SCRIPT, SUBMIT_SCRIPT):
            _bash_syntax(written[name])


def test_hostile_path_stays_one_word(tmp_path):
    hostile = tmp_path / "x'; touch pwned; echo '$(id)`id`"
    written = write_scripts(_options(tmp_path, output_dir=hostile), LABELS)
    script = written[GROUP_SCRIPT].read_text()
    assert shlex.quote(str(hostile)) in script
    _bash_syntax(written[GROUP_SCRIPT])


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("changes", "option"),
    [
        ({"time": "forever"}, "--time"),
        ({"time": "1:00; rm"}, "--time"),
        ({"partition": "a b"}, "--partition"),
        ({"partition": "short\n#SBATCH --uid=0"}, "--partition"),
        ({"partition": "short\n"}, "--partition"),
        ({"time": "1:00:00\n"}, "--time"),
        ({"account": "x\n#SBATCH --uid=0"}, "--account"),
        ({"cpus_per_task": 0}, "--cpus-per-task"),
        ({"mem_gb": -1}, "--mem-gb"),
        ({"output_dir": Path("relative")}, "OUTPUT_DIR"),
        ({"output_dir": Path("/tmp/a\nb")}, "OUTPUT_DIR"),
        ({"venv": None}, "--venv"),
        ({"container": Path("/x.sif")}, "--container"),
        ({"venv": None, "container": Path("/x.sif"), "work_dir": Path("/a:b")}, "--work-dir"),
        ({"extra_args": ("a\nb",)}, "--extra-args"),
    ],
)
def test_bad_options_are_refused(tmp_path, changes, option):
    with pytest.raises(InputError) as error:
        write_scripts(_options(tmp_path, **changes), LABELS)
    assert error.value.source == option
    assert not (tmp_path / "scripts").exists()


@pytest.mark.parametrize("label", ["a b", "x;y", "sub-01", "", "a\nb", "01\n"])
def test_bad_labels_are_refused(tmp_path, label):
    with pytest.raises(InputError):
        render_scripts(_options(tmp_path), [*LABELS, label])


@pytest.mark.parametrize(
    "text", ["--participant-label 01", "-w /tmp", "--nprocs=4", "'unclosed", "a\rb"]
)
def test_bad_extra_args_are_refused(text):
    with pytest.raises(InputError):
        split_args(text, "--extra-args")


# --------------------------------------------------------------------------- command line


def _slurm(args: list[str]) -> int:
    return main(["slurm", *args])


def test_command_writes_scripts_for_dataset(dataset, tmp_path, capsys):
    out = tmp_path / "out dir"
    status = _slurm(
        [str(dataset), str(tmp_path / "deriv"), "--venv", sys.prefix, "--out-dir", str(out)]
    )
    assert status == 0
    assert (out / PARTICIPANTS_FILE).read_text() == "hc01\nmwa01\nmwoa01\n"
    printed = capsys.readouterr().out
    assert f"bash {out / SUBMIT_SCRIPT}" in printed
    for name in (PARTICIPANT_SCRIPT, GROUP_SCRIPT, SUBMIT_SCRIPT):
        _bash_syntax(out / name)


def test_command_builds_the_index_once_for_every_task(dataset, tmp_path):
    database = tmp_path / "index"
    out = tmp_path / "scripts"
    args = [str(dataset), str(tmp_path / "d"), "--out-dir", str(out),
            "--bids-database-dir", str(database)]  # fmt: skip
    assert _slurm(args) == 0
    index = sorted(database.iterdir())
    assert index, "the index is built before the jobs are submitted"
    assert f"--bids-database-dir {database}" in (out / PARTICIPANT_SCRIPT).read_text()
    stamps = [path.stat().st_mtime_ns for path in index]
    assert _slurm(args) == 0
    assert [path.stat().st_mtime_ns for path in sorted(database.iterdir())] == stamps


def test_command_label_filter(dataset, tmp_path):
    out = tmp_path / "filtered"
    args = [str(dataset), str(tmp_path / "d"), "--out-dir", str(out)]
    assert _slurm([*args, "--participant-label", "sub-mwoa01", "hc01"]) == 0
    assert (out / PARTICIPANTS_FILE).read_text() == "mwoa01\nhc01\n"
    assert "#SBATCH --array=1-2%2" in (out / PARTICIPANT_SCRIPT).read_text()


@pytest.mark.parametrize(
    "extra",
    [
        ["--participant-label", "nobody"],
        ["--participant-label", "a;b"],
        ["--time", "soon"],
        ["--cpus-per-task", "0"],
        ["--venv", "/nonexistent/venv"],
        ["--container", "/nonexistent/aslmig.sif"],
        ["--extra-args=-w /elsewhere"],
        ["--extra-args=--bids-database-dir /elsewhere"],
        ["--partition", "$(reboot)"],
    ],
)
def test_command_bad_input_exit_2_nothing_written(dataset, tmp_path, capsys, extra):
    out = tmp_path / "never"
    status = _slurm([str(dataset), str(tmp_path / "d"), "--out-dir", str(out), *extra])
    assert status == 2
    error = capsys.readouterr().err.strip()
    assert error and "\n" not in error
    assert not out.exists()


def test_command_refuses_non_bids_dir(tmp_path, capsys):
    out = tmp_path / "never"
    assert _slurm([str(tmp_path), str(tmp_path / "d"), "--out-dir", str(out)]) == 2
    assert "dataset_description.json" in capsys.readouterr().err
    assert not out.exists()
