"""Which ASL image to register to the anatomy: the reference (M0 / mean control), the
perfusion-weighted image (mean ΔM) or both combined? Prints figures per run.

Usage::

    python benchmarks/registration_target.py BIDS_DIR [--participant-label S2018 ...]

For each ASL run the series is preprocessed as the pipeline does (motion correction,
reference, brain mask), then registered three times to the template (affine + SyN, the
pipeline's registration without a T1w) with a different moving image:

``reference``
    what the pipeline uses: the M0 when there is one, else the mean control;
``pwi``
    the mean ΔM of the odd-numbered ΔM volumes;
``combined``
    the sum of the two, each divided by its median within the brain mask.

The figures judge each registration with data the target did not see, so that the PWI
target is not rewarded for finding itself: the template's tissue maps are carried onto the
ASL grid and the mean ΔM of the *even-numbered* ΔM volumes is read in grey matter and white
matter (probability >= 0.7, as the QC does); a better registration puts more of the
perfusion in the grey-matter map (higher GM/WM ratio, higher correlation of ΔM with the GM
probability). The brain-mask Dice in template space (the QC's ``registration_dice``) is
printed too. Wall time per registration is printed (a loaded machine inflates it).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import nibabel as nb
import numpy as np

from aslmig.anat.registration import apply_transforms, register
from aslmig.asl.preprocess import preprocess_asl
from aslmig.atlas.templates import resolve_template
from aslmig.bids.layout import collect_runs, open_layout
from aslmig.cbf.qc import dice, tissue_mask
from aslmig.cbf.volumes import split_asl_series

TARGETS = ("reference", "pwi", "combined")


def _save(data: np.ndarray, like: nb.Nifti1Image, path: Path) -> Path:
    nb.Nifti1Image(data.astype(np.float32), like.affine).to_filename(path)
    return path


def _half_means(realigned: Path, run) -> tuple[np.ndarray, np.ndarray]:
    """Mean ΔM of the odd- and of the even-numbered ΔM volumes."""
    series = nb.load(realigned).get_fdata(dtype=np.float32)
    meta = run.metadata
    split = split_asl_series(series, meta.volume_types, meta.post_labeling_delay)
    deltam = split.deltam
    return deltam[..., 0::2].mean(axis=-1), deltam[..., 1::2].mean(axis=-1)


def _targets(reference: np.ndarray, pwi: np.ndarray, brain: np.ndarray) -> dict[str, np.ndarray]:
    scaled_ref = reference / np.median(reference[brain])
    scaled_pwi = np.clip(pwi, 0, None) / np.median(np.clip(pwi[brain], 0, None))
    return {
        "reference": reference,
        "pwi": np.clip(pwi, 0, None),
        "combined": (scaled_ref + scaled_pwi) * brain,
    }


def _figures(reg, template, mask_file: Path, reference_file: Path, evaluation, out: Path):
    """Dice in template space; GM/WM ratio and correlation of the held-out ΔM."""
    brain = nb.load(mask_file).get_fdata() > 0
    mask_std = apply_transforms(
        mask_file,
        template.t1w,
        list(map(str, reg.forward_transforms)),
        out / "mask_std.nii.gz",
        interpolation="nearestNeighbor",
    )
    template_brain = nb.load(template.brain_mask).get_fdata() > 0.5
    registration_dice = dice(nb.load(mask_std).get_fdata() > 0.5, template_brain)
    maps = {}
    for tissue in ("gm", "wm"):
        resampled = apply_transforms(
            getattr(template, tissue),
            reference_file,
            list(map(str, reg.inverse_transforms)),
            out / f"{tissue}_asl.nii.gz",
            invert_flags=list(reg.inverse_invert_flags),
        )
        maps[tissue] = nb.load(resampled).get_fdata()
    gm_mean = evaluation[tissue_mask(maps["gm"]) & brain].mean()
    wm_mean = evaluation[tissue_mask(maps["wm"]) & brain].mean()
    correlation = np.corrcoef(evaluation[brain], maps["gm"][brain])[0, 1]
    return registration_dice, gm_mean / wm_mean, correlation


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bids_dir")
    parser.add_argument("--participant-label", nargs="*")
    args = parser.parse_args()
    template = resolve_template()
    runs = collect_runs(open_layout(args.bids_dir))
    if args.participant_label:
        runs = [run for run in runs if run.subject in args.participant_label]
    print(f"{'run':28s} {'target':10s} {'Dice':>6s} {'GM/WM':>6s} {'r(dM,pGM)':>9s} {'s':>5s}")
    for run in runs:
        with tempfile.TemporaryDirectory() as scratch:
            work = Path(scratch)
            pre = preprocess_asl(run.asl_file, run.metadata, work, run.m0_file)
            like = nb.load(pre.reference)
            brain = nb.load(pre.mask).get_fdata() > 0
            fit_half, evaluation = _half_means(pre.realigned, run)
            images = _targets(like.get_fdata(), fit_half, brain)
            for name in TARGETS:
                out = work / name
                out.mkdir()
                moving = _save(images[name], like, out / "moving.nii.gz")
                start = time.perf_counter()
                reg = register(moving, template.t1w, out / "xfm_", "syn", moving_mask=pre.mask,
                               fixed_mask=template.brain_mask)  # fmt: skip
                seconds = time.perf_counter() - start
                figures = _figures(reg, template, pre.mask, pre.reference, evaluation, out)
                print(f"{run.name:28s} {name:10s} {figures[0]:6.3f} {figures[1]:6.2f} "
                      f"{figures[2]:9.3f} {seconds:5.0f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main()
