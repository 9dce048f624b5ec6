"""ASL workflow of one run: preprocessing, registration, CBF/ATT, template space, QC, outputs."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from aslmig.atlas.rois import Atlas
from aslmig.atlas.templates import TemplateFiles
from aslmig.bids.derivatives import ENTITY_ORDER
from aslmig.bids.layout import AslRun
from aslmig.config import RunConfig
from aslmig.interfaces.anat import ApplyTransforms, ConcatTransforms, RegisterImages
from aslmig.interfaces.asl import PreprocessASL
from aslmig.interfaces.cbf import QuantifyCBF
from aslmig.interfaces.qc import ComputeQC, TissueDict
from aslmig.interfaces.reports import SummariseRun
from aslmig.workflows.anatomical import ANAT_OUTPUTS
from aslmig.workflows.outputs import init_asl_outputs_wf
from aslmig.workflows.parameters import methods_parameters, run_metadata
from aslmig.workflows.regions import init_regions_wf

TISSUES = ("gm", "wm", "csf")


def _node_name(run: AslRun) -> str:
    """Name a run's workflow from its entities, e.g. ``asl_ses1_acq3d_run2_wf``."""
    parts = [
        f"{short}{run.entities[name]}"
        for name, short in ENTITY_ORDER
        if name != "subject" and name in run.entities
    ]
    return "_".join(["asl", *parts, "wf"])


def _resample(name: str, interpolation: str = "linear") -> pe.Node:
    return pe.Node(ApplyTransforms(interpolation=interpolation), name=name, mem_gb=0.5)


