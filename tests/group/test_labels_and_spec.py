"""Labels (phase derivation, level spellings) and the model file."""

from __future__ import annotations

import dataclasses

import pytest

from aslmig.errors import InputError
from aslmig.group.labels import LabelSpec, derive_phase, level_lookup, read_labels
from aslmig.group.modelspec import default_spec, parse_spec, read_model_file, spec_to_toml

try:
    import tomllib
except ModuleNotFoundError:  # pragma: no cover
    import tomli as tomllib


@pytest.mark.parametrize(
    ("since", "to_next", "phase"),
    [
        (0.0, None, "ictal"),
        (24.0, None, "ictal"),
        (24.5, None, "postictal"),
        (48.0, None, "postictal"),
        (48.5, None, "interictal"),
        (None, 48.0, "preictal"),
        (None, 48.5, "interictal"),
        (100.0, 10.0, "preictal"),
        (3.0, 10.0, "ictal"),
        (None, None, ""),
    ],
)
def test_phase_windows_after_peng_and_may(since, to_next, phase):
    assert derive_phase(since, to_next, LabelSpec()) == phase


def test_phase_windows_are_configurable():
    spec = LabelSpec(preictal_hours=24, postictal_hours=12, attack_duration_hours=72)
    assert derive_phase(70.0, None, spec) == "ictal"
    assert derive_phase(80.0, None, spec) == "postictal"
    assert derive_phase(None, 30.0, spec) == "interictal"


def test_level_spellings_are_case_insensitive():
    lookup = level_lookup({"MwA": ("migraine with aura",), "HC": ("control",)})
    assert lookup["mwa"] == "MwA" and lookup["migraine with aura"] == "MwA"
    assert lookup["control"] == "HC" and lookup["hc"] == "HC"


def test_read_labels_maps_columns_and_derives_phase(tmp_path):
    (tmp_path / "participants.tsv").write_text(
        "participant_id\tdiagnosis\tage_years\tsex\tside\n"
        "sub-01\tMigraine with aura\t30\tf\tRight\n"
        "sub-02\tcontrol\t41\tM\tn/a\n"
    )
    (tmp_path / "sub-01").mkdir()
    (tmp_path / "sub-01" / "sub-01_sessions.tsv").write_text(
        "session_id\tmigraine_phase\thours_to_next_attack_onset\taura_side\n"
        "ses-a\tn/a\t20\tleft\nses-b\tICTAL\tn/a\tn/a\n"
    )
    spec = LabelSpec(
        group_column="diagnosis",
        age_column="age_years",
        aura_side_column="side",
        groups={"MwA": ("migraine with aura",), "MwoA": (), "HC": ("control",)},
    )
    labels = read_labels(tmp_path, spec)
    assert labels.problems == []
    people = labels.participants.set_index("subject")
    assert people.loc["01", "group"] == "MwA" and people.loc["01", "aura_side"] == "R"
    assert people.loc["02", "group"] == "HC" and people.loc["02", "age"] == 41
    sessions = labels.sessions.set_index("session")
    assert tuple(sessions.loc["a", ["phase", "phase_source"]]) == ("preictal", "derived")
    assert sessions.loc["a", "aura_side"] == "L"
    assert sessions.loc["b", "phase"] == "ictal" and sessions.loc["b", "phase_source"] == "column"


def test_default_spec_round_trips_through_its_toml(tmp_path):
    path = tmp_path / "model.toml"
    path.write_text(spec_to_toml(default_spec()), encoding="utf-8")
    assert read_model_file(path) == default_spec()


def test_model_file_defaults_and_custom_levels():
    spec = parse_spec(
        tomllib.loads(
            '[labels.groups]\nCM = ["chronic"]\nEM = ["episodic"]\nHC = ["control"]\n'
            '[[model]]\nname = "cm_vs_em"\nkind = "ancova"\ngroups = ["CM", "EM"]\n'
        ),
        "m.toml",
    )
    model = spec.models[0]
    assert (model.phase, model.covariates, model.site) == ("interictal", ("age", "sex"), "auto")
    assert spec.covariates() == ("age", "sex")
    assert dataclasses.asdict(spec.labels)["groups"]["CM"] == ("chronic",)


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ("[labels]\ngroup_colum = 'x'\n", ["labels.group_colum", "group_column"]),
        ("[[model]]\nname = 'a'\nkind = 'anova'\n", ["kind", "'anova'", "ancova"]),
        (
            "[[model]]\nname = 'a'\nkind = 'within'\nphase = 'ictal'\nreference = 'ictal'\n",
            ["incomplete within"],
        ),
        ("[[model]]\nname = 'a'\nkind = 'ancova'\nphase = 'aura'\n", ["phase 'aura'"]),
        ("[inputs]\nmeasures = ['cbf', 'volume']\n", ["inputs.measures"]),
        ("[labels]\npreictal_hours = -1\n", ["labels.preictal_hours"]),
        ("[labels.groups]\nMwA = ['x']\nHC = ['X']\n", ["'X'", "names both"]),
        (
            "[[model]]\nname = 'a'\nkind = 'ancova'\n[[model]]\nname = 'a'\nkind = 'ancova'\n",
            ["used twice"],
        ),
    ],
)
def test_model_file_mistakes_are_input_errors(text, words):
    with pytest.raises(InputError) as caught:
        parse_spec(tomllib.loads(text), "m.toml")
    for word in words:
        assert word in caught.value.message
