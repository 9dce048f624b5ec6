"""End to end through the CLI on real Siemens 3 T scans (tests/data/real_dcm_qa_asl).

The trimmed copy of dcm_qa_asl (BSD-2-Clause, see its README) holds three real runs: a PASL
with M0 (5 pairs), a PCASL with PLD 0.2 s and a separate M0 (5 pairs) and a six-delay PCASL
with background suppression (2 repeats per delay). No truth exists, so the checks are
physiological plausibility (issue 13 item 6), with the limits of the issue: every run completes;
grey matter CBF above white matter; multi-delay grey-matter CBF 30-90 mL/100 g/min and ATT
0.6-1.6 s below the white-matter ATT; under 5 % of brain voxels at a fit bound; PASL
grey/white ratio at least 2; the PLD 0.2 s warning in the log, the sidecar and the report.
"""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import pandas as pd
import pytest
from builders import crash_details

from aslmig.cli.run import main

REAL = Path(__file__).parents[1] / "data" / "real_dcm_qa_asl"
PERF = {
    "S2018": "sub-S2018/perf/sub-S2018_acq-{acq}",
    "O2019": "sub-O2019/perf/sub-O2019_acq-{acq}",
}
PLD_WARNING = "PostLabelingDelay 0.2 s is outside the white paper's recommendation"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_run(tmp_path_factory):
    """Run the participant level once on the trimmed real dataset; keep what it logged."""
    root = tmp_path_factory.mktemp("real")
    logged = io.StringIO()
    handler = logging.StreamHandler(logged)
    logging.getLogger("aslmig").addHandler(handler)
    try:
        status = main([str(REAL), str(root / "out"), "participant", "-w", str(root / "work"),
                       "--nprocs", "2"])  # fmt: skip
    finally:
        logging.getLogger("aslmig").removeHandler(handler)
    return status, root / "out", logged.getvalue()


def run_prefix(out: Path, subject: str, acq: str) -> Path:
    return out / PERF[subject].format(acq=acq)


def qc(out: Path, subject: str, acq: str) -> dict:
    return json.loads(Path(f"{run_prefix(out, subject, acq)}_desc-qc_cbf.json").read_text())


def test_every_run_completes(real_run):
    status, out, _ = real_run
    assert status == 0, crash_details(out)
    for subject, acq in [("S2018", "pasl2d"), ("S2018", "pcasl2d"), ("O2019", "mpld2d")]:
        assert Path(f"{run_prefix(out, subject, acq)}_cbf.nii.gz").is_file()
    assert (out / "sub-S2018.html").is_file() and (out / "sub-O2019.html").is_file()


def test_pasl_grey_matter_cbf_is_at_least_twice_white_matter(real_run):
    values = qc(real_run[1], "S2018", "pasl2d")
    assert values["mean_gm_cbf"] >= 2 * values["mean_wm_cbf"] > 0


def test_multi_delay_cbf_and_att_are_physiological(real_run):
    out = real_run[1]
    values = qc(out, "O2019", "mpld2d")
    assert 30 <= values["mean_gm_cbf"] <= 90
    assert values["mean_gm_cbf"] > values["mean_wm_cbf"]
    assert values["fit_at_bound_percent"] < 5
    table = pd.read_csv(f"{run_prefix(out, 'O2019', 'mpld2d')}_atlas-MigraineASL_att.tsv",
                        sep="\t").set_index("roi")  # fmt: skip
    grey, white = table.loc["grey_matter", "mean"], table.loc["white_matter", "mean"]
    assert 0.6 <= grey <= 1.6
    assert grey < white


def test_the_short_pld_warning_reaches_log_sidecar_and_report(real_run):
    _, out, logged = real_run
    assert f"sub-S2018_acq-pcasl2d: {PLD_WARNING}" in logged
    sidecar = json.loads(Path(f"{run_prefix(out, 'S2018', 'pcasl2d')}_cbf.json").read_text())
    assert any(PLD_WARNING in warning for warning in sidecar["acquisition_warnings"])
    assert "vessel-dominated" in (out / "sub-S2018.html").read_text()
