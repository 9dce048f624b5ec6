"""MkDocs hooks: the CLI reference and the workflow graphs, generated from the code.

- ``docs/cli.md`` holds the marker line ``<!-- aslmig-cli-help -->``. At build time it is
  replaced by ``build_parser().format_help()`` in a fenced code block, so the reference is
  generated from the parser itself and cannot drift from it.
- ``docs/workflow.md`` holds the marker line ``<!-- aslmig-workflow-graphs -->``. At build
  time the participant graph of the bundled example dataset is built (not run), every
  ``init_*_wf`` workflow in it is drawn by nipype's ``write_graph`` with Graphviz ``dot``
  (one SVG per workflow, added to the site as ``graphs/<factory>.svg``), and the marker is
  replaced by one section per workflow: its docstring summary and the graph.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import logging
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

MARKER = "<!-- aslmig-cli-help -->"
CLI_PAGE = "cli.md"
GRAPHS_MARKER = "<!-- aslmig-workflow-graphs -->"
GRAPHS_PAGE = "workflow.md"
GRAPHS_DIR = "graphs"
_SUBJECT = "single_subject_mwa01_wf"
#: Workflow factory -> where one of its workflows sits in the graph of the example dataset
#: (participant ``mwa01``: two sessions sharing one T1w; single-delay PCASL, separate M0).
WORKFLOW_GRAPHS = {
    "init_aslmig_wf": "",
    "init_single_subject_wf": _SUBJECT,
    "init_anat_wf": f"{_SUBJECT}.anat_0_wf",
    "init_anat_outputs_wf": f"{_SUBJECT}.anat_0_outputs_wf",
    "init_asl_wf": f"{_SUBJECT}.asl_ses1_wf",
    "init_asl_registration_wf": f"{_SUBJECT}.asl_ses1_wf.registration_wf",
    "init_template_chain_wf": f"{_SUBJECT}.asl_ses1_wf.template_wf",
    "init_regions_wf": f"{_SUBJECT}.asl_ses1_wf.regions_wf",
    "init_asl_outputs_wf": f"{_SUBJECT}.asl_ses1_wf.outputs_wf",
}
#: Workflow factory -> where it sits in the example graph built with ``--derivatives anat=``
#: (on placeholder fMRIPrep-like files written at build time).
DERIVATIVES_GRAPHS = {"init_anat_derivatives_wf": f"{_SUBJECT}.anat_0_wf"}
HELP_COLUMNS = 80
_PROJECT_ROOT = Path(__file__).resolve().parent.parent
_ANSI_ESCAPE = re.compile(r"\x1b\[[0-9;]*m")


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """Set environment variables for the duration of a block, then restore them."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def cli_help() -> str:
    """Return the ``aslmig --help`` text, wrapped at a fixed width, without colour codes.

    Returns
    -------
    str
        The help text of :func:`aslmig.cli.parser.build_parser`.
    """
    _import_aslmig()
    from aslmig.cli.parser import build_parser

    # argparse wraps at COLUMNS - 2; newer Pythons may colour help unless NO_COLOR is set.
    with _environment(COLUMNS=str(HELP_COLUMNS), NO_COLOR="1"):
        text = build_parser().format_help()
    return _ANSI_ESCAPE.sub("", text).rstrip() + "\n"


def _import_aslmig() -> None:
    """Make the package importable from a source checkout that is not installed."""
    if str(_PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(_PROJECT_ROOT))


def _example_wf(output_dir: Path, anat_derivatives: Path | None = None):
    """Build (not run) the participant graph of the bundled example dataset."""
    _import_aslmig()
    from aslmig.bids.layout import collect_runs, open_layout
    from aslmig.cli.demo import example_dataset
    from aslmig.config import AnatomyConfig, RunConfig
    from aslmig.workflows.base import init_aslmig_wf

    config = RunConfig(
        bids_dir=str(example_dataset()),
        output_dir=str(output_dir),
        analysis_level="participant",
        anatomy=AnatomyConfig(anat_derivatives=str(anat_derivatives) if anat_derivatives else None),
    )
    return init_aslmig_wf(config, collect_runs(open_layout(example_dataset())))


def _placeholder_fmriprep(root: Path) -> Path:
    """Write fMRIPrep-like anatomy of the example participants (1-voxel images, empty .h5)."""
    import json

    import nibabel as nb
    import numpy as np

    from aslmig.atlas.templates import resolve_template

    space = resolve_template().space
    root.mkdir(parents=True)
    description = {"Name": "placeholder", "DatasetType": "derivative", "GeneratedBy": []}
    (root / "dataset_description.json").write_text(json.dumps(description))
    names = ["desc-preproc_T1w", "desc-brain_mask"]
    names += [f"label-{label}_probseg" for label in ("GM", "WM", "CSF")]
    for subject in ("hc01", "mwa01"):
        anat = root / f"sub-{subject}" / "anat"
        anat.mkdir(parents=True)
        for name in names:
            image = nb.Nifti1Image(np.ones((1, 1, 1), np.float32), np.eye(4))
            image.to_filename(anat / f"sub-{subject}_{name}.nii.gz")
        for direction in (f"from-T1w_to-{space}", f"from-{space}_to-T1w"):
            (anat / f"sub-{subject}_{direction}_mode-image_xfm.h5").touch()
    return root


