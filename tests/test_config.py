"""Typed run configuration: TOML file, precedence, round trip."""

from __future__ import annotations

import pytest

from aslmig.config import RunConfig, build_config, read_config_file, to_toml, tomllib
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
            "execution": {"plugin_args": {"sbatch_args": '--mem=4G "x"'}, "mem_gb": 3.5},
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
        ("[physics]\nt1_blood = -1.0\n", ["physics.t1_blood", "> 0"]),
        ("[physics]\nt1_blood = 0\n", ["physics.t1_blood", "> 0"]),
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
