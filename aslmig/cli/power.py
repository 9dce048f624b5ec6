"""``aslmig power``: power and false-positive rate of regional CBF comparisons, by simulation."""

from __future__ import annotations

import argparse
from pathlib import Path

from aslmig.cli.parser import CommandParser, number, whole_number
from aslmig.sim.io import write_json, write_tsv
from aslmig.sim.plots import power_png, power_svg
from aslmig.sim.power import (
    DESIGNS,
    TESTS,
    PowerResult,
    PowerSpec,
    format_power,
    line_series,
    power_parameters,
    simulate_power,
)

EXIT_OK = 0
_DEFAULTS = PowerSpec()
X_LABELS = {"two-sample": "n per group", "paired": "n patients"}




def build_power_parser() -> argparse.ArgumentParser:
    """Return the parser of ``aslmig power``."""
    parser = CommandParser(
        prog="aslmig power",
        description="Estimate the power (and false-positive rate) of regional CBF comparisons "
        "by simulating many studies at the ROI level: patients vs controls (two-sample t) "
        "and ictal vs interictal within patients (paired t).",
    )
    add = parser.add_argument
    add(
        "--n",
        nargs="+",
        type=whole_number,
        default=list(_DEFAULTS.n),
        metavar="N",
        help="sample sizes: per group (two-sample) or patients (paired) (default 10 20 30 40)",
    )
    add(
        "--effects",
        nargs="+",
        type=number,
        default=list(_DEFAULTS.effects),
        metavar="FRACTION",
        help="fractional CBF changes (default -0.05 -0.10 -0.15 -0.20)",
    )
    add(
        "--between-sd",
        type=number,
        default=_DEFAULTS.between_sd,
        help="between-participant SD of regional CBF, fraction of baseline (default %(default)s)",
    )
    add(
        "--within-sd",
        type=number,
        default=_DEFAULTS.within_sd,
        help="within-participant (test-retest) SD, fraction of baseline (default %(default)s)",
    )
    add(
        "--baseline",
        type=number,
        default=_DEFAULTS.baseline,
        help="baseline regional CBF, mL/100 g/min (default %(default)s)",
    )
    add(
        "--alpha",
        type=number,
        default=_DEFAULTS.alpha,
        help="two-sided significance level (default %(default)s)",
    )
    add(
        "--simulations",
        type=whole_number,
        default=_DEFAULTS.simulations,
        help="simulated studies per cell (default %(default)s)",
    )
    add(
        "--design",
        nargs="+",
        choices=DESIGNS,
        default=list(DESIGNS),
        help="designs to simulate (default: both)",
    )
    add(
        "--test",
        choices=TESTS,
        default=_DEFAULTS.test,
        help="two-sample t test: Welch (unequal variances) or pooled (default %(default)s)",
    )
    add("--seed", type=whole_number, default=_DEFAULTS.seed, help="random seed (default 0)")
    add(
        "--out",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write power.tsv, power.json, power.png and power.svg to DIR",
    )
    return parser


def write_power(result: PowerResult, out_dir: Path) -> list[Path]:
    """Write the table, parameters and figures of a power analysis.

    Parameters
    ----------
    result : PowerResult
        The simulated grid.
    out_dir : Path
        Destination folder (created).

    Returns
    -------
    list of Path
        The files written.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    table = result.table
    panels = {}
    for design in result.spec.designs:
        test = "paired t" if design == "paired" else f"{result.spec.test} t"
        x_values, series = line_series(result, design)
        panels[f"{design} ({test})"] = (x_values, series, X_LABELS[design])
    files = [
        write_tsv(out_dir / "power.tsv", list(table.columns), table.values.tolist()),
        write_json(out_dir / "power.json", power_parameters(result)),
        out_dir / "power.png",
        out_dir / "power.svg",
    ]
    files[2].write_bytes(power_png(panels))
    files[3].write_text(power_svg(panels))
    return files


def power_command(argv: list[str]) -> int:
    """Run ``aslmig power``.

    Parameters
    ----------
    argv : list of str
        Arguments after ``power``.

    Returns
    -------
    int
        Exit status (usage and input errors propagate to :func:`aslmig.cli.run.main`).
    """
    args = build_power_parser().parse_args(argv)
    spec = PowerSpec(
        n=tuple(args.n),
        effects=tuple(args.effects),
        between_sd=args.between_sd,
        within_sd=args.within_sd,
        baseline=args.baseline,
        alpha=args.alpha,
        simulations=args.simulations,
        designs=tuple(dict.fromkeys(args.design)),
        test=args.test,
        seed=args.seed,
    )
    result = simulate_power(spec)
    print(format_power(result))
    print(f"\n{len(result.table)} cells simulated in {result.seconds:.2f} s")
    if args.out is not None:
        for path in write_power(result, args.out):
            print(f"Wrote {path}")
    return EXIT_OK
