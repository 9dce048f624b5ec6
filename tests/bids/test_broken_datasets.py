"""A catalogue of broken ASL-BIDS datasets: each breaks one rule once.

Each case must give exit status 2, a one-line message naming the file and the field,
no traceback, and leave the input dataset byte-for-byte unchanged.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest
from builders import tree_digest

from aslmig.cli.run import main

ASL_JSON = "sub-Sub103/perf/sub-Sub103_asl.json"
CONTEXT = "sub-Sub103/perf/sub-Sub103_aslcontext.tsv"
ASL_NII = "sub-Sub103/perf/sub-Sub103_asl.nii.gz"
M0_JSON = "sub-Sub103/perf/sub-Sub103_m0scan.json"
M0_NII = "sub-Sub103/perf/sub-Sub103_m0scan.nii.gz"
PASL_JSON = "sub-Sub1/perf/sub-Sub1_asl.json"


def edit_json(relative: str, **changes) -> Callable[[Path], None]:
    """Set (or with None, delete) sidecar fields."""

    def mutate(root: Path) -> None:
        path = root / relative
        content = json.loads(path.read_text())
        for key, value in changes.items():
            if value is None:
                content.pop(key, None)
            else:
                content[key] = value
        path.write_text(json.dumps(content))

    return mutate


def write_text(relative: str, text: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        (root / relative).write_text(text)

    return mutate


def replace_image(relative: str, data: np.ndarray) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        nb.Nifti1Image(data, np.eye(4)).to_filename(root / relative)

    return mutate


def delete(relative: str) -> Callable[[Path], None]:
    return lambda root: (root / relative).unlink()


def drop_last_volume(root: Path) -> None:
    image = nb.load(root / ASL_NII)
    data = np.asarray(image.dataobj)[..., :-1]
    nb.Nifti1Image(data, image.affine).to_filename(root / ASL_NII)


def write_image(relative: str, data: np.ndarray, **header) -> Callable[[Path], None]:
    """Write an image with the example's affine, or with none (``unoriented=True``)."""

    def mutate(root: Path) -> None:
        image = nb.Nifti1Image(data, None if header.get("unoriented") else affine)
        image.to_filename(root / relative)

    affine = np.diag([3.0, 3.0, 4.0, 1.0])

    return mutate


def zero_voxel_size(root: Path) -> None:
    """A T1w whose orientation matrix (sform) makes its voxels 0 mm wide along x."""
    header = nb.Nifti1Header()
    header.set_sform(np.diag([0.0, 1.0, 1.0, 1.0]), code=1)
    nb.Nifti1Image(np.ones((12, 12, 10), np.float32), None, header).to_filename(root / T1W_NII)


