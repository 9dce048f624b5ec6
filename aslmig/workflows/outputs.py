"""Output wiring: every derivative of a run or a participant saved with its sidecar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from aslmig.atlas.templates import TemplateFiles
from aslmig.bids.layout import AslRun
from aslmig.bids.sidecars import relative_name
from aslmig.config import RunConfig
from aslmig.interfaces.derivatives import SaveDerivative, SaveTransforms

CBF_UNITS = "mL/100 g/min"
ASL_OUTPUTS = [
    "cbf",
    "cbf_std",
    "att",
    "att_std",
    "mask",
    "confounds",
    "qc",
    "provenance",
    "registration_transforms",
]


def bids_uri(run: AslRun, path: Any) -> str:
    """Name an input file as a BIDS URI relative to the raw dataset."""
    return f"bids:raw:{relative_name(path, run.dataset_root)}"


def run_sources(run: AslRun) -> list[str]:
    """BIDS URIs of the raw files a run's outputs derive from."""
    files = [run.asl_file, run.aslcontext_file, *run.sidecar_files]
    if run.m0_file is not None:
        files.append(run.m0_file)
    return [bids_uri(run, path) for path in files]


def template_record(template: TemplateFiles) -> dict[str, Any]:
    """Describe the output template for sidecars (names, not machine-specific paths)."""
    record = template.to_dict()
    for key in ("t1w", "brain_mask", "gm", "wm", "csf"):
        if key in record:
            record[key] = Path(str(record[key])).name
    return record


def derivative_saver(
    name: str, run: AslRun, config: RunConfig, suffix: str, **inputs: Any
) -> pe.Node:
    """Return a node that saves one output of ``run`` (see :class:`SaveDerivative`)."""
    node = pe.Node(
        SaveDerivative(
            output_dir=config.output_dir,
            entities=dict(run.entities),
            suffix=suffix,
            sources=run_sources(run),
            **inputs,
        ),
        name=name,
        run_without_submitting=True,
    )
    return node


def init_asl_outputs_wf(
    run: AslRun, config: RunConfig, template: TemplateFiles, multi_delay: bool
) -> pe.Workflow:
    """Save the outputs of one run under their DESIGN.md §5 names.

    Parameters
    ----------
    run : AslRun
        The run.
    config : RunConfig
        The run configuration (``output_dir``).
    template : TemplateFiles
        The template of the template-space outputs (its ``space`` names them).
    multi_delay : bool
        Whether ATT maps exist.

    Returns
    -------
    Workflow
        The saving workflow.

    Inputs
    ------
    cbf, cbf_std, att, att_std
        Native and template-space maps (ATT for multi-delay data).
    mask, confounds, qc
        Brain mask, confounds table, QC metrics.
    registration_transforms
        ASL -> T1w (or -> template) transforms.
    provenance
        The quantification's provenance (JSON), merged into the maps' sidecars.

    Outputs
    -------
    None
        The files are written into ``OUTPUT_DIR`` (DESIGN.md §5 names).
    """
    workflow = pe.Workflow(name="outputs_wf")
    inputnode = pe.Node(niu.IdentityInterface(fields=ASL_OUTPUTS), name="inputnode")
    space = {"space": template.space, "metadata": {"Template": template_record(template)}}
    savers = {
        "cbf": derivative_saver("save_cbf", run, config, "cbf", metadata={"Units": CBF_UNITS}),
        "cbf_std": derivative_saver("save_cbf_std", run, config, "cbf", **space),
        "mask": derivative_saver(
            "save_mask", run, config, "mask", description="brain", metadata={"Type": "Brain"}
        ),
        "confounds": derivative_saver(
            "save_confounds",
            run,
            config,
            "timeseries",
            extension=".tsv",
            description="confounds",
            metadata=CONFOUNDS_DESCRIPTION,
        ),
        "qc": derivative_saver(
            "save_qc", run, config, "cbf", extension=".json", description="qc", write_json=False
        ),
    }
    savers["cbf_std"].inputs.metadata = {**space["metadata"], "Units": CBF_UNITS}
    if multi_delay:
        savers["att"] = derivative_saver("save_att", run, config, "att", metadata={"Units": "s"})
        savers["att_std"] = derivative_saver(
            "save_att_std",
            run,
            config,
            "att",
            space=template.space,
            metadata={"Units": "s", "Template": template.to_dict()},
        )
    for field, node in savers.items():
        workflow.connect(inputnode, field, node, "in_file")
        if field in ("cbf", "cbf_std", "att", "att_std"):
            workflow.connect(inputnode, "provenance", node, "metadata_file")
    transforms = pe.Node(
        SaveTransforms(
            output_dir=config.output_dir,
            entities=dict(run.entities),
            source_space="asl",
            target_space=(
                "T1w" if run.t1w_file or config.anatomy.anat_derivatives else template.space
            ),
        ),
        name="save_registration",
        run_without_submitting=True,
    )
    workflow.connect(inputnode, "registration_transforms", transforms, "transforms")
    return workflow


