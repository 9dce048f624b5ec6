"""Benchmark: N4, brain extraction, SyN at 2 mm and Atropos on a 1 mm whole-head T1w.

The subject is a 182x218x182 1 mm T1w built from the nilearn copy of the ICBM 2009a
template (skull-stripped) with a synthetic CSF rim, skull and scalp added, moved by an
affine (rotation 6 deg, scaling 3-6 %, translation 3-5 mm), multiplied by a smooth bias
field (about +-30 %) and given Rician-like noise; without nilearn, a larger copy of the
tests' ellipsoid phantom is used instead. The template is the aslmig bundle (2 mm,
skull-stripped) when present, else the same source at 2 mm; a with-skull 2 mm template
(synthetic skull) is timed too. Each step runs in a fresh process, so its peak RSS
(``resource.getrusage``) is its own; times are wall-clock seconds. Never asserts.

Run: python benchmarks/anat_registration.py [threads]
"""

from __future__ import annotations

import concurrent.futures
import multiprocessing
import resource
import sys
import tempfile
import time
from pathlib import Path

import nibabel as nb
import numpy as np
from scipy import ndimage

ROOT = Path(__file__).resolve().parents[1]
NILEARN_T1 = "nilearn/datasets/data/mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz"
BUNDLE = ROOT / "aslmig/data/templateflow/tpl-MNI152NLin2009aSym"
SUBJECT_SHAPE = (182, 218, 182)


def nilearn_t1() -> Path | None:
    for folder in map(Path, sys.path):
        candidate = folder / NILEARN_T1
        if candidate.is_file():
            return candidate
    return None


def add_head(brain: np.ndarray, voxel_mm: float) -> tuple[np.ndarray, np.ndarray]:
    """Return (head image, brain mask): CSF rim, skull and scalp around a stripped brain."""
    mask = ndimage.binary_fill_holes(ndimage.gaussian_filter(brain, 1.0 / voxel_mm) > 20)
    distance = ndimage.distance_transform_edt(~mask) * voxel_mm
    peak = np.percentile(brain[mask], 95)
    head = brain.copy()
    head[(distance > 0) & (distance <= 3)] = 0.20 * peak  # CSF
    head[(distance > 3) & (distance <= 9)] = 0.06 * peak  # skull
    head[(distance > 9) & (distance <= 15)] = 0.75 * peak  # scalp
    return ndimage.gaussian_filter(head, 0.5), mask


