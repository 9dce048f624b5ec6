"""Tests of the voxelwise group modules: GLM t, permutation p, TFCE, FWE, z maps, asymmetry."""

from __future__ import annotations

import itertools
import json

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
from scipy import ndimage, stats

from aslmig.group.asymmetry import asymmetry_map, flip_x, mirror_index
from aslmig.group.patient_maps import patient_zmap
from aslmig.group.tfce import TFCEParams, tfce_transform
from aslmig.group.voxelwise import CLUSTER_COLUMNS, glm_t, permutation_test, write_voxelwise

#: The bundled 2 mm MNI152NLin2009aSym grid (midline x = 0 at index 48.25).
BUNDLED_AFFINE = np.array(
    [[2.0, 0, 0, -96.5], [0, 2.0, 0, -132.5], [0, 0, 2.0, -78.5], [0, 0, 0, 1]]
)
#: A symmetric 2 mm grid of 97 voxels along x: the midline is the centre of voxel 48.
CENTRE_AFFINE = np.array([[2.0, 0, 0, -96.0], [0, 2.0, 0, -10], [0, 0, 2.0, -10], [0, 0, 0, 1]])


def two_sample(rng, n_a=7, n_b=9, n_voxels=50):
    y = rng.normal(size=(n_a + n_b, n_voxels))
    group = np.r_[np.zeros(n_a), np.ones(n_b)]
    return y, np.column_stack([np.ones(n_a + n_b), group])


def cube_mask(size=6, pad=1):
    mask = np.zeros((size + 2 * pad,) * 3, dtype=bool)
    mask[pad:-pad, pad:-pad, pad:-pad] = True
    return mask


# --------------------------------------------------------------------------------------------
# GLM
# --------------------------------------------------------------------------------------------


def test_t_equals_scipy_two_sample():
    y, design = two_sample(np.random.default_rng(0))
    t = glm_t(y, design, [0, 1])
    expected = stats.ttest_ind(y[7:], y[:7]).statistic
    np.testing.assert_allclose(t, expected, rtol=0, atol=1e-10)


def test_t_equals_statsmodels_with_covariate():
    rng = np.random.default_rng(1)
    n = 20
    age = rng.uniform(20, 60, n)
    group = np.r_[np.zeros(10), np.ones(10)]
    design = np.column_stack([np.ones(n), group, age])
    y = 0.3 * group[:, None] + 0.02 * age[:, None] + rng.normal(size=(n, 30))
    for contrast, column in (([0, 1, 0], 1), ([0, 0, 1], 2)):
        t = glm_t(y, design, contrast)
        expected = [sm.OLS(y[:, v], design).fit().tvalues[column] for v in range(y.shape[1])]
        np.testing.assert_allclose(t, expected, rtol=0, atol=1e-10)


def test_rank_deficient_design_and_bad_contrast():
    rng = np.random.default_rng(2)
    y, design = two_sample(rng)
    redundant = np.column_stack([design, design[:, 1]])  # duplicated column
    np.testing.assert_allclose(
        glm_t(y, redundant, [0, 0.5, 0.5]), glm_t(y, design, [0, 1]), atol=1e-10
    )
    with pytest.raises(ValueError, match="not estimable"):
        glm_t(y, redundant, [0, 1, 0])
    with pytest.raises(ValueError, match="columns"):
        glm_t(y, design, [1, 0, 0])


# --------------------------------------------------------------------------------------------
# Permutation p
# --------------------------------------------------------------------------------------------


def line_mask(n_voxels):
    mask = np.zeros((n_voxels, 1, 1), dtype=bool)
    mask[:, 0, 0] = True
    return mask


def test_exact_two_sample_p_matches_enumeration():
    rng = np.random.default_rng(3)
    y = rng.normal(size=(8, 3)) + np.r_[np.zeros(4), np.full(4, 1.2)][:, None]
    design = np.column_stack([np.ones(8), np.r_[np.zeros(4), np.ones(4)]])
    result = permutation_test(
        y, line_mask(3), design, [0, 1], exact=True, use_tfce=False, tail="two-sided"
    )
    assert result.metadata["NumberOfPermutations"] == 40320
    observed = np.abs(glm_t(y, design, [0, 1]))
    counts = np.zeros(3)
    splits = list(itertools.combinations(range(8), 4))
    for chosen in splits:
        group = np.zeros(8)
        group[list(chosen)] = 1
        t = np.abs(glm_t(y, np.column_stack([np.ones(8), group]), [0, 1]))
        counts += t >= observed - 1e-9
    np.testing.assert_allclose(result.p_uncorrected[:, 0, 0], counts / len(splits), atol=1e-12)


