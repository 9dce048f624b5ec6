"""Batched fit of the kinetic model to many ΔM/M0 curves at once; it never raises on a voxel.

Every voxel is its own small least-squares problem (CBF and ATT, plus aBV and the arterial
arrival time with the arterial component), but all voxels advance together through a bounded
Levenberg–Marquardt iteration with analytic Jacobians (:mod:`aslmig.cbf.kinetic`), each with
its own damping, and leave the active set when converged. Kept hand-written (not a loop over
``scipy.optimize.least_squares``) because it is more than 100 times faster at equal accuracy
(``benchmarks/multi_delay_fit.py``).

Starts come from a grid over the arrival times with the linear parameters (CBF, aBV) solved
in closed form at each grid point. With the arterial component the cost can have several
valleys (tissue and arterial arrival trade off on a few delays); the best grid point of each
of the deepest valleys starts its own fit and the lowest final cost wins.

Robustness, for real data (every rule below has a test in ``tests/cbf/test_kinetic_fit.py``):

* the damped normal equations are positive definite by construction (a floor on the damping
  and on the diagonal scaling) and are solved with a pseudo-inverse fallback, so one
  degenerate voxel never aborts its batch;
* a curve holding NaN or infinity is not fitted and is flagged;
* every voxel ends with :class:`FitStatus` flags: not converged, a parameter at a bound, an
  ATT the data cannot place.

Optional Gaussian priors on the arrival times (:class:`ArrivalPriors`, FSL BASIL's defaults)
turn the least squares into a maximum a posteriori estimate; they are weighted by each
voxel's own noise variance, measured from its repeats, so that noise-free data are fitted
exactly and noisy, ambiguous data are pulled towards typical arrival times.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from enum import IntFlag

import numpy as np
from scipy.stats import chi2
from scipy.stats import f as f_distribution

from aslmig.cbf.kinetic import (
    KineticSettings,
    arterial_signal_and_jacobian,
    tissue_signal_and_jacobian,
)

PARAMETERS = ("cbf", "att", "abv", "att_arterial")
#: Typical magnitude of each parameter, used in the convergence test.
_PARAMETER_SCALE = np.array([10.0, 0.1, 0.001, 0.1])
_GRID_STEP_S = 0.05
_ARTERIAL_GRID_STEP_S = 0.05
_GRID_CHUNK = 1024  # voxels per block of the arterial start grid
_ARTERIAL_STARTS = 3  # valleys of the arterial start grid that each start a fit
_START_SSE_RATIO = 10.0  # a further valley starts a fit when its grid SSE is within this factor
#: ... and within this factor of the best fit's cost so far: skips the further starts of voxels
#: already fitted exactly (5,000 noise-free voxels: 1.53 -> 1.23 s, the same 97.7 % within 0.1 %)
_START_SSE_BEST_RATIO = 1000.0
# A further valley whose closed-form aBV is above its bound is not started either (_fit_chunk):
# clipped to the bound it is no longer the grid point that made the valley (noisy curves: these
# starts ran to the iteration limit; 10,000 voxels, 1 thread: 4.27 -> 3.67 s, same errors/costs)
_FLOW_GUESS = 50.0  # mL/100 g/min, linearisation point of the full model for the start grid
_T1_GROUP_S = 0.02  # rounding of a per-voxel tissue T1 for the start grid
_DAMPING_FLOOR = 1e-9  # smallest Marquardt damping (relative to the scaled diagonal)
_DAMPING_CEILING = 1e12  # damping at which no step lowers the cost any more: a minimum
_SCALE_FLOOR = 1e-10  # smallest diagonal scale, relative to the voxel's largest
_ABSOLUTE_FLOOR = 1e-30  # (ΔM/M0 per parameter unit)^2: a voxel whose Jacobian is all zero
_BOUND_TOLERANCE = 1e-9  # fraction of a bound's range within which a value is "at" it
_TIE_TOLERANCE = 1e-9  # relative SSE difference below which two grid starts tie
#: Level of the F-test that keeps the arterial component in a voxel (see
#: :func:`_arterial_supported`); the measured false-selection rates are in its docstring.
ARTERIAL_SELECTION_ALPHA = 0.01
_KINK_OFFSET_S = 1e-6  # grid points this far below a kink of the model in ATT
_KINK_TOLERANCE_S = 1e-7  # an ATT this close to a kink has stopped on it
#: BASIL's prior arrival times (FSL oxford_asl / fabber aslrest): tissue 1.3 s for
#: PCASL/CASL, 0.7 s for PASL, arterial 0.3 s earlier, standard deviation 1 s for multi-delay.
BASIL_ATT_MEAN_S = {"PCASL": 1.3, "CASL": 1.3, "PASL": 0.7}
BASIL_ARTERIAL_OFFSET_S = 0.3
BASIL_ATT_SD_S = 1.0


class FitStatus(IntFlag):
    """Per-voxel flags of a kinetic fit (0: converged, inside the bounds).

    Attributes
    ----------
    NOT_CONVERGED
        The iteration limit was reached before the convergence test was met.
    AT_BOUND
        CBF or ATT (or aBV at its upper bound, or the arterial arrival time while aBV > 0)
        ended on a bound of :class:`FitBounds`.
    ATT_UNRESOLVED
        ATT is at or below the earliest delay that can place it (PCASL/CASL: the shortest
        PLD; PASL: the shortest TI − TI1). There every delay sees the whole bolus, so the
        curve's shape no longer depends on ATT (exactly so in the white-paper model, within
        e^(ATT·(1/T1' − 1/T1b)) in the full model); ATT is then a convention (the latest
        ATT the data allow, or the prior's pull), not a measurement.
    NON_FINITE_INPUT
        The voxel's ΔM/M0 curve holds NaN or infinity; it was not fitted (NaN parameters).
    """

    NOT_CONVERGED = 1
    AT_BOUND = 2
    ATT_UNRESOLVED = 4
    NON_FINITE_INPUT = 8


@dataclass(frozen=True)
class FitBounds:
    """Box constraints of the kinetic fit.

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
        Per voxel and start.
    xtol : float
        Converged when every step is below ``xtol`` × (|parameter| + typical scale).
    ftol : float
        Also converged when an accepted step lowers the cost by less than ``ftol`` times
        the cost (a flat valley the data cannot resolve; an exact fit reaches cost 0).

        Both default to 1e-8, scipy's ``least_squares``/``curve_fit`` defaults (they were
        1e-10/1e-12): noise-free fits converge quadratically and end at the same values to
        rounding; on noisy curves (``benchmarks/multi_delay_fit.py``, 10,000 voxels) the mean
        iterations fall 6.5 -> 5.2 (tissue) and 72 -> 51 (arterial) with the same RMS CBF/ATT
        errors to 4 digits, CBF moving by < 7e-5 relative in 99.9 % of voxels.
    initial_damping : float
        Starting Marquardt damping.
    n_threads : int
        Threads over voxel chunks (numpy and the numba kernel release the GIL); with more
        than one thread there are at least as many chunks as threads.
    chunk_size : int
        Largest number of voxels per chunk.
    arterial_selection_level : float
        Level of the F-test that keeps the arterial component in a voxel
        (:func:`_arterial_supported`); 1.0 keeps the arterial fit wherever it lowers the
        misfit at all (the four-parameter model everywhere, e.g. to compare with another
        fitter of that model).
    """

    max_iterations: int = 200
    xtol: float = 1e-8
    ftol: float = 1e-8
    initial_damping: float = 1e-6
    n_threads: int = 1
    chunk_size: int = 25_000
    arterial_selection_level: float = ARTERIAL_SELECTION_ALPHA


@dataclass(frozen=True)
class ArrivalPriors:
    """Gaussian priors on the tissue and arterial arrival times (maximum a posteriori fit).

    Each prior adds (θ − mean)²·σ²/sd² to a voxel's weighted sum of squares, σ² being the
    voxel's noise variance of one ΔM/M0 volume: the cost is then σ² times minus twice the log
    posterior, as in FSL BASIL (Chappell et al. 2009, IEEE Trans Signal Process 57:223),
    whose default means and standard deviations these are.

    Attributes
    ----------
    att_mean, att_sd : float
        Tissue ATT prior, s.
    arterial_att_mean, arterial_att_sd : float
        Arterial arrival time prior, s (used with the arterial component).
    """

    att_mean: float
    att_sd: float = BASIL_ATT_SD_S
    arterial_att_mean: float | None = None
    arterial_att_sd: float = BASIL_ATT_SD_S

    @classmethod
    def basil(cls, labeling_type: str) -> ArrivalPriors:
        """BASIL's multi-delay defaults for a labeling type.

        Parameters
        ----------
        labeling_type : str
            PCASL, CASL or PASL.

        Returns
        -------
        ArrivalPriors
            Tissue ATT 1.3 s (PCASL/CASL) or 0.7 s (PASL), arterial 0.3 s earlier, SD 1 s.
        """
        mean = BASIL_ATT_MEAN_S[labeling_type]
        return cls(att_mean=mean, arterial_att_mean=mean - BASIL_ARTERIAL_OFFSET_S)

    def to_dict(self) -> dict[str, float | None]:
        """Return the priors as plain values for provenance."""
        return {
            "att_mean_s": self.att_mean,
            "att_sd_s": self.att_sd,
            "arterial_att_mean_s": self.arterial_att_mean,
            "arterial_att_sd_s": self.arterial_att_sd,
            "source": "FSL BASIL defaults (oxford_asl/fabber aslrest), weighted by each "
            "voxel's noise variance from its repeats",
        }

    def means_and_precisions(self, n_parameters: int) -> tuple[np.ndarray, np.ndarray]:
        """Prior mean and 1/sd² of each parameter (precision 0: no prior)."""
        mean = np.zeros(n_parameters)
        precision = np.zeros(n_parameters)
        mean[1], precision[1] = self.att_mean, 1.0 / self.att_sd**2
        if n_parameters == 4 and self.arterial_att_mean is not None:
            mean[3], precision[3] = self.arterial_att_mean, 1.0 / self.arterial_att_sd**2
        return mean, precision


@dataclass(frozen=True)
class CurveFitResult:
    """Per-voxel result of :func:`fit_kinetic_curves` (voxels along the first axis).

    Attributes
    ----------
    params : ndarray
        ``(n_voxels, n_parameters)``: CBF, ATT[, aBV, arterial ATT]; NaN where not fitted.
    sse : ndarray
        Weighted residual sum of squares of the data (ΔM/M0 units squared, priors excluded).
    r2 : ndarray
        Coefficient of determination.
    converged : ndarray of bool
        Whether the convergence test was met.
    iterations : ndarray of int
        Iterations used (all starts).
    status : ndarray of uint8
        :class:`FitStatus` flags.
    """

    params: np.ndarray
    sse: np.ndarray
    r2: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    status: np.ndarray


def _rows(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """Select voxels of a per-voxel (2-D) array; shared (1-D) arrays pass through."""
    return values[index] if values.ndim == 2 else values


@dataclass(frozen=True)
class _Curves:
    """A batch of voxel curves with everything their model and priors need.

    ``delays``/``taus`` are shared rows ``(m,)`` or per voxel ``(n, m)``; ``prior_weight`` is
    ``(n, p)`` (σ²/sd² per voxel and parameter, 0 without a prior) or None.
    """

    y: np.ndarray
    w: np.ndarray
    delays: np.ndarray
    taus: np.ndarray
    settings: KineticSettings
    arterial: bool
    dispersion_sd: float
    prior_mean: np.ndarray | None = None
    prior_weight: np.ndarray | None = None
    noise_variance: np.ndarray | None = None

    def tissue_only(self) -> _Curves:
        """Return the same curves under the tissue-only model (priors on CBF, ATT kept)."""
        if not self.arterial:
            return self
        return replace(
            self,
            arterial=False,
            prior_mean=None if self.prior_mean is None else self.prior_mean[:2],
            prior_weight=None if self.prior_weight is None else self.prior_weight[:, :2],
        )

    def data_sse(self, params: np.ndarray) -> np.ndarray:
        """Weighted sum of squares of the data alone (no prior term)."""
        return (self.w * (self.model(params)[0] - self.y) ** 2).sum(-1)

    def subset(self, index: np.ndarray) -> _Curves:
        """Return the same problem for some of the voxels."""
        settings = _per_voxel(self.settings, index)
        return replace(
            self,
            y=self.y[index],
            delays=_rows(self.delays, index),
            taus=_rows(self.taus, index),
            settings=settings,
            prior_weight=None if self.prior_weight is None else self.prior_weight[index],
            noise_variance=None if self.noise_variance is None else self.noise_variance[index],
        )

    def model(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """ΔM/M0 and its Jacobian ``(n, m, p)`` at ``params``."""
        signal, d_cbf, d_att = tissue_signal_and_jacobian(
            params[:, :1], params[:, 1:2], self.delays, self.taus, self.settings
        )
        columns = [d_cbf, d_att]
        if self.arterial:
            art, d_abv, d_att_a = arterial_signal_and_jacobian(
                params[:, 2:3], params[:, 3:4], self.delays, self.taus, self.settings,
                self.dispersion_sd,
            )  # fmt: skip
            signal = signal + art
            columns += [d_abv, d_att_a]
        return signal, np.stack(np.broadcast_arrays(*columns), axis=-1)

    def residual(self, params: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Residuals, their weights and Jacobian, with one row per prior after the data."""
        signal, jac = self.model(params)
        residual = signal - self.y
        weights = np.broadcast_to(self.w, residual.shape)
        if self.prior_weight is None:
            return residual, weights, jac
        n, p = params.shape
        residual = np.concatenate([residual, params - self.prior_mean], axis=1)
        weights = np.concatenate([weights, self.prior_weight], axis=1)
        jac = np.concatenate([jac, np.broadcast_to(np.eye(p), (n, p, p))], axis=1)
        return residual, weights, jac


def _grid_values(lower: float, upper: float, step: float) -> np.ndarray:
    n = max(int(np.ceil((upper - lower) / step)), 1) + 1
    return np.linspace(lower, upper, n)


def _per_voxel_t1(settings: KineticSettings) -> bool:
    return np.ndim(settings.t1_tissue) == 2


def _timing_groups(
    curves: _Curves,
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, KineticSettings]]:
    """Yield (voxel index, delay row, tau row, scalar settings) per distinct timing and T1.

    Timing differs between slices of a 2-D readout; a per-voxel tissue T1 is rounded to
    ``_T1_GROUP_S`` for the start grid only (the Levenberg-Marquardt fit uses exact values).
    """
    n = curves.y.shape[0]
    delays, taus, settings = curves.delays, curves.taus, curves.settings
    per_voxel_timing = delays.ndim == 2 or taus.ndim == 2
    columns = []
    if per_voxel_timing:
        m = delays.shape[-1]
        columns += [np.broadcast_to(delays, (n, m)), np.broadcast_to(taus, (n, m))]
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
        d_row = row[:m] if per_voxel_timing else delays
        t_row = row[m : 2 * m] if per_voxel_timing else taus
        group = replace(settings, t1_tissue=float(row[-1])) if _per_voxel_t1(settings) else settings
        yield index, d_row, t_row, group


