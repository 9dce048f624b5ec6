"""Multi-delay CBF and ATT: the Buxton general kinetic model fitted to all voxels at once.

The fit is a batched, bounded Levenberg–Marquardt least-squares in numpy: every voxel is its
own small problem (2 parameters, or 4 with the arterial component), but all voxels advance
together, each with its own damping, and leave the active set when converged. Jacobians are
analytic (:mod:`aslmig.cbf.kinetic`). A coarse grid over ATT (and arterial ATT), with the
linear parameters solved in closed form at each grid point, gives every voxel a start close to
its global minimum.

Residuals are computed on ΔM/M0; repeated volumes at the same delay are averaged first and
weighted by their count, which gives the same estimate as fitting every volume.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from aslmig.cbf.constants import QuantificationConstants
from aslmig.cbf.kinetic import (
    KineticSettings,
    arterial_signal_and_jacobian,
    tissue_signal_and_jacobian,
)
from aslmig.cbf.single_delay import _m0_array, _valid_voxels, bolus_duration, effective_delays

PARAMETERS = ("cbf", "att", "abv", "att_arterial")
#: Typical magnitude of each parameter, used in the convergence test.
_PARAMETER_SCALE = np.array([10.0, 0.1, 0.001, 0.1])
_GRID_STEP_S = 0.05
_ARTERIAL_GRID_STEP_S = 0.1
_FLOW_GUESS = 50.0  # mL/100 g/min, linearisation point of the full model for the start grid
_T1_GROUP_S = 0.02  # rounding of a per-voxel tissue T1 for the start grid


@dataclass(frozen=True)
class FitBounds:
    """Box constraints of the multi-delay fit.

    Attributes
    ----------
    cbf : tuple of float
        mL/100 g/min.
    att : tuple of float
        Tissue arterial transit time, s.
    abv : tuple of float
        Arterial blood volume fraction.
    att_arterial : tuple of float
        Arterial arrival time, s.
    """

    cbf: tuple[float, float] = (-100.0, 500.0)
    att: tuple[float, float] = (0.0, 4.0)
    abv: tuple[float, float] = (0.0, 0.1)
    att_arterial: tuple[float, float] = (0.0, 4.0)

    def arrays(self, n_parameters: int) -> tuple[np.ndarray, np.ndarray]:
        """Return lower and upper bounds for the first ``n_parameters`` parameters.

        Parameters
        ----------
        n_parameters : int
            2 (CBF, ATT) or 4 (plus aBV, arterial ATT).

        Returns
        -------
        lower, upper : ndarray
            Bounds.
        """
        pairs = [getattr(self, name) for name in PARAMETERS[:n_parameters]]
        lower, upper = (np.array(v, float) for v in zip(*pairs, strict=True))
        if np.any(lower >= upper):
            raise ValueError(f"fit bounds must have lower < upper, got {pairs}")
        return lower, upper


@dataclass(frozen=True)
class FitOptions:
    """Options of the Levenberg–Marquardt iterations.

    Attributes
    ----------
    max_iterations : int
        Per voxel.
    xtol : float
        Converged when every step is below ``xtol`` × (|parameter| + typical scale).
    initial_damping : float
        Starting Marquardt damping.
    n_threads : int
        Threads over voxel chunks (numpy releases the GIL in its kernels).
    chunk_size : int
        Voxels per chunk.
    """

    max_iterations: int = 100
    xtol: float = 1e-10
    initial_damping: float = 1e-3
    n_threads: int = 1
    chunk_size: int = 25_000


@dataclass(frozen=True)
class CurveFitResult:
    """Per-voxel result of :func:`fit_kinetic_curves` (voxels along the first axis).

    Attributes
    ----------
    params : ndarray
        ``(n_voxels, n_parameters)``: CBF, ATT[, aBV, arterial ATT].
    sse : ndarray
        Weighted residual sum of squares (ΔM/M0 units squared).
    r2 : ndarray
        Coefficient of determination.
    converged : ndarray of bool
        Whether the convergence test was met.
    iterations : ndarray of int
        Iterations used.
    """

    params: np.ndarray
    sse: np.ndarray
    r2: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray


@dataclass(frozen=True)
class MultiDelayFit:
    """Maps from :func:`fit_multi_delay` (spatial shape; ``fill_value`` outside the mask).

    Attributes
    ----------
    cbf : ndarray
        CBF, mL/100 g/min.
    att : ndarray
        Arterial transit time, s.
    rmse : ndarray
        Root-mean-square residual, in the units of the input ΔM.
    r2 : ndarray
        Coefficient of determination of the fit.
    converged : ndarray of bool
        Convergence flag.
    abv : ndarray or None
        Arterial blood volume fraction (arterial component only).
    att_arterial : ndarray or None
        Arterial arrival time, s (arterial component only).
    provenance : dict
        Model, constants, delays, options.
    """

    cbf: np.ndarray
    att: np.ndarray
    rmse: np.ndarray
    r2: np.ndarray
    converged: np.ndarray
    abv: np.ndarray | None = None
    att_arterial: np.ndarray | None = None
    provenance: dict = field(default_factory=dict)


def _rows(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Select voxels of a per-voxel (2-D) array; shared (1-D) arrays pass through."""
    return values[index] if values.ndim == 2 else values


