#!/usr/bin/env python3
"""Build the ``MigraineASL`` atlas shipped in ``aslmig/data/atlases/atlas-MigraineASL/``.

The regions are rules over MNI coordinates and template tissue maps
(``aslmig/atlas/migraine.py``); this tool applies them to the bundled 2 mm ICBM 2009a
template (``aslmig/data/templateflow/``, itself rebuilt by ``tools/build_template_bundle.py``
from the files the nilearn wheel ships) and writes, deterministically::

    atlas-MigraineASL_space-MNI152NLin2009aSym_res-02_dseg.nii.gz   4-D uint8, one level/volume
    atlas-MigraineASL_space-MNI152NLin2009aSym_res-02_dseg.tsv      index, name, level, ...
    atlas-MigraineASL_description.json                              levels, licence, sources
    LICENSE                                                         CC0 + the ICBM notice

Run from the project root::

    /work/venv/bin/python tools/build_atlas.py           # (re)write the files
    /work/venv/bin/python tools/build_atlas.py --check   # compare with the shipped files
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from pathlib import Path

PROJECT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(PROJECT))

from aslmig.atlas.migraine import ATLAS_NAME, LEVELS, LICENCE, build_migraine_atlas  # noqa: E402
from aslmig.atlas.rois import migraine_atlas_files, template_grid, write_atlas  # noqa: E402
from aslmig.atlas.templates import BUNDLED_SPACE, from_bundle  # noqa: E402

TARGET = PROJECT / "aslmig" / "data" / "atlases" / f"atlas-{ATLAS_NAME}"
TEMPLATE_LICENCE = (
    PROJECT / "aslmig" / "data" / "templateflow" / f"tpl-{BUNDLED_SPACE}" / "LICENSE"
)
LICENCE_TEXT = """\
MigraineASL region definitions (aslmig/atlas/migraine.py and the dseg.tsv rules):
CC0 1.0 Universal, https://creativecommons.org/publicdomain/zero/1.0/

The voxels were computed from the ICBM 2009a nonlinear symmetric template tissue maps,
which carry the following notice:

"""


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def description(template_files: dict[str, Path]) -> dict:
    """Return the atlas description JSON (levels, licence, sources with checksums)."""
    return {
        "Name": ATLAS_NAME,
        "Description": "Migraine-relevant ROIs for ASL perfusion MRI: dorsal rostral pons, "
        "hypothalamus, thalamus, occipital and calcarine cortex, pons, grey and white matter, "
        "and the arterial territories of the JHU atlas (level 2); one non-overlapping level per "
        "volume.",
        "Space": BUNDLED_SPACE,
        "Resolution": "2 mm isotropic (TemplateFlow res-02 grid)",
        "Levels": list(LEVELS),
        "License": LICENCE,
        "Authors": ["aslmig developers"],
        "BuildScript": "tools/build_atlas.py (rules in aslmig/atlas/migraine.py)",
        "SourceFiles": {name: {"File": path.name, "SHA256": _sha256(path)}
                        for name, path in template_files.items()},  # fmt: skip
        "ReferencesAndLinks": [
            "docs/regions.md of the aslmig documentation (definitions and rationale)"
        ],
    }


def build(directory: Path) -> list[Path]:
    """Write the atlas files into ``directory`` and return their paths."""
    template = from_bundle(2)
    grid, mask_image = template_grid(template)
    labels, table = build_migraine_atlas(grid)
    image_path, table_path, description_path = migraine_atlas_files(BUNDLED_SPACE, directory)
    write_atlas(labels, mask_image.affine, table, image_path, table_path)
    sources = {"gm": template.gm, "wm": template.wm, "csf": template.csf,
               "brain_mask": template.brain_mask}  # fmt: skip
    description_path.write_text(json.dumps(description(sources), indent=2) + "\n")
    licence = directory / "LICENSE"
    licence.write_text(LICENCE_TEXT + TEMPLATE_LICENCE.read_text())
    return [image_path, table_path, description_path, licence]


def main() -> int:
    """Build or check the shipped atlas files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    if not args.check:
        for path in build(TARGET):
            print(f"wrote {path.relative_to(PROJECT)}")
        return 0
    with tempfile.TemporaryDirectory() as scratch:
        differing = [
            path.name for path in build(Path(scratch))
            if not (TARGET / path.name).is_file()
            or (TARGET / path.name).read_bytes() != path.read_bytes()
        ]  # fmt: skip
    print("differs: " + ", ".join(differing) if differing else "shipped atlas is up to date")
    return 1 if differing else 0


if __name__ == "__main__":
    sys.exit(main())
