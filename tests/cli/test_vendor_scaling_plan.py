"""Vendor scaling in the dry run (issue 13 item 4): a Philips-like and a GE-like dataset
built from the bids-examples sidecars, and the one-line refusal of a missing field."""

from __future__ import annotations

import json
from pathlib import Path

from builders import tree_digest

from aslmig.atlas.templates import resolve_template
from aslmig.cli.parser import build_parser
from aslmig.cli.run import collect, config_from_args, main
from aslmig.workflows.parameters import methods_parameters

PHILIPS_DISPLAY = {"UsePhilipsFloatNotDisplayScaling": 0, "PhilipsRescaleIntercept": 0}


def _edit(path: Path, **fields) -> None:
    sidecar = json.loads(path.read_text())
    sidecar.update(fields)
    for name in [name for name, value in fields.items() if value is None]:
        del sidecar[name]
    path.write_text(json.dumps(sidecar))


def _philips(example) -> tuple[Path, Path, Path]:
    """asl002 (Philips 2D EPI) as dcm2niix -p n writes it: display values and their slopes."""
    root = example("asl002")
    perf = root / "sub-Sub103" / "perf"
    asl, m0 = perf / "sub-Sub103_asl.json", perf / "sub-Sub103_m0scan.json"
    _edit(asl, **PHILIPS_DISPLAY, PhilipsRescaleSlope=2.5, PhilipsScaleSlope=0.004)
    _edit(m0, **PHILIPS_DISPLAY, PhilipsRescaleSlope=1.6, PhilipsScaleSlope=0.0025)
    return root, asl, m0


def _dry_run(root: Path, tmp_path: Path) -> int:
    return main([str(root), str(tmp_path / "out"), "participant", "--dry-run"])


def test_philips_display_values_are_planned_per_image(example, tmp_path, capsys):
    root, _, _ = _philips(example)
    assert _dry_run(root, tmp_path) == 0
    out = capsys.readouterr().out
    assert "scaling      ASL series: Philips display values to floating point" in out
    assert "RS 2.5, SS 0.004" in out
    assert (
        "separate M0 scan: Philips display values to floating point: FP = DV / (RS*SS), RS 1.6"
        in out
    )


def test_ge_deltam_scaling_is_planned_and_siemens_has_none(example, tmp_path, capsys):
    assert _dry_run(example("asl001"), tmp_path) == 0
    out = capsys.readouterr().out
    assert "scaling      ASL series: GE deltam = sum over NEX pairs x 32 (release 24): " in out
    assert "divided by 32 x 3 (TotalAcquiredPairs)" in out
    assert _dry_run(example("asl005"), tmp_path) == 0
    assert "    scaling " not in capsys.readouterr().out


def test_missing_philips_slope_is_refused_before_anything_is_written(example, tmp_path, capsys):
    root, _, m0 = _philips(example)
    _edit(m0, PhilipsScaleSlope=None)
    before = tree_digest(root)
    assert _dry_run(root, tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.startswith("aslmig: error: sub-Sub103/perf/sub-Sub103_m0scan.json: ")
    assert "PhilipsScaleSlope is missing" in err and "dcm2niix -p y" in err
    assert tree_digest(root) == before
    assert not (tmp_path / "out").exists()


def test_missing_ge_release_is_refused(example, tmp_path, capsys):
    root = example("asl001")
    _edit(root / "sub-Sub103" / "perf" / "sub-Sub103_asl.json", SoftwareVersions=None)
    assert _dry_run(root, tmp_path) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "sub-Sub103_asl.json: SoftwareVersions is missing; GE deltam volumes" in err


def test_methods_paragraph_states_the_rescaling(example, tmp_path):
    root, _, _ = _philips(example)
    arguments = [str(root), str(tmp_path / "out"), "participant"]
    config = config_from_args(build_parser().parse_args(arguments))
    (run,) = collect(config)
    parameters = methods_parameters(run, config, resolve_template(), has_anat=True)
    assert parameters.m0_description.startswith("M0 was the separate M0 scan")
    assert "Stored values were rescaled by the vendor convention (ASL series: Philips" in (
        parameters.m0_description
    )
    assert "separate M0 scan: Philips display values" in parameters.m0_description
    siemens = example("asl005")
    arguments = [str(siemens), str(tmp_path / "o"), "participant"]
    config = config_from_args(build_parser().parse_args(arguments))
    (run,) = collect(config)
    methods = methods_parameters(run, config, resolve_template(), has_anat=True)
    assert "rescaled" not in methods.m0_description
