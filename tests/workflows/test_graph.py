"""The participant graph built from pybids queries: structure, not execution."""

from __future__ import annotations

import dataclasses

import pytest

from aslmig.bids.layout import collect_runs, open_layout
from aslmig.cli.demo import example_dataset
from aslmig.config import AnatomyConfig, RunConfig
from aslmig.workflows.base import init_aslmig_wf


@pytest.fixture(scope="module")
def runs():
    return collect_runs(open_layout(example_dataset()))


def config(tmp_path) -> RunConfig:
    return RunConfig(
        bids_dir=str(example_dataset()),
        output_dir=str(tmp_path / "out"),
        analysis_level="participant",
    )


def node_names(workflow) -> set[str]:
    return {f"aslmig_wf.{name}" for name in workflow.list_node_names()}


def test_one_subject_workflow_per_participant_and_one_anat_per_t1w(runs, tmp_path):
    workflow = init_aslmig_wf(config(tmp_path), runs)
    names = node_names(workflow)
    for subject in ("hc01", "mwa01"):
        prefix = f"aslmig_wf.single_subject_{subject}_wf"
        assert f"{prefix}.participant_report" in names
        anat = {name for name in names if name.startswith(f"{prefix}.anat_")}
        assert {name.rsplit(".", 1)[1] for name in anat} >= {
            "prepare_t1w",
            "brain_extraction",
            "segment_tissues",
        }
    mwa = {name for name in names if "single_subject_mwa01_wf.asl_" in name}
    assert {name.split(".")[2] for name in mwa} == {"asl_ses1_wf", "asl_ses2_wf"}
    # both sessions share the participant's single T1w: one anatomical workflow
    anat_wfs = {name.split(".")[2] for name in names if "single_subject_mwa01_wf.anat_" in name}
    assert anat_wfs == {"anat_0_wf", "anat_0_outputs_wf"}


def test_every_run_resamples_to_template_once(runs, tmp_path):
    workflow = init_aslmig_wf(config(tmp_path), runs)
    names = node_names(workflow)
    cbf_to_template = [name for name in names if name.endswith(".cbf_to_template")]
    assert len(cbf_to_template) == len(runs)


def test_without_t1w_the_asl_reference_goes_to_the_template(runs, tmp_path):
    no_t1w = [dataclasses.replace(run, t1w_file=None) for run in runs]
    workflow = init_aslmig_wf(config(tmp_path), no_t1w)
    names = node_names(workflow)
    assert not any("_wf.anat_0_wf." in name for name in names)
    assert sum(name.endswith(".asl_to_template") for name in names) == len(runs)


def test_anatomical_derivatives_replace_the_anatomy_stage(runs, tmp_path):
    from fmriprep_like import tiny_anatomy, write_anatomy

    from aslmig.atlas.templates import resolve_template

    files = tiny_anatomy(tmp_path / "source")
    for subject in ("hc01", "mwa01"):
        write_anatomy(tmp_path / "fmriprep", subject, files, resolve_template().space)
    derivatives = dataclasses.replace(
        config(tmp_path), anatomy=AnatomyConfig(anat_derivatives=str(tmp_path / "fmriprep"))
    )
    names = node_names(init_aslmig_wf(derivatives, runs))
    steps = {name.rsplit(".", 1)[1] for name in names if "_wf.anat_0_wf." in name}
    assert steps == {"derivative_anatomy", "t1w_to_template", "brain_mask_check", "outputnode"}
    own_anatomy = ("prepare_t1w", "brain_extraction", "segment_tissues", "gm_to_t1w")
    assert not any(name.endswith(own_anatomy) for name in names)
    assert not any(name.endswith((".asl_to_template", ".n4", ".syn")) for name in names)
    assert sum(name.endswith(".asl_to_t1w") for name in names) == len(runs)
    # a run without a raw T1w gets the derivative's anatomy too
    no_t1w = [dataclasses.replace(run, t1w_file=None) for run in runs]
    names = node_names(init_aslmig_wf(derivatives, no_t1w))
    assert sum(name.endswith(".asl_to_t1w") for name in names) == len(runs)
