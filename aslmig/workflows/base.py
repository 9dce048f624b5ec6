"""Top-level graph: one sub-workflow per participant, built from the validated runs."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby
from pathlib import Path

from nipype.interfaces import utility as niu
from nipype.pipeline import engine as pe

from aslmig.atlas.rois import Atlas, resolve_atlases
from aslmig.atlas.templates import TemplateFiles, resolve_template
from aslmig.bids.anat_derivatives import AnatDerivatives, find_anat_derivatives
from aslmig.bids.derivatives import ATLAS_DIR
from aslmig.bids.layout import AslRun
from aslmig.config import RunConfig
from aslmig.interfaces.reports import ParticipantReport
from aslmig.workflows.anatomical import (
    ANAT_OUTPUTS,
    SAVED_OUTPUTS,
    init_anat_derivatives_wf,
    init_anat_wf,
)
from aslmig.workflows.asl import init_asl_wf
from aslmig.workflows.outputs import init_anat_outputs_wf

#: Folder of OUTPUT_DIR where atlases built for the run (spheres, other templates) are kept.


def init_aslmig_wf(config: RunConfig, runs: list[AslRun]) -> pe.Workflow:
    """Build the participant-level graph for all selected runs.

    Parameters
    ----------
    config : RunConfig
        The run configuration.
    runs : list of AslRun
        Validated runs, sorted by participant.

    Returns
    -------
    Workflow
        ``aslmig_wf`` with one ``single_subject_<label>_wf`` per participant.

    Inputs
    ------
    None
        Every file comes from the runs; the results are written into ``OUTPUT_DIR``.

    Outputs
    -------
    None
        See the Outputs page of the documentation.
    """
    workflow = pe.Workflow(name="aslmig_wf")
    template = resolve_template()
    atlases = resolve_atlases(
        config.regions.atlases,
        config.regions.roi_spheres,
        template,
        build_dir=Path(config.output_dir) / ATLAS_DIR,
    )
    for subject, subject_runs in groupby(runs, key=lambda run: run.subject):
        workflow.add_nodes([
            init_single_subject_wf(subject, list(subject_runs), config, template, atlases)
        ])  # fmt: skip
    return workflow


def init_single_subject_wf(
    subject: str,
    runs: list[AslRun],
    config: RunConfig,
    template: TemplateFiles,
    atlases: Sequence[Atlas] = (),
) -> pe.Workflow:
    """Build one participant's workflow: one anatomical workflow shared by its runs.

    Parameters
    ----------
    subject : str
        Participant label.
    runs : list of AslRun
        The participant's runs (all sessions).
    config : RunConfig
        The run configuration.
    template : TemplateFiles
        The output template.
    atlases : sequence of Atlas
        ROI sets for the regional tables (on the template's grid).

    Returns
    -------
    Workflow
        ``single_subject_<label>_wf``.

    Inputs
    ------
    None
        Every file comes from the runs.

    Outputs
    -------
    None
        The participant's derivatives and ``OUTPUT_DIR/sub-<label>.html`` are written by its
        nodes.
    """
    workflow = pe.Workflow(name=f"single_subject_{subject}_wf")
    anatomy = {run.name: anatomy_of(run, config, template) for run in runs}
    anat_wfs = {}
    for index, source in enumerate(sorted(set(filter(None, anatomy.values())), key=str)):
        name = f"anat_{index}_wf"
        if isinstance(source, AnatDerivatives):
            anat_wfs[source] = init_anat_derivatives_wf(source, template, name=name)
            t1w_file, sources = str(source.t1w), source.uris()
        else:
            skull_strip = config.anatomy.skull_strip_t1w
            anat_wfs[source] = init_anat_wf(str(source), template, skull_strip, name=name)
            t1w_file, sources = str(source), None
        outputs = init_anat_outputs_wf(
            t1w_file, subject, config, template, f"anat_{index}_outputs_wf", sources=sources
        )
        workflow.connect([
            (anat_wfs[source], outputs, [
                (f"outputnode.{field}", f"inputnode.{field.removesuffix('_t1w')}")
                for field in SAVED_OUTPUTS
            ]),
        ])  # fmt: skip
    report = pe.Node(
        ParticipantReport(subject=subject, output_dir=config.output_dir),
        name="participant_report",
        run_without_submitting=True,
    )
    merge = pe.Node(niu.Merge(len(runs)), name="collect_summaries")
    for index, run in enumerate(runs, start=1):
        has_anat = anatomy[run.name] is not None
        asl_wf = init_asl_wf(run, config, template, has_anat, atlases=atlases)
        if has_anat:
            anat_wf = anat_wfs[anatomy[run.name]]
            workflow.connect([
                (anat_wf, asl_wf, [(f"outputnode.{field}", f"inputnode.{field}")
                                   for field in ANAT_OUTPUTS]),
            ])  # fmt: skip
        workflow.connect(asl_wf, "outputnode.summary", merge, f"in{index}")
    workflow.connect(merge, "out", report, "summaries")
    return workflow


def anatomy_of(
    run: AslRun, config: RunConfig, template: TemplateFiles
) -> AnatDerivatives | Path | None:
    """Return a run's anatomy: from ``--derivatives anat=``, else its raw T1w (or none).

    Parameters
    ----------
    run : AslRun
        The run.
    config : RunConfig
        The run configuration (``anatomy.anat_derivatives``).
    template : TemplateFiles
        The output template (the derivative's transforms must lead to it).

    Returns
    -------
    AnatDerivatives, Path or None
        The derivative files, the raw T1w, or None when the run has no anatomy.
    """
    if config.anatomy.anat_derivatives is not None:
        return find_anat_derivatives(
            config.anatomy.anat_derivatives, run.subject, run.session, template.space
        )
    return run.t1w_file
