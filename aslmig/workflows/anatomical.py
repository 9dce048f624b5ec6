"""Anatomical workflow: crop and bias correction, brain extraction, tissue maps, T1w -> template.

Or, with ``--derivatives anat=PATH``, the same outputs taken from an fMRIPrep/sMRIPrep dataset
(:func:`init_anat_derivatives_wf`).
"""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from aslmig.atlas.templates import TemplateFiles
from aslmig.bids.anat_derivatives import AnatDerivatives
from aslmig.interfaces.anat import (
    ApplyTransforms,
    BrainExtraction,
    CheckBrainMask,
    PrepareT1w,
    SegmentTissues,
    WorkingAnatomy,
)

TISSUES = ("gm", "wm", "csf")
#: Outputs on the 2 mm working grid (the "T1w space" of the ASL workflow).
ANAT_OUTPUTS = [
    "t1w_preproc",
    "t1w_brain",
    "t1w_mask",
    "gm",
    "wm",
    "csf",
    "anat2std_xfm",
    "std2anat_xfm",
    "anat_qc",
]
#: Outputs on the grid of the original T1w, for the derivatives.
SAVED_OUTPUTS = ["t1w_mask_t1w", "gm_t1w", "wm_t1w", "csf_t1w", "anat2std_xfm"]


