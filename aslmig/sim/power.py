"""Statistical power of regional CBF comparisons, by fast ROI-level simulation (no images).

Model (fractions of a baseline regional CBF ``B``): participant ``i`` has a true regional CBF
``B·(1 + b_i)`` with ``b_i ~ N(0, between_sd²)``; every measurement adds a test–retest error
``B·e_ij`` with ``e_ij ~ N(0, within_sd²)``; an effect ``Δ`` adds ``B·Δ`` to the measurements
of the affected condition (patients, or the ictal session).

Designs:

* ``two-sample``: one measurement per participant, ``n`` patients vs ``n`` controls, Welch
  (default) or pooled-variance t test. Standardised effect d = Δ / √(between_sd² + within_sd²).
* ``paired``: ``n`` patients measured in two phases (e.g. ictal vs interictal), paired t test
  on the differences. Standardised effect d_z = Δ / (√2 · within_sd).

Every grid cell is one vectorised numpy computation over all simulations; within a design and
sample size the same simulated noise serves every effect size (common random numbers), so the
power curves are smooth. Power is the fraction of two-sided p-values below α; at Δ = 0 it is
the false-positive rate.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import pandas as pd
from scipy import stats

from aslmig.errors import InputError, quote

DESIGNS = ("two-sample", "paired")
TESTS = ("welch", "pooled")
COLUMNS = (
    "design",
    "test",
    "n",
    "effect",
    "effect_size",
    "power",
    "power_se",
    "analytic_power",
)


@dataclass(frozen=True)
class PowerSpec:
    """The power-analysis grid and variability model.

    Attributes
    ----------
    n : tuple of int
        Sample sizes: participants per group (two-sample) or patients (paired).
    effects : tuple of float
        Fractional CBF changes (e.g. -0.10 for -10 %).
    between_sd : float
        Between-participant SD of regional CBF, fraction of the baseline.
    within_sd : float
        Within-participant (test–retest, measurement) SD, fraction of the baseline.
    baseline : float
        Baseline regional CBF, mL/100 g/min (sets the units only).
    alpha : float
        Two-sided significance level.
    simulations : int
        Simulated studies per grid cell.
    designs : tuple of str
        ``two-sample`` and/or ``paired``.
    test : str
        Two-sample test: ``welch`` or ``pooled``.
    seed : int
        Random seed.
    """

    n: tuple[int, ...] = (10, 20, 30, 40)
    effects: tuple[float, ...] = (-0.05, -0.10, -0.15, -0.20)
    between_sd: float = 0.15
    within_sd: float = 0.08
    baseline: float = 60.0
    alpha: float = 0.05
    simulations: int = 2000
    designs: tuple[str, ...] = DESIGNS
    test: str = "welch"
    seed: int = 0


def check_power_spec(spec: PowerSpec) -> None:
    """Refuse an impossible grid with a one-line :class:`InputError` naming the option."""
    if not spec.n or any(int(n) != n or n < 2 for n in spec.n):
        raise InputError("--n", f"is {quote(list(spec.n))}", "give whole numbers >= 2")
    if not spec.effects or any(not (math.isfinite(e) and -1 < e < 1) for e in spec.effects):
        raise InputError(
            "--effects", f"is {quote(list(spec.effects))}", "give fractions in (-1, 1)"
        )
    for option, value in (("--between-sd", spec.between_sd), ("--within-sd", spec.within_sd)):
        if not (math.isfinite(value) and value >= 0):
            raise InputError(option, f"is {quote(value)}", "give a fraction >= 0")
    if spec.within_sd <= 0:
        raise InputError("--within-sd", "is 0", "measurements always vary: give a fraction > 0")
    if not (math.isfinite(spec.baseline) and spec.baseline > 0):
        raise InputError("--baseline", f"is {quote(spec.baseline)}", "give a positive CBF")
    if not 0 < spec.alpha < 1:
        raise InputError("--alpha", f"is {quote(spec.alpha)}", "give a level in (0, 1)")
    if int(spec.simulations) != spec.simulations or not 100 <= spec.simulations <= 1_000_000:
        raise InputError("--simulations", f"is {quote(spec.simulations)}", "give 100-1000000")
    if not spec.designs or any(d not in DESIGNS for d in spec.designs):
        raise InputError("--design", f"is {quote(list(spec.designs))}", f"use {', '.join(DESIGNS)}")
    if spec.test not in TESTS:
        raise InputError("--test", f"is {quote(spec.test)}", f"use {', '.join(TESTS)}")


def _p_values(t: np.ndarray, df: np.ndarray | float) -> np.ndarray:
    return 2.0 * stats.t.sf(np.abs(t), df)


def two_sample_p_values(
    spec: PowerSpec, n: int, effects: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Two-sided p-values of simulated two-sample studies.

    Parameters
    ----------
    spec : PowerSpec
        Variability model and test.
    n : int
        Participants per group.
    effects : ndarray
        Fractional effects, shape ``(k,)``.
    rng : numpy.random.Generator
        Random stream.

    Returns
    -------
    ndarray
        ``(k, simulations)`` p-values.
    """
    sd = spec.baseline * math.hypot(spec.between_sd, spec.within_sd)
    shape = (spec.simulations, n)
    controls = spec.baseline + sd * rng.standard_normal(shape)
    patients = spec.baseline + sd * rng.standard_normal(shape)
    var_c, var_p = controls.var(axis=1, ddof=1), patients.var(axis=1, ddof=1)
    difference = patients.mean(axis=1) - controls.mean(axis=1)
    shifted = difference[None, :] + spec.baseline * effects[:, None]
    if spec.test == "pooled":
        se = np.sqrt((var_c + var_p) / n)  # pooled variance with equal n: (v1 + v2) / 2 · 2/n
        return _p_values(shifted / se, 2 * n - 2)
    se2_c, se2_p = var_c / n, var_p / n
    df = (se2_c + se2_p) ** 2 / (se2_c**2 / (n - 1) + se2_p**2 / (n - 1))
    return _p_values(shifted / np.sqrt(se2_c + se2_p), df)


