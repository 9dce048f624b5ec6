"""Tests of the group report (aslmig.reports.group) and its SVG plots."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import numpy as np
import pandas as pd
import pytest

from aslmig.bids.derivatives import ROI_STATISTICS_COLUMNS, ROI_VALUES_COLUMNS
from aslmig.reports.group import (
    MapFigure,
    build_group_html,
    write_group_report,
)
from aslmig.reports.svg import (
    ForestRow,
    box_strip_svg,
    check_svg,
    colorbar,
    escape_text,
    forest_svg,
    jitter,
    paired_lines_svg,
)

HOSTILE = "<script>alert(1)</script>\x1b[31mred"
VOID = {"meta", "img", "br", "hr", "link", "input", "col", "area", "base", "source", "wbr"}
SVG_SELF_CLOSING = {"line", "rect", "circle", "polyline", "path"}


def make_statistics(rois):
    rows = []
    for number, roi in enumerate(rois):
        for contrast in ("MwA vs HC", "ictal vs interictal"):
            g = 0.2 * number - 0.3
            rows.append(
                {
                    "model": "ancova" if contrast.endswith("HC") else "paired",
                    "contrast": contrast,
                    "measure": "cbf",
                    "roi": roi,
                    "family": "cbf",
                    "formula": "value ~ group + age + sex",
                    "group_a": "MwA",
                    "group_b": "HC",
                    "n_a": 10,
                    "n_b": 12,
                    "mean_a": 50.0 + number,
                    "sd_a": 8.0,
                    "mean_b": 48.0,
                    "sd_b": 7.5,
                    "estimate": 2.0 + number,
                    "ci_low": -1.0 + number,
                    "ci_high": 5.0 + number,
                    "hedges_g": g,
                    "g_ci_low": g - 0.8,
                    "g_ci_high": g + 0.8,
                    "statistic_name": "t",
                    "statistic": 1.5 + number,
                    "df": 18.0,
                    "p": 0.0004 if number == 0 else 0.3,
                    "q": 0.002 if number == 0 else np.nan,
                }
            )
    return pd.DataFrame(rows, columns=list(ROI_STATISTICS_COLUMNS))


def make_values(rois, subjects=("sub-01", "sub-02", "sub-03", "sub-04")):
    rng = np.random.default_rng(0)
    rows = []
    for subject_number, subject in enumerate(subjects):
        group = "HC" if subject_number % 2 else "MwA"
        phases = ("n/a",) if group == "HC" else ("interictal", "ictal")
        for session, phase in enumerate(phases, start=1):
            for roi in rois:
                rows.append(
                    {
                        "subject": subject,
                        "session": f"ses-{session}",
                        "group": group,
                        "phase": None if phase == "n/a" else phase,
                        "roi": roi,
                        "measure": "cbf",
                        "value": float(rng.normal(50, 8)),
                        "extra": "ignored",
                    }
                )
    return pd.DataFrame(rows, columns=[*ROI_VALUES_COLUMNS, "extra"])


class Checker(HTMLParser):
    """Checks nesting of the HTML (void elements and self-closed SVG elements aside)."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tags, self.text = [], [], [], []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}>, open: {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def parse(document):
    checker = Checker()
    checker.feed(document)
    checker.close()
    return checker


def page(rois=("frontal", "parietal"), **kwargs):
    arguments = {
        "title": "Group report",
        "statistics": make_statistics(rois),
        "values": make_values(rois),
        "methods": "Smith & Nichols (2009), https://doi.org/10.1016/j.neuroimage.2008.03.061\n\n"
        "Second paragraph.",
    }
    arguments.update(kwargs)
    return build_group_html(**arguments)


def test_page_is_well_formed_and_self_contained():
    mosaic = np.zeros((20, 30, 3), dtype=np.uint8)
    maps = [MapFigure("t map", mosaic, "axial", colorbar(-4, 4, "diverging", "t"))]
    document = page(maps=maps)
    checker = parse(document)
    assert not checker.errors, checker.errors[:5]
    assert not checker.stack
    assert 'http-equiv="Content-Security-Policy"' in document
    for tag, attrs in checker.tags:
        for name in ("src", "href"):
            value = attrs.get(name) or ""
            assert not re.match(r"\s*(https?:|//|javascript:)", value, re.I), (tag, attrs)
        if tag == "img":
            assert attrs["src"].startswith("data:image/png;base64,")
        assert tag not in ("script", "link", "iframe", "object", "embed")
    # http only in the xmlns declarations of inline SVG and in the methods citation
    stripped = document.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert len(re.findall(r"https?:", stripped)) == 1
    assert "https://doi.org" in "".join(checker.text)
    assert "<p>Second paragraph.</p>" in document


def test_hostile_strings_are_escaped():
    rois = (HOSTILE, "parietal")
    values = make_values(rois, subjects=("sub-01", HOSTILE, "sub-03", "sub-04"))
    document = page(rois=rois, values=values, title=HOSTILE, methods=HOSTILE)
    assert "<script>" not in document
    assert "\x1b" not in document
    assert "&lt;script&gt;alert(1)&lt;/script&gt;\\x1b[31mred" in document
    checker = parse(document)
    assert not checker.errors
    assert all(tag != "script" for tag, _ in checker.tags)
    # every inline SVG is well-formed XML
    for svg in re.findall(r"<svg.*?</svg>", document, flags=re.S):
        check_svg(svg)


