"""Synthetic ASL-BIDS migraine cohorts with known ground truth, and power analysis.

The forward models come from :mod:`aslmig.cbf`; nothing here re-implements physics.
"""

from aslmig.sim.cohort import SimulationResult, simulate_cohort
from aslmig.sim.power import PowerResult, PowerSpec, simulate_power
from aslmig.sim.spec import CohortSpec, Effect, parse_effect

__all__ = [
    "CohortSpec",
    "Effect",
    "PowerResult",
    "PowerSpec",
    "SimulationResult",
    "parse_effect",
    "simulate_cohort",
    "simulate_power",
]
