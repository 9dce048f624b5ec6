"""The participant graph over the acquisition and configuration choices (built, not run).

As fMRIPrep's workflow tests do, every combination of single/multi-delay, M0 type, T1w
present/absent, atlases on/off and one/two sessions is built; each graph must be complete
(every mandatory input of every node set or connected, every pass-through field that is
read fed) and wired for its case.
"""

from __future__ import annotations

import dataclasses
import itertools

import pytest
from nipype.interfaces.base import isdefined
from nipype.interfaces.utility import IdentityInterface

from aslmig.atlas.rois import resolve_atlases
from aslmig.atlas.templates import resolve_template
from aslmig.bids.layout import AslRun, collect_runs, open_layout
from aslmig.cli.demo import example_dataset
from aslmig.config import RegionsConfig, RunConfig
from aslmig.workflows.base import init_single_subject_wf

M0_TYPES = ("Separate", "Included", "Estimate", "Absent")
CASES = list(itertools.product((False, True), M0_TYPES, (True, False), (True, False), (1, 2)))


@pytest.fixture(scope="module")
def example_runs() -> list[AslRun]:
    runs = collect_runs(open_layout(example_dataset()))
    return [run for run in runs if run.subject == "mwa01"]  # two sessions, one shared T1w


@pytest.fixture(scope="module")
def template():
    return resolve_template()


@pytest.fixture(scope="module")
def atlases(template, tmp_path_factory):
    return resolve_atlases(("MigraineASL",), None, template, tmp_path_factory.mktemp("atlases"))


def variant(run: AslRun, multi_delay: bool, m0_type: str, t1w: bool) -> AslRun:
    """The example run changed to the wanted delays, M0 type and T1w availability."""
    meta = run.metadata
    changes: dict = {"m0_type": m0_type, "m0_estimate": None}
    if multi_delay:
        plds = (1.0, 1.0, 1.5, 1.5, 2.0, 2.0, 2.5, 2.5)
        changes["post_labeling_delay"] = plds[: meta.n_volumes]
    if m0_type == "Included":
        changes["volume_types"] = ("m0scan", "m0scan", *meta.volume_types[2:])
    if m0_type == "Estimate":
        changes["m0_estimate"] = 1000.0
    separate = m0_type == "Separate"
    return dataclasses.replace(
        run,
        metadata=dataclasses.replace(meta, **changes),
        m0_file=run.m0_file if separate else None,
        m0_metadata=run.m0_metadata if separate else None,
        t1w_file=run.t1w_file if t1w else None,
    )


def unconnected_mandatory_inputs(workflow) -> list[str]:
    """Mandatory inputs that are neither set nor connected, as ``node.input``."""
    graph = workflow._create_flat_graph()
    missing = []
    for node in graph.nodes:
        connected = {
            destination
            for _, _, data in graph.in_edges(node, data=True)
            for _, destination in data["connect"]
        }
        for name in node.inputs.traits(mandatory=True):
            if not isdefined(getattr(node.inputs, name)) and name not in connected:
                missing.append(f"{node.fullname}.{name}")
    return missing


def unfed_identity_fields(workflow) -> list[str]:
    """Fields of identity nodes (inputnode/outputnode) that are read but never set or fed.

    nipype checks port names when connecting, but not that a pass-through field that a
    downstream node reads receives a value.
    """
    graph = workflow._create_flat_graph()
    unfed = []
    for node in graph.nodes:
        if not isinstance(node.interface, IdentityInterface):
            continue
        read = {source for _, _, data in graph.out_edges(node, data=True)
                for source, _ in data["connect"]}  # fmt: skip
        fed = {destination for _, _, data in graph.in_edges(node, data=True)
               for _, destination in data["connect"]}  # fmt: skip
        unfed += [f"{node.fullname}.{name}" for name in sorted(read - fed)
                  if not isdefined(getattr(node.inputs, name))]  # fmt: skip
    return unfed


def leaf_names(workflow) -> set[str]:
    return set(workflow.list_node_names())


@pytest.mark.parametrize(("multi_delay", "m0_type", "t1w", "with_atlases", "sessions"), CASES)
def test_graph_is_complete_and_wired_for_its_case(
    example_runs, template, atlases, tmp_path, multi_delay, m0_type, t1w, with_atlases, sessions
):
    runs = [variant(run, multi_delay, m0_type, t1w) for run in example_runs[:sessions]]
    config = RunConfig(
        bids_dir=str(example_dataset()),
        output_dir=str(tmp_path),
        analysis_level="participant",
        regions=RegionsConfig(atlases=("MigraineASL",) if with_atlases else ()),
    )
    workflow = init_single_subject_wf(
        "mwa01", runs, config, template, atlases if with_atlases else ()
    )
    assert unconnected_mandatory_inputs(workflow) == []
    assert unfed_identity_fields(workflow) == []

    names = leaf_names(workflow)
    runs_wfs = {name.split(".")[0] for name in names if name.startswith("asl_")}
    assert runs_wfs == {f"asl_ses{n}_wf" for n in range(1, sessions + 1)}
    anat_wfs = {name.split(".")[0] for name in names if name.startswith("anat_")}
    assert anat_wfs == ({"anat_0_wf", "anat_0_outputs_wf"} if t1w else set())
    for number in range(1, sessions + 1):
        run_nodes = {name.split(".", 1)[1] for name in names
                     if name.startswith(f"asl_ses{number}_wf.")}  # fmt: skip
        leaves = {name.rsplit(".", 1)[-1] for name in run_nodes}
        assert ("att_to_template" in leaves) == multi_delay
        assert ("save_att" in leaves) == multi_delay
        assert any(name.startswith("regions_wf.") for name in run_nodes) == with_atlases
        assert ("asl_to_t1w" in leaves) == t1w and ("asl_to_template" in leaves) != t1w
        asl_wf = workflow.get_node(f"asl_ses{number}_wf")
        preprocess = next(node for node in asl_wf._graph.nodes if node.name == "preprocess")
        assert isdefined(preprocess.inputs.m0_file) == (m0_type == "Separate")
        m0_wired = [
            data
            for source, _, data in asl_wf._graph.out_edges(preprocess, data=True)
            if ("m0", "m0_file") in data["connect"]
        ]
        assert bool(m0_wired) == (m0_type == "Separate")


def test_the_completeness_checks_find_what_they_look_for(tmp_path):
    from nipype.interfaces import utility as niu
    from nipype.pipeline import engine as pe

    from aslmig.interfaces.anat import ApplyTransforms

    workflow = pe.Workflow(name="check_wf")
    source = pe.Node(niu.IdentityInterface(fields=["image"]), name="source")
    source.inputs.image = "t1w.nii.gz"
    resample = pe.Node(ApplyTransforms(), name="resample")
    workflow.connect(source, "image", resample, "in_file")
    assert "check_wf.resample.reference" in unconnected_mandatory_inputs(workflow)
    assert "check_wf.resample.in_file" not in unconnected_mandatory_inputs(workflow)
    passing = pe.Node(niu.IdentityInterface(fields=["fed", "unfed"]), name="outputnode")
    workflow.connect(resample, "out_file", passing, "fed")
    sink = pe.Node(niu.IdentityInterface(fields=["a", "b"]), name="sink")
    workflow.connect([(passing, sink, [("fed", "a"), ("unfed", "b")])])
    assert unfed_identity_fields(workflow) == ["check_wf.outputnode.unfed"]
    passing.inputs.unfed = "set"
    assert unfed_identity_fields(workflow) == []
