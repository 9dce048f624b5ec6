"""Hostile command lines, file systems and environments (issue 17): one line, exit 2, no write.

Each case is run as a user would (``main`` with the arguments), and must give exit status
2, a single line on stderr without a traceback, leave the input dataset byte-for-byte
unchanged and leave OUTPUT_DIR as it was. The dataset-level cases are in
``tests/bids/test_broken_datasets.py``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from builders import tree_digest
from file_access import file_permissions_apply

from aslmig.cli.run import main

ASL = "sub-Sub103/perf/sub-Sub103_asl.nii.gz"
ASL_JSON = "sub-Sub103/perf/sub-Sub103_asl.json"


def _outputs(tmp_path: Path) -> dict:
    out = tmp_path / "out"
    return tree_digest(out) if out.is_dir() else {"exists": out.exists()}


def one_line_exit_2(capsys, args: list[str], words: list[str]) -> str:
    """Run aslmig; check exit 2 and one line on stderr naming every one of ``words``."""
    code = main(args)
    message = capsys.readouterr().err.strip()
    assert code == 2, (code, message)
    assert len(message.splitlines()) == 1 and "Traceback" not in message, message
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    return message


def refused(root: Path, tmp_path: Path, capsys, args: list[str], words: list[str]) -> str:
    """:func:`one_line_exit_2`, and the input and OUTPUT_DIR are unchanged."""
    before, outputs = tree_digest(root), _outputs(tmp_path)
    message = one_line_exit_2(capsys, args, words)
    assert tree_digest(root) == before
    assert _outputs(tmp_path) == outputs
    return message


def unreadable(path: Path, root: Path, tmp_path: Path, capsys, args, words) -> None:
    """Make ``path`` unreadable (mode 0) and check that aslmig refuses it in one line."""
    before, mode = tree_digest(root), path.stat().st_mode
    path.chmod(0)
    try:
        with file_permissions_apply():
            one_line_exit_2(capsys, args, [*words, "permission denied"])
    finally:
        path.chmod(mode)
    assert tree_digest(root) == before
    assert not (tmp_path / "out").exists()


def _file(path: Path) -> Path:
    path.write_text("not a folder")
    return path


# (id, setup(root, tmp_path) -> extra arguments, words)
PATH_CASES: list[tuple[str, Callable[[Path, Path], list[str]], list[str]]] = [
    ("output-dir-is-a-file", lambda r, t: [], ["OUTPUT_DIR", "is a file, not a folder"]),
    (
        "work-dir-is-a-file",
        lambda r, t: ["-w", str(_file(t / "work"))],
        ["--work-dir", "is a file, not a folder"],
    ),
    (
        "database-dir-is-a-file",
        lambda r, t: ["--bids-database-dir", str(_file(t / "db"))],
        ["--bids-database-dir", "is a file, not a folder"],
    ),
    (
        "work-dir-below-a-file",
        lambda r, t: ["-w", str(_file(t / "plain") / "work")],
        ["--work-dir", "plain is a file, not a folder"],
    ),
    (
        "config-file-is-a-folder",
        lambda r, t: ["--config-file", str(t / "config.toml")],
        ["config.toml", "is a folder, not a file"],
    ),
    (
        "work-dir-inside-output-dir",
        lambda r, t: ["-w", str(t / "out" / "work")],
        ["--work-dir", "lies inside OUTPUT_DIR"],
    ),
    (
        "path-not-utf8",
        lambda r, t: ["-w", str(t / "caf\udce9")],  # b"caf\xe9" as Linux hands it over
        ["work_dir", "is not valid UTF-8"],
    ),
    (
        "config-file-is-dev-zero",
        lambda r, t: ["--config-file", "/dev/zero"],
        ["/dev/zero", "not a regular file"],
    ),
    ("plugin-args-zero", lambda r, t: ["--plugin-args", '{"n_procs": 0}'], ["n_procs is 0"]),
    ("plugin-args-text", lambda r, t: ["--plugin-args", '{"n_procs": "two"}'], ["'two'"]),
    ("plugin-args-typo", lambda r, t: ["--plugin-args", '{"nprocs": 2}'], ["'nprocs'"]),
    ("plugin-args-null", lambda r, t: ["--plugin-args", '{"n_procs": null}'], ["null"]),
    ("mem-gb-tiny", lambda r, t: ["--mem-gb", "0.005"], ["--mem-gb", "0.005 GB"]),
    ("mem-gb-infinite", lambda r, t: ["--mem-gb", "inf"], ["--mem-gb", "'inf'"]),
    ("labeling-efficiency-nan", lambda r, t: ["--labeling-efficiency", "nan"], ["'nan'"]),
    (
        "filter-run-superscript",
        lambda r, t: ["--bids-filter-file", str(_json(t / "f.json", {"asl": {"run": "²"}}))],
        ["f.json", "asl.run is '²'", "integers"],
    ),
    (
        "filter-deeply-nested",
        lambda r, t: ["--bids-filter-file", str(_text(t / "f.json", "[" * 100_000))],
        ["f.json", "too deeply"],
    ),
]


def _json(path: Path, content: dict) -> Path:
    path.write_text(json.dumps(content))
    return path


def _text(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("setup", "words"), [case[1:] for case in PATH_CASES], ids=[case[0] for case in PATH_CASES]
)
def test_hostile_option_is_refused(example, tmp_path, capsys, setup, words):
    root = example("asl002")
    (tmp_path / "config.toml").mkdir()
    out = tmp_path / "out"
    if "OUTPUT_DIR" in words:
        _file(out)
    extra = setup(root, tmp_path)
    refused(root, tmp_path, capsys, [str(root), str(out), "participant", "--dry-run", *extra],
            words)  # fmt: skip


# Files made unreadable (chmod 000) or folders made unsearchable, one at a time.
UNREADABLE = [
    ("unreadable-sidecar", ASL_JSON, [ASL_JSON, "permission denied"]),
    ("unreadable-aslcontext", "sub-Sub103/perf/sub-Sub103_aslcontext.tsv", ["aslcontext.tsv"]),
    ("unreadable-m0-image", "sub-Sub103/perf/sub-Sub103_m0scan.nii.gz", ["m0scan.nii.gz"]),
    ("unreadable-dataset-description", "dataset_description.json", ["dataset_description"]),
    ("unreadable-perf-folder", "sub-Sub103/perf", ["sub-Sub103/perf", "permission denied"]),
]


@pytest.mark.parametrize(
    ("relative", "words"), [case[1:] for case in UNREADABLE], ids=[case[0] for case in UNREADABLE]
)
def test_unreadable_input_is_refused(example, tmp_path, capsys, relative, words):
    root = example("asl002")
    args = [str(root), str(tmp_path / "out"), "participant", "--dry-run"]
    unreadable(root / relative, root, tmp_path, capsys, args, words)


def test_unreadable_config_file_is_refused(example, tmp_path, capsys):
    root = example("asl002")
    config = tmp_path / "c.toml"
    config.write_text("[execution]\nnprocs = 2\n")
    args = [str(root), str(tmp_path / "out"), "participant", "--dry-run", "--config-file"]
    unreadable(config, root, tmp_path, capsys, [*args, str(config)], ["c.toml"])


def test_read_only_output_dir_is_refused_before_anything_runs(example, tmp_path, capsys):
    root = example("asl002")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o555)
    with file_permissions_apply():
        refused(root, tmp_path, capsys, [str(root), str(out), "participant", "--dry-run"],
                ["OUTPUT_DIR", "is not writable"])  # fmt: skip


def test_unreadable_participants_table_at_group_level(example, tmp_path, capsys):
    root = example("asl002")
    table = root / "participants.tsv"
    table.write_text("participant_id\tgroup\nsub-Sub103\tHC\n")
    args = [str(root), str(tmp_path / "out"), "group"]
    unreadable(table, root, tmp_path, capsys, args, ["participants.tsv"])


@pytest.mark.skipif(
    os.geteuid() == 0 and not shutil.which("setpriv"), reason="needs setpriv to drop root"
)
def test_unreadable_home_is_one_line(example, tmp_path):
    """pybids reads ~/pybids_config.json when it is imported: a fresh process is needed."""
    root = example("asl002")
    home = tmp_path / "home"
    home.mkdir(mode=0)
    prefix = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"]
    command = [*(prefix if os.geteuid() == 0 else []), sys.executable, "-m", "aslmig"]
    result = subprocess.run(
        [*command, str(root), str(tmp_path / "out"), "participant", "--dry-run"],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
        env={**os.environ, "HOME": str(home)},
    )  # fmt: skip
    assert result.returncode == 2, result.stderr
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "home" in message and "HOME" in message, message


def test_stale_database_dir_is_refused(example, tmp_path, capsys):
    """Files deleted or added after the index was built: refused, never a crash or a gap."""
    root = example("asl002")
    database = tmp_path / "db"
    args = [str(root), str(tmp_path / "out"), "participant", "--dry-run"]
    assert main([*args, "--bids-database-dir", str(database)]) == 0
    capsys.readouterr()
    (root / "sub-Sub103/perf/sub-Sub103_m0scan.json").unlink()
    words = ["--bids-database-dir", "older than the dataset", "sub-Sub103/perf", "delete"]
    refused(root, tmp_path, capsys, [*args, "--bids-database-dir", str(database)], words)


def test_git_annex_dataset_is_named_by_its_bids_paths(example, tmp_path, capsys):
    """DataLad/git-annex files are links into .git/annex/objects: plans name the BIDS path."""
    root = example("asl002")
    for relative in (ASL, "sub-Sub103/perf/sub-Sub103_m0scan.nii.gz"):
        path = root / relative
        key = f"MD5E-s{path.stat().st_size}--{abs(hash(relative)):032x}.nii.gz"
        content = root / ".git/annex/objects/Ab/Cd" / key / key
        content.parent.mkdir(parents=True)
        path.rename(content)
        path.symlink_to(os.path.relpath(content, path.parent))
    assert main([str(root), str(tmp_path / "out"), "participant", "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert f"series       {ASL}" in plan
    assert "M0           Separate: sub-Sub103/perf/sub-Sub103_m0scan.nii.gz" in plan
    assert ".git" not in plan