def test_exact_sign_flip_p_matches_enumeration():
    rng = np.random.default_rng(4)
    y = rng.normal(0.5, 1.0, size=(9, 2))
    result = permutation_test(
        y, line_mask(2), np.ones((9, 1)), [1], exact=True, use_tfce=False, tail="greater"
    )
    assert result.metadata["PermutationScheme"] == "signflip"
    observed = glm_t(y, np.ones((9, 1)), [1])
    counts = np.zeros(2)
    for signs in itertools.product((1, -1), repeat=9):
        counts += glm_t(y * np.array(signs)[:, None], np.ones((9, 1)), [1]) >= observed - 1e-9
    np.testing.assert_allclose(result.p_uncorrected[:, 0, 0], counts / 2**9, atol=1e-12)
    # with a single voxel the FWE p is the uncorrected p
    single = permutation_test(
        y[:, :1], line_mask(1), np.ones((9, 1)), [1], exact=True, use_tfce=False, tail="greater"
    )
    assert single.p_fwe_t[0, 0, 0] == pytest.approx(counts[0] / 2**9)


def test_freedman_lane_null_t_equals_refit():
    """The blocked null t equals refitting the full model on P R_z + H_z Y."""
    from aslmig.group.voxelwise import _decompose, _null_t_block, _source

    rng = np.random.default_rng(5)
    n = 14
    design = np.column_stack([np.ones(n), np.r_[np.zeros(7), np.ones(7)], rng.normal(size=n)])
    y = rng.normal(size=(n, 6))
    model = _decompose(design, [0, 1, 0], n)
    source = _source(y, model, "freedman-lane")
    fitted = y - source
    orders = np.stack([rng.permutation(n) for _ in range(4)])
    signs = np.ones((4, n))
    blocked = _null_t_block(source, (source**2).sum(0), model, orders, signs)
    for row, order in enumerate(orders):
        refit = glm_t(source[order] + fitted, design, [0, 1, 0])
        np.testing.assert_allclose(blocked[row], refit, atol=1e-10)


def test_seeded_determinism_and_block_size_independence():
    rng = np.random.default_rng(6)
    y, design = two_sample(rng, 6, 6, 8**3)
    mask = np.ones((8, 8, 8), dtype=bool)
    kwargs = {"n_permutations": 40, "seed": 11, "cluster_threshold": 2.0}
    first = permutation_test(y, mask, design, [0, 1], **kwargs)
    second = permutation_test(y, mask, design, [0, 1], block_size=7, **kwargs)
    np.testing.assert_array_equal(first.p_fwe_tfce, second.p_fwe_tfce)
    np.testing.assert_allclose(first.null_max_t, second.null_max_t, rtol=1e-12)
    np.testing.assert_array_equal(first.p_uncorrected, second.p_uncorrected)
    pd.testing.assert_frame_equal(first.clusters, second.clusters)
    parallel = permutation_test(y, mask, design, [0, 1], n_jobs=2, **kwargs)
    np.testing.assert_array_equal(first.null_max_tfce, parallel.null_max_tfce)
    np.testing.assert_array_equal(first.null_max_mass, parallel.null_max_mass)
    np.testing.assert_array_equal(first.p_fwe_cluster, parallel.p_fwe_cluster)
    other = permutation_test(y, mask, design, [0, 1], n_permutations=40, seed=12)
    assert not np.array_equal(first.null_max_t, other.null_max_t)


# --------------------------------------------------------------------------------------------
# TFCE
# --------------------------------------------------------------------------------------------


def test_tfce_hand_computation():
    volume = np.zeros((1, 3, 7))
    volume[0, 1, 1:4] = [1.0, 2.0, 1.0]  # a cluster of 3 at h = 1, of 1 at h = 2
    volume[0, 0, 5] = 1.0  # isolated with either connectivity
    volume[0, 2, 4] = 1.0  # diagonal neighbour of (0, 1, 3): joins it with 26-connectivity
    params = TFCEParams(h=2.0, e=0.5, dh=1.0)
    out6 = tfce_transform(volume, params, connectivity=6, tail="greater")
    expected6 = np.zeros_like(volume)
    expected6[0, 1, 1:4] = np.sqrt(3) * 1.0
    expected6[0, 1, 2] += np.sqrt(1) * 4.0
    expected6[0, 0, 5] = 1.0
    expected6[0, 2, 4] = 1.0
    np.testing.assert_allclose(out6, expected6, atol=1e-12)
    out26 = tfce_transform(volume, params, connectivity=26, tail="greater")
    expected26 = np.zeros_like(volume)
    expected26[0, 1, 1:4] = expected26[0, 2, 4] = np.sqrt(4)  # one cluster of 4 at h = 1
    expected26[0, 0, 5] = 1.0
    expected26[0, 1, 2] += 4.0
    np.testing.assert_allclose(out26, expected26, atol=1e-12)
    # two-sided: the negative part enters with a minus sign; half steps
    signed = tfce_transform(-volume, TFCEParams(dh=0.5), connectivity=6)
    # h = 0.5, 1: cluster of 3; h = 1.5, 2: the peak alone
    hand_peak = 0.5 * (np.sqrt(3) * (0.5**2 + 1.0**2) + 1.5**2 + 2.0**2)
    assert signed[0, 1, 2] == pytest.approx(-hand_peak)


