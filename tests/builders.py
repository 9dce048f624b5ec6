"""Test-data builders: filled bids-examples and small ASL-BIDS datasets."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import nibabel as nb
import numpy as np

from aslmig.bids.derivatives import crash_dir

DATA = Path(__file__).parent / "data"
EXAMPLES = DATA / "bids_examples"
EXAMPLE_NAMES = ("asl001", "asl002", "asl003", "asl004", "asl005", "2d_mb_pcasl")
IN_PLANE = (8, 8)
SLICES_3D = 6


def _n_volumes(nifti: Path) -> int:
    context = nifti.with_name(nifti.name.replace("_asl.nii.gz", "_aslcontext.tsv"))
    if nifti.name.endswith("_asl.nii.gz") and context.exists():
        lines = [line for line in context.read_text().splitlines()[1:] if line.strip()]
        return len(lines)
    return 1


def _n_slices(nifti: Path) -> int:
    sidecar = nifti.with_name(nifti.name.split(".")[0] + ".json")
    if sidecar.exists():
        timing = json.loads(sidecar.read_text()).get("SliceTiming")
        if timing:
            return len(timing)
    return SLICES_3D


def write_image(path: Path, shape: tuple[int, ...], seed: int = 0) -> None:
    """Write positive random voxels of a given shape (float32)."""
    rng = np.random.default_rng(seed)
    data = (100 + 10 * rng.random(shape)).astype(np.float32)
    nb.Nifti1Image(data, np.diag([3.0, 3.0, 4.0, 1.0])).to_filename(path)


def fill_example(name: str, destination: Path) -> Path:
    """Copy a bids-example and replace its empty NIfTIs by arrays of the right shape."""
    root = destination / name
    shutil.copytree(EXAMPLES / name, root)
    for index, nifti in enumerate(sorted(root.rglob("*.nii.gz"))):
        if nifti.parent.name == "anat":
            shape: tuple[int, ...] = (12, 12, 10)
        else:
            shape = (*IN_PLANE, _n_slices(nifti))
            volumes = _n_volumes(nifti)
            if volumes > 1:
                shape = (*shape, volumes)
        write_image(nifti, shape, seed=index)
    return root


SHAPE = (6, 6, 4)
PCASL = {
    "ArterialSpinLabelingType": "PCASL",
    "PostLabelingDelay": 1.8,
    "LabelingDuration": 1.8,
    "BackgroundSuppression": False,
    "M0Type": "Separate",
    "TotalAcquiredPairs": 2,
    "RepetitionTimePreparation": 4.0,
    "MagneticFieldStrength": 3,
    "MRAcquisitionType": "3D",
    "EchoTime": 0.012,
}


class DatasetBuilder:
    """Write ASL-BIDS files into a root folder, one call per file group."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        (root / "dataset_description.json").write_text(
            json.dumps({"Name": "test", "BIDSVersion": "1.9.0", "DatasetType": "raw"})
        )

    def folder(self, subject: str, session: str | None, datatype: str) -> Path:
        path = self.root / f"sub-{subject}"
        if session:
            path /= f"ses-{session}"
        path /= datatype
        path.mkdir(parents=True, exist_ok=True)
        return path

    @staticmethod
    def stem(subject: str, session: str | None = None, **entities: str) -> str:
        parts = [f"sub-{subject}"] + ([f"ses-{session}"] if session else [])
        parts += [f"{key}-{value}" for key, value in entities.items()]
        return "_".join(parts)

    def asl(
        self,
        subject: str,
        session: str | None = None,
        sidecar: dict | None = None,
        volume_types: tuple[str, ...] = ("control", "label", "control", "label"),
        **entities: str,
    ) -> Path:
        folder = self.folder(subject, session, "perf")
        stem = self.stem(subject, session, **entities)
        write_image(folder / f"{stem}_asl.nii.gz", (*SHAPE, len(volume_types)))
        (folder / f"{stem}_aslcontext.tsv").write_text(
            "volume_type\n" + "\n".join(volume_types) + "\n"
        )
        content = dict(PCASL) if sidecar is None else sidecar
        if content:
            (folder / f"{stem}_asl.json").write_text(json.dumps(content))
        return folder / f"{stem}_asl.nii.gz"

    def m0(
        self,
        subject: str,
        session: str | None = None,
        intended_for: str | list[str] | None = None,
        datatype: str = "perf",
        **entities: str,
    ) -> Path:
        folder = self.folder(subject, session, datatype)
        stem = self.stem(subject, session, **entities)
        write_image(folder / f"{stem}_m0scan.nii.gz", SHAPE)
        content: dict = {"RepetitionTimePreparation": 6.0}
        if intended_for is not None:
            content["IntendedFor"] = intended_for
        (folder / f"{stem}_m0scan.json").write_text(json.dumps(content))
        return folder / f"{stem}_m0scan.nii.gz"

    def t1w(self, subject: str, session: str | None = None, **entities: str) -> Path:
        folder = self.folder(subject, session, "anat")
        path = folder / f"{self.stem(subject, session, **entities)}_T1w.nii.gz"
        write_image(path, (10, 10, 8))
        return path


def tree_digest(root: Path) -> dict[str, str]:
    """Checksum of every file under root (detects any write into a dataset)."""
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def crash_details(output_dir: Path, lines_per_crash: int = 25) -> str:
    """The end of every crash file of a participant run, for an assertion message.

    CI prints only the assertion's message of a failed fixture, so a run that exits 1 must say
    there which step failed and why.
    """
    crashes = sorted(crash_dir(output_dir).glob("crash-*.txt"))
    if not crashes:
        return f"no crash file in {crash_dir(output_dir)}"
    return "\n".join(
        f"{crash.name}:\n" + "\n".join(_last_lines(crash, lines_per_crash)) for crash in crashes
    )


def _last_lines(path: Path, n: int) -> list[str]:
    return path.read_text(errors="replace").splitlines()[-n:]
