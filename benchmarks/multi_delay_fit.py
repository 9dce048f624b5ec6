"""Benchmark: vectorised multi-delay fit vs a per-voxel scipy curve_fit loop.

Two problems, each fitted by aslmig's batched Levenberg-Marquardt (2 threads) and by
``scipy.optimize.curve_fit`` one voxel at a time (the way existing tools fit) on a subsample
whose time is scaled to all voxels:

* tissue only: PCASL from the full Buxton model (CBF 10-100 mL/100 g/min, ATT 0.5-2.0 s),
  6 PLDs 0.25-2.5 s;
* with the arterial component: sub-O2019's protocol (6 PLDs 0.25-1.5 s, labeling 1.4 s),
  CBF 20-90, ATT 0.8-1.6 s, aBV 0.5-2 %, arterial arrival 0.3-0.5 s before the tissue's;
  curve_fit starts from BASIL's prior means.

Noise-free data measure exactness; noisy data (the same noise for both fitters) show
accuracy. With the arterial component the batched fit normally keeps it only where an
F-test supports it (a tissue-only fit elsewhere), while curve_fit fits the four-parameter
model everywhere; the accuracy is therefore compared on the same model (selection level 1.0,
the four-parameter fit in every voxel) and shown for the default selection too, with the
noise variance known as it is from repeats. The cost each fitter reaches on the same noisy
curve tells the optimiser apart from the estimator. Timings are of the default path, after
the numba start-grid kernel was compiled once (its compile time is printed apart).
Prints figures; never asserts on time.

Run: python benchmarks/multi_delay_fit.py [n_voxels] [n_loop_voxels]
"""

import sys
import time
import warnings
from collections import defaultdict
from contextlib import contextmanager

import numpy as np
from scipy.optimize import OptimizeWarning, curve_fit

from aslmig.cbf import FitOptions, KineticSettings, fit_kinetic_curves, kinetic_fit, kinetic_signal
from aslmig.cbf.constants import resolve_constants
from aslmig.cbf.kinetic import arterial_signal_and_jacobian, tissue_signal

N_THREADS = 2
TISSUE = {"plds": np.array([0.25, 0.5, 1.0, 1.5, 2.0, 2.5]), "tau": 1.8}
ARTERIAL = {"plds": np.array([0.25, 0.5, 0.75, 1.0, 1.25, 1.5]), "tau": 1.4}
NOISE_SD = 2e-4  # in units of dM/M0 (GM signal at PLD 1.8 s is about 5e-3)
BOUNDS = ([-100.0, 0.0, 0.0, 0.0], [500.0, 4.0, 0.1, 4.0])


def simulate(n, constants, rng, arterial):
    protocol = ARTERIAL if arterial else TISSUE
    if arterial:
        truth = np.column_stack([
            rng.uniform(20.0, 90.0, n), rng.uniform(0.8, 1.6, n), rng.uniform(0.005, 0.02, n),
        ])  # fmt: skip
        truth = np.column_stack([truth, truth[:, 1] - rng.uniform(0.3, 0.5, n)])
        extra = {"abv": truth[:, 2:3], "att_arterial": truth[:, 3:4]}
    else:
        truth = np.column_stack([rng.uniform(10.0, 100.0, n), rng.uniform(0.5, 2.0, n)])
        extra = {}
    ratio = kinetic_signal(truth[:, :1], truth[:, 1:2], protocol["plds"], constants,
                           labeling_duration=protocol["tau"], **extra)  # fmt: skip
    return truth, ratio


def batched_fit(ratio, settings, arterial, **options):
    protocol = ARTERIAL if arterial else TISSUE
    known = {"noise_variance": np.full(ratio.shape[0], NOISE_SD**2)} if arterial else {}
    start = time.perf_counter()
    result = fit_kinetic_curves(
        ratio,
        protocol["plds"],
        protocol["tau"],
        settings,
        arterial=arterial,
        options=FitOptions(n_threads=N_THREADS, **options),
        **known,
    )
    return result.params, time.perf_counter() - start


def fit_cost(params, ratio, constants, arterial):
    """Sum of squares of each fit on its curve (the model both fitters minimise)."""
    protocol = ARTERIAL if arterial else TISSUE
    params = np.nan_to_num(params)
    extra = {"abv": params[:, 2:3], "att_arterial": params[:, 3:4]} if arterial else {}
    model = kinetic_signal(params[:, :1], params[:, 1:2], protocol["plds"], constants,
                           labeling_duration=protocol["tau"], **extra)  # fmt: skip
    return ((model - ratio) ** 2).sum(axis=1)


