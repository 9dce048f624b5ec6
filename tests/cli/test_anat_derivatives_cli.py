"""``--derivatives anat=PATH``: parsing, dry-run plan and one-line errors before any output."""

from __future__ import annotations

import pytest
from fmriprep_like import tiny_anatomy, write_anatomy

from aslmig.atlas.templates import resolve_template
from aslmig.cli.demo import example_dataset
from aslmig.cli.run import main


def derivatives(tmp_path, subjects=("hc01", "mwa01"), space=None):
    files = tiny_anatomy(tmp_path / "source")
    for subject in subjects:
        write_anatomy(tmp_path / "fmriprep", subject, files, space or resolve_template().space)
    return tmp_path / "fmriprep"


def run(tmp_path, *options):
    output = tmp_path / "out"
    status = main([str(example_dataset()), str(output), "participant", "--dry-run", *options])
    return status, output


def test_the_plan_names_the_derivative_files(tmp_path, capsys):
    status, output = run(tmp_path, "--derivatives", f"anat={derivatives(tmp_path)}")
    assert status == 0
    plan = capsys.readouterr().out
    assert plan.count("fMRIPrep 24.1.1 derivatives in") == 3  # three runs
    assert "anatomy stage is skipped" in plan
    assert "sub-mwa01/anat/sub-mwa01_desc-brain_mask.nii.gz" in plan
    assert not output.exists()


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda tmp: derivatives(tmp, subjects=("hc01",)), "holds no sub-mwa01"),
        (lambda tmp: derivatives(tmp, space="MNI152NLin6Asym"), "only to MNI152NLin6Asym"),
        (lambda tmp: tmp / "nowhere", "is not a folder"),
    ],
    ids=["no-match-for-participant", "wrong-template", "no-folder"],
)
def test_errors_are_one_line_with_exit_2_and_nothing_written(tmp_path, capsys, make, expected):
    status, output = run(tmp_path, "--derivatives", f"anat={make(tmp_path)}")
    assert status == 2
    error = capsys.readouterr().err.strip()
    assert expected in error
    assert len(error.splitlines()) == 1
    assert not output.exists()


def test_an_unknown_derivative_kind_is_a_usage_error(tmp_path, capsys):
    status, _ = run(tmp_path, "--derivatives", f"func={tmp_path}")
    assert status == 2
    assert "is not NAME=PATH with NAME one of anat" in capsys.readouterr().err
