"""Benchmark one participant end to end: wall time and peak memory per stage, on 2 cores.

Data: a 1 mm T1w (182 x 218 x 182) and a 3D PCASL series of 64 x 64 x 24 voxels with a
separate M0 and 10 control/label pairs, both made from the bundled template's tissue maps
(tools/make_example_dataset.py's forward model). Needs ``psutil`` for nipype's resource
monitor (``pip install "aslmig[bench]"``); without it, memory is reported as n/a.

Run: ``python benchmarks/participant.py [--anat-derivatives]``. Prints figures; never fails on
a number. With ``--anat-derivatives`` the participant is run a second time with
``--derivatives anat=``, on an fMRIPrep-like dataset made from the first run's own anatomy
(``tests/fmriprep_like.py``), so that the two tables show what the anatomy stage costs.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import nibabel as nb
import numpy as np

PROJECT = Path(__file__).resolve().parents[1]
os.environ.setdefault("NIPYPE_NO_ET", "1")


def load_module(name: str, path: Path):
    """Import a script of the project by path."""
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def build_dataset(root: Path) -> None:
    """Write a one-participant ASL-BIDS dataset at benchmark size."""
    maker = load_module("make_example_dataset", PROJECT / "tools" / "make_example_dataset.py")
    maker.ROOT = root
    maker.ASL_SHAPE, maker.ASL_VOXEL_MM = (64, 64, 24), 3.5
    maker.T1W_SHAPE, maker.T1W_VOXEL_MM = (182, 218, 182), 1.0
    maker.PAIRS = 10
    maker.ASL_SIDECAR = {**maker.ASL_SIDECAR, "TotalAcquiredPairs": 10}
    root.mkdir(parents=True)
    (root / "dataset_description.json").write_text(
        json.dumps({"Name": "benchmark", "BIDSVersion": "1.10.0", "DatasetType": "raw"})
    )
    rng = np.random.default_rng(1)
    pose = maker.PARTICIPANTS[0][5]
    maker.write_t1w("bench", pose, rng)
    maker.write_session("bench", "1", pose, ictal=False, rng=rng)
    asl = nb.load(root / "sub-bench/ses-1/perf/sub-bench_ses-1_asl.nii.gz")
    print(f"data: T1w {maker.T1W_SHAPE} at 1 mm; ASL {asl.shape} ({maker.PAIRS} pairs) + M0")


STAGES = {
    "prepare_t1w": "anatomy: crop to the head, 2 mm working grid, N4",
    "n4_bias_correct": "anatomy: N4",
    "brain_extraction": "anatomy: brain extraction + T1w->template (affine+SyN)",
    "segment_tissues": "anatomy: tissue segmentation",
    "brain_mask_check": "anatomy: brain mask plausibility check",
    "derivative_anatomy": "anatomy: fMRIPrep derivatives onto the working grid",
    "t1w_to_template": "anatomy: derivative T1w onto the template (mask check)",
    "preprocess": "ASL: motion correction, reference, mask",
    "asl_to_t1w": "ASL: ASL->T1w registration",
    "quantify": "ASL: CBF quantification",
    "qc": "ASL: QC",
    "participant_report": "report",
}


def stage_of(node_name: str) -> str:
    """Group nodes into the stages printed."""
    for key, stage in STAGES.items():
        if node_name.endswith(key):
            return stage
    if "to_asl" in node_name or "to_anat" in node_name or "to_template" in node_name:
        return "ASL: resampling (tissue maps, template space)"
    if node_name.endswith("_to_t1w"):
        return "anatomy: tissue maps onto the original T1w grid"
    return "outputs and bookkeeping"


def run_participant(config, runs, work: Path, monitored: bool) -> float:
    """Run the participant graph once; print wall time and seconds / peak memory per stage."""
    from aslmig.bids.derivatives import init_derivatives
    from aslmig.workflows.base import init_aslmig_wf

    init_derivatives(Path(config.output_dir), Path(config.bids_dir))
    workflow = init_aslmig_wf(config, runs)
    workflow.base_dir = str(work)
    seconds: dict[str, float] = defaultdict(float)
    memory: dict[str, float] = defaultdict(float)

    def record(node, status):
        if status != "end":
            return
        runtime = node.result.runtime
        stage = stage_of(node.fullname)
        seconds[stage] += getattr(runtime, "duration", 0.0) or 0.0
        memory[stage] = max(memory[stage], getattr(runtime, "mem_peak_gb", 0.0) or 0.0)

    start = time.perf_counter()
    workflow.run(plugin="MultiProc", plugin_args={"n_procs": 2, "status_callback": record})
    wall = time.perf_counter() - start
    print(f"{'stage':60s} {'seconds':>8s} {'peak GB':>8s}")
    for stage in sorted(seconds, key=seconds.get, reverse=True):
        peak = f"{memory[stage]:.2f}" if monitored else "n/a"
        print(f"{stage:60s} {seconds[stage]:8.1f} {peak:>8s}")
    print(f"node seconds summed: {sum(seconds.values()):.1f} (stages overlap on 2 processes)")
    return wall


def main() -> None:
    """Run the benchmark and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--anat-derivatives",
        action="store_true",
        help="run again with --derivatives anat= (an fMRIPrep-like dataset of the first run)",
    )
    args = parser.parse_args()
    from nipype import config as nipype_config

    from aslmig.atlas.templates import resolve_template
    from aslmig.bids.layout import collect_runs, open_layout
    from aslmig.config import AnatomyConfig, ExecutionConfig, RunConfig

    work = Path(tempfile.mkdtemp(prefix="aslmig-bench-"))
    bids = work / "bids"
    build_dataset(bids)
    try:
        import psutil  # noqa: F401

        nipype_config.enable_resource_monitor()
        monitored = True
    except ImportError:
        monitored = False
    from nipype import logging as nipype_logging

    nipype_config.update_config(
        {
            "execution": {"crashdump_dir": str(work / "crash")},
            "logging": {"workflow_level": "WARNING", "interface_level": "WARNING"},
        }
    )
    nipype_logging.update_logging(nipype_config)
    config = RunConfig(
        bids_dir=str(bids),
        output_dir=str(work / "out"),
        analysis_level="participant",
        execution=ExecutionConfig(nprocs=2, omp_nthreads=2),
    )
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = "2"
    runs = collect_runs(open_layout(bids))
    wall = run_participant(config, runs, work / "work", monitored)
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024**2
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    print(f"peak RSS: main process {own:.2f} GB, largest worker {children:.2f} GB")
    print(f"participant: {wall:.0f} s wall on 2 cores, peak memory {max(own, children):.2f} GB")
    if args.anat_derivatives:
        fmriprep_like = load_module("fmriprep_like", PROJECT / "tests" / "fmriprep_like.py")
        dataset = fmriprep_like.from_aslmig_run(
            work / "work",
            work / "out",
            "bench",
            resolve_template(),
            work / "fmriprep",
            t1w=runs[0].t1w_file,
        )
        reused = dataclasses.replace(
            config,
            output_dir=str(work / "out_derivatives"),
            anatomy=AnatomyConfig(anat_derivatives=str(dataset)),
        )
        print("\nagain with --derivatives anat= (fMRIPrep-like dataset of the run above):")
        wall = run_participant(reused, runs, work / "work_derivatives", monitored)
        print(f"participant with anatomical derivatives: {wall:.0f} s wall on 2 cores")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
