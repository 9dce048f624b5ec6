"""Whether a patient session's abnormal perfusion crosses arterial-territory borders.

An aura's perfusion change follows the cortex, not the arteries, and so often exceeds one
vascular territory; an acute ischaemic stroke stays inside one (Russo et al. 2023, J Headache
Pain 24:71). On a patient session's z map against the controls
(:func:`aslmig.group.patient_maps.patient_zmap`) this module finds the hypoperfused and the
hyperperfused clusters and, per cluster, its volume, peak z and the share of its voxels in each
arterial territory (the JHU atlas, level 2, within tissue: the ``territories`` level of the
MigraineASL atlas); a cluster **crosses** territory borders when at least two territories
each hold at least :attr:`CrossingSettings.min_share` of it.

Clusters are formed at a one-sided height ``p < height_p`` of the z map read as Student t with
the controls' residual degrees of freedom (the z of :func:`patient_zmap` is t-distributed with
``n - q - 1`` df; with ten controls ``|z| > 3.1`` would be ``p = 0.006``, not ``0.001``) and
kept when larger than the largest clusters of the session's null maps, so that a lesion-free
session shows a false cluster with probability at most 5 % (:func:`calibrated_settings`,
rotation test). The defaults and their measured behaviour on
simulated one- and two-territory lesions are in ``benchmarks/group_territories.py`` and
``docs/group.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import linalg, ndimage, stats

HYPO, HYPER = "hypo", "hyper"
#: Share name of the cluster voxels in no territory (CSF, outside the atlas).
OUTSIDE = "outside"
#: Columns of ``territories.tsv`` (one row per cluster; sessions without one get a row with
#: ``cluster`` = 0 so that every analysed session is listed).
CLUSTER_COLUMNS = (
    "session_map", "cluster", "direction", "n_voxels", "volume_ml", "peak_z", "peak_x_mm",
    "peak_y_mm", "peak_z_mm", "territories", "crosses_territories", "shares",
)  # fmt: skip


@dataclass(frozen=True)
class CrossingSettings:
    """How clusters are formed and when one crosses territory borders.

    Attributes
    ----------
    height_p : float
        One-sided cluster-forming threshold on the z map read as Student t (default 0.01; at
        0.001 a -50 % lesion at 15 % between-subject CoV is rarely detected with ten controls).
    min_volume_ml : float
        Smallest cluster kept, in mL (default 1.0 mL: 125 voxels of 2 mm); set per session by
        :func:`calibrated_settings` above the null maps' largest clusters.
    min_share : float
        Share of a cluster's voxels from which a territory counts as involved (default 0.10:
        below it, a smoothed border spill-over; see the validation in ``docs/group.md``).
    connectivity : int
        6 (faces) or 26 (faces, edges and corners; default) neighbours.
    """

    height_p: float = 0.01
    min_volume_ml: float = 1.0
    min_share: float = 0.10
    connectivity: int = 26

    def __post_init__(self) -> None:
        if not 0.0 < self.height_p < 0.5:
            raise ValueError(f"height_p must be in (0, 0.5), got {self.height_p!r}")
        if not self.min_volume_ml >= 0.0:
            raise ValueError(f"min_volume_ml must be >= 0, got {self.min_volume_ml!r}")
        if not 0.0 < self.min_share <= 0.5:
            raise ValueError(f"min_share must be in (0, 0.5], got {self.min_share!r}")
        if self.connectivity not in (6, 26):
            raise ValueError(f"connectivity must be 6 or 26, got {self.connectivity!r}")

    def height(self, df: float) -> float:
        """Return the |z| threshold for z maps with ``df`` residual degrees of freedom."""
        if not df >= 1:
            raise ValueError(f"the z map needs at least 1 residual df, got {df!r}")
        return float(stats.t.isf(self.height_p, df))


@dataclass(frozen=True)
class Cluster:
    """One hypo- or hyperperfused cluster of a patient session.

    Attributes
    ----------
    direction : str
        ``"hypo"`` (z below the threshold's negative) or ``"hyper"``.
    n_voxels : int
    volume_ml : float
    peak_z : float
        The most extreme z (negative for hypo).
    peak_mm : tuple of float
        World coordinates of the peak.
    shares : dict of str to float
        Share of the cluster's voxels per territory name (and :data:`OUTSIDE`), largest first.
    territories : tuple of str
        The territories holding at least the minimum share, largest first.
    """

    direction: str
    n_voxels: int
    volume_ml: float
    peak_z: float
    peak_mm: tuple[float, float, float]
    shares: dict[str, float]
    territories: tuple[str, ...]

    @property
    def crosses(self) -> bool:
        """Whether the cluster involves at least two territories."""
        return len(self.territories) >= 2


@dataclass(frozen=True)
class SessionCrossing:
    """The clusters of one patient session and whether its abnormality crosses borders."""

    clusters: tuple[Cluster, ...] = field(default_factory=tuple)

    @property
    def crosses(self) -> bool | None:
        """True if a cluster crosses territory borders; None when there is no cluster."""
        return any(c.crosses for c in self.clusters) if self.clusters else None

    @property
    def territories(self) -> tuple[str, ...]:
        """The territories involved by any cluster, sorted."""
        return tuple(sorted({name for c in self.clusters for name in c.territories}))

    def sidecar(
        self,
        settings: CrossingSettings,
        height: float,
        calibration: ExtentCalibration | None = None,
    ) -> dict:
        """Return the session's crossing summary for its z map's JSON sidecar."""
        extent = {} if calibration is None else {"ExtentCalibration": calibration.sidecar()}
        return {
            "TerritoryCrossing": {
                "Crosses": self.crosses,
                "Territories": list(self.territories),
                "Clusters": [
                    {
                        "Direction": c.direction,
                        "Voxels": c.n_voxels,
                        "VolumeMl": round(c.volume_ml, 4),
                        "PeakZ": round(c.peak_z, 4),
                        "PeakMm": [round(v, 2) for v in c.peak_mm],
                        "Shares": {k: round(v, 4) for k, v in c.shares.items()},
                        "Crosses": c.crosses,
                    }
                    for c in self.clusters
                ],  # fmt: skip
                "HeightThresholdAbsZ": round(height, 4),
                "HeightP": settings.height_p,
                "MinVolumeMl": settings.min_volume_ml,
                "MinShare": settings.min_share,
                "Connectivity": settings.connectivity,
                **extent,
                "Atlas": "JHU arterial territories level 2 within tissue (MigraineASL "
                "territories level; Liu et al. 2023, Sci Data 10:74, CC BY-SA 4.0)",
            }
        }


#: The report's statement of the method and of its measured behaviour on simulated patients
#: (``benchmarks/group_territories.py``; ``docs/group-voxelwise.md``).
CROSSING_NOTE = (
    "Clusters of each patient session's z map against the interictal controls, formed at a "
    "one-sided p < 0.01 (t with the controls' residual df) and kept when larger than the 5 % "
    "family-wise extent of 99 random rotations of the patient's and the controls' residuals "
    "(rotation test, Langsrud 2005): a session without abnormality shows any cluster with "
    "probability at most 5 %. Shares: JHU arterial territories level 2 within tissue (Liu et "
    "al. 2023); a cluster crosses territory borders when at least two territories hold 10 % of "
    "it or more. Measured on simulated patients (10 controls, 15 % between-subject CoV, 8 mm "
    "FWHM, -50 % lesions): 4 of 100 lesion-free patients with a cluster (95 % CI 0.016-0.098); "
    "lesions detected 0/18 at 0.95 mL, 3/18 at 1.8 mL, 16/18 at 3.8 mL, 18/18 at 9.9 mL; "
    "detected lesions classified one- vs two-territory correctly in 36 of 37."
)


def _voxel_volume_ml(affine: np.ndarray) -> float:
    return float(abs(np.linalg.det(np.asarray(affine, dtype=float)[:3, :3]))) / 1000.0


def _shares(labels: np.ndarray, names: Mapping[int, str]) -> dict[str, float]:
    values, counts = np.unique(labels, return_counts=True)
    shares: dict[str, float] = {}
    for value, count in zip(values, counts, strict=True):
        name = names.get(int(value), OUTSIDE) if value else OUTSIDE
        shares[name] = shares.get(name, 0.0) + count / labels.size
    return dict(sorted(shares.items(), key=lambda item: (-item[1], item[0])))


def find_clusters(
    zmap: ArrayLike,
    territories: ArrayLike,
    names: Mapping[int, str],
    affine: ArrayLike,
    df: float,
    settings: CrossingSettings | None = None,
) -> SessionCrossing:
    """Find the hypo- and hyperperfused clusters of a z map and their territories.

    Parameters
    ----------
    zmap : array_like, 3-D
        The patient session's z map against the controls (NaN outside the analysis mask).
    territories : array_like of int, 3-D
        Territory labels on the same grid (0: none).
    names : mapping of int to str
        Territory name of each label.
    affine : array_like, shape (4, 4)
        Voxel-to-world matrix of the grid (for volumes and peak coordinates).
    df : float
        Residual degrees of freedom of the z map (controls - covariates - 1).
    settings : CrossingSettings, optional

    Returns
    -------
    SessionCrossing
        Clusters ordered hypo first, then by decreasing volume.
    """
    settings = settings or CrossingSettings()
    z = np.asarray(zmap, dtype=float)
    labels = np.asarray(territories)
    if labels.shape != z.shape or z.ndim != 3:
        raise ValueError(f"territories {labels.shape} and z map {z.shape} must be one 3-D grid")
    affine = np.asarray(affine, dtype=float)
    height = settings.height(df)
    voxel_ml = _voxel_volume_ml(affine)
    structure = ndimage.generate_binary_structure(3, 1 if settings.connectivity == 6 else 3)
    finite = np.where(np.isfinite(z), z, 0.0)
    clusters = []
    for direction, sign in ((HYPO, -1.0), (HYPER, 1.0)):
        components, count = ndimage.label(sign * finite > height, structure)
        if not count:
            continue
        sizes = np.bincount(components.ravel(), minlength=count + 1)
        for index in np.flatnonzero(sizes * voxel_ml >= max(settings.min_volume_ml, 1e-12)):
            if index == 0:
                continue
            where = np.nonzero(components == index)
            values = finite[where]
            peak = int(np.argmax(sign * values))
            peak_voxel = np.array([w[peak] for w in where] + [1.0])
            shares = _shares(labels[where], names)
            involved = tuple(name for name, share in shares.items()
                             if name != OUTSIDE and share >= settings.min_share)  # fmt: skip
            clusters.append(Cluster(
                direction, int(sizes[index]), float(sizes[index] * voxel_ml),
                float(values[peak]), tuple(float(v) for v in (affine @ peak_voxel)[:3]),
                shares, involved,
            ))  # fmt: skip
    clusters.sort(key=lambda c: (c.direction != HYPO, -c.n_voxels))
    return SessionCrossing(tuple(clusters))


@dataclass(frozen=True)
class ExtentCalibration:
    """How the minimum cluster volume is calibrated for one patient session (rotation test).

    Attributes
    ----------
    alpha : float
        Family-wise rate of sessions with any false cluster (default 0.05).
    rotations : int
        Random rotations of the residuals (default 99; at least ``1 / alpha - 1``).
    seed : int
        Seed of the rotations (reproducible outputs).
    """

    alpha: float = 0.05
    rotations: int = 99
    seed: int = 0

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha!r}")
        if self.rank < 0:
            raise ValueError(f"{self.rotations} rotations are too few for alpha {self.alpha} "
                             f"(at least {int(np.ceil(1 / self.alpha)) - 1})")  # fmt: skip

    @property
    def rank(self) -> int:
        """0-based rank (largest first) of the null maximum a significant cluster must exceed."""
        return int(np.floor(self.alpha * (self.rotations + 1) + 1e-9)) - 1

    def sidecar(self) -> dict:
        """Return the calibration's description for a sidecar."""
        return {
            "Method": "rotation test of the patient and controls' residuals (Langsrud "
            "2005): minimum volume above the null maxima, family-wise per session",
            "FamilyWiseAlpha": self.alpha,
            "Rotations": self.rotations,
            "Seed": self.seed,
        }


def _largest_cluster(z: np.ndarray, height: float, structure: np.ndarray) -> int:
    """Voxels of the largest hypo or hyper cluster of ``z`` at ``|z| > height``."""
    largest = 0
    for sign in (-1.0, 1.0):
        components, count = ndimage.label(sign * z > height, structure)
        if count:
            largest = max(largest, int(np.bincount(components.ravel())[1:].max()))
    return largest


def _rotation_operators(design: np.ndarray, df: int) -> tuple[np.ndarray, np.ndarray]:
    """Linear forms giving the patient's z from the stacked (patient, controls) values.

    ``z = (w @ y) / sqrt(sum((S @ y)**2))``: ``w @ y`` is the patient's value minus the
    controls' prediction and ``S @ y`` the controls' residuals scaled so that the sum of squares
    is ``s^2 (1 + x0'(Xc'Xc)^-1 x0)``, the squared prediction SE of
    :func:`aslmig.group.patient_maps.patient_zmap` (equal to it, tested); one matrix product
    per rotation instead of a regression (6.8 ms per call on 8,000 voxels).
    """
    controls, target = design[1:], design[0]
    weights = np.linalg.pinv(controls)
    numerator = np.concatenate([[1.0], -(target @ weights)])
    leverage = 1.0 + target @ np.linalg.pinv(controls.T @ controls) @ target
    hat = np.eye(len(controls)) - controls @ weights
    spread = np.column_stack([np.zeros(len(controls)), hat]) * np.sqrt(leverage / df)
    return numerator, spread


def calibrated_settings(
    patient: ArrayLike,
    controls: ArrayLike,
    mask: ArrayLike,
    affine: ArrayLike,
    settings: CrossingSettings | None = None,
    calibration: ExtentCalibration | None = None,
    control_covariates: ArrayLike | None = None,
    patient_covariates: ArrayLike | None = None,
) -> tuple[CrossingSettings, np.ndarray]:
    """Set the minimum cluster volume so that a session has a false cluster with rate <= alpha.

    Rotation test (Langsrud 2005, Stat Comput 15:53): the patient and the controls are
    projected onto the residual space of their design (intercept and covariates), that space is
    rotated at random (Haar-distributed orthogonal matrices) and the patient's z map recomputed
    each time; under the null hypothesis (the patient is one more draw from the controls'
    population, subjects independent and Gaussian voxel by voxel with any spatial correlation)
    the observed map and the rotated ones are exchangeable. The kept clusters are those larger
    than the ``rank``-th largest of the rotated maps' largest clusters, so the probability that
    a lesion-free session shows any cluster is at most ``alpha`` exactly, whatever the maps'
    smoothness and the number of controls (Winkler et al. 2014 for the max-statistic logic).
    Unlike leave-one-out over the controls (rate bounded by 1 / (n + 1) only, 3 of 10 simulated
    lesion-free patients with ten controls), the number of null maps is not limited by ``n``.

    Parameters
    ----------
    patient : array_like, 3-D
        The patient session's map.
    controls : array_like, shape (n_controls, X, Y, Z)
        The controls' maps.
    mask : array_like of bool, 3-D
        Analysis mask.
    affine : array_like, shape (4, 4)
    settings : CrossingSettings, optional
    calibration : ExtentCalibration, optional
    control_covariates, patient_covariates : array_like, optional
        As in :func:`aslmig.group.patient_maps.patient_zmap`.

    Returns
    -------
    (CrossingSettings, ndarray)
        The settings with the calibrated ``min_volume_ml`` and the rotated maps' largest
        cluster volumes (mL).
    """
    settings = settings or CrossingSettings()
    calibration = calibration or ExtentCalibration()
    keep = np.asarray(mask, dtype=bool)
    box = ndimage.find_objects(keep.astype(np.int8))[0]
    inside = keep[box]
    data = np.concatenate([np.asarray(patient, dtype=float)[None], np.asarray(controls, float)])
    values = data[(slice(None), *box)][:, inside]
    n = data.shape[0] - 1
    covariates = (np.zeros((n + 1, 0)) if control_covariates is None else np.vstack([
        np.reshape(np.asarray(patient_covariates, float), (1, -1)),
        np.reshape(np.asarray(control_covariates, float), (n, -1))]))  # fmt: skip
    design = np.column_stack([np.ones(n + 1), covariates])
    df = n - covariates.shape[1] - 1
    if df < 2:
        raise ValueError(f"the rotation calibration needs at least 2 residual df, got {df}")
    numerator, spread = _rotation_operators(design, df)
    basis = linalg.null_space(design.T)
    residual = basis.T @ values
    numerator, spread = numerator @ basis, spread @ basis
    height = settings.height(df)
    structure = ndimage.generate_binary_structure(3, 1 if settings.connectivity == 6 else 3)
    rng = np.random.default_rng(calibration.seed)
    grid = np.zeros(inside.shape)
    null = np.empty(calibration.rotations, dtype=int)
    for index in range(calibration.rotations):
        rotated = stats.ortho_group.rvs(basis.shape[1], random_state=rng) @ residual
        with np.errstate(divide="ignore", invalid="ignore"):
            z = numerator @ rotated / np.sqrt(((spread @ rotated) ** 2).sum(axis=0))
        grid[inside] = np.nan_to_num(z, posinf=0.0, neginf=0.0)
        null[index] = _largest_cluster(grid, height, structure)
    voxel_ml = _voxel_volume_ml(np.asarray(affine, dtype=float))
    critical = np.sort(null)[::-1][calibration.rank] + 1
    return replace(settings, min_volume_ml=float(critical * voxel_ml)), null * voxel_ml


def crossing_table(sessions: Mapping[str, SessionCrossing]) -> pd.DataFrame:
    """One row per cluster (and one empty row per session without a cluster).

    Parameters
    ----------
    sessions : mapping of str to SessionCrossing
        By session map name (``sub-X_ses-Y``).

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CLUSTER_COLUMNS`; ``territories`` and ``shares`` are ``;``-separated
        (``name=share`` for the shares), ``crosses_territories`` is the cluster's.
    """
    rows = []
    for name, session in sessions.items():
        if not session.clusters:
            rows.append({"session_map": name, "cluster": 0, "direction": "n/a",
                         "n_voxels": 0, "volume_ml": 0.0, "territories": "",
                         "crosses_territories": "n/a", "shares": ""})  # fmt: skip
        for number, cluster in enumerate(session.clusters, start=1):
            rows.append({
                "session_map": name, "cluster": number, "direction": cluster.direction,
                "n_voxels": cluster.n_voxels, "volume_ml": cluster.volume_ml,
                "peak_z": cluster.peak_z, "peak_x_mm": cluster.peak_mm[0],
                "peak_y_mm": cluster.peak_mm[1], "peak_z_mm": cluster.peak_mm[2],
                "territories": ";".join(cluster.territories),
                "crosses_territories": "yes" if cluster.crosses else "no",
                "shares": ";".join(f"{k}={v:.3f}" for k, v in cluster.shares.items()),
            })  # fmt: skip
    return pd.DataFrame(rows, columns=list(CLUSTER_COLUMNS))
