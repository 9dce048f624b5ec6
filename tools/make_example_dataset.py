"""Build the small ASL-BIDS example dataset shipped in ``aslmig/data/example``.

Run from the project root: ``python tools/make_example_dataset.py``. It is deterministic
(seeded) and uses the engine's own white-paper forward model, so the ground truth is
known exactly.

Anatomy: the 2 mm MNI152NLin2009aSym template bundled with aslmig (tissue probability
maps), moved by a participant-specific rigid transform so that registration has work to do.
Perfusion: grey matter 60 and white matter 20 mL/100 g/min (partial-volume weighted, with
tissue-specific M0), and -15 % in the left occipital grey matter (MNI y < -70 mm, x < 0) in
the ictal session of the migraine-with-aura participant. PCASL, 3D readout, 5 mm voxels,
4 control/label pairs, separate M0, Gaussian noise.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nb
import numpy as np
from scipy import ndimage

from aslmig.asl.rigid import rigid_matrix
from aslmig.cbf.constants import resolve_constants
from aslmig.cbf.single_delay import single_delay_signal

PROJECT = Path(__file__).resolve().parents[1]
ROOT = PROJECT / "aslmig" / "data" / "example"
TEMPLATE = PROJECT / "aslmig" / "data" / "templateflow" / "tpl-MNI152NLin2009aSym"
PREFIX = "tpl-MNI152NLin2009aSym_res-02_"
ASL_VOXEL_MM, ASL_SHAPE = 5.0, (30, 36, 28)
T1W_VOXEL_MM, T1W_SHAPE = 2.0, (80, 96, 76)
PLD, TAU, PAIRS = 1.8, 1.8, 4
CBF = {"GM": 60.0, "WM": 20.0, "CSF": 0.0}
M0 = {"GM": 1000.0, "WM": 800.0, "CSF": 1400.0}
T1W_INTENSITY = {"GM": 600.0, "WM": 900.0, "CSF": 150.0}
NOISE_SD = 1.5
OCCIPITAL_CHANGE = -0.15
ASL_SIDECAR = {
    "ArterialSpinLabelingType": "PCASL",
    "PostLabelingDelay": PLD,
    "LabelingDuration": TAU,
    "BackgroundSuppression": False,
    "M0Type": "Separate",
    "TotalAcquiredPairs": PAIRS,
    "RepetitionTimePreparation": 4.5,
    "MagneticFieldStrength": 3,
    "MRAcquisitionType": "3D",
    "EchoTime": 0.0112,
    "Manufacturer": "aslmig digital phantom",
}
M0_SIDECAR = {"RepetitionTimePreparation": 10.0, "EchoTime": 0.0112, "MRAcquisitionType": "3D"}
# label, group, age, sex, typical aura side, rigid pose (mm, rad), sessions (label, phase, hours)
PARTICIPANTS = [
    (
        "hc01",
        "HC",
        34,
        "F",
        "n/a",
        (3.0, -4.0, 2.0, 0.05, -0.03, 0.04),
        [("1", "interictal", "n/a")],
    ),
    (
        "mwa01",
        "MwA",
        31,
        "F",
        "left",
        (-2.0, 5.0, -3.0, -0.04, 0.05, -0.06),
        [("1", "interictal", "n/a"), ("2", "ictal", 3.5)],
    ),
]


def template_maps() -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Tissue probability maps of the bundled template and its affine."""
    maps = {}
    for tissue in ("GM", "WM", "CSF"):
        image = nb.load(TEMPLATE / f"{PREFIX}label-{tissue}_probseg.nii.gz")
        maps[tissue] = np.clip(np.asanyarray(image.dataobj, dtype=float), 0.0, 1.0)
    return maps, image.affine


def grid_affine(shape: tuple[int, ...], voxel_mm: float) -> np.ndarray:
    """Return a grid affine centred on the world origin (shifted up so it covers the brain)."""
    affine = np.diag([voxel_mm, voxel_mm, voxel_mm, 1.0])
    affine[:3, 3] = -0.5 * voxel_mm * (np.array(shape) - 1) + np.array([0.0, -18.0, 10.0])
    return affine


def to_subject(
    volume: np.ndarray,
    source_affine: np.ndarray,
    pose: tuple[float, ...],
    shape: tuple[int, ...],
    voxel_mm: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Resample a template-space volume onto a subject grid; the head sits at ``pose``.

    A subject-space point ``x`` shows the template at ``pose^-1 · x``. Each output voxel
    averages 3x3x3 sub-samples, so coarse grids carry partial-volume fractions.
    """
    affine = grid_affine(shape, voxel_mm)
    head_to_world = rigid_matrix(pose)
    offsets = (np.arange(3) - 1) / 3.0
    total = np.zeros(shape)
    for dx in offsets:
        for dy in offsets:
            for dz in offsets:
                shift = np.eye(4)
                shift[:3, 3] = (dx, dy, dz)
                voxel_map = (
                    np.linalg.inv(source_affine) @ np.linalg.inv(head_to_world) @ affine @ shift
                )
                total += ndimage.affine_transform(
                    volume, voxel_map[:3, :3], voxel_map[:3, 3], output_shape=shape, order=1
                )
    return total / offsets.size**3, affine


def occipital_left(source_affine: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Template voxels of the left occipital region (MNI x < 0, y < -70 mm)."""
    ijk = np.indices(shape).reshape(3, -1)
    xyz = (source_affine[:3, :3] @ ijk + source_affine[:3, 3:4]).reshape(3, *shape)
    return (xyz[0] < 0) & (xyz[1] < -70)


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray) -> None:
    """Write rounded int16 data."""
    image = nb.Nifti1Image(np.round(data).astype(np.int16), affine)
    image.header.set_xyzt_units("mm", "sec")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.to_filename(path)


