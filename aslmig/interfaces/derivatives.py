"""Write one output of the derivatives dataset: name from entities, atomic copy, sidecar."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from aslmig.bids.derivatives import atomic_write, output_path, sidecar_path, write_sidecar

RUN_ENTITIES = ("subject", "session", "acquisition", "reconstruction", "run", "direction")
DERIVATIVE_ENTITIES = ("space", "atlas", "label", "description")


class _SaveDerivativeInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="file to save")
    output_dir = traits.Str(mandatory=True, desc="OUTPUT_DIR")
    entities = traits.Dict(mandatory=True, desc="entities of the source run")
    suffix = traits.Str(mandatory=True, desc="output suffix, e.g. cbf")
    extension = traits.Str(".nii.gz", usedefault=True, desc="output extension")
    datatype = traits.Str("perf", usedefault=True, desc="datatype folder (perf, anat)")
    space = traits.Str("", usedefault=True, desc="template space entity, if any")
    atlas = traits.Str("", usedefault=True, desc="atlas entity, if any")
    label = traits.Str("", usedefault=True, desc="label entity (tissue), if any")
    description = traits.Str("", usedefault=True, desc="desc entity, if any")
    sources = traits.List(traits.Str, desc="BIDS URIs of the inputs")
    metadata = traits.Dict(desc="further sidecar fields (units, constants, provenance)")
    metadata_file = File(exists=True, desc="JSON file whose fields are added to the sidecar")
    write_json = traits.Bool(True, usedefault=True, desc="write a JSON sidecar")


def _run_entities(entities: dict[str, Any]) -> dict[str, Any]:
    """Keep the entities of the source file that name its outputs too."""
    return {key: value for key, value in entities.items() if key in RUN_ENTITIES}


def _destination(inputs: Any, extension: str) -> Path:
    entities = _run_entities(inputs.entities)
    for name in DERIVATIVE_ENTITIES:
        value = getattr(inputs, name, "")
        if isdefined(value) and value:
            entities[name] = value
    return Path(inputs.output_dir) / output_path(
        entities, inputs.suffix, extension, datatype=inputs.datatype
    )


class _SaveDerivativeOutputSpec(TraitedSpec):
    out_file = File(desc="the saved output")


class SaveDerivative(SimpleInterface):
    """Save a file into the derivatives dataset under its DESIGN.md §5 name, with a sidecar.

    It runs on every invocation, cached or not (a copy takes milliseconds): a rerun must
    rewrite outputs that were deleted since, which nipype's cache cannot know about.
    """

    input_spec = _SaveDerivativeInputSpec
    output_spec = _SaveDerivativeOutputSpec
    _always_run = True

    def planned_outputs(self) -> list[Path]:
        """Return the files this node writes (known when the graph is built)."""
        destination = _destination(self.inputs, self.inputs.extension)
        return [destination, sidecar_path(destination)] if self.inputs.write_json else [destination]

    def _run_interface(self, runtime):
        destination = _destination(self.inputs, self.inputs.extension)
        source = self.inputs.in_file
        atomic_write(destination, lambda temporary: shutil.copyfile(source, temporary))
        if self.inputs.write_json:
            metadata = dict(self.inputs.metadata) if isdefined(self.inputs.metadata) else {}
            if isdefined(self.inputs.metadata_file):
                metadata.update(json.loads(Path(self.inputs.metadata_file).read_text()))
            sources = list(self.inputs.sources) if isdefined(self.inputs.sources) else []
            write_sidecar(destination, sources, **metadata)
        self._results["out_file"] = str(destination)
        return runtime


class _SaveTransformsInputSpec(BaseInterfaceInputSpec):
    transforms = traits.List(File(exists=True), mandatory=True, desc="ANTs transform files")
    output_dir = traits.Str(mandatory=True)
    entities = traits.Dict(mandatory=True)
    source_space = traits.Str(mandatory=True, desc="from- entity, e.g. asl or T1w")
    target_space = traits.Str(mandatory=True, desc="to- entity, e.g. T1w or a template")
    datatype = traits.Str("perf", usedefault=True, desc="datatype folder")


class _SaveTransformsOutputSpec(TraitedSpec):
    out_files = traits.List(File())


class SaveTransforms(SimpleInterface):
    """Save registration transforms as ``..._from-X_to-Y_mode-image_xfm.<ext>`` outputs.

    Runs on every invocation, like :class:`SaveDerivative`.
    """

    input_spec = _SaveTransformsInputSpec
    output_spec = _SaveTransformsOutputSpec
    _always_run = True

    def _run_interface(self, runtime):
        saved = []
        entities = _run_entities(self.inputs.entities)
        entities.update(
            {"from": self.inputs.source_space, "to": self.inputs.target_space, "mode": "image"}
        )
        for transform in self.inputs.transforms:
            name = Path(transform).name
            extension = ".nii.gz" if name.endswith(".nii.gz") else Path(name).suffix
            destination = Path(self.inputs.output_dir) / output_path(
                entities, "xfm", extension, datatype=self.inputs.datatype
            )
            if str(destination) in saved:
                raise ValueError(f"two transforms would both be saved as {destination}")
            atomic_write(
                destination, lambda temporary, src=transform: shutil.copyfile(src, temporary)
            )
            saved.append(str(destination))
        self._results["out_files"] = saved
        return runtime