def test_one_box_plot_per_roi_and_one_forest_row_per_statistic():
    rois = ("frontal", "parietal", "occipital")
    statistics = make_statistics(rois)
    document = page(rois=rois, statistics=statistics)
    assert document.count('class="aslmig-boxplot"') == len(rois)
    assert document.count('class="forest-row"') == len(statistics)
    assert document.count("<tr") - 1 == len(statistics)  # plus the header row
    assert document.count('<tr class="sig">') == 2  # q = 0.002 for the first ROI only
    # paired lines: the MwA subjects have interictal and ictal sessions
    assert document.count('class="aslmig-paired"') == len(rois)


def test_results_and_forest_plots_are_grouped_by_correction_family():
    rois = ("frontal", "parietal")
    statistics = make_statistics(rois)
    statistics.loc[statistics["model"] == "paired", "family"] = HOSTILE
    statistics.loc[statistics["model"] == "paired", "q"] = 0.5
    document = page(rois=rois, statistics=statistics)
    assert not parse(document).errors
    blocks = re.findall(r"<details( open)?><summary>(.*?)</summary>", document)
    # per family: a results table and a forest plot; only "cbf" holds q < 0.05
    assert blocks.count((" open", "cbf: 2 result(s), 1 with q &lt; 0.05")) == 2
    hostile = [summary for opened, summary in blocks if not opened]
    assert len(hostile) == 2 and all("&lt;script&gt;" in summary for summary in hostile)
    assert document.count("<tr") - 2 == len(statistics)  # a header row per family
    assert document.count('class="forest-row"') == len(statistics)


def test_deterministic_bytes(tmp_path):
    first, second = tmp_path / "a" / "group.html", tmp_path / "b" / "group.html"
    kwargs = {
        "title": "Group",
        "statistics": make_statistics(("frontal",)),
        "values": make_values(("frontal",)),
        "methods": "Methods.",
        "maps": [MapFigure("z", np.full((5, 5, 3), 9, dtype=np.uint8))],
    }
    write_group_report(first, **kwargs)
    write_group_report(second, **kwargs)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes().startswith(b"<!DOCTYPE html>")


def test_missing_columns_and_bad_figures_are_refused():
    with pytest.raises(ValueError, match="statistics"):
        page(statistics=make_statistics(("a",)).drop(columns="q"))
    with pytest.raises(ValueError, match="values"):
        page(values=make_values(("a",)).drop(columns="phase"))
    with pytest.raises(ValueError):
        MapFigure("x", np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError):
        MapFigure("x", np.zeros((4, 4, 3), dtype=np.uint8), colorbar="<svg><script/></svg>")


def test_empty_tables():
    document = page(
        statistics=make_statistics(()),
        values=pd.DataFrame(columns=list(ROI_VALUES_COLUMNS)),
    )
    assert not parse(document).errors
    assert "No statistics." in document


def test_svg_plots_are_safe_and_deterministic():
    svg = box_strip_svg({"A": [("s1", 1.0), ("s2", 2.0), ("s3", np.nan)], HOSTILE: []})
    assert check_svg(svg) and "\x1b" not in svg
    assert box_strip_svg({"A": [("s1", 1.0)]}) == box_strip_svg({"A": [("s1", 1.0)]})
    root = ET.fromstring(paired_lines_svg({"s1": (1.0, 2.0), "s2": (3.0, np.nan)}))
    assert root.get("class") == "aslmig-paired"
    forest = forest_svg([ForestRow("a", 0.5, 0.1, 0.9, True), ForestRow("b", np.nan, 0, 1)])
    assert check_svg(forest).count('class="forest-row"') == 2 and "n/a" in forest
    offsets = jitter(100)
    assert np.all((offsets >= -0.5) & (offsets < 0.5)) and np.unique(offsets).size == 100
    assert escape_text("\x1b[0m<b>") == "\\x1b[0m&lt;b&gt;"


def test_territory_crossing_table_per_patient_session_cluster():
    """One row per cluster (and one for a session without any), shares in percent, the crossing
    cluster highlighted, the method note shown; no section without a table."""
    from aslmig.group.territories import CLUSTER_COLUMNS

    rows = [
        ["sub-mwa01_ses-2", 1, "hypo", 312, 2.496, -5.123, -30.0, -88.0, 4.0,
         "territory_PCA_L;territory_MCA_L", "yes",
         "territory_PCA_L=0.562;territory_MCA_L=0.400;outside=0.038"],
        ["sub-mwa01_ses-2", 2, "hyper", 150, 1.2, 4.5, 20.0, 10.0, 30.0,
         "territory_MCA_R", "no", "territory_MCA_R=1.000"],
        ["sub-<b>_ses-1", 0, "n/a", 0, 0.0, "", "", "", "", "", "n/a", ""],
    ]  # fmt: skip
    table = pd.DataFrame(rows, columns=list(CLUSTER_COLUMNS))
    document = page(crossing=table, crossing_note="Rotation-calibrated extent, 5 %.")
    checker = parse(document)
    assert not checker.errors, checker.errors[:5]
    section = document[document.index('id="territories"') :]
    section = section[: section.index("</section>")]
    cells = re.findall(r"<tr( class=\"sig\")?><td>(.*?)</td></tr>", section)
    assert [(bool(sig), body.split("</td><td>")) for sig, body in cells] == [
        (True, ["sub-mwa01_ses-2", "1", "hypo", "2.50", "-5.12", "(-30, -88, 4)",
                "PCA_L 56%, MCA_L 40%, outside 4%", "yes"]),
        (False, ["sub-mwa01_ses-2", "2", "hyper", "1.20", "4.50", "(20, 10, 30)",
                 "MCA_R 100%", "no"]),
        (False, ["sub-&lt;b&gt;_ses-1", "none", "", "", "", "", "", "n/a"]),
    ]  # fmt: skip
    assert "Rotation-calibrated extent, 5 %." in section
    assert 'id="territories"' not in page()
