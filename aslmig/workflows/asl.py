"""ASL workflow of one run: preprocessing, registration, CBF/ATT, template space, QC, outputs."""

from __future__ import annotations

from collections.abc import Sequence

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from aslmig.atlas.rois import Atlas
from aslmig.atlas.templates import TemplateFiles
from aslmig.bids.derivatives import ENTITY_ORDER
from aslmig.bids.layout import AslRun
from aslmig.cbf.quantify import QuantifyOptions
from aslmig.config import RunConfig
from aslmig.interfaces.asl import PreprocessASL
from aslmig.interfaces.cbf import QuantifyCBF
from aslmig.interfaces.qc import ComputeQC, TissueDict
from aslmig.interfaces.reports import SummariseRun
from aslmig.workflows.anatomical import ANAT_OUTPUTS
from aslmig.workflows.constants import has_repetitions, plan_quantification
from aslmig.workflows.outputs import derivative_saver, init_asl_outputs_wf
from aslmig.workflows.parameters import methods_parameters
from aslmig.workflows.regions import init_regions_wf
from aslmig.workflows.registration import (
    TISSUES,
    init_asl_registration_wf,
    init_template_chain_wf,
)

ABV_METADATA = {
    "Units": "1",
    "Description": "arterial blood volume fraction of the multi-delay fit's arterial "
    "(macrovascular) component; 0 where the tissue-only fit was kept",
}


def _node_name(run: AslRun) -> str:
    """Name a run's workflow from its entities, e.g. ``asl_ses1_acq3d_run2_wf``."""
    parts = [
        f"{short}{run.entities[name]}"
        for name, short in ENTITY_ORDER
        if name != "subject" and name in run.entities
    ]
    return "_".join(["asl", *parts, "wf"])


