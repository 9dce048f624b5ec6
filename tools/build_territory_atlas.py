#!/usr/bin/env python3
"""Build the arterial-territory atlas shipped in ``aslmig/data/atlases/atlas-JHUArterial/``.

Source: the JHU arterial territory atlas (Liu et al. 2023, Sci Data 10:74; CC BY-SA 4.0) as
shipped in the ``rapidtide`` wheel on PyPI under ``rapidtide/data/reference/``. rapidtide is
never a dependency of aslmig: this tool reads the wheel (a zip file) only. It writes,
deterministically::

    atlas-JHUArterial_space-MNI152NLin2009cAsym_res-02_dseg.nii.gz   4-D uint8: level 1
        (30 territories, the wheel's image in MNI152NLin2009cAsym, unchanged) and level 2
        (ACA, MCA, PCA, VB x L/R, merged from level 1)
    atlas-JHUArterial_dseg.tsv            index, name, level, hemisphere, territory, ...
    atlas-JHUArterial_description.json    levels, licence, sources with checksums
    LICENSE                               attribution, changes and the CC BY-SA 4.0 text

The level-1 -> level-2 mapping is read from the wheel's own images: both levels exist in
MNI152NLin6Asym, and every level-1 territory lies, voxel for voxel, in one level-2 territory
(checked: the build stops otherwise). The wheel's MNI152NLin2009cAsym grid (97 x 115 x 97,
2 mm) is also the grid of aslmig's bundled MNI152NLin2009aSym template, so the same voxels
serve both templates (both are ICBM 2009 nonlinear MNI spaces; checked: the build stops if
the grids differ). The MigraineASL atlas takes its level-3 territories from level 2.

Run from the project root::

    python tools/build_territory_atlas.py [--wheel rapidtide-3.2.0-py3-none-any.whl]
    python tools/build_territory_atlas.py --check [--wheel ...]   # compare, write nothing

Without ``--wheel`` the wheel is fetched with ``pip download --no-deps rapidtide==3.2.0``
into a temporary folder.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from aslmig.atlas.templates import BUNDLED_SPACE, bundle_root, file_name  # noqa: E402
from aslmig.atlas.territories import (  # noqa: E402
    ATLAS_NAME,
    CITATION,
    LEVELS,
    SPACE,
    TERRITORY_NAMES,
    atlas_files,
)

RAPIDTIDE = "rapidtide==3.2.0"
REFERENCE = "rapidtide/data/reference/JHU-ArterialTerritoriesNoVent-"
FILES = {
    "level1": "LVL1_space-MNI152NLin2009cAsym_2mm.nii.gz",
    "level1_nlin6": "LVL1_space-MNI152NLin6Asym_2mm.nii.gz",
    "level2_nlin6": "LVL2_space-MNI152NLin6Asym_2mm.nii.gz",
    "names1": "LVL1_regions.txt",
    "names2": "LVL2_regions.txt",
}
TARGET = PROJECT / "aslmig" / "data" / "atlases" / f"atlas-{ATLAS_NAME}"
CC_BY_SA = PROJECT / "tools" / "licences" / "CC-BY-SA-4.0.txt"
#: Level-1 abbreviations of Liu et al. (2023).
LEVEL1_MEANING = {
    "ACA": "anterior cerebral artery",
    "MLS": "medial lenticulostriate",
    "LLS": "lateral lenticulostriate",
    "MCAF": "middle cerebral artery, frontal",
    "MCAP": "middle cerebral artery, parietal",
    "MCAT": "middle cerebral artery, temporal",
    "MCAO": "middle cerebral artery, occipital",
    "MCAI": "middle cerebral artery, insular",
    "PCAT": "posterior cerebral artery, temporal",
    "PCAO": "posterior cerebral artery, occipital",
    "PCTP": "posterior choroidal and thalamoperforating",
    "ACTP": "anterior choroidal and thalamoperforating",
    "B": "basilar",
    "SC": "superior cerebellar",
    "IC": "inferior cerebellar",
}


def fetch_wheel(folder: Path) -> Path:
    """Download the rapidtide wheel (no dependencies) into ``folder``."""
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
         RAPIDTIDE, "-d", str(folder)], check=True, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    return next(folder.glob("rapidtide-*.whl"))


def read_wheel(wheel: Path) -> dict:
    """Return the images (arrays, affines), names and SHA-256 of the files read."""
    found: dict = {"sha256": {}}
    with zipfile.ZipFile(wheel) as archive:
        for key, suffix in FILES.items():
            content = archive.read(REFERENCE + suffix)
            found["sha256"][REFERENCE + suffix] = hashlib.sha256(content).hexdigest()
            if suffix.endswith(".txt"):
                found[key] = content.decode("utf-8").split()
            else:
                image = nb.Nifti1Image.from_bytes(gzip.decompress(content))
                found[key] = (np.rint(np.asanyarray(image.dataobj)).astype(int), image.affine)
    return found


def level_mapping(source: dict) -> dict[str, str]:
    """Level-1 name -> level-2 name, from the overlap of the two levels in MNI152NLin6Asym."""
    level1, _ = source["level1_nlin6"]
    level2, _ = source["level2_nlin6"]
    mapping = {}
    for index, name in enumerate(source["names1"], start=1):
        inside = level2[level1 == index]
        values, counts = np.unique(inside[inside > 0], return_counts=True)
        if values.size != 1 or counts.sum() != inside.size:
            raise SystemExit(f"level-1 territory {name} is not inside one level-2 territory")
        mapping[name] = source["names2"][int(values[0]) - 1]
    return mapping


def _side(name: str) -> str:
    return name[-1] if name[-1] in "LR" else "n/a"


def build_table(source: dict, mapping: dict[str, str]) -> pd.DataFrame:
    """One row per territory of both levels (indices 1-30 level 1, 31-38 level 2)."""
    rows = []
    for index, name in enumerate(source["names1"], start=1):
        rows.append({
            "index": index, "name": f"jhu_{name}", "level": 0, "hemisphere": _side(name),
            "territory": TERRITORY_NAMES[mapping[name]],
            "definition": f"{LEVEL1_MEANING[name[:-1]]} territory ({name}, level 1)",
        })  # fmt: skip
    offset = len(source["names1"])
    for index, name in enumerate(source["names2"], start=offset + 1):
        members = ", ".join(key for key, value in mapping.items() if value == name)
        rows.append({
            "index": index, "name": TERRITORY_NAMES[name], "level": 1, "hemisphere": _side(name),
            "territory": TERRITORY_NAMES[name],
            "definition": f"{name} territory (level 2): level-1 territories {members}",
        })  # fmt: skip
    table = pd.DataFrame(rows)
    table["source"] = "JHU arterial territory atlas, no ventricles (rapidtide 3.2.0 wheel)"
    table["reference"] = CITATION
    table["licence"] = "CC BY-SA 4.0"
    return table


def build_image(source: dict, mapping: dict[str, str]) -> nb.Nifti1Image:
    """4-D uint8 image: level 1 (unchanged) and level 2 (merged), on the wheel's grid."""
    level1, affine = source["level1"]
    template = nb.load(bundle_root() / f"tpl-{BUNDLED_SPACE}"
                       / file_name(BUNDLED_SPACE, "02", "label-GM", "probseg"))  # fmt: skip
    if template.shape != level1.shape or not np.allclose(template.affine, affine):
        raise SystemExit("the wheel's MNI152NLin2009cAsym grid is not the bundled template's")
    offset = len(source["names1"])
    lookup = np.zeros(offset + 1, dtype=np.uint8)
    for index, name in enumerate(source["names1"], start=1):
        lookup[index] = offset + 1 + source["names2"].index(mapping[name])
    data = np.stack([level1.astype(np.uint8), lookup[level1]], axis=-1)
    image = nb.Nifti1Image(data, affine)
    image.header.set_xyzt_units("mm")
    image.header.set_qform(affine, code=4)
    image.header.set_sform(affine, code=4)
    return image


