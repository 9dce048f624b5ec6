"""pybids queries -> one validated :class:`AslRun` per ASL series."""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from aslmig.bids.entities import is_label
from aslmig.bids.filters import metadata_matches, split_metadata_filters
from aslmig.bids.images import check_voxels, image_shape
from aslmig.bids.metadata import (
    AslMetadata,
    M0Metadata,
    SourceNames,
    parse_asl_metadata,
    parse_m0_metadata,
    read_aslcontext,
)
from aslmig.bids.sidecars import read_json, read_sidecar, relative_name
from aslmig.errors import InputError, describe_os_error, quote

NIFTI_EXTENSIONS = [".nii", ".nii.gz"]
QUERY_NAMES = ("asl", "m0scan", "t1w")
BASE_QUERIES: dict[str, dict[str, Any]] = {
    "asl": {"datatype": "perf", "suffix": "asl"},
    "m0scan": {"suffix": "m0scan"},
    "t1w": {"datatype": "anat", "suffix": "T1w"},
}
# Entities that identify an acquisition, used to pair an ASL series with its M0 scan.
_MATCHING_ENTITIES = ("subject", "session", "acquisition", "reconstruction", "run", "direction")


@dataclass(frozen=True)
class AslRun:
    """Everything needed to process one ASL series, already validated.

    Attributes
    ----------
    dataset_root : Path
        Root of the input dataset.
    asl_file, aslcontext_file : Path
        The series and its volume-type table.
    entities : dict
        BIDS entities of the series (subject, session, acquisition, run ...).
    metadata : AslMetadata
        Validated acquisition parameters.
    sidecar : dict
        The merged raw sidecar (kept for provenance).
    m0_file : Path or None
        Separate M0 image, when M0Type is Separate.
    m0_metadata : M0Metadata or None
        Its validated parameters.
    m0_reason : str
        How the M0 file was matched to the run.
    pepolar_m0_files : tuple of Path
        Reverse phase-encoded M0 scans in ``fmap/`` that belong to the run.
    t1w_file : Path or None
        The anatomical image to use.
    t1w_reason : str
        Why this T1w (or none) was chosen.
    """

    dataset_root: Path
    asl_file: Path
    aslcontext_file: Path
    entities: dict[str, str] = field(compare=False)
    metadata: AslMetadata
    sidecar: dict[str, Any] = field(compare=False, repr=False)
    sidecar_files: tuple[Path, ...] = ()
    m0_file: Path | None = None
    m0_metadata: M0Metadata | None = None
    m0_reason: str = ""
    pepolar_m0_files: tuple[Path, ...] = ()
    t1w_file: Path | None = None
    t1w_reason: str = ""

    @property
    def subject(self) -> str:
        """Participant label (without ``sub-``)."""
        return self.entities["subject"]

    @property
    def session(self) -> str | None:
        """Session label (without ``ses-``), if any."""
        return self.entities.get("session")

    @property
    def name(self) -> str:
        """The series' file name without suffix and extension, e.g. ``sub-01_run-1``."""
        return self.asl_file.name.split(".", 1)[0].rsplit("_", 1)[0]


# --------------------------------------------------------------------------- labels, filters


def normalise_labels(labels: list[str] | None, prefix: str, option: str) -> list[str] | None:
    """Strip ``sub-``/``ses-`` prefixes and refuse anything that is not a BIDS label.

    Parameters
    ----------
    labels : list of str or None
        Labels as given on the command line.
    prefix : str
        ``"sub-"`` or ``"ses-"``.
    option : str
        The option name, for messages.

    Returns
    -------
    list of str or None
        Unique labels in the given order, or None when none were given.
    """
    if not labels:
        return None
    cleaned: list[str] = []
    for label in labels:
        bare = label[len(prefix) :] if label.startswith(prefix) else label
        if not is_label(bare):
            raise InputError(
                option,
                f"{quote(label)} is not a BIDS label",
                "labels hold letters and digits only",
            )
        if bare not in cleaned:
            cleaned.append(bare)
    return cleaned


def _query(filters: dict[str, dict[str, Any]], name: str) -> dict[str, Any]:
    query = dict(BASE_QUERIES[name])
    query.update(filters.get(name, {}))
    query["extension"] = NIFTI_EXTENSIONS
    return query


# --------------------------------------------------------------------------- layout


