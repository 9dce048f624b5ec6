"""One regional table of a map over an atlas: arrays in, the table and its sidecar fields out.

The arithmetic is :mod:`aslmig.atlas.extract`; this module adds the atlas's provenance, the
reference mean of relative CBF and the column descriptions that the sidecar carries. The
interface :mod:`aslmig.interfaces.regions` only reads and writes the files.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aslmig.atlas.extract import (
    CONFIDENCE_LEVEL,
    DEFAULT_GM_THRESHOLD,
    MIN_GREY_FRACTION,
    MIN_GREY_VOXELS,
    MIN_ROI_ASL_VOXELS,
    RepetitionUncertainty,
    reference_mean,
    regional_statistics,
)
from aslmig.atlas.rois import Atlas

UNITS = {"cbf": "mL/100 g/min", "att": "s"}
COLUMN_DESCRIPTIONS = {
    "roi": "region name",
    "index": "label value in the atlas image (level given by the atlas table)",
    "hemisphere": "L, R or n/a",
    "n_voxels": "voxels of the region on this grid",
    "n_valid": "of those, voxels with data (inside the ASL brain mask and field of view)",
    "coverage": "n_valid / n_voxels",
    "mean": "mean over the valid voxels",
    "mean_se": "standard error of the mean from the repetition-to-repetition variability "
    "(jackknife over the label/control pairs, or the multi-delay repeats, left out in turn; "
    "measured on the ASL grid); n/a without repetitions",
    "median": "median over the valid voxels",
    "sd": "sample standard deviation over the valid voxels (spatial, not an uncertainty)",
    "gm_weighted_mean": "mean weighted by the participant's grey-matter probability",
    "n_grey": f"valid voxels with grey-matter probability >= {DEFAULT_GM_THRESHOLD}",
    "gm_restricted_mean": f"mean over the n_grey voxels; n/a with fewer than {MIN_GREY_VOXELS} "
    f"of them or fewer than {MIN_GREY_FRACTION:.0%} of the valid voxels",
    "relative_to_reference": "mean / whole-grey-matter mean (CBF only)",
    "asymmetry_index": "2 (L - R) / (L + R) of the left/right pair's means",
    "asymmetry_ci_low": f"lower end of the index's {CONFIDENCE_LEVEL:.0%} confidence interval "
    "(index - t * jackknife SE over the repetitions)",
    "asymmetry_ci_high": f"upper end of the {CONFIDENCE_LEVEL:.0%} confidence interval",
    "asymmetry_note": "why the index is not a finding: the interval includes 0, or a region "
    f"of the pair is below {MIN_ROI_ASL_VOXELS} ASL voxels (partial volume)",
    "status": "ok, or n/a with the reason (coverage below the threshold, empty region)",
}


@dataclass(frozen=True)
class RegionalTable:
    """A regional table and the sidecar fields that describe it."""

    table: pd.DataFrame
    metadata: dict[str, Any]


def summarise_regions(
    values: np.ndarray,
    labels: np.ndarray,
    atlas: Atlas,
    valid: np.ndarray,
    gm: np.ndarray,
    parameter: str,
    min_coverage: float,
    coverage: Mapping[str, float] | None = None,
    uncertainty: RepetitionUncertainty | None = None,
) -> RegionalTable:
    """Compute the regional table of one map and the sidecar fields that describe it.

    Parameters
    ----------
    values : ndarray
        The CBF or ATT map.
    labels : ndarray of int
        The atlas labels on the same grid (3-D, or 4-D with one level per volume).
    atlas : Atlas
        The atlas (its regions and provenance).
    valid : ndarray of bool
        Voxels with data (the ASL brain mask on this grid).
    gm : ndarray
        The participant's grey-matter probability on this grid.
    parameter : {"cbf", "att"}
        What the map holds.
    min_coverage : float
        Coverage below which a region is reported as n/a.
    coverage : mapping, optional
        Coverage per region measured on another grid.
    uncertainty : RepetitionUncertainty, optional
        Standard errors from the repetitions (see
        :func:`aslmig.atlas.extract.repetition_uncertainty`).

    Returns
    -------
    RegionalTable
        The table (:data:`aslmig.atlas.extract.COLUMNS`) and its sidecar fields.
    """
    gm = np.clip(gm, 0.0, 1.0)
    reference = reference_mean(values, valid, gm) if parameter == "cbf" else None
    table = regional_statistics(
        values, labels, atlas.rois(), valid=valid, gm=gm, reference_value=reference,
        min_coverage=min_coverage, coverage=coverage, uncertainty=uncertainty,
    )  # fmt: skip
    metadata = {
        "Atlas": atlas.provenance(),
        "Units": UNITS[parameter],
        "MinimumCoverage": min_coverage,
        "GreyMatterThreshold": DEFAULT_GM_THRESHOLD,
        "ReferenceMean": reference,
        "ReferenceDefinition": "mean over valid voxels with the participant's grey-matter "
        f"probability >= {DEFAULT_GM_THRESHOLD}"
        if reference is not None
        else None,
        "Repetitions": None if uncertainty is None else uncertainty.n_repetitions,
        "Columns": COLUMN_DESCRIPTIONS,
    }
    return RegionalTable(
        table, {key: value for key, value in metadata.items() if value is not None}
    )
