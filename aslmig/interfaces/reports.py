"""Participant report: each run writes a summary; one node renders ``OUTPUT_DIR/sub-X.html``."""

from __future__ import annotations

import json
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    InputMultiObject,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from aslmig.bids.derivatives import participant_report_path
from aslmig.cbf.qc import QcMetrics, quality_warnings
from aslmig.reports.boilerplate import MethodsParameters
from aslmig.reports.participant import render_participant_report
from aslmig.reports.run import RunSummary, run_report


class _SummaryInputSpec(BaseInterfaceInputSpec):
    name = traits.Str(mandatory=True, desc="run name, e.g. sub-01_ses-1")
    cbf = File(exists=True, mandatory=True)
    att = File(exists=True)
    mask = File(exists=True, mandatory=True)
    anat_in_asl = File(exists=True, mandatory=True, desc="T1w or template on the ASL grid")
    anat_name = traits.Str("T1w", usedefault=True)
    confounds = File(exists=True, mandatory=True)
    qc = File(exists=True, mandatory=True)
    methods = traits.Instance(MethodsParameters, mandatory=True, desc="methods parameters")
    warnings = traits.List(traits.Str)
    cbf_std = File(exists=True, desc="template-space CBF (background of the region outlines)")
    region_tables = InputMultiObject(File(exists=True), desc="template-space regional tables")
    region_atlas = traits.Str(desc="label image of the first atlas (for the outlines)")
    reference = File(exists=True, mandatory=True, desc="ASL reference (under the tissue borders)")
    gm = File(exists=True, mandatory=True, desc="grey-matter probability on the ASL grid")
    wm = File(exists=True, mandatory=True, desc="white-matter probability on the ASL grid")


class _SummaryOutputSpec(TraitedSpec):
    out_file = File(desc="run summary (JSON)")


class SummariseRun(SimpleInterface):
    """Collect what the participant report needs from one run (with the QC warnings)."""

    input_spec = _SummaryInputSpec
    output_spec = _SummaryOutputSpec

    def _run_interface(self, runtime):
        given = {
            name: getattr(self.inputs, name)
            for name in self.inputs.copyable_trait_names()
            if isdefined(getattr(self.inputs, name))
        }
        qc = json.loads(Path(self.inputs.qc).read_text())
        given["warnings"] = [
            *given.get("warnings", ()),
            *qc.get("t1w_warnings", ()),  # the T1w brain-mask check (anat/quality.py)
            *quality_warnings(QcMetrics.from_dict(qc)),
        ]
        out_file = Path(runtime.cwd) / "summary.json"
        out_file.write_text(RunSummary(**given).to_json())
        self._results["out_file"] = str(out_file)
        return runtime


class _ReportInputSpec(BaseInterfaceInputSpec):
    subject = traits.Str(mandatory=True)
    summaries = InputMultiObject(File(exists=True), mandatory=True)
    output_dir = traits.Str(mandatory=True)


class _ReportOutputSpec(TraitedSpec):
    out_file = File(desc="OUTPUT_DIR/sub-X.html")


class ParticipantReport(SimpleInterface):
    """Render the participant's self-contained HTML report into OUTPUT_DIR (on every run)."""

    input_spec = _ReportInputSpec
    output_spec = _ReportOutputSpec
    _always_run = True  # a deleted report is written again by a rerun

    def planned_outputs(self) -> list[Path]:
        """Return the report this node writes."""
        return [participant_report_path(self.inputs.output_dir, self.inputs.subject)]

    def _run_interface(self, runtime):
        runs = [run_report(RunSummary.from_json(Path(path).read_text()))
                for path in self.inputs.summaries]  # fmt: skip
        (out_file,) = self.planned_outputs()
        render_participant_report(self.inputs.subject, runs, out_file)
        self._results["out_file"] = str(out_file)
        return runtime
