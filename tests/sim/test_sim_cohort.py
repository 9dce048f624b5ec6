"""``simulate_cohort``: a valid, deterministic ASL-BIDS dataset with its ground truth."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
import pytest

from aslmig.cli.run import main
from aslmig.sim import CohortSpec, parse_effect, simulate_cohort

EFFECT = "MwA:ictal:occipital_cortex_L=-0.15"


def _spec(atlas, **kwargs) -> CohortSpec:
    base = dict(
        n_per_group={"HC": 1, "MwA": 1, "MwoA": 1},
        phases=("interictal", "ictal"),
        effects=(parse_effect(EFFECT),),
        pairs=2,
        t1w_voxel_mm=3.0,
        atlas=atlas,
        seed=7,
    )
    return CohortSpec(**{**base, **kwargs})


def _checksums(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def cohort(tmp_path_factory, anatomy, atlas):
    root = tmp_path_factory.mktemp("cohort") / "bids"
    return simulate_cohort(root, _spec(atlas), anatomy=anatomy)


def test_same_seed_writes_identical_files(cohort, tmp_path, anatomy, atlas):
    again = simulate_cohort(tmp_path / "again", _spec(atlas), anatomy=anatomy)
    first, second = _checksums(cohort.bids_dir), _checksums(again.bids_dir)
    assert len(first) > 40
    assert first == second
    other = simulate_cohort(tmp_path / "other", _spec(atlas, seed=8), anatomy=anatomy)
    changed = _checksums(other.bids_dir)
    asl = "sub-mwa01/ses-2/perf/sub-mwa01_ses-2_asl.nii.gz"
    assert changed[asl] != first[asl]


def test_dataset_passes_validation_and_dry_run(cohort, tmp_path, capsys):
    assert main([str(cohort.bids_dir), str(tmp_path / "out"), "participant", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "aslmig dry run: 5 ASL run(s)" in out
    assert not (tmp_path / "out").exists()


def test_participants_and_sessions_tables(cohort):
    root = cohort.bids_dir
    participants = pd.read_csv(
        root / "participants.tsv", sep="\t", dtype=str, keep_default_na=False
    )
    assert list(participants.columns) == [
        "participant_id",
        "group",
        "age",
        "sex",
        "aura_side_typical",
    ]
    assert list(participants["participant_id"]) == ["sub-hc01", "sub-mwa01", "sub-mwoa01"]
    assert list(participants["group"]) == ["HC", "MwA", "MwoA"]
    assert participants["sex"].isin(["F", "M"]).all()
    assert participants["age"].astype(int).between(20, 55).all()
    sides = dict(zip(participants["group"], participants["aura_side_typical"], strict=True))
    assert sides["MwA"] in ("left", "right") and sides["HC"] == sides["MwoA"] == "n/a"
    assert set(json.loads((root / "participants.json").read_text())) == set(participants.columns)
    sessions = pd.read_csv(
        root / "sub-mwa01" / "sub-mwa01_sessions.tsv", sep="\t", dtype=str, keep_default_na=False
    )
    assert list(sessions.columns) == [
        "session_id",
        "migraine_phase",
        "hours_since_attack_onset",
        "hours_to_next_attack_onset",
    ]
    assert list(sessions["session_id"]) == ["ses-1", "ses-2"]
    assert list(sessions["migraine_phase"]) == ["interictal", "ictal"]
    assert sessions["hours_since_attack_onset"][0] == "n/a"
    assert 0.5 <= float(sessions["hours_since_attack_onset"][1]) <= 24
    assert set(sessions["hours_to_next_attack_onset"]) == {"n/a"}  # no preictal session
    control = pd.read_csv(
        root / "sub-hc01" / "sub-hc01_sessions.tsv", sep="\t", dtype=str, keep_default_na=False
    )
    assert list(control["migraine_phase"]) == ["interictal"]


def test_truth_layout(cohort):
    truth = cohort.truth_dir
    description = json.loads((truth / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    parameters = json.loads((truth / "simulation.json").read_text())
    assert parameters["spec"]["seed"] == 7
    assert parameters["spec"]["effects"][0]["roi"] == "occipital_cortex_L"
    effects = pd.read_csv(truth / "effects.tsv", sep="\t", keep_default_na=False)
    assert effects.astype(str).to_dict("records") == [
        {
            "group": "MwA",
            "phase": "ictal",
            "roi": "occipital_cortex_L",
            "change": "-0.15",
            "profile": "n/a",
            "tissue": "GM",
        }
    ]
    factors = pd.read_csv(truth / "region_factors.tsv", sep="\t")
    assert len(factors) == 3 * 4
    perf = truth / "sub-mwa01" / "ses-2" / "perf"
    for name in (
        "space-Phantom_label-GM_cbf",
        "space-Phantom_label-WM_cbf",
        "space-Phantom_cbf",
        "cbf",
    ):
        assert (perf / f"sub-mwa01_ses-2_{name}.nii.gz").is_file()
        assert (perf / f"sub-mwa01_ses-2_{name}.json").is_file()
    assert len(cohort.sessions) == 5


def _gm_truth(truth: Path, subject: str, session: str) -> np.ndarray:
    path = (
        truth
        / f"sub-{subject}"
        / f"ses-{session}"
        / "perf"
        / f"sub-{subject}_ses-{session}_space-Phantom_label-GM_cbf.nii.gz"
    )
    return np.asanyarray(nb.load(path).dataobj, dtype=float)


@pytest.mark.parametrize("variability", [0.0, 0.1])
def test_effect_changes_only_its_region(tmp_path, anatomy, atlas, variability):
    spec = _spec(
        atlas,
        n_per_group={"MwA": 1},
        subject_sd=variability,
        region_sd=variability,
        session_sd=0.0,
        snr=float("inf"),
    )
    result = simulate_cohort(tmp_path / "bids", spec, anatomy=anatomy)
    interictal = _gm_truth(result.truth_dir, "mwa01", "1")
    ictal = _gm_truth(result.truth_dir, "mwa01", "2")
    labels, _ = atlas.label_array()
    region = labels == 1
    assert np.array_equal(interictal > 0, np.ones_like(interictal, bool))
    ratio = ictal / interictal
    assert region.sum() > 100
    np.testing.assert_allclose(ratio[region], 0.85, rtol=1e-6)
    np.testing.assert_allclose(ratio[~region], 1.0, rtol=1e-6)
    if variability == 0:
        np.testing.assert_allclose(interictal, spec.gm_cbf, rtol=1e-6)


def test_wildcard_effects_apply_to_every_group_and_phase(tmp_path, anatomy, atlas):
    spec = _spec(
        atlas,
        n_per_group={"HC": 1, "MwoA": 1},
        subject_sd=0.0,
        region_sd=0.0,
        session_sd=0.0,
        effects=(parse_effect("*:*:thalamus_R=0.2"),),
    )
    result = simulate_cohort(tmp_path / "bids", spec, anatomy=anatomy)
    labels, _ = atlas.label_array()
    for subject, session in (("hc01", "1"), ("mwoa01", "1"), ("mwoa01", "2")):
        gm = _gm_truth(result.truth_dir, subject, session)
        np.testing.assert_allclose(gm[labels == 4], 72.0, rtol=1e-6)
        np.testing.assert_allclose(gm[labels != 4], 60.0, rtol=1e-6)


def test_aura_side_follows_a_lateral_effect():
    from aslmig.sim.plan import aura_side
    from aslmig.sim.spec import CohortSpec, parse_effect

    left = CohortSpec(effects=(parse_effect("MwA:ictal:occipital_cortex_L=-0.15"),))
    assert aura_side(left, "MwA", "left") == "right"  # left occipital: right-hemifield aura
    right = CohortSpec(effects=(parse_effect("*:ictal:calcarine_R=-0.1"),))
    assert aura_side(right, "MwA", "right") == "left"
    assert aura_side(CohortSpec(), "MwA", "left") == "left"  # no lateral effect: random
    assert aura_side(left, "MwoA", "left") == "n/a"


def test_truth_anatomy_is_found_for_every_session(tmp_path, anatomy, atlas):
    from aslmig.bids.anat_derivatives import find_anat_derivatives

    result = simulate_cohort(tmp_path / "bids", _spec(atlas), anatomy=anatomy, truth_anatomy=True)
    for row in result.sessions.itertuples():
        subject, session = row.participant_id[4:], row.session_id[4:]
        found = find_anat_derivatives(result.truth_dir, subject, session, anatomy.space)
        assert found.t1w.name == f"sub-{subject}_desc-preproc_T1w.nii.gz"
        assert all(path.is_file() for path in (*found.files, found.from_template))
