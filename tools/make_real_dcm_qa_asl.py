#!/usr/bin/env python3
"""Build ``tests/data/real_dcm_qa_asl/``: a small copy of the real Siemens ASL runs.

The source is the ASL-BIDS conversion of neurolabusc/dcm_qa_asl (BSD-2-Clause, Copyright (c)
2019 Chris Rorden) described in its README (``real-dcm_qa_asl``). Three runs are kept:

* ``sub-S2018_acq-pasl2d``: PASL Q2TIPS, the M0 volume + the first 5 label/control pairs;
* ``sub-S2018_acq-pcasl2d``: PCASL with PLD 0.2 s, the first 5 pairs, and its separate M0;
* ``sub-O2019_acq-mpld2d``: multi-delay PCASL, the M0 volume + the first 2 repeats of the
  6 PLDs (24 volumes).

Every volume kept is copied voxel for voxel (int16, unchanged values); the images are cropped
in x and y to the head's bounding box plus a margin (all slices kept, so SliceTiming still
holds) and the affine is shifted accordingly. The sidecars are the source's, with the
per-volume arrays and ``TotalAcquiredPairs`` cut to the volumes kept.

Run: python tools/make_real_dcm_qa_asl.py SOURCE_DATASET [OUT_DIR]
(default OUT_DIR: tests/data/real_dcm_qa_asl). The output is deterministic.
"""

from __future__ import annotations

import gzip
import json
import shutil
import sys
from pathlib import Path

import nibabel as nib
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "data" / "real_dcm_qa_asl"
MARGIN_VOXELS = 3
#: run -> (subject, number of volumes kept from the start of the series)
RUNS = {
    "sub-S2018_acq-pasl2d": ("S2018", 1 + 2 * 5),
    "sub-S2018_acq-pcasl2d": ("S2018", 2 * 5),
    "sub-O2019_acq-mpld2d": ("O2019", 1 + 2 * 6 * 2),
}
PER_VOLUME_FIELDS = ("PostLabelingDelay", "LabelingDuration", "RepetitionTimePreparation")


def head_box(image: nib.Nifti1Image) -> tuple[slice, slice]:
    """Return the x and y slices around the voxels brighter than 10 % of the 99th percentile."""
    data = np.asanyarray(image.dataobj).astype(float)
    mean = data.mean(axis=-1) if data.ndim == 4 else data
    head = mean > 0.1 * np.percentile(mean, 99)
    bounds = []
    for axis in (0, 1):
        other = tuple(a for a in range(3) if a != axis)
        inside = np.flatnonzero(head.any(axis=other))
        low = max(int(inside[0]) - MARGIN_VOXELS, 0)
        high = min(int(inside[-1]) + 1 + MARGIN_VOXELS, head.shape[axis])
        bounds.append(slice(low, high))
    return bounds[0], bounds[1]


def write_image(image: nib.Nifti1Image, path: Path) -> None:
    """Write a NIfTI with gzip level 9 and no time stamp, so reruns give identical bytes."""
    raw = path.with_suffix("")  # .nii
    image.to_filename(raw)
    with raw.open("rb") as source, path.open("wb") as target:
        with gzip.GzipFile(fileobj=target, mode="wb", compresslevel=9, mtime=0) as packed:
            shutil.copyfileobj(source, packed)
    raw.unlink()


def crop(image: nib.Nifti1Image, box: tuple[slice, slice], volumes: int | None):
    """Crop x/y (and keep the first ``volumes`` volumes of a 4-D image); affine follows."""
    index = (box[0], box[1], slice(None))
    if volumes is not None:
        index += (slice(0, volumes),)
    cropped = image.slicer[index]
    cropped.header.set_data_dtype(image.get_data_dtype())
    cropped.header["scl_slope"], cropped.header["scl_inter"] = np.nan, np.nan
    return nib.Nifti1Image(
        np.asanyarray(cropped.dataobj).astype(image.get_data_dtype()),
        cropped.affine,
        cropped.header,
    )


def trim_sidecar(sidecar: dict, volumes: int, volume_types: list[str]) -> dict:
    """Cut per-volume arrays to the volumes kept and count the pairs kept."""
    out = dict(sidecar)
    for field in PER_VOLUME_FIELDS:
        if isinstance(out.get(field), list):
            out[field] = out[field][:volumes]
    out["TotalAcquiredPairs"] = volume_types.count("control")
    return out