def source_images() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return 1 mm (brain, head, mask) arrays and their affine, from nilearn or a phantom."""
    path = nilearn_t1()
    if path is not None:
        image = nb.load(str(path))
        brain = np.asanyarray(image.dataobj).astype(np.float32)
        head, mask = add_head(brain, 1.0)
        return brain, head, mask, image.affine
    sys.path.insert(0, str(ROOT / "tests" / "anat"))
    import anat_phantom

    anat_phantom.HEAD_AXES = anat_phantom.HEAD_AXES * 2.2
    intensity, labels = anat_phantom.sample(shape=(197, 233, 189), spacing=1.0, supersample=1)
    mask = labels >= anat_phantom.CSF
    affine = anat_phantom.grid_affine((197, 233, 189), 1.0)
    return np.where(mask, intensity, 0.0), intensity, mask, affine


def resample(data, affine, world_to_source, shape, out_affine, order):
    """Sample ``data`` at ``world_to_source @ out_affine`` voxel positions."""
    matrix = np.linalg.inv(affine) @ world_to_source @ out_affine
    return ndimage.affine_transform(
        data, matrix[:3, :3], offset=matrix[:3, 3], output_shape=shape, order=order
    )


def perturbation() -> np.ndarray:
    angle = np.deg2rad(6.0)
    rotation = np.array(
        [[1, 0, 0], [0, np.cos(angle), -np.sin(angle)], [0, np.sin(angle), np.cos(angle)]]
    )
    matrix = np.eye(4)
    matrix[:3, :3] = rotation @ np.diag([1.03, 0.96, 1.06])
    matrix[:3, 3] = [3.0, -5.0, 4.0]
    return matrix


def make_inputs(folder: Path) -> dict[str, Path]:
    brain, head, mask, affine = source_images()
    out_affine = np.diag([1.0, 1.0, 1.0, 1.0])
    out_affine[:3, 3] = -(np.array(SUBJECT_SHAPE) - 1) / 2 + np.array([0, -18, 18])
    move = perturbation()
    t1w = resample(head, affine, move, SUBJECT_SHAPE, out_affine, 1)
    truth = resample(mask.astype(np.float32), affine, move, SUBJECT_SHAPE, out_affine, 0)
    x, y, z = np.meshgrid(*[np.linspace(-1, 1, n) for n in SUBJECT_SHAPE], indexing="ij")
    t1w = t1w * np.exp(0.3 * (0.7 * x - 0.5 * y + 0.6 * z**2))
    rng = np.random.default_rng(0)
    sigma = 0.02 * np.percentile(t1w[truth > 0], 95)
    t1w = np.hypot(t1w + rng.normal(0, sigma, t1w.shape), rng.normal(0, sigma, t1w.shape))
    files = {"t1w": folder / "sub_T1w.nii.gz", "truth": folder / "sub_truth_mask.nii.gz"}
    nb.Nifti1Image(t1w.astype(np.float32), out_affine).to_filename(files["t1w"])
    nb.Nifti1Image((truth > 0).astype(np.uint8), out_affine).to_filename(files["truth"])
    files.update(make_templates(folder, brain, head, mask, affine))
    return files


def make_templates(folder, brain, head, mask, affine) -> dict[str, Path]:
    zoom_affine = affine @ np.diag([2.0, 2.0, 2.0, 1.0])
    shape = tuple(int(n) for n in np.ceil(np.array(brain.shape) / 2))
    files = {}
    for name, data in (("tpl_skull", head), ("tpl_brain", brain), ("tpl_mask", mask)):
        order = 0 if name == "tpl_mask" else 1
        small = resample(data.astype(np.float32), affine, np.eye(4), shape, zoom_affine, order)
        files[name] = folder / f"{name}.nii.gz"
        nb.Nifti1Image(small.astype(np.float32), zoom_affine).to_filename(files[name])
    bundle_t1w = BUNDLE / "tpl-MNI152NLin2009aSym_res-02_desc-brain_T1w.nii.gz"
    bundle_mask = BUNDLE / "tpl-MNI152NLin2009aSym_res-02_desc-brain_mask.nii.gz"
    if bundle_t1w.is_file() and bundle_mask.is_file():
        files["tpl_brain"], files["tpl_brain_mask"] = bundle_t1w, bundle_mask
    else:
        files["tpl_brain_mask"] = files["tpl_mask"]
    return files


def step(name: str, files: dict[str, Path], folder: Path, threads: int) -> dict:
    """Run one step in this (fresh) process; return its time, peak RSS and a check."""
    from aslmig.anat import set_threads

    set_threads(threads)
    from aslmig import anat

    anat.dice  # noqa: B018 - import everything before the baseline
    import ants  # noqa: F401

    baseline = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    start = time.perf_counter()
    check = RUNNERS[name](files, folder / name)
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_mb": peak / 1024, "import_mb": baseline / 1024, **check}


def run_n4(files, out):
    from aslmig.anat import n4_bias_correct

    n4_bias_correct(files["t1w"], out / "n4.nii.gz")
    return {}


def run_extraction(template, mask):
    def run(files, out):
        from aslmig.anat import dice, extract_brain

        result = extract_brain(files["t1w"], files[template], files[mask], out)
        return {"dice_vs_truth": round(dice(result.mask, files["truth"]), 3)}

    return run


def run_syn(files, out):
    from aslmig.anat import apply_transforms, dice, register

    stripped = out / "brain.nii.gz"
    truth = nb.load(str(files["truth"]))
    head = nb.load(str(files["t1w"]))
    out.mkdir(parents=True, exist_ok=True)
    brain = np.asanyarray(head.dataobj) * (np.asanyarray(truth.dataobj) > 0)
    nb.Nifti1Image(brain.astype(np.float32), head.affine).to_filename(stripped)
    result = register(stripped, files["tpl_brain"], out / "syn_", "syn")
    back = apply_transforms(
        files["tpl_brain_mask"],
        files["t1w"],
        result.inverse_transforms,
        out / "mask_in_t1w.nii.gz",
        interpolation="nearestNeighbor",
        invert_flags=result.inverse_invert_flags,
    )
    return {"dice_vs_truth": round(dice(back, files["truth"]), 3)}


def run_segmentation(files, out):
    from aslmig.anat import n4_bias_correct, segment_tissues

    corrected = n4_bias_correct(files["t1w"], out / "n4.nii.gz", mask_file=files["truth"])
    segment_tissues(corrected, files["truth"], None, out)
    return {}


RUNNERS = {
    "n4_1mm": run_n4,
    "brain_extraction_stripped_template": run_extraction("tpl_brain", "tpl_brain_mask"),
    "brain_extraction_skull_template": run_extraction("tpl_skull", "tpl_mask"),
    "syn_2mm_brain_to_template": run_syn,
    "atropos_kmeans_1mm": run_segmentation,
}


def main() -> None:
    threads = int(sys.argv[1]) if len(sys.argv) > 1 else 2
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="aslmig-bench-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        files = make_inputs(folder)
        print(f"inputs built in {time.perf_counter() - start:.1f} s; threads = {threads}")
        print(f"template (stripped): {files['tpl_brain']}")
        for name in RUNNERS:
            with concurrent.futures.ProcessPoolExecutor(1, mp_context=context) as pool:
                result = pool.submit(step, name, files, folder, threads).result()
            extra = {k: v for k, v in result.items() if k not in ("seconds", "peak_mb")}
            print(
                f"{name:38s} {result['seconds']:7.1f} s  peak RSS {result['peak_mb']:7.0f} MB"
                f"  {extra}"
            )


if __name__ == "__main__":
    main()