def naive_tfce(volume, params, structure):
    """Reference: label each sign separately over the whole grid at every level."""
    out = np.zeros(volume.shape)
    for sign in (1, -1):
        data, step = sign * volume, 1
        while step * params.dh <= data.max():
            height = step * params.dh
            labels, _ = ndimage.label(data >= height, structure)
            sizes = np.bincount(labels.ravel()).astype(float)
            weight = sizes**params.e * height**params.h * params.dh
            weight[0] = 0
            out += sign * weight[labels]
            step += 1
    return out


@pytest.mark.parametrize("connectivity", [6, 26])
def test_tfce_equals_naive_reference_and_peak_maximum(connectivity):
    from aslmig.group import tfce

    rng = np.random.default_rng(13)
    params = TFCEParams(dh=0.2)
    structure = ndimage.generate_binary_structure(3, 1 if connectivity == 6 else 3)
    volumes = [ndimage.gaussian_filter(rng.normal(size=(14, 12, 10)), s) for s in (0, 1, 2)]
    volumes = [v * 3 / v.std() for v in volumes]
    volumes.append(rng.integers(-3, 4, size=(9, 8, 7)) * 0.2)  # values on the levels: ties
    for volume in volumes:
        out = tfce_transform(volume, params, connectivity=connectivity)
        np.testing.assert_allclose(out, naive_tfce(volume, params, structure), atol=1e-9)
        peak = tfce.max_tfce(volume, params, structure, "two-sided")
        assert peak == pytest.approx(np.abs(out).max(), rel=1e-12)
        greater = tfce_transform(volume, params, connectivity=connectivity, tail="greater")
        np.testing.assert_allclose(greater, np.maximum(out, 0), atol=1e-9)


def test_permutation_tfce_equals_level_by_level_labelling(monkeypatch):
    """The null maximum TFCE and its FWE p equal those of the naive level-by-level TFCE."""
    from aslmig.group import voxelwise

    rng = np.random.default_rng(21)
    mask = np.zeros((12, 11, 10), dtype=bool)
    mask[1:11, 1:10, 1:9] = True
    noise = [ndimage.gaussian_filter(rng.normal(size=mask.shape), 1.0)[mask] for _ in range(14)]
    y = np.array(noise) / 0.2
    y[:7, :40] += 0.8
    design = np.column_stack([np.ones(14), np.r_[np.zeros(7), np.ones(7)], rng.normal(size=14)])
    params = TFCEParams(dh=0.1)
    options = {"n_permutations": 40, "seed": 3, "tfce_params": params}
    fast = permutation_test(y, mask, design, [0, 1, 0], **options)

    def naive_max(volume, params, structure, tail):
        return float(np.abs(naive_tfce(volume, params, structure)).max())

    monkeypatch.setattr(voxelwise, "max_tfce", naive_max)
    slow = permutation_test(y, mask, design, [0, 1, 0], **options)
    np.testing.assert_allclose(fast.null_max_tfce, slow.null_max_tfce, rtol=1e-12)
    np.testing.assert_array_equal(fast.p_fwe_tfce, slow.p_fwe_tfce)
    assert len(set(np.round(fast.null_max_tfce, 6))) > 30  # the maxima differ: a real check


def test_tfce_parameter_checks():
    with pytest.raises(ValueError):
        TFCEParams(dh=0)
    with pytest.raises(ValueError, match="connectivity"):
        tfce_transform(np.zeros((2, 2, 2)), connectivity=18)


# --------------------------------------------------------------------------------------------
# FWE under the null, and power
# --------------------------------------------------------------------------------------------


def smooth_noise(rng, n, shape, sigma=1.0):
    maps = ndimage.gaussian_filter(rng.normal(size=(n, *shape)), (0, sigma, sigma, sigma))
    return maps / maps.std()


