"""Finding a participant's anatomy in an fMRIPrep-like derivatives dataset."""

from __future__ import annotations

import nibabel as nb
import numpy as np
import pytest
from fmriprep_like import tiny_anatomy, write_anatomy, write_description

from aslmig.bids.anat_derivatives import find_anat_derivatives, generated_by
from aslmig.errors import InputError

SPACE = "MNI152NLin2009cAsym"


@pytest.fixture
def files(tmp_path):
    return tiny_anatomy(tmp_path / "source")


def test_finds_the_participant_files_by_their_derivative_names(tmp_path, files):
    root = tmp_path / "fmriprep"
    copies = write_anatomy(root, "01", files, SPACE)
    found = find_anat_derivatives(root, "01", None, SPACE)
    assert found.t1w == copies["t1w"]
    assert found.mask == copies["mask"]
    assert (found.gm, found.wm, found.csf) == (copies["gm"], copies["wm"], copies["csf"])
    assert found.to_template == copies["to_template"]
    assert found.from_template == copies["from_template"]
    assert found.generated_by == "fMRIPrep 24.1.1"
    assert found.uris()[0] == "bids:anat:sub-01/anat/sub-01_desc-preproc_T1w.nii.gz"


def test_a_session_t1w_wins_and_the_participant_t1w_serves_other_sessions(tmp_path, files):
    root = tmp_path / "fmriprep"
    subject_level = write_anatomy(root, "01", files, SPACE)
    session_level = write_anatomy(root, "01", files, SPACE, session="2")
    assert find_anat_derivatives(root, "01", "2", SPACE).t1w == session_level["t1w"]
    assert find_anat_derivatives(root, "01", "1", SPACE).t1w == subject_level["t1w"]


def test_a_space_entity_t1w_is_not_the_reference(tmp_path, files):
    root = tmp_path / "fmriprep"
    copies = write_anatomy(root, "01", files, SPACE)
    other = copies["t1w"].with_name(f"sub-01_space-{SPACE}_desc-preproc_T1w.nii.gz")
    other.write_bytes(copies["t1w"].read_bytes())
    assert find_anat_derivatives(root, "01", None, SPACE).t1w == copies["t1w"]


def test_no_t1w_for_the_participant(tmp_path, files):
    root = tmp_path / "fmriprep"
    write_anatomy(root, "01", files, SPACE)
    with pytest.raises(InputError, match=r"no sub-02\[_ses-\.\.\.\]_desc-preproc_T1w.*sub-02"):
        find_anat_derivatives(root, "02", None, SPACE)


def test_two_t1w_for_one_participant_are_ambiguous(tmp_path, files):
    root = tmp_path / "fmriprep"
    copies = write_anatomy(root, "01", files, SPACE)
    second = copies["t1w"].with_name("sub-01_run-2_desc-preproc_T1w.nii.gz")
    second.write_bytes(copies["t1w"].read_bytes())
    with pytest.raises(InputError, match="holds 2 preprocessed T1w for sub-01.*keep one"):
        find_anat_derivatives(root, "01", None, SPACE)


@pytest.mark.parametrize("missing", ["mask", "gm", "csf"])
def test_a_missing_map_is_named(tmp_path, files, missing):
    root = tmp_path / "fmriprep"
    write_anatomy(root, "01", {k: v for k, v in files.items() if k != missing}, SPACE)
    with pytest.raises(InputError) as error:
        find_anat_derivatives(root, "01", None, SPACE)
    assert "is missing" in error.value.message
    assert {"mask": "desc-brain_mask", "gm": "label-GM", "csf": "label-CSF"}[missing] in (
        error.value.message
    )


def test_a_transform_to_another_template_is_refused(tmp_path, files):
    root = tmp_path / "fmriprep"
    write_anatomy(root, "01", files, "MNI152NLin6Asym")
    with pytest.raises(InputError) as error:
        find_anat_derivatives(root, "01", None, SPACE)
    message = error.value.message
    assert f"to-{SPACE}" in message
    assert "only to MNI152NLin6Asym" in message
    assert f"--output-spaces {SPACE}" in message


def test_a_map_on_another_grid_is_refused(tmp_path, files):
    root = tmp_path / "fmriprep"
    copies = write_anatomy(root, "01", files, SPACE)
    nb.Nifti1Image(np.ones((5, 6, 6), np.float32), np.eye(4)).to_filename(copies["wm"])
    with pytest.raises(InputError, match="label-WM_probseg.nii.gz: grid .* differs"):
        find_anat_derivatives(root, "01", None, SPACE)


def test_the_dataset_must_be_a_derivative(tmp_path):
    with pytest.raises(InputError, match="dataset_description.json: is missing"):
        generated_by(tmp_path)
    write_description(tmp_path, dataset_type="raw")
    with pytest.raises(InputError, match="DatasetType is 'raw', not 'derivative'"):
        generated_by(tmp_path)
