"""Validation: territory crossing of simulated one-territory vs two-territory lesions.

Simulated patients (:mod:`aslmig.sim.lesions`) on the bundled 2 mm template grid: a lesion
(CBF x (1 + EFFECT)) drawn inside one arterial territory (stroke-like) or across the border of
two (aura-like), in the territory pairs below, each patient compared with N_CONTROLS simulated
controls (:func:`aslmig.group.voxelwise.patient_zmap`), the clusters found and classified by
:func:`aslmig.group.territories.find_clusters` with the default settings and the extent
calibrated per patient by the rotation test (:func:`calibrated_settings`, family-wise 5 %;
99 rotations by default, 19 for a quicker run: the level is exact for both). Prints, per
lesion radius: detection rate (a hypo cluster overlapping the lesion), the classification
accuracy among detected lesions (crosses = two-territory truth), and the rate of lesion-free
patients with any cluster, each with its own fresh control cohort, with a 95 % Wilson
interval. Never asserts.

Run: python benchmarks/group_territories.py [PATIENTS_PER_CELL] [N_CONTROLS] [NULL_COHORTS]
[ROTATIONS] [SEED]
"""

import sys
import time

import numpy as np
from scipy import ndimage
from statsmodels.stats.proportion import proportion_confint

from aslmig.atlas.rois import shipped_migraine_atlas
from aslmig.group.patient_maps import patient_zmap
from aslmig.group.report import TERRITORY_LEVEL
from aslmig.group.territories import (
    HYPO,
    CrossingSettings,
    ExtentCalibration,
    calibrated_settings,
    find_clusters,
)
from aslmig.sim.anatomy import load_template_anatomy
from aslmig.sim.lesions import MapNoise, baseline_cbf, draw_lesion, subject_map

EFFECT = -0.50
RADII_MM = (6.0, 8.0, 10.0, 14.0)
PAIRS = (("territory_PCA_L", "territory_MCA_L"), ("territory_MCA_R", "territory_ACA_R"),
         ("territory_PCA_R", "territory_VB_R"))  # fmt: skip


def territory_image():
    """MigraineASL territories level on the bundled grid and the label -> name mapping."""
    import nibabel as nb

    atlas = shipped_migraine_atlas()
    labels = np.asanyarray(nb.load(atlas.image).dataobj)[..., TERRITORY_LEVEL].astype(int)
    table = atlas.table[atlas.table["name"].str.startswith("territory_")]
    return labels, dict(zip(table["index"].astype(int), table["name"], strict=True))


def peak_voxel(cluster, affine) -> tuple[int, int, int]:
    """Voxel index of a cluster's peak."""
    index = np.linalg.inv(affine) @ np.array([*cluster.peak_mm, 1.0])
    return tuple(int(v) for v in np.rint(index[:3]))


def main(
    per_cell: int = 10,
    n_controls: int = 10,
    null_cohorts: int = 40,
    rotations: int = 99,
    seed: int = 2026,
) -> None:
    anatomy = load_template_anatomy()
    noise = MapNoise()
    brain = anatomy.gm + anatomy.wm >= 0.5
    baseline = baseline_cbf(anatomy.gm, anatomy.wm, noise)
    labels, names = territory_image()
    rng = np.random.default_rng(seed)
    df = n_controls - 1

    def cohort():
        return np.stack([subject_map(baseline, anatomy.affine, noise, rng, brain)
                         for _ in range(n_controls)])  # fmt: skip

    controls = cohort()
    print(
        f"{n_controls} controls, CoV {noise.cov}, FWHM {noise.fwhm_mm} mm, effect {EFFECT} "
        f"(CNR {abs(EFFECT) / noise.cov:.1f}); |z| > {CrossingSettings().height(df):.2f} "
        f"(one-sided p < {CrossingSettings().height_p}, t df {df}), extent by rotation test "
        f"({rotations} rotations, 5 %)"
    )
    extents = []

    def analyse(lesion, reference):
        patient = subject_map(baseline, anatomy.affine, noise, rng, brain)
        if lesion is not None:
            patient = np.where(lesion, patient * (1.0 + EFFECT), patient)
        settings, _ = calibrated_settings(
            patient,
            reference,
            brain,
            anatomy.affine,
            calibration=ExtentCalibration(rotations=rotations),
        )
        extents.append(settings.min_volume_ml)
        z = np.where(brain, patient_zmap(patient, reference), np.nan)
        return find_clusters(z, labels, names, anatomy.affine, df, settings)

    started = time.perf_counter()
    null_hits = sum(bool(analyse(None, cohort()).clusters) for _ in range(null_cohorts))
    low, high = proportion_confint(null_hits, null_cohorts, method="wilson")
    print(
        f"null: {null_hits}/{null_cohorts} lesion-free patients with any cluster "
        f"= {null_hits / null_cohorts:.3f} (95 % CI {low:.3f}-{high:.3f}); extent "
        f"median {np.median(extents):.2f} mL (range {min(extents):.2f}-{max(extents):.2f})"
    )
    extents.clear()
    for radius in RADII_MM:
        detected = correct = total = volume = 0
        for first, second in PAIRS:
            for kind in (None, second):
                for _ in range(per_cell):
                    lesion = draw_lesion(labels, names, first, kind, radius, anatomy.affine, rng)
                    if lesion is None:
                        continue
                    total += 1
                    volume += lesion.sum() * 0.008
                    found = analyse(lesion, controls)
                    near = ndimage.binary_dilation(lesion, iterations=2)
                    hits = [
                        c
                        for c in found.clusters
                        if c.direction == HYPO and near[peak_voxel(c, anatomy.affine)]
                    ]
                    if not hits:
                        continue
                    detected += 1
                    correct += any(c.crosses for c in hits) == (kind is not None)
        print(
            f"radius {radius:4.1f} mm (mean lesion {volume / max(total, 1):5.2f} mL): "
            f"detected {detected}/{total}, classified {correct}/{max(detected, 1)} "
            f"= {correct / max(detected, 1):.2f}; extent median {np.median(extents):.2f} mL"
        )
        extents.clear()  # fmt: skip
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:6]))
