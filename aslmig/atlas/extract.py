"""Regional statistics of a parameter map (CBF, ATT) over the ROIs of a label image.

Pure numpy/pandas: arrays in, a long-format table out (one row per ROI). A ROI whose
field-of-view coverage is below a threshold is reported with ``status`` giving the reason
and no values, rather than with a number computed from a few edge voxels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

DEFAULT_MIN_COVERAGE = 0.5
DEFAULT_GM_THRESHOLD = 0.5
COLUMNS = (
    "roi",
    "index",
    "hemisphere",
    "n_voxels",
    "n_valid",
    "coverage",
    "mean",
    "median",
    "sd",
    "gm_weighted_mean",
    "gm_restricted_mean",
    "relative_to_reference",
    "asymmetry_index",
    "status",
)


@dataclass(frozen=True)
class Roi:
    """One region of a label image.

    Attributes
    ----------
    index : int
        Its value in the label image.
    name : str
        Its name, with ``_L``/``_R`` for lateralised regions (e.g. ``occipital_cortex_L``).
    level : int
        Volume of a 4-D label image that holds it (0 for 3-D label images).
    """

    index: int
    name: str
    level: int = 0

    @property
    def hemisphere(self) -> str | None:
        """``"L"``, ``"R"`` or None, from the name's suffix."""
        suffix = self.name.rsplit("_", 1)[-1] if "_" in self.name else ""
        return suffix if suffix in ("L", "R") else None


def roi_mask(labels: np.ndarray, roi: Roi) -> np.ndarray:
    """Boolean mask of ``roi`` in a 3-D or 4-D (one level per volume) label array."""
    if labels.ndim == 4:
        return labels[..., roi.level] == roi.index
    return labels == roi.index


def reference_mean(
    values: np.ndarray,
    valid: np.ndarray,
    gm: np.ndarray,
    gm_threshold: float = DEFAULT_GM_THRESHOLD,
) -> float:
    """Mean of ``values`` over the valid voxels with GM probability >= ``gm_threshold``.

    This whole-grey-matter mean normalises the relative CBF of every ROI.
    """
    grey = np.asarray(valid, bool) & np.isfinite(values) & (np.asarray(gm) >= gm_threshold)
    return float(np.mean(values[grey])) if grey.any() else float("nan")


def _roi_row(
    roi: Roi,
    values: np.ndarray,
    in_roi: np.ndarray,
    valid: np.ndarray,
    gm: np.ndarray | None,
    gm_threshold: float,
    min_coverage: float,
    coverage: float | None = None,
) -> dict[str, object]:
    n_voxels = int(in_roi.sum())
    use = in_roi & valid
    n_valid = int(use.sum())
    measured_here = coverage is None
    if measured_here:
        coverage = n_valid / n_voxels if n_voxels else 0.0
    row: dict[str, object] = {
        "roi": roi.name,
        "index": roi.index,
        "hemisphere": roi.hemisphere,
        "n_voxels": n_voxels,
        "n_valid": n_valid,
        "coverage": coverage,
    }
    if n_voxels == 0 and measured_here:
        return {**row, "status": "n/a: the ROI has no voxel in the label image"}
    if coverage < min_coverage:
        return {**row, "status": f"n/a: coverage {coverage:.2f} < {min_coverage:g}"}
    if n_valid == 0:
        return {**row, "status": "n/a: no voxel of the ROI with data on this grid"}
    data = values[use]
    row.update(
        mean=float(data.mean()),
        median=float(np.median(data)),
        sd=float(data.std(ddof=1)) if data.size > 1 else float("nan"),
        status="ok",
    )
    if gm is not None:
        weights = np.clip(gm[use], 0.0, 1.0)
        if weights.sum() > 0:
            row["gm_weighted_mean"] = float((weights * data).sum() / weights.sum())
        grey = weights >= gm_threshold
        if grey.any():
            row["gm_restricted_mean"] = float(data[grey].mean())
    return row


