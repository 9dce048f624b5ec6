"""The arterial-territory atlas shipped with aslmig (JHU, Liu et al. 2023; CC BY-SA 4.0).

``aslmig/data/atlases/atlas-JHUArterial/`` holds the JHU arterial territory atlas in
MNI152NLin2009cAsym at 2 mm (the same grid as the bundled MNI152NLin2009aSym template): level 1
with 30 territories and level 2 with ACA, MCA, PCA and VB per hemisphere. It is built from the
``rapidtide`` wheel by ``tools/build_territory_atlas.py`` (rapidtide is not a dependency).

:func:`territory_at` samples level 2 at MNI coordinates (nearest voxel), which is how the
MigraineASL atlas gets its arterial territories on any MNI152 2009 grid, and how patient
abnormalities are assigned to territories (:mod:`aslmig.group.territories`).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd

ATLAS_NAME = "JHUArterial"
SPACE = "MNI152NLin2009cAsym"
LEVELS = ("territories_level1", "territories_level2")
#: Level-2 abbreviations of the source -> aslmig region names.
TERRITORY_NAMES = {
    "ACAL": "territory_ACA_L", "ACAR": "territory_ACA_R",
    "MCAL": "territory_MCA_L", "MCAR": "territory_MCA_R",
    "PCAL": "territory_PCA_L", "PCAR": "territory_PCA_R",
    "VBL": "territory_VB_L", "VBR": "territory_VB_R",
}  # fmt: skip
CITATION = (
    "Liu CF, Hsu J, Xu X, et al. Digital 3D brain MRI arterial territories atlas. "
    "Sci Data 2023;10:74"
)


def atlas_dir() -> Path:
    """Return the folder of the shipped atlas."""
    return Path(str(resources.files("aslmig") / "data" / "atlases" / f"atlas-{ATLAS_NAME}"))


def atlas_files(directory: Path) -> tuple[Path, Path, Path]:
    """Return the image, table and description paths of the atlas in ``directory``."""
    stem = f"atlas-{ATLAS_NAME}"
    return (
        directory / f"{stem}_space-{SPACE}_res-02_dseg.nii.gz",
        directory / f"{stem}_dseg.tsv",
        directory / f"{stem}_description.json",
    )


@lru_cache(maxsize=1)
def _level2() -> tuple[np.ndarray, np.ndarray, dict[int, str]]:
    image_path, table_path, _ = atlas_files(atlas_dir())
    image = nb.load(image_path)
    table = pd.read_csv(table_path, sep="\t")
    level2 = table[table["level"] == 1]
    names = {int(k): str(v) for k, v in zip(level2["index"], level2["name"], strict=True)}
    labels = np.asarray(image.dataobj[..., 1], dtype=np.int16)
    return labels, image.affine, names


def territory_names() -> list[str]:
    """Return the eight level-2 territory names, in label order."""
    return list(_level2()[2].values())


def territory_at(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Level-2 territory name at MNI coordinates (nearest voxel; "" outside the atlas).

    Parameters
    ----------
    x, y, z : numpy.ndarray
        World coordinates (mm), any shape (the same for all three).

    Returns
    -------
    numpy.ndarray of str
        Territory names (``territory_MCA_L`` ...), same shape.
    """
    labels, affine, names = _level2()
    points = np.stack([np.ravel(x), np.ravel(y), np.ravel(z), np.ones(np.size(x))])
    index = np.rint(np.linalg.inv(affine) @ points)[:3].astype(int)
    inside = np.all((index >= 0) & (index < np.array(labels.shape)[:, None]), axis=0)
    values = np.zeros(index.shape[1], dtype=int)
    values[inside] = labels[tuple(index[:, inside])]
    lookup = np.array(["", *[names.get(k, "") for k in range(1, int(values.max(initial=0)) + 1)]],
                      dtype=object)  # fmt: skip
    return lookup[values].reshape(np.shape(x))
