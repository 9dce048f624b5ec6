"""Find a participant's anatomy in an fMRIPrep/sMRIPrep derivatives dataset (``--derivatives``).

The files are found by their BIDS-derivative names, strictly (a glob over
``sub-<label>/[ses-<label>/]anat/`` and a name rule, not a pybids index: a derivatives index of
a whole fMRIPrep dataset takes minutes and reads every functional sidecar, and only six names
per participant are needed)::

    sub-<l>[_ses-<s>][_acq-<a>][_ce-<c>][_rec-<r>][_run-<n>]_desc-preproc_T1w.nii.gz
    <same prefix>_desc-brain_mask.nii.gz
    <same prefix>_label-{GM,WM,CSF}_probseg.nii.gz
    <same prefix>_from-T1w_to-<Template>_mode-image_xfm.h5     (ANTs composite)
    <same prefix>_from-<Template>_to-T1w_mode-image_xfm.h5

Every problem (no dataset description, not a derivative, no or two T1w for the participant, a
missing file, no transform to aslmig's template, a map on another grid than the T1w) is an
:class:`~aslmig.errors.InputError` raised before anything is written.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nb

from aslmig.bids.images import same_grid
from aslmig.errors import InputError, quote, reading

#: Entities fMRIPrep/sMRIPrep may keep in the name of the participant's preprocessed T1w.
_T1W_NAME = re.compile(
    r"^sub-(?P<subject>[a-zA-Z0-9]+)(?:_ses-(?P<session>[a-zA-Z0-9]+))?"
    r"(?:_acq-[a-zA-Z0-9]+)?(?:_ce-[a-zA-Z0-9]+)?(?:_rec-[a-zA-Z0-9]+)?(?:_run-[a-zA-Z0-9]+)?"
    r"_desc-preproc_T1w\.nii\.gz$"
)
_T1W_SUFFIX = "_desc-preproc_T1w.nii.gz"
TISSUE_LABELS = {"gm": "GM", "wm": "WM", "csf": "CSF"}


@dataclass(frozen=True)
class AnatDerivatives:
    """The anatomy of one participant, taken from a derivatives dataset.

    Attributes
    ----------
    dataset : Path
        Root of the derivatives dataset.
    generated_by : str
        ``GeneratedBy`` name and version of its ``dataset_description.json``.
    t1w : Path
        The preprocessed (bias-corrected) T1w, the anatomical reference.
    mask : Path
        Its brain mask.
    gm, wm, csf : Path
        Tissue probability maps on the T1w grid.
    to_template, from_template : Path
        T1w -> template and template -> T1w ANTs composite transforms (``.h5``).
    """

    dataset: Path
    generated_by: str
    t1w: Path
    mask: Path
    gm: Path
    wm: Path
    csf: Path
    to_template: Path
    from_template: Path

    @property
    def files(self) -> tuple[Path, ...]:
        """Every file taken from the dataset (the sources of the anatomical outputs)."""
        return (self.t1w, self.mask, self.gm, self.wm, self.csf, self.to_template)

    def uris(self) -> list[str]:
        """BIDS URIs of :attr:`files` in the ``anat`` dataset (``bids:anat:sub-X/...``)."""
        return [f"bids:anat:{path.relative_to(self.dataset).as_posix()}" for path in self.files]

    def describe(self) -> str:
        """One line for the plan and the methods: where the anatomy comes from."""
        return f"{self.generated_by} derivatives in {self.dataset}"


def generated_by(dataset: Path) -> str:
    """Check that ``dataset`` is a BIDS derivatives dataset and name what generated it.

    Parameters
    ----------
    dataset : Path
        The folder given to ``--derivatives anat=``.

    Returns
    -------
    str
        ``"<Name> <Version>"`` of the first ``GeneratedBy`` entry (``"unknown pipeline"``
        when the dataset does not say).
    """
    option = "--derivatives anat="
    if not dataset.is_dir():
        raise InputError(f"{option}{dataset}", "is not a folder", "give the fMRIPrep output folder")
    description = dataset / "dataset_description.json"
    if not description.is_file():
        raise InputError(
            description,
            "is missing; the folder is not a BIDS dataset",
            "give the folder holding fMRIPrep's dataset_description.json",
        )
    with reading(description):
        try:
            content = json.loads(description.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as error:
            raise InputError(description, f"is not valid JSON: {error}") from None
    if not isinstance(content, dict) or content.get("DatasetType") != "derivative":
        kind = content.get("DatasetType") if isinstance(content, dict) else None
        raise InputError(
            description,
            f"DatasetType is {quote(kind)}, not 'derivative'",
            "give an fMRIPrep/sMRIPrep output dataset",
        )
    pipelines = content.get("GeneratedBy")
    if not isinstance(pipelines, list) or not pipelines or not isinstance(pipelines[0], dict):
        return "unknown pipeline"
    first = pipelines[0]
    return " ".join(str(first[key]) for key in ("Name", "Version") if first.get(key))


def find_anat_derivatives(
    dataset: str | Path, subject: str, session: str | None, space: str
) -> AnatDerivatives:
    """Find one participant's anatomy in an fMRIPrep/sMRIPrep derivatives dataset.

    A T1w of the run's session wins; else the participant-level T1w (fMRIPrep's anatomy of
    several sessions has no ``ses-`` entity).

    Parameters
    ----------
    dataset : str or Path
        The derivatives dataset.
    subject : str
        Participant label.
    session : str or None
        Session label of the ASL run.
    space : str
        The template aslmig resamples into (the transforms must lead there).

    Returns
    -------
    AnatDerivatives
        The files found.
    """
    dataset = Path(dataset).absolute()
    pipeline = generated_by(dataset)
    t1w = _preproc_t1w(dataset, subject, session)
    prefix = str(t1w)[: -len(_T1W_SUFFIX)]
    found = {
        "mask": Path(prefix + "_desc-brain_mask.nii.gz"),
        **{
            tissue: Path(f"{prefix}_label-{label}_probseg.nii.gz")
            for tissue, label in TISSUE_LABELS.items()
        },
    }
    with reading(t1w):
        t1w_image = nb.load(t1w)
    for path in found.values():
        if not path.is_file():
            raise InputError(
                path,
                f"is missing: {t1w.name} has no {path.name[len(Path(prefix).name) + 1 :]}",
                "give an fMRIPrep/sMRIPrep dataset with its anatomical outputs",
            )
        _same_grid(path, t1w_image, t1w.name)
    to_template = Path(f"{prefix}_from-T1w_to-{space}_mode-image_xfm.h5")
    from_template = Path(f"{prefix}_from-{space}_to-T1w_mode-image_xfm.h5")
    for path in (to_template, from_template):
        if not path.is_file():
            raise InputError(path, *_missing_transform(Path(prefix), space))
    return AnatDerivatives(
        dataset=dataset,
        generated_by=pipeline,
        t1w=t1w,
        to_template=to_template,
        from_template=from_template,
        **found,
    )


def _preproc_t1w(dataset: Path, subject: str, session: str | None) -> Path:
    """Find the participant's ``desc-preproc_T1w`` (no ``space-``) for the run's session."""
    folder = dataset / f"sub-{subject}"
    candidates = sorted(
        path
        for path in [*folder.glob("anat/*"), *folder.glob("ses-*/anat/*")]
        if (match := _T1W_NAME.match(path.name)) and match["subject"] == subject
    )
    sessions = {path: _T1W_NAME.match(path.name)["session"] for path in candidates}
    by_session = [path for path in candidates if sessions[path] == session]
    chosen = by_session or [path for path in candidates if sessions[path] is None]
    if not chosen:
        where = f"sub-{subject}" + (f" ses-{session}" if session else "")
        raise InputError(
            dataset,
            f"holds no sub-{subject}[_ses-...]{_T1W_SUFFIX} for {where} (entity subject, "
            "without space-)",
            "run fMRIPrep/sMRIPrep on this participant, or leave out --derivatives",
        )
    if len(chosen) > 1:
        names = ", ".join(path.relative_to(dataset).as_posix() for path in chosen)
        raise InputError(
            dataset,
            f"holds {len(chosen)} preprocessed T1w for sub-{subject}: {names}",
            "keep one (fMRIPrep merges a participant's T1w into one)",
        )
    return chosen[0]


def _missing_transform(prefix: Path, space: str) -> tuple[str, str]:
    """Problem and fix for a missing T1w <-> template transform (naming what is there)."""
    others = sorted(
        {
            match.group(1)
            for path in prefix.parent.glob(f"{prefix.name}_from-T1w_to-*_mode-image_xfm.*")
            if (match := re.search(r"_to-([a-zA-Z0-9]+)_mode", path.name))
        }
    )
    there = f"only to {', '.join(others)}" if others else "none"
    return (
        f"is missing: entity to-{space} (aslmig's template); T1w -> template transforms found: "
        f"{there}",
        f"rerun fMRIPrep with --output-spaces {space}, or give aslmig that template",
    )


def _same_grid(path: Path, t1w: nb.spatialimages.SpatialImage, t1w_name: str) -> None:
    """Refuse a map whose grid (shape, affine) differs from the T1w's."""
    with reading(path):
        image = nb.load(path)
    if not same_grid(image, t1w):
        raise InputError(
            path,
            f"grid {image.shape[:3]} differs from that of {t1w_name} {t1w.shape[:3]} "
            "(shape or affine)",
            "give the maps fMRIPrep wrote in T1w space (no space- entity)",
        )
