"""The documentation site: it builds cleanly and says what the code does.

- ``mkdocs build --strict`` succeeds without warnings;
- every command-line option is documented in ``docs/cli.md`` (and in the generated help);
- every example filter file and every configuration key is documented;
- every error message quoted in the docs is exactly what ``aslmig`` prints;
- the ``aslmig demo --dry-run`` output shown in getting-started.md is a real run, and the
  example of a full ``aslmig demo`` run has the shape the code prints (checked without
  processing anything, so that this module stays fast).
"""

from __future__ import annotations

import contextlib
import importlib.util
import inspect
import io
import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import nibabel as nb
import numpy as np
import pytest
from builders import fill_example
from system_packages import ensure_commands

from aslmig.bids.filters import FILTERABLE_ENTITIES, QUERY_NAMES
from aslmig.bids.metadata import (
    BOLUS_CUTOFF_TECHNIQUES,
    LABELING_TYPES,
    M0_TYPES,
    SECONDS_LIMITS,
    VOLUME_TYPES,
)
from aslmig.cli.demo import prepare_cohort
from aslmig.cli.execute import Progress
from aslmig.cli.parser import PLUGINS, build_parser
from aslmig.cli.run import collect, config_from_args, main
from aslmig.config import ExecutionConfig, GroupConfig, PhysicsConfig, RegionsConfig

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
FILTERS = ROOT / "bids_filters"


def page(name: str) -> str:
    return (DOCS / name).read_text(encoding="utf-8")


