"""The README's first command: `aslmig demo` processes the built-in example end to end."""

from __future__ import annotations

import re

import nibabel as nb
import numpy as np
import pytest

from aslmig.atlas.templates import resolve_template
from aslmig.cli.run import main

pytestmark = pytest.mark.slow


def left_occipital(grid: nb.Nifti1Image, left: bool) -> np.ndarray:
    """Template voxels of the phantom's occipital change (x < 0, y < -70 mm) or its mirror."""
    ijk = np.indices(grid.shape[:3]).reshape(3, -1)
    xyz = (grid.affine[:3, :3] @ ijk + grid.affine[:3, 3:4]).reshape(3, *grid.shape[:3])
    side = xyz[0] < 0 if left else xyz[0] > 0
    return side & (xyz[1] < -70)


def test_demo_runs_and_shows_the_ictal_change(tmp_path, capsys):
    assert main(["demo", str(tmp_path / "demo")]) == 0
    out = capsys.readouterr().out
    reports = re.findall(r"Participant report: (\S+)", out)
    assert [path.rsplit("/", 1)[1] for path in reports] == ["sub-hc01.html", "sub-mwa01.html"]
    html = (tmp_path / "demo" / "derivatives" / "sub-mwa01.html").read_text()
    assert "sub-mwa01_ses-2" in html and "https://" not in html.split("References")[0]

    template = resolve_template()
    grid = nb.load(template.t1w)
    grey = np.asanyarray(nb.load(template.gm).dataobj) > 0.7
    perf = tmp_path / "demo" / "derivatives" / "sub-mwa01"

    def regional(session: str, left: bool) -> float:
        cbf = nb.load(
            perf
            / f"ses-{session}"
            / "perf"
            / f"sub-mwa01_ses-{session}_space-{template.space}_cbf.nii.gz"
        ).get_fdata()
        return float(cbf[grey & left_occipital(grid, left)].mean())

    # truth: -15 % in left occipital grey matter in the ictal session, no change on the right
    left_change = regional("2", True) / regional("1", True) - 1
    right_change = regional("2", False) / regional("1", False) - 1
    assert left_change == pytest.approx(-0.15, abs=0.05)
    assert right_change == pytest.approx(0.0, abs=0.04)