def _model_and_jacobian(
    params: np.ndarray,
    delays: np.ndarray,
    taus: np.ndarray,
    settings: KineticSettings,
    arterial: bool,
    dispersion_sd: float,
) -> tuple[np.ndarray, np.ndarray]:
    signal, d_cbf, d_att = tissue_signal_and_jacobian(
        params[:, :1], params[:, 1:2], delays, taus, settings
    )
    columns = [d_cbf, d_att]
    if arterial:
        art, d_abv, d_att_a = arterial_signal_and_jacobian(
            params[:, 2:3], params[:, 3:4], delays, taus, settings, dispersion_sd
        )
        signal = signal + art
        columns += [d_abv, d_att_a]
    jacobian = np.stack(np.broadcast_arrays(*columns), axis=-1)
    return signal, jacobian


def _grid_values(lower: float, upper: float, step: float) -> np.ndarray:
    n = max(int(np.ceil((upper - lower) / step)), 1) + 1
    return np.linspace(lower, upper, n)


def _per_voxel_t1(settings: KineticSettings) -> bool:
    return np.ndim(settings.t1_tissue) == 2


def _subset(settings: KineticSettings, index: np.ndarray) -> KineticSettings:
    """Return the settings for a subset of voxels (a per-voxel tissue T1 follows them)."""
    if not _per_voxel_t1(settings):
        return settings
    return replace(settings, t1_tissue=settings.t1_tissue[index])


def _timing_groups(
    delays: np.ndarray, taus: np.ndarray, settings: KineticSettings, n: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, KineticSettings]]:
    """Yield (voxel index, delay row, tau row, scalar settings) per distinct timing and T1.

    Timing differs between slices of a 2-D readout; a per-voxel tissue T1 is rounded to
    ``_T1_GROUP_S`` for the start grid only (the Levenberg-Marquardt fit uses exact values).
    """
    columns = []
    if delays.ndim == 2 or taus.ndim == 2:
        columns += [
            np.broadcast_to(delays, (n, delays.shape[-1])),
            np.broadcast_to(taus, (n, taus.shape[-1])),
        ]
    if _per_voxel_t1(settings):
        columns.append(np.round(settings.t1_tissue / _T1_GROUP_S) * _T1_GROUP_S)
    if not columns:
        yield np.arange(n), delays, taus, settings
        return
    unique, inverse = np.unique(np.concatenate(columns, axis=1), axis=0, return_inverse=True)
    inverse = inverse.ravel()
    m = delays.shape[-1]
    for k, row in enumerate(unique):
        index = np.flatnonzero(inverse == k)
        d_row = row[:m] if delays.ndim == 2 or taus.ndim == 2 else delays
        t_row = row[m : 2 * m] if delays.ndim == 2 or taus.ndim == 2 else taus
        group = replace(settings, t1_tissue=float(row[-1])) if _per_voxel_t1(settings) else settings
        yield index, d_row, t_row, group


def _tissue_basis(
    att_grid: np.ndarray, delays: np.ndarray, taus: np.ndarray, settings: KineticSettings
) -> np.ndarray:
    """Tissue ΔM/M0 per unit CBF (linearised at a typical flow), shape (n_grid, n_delays)."""
    signal = tissue_signal_and_jacobian(_FLOW_GUESS, att_grid[:, None], delays, taus, settings)[0]
    return signal / _FLOW_GUESS


