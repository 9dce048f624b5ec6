"""Regional tables of one run: every atlas, in template and native space, CBF (and ATT)."""

from __future__ import annotations

from collections.abc import Sequence

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from aslmig.atlas.rois import Atlas
from aslmig.atlas.templates import TemplateFiles
from aslmig.bids.layout import AslRun
from aslmig.config import RunConfig
from aslmig.interfaces.anat import ApplyTransforms
from aslmig.interfaces.regions import RegionalStatistics, atlas_record
from aslmig.workflows.outputs import derivative_saver

REGION_INPUTS = [
    "cbf",
    "cbf_replicates",
    "cbf_std",
    "att",
    "att_std",
    "mask",
    "gm",
    "to_std_transforms",
    "to_std_invert",
    "to_asl_transforms",
    "to_asl_invert",
]


def _resample(name: str, interpolation: str) -> pe.Node:
    return pe.Node(ApplyTransforms(interpolation=interpolation), name=name, mem_gb=0.5)


def init_regions_wf(
    run: AslRun,
    config: RunConfig,
    template: TemplateFiles,
    atlases: Sequence[Atlas],
    multi_delay: bool,
    name: str = "regions_wf",
    replicates: bool = False,
) -> pe.Workflow:
    """Summarise a run's CBF (and ATT) maps over each atlas, in template and native space.

    Template space: the atlas as is; the ASL brain mask (nearest neighbour) and the
    participant's grey-matter map on the ASL grid (linear) are brought to the template with
    the run's ASL -> template chain. Native space: each atlas level is brought to the ASL grid
    through the inverse chain with nearest-neighbour interpolation.

    Parameters
    ----------
    run : AslRun
        The run (its entities name the outputs).
    config : RunConfig
        Output folder and the ``[regions]`` settings.
    template : TemplateFiles
        The template of the template-space maps.
    atlases : sequence of Atlas
        The ROI sets, on the template's grid.
    multi_delay : bool
        Whether ATT maps exist.
    name : str
        Workflow name.
    replicates : bool
        Whether ``inputnode.cbf_replicates`` (CBF with each repetition left out) is
        connected: the CBF tables then carry standard errors and asymmetry intervals.

    Returns
    -------
    Workflow
        The regions workflow.

    Inputs
    ------
    cbf, att
        Native-space maps (``att`` for multi-delay data).
    cbf_replicates
        Native CBF with each repetition left out in turn (4-D; when ``replicates``).
    cbf_std, att_std
        Template-space maps.
    mask, gm
        ASL brain mask and grey-matter probability, on the ASL grid.
    to_std_transforms, to_std_invert
        ASL -> template chain.
    to_asl_transforms, to_asl_invert
        Template -> ASL chain (brings the atlases to the ASL grid).

    Outputs
    -------
    tables
        The saved template-space CBF tables, one per atlas, in atlas order.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(niu.IdentityInterface(fields=REGION_INPUTS), name="inputnode")
    outputnode = pe.Node(niu.IdentityInterface(fields=["tables"]), name="outputnode")
    to_template = {
        "mask": _resample("mask_to_template", "nearestNeighbor"),
        "gm": _resample("gm_to_template", "linear"),
    }
    for field, node in to_template.items():
        node.inputs.reference = str(template.t1w)
        workflow.connect([
            (inputnode, node, [(field, "in_file"), ("to_std_transforms", "transforms"),
                               ("to_std_invert", "invert_flags")]),
        ])  # fmt: skip
    parameters = ("cbf", "att") if multi_delay else ("cbf",)
    collect = pe.Node(niu.Merge(len(atlases)), name="collect_tables")
    for position, atlas in enumerate(atlases, start=1):
        record = atlas_record(atlas)
        native_labels = _resample(f"{atlas.name.lower()}_to_asl", "nearestNeighbor")
        native_labels.inputs.in_file = record["image"]
        workflow.connect([
            (inputnode, native_labels, [("cbf", "reference"), ("to_asl_transforms", "transforms"),
                                        ("to_asl_invert", "invert_flags")]),
        ])  # fmt: skip
        for parameter in parameters:
            label = f"{atlas.name.lower()}_{parameter}"
            stats = pe.Node(
                RegionalStatistics(
                    atlas=record, parameter=parameter, min_coverage=config.regions.min_coverage
                ),
                name=label,
            )
            workflow.connect([
                (inputnode, stats, [(f"{parameter}_std", "values_std"),
                                    (parameter, "values_native"),
                                    ("mask", "valid_native"), ("gm", "gm_native")]),
                (to_template["mask"], stats, [("out_file", "valid_std")]),
                (to_template["gm"], stats, [("out_file", "gm_std")]),
                (native_labels, stats, [("out_file", "labels_native")]),
            ])  # fmt: skip
            if replicates and parameter == "cbf":
                workflow.connect(inputnode, "cbf_replicates", stats, "replicates_native")
            for space, key in ((template.space, "std"), ("", "native")):
                save = derivative_saver(
                    f"save_{label}_{key}",
                    run,
                    config,
                    parameter,
                    extension=".tsv",
                    space=space,
                    atlas=atlas.name,
                )
                workflow.connect([
                    (stats, save, [(f"table_{key}", "in_file"),
                                   (f"metadata_{key}", "metadata_file")]),
                ])  # fmt: skip
                if key == "std" and parameter == "cbf":
                    workflow.connect(save, "out_file", collect, f"in{position}")
    workflow.connect(collect, "out", outputnode, "tables")
    return workflow