def init_anat_wf(
    t1w_file: str, template: TemplateFiles, skull_strip: str = "auto", name: str = "anat_wf"
) -> pe.Workflow:
    """Build the anatomical workflow of one participant (shared by all its runs).

    The steps run on a 2 mm working grid made from the T1w cropped to the head
    (:mod:`aslmig.anat.prepare`); the mask and tissue maps saved as derivatives are brought
    back onto the original T1w grid.

    Parameters
    ----------
    t1w_file : str
        The T1w image chosen by the input layer.
    template : TemplateFiles
        The template (and its tissue priors) to register to.
    skull_strip : {"auto", "skip", "force"}
        ``--skull-strip-t1w``.
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
        Bias-corrected T1w on the working grid.
    t1w_brain, t1w_mask
        Brain-extracted T1w and its mask (working grid).
    gm, wm, csf
        Tissue probability maps (working grid).
    anat2std_xfm, std2anat_xfm
        T1w -> template transforms in ANTs order (for resampling T1w-space images into the
        template), and the inverse.
    anat_qc
        Plausibility of the brain mask (JSON, ``t1w_*`` keys and ``t1w_warnings``).
    t1w_mask_t1w, gm_t1w, wm_t1w, csf_t1w
        Brain mask and tissue maps on the grid of the original T1w (saved as derivatives).
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=["t1w"]), name="inputnode")
    inputnode.inputs.t1w = t1w_file
    fields = list(dict.fromkeys(ANAT_OUTPUTS + SAVED_OUTPUTS))
    outputnode = pe.Node(niu.IdentityInterface(fields=fields), name="outputnode")
    templates = {"template_t1w": str(template.t1w), "template_mask": str(template.brain_mask)}

    prepare = pe.Node(PrepareT1w(skull_strip=skull_strip), name="prepare_t1w", mem_gb=1.0)
    brain = pe.Node(BrainExtraction(**templates), name="brain_extraction", mem_gb=1.5)
    check = pe.Node(CheckBrainMask(**templates), name="brain_mask_check", mem_gb=1.0)
    priors = {f"template_{tissue}": str(getattr(template, tissue)) for tissue in TISSUES}
    segment = pe.Node(
        SegmentTissues(**priors),
        name="segment_tissues",
        mem_gb=1.0,
    )
    workflow.connect([
        (inputnode, prepare, [("t1w", "in_file")]),
        (inputnode, brain, [("t1w", "full_grid")]),
        (prepare, brain, [("out_file", "in_file"), ("skull_stripped", "skull_stripped")]),
        (inputnode, check, [("t1w", "t1w")]),
        (brain, check, [("full_mask", "mask"), ("warped", "warped")]),
        (prepare, segment, [("out_file", "in_file")]),
        (brain, segment, [("mask", "mask"), ("std2anat_xfm", "std2anat_xfm")]),
        (prepare, outputnode, [("out_file", "t1w_preproc")]),
        (brain, outputnode, [
            ("brain", "t1w_brain"),
            ("mask", "t1w_mask"),
            ("full_mask", "t1w_mask_t1w"),
            ("anat2std_xfm", "anat2std_xfm"),
            ("std2anat_xfm", "std2anat_xfm"),
        ]),
        (check, outputnode, [("out_file", "anat_qc")]),
    ])  # fmt: skip
    for tissue in TISSUES:
        to_t1w = pe.Node(
            ApplyTransforms(transforms=[], interpolation="linear"),
            name=f"{tissue}_to_t1w",
            mem_gb=0.5,
        )
        workflow.connect([
            (segment, outputnode, [(tissue, tissue)]),
            (segment, to_t1w, [(tissue, "in_file")]),
            (inputnode, to_t1w, [("t1w", "reference")]),
            (to_t1w, outputnode, [("out_file", f"{tissue}_t1w")]),
        ])  # fmt: skip
    return workflow


def init_anat_derivatives_wf(
    derivatives: AnatDerivatives, template: TemplateFiles, name: str = "anat_wf"
) -> pe.Workflow:
    """Provide the outputs of :func:`init_anat_wf` from an fMRIPrep/sMRIPrep dataset.

    No N4, brain extraction, segmentation or registration runs: the derivative's images are
    put on the working grid (:func:`aslmig.anat.derivatives.working_anatomy`) and its
    composite transforms are used as they are. The brain-mask plausibility check still runs
    on the given mask (the T1w is brought onto the template through the given transform).

    Parameters
    ----------
    derivatives : AnatDerivatives
        The participant's files in the derivatives dataset.
    template : TemplateFiles
        The template the transforms lead to.
    name : str
        Workflow name.

    Returns
    -------
    Workflow
        The workflow.

    Inputs
    ------
    None
        Every file comes from ``derivatives``.

    Outputs
    -------
    t1w_preproc, t1w_brain, t1w_mask, gm, wm, csf
        The derivative's T1w, brain and maps on the working grid.
    anat2std_xfm, std2anat_xfm
        The derivative's composite transforms (one ``.h5`` each).
    anat_qc
        Plausibility of the given brain mask (as in :func:`init_anat_wf`).
    t1w_mask_t1w, gm_t1w, wm_t1w, csf_t1w
        The derivative's own mask and maps (its T1w grid), for the derivatives.
    """
    workflow = pe.Workflow(name=name)
    fields = list(dict.fromkeys(ANAT_OUTPUTS + SAVED_OUTPUTS))
    outputnode = pe.Node(niu.IdentityInterface(fields=fields), name="outputnode")
    outputnode.inputs.anat2std_xfm = [str(derivatives.to_template)]
    outputnode.inputs.std2anat_xfm = [str(derivatives.from_template)]
    outputnode.inputs.t1w_mask_t1w = str(derivatives.mask)
    for tissue in TISSUES:
        setattr(outputnode.inputs, f"{tissue}_t1w", str(getattr(derivatives, tissue)))
    working = pe.Node(
        WorkingAnatomy(
            t1w=str(derivatives.t1w),
            mask=str(derivatives.mask),
            **{tissue: str(getattr(derivatives, tissue)) for tissue in TISSUES},
        ),
        name="derivative_anatomy",
        mem_gb=1.0,
    )
    templates = {"template_t1w": str(template.t1w), "template_mask": str(template.brain_mask)}
    to_template = pe.Node(
        ApplyTransforms(
            in_file=str(derivatives.t1w),
            reference=str(template.t1w),
            transforms=[str(derivatives.to_template)],
        ),
        name="t1w_to_template",
        mem_gb=1.0,
    )
    check = pe.Node(
        CheckBrainMask(t1w=str(derivatives.t1w), mask=str(derivatives.mask), **templates),
        name="brain_mask_check",
        mem_gb=1.0,
    )
    workflow.connect([
        (to_template, check, [("out_file", "warped")]),
        (check, outputnode, [("out_file", "anat_qc")]),
        (working, outputnode, [("t1w", "t1w_preproc"), ("brain", "t1w_brain"),
                               ("mask", "t1w_mask"), *((tissue, tissue) for tissue in TISSUES)]),
    ])  # fmt: skip
    return workflow
