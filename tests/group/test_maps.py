"""Voxelwise group stage: maps found in OUTPUT_DIR, contrasts, z maps, against scipy."""

from __future__ import annotations

import json

import nibabel as nb
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from aslmig.errors import InputError
from aslmig.group.maps import (
    MapSettings,
    contrasts,
    enumerable,
    find_cbf_maps,
    load_unit_maps,
    run_patient_maps,
    run_voxelwise,
)

SHAPE = (8, 8, 6)
AFFINE = np.diag([2.0, 2.0, 2.0, 1.0])
AFFINE[:3, 3] = (-7.0, -7.0, -5.0)  # x = 0 falls on a voxel boundary: exact mirror
UNITS = [  # subject, session, group, phase, age
    ("hc01", "1", "HC", "interictal", 30),
    ("hc02", "1", "HC", "interictal", 41),
    ("hc03", "1", "HC", "interictal", 35),
    ("mwa01", "1", "MwA", "interictal", 28),
    ("mwa01", "2", "MwA", "ictal", 28),
    ("mwa02", "1", "MwA", "interictal", 39),
    ("mwa02", "2", "MwA", "ictal", 39),
    ("mwa03", "1", "MwA", "interictal", 33),
    ("mwa03", "2", "MwA", "ictal", 33),
]


def write_map(output, subject, session, volume, run=None):
    folder = output / f"sub-{subject}" / f"ses-{session}" / "perf"
    folder.mkdir(parents=True, exist_ok=True)
    run_part = f"_run-{run}" if run else ""
    name = f"sub-{subject}_ses-{session}{run_part}_space-MNI152NLin2009aSym_cbf.nii.gz"
    nb.Nifti1Image(volume.astype(np.float32), AFFINE).to_filename(folder / name)


@pytest.fixture
def cohort(tmp_path):
    rng = np.random.default_rng(4)
    output = tmp_path / "out"
    volumes = {}
    for subject, session, group, phase, _ in UNITS:
        volume = 50 + rng.normal(0, 3, SHAPE)
        if group == "MwA" and phase == "ictal":
            volume[:4] *= 0.8  # left half (x < 0): -20 %
        volumes[subject, session] = volume
        write_map(output, subject, session, volume)
    # a second run of one session is averaged; a desc- map and a table are ignored
    extra = 50 + rng.normal(0, 3, SHAPE)
    write_map(output, "hc01", "1", extra, run=2)
    volumes["hc01", "1"] = (volumes["hc01", "1"].astype(np.float32) + extra.astype(np.float32)) / 2
    (output / "sub-hc01" / "ses-1" / "perf" / "sub-hc01_ses-1_space-X_desc-timeseries_cbf.nii.gz"
     ).write_bytes(b"")  # fmt: skip
    values = pd.DataFrame(
        [(s, ses, g, p, a, "F", "grey_matter", "cbf", 1.0) for s, ses, g, p, a in UNITS],
        columns=["subject", "session", "group", "phase", "age", "sex", "roi", "measure", "value"],
    )
    return output, values, volumes


def test_maps_are_found_and_runs_averaged(cohort):
    output, values, volumes = cohort
    found = find_cbf_maps(output)
    assert set(found["subject"]) == {"hc01", "hc02", "hc03", "mwa01", "mwa02", "mwa03"}
    assert (found["space"] == "MNI152NLin2009aSym").all() and len(found) == len(UNITS) + 1
    maps = load_unit_maps(output, values)
    assert maps.data.shape == (len(UNITS), *SHAPE)
    first = maps.units.index[(maps.units["subject"] == "hc01")][0]
    np.testing.assert_allclose(maps.data[first], volumes["hc01", "1"], rtol=1e-6)


def test_other_grid_is_refused(cohort):
    output, values, _ = cohort
    folder = output / "sub-hc02" / "ses-1" / "perf"
    name = "sub-hc02_ses-1_run-2_space-MNI152NLin2009aSym_cbf.nii.gz"
    nb.Nifti1Image(np.ones((4, 4, 4), np.float32), AFFINE).to_filename(folder / name)
    with pytest.raises(InputError, match="another grid"):
        load_unit_maps(output, values)


