"""Anatomical workflow: bias correction, brain extraction, tissue maps, T1w -> template."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from aslmig.atlas.templates import TemplateFiles
from aslmig.interfaces.anat import BrainExtraction, N4BiasCorrect, SegmentTissues

ANAT_OUTPUTS = [
    "t1w_preproc",
    "t1w_brain",
    "t1w_mask",
    "gm",
    "wm",
    "csf",
    "anat2std_xfm",
    "std2anat_xfm",
]


def init_anat_wf(t1w_file: str, template: TemplateFiles, name: str = "anat_wf") -> pe.Workflow:
    """Build the anatomical workflow of one participant (shared by all its runs).

    Parameters
    ----------
    t1w_file : str
        The T1w image chosen by the input layer.
    template : TemplateFiles
        The template (and its tissue priors) to register to.
    name : str
        Workflow name.

    Returns
    -------
    Workflow
        The anatomical workflow.

    Inputs
    ------
    t1w
        The T1w image (set to ``t1w_file``).

    Outputs
    -------
    t1w_preproc
        Bias-corrected T1w.
    t1w_brain, t1w_mask
        Brain-extracted T1w and its mask.
    gm, wm, csf
        Tissue probability maps.
    anat2std_xfm, std2anat_xfm
        T1w -> template transforms in ANTs order (for resampling T1w-space images into the
        template), and the inverse.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["t1w"]), name="inputnode")
    inputnode.inputs.t1w = t1w_file
    outputnode = pe.Node(niu.IdentityInterface(fields=ANAT_OUTPUTS), name="outputnode")

    n4 = pe.Node(N4BiasCorrect(), name="n4_bias_correct")
    brain = pe.Node(
        BrainExtraction(template_t1w=str(template.t1w), template_mask=str(template.brain_mask)),
        name="brain_extraction",
        mem_gb=2.0,
    )
    segment = pe.Node(
        SegmentTissues(
            template_gm=str(template.gm),
            template_wm=str(template.wm),
            template_csf=str(template.csf),
        ),
        name="segment_tissues",
        mem_gb=1.5,
    )
    workflow.connect([
        (inputnode, n4, [("t1w", "in_file")]),
        (n4, brain, [("out_file", "in_file")]),
        (n4, segment, [("out_file", "in_file")]),
        (brain, segment, [("mask", "mask"), ("std2anat_xfm", "std2anat_xfm")]),
        (n4, outputnode, [("out_file", "t1w_preproc")]),
        (brain, outputnode, [
            ("brain", "t1w_brain"),
            ("mask", "t1w_mask"),
            ("anat2std_xfm", "anat2std_xfm"),
            ("std2anat_xfm", "std2anat_xfm"),
        ]),
        (segment, outputnode, [("gm", "gm"), ("wm", "wm"), ("csf", "csf")]),
    ])  # fmt: skip
    return workflow