def test_fwe_rate_under_the_null():
    mask = cube_mask(6)
    n_sims, hits = 100, {"t": 0, "tfce": 0, "cluster": 0}
    for sim in range(n_sims):
        rng = np.random.default_rng(1000 + sim)
        y = smooth_noise(rng, 12, mask.shape)[:, mask]
        design = np.column_stack([np.ones(12), np.r_[np.zeros(6), np.ones(6)]])
        result = permutation_test(
            y,
            mask,
            design,
            [0, 1],
            n_permutations=100,
            seed=sim,
            cluster_threshold=2.5,
            tfce_params=TFCEParams(dh=0.25),
        )
        hits["t"] += np.nanmin(result.p_fwe_t) < 0.05
        hits["tfce"] += np.nanmin(result.p_fwe_tfce) < 0.05
        hits["cluster"] += np.nanmin(result.p_fwe_cluster) < 0.05
    rates = {key: value / n_sims for key, value in hits.items()}
    print("null FWE rates", rates)
    assert all(rate <= 0.08 for rate in rates.values()), rates


def test_planted_blob_is_detected():
    rng = np.random.default_rng(7)
    mask = cube_mask(10)
    n = 16
    y = smooth_noise(rng, n, mask.shape)
    blob = np.zeros(mask.shape)
    blob[3:6, 3:6, 3:6] = 1.5
    y[8:] += blob
    design = np.column_stack([np.ones(n), np.r_[np.zeros(8), np.ones(8)]])
    result = permutation_test(
        y[:, mask],
        mask,
        design,
        [0, 1],
        n_permutations=200,
        seed=1,
        cluster_threshold=3.0,
        affine=np.diag([2.0, 2.0, 2.0, 1.0]),
    )
    inside = blob > 0
    assert np.nanmax(result.t[inside]) > 3
    assert np.nanmin(result.p_fwe_tfce[inside]) < 0.05
    assert np.nanmin(result.p_fwe_t[inside]) < 0.05
    outside = mask & ~ndimage.binary_dilation(inside, iterations=2)
    assert np.nanmin(result.p_fwe_tfce[outside]) > 0.05
    top = result.clusters.iloc[0]
    assert list(result.clusters.columns) == list(CLUSTER_COLUMNS)
    assert top.p_fwe < 0.05 and top.peak_t > 3
    assert top.volume_mm3 == top.size_voxels * 8
    peak = np.array([top.peak_x, top.peak_y, top.peak_z]) / 2
    assert np.all((peak >= 3) & (peak <= 5))
    # one-sided in the wrong direction finds nothing
    less = permutation_test(y[:, mask], mask, design, [0, 1], n_permutations=50, tail="less")
    assert np.nanmin(less.p_fwe_tfce) > 0.05


def test_write_voxelwise(tmp_path):
    rng = np.random.default_rng(8)
    mask = cube_mask(4)
    y, design = two_sample(rng, 5, 5, int(mask.sum()))
    result = permutation_test(
        y,
        mask,
        design,
        [0, 1],
        n_permutations=20,
        cluster_threshold=1.0,
        affine=BUNDLED_AFFINE,
        design_columns=["intercept", "group"],
    )
    written = write_voxelwise(result, tmp_path, "space-X_contrast-AvsB", extra_metadata={"A": 1})
    names = sorted(p.name for p in tmp_path.iterdir())
    assert "space-X_contrast-AvsB_stat-t_statmap.nii.gz" in names
    assert "space-X_contrast-AvsB_stat-p_desc-tfceFWE_statmap.nii.gz" in names
    assert "space-X_contrast-AvsB_clusters.tsv" in names
    image = nib.load(written["t"])
    np.testing.assert_allclose(image.affine, BUNDLED_AFFINE)
    np.testing.assert_allclose(np.asarray(image.dataobj)[mask], result.t[mask], rtol=1e-6)
    sidecar = json.loads(
        written["p_fwe_tfce"]
        .with_name(written["p_fwe_tfce"].name.replace(".nii.gz", ".json"))
        .read_text()
    )
    assert sidecar["DesignColumns"] == ["intercept", "group"]
    assert sidecar["TFCE"]["h"] == 2.0 and sidecar["Seed"] == 0 and sidecar["A"] == 1
    table = pd.read_csv(written["clusters"], sep="\t")
    assert list(table.columns) == list(CLUSTER_COLUMNS)


# --------------------------------------------------------------------------------------------
# Single-patient z maps
# --------------------------------------------------------------------------------------------