def init_asl_wf(
    run: AslRun,
    config: RunConfig,
    template: TemplateFiles,
    has_anat: bool,
    name: str | None = None,
    atlases: Sequence[Atlas] = (),
) -> pe.Workflow:
    """Build the workflow of one ASL run.

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
        ``inputnode`` takes the anatomical outputs; ``outputnode.summary`` is the run's
        report summary.
    """
    workflow = pe.Workflow(name=name or _node_name(run))
    inputnode = pe.Node(niu.IdentityInterface(fields=ANAT_OUTPUTS), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["summary"]), name="outputnode")
    multi_delay = run.metadata.is_multi_delay

    preprocess = pe.Node(
        PreprocessASL(asl_file=str(run.asl_file), volume_types=list(run.metadata.volume_types)),
        name="preprocess",
        mem_gb=1.0,
    )
    if run.m0_file is not None:
        preprocess.inputs.m0_file = str(run.m0_file)
    quantify = pe.Node(
        QuantifyCBF(
            metadata=run_metadata(run),
            overrides=config.physics.overrides(),
            m0_scale=config.physics.m0_scale,
            m0_smoothing_fwhm_mm=config.physics.m0_smoothing_fwhm_mm,
        ),
        name="quantify",
        mem_gb=1.0,
    )
    tissue_dict = pe.Node(TissueDict(), name="tissue_dict")
    register, anat_image, anat_mask = _registration(
        workflow, inputnode, preprocess, template, has_anat
    )
    to_asl = {tissue: _resample(f"{tissue}_to_asl") for tissue in (*TISSUES, "anat")}
    mask_to_anat = _resample("mask_to_anat", "nearestNeighbor")
    for node in to_asl.values():
        workflow.connect([
            (preprocess, node, [("reference", "reference")]),
            (register, node, [("inverse_transforms", "transforms"),
                              ("inverse_invert", "invert_flags")]),
        ])  # fmt: skip
    for tissue in TISSUES:
        if has_anat:
            workflow.connect(inputnode, tissue, to_asl[tissue], "in_file")
        else:
            to_asl[tissue].inputs.in_file = str(getattr(template, tissue))
        workflow.connect(to_asl[tissue], "out_file", tissue_dict, tissue)
    workflow.connect(*anat_image, to_asl["anat"], "in_file")
    workflow.connect([
        (preprocess, mask_to_anat, [("mask", "in_file")]),
        (register, mask_to_anat, [("forward_transforms", "transforms"),
                                  ("forward_invert", "invert_flags")]),
        (preprocess, quantify, [("realigned", "asl_file"), ("mask", "mask_file")]),
        (tissue_dict, quantify, [("tissue_files", "tissue_files")]),
    ])  # fmt: skip
    workflow.connect(*anat_image, mask_to_anat, "reference")
    if run.m0_file is not None:
        workflow.connect(preprocess, "m0", quantify, "m0_file")

    to_std = _template_chain(workflow, inputnode, register, has_anat)
    cbf_std = _resample("cbf_to_template")
    cbf_std.inputs.reference = str(template.t1w)
    workflow.connect([
        (quantify, cbf_std, [("cbf", "in_file")]),
        (to_std, cbf_std, [("transforms", "transforms"), ("invert_flags", "invert_flags")]),
    ])  # fmt: skip
    att_std = None
    if multi_delay:
        att_std = _resample("att_to_template")
        att_std.inputs.reference = str(template.t1w)
        workflow.connect([
            (quantify, att_std, [("att", "in_file")]),
            (to_std, att_std, [("transforms", "transforms"), ("invert_flags", "invert_flags")]),
        ])  # fmt: skip

    qc = pe.Node(ComputeQC(), name="qc")
    workflow.connect([
        (quantify, qc, [("cbf", "cbf")]),
        (preprocess, qc, [("mask", "mask"), ("confounds", "confounds")]),
        (mask_to_anat, qc, [("out_file", "registered_mask")]),
    ])  # fmt: skip
    for tissue in TISSUES:
        workflow.connect(to_asl[tissue], "out_file", qc, tissue)
    workflow.connect(*anat_mask, qc, "target_mask")

    outputs = init_asl_outputs_wf(run, config, template, multi_delay)
    workflow.connect([
        (quantify, outputs, [("cbf", "inputnode.cbf"), ("provenance", "inputnode.provenance")]),
        (cbf_std, outputs, [("out_file", "inputnode.cbf_std")]),
        (preprocess, outputs, [("mask", "inputnode.mask"), ("confounds", "inputnode.confounds")]),
        (qc, outputs, [("out_file", "inputnode.qc")]),
        (register, outputs, [("forward_transforms", "inputnode.registration_transforms")]),
    ])  # fmt: skip
    if multi_delay:
        workflow.connect([
            (quantify, outputs, [("att", "inputnode.att")]),
            (att_std, outputs, [("out_file", "inputnode.att_std")]),
        ])  # fmt: skip

    regions = None
    if atlases:
        regions = _regions(workflow, run, config, template, atlases, has_anat, inputnode,
                           register, quantify, preprocess, to_asl["gm"], to_std, cbf_std,
                           att_std)  # fmt: skip
    summary = pe.Node(
        SummariseRun(
            name=run.name,
            anat_name="T1w" if has_anat else f"{template.space} template",
            methods=methods_parameters(run, config, template, has_anat),
        ),
        name="summary",
    )
    workflow.connect([
        (quantify, summary, [("cbf", "cbf")]),
        (preprocess, summary, [("mask", "mask"), ("confounds", "confounds")]),
        (to_asl["anat"], summary, [("out_file", "anat_in_asl")]),
        (qc, summary, [("out_file", "qc")]),
        (summary, outputnode, [("out_file", "summary")]),
    ])  # fmt: skip
    if multi_delay:
        workflow.connect(quantify, "att", summary, "att")
    if regions is not None:
        summary.inputs.region_atlas = str(atlases[0].image)
        workflow.connect([
            (regions, summary, [("outputnode.tables", "region_tables")]),
            (cbf_std, summary, [("out_file", "cbf_std")]),
        ])  # fmt: skip
    return workflow