def open_layout(bids_dir: Path, database_dir: Path | None = None, validate: bool = True) -> Any:
    """Index a BIDS dataset with pybids, reusing a saved index when asked.

    Parameters
    ----------
    bids_dir : Path
        The input dataset (never written to).
    database_dir : Path, optional
        Directory for pybids' SQLite index; reused when it already holds one, unless files
        were added, removed or renamed in the dataset since it was built.
    validate : bool
        Whether pybids checks file names against the BIDS specification.

    Returns
    -------
    bids.BIDSLayout
        The index.
    """
    bids_dir = Path(bids_dir)
    if not bids_dir.is_dir():
        raise InputError(bids_dir, "is not a directory", "give the BIDS dataset root")
    description = bids_dir / "dataset_description.json"
    if not os.path.lexists(description):
        raise InputError(
            bids_dir,
            "has no dataset_description.json, so it is not a BIDS dataset root",
            "point BIDS_DIR at the folder that holds dataset_description.json",
        )
    read_json(description)  # a folder, an unreadable file or bad JSON: one line, here
    with _importing_pybids():
        from bids import BIDSLayout, BIDSLayoutIndexer
        from bids.exceptions import BIDSValidationError
    indexer = BIDSLayoutIndexer(validate=validate, index_metadata=False)
    if indexer.validator is not None:
        indexer.validator = _compiled_validator()
    index_file = Path(database_dir) / DATABASE_FILE if database_dir else None
    reused = index_file is not None and index_file.is_file()
    try:
        layout = BIDSLayout(
            str(bids_dir),
            validate=validate,
            indexer=indexer,
            database_path=str(database_dir) if database_dir else None,
        )
    except (BIDSValidationError, ValueError) as error:
        raise InputError(bids_dir, f"pybids cannot index the dataset: {error}") from None
    except OSError as error:
        raise _unreadable_folder(error, bids_dir) from None
    if database_dir and Path(layout.root).resolve() != bids_dir.resolve():
        # pybids silently answers from the stored index, whatever BIDS_DIR says
        raise InputError(
            database_dir,
            f"holds the index of another dataset ({quote(str(layout.root))})",
            "give each dataset its own --bids-database-dir, or delete this folder",
        )
    if reused:
        _refuse_stale_index(bids_dir, index_file)
    return layout


#: The file pybids keeps its index in, inside ``--bids-database-dir``.
DATABASE_FILE = "layout_index.sqlite"


@contextlib.contextmanager
def _importing_pybids() -> Iterator[None]:
    """Import pybids, which reads ``~/pybids_config.json`` and ``./pybids_config.json``."""
    try:
        yield
    except PermissionError as error:
        raise InputError(
            Path(error.filename).parent,
            "cannot be read (permission denied); pybids looks for its pybids_config.json "
            "in the home folder and in the current folder",
            "run aslmig from a folder you may read, with a readable HOME (e.g. HOME=$TMPDIR)",
        ) from None


def _unreadable_folder(error: OSError, bids_dir: Path) -> InputError:
    """Name what pybids could not read while walking the dataset (a folder, usually)."""
    name = Path(error.filename) if error.filename else bids_dir
    if name.name == "layout_config.json":  # pybids looks for one in every folder it walks
        name = name.parent
    problem, fix = describe_os_error(error)
    return InputError(relative_name(name, bids_dir), f"cannot be read: {problem}", fix)


def _refuse_stale_index(bids_dir: Path, index_file: Path) -> None:
    """Refuse a saved pybids index older than the last file added, removed or renamed.

    Adding, removing or renaming a file changes its folder's modification time, so the
    folders' times tell whether the index still lists the dataset's files (a stale index
    silently leaves new runs out and names deleted ones). Only folders are examined:
    about 4,000 ``stat`` calls for 1,000 participants.
    """
    built = index_file.stat().st_mtime
    for folder, subfolders, _ in os.walk(bids_dir):
        subfolders[:] = [
            name for name in subfolders if not name.startswith(".") and name != "derivatives"
        ]
        if os.stat(folder).st_mtime > built:
            raise InputError(
                index_file.parent,
                f"the saved pybids index is older than the dataset: files in "
                f"{quote(relative_name(Path(folder), bids_dir) or '.')} were added, removed or "
                "renamed after it was built",
                "delete this folder (aslmig then indexes the dataset again), or run without "
                "--bids-database-dir",
            )


