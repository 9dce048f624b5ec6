#!/usr/bin/env python3
"""Generate the independent-truth ASL test data in ``tests/data/asldro/`` with asldro 2.2.0.

asldro (ASL Digital Reference Object, MIT, PyPI package asldro 2.2.0) pins numpy 1.19,
so it lives in its OWN virtual environment, never in the project venv::

    python3 -m venv /work/asldro-venv
    /work/asldro-venv/bin/pip install --no-deps asldro==2.2.0
    /work/asldro-venv/bin/pip install -r tools/asldro/requirements-asldro.txt

(``requirements-asldro.txt`` pins numpy 1.26.4, nibabel 5.2.1, nilearn 0.10.3, scipy 1.11.4,
jsonschema 4.17.3 and their dependencies; asldro itself is not patched.)  Then, from the
project root::

    /work/asldro-venv/bin/python tools/asldro/make_asldro_data.py            # all datasets
    /work/asldro-venv/bin/python tools/asldro/make_asldro_data.py --only pcasl_exact
    /work/asldro-venv/bin/python tools/asldro/make_asldro_data.py --check    # verify only

The output is deterministic (fixed seeds, no time stamps); a rerun rewrites identical arrays.
It takes about two minutes on 2 cores.

How the data are made (details and the numbers in ``tests/data/asldro/README.md``):

* The ground-truth (GT) grid is asldro's own shipped ``hrgt_icbm_2009a_nls_3t`` tissue
  segmentation (ICBM 2009a nonlinear symmetric, 1 mm), reduced to 3 mm voxels by a majority vote
  over 3x3x3 blocks and cropped to the head.  Every GT quantity is constant per tissue label,
  with the values read from the shipped GT (or replaced by the "exact" recipe).
* asldro resamples the GT to the acquisition grid with ``voxel size = GT shape / acq_matrix``
  in GT *world units* (it ignores the GT voxel size), so the GT handed to asldro has a 1-unit
  voxel affine whose world origin is the MNI origin; ``acq_matrix`` equals the GT shape, so
  no resampling (no partial volume) happens unless motion is asked for.  The files written here
  carry the true 3 mm affine (1 asldro unit = 3 mm).
* ``pcasl_exact`` / ``pasl_exact``: tissue T1 = 1/(1/T1b - f/lambda) makes asldro's general
  kinetic model collapse to the white-paper single-delay equation.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import zipfile
from pathlib import Path

import asldro
import nibabel as nib
import nibabel.openers
import numpy as np
from asldro.data.filepaths import GROUND_TRUTH_DATA
from asldro.examples import run_full_pipeline

nibabel.openers.Opener.default_compresslevel = 9  # nibabel writes gzip level 1 by default

ASLDRO_VERSION = "2.2.0"
HRGT = "hrgt_icbm_2009a_nls_3t"
QUANTITIES = ["perfusion_rate", "transit_time", "t1", "t2", "t2_star", "m0", "seg_label"]
UNITS = ["ml/100g/min", "s", "s", "s", "s", "", ""]
LABELS = {"GM": 1, "WM": 2, "CSF": 3}
FACTOR = 3  # 1 mm -> 3 mm
VOXEL_MM = float(FACTOR)

# physics of the GT (asldro's shipped 3 T values) and of the acquisitions
T1B = 1.65
LAMBDA = 0.9
B0 = 3.0
ECHO_TIME = 0.01
TR_ASL = 5.0  # control/label volumes (asldro default)
TR_M0 = 20.0  # m0scan: long, so M0 saturation exp(-TR/T1) < 7e-6 in GM/WM is negligible
ALPHA_PCASL = 0.85
ALPHA_PASL = 0.98
PASL_K = 1e-6  # 1/s, see make_gt_exact(): asldro's PASL kinetic term is 0/0 when k == 0

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_OUT = ROOT / "tests" / "data" / "asldro"


# --------------------------------------------------------------------------------------------
# ground truth
# --------------------------------------------------------------------------------------------
def load_hrgt():
    """Return (5D data, affine) of asldro's shipped 3 T high-resolution ground truth."""
    img = nib.load(GROUND_TRUTH_DATA[HRGT]["nii"])
    return np.asanyarray(img.dataobj), img.affine


def hrgt_tissue_values(data):
    """Per-label constant values of every quantity in the shipped GT (asserted constant)."""
    seg = np.round(data[..., 0, QUANTITIES.index("seg_label")]).astype(int)
    values = {}
    for name, lab in LABELS.items():
        mask = seg == lab
        values[name] = {}
        for qi, q in enumerate(QUANTITIES[:-1]):
            u = np.unique(data[..., 0, qi][mask])
            assert u.size == 1, (name, q, u)
            values[name][q] = float(u[0])
    return values


