"""Command-line parsing: one parser class, shared type helpers, sub-commands vs dataset paths."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

import pytest

from aslmig.cli.parser import (
    CommandParser,
    UsageError,
    json_object,
    number,
    positive_float,
    positive_int,
    whole_number,
)
from aslmig.cli.run import HELPER_COMMANDS, helper_command, main


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["demo"], "demo"),
        (["demo", "somewhere", "--dry-run"], "demo"),
        (["demo", "--help"], "demo"),
        (["slurm", "bids", "out", "--participant-label", "01"], "slurm"),
        (["simulate", "cohort"], "simulate"),
        (["power", "--n", "10", "20"], "power"),
        (["templates", "list"], "templates"),
        (["demo", "out", "participant"], None),
        (["slurm", "out", "group", "--group-label", "x"], None),
        (["--nprocs", "2", "power", "out", "participant"], None),
        (["templates", "out", "participant", "--no-such-option"], None),
        (["bids", "out", "participant"], None),
        ([], None),
    ],
)
def test_helper_command_or_bids_app_call(argv, command):
    assert helper_command(argv) == command


@pytest.mark.parametrize("name", sorted(HELPER_COMMANDS))
def test_dataset_named_like_a_helper_command_is_a_dataset(
    name, example, tmp_path, monkeypatch, capsys
):
    """Issue 15 item 10: ``aslmig demo OUT participant`` processes the folder ./demo."""
    root = example("asl005")
    shutil.move(root, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    assert main([name, "out", "participant", "--dry-run"]) == 0
    captured = capsys.readouterr()
    assert captured.out.startswith("aslmig dry run: 1 ASL run(s)"), captured.err
    assert not (tmp_path / "out").exists()


def test_every_command_reports_usage_errors_alike(capsys):
    for argv in (["demo", "a", "b"], ["power", "--n", "two"], ["simulate"], ["templates"]):
        assert main(argv) == 2
        error = capsys.readouterr().err.strip()
        assert len(error.splitlines()) == 1 and error.startswith(f"aslmig {argv[0]}: "), error
        assert "--help" in error


@pytest.mark.parametrize(
    ("convert", "text", "value"),
    [
        (whole_number, "-3", -3),
        (number, "1e-3", 1e-3),
        (positive_int, "4", 4),
        (positive_float, "0.5", 0.5),
        (json_object, '{"a.b": [1, "x"]}', {"a.b": [1, "x"]}),
    ],
)
def test_type_helpers_accept(convert, text, value):
    assert convert(text) == value


@pytest.mark.parametrize(
    ("convert", "text"),
    [
        (whole_number, "two"),
        (whole_number, "1.5"),
        (whole_number, "²"),
        (number, "nan"),
        (number, "inf"),
        (number, "x"),
        (positive_int, "0"),
        (positive_float, "-1"),
        (positive_float, "inf"),
        (json_object, "[1]"),
        (json_object, '{"n_procs": NaN}'),
        (json_object, '{"a": null}'),
        (json_object, '{"a": [1, null]}'),
        (json_object, "[" * 100_000),
    ],
)
def test_type_helpers_refuse(convert, text):
    with pytest.raises(argparse.ArgumentTypeError):
        convert(text)


def test_one_parser_class_for_every_command():
    import aslmig.cli

    folder = Path(aslmig.cli.__file__).parent
    sources = "".join(path.read_text() for path in sorted(folder.glob("*.py")))
    assert sources.count("(argparse.ArgumentParser):") == 1
    parser = CommandParser(prog="aslmig x")
    with pytest.raises(UsageError, match=r"^aslmig x: .* \(see aslmig x --help\)$"):
        parser.parse_args(["--nope"])


@pytest.mark.parametrize(
    "args",
    [
        ["--participant-label", "01\n"],
        ["--participant-label", "sub-01\n"],
        ["--session-label", "1\n"],
        ["--participant-label", "²"],
    ],
)
def test_labels_with_a_trailing_newline_are_refused(example, tmp_path, capsys, args):
    root = example("asl005")
    assert main([str(root), str(tmp_path / "out"), "participant", "--dry-run", *args]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "is not a BIDS label" in error
    assert not (tmp_path / "out").exists()


def test_group_label_with_a_trailing_newline_is_refused(example, tmp_path, capsys):
    root = example("asl005")
    out = tmp_path / "out"
    assert main([str(root), str(out), "group", "--group-label", "x\n"]) == 2
    error = capsys.readouterr().err.strip()
    assert len(error.splitlines()) == 1 and "--group-label" in error
    assert not (out / "group").exists()
