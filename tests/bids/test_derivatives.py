"""Output names, atomic writes, sidecars and the derivatives dataset root."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path

import pytest

from aslmig import __version__
from aslmig.bids.derivatives import (
    atomic_write,
    config_log_path,
    crash_dir,
    group_level_dir,
    init_derivatives,
    output_path,
    participant_report_path,
    sidecar_path,
    unit_name,
    write_sidecar,
)
from aslmig.errors import InputError


@pytest.mark.parametrize(
    ("entities", "suffix", "extension", "expected"),
    [
        ({"subject": "01"}, "cbf", ".nii.gz", "sub-01/perf/sub-01_cbf.nii.gz"),
        (
            {
                "subject": "01",
                "session": "ictal",
                "acquisition": "3d",
                "run": 2,
                "space": "MNI152NLin2009cAsym",
            },
            "cbf",
            ".nii.gz",
            "sub-01/ses-ictal/perf/sub-01_ses-ictal_acq-3d_run-2_space-MNI152NLin2009cAsym_cbf.nii.gz",
        ),
        (
            {"subject": "01", "space": "MNI152NLin2009cAsym", "atlas": "MigraineASL"},
            "cbf",
            ".tsv",
            "sub-01/perf/sub-01_space-MNI152NLin2009cAsym_atlas-MigraineASL_cbf.tsv",
        ),
        (
            {"subject": "01", "description": "brain"},
            "mask",
            ".nii.gz",
            "sub-01/perf/sub-01_desc-brain_mask.nii.gz",
        ),
        (
            {"subject": "01", "description": "confounds"},
            "timeseries",
            ".tsv",
            "sub-01/perf/sub-01_desc-confounds_timeseries.tsv",
        ),
    ],
)
def test_output_path(entities, suffix, extension, expected):
    assert output_path(entities, suffix, extension) == Path(expected)


@pytest.mark.parametrize(
    "entities",
    [
        {"session": "1"},
        {"subject": "01", "colour": "red"},
        {"subject": "../01"},
        {"subject": "01", "description": "a_b"},
    ],
)
def test_output_path_refuses_bad_entities(entities):
    with pytest.raises(ValueError):
        output_path(entities, "cbf")


def test_names_outside_the_perf_folders(tmp_path):
    assert unit_name("01") == unit_name("01", "") == unit_name("01", "n/a") == "sub-01"
    assert unit_name("01", None) == "sub-01" and unit_name("01", "2") == "sub-01_ses-2"
    assert participant_report_path(tmp_path, "mwa01") == tmp_path / "sub-mwa01.html"
    assert group_level_dir(str(tmp_path), "ictal") == tmp_path / "group" / "ictal"
    assert crash_dir(tmp_path) == tmp_path / "logs" / "crash"
    assert config_log_path(tmp_path, "group") == tmp_path / "logs" / "config_group_all.toml"
    two = config_log_path(tmp_path, "participant", ("01", "02"))
    assert two.name == "config_participant_sub-01_sub-02.toml"
    many = config_log_path(tmp_path, "participant", [f"{n:03d}" for n in range(40)])
    assert many.name.startswith("config_participant_many-") and len(many.name) < 60


def test_sidecar_records_sources_constants_and_version(tmp_path):
    image = tmp_path / "sub-01_cbf.nii.gz"
    path = write_sidecar(
        image,
        ["bids::sub-01/perf/sub-01_asl.nii.gz"],
        {"t1_blood": {"value": 1.65}},
        Units="mL/100g/min",
    )
    assert path == sidecar_path(image) == tmp_path / "sub-01_cbf.json"
    content = json.loads(path.read_text())
    assert content["Sources"] == ["bids::sub-01/perf/sub-01_asl.nii.gz"]
    assert content["Constants"]["t1_blood"]["value"] == 1.65
    assert content["GeneratedBy"][0] == {"Name": "aslmig", "Version": __version__}
    assert content["Units"] == "mL/100g/min"


def test_sidecar_refuses_nan(tmp_path):
    with pytest.raises(ValueError):
        write_sidecar(tmp_path / "x_cbf.nii.gz", [], {"x": float("nan")})
    assert not list(tmp_path.iterdir())


def test_atomic_write_leaves_nothing_when_interrupted(tmp_path):
    target = tmp_path / "out" / "file.txt"
    target.parent.mkdir()
    target.write_text("old")

    def fail(temporary: Path) -> None:
        temporary.write_text("half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, fail)
    assert target.read_text() == "old"
    assert [path.name for path in target.parent.iterdir()] == ["file.txt"]


def test_init_derivatives(tmp_path):
    out = tmp_path / "out"
    init_derivatives(out, tmp_path / "bids")
    description = json.loads((out / "dataset_description.json").read_text())
    assert description["DatasetType"] == "derivative"
    assert description["GeneratedBy"][0]["Name"] == "aslmig"
    assert description["GeneratedBy"][0]["Version"] == __version__
    assert description["SourceDatasets"][0]["URL"].startswith("file://")
    assert (out / ".bidsignore").read_text().splitlines() == [
        "*_cbf.*", "*_att.*", "*_abv.*", "atlases/", "group/"
    ]


@pytest.mark.parametrize(
    ("environment", "expected"),
    [
        ({}, None),
        ({"ASLMIG_CONTAINER_TAG": "aslmig:1.0"}, {"Type": "docker", "Tag": "aslmig:1.0"}),
        (
            {"ASLMIG_CONTAINER_TAG": "aslmig:1.0", "APPTAINER_CONTAINER": "/img/aslmig.sif"},
            {"Type": "apptainer", "URI": "aslmig.sif", "Tag": "aslmig:1.0"},
        ),
        ({"SINGULARITY_CONTAINER": "/img/a.sif"}, {"Type": "apptainer", "URI": "a.sif"}),
    ],
)
def test_generated_by_records_the_container(tmp_path, monkeypatch, environment, expected):
    for name in ("ASLMIG_CONTAINER_TAG", "APPTAINER_CONTAINER", "SINGULARITY_CONTAINER"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    out = tmp_path / "out"
    init_derivatives(out, tmp_path / "bids")
    generated_by = json.loads((out / "dataset_description.json").read_text())["GeneratedBy"][0]
    assert generated_by.get("Container") == expected


def test_init_derivatives_refuses_foreign_dataset(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "dataset_description.json").write_text(
        json.dumps({"Name": "x", "GeneratedBy": [{"Name": "fmriprep"}]})
    )
    with pytest.raises(InputError, match="not made by aslmig"):
        init_derivatives(out, tmp_path / "bids")


def test_init_derivatives_refuses_the_input(tmp_path):
    with pytest.raises(InputError, match="is the input dataset"):
        init_derivatives(tmp_path, tmp_path)


def _init_many(args: tuple[str, str]) -> str:
    out, source = args
    init_derivatives(Path(out), Path(source))
    return (Path(out) / "dataset_description.json").read_text()


def test_concurrent_jobs_do_not_corrupt_dataset_description(tmp_path):
    out = tmp_path / "out"
    with multiprocessing.get_context("fork").Pool(8) as pool:
        texts = pool.map(_init_many, [(str(out), str(tmp_path / "bids"))] * 32)
    assert len(set(texts)) == 1
    assert json.loads(texts[0])["DatasetType"] == "derivative"
    leftovers = [p.name for p in out.iterdir() if p.name.startswith(".dataset_description")]
    assert leftovers == []
