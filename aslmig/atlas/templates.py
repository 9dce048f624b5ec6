"""Template files for the participant workflow: TemplateFlow when cached, else the bundle.

aslmig prefers TemplateFlow's ``MNI152NLin2009cAsym``.  When the user's TemplateFlow home does
not already hold every file needed (non-empty), it falls back to the ``MNI152NLin2009aSym``
bundle shipped in ``aslmig/data/templateflow/`` (2 mm, made by
``tools/build_template_bundle.py``).  Resolving never downloads: files are checked on disk
*before* templateflow is imported or asked, and templateflow is only queried with ``ls`` (which
never fetches).  Downloading is explicit, through :func:`fetch_templates`
(``aslmig templates fetch``).

Importing templateflow initialises its home: when the home is missing or empty it unpacks a
skeleton of empty placeholder files there (offline, from the wheel; or, with DataLad enabled,
clones over the network).  This module therefore imports templateflow only with
``TEMPLATEFLOW_HOME`` pointing at a home that is either complete (resolving) or meant to be
populated (fetching).
"""

from __future__ import annotations

import gzip
import logging
import os
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path

from aslmig.errors import InputError, quote

LOGGER = logging.getLogger(__name__)

TEMPLATEFLOW = "templateflow"
BUNDLED = "bundled"
DEFAULT_SPACE = "MNI152NLin2009cAsym"
BUNDLED_SPACE = "MNI152NLin2009aSym"
GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20

# TemplateFlow resolution index per voxel size (mm), for the spaces aslmig knows.
TEMPLATEFLOW_RESOLUTIONS = {DEFAULT_SPACE: {1: "01", 2: "02"}}
BUNDLED_RESOLUTIONS = {2: "02"}

# Role -> (TemplateFlow entities before the suffix, suffix); the T1w of the bundle is
# skull-stripped (nilearn distributes it so), hence its ``desc-brain``.
ROLES = {
    "t1w": ("", "T1w"),
    "brain_mask": ("desc-brain", "mask"),
    "gm": ("label-GM", "probseg"),
    "wm": ("label-WM", "probseg"),
    "csf": ("label-CSF", "probseg"),
}
BUNDLED_T1W = ("desc-brain", "T1w")

ICBM_CITATION = (
    "Fonov VS, Evans AC, Botteron K, Almli CR, McKinstry RC, Collins DL. Unbiased average "
    "age-appropriate atlases for pediatric studies. NeuroImage 2011;54(1):313-327. "
    "doi:10.1016/j.neuroimage.2010.07.033; Fonov VS, Evans AC, McKinstry RC, Almli CR, "
    "Collins DL. Unbiased nonlinear average age-appropriate brain templates from birth to "
    "adulthood. NeuroImage 2009;47(Suppl 1):S102. doi:10.1016/S1053-8119(09)70884-5"
)
TEMPLATEFLOW_CITATION = (
    "Ciric R, Thompson WH, Lorenz R, et al. TemplateFlow: FAIR-sharing of multi-scale, "
    "multi-species brain models. Nat Methods 2022;19:1568-1571. "
    "doi:10.1038/s41592-022-01681-2"
)
ICBM_LICENCE = (
    "ICBM 2009 permission notice: Copyright (C) 1993-2004 Louis Collins, McConnell Brain "
    "Imaging Centre, Montreal Neurological Institute, McGill University; use, copy, modify and "
    "distribute permitted provided the copyright notice appears in all copies (full text: "
    "{notice})"
)
BUNDLE_NOTE = (
    "; 2 mm bundle derived by aslmig from nilearn's ICBM 2009a symmetric files "
    "(brain mask and CSF map derived from GM+WM, see template_description.json)"
)


class TemplateFetchError(RuntimeError):
    """Template files could not be downloaded (typically: no network)."""


@dataclass(frozen=True)
class TemplateFiles:
    """The template images the participant workflow uses, and where they come from.

    Parameters
    ----------
    space : str
        TemplateFlow identifier of the template space (use it in output names).
    resolution_mm : int
        Isotropic voxel size in mm.
    t1w : Path
        T1-weighted template (skull-stripped for the bundle: apply ``brain_mask`` to either).
    brain_mask : Path
        Binary brain mask.
    gm, wm, csf : Path
        Tissue probability maps.
    origin : str
        ``'templateflow'`` (the user's TemplateFlow home) or ``'bundled'`` (shipped with aslmig).
    citation : str
        References to cite for the template.
    licence : str
        Licence terms of the template files.
    """

    space: str
    resolution_mm: int
    t1w: Path
    brain_mask: Path
    gm: Path
    wm: Path
    csf: Path
    origin: str
    citation: str
    licence: str

    def to_dict(self) -> dict[str, str | int]:
        """Return a JSON-ready dictionary (paths as strings) for provenance sidecars."""
        return {
            key: str(value) if isinstance(value, Path) else value
            for key, value in asdict(self).items()
        }


