"""The saved pybids index (``--bids-database-dir``): built once, then reused as it is."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from bids.layout.index import BIDSLayoutIndexer
from bids_validator import BIDSValidator

from aslmig.bids.layout import _compiled_validator, collect_runs, open_layout
from aslmig.errors import InputError

DATABASE_FILE = "layout_index.sqlite"


def build(dataset, subjects=("01", "02", "03")) -> Path:
    for subject in subjects:
        dataset.asl(subject, session="1")
        dataset.m0(subject, session="1")
        dataset.t1w(subject, session="1")
    return dataset.root


def described(runs) -> list[tuple]:
    return [(run, run.entities, run.sidecar) for run in runs]


def test_database_is_built_once_then_reused(dataset, tmp_path, monkeypatch):
    root = build(dataset)
    database = tmp_path / "db"
    first = collect_runs(open_layout(root, database), participant_labels=["02"])
    index_file = database / DATABASE_FILE
    assert index_file.is_file()
    stamp = index_file.stat()

    def no_reindexing(self, layout):
        raise AssertionError("pybids indexed the dataset again")

    monkeypatch.setattr(BIDSLayoutIndexer, "__call__", no_reindexing)
    second = collect_runs(open_layout(root, database), participant_labels=["02"])
    assert sorted(path.name for path in database.iterdir()) == [DATABASE_FILE]
    after = index_file.stat()
    assert (after.st_ino, after.st_mtime_ns, after.st_size) == (
        stamp.st_ino,
        stamp.st_mtime_ns,
        stamp.st_size,
    )
    assert described(second) == described(first)
    monkeypatch.undo()
    assert described(collect_runs(open_layout(root), participant_labels=["02"])) == described(first)


def test_reused_database_gives_every_participant(dataset, tmp_path):
    root = build(dataset)
    database = tmp_path / "db"
    fresh = collect_runs(open_layout(root, database))
    reused = collect_runs(open_layout(root, database))
    assert [run.subject for run in reused] == ["01", "02", "03"]
    assert described(reused) == described(fresh)


def test_participant_selection_does_not_list_every_subject(dataset, tmp_path, monkeypatch):
    root = build(dataset)
    layout = open_layout(root, tmp_path / "db")

    def listing(*args, **kwargs):
        raise AssertionError("get_subjects() walks every indexed file")

    monkeypatch.setattr(type(layout), "get_subjects", listing, raising=False)
    runs = collect_runs(layout, participant_labels=["03", "01"])
    assert [run.subject for run in runs] == ["03", "01"]
    monkeypatch.undo()
    with pytest.raises(InputError) as error:
        collect_runs(layout, participant_labels=["01", "nobody"])
    assert "no participant 'nobody' in the dataset" in str(error.value.message)
    assert "available: 01, 02, 03" in str(error.value.message)


@pytest.mark.parametrize(
    "path",
    [
        "/sub-01/ses-1/perf/sub-01_ses-1_asl.nii.gz",
        "/sub-01/ses-1/perf/sub-01_ses-1_aslcontext.tsv",
        "/sub-01/perf/sub-01_acq-a_m0scan.json",
        "/sub-01/anat/sub-01_T1w.nii.gz",
        "/participants.tsv",
        "/dataset_description.json",
        "/sub-01/perf/sub-01_foo.nii.gz",
        "/sub-01/anat/sub-01_acq-23_rec-CSD_T1w.exe",
        "/notbids.txt",
    ],
)
def test_compiled_validator_agrees_with_bids_validator(path):
    assert _compiled_validator().parse(path) == BIDSValidator.parse(path)
    assert _compiled_validator().is_bids(path) == BIDSValidator.is_bids(path)


def test_indexing_does_not_recompile_patterns_per_file(dataset, monkeypatch):
    """numpy.f2py shrinks the ``re`` cache to 50; indexing must not recompile per file."""
    root = build(dataset, subjects=[f"{number:02d}" for number in range(8)])
    BIDSValidator._init_regexes()
    n_patterns = len(BIDSValidator.regexes)
    _compiled_validator()  # compiled once per process, not counted here
    compiled: list[str] = []
    original = re._compiler.compile

    def counting(pattern, flags=0):
        compiled.append(pattern)
        return original(pattern, flags)

    monkeypatch.setattr(re, "_MAXCACHE", 50)
    monkeypatch.setattr(re._compiler, "compile", counting)
    re.purge()
    open_layout(root)
    assert len(compiled) < n_patterns



def test_an_index_of_another_dataset_is_refused(tmp_path):
    from builders import DatasetBuilder

    first = build(DatasetBuilder(tmp_path / "a"))
    second = build(DatasetBuilder(tmp_path / "b"), subjects=("07",))
    database = tmp_path / "db"
    open_layout(first, database)
    with pytest.raises(InputError, match="holds the index of another dataset"):
        open_layout(second, database)
