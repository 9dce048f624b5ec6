"""Territory crossing of patient-session clusters (aslmig.group.territories, aslmig.sim.lesions)."""

import json

import nibabel as nb
import numpy as np
import pytest
from scipy import stats

from aslmig.atlas.rois import shipped_migraine_atlas
from aslmig.group.patient_maps import patient_zmap
from aslmig.group.report import TERRITORY_LEVEL
from aslmig.group.territories import (
    CLUSTER_COLUMNS,
    HYPER,
    HYPO,
    OUTSIDE,
    CrossingSettings,
    ExtentCalibration,
    SessionCrossing,
    _rotation_operators,
    calibrated_settings,
    crossing_table,
    find_clusters,
)
from aslmig.sim.lesions import MapNoise, baseline_cbf, draw_lesion, subject_map

AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
NAMES = {1: "territory_A", 2: "territory_B"}
VOXEL_ML = 0.008


def halves(shape=(30, 20, 20)) -> np.ndarray:
    """Territory A for x < 15, B from x = 15."""
    labels = np.ones(shape, int)
    labels[15:] = 2
    return labels


def box_map(shape, boxes) -> np.ndarray:
    z = np.zeros(shape)
    for box, value in boxes:
        z[box] = value
    return z


def test_height_is_the_student_t_quantile():
    assert CrossingSettings().height(9) == pytest.approx(stats.t.isf(0.01, 9))
    assert CrossingSettings(height_p=0.001).height(30) == pytest.approx(3.385, abs=1e-3)
    with pytest.raises(ValueError, match="df"):
        CrossingSettings().height(0)
    with pytest.raises(ValueError, match="min_share"):
        CrossingSettings(min_share=0.7)


def test_clusters_volume_peak_shares_and_crossing():
    labels = halves()
    z = box_map(labels.shape, [
        ((slice(10, 20), slice(2, 7), slice(2, 7)), -5.0),   # 250 voxels, half in each
        ((slice(2, 8), slice(12, 18), slice(12, 18)), -4.0),  # 216 voxels in A only
        ((slice(20, 26), slice(12, 18), slice(2, 8)), 6.0),   # hyper, B only
        ((slice(0, 2), slice(0, 2), slice(18, 20)), -9.0),    # 8 voxels: below 1 mL
    ])  # fmt: skip
    z[12, 3, 3] = -7.5
    z[0, 0, 0] = np.nan
    found = find_clusters(z, labels, NAMES, AFFINE, df=20)
    assert [c.direction for c in found.clusters] == [HYPO, HYPO, HYPER]
    crossing, inside, hyper = found.clusters
    assert crossing.n_voxels == 250 and crossing.volume_ml == pytest.approx(250 * VOXEL_ML)
    assert crossing.peak_z == -7.5 and crossing.peak_mm == (24.0, 6.0, 6.0)
    assert crossing.shares == {"territory_A": 0.5, "territory_B": 0.5}
    assert crossing.crosses and set(crossing.territories) == set(NAMES.values())
    assert inside.n_voxels == 216 and inside.territories == ("territory_A",)
    assert not inside.crosses
    assert hyper.peak_z == 6.0 and hyper.territories == ("territory_B",)
    assert found.crosses is True
    assert found.territories == ("territory_A", "territory_B")


def test_small_spill_over_and_unlabelled_voxels_do_not_make_a_crossing():
    labels = halves()
    labels[:, :, 15:] = 0  # no territory (CSF)
    # 10 x 5 x 5 box: 1 of 10 x-planes in B (share 0.1 - just counted), then 0.5 of a plane.
    z = box_map(labels.shape, [((slice(6, 16), slice(2, 7), slice(2, 7)), -5.0)])
    assert find_clusters(z, labels, NAMES, AFFINE, 20).crosses is True
    assert find_clusters(z, labels, NAMES, AFFINE, 20,
                         CrossingSettings(min_share=0.11)).crosses is False  # fmt: skip
    z = box_map(labels.shape, [((slice(2, 8), slice(2, 7), slice(10, 20)), -5.0)])
    cluster = find_clusters(z, labels, NAMES, AFFINE, 20).clusters[0]
    assert cluster.shares == {"territory_A": 0.5, OUTSIDE: 0.5}
    assert cluster.territories == ("territory_A",) and not cluster.crosses


