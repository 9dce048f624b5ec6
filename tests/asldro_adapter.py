"""Turn a dataset of ``tests/data/asldro/`` into a valid ASL-BIDS (1.5+) raw dataset.

asldro 2.2.0 itself writes a pre-1.5 layout (``asl/001_asl.nii.gz`` with ``LabelingType``,
``M0: true``, ``RepetitionTime``, no ``sub-`` folders).  The generator
(``tools/asldro/make_asldro_data.py``) stores each dataset in a neutral form instead::

    asl.nii.gz  aslcontext.tsv  m0scan.nii.gz  params.json  [t1w.nii.gz]  truth_*.nii.gz

and this adapter writes the BIDS 1.5+ names and sidecar fields from ``params.json``:

===========================  ===========================================================
asldro 2.2.0 (pre-1.5)        ASL-BIDS 1.5+ (written here)
===========================  ===========================================================
``LabelingType``              ``ArterialSpinLabelingType``
``M0: true`` (m0 in series)   ``M0Type: "Included"`` (or ``"Separate"`` + ``_m0scan``)
``RepetitionTime`` (list)     ``RepetitionTimePreparation`` (scalar, or list per volume)
``MrAcquisitionType``         ``MRAcquisitionType``
PASL ``label_duration``       ``BolusCutOffFlag: true``, ``BolusCutOffDelayTime`` (TI1),
                              ``BolusCutOffTechnique: "QUIPSSII"``; PLD = TI
===========================  ===========================================================

Only nibabel, numpy, json and pathlib are used (runs in the project venv; asldro is not
imported).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nib
import numpy as np

BIDS_VERSION = "1.8.0"
MANUFACTURER = "none (simulated by asldro)"
_SEQ = (
    "asldro {v} simulation: general kinetic model, spin-echo signal model, 3D, "
    "no background suppression"
)


def _label(value: str | None, prefix: str) -> str | None:
    if value is None:
        return None
    value = str(value)
    return value[len(prefix) :] if value.startswith(prefix) else value


def _read_context(path: Path) -> list[str]:
    lines = [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]
    if not lines or lines[0] != "volume_type":
        raise ValueError(f"{path}: first line must be the header 'volume_type'")
    return lines[1:]


def _write_json(path: Path, obj: dict) -> None:
    path.write_text(json.dumps(obj, indent=2) + "\n")


def _per_volume_plds(params: dict, context: list[str]) -> list[float] | float:
    phys, acq = params["physics"], params["acquisition"]
    if "post_labeling_delay_per_volume_s" in acq:
        plds = [float(x) for x in acq["post_labeling_delay_per_volume_s"]]
        if len(plds) != len(context):
            raise ValueError(
                "params.json: post_labeling_delay_per_volume_s does not match aslcontext.tsv"
            )
        return plds
    if phys["label_type"] == "pasl":
        return float(phys["inversion_time_TI_s"])
    return float(phys["post_labeling_delay_s"])


def asldro_to_bids(
    src_dir,
    bids_root,
    subject="01",
    session=None,
    t1w=None,
    m0_type="Separate",
    include_labeling_efficiency=True,
):
    """Write one asldro test dataset as an ASL-BIDS raw dataset.

    Parameters
    ----------
    src_dir : path-like
        A dataset folder of ``tests/data/asldro`` (e.g. ``.../pcasl_exact``).
    bids_root : path-like
        Output BIDS root (created; an existing ``dataset_description.json`` is kept, so several
        subjects/sessions can be added to one dataset).
    subject, session : str, optional
        Labels with or without the ``sub-``/``ses-`` prefix.
    t1w : None, True or path-like
        None: no anatomical image.  True: use ``src_dir/t1w.nii.gz``.  A path: copy that file.
    m0_type : {"Separate", "Included"}
        "Separate": ``_m0scan.nii.gz`` + ``.json`` with ``IntendedFor``.  "Included": the M0
        volume is put first in the ASL series (``aslcontext`` "m0scan", PLD 0 for it).
    include_labeling_efficiency : bool
        Write ``LabelingEfficiency`` (the value asldro used) in the ASL sidecar.

    Returns
    -------
    dict
        Paths written (keys ``asl``, ``asl_json``, ``aslcontext``, ``m0scan``, ``m0scan_json``,
        ``t1w``, ``t1w_json``, ``dataset_description``; absent ones are None) and ``params``
        (the parsed ``params.json``).
    """
    src = Path(src_dir)
    root = Path(bids_root)
    if m0_type not in ("Separate", "Included"):
        raise ValueError(f"m0_type must be 'Separate' or 'Included', not {m0_type!r}")
    params = json.loads((src / "params.json").read_text())
    phys, acq = params["physics"], params["acquisition"]
    label_type = phys["label_type"].lower()

    sub = _label(subject, "sub-")
    ses = _label(session, "ses-")
    stem = f"sub-{sub}" + (f"_ses-{ses}" if ses else "")
    subdir = Path(f"sub-{sub}") / (f"ses-{ses}" if ses else "")
    perf = root / subdir / "perf"
    perf.mkdir(parents=True, exist_ok=True)

    context = _read_context(src / "aslcontext.tsv")
    asl_img = nib.load(src / "asl.nii.gz")
    n_vol = asl_img.shape[3] if asl_img.ndim == 4 else 1
    if n_vol != len(context):
        raise ValueError(
            f"{src / 'aslcontext.tsv'}: {len(context)} rows but asl.nii.gz has {n_vol} volumes"
        )
    plds = _per_volume_plds(params, context)
    n_pairs = min(context.count("control"), context.count("label"))
    tr_asl = float(acq["repetition_time_control_label_s"])
    tr_m0 = float(acq["repetition_time_m0scan_s"])

    out = {
        k: None
        for k in (
            "asl",
            "asl_json",
            "aslcontext",
            "m0scan",
            "m0scan_json",
            "t1w",
            "t1w_json",
            "dataset_description",
        )
    }
    asl_path = perf / f"{stem}_asl.nii.gz"
    if m0_type == "Separate":
        shutil.copyfile(src / "asl.nii.gz", asl_path)
        rtp = tr_asl
        m0_path = perf / f"{stem}_m0scan.nii.gz"
        shutil.copyfile(src / "m0scan.nii.gz", m0_path)
        m0_json = {
            "Manufacturer": MANUFACTURER,
            "PulseSequenceDetails": _SEQ.format(v=params["generator"]["version"]),
            "MagneticFieldStrength": phys["magnetic_field_strength_T"],
            "MRAcquisitionType": acq["mr_acquisition_type"],
            "EchoTime": acq["echo_time_s"],
            "FlipAngle": 90,
            "RepetitionTimePreparation": tr_m0,
            "AcquisitionVoxelSize": acq["voxel_size_mm"],
            # relative to the subject folder (BIDS "IntendedFor" form read by pybids)
            "IntendedFor": (
                (Path(f"ses-{ses}") if ses else Path()) / "perf" / asl_path.name
            ).as_posix(),
        }
        _write_json(perf / f"{stem}_m0scan.json", m0_json)
        out["m0scan"], out["m0scan_json"] = m0_path, perf / f"{stem}_m0scan.json"
    else:
        m0 = np.asanyarray(nib.load(src / "m0scan.nii.gz").dataobj)
        data = np.asanyarray(asl_img.dataobj)
        if data.ndim == 3:
            data = data[..., None]
        data = np.concatenate([m0[..., None].astype(data.dtype), data], axis=3)
        img = nib.Nifti1Image(data, asl_img.affine, asl_img.header)
        nib.save(img, asl_path)
        context = ["m0scan"] + context
        if isinstance(plds, list):
            plds = [0.0] + plds
        else:
            plds = [0.0] + [plds] * (len(context) - 1)
        rtp = [tr_m0] + [tr_asl] * (len(context) - 1)

    (perf / f"{stem}_aslcontext.tsv").write_text("volume_type\n" + "\n".join(context) + "\n")

    asl_json = {
        "Manufacturer": MANUFACTURER,
        "PulseSequenceDetails": _SEQ.format(v=params["generator"]["version"]),
        "MagneticFieldStrength": phys["magnetic_field_strength_T"],
        "MRAcquisitionType": acq["mr_acquisition_type"],
        "EchoTime": acq["echo_time_s"],
        "FlipAngle": 90,
        "RepetitionTimePreparation": rtp,
        "ArterialSpinLabelingType": label_type.upper(),
        "PostLabelingDelay": plds,
        "BackgroundSuppression": False,
        "M0Type": m0_type,
        "TotalAcquiredPairs": n_pairs,
        "VascularCrushing": False,
        "AcquisitionVoxelSize": acq["voxel_size_mm"],
    }
    if label_type == "pasl":
        asl_json.update(
            {
                "BolusCutOffFlag": True,
                "BolusCutOffDelayTime": float(phys["bolus_cut_off_delay_time_TI1_s"]),
                "BolusCutOffTechnique": "QUIPSSII",
            }
        )
    else:
        asl_json["LabelingDuration"] = float(phys["labeling_duration_s"])
    if include_labeling_efficiency:
        asl_json["LabelingEfficiency"] = float(phys["labeling_efficiency"])
    _write_json(perf / f"{stem}_asl.json", asl_json)
    out.update(
        asl=asl_path, asl_json=perf / f"{stem}_asl.json", aslcontext=perf / f"{stem}_aslcontext.tsv"
    )

    if t1w is not None and t1w is not False:
        t1_src = src / "t1w.nii.gz" if t1w is True else Path(t1w)
        if not t1_src.is_file():
            raise FileNotFoundError(
                f"{t1_src}: no T1w image (pcasl_exact/t1w.nii.gz is on the "
                "grid of pasl_exact, multi_delay and pcasl_motion too)"
            )
        anat = root / subdir / "anat"
        anat.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(t1_src, anat / f"{stem}_T1w.nii.gz")
        _write_json(
            anat / f"{stem}_T1w.json",
            {
                "MagneticFieldStrength": phys["magnetic_field_strength_T"],
                "MRAcquisitionType": "3D",
                "EchoTime": 0.005,
                "RepetitionTime": 0.3,
                "FlipAngle": 90,
            },
        )
        out["t1w"], out["t1w_json"] = anat / f"{stem}_T1w.nii.gz", anat / f"{stem}_T1w.json"

    dd = root / "dataset_description.json"
    if not dd.exists():
        _write_json(
            dd,
            {
                "Name": f"asldro test data: {params['dataset']}",
                "BIDSVersion": BIDS_VERSION,
                "DatasetType": "raw",
                "License": "CC0",
                "Authors": ["aslmig test suite (simulated with asldro)"],
                "GeneratedBy": [
                    {
                        "Name": "asldro",
                        "Version": params["generator"]["version"],
                        "Description": "ASL digital reference object; converted by "
                        "tests/asldro_adapter.py",
                    }
                ],
            },
        )
        (root / "README").write_text(
            f"Simulated ASL data made by the ASL digital reference object asldro "
            f"{params['generator']['version']} (dataset '{params['dataset']}' of the aslmig "
            "test data, tests/data/asldro).\n\nThe ground truth (tissue labels, CBF, ATT and "
            "tissue T1 maps) and every simulation parameter are in the source folder "
            "(truth_*.nii.gz, params.json); see tests/data/asldro/README.md.  Converted to "
            "ASL-BIDS by tests/asldro_adapter.py.\n"
        )
    parts = root / "participants.tsv"
    rows = parts.read_text().splitlines() if parts.exists() else ["participant_id"]
    if f"sub-{sub}" not in rows:
        rows.append(f"sub-{sub}")
    parts.write_text("\n".join(rows) + "\n")
    out["dataset_description"] = dd
    out["params"] = params
    return out
