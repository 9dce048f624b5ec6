"""ROI sets: the shipped MigraineASL atlas, user atlases, coordinate spheres."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
import pytest

from aslmig.atlas.extract import regional_statistics
from aslmig.atlas.migraine import REGIONS
from aslmig.atlas.rois import (
    load_spheres,
    load_user_atlas,
    migraine_atlas_for,
    resolve_atlases,
    shipped_migraine_atlas,
)
from aslmig.atlas.summary import summarise_regions
from aslmig.atlas.templates import from_bundle
from aslmig.cli.demo import example_dataset
from aslmig.cli.run import main
from aslmig.errors import InputError

PROJECT = Path(__file__).parents[2]
EXPECTED_NAMES = [
    "pons",
    *(f"{region}_{side}" for region in ("dorsal_rostral_pons", "hypothalamus", "thalamus",
                                        "occipital_cortex", "calcarine") for side in "LR"),
    "grey_matter",
    "white_matter",
    *(f"territory_{kind}_{side}" for kind in ("ACA", "MCA", "PCA", "VB") for side in "LR"),
]  # fmt: skip


@pytest.fixture(scope="module")
def template():
    return from_bundle(2)


@pytest.fixture(scope="module")
def shipped():
    return shipped_migraine_atlas()


def test_shipped_atlas_lists_every_region_with_documentation(shipped):
    table = shipped.table
    assert sorted(table["name"]) == sorted(EXPECTED_NAMES)
    for column in ("index", "name", "hemisphere", "definition", "source", "reference", "licence"):
        assert column in table.columns and (table[column].astype(str) != "").all(), column
    labels, _ = shipped.label_array()
    assert labels.ndim == 4 and labels.shape[3] == 4
    for roi in shipped.rois():
        assert (labels[..., roi.level] == roi.index).sum() > 0, roi.name
    description = json.loads(
        (shipped.image.parent / "atlas-MigraineASL_description.json").read_text()
    )
    assert description["Space"] == shipped.space
    assert "CC0" in (shipped.image.parent / "LICENSE").read_text()


def test_shipped_atlas_is_rebuilt_identically_by_the_tool():
    result = subprocess.run(
        [sys.executable, str(PROJECT / "tools" / "build_atlas.py"), "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_left_right_pairs_are_balanced(shipped):
    labels, _ = shipped.label_array()
    counts = {roi.name: int((labels[..., roi.level] == roi.index).sum()) for roi in shipped.rois()}
    for name, count in counts.items():
        if name.endswith("_L"):
            right = counts[name[:-2] + "_R"]
            assert abs(count - right) / max(count, right) < 0.2, (name, count, right)


def test_small_structures_sit_where_the_rules_put_them(shipped):
    labels, affine = shipped.label_array()
    for roi in shipped.rois():
        voxels = np.argwhere(labels[..., roi.level] == roi.index)
        world = voxels @ affine[:3, :3].T + affine[:3, 3]
        if roi.hemisphere == "L":
            assert (world[:, 0] < 0).all(), roi.name
        if roi.hemisphere == "R":
            assert (world[:, 0] > 0).all(), roi.name
        if roi.name.startswith("dorsal_rostral_pons"):
            assert (world[:, 1] <= -28).all() and (world[:, 2] >= -32).all()
        if roi.name.startswith("occipital"):
            assert (world[:, 1] <= -70).all()


def test_atlas_built_for_another_template_matches_the_rules(template, shipped, tmp_path):
    other = dataclasses.replace(template, space="MNI152NLin2009cAsym")
    built = migraine_atlas_for(other, tmp_path)
    assert built.space == "MNI152NLin2009cAsym" and built.image.parent == tmp_path
    assert "space-MNI152NLin2009cAsym" in built.image.name
    assert np.array_equal(built.label_array()[0], shipped.label_array()[0])
    assert len(REGIONS) == len(built.rois())


# --- user atlases ---------------------------------------------------------------------------


def write_user_atlas(folder: Path, template, labels=None, rows=None, space=None) -> Path:
    grid = nb.load(template.brain_mask)
    if labels is None:
        labels = np.zeros(grid.shape, np.int16)
        labels[40:45, 50:55, 40:45] = 1
        labels[50:55, 50:55, 40:45] = 2
    if rows is None:
        rows = [(1, "blob_L"), (2, "blob_R")]
    folder.mkdir(parents=True, exist_ok=True)
    stem = f"atlas-Mine_space-{space or template.space}_dseg"
    nb.Nifti1Image(labels, grid.affine).to_filename(folder / f"{stem}.nii.gz")
    pd.DataFrame(rows, columns=["index", "name"]).to_csv(
        folder / f"{stem}.tsv", sep="\t", index=False
    )
    return folder


def test_user_atlas_numbers_equal_numpy(template, tmp_path):
    folder = write_user_atlas(tmp_path / "mine", template)
    atlas = load_user_atlas(folder, template)
    assert atlas.name == "Mine" and [roi.name for roi in atlas.rois()] == ["blob_L", "blob_R"]
    grid = nb.load(template.brain_mask)
    rng = np.random.default_rng(3)
    values = rng.normal(50, 8, grid.shape)
    gm = rng.random(grid.shape)
    valid = np.ones(grid.shape, bool)
    labels = atlas.label_array()[0]
    result = summarise_regions(values, labels, atlas, valid, gm, "cbf", 0.5)
    table, metadata = result.table, result.metadata
    stored_values, stored_gm = values, gm
    reference = stored_values[stored_gm >= 0.5].mean()
    for index, name in ((1, "blob_L"), (2, "blob_R")):
        row = table.set_index("roi").loc[name]
        data = stored_values[labels == index]
        assert row["mean"] == pytest.approx(data.mean(), rel=1e-12)
        assert row["sd"] == pytest.approx(data.std(ddof=1), rel=1e-12)
        assert row["relative_to_reference"] == pytest.approx(data.mean() / reference, rel=1e-12)
    left, right = (stored_values[labels == index].mean() for index in (1, 2))
    assert table["asymmetry_index"].iloc[0] == pytest.approx(2 * (left - right) / (left + right))
    assert metadata["Atlas"]["SHA256"] == atlas.checksum()
    assert metadata["ReferenceMean"] == pytest.approx(reference)


def test_sphere_numbers_equal_numpy(template, tmp_path):
    spheres = tmp_path / "spheres.tsv"
    spheres.write_text(
        "name\tx\ty\tz\tradius_mm\tspace\n"
        f"pag\t0\t-30\t-10\t4\t{template.space}\n"
        f"pag_wide\t0\t-30\t-10\t7\t{template.space}\n"  # overlaps the first: its own level
    )
    atlas = load_spheres(spheres, template, tmp_path / "built")
    labels, affine = atlas.label_array()
    grid = nb.load(template.brain_mask)
    ijk = np.indices(grid.shape).reshape(3, -1).T
    xyz = ijk @ affine[:3, :3].T + affine[:3, 3]
    rng = np.random.default_rng(5)
    values = rng.normal(40, 5, grid.shape)
    table = regional_statistics(values, labels, atlas.rois()).set_index("roi")
    for name, radius in (("pag", 4.0), ("pag_wide", 7.0)):
        inside = (np.linalg.norm(xyz - [0.0, -30.0, -10.0], axis=1) <= radius).reshape(grid.shape)
        assert table.loc[name, "n_voxels"] == inside.sum()
        assert table.loc[name, "mean"] == pytest.approx(values[inside].mean(), rel=1e-12)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        ("zero_based", "0-based table needs 1 added"),
        ("shifted", "one less than every image label"),
        ("unlisted", "does not list image label"),
        ("empty", "has no voxel with label"),
        ("space", "is in space"),
        ("grid", "not on the template grid"),
        ("hostile", "column 'name' has"),
        ("duplicate", "repeats names"),
        ("no_tsv", "is missing"),
        ("bad_index", "column 'index' has"),
    ],
)
def test_user_atlas_errors(template, tmp_path, mutate, message):
    grid = nb.load(template.brain_mask)
    labels = np.zeros(grid.shape, np.int16)
    labels[40:45, 50:55, 40:45] = 1
    labels[50:55, 50:55, 40:45] = 2
    rows = [(1, "blob_L"), (2, "blob_R")]
    space = None
    if mutate == "zero_based":
        rows = [(0, "blob_L"), (1, "blob_R")]
    elif mutate == "shifted":  # the table counts from 1 but the image from 2
        labels[labels > 0] += 1
        rows = [(1, "blob_L"), (2, "blob_R")]
    elif mutate == "unlisted":
        rows = rows[:1]
    elif mutate == "empty":
        rows = [*rows, (3, "nothing")]
    elif mutate == "space":
        space = "MNI152NLin6Asym"
    elif mutate == "grid":
        labels = labels[:-1]
    elif mutate == "hostile":
        rows = [(1, "\x1b[31m<script>"), (2, "blob_R")]
    elif mutate == "duplicate":
        rows = [(1, "blob"), (2, "blob")]
    elif mutate == "bad_index":
        rows = [("one", "blob_L"), (2, "blob_R")]
    folder = write_user_atlas(tmp_path / "mine", template, labels, rows, space)
    if mutate == "no_tsv":
        next(folder.glob("*.tsv")).unlink()
    with pytest.raises(InputError, match=message) as caught:
        load_user_atlas(folder, template)
    assert "\n" not in caught.value.message and "\x1b" not in caught.value.message


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("name\tx\ty\n", "has no column 'z'"),
        ("name\tx\ty\tz\tradius_mm\tspace\na\t0\t0\tnope\t4\t{space}\n", "column 'z' has"),
        ("name\tx\ty\tz\tradius_mm\tspace\na\t0\t0\t0\t-1\t{space}\n", "radius_mm"),
        ("name\tx\ty\tz\tradius_mm\tspace\na\t0\t0\t0\t4\tMNI305\n", "column 'space' has"),
        ("name\tx\ty\tz\tradius_mm\tspace\na\t500\t0\t0\t4\t{space}\n", "holds no voxel"),
        ("name\tx\ty\tz\tradius_mm\tspace\n", "lists no sphere"),
        ('name\tx\ty\tz\tradius_mm\tspace\n"occ\n"\t0\t0\t0\t4\t{space}\n', "column 'name'"),
    ],
)
def test_sphere_errors(template, tmp_path, content, message):
    spheres = tmp_path / "spheres.tsv"
    spheres.write_text(content.format(space=template.space))
    with pytest.raises(InputError, match=message):
        load_spheres(spheres, template, None)


def test_same_atlas_twice_is_refused(template, tmp_path):
    folder = write_user_atlas(tmp_path / "mine", template)
    with pytest.raises(InputError, match="twice"):
        resolve_atlases([str(folder), str(folder)], None, template, None)


def test_cli_refuses_a_bad_atlas_before_writing(tmp_path, capsys, template):
    folder = write_user_atlas(tmp_path / "mine", template, rows=[(1, "blob_L")])
    output = tmp_path / "out"
    status = main([str(example_dataset()), str(output), "participant", "--atlas", str(folder)])
    error = capsys.readouterr().err.strip()
    assert status == 2 and len(error.splitlines()) == 1 and "does not list" in error
    assert not output.exists()
