"""Reading participant ROI tables: names, spaces, runs, measures and bad tables."""

from __future__ import annotations

import numpy as np
import pytest
from group_builders import SPACE, write_roi_table

from aslmig.errors import InputError
from aslmig.group.collect import (
    find_roi_tables,
    orient_asymmetry,
    parse_table_name,
    read_roi_table,
    read_roi_values,
)


def test_table_names_are_parsed_and_others_ignored():
    table = parse_table_name(
        f"sub-01/ses-2/perf/sub-01_ses-2_acq-pc_run-3_space-{SPACE}_atlas-MigraineASL_att.tsv",
        "MigraineASL",
    )
    assert (table.subject, table.session, table.run, table.space, table.suffix) == (
        "01",
        "2",
        "acq-pc_run-3",
        SPACE,
        "att",
    )
    for name in (
        "sub-01/perf/sub-01_space-X_atlas-MigraineASL_desc-qc_cbf.tsv",
        "sub-01/perf/sub-01_space-X_atlas-Other_cbf.tsv",
        "sub-01/perf/sub-01_space-X_atlas-MigraineASL_cbf.json",
        "sub-01/perf/sub-01_space-X_atlas-MigraineASL_mask.tsv",
    ):
        assert parse_table_name(name, "MigraineASL") is None


def test_template_space_is_chosen_and_runs_are_averaged(tmp_path):
    write_roi_table(tmp_path, "01", "1", {"pons": 40.0}, run="1")
    write_roi_table(tmp_path, "01", "1", {"pons": 50.0}, run="2")
    write_roi_table(tmp_path, "01", "1", {"pons": 99.0}, space=None, run="1")
    write_roi_table(tmp_path, "01", "1", {"pons": 1.2}, suffix="att", run="1")
    tables = find_roi_tables(tmp_path, "MigraineASL")
    assert len(tables) == 3 and all(table.space == SPACE for table in tables)
    native = find_roi_tables(tmp_path, "MigraineASL", "native")
    assert [table.space for table in native] == [""]
    collected = read_roi_values(tmp_path, tables)
    values = collected.values
    assert len(collected.checksums) == 3 and collected.damaged.empty
    pons = values[values["roi"] == "pons"].set_index("measure")
    assert pons.loc["cbf", "value"] == pytest.approx(45.0)
    assert pons.loc["cbf", "n_runs"] == 2
    assert pons.loc["att", "value"] == pytest.approx(1.2) and pons.loc["att", "n_runs"] == 1
    ai = values[(values["measure"] == "ai")]
    assert "pons" not in set(ai["roi"]) and "occipital_cortex" in set(ai["roi"])


def test_not_ok_rows_are_missing_values(tmp_path):
    path = write_roi_table(tmp_path, "01", "", {}, na=("hypothalamus_L",))
    table = read_roi_table(path).set_index("roi")
    assert np.isnan(table.loc["hypothalamus_L", "mean"])
    assert np.isnan(table.loc["hypothalamus_R", "asymmetry_index"])
    assert table.loc["pons", "mean"] == 50.0


def test_bad_tables_name_the_file(tmp_path):
    path = write_roi_table(tmp_path, "01", "", {})
    path.write_text(path.read_text().replace("\t50.0\t", "\tfifty\t", 1))
    with pytest.raises(InputError, match="sub-01_space.*mean.*'fifty'"):
        read_roi_table(path)
    path.write_text(path.read_text().replace("\tasymmetry_index", "\tai"))
    with pytest.raises(InputError, match="no column 'asymmetry_index'"):
        read_roi_table(path)
    path.unlink()
    other = write_roi_table(tmp_path, "02", "", {})
    lines = other.read_text().splitlines()
    other.write_text("\n".join(lines[:3] + [lines[3] + "\textra"] + lines[4:]) + "\n")
    with pytest.raises(InputError, match="sub-02.*fields"):
        read_roi_values(tmp_path, find_roi_tables(tmp_path, "MigraineASL"))


def test_two_template_spaces_for_one_run_is_an_error(tmp_path):
    write_roi_table(tmp_path, "01", "", {})
    write_roi_table(tmp_path, "01", "", {}, space="MNI152NLin6Asym")
    with pytest.raises(InputError, match="two ROI tables"):
        find_roi_tables(tmp_path, "MigraineASL")
    assert len(find_roi_tables(tmp_path, "MigraineASL", "MNI152NLin6Asym")) == 1


def test_orientation_flips_left_aura_units_only():
    import pandas as pd

    values = pd.DataFrame(
        {
            "measure": ["ai", "ai", "ai", "cbf"],
            "value": [0.1, 0.1, 0.1, 50.0],
            "aura_side": ["L", "R", "", "R"],
        }
    )
    oriented = orient_asymmetry(values)
    assert oriented["value"].tolist() == [-0.1, 0.1, 0.1, 50.0]  # aura L: right hemisphere
    assert oriented["orientation"].tolist() == [
        "affected=R (aura L)",
        "affected=L (aura R)",
        "none (L-R)",
        "n/a",
    ]
    assert len(orient_asymmetry(values, "exclude")) == 3