def templateflow_home() -> Path:
    """Return the TemplateFlow home templateflow would use, without importing templateflow.

    ``TEMPLATEFLOW_HOME`` when set, else templateflow's default: the user cache folder
    (``platformdirs.user_cache_dir('templateflow')``, ``~/.cache/templateflow`` on Linux).

    Returns
    -------
    Path
        Absolute path of the home (it may not exist).
    """
    configured = os.environ.get("TEMPLATEFLOW_HOME")
    if configured:
        return Path(configured).absolute()
    try:
        from platformdirs import user_cache_dir  # templateflow's own dependency
    except ImportError:  # pragma: no cover - templateflow always brings platformdirs
        return Path.home() / ".cache" / "templateflow"
    return Path(user_cache_dir("templateflow")).absolute()


def bundle_root() -> Path:
    """Return the root of the template bundle shipped with aslmig."""
    return Path(str(resources.files("aslmig") / "data" / "templateflow"))


def file_name(space: str, res: str, entities: str, suffix: str) -> str:
    """Return a TemplateFlow file name, e.g. ``tpl-X_res-02_label-GM_probseg.nii.gz``.

    Parameters
    ----------
    space : str
        Template identifier.
    res : str
        Resolution index (``'02'``).
    entities : str
        Entities between the resolution and the suffix (may be empty).
    suffix : str
        BIDS suffix.

    Returns
    -------
    str
        The file name.
    """
    middle = f"_{entities}" if entities else ""
    return f"tpl-{space}_res-{res}{middle}_{suffix}.nii.gz"


def expected_paths(home: Path, space: str, res: str) -> dict[str, Path]:
    """Return the TemplateFlow paths of every role for one space and resolution."""
    folder = home / f"tpl-{space}"
    return {role: folder / file_name(space, res, *parts) for role, parts in ROLES.items()}


def file_problem(path: Path) -> str | None:
    """Say why a template file is unusable without downloading (``None`` if usable).

    Parameters
    ----------
    path : Path
        Candidate file.

    Returns
    -------
    str or None
        ``'missing'``, ``'empty'`` (a TemplateFlow placeholder), ``'not gzip'`` (e.g. a saved
        download error), ``'truncated'`` (an interrupted download) or ``None``.
    """
    if not path.is_file():
        return "missing"
    if path.stat().st_size == 0:
        return "empty"
    with path.open("rb") as stream:
        if stream.read(2) != GZIP_MAGIC:
            return "not gzip"
    return None if gzip_complete(path) else "truncated"


def gzip_complete(path: Path) -> bool:
    """Return True when the gzip stream of ``path`` decompresses to its end without error."""
    try:
        with gzip.open(path, "rb") as stream:
            while stream.read(_CHUNK):
                pass
    except (OSError, EOFError, zlib.error):
        return False
    return True


def unusable(paths: dict[str, Path]) -> dict[str, str]:
    """Return ``{file name: problem}`` for the files among ``paths`` that cannot be used."""
    problems = {path.name: file_problem(path) for path in paths.values()}
    return {name: problem for name, problem in problems.items() if problem}


@contextmanager
def templateflow_env(home: Path) -> Iterator[None]:
    """Point ``TEMPLATEFLOW_HOME`` at ``home`` meanwhile (templateflow reads it on import)."""
    saved = os.environ.get("TEMPLATEFLOW_HOME")
    os.environ["TEMPLATEFLOW_HOME"] = str(home)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TEMPLATEFLOW_HOME", None)
        else:
            os.environ["TEMPLATEFLOW_HOME"] = saved


def templateflow_client(home: Path):
    """Return a ``templateflow`` client bound to ``home`` (importing templateflow for it).

    Parameters
    ----------
    home : Path
        TemplateFlow home; it must already be complete, or be meant to be populated.

    Returns
    -------
    templateflow.client.TemplateFlowClient
        A client whose cache root is ``home`` (independent of the import-time home).
    """
    with templateflow_env(home):
        from templateflow.client import TemplateFlowClient
    return TemplateFlowClient(root=home)


def query(role: str, space: str, resolution_mm: int) -> dict[str, object]:
    """Return the templateflow query (``ls``/``get`` keywords) for one role."""
    entities, suffix = ROLES[role]
    keywords: dict[str, object] = {
        "template": space,
        "resolution": resolution_mm,
        "suffix": suffix,
        "extension": ".nii.gz",
        "desc": None,
        "atlas": None,
        "cohort": None,
    }
    for entity in filter(None, entities.split("_")):
        key, value = entity.split("-", 1)
        keywords[key] = value
    return keywords


