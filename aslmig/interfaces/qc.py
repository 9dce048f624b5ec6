"""Quality control of one run, files to files (the logic: :func:`aslmig.cbf.qc.run_quality`)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from aslmig.cbf.qc import run_quality
from aslmig.interfaces._io import load_array


class _QCInputSpec(BaseInterfaceInputSpec):
    cbf = File(exists=True, mandatory=True)
    gm = File(exists=True, mandatory=True)
    wm = File(exists=True, mandatory=True)
    csf = File(exists=True, mandatory=True)
    mask = File(exists=True, mandatory=True)
    confounds = File(exists=True, mandatory=True)
    registered_mask = File(exists=True, mandatory=True)
    target_mask = File(exists=True, mandatory=True)
    provenance = File(exists=True, desc="quantification provenance (multi-delay fit summary)")
    anat_qc = File(exists=True, desc="T1w brain-mask plausibility (JSON, t1w_* keys)")


class _QCOutputSpec(TraitedSpec):
    out_file = File(desc="QC metrics (JSON)")


class ComputeQC(SimpleInterface):
    """Compute CBF, motion, registration and fit QC metrics of one run."""

    input_spec = _QCInputSpec
    output_spec = _QCOutputSpec

    def _run_interface(self, runtime):
        inputs = self.inputs
        provenance = (
            json.loads(Path(inputs.provenance).read_text()) if isdefined(inputs.provenance) else {}
        )
        confounds = pd.read_csv(inputs.confounds, sep="\t", na_values="n/a")
        metrics = run_quality(
            load_array(inputs.cbf),
            load_array(inputs.mask) > 0,
            load_array(inputs.gm),
            load_array(inputs.wm),
            load_array(inputs.csf),
            framewise_displacement=confounds["framewise_displacement"].to_numpy(float),
            registered_mask=load_array(inputs.registered_mask),
            target_mask=load_array(inputs.target_mask),
            fit_summary=provenance.get("fit_summary"),
        )
        values = metrics.to_dict()
        if isdefined(inputs.anat_qc):
            values.update(json.loads(Path(inputs.anat_qc).read_text()))
        out_file = Path(runtime.cwd) / "qc.json"
        out_file.write_text(json.dumps(values, indent=2, sort_keys=True))
        self._results["out_file"] = str(out_file)
        return runtime


class _TissueDictInputSpec(BaseInterfaceInputSpec):
    gm = File(exists=True, mandatory=True)
    wm = File(exists=True, mandatory=True)
    csf = File(exists=True, mandatory=True)


class _TissueDictOutputSpec(TraitedSpec):
    tissue_files = traits.Dict(desc="{'gm': ..., 'wm': ..., 'csf': ...}")


class TissueDict(SimpleInterface):
    """Bundle three tissue maps into the dictionary the quantification node expects."""

    input_spec = _TissueDictInputSpec
    output_spec = _TissueDictOutputSpec

    def _run_interface(self, runtime):
        self._results["tissue_files"] = {
            "gm": self.inputs.gm,
            "wm": self.inputs.wm,
            "csf": self.inputs.csf,
        }
        return runtime