def copy_run(source: Path, out: Path, run: str, subject: str, volumes: int) -> None:
    """Copy the first ``volumes`` volumes of one run (and its M0), cropped, with sidecars."""
    perf_in = source / f"sub-{subject}" / "perf"
    perf_out = out / f"sub-{subject}" / "perf"
    perf_out.mkdir(parents=True, exist_ok=True)
    asl = nib.load(perf_in / f"{run}_asl.nii.gz")
    box = head_box(asl)
    write_image(crop(asl, box, volumes), perf_out / f"{run}_asl.nii.gz")
    context = (perf_in / f"{run}_aslcontext.tsv").read_text().split()
    kept = context[1 : 1 + volumes]
    (perf_out / f"{run}_aslcontext.tsv").write_text("\n".join(["volume_type", *kept]) + "\n")
    sidecar = json.loads((perf_in / f"{run}_asl.json").read_text())
    (perf_out / f"{run}_asl.json").write_text(
        json.dumps(trim_sidecar(sidecar, volumes, kept), indent=2) + "\n"
    )
    m0 = perf_in / f"{run}_m0scan.nii.gz"
    if m0.exists():
        write_image(crop(nib.load(m0), box, None), perf_out / f"{run}_m0scan.nii.gz")
        shutil.copy(perf_in / f"{run}_m0scan.json", perf_out / f"{run}_m0scan.json")
    print(
        f"{run}: {volumes} volumes, x {box[0].start}:{box[0].stop}, y {box[1].start}:{box[1].stop}"
    )


README = """# real_dcm_qa_asl — trimmed real Siemens ASL runs (test data)

A small copy of three real in-vivo ASL runs, made by `tools/make_real_dcm_qa_asl.py` from the
ASL-BIDS conversion `real-dcm_qa_asl` of **neurolabusc/dcm_qa_asl**
(https://github.com/neurolabusc/dcm_qa_asl, commit 01143b4351fce1d8f31cc532169298ddf3a14126;
Siemens MAGNETOM Prisma_fit 3 T, syngo MR E11; converted with dcm2niix v1.0.20260724).
Licence: **BSD-2-Clause**, Copyright (c) 2019, Chris Rorden — see `LICENSE`, which must stay
with these files. Nothing here is simulated; no truth exists, so tests check physiological
plausibility only (GM CBF above WM, ATT range, fit bounds, warnings).

- `sub-S2018_acq-pasl2d`: the M0 volume + the first 5 label/control pairs (11 of 85
  volumes). Product PASL, PICORE Q2TIPS, TI 2.0 s, TI1 0.8 s, 2D EPI 3x3x5 mm (+1 mm gap).
- `sub-S2018_acq-pcasl2d` (+ `_m0scan`): the first 5 pairs (10 of 102 volumes) and the whole
  separate M0. D.J.J. Wang 2D PCASL, **PLD 0.2 s**, labelling 1.5088 s.
- `sub-O2019_acq-mpld2d`: the M0 volume + the first 2 repeats of the 6 PLDs (25 of 97
  volumes). Oxford 2D multi-delay PCASL, PLD 0.25-1.5 s, labelling 1.4 s, background
  suppression, no vascular crushing.

How they were trimmed: the volumes above are copied unchanged (int16 values); each image is
cropped in x and y to the head's bounding box plus 3 voxels (all slices kept, so
`SliceTiming` holds) with the affine shifted to match; `PostLabelingDelay` (and other
per-volume arrays) and `TotalAcquiredPairs` are cut to the volumes kept; gzip level 9 without
time stamp (a rerun gives identical bytes). Every other sidecar value and its source are those
of the full dataset (its `code/*_sources.json`). Caveats of the full dataset apply: the M0 of
the multi-delay run is taken to be volume 1 (no separate calibration exists), the PCASL PLD is
far below the white paper's range, and the multi-delay series carries arterial signal at the
short PLDs.

Rebuild: `python tools/make_real_dcm_qa_asl.py PATH/TO/real-dcm_qa_asl tests/data/real_dcm_qa_asl`
"""


def main(source: Path, out: Path = DEFAULT_OUT) -> None:
    """Write the trimmed dataset from the full one."""
    source, out = Path(source), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copy(source / "LICENSE", out / "LICENSE")
    (out / "README.md").write_text(README)
    description = json.loads((source / "dataset_description.json").read_text())
    description["Name"] = "real_dcm_qa_asl (trimmed): " + description["Name"]
    description["GeneratedBy"] = [
        *description.get("GeneratedBy", []),
        {"Name": "tools/make_real_dcm_qa_asl.py", "Description": "volumes kept, x/y cropped"},
    ]
    (out / "dataset_description.json").write_text(json.dumps(description, indent=2) + "\n")
    rows = (source / "participants.tsv").read_text().splitlines()
    keep = [rows[0]] + [row for row in rows[1:] if row.split("\t")[0] in {"sub-S2018", "sub-O2019"}]
    (out / "participants.tsv").write_text("\n".join(keep) + "\n")
    shutil.copy(source / "participants.json", out / "participants.json")
    for run, (subject, volumes) in RUNS.items():
        copy_run(source, out, run, subject, volumes)


if __name__ == "__main__":
    main(*sys.argv[1:])
