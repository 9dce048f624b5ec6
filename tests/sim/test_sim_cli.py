"""``aslmig simulate`` on the command line: the real template and atlas, and bad input."""

from __future__ import annotations

import numpy as np
import pytest

from aslmig.cli.run import main
from aslmig.errors import InputError
from aslmig.sim import CohortSpec, parse_effect, simulate_cohort
from aslmig.sim.spec import parse_counts


def test_simulate_command_with_template_and_atlas(tmp_path, capsys):
    out = tmp_path / "bids"
    status = main(
        [
            "simulate",
            str(out),
            "--n",
            "HC=1",
            "MwA=1",
            "--phases",
            "interictal",
            "ictal",
            "--effect",
            "MwA:ictal:occipital_cortex_L=-0.15",
            "--effect",
            "*:*:pons=0.05",
            "--voxel",
            "6",
            "--t1w-voxel",
            "4",
            "--pairs",
            "2",
            "--seed",
            "3",
        ]
    )
    assert status == 0
    printed = capsys.readouterr().out
    assert "Simulated 2 participant(s), 3 session(s)" in printed
    assert main([str(out), str(tmp_path / "derivatives"), "participant", "--dry-run"]) == 0
    assert "aslmig dry run: 3 ASL run(s)" in capsys.readouterr().out
    factors = (out / "derivatives/ground-truth/region_factors.tsv").read_text().splitlines()
    assert len(factors) == 1 + 2 * 21
    assert (out / "NOTICE").is_file()


def test_effect_on_the_real_atlas_is_exact(tmp_path):
    from aslmig.atlas.rois import load_atlas
    from aslmig.sim.anatomy import load_template_anatomy
    from aslmig.sim.cohort import cbf_maps, prepare_regions
    from aslmig.sim.plan import plan_cohort

    anatomy = load_template_anatomy()
    spec = CohortSpec(
        n_per_group={"MwA": 1},
        subject_sd=0.0,
        region_sd=0.0,
        session_sd=0.0,
        effects=(parse_effect("MwA:ictal:occipital_cortex_L=-0.15"),),
    )
    regions = prepare_regions(spec, anatomy)
    participant = plan_cohort(spec)[0]
    interictal, _ = cbf_maps(spec, anatomy, participant, participant.sessions[0], regions)
    ictal, _ = cbf_maps(spec, anatomy, participant, participant.sessions[1], regions)
    mask = load_atlas().mask("occipital_cortex_L")
    assert mask.sum() > 500
    np.testing.assert_allclose(ictal[mask] / interictal[mask], 0.85, rtol=1e-12)
    np.testing.assert_array_equal(ictal[~mask], interictal[~mask])


BAD = {
    "unknown group": (["--n", "XX=2"], "unknown group 'XX'"),
    "malformed count": (["--n", "HC"], "is not GROUP=N"),
    "zero participants": (["--n", "HC=0"], "whole number of participants > 0"),
    "negative participants": (["--n", "MwA=-2"], "whole number of participants > 0"),
    "malformed effect": (["--effect", "MwA-ictal-occipital=-0.1"], "GROUP:PHASE:ROI=CHANGE"),
    "effect not a number": (["--effect", "MwA:ictal:pons=big"], "is not a number"),
    "unknown effect group": (["--effect", "MwB:ictal:pons=0.1"], "unknown group 'MwB'"),
    "unknown phase": (["--phases", "aura"], "unknown phase 'aura'"),
    "unknown roi": (["--effect", "MwA:ictal:occipital=-0.1"], "unknown region 'occipital'"),
    "zero snr": (["--snr", "0"], "--snr: is 0.0"),
    "negative snr": (["--snr", "-5"], "--snr: is -5.0"),
    "short ti": (["--labeling", "PASL", "--plds", "0.5"], "must exceed the bolus duration"),
    "bad labeling": (["--labeling", "FAIR"], "invalid choice"),
    "bad number": (["--snr", "high"], "is not a number"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_a_one_line_error_and_writes_nothing(tmp_path, capsys, name):
    arguments, message = BAD[name]
    out = tmp_path / "bids"
    assert main(["simulate", str(out), *arguments]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1
    assert not out.exists()


def test_non_empty_output_is_refused(tmp_path, capsys):
    out = tmp_path / "bids"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert main(["simulate", str(out), "--n", "HC=1"]) == 2
    err = capsys.readouterr().err
    assert "is not empty" in err and len(err.strip().splitlines()) == 1
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]


def test_api_refuses_unknown_region_of_a_custom_atlas(tmp_path, anatomy, atlas):
    spec = CohortSpec(
        n_per_group={"MwA": 1}, atlas=atlas, effects=(parse_effect("MwA:ictal:calcarine_L=-0.1"),)
    )
    with pytest.raises(InputError, match="known regions: occipital_cortex_L"):
        simulate_cohort(tmp_path / "bids", spec, anatomy=anatomy)
    assert not (tmp_path / "bids").exists()


def test_parse_counts_keeps_order():
    assert parse_counts(["MwA=3", "HC=2"]) == {"MwA": 3, "HC": 2}
