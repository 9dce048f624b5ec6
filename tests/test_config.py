"""Typed run configuration: TOML file, precedence, round trip."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from aslmig.config import (
    PLUGINS,
    SMALLEST_MEM_GB,
    ExecutionConfig,
    GroupConfig,
    PhysicsConfig,
    RegionsConfig,
    RunConfig,
    build_config,
    read_config_file,
    to_toml,
    tomllib,
)
from aslmig.errors import InputError

BASE = {"bids_dir": "/data", "output_dir": "/out", "analysis_level": "participant"}


def test_precedence_defaults_file_cli(tmp_path):
    path = tmp_path / "c.toml"
    path.write_text("[execution]\nnprocs = 4\nomp_nthreads = 2\n[physics]\nt1_blood = 1.6\n")
    config = build_config(BASE, read_config_file(path), {"execution": {"nprocs": 8}})
    assert config.execution.nprocs == 8
    assert config.execution.omp_nthreads == 2
    assert config.physics.t1_blood == 1.6
    assert config.physics.labeling_efficiency is None
    assert config.physics.overrides() == {"t1_blood": 1.6}


def test_toml_round_trip():
    config = build_config(
        {**BASE, "participant_labels": ("01", "02")},
        {},
        {
            "execution": {
                "plugin": "SLURM",
                "plugin_args": {"sbatch_args": '--mem=4G "x"'},
                "mem_gb": 3.5,
            },
            "physics": {"labeling_efficiency": 0.8},
        },
    )
    parsed = tomllib.loads(to_toml(config))
    assert parsed["run"]["participant_labels"] == ["01", "02"]
    assert parsed["execution"]["plugin_args"] == {"sbatch_args": '--mem=4G "x"'}
    assert parsed["execution"]["mem_gb"] == 3.5
    assert parsed["physics"]["labeling_efficiency"] == 0.8
    assert isinstance(config, RunConfig)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[execution]\nnprocs = 0\n", ["execution.nprocs"]),
        ("[execution]\nnprocs = 'many'\n", ["execution.nprocs"]),
        ("[physics]\nt1_blood = -1.0\n", ["physics.t1_blood", "outside 0.2-5"]),
        ("[physics]\nt1_blood = 0\n", ["physics.t1_blood", "outside 0.2-5"]),
        ("[execution]\nmem_gb = 0\n", ["execution.mem_gb", "> 0"]),
        ("[execution]\nplugin = 'Condor'\n", ["execution.plugin is 'Condor'", "MultiProc"]),
        ("[physics]\nt1_blod = 1.6\n", ["unknown key physics.'t1_blod'", "t1_blood"]),
        ("[workflow]\nx = 1\n", ["unknown table"]),
        ("[execution\n", ["invalid TOML"]),
        ("[execution]\nstop_on_first_crash = 'yes'\n", ["stop_on_first_crash"]),
    ],
)
def test_config_file_errors(tmp_path, text, words):
    path = tmp_path / "c.toml"
    path.write_text(text)
    with pytest.raises(InputError) as raised:
        read_config_file(path)
    for word in [str(path), *words]:
        assert word in raised.value.message


def test_missing_config_file(tmp_path):
    with pytest.raises(InputError, match="does not exist"):
        read_config_file(tmp_path / "none.toml")


def test_saved_configuration_can_be_reused(tmp_path):
    config = build_config(BASE, {}, {"execution": {"nprocs": 3}, "physics": {"t1_blood": 1.6}})
    path = tmp_path / "saved.toml"
    path.write_text(to_toml(config))
    again = build_config(BASE, read_config_file(path), {})
    assert again == config


# --------------------------------------------------------------------------- round-trip property

HOSTILE_TEXT = st.one_of(
    # any code point except lone surrogates (not encodable as UTF-8)
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=12),
    st.sampled_from(
        ["a.b", "a.b.c", "", " ", "x\ny", 'say "hi"', "back\\slash", "\x00", "\x1b[2J",
         "😀 non-BMP", "[table]", "key = 1", "# comment", "'single'", "ß\u200b", "None"]
    ),
)  # fmt: skip
SCALARS = st.one_of(
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    HOSTILE_TEXT,
)
JSON_VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(HOSTILE_TEXT, inner, max_size=3),
    max_leaves=8,
)
COUNTS = st.integers(min_value=1, max_value=2**63 - 1)


def _optional(strategy):
    return st.none() | strategy


def _within(low, high):
    return st.floats(min_value=low, max_value=high, exclude_min=True)


CONFIGS = st.builds(
    RunConfig,
    bids_dir=HOSTILE_TEXT,
    output_dir=HOSTILE_TEXT,
    analysis_level=st.sampled_from(["participant", "group"]),
    participant_labels=_optional(st.lists(HOSTILE_TEXT, max_size=3).map(tuple)),
    session_labels=_optional(st.lists(HOSTILE_TEXT, max_size=3).map(tuple)),
    bids_filter_file=_optional(HOSTILE_TEXT),
    dry_run=st.booleans(),
    verbosity=st.integers(min_value=0, max_value=3),
    execution=st.builds(
        ExecutionConfig,
        work_dir=_optional(HOSTILE_TEXT),
        nprocs=COUNTS,
        omp_nthreads=COUNTS,
        mem_gb=_optional(st.floats(min_value=SMALLEST_MEM_GB, max_value=1e6)),
        # cluster plugins pass unknown arguments on to nipype; MultiProc's are checked
        plugin=st.sampled_from([name for name in PLUGINS if name not in ("MultiProc", "Linear")]),
        plugin_args=st.dictionaries(HOSTILE_TEXT, JSON_VALUES, max_size=4),
        stop_on_first_crash=st.booleans(),
        bids_database_dir=_optional(HOSTILE_TEXT),
        skip_bids_validation=st.booleans(),
    )
    | st.builds(
        ExecutionConfig,
        plugin=st.just("MultiProc"),
        plugin_args=st.fixed_dictionaries(
            {},
            optional={
                "n_procs": COUNTS,
                "memory_gb": st.floats(1, 1e4),
                "mp_context": st.sampled_from(["fork", "spawn"]),
            },
        ),
    ),
    physics=st.builds(
        PhysicsConfig,
        labeling_efficiency=_optional(_within(0.01, 1)),
        bs_pulse_efficiency=_optional(_within(0.01, 1)),
        t1_blood=_optional(_within(0.5, 3)),
        t1_tissue=_optional(_within(0.3, 3)),
        partition_coefficient=_optional(_within(0.5, 1.2)),
        m0_scale=_within(1e-3, 1e3),
        m0_smoothing_fwhm_mm=st.floats(min_value=0, max_value=20),
        arterial_component=st.sampled_from(["auto", "on", "off"]),
    ),
    regions=st.builds(
        RegionsConfig,
        atlases=st.lists(HOSTILE_TEXT, max_size=3).map(tuple),
        roi_spheres=_optional(HOSTILE_TEXT),
        min_coverage=_within(0, 1),
    ),
    group=st.builds(
        GroupConfig,
        model=_optional(HOSTILE_TEXT),
        label=HOSTILE_TEXT,
        atlas=HOSTILE_TEXT,
        missing=st.sampled_from(["report", "error"]),
        unlabelled=st.sampled_from(["error", "exclude"]),
        voxelwise=st.booleans(),
        permutations=COUNTS,
        tfce=st.booleans(),
        cluster_threshold=_within(0, 100),
        seed=st.integers(min_value=0, max_value=2**63 - 1),
    ),
)


@settings(max_examples=150, deadline=None)
@given(config=CONFIGS)
def test_saved_configuration_round_trips(config):
    """save -> load -> the same configuration, over hostile strings, keys and numbers."""
    text = to_toml(config)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "config.toml"
        path.write_text(text, encoding="utf-8")
        sections = read_config_file(path)
    top = {
        item.name: getattr(config, item.name)
        for item in dataclasses.fields(RunConfig)
        if item.name not in sections and not dataclasses.is_dataclass(getattr(config, item.name))
    }
    assert build_config(top, sections, {}) == config
    record = tomllib.loads(text)["run"]
    expected = {
        key: list(value) if isinstance(value, tuple) else value
        for key, value in top.items()
        if value is not None
    }
    assert record == expected


def test_issue_15_cases_round_trip(tmp_path):
    """The three bugs of the hand-written writer: dotted key, None, non-BMP path."""
    config = build_config(
        {**BASE, "bids_dir": "/data/\U0001f9e0 study"},
        {},
        {"execution": {"plugin": "SLURM", "plugin_args": {"sbatch.args": "--qos=x", "n_procs": 2}}},
    )
    path = tmp_path / "c.toml"
    path.write_text(to_toml(config), encoding="utf-8")
    sections = read_config_file(path)
    assert sections["execution"]["plugin_args"] == {"sbatch.args": "--qos=x", "n_procs": 2}
    assert "None" not in path.read_text()
    assert tomllib.loads(path.read_text())["run"]["bids_dir"] == "/data/\U0001f9e0 study"
    assert build_config({**BASE, "bids_dir": "/data/\U0001f9e0 study"}, sections, {}) == config


@pytest.mark.parametrize(
    ("execution", "words"),
    [
        ({"mem_gb": 0.005}, ["--mem-gb", "0.005 GB", "at least 1"]),
        ({"plugin_args": {"n_procs": 0}}, ["--plugin-args", "n_procs is 0", ">= 1"]),
        ({"plugin_args": {"n_procs": "two"}}, ["n_procs is 'two'"]),
        ({"plugin_args": {"n_procs": True}}, ["n_procs is True"]),
        ({"plugin_args": {"memory_gb": 0.005}}, ["memory_gb is 0.005", "GB >= 1"]),
        ({"plugin_args": {"nprocs": 2}}, ["MultiProc does not take 'nprocs'", "n_procs"]),
        ({"plugin_args": {"mp_context": "thread"}}, ["mp_context is 'thread'", "fork"]),
        ({"plugin": "Linear", "plugin_args": {"n_procs": 2}}, ["Linear does not take"]),
        ({"plugin": "SLURM", "plugin_args": {"max_jobs": -1}}, ["max_jobs is -1"]),
        ({"plugin": "SLURM", "plugin_args": {"sbatch_args": 4}}, ["sbatch_args is 4"]),
    ],
)
def test_execution_settings_nipype_would_hang_on_are_refused(execution, words):
    with pytest.raises(InputError) as raised:
        build_config(BASE, {}, {"execution": execution})
    for word in words:
        assert word in raised.value.message, raised.value.message


def test_config_file_that_is_a_folder_or_unreadable(tmp_path):
    folder = tmp_path / "config.toml"
    folder.mkdir()
    with pytest.raises(InputError, match="is a folder, not a file"):
        read_config_file(folder)