def regional_statistics(
    values: np.ndarray,
    labels: np.ndarray,
    rois: Sequence[Roi],
    *,
    valid: np.ndarray | None = None,
    gm: np.ndarray | None = None,
    reference_value: float | None = None,
    gm_threshold: float = DEFAULT_GM_THRESHOLD,
    min_coverage: float = DEFAULT_MIN_COVERAGE,
    coverage: Mapping[str, float] | None = None,
) -> pd.DataFrame:
    """Summarise a parameter map within each ROI.

    Parameters
    ----------
    values : ndarray
        The map (e.g. CBF in mL/100 g/min), on the grid of ``labels``.
    labels : ndarray of int
        The label image (0 = background), 3-D or 4-D with one level per volume.
    rois : sequence of Roi
        The regions to report, in order.
    valid : ndarray of bool, optional
        Voxels with data (inside the acquired field of view and brain mask). Default: finite
        values. Non-finite values are never used.
    gm : ndarray, optional
        Grey-matter probability on the same grid, for the GM-weighted and GM-restricted means.
    reference_value : float, optional
        The value that normalises ``relative_to_reference`` (e.g. :func:`reference_mean`).
    gm_threshold : float
        Grey-matter probability at or above which a voxel counts as grey matter.
    min_coverage : float
        Smallest fraction of an ROI's voxels with data for its values to be reported.
    coverage : mapping of str to float, optional
        Coverage per ROI name measured elsewhere (e.g. in template space, where the whole ROI
        exists, for a native-space table whose grid may cut the ROI); default: measured here.

    Returns
    -------
    pandas.DataFrame
        One row per ROI with the columns of :data:`COLUMNS`; ``asymmetry_index`` is
        2·(L − R)/(L + R) of the pair's means, on both rows of a left/right pair.
    """
    values = np.asarray(values, dtype=float)
    labels = np.asarray(labels)
    grid = labels.shape[:3]
    if values.shape != grid or (gm is not None and np.shape(gm) != grid):
        raise ValueError("values, labels (and gm) must be on the same grid")
    finite = np.isfinite(values)
    usable = finite if valid is None else (np.asarray(valid, bool) & finite)
    gm_array = None if gm is None else np.asarray(gm, dtype=float)
    rows = [
        _roi_row(
            roi,
            values,
            roi_mask(labels, roi),
            usable,
            gm_array,
            gm_threshold,
            min_coverage,
            None if coverage is None else coverage.get(roi.name),
        )
        for roi in rois
    ]
    table = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    if reference_value is not None:
        table["relative_to_reference"] = table["mean"] / reference_value
    pairs = asymmetry_indices(table).set_index("region")["asymmetry_index"]
    regions = table["roi"].str.rsplit("_", n=1).str[0]
    lateral = table["hemisphere"].isin(("L", "R"))
    table["asymmetry_index"] = regions.map(pairs).where(lateral)
    return table


def asymmetry_indices(table: pd.DataFrame, column: str = "mean") -> pd.DataFrame:
    """Hemispheric asymmetry index 2·(L − R)/(L + R) of each left/right ROI pair.

    Parameters
    ----------
    table : pandas.DataFrame
        Output of :func:`regional_statistics`.
    column : str
        The statistic compared (``mean``, ``gm_restricted_mean`` ...).

    Returns
    -------
    pandas.DataFrame
        Columns ``region``, ``left``, ``right``, ``asymmetry_index`` (NaN when a side is n/a).
    """
    sides = table.dropna(subset=["hemisphere"]).assign(
        region=lambda frame: frame["roi"].str.rsplit("_", n=1).str[0]
    )
    left = sides[sides["hemisphere"] == "L"].set_index("region")[column]
    right = sides[sides["hemisphere"] == "R"].set_index("region")[column]
    pairs = pd.concat({"left": left, "right": right}, axis=1, join="inner")
    total = pairs["left"] + pairs["right"]
    pairs["asymmetry_index"] = 2.0 * (pairs["left"] - pairs["right"]) / total.where(total != 0)
    return pairs.reset_index()
