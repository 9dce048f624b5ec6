"""pybids input layer: M0 matching, T1w choice, labels, sessions, inheritance."""

from __future__ import annotations

import json

import pytest
from builders import PCASL

from aslmig.bids.layout import collect_runs, normalise_labels, open_layout
from aslmig.errors import InputError


def only_run(root, **kwargs):
    runs = collect_runs(open_layout(root), **kwargs)
    assert len(runs) == 1
    return runs[0]


def test_m0_matched_by_entities(dataset):
    dataset.asl("01", acq="a")
    dataset.m0("01", acq="a")
    dataset.m0("01", acq="b")
    run = only_run(dataset.root)
    assert run.m0_file.name == "sub-01_acq-a_m0scan.nii.gz"
    assert run.m0_reason == "same entities as the run in perf/"
    assert run.m0_metadata.repetition_time_preparation == (6.0,)


@pytest.mark.parametrize(
    "intended_for", ["perf/sub-01_acq-a_asl.nii.gz", "bids::sub-01/perf/sub-01_acq-a_asl.nii.gz"]
)
def test_m0_matched_by_intended_for(dataset, intended_for):
    dataset.asl("01", acq="a")
    dataset.m0("01", acq="shared", intended_for=[intended_for])
    run = only_run(dataset.root)
    assert run.m0_file.name == "sub-01_acq-shared_m0scan.nii.gz"
    assert "IntendedFor" in run.m0_reason


def test_intended_for_wins_over_entities(dataset):
    dataset.asl("01")
    dataset.m0("01", intended_for="perf/sub-01_acq-other_asl.nii.gz")
    dataset.m0("01", acq="m0", intended_for="perf/sub-01_asl.nii.gz")
    assert only_run(dataset.root).m0_file.name == "sub-01_acq-m0_m0scan.nii.gz"


def test_two_m0_scans_naming_the_run_are_ambiguous(dataset):
    dataset.asl("01")
    dataset.m0("01", acq="x", intended_for="perf/sub-01_asl.nii.gz")
    dataset.m0("01", acq="y", intended_for="perf/sub-01_asl.nii.gz")
    with pytest.raises(InputError, match="several M0 scans"):
        collect_runs(open_layout(dataset.root))


def test_pepolar_m0_in_fmap_is_recorded(dataset):
    dataset.asl("01")
    m0 = dataset.m0("01")
    dataset.m0("01", datatype="fmap", dir="PA", intended_for="perf/" + m0.name)
    run = only_run(dataset.root)
    assert run.m0_file == m0
    assert [path.name for path in run.pepolar_m0_files] == ["sub-01_dir-PA_m0scan.nii.gz"]


def test_t1w_same_session_first(dataset):
    for session in ("1", "2"):
        dataset.asl("01", session)
        dataset.m0("01", session)
        dataset.t1w("01", session)
    runs = collect_runs(open_layout(dataset.root))
    assert [run.t1w_file.name for run in runs] == [
        "sub-01_ses-1_T1w.nii.gz",
        "sub-01_ses-2_T1w.nii.gz",
    ]
    assert all(run.t1w_reason == "same session" for run in runs)


def test_t1w_from_another_session(dataset):
    dataset.asl("01", "2")
    dataset.m0("01", "2")
    dataset.t1w("01", "1")
    run = only_run(dataset.root)
    assert run.t1w_file.name == "sub-01_ses-1_T1w.nii.gz"
    assert run.t1w_reason == "from session 1; none in session 2"


def test_no_t1w(dataset):
    dataset.asl("01")
    dataset.m0("01")
    run = only_run(dataset.root)
    assert run.t1w_file is None
    assert "directly to the template" in run.t1w_reason


def test_session_and_participant_selection(dataset):
    for subject in ("01", "02"):
        for session in ("1", "2"):
            dataset.asl(subject, session)
            dataset.m0(subject, session)
    runs = collect_runs(open_layout(dataset.root), ["02"], ["2"])
    assert [(run.subject, run.session) for run in runs] == [("02", "2")]


def test_unknown_participant(dataset):
    dataset.asl("01")
    dataset.m0("01")
    with pytest.raises(InputError, match="no participant '07'.*available: 01"):
        collect_runs(open_layout(dataset.root), ["07"])


def test_inheritance_principle(dataset):
    (dataset.root / "asl.json").write_text(json.dumps(PCASL))
    dataset.asl("01", sidecar={"PostLabelingDelay": 2.0})
    dataset.m0("01")
    run = only_run(dataset.root)
    assert run.metadata.post_labeling_delay == (2.0,) * 4
    assert run.metadata.labeling_type == "PCASL"
    assert [path.name for path in run.sidecar_files] == ["asl.json", "sub-01_asl.json"]


@pytest.mark.parametrize(
    ("given", "expected"), [(["01", "sub-02", "01"], ["01", "02"]), (None, None)]
)
def test_normalise_labels(given, expected):
    assert normalise_labels(given, "sub-", "--participant-label") == expected


@pytest.mark.parametrize("hostile", ["../01", "01/../../etc", "sub-01;rm", "", "0 1"])
def test_labels_refuse_path_tricks(hostile):
    with pytest.raises(InputError, match="not a BIDS label"):
        normalise_labels([hostile], "sub-", "--participant-label")


def test_not_a_bids_dataset(tmp_path):
    with pytest.raises(InputError, match="dataset_description.json"):
        open_layout(tmp_path)


def test_metadata_properties(dataset):
    sidecar = dict(PCASL)
    sidecar["PostLabelingDelay"] = [0.5, 0.5, 1.5, 1.5, 0.0]
    sidecar["LabelingDuration"] = [1.8, 1.8, 1.8, 1.8, 0.0]
    sidecar["M0Type"] = "Included"
    dataset.asl(
        "01", sidecar=sidecar, volume_types=("control", "label", "control", "label", "m0scan")
    )
    meta = only_run(dataset.root).metadata
    assert meta.signal_plds == (0.5, 1.5)
    assert meta.is_multi_delay
    assert meta.volume_counts == {"control": 2, "label": 2, "m0scan": 1}
    assert meta.n_volumes == 5