def make_label_grid(data, affine):
    """3 mm majority-vote labels cropped to the head (1 voxel margin).

    Returns (labels uint8 [X,Y,Z], affine_mm 4x4 with 3 mm voxels in the hrgt's MNI world).
    Voxel (i,j,k) of the 3 mm grid is the block of 1 mm voxels 3i..3i+2, so its centre is at
    1 mm index 3i+1.  Ties go to the lowest label (background first).
    """
    seg = np.round(data[..., 0, QUANTITIES.index("seg_label")]).astype(int)
    n = [s // FACTOR for s in seg.shape]
    s = seg[: n[0] * FACTOR, : n[1] * FACTOR, : n[2] * FACTOR]
    blocks = s.reshape(n[0], FACTOR, n[1], FACTOR, n[2], FACTOR).transpose(0, 2, 4, 1, 3, 5)
    blocks = blocks.reshape(*n, -1)
    counts = np.stack([(blocks == lab).sum(-1) for lab in range(4)], -1)
    lab3 = counts.argmax(-1).astype(np.uint8)
    nz = np.argwhere(lab3 > 0)
    lo, hi = nz.min(0) - 1, nz.max(0) + 2
    pad_lo = np.maximum(-lo, 0)
    lab3 = np.pad(lab3, [(p, 0) for p in pad_lo])
    lo = lo + pad_lo
    hi = hi + pad_lo
    labels = lab3[lo[0] : hi[0], lo[1] : hi[1], lo[2] : hi[2]].copy()
    start = lo - pad_lo  # index of labels[0,0,0] in the un-padded 3 mm grid
    aff = np.diag([VOXEL_MM, VOXEL_MM, VOXEL_MM, 1.0])
    aff[:3, 3] = affine[:3, 3] + (FACTOR * start + (FACTOR - 1) / 2.0) * np.diag(affine)[:3]
    return labels, aff


def exact_t1(cbf, extra_k=0.0):
    """Tissue T1 making 1/T1' = 1/T1 + f/lambda equal to 1/T1b - extra_k (f in 1/s)."""
    return 1.0 / (1.0 / T1B - (cbf / 6000.0) / LAMBDA - extra_k)


def tissue_table(hr_values, recipe):
    """Per-tissue GT values for a recipe: 'default', 'pcasl_exact' or 'pasl_exact'."""
    tissues = {k: dict(v) for k, v in hr_values.items()}
    if recipe == "default":
        return tissues
    for name in ("GM", "WM"):
        f = tissues[name]["perfusion_rate"]
        if recipe == "pcasl_exact":
            tissues[name]["t1"] = exact_t1(f)
        elif recipe == "pasl_exact":
            # k = 1/T1b - 1/T1' must not be exactly 0: asldro 2.2.0 computes the PASL term
            # q = e^{kt}(e^{-k dt} - e^{-k(dt+tau)}) / (k tau) with np.divide(..., where=den!=0),
            # which returns q = 0 (instead of the limit 1) for k == 0.  k = 1e-6 /s changes
            # q by < 1e-6 (CBF error < 6e-5 mL/100g/min).
            tissues[name]["t1"] = exact_t1(f, PASL_K)
        else:
            raise ValueError(recipe)
    if recipe == "pasl_exact":
        # ATT <= TI - TI1 = 1.0 s so that the whole PASL bolus has arrived at TI = 1.8 s
        tissues["GM"]["transit_time"] = 0.7
        tissues["WM"]["transit_time"] = 0.9
    return tissues


def gt_volumes(labels, tissues, label_map=None):
    """Return a dict quantity -> float64 array on the label grid (background 0)."""
    vols = {q: np.zeros(labels.shape) for q in QUANTITIES}
    for name, lab in (label_map or LABELS).items():
        m = labels == lab
        for q in QUANTITIES[:-1]:
            vols[q][m] = tissues[name][q]
    vols["seg_label"] = labels.astype(float)
    return vols


def asldro_affine(affine_mm):
    """1-unit voxel affine whose world origin is the MNI origin (1 unit = 3 mm)."""
    aff = np.eye(4)
    aff[:3, 3] = affine_mm[:3, 3] / VOXEL_MM
    return aff


def write_asldro_gt(path: Path, labels, tissues, affine_mm, label_map=None):
    """Write the 5D GT NIfTI + JSON that asldro loads; return asldro's ``ground_truth`` dict."""
    vols = gt_volumes(labels, tissues, label_map)
    data = np.stack([vols[q] for q in QUANTITIES], -1)[:, :, :, None, :]
    img = nib.Nifti1Image(data, asldro_affine(affine_mm))
    nii = path / "gt.nii.gz"
    nib.save(img, nii)
    meta = {
        "quantities": QUANTITIES,
        "units": UNITS,
        "segmentation": {"grey_matter": 1, "white_matter": 2, "csf": 3},
        "parameters": {
            "lambda_blood_brain": LAMBDA,
            "t1_arterial_blood": T1B,
            "magnetic_field_strength": B0,
        },
    }
    (path / "gt.json").write_text(json.dumps(meta, indent=2))
    return {"nii": str(nii), "json": str(path / "gt.json")}


# --------------------------------------------------------------------------------------------
# running asldro
# --------------------------------------------------------------------------------------------
def asl_series(
    context,
    label_type,
    tau,
    signal_time,
    alpha,
    snr=0.0,
    seed=0,
    shape=None,
    motion=None,
    description="asl",
):
    """Return one asldro ``asl`` image_series entry (noise off unless ``snr`` > 0)."""
    vols = context.split()
    n = len(vols)
    params = {
        "asl_context": context,
        "label_type": label_type,
        "label_duration": float(tau),
        "signal_time": float(signal_time),
        "label_efficiency": float(alpha),
        "echo_time": [ECHO_TIME] * n,
        "repetition_time": [TR_M0 if v == "m0scan" else TR_ASL for v in vols],
        "acq_matrix": [int(s) for s in shape],
        "acq_contrast": "se",
        "desired_snr": float(snr),
        "random_seed": int(seed),
    }
    for key in ("rot_x", "rot_y", "rot_z", "transl_x", "transl_y", "transl_z"):
        params[key] = [0.0] * n
    if motion is not None:
        for key, vals in motion.items():
            params[key] = [float(v) for v in vals]
    return {"series_type": "asl", "series_description": description, "series_parameters": params}


def structural_series(shape):
    """Return asldro's default structural (T1w) series on the native grid, noise off."""
    # asldro's default structural acquisition (spin echo TE 5 ms, TR 0.3 s: T1-weighted),
    # noise off, on the native grid
    return {
        "series_type": "structural",
        "series_description": "T1w",
        "series_parameters": {
            "acq_matrix": [int(s) for s in shape],
            "desired_snr": 0.0,
            "modality": "T1w",
            "random_seed": 0,
        },
    }


def ground_truth_series(shape):
    """Return an asldro ``ground_truth`` series (asldro writes its resampled GT maps)."""
    return {
        "series_type": "ground_truth",
        "series_description": "ground truth",
        "series_parameters": {"acq_matrix": [int(s) for s in shape]},
    }


def run_asldro(gt_files, series, workdir: Path):
    """Run asldro's full pipeline; return a list (one entry per series) of outputs."""
    params = {
        "global_configuration": {
            "ground_truth": gt_files,
            "image_override": {},
            "parameter_override": {},
        },
        "image_series": series,
    }
    zpath = workdir / "asldro_out.zip"
    run_full_pipeline(params, str(zpath))
    out = workdir / "asldro_out"
    with zipfile.ZipFile(zpath) as z:
        z.extractall(out)
    results = []
    for i, s in enumerate(series, start=1):
        num = f"{i:03d}"
        if s["series_type"] == "asl":
            img = nib.load(out / "asl" / f"{num}_asl.nii.gz")
            side = json.loads((out / "asl" / f"{num}_asl.json").read_text())
            ctx = (out / "asl" / f"{num}_aslcontext.tsv").read_text().split()
            assert ctx[0] == "volume_type"
            results.append(
                {
                    "type": "asl",
                    "data": np.asanyarray(img.dataobj),
                    "affine": img.affine,
                    "sidecar": side,
                    "context": ctx[1:],
                }
            )
        elif s["series_type"] == "structural":
            img = nib.load(out / "anat" / f"{num}_T1w.nii.gz")
            side = json.loads((out / "anat" / f"{num}_T1w.json").read_text())
            results.append(
                {"type": "structural", "data": np.asanyarray(img.dataobj), "sidecar": side}
            )
        else:
            gt = {}
            for q in QUANTITIES:
                gt[q] = np.asanyarray(
                    nib.load(out / "ground_truth" / f"{num}_ground_truth_{q}.nii.gz").dataobj
                )
            results.append({"type": "ground_truth", "data": gt})
    return results


def clean_sidecar(side):
    """Drop the time stamp and URL list from an asldro sidecar."""
    side = dict(side)
    side.pop("AcquisitionDateTime", None)  # a time stamp would make the output non-deterministic
    side.pop("DROSoftwareUrl", None)  # links only
    return side


# --------------------------------------------------------------------------------------------
# independent physics (numpy only, written from the papers, not from asldro's code)
# --------------------------------------------------------------------------------------------
def wp_pcasl_cbf(dm, m0, tau, pld, alpha, t1b=T1B, lam=LAMBDA):
    """White paper (Alsop 2015) single-delay PCASL/CASL CBF in mL/100 g/min."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return (
            6000.0
            * lam
            * dm
            * np.exp(pld / t1b)
            / (2.0 * alpha * t1b * m0 * (1.0 - np.exp(-tau / t1b)))
        )


def wp_pasl_cbf(dm, m0, ti, ti1, alpha, t1b=T1B, lam=LAMBDA):
    """White paper QUIPSS II PASL CBF in mL/100 g/min."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return 6000.0 * lam * dm * np.exp(ti / t1b) / (2.0 * alpha * ti1 * m0)


def buxton_pcasl_dm_over_m0(cbf, att, t1, tau, pld, alpha, t1b=T1B, lam=LAMBDA):
    """Buxton 1998 general kinetic model (CASL, plug flow, tissue T1 after arrival).

    dM/M0 = 2 alpha (f/lambda) T1' e^{-ATT/T1b} q(t), 1/T1' = 1/T1 + f/lambda, t = tau + PLD,
    q = 1 - e^{-(t-ATT)/T1'}                        for ATT < t < ATT + tau
    q = e^{-(t-tau-ATT)/T1'} (1 - e^{-tau/T1'})     for t >= ATT + tau, and 0 before arrival.
    """
    f = cbf / 6000.0
    t = tau + pld
    t1p = 1.0 / (1.0 / t1 + f / lam)
    if t <= att:
        q = 0.0
    elif t < att + tau:
        q = 1.0 - np.exp(-(t - att) / t1p)
    else:
        q = np.exp(-(t - tau - att) / t1p) * (1.0 - np.exp(-tau / t1p))
    return 2.0 * alpha * f / lam * t1p * np.exp(-att / t1b) * q


def m0scan_factor(t1, t2, tr=TR_M0, te=ECHO_TIME):
    """Return asldro's spin-echo m0scan signal divided by the GT M0."""
    return (1.0 - np.exp(-tr / t1)) * np.exp(-te / t2)


def tissue_stats(values, labels, lab):
    """Return mean/min/max/n of ``values`` over the voxels with label ``lab``."""
    v = values[labels == lab]
    return {
        "mean": float(np.mean(v)),
        "min": float(np.min(v)),
        "max": float(np.max(v)),
        "n_voxels": int(v.size),
    }


# --------------------------------------------------------------------------------------------
# writing one dataset
# --------------------------------------------------------------------------------------------
def quantize(arr, step):
    """Round to multiples of ``step`` (a power of two, so exact in float32) for gzip."""
    return np.round(np.asarray(arr, dtype=float) / step) * step


def save(arr, affine, path, dtype=np.float32):
    """Save a NIfTI-1 with sform = qform = ``affine`` (code 1) and mm/s units."""
    img = nib.Nifti1Image(np.asarray(arr, dtype=dtype), affine)
    img.header.set_xyzt_units("mm", "sec")
    img.set_qform(affine, code=1)
    img.set_sform(affine, code=1)
    nib.save(img, path)


def write_truth(ds: Path, labels, tissues, affine, label_map=None):
    """Write truth_dseg/cbf/att/t1 on the dataset grid."""
    label_map = label_map or LABELS
    vols = gt_volumes(labels, tissues, label_map)
    save(labels, affine, ds / "truth_dseg.nii.gz", np.uint8)
    rows = "".join(f"{index}\t{name}\n" for name, index in label_map.items())
    (ds / "truth_dseg.tsv").write_text("index\tname\n" + rows)
    save(vols["perfusion_rate"], affine, ds / "truth_cbf.nii.gz")
    save(vols["transit_time"], affine, ds / "truth_att.nii.gz")
    save(vols["t1"], affine, ds / "truth_t1.nii.gz")


def check_gt_roundtrip(gt_result, labels, tissues, label_map=None):
    """Check that asldro's own resampled GT equals the GT we wrote (native grid, no motion)."""
    vols = gt_volumes(labels, tissues, label_map)
    for q in QUANTITIES:
        a = np.asarray(gt_result[q], dtype=float)
        assert np.allclose(a, vols[q], rtol=0, atol=1e-9), q


def split_m0(asl, context):
    """Return (series without m0scan volumes, their context, mean m0scan volume)."""
    ctx = np.array(context)
    m0_idx = np.flatnonzero(ctx == "m0scan")
    keep = np.flatnonzero(ctx != "m0scan")
    m0 = asl[..., m0_idx].mean(-1)
    return asl[..., keep], [context[i] for i in keep], m0


def write_series(ds: Path, asl, context, m0, affine, t1w=None, step=None):
    """Write asl.nii.gz, aslcontext.tsv, m0scan.nii.gz (and t1w.nii.gz)."""
    if step is not None:
        asl, m0 = quantize(asl, step), quantize(m0, step)
    save(asl, affine, ds / "asl.nii.gz")
    (ds / "aslcontext.tsv").write_text("volume_type\n" + "\n".join(context) + "\n")
    save(m0, affine, ds / "m0scan.nii.gz")
    if t1w is not None:
        save(t1w, affine, ds / "t1w.nii.gz")


def common_params(name, labels, affine, tissues, label_type):
    """Return the params.json entries shared by all datasets."""
    return {
        "dataset": name,
        "generator": {
            "software": "asldro",
            "version": asldro.__version__ if hasattr(asldro, "__version__") else ASLDRO_VERSION,
            "pypi": "asldro==2.2.0",
            "licence": "MIT",
            "script": "tools/asldro/make_asldro_data.py",
            "numpy": np.__version__,
            "nibabel": nib.__version__,
            "python": sys.version.split()[0],
        },
        "ground_truth": {
            "source": f"asldro shipped '{HRGT}' segmentation (ICBM 2009a nonlinear symmetric, "
            "1 mm), 3x3x3 majority vote to 3 mm, cropped to the head",
            "labels": dict(LABELS),
            "tissues": {
                k: {
                    "cbf_ml_100g_min": v["perfusion_rate"],
                    "att_s": v["transit_time"],
                    "t1_s": v["t1"],
                    "t2_s": v["t2"],
                    "t2_star_s": v["t2_star"],
                    "m0": v["m0"],
                    "n_voxels": int((labels == LABELS[k]).sum()),
                }
                for k, v in tissues.items()
            },
        },
        "physics": {
            "label_type": label_type,
            "lambda_blood_brain_ml_g": LAMBDA,
            "t1_arterial_blood_s": T1B,
            "magnetic_field_strength_T": B0,
            "labeling_efficiency": ALPHA_PASL if label_type == "pasl" else ALPHA_PCASL,
            "background_suppression": False,
        },
        "acquisition": {
            "acq_contrast": "se (spin echo: S = (M0 (1 - exp(-TR/T1)) + mag_enc) exp(-TE/T2))",
            "mr_acquisition_type": "3D",
            "echo_time_s": ECHO_TIME,
            "repetition_time_control_label_s": TR_ASL,
            "repetition_time_m0scan_s": TR_M0,
            "acq_matrix": [int(s) for s in labels.shape],
            "voxel_size_mm": [VOXEL_MM] * 3,
            "affine": np.round(affine, 6).tolist(),
            "asldro_world_unit_mm": VOXEL_MM,
        },
    }


def numpy_check_single(ds: Path, label_type, tau_or_ti1, pld_or_ti, alpha, labels):
    """Independent white-paper computation from the written files."""
    asl = nib.load(ds / "asl.nii.gz").get_fdata()
    ctx = (ds / "aslcontext.tsv").read_text().split()[1:]
    m0 = nib.load(ds / "m0scan.nii.gz").get_fdata()
    ctrl = asl[..., [i for i, c in enumerate(ctx) if c == "control"]].mean(-1)
    lab = asl[..., [i for i, c in enumerate(ctx) if c == "label"]].mean(-1)
    dm = ctrl - lab
    if label_type == "pasl":
        cbf = wp_pasl_cbf(dm, m0, pld_or_ti, tau_or_ti1, alpha)
    else:
        cbf = wp_pcasl_cbf(dm, m0, tau_or_ti1, pld_or_ti, alpha)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = dm / m0
    out = {"white_paper_cbf": {}, "delta_m_over_m0": {}}
    for name in ("GM", "WM"):
        out["white_paper_cbf"][name] = tissue_stats(cbf, labels, LABELS[name])
        out["delta_m_over_m0"][name] = tissue_stats(ratio, labels, LABELS[name])
    return out


# --------------------------------------------------------------------------------------------
# datasets
# --------------------------------------------------------------------------------------------
def make_exact(name, label_type, out: Path, labels, affine, hr_values, tmp: Path):
    """Make ``pcasl_exact`` or ``pasl_exact``; return its params dict."""
    recipe = "pasl_exact" if label_type == "pasl" else "pcasl_exact"
    tissues = tissue_table(hr_values, recipe)
    gt_files = write_asldro_gt(tmp, labels, tissues, affine)
    if label_type == "pasl":
        tau, signal_time, alpha = 0.8, 1.8, ALPHA_PASL  # TI1 0.8 s, TI 1.8 s
        pld = signal_time
    else:
        tau, pld, alpha = 1.8, 1.8, ALPHA_PCASL
        signal_time = tau + pld
    context = "m0scan control label control label"
    series = [
        asl_series(
            context, label_type, tau, signal_time, alpha, shape=labels.shape, description=name
        ),
        structural_series(labels.shape),
        ground_truth_series(labels.shape),
    ]
    res = run_asldro(gt_files, series, tmp)
    check_gt_roundtrip(res[2]["data"], labels, tissues)
    asl, ctx, m0 = split_m0(res[0]["data"], res[0]["context"])
    ds = out / name
    ds.mkdir(parents=True, exist_ok=True)
    write_series(ds, asl, ctx, m0, affine, t1w=res[1]["data"] if label_type == "pcasl" else None)
    write_truth(ds, labels, tissues, affine)
    p = common_params(name, labels, affine, tissues, label_type)
    p["recipe"] = (
        "tissue T1 = 1/(1/T1b - f/lambda)"
        + (" - k, k = 1e-6 /s (see README)" if label_type == "pasl" else "")
        + " so that T1' = 1/(1/T1 + f/lambda) = T1b; ATT < PLD"
    )
    if label_type == "pasl":
        p["physics"].update(
            {
                "pasl_type": "QUIPSS II",
                "inversion_time_TI_s": signal_time,
                "bolus_cut_off_delay_time_TI1_s": tau,
                "asldro_label_duration_s": tau,
                "asldro_signal_time_s": signal_time,
                "post_labeling_delay_bids_s": pld,
            }
        )
    else:
        p["physics"].update(
            {
                "labeling_duration_s": tau,
                "post_labeling_delay_s": pld,
                "asldro_signal_time_s": signal_time,
            }
        )
    p["acquisition"].update(
        {
            "asl_context_asldro": res[0]["context"],
            "asl_context": ctx,
            "m0": "separate file m0scan.nii.gz (the asldro m0scan volume)",
            "t1w": (
                "t1w.nii.gz: asldro structural series (SE TE 5 ms, TR 0.3 s, "
                "noise off), same grid as pasl_exact, multi_delay and "
                "pcasl_motion"
                if label_type == "pcasl"
                else "none here: pcasl_exact/t1w.nii.gz is on the same grid"
            ),
        }
    )
    p["noise"] = {"desired_snr": 0.0, "random_seed": 0, "note": "noise off"}
    p["motion"] = None
    p["asldro_sidecar"] = clean_sidecar(res[0]["sidecar"])
    p["asldro_t1w_sidecar"] = clean_sidecar(res[1]["sidecar"])
    # analytic expectations
    exp = {}
    for tname in ("GM", "WM"):
        t = tissues[tname]
        f = t["perfusion_rate"] / 6000.0
        if label_type == "pasl":
            ratio = 2 * alpha * f / LAMBDA * tau * np.exp(-signal_time / T1B)
        else:
            ratio = 2 * alpha * f / LAMBDA * T1B * np.exp(-pld / T1B) * (1 - np.exp(-tau / T1B))
        exp[tname] = {
            "white_paper_cbf": t["perfusion_rate"],
            "delta_m_over_gt_m0": ratio,
            "delta_m_over_m0scan": ratio / (1 - np.exp(-TR_M0 / t["t1"])),
            "m0scan_saturation_1_minus_exp_minus_TR_over_T1": 1 - np.exp(-TR_M0 / t["t1"]),
        }
    p["expected"] = exp
    p["verification_numpy"] = numpy_check_single(ds, label_type, tau, pld, alpha, labels)
    return p


# Left occipital grey matter, by the MigraineASL occipital_cortex_L rule (aslmig/atlas/migraine.py):
# x <= -1 mm, y <= -70 mm, above the tentorium surface z = -4 + 0.33 (y + 60) - 0.4 |x| mm.
OCCIPITAL_DROP = 0.20
OCCIPITAL_LABEL = 4


def left_occipital_grey(labels, affine):
    """Truth GM voxels of the left occipital cortex (voxel centres in MNI mm)."""
    ijk = np.indices(labels.shape).reshape(3, -1)
    x, y, z = (affine[:3, :3] @ ijk + affine[:3, 3:4]).reshape(3, *labels.shape)
    tentorium = -4.0 + 0.33 * (y + 60.0) - 0.4 * np.abs(x)
    return (labels == LABELS["GM"]) & (x <= -1.0) & (y <= -70.0) & (z > tentorium)


def make_occipital_drop(out: Path, labels, affine, hr_values, tmp: Path):
    """Make ``pcasl_occipital``: the PCASL exact recipe with -20 % CBF in left occipital GM."""
    name = "pcasl_occipital"
    tissues = tissue_table(hr_values, "pcasl_exact")
    reduced = (1.0 - OCCIPITAL_DROP) * tissues["GM"]["perfusion_rate"]
    tissues["GM_occipital_L"] = dict(tissues["GM"], perfusion_rate=reduced, t1=exact_t1(reduced))
    label_map = {**LABELS, "GM_occipital_L": OCCIPITAL_LABEL}
    drop_labels = labels.copy()
    drop_labels[left_occipital_grey(labels, affine)] = OCCIPITAL_LABEL
    gt_files = write_asldro_gt(tmp, drop_labels, tissues, affine, label_map)
    tau, pld, alpha = 1.8, 1.8, ALPHA_PCASL
    series = [
        asl_series(
            "m0scan control label control label", "pcasl", tau, tau + pld, alpha,
            shape=labels.shape, description=name,
        ),
        ground_truth_series(labels.shape),
    ]  # fmt: skip
    res = run_asldro(gt_files, series, tmp)
    check_gt_roundtrip(res[1]["data"], drop_labels, tissues, label_map)
    asl, ctx, m0 = split_m0(res[0]["data"], res[0]["context"])
    ds = out / name
    ds.mkdir(parents=True, exist_ok=True)
    write_series(ds, asl, ctx, m0, affine)
    write_truth(ds, drop_labels, tissues, affine, label_map)
    base = {key: value for key, value in tissues.items() if key in LABELS}
    p = common_params(name, drop_labels, affine, base, "pcasl")
    p["ground_truth"]["labels"] = label_map
    occipital = tissues["GM_occipital_L"]
    p["ground_truth"]["tissues"]["GM_occipital_L"] = {
        "cbf_ml_100g_min": occipital["perfusion_rate"],
        "att_s": occipital["transit_time"],
        "t1_s": occipital["t1"],
        "t2_s": occipital["t2"],
        "t2_star_s": occipital["t2_star"],
        "m0": occipital["m0"],
        "n_voxels": int((drop_labels == OCCIPITAL_LABEL).sum()),
    }
    p["recipe"] = (
        "pcasl_exact recipe; left occipital GM (x <= -1, y <= -70 mm, above the MigraineASL "
        f"tentorium surface) has CBF {reduced:g} (-{OCCIPITAL_DROP:.0%}) and its own exact T1"
    )
    p["physics"].update(
        {
            "labeling_duration_s": tau,
            "post_labeling_delay_s": pld,
            "asldro_signal_time_s": tau + pld,
        }
    )
    p["noise"] = {"desired_snr": 0.0, "random_seed": 0, "note": "noise off"}
    p["motion"] = None
    p["asldro_sidecar"] = clean_sidecar(res[0]["sidecar"])
    return p


def make_multi_delay(out: Path, labels, affine, hr_values, tmp: Path):
    """Make ``multi_delay``; return its params dict."""
    name = "multi_delay"
    tissues = tissue_table(hr_values, "default")
    gt_files = write_asldro_gt(tmp, labels, tissues, affine)
    tau = 1.8
    plds = [0.25, 0.5, 1.0, 1.5, 2.0, 2.5]
    series = []
    for pld in plds:
        # every series carries an m0scan: asldro 2.2.0's BIDS writer raises KeyError('m0') for
        # an asl series without m0scan when the GT M0 is an image (not one constant)
        ctx = "m0scan control label"
        series.append(
            asl_series(
                ctx,
                "pcasl",
                tau,
                tau + pld,
                ALPHA_PCASL,
                shape=labels.shape,
                description=f"PLD {pld}",
            )
        )
    series.append(ground_truth_series(labels.shape))
    res = run_asldro(gt_files, series, tmp)
    check_gt_roundtrip(res[-1]["data"], labels, tissues)
    vols, ctx, vol_pld, m0 = [], [], [], None
    for r, pld in zip(res[:-1], plds, strict=True):
        for k, c in enumerate(r["context"]):
            if c == "m0scan":
                if m0 is None:
                    m0 = r["data"][..., k]
                else:  # noise off: all m0scans are identical; keep the first one
                    assert np.array_equal(m0, r["data"][..., k])
            else:
                vols.append(r["data"][..., k])
                ctx.append(c)
                vol_pld.append(pld)
    asl = np.stack(vols, -1)
    ds = out / name
    ds.mkdir(parents=True, exist_ok=True)
    write_series(ds, asl, ctx, m0, affine)
    (ds / "plds.tsv").write_text(
        "volume_type\tpost_labeling_delay\n"
        + "".join(f"{c}\t{p}\n" for c, p in zip(ctx, vol_pld, strict=True))
    )
    write_truth(ds, labels, tissues, affine)
    p = common_params(name, labels, affine, tissues, "pcasl")
    p["recipe"] = "asldro default 3 T ground-truth values (tissue T1 GM 1.33 s, WM 0.83 s)"
    p["physics"].update({"labeling_duration_s": tau, "post_labeling_delays_s": plds})
    p["acquisition"].update(
        {
            "asl_context": ctx,
            "post_labeling_delay_per_volume_s": vol_pld,
            "m0": "separate file m0scan.nii.gz (m0scan of the first series; every "
            "asldro series had an identical one)",
            "series": "one asldro asl series per PLD, concatenated in PLD order",
        }
    )
    p["noise"] = {"desired_snr": 0.0, "random_seed": 0, "note": "noise off"}
    p["motion"] = None
    p["asldro_sidecars"] = [clean_sidecar(r["sidecar"]) for r in res[:-1]]
    # independent numpy check: dM/M0 per PLD against the Buxton model, and white-paper CBF per PLD
    asl_r = nib.load(ds / "asl.nii.gz").get_fdata()
    m0_r = nib.load(ds / "m0scan.nii.gz").get_fdata()
    check = {}
    for tname in ("GM", "WM"):
        t = tissues[tname]
        m = labels == LABELS[tname]
        rows = []
        for pld in plds:
            pairs = list(enumerate(zip(ctx, vol_pld, strict=True)))
            ic = [i for i, (c, q) in pairs if q == pld and c == "control"]
            il = [i for i, (c, q) in pairs if q == pld and c == "label"]
            dm = asl_r[..., ic].mean(-1) - asl_r[..., il].mean(-1)
            meas = (dm / np.where(m0_r > 0, m0_r, np.inf))[m]
            model = buxton_pcasl_dm_over_m0(
                t["perfusion_rate"], t["transit_time"], t["t1"], tau, pld, ALPHA_PCASL
            )
            sat = 1 - np.exp(-TR_M0 / t["t1"])
            wp = wp_pcasl_cbf(dm, m0_r, tau, pld, ALPHA_PCASL)[m]
            rows.append(
                {
                    "pld_s": pld,
                    "buxton_delta_m_over_gt_m0": model,
                    "buxton_delta_m_over_m0scan": model / sat,
                    "measured_delta_m_over_m0scan_mean": float(meas.mean()),
                    "measured_min": float(meas.min()),
                    "measured_max": float(meas.max()),
                    "white_paper_cbf_mean": float(wp.mean()),
                }
            )
            # float32 storage of control (~60) and label limits dM to ~1e-4 relative
            assert np.allclose(meas, model / sat, rtol=2e-4, atol=0), (tname, pld)
        check[tname] = rows
    p["verification_numpy"] = check
    return p


def noisy_slab(labels, affine, z0=14, z1=26):
    """Slab of 12 axial 3 mm slices (z 14..25 of the crop) with most GM, cropped in-plane."""
    sl = labels[:, :, z0:z1]
    nz = np.argwhere(sl > 0)
    lo, hi = nz.min(0), nz.max(0) + 1
    lo[:2] = np.maximum(lo[:2] - 1, 0)
    hi[:2] = np.minimum(hi[:2] + 1, sl.shape[:2])
    sub = sl[lo[0] : hi[0], lo[1] : hi[1], :].copy()
    aff = affine.copy()
    aff[:3, 3] = affine[:3, 3] + np.diag(affine)[:3] * np.array([lo[0], lo[1], z0])
    return sub, aff


def make_noisy(out: Path, labels, affine, hr_values, tmp: Path, snr, seed, npairs=8):
    """Make ``pcasl_noisy/snr<SNR>``; return its params dict."""
    name = f"pcasl_noisy/snr{int(snr)}"
    slab, saff = noisy_slab(labels, affine)
    tissues = tissue_table(hr_values, "pcasl_exact")
    gt_files = write_asldro_gt(tmp, slab, tissues, saff)
    tau, pld = 1.8, 1.8
    context = " ".join(["m0scan"] + ["control label"] * npairs)
    res = run_asldro(
        gt_files,
        [
            asl_series(
                context,
                "pcasl",
                tau,
                tau + pld,
                ALPHA_PCASL,
                snr=snr,
                seed=seed,
                shape=slab.shape,
                description=f"SNR {snr}",
            )
        ],
        tmp,
    )
    asl, ctx, m0 = split_m0(res[0]["data"], res[0]["context"])
    ds = out / name
    ds.mkdir(parents=True, exist_ok=True)
    gt_m0 = gt_volumes(slab, tissues)["m0"]
    sigma = float(np.mean(np.abs(gt_m0[gt_m0 != 0])) / snr)
    step = 2.0 ** np.floor(np.log2(sigma / 200.0))
    write_series(ds, asl, ctx, m0, saff, step=step)
    write_truth(ds, slab, tissues, saff)
    p = common_params(name, slab, saff, tissues, "pcasl")
    p["recipe"] = "same ground truth as pcasl_exact (white-paper exact), 12-slice slab"
    p["physics"].update({"labeling_duration_s": tau, "post_labeling_delay_s": pld})
    p["storage_quantization_step"] = step
    p["storage_note"] = (
        "asl/m0scan values rounded to multiples of storage_quantization_step "
        "(a power of two <= sigma/200, exact in float32) so that gzip can "
        "compress them; this adds < 3e-6 of the noise variance"
    )
    p["noise"] = {
        "desired_snr": float(snr),
        "random_seed": int(seed),
        "model": "asldro AddComplexNoiseFilter: N(0, sigma) added to real and imaginary parts "
        "of the FFT of each volume (scaled by sqrt(N)), inverse FFT, magnitude taken; "
        "image-space sigma per channel = mean(|GT M0| over non-zero GT voxels)/SNR",
        "sigma_per_channel": sigma,
        "numpy_random": "np.random.seed(random_seed) once per series, legacy np.random.normal",
    }
    p["acquisition"].update(
        {
            "asl_context": ctx,
            "n_pairs": npairs,
            "m0": "separate file m0scan.nii.gz (one noisy m0scan volume)",
            "slab": "z 14..25 of the pcasl_exact grid",
        }
    )
    p["motion"] = None
    p["asldro_sidecar"] = clean_sidecar(res[0]["sidecar"])
    chk = numpy_check_single(ds, "pcasl", tau, pld, ALPHA_PCASL, slab)
    # standard error of the GM mean of the pair-averaged white-paper CBF map (empirical)
    asl_r = nib.load(ds / "asl.nii.gz").get_fdata()
    m0_r = nib.load(ds / "m0scan.nii.gz").get_fdata()
    c = np.array(ctx)
    dm_pairs = asl_r[..., c == "control"] - asl_r[..., c == "label"]
    cbf_pairs = wp_pcasl_cbf(dm_pairs, m0_r[..., None], tau, pld, ALPHA_PCASL)
    gm = slab == LABELS["GM"]
    v = cbf_pairs[gm]  # (n_gm, npairs)
    se = float(v.std(ddof=1) / np.sqrt(v.size))
    chk["gm_mean_standard_error"] = se
    chk["gm_mean_relative_standard_error"] = se / 60.0
    chk["gm_per_voxel_pair_cbf_sd"] = float(v.std(ddof=1))
    chk["gm_mean_relative_error"] = chk["white_paper_cbf"]["GM"]["mean"] / 60.0 - 1.0
    p["verification_numpy"] = chk
    return p


def motion_table(n):
    """Per-volume rigid displacement (asldro parameters; volume 0 = m0scan = reference).

    Rotations in degrees, translations in asldro world units (1 unit = 3 mm).
    """
    rng = np.random.RandomState(2024)
    t = np.arange(n, dtype=float)
    drift = t / (n - 1)
    mot = {
        "rot_x": np.round(2.0 * drift + rng.uniform(-0.2, 0.2, n), 3),
        "rot_y": np.round(-1.0 * drift + rng.uniform(-0.2, 0.2, n), 3),
        "rot_z": np.round(1.5 * drift + rng.uniform(-0.2, 0.2, n), 3),
        "transl_x": np.round(0.5 * drift + rng.uniform(-0.05, 0.05, n), 4),
        "transl_y": np.round(-0.6 * drift + rng.uniform(-0.05, 0.05, n), 4),
        "transl_z": np.round(0.8 * drift + rng.uniform(-0.05, 0.05, n), 4),
    }
    # a sudden jump at volume 5 (a control), back to the drift after it
    mot["transl_z"][5] += 0.7
    mot["rot_x"][5] += 3.0
    for k in mot:
        mot[k][0] = 0.0
        mot[k] = [round(float(x), 4) for x in mot[k]]
    return mot


def rigid_matrix_mm(rx, ry, rz, tx, ty, tz):
    """Return asldro's motion model in mm: x' = T(t) Rx Ry Rz x about the world (MNI) origin."""
    a, b, c = np.radians([rx, ry, rz])
    rx_m = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    ry_m = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rz_m = np.array([[np.cos(c), -np.sin(c), 0], [np.sin(c), np.cos(c), 0], [0, 0, 1]])
    m = np.eye(4)
    m[:3, :3] = rx_m @ ry_m @ rz_m
    m[:3, 3] = np.array([tx, ty, tz]) * VOXEL_MM
    return m


def make_motion(out: Path, labels, affine, hr_values, tmp: Path, npairs=4):
    """Make ``pcasl_motion``; return its params dict."""
    name = "pcasl_motion"
    tissues = tissue_table(hr_values, "pcasl_exact")
    gt_files = write_asldro_gt(tmp, labels, tissues, affine)
    tau, pld = 1.8, 1.8
    context = " ".join(["m0scan"] + ["control label"] * npairs)
    n = 1 + 2 * npairs
    mot = motion_table(n)
    res = run_asldro(
        gt_files,
        [
            asl_series(
                context,
                "pcasl",
                tau,
                tau + pld,
                ALPHA_PCASL,
                shape=labels.shape,
                motion=mot,
                description="motion",
            ),
            asl_series(
                context,
                "pcasl",
                tau,
                tau + pld,
                ALPHA_PCASL,
                shape=labels.shape,
                description="no motion reference",
            ),
        ],
        tmp,
    )
    asl_all = res[0]["data"]
    ctx_all = res[0]["context"]
    ds = out / name
    ds.mkdir(parents=True, exist_ok=True)
    # m0scan (volume 0, no motion) is the reference; it is written separately
    asl, ctx, m0 = split_m0(asl_all, ctx_all)
    step = 2.0**-10
    write_series(ds, asl, ctx, m0, affine, step=step)
    write_truth(ds, labels, tissues, affine)
    p = common_params(name, labels, affine, tissues, "pcasl")
    p["storage_quantization_step"] = step
    p["storage_note"] = (
        "asl/m0scan values rounded to multiples of 2^-10 (~0.001; GM dM ~0.46) "
        "so that gzip can compress the spline-interpolated volumes"
    )
    p["recipe"] = "same ground truth as pcasl_exact (white-paper exact) + per-volume rigid motion"
    p["physics"].update({"labeling_duration_s": tau, "post_labeling_delay_s": pld})
    p["noise"] = {"desired_snr": 0.0, "random_seed": 0, "note": "noise off"}
    vol_rows = []
    for k in range(n):
        args = [
            mot[key][k] for key in ("rot_x", "rot_y", "rot_z", "transl_x", "transl_y", "transl_z")
        ]
        motion_mm = rigid_matrix_mm(*args)
        vol_rows.append(
            {
                "asldro_volume": k,
                "volume_type": ctx_all[k],
                "asl_nii_volume": None if ctx_all[k] == "m0scan" else k - 1,
                "rot_x_deg": args[0],
                "rot_y_deg": args[1],
                "rot_z_deg": args[2],
                "transl_x_asldro_units": args[3],
                "transl_y_asldro_units": args[4],
                "transl_z_asldro_units": args[5],
                "transl_mm": [round(a * VOXEL_MM, 10) for a in args[3:]],
                "object_motion_world_mm": np.round(motion_mm, 10).tolist(),
            }
        )
    p["motion"] = {
        "model": "asldro TransformResampleImageFilter: the object is moved by M = T(t) Rx Ry Rz "
        "(rotation about the world origin = MNI origin, angles in degrees, right-handed "
        "matrices Rx=[[1,0,0],[0,c,-s],[0,s,c]] etc.); a voxel at world position x of "
        "the moved volume shows the reference object at M^-1 x.  Resampling: nilearn "
        "resample_img, interpolation 'continuous' (3rd-order spline, scipy "
        "affine_transform, cval 0) then clipped to [min(0, data), max(data)] "
        "(nilearn clip=True), then magnitude; on the unmoved 3 mm grid.  The written "
        "affine is the same for every volume (motion is in the "
        "voxels, not in the header).",
        "reference": "the m0scan (m0scan.nii.gz) and the truth maps are unmoved",
        "rotation_origin_world_mm": [0.0, 0.0, 0.0],
        "per_volume": vol_rows,
    }
    p["acquisition"].update(
        {"asl_context": ctx, "m0": "separate file m0scan.nii.gz (asldro volume 0, no motion)"}
    )
    p["asldro_sidecar"] = clean_sidecar(res[0]["sidecar"])
    # check: the unmoved reference series is white-paper exact; the moved series is not
    ref_asl, _, ref_m0 = split_m0(res[1]["data"], res[1]["context"])
    c = np.array(ctx)
    gm = labels == LABELS["GM"]
    dm_ref = ref_asl[..., c == "control"].mean(-1) - ref_asl[..., c == "label"].mean(-1)
    cbf_ref = wp_pcasl_cbf(dm_ref, ref_m0, tau, pld, ALPHA_PCASL)
    asl_r = nib.load(ds / "asl.nii.gz").get_fdata()
    m0_r = nib.load(ds / "m0scan.nii.gz").get_fdata()
    dm_mov = asl_r[..., c == "control"].mean(-1) - asl_r[..., c == "label"].mean(-1)
    cbf_mov = wp_pcasl_cbf(dm_mov, m0_r, tau, pld, ALPHA_PCASL)
    rms = [
        float(np.sqrt(np.mean((asl_r[..., k] - ref_asl[..., k]) ** 2)))
        for k in range(asl_r.shape[-1])
    ]
    # independent reproduction of every moved volume: spin-echo control/label signal from the
    # truth (our own Buxton formula), moved with scipy's cubic spline and clipped like nilearn
    from scipy import ndimage

    ctrl0, lbl0 = np.zeros(labels.shape), np.zeros(labels.shape)
    for tname, lab in LABELS.items():
        t = tissues[tname]
        s_ctrl = t["m0"] * (1 - np.exp(-TR_ASL / t["t1"])) * np.exp(-ECHO_TIME / t["t2"])
        dm = (
            buxton_pcasl_dm_over_m0(
                t["perfusion_rate"], t["transit_time"], t["t1"], tau, pld, ALPHA_PCASL
            )
            * t["m0"]
            * np.exp(-ECHO_TIME / t["t2"])
        )
        ctrl0[labels == lab] = s_ctrl
        lbl0[labels == lab] = s_ctrl - dm
    repro = []
    for row in vol_rows[1:]:
        motion_mm = np.array(row["object_motion_world_mm"])
        vox = np.linalg.inv(affine) @ np.linalg.inv(motion_mm) @ affine
        src = ctrl0 if row["volume_type"] == "control" else lbl0
        pred = ndimage.affine_transform(src, vox[:3, :3], vox[:3, 3], order=3)
        pred = np.abs(pred.clip(min(src.min(), 0.0), src.max()))
        repro.append(float(np.abs(pred - asl_r[..., row["asl_nii_volume"]]).max()))
    assert max(repro) <= step, repro
    p["verification_numpy"] = {
        "scipy_reproduction_max_abs_error_per_asl_volume": repro,
        "no_motion_reference_gm_white_paper_cbf": tissue_stats(cbf_ref, labels, 1),
        "moved_series_gm_white_paper_cbf_uncorrected": {
            "mean": float(np.nanmean(cbf_mov[gm])),
            "median": float(np.nanmedian(cbf_mov[gm])),
        },
        "rms_difference_moved_vs_unmoved_per_asl_volume": rms,
    }
    return p


def default_check(tmp: Path):
    """White-paper CBF of asldro's DEFAULT acquisition (hrgt 1 mm -> 64x64x12, noise off)."""
    from asldro.validators.user_parameter_input import get_example_input_params

    prm = get_example_input_params()
    prm["image_series"] = [s for s in prm["image_series"] if s["series_type"] != "structural"]
    for s in prm["image_series"]:
        if s["series_type"] == "asl":
            s["series_parameters"]["desired_snr"] = 0.0
    zpath = tmp / "default.zip"
    run_full_pipeline(prm, str(zpath))
    with zipfile.ZipFile(zpath) as z:
        z.extractall(tmp / "default")
    d = nib.load(tmp / "default" / "asl" / "001_asl.nii.gz").get_fdata()
    gt = {
        q: nib.load(tmp / "default" / "ground_truth" / f"002_ground_truth_{q}.nii.gz").get_fdata()
        for q in ("perfusion_rate", "t1", "seg_label")
    }
    cbf = wp_pcasl_cbf(d[..., 1] - d[..., 2], d[..., 0], 1.8, 1.8, 0.85)
    out = {"acq_matrix": [64, 64, 12], "m0scan_TR_s": 10.0, "desired_snr": 0.0}
    for name, lab, f, t1 in (("GM", 1, 60.0, 1.33), ("WM", 2, 20.0, 0.83)):
        pure = (
            (gt["seg_label"] == lab)
            & (np.abs(gt["perfusion_rate"] - f) < 1e-6)
            & (np.abs(gt["t1"] - t1) < 1e-6)
        )
        out[name] = {
            "pure_voxels": int(pure.sum()),
            "white_paper_cbf_pure_mean": float(cbf[pure].mean()),
            "white_paper_cbf_all_seg_voxels_mean": float(np.nanmean(cbf[gt["seg_label"] == lab])),
        }
        # analytic: Buxton with the default tissue T1, M0 saturated with TR 10 s
        att = 0.8 if name == "GM" else 1.2
        r = buxton_pcasl_dm_over_m0(f, att, t1, 1.8, 1.8, 0.85)
        wp_no_sat = float(wp_pcasl_cbf(r, 1.0, 1.8, 1.8, 0.85))
        out[name]["analytic_white_paper_cbf_m0_unsaturated"] = wp_no_sat
        out[name]["analytic_white_paper_cbf_m0_TR10"] = wp_no_sat / (1 - np.exp(-10.0 / t1))
    return out


# --------------------------------------------------------------------------------------------
def to_jsonable(o):
    """Convert numpy scalars/arrays inside ``o`` to plain Python for json."""
    if isinstance(o, dict):
        return {k: to_jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [to_jsonable(v) for v in o]
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return o


def main(argv=None):
    """Generate the datasets (all, or those named with --only)."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument(
        "--only",
        nargs="*",
        default=None,
        help="subset of: pcasl_exact pasl_exact multi_delay pcasl_noisy pcasl_motion "
        "pcasl_occipital default_check",
    )
    args = ap.parse_args(argv)
    want = (
        set(args.only)
        if args.only
        else {
            "pcasl_exact",
            "pasl_exact",
            "multi_delay",
            "pcasl_noisy",
            "pcasl_motion",
            "pcasl_occipital",
            "default_check",
        }
    )
    data, aff1 = load_hrgt()
    hr_values = hrgt_tissue_values(data)
    labels, affine = make_label_grid(data, aff1)
    del data
    args.out.mkdir(parents=True, exist_ok=True)
    summary = {}
    jobs = []
    if "pcasl_exact" in want:
        jobs.append(
            (
                "pcasl_exact",
                lambda t: make_exact(
                    "pcasl_exact", "pcasl", args.out, labels, affine, hr_values, t
                ),
            )
        )
    if "pasl_exact" in want:
        jobs.append(
            (
                "pasl_exact",
                lambda t: make_exact("pasl_exact", "pasl", args.out, labels, affine, hr_values, t),
            )
        )
    if "multi_delay" in want:
        jobs.append(
            ("multi_delay", lambda t: make_multi_delay(args.out, labels, affine, hr_values, t))
        )
    if "pcasl_noisy" in want:
        for snr, seed in ((10.0, 10), (100.0, 100)):
            jobs.append(
                (
                    f"pcasl_noisy/snr{int(snr)}",
                    lambda t, snr=snr, seed=seed: make_noisy(
                        args.out, labels, affine, hr_values, t, snr, seed
                    ),
                )
            )
    if "pcasl_motion" in want:
        jobs.append(("pcasl_motion", lambda t: make_motion(args.out, labels, affine, hr_values, t)))
    if "pcasl_occipital" in want:
        jobs.append(
            (
                "pcasl_occipital",
                lambda t: make_occipital_drop(args.out, labels, affine, hr_values, t),
            )
        )
    for name, job in jobs:
        with tempfile.TemporaryDirectory() as td:
            p = to_jsonable(job(Path(td)))
        (args.out / name / "params.json").write_text(json.dumps(p, indent=2) + "\n")
        summary[name] = p.get("verification_numpy")
        print(name, json.dumps(to_jsonable(summary[name]))[:400], flush=True)
    if "default_check" in want:
        with tempfile.TemporaryDirectory() as td:
            d = to_jsonable(default_check(Path(td)))
        (args.out / "default_check.json").write_text(json.dumps(d, indent=2) + "\n")
        print("default_check", json.dumps(d), flush=True)


if __name__ == "__main__":
    main()