def _tissue_basis(
    att_grid: np.ndarray, delays: np.ndarray, taus: np.ndarray, settings: KineticSettings
) -> np.ndarray:
    """Tissue ΔM/M0 per unit CBF (linearised at a typical flow), shape (n_grid, n_delays)."""
    signal = tissue_signal_and_jacobian(_FLOW_GUESS, att_grid[:, None], delays, taus, settings)[0]
    return signal / _FLOW_GUESS


def _att_grid(
    lower: float, upper: float, step: float, delays: np.ndarray, taus: np.ndarray, pulsed: bool
) -> np.ndarray:
    """ATT start grid: regular steps plus a point just below each kink of the model.

    The model's pieces meet where ATT equals a PLD (PCASL) or TI − TI1 (PASL), and the
    derivative in ATT jumps there, so no start sits on a kink: the regular grid is offset
    by a quarter step, and the extra points are ``_KINK_OFFSET_S`` below each kink, on the
    side where every earlier ATT gives the same curve shape. The one below the earliest
    kink is where a tie (see :func:`_last_best`) lands.
    """
    edges = (delays - taus if pulsed else np.asarray(delays)) - _KINK_OFFSET_S
    # no delay sees any label once ATT passes the last TI (PASL) or PLD + τ (PCASL/CASL)
    last_signal = float(np.max(delays if pulsed else delays + taus))
    upper = min(upper, last_signal + step)
    regular = np.arange(lower + step / 4.0, upper, step)
    edges = edges[(edges > lower) & (edges < upper)]
    return np.unique(np.concatenate([[lower], regular, edges]))


