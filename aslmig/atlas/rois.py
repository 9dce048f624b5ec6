"""ROI sets: the shipped ``MigraineASL`` atlas, user atlases and coordinate spheres.

An atlas is a label image on a template grid plus a table (``index``, ``name``, optional
``hemisphere``, ``level`` and documentation columns). A 3-D label image holds
non-overlapping regions; a 4-D one holds one non-overlapping *level* per volume, which lets
regions overlap (``MigraineASL`` has the occipital cortex in the grey matter and in the PCA
territory). Every user-supplied atlas is validated here, and every problem is an
:class:`~aslmig.errors.InputError` naming the file, the field and the fix.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd

from aslmig.atlas.extract import Roi, roi_mask
from aslmig.atlas.migraine import ATLAS_NAME, LEVELS, Grid, build_migraine_atlas
from aslmig.atlas.templates import BUNDLED_SPACE, TemplateFiles
from aslmig.bids.entities import LABEL_CHARACTERS, is_label
from aslmig.bids.images import same_grid
from aslmig.errors import LARGEST_TEXT_BYTES, InputError, quote, regular_file_size

BUILTIN_ATLASES = (ATLAS_NAME,)
SPHERES_NAME = "Spheres"
SPHERE_COLUMNS = ("name", "x", "y", "z", "radius_mm", "space")
_ROI_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
NAME_RULE = "use letters, digits, '_', '.' or '-' (at most 64 characters)"


@dataclass(frozen=True)
class Atlas:
    """A set of ROIs on a template grid.

    Attributes
    ----------
    name : str
        Alphanumeric name used in output file names (``atlas-<name>``).
    space : str
        Template space of the label image.
    image : Path
        The label image (3-D, or 4-D with one level per volume).
    table : pandas.DataFrame
        ``index``, ``name``, ``hemisphere``, ``level`` and any documentation columns.
    description : dict
        Provenance recorded in output sidecars (licence, references, sources).
    """

    name: str
    space: str
    image: Path
    table: pd.DataFrame = field(repr=False)
    description: dict = field(default_factory=dict, repr=False)

    def rois(self) -> list[Roi]:
        """Return the regions, in table order."""
        return [
            Roi(int(row.index), str(row.name), int(row.level))
            for row in self.table.itertuples(index=False)
        ]

    def label_array(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the integer label array (3-D or 4-D) and its affine."""
        image = nb.load(self.image)
        return np.asarray(image.dataobj).astype(np.int32), image.affine

    def mask(self, name: str) -> np.ndarray:
        """Boolean 3-D mask of the region called ``name``."""
        matches = [roi for roi in self.rois() if roi.name == name]
        if not matches:
            known = ", ".join(self.table["name"])
            raise InputError(f"atlas {self.name}", f"has no region {quote(name)}", f"use {known}")
        labels, _ = self.label_array()
        return roi_mask(labels, matches[0])

    def checksum(self) -> str:
        """SHA-256 of the label image file."""
        return hashlib.sha256(self.image.read_bytes()).hexdigest()

    def provenance(self) -> dict:
        """Return what an output sidecar records about this atlas."""
        return {
            "Name": self.name,
            "Space": self.space,
            "File": self.image.name,
            "SHA256": self.checksum(),
            **self.description,
        }


def shipped_atlas_dir() -> Path:
    """Folder of the ``MigraineASL`` files shipped with the package."""
    return Path(str(resources.files("aslmig") / "data" / "atlases" / f"atlas-{ATLAS_NAME}"))


def migraine_atlas_files(space: str, directory: Path) -> tuple[Path, Path, Path]:
    """Paths of the ``MigraineASL`` label image, table and description for a space."""
    stem = f"atlas-{ATLAS_NAME}_space-{space}_res-02_dseg"
    return (
        directory / f"{stem}.nii.gz",
        directory / f"{stem}.tsv",
        directory / f"atlas-{ATLAS_NAME}_description.json",
    )


