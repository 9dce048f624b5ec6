"""Voxelwise permutation inference: GLM t, permutations, FWE (max-t, TFCE, cluster mass), writing.

numpy and scipy only. The inputs are template-space maps that are already loaded: ``data`` of
shape ``(n_maps, n_voxels)`` holds the in-mask voxels of each map in the C order of
``np.flatnonzero(mask)`` for a 3-D boolean ``mask``. TFCE and cluster labelling are in
:mod:`aslmig.group.tfce`, single-patient z maps in :mod:`aslmig.group.patient_maps`,
hemispheric asymmetry in :mod:`aslmig.group.asymmetry` (re-exported here for callers) and the
territory figure in :mod:`aslmig.reports.overlays`.

Inference (see ``docs/group-voxelwise.md`` for the equations)
------------------------------------------------------------
* General linear model ``Y = X b + e`` fitted per voxel; ``t = c'b / sqrt(s^2 c'(X'X)^+ c)``
  with ``s^2 = RSS / (n - rank X)``.
* Null distribution by Freedman & Lane (1983): the residuals of the reduced model (the design
  restricted to ``c'b = 0``) are permuted (or sign-flipped) and added back to its fitted values;
  ``"manly"`` permutes the data themselves and ``"signflip"`` flips signs of the (reduced-model
  residual) rows, for one-sample and paired (difference) designs. The first transformation is
  always the identity, so ``p = #{null >= observed} / n_permutations`` (Winkler et al. 2014).
* Family-wise error control by the distribution of the maximum over the mask of (a) the voxel
  statistic, (b) TFCE (Smith & Nichols 2009; ``H = 2``, ``E = 0.5``, step ``dh``) and,
  optionally, (c) cluster mass (the sum of ``|t|`` in a cluster of ``|t| >= threshold``).
* Connectivity of clusters and TFCE: 26 (faces, edges and corners; default) or 6 (faces).
* Tails: ``"two-sided"`` (``|t|``; TFCE of the positive and of the negative part, signed),
  ``"greater"`` (``t``) or ``"less"`` (``-t``).

Kept hand-written (measured 2026-12-05, ``benchmarks/kept_versus_libraries.py``)
--------------------------------------------------------------------------------
The maintained alternative is nilearn's ``permuted_ols(..., tfce=True)`` (0.14.1). On 20 maps
(two groups of 10) of 13,944 in-mask voxels (an ellipsoid in a 30x36x30 grid), two-sided, 200
permutations, one process, it takes 101-134 ms CPU per permutation (three runs on a loaded
2-core machine), against 2.4-3.3 ms here at its connectivity (6; 32-52 times less in the same
run) and 4.3-5.9 ms at the default 26. It offers 6-connectivity only (it builds
``generate_binary_structure(3, 1)`` itself), 100 equal steps up to each map's own maximum
(fslmaths' convention: the step differs between the observed and every null map) with the sum
not multiplied by the step, and permutes the rows of the whole design (no Freedman-Lane for
covariates). Its TFCE is the same quantity: given its conventions (6-connectivity,
``dh=max|t|/100``, divided by ``dh``) :func:`tfce_transform` reproduces its observed TFCE map to
6e-16 of the peak (r = 1.000000; 3e-16 against its private ``calculate_tfce`` given a
26-connected structure); with the defaults here (26, ``dh = 0.1``, times ``dh``) the maps
correlate at r = 0.994 and differ in scale (peak ratio 12).
"""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import linalg

from aslmig.group.asymmetry import asymmetry_map, flip_x, mirror_index
from aslmig.group.patient_maps import patient_zmap
from aslmig.group.tfce import (
    TAILS,
    TFCEParams,
    bounding_box,
    cluster_labels,
    connectivity_structure,
    max_cluster_mass,
    max_tfce,
    signed_parts,
    tfce_transform,
)

__all__ = [
    "CLUSTER_COLUMNS",
    "OUTPUT_MAPS",
    "SCHEMES",
    "TAILS",
    "TFCEParams",
    "VoxelwiseResult",
    "asymmetry_map",
    "flip_x",
    "glm_t",
    "mirror_index",
    "patient_zmap",
    "permutation_test",
    "tfce_transform",
    "write_voxelwise",
]

