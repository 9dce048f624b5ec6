"""Spatial wiring of one ASL run: ASL <-> anatomy registration and the template chain."""

from __future__ import annotations

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from aslmig.atlas.templates import TemplateFiles
from aslmig.interfaces.anat import ApplyTransforms, ConcatTransforms, RegisterImages

TISSUES = ("gm", "wm", "csf")
#: Fields of the registration workflow's ``inputnode``.
REGISTRATION_INPUTS = ["reference", "mask", "t1w_brain", "t1w_mask", *TISSUES]
#: Fields of the registration workflow's ``outputnode``.
REGISTRATION_OUTPUTS = [
    "forward_transforms",
    "forward_invert",
    "inverse_transforms",
    "inverse_invert",
    *TISSUES,
    "anat_in_asl",
    "mask_in_anat",
    "target_mask",
]
#: Fields of the template-chain workflow's ``inputnode``.
TEMPLATE_INPUTS = [
    "forward_transforms",
    "forward_invert",
    "inverse_transforms",
    "inverse_invert",
    "anat2std_xfm",
    "std2anat_xfm",
    "cbf",
    "att",
]
#: Fields of the template-chain workflow's ``outputnode``.
TEMPLATE_OUTPUTS = [
    "cbf_std",
    "att_std",
    "to_std_transforms",
    "to_std_invert",
    "to_asl_transforms",
    "to_asl_invert",
]


def resample_node(name: str, interpolation: str = "linear") -> pe.Node:
    """Return an ANTs resampling node (:class:`~aslmig.interfaces.anat.ApplyTransforms`)."""
    return pe.Node(ApplyTransforms(interpolation=interpolation), name=name, mem_gb=0.5)