def curve_fit_loop(ratio, settings, arterial):
    protocol = ARTERIAL if arterial else TISSUE
    tau = protocol["tau"]

    def tissue_model(plds, cbf, att):  # the same numpy model, without per-call set-up
        return tissue_signal(cbf, att, plds, tau, settings)

    def arterial_model(plds, cbf, att, abv, att_a):
        art = arterial_signal_and_jacobian(abv, att_a, plds, tau, settings, 0.1)[0]
        return tissue_signal(cbf, att, plds, tau, settings) + art

    model, p0 = (
        (arterial_model, (50.0, 1.3, 0.01, 1.0)) if arterial else (tissue_model, (50.0, 1.2))
    )
    p = len(p0)
    bounds = (BOUNDS[0][:p], BOUNDS[1][:p])
    params = np.empty((ratio.shape[0], p))
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", OptimizeWarning)
        for i, curve in enumerate(ratio):
            try:
                params[i], _ = curve_fit(model, protocol["plds"], curve, p0=p0, bounds=bounds)
            except RuntimeError:  # no convergence within curve_fit's budget
                params[i] = np.nan
    return params, time.perf_counter() - start


def _within(fit, truth, rel):
    return float(np.mean(np.abs(fit[:, 0] - truth[:, 0]) <= rel * truth[:, 0]))


def _rms(values):
    return float(np.sqrt(np.nanmean(values**2)))


def _errors(fit, truth):
    """RMS and median absolute error of CBF and ATT."""
    cbf, att = fit[:, 0] - truth[:, 0], fit[:, 1] - truth[:, 1]
    return (f"RMS CBF {_rms(cbf):.3f}, median |CBF| {np.median(np.abs(cbf)):.3f} mL/100 g/min, "
            f"RMS ATT {_rms(att):.4f}, median |ATT| {np.median(np.abs(att)):.4f} s")  # fmt: skip


@contextmanager
def _phase_timers():
    """Time the private phases of ``kinetic_fit`` (wrapped for the ``with`` block only).

    Yields a dict of seconds and a dict of voxel-iteration counts per phase. The
    Levenberg-Marquardt calls of a chunk come in a fixed order (tissue fit, first arterial
    start, further starts), except those made from ``_leave_kinks`` (kink restarts).
    """
    seconds, iterations, state = defaultdict(float), defaultdict(int), {"call": 0, "kink": 0}
    originals = {name: getattr(kinetic_fit, name) for name in
                 ("_fit_chunk", "_start_tissue", "_start_arterial", "_levenberg_marquardt",
                  "_leave_kinks", "_arterial_supported")}  # fmt: skip
    lm_phases = ("LM tissue fit", "LM first arterial start", "LM further arterial starts")

    def timed(name, function):
        def wrapper(*args, **kwargs):
            if name == "_fit_chunk":
                state["call"] = 0
            if name == "_leave_kinks":
                state["kink"] += 1
            start = time.perf_counter()
            result = function(*args, **kwargs)
            elapsed = time.perf_counter() - start
            if name == "_leave_kinks":
                state["kink"] -= 1
            if name == "_levenberg_marquardt":
                if state["kink"]:
                    phase = "LM kink restarts"
                else:
                    phase = lm_phases[min(state["call"], 2)]
                    state["call"] += 1
                iterations[phase] += int(result[3].sum())
                iterations[phase + " at the limit"] += int((~result[2]).sum())
            else:
                phase = {"_start_tissue": "start grid, tissue",
                         "_start_arterial": "start grid, arterial (incl. tissue grid)",
                         "_arterial_supported": "F-test",
                         "_leave_kinks": None, "_fit_chunk": "total"}[name]  # fmt: skip
            if phase is not None:
                seconds[phase] += elapsed
            return result

        return wrapper

    for name, function in originals.items():
        setattr(kinetic_fit, name, timed(name, function))
    try:
        yield seconds, iterations
    finally:
        for name, function in originals.items():
            setattr(kinetic_fit, name, function)


def print_phases(ratio, settings, arterial, label):
    """Per-phase seconds and iterations of one single-threaded batched fit."""
    protocol = ARTERIAL if arterial else TISSUE
    known = {"noise_variance": np.full(ratio.shape[0], NOISE_SD**2)} if arterial else {}
    with _phase_timers() as (seconds, iterations):
        fit_kinetic_curves(ratio, protocol["plds"], protocol["tau"], settings,
                           arterial=arterial, options=FitOptions(n_threads=1), **known)  # fmt: skip
    total = seconds.pop("total")
    parts = ", ".join(f"{name} {value:.3f}" for name, value in seconds.items())
    print(f"  phases, {label} (1 thread, s; the tissue grid runs inside the arterial one): "
          f"total {total:.3f}: {parts}")  # fmt: skip
    n = ratio.shape[0]
    counts = ", ".join(
        f"{name} {value / n:.1f}" if not name.endswith("limit") else f"{name} {value}"
        for name, value in iterations.items()
    )
    print(f"    voxel-iterations per voxel (and fits ending at the iteration limit): {counts}")


