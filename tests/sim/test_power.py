"""``aslmig power``: simulated power agrees with analytic t-test power; FPR is alpha."""

from __future__ import annotations

import math
import struct
from xml.etree import ElementTree

import numpy as np
import pandas as pd
import pytest
from statsmodels.stats.power import TTestIndPower, TTestPower

from aslmig.cli.run import main
from aslmig.sim.plots import power_svg
from aslmig.sim.power import PowerSpec, analytic_power, simulate_power

SVG = "{http://www.w3.org/2000/svg}"

GRID = dict(n=(10, 20, 30, 40), effects=(-0.05, -0.10, -0.15, -0.20), simulations=4000)


@pytest.mark.parametrize("test", ["pooled", "welch"])
def test_two_sample_power_matches_statsmodels(test):
    spec = PowerSpec(designs=("two-sample",), test=test, seed=11, **GRID)
    table = simulate_power(spec).table
    rows = table[table["effect"] != 0]
    sigma = math.hypot(spec.between_sd, spec.within_sd)
    analytic = [
        TTestIndPower().power(effect_size=abs(e) / sigma, nobs1=n, alpha=spec.alpha, ratio=1.0)
        for n, e in zip(rows["n"], rows["effect"], strict=True)
    ]
    difference = np.abs(rows["power"].to_numpy() - np.array(analytic))
    assert len(rows) == 16
    assert difference.max() < 0.05
    np.testing.assert_allclose(rows["analytic_power"], analytic, atol=1e-6)


def test_paired_power_matches_statsmodels():
    spec = PowerSpec(designs=("paired",), seed=12, within_sd=0.12, **GRID)
    table = simulate_power(spec).table
    rows = table[table["effect"] != 0]
    analytic = [
        TTestPower().power(
            effect_size=abs(e) / (math.sqrt(2) * spec.within_sd), nobs=n, alpha=spec.alpha
        )
        for n, e in zip(rows["n"], rows["effect"], strict=True)
    ]
    assert np.abs(rows["power"].to_numpy() - np.array(analytic)).max() < 0.05


@pytest.mark.parametrize(
    "n, d_z, alpha", [(12, 1.819, 0.05 / 21), (6, 3.0, 0.001), (40, 0.2, 0.05)]
)
def test_analytic_paired_power_is_finite_far_in_the_tail(n, d_z, alpha):
    """scipy 1.15's nct.cdf (and so statsmodels' two-sided power) is NaN in the first case,
    whose lower tail is ~1e-17: there the power is the upper tail alone."""
    power = analytic_power("paired", n, d_z, alpha)
    expected = TTestPower().power(effect_size=d_z, nobs=n, alpha=alpha)
    if math.isnan(expected):
        expected = TTestPower().power(d_z, nobs=n, alpha=alpha / 2, alternative="larger")
    assert power == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(
    "test, sizes, bound",
    [("pooled", (5, 10, 20, 40), 3.0), ("welch", (10, 20, 30, 40), 4.0)],
)
def test_false_positive_rate_is_alpha(test, sizes, bound):
    """Pooled and paired t are exact; Welch is slightly conservative for small samples."""
    spec = PowerSpec(n=sizes, simulations=20_000, seed=13, test=test)
    fpr = simulate_power(spec).false_positive_rates()
    assert len(fpr) == 8
    se = math.sqrt(spec.alpha * (1 - spec.alpha) / spec.simulations)
    assert np.all(np.abs(fpr["power"] - spec.alpha) < bound * se)


def test_same_seed_same_table():
    spec = PowerSpec(simulations=500, seed=3)
    pd.testing.assert_frame_equal(simulate_power(spec).table, simulate_power(spec).table)


def test_power_command_prints_and_writes(tmp_path, capsys):
    out = tmp_path / "power"
    assert (
        main(
            [
                "power",
                "--n",
                "10",
                "20",
                "--effects",
                "-0.1",
                "-0.2",
                "--simulations",
                "500",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert "two-sample (welch t)" in printed and "paired (paired t)" in printed
    assert "FPR" in printed
    table = pd.read_csv(out / "power.tsv", sep="\t")
    assert len(table) == 2 * 2 * 3
    assert set(table["effect"]) == {0.0, -0.1, -0.2}
    png = (out / "power.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", png[16:24])
    assert (width, height) == (1200, 400)  # two 6 x 4 inch panels at 100 dpi
    svg = ElementTree.parse(out / "power.svg").getroot()
    assert svg.tag == f"{SVG}svg"
    texts = {"".join(node.itertext()).strip() for node in svg.iter(f"{SVG}text")}
    assert {"two-sample (welch t)", "paired (paired t)", "power"} <= texts
    assert (out / "power.json").is_file()


@pytest.mark.parametrize(
    "arguments, message",
    [
        (["--n", "1"], "--n"),
        (["--effects", "1.5"], "--effects"),
        (["--within-sd", "0"], "--within-sd"),
        (["--alpha", "1"], "--alpha"),
        (["--simulations", "10"], "--simulations"),
        (["--design", "crossover"], "invalid choice"),
    ],
)
def test_power_bad_input(arguments, message, capsys, tmp_path):
    assert main(["power", *arguments, "--out", str(tmp_path / "p")]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "p").exists()


def test_power_svg_is_reproducible_and_keeps_hostile_labels_as_text():
    panels = {"paired <b>&": ([10, 20], {"-10% \u2013 <i>": [0.2, 0.5]}, "patients")}
    first, second = power_svg(panels), power_svg(panels)
    assert first == second
    root = ElementTree.fromstring(first)
    texts = {"".join(node.itertext()).strip() for node in root.iter(f"{SVG}text")}
    assert {"paired <b>&", "-10% \u2013 <i>", "patients"} <= texts
    assert not list(root.iter(f"{SVG}script"))