@cache
def _compiled_validator() -> Any:
    """Return bids-validator's file-name check with its regular expressions compiled once.

    ``BIDSValidator.parse`` passes ~130 pattern strings to ``re.match`` for every file, so
    it relies on the ``re`` module's cache. Importing scipy imports ``numpy.f2py``, which
    (until numpy/numpy#31104 was fixed) shrinks that cache to 50 entries: every file then
    recompiles every pattern, about 0.1 s a file (minutes for a 1,000-participant
    dataset). Compiled patterns bypass the cache; the accepted file names are the same.

    Returns
    -------
    BIDSValidator
        Like pybids' own validator, of a subclass whose ``regexes`` are compiled patterns.
    """
    from bids_validator import BIDSValidator

    BIDSValidator._init_regexes()
    patterns = [re.compile(pattern) for pattern in BIDSValidator.regexes]
    compiled = type("CompiledBIDSValidator", (BIDSValidator,), {"regexes": patterns})
    return compiled(index_associated=True)


def collect_runs(
    layout: Any,
    participant_labels: list[str] | None = None,
    session_labels: list[str] | None = None,
    filters: dict[str, dict[str, Any]] | None = None,
    read_voxels: bool = True,
) -> list[AslRun]:
    """Find and validate every ASL run selected by labels and filters.

    Parameters
    ----------
    layout : bids.BIDSLayout
        The indexed input dataset.
    participant_labels, session_labels : list of str, optional
        Restrict to these participants/sessions (labels without prefix).
    filters : dict, optional
        Validated ``--bids-filter-file`` content (query name -> entity filters).
    read_voxels : bool
        Also read the voxel data to refuse NaN/inf or all-zero images.

    Returns
    -------
    list of AslRun
        Runs sorted by participant, session and file name.
    """
    filters = filters or {}
    root = Path(layout.root)
    subjects = _select_subjects(layout, participant_labels)
    asl_query, field_filters = split_metadata_filters(_query(filters, "asl"))
    if session_labels:
        if "session" in asl_query:
            raise InputError(
                "--session-label",
                "the BIDS filter file also selects asl sessions",
                "use one of the two",
            )
        asl_query["session"] = session_labels
    runs: list[AslRun] = []
    for subject in subjects:
        asl_files = layout.get(subject=subject, return_type="object", **asl_query)
        refuse_twins([Path(asl.path) for asl in asl_files], root)
        for asl in sorted(asl_files, key=lambda f: f.path):
            sidecar, sidecar_files = read_sidecar(Path(asl.path), root)
            if metadata_matches(sidecar, field_filters):
                found = (sidecar, sidecar_files)
                runs.append(_build_run(layout, root, asl, found, filters, read_voxels))
    if not runs:
        raise InputError(
            root,
            "no ASL series (perf/*_asl.nii[.gz]) matches the participant, session and filter "
            "selection",
            "check --participant-label, --session-label and --bids-filter-file",
        )
    return runs


def _select_subjects(layout: Any, participant_labels: list[str] | None) -> list[str]:
    if not participant_labels:
        return sorted(layout.get_subjects())
    # get_subjects() reads the entities of every indexed file (seconds for 1,000
    # participants), so only look up the labels asked for.
    missing = [
        label for label in participant_labels if not layout.get(subject=label, return_type="file")
    ]
    if missing:
        available = sorted(layout.get_subjects())
        shown = ", ".join(available[:10]) + (" ..." if len(available) > 10 else "")
        raise InputError(
            "--participant-label",
            f"no participant {quote(missing[0])} in the dataset",
            f"available: {shown or 'none'}",
        )
    return participant_labels


