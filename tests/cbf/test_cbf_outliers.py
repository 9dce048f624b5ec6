"""SCORE outlier rejection and robust averaging."""

import numpy as np
import pytest

from aslmig.cbf.outliers import score_outlier_rejection
from aslmig.cbf.single_delay import average_cbf_series


def _phantom(n_volumes=24, seed=0):
    rng = np.random.default_rng(seed)
    gm = np.zeros((16, 16, 4))
    gm[:8] = 1.0
    wm = 1.0 - gm
    truth = 60.0 * gm + 20.0 * wm
    series = truth[..., None] + rng.normal(0, 8.0, (*truth.shape, n_volumes))
    return series, gm, wm, truth


def test_score_drops_corrupted_volumes_and_reports_them():
    series, gm, wm, truth = _phantom()
    series[..., 5] += 150.0 * np.random.default_rng(1).random(truth.shape)  # global artefact
    series[:4, :, :, 17] += 120.0  # regional artefact (e.g. a vessel or a spike)
    result = score_outlier_rejection(series, gm, wm)
    assert {5, 17} <= set(result.dropped)
    assert len(result.dropped) <= 3  # the 2.5-robust-SD rule may take one clean volume too
    assert set(result.reasons) == set(result.dropped)
    clean_mean = series[..., result.kept].mean(axis=-1)
    np.testing.assert_allclose(result.mean_cbf, clean_mean, rtol=1e-12)
    assert abs(result.mean_cbf[gm > 0].mean() - 60.0) < 0.5
    assert abs(series.mean(axis=-1)[gm > 0].mean() - 60.0) > 2.0  # the artefacts did bias it


def test_score_keeps_almost_every_volume_of_clean_series():
    # Gaussian noise only: the published 2.5 robust-SD rule drops about 1 volume in 24 or
    # fewer on average; the mean stays unbiased.
    dropped = []
    for seed in range(8):
        series, gm, wm, _ = _phantom(seed=seed)
        result = score_outlier_rejection(series, gm, wm)
        dropped.append(len(result.dropped))
        assert abs(result.mean_cbf[gm > 0].mean() - 60.0) < 0.5
    assert sum(dropped) <= 8 and min(dropped) == 0


def test_average_cbf_series_reports_dropped_volumes():
    series, gm, wm, _ = _phantom()
    series[..., 3] *= 3.0
    cbf, info = average_cbf_series(series, "score", gm=gm, wm=wm)
    assert 3 in info["dropped_volumes"] and len(info["dropped_volumes"]) <= 2
    assert 3 not in info["kept_volumes"]
    assert len(info["kept_volumes"]) + len(info["dropped_volumes"]) == 24
    assert abs(cbf[gm > 0].mean() - 60.0) < 1.0


def test_score_needs_two_tissues():
    series, gm, wm, _ = _phantom()
    with pytest.raises(ValueError, match="grey- and white-matter"):
        score_outlier_rejection(series, gm, np.zeros_like(wm))