def confirm_with_templateflow(
    home: Path, space: str, resolution_mm: int, paths: dict[str, Path]
) -> bool:
    """Check that templateflow's own query (``ls``, never a download) finds ``paths``.

    Parameters
    ----------
    home : Path
        A TemplateFlow home holding all ``paths`` (non-empty).
    space : str
        Template identifier.
    resolution_mm : int
        Voxel size in mm (TemplateFlow resolution index for the known spaces).
    paths : dict
        Role -> expected path.

    Returns
    -------
    bool
        True when each query lists exactly the expected file.
    """
    client = templateflow_client(home)
    for role, path in paths.items():
        found = client.ls(**query(role, space, resolution_mm))
        if [Path(item).resolve() for item in found] != [path.resolve()]:
            LOGGER.info("TemplateFlow lists %s for %s, expected %s", found, role, path)
            return False
    return True


def licence_text(notice: Path) -> str:
    """Return the one-line licence statement pointing at the full notice file."""
    return ICBM_LICENCE.format(notice=notice)


def from_templateflow(home: Path, space: str, resolution_mm: int) -> TemplateFiles | None:
    """Return the user's TemplateFlow files when all are present, else ``None`` (logged).

    Parameters
    ----------
    home : Path
        TemplateFlow home.
    space : str
        Template identifier (a key of ``TEMPLATEFLOW_RESOLUTIONS``).
    resolution_mm : int
        Voxel size in mm.

    Returns
    -------
    TemplateFiles or None
        The files, or ``None`` when any is missing, empty or not confirmed by templateflow.
    """
    res = TEMPLATEFLOW_RESOLUTIONS[space].get(resolution_mm)
    if res is None:
        LOGGER.info("TemplateFlow %s has no %d mm resolution known to aslmig", space, resolution_mm)
        return None
    paths = expected_paths(home, space, res)
    problems = unusable(paths)
    if problems:
        listed = ", ".join(f"{name} ({problem})" for name, problem in sorted(problems.items()))
        LOGGER.info("TemplateFlow home %s lacks usable %s files: %s", home, space, listed)
        return None
    if not confirm_with_templateflow(home, space, resolution_mm, paths):
        return None
    return TemplateFiles(
        space=space,
        resolution_mm=resolution_mm,
        origin=TEMPLATEFLOW,
        citation=f"{ICBM_CITATION}; {TEMPLATEFLOW_CITATION}",
        licence=licence_text(home / f"tpl-{space}" / "LICENSE"),
        **paths,
    )


def from_bundle(resolution_mm: int, context: str = "") -> TemplateFiles:
    """Return the bundled ``MNI152NLin2009aSym`` files at ``resolution_mm``.

    Parameters
    ----------
    resolution_mm : int
        Voxel size in mm (the bundle has 2 mm only).
    context : str, optional
        Why the bundle is being used, added to the error message.

    Returns
    -------
    TemplateFiles
        The bundled files.

    Raises
    ------
    InputError
        When the resolution is not bundled, or the bundle is damaged.
    """
    res = BUNDLED_RESOLUTIONS.get(resolution_mm)
    root = bundle_root()
    if res is None:
        raise InputError(
            "template resolution",
            f"{resolution_mm} mm is not bundled (aslmig bundles {BUNDLED_SPACE} at 2 mm only)"
            + (f" and {context}" if context else ""),
            f"run 'aslmig templates fetch --resolution {resolution_mm}' on a connected machine, "
            "or use 2 mm",
        )
    paths = expected_paths(root, BUNDLED_SPACE, res)
    paths["t1w"] = paths["t1w"].with_name(file_name(BUNDLED_SPACE, res, *BUNDLED_T1W))
    problems = unusable(paths)
    if problems:
        raise InputError(
            root,
            f"bundled template files are unusable: {sorted(problems.items())}",
            "reinstall aslmig",
        )
    return TemplateFiles(
        space=BUNDLED_SPACE,
        resolution_mm=resolution_mm,
        origin=BUNDLED,
        citation=ICBM_CITATION,
        licence=licence_text(root / "NOTICE") + BUNDLE_NOTE,
        **paths,
    )


def check_space(preferred: str) -> None:
    """Raise :class:`InputError` unless ``preferred`` is a space aslmig can resolve."""
    known = sorted({*TEMPLATEFLOW_RESOLUTIONS, BUNDLED_SPACE})
    if preferred not in known:
        raise InputError(
            "template space",
            f"{quote(preferred)} is not supported",
            f"choose one of {', '.join(known)}",
        )