def load_hooks():
    spec = importlib.util.spec_from_file_location("aslmig_docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def option_strings() -> list[str]:
    return [option for action in build_parser()._actions for option in action.option_strings]


def mentions(text: str, option: str) -> bool:
    """Tell whether ``option`` occurs in ``text`` as a whole option (not inside a longer one)."""
    return re.search(rf"(?<![\w-]){re.escape(option)}(?![\w-])", text) is not None


# --------------------------------------------------------------------------- site build


def test_mkdocs_build_is_strict_and_clean(tmp_path):
    try:
        import mkdocs  # noqa: F401
    except ImportError:
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    ensure_commands(["dot"], ["graphviz"])  # the workflow graphs
    site = tmp_path / "site"
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "WARNING" not in output, output
    cli_page = (site / "cli" / "index.html").read_text(encoding="utf-8")
    assert "usage: aslmig" in cli_page
    assert "aslmig-cli-help" not in cli_page
    assert not (site / "hooks.py").exists()
    # one generated graph per workflow factory, shown on the processing-steps page
    hooks = load_hooks()
    drawn = {*hooks.WORKFLOW_GRAPHS, *hooks.DERIVATIVES_GRAPHS}
    assert drawn == set(hooks._factories())
    steps = (site / "workflow" / "index.html").read_text(encoding="utf-8")
    assert hooks.GRAPHS_MARKER not in steps
    for factory in drawn:
        assert f'src="../graphs/{factory}.svg"' in steps, factory
        graph = (site / "graphs" / f"{factory}.svg").read_text(encoding="utf-8")
        assert graph.lstrip().startswith("<?xml") and "<svg" in graph
    asl_graph = (site / "graphs" / "init_asl_wf.svg").read_text(encoding="utf-8")
    assert "quantify" in asl_graph and "regions_wf" in asl_graph


# --------------------------------------------------------------------------- CLI reference


def test_hook_inserts_the_parser_help():
    hooks = load_hooks()
    rendered = hooks.insert_cli_help(page("cli.md"))
    assert hooks.MARKER not in rendered
    assert "```text\nusage: aslmig" in rendered
    assert "\x1b" not in rendered
    missing = [option for option in option_strings() if not mentions(rendered, option)]
    assert not missing, f"options missing from the CLI page: {missing}"


def test_hook_refuses_a_page_without_marker():
    with pytest.raises(ValueError, match="marker"):
        load_hooks().insert_cli_help("# CLI reference\n")


def test_every_option_is_described_by_hand():
    prose = page("cli.md")
    missing = [option for option in option_strings() if not mentions(prose, option)]
    assert not missing, f"describe these options in docs/cli.md: {missing}"
    for plugin in PLUGINS:
        assert f"`{plugin}`" in prose


# --------------------------------------------------------------------------- other pages


def test_every_example_filter_file_is_documented():
    text = page("bids-filters.md")
    files = sorted(FILTERS.glob("*.json"))
    assert files
    for path in files:
        block = re.search(
            rf"### `{re.escape(path.name)}`\n.*?```json\n(.*?)```", text, flags=re.DOTALL
        )
        assert block, f"{path.name} is not documented in docs/bids-filters.md"
        shown = json.loads(block.group(1))
        assert shown == json.loads(path.read_text(encoding="utf-8")), path.name
    for name in (*QUERY_NAMES, *FILTERABLE_ENTITIES):
        assert f"`{name}`" in text, name


def test_every_configuration_key_is_documented():
    text = page("configuration.md")
    for section in (ExecutionConfig, PhysicsConfig, RegionsConfig, GroupConfig):
        for item in fields(section):
            assert f"| `{item.name}` |" in text, item.name
    for plugin in PLUGINS:
        assert f"`{plugin}`" in text


def test_input_rules_are_documented():
    text = page("inputs.md")
    for field, limit in SECONDS_LIMITS.items():
        assert f"| `{field}` | {limit:g} s |" in text, field
    for value in (*VOLUME_TYPES, *M0_TYPES, *LABELING_TYPES, *BOLUS_CUTOFF_TECHNIQUES):
        assert f"`{value}`" in text, value


# --------------------------------------------------------------------------- quoted messages

ASL_JSON = "sub-Sub103/perf/sub-Sub103_asl.json"
CONTEXT = "sub-Sub103/perf/sub-Sub103_aslcontext.tsv"
ASL_NII = "sub-Sub103/perf/sub-Sub103_asl.nii.gz"
M0_NII = "sub-Sub103/perf/sub-Sub103_m0scan.nii.gz"
M0_JSON = "sub-Sub103/perf/sub-Sub103_m0scan.json"
PASL_JSON = "sub-Sub1/perf/sub-Sub1_asl.json"
SHOWN_ROOT = "/data/my_study"  # how the docs show the absolute path of the input dataset
FILTER_FILE = "filters.json"
CONFIG_FILE = "my_study_aslmig.toml"

Mutation = Callable[[Path, Path], None]  # (dataset root, working folder)


def edit_json(relative: str, **changes) -> Mutation:
    """Set, or with None delete, sidecar fields."""

    def mutate(root: Path, _: Path) -> None:
        path = root / relative
        content = json.loads(path.read_text())
        for key, value in changes.items():
            if value is None:
                content.pop(key, None)
            else:
                content[key] = value
        path.write_text(json.dumps(content))

    return mutate


def write_text(relative: str, text: str, in_dataset: bool = True) -> Mutation:
    def mutate(root: Path, cwd: Path) -> None:
        ((root if in_dataset else cwd) / relative).write_text(text)

    return mutate


def delete(*relatives: str) -> Mutation:
    def mutate(root: Path, _: Path) -> None:
        for relative in relatives:
            (root / relative).unlink()

    return mutate


def replace_image(relative: str, shape: tuple[int, ...]) -> Mutation:
    def mutate(root: Path, _: Path) -> None:
        nb.Nifti1Image(np.ones(shape, dtype=np.float32), np.eye(4)).to_filename(root / relative)

    return mutate


def unchanged(root: Path, cwd: Path) -> None:
    """Leave the example dataset as it is."""


PAIRS_34 = "volume_type\n" + "control\nlabel\n" * 34


@dataclass(frozen=True)
class Scenario:
    """An example dataset, one change to it, and how ``aslmig`` is called on it."""

    example: str
    mutate: Mutation = unchanged
    extra: tuple[str, ...] = ()
    dry_run: bool = True
    output_inside_input: bool = False


def filter_file(content: str) -> Scenario:
    return Scenario(
        "asl002",
        write_text(FILTER_FILE, content, in_dataset=False),
        ("--bids-filter-file", FILTER_FILE),
    )


def config_file(content: str) -> Scenario:
    return Scenario(
        "asl002",
        write_text(CONFIG_FILE, content, in_dataset=False),
        ("--config-file", CONFIG_FILE),
    )


SCENARIOS: dict[str, Scenario] = {
    "pld-ms": Scenario("asl002", edit_json(ASL_JSON, PostLabelingDelay=2000)),
    "duration-ms": Scenario("asl002", edit_json(ASL_JSON, LabelingDuration=1800)),
    "m0type-missing": Scenario("asl002", edit_json(ASL_JSON, M0Type=None)),
    "labeling-type-case": Scenario("asl002", edit_json(ASL_JSON, ArterialSpinLabelingType="pcasl")),
    "slice-timing-length": Scenario("asl002", edit_json(ASL_JSON, SliceTiming=[0.0, 0.1])),
    "pld-length": Scenario("asl002", edit_json(ASL_JSON, PostLabelingDelay=[2.0] * 69)),
    "included-without-m0": Scenario("asl002", edit_json(ASL_JSON, M0Type="Included")),
    "absent-with-bs": Scenario("asl002", edit_json(ASL_JSON, M0Type="Absent")),
    "separate-without-file": Scenario("asl002", delete(M0_NII, M0_JSON)),
    "bolus-technique-case": Scenario("asl003", edit_json(PASL_JSON, BolusCutOffTechnique="quipss")),
    "unpaired-control": Scenario("asl002", write_text(CONTEXT, PAIRS_34 + "control\ncontrol\n")),
    "unknown-volume-type": Scenario("asl002", write_text(CONTEXT, PAIRS_34 + "control\nlabl\n")),
    "empty-image": Scenario("asl002", write_text(ASL_NII, "")),
    "m0-grid": Scenario("asl002", replace_image(M0_NII, (4, 4, 20))),
    "unknown-participant": Scenario("asl002", extra=("--participant-label", "99")),
    "nprocs-zero": Scenario("asl002", extra=("--nprocs", "0")),
    "output-inside-input": Scenario("asl002", output_inside_input=True),
    "filter-unknown-query": filter_file('{"bold": {}}'),
    "filter-short-entity": filter_file('{"asl": {"acq": "3d"}}'),
    "filter-run-word": filter_file('{"asl": {"run": "one"}}'),
    "filter-field-on-t1w": filter_file('{"t1w": {"MRAcquisitionType": "3D"}}'),
    "config-unknown-key": config_file("[execution]\nnproc = 4\n"),
    "config-unknown-table": config_file("[physic]\nt1_blood = 1.6\n"),
    "config-string-number": config_file('[physics]\nt1_blood = "1.65"\n'),
}
QUOTING_PAGES = ("inputs.md", "getting-started.md", "bids-filters.md", "configuration.md")
MESSAGE_TEMPLATE = "aslmig: error: FILE: PROBLEM (FIX)"
# Status lines of a processing run (standard output, not messages); the example run in
# getting-started.md shows them and test_demo_run_example_has_the_shape_the_code_prints
# checks them.
STATUS_LINE = re.compile(
    r"aslmig: (\d+ run\(s\), \d+ steps; work directory .+|finished in \d+ s; outputs in .+"
    r"|group statistics written to .+)"
)


@contextlib.contextmanager
def working_directory(path: Path) -> Iterator[None]:
    previous = Path.cwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(previous)


def run_scenario(name: str, base: Path) -> tuple[int, str]:
    """Run one scenario; return the exit status and stderr, with the dataset path as shown."""
    scenario = SCENARIOS[name]
    folder = base / name
    folder.mkdir()
    root = fill_example(scenario.example, folder)
    scenario.mutate(root, folder)
    output = root / "out" if scenario.output_inside_input else folder / "out"
    arguments = [str(root), str(output), "participant", *scenario.extra]
    if scenario.dry_run:
        arguments.append("--dry-run")
    stderr = io.StringIO()
    with (
        working_directory(folder),
        contextlib.redirect_stderr(stderr),
        contextlib.redirect_stdout(io.StringIO()),
    ):
        code = main(arguments)
    return code, stderr.getvalue().strip().replace(str(root.resolve()), SHOWN_ROOT)


@pytest.fixture(scope="module")
def produced(tmp_path_factory) -> dict[str, tuple[int, str]]:
    base = tmp_path_factory.mktemp("quoted")
    return {name: run_scenario(name, base) for name in SCENARIOS}


def quoted_messages() -> dict[str, set[str]]:
    """Lines of ``text`` code blocks that start with ``aslmig:``, per page."""
    found: dict[str, set[str]] = {}
    for name in QUOTING_PAGES:
        blocks = re.findall(r"```text\n(.*?)```", page(name), flags=re.DOTALL)
        lines = {line.strip() for block in blocks for line in block.splitlines()}
        found[name] = {
            line
            for line in lines
            if line.startswith("aslmig:")
            and line != MESSAGE_TEMPLATE
            and not STATUS_LINE.fullmatch(line)
        }
    return found


def test_inputs_page_quotes_messages():
    assert len(quoted_messages()["inputs.md"]) >= 10


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_scenario_message_is_quoted_verbatim(produced, name):
    code, message = produced[name]
    assert code == (2 if SCENARIOS[name].dry_run else 1), message
    assert len(message.splitlines()) == 1, message
    assert "Traceback" not in message
    quoted = set().union(*quoted_messages().values())
    assert message in quoted, f"not quoted in the docs (or quoted differently): {message}"


def test_every_quoted_message_is_produced_by_the_code(produced):
    messages = {message for _, message in produced.values()}
    for name, quoted in quoted_messages().items():
        unproduced = sorted(quoted - messages)
        assert not unproduced, f"docs/{name} quotes messages no scenario produces: {unproduced}"


# --------------------------------------------------------------------------- demo output

SHOWN_HOME = "/home/me"  # how the docs show the folder `aslmig demo` is run from
DEMO_DIR = "aslmig-demo"  # the default folder of `aslmig demo`
PROGRESS_LINE = re.compile(r"\[ *(\d+)/(\d+)\] +\d+ s  (.+): (done|FAILED)")


def test_demo_dry_run_output_shown_in_getting_started_is_real(tmp_path, capsys):
    """Run the `$ aslmig demo ...` command shown with output (a dry run: seconds, not minutes)."""
    text = page("getting-started.md")
    shown_calls = re.findall(r"```console\n\$ (aslmig demo[^\n]*)\n(.*?)```", text, re.S)
    blocks = [(command, output) for command, output in shown_calls if output.strip()]
    assert len(blocks) == 1, "getting-started.md should show the output of one `aslmig demo` call"
    command, output = blocks[0]
    arguments = shlex.split(command)[1:]
    assert "--dry-run" in arguments, "the shown (and tested) demo output must be a dry run"
    with working_directory(tmp_path):
        assert main(arguments) == 0
    real = capsys.readouterr().out.replace(str(tmp_path.resolve()), SHOWN_HOME).splitlines()
    shown = output.splitlines()
    assert shown == real[: len(shown)]
    assert f"It ends with `{real[-1]}`" in text


def test_demo_run_example_has_the_shape_the_code_prints(tmp_path):
    """The full-run example (a ``text`` block, not executed) against the real graph."""
    block = re.search(r"```text\n\$ aslmig demo\n(.*?)```", page("getting-started.md"), re.S)
    assert block, "getting-started.md shows no example of a full `aslmig demo` run"
    lines = block.group(1).splitlines()
    with working_directory(tmp_path):
        bids = prepare_cohort(Path(DEMO_DIR) / "bids")
        arguments = [str(bids), f"{DEMO_DIR}/derivatives", "participant", "-w", f"{DEMO_DIR}/work"]
        config = config_from_args(build_parser().parse_args(arguments))
        runs = collect(config)
    from nipype.interfaces.utility import IdentityInterface

    from aslmig.workflows.base import init_aslmig_wf

    workflow = init_aslmig_wf(config, runs)
    total = sum(
        not isinstance(node.interface, IdentityInterface) for node in workflow._get_all_nodes()
    )
    steps = [
        node
        for node in workflow._create_flat_graph().nodes()
        if not isinstance(node.interface, IdentityInterface)
    ]
    assert len(steps) == total
    stream = io.StringIO()
    progress = Progress(total, stream=stream)
    for node in steps:
        progress(node, "end")
    printed = [PROGRESS_LINE.fullmatch(line) for line in stream.getvalue().splitlines()]
    assert all(printed), "PROGRESS_LINE no longer matches what Progress prints"
    labels = {match.group(3) for match in printed}

    assert lines[0] == f"Demo dataset: {DEMO_DIR}/bids"
    assert lines[1] == f"aslmig: {len(runs)} run(s), {total} steps; work directory {DEMO_DIR}/work"
    end = next(i for i, line in enumerate(lines) if line.startswith("aslmig: finished"))
    shown = [PROGRESS_LINE.fullmatch(line) for line in lines[2:end]]
    assert shown and all(shown), "every line between the header and the end is a progress line"
    for match in shown:
        assert int(match.group(2)) == total
        assert match.group(3) in labels, f"no such step: {match.group(3)}"
    finished = re.fullmatch(r"aslmig: finished in \d+ s; outputs in (.+)", lines[end])
    derivatives = f"{SHOWN_HOME}/{DEMO_DIR}/derivatives"
    assert finished and finished.group(1) == derivatives
    assert lines[end + 1] == f"aslmig: group statistics written to {derivatives}/group/default"
    assert lines[end + 2] == f"Group report: {derivatives}/group/default/report.html"
    subjects = sorted({run.subject for run in runs})
    reports = [f"Participant report: {DEMO_DIR}/derivatives/sub-{label}.html" for label in subjects]
    assert lines[end + 3 :] == reports


# --------------------------------------------------------------------------- workflow docstrings


def _section(doc: str, title: str) -> str:
    """The text of a numpydoc section (up to the next section or the end)."""
    match = re.search(rf"^{title}\n-+\n(.*?)(?=^\w[\w ]*\n-+\n|\Z)", doc, re.M | re.S)
    return match.group(1) if match else ""


def test_every_workflow_documents_its_inputnode_and_outputnode_fields(tmp_path):
    hooks = load_hooks()
    factories = hooks._factories()
    for factory, workflow in hooks.example_workflows(tmp_path).items():
        doc = inspect.getdoc(factories[factory])
        inputs, outputs = _section(doc, "Inputs"), _section(doc, "Outputs")
        assert inputs and outputs, f"{factory} lacks an Inputs or Outputs section"
        for node_name, text in (("inputnode", inputs), ("outputnode", outputs)):
            node = workflow.get_node(node_name)
            fields = node.inputs.copyable_trait_names() if node is not None else []
            words = set(re.findall(r"\w+", text))
            assert set(fields) <= words, (factory, node_name, sorted(set(fields) - words))
