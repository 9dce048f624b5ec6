"""Regional statistics against a direct numpy computation on the same arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aslmig.atlas.extract import Roi, asymmetry_indices, regional_statistics

ROIS = [Roi(1, "occipital_L"), Roi(2, "occipital_R"), Roi(3, "pons"), Roi(4, "GM"), Roi(5, "empty")]


@pytest.fixture
def maps():
    rng = np.random.default_rng(7)
    labels = rng.integers(0, 5, size=(12, 10, 8))
    values = rng.normal(50, 10, size=labels.shape)
    values[labels == 2] *= 0.8  # right side 20 % lower
    gm = rng.random(labels.shape)
    valid = np.ones(labels.shape, bool)
    valid[:, :, 6:] = False  # a limited slab
    return values, labels, gm, valid


def test_statistics_equal_numpy(maps):
    values, labels, gm, valid = maps
    table = regional_statistics(values, labels, ROIS, valid=valid, gm=gm, reference_roi="GM")
    for roi in ROIS[:4]:
        row = table.set_index("roi").loc[roi.name]
        use = (labels == roi.index) & valid
        data, weights = values[use], gm[use]
        assert row["n_voxels"] == (labels == roi.index).sum()
        assert row["coverage"] == pytest.approx(use.sum() / (labels == roi.index).sum())
        assert row["mean"] == pytest.approx(data.mean(), rel=1e-12)
        assert row["median"] == pytest.approx(np.median(data), rel=1e-12)
        assert row["sd"] == pytest.approx(data.std(ddof=1), rel=1e-12)
        assert row["gm_weighted_mean"] == pytest.approx((weights * data).sum() / weights.sum())
        assert row["gm_restricted_mean"] == pytest.approx(data[weights >= 0.5].mean())
        gm_mean = values[(labels == 4) & valid].mean()
        assert row["relative_to_reference"] == pytest.approx(data.mean() / gm_mean)
        assert row["status"] == "ok"
    empty = table.set_index("roi").loc["empty"]
    assert empty["status"].startswith("n/a") and pd.isna(empty["mean"])


def test_low_coverage_is_reported_not_computed(maps):
    values, labels, gm, _ = maps
    valid = np.zeros(labels.shape, bool)
    valid[:, :, :2] = True  # 2 of 8 slices: coverage about 0.25
    table = regional_statistics(values, labels, ROIS[:3], valid=valid).set_index("roi")
    assert (table["status"].str.startswith("n/a: coverage 0.2")).all()
    assert table["mean"].isna().all()
    relaxed = regional_statistics(values, labels, ROIS[:3], valid=valid, min_coverage=0.2)
    assert (relaxed["status"] == "ok").all()


def test_asymmetry_index(maps):
    values, labels, gm, valid = maps
    table = regional_statistics(values, labels, ROIS, valid=valid)
    pairs = asymmetry_indices(table)
    assert list(pairs["region"]) == ["occipital"]
    left, right = (values[(labels == index) & valid].mean() for index in (1, 2))
    assert pairs["asymmetry_index"].iloc[0] == pytest.approx(2 * (left - right) / (left + right))
    assert pairs["asymmetry_index"].iloc[0] == pytest.approx(2 * 0.2 / 1.8, abs=0.05)


def test_non_finite_values_are_never_used(maps):
    values, labels, gm, valid = maps
    values = values.copy()
    values[labels == 3] = np.nan
    row = regional_statistics(values, labels, [Roi(3, "pons")]).iloc[0]
    assert row["n_valid"] == 0 and row["status"].startswith("n/a")


def test_grids_must_match(maps):
    values, labels, gm, valid = maps
    with pytest.raises(ValueError, match="same grid"):
        regional_statistics(values[:-1], labels, ROIS)
    with pytest.raises(ValueError, match="reference ROI"):
        regional_statistics(values, labels, ROIS, reference_roi="whole_brain")