def init_asl_wf(
    run: AslRun,
    config: RunConfig,
    template: TemplateFiles,
    has_anat: bool,
    name: str | None = None,
    atlases: Sequence[Atlas] = (),
) -> pe.Workflow:
    """Build the workflow of one ASL run.

    Preprocessing (motion correction by volume type, reference, brain mask), registration
    (:func:`~aslmig.workflows.registration.init_asl_registration_wf`), CBF (and ATT)
    quantification on the ASL grid, one resampling to the template
    (:func:`~aslmig.workflows.registration.init_template_chain_wf`), QC, regional tables
    (:func:`~aslmig.workflows.regions.init_regions_wf`), the outputs
    (:func:`~aslmig.workflows.outputs.init_asl_outputs_wf`) and the run's report summary.

    Parameters
    ----------
    run : AslRun
        The validated run.
    config : RunConfig
        The run configuration (physics overrides, output folder).
    template : TemplateFiles
        Output template.
    has_anat : bool
        Whether the participant's anatomical workflow feeds ``inputnode`` (else the ASL
        reference is registered straight to the template and tissue maps come from the
        template priors).
    name : str, optional
        Workflow name (default from the run's entities).
    atlases : sequence of Atlas
        ROI sets summarised in the regional tables (none: no tables).

    Returns
    -------
    Workflow
        The run's workflow.

    Inputs
    ------
    t1w_preproc, t1w_brain, t1w_mask, gm, wm, csf, anat2std_xfm, std2anat_xfm, anat_qc
        The anatomical workflow's outputs (:data:`~aslmig.workflows.anatomical.ANAT_OUTPUTS`;
        unused without a T1w).

    Outputs
    -------
    summary
        The run's report summary (JSON, :class:`~aslmig.reports.run.RunSummary`).
    """
    workflow = pe.Workflow(name=name or _node_name(run))
    inputnode = pe.Node(niu.IdentityInterface(fields=ANAT_OUTPUTS), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["summary"]), name="outputnode")
    multi_delay = run.metadata.is_multi_delay
    separate_m0 = run.m0_file is not None

    preprocess = pe.Node(
        PreprocessASL(asl_file=str(run.asl_file), metadata=run.metadata),
        name="preprocess",
        mem_gb=1.0,
    )
    if separate_m0:
        preprocess.inputs.m0_file = str(run.m0_file)
    registration = init_asl_registration_wf(template, has_anat)
    plan = plan_quantification(run, config.physics)
    quantify = pe.Node(
        QuantifyCBF(
            acquisition=plan.acquisition,
            overrides=config.physics.overrides(),
            own_segmentation=has_anat,
            options=QuantifyOptions(
                m0_scale=config.physics.m0_scale,
                m0_smoothing_fwhm_mm=config.physics.m0_smoothing_fwhm_mm,
                arterial=plan.arterial.enabled,
                arterial_reason=plan.arterial.reason,
            ),
            warnings=list(plan.warning_messages),
        ),
        name="quantify",
        mem_gb=1.0,
    )
    tissue_dict = pe.Node(TissueDict(), name="tissue_dict")
    to_template = init_template_chain_wf(template, has_anat, multi_delay, inverse=bool(atlases))
    qc = pe.Node(ComputeQC(), name="qc")
    outputs = init_asl_outputs_wf(run, config, template, multi_delay)
    summary = pe.Node(
        SummariseRun(
            name=run.name,
            anat_name="T1w" if has_anat else f"{template.space} template",
            methods=methods_parameters(run, config, template, has_anat),
            warnings=list(plan.warning_messages),
        ),
        name="summary",
    )
    transforms = ("forward_transforms", "forward_invert", "inverse_transforms", "inverse_invert")
    workflow.connect([
        (preprocess, registration, [("reference", "inputnode.reference"),
                                    ("mask", "inputnode.mask")]),
        (registration, tissue_dict, [(f"outputnode.{tissue}", tissue) for tissue in TISSUES]),
        (preprocess, quantify, [("realigned", "asl_file"), ("mask", "mask_file")]),
        (tissue_dict, quantify, [("tissue_files", "tissue_files")]),
        (registration, to_template, [(f"outputnode.{field}", f"inputnode.{field}")
                                     for field in transforms]),
        (quantify, to_template, [("cbf", "inputnode.cbf")]),
        (quantify, qc, [("cbf", "cbf"), ("provenance", "provenance")]),
        (preprocess, qc, [("mask", "mask"), ("confounds", "confounds")]),
        (registration, qc, [("outputnode.mask_in_anat", "registered_mask"),
                            ("outputnode.target_mask", "target_mask"),
                            *((f"outputnode.{tissue}", tissue) for tissue in TISSUES)]),
        (quantify, outputs, [("cbf", "inputnode.cbf"), ("provenance", "inputnode.provenance")]),
        (to_template, outputs, [("outputnode.cbf_std", "inputnode.cbf_std")]),
        (preprocess, outputs, [("mask", "inputnode.mask"), ("confounds", "inputnode.confounds")]),
        (qc, outputs, [("out_file", "inputnode.qc")]),
        (registration, outputs, [("outputnode.forward_transforms",
                                  "inputnode.registration_transforms")]),
        (quantify, summary, [("cbf", "cbf")]),
        (preprocess, summary, [("mask", "mask"), ("confounds", "confounds"),
                               ("reference", "reference")]),
        (registration, summary, [("outputnode.anat_in_asl", "anat_in_asl"),
                                 ("outputnode.gm", "gm"), ("outputnode.wm", "wm")]),
        (qc, summary, [("out_file", "qc")]),
        (summary, outputnode, [("out_file", "summary")]),
    ])  # fmt: skip
    if has_anat:
        workflow.connect([
            (inputnode, registration, [(field, f"inputnode.{field}")
                                       for field in ("t1w_brain", "t1w_mask", *TISSUES)]),
            (inputnode, to_template, [("anat2std_xfm", "inputnode.anat2std_xfm"),
                                      ("std2anat_xfm", "inputnode.std2anat_xfm")]),
            (inputnode, qc, [("anat_qc", "anat_qc")]),
        ])  # fmt: skip
    if separate_m0:
        workflow.connect(preprocess, "m0", quantify, "m0_file")
    if multi_delay:
        workflow.connect([
            (quantify, to_template, [("att", "inputnode.att")]),
            (quantify, outputs, [("att", "inputnode.att")]),
            (to_template, outputs, [("outputnode.att_std", "inputnode.att_std")]),
            (quantify, summary, [("att", "att")]),
        ])  # fmt: skip
    if plan.arterial.enabled:
        save_abv = derivative_saver("save_abv", run, config, "abv", metadata=ABV_METADATA)
        workflow.connect([
            (quantify, save_abv, [("abv", "in_file"), ("provenance", "metadata_file")]),
        ])  # fmt: skip
    if atlases:
        replicates = has_repetitions(plan.acquisition)
        regions = init_regions_wf(run, config, template, atlases, multi_delay,
                                  replicates=replicates)  # fmt: skip
        _connect_regions(workflow, regions, quantify, preprocess, registration, to_template,
                         summary, multi_delay)  # fmt: skip
        if replicates:
            workflow.connect(quantify, "cbf_replicates", regions, "inputnode.cbf_replicates")
        summary.inputs.region_atlas = str(atlases[0].image)
    return workflow


def _connect_regions(
    workflow: pe.Workflow,
    regions: pe.Workflow,
    quantify: pe.Node,
    preprocess: pe.Node,
    registration: pe.Workflow,
    to_template: pe.Workflow,
    summary: pe.Node,
    multi_delay: bool,
) -> None:
    """Feed the regions workflow and pass its template-space tables to the report summary."""
    maps = ("cbf", "att") if multi_delay else ("cbf",)
    chains = ("to_std_transforms", "to_std_invert", "to_asl_transforms", "to_asl_invert")
    workflow.connect([
        (quantify, regions, [(kind, f"inputnode.{kind}") for kind in maps]),
        (preprocess, regions, [("mask", "inputnode.mask")]),
        (registration, regions, [("outputnode.gm", "inputnode.gm")]),
        (to_template, regions, [(f"outputnode.{field}", f"inputnode.{field}")
                                for field in (*chains, *(f"{kind}_std" for kind in maps))]),
        (regions, summary, [("outputnode.tables", "region_tables")]),
        (to_template, summary, [("outputnode.cbf_std", "cbf_std")]),
    ])  # fmt: skip