def _build_run(
    layout: Any,
    root: Path,
    asl: Any,
    found_sidecar: tuple[dict[str, Any], list[Path]],
    filters: dict[str, dict[str, Any]],
    read_voxels: bool,
) -> AslRun:
    asl_path = Path(asl.path)
    entities = {
        key: str(value)
        for key, value in asl.get_entities().items()
        if key not in ("suffix", "extension", "datatype")
    }
    aslcontext = _aslcontext_path(asl_path)
    asl_name = relative_name(asl_path, root)
    sidecar, sidecar_files = found_sidecar
    if not os.path.lexists(aslcontext):
        raise InputError(
            asl_name,
            f"has no {aslcontext.name} beside it",
            "add the aslcontext.tsv that lists each volume's type",
        )
    if not sidecar_files:
        raise InputError(asl_name, "has no JSON sidecar", f"add {_sidecar_name(asl_path)}")
    shape = image_shape(asl_path, asl_name)
    volume_types = read_aslcontext(aslcontext, relative_name(aslcontext, root))
    if read_voxels:
        check_voxels(asl_path, asl_name, volume_types)
    m0_file, m0_reason = _find_m0(layout, root, asl_path, entities, filters)
    names = SourceNames(
        sidecar=relative_name(sidecar_files[-1], root),
        aslcontext=relative_name(aslcontext, root),
        image=asl_name,
    )
    metadata = parse_asl_metadata(sidecar, volume_types, shape, names, m0_file is not None)
    m0_metadata = None
    if metadata.m0_type == "Separate" and m0_file is not None:
        m0_metadata = _m0_metadata(root, m0_file, shape, read_voxels)
    else:
        m0_file, m0_reason = None, _m0_description(metadata)
    t1w_file, t1w_reason = _find_t1w(layout, root, entities, filters, read_voxels)
    return AslRun(
        dataset_root=root,
        asl_file=asl_path,
        aslcontext_file=aslcontext,
        entities=entities,
        metadata=metadata,
        sidecar=sidecar,
        sidecar_files=tuple(sidecar_files),
        m0_file=m0_file,
        m0_metadata=m0_metadata,
        m0_reason=m0_reason,
        pepolar_m0_files=_find_pepolar_m0(layout, root, asl_path, m0_file, entities),
        t1w_file=t1w_file,
        t1w_reason=t1w_reason,
    )


def refuse_twins(paths: list, root: Path) -> list:
    """Refuse two files that differ only by extension (``x.nii`` beside ``x.nii.gz``).

    Both would be taken as separate runs of the same name (outputs overwrite each other),
    or one would be chosen silently.

    Parameters
    ----------
    paths : list of str or Path
        Files found by one query.
    root : Path
        The dataset root (for names in messages).

    Returns
    -------
    list
        ``paths``, unchanged.
    """
    seen: dict[str, str] = {}
    for path in map(str, paths):
        stem = path.removesuffix(".gz").removesuffix(".nii")
        if stem in seen:
            first, second = sorted((seen[stem], path))
            raise InputError(
                relative_name(Path(first), root),
                f"and {relative_name(Path(second), root)} both exist: the same image twice",
                "keep one of them (BIDS stores NIfTI as .nii.gz)",
            )
        seen[stem] = path
    return paths


def _aslcontext_path(asl_path: Path) -> Path:
    stem = asl_path.name.split(".", 1)[0]
    return asl_path.with_name(stem[: -len("_asl")] + "_aslcontext.tsv")


def _sidecar_name(data_path: Path) -> str:
    return data_path.name.split(".", 1)[0] + ".json"


def _m0_description(metadata: AslMetadata) -> str:
    if metadata.m0_type == "Included":
        return f"{metadata.volume_counts['m0scan']} m0scan volume(s) inside the ASL series"
    if metadata.m0_type == "Estimate":
        return f"M0Estimate = {metadata.m0_estimate:g} (scalar)"
    return "none (M0Type Absent)"


def _m0_metadata(root: Path, m0_file: Path, asl_shape: tuple[int, ...], read_voxels: bool):
    m0_name = relative_name(m0_file, root)
    m0_sidecar, m0_sidecar_files = read_sidecar(m0_file, root)
    if not m0_sidecar_files:
        raise InputError(m0_name, "has no JSON sidecar", f"add {_sidecar_name(m0_file)}")
    shape = image_shape(m0_file, m0_name)
    if read_voxels:
        check_voxels(m0_file, m0_name)
    return parse_m0_metadata(
        m0_sidecar, shape, asl_shape, relative_name(m0_sidecar_files[-1], root), m0_name
    )


def _intended_for(root: Path, m0_path: Path, subject: str) -> set[Path]:
    """Return the files a sidecar's IntendedFor names (relative to the subject, or BIDS URIs).

    Paths are compared as written, without following symbolic links: in a DataLad or
    git-annex dataset, files with the same content are links to one annex object.
    """
    sidecar, files = read_sidecar(m0_path, root)
    value = sidecar.get("IntendedFor", [])
    targets = value if isinstance(value, list) else [value]
    named: set[Path] = set()
    for target in targets:
        if not isinstance(target, str):
            continue
        if not _is_path_text(target):
            raise InputError(
                relative_name(files[-1], root),
                f"IntendedFor has {quote(target)}, which cannot be a file name",
                "list paths relative to the participant folder, or bids:: URIs",
            )
        if target.startswith("bids::"):
            named.add(_normalised(root / target[len("bids::") :]))
        else:
            named.add(_normalised(root / f"sub-{subject}" / target))
    return named


