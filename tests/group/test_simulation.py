"""Simulated cohorts at ROI level: a known effect is detected, null data keep alpha."""

from __future__ import annotations

import numpy as np
import pandas as pd

from aslmig.group import models
from aslmig.group.modelspec import default_models

ROIS = (
    "grey_matter",
    "pons",
    "hypothalamus_L",
    "hypothalamus_R",
    "thalamus_L",
    "thalamus_R",
    "occipital_cortex_L",
    "occipital_cortex_R",
    "calcarine_L",
    "calcarine_R",
)


def cohort(rng, n: int = 20, effect: float = 0.0, rois=ROIS, unbalanced: bool = False):
    """Sessions of HC (interictal), MwA and MwoA (interictal + ictal), one value per ROI.

    CBF = subject level (between-subject SD 6) x (1 + effect in MwA ictal occipital ROIs)
    + session noise (SD 5, about 10%); age and sex have no effect.
    """
    rows = []
    for group in ("HC", "MwA", "MwoA"):
        for index in range(n):
            subject = f"{group}{index:02d}"
            age, sex = float(rng.integers(20, 60)), "FM"[int(rng.integers(2))]
            level = 50 + rng.normal(0, 6)
            phases = ["interictal"] if group == "HC" else ["interictal", "ictal"]
            if unbalanced and group != "HC" and index % 4 == 0:
                phases = ["interictal", "interictal", "ictal"] if index % 8 else ["ictal"]
            for session, phase in enumerate(phases, start=1):
                noise = rng.normal(0, 5, len(rois))
                for roi, e in zip(rois, noise, strict=True):
                    hit = group == "MwA" and phase == "ictal" and roi.startswith("occipital")
                    value = level * (1 + (effect if hit else 0.0)) + e
                    rows.append(
                        (subject, str(session), group, phase, age, sex, "", roi, "cbf", value)
                    )
    columns = [
        "subject",
        "session",
        "group",
        "phase",
        "age",
        "sex",
        "site",
        "roi",
        "measure",
        "value",
    ]
    return pd.DataFrame(rows, columns=columns)


def test_fifteen_percent_ictal_occipital_drop_in_mwa_is_detected():
    rng = np.random.default_rng(20240607)
    table = models.fit_models(default_models()[1:2], cohort(rng, n=20, effect=-0.15), ["cbf"])
    mwa = table[table["contrast"] == "MwA: ictal - interictal"].set_index(["test", "roi"])
    for test in ("paired_t", "wilcoxon", "lmm"):
        for roi in ("occipital_cortex_L", "occipital_cortex_R"):
            row = mwa.loc[(test, roi)]
            print(f"\ndetection {test} {roi}: estimate {row['estimate']:.2f}, q {row['q']:.2e}")
            assert row["q"] < 0.05, (test, roi, row["q"])
            if test != "wilcoxon":
                assert row["estimate"] < 0 and row["ci_high"] < 0
    # The untouched ROIs are not all called significant.
    others = mwa.loc["paired_t"].drop(["occipital_cortex_L", "occipital_cortex_R"])
    assert (others["q"] >= 0.05).mean() > 0.5


def _null_p_values(rng) -> dict[str, float]:
    data = cohort(rng, n=12, rois=("pons",), unbalanced=True)
    p = {}
    rows = models.ancova(
        models.subject_values(data, "interictal"), ("MwA", "MwoA", "HC"), ("age", "sex"), "auto"
    )
    for row in rows:
        p[f"ancova {row['contrast']}"] = row["p"]
    mwa = data[data["group"] == "MwA"]
    for row in models.paired_tests(mwa, "ictal", "interictal", "MwA"):
        p[row["test"]] = row["p"]
    p["lmm within"] = models.within_lmm(mwa, "ictal", "interictal", "MwA")["p"]
    p["lmm aura x phase"] = models.interaction_lmm(data, "MwA", "MwoA", "ictal", "interictal")["p"]
    ai = data[data["group"] == "MwA"].assign(value=lambda frame: rng.normal(0, 0.05, len(frame)))
    for row in models.one_sample(ai, "MwA", "ictal"):
        p[f"one-sample {row['test']}"] = row["p"]
    return p


def test_false_positive_rate_under_the_null_is_at_most_seven_percent():
    rng = np.random.default_rng(7)
    runs = pd.DataFrame([_null_p_values(rng) for _ in range(600)])
    assert runs.notna().all().all()
    rates = (runs < 0.05).mean()
    print("\nfalse-positive rates at alpha 0.05 (600 null cohorts):\n" + rates.to_string())
    assert (rates <= 0.07).all(), rates.to_dict()
    assert (rates >= 0.01).all(), rates.to_dict()  # the tests are not dead either