#: Accepted values of ``scheme``.
SCHEMES = ("auto", "freedman-lane", "manly", "signflip")
#: Columns of the cluster table.
CLUSTER_COLUMNS = (
    "cluster_id",
    "size_voxels",
    "volume_mm3",
    "peak_t",
    "peak_x",
    "peak_y",
    "peak_z",
    "mass",
    "p_fwe",
)
#: Largest number of transformations enumerated in exact mode.
MAX_EXACT = 1_000_000
#: Relative tolerance under which a null statistic counts as equal to the observed one.
TIE_TOLERANCE = 1e-9
#: Singular values below this fraction of the largest are treated as zero.
RANK_TOLERANCE = 1e-10
#: Memory budget (bytes) of one block of permutations in :func:`permutation_test`.
BLOCK_BYTES = 256 * 2**20


# --------------------------------------------------------------------------------------------
# General linear model
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Model:
    """An orthonormal decomposition of a design for one contrast."""

    basis: np.ndarray  # (n, r) orthonormal basis of the column space of X
    weights: np.ndarray  # (r,): c'b = weights @ (basis' y)
    df: int  # n - r
    reduced: np.ndarray  # (n, r0) orthonormal basis of the reduced model (c'b = 0)


def _orthonormal_basis(matrix: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return ``U, s, Vt`` of the thin SVD restricted to the non-negligible singular values."""
    if matrix.shape[1] == 0:
        return np.zeros((matrix.shape[0], 0)), np.zeros(0), np.zeros((0, 0))
    u, s, vt = linalg.svd(matrix, full_matrices=False)
    keep = s > RANK_TOLERANCE * max(s[0], 1e-300)
    return u[:, keep], s[keep], vt[keep]


def _check_design(design: ArrayLike, contrast: ArrayLike, n_maps: int) -> tuple[np.ndarray, ...]:
    x = np.asarray(design, dtype=float)
    c = np.asarray(contrast, dtype=float).ravel()
    if x.ndim == 1:
        x = x[:, np.newaxis]
    if x.ndim != 2 or x.shape[0] != n_maps:
        raise ValueError(f"design must be ({n_maps}, p), got shape {x.shape}")
    if c.size != x.shape[1]:
        raise ValueError(f"contrast has {c.size} entries but the design has {x.shape[1]} columns")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(c))) or not np.any(c):
        raise ValueError("design and contrast must be finite and the contrast non-zero")
    return x, c


def _decompose(design: ArrayLike, contrast: ArrayLike, n_maps: int) -> _Model:
    x, c = _check_design(design, contrast, n_maps)
    u, s, vt = _orthonormal_basis(x)
    if np.linalg.norm(c - vt.T @ (vt @ c)) > 1e-8 * np.linalg.norm(c):
        raise ValueError(
            f"contrast {c.tolist()} is not estimable with this (rank-deficient) design"
        )
    df = n_maps - u.shape[1]
    if df < 1:
        raise ValueError(f"no residual degrees of freedom (n = {n_maps}, rank {u.shape[1]})")
    null = linalg.null_space(c[np.newaxis, :])
    reduced, _, _ = _orthonormal_basis(x @ null)
    return _Model(basis=u, weights=(vt @ c) / s, df=df, reduced=reduced)


def _check_data(data: ArrayLike) -> np.ndarray:
    y = np.asarray(data, dtype=float)
    if y.ndim == 1:
        y = y[:, np.newaxis]
    if y.ndim != 2 or y.shape[1] == 0:
        raise ValueError(f"data must be (n_maps, n_voxels), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise ValueError("data contain non-finite values; mask them out first")
    return y


def _t_from_projection(projection: np.ndarray, rss: np.ndarray, model: _Model) -> np.ndarray:
    """Return ``t`` from ``U'y`` (``(..., r, V)``) and the residual sum of squares."""
    scale = float(model.weights @ model.weights) / model.df
    numerator = np.tensordot(model.weights, projection, axes=(0, -2))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = numerator / np.sqrt(np.maximum(rss, 0.0) * scale)
    return np.where(np.isfinite(t), t, 0.0)


def glm_t(data: ArrayLike, design: ArrayLike, contrast: ArrayLike) -> np.ndarray:
    """Return the per-voxel t statistic of a contrast of an ordinary least-squares fit.

    Parameters
    ----------
    data : array_like, shape (n_maps, n_voxels)
        One row per map.
    design : array_like, shape (n_maps, p)
        Design matrix (include the intercept column yourself).
    contrast : array_like, shape (p,)
        Contrast vector ``c``; must be estimable.

    Returns
    -------
    ndarray, shape (n_voxels,)
        ``c'b / sqrt(s^2 c'(X'X)^+ c)``; 0 where the residual variance is 0.
    """
    y = _check_data(data)
    model = _decompose(design, contrast, y.shape[0])
    projection = model.basis.T @ y
    residual = y - model.basis @ projection
    return _t_from_projection(projection, np.einsum("nv,nv->v", residual, residual), model)


# --------------------------------------------------------------------------------------------
# Permutations and sign flips
# --------------------------------------------------------------------------------------------


def _resolve_scheme(scheme: str, n_columns: int) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if scheme == "auto":
        return "signflip" if n_columns == 1 else "freedman-lane"
    return scheme


def _exact_count(n: int, flip: bool) -> int:
    return 2**n if flip else math.factorial(n)


def _exact_transforms(n: int, flip: bool) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    identity, ones = np.arange(n), np.ones(n)
    if flip:
        for signs in itertools.product((1.0, -1.0), repeat=n):
            yield identity, np.array(signs)
    else:
        for order in itertools.permutations(range(n)):
            yield np.array(order), ones


def _random_transforms(
    n: int, count: int, flip: bool, rng: np.random.Generator
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    identity, ones = np.arange(n), np.ones(n)
    yield identity, ones
    for _ in range(count - 1):
        if flip:
            yield identity, rng.choice((-1.0, 1.0), size=n)
        else:
            yield rng.permutation(n), ones


def _blocks(
    transforms: Iterator[tuple[np.ndarray, np.ndarray]], size: int
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    while True:
        chunk = list(itertools.islice(transforms, size))
        if not chunk:
            return
        yield np.stack([p for p, _ in chunk]), np.stack([s for _, s in chunk])


def _null_t_block(
    source: np.ndarray,
    source_ss: np.ndarray,
    model: _Model,
    orders: np.ndarray,
    signs: np.ndarray,
) -> np.ndarray:
    """Return t of the full model for ``P source`` for each transformation of a block.

    ``(P y)_i = s_i y_{order_i}``. Then ``U'P y = M y`` with ``M[:, order_i] = s_i U_i``, so the
    whole block is one matrix product; the residual sum of squares of ``P y`` under the full
    model is ``|y|^2 - |U'P y|^2`` because ``P`` preserves norms.
    """
    count, n = orders.shape
    rank = model.basis.shape[1]
    stacked = np.zeros((count, n, rank))
    stacked[np.arange(count)[:, np.newaxis], orders] = signs[:, :, np.newaxis] * model.basis
    projection = (stacked.transpose(0, 2, 1).reshape(count * rank, n) @ source).reshape(
        count, rank, -1
    )
    rss = source_ss - np.einsum("brv,brv->bv", projection, projection)
    return _t_from_projection(projection, rss, model)


def _oriented(t: np.ndarray, tail: str) -> np.ndarray:
    if tail == "two-sided":
        return np.abs(t)
    return t if tail == "greater" else -t


# --------------------------------------------------------------------------------------------
# The permutation test
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Grid:
    """The mask cropped to its bounding box, for scattering voxel vectors into volumes."""

    mask: np.ndarray
    box: tuple[slice, slice, slice]
    flat: np.ndarray  # in-mask voxel positions in the C order of the cropped box

    @classmethod
    def from_mask(cls, mask: ArrayLike) -> _Grid:
        array = np.asarray(mask)
        if array.ndim != 3 or array.dtype != bool:
            raise ValueError(f"mask must be a 3-D boolean array, got {array.dtype} {array.shape}")
        if not array.any():
            raise ValueError("mask is empty")
        box = bounding_box(array)
        return cls(mask=array, box=box, flat=np.flatnonzero(array[box]))

    def volume(self, values: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """Return the cropped volume holding ``values`` at the in-mask voxels."""
        shape = tuple(s.stop - s.start for s in self.box)
        out = np.full(shape, fill)
        out.reshape(-1)[self.flat] = values
        return out

    def full(self, values: np.ndarray | None) -> np.ndarray | None:
        """Return a full-size volume, NaN outside the mask."""
        if values is None:
            return None
        out = np.full(self.mask.shape, np.nan)
        out[self.mask] = values
        return out

    def values(self, volume: np.ndarray) -> np.ndarray:
        """Return the in-mask values of a cropped volume."""
        return volume.reshape(-1)[self.flat]


@dataclass(frozen=True, eq=False)
class VoxelwiseResult:
    """Maps and tables of :func:`permutation_test`.

    All maps are 3-D float arrays on the mask's grid, NaN outside the mask.

    Attributes
    ----------
    t : ndarray
        Unthresholded t map.
    tfce : ndarray or None
        TFCE of the t map (signed for two-sided tests); None when TFCE was not requested.
    p_uncorrected : ndarray
        Voxelwise permutation p.
    p_fwe_t : ndarray
        FWE-corrected p by the maximum voxel statistic.
    p_fwe_tfce : ndarray or None
        FWE-corrected p by the maximum TFCE.
    p_fwe_cluster : ndarray or None
        Cluster-mass FWE p of the cluster each voxel belongs to (1 outside clusters); None
        without a cluster-forming threshold.
    clusters : pandas.DataFrame
        One row per cluster (columns :data:`CLUSTER_COLUMNS`), largest mass first; empty
        without a cluster-forming threshold.
    null_max_t, null_max_tfce, null_max_mass : ndarray or None
        Maximum statistics of every transformation (identity first).
    mask : ndarray of bool
        The analysis mask.
    affine : ndarray, shape (4, 4)
        Voxel-to-world (MNI mm) matrix.
    metadata : dict
        What was computed: contrast, design columns, scheme, tail, permutations, seed, TFCE
        parameters, connectivity, cluster threshold, degrees of freedom.
    """

    t: np.ndarray
    tfce: np.ndarray | None
    p_uncorrected: np.ndarray
    p_fwe_t: np.ndarray
    p_fwe_tfce: np.ndarray | None
    p_fwe_cluster: np.ndarray | None
    clusters: pd.DataFrame
    null_max_t: np.ndarray
    null_max_tfce: np.ndarray | None
    null_max_mass: np.ndarray | None
    mask: np.ndarray
    affine: np.ndarray
    metadata: dict[str, Any] = field(default_factory=dict)


def _fwe_p(observed: np.ndarray, null_max: np.ndarray) -> np.ndarray:
    """Return ``#{null_max >= observed} / len(null_max)`` per element."""
    ordered = np.sort(null_max)
    tolerance = TIE_TOLERANCE * np.maximum(np.abs(observed), 1.0)
    below = np.searchsorted(ordered, observed - tolerance, side="left")
    return (ordered.size - below) / ordered.size


def _block_size(n_voxels: int, rank: int, requested: int | None) -> int:
    if requested is not None:
        if requested < 1:
            raise ValueError(f"block_size must be positive, got {requested}")
        return int(requested)
    return max(1, min(256, BLOCK_BYTES // (8 * n_voxels * (2 * rank + 3))))


def _transforms(
    n: int, flip: bool, n_permutations: int, exact: bool, seed: int | np.random.Generator
) -> tuple[Iterator[tuple[np.ndarray, np.ndarray]], int]:
    if exact:
        total = _exact_count(n, flip)
        if total > MAX_EXACT:
            raise ValueError(
                f"exact enumeration needs {total} transformations (more than {MAX_EXACT}); "
                "use random permutations instead"
            )
        return _exact_transforms(n, flip), total
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be at least 1, got {n_permutations}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    return _random_transforms(n, n_permutations, flip, rng), n_permutations


def _source(y: np.ndarray, model: _Model, scheme: str) -> np.ndarray:
    """Return what is permuted: reduced-model residuals (Freedman-Lane, sign flip) or data."""
    if scheme == "manly":
        return y
    return y - model.reduced @ (model.reduced.T @ y)


def _tfce_values(
    t: np.ndarray, grid: _Grid, params: TFCEParams, connectivity: int, tail: str
) -> np.ndarray:
    return grid.values(tfce_transform(grid.volume(t), params, connectivity=connectivity, tail=tail))


def _tfce_max(
    t: np.ndarray, grid: _Grid, params: TFCEParams, structure: np.ndarray, tail: str
) -> float:
    """Return ``max |TFCE|`` of one null t vector (computed at the regional extrema only)."""
    return max_tfce(grid.volume(t), params, structure, tail)


@dataclass(frozen=True, eq=False)
class _Spatial:
    """Computes the maximum TFCE and cluster mass of each row of a block of null t vectors."""

    grid: _Grid
    params: TFCEParams
    structure: np.ndarray
    tail: str
    use_tfce: bool
    cluster_threshold: float | None

    def __call__(self, t_block: np.ndarray) -> tuple[list[float], list[float]]:
        tfce_max, mass_max = [], []
        for row in t_block:
            if self.use_tfce:
                tfce_max.append(_tfce_max(row, self.grid, self.params, self.structure, self.tail))
            if self.cluster_threshold is not None:
                volume = self.grid.volume(row)
                mass_max.append(
                    max_cluster_mass(volume, self.cluster_threshold, self.tail, self.structure)
                )
        return tfce_max, mass_max


class _Pool:
    """Runs tasks in order, in this process (``n_jobs == 1``) or in worker processes.

    Results are returned in submission order, so the output does not depend on ``n_jobs``; at
    most ``2 n_jobs`` tasks are pending at a time, to bound memory.
    """

    def __init__(self, n_jobs: int) -> None:
        if n_jobs < 1:
            raise ValueError(f"n_jobs must be at least 1, got {n_jobs}")
        self._executor = ProcessPoolExecutor(n_jobs) if n_jobs > 1 else None
        self._limit = 2 * n_jobs
        self._pending: deque[Any] = deque()
        self._done: list[Any] = []

    def __enter__(self) -> _Pool:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)

    def submit(self, function: Any, argument: Any) -> None:
        """Run ``function(argument)`` now or in a worker."""
        if self._executor is None:
            self._done.append(function(argument))
            return
        self._pending.append(self._executor.submit(function, argument))
        while len(self._pending) > self._limit:
            self._done.append(self._pending.popleft().result())

    def results(self) -> list[Any]:
        """Wait for every task; return the results in submission order."""
        while self._pending:
            self._done.append(self._pending.popleft().result())
        return self._done


def permutation_test(
    data: ArrayLike,
    mask: ArrayLike,
    design: ArrayLike,
    contrast: ArrayLike,
    *,
    affine: ArrayLike | None = None,
    design_columns: Sequence[str] | None = None,
    n_permutations: int = 5000,
    seed: int | np.random.Generator = 0,
    tail: str = "two-sided",
    scheme: str = "auto",
    exact: bool = False,
    use_tfce: bool = True,
    tfce_params: TFCEParams | None = None,
    cluster_threshold: float | None = None,
    connectivity: int = 26,
    block_size: int | None = None,
    n_jobs: int = 1,
) -> VoxelwiseResult:
    """Permutation inference for one GLM contrast over the voxels of a mask.

    Parameters
    ----------
    data : array_like, shape (n_maps, n_voxels)
        In-mask values of each map, voxels in the C order of ``np.flatnonzero(mask)``.
    mask : array_like of bool, 3-D
        The analysis mask on the template grid.
    design : array_like, shape (n_maps, p)
        Design matrix, with the intercept column.
    contrast : array_like, shape (p,)
        Contrast vector (a t contrast).
    affine : array_like, shape (4, 4), optional
        Voxel-to-MNI matrix (default identity), for cluster volumes and peak coordinates.
    design_columns : sequence of str, optional
        Names of the design columns, recorded in the metadata.
    n_permutations : int, optional
        Number of transformations including the identity (default 5000).
    seed : int or numpy.random.Generator, optional
        Seed of the random permutations or sign flips (default 0).
    tail : {"two-sided", "greater", "less"}, optional
        Alternative hypothesis for ``c'b`` (default two-sided).
    scheme : {"auto", "freedman-lane", "manly", "signflip"}, optional
        ``"auto"`` (default): sign flipping for a one-column design (one-sample test, or paired
        differences), Freedman-Lane permutation otherwise.
    exact : bool, optional
        Enumerate all ``n!`` permutations (or ``2^n`` sign flips) instead of sampling;
        ``n_permutations`` and ``seed`` are then ignored.
    use_tfce : bool, optional
        Compute TFCE and its FWE p (default True).
    tfce_params : TFCEParams, optional
        TFCE parameters (default ``H = 2``, ``E = 0.5``, ``dh = 0.1``).
    cluster_threshold : float, optional
        Cluster-forming threshold on ``|t|`` (per tail) for cluster-mass inference; off by
        default.
    connectivity : {26, 6}, optional
        Neighbourhood of TFCE and clusters (default 26).
    block_size : int, optional
        Transformations per matrix product (default: from a 256 MiB budget).
    n_jobs : int, optional
        Worker processes for TFCE and cluster masses of the null maps (default 1: none); the
        results do not depend on it.

    Returns
    -------
    VoxelwiseResult
        Maps, cluster table, null distributions and metadata.
    """
    if tail not in TAILS:
        raise ValueError(f"tail must be one of {TAILS}, got {tail!r}")
    y = _check_data(data)
    grid = _Grid.from_mask(mask)
    if y.shape[1] != grid.flat.size:
        raise ValueError(f"data have {y.shape[1]} voxels but the mask has {grid.flat.size}")
    model = _decompose(design, contrast, y.shape[0])
    x, c = _check_design(design, contrast, y.shape[0])
    scheme = _resolve_scheme(scheme, x.shape[1])
    params = tfce_params or TFCEParams()
    structure = connectivity_structure(connectivity)
    space = np.eye(4) if affine is None else np.asarray(affine, dtype=float)

    t_obs = glm_t(y, x, c)
    stat_obs = _oriented(t_obs, tail)
    tfce_obs = _tfce_values(t_obs, grid, params, connectivity, tail) if use_tfce else None
    source = _source(y, model, scheme)
    source_ss = np.einsum("nv,nv->v", source, source)
    transforms, total = _transforms(y.shape[0], scheme == "signflip", n_permutations, exact, seed)
    size = _block_size(y.shape[1], model.basis.shape[1], block_size)

    exceed = np.zeros(y.shape[1])
    max_t, max_tfce, max_mass = [], [], []
    tolerance = TIE_TOLERANCE * np.maximum(stat_obs, 1.0)
    spatial = _Spatial(grid, params, structure, tail, use_tfce, cluster_threshold)
    with _Pool(n_jobs if (use_tfce or cluster_threshold is not None) else 1) as pool:
        for orders, signs in _blocks(transforms, size):
            t_null = _null_t_block(source, source_ss, model, orders, signs)
            stat_null = _oriented(t_null, tail)
            exceed += np.count_nonzero(stat_null >= stat_obs - tolerance, axis=0)
            max_t.extend(stat_null.max(axis=1))
            pool.submit(spatial, t_null)
        for tfce_block, mass_block in pool.results():
            max_tfce.extend(tfce_block)
            max_mass.extend(mass_block)

    null_t = np.asarray(max_t)
    null_tfce = np.asarray(max_tfce) if use_tfce else None
    null_mass = np.asarray(max_mass) if cluster_threshold is not None else None
    clusters, p_cluster = _cluster_inference(
        grid, t_obs, cluster_threshold, tail, structure, space, null_mass
    )
    metadata = {
        "Contrast": c.tolist(),
        "DesignColumns": list(design_columns) if design_columns is not None else None,
        "NumberOfMaps": int(y.shape[0]),
        "NumberOfVoxels": int(y.shape[1]),
        "DegreesOfFreedom": int(model.df),
        "PermutationScheme": scheme,
        "Tail": tail,
        "Exact": bool(exact),
        "NumberOfPermutations": int(total),
        "Seed": int(seed) if isinstance(seed, int | np.integer) and not exact else None,
        "TFCE": {**asdict(params), "ExtentUnit": "voxels"} if use_tfce else None,
        "Connectivity": connectivity,
        "ClusterFormingThreshold": cluster_threshold,
        "ClusterMass": "sum of |t| over the cluster" if cluster_threshold is not None else None,
    }
    return VoxelwiseResult(
        t=grid.full(t_obs),
        tfce=grid.full(tfce_obs),
        p_uncorrected=grid.full(exceed / total),
        p_fwe_t=grid.full(_fwe_p(stat_obs, null_t)),
        p_fwe_tfce=grid.full(None if tfce_obs is None else _fwe_p(np.abs(tfce_obs), null_tfce)),
        p_fwe_cluster=grid.full(p_cluster),
        clusters=clusters,
        null_max_t=null_t,
        null_max_tfce=null_tfce,
        null_max_mass=null_mass,
        mask=grid.mask,
        affine=space,
        metadata=metadata,
    )


def _cluster_inference(
    grid: _Grid,
    t_obs: np.ndarray,
    threshold: float | None,
    tail: str,
    structure: np.ndarray,
    affine: np.ndarray,
    null_mass: np.ndarray | None,
) -> tuple[pd.DataFrame, np.ndarray | None]:
    """Return the observed cluster table and the voxelwise cluster-FWE p."""
    empty = pd.DataFrame({name: pd.Series(dtype=float) for name in CLUSTER_COLUMNS})
    if threshold is None or null_mass is None:
        return empty, None
    volume = grid.volume(t_obs)
    voxel_mm3 = round(abs(float(np.linalg.det(affine[:3, :3]))), 9)
    offset = np.array([s.start for s in grid.box])
    rows, p_volume = [], np.ones(volume.shape)
    for sign in signed_parts(tail):
        labels, count = cluster_labels(volume, threshold, sign, structure)
        for label in range(1, count + 1):
            members = labels == label
            values = volume[members]
            mass = float(np.abs(values).sum())
            p_fwe = float(_fwe_p(np.array([mass]), null_mass)[0])
            p_volume[members] = p_fwe
            peak = np.argwhere(members)[int(np.argmax(sign * values))] + offset
            world = affine @ np.append(peak, 1.0)
            rows.append(
                {
                    "size_voxels": int(values.size),
                    "volume_mm3": values.size * voxel_mm3,
                    "peak_t": float(values[np.argmax(sign * values)]),
                    "peak_x": float(world[0]),
                    "peak_y": float(world[1]),
                    "peak_z": float(world[2]),
                    "mass": mass,
                    "p_fwe": p_fwe,
                }
            )
    if not rows:
        return empty, grid.values(p_volume)
    table = pd.DataFrame(rows).sort_values(["mass", "peak_t"], ascending=False, kind="stable")
    table.insert(0, "cluster_id", np.arange(1, len(table) + 1))
    return table.reset_index(drop=True)[list(CLUSTER_COLUMNS)], grid.values(p_volume)


# --------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------

#: Output maps of :func:`write_voxelwise`: result attribute -> (file entities, description).
OUTPUT_MAPS = {
    "t": ("stat-t", "t statistic of the contrast"),
    "tfce": ("stat-tfce", "threshold-free cluster enhancement of the t map"),
    "p_uncorrected": ("stat-p_desc-uncorrected", "voxelwise permutation p (uncorrected)"),
    "p_fwe_t": ("stat-p_desc-maxtFWE", "FWE-corrected p by the maximum t statistic"),
    "p_fwe_tfce": ("stat-p_desc-tfceFWE", "FWE-corrected p by the maximum TFCE"),
    "p_fwe_cluster": ("stat-p_desc-clusterFWE", "cluster-mass FWE-corrected p"),
}


def write_voxelwise(
    result: VoxelwiseResult,
    out_dir: Path | str,
    prefix: str,
    *,
    extra_metadata: dict[str, Any] | None = None,
) -> dict[str, Path]:
    """Write the maps (NIfTI), their JSON sidecars and the cluster table.

    Parameters
    ----------
    result : VoxelwiseResult
        From :func:`permutation_test`.
    out_dir : Path or str
        Destination folder (created).
    prefix : str
        File name prefix, e.g. ``"space-MNI152NLin2009aSym_contrast-MwAvsHC"``; files are
        ``<prefix>_stat-t_statmap.nii.gz``, ``<prefix>_stat-p_desc-tfceFWE_statmap.nii.gz``, ...
        and ``<prefix>_clusters.tsv``.
    extra_metadata : dict, optional
        Added to every sidecar (e.g. the contrast name, the sources).

    Returns
    -------
    dict of str to Path
        Result attribute (or ``"clusters"``) -> written file.
    """
    import nibabel as nib

    from aslmig.bids.derivatives import atomic_write, write_json

    if not prefix or "/" in prefix or "\\" in prefix:
        raise ValueError(f"prefix must be a non-empty file name part, got {prefix!r}")
    folder = Path(out_dir)
    written: dict[str, Path] = {}
    for attribute, (entities, description) in OUTPUT_MAPS.items():
        volume = getattr(result, attribute)
        if volume is None:
            continue
        path = folder / f"{prefix}_{entities}_statmap.nii.gz"
        image = nib.Nifti1Image(volume.astype(np.float32), result.affine)
        image.header.set_xyzt_units("mm")
        atomic_write(path, lambda temporary, image=image: nib.save(image, temporary))
        sidecar = {"Description": description, **result.metadata, **(extra_metadata or {})}
        write_json(path.with_name(path.name.replace(".nii.gz", ".json")), sidecar)
        written[attribute] = path
    table_path = folder / f"{prefix}_clusters.tsv"
    atomic_write(
        table_path,
        lambda temporary: result.clusters.to_csv(
            temporary, sep="\t", index=False, na_rep="n/a", float_format="%.6g"
        ),
    )
    written["clusters"] = table_path
    return written