def _start_tissue(
    y: np.ndarray,
    w: np.ndarray,
    delays: np.ndarray,
    taus: np.ndarray,
    settings: KineticSettings,
    lower: np.ndarray,
    upper: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Grid over ATT with CBF in closed form; returns (n, 2) start parameters and their SSE."""
    n = y.shape[0]
    att_grid = _grid_values(lower[1], upper[1], _GRID_STEP_S)
    start = np.zeros((n, 2))
    best_sse = np.zeros(n)
    for index, d_row, t_row, group in _timing_groups(delays, taus, settings, n):
        basis = _tissue_basis(att_grid, d_row, t_row, group)  # (G, M)
        gy = (y[index] * w) @ basis.T  # (n_g, G)
        gg = (basis * basis) @ w  # (G,)
        explained = np.where(gg > 0, gy * gy / np.where(gg > 0, gg, 1.0), 0.0)
        best = np.argmax(explained, axis=1)
        rows = np.arange(index.size)
        start[index, 0] = np.where(
            gg[best] > 0, gy[rows, best] / np.where(gg[best] > 0, gg[best], 1.0), 0.0
        )
        start[index, 1] = att_grid[best]
        best_sse[index] = ((y[index] ** 2) @ w) - explained[rows, best]
    return start, best_sse


def _start_arterial(
    y: np.ndarray,
    w: np.ndarray,
    delays: np.ndarray,
    taus: np.ndarray,
    settings: KineticSettings,
    lower: np.ndarray,
    upper: np.ndarray,
    dispersion_sd: float,
) -> np.ndarray:
    """Grid over (ATT, arterial ATT ≤ ATT) with CBF and aBV ≥ 0 in closed form."""
    n = y.shape[0]
    tissue_start, best_sse = _start_tissue(y, w, delays, taus, settings, lower, upper)
    start = np.zeros((n, 4))
    start[:, :2] = tissue_start
    start[:, 3] = np.clip(tissue_start[:, 1] - 0.3, lower[3], upper[3])
    att_grid = _grid_values(lower[1], upper[1], _ARTERIAL_GRID_STEP_S)
    art_grid = _grid_values(lower[3], upper[3], _ARTERIAL_GRID_STEP_S)
    for index, d_row, t_row, group in _timing_groups(delays, taus, settings, n):
        yw = y[index] * w
        tb = _tissue_basis(att_grid, d_row, t_row, group)  # (G1, M)
        ab = arterial_signal_and_jacobian(
            1.0, art_grid[:, None], d_row, t_row, group, dispersion_sd
        )[0]  # (G2, M)
        ty, ay = yw @ tb.T, yw @ ab.T
        tt, aa, ta = (tb * tb) @ w, (ab * ab) @ w, (tb * w) @ ab.T
        for i, att in enumerate(att_grid):
            for j in np.flatnonzero(art_grid <= att):
                det = tt[i] * aa[j] - ta[i, j] ** 2
                if det <= 1e-12 * tt[i] * aa[j]:
                    continue
                flow = (aa[j] * ty[:, i] - ta[i, j] * ay[:, j]) / det
                abv = (tt[i] * ay[:, j] - ta[i, j] * ty[:, i]) / det
                sse = ((y[index] ** 2) @ w) - (flow * ty[:, i] + abv * ay[:, j])
                better = (sse < best_sse[index]) & (abv > 0)
                sel = index[better]
                best_sse[sel] = sse[better]
                start[sel, 0], start[sel, 1] = flow[better], att
                start[sel, 2], start[sel, 3] = abv[better], art_grid[j]
    return start


def _solve_damped(jtj: np.ndarray, grad: np.ndarray, damping: np.ndarray) -> np.ndarray:
    diag = np.diagonal(jtj, axis1=1, axis2=2)
    floor = 1e-12 * diag.max(axis=1, keepdims=True) + 1e-300
    scale = np.maximum(diag, floor)
    system = jtj + (damping[:, None] * scale)[:, :, None] * np.eye(jtj.shape[1])
    return np.linalg.solve(system, -grad[..., None])[..., 0]


def _levenberg_marquardt(
    y: np.ndarray,
    w: np.ndarray,
    delays: np.ndarray,
    taus: np.ndarray,
    settings: KineticSettings,
    start: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    options: FitOptions,
    arterial: bool,
    dispersion_sd: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bounded Levenberg-Marquardt on all voxels at once; returns params, SSE, flags, counts."""
    params = np.clip(start, lower, upper)
    n, p = params.shape
    damping = np.full(n, options.initial_damping)
    converged = np.zeros(n, bool)
    iterations = np.zeros(n, int)
    signal, jac = _model_and_jacobian(params, delays, taus, settings, arterial, dispersion_sd)
    residual = signal - y
    cost = (w * residual**2).sum(-1)
    active = np.arange(n)
    scale = _PARAMETER_SCALE[:p]
    for _ in range(options.max_iterations):
        if active.size == 0:
            break
        wj = w[..., None] * jac
        jtj = np.einsum("nmp,nmq->npq", wj, jac)
        grad = np.einsum("nmp,nm->np", wj, residual)
        trial = np.clip(params[active] + _solve_damped(jtj, grad, damping[active]), lower, upper)
        step = trial - params[active]
        d_act, t_act = _rows(delays, active), _rows(taus, active)
        new_signal, new_jac = _model_and_jacobian(
            trial, d_act, t_act, _subset(settings, active), arterial, dispersion_sd
        )
        y_act, w_act = y[active], _rows(w, active)
        new_residual = new_signal - y_act
        new_cost = (w_act * new_residual**2).sum(-1)
        accept = new_cost <= cost[active]
        iterations[active] += 1
        accepted = active[accept]
        params[accepted] = trial[accept]
        cost[accepted] = new_cost[accept]
        damping[active] = np.where(accept, damping[active] * 0.2, damping[active] * 10.0)
        small = np.all(np.abs(step) <= options.xtol * (np.abs(trial) + scale), axis=1)
        done = (accept & small) | (damping[active] > 1e16)
        converged[active[done]] = True
        keep = ~done
        # refresh residual/Jacobian: accepted voxels take the trial's, rejected keep theirs
        residual = np.where(accept[:, None], new_residual, residual)[keep]
        jac = np.where(accept[:, None, None], new_jac, jac)[keep]
        active = active[keep]
    return params, cost, converged, iterations


def fit_kinetic_curves(
    ratio: np.ndarray,
    delays: np.ndarray,
    taus: np.ndarray,
    settings: KineticSettings,
    *,
    weights: np.ndarray | None = None,
    arterial: bool = False,
    arterial_dispersion_sd: float = 0.1,
    bounds: FitBounds | None = None,
    options: FitOptions | None = None,
) -> CurveFitResult:
    """Fit the kinetic model to many ΔM/M0 curves at once (voxels on the first axis).

    Parameters
    ----------
    ratio : ndarray
        ΔM/M0, shape ``(n_voxels, n_delays)``.
    delays : ndarray
        PLDs/TIs, ``(n_delays,)`` shared or ``(n_voxels, n_delays)`` per voxel, s.
    taus : ndarray
        Labeling/bolus durations, same convention as ``delays``.
    settings : KineticSettings
        Model and constants; its ``t1_tissue`` may hold one value per voxel (``(n_voxels,)``).
    weights : ndarray, optional
        Per-delay weights (e.g. number of averaged repeats), ``(n_delays,)``.
    arterial : bool
        Also fit an arterial component (aBV, arterial ATT).
    arterial_dispersion_sd : float
        Gaussian edge smoothing of the arterial bolus, s.
    bounds : FitBounds, optional
        Box constraints.
    options : FitOptions, optional
        Iteration options.

    Returns
    -------
    CurveFitResult
        Parameters, residuals, R², convergence.
    """
    y = np.asarray(ratio, float)
    if y.ndim != 2:
        raise ValueError("ratio must be (n_voxels, n_delays)")
    delays = np.asarray(delays, float)
    taus = np.broadcast_to(np.asarray(taus, float), delays.shape)
    if delays.shape[-1] != y.shape[1]:
        raise ValueError(
            f"{delays.shape[-1]} delays for {y.shape[1]} ΔM values per voxel; give one PLD/TI "
            "per ΔM volume"
        )
    w = np.ones(y.shape[1]) if weights is None else np.asarray(weights, float)
    bounds, options = bounds or FitBounds(), options or FitOptions()
    lower, upper = bounds.arrays(4 if arterial else 2)

    if np.ndim(settings.t1_tissue) >= 1:
        t1 = np.broadcast_to(np.asarray(settings.t1_tissue, float).reshape(-1, 1), (y.shape[0], 1))
        settings = replace(settings, t1_tissue=t1)

    def run(index: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        yy, dd, tt, ss = (
            y[index],
            _rows(delays, index),
            _rows(taus, index),
            _subset(settings, index),
        )
        if arterial:
            start = _start_arterial(yy, w, dd, tt, ss, lower, upper, arterial_dispersion_sd)
        else:
            start = _start_tissue(yy, w, dd, tt, ss, lower, upper)[0]
        return _levenberg_marquardt(
            yy, w, dd, tt, ss, start, lower, upper, options, arterial, arterial_dispersion_sd
        )

    chunks = np.array_split(np.arange(y.shape[0]), max(1, -(-y.shape[0] // options.chunk_size)))
    if options.n_threads > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(options.n_threads) as pool:
            parts = list(pool.map(run, chunks))
    else:
        parts = [run(chunk) for chunk in chunks]
    params, sse, converged, iterations = (np.concatenate(p) for p in zip(*parts, strict=True))
    mean = (w * y).sum(-1, keepdims=True) / w.sum()
    sst = (w * (y - mean) ** 2).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(sst > 0, 1.0 - sse / sst, np.nan)
    return CurveFitResult(params, sse, r2, converged, iterations)


def average_repeats(
    deltam: np.ndarray, plds: np.ndarray, taus: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Average ΔM volumes that share PLD and labeling duration.

    Parameters
    ----------
    deltam : ndarray
        ΔM, volumes on the last axis.
    plds, taus : ndarray
        PLD/TI and labeling/bolus duration per volume, s.

    Returns
    -------
    mean_deltam : ndarray
        One volume per distinct (PLD, τ).
    unique_plds, unique_taus : ndarray
        Their timing.
    counts : ndarray
        Number of volumes averaged into each.
    """
    timing = np.round(np.column_stack([plds, taus]), 9)
    unique, inverse, counts = np.unique(timing, axis=0, return_inverse=True, return_counts=True)
    mean = np.stack(
        [deltam[..., inverse.ravel() == k].mean(axis=-1) for k in range(len(unique))], axis=-1
    )
    return mean, unique[:, 0], unique[:, 1], counts


def fit_multi_delay(
    deltam: np.ndarray,
    m0: np.ndarray | float,
    plds: Sequence[float],
    constants: QuantificationConstants,
    *,
    labeling_duration: float | Sequence[float] | None = None,
    bolus_cutoff_delay_time: float | Sequence[float] | None = None,
    mask: np.ndarray | None = None,
    model: str = "full",
    arterial: bool = False,
    arterial_dispersion_sd: float = 0.1,
    slice_timing: Sequence[float] | None = None,
    slice_axis: int = 2,
    t1_tissue: np.ndarray | float | None = None,
    bounds: FitBounds | None = None,
    options: FitOptions | None = None,
    fill_value: float = 0.0,
) -> MultiDelayFit:
    """Fit CBF and ATT (and optionally an arterial component) to multi-delay ASL.

    Parameters
    ----------
    deltam : ndarray
        ΔM, volumes on the last axis (repeats allowed; they are averaged per delay).
    m0 : ndarray or float
        Calibrated tissue M0.
    plds : sequence of float
        PLD (PCASL/CASL) or TI (PASL) of each ΔM volume, s.
    constants : QuantificationConstants
        Resolved constants.
    labeling_duration : float or sequence, optional
        τ per volume (PCASL/CASL), s.
    bolus_cutoff_delay_time : float or sequence, optional
        ``BolusCutOffDelayTime`` (PASL); TI1 is its first value.
    mask : ndarray of bool, optional
        Voxels to fit.
    model : str
        ``"full"`` (tissue T1 after arrival) or ``"whitepaper"`` (blood T1 throughout).
    arterial : bool
        Add an arterial (macrovascular) component with its own arrival time and aBV.
    arterial_dispersion_sd : float
        Gaussian edge smoothing of the arterial bolus, s.
    slice_timing : sequence of float, optional
        ``SliceTiming`` of a 2-D readout (added to each slice's delays).
    slice_axis : int
        Spatial axis of the slices.
    t1_tissue : ndarray or float, optional
        Tissue T1 (s) for the full model, a number or a spatial map (e.g. from a T1 map, or
        grey/white-matter values weighted by tissue probabilities); default
        ``constants.t1_tissue``.
    bounds : FitBounds, optional
        Box constraints.
    options : FitOptions, optional
        Iteration and threading options.
    fill_value : float
        Value outside the mask.

    Returns
    -------
    MultiDelayFit
        CBF, ATT, fit quality and provenance.
    """
    deltam = np.asarray(deltam, float)
    if deltam.ndim < 2:
        raise ValueError("deltam must have its volumes on the last axis")
    spatial, n_volumes = deltam.shape[:-1], deltam.shape[-1]
    m0_map = _m0_array(m0, spatial)
    valid, n_bad_m0 = _valid_voxels(m0_map, mask)
    if t1_tissue is not None and np.ndim(t1_tissue) > 0:
        t1_map = np.broadcast_to(np.asarray(t1_tissue, float), spatial)
        t1_tissue = t1_map[valid]
    settings = KineticSettings.from_constants(constants, model, t1_tissue)
    pld_values = effective_delays(plds, n_volumes, spatial)
    taus = bolus_duration(constants, n_volumes, labeling_duration, bolus_cutoff_delay_time)
    mean_dm, unique_plds, unique_taus, counts = average_repeats(deltam, pld_values, taus)
    if unique_plds.size < (4 if arterial else 2):
        raise ValueError(
            f"{unique_plds.size} distinct delay(s) cannot determine CBF and ATT; use "
            "quantify_single_delay for single-delay data"
        )
    m0_vox = m0_map[valid]
    ratio = mean_dm[valid] / m0_vox[:, None]
    delays = unique_plds
    if slice_timing is not None:
        per_slice = effective_delays(
            unique_plds, unique_plds.size, spatial, slice_timing, slice_axis
        )
        delays = np.broadcast_to(per_slice, (*spatial, unique_plds.size))[valid]
    result = fit_kinetic_curves(
        ratio,
        delays,
        unique_taus,
        settings,
        weights=counts,
        arterial=arterial,
        arterial_dispersion_sd=arterial_dispersion_sd,
        bounds=bounds,
        options=options,
    )
    rmse = np.sqrt(result.sse / counts.sum()) * m0_vox

    def to_map(values: np.ndarray, fill=fill_value) -> np.ndarray:
        out = np.full(spatial, fill, dtype=values.dtype if values.dtype == bool else float)
        out[valid] = values
        return out

    provenance = {
        "model": f"Buxton general kinetic model ({model})",
        "labeling_type": constants.labeling_type,
        "constants": constants.to_dict(),
        "delays_s": [float(v) for v in unique_plds],
        "bolus_duration_s": [float(v) for v in unique_taus],
        "repeats_per_delay": [int(c) for c in counts],
        "arterial_component": arterial,
        "arterial_dispersion_sd_s": arterial_dispersion_sd if arterial else None,
        "slice_timing_applied": slice_timing is not None,
        "t1_tissue_s": _describe_t1(t1_tissue, constants) if model == "full" else None,
        "bounds": vars(bounds or FitBounds()),
        "fit": "batched Levenberg-Marquardt, analytic Jacobian, grid start",
        "n_voxels_fitted": int(np.count_nonzero(valid)),
        "n_not_converged": int(np.count_nonzero(~result.converged)),
        "n_nonpositive_m0_voxels": n_bad_m0,
        "rmse_units": "same as input deltam",
    }
    return MultiDelayFit(
        cbf=to_map(result.params[:, 0]),
        att=to_map(result.params[:, 1]),
        rmse=to_map(rmse),
        r2=to_map(result.r2),
        converged=to_map(result.converged, False),
        abv=to_map(result.params[:, 2]) if arterial else None,
        att_arterial=to_map(result.params[:, 3]) if arterial else None,
        provenance=provenance,
    )


def _describe_t1(
    t1_tissue: np.ndarray | float | None, constants: QuantificationConstants
) -> float | str | None:
    if t1_tissue is None:
        return constants.t1_tissue
    return float(t1_tissue) if np.ndim(t1_tissue) == 0 else "voxel-wise map"


def tissue_t1_map(
    gm: np.ndarray,
    wm: np.ndarray,
    t1_grey_matter: float,
    t1_white_matter: float,
    min_tissue: float = 0.05,
) -> np.ndarray:
    """Per-voxel tissue T1 from grey/white-matter probabilities (for the full kinetic model).

    T1 = (p_GM·T1_GM + p_WM·T1_WM) / (p_GM + p_WM); voxels with less than ``min_tissue`` of
    grey plus white matter get the grey-matter T1.

    Parameters
    ----------
    gm, wm : ndarray
        Tissue probability maps on the ASL grid.
    t1_grey_matter, t1_white_matter : float
        Tissue T1 values, s.
    min_tissue : float
        Smallest GM+WM fraction for which the weighted value is used.

    Returns
    -------
    ndarray
        Tissue T1 map, s.
    """
    gm = np.clip(np.asarray(gm, float), 0.0, 1.0)
    wm = np.clip(np.asarray(wm, float), 0.0, 1.0)
    total = gm + wm
    with np.errstate(invalid="ignore", divide="ignore"):
        weighted = (gm * t1_grey_matter + wm * t1_white_matter) / total
    return np.where(total >= min_tissue, weighted, t1_grey_matter)
