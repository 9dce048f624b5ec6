"""The README's first command: `aslmig demo` simulates a cohort and runs both levels."""

from __future__ import annotations

import re

import nibabel as nb
import numpy as np
import pandas as pd
import pytest

from aslmig.cli.run import main

pytestmark = pytest.mark.slow


def test_demo_runs_both_levels_and_shows_the_ictal_change(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    reports = re.findall(r"Participant report: (\S+)", out)
    assert len(reports) == 6
    group_reports = re.findall(r"Group report: (\S+)", out)
    assert group_reports == [str(tmp_path / "demo" / "derivatives" / "group" / "default"
                                 / "report.html")]  # fmt: skip
    html = (tmp_path / "demo" / "derivatives" / "group" / "default" / "report.html").read_text()
    assert "occipital_cortex_L" in html and "https://" not in html.split("Methods")[0]

    values = pd.read_csv(
        tmp_path / "demo" / "derivatives" / "group" / "default" / "roi_values.tsv", sep="\t"
    )
    cbf = values[(values["measure"] == "cbf") & (values["roi"] == "occipital_cortex_L")]
    wide = cbf.pivot_table(index=["group", "subject"], columns="phase", values="value")
    change = (wide["ictal"] / wide["interictal"] - 1).groupby("group").mean()
    # truth: -15 % in MwA ictal left occipital grey matter (diluted by partial volume at
    # 4 mm), no effect in MwoA; per-session variability SD 5 %
    assert -0.20 < change["MwA"] < -0.05
    assert abs(change["MwoA"]) < 0.08
    assert (tmp_path / "demo" / "derivatives" / "group" / "default" / "voxelwise.tsv").is_file()

    # every session's native CBF against the simulator's truth on the same grid (mean over
    # the brain mask; measured 0.992-1.002)
    truth_dir = tmp_path / "demo" / "bids" / "derivatives" / "ground-truth"
    truths = sorted(truth_dir.glob("sub-*/ses-*/perf/sub-*_ses-*[0-9]_cbf.nii.gz"))
    assert len(truths) == 10
    for truth_file in truths:
        subject, session = truth_file.name.split("_")[:2]
        perf = tmp_path / "demo" / "derivatives" / subject / session / "perf"
        truth = nb.load(truth_file).get_fdata()
        cbf = nb.load(perf / f"{subject}_{session}_cbf.nii.gz").get_fdata()
        mask = nb.load(perf / f"{subject}_{session}_desc-brain_mask.nii.gz").get_fdata() > 0
        inside = mask & (truth > 5) & np.isfinite(cbf)
        assert cbf[inside].mean() / truth[inside].mean() == pytest.approx(1.0, abs=0.02)
