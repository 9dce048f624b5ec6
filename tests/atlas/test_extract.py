"""Regional statistics against a direct numpy computation on the same arrays."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aslmig.atlas.extract import Roi, asymmetry_indices, reference_mean, regional_statistics

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
    reference = reference_mean(values, valid, gm)
    assert reference == pytest.approx(values[valid & (gm >= 0.5)].mean(), rel=1e-12)
    table = regional_statistics(values, labels, ROIS, valid=valid, gm=gm, reference_value=reference)
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
        assert row["relative_to_reference"] == pytest.approx(data.mean() / reference)
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
    by_roi = table.set_index("roi")["asymmetry_index"]
    assert by_roi["occipital_L"] == by_roi["occipital_R"] == pairs["asymmetry_index"].iloc[0]
    assert by_roi[["pons", "GM", "empty"]].isna().all()


def test_four_dimensional_labels_hold_overlapping_levels(maps):
    values, labels, gm, valid = maps
    stacked = np.stack([labels, np.where(labels > 0, 1, 0)], axis=-1)
    rois = [Roi(1, "occipital_L", 0), Roi(1, "brain", 1)]
    table = regional_statistics(values, stacked, rois, valid=valid).set_index("roi")
    assert table.loc["occipital_L", "mean"] == pytest.approx(values[(labels == 1) & valid].mean())
    assert table.loc["brain", "mean"] == pytest.approx(values[(labels > 0) & valid].mean())


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
    with pytest.raises(ValueError, match="same grid"):
        regional_statistics(values, labels, ROIS, gm=gm[:, :-1])


def test_coverage_measured_elsewhere_decides_the_status(maps):
    values, labels, gm, valid = maps
    table = regional_statistics(
        values, labels, ROIS[:2], valid=valid, coverage={"occipital_L": 0.3}
    ).set_index("roi")
    assert table.loc["occipital_L", "coverage"] == 0.3
    assert table.loc["occipital_L", "status"] == "n/a: coverage 0.30 < 0.5"
    assert table.loc["occipital_R", "status"] == "ok"  # not in the mapping: measured here


def test_region_cut_off_the_grid_reports_its_coverage(maps):
    values, labels, gm, valid = maps
    table = regional_statistics(
        values, labels, [Roi(9, "cut_off"), Roi(1, "occipital_L")], valid=valid,
        coverage={"cut_off": 0.0, "occipital_L": 0.9},
    ).set_index("roi")  # fmt: skip
    assert table.loc["cut_off", "status"] == "n/a: coverage 0.00 < 0.5"
    assert table.loc["occipital_L", "status"] == "ok"


def test_gm_restricted_mean_needs_enough_grey_voxels(maps):
    values, labels, gm, valid = maps
    few = np.where(labels == 3, 0.0, gm)  # pons: no grey matter ...
    few[tuple(np.argwhere((labels == 3) & valid)[:5].T)] = 1.0  # ... but 5 stray voxels
    table = regional_statistics(values, labels, ROIS, valid=valid, gm=few).set_index("roi")
    assert table.loc["pons", "n_grey"] == 5 and pd.isna(table.loc["pons", "gm_restricted_mean"])
    assert table.loc["GM", "gm_restricted_mean"] == pytest.approx(
        values[(labels == 4) & valid & (few >= 0.5)].mean()
    )


def test_repetition_uncertainty_is_the_standard_error_of_the_pairs(maps):
    """Leave-one-out replicates of a per-pair series: the jackknife SE of each ROI mean
    equals SD(pair ROI means)/sqrt(n); the asymmetry interval follows from it."""
    from aslmig.atlas.extract import repetition_uncertainty
    from aslmig.cbf.quantify import leave_one_out_means

    values, labels, gm, valid = maps
    rng = np.random.default_rng(3)
    series = values[..., None] + rng.normal(0, 20, (*values.shape, 12))
    uncertainty = repetition_uncertainty(leave_one_out_means(series), labels, ROIS, valid)
    left = series[(labels == 1) & valid].mean(axis=0)
    right = series[(labels == 2) & valid].mean(axis=0)
    assert uncertainty.mean_se["occipital_L"] == pytest.approx(left.std(ddof=1) / np.sqrt(12))
    assert uncertainty.n_repetitions == 12 and "empty" not in uncertainty.mean_se
    loo_left, loo_right = ((side.sum() - side) / 11 for side in (left, right))
    index = 2 * (loo_left - loo_right) / (loo_left + loo_right)
    jackknife = np.sqrt(11 / 12 * ((index - index.mean()) ** 2).sum())
    assert uncertainty.asymmetry_se["occipital"] == pytest.approx(jackknife)
    table = regional_statistics(series.mean(axis=-1), labels, ROIS, valid=valid,
                                uncertainty=uncertainty).set_index("roi")  # fmt: skip
    row = table.loc["occipital_L"]
    se = uncertainty.asymmetry_se["occipital"]
    assert row["asymmetry_ci_high"] - row["asymmetry_ci_low"] == pytest.approx(
        2 * 2.200985 * se,
        rel=1e-5,  # t(0.975, 11)
    )
    assert row["mean_se"] == uncertainty.mean_se["occipital_L"]
    assert pd.isna(row["asymmetry_note"])  # 20 % lower on the right: interval excludes 0
    same = regional_statistics(
        series.mean(axis=-1),
        labels,
        ROIS[:1] + [Roi(1, "occipital_R")],
        valid=valid,
        uncertainty=uncertainty,
    ).set_index("roi")
    assert same.loc["occipital_L", "asymmetry_note"] == "95% interval includes 0"


def test_small_regions_are_flagged(maps):
    from aslmig.atlas.extract import RepetitionUncertainty

    values, labels, _, valid = maps
    uncertainty = RepetitionUncertainty(
        10, {"occipital_L": 0.1, "occipital_R": 0.1}, {"occipital": 0.001},
        {"occipital_L": 5, "occipital_R": 500},
    )  # fmt: skip
    table = regional_statistics(values, labels, ROIS[:2], valid=valid, uncertainty=uncertainty)
    assert (table["asymmetry_note"] == "region below 8 ASL voxels").all()