def test_voxelwise_t_equals_scipy(cohort, tmp_path):
    output, values, _ = cohort
    maps = load_unit_maps(output, values)
    found = {name: (rows, design) for name, rows, design, _, _ in contrasts(maps.units)}
    assert list(found) == ["interictalMwAvsHC"]  # MwoA absent: no MwoA contrasts
    rows, design = found["interictalMwAvsHC"]
    assert design.shape[1] == 3  # intercept, group, age (sex is constant: left out)
    summary, t_maps = run_voxelwise(maps, tmp_path / "g", MapSettings(permutations=50), ["s"])
    assert list(summary["contrast"]) == ["interictalMwAvsHC", "ictalvsinterictal"]
    paired = t_maps["within-patient ictal minus interictal (sign flipping)"]
    units = maps.units
    ictal = units.index[units["phase"] == "ictal"]
    base = [units.index[(units["subject"] == units.loc[i, "subject"])
                        & (units["phase"] == "interictal")][0] for i in ictal]  # fmt: skip
    expected = stats.ttest_rel(maps.data[ictal], maps.data[base], axis=0).statistic
    np.testing.assert_allclose(paired, expected, rtol=1e-6)
    assert (paired[:4] < 0).mean() > 0.9  # the left-half drop
    files = sorted(p.name for p in (tmp_path / "g" / "voxelwise").iterdir())
    assert "space-MNI152NLin2009aSym_contrast-ictalvsinterictal_stat-t_statmap.nii.gz" in files
    sidecar = json.loads(
        (tmp_path / "g" / "voxelwise" /
         "space-MNI152NLin2009aSym_contrast-ictalvsinterictal_stat-t_statmap.json").read_text()
    )  # fmt: skip
    assert sidecar["Sources"] == ["s"] and "ictal" in sidecar["Contrast"]


def test_patient_z_maps_and_asymmetry(cohort, tmp_path):
    output, values, _ = cohort
    maps = load_unit_maps(output, values)
    zmaps = run_patient_maps(maps, tmp_path / "g", ["s"])
    assert set(zmaps) == {f"sub-mwa0{n}_ses-{s}" for n in (1, 2, 3) for s in (1, 2)}
    units = maps.units
    controls = maps.data[units.index[units["group"] == "HC"]]
    patient = maps.data[units.index[(units["subject"] == "mwa01") & (units["phase"] == "ictal")][0]]
    voxel = (2, 3, 1)
    sample = controls[(slice(None), *voxel)]
    n = len(sample)  # 3 controls: too few for an age term, so the plain Crawford-Howell z
    expected = (patient[voxel] - sample.mean()) / (sample.std(ddof=1) * np.sqrt(1 + 1 / n))
    assert zmaps["sub-mwa01_ses-2"][voxel] == pytest.approx(expected, rel=1e-5)
    asym = nb.load(tmp_path / "g" / "patients" /
                   "sub-mwa01_ses-2_space-MNI152NLin2009aSym_desc-asymmetry_stat-ai_statmap.nii.gz"
                   ).get_fdata()  # fmt: skip
    left, right = patient[1, 2, 3], patient[6, 2, 3]  # mirror voxels about x = 0
    assert asym[1, 2, 3] == pytest.approx(2 * (left - right) / (left + right), rel=1e-5)


def test_small_designs_are_enumerated():
    assert enumerable(4, False, 1000) and enumerable(9, True, 1000)
    assert not enumerable(10, True, 1000) and not enumerable(7, False, 1000)


def test_patient_clusters_and_territory_crossing_are_written(cohort, tmp_path):
    """Every patient session is listed; with three controls (t df 2: |z| > 6.96 at p 0.01) the
    -20 % drop of the left half (3.3 SD of the white noise) in each ictal session is one hypo
    cluster over both left territories (crosses); interictal sessions have none (n/a, not "no")."""
    import json

    output, values, _ = cohort
    maps = load_unit_maps(output, values)
    labels = np.zeros(SHAPE, int)
    labels[:4, :3], labels[:4, 3:], labels[4:] = 1, 2, 3
    names = {1: "territory_A_L", 2: "territory_B_L", 3: "territory_A_R"}
    run_patient_maps(maps, tmp_path / "g", ["s"], (labels, names))
    table = pd.read_csv(tmp_path / "g" / "territories.tsv", sep="\t", keep_default_na=False)
    assert set(table["session_map"]) == {f"sub-mwa0{n}_ses-{s}" for n in (1, 2, 3) for s in (1, 2)}
    sidecar = json.loads((tmp_path / "g" / "patients" /
                          "sub-mwa01_ses-2_space-MNI152NLin2009aSym_stat-z_statmap.json"
                          ).read_text())["TerritoryCrossing"]  # fmt: skip
    assert sidecar["HeightP"] == 0.01 and sidecar["MinVolumeMl"] > 0.0
    calibration = sidecar["ExtentCalibration"]
    assert (calibration["FamilyWiseAlpha"], calibration["Rotations"]) == (0.05, 99)
    assert sidecar["HeightThresholdAbsZ"] == pytest.approx(6.9646, abs=1e-4)
    assert sidecar["Crosses"] is True and sidecar["Territories"] == [
        "territory_A_L",
        "territory_B_L",
    ]
    assert all(c["Direction"] == "hypo" and c["PeakMm"][0] < 0 for c in sidecar["Clusters"])
    ictal = table["session_map"].str.endswith("ses-2")
    assert (table.loc[ictal, "crosses_territories"] == "yes").all()
    assert (table.loc[ictal, "direction"] == "hypo").all()
    assert (table.loc[~ictal, "crosses_territories"] == "n/a").all()