def paired_p_values(
    spec: PowerSpec, n: int, effects: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """Two-sided p-values of simulated paired studies (``n`` patients, two phases).

    Parameters
    ----------
    spec : PowerSpec
        Variability model.
    n : int
        Patients.
    effects : ndarray
        Fractional effects, shape ``(k,)``.
    rng : numpy.random.Generator
        Random stream.

    Returns
    -------
    ndarray
        ``(k, simulations)`` p-values.
    """
    shape = (spec.simulations, n)
    subject = spec.baseline * spec.between_sd * rng.standard_normal(shape)
    noise = spec.baseline * spec.within_sd
    first = spec.baseline + subject + noise * rng.standard_normal(shape)
    second = spec.baseline + subject + noise * rng.standard_normal(shape)
    differences = second - first
    se = differences.std(axis=1, ddof=1) / math.sqrt(n)
    shifted = differences.mean(axis=1)[None, :] + spec.baseline * effects[:, None]
    return _p_values(shifted / se, n - 1)


def standardised_effect(spec: PowerSpec, design: str, effect: float) -> float:
    """Cohen's d (two-sample) or d_z (paired) of a fractional effect."""
    if design == "paired":
        return effect / (math.sqrt(2.0) * spec.within_sd)
    return effect / math.hypot(spec.between_sd, spec.within_sd)


def analytic_power(design: str, n: int, effect_size: float, alpha: float) -> float:
    """Power of the two-sided t test from the noncentral t distribution.

    Parameters
    ----------
    design : str
        ``two-sample`` (pooled t, ``n`` per group) or ``paired`` (one-sample t on ``n``
        differences).
    n : int
        Sample size.
    effect_size : float
        d or d_z.
    alpha : float
        Significance level.

    Returns
    -------
    float
        Power.
    """
    if design == "paired":
        df, noncentrality = n - 1, effect_size * math.sqrt(n)
    else:
        df, noncentrality = 2 * n - 2, effect_size * math.sqrt(n / 2.0)
    critical = stats.t.isf(alpha / 2.0, df)
    upper = stats.nct.sf(critical, df, noncentrality)
    # P(T < -c | delta) written as P(T > c | -delta): scipy 1.15's nct.cdf returns NaN far in
    # its lower tail (n 12, d_z 1.819, alpha 0.05/21), its sf of the mirrored case does not.
    lower = stats.nct.sf(critical, df, -noncentrality)
    return float(upper + lower)


@dataclass(frozen=True)
class PowerResult:
    """Power and false-positive rate over the grid.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per design, sample size and effect (:data:`COLUMNS`); rows with effect 0
        hold the false-positive rate.
    spec : PowerSpec
        The grid.
    seconds : float
        Wall time of the simulations.
    """

    table: pd.DataFrame
    spec: PowerSpec
    seconds: float

    def false_positive_rates(self) -> pd.DataFrame:
        """Rows of effect 0: the false-positive rate per design and sample size."""
        return self.table[self.table["effect"] == 0].reset_index(drop=True)


def simulate_power(spec: PowerSpec) -> PowerResult:
    """Simulate every cell of the grid (the effects plus 0 for the false-positive rate).

    Parameters
    ----------
    spec : PowerSpec
        The grid and variability model.

    Returns
    -------
    PowerResult
        The table.
    """
    check_power_spec(spec)
    start = time.perf_counter()
    effects = np.array([0.0, *[e for e in spec.effects if e != 0]])
    simulate = {"two-sample": two_sample_p_values, "paired": paired_p_values}
    rows = []
    for design in spec.designs:
        for n in spec.n:
            rng = np.random.default_rng([spec.seed, DESIGNS.index(design), int(n)])
            rejected = simulate[design](spec, int(n), effects, rng) < spec.alpha
            power = rejected.mean(axis=1)
            for effect, value in zip(effects, power, strict=True):
                size = standardised_effect(spec, design, float(effect))
                rows.append(
                    {
                        "design": design,
                        "test": "paired" if design == "paired" else spec.test,
                        "n": int(n),
                        "effect": float(effect),
                        "effect_size": size,
                        "power": float(value),
                        "power_se": math.sqrt(value * (1 - value) / spec.simulations),
                        "analytic_power": analytic_power(design, int(n), size, spec.alpha),
                    }
                )
    table = pd.DataFrame(rows, columns=list(COLUMNS))
    return PowerResult(table, spec, time.perf_counter() - start)


def format_power(result: PowerResult) -> str:
    """Plain-text tables: one per design, sample sizes down, effects across, FPR first."""
    spec = result.spec
    lines = [
        f"aslmig power: {spec.simulations} simulated studies per cell, two-sided alpha "
        f"{spec.alpha:g}; between-participant SD {spec.between_sd:.0%}, within-participant "
        f"(test-retest) SD {spec.within_sd:.0%} of a baseline of {spec.baseline:g} "
        "mL/100 g/min",
    ]
    effects = grid_effects(spec)
    for design in spec.designs:
        part = result.table[result.table["design"] == design]
        label = "n per group" if design == "two-sample" else "n patients"
        test = "paired t" if design == "paired" else f"{spec.test} t"
        lines += ["", f"{design} ({test}): power by fractional CBF change", ""]
        header = f"{label:>12}  {'FPR':>6}" + "".join(f"{e:>+8.0%}" for e in effects)
        lines.append(header)
        for n in spec.n:
            cells = part[part["n"] == n].set_index("effect")["power"]
            row = f"{n:>12}  {cells[0.0]:>6.3f}" + "".join(f"{cells[e]:>8.2f}" for e in effects)
            lines.append(row)
    return "\n".join(lines)


def power_parameters(result: PowerResult) -> dict:
    """Return the grid, model and timing, for ``power.json``."""
    spec = asdict(result.spec)
    return {
        "spec": {k: list(v) if isinstance(v, tuple) else v for k, v in spec.items()},
        "model": __doc__.split("Designs:")[0].strip(),
        "seconds": result.seconds,
    }


def line_series(result: PowerResult, design: str) -> tuple[list[int], dict[str, list[float]]]:
    """Sample sizes and power per effect (label -> values) of one design, for the plots."""
    part = result.table[(result.table["design"] == design) & (result.table["effect"] != 0)]
    series = {}
    for effect in grid_effects(result.spec):
        values = part[part["effect"] == effect].sort_values("n")["power"]
        series[f"{effect:+.0%}"] = [float(v) for v in values]
    return sorted(int(n) for n in result.spec.n), series


def grid_effects(spec: PowerSpec) -> Sequence[float]:
    """Non-zero effects of the grid, in the order given."""
    return [e for e in spec.effects if e != 0]
