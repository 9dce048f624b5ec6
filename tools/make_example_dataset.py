"""Build the small ASL-BIDS example dataset shipped in ``aslmig/data/example``.

Run from the project root: ``python tools/make_example_dataset.py``. It is deterministic
(seeded) and uses the engine's own white-paper forward model, so the ground truth is
known: grey matter 60, white matter 20 mL/100 g/min, and -15 % in the posterior
(occipital) grey matter of the migraine-with-aura participant's ictal session.

The anatomy is a digital phantom (nested ellipsoids), not a real brain: it exercises
validation, planning and quantification; the simulator (``aslmig simulate``) makes
template-space cohorts.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nb
import numpy as np

from aslmig.cbf.constants import resolve_constants
from aslmig.cbf.single_delay import single_delay_signal

ROOT = Path(__file__).resolve().parents[1] / "aslmig" / "data" / "example"
SHAPE = (16, 20, 12)
VOXEL_MM = 5.0
PLD, TAU, PAIRS = 1.8, 1.8, 4
M0_SIGNAL = 1000.0
NOISE_SD = 2.0
GM_CBF, WM_CBF, OCCIPITAL_CHANGE = 60.0, 20.0, -0.15
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
PARTICIPANTS = [
    # label, group, age, sex, aura side, sessions (label, phase, hours since onset)
    ("hc01", "HC", 34, "F", "n/a", [("1", "interictal", "n/a")]),
    ("mwa01", "MwA", 31, "F", "left", [("1", "interictal", "n/a"), ("2", "ictal", 3.5)]),
]


def tissue_maps(shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nested ellipsoids: brain, white-matter core, posterior grey matter."""
    axes = [np.linspace(-1, 1, n) for n in shape]
    x, y, z = np.meshgrid(*axes, indexing="ij")
    radius = np.sqrt((x / 0.85) ** 2 + (y / 0.85) ** 2 + (z / 0.8) ** 2)
    brain = radius < 1.0
    white = radius < 0.6
    posterior = brain & ~white & (y < -0.3)
    return brain, white, posterior


def cbf_truth(ictal: bool) -> np.ndarray:
    """Ground-truth CBF map (mL/100 g/min)."""
    brain, white, posterior = tissue_maps(SHAPE)
    cbf = np.where(brain, GM_CBF, 0.0)
    cbf[white] = WM_CBF
    if ictal:
        cbf[posterior] *= 1.0 + OCCIPITAL_CHANGE
    return cbf


def write_nifti(path: Path, data: np.ndarray, zooms: float) -> None:
    """Write int16 data with a scanner-like affine."""
    affine = np.diag([zooms, zooms, zooms, 1.0])
    affine[:3, 3] = -0.5 * zooms * (np.array(data.shape[:3]) - 1)
    image = nb.Nifti1Image(np.round(data).astype(np.int16), affine)
    image.header.set_xyzt_units("mm", "sec")
    path.parent.mkdir(parents=True, exist_ok=True)
    image.to_filename(path)


def write_session(subject: str, session: str, ictal: bool, rng: np.random.Generator) -> None:
    """Write one session: ASL series, aslcontext, M0 and sidecars."""
    brain, _, _ = tissue_maps(SHAPE)
    m0 = np.where(brain, M0_SIGNAL, 50.0)
    constants = resolve_constants("PCASL", 3.0, bs_pulses=0)
    deltam = m0 * single_delay_signal(cbf_truth(ictal), PLD, constants, labeling_duration=TAU)
    control = 0.9 * m0
    volumes = []
    for _ in range(PAIRS):
        volumes += [control, control - deltam]
    series = np.stack(volumes, axis=-1) + rng.normal(0, NOISE_SD, (*SHAPE, 2 * PAIRS))
    perf = ROOT / f"sub-{subject}" / f"ses-{session}" / "perf"
    stem = f"sub-{subject}_ses-{session}"
    write_nifti(perf / f"{stem}_asl.nii.gz", series, VOXEL_MM)
    (perf / f"{stem}_aslcontext.tsv").write_text("volume_type\n" + "control\nlabel\n" * PAIRS)
    (perf / f"{stem}_asl.json").write_text(json.dumps(ASL_SIDECAR, indent=2) + "\n")
    write_nifti(perf / f"{stem}_m0scan.nii.gz", m0 + rng.normal(0, NOISE_SD, SHAPE), VOXEL_MM)
    m0_sidecar = {**M0_SIDECAR, "IntendedFor": f"ses-{session}/perf/{stem}_asl.nii.gz"}
    (perf / f"{stem}_m0scan.json").write_text(json.dumps(m0_sidecar, indent=2) + "\n")


def write_t1w(subject: str, rng: np.random.Generator) -> None:
    """Write a T1w-like image at twice the ASL resolution (WM bright, GM darker, CSF dark)."""
    shape = tuple(2 * n for n in SHAPE)
    brain, white, _ = tissue_maps(shape)
    t1w = np.where(brain, 600.0, 80.0)
    t1w[white] = 900.0
    anat = ROOT / f"sub-{subject}" / "ses-1" / "anat"
    write_nifti(anat / f"sub-{subject}_ses-1_T1w.nii.gz", t1w + rng.normal(0, 5, shape), 2.5)
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
        "License": "CC0",
        "Authors": ["aslmig developers"],
        "GeneratedBy": [{"Name": "aslmig tools/make_example_dataset.py"}],
    }
    (ROOT / "dataset_description.json").write_text(json.dumps(description, indent=2) + "\n")
    (ROOT / "README").write_text(__doc__)
    for label, _, _, _, _, sessions in PARTICIPANTS:
        write_t1w(label, rng)
        for session, phase, _ in sessions:
            write_session(label, session, ictal=phase == "ictal", rng=rng)
    write_tables()


if __name__ == "__main__":
    main()
