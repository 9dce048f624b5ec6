"""The shipped JHU arterial-territory atlas and the MigraineASL territories made from it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
import pytest

from aslmig.atlas.rois import shipped_migraine_atlas
from aslmig.atlas.templates import BUNDLED_SPACE, bundle_root, file_name
from aslmig.atlas.territories import (
    TERRITORY_NAMES,
    atlas_dir,
    atlas_files,
    territory_at,
    territory_names,
)

PROJECT = Path(__file__).resolve().parents[2]


def test_levels_labels_and_licence():
    image_path, table_path, _ = atlas_files(atlas_dir())
    image = nb.load(image_path)
    data = np.asarray(image.dataobj)
    table = pd.read_csv(table_path, sep="\t")
    assert data.shape[-1] == 2 and len(table) == 38
    assert set(np.unique(data[..., 0])) == set(range(31))
    assert set(np.unique(data[..., 1])) == {0, *range(31, 39)}
    level1 = table[table["level"] == 0].set_index("index")
    by_name = table[table["level"] == 1].set_index("name")["index"]
    for index, row in level1.iterrows():  # level 2 = the merge of level 1, voxel for voxel
        assert (data[..., 1][data[..., 0] == index] == by_name[row["territory"]]).all()
    assert territory_names() == list(TERRITORY_NAMES.values())
    template = nb.load(bundle_root() / f"tpl-{BUNDLED_SPACE}"
                       / file_name(BUNDLED_SPACE, "02", "label-GM", "probseg"))  # fmt: skip
    assert template.shape == data.shape[:3] and np.allclose(template.affine, image.affine)
    licence = (atlas_dir() / "LICENSE").read_text()
    assert "Liu CF" in licence
    assert "Attribution-ShareAlike 4.0 International Public License" in licence
    assert "Changes made by aslmig" in licence


def test_territories_sit_where_the_arteries_go():
    names = territory_at(np.array([-40.0, 40.0, -6.0, -12.0, -20.0]),
                         np.array([0.0, 0.0, 30.0, -95.0, -75.0]),
                         np.array([20.0, 20.0, 45.0, 5.0, -35.0]))  # fmt: skip
    assert list(names) == ["territory_MCA_L", "territory_MCA_R", "territory_ACA_L",
                           "territory_PCA_L", "territory_VB_L"]  # fmt: skip
    assert territory_at(np.array([500.0]), np.array([0.0]), np.array([0.0]))[0] == ""


def test_migraine_territories_are_the_jhu_level_2_in_tissue():
    atlas = shipped_migraine_atlas()
    image = nb.load(atlas.image)
    labels = np.asarray(image.dataobj)[..., 3]
    table = atlas.table.set_index("index")
    ijk = np.argwhere(labels > 0)
    world = nb.affines.apply_affine(image.affine, ijk)
    jhu = territory_at(world[:, 0], world[:, 1], world[:, 2])
    ours = table.loc[labels[tuple(ijk.T)], "name"].to_numpy()
    assert (jhu == ours).all()
    assert set(ours) == set(TERRITORY_NAMES.values())


@pytest.mark.slow
def test_build_check_is_byte_identical(tmp_path):
    """Rebuild from the rapidtide wheel (pip download) and compare with the shipped files."""
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
         "rapidtide==3.2.0", "-d", str(tmp_path)], capture_output=True,
    )  # fmt: skip
    if download.returncode != 0:
        pytest.skip("the rapidtide wheel cannot be downloaded here")
    wheel = next(tmp_path.glob("rapidtide-*.whl"))
    result = subprocess.run(
        [sys.executable, str(PROJECT / "tools" / "build_territory_atlas.py"), "--check",
         "--wheel", str(wheel)], capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
