"""--dry-run on the six ASL bids-examples (real vendor metadata, arrays of the right shape)."""

from __future__ import annotations

import pytest

from aslmig.cli.run import main

# example: (labeling, delays line, M0 line start, readout, model)
EXPECTED = {
    "asl001": (
        "PCASL, 3 T, background suppression (4 pulses)",
        "PLD 2.025 s",
        "Included: 1 m0scan volume(s)",
        "3D",
        "white-paper single-delay PCASL",
    ),
    "asl002": (
        "PCASL, 3 T, background suppression (2 pulses)",
        "PLD 2 s",
        "Separate: sub-Sub103/perf/sub-Sub103_m0scan.nii.gz",
        "2D (20 slices",
        "white-paper single-delay PCASL",
    ),
    "asl003": (
        "PASL, 3 T, background suppression (2 pulses)",
        "TI 10 values from 0.3 to 3 s",
        "Separate: sub-Sub1/perf/sub-Sub1_m0scan.nii.gz",
        "3D",
        "general kinetic model fit (CBF + ATT) over 10 delays",
    ),
    "asl004": (
        "PCASL, 3 T, background suppression (2 pulses)",
        "PLD 0.25, 0.5, 0.75, 1, 1.25, 1.5 s",
        "Separate: sub-Sub1/perf/sub-Sub1_m0scan.nii.gz",
        "2D (24 slices",
        "general kinetic model fit (CBF + ATT) over 6 delays",
    ),
    "asl005": (
        "PCASL, 3 T, background suppression (4 pulses)",
        "PLD 2 s",
        "Separate: sub-Sub103/perf/sub-Sub103_m0scan.nii.gz",
        "3D",
        "white-paper single-delay PCASL",
    ),
    "2d_mb_pcasl": (
        "PCASL, 3 T, no background suppression",
        "PLD 0.2, 0.7, 1.2, 1.7, 2.2 s",
        "Included: 2 m0scan volume(s)",
        "2D (60 slices",
        "general kinetic model fit (CBF + ATT) over 5 delays",
    ),
}


def plan_lines(out: str) -> dict[str, str]:
    lines = {}
    for line in out.splitlines():
        parts = line.strip().split(None, 1)
        if len(parts) == 2 and parts[0] in ("labeling", "delays", "M0", "readout", "model"):
            lines[parts[0]] = parts[1]
    return lines


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_dry_run_reports_decisions(example, tmp_path, capsys, name):
    root = example(name)
    assert main([str(root), str(tmp_path / "out"), "participant", "--dry-run"]) == 0
    lines = plan_lines(capsys.readouterr().out)
    labeling, delays, m0, readout, model = EXPECTED[name]
    assert lines["labeling"] == labeling
    assert lines["delays"].startswith(delays)
    assert lines["M0"].startswith(m0)
    assert lines["readout"].startswith(readout)
    assert lines["model"] == model


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_constants_shown_with_sources(example, tmp_path, capsys, name):
    root = example(name)
    assert main([str(root), str(tmp_path / "out"), "participant", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "t1_blood = 1.65 s (Alsop 2015" in out
    assert "partition_coefficient = 0.9 mL/g (Alsop 2015)" in out
    if name == "asl004":  # the sidecar gives LabelingEfficiency 0.88
        assert "labeling_efficiency = 0.88 (sidecar: LabelingEfficiency)" in out
    if name == "asl005":  # 4 background-suppression pulses: 0.85 * 0.95**4
        assert f"labeling_efficiency = {0.85 * 0.95**4:g} (default 0.85 for PCASL" in out


def test_override_is_shown(example, tmp_path, capsys):
    root = example("asl005")
    args = [str(root), str(tmp_path / "o"), "participant", "--dry-run", "--t1-blood", "1.7"]
    assert main(args) == 0
    assert "t1_blood = 1.7 s (override (configuration))" in capsys.readouterr().out


def test_field_strength_without_defaults_needs_override(example, tmp_path, capsys):
    import json

    root = example("asl005")
    sidecar = root / "sub-Sub103/perf/sub-Sub103_asl.json"
    content = json.loads(sidecar.read_text())
    content["MagneticFieldStrength"] = 7
    sidecar.write_text(json.dumps(content))
    assert main([str(root), str(tmp_path / "o"), "participant", "--dry-run"]) == 2
    err = capsys.readouterr().err
    assert "sub-Sub103/perf/sub-Sub103_asl.json" in err and "t1_blood" in err
    args = [
        str(root),
        str(tmp_path / "o"),
        "participant",
        "--dry-run",
        "--t1-blood",
        "2.1",
        "--t1-tissue",
        "1.9",
    ]
    assert main(args) == 0