def compare(n_voxels, n_loop, arterial, constants, settings, rng):
    truth, clean = simulate(n_voxels, constants, rng, arterial)
    noisy = clean + rng.normal(0.0, NOISE_SD, clean.shape)
    sub = rng.choice(n_voxels, n_loop, replace=False)
    label = "with the arterial component" if arterial else "tissue only"
    fit_clean, seconds = batched_fit(clean, settings, arterial)
    fit_noisy, seconds_noisy = batched_fit(noisy, settings, arterial)
    same_model = {"arterial_selection_level": 1.0} if arterial else {}
    fit_same, _ = batched_fit(noisy[sub], settings, arterial, **same_model)
    loop_clean, loop_seconds = curve_fit_loop(clean[sub], settings, arterial)
    loop_noisy, loop_noisy_seconds = curve_fit_loop(noisy[sub], settings, arterial)
    scaled = loop_seconds * n_voxels / n_loop
    print(f"\n{label}: {n_voxels} voxels x 6 PLDs, full Buxton model, {N_THREADS} threads")
    print(
        f"  noise-free, share of voxels with CBF within 0.1 % of the truth: batched "
        f"{_within(fit_clean, truth, 1e-3):.4f} (all voxels), on the {n_loop} loop voxels "
        f"batched {_within(fit_clean[sub], truth[sub], 1e-3):.4f}, curve_fit "
        f"{_within(loop_clean, truth[sub], 1e-3):.4f}"
    )
    done = np.isfinite(loop_noisy[:, 0])  # curve_fit raises on some voxels; compare the rest
    truth_done = truth[sub][done]
    print(f"  noisy (sd {NOISE_SD} dM/M0), the {done.sum()} of {n_loop} voxels curve_fit fitted "
          f"(batched noisy fit of all voxels {seconds_noisy:.2f} s):")  # fmt: skip
    print(f"    curve_fit:{' ' * 11}{_errors(loop_noisy[done], truth_done)}")
    if arterial:
        print(f"    batched, same model: {_errors(fit_same[done], truth_done)}")
        kept = np.isfinite(fit_noisy[sub][done, 3]).mean()
        print(f"    batched, F-test selection (known noise variance; arterial kept in "
              f"{kept:.1%}): {_errors(fit_noisy[sub][done], truth_done)}")  # fmt: skip
    else:
        print(f"    batched:{' ' * 13}{_errors(fit_same[done], truth_done)}")
    ours = fit_cost(fit_same[done], noisy[sub][done], constants, arterial)
    theirs = fit_cost(loop_noisy[done], noisy[sub][done], constants, arterial)
    print(
        f"    same model, cost reached: batched lower than curve_fit in "
        f"{np.mean(ours < theirs * (1 - 1e-6)):.1%} of voxels, higher in "
        f"{np.mean(ours > theirs * (1 + 1e-6)):.1%}"
    )
    print(
        f"  curve_fit loop timed on {n_loop} voxels ({loop_seconds:.2f} s) and scaled to "
        f"{n_voxels}: {scaled:.1f} s; batched {seconds:.2f} s"
    )
    print(f"  multi-delay fit {label}: {scaled / seconds:.0f}x faster than per-voxel curve_fit")
    print_phases(clean, settings, arterial, "noise-free")
    print_phases(noisy, settings, arterial, "noisy")
    scaled_noisy = loop_noisy_seconds * n_voxels / n_loop
    print(f"  noisy curves: curve_fit {scaled_noisy:.1f} s scaled, batched {seconds_noisy:.2f} s: "
          f"{scaled_noisy / seconds_noisy:.0f}x")  # fmt: skip


def main(n_voxels=200_000, n_loop=1_000):
    constants = resolve_constants("PCASL", 3.0)
    settings = KineticSettings.from_constants(constants, "full")
    rng = np.random.default_rng(2024)
    start = time.perf_counter()
    batched_fit(np.full((2, 6), 0.005), settings, True)
    print(f"numba start-grid kernel compiled once per process: {time.perf_counter() - start:.2f} s")
    for arterial in (False, True):
        compare(n_voxels, n_loop, arterial, constants, settings, rng)


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:]))