def _description(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def shipped_migraine_atlas() -> Atlas:
    """Return the ``MigraineASL`` atlas shipped on the bundled 2 mm template grid."""
    image, table, description = migraine_atlas_files(BUNDLED_SPACE, shipped_atlas_dir())
    return Atlas(
        ATLAS_NAME,
        BUNDLED_SPACE,
        image,
        read_label_table(table),
        _description(description),
    )


def template_grid(template: TemplateFiles) -> tuple[Grid, nb.Nifti1Image]:
    """Coordinates and tissue maps of a template, and its brain-mask image (for the grid)."""
    mask_image = nb.load(template.brain_mask)

    def load(path: Path) -> np.ndarray:
        return np.clip(np.asanyarray(nb.load(path).dataobj, dtype=float), 0.0, 1.0)

    grid = Grid.from_arrays(
        mask_image.affine,
        load(template.gm),
        load(template.wm),
        load(template.csf),
        np.asanyarray(mask_image.dataobj) > 0,
    )
    return grid, mask_image


def migraine_atlas_for(template: TemplateFiles, build_dir: Path | None = None) -> Atlas:
    """``MigraineASL`` on the grid of ``template``: the shipped copy, or built from its maps.

    Parameters
    ----------
    template : TemplateFiles
        The template the participant workflow uses.
    build_dir : Path, optional
        Where to write the atlas when it must be built (any template other than the bundled
        one); required then.

    Returns
    -------
    Atlas
        The atlas on the template's grid.
    """
    shipped = shipped_migraine_atlas()
    if template.space == BUNDLED_SPACE and _same_grid(shipped.image, template.brain_mask):
        return shipped
    if build_dir is None:
        raise ValueError("building MigraineASL for another template needs build_dir")
    grid, mask_image = template_grid(template)
    labels, table = build_migraine_atlas(grid)
    image_path, table_path, description_path = migraine_atlas_files(template.space, build_dir)
    write_atlas(labels, mask_image.affine, table, image_path, table_path)
    description = {**shipped.description, "Space": template.space}
    description_path.write_text(_json(description))
    return Atlas(ATLAS_NAME, template.space, image_path, read_label_table(table_path), description)


def _json(data: dict) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def write_atlas(
    labels: np.ndarray, affine: np.ndarray, table: pd.DataFrame, image_path: Path, table_path: Path
) -> None:
    """Write a label image (deterministic gzip) and its table."""
    image_path.parent.mkdir(parents=True, exist_ok=True)
    image = nb.Nifti1Image(labels.astype(np.uint8), affine)
    image.header.set_xyzt_units("mm")
    image.set_qform(affine, code=4)
    image.set_sform(affine, code=4)
    with gzip.GzipFile(image_path, "wb", mtime=0) as handle:
        handle.write(image.to_bytes())
    table.to_csv(table_path, sep="\t", index=False, lineterminator="\n")


def read_label_table(path: Path) -> pd.DataFrame:
    """Read and check a ``dseg.tsv`` (``index`` and ``name`` required).

    Adds ``hemisphere`` (from a ``_L``/``_R`` name suffix when absent) and ``level``
    (0 when absent).
    """
    regular_file_size(path, path, limit=LARGEST_TEXT_BYTES)
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot be read as a TSV ({type(error).__name__})") from None
    missing = [column for column in ("index", "name") if column not in table.columns]
    if missing:
        raise InputError(path, f"has no column {missing[0]!r}", "add 'index' and 'name' columns")
    if table.empty:
        raise InputError(path, "lists no region", "add one row per label")
    table["index"] = _integer_column(table["index"], path, "index", minimum=1)
    if "level" in table.columns:
        table["level"] = _integer_column(table["level"], path, "level", minimum=0)
    else:
        table["level"] = 0
    for name in table["name"]:
        if not _ROI_NAME.fullmatch(name):
            raise InputError(path, f"column 'name' has {quote(name)}", NAME_RULE)
    for columns, what in ((["name"], "names"), (["level", "index"], "index values per level")):
        if table.duplicated(subset=columns).any():
            raise InputError(path, f"repeats {what}", "give every region its own row")
    if "hemisphere" not in table.columns:
        table["hemisphere"] = [Roi(0, name).hemisphere or "n/a" for name in table["name"]]
    return table


def _integer_column(values: pd.Series, path: Path, column: str, minimum: int) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce")
    bad = values[numbers.isna() | (numbers % 1 != 0) | (numbers < minimum)]
    if not bad.empty:
        fix = f"use integers >= {minimum}"
        if column == "index":
            fix += "; 0 is the background, so a 0-based table needs 1 added to every index"
        raise InputError(path, f"column {column!r} has {quote(bad.iloc[0])}", fix)
    return numbers.astype(int)


def _same_grid(image_path: Path, reference_path: Path) -> bool:
    return same_grid(nb.load(image_path), nb.load(reference_path))


def load_user_atlas(folder: Path, template: TemplateFiles) -> Atlas:
    """Load and validate a BIDS-Atlas-like folder (``*_dseg.nii.gz`` + ``*_dseg.tsv``).

    Parameters
    ----------
    folder : Path
        Folder holding one ``*_dseg.nii.gz`` and its ``*_dseg.tsv``; the atlas name comes
        from an ``atlas-<name>`` entity (else the folder name), the space from a
        ``space-<label>`` entity or a ``"Space"`` field of a JSON file in the folder.
    template : TemplateFiles
        The template the run uses: the atlas must be in its space and on its grid.

    Returns
    -------
    Atlas
        The validated atlas.
    """
    image_path = _single(folder, "*_dseg.nii.gz", "a label image '<name>_dseg.nii.gz'")
    table_path = image_path.with_name(image_path.name.replace(".nii.gz", ".tsv"))
    if not table_path.is_file():
        raise InputError(table_path, "is missing", "add the label table next to the image")
    name = _entity(image_path.name, "atlas") or folder.name.removeprefix("atlas-")
    if not is_label(name):
        raise InputError(folder, f"atlas name {quote(name)} is not alphanumeric", "rename it")
    about = _folder_json(folder)
    json_space = about.get("Space")
    space = _entity(image_path.name, "space") or (
        json_space if isinstance(json_space, str) else None
    )
    if space is None:
        raise InputError(
            image_path, "names no space", "add a 'space-<template>' entity or a JSON 'Space'"
        )
    if space != template.space:
        raise InputError(
            image_path,
            f"is in space {quote(space)}, the run uses {template.space}",
            f"provide the atlas in {template.space}",
        )
    table = read_label_table(table_path)
    labels = _load_labels(image_path)
    if not _same_grid(image_path, template.brain_mask):
        raise InputError(
            image_path,
            "is not on the template grid (shape or affine differ)",
            f"resample it to {Path(template.brain_mask).name}'s grid with nearest neighbour",
        )
    _check_labels(labels, table, image_path, table_path)
    kept = ("Name", "License", "ReferencesAndLinks")
    description = {"Source": str(folder), **{key: about[key] for key in kept if key in about}}
    return Atlas(name, space, image_path, table, description)


def _single(folder: Path, pattern: str, what: str) -> Path:
    if not folder.is_dir():
        raise InputError(folder, "is not a folder", "give an atlas folder or a built-in name")
    found = sorted(folder.glob(pattern))
    if len(found) != 1:
        problem = "holds no" if not found else f"holds {len(found)} files like"
        raise InputError(folder, f"{problem} {what}", "keep exactly one label image per folder")
    return found[0]


def _entity(file_name: str, key: str) -> str | None:
    match = re.search(rf"(?:^|_){key}-({LABEL_CHARACTERS})", file_name)
    return match.group(1) if match else None


def _folder_json(folder: Path) -> dict:
    """Return the first JSON object of an atlas folder (its description), or {}."""
    for path in sorted(folder.glob("*.json")):
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            raise InputError(path, "is not valid JSON", "fix or remove it") from None
        if isinstance(data, dict):
            return data
    return {}


def _load_labels(path: Path) -> np.ndarray:
    try:
        data = np.asanyarray(nb.load(path).dataobj)
    except Exception as error:  # nibabel raises many types for corrupt files
        raise InputError(path, f"cannot be read ({type(error).__name__})") from None
    if data.ndim not in (3, 4):
        raise InputError(path, f"has {data.ndim} dimensions", "use a 3-D (or 4-D) label image")
    if not np.all(np.isfinite(data)) or np.any(data % 1 != 0) or np.any(data < 0):
        raise InputError(path, "holds non-integer or negative values", "store integer labels")
    return data.astype(np.int32)


def _check_labels(labels: np.ndarray, table: pd.DataFrame, image: Path, tsv: Path) -> None:
    levels = labels.shape[3] if labels.ndim == 4 else 1
    if int(table["level"].max()) >= levels:
        raise InputError(tsv, "column 'level' exceeds the image's volumes", "use 0-based levels")
    for level in range(levels):
        volume = labels[..., level] if labels.ndim == 4 else labels
        present = set(np.unique(volume).tolist()) - {0}
        listed = set(table.loc[table["level"] == level, "index"].tolist())
        _compare_labels(present, listed, image, tsv)


def _compare_labels(present: set[int], listed: set[int], image: Path, tsv: Path) -> None:
    if listed and present and {value + 1 for value in listed} == present:
        raise InputError(tsv, "column 'index' is one less than every image label (index base)",
                         "add 1 to every index so that it equals the image value")  # fmt: skip
    unlisted = sorted(present - listed)
    if unlisted:
        raise InputError(tsv, f"does not list image label(s) {unlisted[:5]}",
                         "add their rows or remove them from the image")  # fmt: skip
    empty = sorted(listed - present)
    if empty:
        raise InputError(image, f"has no voxel with label(s) {empty[:5]} listed in {tsv.name}",
                         "remove the empty regions from the table")  # fmt: skip


def load_spheres(path: Path, template: TemplateFiles, build_dir: Path | None) -> Atlas | None:
    """Build an atlas of spheres from a TSV (``name, x, y, z, radius_mm, space``).

    Each sphere is its own level, so spheres may overlap. Coordinates are template (MNI)
    millimetres of the sphere centre; a voxel belongs to a sphere when its centre is within
    ``radius_mm``.

    Parameters
    ----------
    path : Path
        The sphere table.
    template : TemplateFiles
        The run's template (its space and grid).
    build_dir : Path or None
        Where the label image is written; None only validates and returns None.

    Returns
    -------
    Atlas or None
        The sphere atlas (None when only validating).
    """
    table, centres = _read_spheres(path, template)
    grid, mask_image = template_grid(template)
    labels = np.zeros((*grid.gm.shape, len(table)), dtype=np.uint8)
    for level, (name, (x, y, z, radius)) in enumerate(zip(table["name"], centres, strict=True)):
        inside = (grid.x - x) ** 2 + (grid.y - y) ** 2 + (grid.z - z) ** 2 <= radius**2
        if not inside.any():
            raise InputError(path, f"sphere {quote(name)} holds no voxel of the template grid",
                             "check its centre and radius")  # fmt: skip
        labels[..., level][inside] = 1
    if build_dir is None:
        return None
    image_path = build_dir / f"atlas-{SPHERES_NAME}_space-{template.space}_dseg.nii.gz"
    table_path = image_path.with_name(image_path.name.replace(".nii.gz", ".tsv"))
    write_atlas(labels, mask_image.affine, table, image_path, table_path)
    return Atlas(SPHERES_NAME, template.space, image_path, read_label_table(table_path),
                 {"Source": path.name})  # fmt: skip


def _read_spheres(path: Path, template: TemplateFiles) -> tuple[pd.DataFrame, np.ndarray]:
    regular_file_size(path, path, limit=LARGEST_TEXT_BYTES)
    try:
        table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    except (OSError, pd.errors.ParserError, UnicodeDecodeError) as error:
        raise InputError(path, f"cannot be read as a TSV ({type(error).__name__})") from None
    missing = [column for column in SPHERE_COLUMNS if column not in table.columns]
    if missing:
        raise InputError(path, f"has no column {missing[0]!r}", f"use {', '.join(SPHERE_COLUMNS)}")
    if table.empty:
        raise InputError(path, "lists no sphere", "add one row per sphere")
    columns = ("x", "y", "z", "radius_mm")
    for column in columns:
        values = pd.to_numeric(table[column], errors="coerce")
        bad = table.loc[values.isna() | ~np.isfinite(values.fillna(0.0)), column]
        if not bad.empty:
            raise InputError(path, f"column {column!r} has {quote(bad.iloc[0])}", "use numbers")
    centres = table[list(columns)].astype(float).to_numpy()
    if (centres[:, 3] <= 0).any():
        raise InputError(path, "column 'radius_mm' has a value <= 0", "use a positive radius")
    for space in table["space"]:
        if space != template.space:
            raise InputError(
                path,
                f"column 'space' has {quote(space)}, the run uses {template.space}",
                f"give coordinates in {template.space}",
            )
    for name in table["name"]:
        if not _ROI_NAME.fullmatch(name):
            raise InputError(path, f"column 'name' has {quote(name)}", NAME_RULE)
    if table["name"].duplicated().any():
        raise InputError(path, "repeats names", "give every sphere its own name")
    written = pd.DataFrame({
        "index": 1, "name": table["name"], "level": range(len(table)),
        "x": centres[:, 0], "y": centres[:, 1], "z": centres[:, 2], "radius_mm": centres[:, 3],
    })  # fmt: skip
    return written, centres


def resolve_atlases(
    names: Sequence[str], spheres: str | None, template: TemplateFiles, build_dir: Path | None
) -> list[Atlas]:
    """Return the validated ROI sets of a run; with ``build_dir`` None, only validate.

    Parameters
    ----------
    names : sequence of str
        ``--atlas`` values: built-in names or atlas folders.
    spheres : str or None
        ``--roi-spheres`` file.
    template : TemplateFiles
        The run's template.
    build_dir : Path or None
        Where atlases that must be built are written (None: validation only).

    Returns
    -------
    list of Atlas
        The atlases (when only validating, those that need no building).
    """
    atlases: list[Atlas] = []
    for entry in names:
        if entry in BUILTIN_ATLASES:
            if build_dir is not None:
                atlases.append(migraine_atlas_for(template, build_dir))
            continue
        atlases.append(load_user_atlas(Path(entry), template))
    if spheres:
        sphere_atlas = load_spheres(Path(spheres), template, build_dir)
        if sphere_atlas is not None:
            atlases.append(sphere_atlas)
    seen: set[str] = set()
    for atlas in atlases:
        if atlas.name in seen:
            raise InputError("--atlas", f"names atlas {atlas.name} twice", "give each once")
        seen.add(atlas.name)
    return atlases


def load_atlas(name_or_path: str | Path = ATLAS_NAME, template: TemplateFiles | None = None,
               build_dir: Path | None = None) -> Atlas:  # fmt: skip
    """Load a built-in atlas by name, or a user atlas folder.

    Parameters
    ----------
    name_or_path : str or Path
        ``MigraineASL`` or the path of a BIDS-Atlas-like folder.
    template : TemplateFiles, optional
        The run's template (required for folders, and to get ``MigraineASL`` on a template
        other than the bundled one).
    build_dir : Path, optional
        Where ``MigraineASL`` is written when it must be built for ``template``.

    Returns
    -------
    Atlas
        The atlas.
    """
    if str(name_or_path) in BUILTIN_ATLASES:
        if template is None:
            return shipped_migraine_atlas()
        return migraine_atlas_for(template, build_dir)
    if template is None:
        raise ValueError("a user atlas needs the run's template")
    return load_user_atlas(Path(name_or_path), template)


__all__ = [
    "ATLAS_NAME",
    "Atlas",
    "LEVELS",
    "load_atlas",
    "load_spheres",
    "load_user_atlas",
    "migraine_atlas_for",
    "resolve_atlases",
    "shipped_migraine_atlas",
]