def _is_path_text(text: str) -> bool:
    """Tell whether a string can name a file: no NUL or control characters, valid UTF-8."""
    if any(ord(character) < 32 for character in text):
        return False
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate, from a JSON "\ud800" escape
        return False
    return True


def _normalised(path: Path) -> Path:
    """Return the absolute path without ``..`` and ``.``, symbolic links not followed."""
    return Path(os.path.normpath(os.path.abspath(path)))


def _find_m0(
    layout: Any,
    root: Path,
    asl_path: Path,
    entities: dict[str, str],
    filters: dict[str, dict[str, Any]],
) -> tuple[Path | None, str]:
    """Match the separate M0 scan: IntendedFor naming the run first, then entities."""
    query = _query(filters, "m0scan")
    query.update(datatype="perf", subject=entities["subject"])
    candidates = refuse_twins(
        [Path(path) for path in layout.get(return_type="file", **query)], root
    )
    naming_run = [
        path
        for path in candidates
        if _normalised(asl_path) in _intended_for(root, path, entities["subject"])
    ]
    if len(naming_run) == 1:
        return naming_run[0], "its IntendedFor names this run"
    same_entities = [path for path in candidates if _same_acquisition(layout, path, entities)]
    pool = naming_run or same_entities
    if len(pool) > 1:
        names = ", ".join(relative_name(path, root) for path in pool)
        raise InputError(
            relative_name(asl_path, root),
            f"several M0 scans could belong to this run ({names})",
            "name the run in exactly one M0 scan's IntendedFor",
        )
    if pool:
        return pool[0], "same entities as the run in perf/"
    return None, ""


def _same_acquisition(layout: Any, path: Path, entities: dict[str, str]) -> bool:
    other = layout.get_file(str(path)).get_entities()
    return all(str(other.get(key)) == str(entities.get(key)) for key in _MATCHING_ENTITIES)


def _find_pepolar_m0(
    layout: Any,
    root: Path,
    asl_path: Path,
    m0_file: Path | None,
    entities: dict[str, str],
) -> tuple[Path, ...]:
    query = {"subject": entities["subject"], "datatype": "fmap", "suffix": "m0scan"}
    if "session" in entities:
        query["session"] = entities["session"]
    targets = {_normalised(asl_path)} | ({_normalised(m0_file)} if m0_file else set())
    found = []
    for path in layout.get(return_type="file", extension=NIFTI_EXTENSIONS, **query):
        if _intended_for(root, Path(path), entities["subject"]) & targets:
            found.append(Path(path))
    return tuple(sorted(found))


def _session_of(layout: Any, path: str) -> str | None:
    session = layout.get_file(path).get_entities().get("session")
    return None if session is None else str(session)


def _find_t1w(
    layout: Any,
    root: Path,
    entities: dict[str, str],
    filters: dict[str, dict[str, Any]],
    read_voxels: bool,
) -> tuple[Path | None, str]:
    """Choose the T1w: same session first, else the first of another session."""
    query = _query(filters, "t1w")
    query["subject"] = entities["subject"]
    session = entities.get("session")
    found = sorted(map(str, refuse_twins(layout.get(return_type="file", **query), root)))
    same = [path for path in found if _session_of(layout, path) == session]
    chosen, reason = None, "no T1w found: ASL registers directly to the template"
    if same:
        chosen, reason = Path(same[0]), "same session" if session else "the participant's T1w"
    elif found:
        chosen = Path(found[0])
        reason = f"from session {_session_of(layout, found[0])}; none in session {session}"
    if len(same or found) > 1:
        reason += f" (first of {len(same or found)})"
    if chosen is not None:
        name = relative_name(chosen, root)
        shape = image_shape(chosen, name)
        if len(shape) != 3:
            raise InputError(
                name,
                f"the T1w image is {len(shape)}-D {shape}; the anatomical steps need one 3-D image",
                "keep a single 3-D T1w (e.g. the first volume) or leave it out with "
                '--bids-filter-file {"t1w": ...}',
            )
        if read_voxels:
            check_voxels(chosen, name)
    return chosen, reason
