#!/usr/bin/env python3
"""Build aslmig's embedded template bundle (``aslmig/data/templateflow/``).

aslmig prefers TemplateFlow's ``MNI152NLin2009cAsym`` templates, but it must work offline when
they are not cached.  This developer tool builds a small fallback in TemplateFlow layout from the
ICBM 2009a nonlinear *symmetric* template files that the ``nilearn`` PyPI package ships::

    nilearn/datasets/data/mni_icbm152_{t1,gm,wm}_tal_nlin_sym_09a_converted.nii.gz

(1 mm, uint8 scaled to 0-255, on the original ICBM grid of 197 x 233 x 189 voxels).  The bundle
is TemplateFlow's ``MNI152NLin2009aSym`` space -- *not* ``MNI152NLin2009cAsym`` -- and is named
so.  nilearn is a development tool here, not a runtime dependency of aslmig.  Run, from the
project root::

    /work/venv/bin/python tools/build_template_bundle.py           # (re)write the bundle
    /work/venv/bin/python tools/build_template_bundle.py --check   # compare, write nothing

What is written (2 mm, on TemplateFlow's res-02 grid of MNI152NLin2009cAsym: 97 x 115 x 97
voxels, origin (-96.5, -132.5, -78.5) mm; each 2 mm voxel is exactly 2 x 2 x 2 source voxels):

* ``desc-brain_T1w``: 2 x 2 x 2 block mean of nilearn's T1w, which nilearn distributes
  *skull-stripped* (hence ``desc-brain``); uint16 block sums with ``scl_slope`` 1/8, so the
  values are the exact means in the source's 0-255 units.
* ``label-GM_probseg``, ``label-WM_probseg``: 2 x 2 x 2 block mean of the source probabilities
  (value/255); uint16 block sums with ``scl_slope`` 1/2040 (exact, no re-quantisation).
* ``desc-brain_mask`` (derived, nilearn ships none): at 1 mm, GM + WM > 0.2, then a binary
  closing with a 6-connected structuring element of radius 2 voxels (2 mm) and a 3-D hole
  fill (so the ventricles are inside); at 2 mm, voxels at least half covered by that 1 mm mask,
  hole-filled again.
* ``label-CSF_probseg`` (derived, nilearn ships none): at 1 mm, CSF = M * (1 - GM - WM) with M
  the 1 mm brain mask above, clipped to [0, 1]; then the 2 x 2 x 2 block mean.  It holds the
  ventricles and the sulcal CSF inside the mask; CSF outside the brain mask is not represented.

Block means (box filter) are the exact partial-volume fractions of the 1 mm source, which is the
anti-aliasing a probability map needs.  The output is deterministic (gzip without time stamps).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import importlib.util
import json
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
from scipy import ndimage

SPACE = "MNI152NLin2009aSym"
RES = "02"
ZOOM_MM = 2
FACTOR = 2  # source voxels per output voxel along each axis
GRID_SHAPE = (97, 115, 97)
GRID_ORIGIN = (-96.5, -132.5, -78.5)
SOURCE_NAMES = {
    "t1": "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
    "gm": "mni_icbm152_gm_tal_nlin_sym_09a_converted.nii.gz",
    "wm": "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
}
SOURCE_MAX = 255  # uint8 full scale of the source files
BRAIN_THRESHOLD = 0.2  # GM + WM probability above which a 1 mm voxel is brain
CLOSING_RADIUS = 2  # voxels (1 mm) of the 6-connected structuring element
MASK_FRACTION = 0.5  # fraction of a 2 mm voxel covered by the 1 mm mask
NIFTI_CODE_MNI = 4
BUNDLE_DIR = Path(__file__).resolve().parents[1] / "aslmig" / "data" / "templateflow"
ORIGINAL_URL = "https://www.bic.mni.mcgill.ca/~vfonov/icbm/2009/mni_icbm152_nlin_sym_09a_nifti.zip"

# Verbatim (line breaks as published) from TemplateFlow's tpl-MNI152NLin2009aSym/LICENSE, the
# McConnell Brain Imaging Centre notice that accompanies the ICBM 2009 templates.  nilearn's own
# documentation lists the licence of these files as "unknown" and ships no notice.
ICBM_NOTICE = """\
Copyright (C) 1993-2004 Louis Collins, McConnell Brain
Imaging Centre, Montreal Neurological Institute, McGill University.
Permission to use, copy, modify, and distribute this software and
its documentation for any purpose and without fee is hereby granted,
provided that the above copyright notice appear in all copies.  The
authors and McGill University make no representations about the
suitability of this software for any purpose.  It is provided "as
is" without express or implied warranty.  The authors are not
responsible for any data loss, equipment damage, property loss, or
injury to subjects or patients resulting from the use or misuse of
this software package.
"""

REFERENCES = [
    "https://doi.org/10.1016/j.neuroimage.2010.07.033",
    "https://doi.org/10.1016/S1053-8119(09)70884-5",
    "http://nist.mni.mcgill.ca/?p=904",
    "https://doi.org/10.1007/3-540-48714-X_16",
]
CITATIONS = [
    "Fonov VS, Evans AC, Botteron K, Almli CR, McKinstry RC, Collins DL. Unbiased average "
    "age-appropriate atlases for pediatric studies. NeuroImage 2011;54(1):313-327. "
    "doi:10.1016/j.neuroimage.2010.07.033",
    "Fonov VS, Evans AC, McKinstry RC, Almli CR, Collins DL. Unbiased nonlinear average "
    "age-appropriate brain templates from birth to adulthood. NeuroImage 2009;47(Suppl 1):S102. "
    "doi:10.1016/S1053-8119(09)70884-5",
]


def nilearn_data_dir() -> Path:
    """Return nilearn's ``datasets/data`` folder without importing nilearn.

    Returns
    -------
    Path
        The folder holding the ICBM 2009a files.

    Raises
    ------
    SystemExit
        When nilearn is not installed.
    """
    spec = importlib.util.find_spec("nilearn")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("nilearn is not installed: pip install nilearn (a build-time tool only)")
    return Path(next(iter(spec.submodule_search_locations))) / "datasets" / "data"


def nilearn_version() -> str:
    """Return the installed nilearn version (from its metadata, without importing it)."""
    from importlib.metadata import version

    return version("nilearn")


def output_name(entities: str) -> str:
    """Return the TemplateFlow file name of one bundle image, e.g. ``'label-GM_probseg'``."""
    return f"tpl-{SPACE}_res-{RES}_{entities}.nii.gz"


def sha256(path: Path) -> str:
    """Return the hex SHA-256 digest of a file."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def grid_affine() -> np.ndarray:
    """Return the 2 mm output affine (RAS, axis-aligned)."""
    affine = np.diag([float(ZOOM_MM)] * 3 + [1.0])
    affine[:3, 3] = GRID_ORIGIN
    return affine


