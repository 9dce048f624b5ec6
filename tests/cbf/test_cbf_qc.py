"""QC metrics on maps with known answers."""

import numpy as np
import pytest

from aslmig.cbf import qc


def _tissues():
    gm = np.zeros((10, 10, 4))
    gm[:5] = 0.9
    wm = np.zeros_like(gm)
    wm[5:] = 0.95
    csf = np.zeros_like(gm)
    return gm, wm, csf


def test_tissue_means_ratio_negative_percent_and_scov():
    gm, wm, _ = _tissues()
    cbf = np.where(gm > 0.7, 60.0, 20.0)
    cbf[0, 0, :] = [-10.0, 130.0, 60.0, 60.0]  # 1 negative of 200 GM voxels; mean stays 60
    assert qc.mean_tissue_cbf(cbf, gm) == pytest.approx(60.0)
    assert qc.mean_tissue_cbf(cbf, wm) == pytest.approx(20.0)
    assert qc.gm_wm_ratio(cbf, gm, wm) == pytest.approx(3.0)
    assert qc.negative_gm_percent(cbf, gm) == pytest.approx(0.5)
    values = cbf[gm > 0.7]
    assert qc.spatial_cov(cbf, gm) == pytest.approx(100 * values.std(ddof=1) / values.mean())


def test_boolean_masks_are_accepted():
    gm, wm, _ = _tissues()
    cbf = np.where(gm > 0.7, 55.0, 22.0)
    assert qc.mean_tissue_cbf(cbf, gm > 0.5) == pytest.approx(55.0)


def test_qei_is_high_for_a_clean_map_and_low_for_a_noisy_one():
    gm, wm, csf = _tissues()
    clean = 60.0 * (gm > 0.7) + 20.0 * (wm > 0.7)
    noisy = clean + np.random.default_rng(0).normal(0, 60.0, clean.shape)
    high = qc.quality_evaluation_index(clean, gm, wm, csf)
    low = qc.quality_evaluation_index(noisy, gm, wm, csf)
    assert 0.9 < high <= 1.0
    assert 0.0 <= low < 0.6


def test_deltam_tsnr_and_motion_summary():
    rng = np.random.default_rng(1)
    deltam = 10.0 + rng.normal(0, 2.0, (20, 20, 2, 400))
    assert qc.deltam_tsnr(deltam) == pytest.approx(5.0, rel=0.05)
    summary = qc.motion_summary([np.nan, 0.1, 0.7, 0.2, 1.5], threshold_mm=0.5)
    assert summary == {
        "mean_fd_mm": pytest.approx(0.625),
        "max_fd_mm": 1.5,
        "n_fd_above_threshold": 2,
        "fd_threshold_mm": 0.5,
    }
    # the first volume's FD of 0 (no predecessor) is not averaged in
    assert qc.motion_summary([0.0, 0.2, 0.4])["mean_fd_mm"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="no finite values"):
        qc.motion_summary([0.0])


def test_compute_qc_metrics_collects_everything():
    gm, wm, csf = _tissues()
    cbf = 60.0 * (gm > 0.7) + 20.0 * (wm > 0.7)
    deltam = np.repeat(cbf[..., None] / 10, 4, axis=-1) + np.arange(4)
    fd = [0.0, 0.1]
    metrics = qc.compute_qc_metrics(cbf, gm, wm, csf, deltam=deltam, framewise_displacement=fd)
    assert metrics["gm_wm_cbf_ratio"] == pytest.approx(3.0)
    assert {"qei", "deltam_tsnr_gm", "mean_fd_mm", "gm_spatial_cov_percent"} <= set(metrics)
    one_volume = qc.compute_qc_metrics(cbf, gm, wm, csf, framewise_displacement=[0.0])
    assert "mean_fd_mm" not in one_volume


def test_empty_tissue_mask_is_a_value_error():
    with pytest.raises(ValueError, match="empty"):
        qc.mean_tissue_cbf(np.ones((2, 2)), np.zeros((2, 2)))