def test_no_cluster_gives_none_and_a_table_row():
    labels = halves()
    empty = find_clusters(np.zeros(labels.shape), labels, NAMES, AFFINE, 20)
    assert empty.crosses is None and empty.territories == ()
    z = box_map(labels.shape, [((slice(10, 20), slice(2, 7), slice(2, 7)), -5.0)])
    full = find_clusters(z, labels, NAMES, AFFINE, 20)
    table = crossing_table({"sub-01_ses-ictal": full, "sub-02_ses-ictal": empty})
    assert list(table.columns) == list(CLUSTER_COLUMNS)
    assert table["session_map"].tolist() == ["sub-01_ses-ictal", "sub-02_ses-ictal"]
    assert table["crosses_territories"].tolist() == ["yes", "n/a"]
    assert table.loc[0, "shares"] == "territory_A=0.500;territory_B=0.500"
    sidecar = full.sidecar(CrossingSettings(), 2.5)["TerritoryCrossing"]
    json.dumps(sidecar)
    assert sidecar["Crosses"] is True and sidecar["Clusters"][0]["Voxels"] == 250
    nothing = SessionCrossing().sidecar(CrossingSettings(), 2.5)["TerritoryCrossing"]
    assert nothing["Crosses"] is None


def test_grid_mismatch_is_refused():
    with pytest.raises(ValueError, match="one 3-D grid"):
        find_clusters(np.zeros((4, 4, 4)), np.zeros((4, 4, 5), int), NAMES, AFFINE, 20)


def _null_cohort(rng, shape, n_controls, noise):
    brain = np.ones(shape, bool)
    maps = np.stack([subject_map(np.full(shape, 50.0), AFFINE, noise, rng, brain)
                     for _ in range(n_controls + 1)])  # fmt: skip
    return maps[0], maps[1:], brain


def test_rotation_calibration_controls_the_false_cluster_rate_per_session():
    """100 lesion-free patients, each with its own 8 controls, FWHM 6 mm, 19 rotations, 5 %.

    Exact level 1/20 = 0.05: 100 sessions give 5 expected, P(>= 13) = 0.002 under it; without
    the extent threshold (height p < 0.01 alone) nearly every session has a cluster, so the
    test cannot pass without the calibration doing the work.
    """
    rng = np.random.default_rng(2026)
    shape, noise = (20, 20, 20), MapNoise(fwhm_mm=6.0)
    labels = np.ones(shape, int)
    calibrated = uncalibrated = 0
    for seed in range(100):
        patient, controls, brain = _null_cohort(rng, shape, 8, noise)
        calibration = ExtentCalibration(rotations=19, seed=seed)
        settings, null = calibrated_settings(patient, controls, brain, AFFINE,
                                             calibration=calibration)  # fmt: skip
        assert settings.min_volume_ml == pytest.approx(null.max() + VOXEL_ML)
        z = patient_zmap(patient, controls)
        calibrated += bool(find_clusters(z, labels, {}, AFFINE, 7, settings).clusters)
        everything = CrossingSettings(min_volume_ml=0.0)
        uncalibrated += bool(find_clusters(z, labels, {}, AFFINE, 7, everything).clusters)
    assert calibrated <= 12, calibrated
    assert uncalibrated >= 90, uncalibrated