def _last_best(explained: np.ndarray) -> np.ndarray:
    """Index of the largest value per row; among ties, the last (the latest ATT).

    Every ATT at or below the earliest resolvable delay gives the same signal shape, so the
    grid ties there; taking the latest ATT of the tie is the documented convention.
    """
    best = explained.max(axis=1, keepdims=True)
    tie = explained >= best - _TIE_TOLERANCE * np.abs(best)
    return explained.shape[1] - 1 - np.argmax(tie[:, ::-1], axis=1)


def _start_tissue(
    curves: _Curves, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Grid over ATT with CBF in closed form; returns (n, 2) start parameters and their SSE."""
    n, w = curves.y.shape[0], curves.w
    start = np.zeros((n, 2))
    best_sse = np.zeros(n)
    for index, d_row, t_row, group in _timing_groups(curves):
        y = curves.y[index]
        att_grid = _att_grid(lower[1], upper[1], _GRID_STEP_S, d_row, t_row, group.is_pulsed)
        basis = _tissue_basis(att_grid, d_row, t_row, group)  # (G, M)
        gy = (y * w) @ basis.T  # (n_g, G)
        gg = (basis * basis) @ w  # (G,)
        safe_gg = np.where(gg > 0, gg, 1.0)
        explained = np.where(gg > 0, gy * gy / safe_gg, 0.0)
        best = _last_best(explained)
        rows = np.arange(index.size)
        start[index, 0] = np.where(gg[best] > 0, gy[rows, best] / safe_gg[best], 0.0)
        start[index, 1] = att_grid[best]
        best_sse[index] = ((y**2) @ w) - explained[rows, best]
    return start, best_sse


def _start_arterial(
    curves: _Curves, lower: np.ndarray, upper: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Return the arterial fit's starts, best first, ``(n, _ARTERIAL_STARTS, 4)``, and SSEs.

    A grid over (ATT, arterial ATT ≤ ATT) with CBF and aBV > 0 in closed form at every point;
    the lowest local minima of the grid SSE (each point no worse than its eight neighbours)
    are the starts (``inf`` SSE where a voxel has fewer). The arterial grid step is half the
    bolus-edge dispersion; arterial arrival times later than the last delay by more than
    three edge widths all look alike and are not gridded.
    """
    n, sd = curves.y.shape[0], curves.dispersion_sd
    tissue_start, tissue_sse = _start_tissue(curves, lower, upper)
    starts = np.zeros((n, _ARTERIAL_STARTS, 4))
    starts_sse = np.full((n, _ARTERIAL_STARTS), np.inf)
    for index, d_row, t_row, group in _timing_groups(curves):
        att_grid = _att_grid(lower[1], upper[1], _ARTERIAL_GRID_STEP_S, d_row, t_row,
                             group.is_pulsed)  # fmt: skip
        art_upper = min(upper[3], float(np.max(d_row)) + 3.0 * sd)
        art_grid = np.arange(lower[3], art_upper + sd / 2.0, sd / 2.0)
        grid = _PairGrid(
            att_grid, art_grid, _tissue_basis(att_grid, d_row, t_row, group),
            arterial_signal_and_jacobian(1.0, art_grid[:, None], d_row, t_row, group, sd)[0],
            curves.w,
        )  # fmt: skip
        for part in np.array_split(index, max(1, -(-index.size // _GRID_CHUNK))):
            starts[part], starts_sse[part] = grid.best_minima(curves.y[part])
    # a voxel without any positive-aBV grid point starts from the tissue-only fit, aBV 0
    none = ~np.isfinite(starts_sse[:, 0])
    starts[none, 0, :2] = tissue_start[none]
    starts[none, 0, 2] = lower[2]
    starts[none, 0, 3] = np.clip(tissue_start[none, 1], lower[3], upper[3])
    starts_sse[none, 0] = tissue_sse[none]
    return starts, starts_sse


@functools.cache
def _local_minima_kernel() -> Callable[..., None]:
    """Compile (once per process, 1.7 s idle) and return the start-grid kernel.

    For each voxel it scores every (ATT, arterial ATT) pair by the signal its closed-form
    CBF and aBV explain (aBV > 0 only), keeps the pairs no worse than their eight grid
    neighbours, and returns the ``k`` best. numba, not numpy, because the numpy version
    builds several (voxels x pairs) temporaries and gathers neighbours by index: on
    sub-O2019's protocol (66 x 37 pairs) the arterial start of 10,000 voxels took 1.5 s
    with numpy and takes 0.27 s with the kernel, with the same SSEs. numba is imported here
    so that the command line starts without it.
    """
    import numba

    @numba.njit(nogil=True, cache=False)
    def kernel(ty, ay, tt, aa, ta, valid, best_i, best_j, best_score):  # pragma: no cover
        n, n_att = ty.shape
        n_art = ay.shape[1]
        k = best_i.shape[1]
        score = np.full((n_att + 2, n_art + 2), -np.inf)
        for v in range(n):
            for i in range(n_att):
                for j in range(n_art):
                    value = -np.inf
                    if valid[i, j]:
                        abv_numerator = tt[i] * ay[v, j] - ta[i, j] * ty[v, i]
                        if abv_numerator > 0.0:
                            det = tt[i] * aa[j] - ta[i, j] ** 2
                            value = (
                                aa[j] * ty[v, i] ** 2
                                - 2.0 * ta[i, j] * ty[v, i] * ay[v, j]
                                + tt[i] * ay[v, j] ** 2
                            ) / det
                    score[i + 1, j + 1] = value
            for i in range(1, n_att + 1):
                for j in range(1, n_art + 1):
                    value = score[i, j]
                    if value == -np.inf:
                        continue
                    local = True
                    for di in range(-1, 2):
                        for dj in range(-1, 2):
                            if score[i + di, j + dj] > value:
                                local = False
                    if not local or value <= best_score[v, k - 1]:
                        continue
                    slot = k - 1
                    while slot > 0 and best_score[v, slot - 1] < value:
                        best_score[v, slot] = best_score[v, slot - 1]
                        best_i[v, slot] = best_i[v, slot - 1]
                        best_j[v, slot] = best_j[v, slot - 1]
                        slot -= 1
                    best_score[v, slot], best_i[v, slot], best_j[v, slot] = value, i - 1, j - 1

    return kernel


class _PairGrid:
    """The (ATT, arterial ATT ≤ ATT) grid of the arterial start.

    At each pair CBF and aBV solve a 2 x 2 weighted least-squares problem in closed form;
    ``best_minima`` finds, per voxel, the lowest pairs that are local minima of the SSE over
    their (up to eight) grid neighbours (:func:`_local_minima_kernel`).
    """

    def __init__(
        self,
        att_grid: np.ndarray,
        art_grid: np.ndarray,
        tissue: np.ndarray,
        arterial: np.ndarray,
        w: np.ndarray,
    ) -> None:
        self.att_grid, self.art_grid, self.w = att_grid, art_grid, w
        self.tissue, self.arterial = tissue, arterial
        self.tt, self.aa = (tissue * tissue) @ w, (arterial * arterial) @ w
        self.ta = (tissue * w) @ arterial.T
        det = self.tt[:, None] * self.aa[None, :] - self.ta**2
        self.valid = (att_grid[:, None] >= art_grid[None, :]) & (
            det > 1e-12 * self.tt[:, None] * self.aa[None, :]
        )

    def best_minima(self, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return starts ``(n, K, 4)`` at each voxel's K lowest local minima, and their SSEs."""
        n = y.shape[0]
        yw = y * self.w
        ty = np.ascontiguousarray(yw @ self.tissue.T)
        ay = np.ascontiguousarray(yw @ self.arterial.T)
        best_i = np.zeros((n, _ARTERIAL_STARTS), np.int64)
        best_j = np.zeros((n, _ARTERIAL_STARTS), np.int64)
        score = np.full((n, _ARTERIAL_STARTS), -np.inf)  # highest = lowest SSE
        _local_minima_kernel()(ty, ay, self.tt, self.aa, self.ta, self.valid,
                               best_i, best_j, score)  # fmt: skip
        rows = np.arange(n)[:, None]
        ty_b, ay_b = ty[rows, best_i], ay[rows, best_j]
        tt, aa, ta = self.tt[best_i], self.aa[best_j], self.ta[best_i, best_j]
        det = tt * aa - ta**2
        found = np.isfinite(score)
        with np.errstate(invalid="ignore", divide="ignore"):
            starts = np.stack([
                (aa * ty_b - ta * ay_b) / det, self.att_grid[best_i],
                (tt * ay_b - ta * ty_b) / det, self.art_grid[best_j],
            ], axis=-1)  # fmt: skip
            sse = ((y**2) @ self.w)[:, None] - score
        starts = np.where(found[..., None], starts, 0.0)
        return starts, np.where(found, sse, np.inf)


def _solve_damped(system: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """Solve the damped normal equations of every voxel; never raises on a singular one.

    The systems are positive definite by construction (a damping floor on a positive
    diagonal); a voxel whose numbers still defeat LU (overflowed or non-finite entries) makes
    the whole batch fall back to the pseudo-inverse, voxel by voxel, and gets a zero step if
    even that is not finite.
    """
    try:
        step = np.linalg.solve(system, rhs[..., None])[..., 0]
    except np.linalg.LinAlgError:
        finite = np.isfinite(system).all(axis=(1, 2)) & np.isfinite(rhs).all(axis=1)
        step = np.zeros_like(rhs)
        step[finite] = np.einsum("npq,nq->np", np.linalg.pinv(system[finite]), rhs[finite])
    return np.where(np.isfinite(step), step, 0.0)


def _blocked_by_bounds(
    params: np.ndarray, grad: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> np.ndarray:
    """Parameters at a bound whose descent direction points out of the box (held fixed)."""
    span = upper - lower
    at_lower = params <= lower + _BOUND_TOLERANCE * span
    at_upper = params >= upper - _BOUND_TOLERANCE * span
    return (at_lower & (grad > 0)) | (at_upper & (grad < 0))


def _damped_system(
    jtj: np.ndarray, grad: np.ndarray, damping: np.ndarray, blocked: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Marquardt system (JᵀJ + μ·D) δ = −g with D floored and bound-blocked rows removed.

    D is diag(JᵀJ) floored at a small fraction of its largest entry (and an absolute floor),
    so that a vanishing column (e.g. the arterial arrival time where aBV = 0) cannot make
    the system singular.
    """
    diagonal = np.diagonal(jtj, axis1=1, axis2=2)
    floor = _SCALE_FLOOR * diagonal.max(axis=1, keepdims=True) + _ABSOLUTE_FLOOR
    scale = np.maximum(diagonal, floor)
    free = (~blocked).astype(float)
    system = jtj * free[:, :, None] * free[:, None, :]
    system = system + (damping[:, None] * scale + blocked)[:, :, None] * np.eye(jtj.shape[1])
    return system, -grad * free


def _gain_ratio(
    reduction: np.ndarray, step: np.ndarray, grad: np.ndarray, jtj: np.ndarray
) -> np.ndarray:
    """Actual over predicted (Gauss-Newton) cost reduction of each voxel's step."""
    curvature = np.matmul(jtj, step[..., None])[..., 0]
    predicted = -np.einsum("np,np->n", 2.0 * grad + curvature, step)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(predicted > 0, reduction / predicted, 0.0)


def _update_damping(
    damping: np.ndarray, growth: np.ndarray, accept: np.ndarray, gain: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Nielsen's damping update (see :func:`_levenberg_marquardt`)."""
    shrink = np.maximum(1.0 / 3.0, 1.0 - (2.0 * np.clip(gain, 0.0, 1.0) - 1.0) ** 3)
    new_damping = np.where(accept, np.maximum(damping * shrink, _DAMPING_FLOOR), damping * growth)
    return new_damping, np.where(accept, 2.0, growth * 2.0)


def _levenberg_marquardt(
    curves: _Curves,
    start: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    options: FitOptions,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Bounded Levenberg-Marquardt on all voxels at once; returns params, cost, flags, counts.

    Bounds are handled by an active set: a parameter at a bound whose descent direction
    leaves the box is held fixed for that step, and every trial point is projected into the
    box. The damping μ follows Nielsen's rule (Madsen, Nielsen & Tingleff 2004, *Methods
    for non-linear least squares problems*, §3.2): after an accepted step it shrinks by
    max(1/3, 1 − (2ρ − 1)³), ρ the gain ratio of actual to predicted cost reduction (never
    below ``_DAMPING_FLOOR``); after a rejected step it grows by 2, 4, 8 ... A voxel is
    converged when an accepted step is below ``xtol`` relative to the parameters, when it
    lowers the cost by less than ``ftol`` of it, or when no step of any length lowers the
    cost any more (μ above ``_DAMPING_CEILING``: a minimum to machine precision).
    Non-finite trial costs are rejected, never accepted.
    """
    params = np.clip(start, lower, upper)
    n, p = params.shape
    damping = np.full(n, options.initial_damping)
    growth = np.full(n, 2.0)
    converged = np.zeros(n, bool)
    iterations = np.zeros(n, int)
    residual, weights, jac = curves.residual(params)
    cost = (weights * residual**2).sum(-1)
    active = np.arange(n)
    scale = _PARAMETER_SCALE[:p]
    problem = curves
    for _ in range(options.max_iterations):
        if active.size == 0:
            break
        wj = weights[..., None] * jac
        jtj = np.matmul(wj.transpose(0, 2, 1), jac)  # 6x faster than einsum here
        grad = np.einsum("nmp,nm->np", wj, residual)
        blocked = _blocked_by_bounds(params[active], grad, lower, upper)
        system, rhs = _damped_system(jtj, grad, damping[active], blocked)
        trial = np.clip(params[active] + _solve_damped(system, rhs), lower, upper)
        step = trial - params[active]
        new_residual, new_weights, new_jac = problem.residual(trial)
        new_cost = (new_weights * new_residual**2).sum(-1)
        accept = np.isfinite(new_cost) & (new_cost <= cost[active])
        flat = accept & (cost[active] - new_cost <= options.ftol * cost[active])
        gain = _gain_ratio(cost[active] - new_cost, step, grad, jtj)
        iterations[active] += 1
        accepted = active[accept]
        params[accepted] = trial[accept]
        cost[accepted] = new_cost[accept]
        damping[active], growth[active] = _update_damping(
            damping[active], growth[active], accept, gain
        )
        small = np.all(np.abs(step) <= options.xtol * (np.abs(trial) + scale), axis=1)
        done = (accept & small) | flat | (damping[active] > _DAMPING_CEILING)
        converged[active[done]] = True
        keep = ~done
        # refresh residual/Jacobian: accepted voxels take the trial's, rejected keep theirs
        residual = np.where(accept[:, None], new_residual, residual)[keep]
        jac = np.where(accept[:, None, None], new_jac, jac)[keep]
        weights = weights[keep]
        active = active[keep]
        problem = problem.subset(np.flatnonzero(keep))
    return params, cost, converged, iterations


def _fit_chunk(
    curves: _Curves, lower: np.ndarray, upper: np.ndarray, options: FitOptions
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit one chunk of voxels with the tissue model (and the arterial one, if asked).

    The arterial fit is the best of several starts, kept where the data support it
    (:func:`_arterial_supported`).
    """
    tissue = curves.tissue_only()
    start = _start_tissue(tissue, lower, upper)[0]
    tissue_fit = _levenberg_marquardt(tissue, start, lower[:2], upper[:2], options)
    _leave_kinks(tissue, tissue_fit, lower[:2], upper[:2], options)
    if not curves.arterial:
        return tissue_fit
    starts, starts_sse = _start_arterial(curves, lower, upper)
    best = _levenberg_marquardt(curves, starts[:, 0], lower, upper, options)
    for k in range(1, starts.shape[1]):
        again = np.flatnonzero(
            (starts_sse[:, k] <= _START_SSE_RATIO * starts_sse[:, 0])
            & (starts_sse[:, k] <= _START_SSE_BEST_RATIO * best[1])
            & (starts[:, k, 2] <= upper[2])
        )
        if again.size:
            _keep_better(best, again, _levenberg_marquardt(
                curves.subset(again), starts[again, k], lower, upper, options
            ))  # fmt: skip
    _leave_kinks(curves, best, lower, upper, options)
    params, cost, converged, iterations = best
    level = options.arterial_selection_level
    use_tissue = ~_arterial_supported(curves, params, tissue_fit[0], level)
    params[use_tissue, :2] = tissue_fit[0][use_tissue]
    params[use_tissue, 2], params[use_tissue, 3] = lower[2], np.nan
    cost[use_tissue] = tissue_fit[1][use_tissue]
    converged[use_tissue] = tissue_fit[2][use_tissue]
    return params, cost, converged, iterations + tissue_fit[3]


def _keep_better(
    best: tuple[np.ndarray, ...], index: np.ndarray, other: tuple[np.ndarray, ...]
) -> None:
    """Replace, in place, the fits of ``index`` whose cost ``other`` lowers."""
    better = other[1] < best[1][index]
    best[3][index] += other[3]
    for mine, theirs in zip(best[:3], other[:3], strict=True):
        mine[index[better]] = theirs[better]


def _leave_kinks(
    curves: _Curves,
    fit: tuple[np.ndarray, ...],
    lower: np.ndarray,
    upper: np.ndarray,
    options: FitOptions,
) -> None:
    """Refit, from just either side, the voxels whose ATT stopped on a kink of the model.

    At a kink (ATT equal to a PLD, PLD + τ, TI − TI1 or TI) the derivative in ATT jumps and
    is taken from one side only, so a fit can stop there while its minimum lies just on the
    other side; the lower cost of the two restarts is kept (in place).
    """
    params = fit[0]
    delays = np.broadcast_to(curves.delays, curves.y.shape)
    taus = np.broadcast_to(curves.taus, curves.y.shape)
    pieces = (delays - taus, delays) if curves.settings.is_pulsed else (delays, delays + taus)
    kinks = np.concatenate(pieces, axis=1)
    on_kink = np.flatnonzero((np.abs(kinks - params[:, 1:2]) < _KINK_TOLERANCE_S).any(axis=1))
    if on_kink.size == 0:
        return
    # both sides in one batch: the restarts are few voxels, whose iterations cost mostly
    # per-iteration overhead (noisy tissue curves, 10,000 voxels: 0.058 s of 0.228 s before)
    n_kink = on_kink.size
    start = np.concatenate([params[on_kink], params[on_kink]])
    start[:n_kink, 1] -= _KINK_OFFSET_S * 10
    start[n_kink:, 1] += _KINK_OFFSET_S * 10
    both = _levenberg_marquardt(
        curves.subset(np.concatenate([on_kink, on_kink])), start, lower, upper, options
    )
    side = np.where(both[1][:n_kink] <= both[1][n_kink:], 0, n_kink) + np.arange(n_kink)
    lower_side = tuple(values[side] for values in both[:3])
    _keep_better(fit, on_kink, (*lower_side, both[3][:n_kink] + both[3][n_kink:]))


def _arterial_supported(
    curves: _Curves,
    arterial_params: np.ndarray,
    tissue_params: np.ndarray,
    level: float,
) -> np.ndarray:
    """Whether the arterial component lowers the data's misfit by more than chance would.

    F-test of the nested models: the two extra parameters must lower the weighted sum of
    squares by ΔSSE with (ΔSSE/2)/σ² above the (1 − ``level``) quantile of F(2, ν)
    (``FitOptions.arterial_selection_level``, :data:`ARTERIAL_SELECTION_ALPHA` by default;
    for ν = ∞, χ²(2)/2, which scipy's F distribution returns as NaN). σ² is the voxel's noise
    variance of one volume from its repeats
    (ν = volumes − delays; a variance given without repeats counts as known, ν = ∞), or
    else the arterial fit's residual variance (ν = delays − 4; below 1 the component is
    never kept). Where it is not supported, the voxel keeps the tissue-only fit (aBV = 0):
    the arterial component is relevant only where the data need it, which BASIL obtains
    with its automatic relevance determination prior on aBV.

    The F quantile replaces a Bayesian information criterion (ΔSSE > 2·ln N·σ²), which
    ignored the uncertainty of a residual variance with 2 degrees of freedom: on 6 single
    delays of tissue-only curves it kept the component in 49–53 % of voxels and biased ATT
    by up to +0.17 s (``benchmarks/arterial_selection.py``).
    """
    n_delays = curves.y.shape[1]
    n_volumes = float(np.sum(curves.w))
    arterial_sse = curves.data_sse(arterial_params)
    tissue_sse = curves.tissue_only().data_sse(tissue_params)
    if curves.noise_variance is not None:
        variance = curves.noise_variance
        dof = n_volumes - n_delays if n_volumes > n_delays else np.inf
    else:
        dof = n_delays - arterial_params.shape[1]
        if dof < 1:
            return np.zeros(curves.y.shape[0], bool)
        variance = arterial_sse / dof
    if np.isinf(dof):
        quantile = chi2.isf(level, 2) / 2.0
    else:
        quantile = f_distribution.isf(level, 2, dof)
    threshold = 2.0 * quantile * variance
    energy = (curves.w * curves.y**2).sum(-1)  # noise-free data: rounding is not support
    return tissue_sse - arterial_sse > np.maximum(threshold, _TIE_TOLERANCE * energy)


def _fit_status(
    params: np.ndarray,
    converged: np.ndarray,
    lower: np.ndarray,
    upper: np.ndarray,
    resolvable_att: np.ndarray,
) -> np.ndarray:
    """Status flags of each fitted voxel (see :class:`FitStatus`)."""
    status = np.where(converged, 0, int(FitStatus.NOT_CONVERGED)).astype(np.uint8)
    span = upper - lower
    at_lower = params <= lower + _BOUND_TOLERANCE * span
    at_upper = params >= upper - _BOUND_TOLERANCE * span
    at_bound = at_lower[:, :2].any(axis=1) | at_upper[:, :2].any(axis=1)
    if params.shape[1] == 4:  # aBV = 0 is "no arterial signal", not a bound problem
        arterial_present = params[:, 2] > lower[2] + _BOUND_TOLERANCE * span[2]
        at_bound |= at_upper[:, 2] | (arterial_present & (at_lower[:, 3] | at_upper[:, 3]))
    status[at_bound] |= np.uint8(FitStatus.AT_BOUND)
    status[params[:, 1] <= resolvable_att] |= np.uint8(FitStatus.ATT_UNRESOLVED)
    return status


def earliest_resolvable_att(delays: np.ndarray, taus: np.ndarray, pulsed: bool) -> np.ndarray:
    """ATT at or below which every delay sees the whole bolus (the data cannot place ATT).

    Parameters
    ----------
    delays, taus : ndarray
        PLDs (PCASL/CASL) or TIs (PASL) and labeling/bolus durations, s; delays on the last
        axis.
    pulsed : bool
        PASL.

    Returns
    -------
    ndarray
        PCASL/CASL: the shortest PLD; PASL: the shortest TI − TI1 (per voxel for per-voxel
        delays).
    """
    edge = np.asarray(delays) - np.asarray(taus) if pulsed else np.asarray(delays)
    return np.min(edge, axis=-1)


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
    priors: ArrivalPriors | None = None,
    noise_variance: np.ndarray | None = None,
) -> CurveFitResult:
    """Fit the kinetic model to many ΔM/M0 curves at once (voxels on the first axis).

    Never raises on a voxel: curves with a non-finite value are not fitted (NaN parameters,
    status ``NON_FINITE_INPUT``); every other voxel gets finite parameters inside the
    bounds and status flags for non-convergence, a parameter at a bound, and an ATT at or
    below the earliest delay that can resolve it.

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
        Per-delay weights (the number of averaged repeats), ``(n_delays,)``.
    arterial : bool
        Also fit an arterial component (aBV, arterial ATT).
    arterial_dispersion_sd : float
        Gaussian edge smoothing of the arterial bolus, s.
    bounds : FitBounds, optional
        Box constraints.
    options : FitOptions, optional
        Iteration options.
    priors : ArrivalPriors, optional
        Priors on the arrival times; used only with ``noise_variance``.
    noise_variance : ndarray, optional
        ``(n_voxels,)`` variance of one ΔM/M0 volume of each voxel (e.g. from its repeats);
        it weighs the priors against the data (0 or NaN: no prior for that voxel).

    Returns
    -------
    CurveFitResult
        Parameters, residuals, R², convergence and status flags.
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
    p = 4 if arterial else 2
    lower, upper = bounds.arrays(p)
    if np.ndim(settings.t1_tissue) >= 1:
        t1 = np.broadcast_to(np.asarray(settings.t1_tissue, float).reshape(-1, 1), (y.shape[0], 1))
        settings = replace(settings, t1_tissue=t1)
    prior_mean = prior_weight = variance = None
    if noise_variance is not None:
        variance = np.nan_to_num(np.asarray(noise_variance, float), nan=0.0, posinf=0.0)
        variance = np.maximum(variance, 0.0)
    if priors is not None and variance is not None:
        prior_mean, precision = priors.means_and_precisions(p)
        prior_weight = variance[:, None] * precision
    curves = _Curves(y, w, delays, taus, settings, arterial, arterial_dispersion_sd,
                     prior_mean, prior_weight, variance)  # fmt: skip
    fitted = np.flatnonzero(np.isfinite(y).all(axis=1))
    n_chunks = max(1, -(-fitted.size // options.chunk_size))
    if options.n_threads > 1:
        n_chunks = max(n_chunks, min(options.n_threads, fitted.size))
    chunks = [chunk for chunk in np.array_split(fitted, n_chunks) if chunk.size]

    def run(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        return _fit_chunk(curves.subset(chunk), lower, upper, options)

    if options.n_threads > 1 and len(chunks) > 1:
        with ThreadPoolExecutor(options.n_threads) as pool:
            parts = list(pool.map(run, chunks))
    else:
        parts = [run(chunk) for chunk in chunks]
    n = y.shape[0]
    params = np.full((n, p), np.nan)
    converged = np.zeros(n, bool)
    iterations = np.zeros(n, int)
    for chunk, (chunk_params, _, chunk_converged, chunk_iterations) in zip(
        chunks, parts, strict=True
    ):
        params[chunk], converged[chunk], iterations[chunk] = (
            chunk_params, chunk_converged, chunk_iterations,
        )  # fmt: skip
    status = np.full(n, int(FitStatus.NON_FINITE_INPUT), np.uint8)
    resolvable = earliest_resolvable_att(
        _rows(delays, fitted), _rows(taus, fitted), settings.is_pulsed
    )
    status[fitted] = _fit_status(params[fitted], converged[fitted], lower, upper, resolvable)
    sse = np.full(n, np.nan)
    if fitted.size:
        sse[fitted] = curves.subset(fitted).data_sse(np.nan_to_num(params[fitted]))
    r2 = np.full(n, np.nan)
    data = y[fitted]
    sst = (w * (data - (w * data).sum(-1, keepdims=True) / w.sum()) ** 2).sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2[fitted] = np.where(sst > 0, 1.0 - sse[fitted] / sst, np.nan)
    return CurveFitResult(params, sse, r2, converged, iterations, status)


def leave_one_out_cbf(
    result: CurveFitResult,
    repeats: np.ndarray,
    delays: np.ndarray,
    taus: np.ndarray,
    settings: KineticSettings,
    *,
    weights: np.ndarray,
    arterial_dispersion_sd: float = 0.1,
    priors: ArrivalPriors | None = None,
    noise_variance: np.ndarray | None = None,
) -> np.ndarray:
    """CBF of each voxel with one repeat left out, to first order (infinitesimal jackknife).

    Leaving repeat r out of the weighted fit moves the parameters by
    δθ_r ≈ −H⁻¹ Jᵀ (y_r − f), with J the Jacobian and f the model at the fit, y_r the
    repeat's ΔM/M0 at each delay, and H = Jᵀ diag(n_k − 1) J (+ the priors' precision, as in
    the fit): one small solve per voxel and repeat instead of a refit. Voxels where the
    arterial component was kept use all four parameters, the others CBF and ATT. Not-fitted
    voxels give NaN.

    Parameters
    ----------
    result : CurveFitResult
        The fit of the repeat-averaged curves.
    repeats : ndarray
        ``(n_repeats, n_voxels, n_delays)`` ΔM/M0 of each repeat (NaN where a delay has no
        r-th repeat).
    delays, taus, settings, arterial_dispersion_sd, priors, noise_variance
        As given to :func:`fit_kinetic_curves`.
    weights : ndarray
        Repeats per delay.

    Returns
    -------
    ndarray
        ``(n_repeats, n_voxels)`` leave-one-repeat-out CBF.
    """
    n_repeats, n, m = repeats.shape
    out = np.full((n_repeats, n), np.nan)
    params = result.params
    arterial = params.shape[1] == 4
    delays = np.asarray(delays, float)
    taus = np.broadcast_to(np.asarray(taus, float), delays.shape)
    if np.ndim(settings.t1_tissue) >= 1:
        t1 = np.asarray(settings.t1_tissue, float).reshape(-1, 1)
        settings = replace(settings, t1_tissue=t1)
    with_artery = np.isfinite(params[:, 3]) if arterial else np.zeros(n, bool)
    groups = ((with_artery, True), (np.isfinite(params[:, 0]) & ~with_artery, False))
    for selected, use_arterial in groups:
        index = np.flatnonzero(selected)
        if index.size == 0:
            continue
        p = 4 if use_arterial else 2
        curves = _Curves(
            repeats[0, index], np.asarray(weights, float), _rows(delays, index),
            _rows(taus, index), _per_voxel(settings, index), use_arterial,
            arterial_dispersion_sd,
        )  # fmt: skip
        signal, jac = curves.model(params[index, :p])
        fewer = np.maximum(np.asarray(weights, float) - 1.0, 0.0)
        hessian = np.matmul((fewer[:, None] * jac).transpose(0, 2, 1), jac)
        if priors is not None and noise_variance is not None:
            _, precision = priors.means_and_precisions(p)
            hessian += np.asarray(noise_variance, float)[index, None, None] * np.diag(precision)
        hessian += (
            _SCALE_FLOOR
            * np.eye(p)
            * np.diagonal(hessian, axis1=1, axis2=2).max(axis=1)[:, None, None]
        )
        for r in range(n_repeats):
            residual = np.nan_to_num(repeats[r, index] - signal)  # a missing repeat adds 0
            gradient = np.einsum("nmp,nm->np", jac, residual)
            shift = _solve_damped(hessian, -gradient)
            out[r, index] = params[index, 0] + shift[:, 0]
    return out


def _per_voxel(settings: KineticSettings, index: np.ndarray) -> KineticSettings:
    """Return the settings for some voxels (a per-voxel tissue T1 follows them)."""
    if _per_voxel_t1(settings):
        return replace(settings, t1_tissue=settings.t1_tissue[index])
    return settings
