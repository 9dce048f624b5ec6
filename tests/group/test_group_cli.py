"""``aslmig BIDS_DIR OUTPUT_DIR group`` end to end on small synthetic derivatives."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from group_builders import build_cohort, checksums, write_roi_table, write_tsv

from aslmig.bids.derivatives import ROI_STATISTICS_COLUMNS
from aslmig.cli.run import main
from aslmig.group.modelspec import read_model_file

REQUIRED = (
    "model contrast measure roi family formula group_a group_b n_a n_b mean_a sd_a mean_b sd_b "
    "estimate ci_low ci_high hedges_g g_ci_low g_ci_high statistic_name statistic df p q"
).split()


@pytest.fixture
def cohort(tmp_path):
    return build_cohort(tmp_path, n_per_group=4, seed=3, site=True)


def run(bids, out, *options):
    return main([str(bids), str(out), "group", *options])


def test_group_level_writes_tables_sidecars_and_model(cohort):
    bids, out = cohort
    assert run(bids, out) == 0
    folder = out / "group" / "default"
    names = sorted(path.name for path in folder.iterdir())
    assert names == [
        "exclusions.json",
        "exclusions.tsv",
        "model.toml",
        "report.html",  # no CBF maps in this dataset: ROI statistics only, no voxelwise/
        "roi_statistics.json",
        "roi_statistics.tsv",
        "roi_values.json",
        "roi_values.tsv",
    ]
    statistics = pd.read_csv(folder / "roi_statistics.tsv", sep="\t", keep_default_na=False)
    assert list(statistics.columns) == list(ROI_STATISTICS_COLUMNS)
    assert set(REQUIRED) <= set(statistics.columns)
    assert set(statistics["model"]) == {
        "between_group",
        "ictal_vs_interictal",
        "aura_by_phase",
        "asymmetry",
        "attack_time_course",  # every ictal session at 3.5 h: rows that say why not estimable
    }
    course = statistics[statistics["model"] == "attack_time_course"]
    assert (course["p"] == "n/a").all() and course["note"].str.contains("three or more").all()
    assert set(statistics["measure"]) == {"cbf", "rcbf", "ai"}
    values = pd.read_csv(folder / "roi_values.tsv", sep="\t", keep_default_na=False)
    assert len(values.drop_duplicates(["subject", "session"])) == 4 + 8 + 8
    sidecar = json.loads((folder / "roi_statistics.json").read_text())
    used = [source for source in sidecar["Sources"] if source.startswith("bids::")]
    assert len(used) == 20 and all("space-MNI152NLin2009cAsym" in source for source in used)
    assert "bids:raw:participants.tsv" in sidecar["Sources"]
    assert sidecar["SourceChecksums"][used[0]] == "sha256:" + checksums(out)[used[0][6:]]
    assert set(sidecar["Software"]) == {"aslmig", "python", "numpy", "pandas", "scipy"}
    assert "between_group/cbf/ancova" in sidecar["FDRFamilies"]
    assert read_model_file(folder / "model.toml") == read_model_file(None)


def test_rerun_is_byte_identical_and_other_label_touches_nothing_else(cohort, tmp_path):
    bids, out = cohort
    assert run(bids, out) == 0
    first = checksums(out)
    assert run(bids, out) == 0
    assert checksums(out) == first
    model = tmp_path / "other.toml"
    model.write_text(
        '[inputs]\nmeasures = ["cbf"]\n\n[[model]]\nname = "hc_vs_mwa"\nkind = "ancova"\n'
        'groups = ["HC", "MwA"]\ncovariates = ["age"]\n',
        encoding="utf-8",
    )
    assert run(bids, out, "--group-label", "other", "--model", str(model)) == 0
    after = checksums(out)
    assert {name: after[name] for name in first} == first
    added = sorted(set(after) - set(first))
    assert all(name.startswith("group/other/") for name in added)
    statistics = pd.read_csv(out / "group/other/roi_statistics.tsv", sep="\t")
    assert set(statistics["model"]) == {"hc_vs_mwa"} and set(statistics["measure"]) == {"cbf"}


def test_asymmetry_is_oriented_to_the_aura_side(cohort):
    bids, out = cohort
    assert run(bids, out, "--model", str(_ai_only_model(out.parent))) == 0
    values = pd.read_csv(out / "group/default/roi_values.tsv", sep="\t", keep_default_na=False)
    ai = values[(values["measure"] == "ai") & (values["roi"] == "occipital_cortex")]
    raw = {}
    for row in ai.itertuples():
        table = next(
            (out / f"sub-{row.subject}" / f"ses-{row.session}" / "perf").glob("*space-*_cbf.tsv")
        )
        frame = pd.read_csv(table, sep="\t").set_index("roi")
        raw[row.subject, row.session] = frame.loc["occipital_cortex_L", "asymmetry_index"]
    for row in ai.itertuples():
        sign = -1.0 if row.aura_side == "L" else 1.0  # aura L: right hemisphere affected
        assert row.value == pytest.approx(sign * raw[row.subject, row.session], rel=1e-7)
        assert row.orientation == {"L": "affected=R (aura L)", "R": "affected=L (aura R)"}.get(
            row.aura_side, "none (L-R)"
        )
    assert set(ai.loc[ai["group"] == "MwA", "aura_side"]) == {"L", "R"}


def _ai_only_model(folder):
    path = folder / "ai.toml"
    path.write_text(
        '[inputs]\nmeasures = ["ai"]\n\n[[model]]\nname = "ai"\nkind = "one_sample"'
        '\ngroups = ["MwA"]\nphases = ["ictal"]\n',
        encoding="utf-8",
    )
    return path


# --------------------------------------------------------------------------- bad input


def edit_participants(bids, column, subject, value):
    table = pd.read_csv(bids / "participants.tsv", sep="\t", dtype=str, keep_default_na=False)
    table.loc[table["participant_id"] == f"sub-{subject}", column] = value
    table.to_csv(bids / "participants.tsv", sep="\t", index=False)


def expect_input_error(capsys, bids, out, *words, options=()):
    before = checksums(out)
    assert run(bids, out, *options) == 2
    message = capsys.readouterr().err.strip()
    assert message.count("\n") == 0, message
    assert message.startswith("aslmig: error: ")
    for word in words:
        assert word in message, (word, message)
    assert "\x1b" not in message
    assert not (out / "group").exists()
    assert checksums(out) == before
    return message


def test_unknown_group_level_is_one_error(cohort, capsys):
    bids, out = cohort
    edit_participants(bids, "group", "mwa02", "MwX")
    edit_participants(bids, "group", "hc01", "control")
    message = expect_input_error(
        capsys, bids, out, "participants.tsv", "group", "'MwX'", "'control'", "--unlabelled exclude"
    )
    assert "2 label problems" in message


def test_group_levels_are_case_insensitive(cohort):
    bids, out = cohort
    edit_participants(bids, "group", "mwa02", "mwa")
    edit_participants(bids, "group", "hc01", "hc")
    assert run(bids, out) == 0


def test_subject_without_label_is_an_error(cohort, capsys):
    bids, out = cohort
    write_roi_table(out, "new01", "1", {})
    expect_input_error(capsys, bids, out, "sub-new01", "participant_id", "no row in participants")


def test_session_without_phase_is_an_error_or_excluded(cohort, capsys):
    bids, out = cohort
    write_tsv(
        bids / "sub-mwa01" / "sub-mwa01_sessions.tsv",
        ["session_id", "migraine_phase", "hours_since_attack_onset"],
        [["ses-1", "interictal", "n/a"], ["ses-2", "n/a", "n/a"]],
    )
    expect_input_error(
        capsys, bids, out, "sub-mwa01_sessions.tsv", "migraine_phase", "sub-mwa01 ses-2"
    )
    assert run(bids, out, "--unlabelled", "exclude") == 0
    exclusions = pd.read_csv(out / "group/default/exclusions.tsv", sep="\t", dtype=str)
    row = exclusions[(exclusions["subject"] == "mwa01")].iloc[0]
    assert row["session"] == "2" and "migraine_phase" in row["reason"]
    values = pd.read_csv(out / "group/default/roi_values.tsv", sep="\t", dtype=str)
    assert not ((values["subject"] == "mwa01") & (values["session"] == "2")).any()
    assert ((values["subject"] == "mwa01") & (values["session"] == "1")).any()


def test_phase_is_derived_from_hours_when_the_column_is_empty(cohort):
    bids, out = cohort
    write_tsv(
        bids / "sub-mwa01" / "sub-mwa01_sessions.tsv",
        ["session_id", "migraine_phase", "hours_since_attack_onset"],
        [["ses-1", "interictal", "n/a"], ["ses-2", "n/a", "5"]],
    )
    assert run(bids, out) == 0
    values = pd.read_csv(out / "group/default/roi_values.tsv", sep="\t", dtype=str)
    row = values[(values["subject"] == "mwa01") & (values["session"] == "2")].iloc[0]
    assert (row["phase"], row["phase_source"]) == ("ictal", "derived")


def test_missing_column_is_an_error(cohort, capsys):
    bids, out = cohort
    table = pd.read_csv(bids / "participants.tsv", sep="\t", dtype=str)
    table.drop(columns="age").to_csv(bids / "participants.tsv", sep="\t", index=False)
    expect_input_error(capsys, bids, out, "participants.tsv", "'age'", "age_column")


def test_non_numeric_age_is_an_error(cohort, capsys):
    bids, out = cohort
    edit_participants(bids, "age", "hc02", "thirty")
    expect_input_error(capsys, bids, out, "participants.tsv", "age", "'thirty'", "not a number")


def test_hostile_strings_are_quoted(cohort, capsys):
    bids, out = cohort
    edit_participants(bids, "group", "hc02", "\x1b[31mHC\x1b[0m\x07")
    edit_participants(bids, "sex", "hc03", "\x1b]0;pwned\x07")
    message = expect_input_error(capsys, bids, out, "participants.tsv", "group", "sex")
    assert "\\x1b" in message and "\x07" not in message


def test_bad_model_file_and_label_are_errors(cohort, capsys, tmp_path):
    bids, out = cohort
    model = tmp_path / "bad.toml"
    model.write_text('[[model]]\nname = "x"\nkind = "ancova"\ngrups = ["HC"]\n')
    expect_input_error(capsys, bids, out, "bad.toml", "grups", options=("--model", str(model)))
    model.write_text('[[model]]\nname = "x"\nkind = "ancova"\ngroups = ["HC", "CM"]\n')
    expect_input_error(capsys, bids, out, "bad.toml", "'CM'", options=("--model", str(model)))
    expect_input_error(capsys, bids, out, "--group-label", options=("--group-label", "../up"))


def test_missing_participant_output_is_reported_or_an_error(cohort, capsys):
    bids, out = cohort
    for path in (out / "sub-mwoa03" / "ses-2").rglob("*.tsv"):
        path.unlink()
    expect_input_error(
        capsys, bids, out, "sub-mwoa03_ses-2", "--missing report", options=("--missing", "error")
    )
    assert run(bids, out) == 0
    exclusions = pd.read_csv(out / "group/default/exclusions.tsv", sep="\t", dtype=str)
    assert exclusions.values.tolist() == [
        ["mwoa03", "2", "inputs", "no participant ROI table (atlas-MigraineASL) in OUTPUT_DIR"]
    ]


def test_no_participant_outputs_is_an_error(cohort, capsys):
    bids, out = cohort
    expect_input_error(
        capsys,
        bids,
        out,
        "no participant ROI table",
        "--group-atlas",
        options=("--group-atlas", "Other"),
    )


def test_dry_run_writes_nothing(cohort, capsys):
    bids, out = cohort
    before = checksums(out)
    assert run(bids, out, "--dry-run") == 0
    assert "dry run" in capsys.readouterr().out
    assert checksums(out) == before and not (out / "group").exists()


def test_group_table_of_the_config_file(cohort, tmp_path):
    bids, out = cohort
    config = tmp_path / "config.toml"
    config.write_text('[group]\nlabel = "fromfile"\nunlabelled = "exclude"\n', encoding="utf-8")
    assert main([str(bids), str(out), "group", "--config-file", str(config)]) == 0
    assert (out / "group" / "fromfile" / "roi_statistics.tsv").exists()
    config.write_text('[group]\nmissing = "sometimes"\n', encoding="utf-8")
    assert main([str(bids), str(out), "group", "--config-file", str(config)]) == 2


def test_dataset_without_sessions_takes_the_phase_from_participants(tmp_path):
    bids, out = build_cohort(tmp_path, n_per_group=3, seed=5, sessions=False)
    table = pd.read_csv(bids / "participants.tsv", sep="\t", dtype=str, keep_default_na=False)
    table["migraine_phase"] = ["n/a"] * 3 + ["interictal"] * 6
    table.to_csv(bids / "participants.tsv", sep="\t", index=False)
    assert run(bids, out) == 0
    values = pd.read_csv(out / "group/default/roi_values.tsv", sep="\t", keep_default_na=False)
    assert set(values["session"]) == {"n/a"}
    phases = values.drop_duplicates("subject").set_index("subject")["phase_source"]
    assert phases["hc01"] == "control" and phases["mwa01"] == "participants"
    statistics = pd.read_csv(out / "group/default/roi_statistics.tsv", sep="\t")
    ancova = statistics[statistics["test"] == "ancova"]
    reference = (ancova["measure"] == "rcbf") & (ancova["roi"] == "grey_matter")
    assert ancova.loc[~reference, "p"].notna().all()
    # grey matter relative to itself is 1 in every unit: no variance, n/a with the reason
    assert ancova.loc[reference, "p"].isna().all()
    assert ancova.loc[reference, "note"].str.contains("constant").all()


def test_unknown_group_excluded_leaves_out_the_whole_subject(cohort):
    bids, out = cohort
    edit_participants(bids, "group", "mwa02", "MwX")
    assert (
        run(
            bids,
            out,
            "--unlabelled",
            "exclude",
            "--participant-label",
            "mwa02",
            "mwa03",
            "hc01",
            "hc02",
            "mwoa01",
            "mwoa02",
        )
        == 0
    )
    exclusions = pd.read_csv(
        out / "group/default/exclusions.tsv", sep="\t", dtype=str, keep_default_na=False
    )
    assert exclusions[["subject", "session", "stage"]].values.tolist() == [
        ["mwa02", "n/a", "labels"]
    ]
    assert "'MwX'" in exclusions["reason"].iloc[0]
    values = pd.read_csv(out / "group/default/roi_values.tsv", sep="\t", dtype=str)
    assert set(values["subject"]) == {"mwa03", "hc01", "hc02", "mwoa01", "mwoa02"}


# --------------------------------------------------------------------------- issue 17 bullets


def test_unknown_participant_label_says_no_such_participant(cohort, capsys):
    bids, out = cohort
    expect_input_error(
        capsys, bids, out, "no such participant", "'sub-nosuch'", "participants.tsv",
        options=("--participant-label", "nosuch"),
    )  # fmt: skip


def test_tables_of_two_template_spaces_are_not_pooled(cohort, capsys):
    bids, out = cohort
    for path in (out / "sub-mwa02").rglob("*space-MNI152NLin2009cAsym*"):
        path.rename(path.with_name(path.name.replace("2009cAsym", "2009aSym")))
    expect_input_error(
        capsys, bids, out, "2 spaces", "MNI152NLin2009aSym", "MNI152NLin2009cAsym", "[inputs]"
    )
    model = out.parent / "model.toml"
    model.write_text('[inputs]\nspace = "MNI152NLin2009cAsym"\n')
    assert run(bids, out, "--model", str(model)) == 0
    exclusions = pd.read_csv(out / "group/default/exclusions.tsv", sep="\t", dtype=str)
    assert set(exclusions["subject"]) == {"mwa02"}  # no table in the chosen space


def test_truncated_table_and_infinite_value_are_exclusions(cohort):
    bids, out = cohort
    truncated = next((out / "sub-mwa01" / "ses-2" / "perf").glob("*space-*_cbf.tsv"))
    lines = truncated.read_text().splitlines()
    truncated.write_text("\n".join(lines[:12]) + "\n")  # 11 of 21 ROIs
    infinite = next((out / "sub-hc02" / "ses-1" / "perf").glob("*space-*_cbf.tsv"))
    text = infinite.read_text().splitlines()
    fields = text[5].split("\t")
    fields[6] = "inf"
    infinite.write_text("\n".join([*text[:5], "\t".join(fields), *text[6:]]) + "\n")
    assert run(bids, out) == 0
    exclusions = pd.read_csv(out / "group/default/exclusions.tsv", sep="\t", dtype=str)
    units = zip(exclusions["subject"], exclusions["session"], strict=True)
    reasons = dict(zip(units, exclusions["reason"], strict=True))
    assert "truncated ROI table (11 of 21 ROIs" in reasons[("mwa01", "2")]
    assert "mean of ROI" in reasons[("hc02", "1")] and "infinite" in reasons[("hc02", "1")]
    values = pd.read_csv(out / "group/default/roi_values.tsv", sep="\t", dtype=str)
    units = set(zip(values["subject"], values["session"], strict=True))
    assert ("mwa01", "2") not in units and ("hc02", "1") not in units
    assert ("mwa01", "1") in units


def test_unknown_phase_names_the_sessions_file_once(cohort, capsys):
    bids, out = cohort
    write_tsv(
        bids / "sub-mwa01" / "sub-mwa01_sessions.tsv",
        ["session_id", "migraine_phase", "hours_since_attack_onset"],
        [["ses-1", "interictal", "n/a"], ["ses-2", "attack", "n/a"]],
    )
    message = expect_input_error(capsys, bids, out, "sub-mwa01_sessions.tsv", "'attack'")
    assert message.count("sessions.tsv") == 1, message
    assert "more files" not in message


def test_seed_zero_is_accepted(cohort, tmp_path):
    bids, out = cohort
    assert run(bids, out, "--seed", "0") == 0
    config = tmp_path / "config.toml"
    config.write_text("[group]\nseed = 0\n")
    assert run(bids, out, "--config-file", str(config)) == 0


def test_time_course_from_timed_sessions_is_modelled_written_and_drawn(tmp_path):
    """ROI tables of a simulated biphasic cohort (aslmig.sim.roitable) through the CLI."""
    from group_builders import ROIS, write_simulated_cohort

    from aslmig.sim.roitable import simulate_roi_values
    from aslmig.sim.spec import CohortSpec, parse_effect

    spec = CohortSpec(
        n_per_group={"HC": 4, "MwA": 40},
        phases=("interictal", "ictal", "postictal"),
        effects=(parse_effect("MwA:occipital_cortex_L=biphasic(-0.20@0-2h,+0.15@6-24h)"),),
        seed=11,
    )
    values = simulate_roi_values(spec, ROIS, measurement_sd=0.05)
    bids, out = write_simulated_cohort(values, tmp_path)
    assert run(bids, out, "--no-voxelwise") == 0
    folder = out / "group" / "default"
    statistics = pd.read_csv(folder / "roi_statistics.tsv", sep="\t", keep_default_na=False)
    course = statistics[(statistics["model"] == "attack_time_course")
                        & (statistics["measure"] == "cbf")
                        & statistics["contrast"].str.startswith("MwA:")]  # fmt: skip
    course = course.set_index(["test", "roi"])
    biphasic = course.loc[("biphasic", "occipital_cortex_L")]
    assert float(biphasic["q"]) < 0.05 and abs(float(biphasic["estimate"]) - 4.29) < 1.5
    others = course.loc["biphasic"].drop(index="occipital_cortex_L")
    assert (pd.to_numeric(others["q"], errors="coerce").fillna(1) >= 0.05).all()
    curves = pd.read_csv(folder / "timecourse.tsv", sep="\t")
    assert {"curve", "session"} == set(curves["kind"])
    assert (folder / "timecourse.json").exists()
    report = (folder / "report.html").read_text()
    assert "Time course across the attack" in report and "attack_time_course: MwA cbf" in report


def test_combat_harmonisation_from_the_model_file(cohort, tmp_path, capsys):
    bids, out = cohort
    model = tmp_path / "combat.toml"
    model.write_text('[inputs]\nharmonize = "combat"\n')
    participants = (bids / "participants.tsv").read_text()
    table = pd.read_csv(bids / "participants.tsv", sep="\t", dtype=str)
    table.drop(columns="site").to_csv(bids / "participants.tsv", sep="\t", index=False)
    expect_input_error(capsys, bids, out, "harmonize", "cannot be harmonised", "site",
                       options=("--model", str(model)))  # fmt: skip
    (bids / "participants.tsv").write_text(participants)
    assert run(bids, out, "--model", str(model)) == 0
    folder = out / "group" / "default"
    estimates = pd.read_csv(folder / "harmonization.tsv", sep="\t")
    assert set(estimates["site"]) == {"s1", "s2", "s3"}
    assert set(estimates["measure"]) == {"cbf", "rcbf"}
    assert 'harmonize = "combat"' in (folder / "model.toml").read_text()
