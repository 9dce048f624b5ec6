"""A failing participant does not stop the others; crashes are summarised; reruns use the cache."""

from __future__ import annotations

import shutil

import nibabel as nb
import numpy as np
import pytest

from aslmig.cli.demo import example_dataset
from aslmig.cli.run import main

pytestmark = pytest.mark.slow


def test_one_failing_participant(tmp_path, capsys):
    bids = tmp_path / "bids"
    shutil.copytree(example_dataset(), bids)
    for anat in bids.glob("sub-*/ses-*/anat"):  # without T1w: faster, still the full ASL path
        shutil.rmtree(anat)
    # sub-mwa01 ses-1: a negative M0 scan passes input validation but cannot calibrate CBF
    m0_file = bids / "sub-mwa01/ses-1/perf/sub-mwa01_ses-1_m0scan.nii.gz"
    m0 = nb.load(m0_file)
    nb.Nifti1Image(-np.abs(m0.get_fdata()) - 1.0, m0.affine).to_filename(m0_file)
    output, work = tmp_path / "out", tmp_path / "work"
    args = [str(bids), str(output), "participant", "-w", str(work), "--nprocs", "2"]

    assert main(args) == 1
    captured = capsys.readouterr()
    assert "some steps failed" in captured.err
    assert "crash-" in captured.err and "(details: " in captured.err
    assert list((output / "logs" / "crash").glob("crash-*.txt"))
    # the other runs finished and wrote their outputs and reports
    assert (output / "sub-hc01.html").is_file()
    assert (output / "sub-mwa01/ses-2/perf/sub-mwa01_ses-2_cbf.nii.gz").is_file()
    assert not (output / "sub-mwa01/ses-1/perf/sub-mwa01_ses-1_cbf.nii.gz").exists()
    assert not (output / "sub-mwa01.html").exists()
    leftovers = [
        path
        for path in output.rglob(".*")
        if path.name != ".bidsignore" and path.name != ".aslmig.lock"
    ]
    assert leftovers == []

    # a rerun of the healthy participant reuses nipype's cache: no node runs again
    results = sorted(work.rglob("single_subject_hc01_wf/**/result_*.pklz"))
    stamps = {path: path.stat().st_mtime_ns for path in results}
    assert main([*args, "--participant-label", "hc01"]) == 0
    assert {path: path.stat().st_mtime_ns for path in results} == stamps
