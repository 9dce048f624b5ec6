"""The dry run on the trimmed real data (tests/data/real_dcm_qa_asl): the acquisition warnings
and the arterial decision are printed before anything is computed (issue 13 item 3)."""

import json
import shutil
from pathlib import Path

import pytest

from aslmig.cli.run import main

REAL = Path(__file__).parents[1] / "data" / "real_dcm_qa_asl"


def test_dry_run_warns_about_the_short_pld_and_plans_the_arterial_component(capsys, tmp_path):
    assert main([str(REAL), str(tmp_path / "out"), "participant", "--dry-run"]) == 0
    plan = capsys.readouterr().out
    assert "warning      PostLabelingDelay 0.2 s is outside the white paper's" in plan
    assert "CBF will be vessel-dominated" in plan
    assert "arterial     auto: on, the earliest delay after the bolus (0.25 s)" in plan
    assert "PostLabelingDelay (longest) 1.5 s" in plan
    assert not (tmp_path / "out").exists()


def test_arterial_component_can_be_turned_off(capsys, tmp_path):
    args = [str(REAL), str(tmp_path / "out"), "participant", "--dry-run"]
    assert main([*args, "--arterial-component", "off"]) == 0
    assert "arterial     off (configuration)" in capsys.readouterr().out


def test_quipss_i_is_quantified_with_its_own_equation(capsys, tmp_path):
    bids = tmp_path / "bids"
    shutil.copytree(REAL, bids)
    sidecar = bids / "sub-S2018" / "perf" / "sub-S2018_acq-pasl2d_asl.json"
    metadata = json.loads(sidecar.read_text())
    metadata["BolusCutOffTechnique"] = "QUIPSS"
    sidecar.write_text(json.dumps(metadata))
    assert main([str(bids), str(tmp_path / "out"), "participant", "--dry-run",
                 "--participant-label", "S2018"]) == 0  # fmt: skip
    assert "equation     QUIPSS I: bolus term TI - TI1 (Wong et al. 1998)" in (
        capsys.readouterr().out
    )


@pytest.mark.parametrize("option", ["--labeling-efficiency 85", "--t1-blood 1650"])
def test_physics_mistakes_exit_2_before_anything_is_written(capsys, tmp_path, option):
    args = [str(REAL), str(tmp_path / "out"), "participant", *option.split()]
    assert main(args) == 2
    assert "did you mean" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