def test_zmap_without_covariates_closed_form():
    rng = np.random.default_rng(9)
    controls = rng.normal(50, 8, size=(15, 4, 3))
    patient = rng.normal(45, 8, size=(4, 3))
    z = patient_zmap(patient, controls)
    for index in [(0, 0), (2, 1), (3, 2)]:
        sample = controls[(slice(None), *index)]
        expected = (patient[index] - sample.mean()) / (sample.std(ddof=1) * np.sqrt(1 + 1 / 15))
        assert z[index] == pytest.approx(expected, abs=1e-12)
    plain = patient_zmap(patient, controls, prediction_interval=False)
    np.testing.assert_allclose(plain, (patient - controls.mean(0)) / controls.std(0, ddof=1))


def test_zmap_with_age_closed_form():
    rng = np.random.default_rng(10)
    n = 20
    age = rng.uniform(20, 60, n)
    controls = 60 - 0.3 * age[:, None] + rng.normal(0, 5, size=(n, 5))
    patient, patient_age = rng.normal(40, 5, size=5), 35.0
    z = patient_zmap(patient, controls, age, [patient_age])
    design = np.column_stack([np.ones(n), age])
    x0 = np.array([1.0, patient_age])
    inverse = np.linalg.inv(design.T @ design)
    for voxel in (0, 3):
        fit = sm.OLS(controls[:, voxel], design).fit()
        s2 = fit.ssr / (n - 2)
        expected = (patient[voxel] - x0 @ fit.params) / np.sqrt(s2 * (1 + x0 @ inverse @ x0))
        assert z[voxel] == pytest.approx(expected, abs=1e-10)
    with pytest.raises(ValueError, match="both"):
        patient_zmap(patient, controls, age)


# --------------------------------------------------------------------------------------------
# Asymmetry
# --------------------------------------------------------------------------------------------


def symmetric_volume(rng, affine, shape=(97, 6, 5)):
    base = rng.uniform(30, 70, size=shape)
    mirror = mirror_index(affine, shape[0])
    return (base + base[mirror]) / 2 + 0.0


def test_asymmetry_of_symmetric_image_is_zero():
    rng = np.random.default_rng(11)
    volume = symmetric_volume(rng, CENTRE_AFFINE)
    np.testing.assert_allclose(asymmetry_map(volume, CENTRE_AFFINE), 0.0, atol=1e-12)


def test_asymmetry_left_only_reduction_closed_form():
    rng = np.random.default_rng(12)
    volume = symmetric_volume(rng, CENTRE_AFFINE)
    x = CENTRE_AFFINE[0, 0] * np.arange(97) + CENTRE_AFFINE[0, 3]
    left = x < 0
    changed = volume.copy()
    changed[left] *= 0.8
    index = asymmetry_map(changed, CENTRE_AFFINE)
    expected = 2 * (0.8 - 1) / (0.8 + 1)  # -0.2222...
    np.testing.assert_allclose(index[left], expected, atol=1e-12)
    np.testing.assert_allclose(index[x > 0], -expected, atol=1e-12)
    np.testing.assert_allclose(index[x == 0], 0.0, atol=1e-12)


def test_asymmetry_on_a_boundary_midline_and_a_mask():
    affine = CENTRE_AFFINE.copy()
    affine[0, 3] = -95.0  # 96 voxels: midline between index 47 and 48
    volume = np.ones((96, 2, 2))
    volume[:48] = 0.8
    np.testing.assert_allclose(asymmetry_map(volume, affine)[:48], 2 * -0.2 / 1.8)
    assert flip_x(np.arange(96.0)[:, None, None] * np.ones((1, 2, 2)), affine)[0, 0, 0] == 95
    mask = np.ones(volume.shape, dtype=bool)
    mask[90] = False
    index = asymmetry_map(volume, affine, mask)
    assert np.isnan(index[90]).all() and np.isnan(index[5]).all()  # 5 mirrors 90


def test_asymmetry_refuses_an_off_grid_midline():
    with pytest.raises(ValueError, match="48.25"):
        asymmetry_map(np.ones((97, 2, 2)), BUNDLED_AFFINE)
    # accepted with an explicit tolerance: the flip is about index 48 (the array flip)
    np.testing.assert_array_equal(
        mirror_index(BUNDLED_AFFINE, 97, midline_tolerance=0.25), np.arange(97)[::-1]
    )
    oblique = CENTRE_AFFINE.copy()
    oblique[0, 1] = 0.3
    with pytest.raises(ValueError, match="axis 0"):
        asymmetry_map(np.ones((97, 2, 2)), oblique)
