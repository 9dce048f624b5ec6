"""Benchmark: ``aslmig simulate`` of a 9-participant cohort at 4 mm, and the power grid.

Cohort: 3 HC + 3 MwA + 3 MwoA, phases interictal and ictal (patients have two sessions,
controls one: 15 sessions), PCASL single delay, 4 pairs, separate M0, regional effect
MwA:ictal:occipital_cortex_L=-0.15, default variability; once without head motion and once
with motion (1 mm / 1 degree, every volume resampled). Power: the default grid (2 designs x 4
sample sizes x 5 effects incl. 0, 2000 simulations per cell), and 20 000 simulations per
cell. Wall-clock seconds; never asserts.

Run: python benchmarks/simulate.py
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from aslmig.sim import CohortSpec, parse_effect, simulate_cohort
from aslmig.sim.power import PowerSpec, simulate_power

COHORT = dict(
    n_per_group={"HC": 3, "MwA": 3, "MwoA": 3},
    phases=("interictal", "ictal"),
    effects=(parse_effect("MwA:ictal:occipital_cortex_L=-0.15"),),
    voxel_mm=4.0,
)


def time_cohort(label: str, **extra) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        result = simulate_cohort(Path(tmp) / "bids", CohortSpec(**COHORT, **extra))
        seconds = time.perf_counter() - start
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 1e6
    print(
        f"simulate {label}: {len(result.participants)} participants, {len(result.sessions)} "
        f"sessions, {seconds:.1f} s ({seconds / len(result.sessions):.2f} s/session), "
        f"{size:.0f} MB written"
    )


def time_power(simulations: int) -> None:
    start = time.perf_counter()
    result = simulate_power(PowerSpec(simulations=simulations))
    seconds = time.perf_counter() - start
    print(f"power grid: {len(result.table)} cells x {simulations} simulations in {seconds:.2f} s")


def main() -> None:
    time_cohort("4 mm, no motion")
    time_cohort("4 mm, motion 1 mm / 1 deg", motion_translation_mm=1.0, motion_rotation_deg=1.0)
    time_power(2000)
    time_power(20_000)


if __name__ == "__main__":
    main()