def init_asl_registration_wf(
    template: TemplateFiles, has_anat: bool, name: str = "registration_wf"
) -> pe.Workflow:
    """Register the ASL reference to the anatomy and bring the anatomy onto the ASL grid.

    With a T1w image: rigid registration of the ASL reference to the brain-extracted T1w,
    starting from the scanner coordinates. Without: affine + SyN registration straight to the
    template, whose tissue maps then stand in for the participant's. The tissue maps and the
    anatomical image are resampled onto the ASL grid (for quantification, QC and the report),
    and the ASL brain mask onto the anatomy (for the registration Dice).

    Parameters
    ----------
    template : TemplateFiles
        The template (target and tissue maps when there is no T1w).
    has_anat : bool
        Whether the participant's anatomical workflow feeds ``inputnode``.
    name : str
        Workflow name.

    Returns
    -------
    Workflow
        The registration workflow.

    Inputs
    ------
    reference, mask
        ASL reference image and brain mask.
    t1w_brain, t1w_mask
        Brain-extracted T1w and its mask (unused without a T1w).
    gm, wm, csf
        Tissue probability maps of the T1w (unused without a T1w).

    Outputs
    -------
    forward_transforms, forward_invert
        ASL -> anatomy (T1w or template) transforms, ANTs order, and their inversion flags.
    inverse_transforms, inverse_invert
        Anatomy -> ASL.
    gm, wm, csf
        Tissue probability maps on the ASL grid.
    anat_in_asl
        The T1w (or template) image on the ASL grid.
    mask_in_anat
        The ASL brain mask on the anatomy's grid.
    target_mask
        The brain mask of the registration target.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=REGISTRATION_INPUTS), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=REGISTRATION_OUTPUTS), name="outputnode")
    target = pe.Node(niu.IdentityInterface(fields=["image", "mask"]), name="target")
    if has_anat:
        register = pe.Node(
            RegisterImages(kind="rigid", initialise="identity"), name="asl_to_t1w", mem_gb=1.0
        )
        workflow.connect([
            (inputnode, target, [("t1w_brain", "image"), ("t1w_mask", "mask")]),
        ])  # fmt: skip
    else:
        register = pe.Node(RegisterImages(kind="syn"), name="asl_to_template", mem_gb=2.0)
        target.inputs.image = str(template.t1w)
        target.inputs.mask = str(template.brain_mask)
    workflow.connect([
        (inputnode, register, [("reference", "moving"), ("mask", "moving_mask")]),
        (target, register, [("image", "fixed"), ("mask", "fixed_mask")]),
        (register, outputnode, [
            ("forward_transforms", "forward_transforms"), ("forward_invert", "forward_invert"),
            ("inverse_transforms", "inverse_transforms"), ("inverse_invert", "inverse_invert"),
        ]),
        (target, outputnode, [("mask", "target_mask")]),
    ])  # fmt: skip

    to_asl = {image: resample_node(f"{image}_to_asl") for image in (*TISSUES, "anat")}
    for image, node in to_asl.items():
        workflow.connect([
            (inputnode, node, [("reference", "reference")]),
            (register, node, [("inverse_transforms", "transforms"),
                              ("inverse_invert", "invert_flags")]),
            (node, outputnode, [("out_file", "anat_in_asl" if image == "anat" else image)]),
        ])  # fmt: skip
    for tissue in TISSUES:
        if has_anat:
            workflow.connect(inputnode, tissue, to_asl[tissue], "in_file")
        else:
            to_asl[tissue].inputs.in_file = str(getattr(template, tissue))
    workflow.connect(target, "image", to_asl["anat"], "in_file")

    mask_to_anat = resample_node("mask_to_anat", "nearestNeighbor")
    workflow.connect([
        (inputnode, mask_to_anat, [("mask", "in_file")]),
        (target, mask_to_anat, [("image", "reference")]),
        (register, mask_to_anat, [("forward_transforms", "transforms"),
                                  ("forward_invert", "invert_flags")]),
        (mask_to_anat, outputnode, [("out_file", "mask_in_anat")]),
    ])  # fmt: skip
    return workflow


def init_template_chain_wf(
    template: TemplateFiles,
    has_anat: bool,
    multi_delay: bool,
    inverse: bool,
    name: str = "template_wf",
) -> pe.Workflow:
    """Compose ASL -> (T1w ->) template into one chain and resample the maps once.

    Parameters
    ----------
    template : TemplateFiles
        The output template (its T1w is the output grid).
    has_anat : bool
        Whether the chain goes through the T1w (``anat2std_xfm`` after the ASL -> T1w
        transform); else the registration already ends in the template.
    multi_delay : bool
        Whether an ATT map is resampled too.
    inverse : bool
        Whether to compose the inverse chain, template -> ASL (for native-space regions).
    name : str
        Workflow name.

    Returns
    -------
    Workflow
        The template-chain workflow.

    Inputs
    ------
    forward_transforms, forward_invert, inverse_transforms, inverse_invert
        The registration's ASL <-> anatomy transforms.
    anat2std_xfm, std2anat_xfm
        T1w <-> template transforms (unused without a T1w).
    cbf, att
        Native-space maps (``att`` for multi-delay data).

    Outputs
    -------
    cbf_std, att_std
        The maps on the template grid (``att_std`` for multi-delay data).
    to_std_transforms, to_std_invert
        ASL -> template chain.
    to_asl_transforms, to_asl_invert
        Template -> ASL chain (when ``inverse``).
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=TEMPLATE_INPUTS), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=TEMPLATE_OUTPUTS), name="outputnode")
    to_std = pe.Node(ConcatTransforms(), name="asl_to_template_chain")
    if has_anat:
        workflow.connect([
            (inputnode, to_std, [("anat2std_xfm", "first"), ("forward_transforms", "second"),
                                 ("forward_invert", "second_invert")]),
        ])  # fmt: skip
    else:
        workflow.connect([
            (inputnode, to_std, [("forward_transforms", "first"),
                                 ("forward_invert", "first_invert")]),
        ])  # fmt: skip
    workflow.connect([
        (to_std, outputnode, [("transforms", "to_std_transforms"),
                              ("invert_flags", "to_std_invert")]),
    ])  # fmt: skip
    for kind in ("cbf", "att") if multi_delay else ("cbf",):
        resample = resample_node(f"{kind}_to_template")
        resample.inputs.reference = str(template.t1w)
        workflow.connect([
            (inputnode, resample, [(kind, "in_file")]),
            (to_std, resample, [("transforms", "transforms"), ("invert_flags", "invert_flags")]),
            (resample, outputnode, [("out_file", f"{kind}_std")]),
        ])  # fmt: skip
    if inverse:
        to_asl = pe.Node(ConcatTransforms(), name="template_to_asl_chain")
        workflow.connect([
            (inputnode, to_asl, [("inverse_transforms", "first"),
                                 ("inverse_invert", "first_invert")]),
            (to_asl, outputnode, [("transforms", "to_asl_transforms"),
                                  ("invert_flags", "to_asl_invert")]),
        ])  # fmt: skip
        if has_anat:
            to_asl.inputs.second_is_inverse = True
            workflow.connect(inputnode, "std2anat_xfm", to_asl, "second")
    return workflow
