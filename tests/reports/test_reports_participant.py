from __future__ import annotations

import re
from html.parser import HTMLParser
from pathlib import Path

import jinja2
import numpy as np
import pandas as pd
import pytest

from aslmig.reports.boilerplate import MethodsParameters, methods_text
from aslmig.reports.mosaics import edge_overlay, mosaic
from aslmig.reports.participant import (
    RunReport,
    build_participant_html,
    render_participant_report,
)
from aslmig.reports.svg import check_svg, colorbar, line_plot_svg
from aslmig.reports.templating import render

HOSTILE = "<script>alert(1)</script>"
ATTR = '"onload=alert(2) x="'
EXTERNAL = re.compile(r"""(?:src|href)\s*=\s*["']?\s*(?:[a-z][a-z0-9+.-]*:|//)""", re.IGNORECASE)


class _Collector(HTMLParser):
    """Collect tags, attributes and visible text of a document."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def _parse(document: str) -> _Collector:
    collector = _Collector()
    collector.feed(document)
    return collector


def _volume() -> np.ndarray:
    grid = np.indices((24, 28, 12)).astype(float)
    centre = np.array([11.5, 13.5, 5.5])[:, None, None, None]
    radius = np.sqrt((((grid - centre) / np.array([10, 12, 5])[:, None, None, None]) ** 2).sum(0))
    return np.where(radius < 1, 60 - 40 * (radius < 0.7), 0.0)


def _run(name: str = "run-1", **changes) -> RunReport:
    cbf = _volume()
    fields = {
        "name": name,
        "cbf_mosaic": mosaic(cbf, vmin=0, vmax=80, zoom=2),
        "cbf_colorbar": colorbar(0, 80, "perfusion", "CBF (mL/100 g/min)"),
        "att_mosaic": mosaic(cbf / 40, vmin=0, vmax=2, cmap="heat", zoom=2),
        "att_colorbar": colorbar(0, 2, "heat", "ATT (s)"),
        "registration": {"ASL mask edges on T1w": edge_overlay(cbf, cbf > 0, zoom=2)},
        "motion_svgs": (line_plot_svg({"FD": np.linspace(0, 1, 10)}, "volume", "mm", 0.5),),
        "qc": {"mean GM CBF": (55.123456, "mL/100 g/min"), "QEI": 0.81, "negative GM": None},
        "rois": pd.DataFrame({"roi": ["pons_L", "pons_R"], "mean_cbf": [41.2, 40.8]}),
        "methods": "CBF was quantified [1].",
        "references": ("Alsop DC et al. 2015",),
        "warnings": ("M0 TR correction applied",),
    }
    fields.update(changes)
    return RunReport(**fields)


def _hostile_run() -> RunReport:
    return _run(
        name=f"run-{HOSTILE}{ATTR}",
        registration={f"caption {HOSTILE}{ATTR}": edge_overlay(_volume(), _volume() > 0)},
        qc={f"metric {HOSTILE}": (f"value {HOSTILE}", f"unit {ATTR}"), ATTR: 1.5},
        rois=[{f"col {HOSTILE}": f"cell {HOSTILE}", "other": ATTR}, {"late": 3}],
        methods=f"methods {HOSTILE}{ATTR} [1]",
        references=(f"ref {HOSTILE}",),
        warnings=(f"warning {HOSTILE}", ATTR),
        orientation_note=f"note {HOSTILE}",
    )


def test_hostile_strings_are_escaped_everywhere():
    document = build_participant_html(f"sub-{HOSTILE}{ATTR}", [_hostile_run()])
    assert HOSTILE not in document
    assert ATTR not in document and '"onload=' not in document
    parsed = _parse(document)
    assert not [tag for tag, _ in parsed.tags if tag == "script"]
    assert not [
        (tag, name) for tag, attrs in parsed.tags for name in attrs if name.startswith("on")
    ]
    visible = "".join(parsed.text)
    for expected in [
        f"sub-{HOSTILE}{ATTR}",
        f"run-{HOSTILE}{ATTR}",
        f"warning {HOSTILE}",
        f"metric {HOSTILE}",
        f"value {HOSTILE}",
        f"unit {ATTR}",
        f"col {HOSTILE}",
        f"cell {HOSTILE}",
        f"methods {HOSTILE}",
        f"ref {HOSTILE}",
        f"caption {HOSTILE}",
        f"note {HOSTILE}",
    ]:
        assert expected in visible, expected
    alts = [attrs.get("alt") for tag, attrs in parsed.tags if tag == "img"]
    assert f"caption {HOSTILE}{ATTR}" in alts


def test_report_is_self_contained(tmp_path):
    out = render_participant_report(
        "sub-01", [_run(), _run("run-2")], tmp_path / "a" / "sub-01.html"
    )
    assert out == tmp_path / "a" / "sub-01.html" and out.is_file()
    assert not list(out.parent.glob("*.part"))
    document = out.read_text(encoding="utf-8")
    assert not EXTERNAL.search(document.replace('src="data:image/png;base64,', 'src="'))
    parsed = _parse(document)
    for tag, attrs in parsed.tags:
        for name in ("src", "href"):
            value = attrs.get(name)
            if value is not None:
                assert value.startswith("data:image/png;base64,") or value.startswith("#"), value
        assert tag not in ("script", "link", "iframe", "object", "embed")
    assert "Content-Security-Policy" in document and "default-src 'none'" in document
    assert "@import" not in document and "url(" not in document


def test_external_reference_pattern_catches_what_it_should():
    for bad in [
        '<img src="https://x/y.png">',
        "<a href='http://x'>",
        "<img src=//cdn/x.js>",
        '<a href="javascript:alert(1)">',
    ]:
        assert EXTERNAL.search(bad), bad
    assert not EXTERNAL.search('<a href="#run-1">')


def test_sections_images_and_tables(html_images):
    run = _run()
    document = build_participant_html("sub-01", [run])
    headings = re.findall(r"<h[23][^>]*>(.*?)</h[23]>", document)
    for heading in [
        "Summary",
        "run-1",
        "Warnings",
        "CBF",
        "Arterial transit time",
        "Registration",
        "Head motion",
        "Quality control",
        "Regional CBF",
        "Methods",
    ]:
        assert heading in headings, heading
    images = html_images(document)
    assert len(images) == 3
    assert np.array_equal(images[0], run.cbf_mosaic)
    assert np.array_equal(images[1], run.att_mosaic)
    assert np.array_equal(images[2], run.registration["ASL mask edges on T1w"])
    assert document.count("<svg") == 3  # two colour bars and one motion plot
    assert "55.12" in document and "mL/100 g/min" in document and "n/a" in document
    assert "pons_L" in document and "41.2" in document
    assert "M0 TR correction applied" in document
    assert 'href="#run-0"' in document and 'id="run-0"' in document


def test_optional_parts_may_be_absent():
    run = _run(
        att_mosaic=None,
        att_colorbar=None,
        registration={},
        motion_svgs=(),
        qc={},
        rois=None,
        methods="",
        references=(),
        warnings=(),
    )
    document = build_participant_html("sub-01", [run])
    assert "Arterial transit time" not in document and "Registration" not in document
    assert "Head motion" not in document and "Regional CBF" not in document
    assert "No warnings." in document and "No quality-control metrics." in document
    assert "No ASL runs" in build_participant_html("sub-02", [])


def test_identical_methods_are_shown_once_and_different_ones_per_run():
    text, refs = methods_text(MethodsParameters("PCASL", plds=1.8))
    same = build_participant_html(
        "sub-01",
        [_run("a", methods=text, references=refs), _run("b", methods=text, references=refs)],
    )
    assert same.count("post-labeling delay was 1.8 s") == 1 and 'id="methods"' in same
    other, other_refs = methods_text(MethodsParameters("PCASL", plds=2.0))
    differ = build_participant_html(
        "sub-01",
        [_run("a", methods=text, references=refs), _run("b", methods=other, references=other_refs)],
    )
    assert "1.8 s" in differ and "2 s" in differ and 'id="methods"' not in differ


@pytest.mark.parametrize(
    "svg",
    [
        "<svg><script>alert(1)</script></svg>",
        '<svg onload="alert(1)"></svg>',
        "<svg><foreignObject><div/></foreignObject></svg>",
        '<svg xmlns:xlink="http://www.w3.org/1999/xlink"><a xlink:href="http://x"/></svg>',
        '<svg><rect style="fill:url(http://x)"/></svg>',
        "<div>not svg</div>",
        "<svg><unclosed></svg>",
    ],
)
def test_unsafe_svg_is_refused(svg):
    with pytest.raises(ValueError):
        check_svg(svg)
    with pytest.raises(ValueError):
        _run(cbf_colorbar=svg)


def test_run_report_checks_its_fields():
    with pytest.raises(ValueError, match="cbf_mosaic"):
        _run(cbf_mosaic=np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match="registration"):
        _run(registration={"x": np.zeros((4, 4), dtype=np.uint8)})
    with pytest.raises(TypeError, match="warnings"):
        _run(warnings="one warning")
    run = _run(warnings=["a", "b"])
    assert run.warnings == ("a", "b")
    with pytest.raises(TypeError):
        run.qc["new"] = 1  # read-only view


def test_render_accepts_a_string_path(tmp_path):
    out = render_participant_report("sub-01", [_run()], str(tmp_path / "sub-01.html"))
    assert isinstance(out, Path) and out.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_a_failed_write_leaves_nothing_behind(tmp_path, monkeypatch):
    def half_write(self, text, encoding=None):
        self.write_bytes(text[:100].encode())
        raise OSError("disk full")

    monkeypatch.setattr(Path, "write_text", half_write)
    with pytest.raises(OSError, match="disk full"):
        render_participant_report("sub-01", [_run()], tmp_path / "sub-01.html")
    assert list(tmp_path.iterdir()) == []


def test_control_characters_are_shown_as_codes():
    document = build_participant_html("sub-01", [_run(warnings=("red \x1b[31m text",))])
    assert "\x1b" not in document and "red \\x1b[31m text" in document


def test_templates_refuse_undefined_names():
    with pytest.raises(jinja2.UndefinedError):
        render("participant.html", title="t", heading="h", subtitle="s")