def _regions(
    workflow: pe.Workflow,
    run: AslRun,
    config: RunConfig,
    template: TemplateFiles,
    atlases: Sequence[Atlas],
    has_anat: bool,
    inputnode: pe.Node,
    register: pe.Node,
    quantify: pe.Node,
    preprocess: pe.Node,
    gm_in_asl: pe.Node,
    to_std: pe.Node,
    cbf_std: pe.Node,
    att_std: pe.Node | None,
) -> pe.Workflow:
    """Wire the regional tables: template space as is, native space via the inverse chain."""
    to_asl = pe.Node(ConcatTransforms(), name="template_to_asl_chain")
    workflow.connect([
        (register, to_asl, [("inverse_transforms", "first"), ("inverse_invert", "first_invert")]),
    ])  # fmt: skip
    if has_anat:
        to_asl.inputs.second_is_inverse = True
        workflow.connect(inputnode, "std2anat_xfm", to_asl, "second")
    regions = init_regions_wf(run, config, template, atlases, att_std is not None)
    workflow.connect([
        (quantify, regions, [("cbf", "inputnode.cbf")]),
        (cbf_std, regions, [("out_file", "inputnode.cbf_std")]),
        (preprocess, regions, [("mask", "inputnode.mask")]),
        (gm_in_asl, regions, [("out_file", "inputnode.gm")]),
        (to_std, regions, [("transforms", "inputnode.to_std_transforms"),
                           ("invert_flags", "inputnode.to_std_invert")]),
        (to_asl, regions, [("transforms", "inputnode.to_asl_transforms"),
                           ("invert_flags", "inputnode.to_asl_invert")]),
    ])  # fmt: skip
    if att_std is not None:
        workflow.connect([
            (quantify, regions, [("att", "inputnode.att")]),
            (att_std, regions, [("out_file", "inputnode.att_std")]),
        ])  # fmt: skip
    return regions


def _registration(
    workflow: pe.Workflow,
    inputnode: pe.Node,
    preprocess: pe.Node,
    template: TemplateFiles,
    has_anat: bool,
) -> tuple[pe.Node, tuple[Any, str], tuple[Any, str]]:
    """Register the ASL reference to the T1w (rigid) or to the template (affine + SyN).

    Returns the registration node and the (node, field) of the target image and its mask.
    """
    if has_anat:
        register = pe.Node(
            RegisterImages(kind="rigid", initialise="identity"), name="asl_to_t1w", mem_gb=1.0
        )
        workflow.connect([
            (preprocess, register, [("reference", "moving"), ("mask", "moving_mask")]),
            (inputnode, register, [("t1w_brain", "fixed"), ("t1w_mask", "fixed_mask")]),
        ])  # fmt: skip
        return register, (inputnode, "t1w_brain"), (inputnode, "t1w_mask")
    register = pe.Node(
        RegisterImages(kind="syn", fixed=str(template.t1w), fixed_mask=str(template.brain_mask)),
        name="asl_to_template",
        mem_gb=2.0,
    )
    workflow.connect([
        (preprocess, register, [("reference", "moving"), ("mask", "moving_mask")]),
    ])  # fmt: skip
    target = pe.Node(niu.IdentityInterface(fields=["image", "mask"]), name="template_target")
    target.inputs.image = str(template.t1w)
    target.inputs.mask = str(template.brain_mask)
    return register, (target, "image"), (target, "mask")


def _template_chain(
    workflow: pe.Workflow, inputnode: pe.Node, register: pe.Node, has_anat: bool
) -> pe.Node:
    """Compose ASL -> (T1w ->) template into one transform list (one resampling)."""
    chain = pe.Node(ConcatTransforms(), name="asl_to_template_chain")
    if has_anat:
        workflow.connect([
            (inputnode, chain, [("anat2std_xfm", "first")]),
            (register, chain, [("forward_transforms", "second"),
                               ("forward_invert", "second_invert")]),
        ])  # fmt: skip
    else:
        workflow.connect([
            (register, chain, [("forward_transforms", "first"),
                               ("forward_invert", "first_invert")]),
        ])  # fmt: skip
    return chain
