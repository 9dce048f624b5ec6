"""Regional statistics of a CBF or ATT map over an atlas, files to files.

The logic is :func:`aslmig.atlas.summary.summarise_regions`; this interface reads the maps,
writes the TSV and its sidecar fields, and measures the repetition uncertainty on the ASL
grid (where the per-repetition maps are) for both tables.
"""

from __future__ import annotations

import json
from pathlib import Path

import nibabel as nb
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from aslmig.atlas.extract import repetition_uncertainty
from aslmig.atlas.rois import Atlas, read_label_table
from aslmig.atlas.summary import RegionalTable, summarise_regions


def _load(path: str, dtype: type = float) -> tuple[np.ndarray, np.ndarray]:
    image = nb.load(path)
    return np.asanyarray(image.dataobj).astype(dtype), image.affine


def _same_grid(first: str, second: str) -> None:
    if not np.allclose(nb.load(first).affine, nb.load(second).affine, atol=1e-3):
        raise ValueError(f"{second} is not on the grid of {first}")


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
    replicates_native = File(exists=True, desc="the map with each repetition left out (4-D)")


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
    is the coverage of the ASL-space table too, whose grid may cut a region off. The
    repetition uncertainty is measured on the ASL grid and reported in both tables.
    """

    input_spec = _RegionalInputSpec
    output_spec = _RegionalOutputSpec

    def _run_interface(self, runtime):
        inputs = self.inputs
        atlas = atlas_from_record(inputs.atlas)
        common = (inputs.parameter, inputs.min_coverage)
        labels_native = _load(inputs.labels_native, np.int32)[0]
        valid_native = _load(inputs.valid_native)[0] > 0.5
        uncertainty = None
        if isdefined(inputs.replicates_native):
            _same_grid(inputs.values_native, inputs.replicates_native)
            replicates = _load(inputs.replicates_native)[0]
            uncertainty = repetition_uncertainty(replicates, labels_native, atlas.rois(),
                                                 valid_native)  # fmt: skip
        _same_grid(inputs.values_std, str(atlas.image))
        std = summarise_regions(
            _load(inputs.values_std)[0], _load(str(atlas.image), np.int32)[0], atlas,
            _load(inputs.valid_std)[0] > 0.5, _load(inputs.gm_std)[0], *common,
            uncertainty=uncertainty,
        )  # fmt: skip
        coverage = dict(zip(std.table["roi"], std.table["coverage"], strict=True))
        _same_grid(inputs.values_native, inputs.labels_native)
        native = summarise_regions(
            _load(inputs.values_native)[0], labels_native, atlas, valid_native,
            _load(inputs.gm_native)[0], *common, coverage=coverage, uncertainty=uncertainty,
        )  # fmt: skip
        native.metadata["CoverageSource"] = (
            "template space: fraction of the region's template voxels inside the ASL brain mask"
        )
        for space, result in (("std", std), ("native", native)):
            self._write(Path(runtime.cwd), space, result)
        return runtime

    def _write(self, folder: Path, space: str, result: RegionalTable) -> None:
        table_file = folder / f"regions_{space}.tsv"
        result.table.to_csv(table_file, sep="\t", index=False, na_rep="n/a", lineterminator="\n")
        metadata_file = folder / f"regions_{space}.json"
        metadata_file.write_text(json.dumps(result.metadata, indent=2))
        self._results[f"table_{space}"] = str(table_file)
        self._results[f"metadata_{space}"] = str(metadata_file)