def example_workflows(folder: Path) -> dict[str, object]:
    """Build the example graphs; return factory name -> one workflow it made.

    Covers :data:`WORKFLOW_GRAPHS` and :data:`DERIVATIVES_GRAPHS`.
    """
    root = _example_wf(folder / "out")
    found = {
        factory: root.get_node(path) if path else root for factory, path in WORKFLOW_GRAPHS.items()
    }
    derived = _example_wf(folder / "out_derivatives", _placeholder_fmriprep(folder / "fmriprep"))
    found.update({factory: derived.get_node(path) for factory, path in DERIVATIVES_GRAPHS.items()})
    return found


@functools.cache
def workflow_graphs() -> dict[str, str]:
    """Draw every workflow of :func:`example_workflows`; return factory name -> SVG text.

    Raises
    ------
    RuntimeError
        Graphviz ``dot`` is not installed.
    """
    if shutil.which("dot") is None:
        raise RuntimeError(
            "the workflow graphs need Graphviz's dot: install it (apt-get install graphviz)"
        )
    nipype_log = logging.getLogger("nipype.workflow")
    level = nipype_log.level
    with tempfile.TemporaryDirectory() as folder, _environment(NIPYPE_NO_ET="1"):
        workflows = example_workflows(Path(folder))
        nipype_log.setLevel(logging.WARNING)  # one INFO line per graph otherwise
        graphs = {}
        for factory, workflow in workflows.items():
            dot_file = Path(folder) / f"{factory}.dot"
            workflow.write_graph(str(dot_file), graph2use="orig", format="svg", simple_form=True)
            graphs[factory] = dot_file.with_suffix(".svg").read_text(encoding="utf-8")
        nipype_log.setLevel(level)
    return graphs


def _factories() -> dict[str, object]:
    """Every ``init_*_wf`` function of :mod:`aslmig.workflows`, by name."""
    _import_aslmig()
    import importlib
    import pkgutil

    import aslmig.workflows

    found = {}
    for module in pkgutil.iter_modules(aslmig.workflows.__path__):
        loaded = importlib.import_module(f"aslmig.workflows.{module.name}")
        for name, function in inspect.getmembers(loaded, inspect.isfunction):
            if re.fullmatch(r"init_\w+_wf", name) and function.__module__ == loaded.__name__:
                found[name] = function
    return found


def graphs_section() -> str:
    """Return the Markdown of the workflow graphs: per workflow, its summary and its graph."""
    factories = _factories()
    parts = []
    for factory in (*WORKFLOW_GRAPHS, *DERIVATIVES_GRAPHS):
        function = factories[factory]
        summary = inspect.getdoc(function).split("\n\n", 1)[0].replace("\n", " ")
        parts.append(
            f"### `{factory}`\n\n{summary} (`{function.__module__}`)\n\n"
            f"![Graph of {factory}]({GRAPHS_DIR}/{factory}.svg)\n"
        )
    return "\n".join(parts)


def insert_cli_help(markdown: str) -> str:
    """Replace the marker line in ``markdown`` with the help text in a fenced code block.

    Parameters
    ----------
    markdown : str
        Content of ``docs/cli.md``.

    Returns
    -------
    str
        The content with the marker replaced.

    Raises
    ------
    ValueError
        If the marker line is missing.
    """
    lines = markdown.splitlines(keepends=True)
    positions = [number for number, line in enumerate(lines) if line.strip() == MARKER]
    if not positions:
        raise ValueError(f"{CLI_PAGE} has no marker line {MARKER}")
    block = "```text\n" + cli_help() + "```\n"
    for number in positions:
        lines[number] = block
    return "".join(lines)


def on_page_markdown(markdown: str, page, config, files) -> str:
    """MkDocs ``on_page_markdown`` event: fill in the help text on the CLI page.

    Parameters
    ----------
    markdown : str
        The page's Markdown source.
    page : mkdocs.structure.pages.Page
        The page being built.
    config : mkdocs.config.defaults.MkDocsConfig
        The site configuration.
    files : mkdocs.structure.files.Files
        All files of the site.

    Returns
    -------
    str
        The (possibly changed) Markdown.
    """
    from mkdocs.exceptions import PluginError

    if page.file.src_uri == GRAPHS_PAGE:
        if GRAPHS_MARKER not in markdown:
            raise PluginError(f"{GRAPHS_PAGE} has no marker line {GRAPHS_MARKER}")
        return markdown.replace(GRAPHS_MARKER, graphs_section())
    if page.file.src_uri != CLI_PAGE:
        return markdown
    try:
        return insert_cli_help(markdown)
    except ValueError as error:
        raise PluginError(str(error)) from None


def on_files(files, config):
    """MkDocs ``on_files`` event: add the workflow graphs to the site as generated files.

    Parameters
    ----------
    files : mkdocs.structure.files.Files
        All files of the site.
    config : mkdocs.config.defaults.MkDocsConfig
        The site configuration.

    Returns
    -------
    mkdocs.structure.files.Files
        ``files`` with ``graphs/<factory>.svg`` added.
    """
    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import File

    try:
        graphs = workflow_graphs()
    except RuntimeError as error:
        raise PluginError(str(error)) from None
    for factory, svg in graphs.items():
        files.append(File.generated(config, f"{GRAPHS_DIR}/{factory}.svg", content=svg))
    return files