CONFOUNDS_DESCRIPTION = {
    "trans_x": {"Description": "translation along x", "Units": "mm"},
    "trans_y": {"Description": "translation along y", "Units": "mm"},
    "trans_z": {"Description": "translation along z", "Units": "mm"},
    "rot_x": {"Description": "rotation about x", "Units": "rad"},
    "rot_y": {"Description": "rotation about y", "Units": "rad"},
    "rot_z": {"Description": "rotation about z", "Units": "rad"},
    "framewise_displacement": {
        "Description": "framewise displacement (Power et al. 2012), 50 mm head radius",
        "Units": "mm",
    },
    "volume_type": {"Description": "aslcontext volume type"},
}


def init_anat_outputs_wf(
    t1w_file: str,
    subject: str,
    config: RunConfig,
    template: TemplateFiles,
    name: str,
    sources: list[str] | None = None,
) -> pe.Workflow:
    """Save a participant's anatomical outputs: brain mask, tissue maps, T1w -> template.

    Parameters
    ----------
    t1w_file : str
        The raw T1w (its entities name the outputs).
    subject : str
        Participant label.
    config : RunConfig
        The run configuration (``output_dir``).
    template : TemplateFiles
        The template the transforms lead to.
    name : str
        Workflow name.
    sources : list of str, optional
        The ``Sources`` of the sidecars (default: the raw T1w as a BIDS URI).

    Returns
    -------
    Workflow
        The saving workflow.

    Inputs
    ------
    t1w_mask, gm, wm, csf
        Brain mask and tissue probability maps of the T1w (``anat/..._desc-brain_mask``,
        ``..._label-GM_probseg`` ...).
    anat2std_xfm
        T1w -> template transforms (``..._from-T1w_to-<space>_mode-image_xfm``).

    Outputs
    -------
    None
        The files are written into ``OUTPUT_DIR``.
    """
    workflow = pe.Workflow(name=name)
    inputnode = pe.Node(
        niu.IdentityInterface(fields=["t1w_mask", "gm", "wm", "csf", "anat2std_xfm"]),
        name="inputnode",
    )
    entities = anat_entities(t1w_file, subject)
    common = {
        "output_dir": config.output_dir,
        "entities": entities,
        "sources": sources or [f"bids:raw:{relative_name(t1w_file, config.bids_dir)}"],
    }
    mask = pe.Node(
        SaveDerivative(
            suffix="mask",
            description="brain",
            datatype="anat",
            metadata={"Type": "Brain"},
            **common,
        ),
        name="save_t1w_mask",
        run_without_submitting=True,
    )
    workflow.connect(inputnode, "t1w_mask", mask, "in_file")
    for tissue in ("gm", "wm", "csf"):
        node = pe.Node(
            SaveDerivative(suffix="probseg", label=tissue.upper(), datatype="anat", **common),
            name=f"save_{tissue}",
            run_without_submitting=True,
        )
        workflow.connect(inputnode, tissue, node, "in_file")
    transforms = pe.Node(
        SaveTransforms(
            output_dir=config.output_dir,
            entities=entities,
            source_space="T1w",
            target_space=template.space,
            datatype="anat",
        ),
        name="save_t1w_to_template",
        run_without_submitting=True,
    )
    workflow.connect(inputnode, "anat2std_xfm", transforms, "transforms")
    return workflow


def anat_entities(t1w_file: str, subject: str) -> dict[str, str]:
    """Entities of a T1w file name (subject, session, acquisition, run ...)."""
    names = {"ses": "session", "acq": "acquisition", "rec": "reconstruction", "run": "run"}
    entities = {"subject": subject}
    for part in Path(t1w_file).name.split(".")[0].split("_")[:-1]:
        key, _, value = part.partition("-")
        if key in names:
            entities[names[key]] = value
    return entities
