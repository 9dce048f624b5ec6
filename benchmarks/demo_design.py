"""Power and false discoveries of the demo's group level, by ROI-level simulation (no images).

For a candidate demo cohort, draws ``--cohorts`` cohorts with :mod:`aslmig.sim.roitable` (the
same participant/session plans and variability as the image simulator; the effect changes
only the region it names), writes them as participant ROI tables, fits the group level's
default models (:func:`aslmig.group.run.compute_group`, no voxelwise step) and prints:

* the power of the primary row (``ictal_vs_interictal`` / ``cbf`` / ``MwA`` paired t test of
  ``occipital_cortex_L``, q < 0.05) next to the analytic paired-t power at the family's
  Bonferroni level (a lower bound of the BH power);
* the number of test families and of rows at q < 0.05 that no simulated effect explains
  (false discoveries), their mean per cohort, and the share of cohorts with none;
* the share of cohorts that pass the demo's claim (primary detected and nothing else).

Usage::

    python benchmarks/demo_design.py --mwa 12 --hc 6 --mwoa 4 --cohorts 40
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "group"))

from group_builders import ROIS, write_simulated_cohort  # noqa: E402

from aslmig.group.modelspec import read_model_file  # noqa: E402
from aslmig.group.run import compute_group  # noqa: E402
from aslmig.sim.power import analytic_power  # noqa: E402
from aslmig.sim.roitable import simulate_roi_values  # noqa: E402
from aslmig.sim.spec import CohortSpec, parse_effect  # noqa: E402

EFFECT = "MwA:ictal:occipital_cortex_L=-0.15"
#: Rows a -15 % MwA ictal change of occipital_cortex_L explains (ROI-level cohorts change no
#: other region): its own region and the occipital asymmetry index.
EXPLAINED_ROIS = ("occipital_cortex_L", "occipital_cortex")


def discoveries(statistics: pd.DataFrame) -> tuple[float, pd.DataFrame]:
    """The primary row's q and the rows at q < 0.05 that the simulated effect does not explain."""
    q = pd.to_numeric(statistics["q"], errors="coerce")
    primary = statistics[
        (statistics["model"] == "ictal_vs_interictal")
        & (statistics["measure"] == "cbf")
        & (statistics["contrast"].str.startswith("MwA:"))
        & (statistics["roi"] == "occipital_cortex_L")
        & (statistics["test"].str.startswith("paired"))
    ]
    explained = (
        statistics["roi"].isin(EXPLAINED_ROIS)
        & statistics["contrast"].str.contains("MwA")
        & (statistics["model"] != "between_group")
    )
    unexplained = statistics[(q < 0.05) & ~explained]
    return float(pd.to_numeric(primary["q"], errors="coerce").min()), unexplained


def run(
    spec: CohortSpec, measurement_sd: float, folder: Path, model: Path | None
) -> tuple[float, pd.DataFrame, int]:
    """One cohort: primary q, unexplained discoveries, number of families."""
    values = simulate_roi_values(spec, ROIS, measurement_sd=measurement_sd)
    bids, out = write_simulated_cohort(values, folder)
    result = compute_group(bids, out, read_model_file(model))
    q, unexplained = discoveries(result.statistics)
    return q, unexplained, result.statistics["family"].nunique()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hc", type=int, default=6)
    parser.add_argument("--mwa", type=int, default=12)
    parser.add_argument("--mwoa", type=int, default=4)
    parser.add_argument("--cohorts", type=int, default=40)
    parser.add_argument("--measurement-sd", type=float, default=0.03)
    parser.add_argument("--session-sd", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--model", type=Path, help="group model file (default models)")
    args = parser.parse_args()
    within = math.hypot(args.session_sd, args.measurement_sd)
    d_z = 0.15 / (math.sqrt(2.0) * within)
    bonferroni = 0.05 / len(ROIS)
    print(
        f"cohort HC={args.hc} MwA={args.mwa} MwoA={args.mwoa}; within-subject SD "
        f"{within:.3f} (session {args.session_sd}, measurement {args.measurement_sd}); "
        f"d_z {d_z:.2f}; analytic paired-t power at alpha {bonferroni:.4f} "
        f"(0.05/{len(ROIS)} ROIs): {analytic_power('paired', args.mwa, d_z, bonferroni):.3f}"
    )
    q_values, false_counts, families, tables = [], [], 0, []
    start = time.perf_counter()
    for index in range(args.cohorts):
        spec = CohortSpec(
            n_per_group={"HC": args.hc, "MwA": args.mwa, "MwoA": args.mwoa},
            phases=("interictal", "ictal"),
            effects=(parse_effect(EFFECT),),
            session_sd=args.session_sd,
            seed=args.seed + index,
        )
        with tempfile.TemporaryDirectory() as folder:
            q, unexplained, families = run(spec, args.measurement_sd, Path(folder), args.model)
        q_values.append(q)
        false_counts.append(len(unexplained))
        tables.append(unexplained.assign(seed=spec.seed))
    q_values, false_counts = np.array(q_values), np.array(false_counts)
    detected = q_values < 0.05
    print(f"{args.cohorts} cohorts in {time.perf_counter() - start:.0f} s; {families} families")
    print(f"primary detected (q < 0.05): {detected.mean():.3f}")
    print(
        f"false discoveries per cohort: mean {false_counts.mean():.3f}; cohorts with none "
        f"{(false_counts == 0).mean():.3f}"
    )
    holds = (detected & (false_counts == 0)).mean()
    print(f"demo claim holds (detected and nothing else): {holds:.3f}")
    found = pd.concat(tables, ignore_index=True)
    if len(found):
        print(found[["seed", "model", "measure", "test", "contrast", "roi", "q"]].to_string())


if __name__ == "__main__":
    main()