def test_rotation_calibration_arguments_and_covariates():
    assert ExtentCalibration().rank == 4
    assert ExtentCalibration(rotations=19).rank == 0
    with pytest.raises(ValueError, match="too few for alpha 0.05"):
        ExtentCalibration(rotations=10)
    rng = np.random.default_rng(5)
    patient, controls, brain = _null_cohort(rng, (12, 12, 12), 3, MapNoise(fwhm_mm=6.0))
    with pytest.raises(ValueError, match="at least 2 residual df"):
        calibrated_settings(patient, controls, brain, AFFINE, control_covariates=[1.0, 2, 3],
                            patient_covariates=[2.0])  # fmt: skip
    patient, controls, brain = _null_cohort(rng, (12, 12, 12), 6, MapNoise(fwhm_mm=6.0))
    ages = np.array([30.0, 35, 40, 45, 50, 55])
    first, _ = calibrated_settings(patient, controls, brain, AFFINE, control_covariates=ages,
                                   patient_covariates=[41.0])  # fmt: skip
    again, _ = calibrated_settings(patient, controls, brain, AFFINE, control_covariates=ages,
                                   patient_covariates=[41.0])  # fmt: skip
    assert first == again and first.min_volume_ml > 0.0
    design = np.column_stack([np.ones(7), np.r_[41.0, ages]])
    numerator, spread = _rotation_operators(design, 4)
    stacked = np.concatenate([patient[None], controls]).reshape(7, -1)
    z = numerator @ stacked / np.sqrt(((spread @ stacked) ** 2).sum(axis=0))
    expected = patient_zmap(patient, controls, ages[:, None], np.array([41.0]))
    np.testing.assert_allclose(z, expected.ravel(), rtol=1e-10)


@pytest.fixture(scope="module")
def posterior_left():
    """Bundled-grid tissue and MigraineASL territories, cropped around PCA_L/MCA_L/VB_L."""
    from aslmig.sim.anatomy import load_template_anatomy

    anatomy = load_template_anatomy()
    atlas = shipped_migraine_atlas()
    labels = np.asanyarray(nb.load(atlas.image).dataobj)[..., TERRITORY_LEVEL].astype(int)
    table = atlas.table[atlas.table["name"].str.startswith("territory_")]
    names = dict(zip(table["index"].astype(int), table["name"], strict=True))
    inverse = np.linalg.inv(anatomy.affine)
    corner = np.rint(inverse @ np.array([-60.0, -100.0, -10.0, 1.0]))[:3].astype(int)
    box = tuple(slice(c, c + 30) for c in corner)
    affine = anatomy.affine.copy()
    affine[:3, 3] = (anatomy.affine @ np.array([*corner, 1.0]))[:3]
    return anatomy.gm[box], anatomy.wm[box], labels[box], names, affine


def test_simulated_one_and_two_territory_lesions_are_told_apart(posterior_left):
    """8 one-territory (PCA_L) and 8 PCA_L/MCA_L lesions, 10 mm, -50 % (CNR 3.3), 10 controls.

    Every lesion is detected and classified (the full-brain figures, by radius, are printed by
    benchmarks/group_territories.py); the extent is calibrated per session by 19 rotations (5 %).
    """
    gm, wm, labels, names, affine = posterior_left
    rng = np.random.default_rng(16)
    noise = MapNoise()
    brain = gm + wm >= 0.5
    baseline = baseline_cbf(gm, wm, noise)
    controls = np.stack([subject_map(baseline, affine, noise, rng, brain) for _ in range(10)])
    outcomes = []
    for second in (None, "territory_MCA_L") * 8:
        lesion = draw_lesion(labels, names, "territory_PCA_L", second, 10.0, affine, rng)
        patient = subject_map(baseline, affine, noise, rng, brain)
        patient = np.where(lesion, 0.5 * patient, patient)
        settings, _ = calibrated_settings(patient, controls, brain, affine,
                                          calibration=ExtentCalibration(rotations=19))  # fmt: skip
        z = np.where(brain, patient_zmap(patient, controls), np.nan)
        found = find_clusters(z, labels, names, affine, 9, settings)
        outcomes.append((second is not None, found.crosses))
    assert all(crosses is not None for _, crosses in outcomes)
    accuracy = np.mean([truth == crosses for truth, crosses in outcomes])
    assert accuracy >= 0.9, outcomes
