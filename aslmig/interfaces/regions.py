"""Regional statistics of a CBF or ATT map over an atlas, as a TSV plus sidecar fields."""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from aslmig.atlas.extract import (
    DEFAULT_GM_THRESHOLD,
    reference_mean,
    regional_statistics,
)
from aslmig.atlas.rois import Atlas, read_label_table

UNITS = {"cbf": "mL/100 g/min", "att": "s"}
COLUMN_DESCRIPTIONS = {
    "roi": "region name",
    "index": "label value in the atlas image (level given by the atlas table)",
    "hemisphere": "L, R or n/a",
    "n_voxels": "voxels of the region on this grid",
    "n_valid": "of those, voxels with data (inside the ASL brain mask and field of view)",
    "coverage": "n_valid / n_voxels",
    "mean": "mean over the valid voxels",
    "median": "median over the valid voxels",
    "sd": "sample standard deviation over the valid voxels",
    "gm_weighted_mean": "mean weighted by the participant's grey-matter probability",
    "gm_restricted_mean": "mean over valid voxels with grey-matter probability >= 0.5",
    "relative_to_reference": "mean / whole-grey-matter mean (CBF only)",
    "asymmetry_index": "2 (L - R) / (L + R) of the left/right pair's means",
    "status": "ok, or n/a with the reason (coverage below the threshold, empty region)",
}


def _load(path: str, dtype: type = float) -> tuple[np.ndarray, np.ndarray]:
    image = nb.load(path)
    return np.asanyarray(image.dataobj).astype(dtype), image.affine


def summarise_map(
    values_file: str,
    labels_file: str,
    atlas: Atlas,
    valid_file: str,
    gm_file: str,
    parameter: str,
    min_coverage: float,
    coverage: dict[str, float] | None = None,
) -> tuple[pd.DataFrame, dict]:
    """Compute the regional table of one map and the sidecar fields that describe it.

    Parameters
    ----------
    values_file : str
        The CBF or ATT map.
    labels_file : str
        The atlas labels on the same grid (3-D, or 4-D with one level per volume).
    atlas : Atlas
        The atlas (its table and provenance).
    valid_file : str
        Mask of voxels with data (the ASL brain mask on this grid).
    gm_file : str
        The participant's grey-matter probability on this grid.
    parameter : {"cbf", "att"}
        What the map holds.
    min_coverage : float
        Coverage below which a region is reported as n/a.
    coverage : dict, optional
        Coverage per region measured on another grid (see
        :func:`aslmig.atlas.extract.regional_statistics`).

    Returns
    -------
    table : pandas.DataFrame
        The regional statistics (:data:`aslmig.atlas.extract.COLUMNS`).
    metadata : dict
        Sidecar fields.
    """
    values, affine = _load(values_file)
    labels, label_affine = _load(labels_file, np.int32)
    if not np.allclose(affine, label_affine, atol=1e-3):
        raise ValueError(f"{labels_file} is not on the grid of {values_file}")
    valid = _load(valid_file)[0] > 0.5
    gm = np.clip(_load(gm_file)[0], 0.0, 1.0)
    reference = reference_mean(values, valid, gm) if parameter == "cbf" else None
    table = regional_statistics(
        values,
        labels,
        atlas.rois(),
        valid=valid,
        gm=gm,
        reference_value=reference,
        min_coverage=min_coverage,
        coverage=coverage,
    )
    metadata = {
        "Atlas": atlas.provenance(),
        "Units": UNITS[parameter],
        "MinimumCoverage": min_coverage,
        "GreyMatterThreshold": DEFAULT_GM_THRESHOLD,
        "ReferenceMean": reference,
        "ReferenceDefinition": "mean over valid voxels with the participant's grey-matter "
        f"probability >= {DEFAULT_GM_THRESHOLD}" if reference is not None else None,
        "Columns": COLUMN_DESCRIPTIONS,
    }
    return table, {key: value for key, value in metadata.items() if value is not None}


class _RegionalInputSpec(BaseInterfaceInputSpec):
    atlas = traits.Dict(mandatory=True, desc="name, space, image, table, description")
    parameter = traits.Enum("cbf", "att", usedefault=True)
    min_coverage = traits.Float(0.5, usedefault=True)
    values_std = File(exists=True, mandatory=True, desc="template-space map")
    valid_std = File(exists=True, mandatory=True, desc="voxels with data, template space")
    gm_std = File(exists=True, mandatory=True, desc="grey-matter probability, template space")
    values_native = File(exists=True, mandatory=True, desc="ASL-space map")
    labels_native = File(exists=True, mandatory=True, desc="atlas labels on the ASL grid")
    valid_native = File(exists=True, mandatory=True, desc="ASL brain mask")
    gm_native = File(exists=True, mandatory=True, desc="grey-matter probability, ASL grid")


class _RegionalOutputSpec(TraitedSpec):
    table_std = File(desc="regional statistics, template space (TSV)")
    metadata_std = File(desc="its sidecar fields (JSON)")
    table_native = File(desc="regional statistics, ASL space (TSV)")
    metadata_native = File(desc="its sidecar fields (JSON)")


def atlas_record(atlas: Atlas) -> dict:
    """Describe an atlas as a plain dictionary for a nipype input (paths as strings)."""
    table_file = atlas.image.with_name(atlas.image.name.replace(".nii.gz", ".tsv"))
    return {
        "name": atlas.name,
        "space": atlas.space,
        "image": str(atlas.image),
        "table": str(table_file),
        "description": atlas.description,
    }


def atlas_from_record(record: dict) -> Atlas:
    """Rebuild an :class:`Atlas` from :func:`atlas_record`."""
    table = read_label_table(Path(record["table"]))
    return Atlas(
        record["name"], record["space"], Path(record["image"]), table, record["description"]
    )


class RegionalStatistics(SimpleInterface):
    """Per-ROI statistics of a map in template and ASL space.

    The template-space table is computed first; its coverage (where the whole region exists)
    is the coverage of the ASL-space table too, whose grid may cut a region off.
    """

    input_spec = _RegionalInputSpec
    output_spec = _RegionalOutputSpec

    def _run_interface(self, runtime):
        atlas = atlas_from_record(self.inputs.atlas)
        inputs = self.inputs
        common = (inputs.parameter, inputs.min_coverage)
        table_std, metadata_std = summarise_map(
            inputs.values_std, str(atlas.image), atlas, inputs.valid_std, inputs.gm_std, *common
        )
        coverage = dict(zip(table_std["roi"], table_std["coverage"], strict=True))
        table_native, metadata_native = summarise_map(
            inputs.values_native, inputs.labels_native, atlas, inputs.valid_native,
            inputs.gm_native, *common, coverage=coverage,
        )  # fmt: skip
        metadata_native["CoverageSource"] = (
            "template space: fraction of the region's template voxels inside the ASL brain mask"
        )
        for space, table, metadata in (
            ("std", table_std, metadata_std),
            ("native", table_native, metadata_native),
        ):
            table_file = Path(runtime.cwd) / f"regions_{space}.tsv"
            table.to_csv(table_file, sep="\t", index=False, na_rep="n/a", lineterminator="\n")
            metadata_file = Path(runtime.cwd) / f"regions_{space}.json"
            metadata_file.write_text(json.dumps(metadata, indent=2))
            self._results[f"table_{space}"] = str(table_file)
            self._results[f"metadata_{space}"] = str(metadata_file)
        return runtime
