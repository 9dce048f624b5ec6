"""QC metrics and the report's plain-language warnings."""

from __future__ import annotations

import numpy as np
import pytest

from aslmig.cbf.qc import QcMetrics, dice, quality_warnings, run_quality
from aslmig.cbf.quantify import _reliable_m0

GOOD = {
    "registration_dice": 0.95,
    "n_fd_above_threshold": 0,
    "fd_threshold_mm": 0.5,
    "negative_gm_cbf_percent": 1.0,
    "mean_gm_cbf": 55.0,
}


def qc_warnings(values):
    return quality_warnings(QcMetrics.from_dict(values))


def test_no_warning_for_good_values():
    assert qc_warnings(GOOD) == []


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"registration_dice": 0.6}, "Dice 0.60"),
        ({"n_fd_above_threshold": 3}, "3 volume(s) moved more than 0.5 mm"),
        ({"negative_gm_cbf_percent": 12.5}, "12.5 % of grey-matter voxels"),
        ({"mean_gm_cbf": 150.0}, "Mean grey-matter CBF 150.0"),
        ({"mean_gm_cbf": 5.0}, "outside 20-120"),
        ({"fit_at_bound_percent": 7.5}, "7.5 % of the fitted voxels ended with CBF, ATT or aBV"),
        ({"fit_not_converged_percent": 2.0}, "2.0 % of the fitted voxels did not converge"),
        ({"fit_att_unresolved_percent": 30.0}, "30.0 % of the fitted voxels have an ATT at"),
        ({"fit_non_finite_voxels": 4}, "4 brain voxel(s) had NaN or infinite"),
    ],
)
def test_each_warning(change, words):
    warnings = qc_warnings({**GOOD, **change})
    assert len(warnings) == 1
    assert words in warnings[0]


def test_dice_against_numpy():
    rng = np.random.default_rng(0)
    a, b = rng.random((10, 10, 10)) > 0.5, rng.random((10, 10, 10)) > 0.4
    assert dice(a, b) == pytest.approx(2 * (a & b).sum() / (a.sum() + b.sum()), abs=1e-12)


def test_low_m0_voxels_are_left_out():
    m0 = np.full((4, 4, 4), 1000.0)
    m0[0, 0, :2] = 100.0  # 10 % of the median
    mask = np.ones(m0.shape, bool)
    reliable, record = _reliable_m0(mask, m0, 0.25)
    assert record["voxels_excluded"] == 2
    assert not reliable[0, 0, :2].any() and reliable[1:].all()
    assert _reliable_m0(mask, 1000.0, 0.25)[0] is mask


def test_m0_without_positive_signal_is_refused():
    with pytest.raises(ValueError, match="no positive signal"):
        _reliable_m0(np.ones((2, 2, 2), bool), -np.ones((2, 2, 2)), 0.25)


def test_run_quality_collects_the_fit_summary_and_round_trips():
    shape = (6, 6, 6)
    mask = np.ones(shape, bool)
    gm = np.zeros(shape)
    gm[:3] = 1.0
    wm = 1.0 - gm
    cbf = 60.0 * gm + 20.0 * wm
    summary = {"n_voxels_fitted": 216, "not_converged_percent": 0.0, "at_bound_percent": 6.0,
               "att_unresolved_percent": 1.0, "n_non_finite_input": 0}  # fmt: skip
    metrics = run_quality(
        cbf,
        mask,
        gm,
        wm,
        np.zeros(shape),
        framewise_displacement=[0, 0.1],
        registered_mask=mask,
        target_mask=mask,
        fit_summary=summary,
    )
    assert metrics.gm_wm_cbf_ratio == pytest.approx(3.0)
    assert metrics.registration_dice == 1.0 and metrics.fit_at_bound_percent == 6.0
    assert QcMetrics.from_dict(metrics.to_dict()) == metrics
    assert qc_warnings(metrics.to_dict()) == [
        "6.0 % of the fitted voxels ended with CBF, ATT or aBV on a bound of the fit."
    ]
