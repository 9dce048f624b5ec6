"""Write one output of the derivatives dataset: name from entities, atomic copy, sidecar."""

from __future__ import annotations

import shutil
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from aslmig.bids.derivatives import atomic_write, output_path, write_sidecar


class _SaveDerivativeInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="file to save")
    output_dir = traits.Str(mandatory=True, desc="OUTPUT_DIR")
    entities = traits.Dict(mandatory=True, desc="entities of the source run")
    suffix = traits.Str(mandatory=True, desc="output suffix, e.g. cbf")
    extension = traits.Str(".nii.gz", usedefault=True, desc="output extension")
    space = traits.Str("", usedefault=True, desc="template space entity, if any")
    atlas = traits.Str("", usedefault=True, desc="atlas entity, if any")
    description = traits.Str("", usedefault=True, desc="desc entity, if any")
    sources = traits.List(traits.Str, desc="BIDS URIs of the inputs")
    metadata = traits.Dict(desc="further sidecar fields (units, constants, provenance)")
    write_json = traits.Bool(True, usedefault=True, desc="write a JSON sidecar")


class _SaveDerivativeOutputSpec(TraitedSpec):
    out_file = File(desc="the saved output")


class SaveDerivative(SimpleInterface):
    """Save a file into the derivatives dataset under its DESIGN.md §5 name, with a sidecar."""

    input_spec = _SaveDerivativeInputSpec
    output_spec = _SaveDerivativeOutputSpec

    def _run_interface(self, runtime):
        entities = {
            key: value
            for key, value in self.inputs.entities.items()
            if key in ("subject", "session", "acquisition", "reconstruction", "run", "direction")
        }
        for name in ("space", "atlas", "description"):
            if getattr(self.inputs, name):
                entities[name] = getattr(self.inputs, name)
        relative = output_path(entities, self.inputs.suffix, self.inputs.extension)
        destination = Path(self.inputs.output_dir) / relative
        source = self.inputs.in_file
        atomic_write(destination, lambda temporary: shutil.copyfile(source, temporary))
        if self.inputs.write_json:
            metadata = dict(self.inputs.metadata) if self.inputs.metadata else {}
            write_sidecar(destination, list(self.inputs.sources or []), **metadata)
        self._results["out_file"] = str(destination)
        return runtime