def fine_grid_start() -> np.ndarray:
    """Return the world coordinate (mm) of the first 1 mm voxel centre under the 2 mm grid."""
    half_span = (FACTOR - 1) / 2.0
    return np.asarray(GRID_ORIGIN) - half_span


def load_source(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Load one nilearn source image as raw uint8 values and check its grid.

    Parameters
    ----------
    path : Path
        Source NIfTI file.

    Returns
    -------
    data : ndarray of uint8
        The stored values (0-255).
    affine : ndarray
        Its 4 x 4 affine.
    """
    image = nib.load(path)
    data = np.asanyarray(image.dataobj)
    if data.dtype != np.uint8:
        raise SystemExit(f"{path}: expected uint8 data, found {data.dtype}")
    affine = image.affine
    if not np.allclose(affine[:3, :3], np.eye(3)) or not np.allclose(
        affine[:3, 3], np.round(affine[:3, 3])
    ):
        raise SystemExit(f"{path}: expected a 1 mm axis-aligned grid on integer mm, got {affine}")
    return data, affine


def to_fine_grid(data: np.ndarray, affine: np.ndarray) -> np.ndarray:
    """Place source data on the 1 mm grid that the 2 mm grid subdivides (zero pad / crop).

    Parameters
    ----------
    data : ndarray
        Source values on a 1 mm grid.
    affine : ndarray
        Source affine (identity rotation, integer origin).

    Returns
    -------
    ndarray
        Array of shape ``FACTOR * GRID_SHAPE`` in the source dtype.
    """
    fine_shape = tuple(FACTOR * n for n in GRID_SHAPE)
    offset = np.round(fine_grid_start() - affine[:3, 3]).astype(int)  # fine index 0 -> source
    out = np.zeros(fine_shape, dtype=data.dtype)
    dst, src = [], []
    for axis in range(3):
        lo = max(0, -offset[axis])
        hi = min(fine_shape[axis], data.shape[axis] - offset[axis])
        dst.append(slice(lo, hi))
        src.append(slice(lo + offset[axis], hi + offset[axis]))
    out[tuple(dst)] = data[tuple(src)]
    return out


def block_sum(fine: np.ndarray) -> np.ndarray:
    """Sum ``FACTOR**3`` blocks of a fine-grid array into the 2 mm grid (int64)."""
    nx, ny, nz = GRID_SHAPE
    blocks = fine.astype(np.int64).reshape(nx, FACTOR, ny, FACTOR, nz, FACTOR)
    return blocks.sum(axis=(1, 3, 5))


def brain_mask_fine(gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """Derive the 1 mm brain mask: GM + WM > threshold, closed, holes filled.

    Parameters
    ----------
    gm, wm : ndarray of uint8
        Source probabilities times 255, on the fine grid.

    Returns
    -------
    ndarray of bool
        The 1 mm brain mask (ventricles inside).
    """
    brain = (gm.astype(np.int64) + wm) > BRAIN_THRESHOLD * SOURCE_MAX
    element = ndimage.iterate_structure(ndimage.generate_binary_structure(3, 1), CLOSING_RADIUS)
    pad = CLOSING_RADIUS + 1
    closed = ndimage.binary_closing(np.pad(brain, pad), structure=element)
    closed = closed[pad:-pad, pad:-pad, pad:-pad]
    return ndimage.binary_fill_holes(closed)


def csf_fine(mask: np.ndarray, gm: np.ndarray, wm: np.ndarray) -> np.ndarray:
    """Derive 1 mm CSF (times 255): mask * (1 - GM - WM), clipped to [0, 1]."""
    rest = SOURCE_MAX - gm.astype(np.int64) - wm
    return np.where(mask, np.clip(rest, 0, SOURCE_MAX), 0)


def brain_mask_coarse(mask: np.ndarray) -> np.ndarray:
    """Reduce the 1 mm mask to 2 mm: at least ``MASK_FRACTION`` covered, holes filled."""
    covered = block_sum(mask.astype(np.uint8)) >= MASK_FRACTION * FACTOR**3
    return ndimage.binary_fill_holes(covered)


def nifti_bytes(data: np.ndarray, slope: float, description: str) -> bytes:
    """Return deterministic gzip-compressed NIfTI-1 bytes of a 2 mm bundle image.

    Parameters
    ----------
    data : ndarray
        Stored integer values (uint8 or uint16).
    slope : float
        ``scl_slope`` (1.0 for none).
    description : str
        Header ``descrip`` (at most 80 characters).

    Returns
    -------
    bytes
        The ``.nii.gz`` content (gzip time stamp zero).
    """
    affine = grid_affine()
    image = nib.Nifti1Image(data, affine)
    header = image.header
    header.set_data_dtype(data.dtype)
    header.set_xyzt_units("mm")
    header["descrip"] = description[:80].encode()
    image.set_qform(affine, code=NIFTI_CODE_MNI)
    image.set_sform(affine, code=NIFTI_CODE_MNI)
    if slope != 1.0:
        header.set_slope_inter(slope, 0.0)
    return gzip.compress(image.to_bytes(), compresslevel=9, mtime=0)


def make_images(source_dir: Path) -> dict[str, bytes]:
    """Compute the five bundle images from nilearn's files.

    Parameters
    ----------
    source_dir : Path
        Folder holding the nilearn ICBM 2009a files.

    Returns
    -------
    dict
        File name -> ``.nii.gz`` bytes.
    """
    fine = {}
    for key, name in SOURCE_NAMES.items():
        fine[key] = to_fine_grid(*load_source(source_dir / name))
    if int((fine["gm"].astype(np.int64) + fine["wm"]).max()) > SOURCE_MAX:
        raise SystemExit("GM + WM exceeds 1 somewhere in the source: cannot derive CSF")
    mask = brain_mask_fine(fine["gm"], fine["wm"])
    prob_slope = 1.0 / (SOURCE_MAX * FACTOR**3)
    sums = {
        "desc-brain_T1w": (block_sum(fine["t1"]), 1.0 / FACTOR**3, "T1w (skull-stripped), mean"),
        "label-GM_probseg": (block_sum(fine["gm"]), prob_slope, "GM probability"),
        "label-WM_probseg": (block_sum(fine["wm"]), prob_slope, "WM probability"),
        "label-CSF_probseg": (
            block_sum(csf_fine(mask, fine["gm"], fine["wm"])),
            prob_slope,
            "CSF probability, derived: mask*(1-GM-WM)",
        ),
    }
    images = {}
    for entities, (values, slope, what) in sums.items():
        text = f"aslmig {SPACE} res-{RES} {what}"
        images[output_name(entities)] = nifti_bytes(values.astype(np.uint16), slope, text)
    coarse = brain_mask_coarse(mask).astype(np.uint8)
    text = f"aslmig {SPACE} res-{RES} brain mask, derived from GM+WM"
    images[output_name("desc-brain_mask")] = nifti_bytes(coarse, 1.0, text)
    return images


def derivation_notes() -> dict[str, str]:
    """Return, per bundle file, how it was made (for ``template_description.json``)."""
    return {
        output_name("desc-brain_T1w"): (
            "2x2x2 block mean of nilearn's mni_icbm152_t1_tal_nlin_sym_09a_converted (which "
            "nilearn distributes skull-stripped and rescaled to 0-255); uint16, scl_slope 1/8."
        ),
        output_name("label-GM_probseg"): (
            "2x2x2 block mean of the GM probability (source uint8/255); uint16, scl_slope "
            "1/2040, exact."
        ),
        output_name("label-WM_probseg"): (
            "2x2x2 block mean of the WM probability (source uint8/255); uint16, scl_slope "
            "1/2040, exact."
        ),
        output_name("label-CSF_probseg"): (
            "DERIVED by aslmig (nilearn ships no CSF map): at 1 mm CSF = M*(1-GM-WM) clipped "
            "to [0,1], M the 1 mm brain mask below; then the 2x2x2 block mean. Ventricular and "
            "sulcal CSF inside the mask only; not the ICBM CSF probability map."
        ),
        output_name("desc-brain_mask"): (
            f"DERIVED by aslmig (nilearn ships none): at 1 mm GM+WM > {BRAIN_THRESHOLD}, binary "
            f"closing with a 6-connected structuring element of radius {CLOSING_RADIUS} voxels, "
            f"3-D hole filling (ventricles inside); at 2 mm voxels >= {MASK_FRACTION} covered, "
            "hole-filled again. Not the ICBM brain mask."
        ),
    }


def template_description(source_dir: Path) -> dict:
    """Return the ``template_description.json`` content of the bundle."""
    return {
        "Authors": ["Fonov V", "Evans AC", "Botteron K", "Almli CR", "McKinstry RC", "Collins DL"],
        "BIDSVersion": "1.1.0",
        "Identifier": SPACE,
        "License": " ".join(ICBM_NOTICE.split()),
        "Name": "ICBM 152 Nonlinear Symmetrical template version 2009a",
        "RRID": "SCR_008796",
        "ReferencesAndLinks": REFERENCES,
        "Species": "Homo sapiens",
        "res": {
            RES: {
                "origin": list(GRID_ORIGIN),
                "shape": list(GRID_SHAPE),
                "zooms": [float(ZOOM_MM)] * 3,
            }
        },
        "aslmig": {
            "Note": (
                "Not an official TemplateFlow distribution: a 2 mm fallback bundled with aslmig "
                "for offline use. TemplateFlow's own MNI152NLin2009aSym ships res-1 (1 mm) only; "
                "res-02 here uses the grid of TemplateFlow's MNI152NLin2009cAsym res-02 (a "
                "different template). Made by tools/build_template_bundle.py."
            ),
            "Source": {
                "Package": "nilearn",
                "Version": nilearn_version(),
                "Files": {
                    name: {"sha256": sha256(source_dir / name)} for name in SOURCE_NAMES.values()
                },
                "Original": ORIGINAL_URL,
            },
            "Resampling": (
                "1 mm source placed on the 1 mm grid under the 2 mm grid (zero padding / "
                "cropping in whole voxels), then exact 2x2x2 block means (partial-volume "
                "fractions; box anti-aliasing)."
            ),
            "Files": derivation_notes(),
            "Citations": CITATIONS,
        },
    }


def dataset_description() -> dict:
    """Return the bundle root's ``dataset_description.json`` content."""
    return {
        "Name": "aslmig embedded templates (TemplateFlow layout)",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "License": "ICBM 2009 permission notice (McConnell Brain Imaging Centre); see NOTICE",
        "GeneratedBy": [
            {
                "Name": "aslmig tools/build_template_bundle.py",
                "Description": f"{SPACE} at 2 mm from nilearn's ICBM 2009a files",
            }
        ],
        "SourceDatasets": [{"URL": ORIGINAL_URL}, {"URL": "https://pypi.org/project/nilearn/"}],
        "ReferencesAndLinks": REFERENCES,
    }


def notice_text() -> str:
    """Return the bundle's ``NOTICE``: what it is, where it comes from, the ICBM notice."""
    lines = [
        "aslmig embedded template bundle",
        "===============================",
        "",
        f"tpl-{SPACE}/ holds the ICBM 152 Nonlinear Symmetrical template version 2009a",
        f"(TemplateFlow identifier {SPACE}; NOT MNI152NLin2009cAsym) at 2 mm, made by",
        "aslmig's tools/build_template_bundle.py from the 1 mm files that the nilearn PyPI",
        "package redistributes (nilearn/datasets/data/mni_icbm152_*_tal_nlin_sym_09a_converted).",
        f"Original distribution: {ORIGINAL_URL}",
        "",
        "T1w, GM and WM are 2x2x2 block means of the source. The brain mask and the CSF map are",
        "DERIVED by aslmig (nilearn ships neither); template_description.json says how.",
        "",
        "The ICBM 2009 templates carry this notice, which must appear in all copies:",
        "",
        ICBM_NOTICE.rstrip(),
        "",
        "Please cite:",
        *[f"- {citation}" for citation in CITATIONS],
        "",
    ]
    return "\n".join(lines)


def text_files(source_dir: Path) -> dict[str, bytes]:
    """Return the bundle's text files, keyed by path relative to the bundle root."""

    def as_json(obj: dict) -> bytes:
        return (json.dumps(obj, indent=2) + "\n").encode()

    folder = f"tpl-{SPACE}"
    return {
        "dataset_description.json": as_json(dataset_description()),
        "NOTICE": notice_text().encode(),
        f"{folder}/LICENSE": ICBM_NOTICE.encode(),
        f"{folder}/template_description.json": as_json(template_description(source_dir)),
    }


def bundle_files(source_dir: Path) -> dict[str, bytes]:
    """Return every bundle file's content, keyed by path relative to the bundle root."""
    files = text_files(source_dir)
    for name, content in make_images(source_dir).items():
        files[f"tpl-{SPACE}/{name}"] = content
    return files


def write_bundle(files: dict[str, bytes], out_dir: Path) -> list[Path]:
    """Write bundle files below ``out_dir`` and return their paths."""
    written = []
    for relative, content in sorted(files.items()):
        path = out_dir / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        written.append(path)
    return written


def differing(files: dict[str, bytes], out_dir: Path) -> list[str]:
    """Return the relative paths whose content under ``out_dir`` differs from ``files``."""
    return [
        relative
        for relative, content in sorted(files.items())
        if not (out_dir / relative).is_file() or (out_dir / relative).read_bytes() != content
    ]


def main(argv: list[str] | None = None) -> int:
    """Build (or with ``--check`` verify) the bundle; return the exit status."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=BUNDLE_DIR, help="bundle root folder")
    parser.add_argument("--source", type=Path, default=None, help="nilearn datasets/data folder")
    parser.add_argument("--check", action="store_true", help="compare only, write nothing")
    args = parser.parse_args(argv)
    files = bundle_files(args.source or nilearn_data_dir())
    if args.check:
        stale = differing(files, args.out)
        for relative in stale:
            print(f"differs: {relative}")
        return 1 if stale else 0
    paths = write_bundle(files, args.out)
    total = sum(path.stat().st_size for path in paths)
    print(f"wrote {len(paths)} files, {total / 1e6:.2f} MB, to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
