"""Write an fMRIPrep-like anatomical derivatives dataset (for ``--derivatives anat=`` tests)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nb
import numpy as np

GENERATED_BY = {"Name": "fMRIPrep", "Version": "24.1.1"}


def fmriprep_name(subject: str, session: str | None, rest: str) -> str:
    """``sub-X[/ses-Y]/anat/sub-X[_ses-Y]_<rest>`` (the fMRIPrep layout)."""
    folder = f"sub-{subject}" + (f"/ses-{session}" if session else "")
    prefix = f"sub-{subject}" + (f"_ses-{session}" if session else "")
    return f"{folder}/anat/{prefix}_{rest}"


def write_description(root: Path, dataset_type: str = "derivative") -> None:
    """Write the dataset's ``dataset_description.json``."""
    root.mkdir(parents=True, exist_ok=True)
    description = {
        "Name": "fMRIPrep outputs",
        "BIDSVersion": "1.9.0",
        "DatasetType": dataset_type,
        "GeneratedBy": [GENERATED_BY],
    }
    (root / "dataset_description.json").write_text(json.dumps(description))


def write_anatomy(
    root: Path,
    subject: str,
    files: dict[str, Path],
    space: str,
    session: str | None = None,
) -> dict[str, Path]:
    """Copy anatomical files into ``root`` under their fMRIPrep names.

    Parameters
    ----------
    root : Path
        The derivatives dataset (its description is written when missing).
    subject, session : str
        Labels.
    files : dict
        ``t1w``, ``mask``, ``gm``, ``wm``, ``csf``, ``to_template``, ``from_template``
        (a missing key leaves that file out).
    space : str
        The template named by the transforms.

    Returns
    -------
    dict
        The same keys -> the copies.
    """
    if not (root / "dataset_description.json").exists():
        write_description(root)
    names = {
        "t1w": "desc-preproc_T1w.nii.gz",
        "mask": "desc-brain_mask.nii.gz",
        "gm": "label-GM_probseg.nii.gz",
        "wm": "label-WM_probseg.nii.gz",
        "csf": "label-CSF_probseg.nii.gz",
        "to_template": f"from-T1w_to-{space}_mode-image_xfm.h5",
        "from_template": f"from-{space}_to-T1w_mode-image_xfm.h5",
    }
    copies = {}
    for key, source in files.items():
        copies[key] = root / fmriprep_name(subject, session, names[key])
        copies[key].parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source, copies[key])
    return copies


def tiny_anatomy(folder: Path, shape=(6, 6, 6)) -> dict[str, Path]:
    """Small images on one grid and placeholder transforms (enough for finding and planning)."""
    folder.mkdir(parents=True, exist_ok=True)
    affine = np.diag([2.0, 2.0, 2.0, 1.0])
    files = {}
    for key in ("t1w", "mask", "gm", "wm", "csf"):
        files[key] = folder / f"{key}.nii.gz"
        nb.Nifti1Image(np.ones(shape, np.float32), affine).to_filename(files[key])
    for key in ("to_template", "from_template"):
        files[key] = folder / f"{key}.h5"
        files[key].write_bytes(b"placeholder")
    return files


def pack_composite(
    transforms: list[str], fixed: Path, moving: Path, out_file: Path, inverse: bool = False
) -> Path:
    """Write an ANTs transform chain as one composite ``.h5`` (what fMRIPrep writes).

    antspyx has no writer for a composite transform; ``antsRegistration`` with the chain as
    its initial transform, zero iterations and ``write_composite_transform`` writes the chain
    unchanged (checked: resampling through the ``.h5`` and through the chain differ by 0.0).

    Parameters
    ----------
    transforms : list of str
        The chain in ANTs order (moving -> fixed).
    fixed, moving : Path
        The images the chain maps between.
    out_file : Path
        The ``.h5`` to write.
    inverse : bool
        Whether ``transforms`` is an inverse chain (its affines are applied inverted).
    """
    import ants

    initial = [
        f"[{path},1]" if inverse and str(path).endswith(".mat") else str(path)
        for path in transforms
    ]
    prefix = str(out_file.with_name(out_file.name.replace(".h5", "_")))
    try:
        ants.registration(
            ants.image_read(str(fixed)),
            ants.image_read(str(moving)),
            "Rigid",
            initial_transform=initial,
            outprefix=prefix,
            write_composite_transform=True,
            aff_iterations=(0,),
            aff_shrink_factors=(1,),
            aff_smoothing_sigmas=(0,),
        )
    except Exception:  # noqa: BLE001 - antspyx raises a bare Exception here
        # antspyx then looks for the inverse composite, which ANTs does not write for a chain
        # holding a displacement field; the forward composite is complete
        pass
    shutil.move(prefix + "Composite.h5", out_file)
    return out_file


def from_aslmig_run(
    work: Path, output: Path, subject: str, template, root: Path, t1w: Path | None = None
) -> Path:
    """Make an fMRIPrep-like dataset of one participant from aslmig's own anatomy.

    The brain mask and tissue maps are aslmig's saved outputs (``OUTPUT_DIR/sub-X/anat/``);
    the preprocessed T1w is aslmig's bias-corrected working image and the transforms are the
    brain-extraction step's chains, each packed into a composite ``.h5``
    (:func:`pack_composite`), all read from the nipype work directory of that run. The
    working image must be on the T1w's grid (a T1w of 2 mm voxels or coarser, as asldro's).

    Parameters
    ----------
    work, output : Path
        Work directory and OUTPUT_DIR of an aslmig participant run (single T1w).
    subject : str
        Participant label.
    template : TemplateFiles
        The template of the run (its T1w is the transforms' template grid).
    root : Path
        Where to write the dataset.
    t1w : Path, optional
        The preprocessed T1w to write (default: aslmig's bias-corrected working image, which
        is on the T1w grid only for a T1w of 2 mm voxels or coarser; give the raw T1w else).

    Returns
    -------
    Path
        ``root``.
    """
    from nipype.utils.filemanip import loadpkl

    anat_wf = work / "aslmig_wf" / f"single_subject_{subject}_wf" / "anat_0_wf"
    if t1w is None:
        prepared = loadpkl(anat_wf / "prepare_t1w" / "result_prepare_t1w.pklz").outputs
        t1w = Path(prepared.out_file)
    brain = loadpkl(anat_wf / "brain_extraction" / "result_brain_extraction.pklz").outputs

    def saved(suffix: str) -> Path:  # the participant's only T1w, with or without ses-
        (path,) = (output / f"sub-{subject}").glob(f"**/anat/sub-{subject}*_{suffix}")
        return path

    packed = root.parent / f"{root.name}_transforms"
    packed.mkdir(parents=True, exist_ok=True)
    space_t1w = Path(template.t1w)
    files = {
        "t1w": t1w,
        "mask": saved("desc-brain_mask.nii.gz"),
        **{
            tissue: saved(f"label-{tissue.upper()}_probseg.nii.gz")
            for tissue in ("gm", "wm", "csf")
        },  # fmt: skip
        "to_template": pack_composite(brain.anat2std_xfm, space_t1w, t1w, packed / "to.h5"),
        "from_template": pack_composite(
            brain.std2anat_xfm, t1w, space_t1w, packed / "from.h5", inverse=True
        ),
    }
    write_anatomy(root, subject, files, template.space)
    return root
