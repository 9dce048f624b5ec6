"""aslmig demo: the simulated cohort is made once, planned, and reused."""

from __future__ import annotations

import json

import pandas as pd

from aslmig.cli.demo import EXAMPLE_NAME, example_dataset
from aslmig.cli.run import main


def test_example_dataset_is_shipped():
    root = example_dataset()
    description = json.loads((root / "dataset_description.json").read_text())
    assert description["Name"] == EXAMPLE_NAME
    assert (root / "participants.tsv").read_text().splitlines()[1:] == [
        "sub-hc01\tHC\t34\tF\tn/a",
        "sub-mwa01\tMwA\t31\tF\tleft",
    ]


def test_demo_plans_the_simulated_cohort(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "demo"), "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "aslmig dry run: 10 ASL run(s)" in out
    assert out.count("white-paper single-delay PCASL") == 10
    participants = pd.read_csv(tmp_path / "demo" / "bids" / "participants.tsv", sep="\t")
    assert participants["group"].value_counts().to_dict() == {"HC": 2, "MwA": 2, "MwoA": 2}
    effects = (tmp_path / "demo" / "bids" / "derivatives" / "ground-truth").rglob("*effects*")
    assert any("occipital_cortex_L" in path.read_text() for path in effects if path.is_file())
    assert main(["demo", str(tmp_path / "demo"), "--dry-run"]) == 0  # reused, not rebuilt


def test_demo_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "demo" / "bids").mkdir(parents=True)
    (tmp_path / "demo" / "bids" / "notes.txt").write_text("mine")
    assert main(["demo", str(tmp_path / "demo"), "--dry-run"]) == 2
    assert "is not empty" in capsys.readouterr().err
