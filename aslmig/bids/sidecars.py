"""Strict JSON sidecar reading and the BIDS inheritance principle."""

from __future__ import annotations

import contextlib
import json
import math
import os
from pathlib import Path
from typing import Any

from aslmig.errors import LARGEST_TEXT_BYTES, InputError, quote, reading, regular_file_size


def _refuse_constant(name: str) -> float:
    raise ValueError(f"non-standard JSON number {name}")


def _refuse_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    keys = [key for key, _ in pairs]
    duplicated = sorted({key for key in keys if keys.count(key) > 1})
    if duplicated:
        raise ValueError(f"field {quote(duplicated[0])} appears more than once")
    return dict(pairs)


def read_json(path: Path, shown_as: str | None = None) -> dict[str, Any]:
    """Read a JSON object, refusing NaN/Infinity, duplicate keys and non-objects.

    Parameters
    ----------
    path : Path
        The file to read.
    shown_as : str, optional
        How to name the file in error messages (defaults to ``path``).

    Returns
    -------
    dict
        The parsed JSON object.

    Raises
    ------
    InputError
        If the file is empty, too large, not UTF-8, not valid JSON or not an object.
    """
    name = shown_as or str(path)
    size = regular_file_size(path, name, limit=LARGEST_TEXT_BYTES)
    if size == 0:
        raise InputError(name, "the JSON file is empty", "write the sidecar's metadata into it")
    try:
        with reading(name):
            text = path.read_text(encoding="utf-8")
        data = json.loads(
            text, parse_constant=_refuse_constant, object_pairs_hook=_refuse_duplicates
        )
    except UnicodeDecodeError:
        raise InputError(name, "the JSON file is not UTF-8 text", "save it as UTF-8") from None
    except RecursionError:
        raise InputError(
            name, "the JSON nests lists or objects too deeply to be read", "flatten it"
        ) from None
    except ValueError as error:
        raise InputError(name, f"invalid JSON: {error}", "fix the JSON syntax") from None
    if not isinstance(data, dict):
        raise InputError(name, "the JSON file must hold an object ({...})")
    return data


def _entities_of(filename: str) -> tuple[dict[str, str], str]:
    """Split a BIDS file name into its key-value entities and its suffix."""
    stem = filename.split(".", 1)[0]
    parts = stem.split("_")
    entities = dict(part.split("-", 1) for part in parts[:-1] if "-" in part)
    return entities, parts[-1]


def inherited_sidecars(data_file: Path, root: Path) -> list[Path]:
    """List the JSON sidecars that apply to ``data_file``, from the top level down.

    Implements the BIDS inheritance principle: a JSON file applies when it has the
    same suffix and its entities are a subset of the data file's entities, in the data
    file's directory or any parent up to the dataset root. Later files win.

    Parameters
    ----------
    data_file : Path
        An imaging or tabular data file inside the dataset.
    root : Path
        The dataset root.

    Returns
    -------
    list of Path
        Applicable sidecars, least specific first.
    """
    entities, suffix = _entities_of(data_file.name)
    directories = [data_file.parent]
    while directories[-1] != root and root in directories[-1].parents:
        directories.append(directories[-1].parent)
    found: list[Path] = []
    for directory in reversed(directories):
        candidates = sorted(directory.glob(f"*{suffix}.json"))
        for candidate in sorted(candidates, key=lambda p: len(_entities_of(p.name)[0])):
            cand_entities, cand_suffix = _entities_of(candidate.name)
            same = all(entities.get(key) == value for key, value in cand_entities.items())
            if cand_suffix == suffix and same:
                found.append(candidate)
    return found


def read_sidecar(data_file: Path, root: Path) -> tuple[dict[str, Any], list[Path]]:
    """Read the merged metadata of a data file under the inheritance principle.

    Parameters
    ----------
    data_file : Path
        The data file whose metadata is wanted.
    root : Path
        The dataset root (file names in errors are shown relative to it).

    Returns
    -------
    metadata : dict
        The merged metadata.
    files : list of Path
        The sidecars it came from, least specific first.
    """
    files = inherited_sidecars(data_file, root)
    merged: dict[str, Any] = {}
    for sidecar in files:
        merged.update(read_json(sidecar, shown_as=relative_name(sidecar, root)))
    return merged, files


def relative_name(path: Path, root: Path) -> str:
    """Name ``path`` relative to ``root`` when it lies inside it.

    The file itself is not resolved: a DataLad/git-annex file is a symbolic link into
    ``.git/annex/objects``, and its name is its BIDS path, not the annex key. Only the
    folders are resolved, for a dataset reached through a linked folder.
    """
    absolute = Path(os.path.normpath(os.path.abspath(path)))
    for base in (Path(os.path.abspath(root)), Path(os.path.realpath(root))):
        for folder in (absolute.parent, Path(os.path.realpath(absolute.parent))):
            with contextlib.suppress(ValueError):
                return str((folder / absolute.name).relative_to(base))
    return str(path)


def finite_number(value: Any) -> bool:
    """Tell whether ``value`` is a real, finite JSON number (not a bool)."""
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
