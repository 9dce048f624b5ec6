"""Constants: defaults, field strength, precedence (override > sidecar > default x BS)."""

import pytest

from aslmig.cbf.constants import resolve_constants


def test_white_paper_defaults_at_3t():
    c = resolve_constants("pcasl", 3.0)
    assert c.labeling_type == "PCASL"
    assert c.partition_coefficient == 0.9
    assert c.t1_blood == 1.65
    assert c.labeling_efficiency == 0.85
    assert c.unit_scale == 6000.0
    assert "Alsop" in c.sources["t1_blood"]


@pytest.mark.parametrize(("kind", "efficiency"), [("PCASL", 0.85), ("PASL", 0.98), ("CASL", 0.68)])
def test_default_efficiency_per_labeling_type(kind, efficiency):
    assert resolve_constants(kind, 3.0).labeling_efficiency == efficiency


@pytest.mark.parametrize(("field", "t1b"), [(1.5, 1.35), (1.494, 1.35), (2.89, 1.65), (3.0, 1.65)])
def test_blood_t1_follows_field_strength(field, t1b):
    assert resolve_constants("PCASL", field).t1_blood == t1b


def test_background_suppression_pulses_reduce_efficiency():
    c = resolve_constants("PCASL", 3.0, bs_pulses=4)
    assert c.labeling_efficiency == pytest.approx(0.85 * 0.95**4, rel=1e-12)
    assert "0.95^4" in c.sources["labeling_efficiency"]
    assert resolve_constants("PCASL", 3.0, bs_pulses=0).labeling_efficiency == 0.85


def test_sidecar_efficiency_wins_over_default_and_background_suppression():
    c = resolve_constants("PCASL", 3.0, sidecar_labeling_efficiency=0.72, bs_pulses=4)
    assert c.labeling_efficiency == 0.72
    assert c.sources["labeling_efficiency"] == "sidecar: LabelingEfficiency"


def test_override_wins_over_sidecar_and_is_recorded():
    c = resolve_constants(
        "PCASL",
        3.0,
        sidecar_labeling_efficiency=0.72,
        overrides={"labeling_efficiency": 0.6, "t1_blood": 1.7, "partition_coefficient": 0.98},
    )
    assert (c.labeling_efficiency, c.t1_blood, c.partition_coefficient) == (0.6, 1.7, 0.98)
    listed = c.to_dict()
    assert listed["t1_blood"] == {"value": 1.7, "units": "s", "source": "override (configuration)"}
    assert listed["labeling_efficiency"]["value"] == 0.6
    assert listed["labeling_type"] == "PCASL"


def test_to_dict_lists_every_constant_with_a_source():
    listed = resolve_constants("PASL", 1.5).to_dict()
    for name in ("partition_coefficient", "t1_blood", "t1_tissue", "labeling_efficiency"):
        assert listed[name]["source"], name
    assert listed["t1_blood"]["value"] == 1.35


def test_constants_are_frozen():
    c = resolve_constants("PCASL", 3.0)
    with pytest.raises(AttributeError):
        c.t1_blood = 2.0


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"labeling_type": "FAIR"}, "unknown labeling type"),
        ({"field_strength_t": 7.0}, "overrides\\['t1_blood'\\]"),
        ({"overrides": {"t1blood": 1.6}}, "unknown constant override"),
        ({"overrides": {"t1_blood": -1}}, "outside 0.2-5"),
        ({"sidecar_labeling_efficiency": 1.4}, "LabelingEfficiency"),
        ({"bs_pulses": -1}, "BackgroundSuppressionNumberPulses"),
    ],
)
def test_bad_input_is_a_value_error_saying_what_to_fix(kwargs, message):
    args = {"labeling_type": "PCASL", "field_strength_t": 3.0, **kwargs}
    with pytest.raises(ValueError, match=message):
        resolve_constants(**args)


def test_other_field_strength_works_with_override_but_tissue_t1_is_then_required():
    c = resolve_constants("PCASL", 7.0, overrides={"t1_blood": 2.1})
    assert c.t1_blood == 2.1 and c.t1_tissue is None
    with pytest.raises(ValueError, match="t1_tissue"):
        c.require_t1_tissue()
