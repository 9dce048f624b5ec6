"""Thin nipype interface over :func:`aslmig.asl.preprocess.preprocess_asl`."""

from __future__ import annotations

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from aslmig.asl.preprocess import preprocess_asl
from aslmig.bids.metadata import AslMetadata


class _PreprocessInputSpec(BaseInterfaceInputSpec):
    asl_file = File(exists=True, mandatory=True, desc="raw ASL series")
    metadata = traits.Instance(AslMetadata, mandatory=True, desc="validated run metadata")
    m0_file = File(exists=True, desc="separate M0 scan")


class _PreprocessOutputSpec(TraitedSpec):
    realigned = File(desc="motion-corrected series")
    reference = File(desc="reference image (mean M0, else mean control)")
    mask = File(desc="brain mask")
    m0 = File(desc="separate M0 realigned onto the series grid")
    confounds = File(desc="motion parameters and framewise displacement (TSV)")


class PreprocessASL(SimpleInterface):
    """Motion-correct an ASL series by volume type and delay; reference image and brain mask."""

    input_spec = _PreprocessInputSpec
    output_spec = _PreprocessOutputSpec

    def _run_interface(self, runtime):
        m0_file = self.inputs.m0_file if isdefined(self.inputs.m0_file) else None
        result = preprocess_asl(self.inputs.asl_file, self.inputs.metadata, runtime.cwd, m0_file)
        self._results.update(
            realigned=str(result.realigned),
            reference=str(result.reference),
            mask=str(result.mask),
            confounds=str(result.confounds),
        )
        if result.m0 is not None:
            self._results["m0"] = str(result.m0)
        return runtime