def perfusion_truth(pose, ictal: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return the M0-weighted CBF, the M0 map and the grid affine of a session (subject space).

    The true CBF of a voxel is their ratio (what a perfect quantification returns).
    """
    maps, source_affine = template_maps()
    change = np.ones(next(iter(maps.values())).shape)
    if ictal:
        change[occipital_left(source_affine, change.shape)] += OCCIPITAL_CHANGE
    m0_weighted_cbf, m0 = 0.0, 0.0
    for tissue, probability in maps.items():
        perfusion = CBF[tissue] * (change if tissue == "GM" else 1.0)
        m0_weighted_cbf = m0_weighted_cbf + probability * M0[tissue] * perfusion
        m0 = m0 + probability * M0[tissue]
    m0_cbf, affine = to_subject(m0_weighted_cbf, source_affine, pose, ASL_SHAPE, ASL_VOXEL_MM)
    m0_map, _ = to_subject(m0, source_affine, pose, ASL_SHAPE, ASL_VOXEL_MM)
    return m0_cbf, m0_map, affine


def write_session(subject: str, session: str, pose, ictal: bool, rng) -> None:
    """Write one session: ASL series, aslcontext, M0 and sidecars."""
    m0_cbf, m0_map, affine = perfusion_truth(pose, ictal)
    constants = resolve_constants("PCASL", 3.0, bs_pulses=0)
    deltam = single_delay_signal(m0_cbf, PLD, constants, labeling_duration=TAU)
    control = 0.9 * m0_map + 20.0
    volumes = []
    for _ in range(PAIRS):
        volumes += [control, control - deltam]
    series = np.stack(volumes, axis=-1) + rng.normal(0, NOISE_SD, (*ASL_SHAPE, 2 * PAIRS))
    perf = ROOT / f"sub-{subject}" / f"ses-{session}" / "perf"
    stem = f"sub-{subject}_ses-{session}"
    write_nifti(perf / f"{stem}_asl.nii.gz", series, affine)
    (perf / f"{stem}_aslcontext.tsv").write_text("volume_type\n" + "control\nlabel\n" * PAIRS)
    (perf / f"{stem}_asl.json").write_text(json.dumps(ASL_SIDECAR, indent=2) + "\n")
    m0_noisy = m0_map + rng.normal(0, NOISE_SD, ASL_SHAPE)
    write_nifti(perf / f"{stem}_m0scan.nii.gz", m0_noisy, affine)
    m0_sidecar = {**M0_SIDECAR, "IntendedFor": f"ses-{session}/perf/{stem}_asl.nii.gz"}
    (perf / f"{stem}_m0scan.json").write_text(json.dumps(m0_sidecar, indent=2) + "\n")


def write_t1w(subject: str, pose, rng) -> None:
    """Write a T1w-like image (skull-stripped contrast from the tissue maps) in subject space."""
    maps, source_affine = template_maps()
    t1w = sum(maps[tissue] * T1W_INTENSITY[tissue] for tissue in maps)
    data, affine = to_subject(t1w, source_affine, pose, T1W_SHAPE, T1W_VOXEL_MM)
    anat = ROOT / f"sub-{subject}" / "ses-1" / "anat"
    write_nifti(
        anat / f"sub-{subject}_ses-1_T1w.nii.gz", data + 10.0 + rng.normal(0, 5, T1W_SHAPE), affine
    )
    sidecar = {"MagneticFieldStrength": 3, "MRAcquisitionType": "3D"}
    (anat / f"sub-{subject}_ses-1_T1w.json").write_text(json.dumps(sidecar, indent=2) + "\n")


def write_tables() -> None:
    """participants.tsv and sessions.tsv with the migraine labels."""
    rows = ["participant_id\tgroup\tage\tsex\taura_side_typical"]
    rows += [f"sub-{p[0]}\t{p[1]}\t{p[2]}\t{p[3]}\t{p[4]}" for p in PARTICIPANTS]
    (ROOT / "participants.tsv").write_text("\n".join(rows) + "\n")
    for label, *_, sessions in PARTICIPANTS:
        lines = ["session_id\tmigraine_phase\thours_since_attack_onset"]
        lines += [f"ses-{s}\t{phase}\t{hours}" for s, phase, hours in sessions]
        (ROOT / f"sub-{label}" / f"sub-{label}_sessions.tsv").write_text("\n".join(lines) + "\n")


def main() -> None:
    """Rebuild the example dataset from scratch."""
    shutil.rmtree(ROOT, ignore_errors=True)
    ROOT.mkdir(parents=True)
    rng = np.random.default_rng(20261124)
    description = {
        "Name": "aslmig example: digital-phantom migraine ASL study",
        "BIDSVersion": "1.10.0",
        "DatasetType": "raw",
        "License": "CC0 (simulated data; anatomy from the ICBM 2009a template, see NOTICE)",
        "Authors": ["aslmig developers"],
        "GeneratedBy": [{"Name": "aslmig tools/make_example_dataset.py"}],
    }
    (ROOT / "dataset_description.json").write_text(json.dumps(description, indent=2) + "\n")
    (ROOT / "README").write_text(__doc__)
    shutil.copyfile(TEMPLATE.parent / "NOTICE", ROOT / "NOTICE")
    for label, _, _, _, _, pose, sessions in PARTICIPANTS:
        write_t1w(label, pose, rng)
        for session, phase, _ in sessions:
            write_session(label, session, pose, ictal=phase == "ictal", rng=rng)
    write_tables()


if __name__ == "__main__":
    main()
