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
kept when larger than every cluster the controls show against each other
(:func:`calibrated_settings`, leave one out). The defaults and their measured behaviour on
simulated one- and two-territory lesions are in ``benchmarks/group_territories.py`` and
``docs/group.md``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike
from scipy import ndimage, stats

from aslmig.group.patient_maps import patient_zmap

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
        Smallest cluster kept, in mL (default 1.0 mL: 125 voxels of 2 mm); raised by
        :func:`calibrated_settings` above the controls' own largest cluster.
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

    def sidecar(self, settings: CrossingSettings, height: float) -> dict:
        """Return the session's crossing summary for its z map's JSON sidecar."""
        return {
            "TerritoryCrossing": {
                "Crosses": self.crosses,
                "Territories": list(self.territories),
                "Clusters": [
                    {"Direction": c.direction, "Voxels": c.n_voxels,
                     "VolumeMl": round(c.volume_ml, 4), "PeakZ": round(c.peak_z, 4),
                     "PeakMm": [round(v, 2) for v in c.peak_mm],
                     "Shares": {k: round(v, 4) for k, v in c.shares.items()},
                     "Crosses": c.crosses}
                    for c in self.clusters
                ],  # fmt: skip
                "HeightThresholdAbsZ": round(height, 4),
                "HeightP": settings.height_p,
                "MinVolumeMl": settings.min_volume_ml,
                "MinShare": settings.min_share,
                "Connectivity": settings.connectivity,
                "Atlas": "JHU arterial territories level 2 within tissue (MigraineASL "
                "territories level; Liu et al. 2023, Sci Data 10:74, CC BY-SA 4.0)",
            }
        }


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


def calibrated_settings(
    controls: ArrayLike,
    mask: ArrayLike,
    territories: ArrayLike,
    affine: ArrayLike,
    settings: CrossingSettings | None = None,
) -> tuple[CrossingSettings, float]:
    """Raise the minimum cluster volume above the largest cluster the controls themselves show.

    Each control's z map against the other controls (leave one out,
    :func:`aslmig.group.patient_maps.patient_zmap`) is searched with ``settings``; a patient's
    cluster is then kept only when it is larger than the largest of those null clusters, which
    adapts the extent threshold to the maps' smoothness and the number of controls. It does
    not control the per-session false-positive rate exactly: with ten simulated controls, 4 of
    16 lesion-free patients still showed a cluster (``benchmarks/group_territories.py``).

    Parameters
    ----------
    controls : array_like, shape (n_controls, X, Y, Z)
        The controls' maps.
    mask : array_like of bool, shape (X, Y, Z)
        Analysis mask.
    territories, affine, settings
        As in :func:`find_clusters`.

    Returns
    -------
    (CrossingSettings, float)
        The settings with the raised ``min_volume_ml`` and the largest null cluster (mL).
    """
    settings = settings or CrossingSettings()
    maps = np.asarray(controls, dtype=float)
    n = maps.shape[0]
    if n < 3:
        raise ValueError(f"leave-one-out calibration needs at least 3 controls, got {n}")
    keep = np.asarray(mask, dtype=bool)
    unfiltered = replace(settings, min_volume_ml=0.0)
    largest = 0.0
    for index in range(n):
        others = np.delete(maps, index, axis=0)
        z = np.where(keep, patient_zmap(maps[index], others), np.nan)
        found = find_clusters(z, territories, {}, affine, n - 2, unfiltered)
        largest = max([largest, *(c.volume_ml for c in found.clusters)])
    voxel_ml = _voxel_volume_ml(np.asarray(affine, dtype=float))
    minimum = max(settings.min_volume_ml, largest + voxel_ml)
    return replace(settings, min_volume_ml=minimum), largest


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
