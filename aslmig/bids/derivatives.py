"""Output names, sidecars and ``dataset_description.json`` of the derivatives dataset.

Every output path is built here from entities (DESIGN.md §5); no other module assembles
file names by hand. Writes are atomic (temporary file + rename) so that an interrupted
run never leaves a truncated output.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from aslmig.__about__ import __version__
from aslmig.bids.entities import is_label
from aslmig.errors import InputError

# BIDS entity order (derivatives), with the non-standard ``atlas`` after ``space``.
ENTITY_ORDER = (
    ("subject", "sub"),
    ("session", "ses"),
    ("task", "task"),
    ("acquisition", "acq"),
    ("ceagent", "ce"),
    ("reconstruction", "rec"),
    ("direction", "dir"),
    ("run", "run"),
    ("echo", "echo"),
    ("space", "space"),
    ("atlas", "atlas"),
    ("cohort", "cohort"),
    ("resolution", "res"),
    ("label", "label"),
    ("from", "from"),
    ("to", "to"),
    ("mode", "mode"),
    ("description", "desc"),
)
_KNOWN_ENTITIES = {name for name, _ in ENTITY_ORDER}
NON_STANDARD_SUFFIXES = ("cbf", "att", "abv")
#: Folder of OUTPUT_DIR with the atlases built for the run's template.
ATLAS_DIR = "atlases"
#: Folder of OUTPUT_DIR with the group-level results, one folder per ``--group-label``.
GROUP_DIR = "group"
#: Folder of OUTPUT_DIR with the resolved configurations and the crash files.
LOGS_DIR = "logs"
#: Folders of OUTPUT_DIR that are not BIDS: built atlases and group-level results.
NON_BIDS_FOLDERS = (f"{ATLAS_DIR}/", f"{GROUP_DIR}/")
#: File name of the group report in its group folder.
GROUP_REPORT_NAME = "report.html"
#: Columns of ``group/<label>/roi_statistics.tsv``, in order: one row per model x test x
#: contrast x measure x ROI (:mod:`aslmig.group.models`), read by the group report.
ROI_STATISTICS_COLUMNS = (
    "model",
    "test",
    "contrast",
    "measure",
    "roi",
    "family",
    "formula",
    "group_a",
    "group_b",
    "n_a",
    "n_b",
    "n_obs",
    "mean_a",
    "sd_a",
    "mean_b",
    "sd_b",
    "estimate",
    "se",
    "ci_low",
    "ci_high",
    "hedges_g",
    "g_ci_low",
    "g_ci_high",
    "statistic_name",
    "statistic",
    "df_num",
    "df",
    "p",
    "q",
    "note",
)
#: Columns of the group level's label table, one row per subject x session
#: (:mod:`aslmig.group.labels`): the first columns of ``roi_values.tsv``.
UNIT_LABEL_COLUMNS = (
    "subject",
    "session",
    "group",
    "phase",
    "phase_source",
    "age",
    "sex",
    "site",
    "aura_side",
    "hours_since_onset",
    "hours_to_next_onset",
)
#: Columns of ``group/<label>/roi_values.tsv``, in order: the long table that was modelled,
#: one row per subject x session x ROI x measure (:mod:`aslmig.group.run`).
ROI_VALUES_COLUMNS = (
    *UNIT_LABEL_COLUMNS,
    "roi",
    "hemisphere",
    "measure",
    "orientation",
    "value",
    "n_runs",
)
PIPELINE_NAME = "aslmig"


def _clean_value(name: str, value: Any) -> str:
    text = str(value)
    if not is_label(text):
        raise ValueError(f"entity {name} has the value {text!r}; BIDS labels are alphanumeric")
    return text


def output_path(
    entities: dict[str, Any], suffix: str, extension: str = ".nii.gz", datatype: str = "perf"
) -> Path:
    """Build a derivatives path relative to OUTPUT_DIR.

    Parameters
    ----------
    entities : dict
        Entity name (pybids long names, e.g. ``acquisition``) -> value. ``subject`` is
        required; ``space``, ``atlas`` and ``description`` add derivative entities.
    suffix : str
        File suffix, e.g. ``cbf``, ``att``, ``mask``, ``timeseries``.
    extension : str
        File extension including the dot.
    datatype : str
        Datatype folder (``perf``, ``anat``, ``figures``).

    Returns
    -------
    Path
        For example ``sub-01/ses-1/perf/sub-01_ses-1_space-MNI152NLin2009cAsym_cbf.nii.gz``.
    """
    unknown = set(entities) - _KNOWN_ENTITIES
    if unknown:
        raise ValueError(f"unknown entities {sorted(unknown)} for an output name")
    if "subject" not in entities:
        raise ValueError("an output name needs the subject entity")
    parts = [
        f"{short}-{_clean_value(name, entities[name])}"
        for name, short in ENTITY_ORDER
        if entities.get(name) not in (None, "")
    ]
    filename = "_".join([*parts, suffix]) + extension
    folder = Path(f"sub-{entities['subject']}")
    if entities.get("session"):
        folder /= f"ses-{entities['session']}"
    return folder / datatype / filename


def unit_name(subject: str, session: str | None = None) -> str:
    """Return the name of a subject's session in tables and file names: ``sub-X[_ses-Y]``.

    Parameters
    ----------
    subject : str
        Subject label, without ``sub-``.
    session : str, optional
        Session label, without ``ses-``; ``None``, ``""`` or ``"n/a"`` for data without
        sessions.
    """
    name = f"sub-{subject}"
    return name if session in (None, "", "n/a") else f"{name}_ses-{session}"


def participant_report_path(output_dir: Path | str, subject: str) -> Path:
    """Return ``OUTPUT_DIR/sub-X.html``, the participant report."""
    return Path(output_dir) / f"{unit_name(subject)}.html"


def group_level_dir(output_dir: Path | str, label: str) -> Path:
    """Return ``OUTPUT_DIR/group/<label>``, the folder of one group-level analysis."""
    return Path(output_dir) / GROUP_DIR / label


def crash_dir(output_dir: Path | str) -> Path:
    """Return ``OUTPUT_DIR/logs/crash``, where nipype writes its crash files."""
    return Path(output_dir) / LOGS_DIR / "crash"


def config_log_path(
    output_dir: Path | str, analysis_level: str, participant_labels: Sequence[str] = ()
) -> Path:
    """Return where the resolved configuration of an invocation is saved (one per label set).

    ``OUTPUT_DIR/logs/config_<level>_<sub-A_sub-B | all>.toml``; a long label list is replaced
    by ``many-<sha1 prefix>``.
    """
    labels = "_".join(unit_name(label) for label in participant_labels) or "all"
    if len(labels) > 80:
        labels = "many-" + hashlib.sha1(labels.encode()).hexdigest()[:10]
    return Path(output_dir) / LOGS_DIR / f"config_{analysis_level}_{labels}.toml"


def sidecar_path(image_path: Path) -> Path:
    """Return the JSON sidecar path of an output file (``x.nii.gz`` -> ``x.json``)."""
    return image_path.with_name(image_path.name.split(".", 1)[0] + ".json")


def atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write a file through a temporary neighbour and an atomic rename.

    Parameters
    ----------
    path : Path
        Final destination.
    write : callable
        Called with the temporary path; must write the complete file there.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    suffix = "".join(path.suffixes)
    handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix, dir=path.parent)
    os.close(handle)
    try:
        write(Path(temporary))
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)
        raise


def write_json(path: Path, content: dict[str, Any]) -> None:
    """Write a JSON file atomically, sorted and indented, refusing NaN."""
    text = json.dumps(content, indent=2, sort_keys=True, allow_nan=False, default=_jsonable) + "\n"
    atomic_write(path, lambda temporary: temporary.write_text(text, encoding="utf-8"))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, Path | os.PathLike):
        return str(value)
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    raise TypeError(f"cannot write {type(value).__name__} to JSON")


def write_sidecar(
    image_path: Path,
    sources: list[str],
    constants: dict[str, Any] | None = None,
    **fields: Any,
) -> Path:
    """Write the provenance sidecar of an output.

    Parameters
    ----------
    image_path : Path
        The output file the sidecar describes.
    sources : list of str
        BIDS URIs or dataset-relative paths of the inputs (``Sources`` field).
    constants : dict, optional
        Every physical constant used, with its value and origin.
    **fields
        Further BIDS fields (``Units``, ``SkullStripped``, ...).

    Returns
    -------
    Path
        The sidecar path.
    """
    content: dict[str, Any] = {"Sources": list(sources), **fields}
    if constants is not None:
        content["Constants"] = constants
    content["GeneratedBy"] = [{"Name": PIPELINE_NAME, "Version": __version__}]
    path = sidecar_path(Path(image_path))
    write_json(path, content)
    return path


def dataset_description(
    source_dataset: Path, anat_dataset: str | Path | None = None
) -> dict[str, Any]:
    """Describe the derivatives dataset (BIDS ``DatasetType`` derivative).

    Parameters
    ----------
    source_dataset : Path
        The raw dataset the derivatives come from.
    anat_dataset : str or Path, optional
        The ``--derivatives anat=`` dataset (linked as ``anat``: the ``bids:anat:`` URIs of
        the anatomical sidecars' ``Sources``).

    Returns
    -------
    dict
        Content of ``dataset_description.json``.
    """
    generated_by: dict[str, Any] = {
        "Name": PIPELINE_NAME,
        "Version": __version__,
        "CodeURL": "https://pypi.org/project/aslmig/",
    }
    container = _container_info()
    if container:
        generated_by["Container"] = container
    links = {"raw": Path(source_dataset).resolve().as_uri()}
    if anat_dataset is not None:
        links["anat"] = Path(anat_dataset).resolve().as_uri()
    return {
        "Name": "aslmig outputs",
        "BIDSVersion": "1.10.0",
        "DatasetType": "derivative",
        "GeneratedBy": [generated_by],
        "SourceDatasets": [{"URL": uri} for uri in links.values()],
        "DatasetLinks": links,
    }


def _container_info() -> dict[str, str]:
    """Describe the container we run in, from variables our image and Apptainer set.

    Apptainer/Singularity keeps the image's ``ASLMIG_CONTAINER_TAG`` and adds
    ``APPTAINER_CONTAINER`` (the ``.sif`` path), so it is checked first.
    """
    tag = os.environ.get("ASLMIG_CONTAINER_TAG")
    image = os.environ.get("APPTAINER_CONTAINER") or os.environ.get("SINGULARITY_CONTAINER")
    if image:
        return {"Type": "apptainer", "URI": Path(image).name, **({"Tag": tag} if tag else {})}
    if tag:
        return {"Type": "docker", "Tag": tag}
    return {}


@contextlib.contextmanager
def locked(output_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the derivatives dataset (for concurrent array jobs)."""
    output_dir.mkdir(parents=True, exist_ok=True)
    with open(output_dir / ".aslmig.lock", "a") as lock_file:
        fcntl.flock(lock_file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock_file, fcntl.LOCK_UN)


def init_derivatives(
    output_dir: Path, source_dataset: Path, anat_dataset: str | Path | None = None
) -> None:
    """Create the derivatives dataset root once, safely under concurrent jobs.

    Writes ``dataset_description.json`` and ``.bidsignore`` (for the non-standard
    ``cbf``/``att`` suffixes) unless an aslmig dataset is already there. Refuses to
    write into a folder that holds a different dataset.

    Parameters
    ----------
    output_dir : Path
        OUTPUT_DIR.
    source_dataset : Path
        BIDS_DIR.
    anat_dataset : str or Path, optional
        The ``--derivatives anat=`` dataset (see :func:`dataset_description`).
    """
    output_dir = Path(output_dir)
    if output_dir.resolve() == Path(source_dataset).resolve():
        raise InputError(output_dir, "OUTPUT_DIR is the input dataset", "choose another folder")
    with locked(output_dir):
        description = output_dir / "dataset_description.json"
        if description.exists():
            try:
                existing = json.loads(description.read_text(encoding="utf-8"))
                names = [item.get("Name") for item in existing.get("GeneratedBy", [])]
            except (ValueError, AttributeError):
                names = []
            if PIPELINE_NAME not in names:
                raise InputError(
                    description,
                    "OUTPUT_DIR already holds a dataset not made by aslmig",
                    "choose an empty or aslmig output folder",
                )
        else:
            write_json(description, dataset_description(source_dataset, anat_dataset))
        ignore = output_dir / ".bidsignore"
        if not ignore.exists():
            patterns = "".join(f"*_{suffix}.*\n" for suffix in NON_STANDARD_SUFFIXES)
            patterns += "".join(f"{folder}\n" for folder in NON_BIDS_FOLDERS)
            atomic_write(ignore, lambda temporary: temporary.write_text(patterns))
