"""One validation for every source of a physical constant (issue 17): the command line, the
configuration file and the sidecar refuse the same values with the same reason."""

import pytest

from aslmig.cbf.constants import CONSTANT_RANGES, check_constant, resolve_constants
from aslmig.cli.parser import UsageError, build_parser
from aslmig.config import read_config_file
from aslmig.errors import InputError

MISTAKES = [
    ("labeling_efficiency", 85, "did you mean 0.85"),
    ("t1_blood", 1650, "did you mean 1.65"),
    ("t1_tissue", 1330, "did you mean 1.33"),
    ("partition_coefficient", 90, "outside 0.1-2"),
    ("labeling_efficiency", 0, "outside 0.01-1"),
    ("t1_blood", float("nan"), "outside"),
]


@pytest.mark.parametrize(("name", "value", "words"), MISTAKES)
def test_the_constants_layer_refuses_with_a_hint(name, value, words):
    with pytest.raises(ValueError, match=words):
        check_constant(name, value)


@pytest.mark.parametrize(("name", "value", "words"), MISTAKES[:4])
def test_command_line_refuses(name, value, words):
    option = "--" + name.replace("_", "-")
    with pytest.raises(UsageError, match=words):
        build_parser().parse_args(["bids", "out", "participant", option, str(value)])


@pytest.mark.parametrize(("name", "value", "words"), MISTAKES[:5])
def test_configuration_file_refuses(tmp_path, name, value, words):
    config = tmp_path / "config.toml"
    config.write_text(f"[physics]\n{name} = {value}\n")
    with pytest.raises(InputError, match=words):
        read_config_file(config)


def test_overrides_and_sidecar_refuse_the_same_values():
    with pytest.raises(ValueError, match="did you mean 0.85"):
        resolve_constants("PCASL", 3.0, overrides={"labeling_efficiency": 85})
    with pytest.raises(ValueError, match="sidecar LabelingEfficiency.*did you mean 0.85"):
        resolve_constants("PCASL", 3.0, sidecar_labeling_efficiency=85)


@pytest.mark.parametrize("name", sorted(CONSTANT_RANGES))
def test_literature_defaults_are_inside_the_ranges(name):
    constants = resolve_constants("PCASL", 3.0).to_dict()
    if constants[name]["value"] is not None:
        assert check_constant(name, constants[name]["value"]) == constants[name]["value"]


def test_valid_values_pass_every_source(tmp_path):
    args = build_parser().parse_args(
        ["bids", "out", "participant", "--labeling-efficiency", "0.8", "--t1-blood", "1.7"]
    )
    assert (args.labeling_efficiency, args.t1_blood) == (0.8, 1.7)
    config = tmp_path / "config.toml"
    config.write_text("[physics]\nlabeling_efficiency = 0.8\n")
    assert read_config_file(config)["physics"]["labeling_efficiency"] == 0.8