def resolve_template(
    resolution_mm: int = 2, preferred: str = DEFAULT_SPACE, home: Path | None = None
) -> TemplateFiles:
    """Find the template files to use, never downloading.

    The user's TemplateFlow files of ``preferred`` are used when every needed file (T1w, brain
    mask, GM/WM/CSF probabilities) is present and non-empty in the TemplateFlow home;
    otherwise the bundled ``MNI152NLin2009aSym`` files are used (logged at INFO).

    Parameters
    ----------
    resolution_mm : int, optional
        Isotropic voxel size in mm (default 2).
    preferred : str, optional
        Preferred TemplateFlow space (default ``'MNI152NLin2009cAsym'``).  Asking for
        ``'MNI152NLin2009aSym'`` selects the bundle directly.
    home : Path, optional
        TemplateFlow home (default: ``TEMPLATEFLOW_HOME`` or templateflow's default home).

    Returns
    -------
    TemplateFiles
        The files, their space (use ``.space`` in output names) and their origin.

    Raises
    ------
    InputError
        For an unknown space, or a resolution available neither in TemplateFlow nor bundled.
    """
    check_space(preferred)
    if preferred not in TEMPLATEFLOW_RESOLUTIONS:
        return from_bundle(resolution_mm)
    home = Path(home).absolute() if home is not None else templateflow_home()
    found = from_templateflow(home, preferred, resolution_mm)
    if found is not None:
        return found
    reason = f"the TemplateFlow home {home} has no usable {preferred} files at that resolution"
    bundled = from_bundle(resolution_mm, reason)
    LOGGER.info(
        "Using aslmig's bundled %s templates (%d mm): %s; 'aslmig templates fetch' caches them",
        BUNDLED_SPACE,
        resolution_mm,
        reason,
    )
    return bundled


def fetch_templates(home: Path | None = None, resolution_mm: int = 2) -> list[Path]:
    """Download the TemplateFlow files :func:`resolve_template` needs (needs the network).

    Fetches ``MNI152NLin2009cAsym`` T1w, brain mask and GM/WM/CSF probabilities at
    ``resolution_mm`` into ``home`` (creating it, with templateflow's skeleton, if needed).

    Parameters
    ----------
    home : Path, optional
        TemplateFlow home (default: ``TEMPLATEFLOW_HOME`` or templateflow's default home).
    resolution_mm : int, optional
        Voxel size in mm (1 or 2; default 2).

    Returns
    -------
    list of Path
        The fetched files, all non-empty.

    Raises
    ------
    InputError
        For a resolution aslmig does not know for the space.
    TemplateFetchError
        When a file cannot be downloaded (no network, server error).
    """
    space = DEFAULT_SPACE
    res = TEMPLATEFLOW_RESOLUTIONS[space].get(resolution_mm)
    if res is None:
        known = sorted(TEMPLATEFLOW_RESOLUTIONS[space])
        raise InputError(
            "--resolution", f"{resolution_mm} mm is not available", f"choose one of {known}"
        )
    home = Path(home).absolute() if home is not None else templateflow_home()
    client = templateflow_client(home)
    fetched = []
    for role in ROLES:
        fetched.append(download(client, home, role, space, resolution_mm))
    return fetched


def download(client, home: Path, role: str, space: str, resolution_mm: int) -> Path:
    """Fetch one file with templateflow's ``get``; turn failures into :class:`TemplateFetchError`.

    Parameters
    ----------
    client : templateflow.client.TemplateFlowClient
        Client bound to ``home``.
    home : Path
        TemplateFlow home.
    role : str
        A key of ``ROLES``.
    space : str
        Template identifier.
    resolution_mm : int
        Voxel size in mm.

    Returns
    -------
    Path
        The downloaded, non-empty file.
    """
    keywords = query(role, space, resolution_mm)
    hint = (
        "connect this machine to the internet (or run 'aslmig templates fetch' elsewhere and "
        f"copy the folder to {home}); without these files aslmig uses its bundled "
        f"{BUNDLED_SPACE} templates"
    )
    try:
        result = client.get(**keywords)
    except (OSError, RuntimeError) as error:  # requests' errors are OSErrors
        reason = f"{type(error).__name__}: {error}".splitlines()[0]
        raise TemplateFetchError(
            f"could not download TemplateFlow {space} {role} ({resolution_mm} mm) into "
            f"{home}: {reason}; {hint}"
        ) from error
    paths = result if isinstance(result, list) else [result]
    if len(paths) != 1 or file_problem(Path(paths[0])):
        raise TemplateFetchError(
            f"TemplateFlow returned {paths} for {space} {role} ({resolution_mm} mm) in "
            f"{home}; expected one non-empty file; {hint}"
        )
    return Path(paths[0])