LICENCE_HEADER = """\
aslmig's atlas-JHUArterial files are adapted from the JHU arterial territory atlas:

  {citation}
  Files: {files}
  (as distributed in the rapidtide 3.2.0 wheel on PyPI, rapidtide/data/reference/)

Changes made by aslmig (tools/build_territory_atlas.py): the level-1 image in
MNI152NLin2009cAsym is stored unchanged as volume 1; volume 2 merges the level-1 territories
into ACA, MCA, PCA and VB per hemisphere, with the mapping read from the atlas's own level-1
and level-2 images in MNI152NLin6Asym; labels renumbered (level 2: 31-38) and renamed; the
MigraineASL atlas's arterial territories (level 3) are taken from volume 2.

These adapted files are licensed under the Creative Commons Attribution-ShareAlike 4.0
International License, as the original. Its text follows.

"""


def build(directory: Path, wheel: Path) -> list[Path]:
    """Write the atlas files into ``directory`` and return their paths."""
    source = read_wheel(wheel)
    mapping = level_mapping(source)
    image_path, table_path, description_path = atlas_files(directory)
    directory.mkdir(parents=True, exist_ok=True)
    image = build_image(source, mapping)
    buffer = io.BytesIO(gzip.compress(image.to_bytes(), compresslevel=9, mtime=0))
    image_path.write_bytes(buffer.getvalue())
    table = build_table(source, mapping)
    table_path.write_text(table.to_csv(sep="\t", index=False, lineterminator="\n"))
    description = {
        "Name": ATLAS_NAME,
        "Description": "Arterial territories of the brain (JHU atlas, no ventricles): "
        "level 1 with 30 territories, level 2 with ACA, MCA, PCA and VB per hemisphere.",
        "Space": SPACE,
        "AlsoExactOn": f"{BUNDLED_SPACE} res-02 (the same 2 mm grid)",
        "Levels": list(LEVELS),
        "License": "CC BY-SA 4.0",
        "ReferencesAndLinks": [CITATION],
        "BuildScript": "tools/build_territory_atlas.py",
        "SourcePackage": RAPIDTIDE,
        "SourceFiles": source["sha256"],
        "LevelMapping": mapping,
    }
    description_path.write_text(json.dumps(description, indent=2) + "\n")
    licence = directory / "LICENSE"
    files = ", ".join(f"JHU-ArterialTerritoriesNoVent-{suffix}" for suffix in FILES.values())
    licence.write_text(LICENCE_HEADER.format(citation=CITATION, files=files)
                       + CC_BY_SA.read_text(encoding="utf-8"))  # fmt: skip
    return [image_path, table_path, description_path, licence]


def main() -> int:
    """Build or check the shipped territory atlas."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    parser.add_argument("--wheel", type=Path, help="a rapidtide wheel (default: pip download)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        wheel = args.wheel or fetch_wheel(Path(scratch) / "wheel")
        if not args.check:
            for path in build(TARGET, wheel):
                print(f"wrote {path.relative_to(PROJECT)}")
            return 0
        differing = [
            path.name for path in build(Path(scratch) / "atlas", wheel)
            if not (TARGET / path.name).is_file()
            or (TARGET / path.name).read_bytes() != path.read_bytes()
        ]  # fmt: skip
    print("differs: " + ", ".join(differing) if differing else "shipped atlas is up to date")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
