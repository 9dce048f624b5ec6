"""A catalogue of broken ASL-BIDS datasets: each breaks one rule once.

Each case must give exit status 2, a one-line message naming the file and the field,
no traceback, and leave the input dataset byte-for-byte unchanged.
"""

from __future__ import annotations

import json
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
    assert "\x1b" not in message
    assert tree_digest(root) == before
    assert not (tmp_path / "out").exists()


def test_catalogue_names_are_unique():
    names = [case[0] for case in CASES]
    assert len(names) == len(set(names))
