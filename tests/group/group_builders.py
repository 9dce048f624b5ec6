"""Write small BIDS label files and participant ROI tables for group-level tests.

Independent of the participant pipeline: the ROI tables follow the contract of
``aslmig.atlas.extract.COLUMNS`` (``n/a`` for missing values, ``status`` ``ok``).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from aslmig.atlas.extract import COLUMNS

ROIS = (
    "grey_matter",
    "white_matter",
    "pons",
    "dorsal_rostral_pons_L",
    "dorsal_rostral_pons_R",
    "hypothalamus_L",
    "hypothalamus_R",
    "thalamus_L",
    "thalamus_R",
    "occipital_cortex_L",
    "occipital_cortex_R",
    "calcarine_L",
    "calcarine_R",
    "territory_ACA_L",
    "territory_ACA_R",
    "territory_MCA_L",
    "territory_MCA_R",
    "territory_PCA_L",
    "territory_PCA_R",
    "territory_VB_L",
    "territory_VB_R",
)
SPACE = "MNI152NLin2009cAsym"


def write_tsv(path: Path, header: list[str], rows: list[list]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(header)] + [
        "\t".join("n/a" if v is None else str(v) for v in row) for row in rows
    ]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def roi_table_text(means: dict[str, float], na: tuple[str, ...] = ()) -> str:
    """A participant ROI table with the given ROI means (others 50; ``na`` rows n/a)."""
    values = {roi: float(means.get(roi, 50.0)) for roi in ROIS}
    reference = values["grey_matter"]
    lines = ["\t".join(COLUMNS)]
    for index, roi in enumerate(ROIS, start=1):
        hemisphere = roi[-1] if roi[-2:] in ("_L", "_R") else "n/a"
        if roi in na:
            row = {"n_valid": 0, "coverage": 0.0, "status": "n/a: coverage 0.00 < 0.5"}
            lines.append(_roi_row(roi, index, hemisphere, row))
            continue
        mean = values[roi]
        ai = "n/a"
        if hemisphere != "n/a":
            left, right = values[roi[:-2] + "_L"], values[roi[:-2] + "_R"]
            if roi[:-2] + "_L" not in na and roi[:-2] + "_R" not in na:
                ai = repr(2 * (left - right) / (left + right))
        row = {
            "n_valid": 100,
            "coverage": 1.0,
            "mean": repr(mean),
            "median": repr(mean),
            "sd": 5.0,
            "gm_weighted_mean": repr(mean),
            "n_grey": 100,
            "gm_restricted_mean": repr(mean),
            "relative_to_reference": repr(mean / reference),
            "asymmetry_index": ai,
            "status": "ok",
        }
        lines.append(_roi_row(roi, index, hemisphere, row))
    return "\n".join(lines) + "\n"


def _roi_row(roi: str, index: int, hemisphere: str, values: dict) -> str:
    """One TSV line in :data:`COLUMNS` order (columns not given are n/a)."""
    given = {"roi": roi, "index": index, "hemisphere": hemisphere, "n_voxels": 100, **values}
    return "\t".join(str(given.get(column, "n/a")) for column in COLUMNS)


def write_roi_table(
    out: Path,
    subject: str,
    session: str,
    means: dict[str, float],
    suffix: str = "cbf",
    space: str | None = SPACE,
    atlas: str = "MigraineASL",
    run: str | None = None,
    na: tuple[str, ...] = (),
) -> Path:
    folder = out / f"sub-{subject}" / (f"ses-{session}" if session else "") / "perf"
    parts = [f"sub-{subject}"] + ([f"ses-{session}"] if session else [])
    parts += [f"run-{run}"] if run else []
    parts += [f"space-{space}"] if space else []
    parts += [f"atlas-{atlas}", suffix]
    path = folder / ("_".join(parts) + ".tsv")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(roi_table_text(means, na), encoding="utf-8")
    return path


def build_cohort(
    root: Path,
    n_per_group: int = 4,
    seed: int = 0,
    sessions: bool = True,
    site: bool = False,
) -> tuple[Path, Path]:
    """A small cohort: HC (one interictal session), MwA and MwoA (interictal + ictal).

    Returns ``(bids_dir, output_dir)``; every participant table is written in template space
    and a native-space twin.
    """
    rng = np.random.default_rng(seed)
    bids, out = root / "bids", root / "out"
    bids.mkdir(parents=True)
    (bids / "dataset_description.json").write_text(
        '{"Name": "group test", "BIDSVersion": "1.10.0"}\n', encoding="utf-8"
    )
    participants = []
    header = ["participant_id", "group", "age", "sex", "aura_side_typical"]
    header += ["site"] if site else []
    for group in ("HC", "MwA", "MwoA"):
        for number in range(1, n_per_group + 1):
            subject = f"{group.lower()}{number:02d}"
            side = ("left", "right")[number % 2] if group == "MwA" else "n/a"
            row = [f"sub-{subject}", group, int(rng.integers(20, 60)), "FM"[number % 2], side]
            row += [f"s{number % 3 + 1}"] if site else []
            participants.append(row)
            phases = ["interictal"] if group == "HC" else ["interictal", "ictal"]
            if sessions:
                session_rows = [
                    [f"ses-{index}", phase, 3.5 if phase == "ictal" else "n/a"]
                    for index, phase in enumerate(phases, start=1)
                ]
                write_tsv(
                    bids / f"sub-{subject}" / f"sub-{subject}_sessions.tsv",
                    ["session_id", "migraine_phase", "hours_since_attack_onset"],
                    session_rows,
                )
            labels = [str(index) for index in range(1, len(phases) + 1)] if sessions else [""]
            for label in labels:
                means = {roi: 50.0 + rng.normal(0, 5) for roi in ROIS}
                for space in (SPACE, None):
                    write_roi_table(out, subject, label, means, space=space)
    write_tsv(bids / "participants.tsv", header, participants)
    return bids, out


def write_simulated_cohort(values, root: Path) -> tuple[Path, Path]:
    """Write a cohort of :func:`aslmig.sim.roitable.simulate_roi_values` as group-level input.

    Labels (``participants.tsv`` with the typical aura side, ``sessions.tsv`` with the phase
    and hours since the attack onset) and one template-space ROI table per session (``rcbf``
    and the asymmetry indices derived from the regional means, as the participant level does).
    Returns ``(bids_dir, output_dir)``.
    """
    bids, out = root / "bids", root / "out"
    units = values.drop_duplicates(["subject", "session"])
    people = units.drop_duplicates("subject")
    sides = {"L": "left", "R": "right"}
    write_tsv(bids / "participants.tsv",
              ["participant_id", "group", "age", "sex", "aura_side_typical"],
              [[f"sub-{p.subject}", p.group, int(p.age), p.sex, sides.get(p.aura_side)]
               for p in people.itertuples()])  # fmt: skip
    for subject, rows in units.groupby("subject"):
        write_tsv(bids / f"sub-{subject}" / f"sub-{subject}_sessions.tsv",
                  ["session_id", "migraine_phase", "hours_since_attack_onset"],
                  [[f"ses-{r.session}", r.phase, None if np.isnan(r.hours_since_onset)
                    else r.hours_since_onset] for r in rows.itertuples()])  # fmt: skip
    for (subject, session), rows in values.groupby(["subject", "session"]):
        write_roi_table(out, subject, session, dict(zip(rows["roi"], rows["value"], strict=True)))
    return bids, out


def checksums(folder: Path) -> dict[str, str]:
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }
