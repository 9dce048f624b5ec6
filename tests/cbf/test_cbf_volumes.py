"""Volume handling: pairs in either order, deltam/cbf/m0scan/noRF, per-volume PLDs."""

import numpy as np
import pytest

from aslmig.cbf.volumes import check_cbf_scaling, check_deltam_scaling, split_asl_series


def _series(values):
    """A 2x2x1 series whose volume i is filled with values[i]."""
    return np.broadcast_to(np.asarray(values, float), (2, 2, 1, len(values))).copy()


def test_control_label_pairs_in_either_order_give_control_minus_label():
    data = _series([100, 99, 98, 100, 100, 99.5])
    split = split_asl_series(data, ["control", "label", "label", "control", "control", "label"])
    np.testing.assert_allclose(split.deltam[0, 0, 0], [1.0, 2.0, 0.5])
    assert split.deltam_sources == ((0, 1), (3, 2), (4, 5))
    np.testing.assert_allclose(split.control_mean, 100.0)


def test_m0scan_norf_cbf_and_deltam_volumes_are_separated():
    data = _series([5000, 4900, 100, 99, 2.0, 60.0, 10.0])
    context = ["m0scan", "m0scan", "label", "control", "deltam", "cbf", "noRF"]
    split = split_asl_series(data, context, plds=[0, 0, 1.8, 1.8, 1.8, 1.8, 0])
    np.testing.assert_allclose(split.m0scan[0, 0, 0], [5000, 4900])
    assert split.m0scan_indices == (0, 1)
    np.testing.assert_allclose(split.deltam[0, 0, 0], [-1.0, 2.0])
    np.testing.assert_allclose(split.deltam_plds, [1.8, 1.8])
    np.testing.assert_allclose(split.cbf[0, 0, 0], [60.0])
    np.testing.assert_allclose(split.norf[0, 0, 0], [10.0])


def test_deltam_only_series_passes_through():
    data = _series([1.0, 1.5, 2.0])
    split = split_asl_series(data, ["deltam"] * 3, plds=[0.5, 1.0, 1.5])
    np.testing.assert_array_equal(split.deltam, data)
    np.testing.assert_allclose(split.deltam_plds, [0.5, 1.0, 1.5])
    assert split.control_mean is None and split.m0scan is None


def test_per_volume_plds_and_labeling_durations_follow_the_pairs():
    data = _series([100, 99, 100, 98])
    split = split_asl_series(
        data,
        ["label", "control", "label", "control"],
        plds=[1.0, 1.0, 2.0, 2.0],
        labeling_durations=[1.5, 1.5, 1.8, 1.8],
    )
    np.testing.assert_allclose(split.deltam_plds, [1.0, 2.0])
    np.testing.assert_allclose(split.deltam_labeling_durations, [1.5, 1.8])


@pytest.mark.parametrize(
    ("context", "plds", "message"),
    [
        (["control", "label", "control"], None, "aslcontext lists 3"),
        (["control", "label", "control", "m0scan"], None, "cannot be paired"),
        (["control", "control", "label", "label"], None, "both 'control'"),
        (["control", "label", "tag", "control"], None, "unknown aslcontext"),
        (["control", "label", "control", "label"], [1.8, 1.8], "PostLabelingDelay has 2"),
        (["control", "label", "control", "label"], [1.8, 1.5, 1.8, 1.8], "differs within"),
    ],
)
def test_bad_series_is_a_value_error(context, plds, message):
    data = _series([100, 99, 100, 99])
    with pytest.raises(ValueError, match=message):
        split_asl_series(data, context, plds=plds)


def test_scaling_checks_flag_implausible_ratios_and_units():
    m0 = np.full((4, 4), 1000.0)
    assert check_deltam_scaling(np.full((4, 4), 8.0), m0) == []
    assert "m0_scale" in check_deltam_scaling(np.full((4, 4), 400.0), m0)[0]
    assert check_cbf_scaling(np.full((4, 4, 3), 50.0), np.ones((4, 4), bool)) == []
    assert "units" in check_cbf_scaling(np.full((4, 4), 0.008))[0]
