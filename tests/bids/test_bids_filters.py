"""Each example filter file in bids_filters/ selects what its name says, and only that."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from aslmig.bids.filters import load_bids_filters
from aslmig.bids.layout import collect_runs, open_layout
from aslmig.errors import InputError

FILTERS = Path(__file__).parents[2] / "bids_filters"
PASL = {
    "ArterialSpinLabelingType": "PASL",
    "PostLabelingDelay": 1.8,
    "BolusCutOffFlag": True,
    "BolusCutOffDelayTime": 0.8,
    "BolusCutOffTechnique": "QUIPSSII",
    "BackgroundSuppression": False,
    "M0Type": "Separate",
    "TotalAcquiredPairs": 2,
    "RepetitionTimePreparation": 4.0,
    "MagneticFieldStrength": 3,
    "MRAcquisitionType": "3D",
    "EchoTime": 0.012,
}


@pytest.fixture
def mixed(dataset):
    """Two sessions; PCASL and PASL; with and without acq/run entities."""
    for session in ("baseline", "followup"):
        dataset.asl("01", session)
        dataset.m0("01", session)
        dataset.t1w("01", session)
        dataset.asl("01", session, acq="3d")
        dataset.m0("01", session, acq="3d")
        dataset.asl("01", session, sidecar=PASL, acq="pasl", run="1")
        dataset.m0("01", session, acq="pasl", run="1")
    return dataset.root


def selected(root: Path, filter_name: str) -> list[str]:
    filters = load_bids_filters(FILTERS / filter_name)
    runs = collect_runs(open_layout(root), filters=filters)
    return sorted(run.asl_file.name for run in runs)


def test_every_filter_file_is_tested():
    tested = {
        "pcasl_only.json",
        "session_baseline.json",
        "acquisition_3d.json",
        "no_acquisition_entity.json",
        "3d_runs_with_run_entity.json",
    }
    assert {path.name for path in FILTERS.glob("*.json")} == tested


def test_pcasl_only(mixed):
    names = selected(mixed, "pcasl_only.json")
    assert len(names) == 4
    assert not any("acq-pasl" in name for name in names)


def test_session_baseline(mixed):
    filters = load_bids_filters(FILTERS / "session_baseline.json")
    runs = collect_runs(open_layout(mixed), filters=filters)
    assert len(runs) == 3
    assert {run.session for run in runs} == {"baseline"}
    assert all("ses-baseline" in run.t1w_file.name for run in runs)


def test_acquisition_3d(mixed):
    assert selected(mixed, "acquisition_3d.json") == [
        "sub-01_ses-baseline_acq-3d_asl.nii.gz",
        "sub-01_ses-followup_acq-3d_asl.nii.gz",
    ]


def test_no_acquisition_entity(mixed):
    assert selected(mixed, "no_acquisition_entity.json") == [
        "sub-01_ses-baseline_asl.nii.gz",
        "sub-01_ses-followup_asl.nii.gz",
    ]


def test_3d_runs_with_run_entity(mixed):
    assert selected(mixed, "3d_runs_with_run_entity.json") == [
        "sub-01_ses-baseline_acq-pasl_run-1_asl.nii.gz",
        "sub-01_ses-followup_acq-pasl_run-1_asl.nii.gz",
    ]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ({"bold": {"session": "1"}}, ["unknown query 'bold'"]),
        ({"asl": {"sesion": "1"}}, ["unknown entity 'sesion'"]),
        ({"asl": {"session": {"a": 1}}}, ["asl.session"]),
        ({"asl": ["session"]}, ["asl must map entity names"]),
        ({"asl": {"run": "one"}}, ["asl.run", "integers"]),
        ({"asl": {"subject": "01"}}, ["--participant-label"]),
        ({"asl": {"suffix": "bold"}}, ["unknown entity 'suffix'"]),
        ({"t1w": {"ArterialSpinLabelingType": "PCASL"}}, ["only filter the asl query"]),
    ],
)
def test_invalid_filter_files(tmp_path, content, words):
    path = tmp_path / "filters.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InputError) as raised:
        load_bids_filters(path)
    for word in [str(path), *words]:
        assert word in raised.value.message


def test_missing_filter_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        load_bids_filters(tmp_path / "nope.json")