def symlink(relative: str, target: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        (root / relative).unlink()
        (root / relative).symlink_to(target)

    return mutate


def named_pipe(relative: str) -> Callable[[Path], None]:
    """Replace a file by a FIFO: opening it for reading would wait for a writer forever."""

    def mutate(root: Path) -> None:
        (root / relative).unlink()
        os.mkfifo(root / relative)

    return mutate


def annex_link_without_content(relative: str) -> Callable[[Path], None]:
    """Replace a file by a git-annex link whose content was never fetched (DataLad)."""
    depth = relative.count("/")
    key = "MD5E-s1000--0123456789abcdef0123456789abcdef.nii.gz"
    target = "../" * depth + f".git/annex/objects/Xx/Yy/{key}/{key}"
    return symlink(relative, target)


def huge_header(root: Path) -> None:
    """A valid header that claims 30000^3 x 70 voxels, followed by a few bytes."""
    header = nb.Nifti1Header()
    header.set_data_shape((30000, 30000, 30000, 70))
    header.set_data_dtype(np.float32)
    header.set_sform(np.eye(4), code=1)
    with gzip.open(root / ASL_NII, "wb") as stream:
        stream.write(header.binaryblock + b"\0" * 4 + b"\1" * 4096)


def corrupt_gzip(root: Path) -> None:
    """Overwrite bytes in the middle of the compressed voxel data (the header stays valid)."""
    path = root / ASL_NII
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(range(64))
    path.write_bytes(bytes(data))


def identical_control_label(root: Path) -> None:
    image = nb.load(root / ASL_NII)
    data = np.asarray(image.dataobj).copy()
    data[..., 1::2] = data[..., 0::2]  # asl002 alternates control, label
    nb.Nifti1Image(data, image.affine).to_filename(root / ASL_NII)


def stray_uncompressed_copy(root: Path) -> None:
    nb.save(nb.load(root / ASL_NII), root / ASL_NII.replace(".nii.gz", ".nii"))


def folder_instead_of(relative: str) -> Callable[[Path], None]:
    def mutate(root: Path) -> None:
        (root / relative).unlink()
        (root / relative).mkdir()

    return mutate


RGB = np.dtype([("R", "u1"), ("G", "u1"), ("B", "u1")])
T1W_NII = "sub-Sub103/anat/sub-Sub103_T1w.nii.gz"
NESTED = "[" * 100_000 + "]" * 100_000


NAN_SERIES = np.full((8, 8, 20, 70), np.nan, dtype=np.float32)
ZERO_SERIES = np.zeros((8, 8, 20, 70), dtype=np.float32)

# (id, example, mutation, words the message must contain)
CASES = [
    ("aslcontext-length", "asl002", drop_last_volume, [CONTEXT, "70 volumes", "69"]),
    (
        "pld-array-length",
        "asl002",
        edit_json(ASL_JSON, PostLabelingDelay=[2.0] * 69),
        [ASL_JSON, "PostLabelingDelay has 69 values", "70 volumes"],
    ),
    (
        "labeling-duration-array-length",
        "asl002",
        edit_json(ASL_JSON, LabelingDuration=[1.8] * 71),
        [ASL_JSON, "LabelingDuration has 71 values"],
    ),
    (
        "tr-array-length",
        "asl002",
        edit_json(ASL_JSON, RepetitionTimePreparation=[4.5] * 3),
        [ASL_JSON, "RepetitionTimePreparation has 3 values"],
    ),
    (
        "pld-milliseconds",
        "asl002",
        edit_json(ASL_JSON, PostLabelingDelay=2000),
        [ASL_JSON, "PostLabelingDelay", "milliseconds", "divide by 1000"],
    ),
    (
        "duration-milliseconds",
        "asl002",
        edit_json(ASL_JSON, LabelingDuration=1800),
        [ASL_JSON, "LabelingDuration", "milliseconds"],
    ),
    (
        "tr-zero",
        "asl002",
        edit_json(ASL_JSON, RepetitionTimePreparation=0),
        [ASL_JSON, "RepetitionTimePreparation", "greater than 0"],
    ),
    (
        "tr-missing",
        "asl002",
        edit_json(ASL_JSON, RepetitionTimePreparation=None),
        [ASL_JSON, "RepetitionTimePreparation is missing"],
    ),
    (
        "m0-tr-zero",
        "asl002",
        edit_json(M0_JSON, RepetitionTimePreparation=0),
        [M0_JSON, "RepetitionTimePreparation", "greater than 0"],
    ),
    (
        "m0-tr-missing",
        "asl002",
        edit_json(M0_JSON, RepetitionTimePreparation=None),
        [M0_JSON, "RepetitionTimePreparation is missing"],
    ),
    (
        "labeling-type-missing",
        "asl002",
        edit_json(ASL_JSON, ArterialSpinLabelingType=None),
        [ASL_JSON, "ArterialSpinLabelingType is missing"],
    ),
    (
        "labeling-type-unknown",
        "asl002",
        edit_json(ASL_JSON, ArterialSpinLabelingType="pcasl"),
        [ASL_JSON, "ArterialSpinLabelingType is 'pcasl'", "PCASL"],
    ),
    (
        "labeling-duration-missing",
        "asl002",
        edit_json(ASL_JSON, LabelingDuration=None),
        [ASL_JSON, "LabelingDuration is missing"],
    ),
    (
        "m0type-missing",
        "asl002",
        edit_json(ASL_JSON, M0Type=None),
        [ASL_JSON, "M0Type is missing"],
    ),
    (
        "separate-without-file",
        "asl002",
        lambda root: (delete(M0_NII)(root), delete(M0_JSON)(root)),
        [ASL_JSON, "M0Type is Separate", "m0scan"],
    ),
    (
        "included-without-volumes",
        "asl002",
        edit_json(ASL_JSON, M0Type="Included"),
        [ASL_JSON, "M0Type is Included", "no m0scan volume"],
    ),
    (
        "m0-volumes-but-separate",
        "asl001",
        edit_json(ASL_JSON, M0Type="Separate"),
        [ASL_JSON, "lists m0scan volumes", "Included"],
    ),
    (
        "estimate-without-value",
        "asl002",
        edit_json(ASL_JSON, M0Type="Estimate"),
        [ASL_JSON, "M0Estimate is missing"],
    ),
    (
        "absent-with-background-suppression",
        "asl002",
        edit_json(ASL_JSON, M0Type="Absent"),
        [ASL_JSON, "M0Type is Absent", "BackgroundSuppression", "cannot be calibrated"],
    ),
    (
        "pasl-without-bolus-flag",
        "asl003",
        edit_json(PASL_JSON, BolusCutOffFlag=None),
        [PASL_JSON, "BolusCutOffFlag is missing"],
    ),
    (
        "pasl-without-bolus-time",
        "asl003",
        edit_json(PASL_JSON, BolusCutOffDelayTime=None),
        [PASL_JSON, "BolusCutOffDelayTime is missing"],
    ),
    (
        "pasl-without-bolus-technique",
        "asl003",
        edit_json(PASL_JSON, BolusCutOffTechnique=None),
        [PASL_JSON, "BolusCutOffTechnique is missing"],
    ),
    (
        "slice-timing-missing-2d",
        "asl002",
        edit_json(ASL_JSON, SliceTiming=None),
        [ASL_JSON, "SliceTiming is missing", "2D"],
    ),
    (
        "slice-timing-length",
        "asl002",
        edit_json(ASL_JSON, SliceTiming=[0.0, 0.1]),
        [ASL_JSON, "SliceTiming has 2 values", "20 slices"],
    ),
    (
        "background-suppression-not-boolean",
        "asl002",
        edit_json(ASL_JSON, BackgroundSuppression="yes"),
        [ASL_JSON, "BackgroundSuppression is 'yes'", "true or false"],
    ),
    (
        "pulse-times-vs-count",
        "asl002",
        edit_json(ASL_JSON, BackgroundSuppressionPulseTime=[1.0]),
        [ASL_JSON, "BackgroundSuppressionPulseTime has 1 values"],
    ),
    (
        "total-pairs-not-integer",
        "asl002",
        edit_json(ASL_JSON, TotalAcquiredPairs=3.5),
        [ASL_JSON, "TotalAcquiredPairs is 3.5"],
    ),
    (
        "labeling-efficiency-above-one",
        "asl002",
        edit_json(ASL_JSON, LabelingEfficiency=85),
        [ASL_JSON, "LabelingEfficiency", "at most 1"],
    ),
    (
        "echo-time-milliseconds",
        "asl002",
        edit_json(ASL_JSON, EchoTime=15),
        [ASL_JSON, "EchoTime", "milliseconds"],
    ),
    (
        "field-strength-string",
        "asl002",
        edit_json(ASL_JSON, MagneticFieldStrength="3T"),
        [ASL_JSON, "MagneticFieldStrength is '3T'", "not a finite number"],
    ),
    (
        "look-locker",
        "asl002",
        edit_json(ASL_JSON, LookLocker=True),
        [ASL_JSON, "LookLocker"],
    ),
    (
        "unknown-volume-type",
        "asl002",
        write_text(CONTEXT, "volume_type\n" + "control\nlabel\n" * 34 + "control\nlabl\n"),
        [CONTEXT, "volume 70", "'labl'"],
    ),
    (
        "unpaired-control",
        "asl002",
        write_text(CONTEXT, "volume_type\n" + "control\nlabel\n" * 34 + "control\ncontrol\n"),
        [CONTEXT, "36 control but 34 label"],
    ),
    (
        "aslcontext-without-header",
        "asl002",
        write_text(CONTEXT, "control\nlabel\n" * 35),
        [CONTEXT, "volume_type"],
    ),
    ("aslcontext-missing", "asl002", delete(CONTEXT), [ASL_NII, "aslcontext.tsv"]),
    ("sidecar-missing", "asl002", delete(ASL_JSON), [ASL_NII, "no JSON sidecar"]),
    (
        "sidecar-invalid-json",
        "asl002",
        write_text(ASL_JSON, '{"ArterialSpinLabelingType": "PCASL",'),
        [ASL_JSON, "invalid JSON"],
    ),
    (
        "sidecar-nan",
        "asl002",
        write_text(ASL_JSON, '{"PostLabelingDelay": NaN}'),
        [ASL_JSON, "NaN"],
    ),
    (
        "sidecar-not-object",
        "asl002",
        write_text(ASL_JSON, "[1, 2]"),
        [ASL_JSON, "object"],
    ),
    (
        "hostile-string",
        "asl002",
        edit_json(ASL_JSON, ArterialSpinLabelingType="\x1b[2J<script>alert(1)</script>" * 50),
        [ASL_JSON, "ArterialSpinLabelingType is", "..."],
    ),
    ("empty-asl-image", "asl002", write_text(ASL_NII, ""), [ASL_NII, "empty"]),
    ("nan-asl-image", "asl002", replace_image(ASL_NII, NAN_SERIES), [ASL_NII, "NaN"]),
    ("zero-asl-image", "asl002", replace_image(ASL_NII, ZERO_SERIES), [ASL_NII, "zero"]),
    (
        "corrupt-asl-image",
        "asl002",
        write_text(ASL_NII, "this is not a NIfTI file at all, just text"),
        [ASL_NII, "cannot be read"],
    ),
    (
        "m0-grid-mismatch",
        "asl002",
        replace_image(M0_NII, np.ones((4, 4, 20), dtype=np.float32)),
        [M0_NII, "M0 grid"],
    ),
    ("empty-m0-image", "asl002", write_text(M0_NII, ""), [M0_NII, "empty"]),
    (
        "empty-t1w-image",
        "asl002",
        write_text("sub-Sub103/anat/sub-Sub103_T1w.nii.gz", ""),
        ["sub-Sub103/anat/sub-Sub103_T1w.nii.gz", "empty"],
    ),
    # ---- issue 17: files and images that got through, or gave tracebacks or late errors
    (
        "sidecar-deeply-nested",
        "asl002",
        write_text(ASL_JSON, '{"a": ' + NESTED + "}"),
        [ASL_JSON, "nests", "too deeply"],
    ),
    (
        "intended-for-null-byte",
        "asl002",
        edit_json(M0_JSON, IntendedFor="perf/sub-Sub103_asl.nii.gz\x00"),
        [M0_JSON, "IntendedFor has", "cannot be a file name"],
    ),
    (
        "intended-for-lone-surrogate",
        "asl002",
        edit_json(M0_JSON, IntendedFor=["perf/\ud800.nii.gz"]),
        [M0_JSON, "IntendedFor has", "cannot be a file name"],
    ),
    ("header-claims-huge-image", "asl002", huge_header, [ASL_NII, "30000x30000x30000x70"]),
    (
        "rgb24-asl-image",
        "asl002",
        write_image(ASL_NII, np.zeros((8, 8, 20, 70), dtype=RGB)),
        [ASL_NII, "RGB colour voxels"],
    ),
    (
        "complex64-asl-image",
        "asl002",
        write_image(ASL_NII, np.ones((8, 8, 20, 70), dtype=np.complex64)),
        [ASL_NII, "complex voxel values (complex64)", "magnitude"],
    ),
    (
        "asl-without-orientation",
        "asl002",
        write_image(ASL_NII, np.ones((8, 8, 20, 70), np.float32), unoriented=True),
        [ASL_NII, "no orientation", "qform_code and sform_code"],
    ),
    (
        "m0-without-orientation",
        "asl002",
        write_image(M0_NII, np.ones((8, 8, 20), np.float32), unoriented=True),
        [M0_NII, "no orientation"],
    ),
    (
        "zero-voxel-size",
        "asl002",
        zero_voxel_size,
        [T1W_NII, "voxel sizes"],
    ),
    (
        "dangling-symlink-asl",
        "asl002",
        symlink(ASL_NII, "/nonexistent/sub-Sub103_asl.nii.gz"),
        [ASL_NII, "broken symbolic link"],
    ),
    (
        "looping-symlink-sidecar",
        "asl002",
        symlink(ASL_JSON, "sub-Sub103_asl.json"),
        [ASL_JSON, "symbolic link that loops"],
    ),
    (
        "git-annex-content-missing",
        "asl002",
        annex_link_without_content(ASL_NII),
        [ASL_NII, "git-annex link whose content is not present", "datalad get"],
    ),
    (
        "dataset-description-is-a-folder",
        "asl002",
        folder_instead_of("dataset_description.json"),
        ["dataset_description.json", "is a folder"],
    ),
    (
        "sidecar-is-a-folder",
        "asl002",
        folder_instead_of(M0_JSON),
        [M0_JSON, "is a folder"],
    ),
    (
        "stray-nii-beside-nii-gz",
        "asl002",
        stray_uncompressed_copy,
        ["sub-Sub103/perf/sub-Sub103_asl.nii", ASL_NII, "both"],
    ),
    (
        "t1w-4d",
        "asl002",
        write_image(T1W_NII, np.ones((12, 12, 10, 2), np.float32)),
        [T1W_NII, "4-D", "3-D"],
    ),
    ("corrupt-gzip", "asl002", corrupt_gzip, [ASL_NII, "corrupt"]),
    (
        "aslcontext-is-dev-zero",
        "asl002",
        symlink(CONTEXT, "/dev/zero"),
        [CONTEXT, "not a regular file"],
    ),
    ("sidecar-is-a-named-pipe", "asl002", named_pipe(ASL_JSON), [ASL_JSON, "not a regular file"]),
    (
        "identical-control-label",
        "asl002",
        identical_control_label,
        [ASL_NII, "ΔM is zero everywhere", "label volumes equal the control volumes"],
    ),
]


@pytest.mark.parametrize(
    ("example_name", "mutate", "words"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_broken_dataset_is_refused(example, tmp_path, capsys, example_name, mutate, words):
    root = example(example_name)
    mutate(root)
    before = tree_digest(root)
    code = main([str(root), str(tmp_path / "out"), "participant", "--dry-run"])
    captured = capsys.readouterr()
    assert code == 2
    message = captured.err.strip()
    assert len(message.splitlines()) == 1, message
    assert "Traceback" not in captured.err
    for word in words:
        assert word in message, f"{word!r} not in {message!r}"
    assert "NaN" not in message or "NaN" in " ".join(words)
    assert "\x1b" not in message
    assert tree_digest(root) == before
    assert not (tmp_path / "out").exists()


def test_catalogue_names_are_unique():
    names = [case[0] for case in CASES]
    assert len(names) == len(set(names))
