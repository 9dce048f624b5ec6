"""Voxelwise group maps: permutation contrasts and single-patient z maps, with figures.

Reads the participants' template-space CBF maps already in OUTPUT_DIR (runs of a session
averaged), runs the default voxelwise contrasts of :mod:`aslmig.group.voxelwise` and writes
them, with one z map and one hemispheric-asymmetry map per patient session, into
``OUTPUT_DIR/group/<label>/``. Nothing is recomputed at the participant level.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd

from aslmig.bids.derivatives import atomic_write, unit_name, write_json
from aslmig.errors import InputError
from aslmig.group.asymmetry import asymmetry_map, mirror_index
from aslmig.group.patient_maps import patient_zmap
from aslmig.group.territories import (
    ExtentCalibration,
    SessionCrossing,
    calibrated_settings,
    crossing_table,
    find_clusters,
)
from aslmig.group.voxelwise import permutation_test, write_voxelwise
from aslmig.reports.group import MapFigure
from aslmig.reports.mosaics import canonical_volume
from aslmig.reports.overlays import territory_overlay
from aslmig.reports.svg import colorbar

CONTROL_GROUP = "HC"
PATIENT_GROUPS = ("MwA", "MwoA")
BASELINE_PHASE = "interictal"
ATTACK_PHASE = "ictal"
Z_LIMIT = 4.0
# The bundled 2 mm grid puts x = 0 a quarter voxel (0.5 mm) off a voxel boundary.
MIDLINE_TOLERANCE_VOXELS = 0.25
_CBF_MAP = re.compile(
    r"^(sub-[A-Za-z0-9]+)(?:_(ses-[A-Za-z0-9]+))?_.*space-([A-Za-z0-9]+)_cbf\.nii\.gz$"
)


@dataclass(frozen=True)
class MapSettings:
    """How the voxelwise stage runs."""

    permutations: int = 1000
    seed: int = 1
    tfce: bool = False
    cluster_threshold: float = 3.1


@dataclass(frozen=True)
class UnitMaps:
    """Template-space CBF maps of the labelled units (subject, session), on one grid."""

    units: pd.DataFrame  # subject, session, group, phase, age, sex, files
    data: np.ndarray  # (n_units, X, Y, Z)
    affine: np.ndarray
    space: str


def find_cbf_maps(output_dir: Path) -> pd.DataFrame:
    """List the template-space CBF maps of OUTPUT_DIR: subject, session, space, file."""
    rows = []
    for path in sorted(Path(output_dir).glob("sub-*/**/perf/*_cbf.nii.gz")):
        match = _CBF_MAP.match(path.name)
        if match and "_desc-" not in path.name:
            subject, session, space = match.groups()
            rows.append({
                "subject": subject.removeprefix("sub-"),
                "session": session.removeprefix("ses-") if session else "n/a",
                "space": space,
                "file": path,
            })  # fmt: skip
    return pd.DataFrame(rows, columns=["subject", "session", "space", "file"])


def load_unit_maps(output_dir: Path, values: pd.DataFrame) -> UnitMaps | None:
    """Average each labelled unit's template-space CBF runs; None when there are none.

    Parameters
    ----------
    output_dir : Path
        OUTPUT_DIR of the participant level.
    values : pandas.DataFrame
        The modelled ROI table (``subject``, ``session``, ``group``, ``phase``, ``age``,
        ``sex``): it says which units are in the analysis and their labels.

    Returns
    -------
    UnitMaps or None
    """
    maps = find_cbf_maps(output_dir)
    if maps.empty:
        return None
    spaces = sorted(set(maps["space"]))
    if len(spaces) > 1:
        raise InputError(output_dir, f"holds CBF maps in several spaces {spaces}",
                         "rerun the participant level with one template")  # fmt: skip
    label_columns = [c for c in ("subject", "session", "group", "phase", "age", "sex")
                     if c in values.columns]  # fmt: skip
    units = values[label_columns].drop_duplicates(["subject", "session"])
    units = units.assign(
        subject=units["subject"].astype(str), session=units["session"].fillna("n/a").astype(str)
    )
    grouped = maps.groupby(["subject", "session"])["file"].apply(list).rename("files")
    units = units.join(grouped, on=["subject", "session"], how="inner").reset_index(drop=True)
    if units.empty:
        return None
    first = nb.load(units["files"].iloc[0][0])
    volumes = []
    for files in units["files"]:
        images = [nb.load(path) for path in files]
        for image in images:
            if image.shape != first.shape or not np.allclose(image.affine, first.affine):
                raise InputError(image.get_filename(), "is on another grid than the other "
                                 "CBF maps", "rerun the participant level with one template")
        volumes.append(np.mean([np.asanyarray(i.dataobj, dtype=np.float32) for i in images], 0))
    return UnitMaps(units, np.stack(volumes), first.affine, spaces[0])


def analysis_mask(data: np.ndarray) -> np.ndarray:
    """Voxels where every map has a finite, positive value."""
    return np.all(np.isfinite(data) & (data > 0), axis=0)


def _covariates(frame: pd.DataFrame) -> tuple[np.ndarray, list[str]]:
    """Centred age and a sex indicator, when known for every unit and not constant."""
    columns, names = [], []
    if "age" in frame:
        age = pd.to_numeric(frame["age"], errors="coerce")
        if age.notna().all() and age.std() > 0:
            columns.append((age - age.mean()).to_numpy(float))
            names.append("age")
    if "sex" in frame:
        sex = frame["sex"].astype(str).str.upper()
        if sex.isin(("F", "M")).all() and sex.nunique() == 2:
            columns.append((sex == "F").to_numpy(float))
            names.append("sex_F")
    return (np.column_stack(columns) if columns else np.zeros((len(frame), 0))), names


def contrasts(units: pd.DataFrame) -> list[tuple[str, np.ndarray, np.ndarray, list[str], str]]:
    """Return the default voxelwise contrasts that the units support.

    Returns
    -------
    list of (name, unit rows or paired rows, design, columns, description)
        Two-sample interictal comparisons (each group pair, covariates age and sex when known
        and estimable) and the within-patient ictal - interictal difference (sign flipping).
    """
    found = []
    baseline = units[units["phase"] == BASELINE_PHASE]
    for first, second in (("MwA", CONTROL_GROUP), ("MwoA", CONTROL_GROUP), ("MwA", "MwoA")):
        rows = baseline[baseline["group"].isin((first, second))]
        counts = rows["group"].value_counts()
        if counts.get(first, 0) < 2 or counts.get(second, 0) < 2:
            continue
        indicator = (rows["group"] == first).to_numpy(float)
        covariates, names = _covariates(rows)
        if len(rows) - 2 - covariates.shape[1] < 2:
            covariates, names = covariates[:, :0], []
        design = np.column_stack([np.ones(len(rows)), indicator, covariates])
        found.append((
            f"interictal{first}vs{second}", rows.index.to_numpy(), design,
            ["intercept", f"{first}", *names],
            f"interictal {first} minus {second}" + (f", adjusted for {', '.join(names)}"
                                                     if names else ""),
        ))  # fmt: skip
    return found


def paired_differences(units: pd.DataFrame) -> list[tuple[int, int]]:
    """(ictal row, interictal row) per patient with both sessions."""
    pairs = []
    patients = units[units["group"].isin(PATIENT_GROUPS)]
    for _, rows in patients.groupby("subject"):
        attack = rows.index[rows["phase"] == ATTACK_PHASE]
        base = rows.index[rows["phase"] == BASELINE_PHASE]
        if len(attack) and len(base):
            pairs.append((int(attack[0]), int(base[0])))
    return pairs


def enumerable(n_maps: int, sign_flipping: bool, permutations: int) -> bool:
    """Whether all relabellings (n! permutations or 2^n sign flips) fit in ``permutations``.

    Small designs are then tested exactly, instead of drawing the same few relabellings
    again and again.
    """
    count = 2**n_maps if sign_flipping else math.factorial(n_maps)
    return count <= permutations


def _midline_tolerance(affine: np.ndarray, size: int) -> float:
    try:
        mirror_index(affine, size)
        return 0.0
    except ValueError:
        return MIDLINE_TOLERANCE_VOXELS


def run_voxelwise(
    maps: UnitMaps, destination: Path, settings: MapSettings, sources: list[str]
) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    """Run and write the default contrasts; return a summary table and the t maps."""
    mask = analysis_mask(maps.data)
    flat = maps.data[:, mask]
    rows, t_maps = [], {}
    common = {"n_permutations": settings.permutations, "seed": settings.seed,
              "use_tfce": settings.tfce, "cluster_threshold": settings.cluster_threshold,
              "affine": maps.affine}  # fmt: skip
    tests = [(name, flat[index], design, columns, text)
             for name, index, design, columns, text in contrasts(maps.units)]  # fmt: skip
    pairs = paired_differences(maps.units)
    if len(pairs) >= 2:
        difference = np.stack([flat[a] - flat[b] for a, b in pairs])
        tests.append(("ictalvsinterictal", difference, np.ones((len(pairs), 1)), ["intercept"],
                      "within-patient ictal minus interictal (sign flipping)"))  # fmt: skip
    for name, data, design, columns, text in tests:
        contrast = np.zeros(design.shape[1])
        contrast[1 if design.shape[1] > 1 else 0] = 1.0
        result = permutation_test(
            data, mask, design, contrast, design_columns=columns,
            exact=enumerable(len(data), design.shape[1] == 1, settings.permutations), **common,
        )  # fmt: skip
        prefix = f"space-{maps.space}_contrast-{name}"
        write_voxelwise(result, destination / "voxelwise", prefix,
                        extra_metadata={"Contrast": text, "Sources": sources})  # fmt: skip
        best = float(np.nanmin(result.p_fwe_t))
        rows.append({"contrast": name, "description": text, "n_maps": len(data),
                     "min_p_fwe_maxt": best, "n_clusters": len(result.clusters),
                     "files_prefix": f"voxelwise/{prefix}"})  # fmt: skip
        t_maps[text] = result.t
    summary = pd.DataFrame(rows, columns=["contrast", "description", "n_maps", "min_p_fwe_maxt",
                                          "n_clusters", "files_prefix"])  # fmt: skip
    return summary, t_maps


def run_patient_maps(
    maps: UnitMaps, destination: Path, sources: list[str],
    territories: tuple[np.ndarray, dict[int, str]] | None = None,
) -> dict[str, np.ndarray]:
    """Write a z map (against the interictal controls) and an asymmetry map per patient unit.

    With ``territories`` (labels on the maps' grid and their names) and at least three
    controls, each z map's clusters and their territory crossing
    (:mod:`aslmig.group.territories`) go into its sidecar and ``territories.tsv``.
    """
    units = maps.units
    controls = units[(units["group"] == CONTROL_GROUP) & (units["phase"] == BASELINE_PHASE)]
    if len(controls) < 2:
        return {}
    ages = pd.to_numeric(controls["age"] if "age" in controls else pd.Series(dtype=float),
                         errors="coerce")  # fmt: skip
    use_age = len(controls) >= 4 and len(ages) > 0 and ages.notna().all() and ages.std() > 0
    tolerance = _midline_tolerance(maps.affine, maps.data.shape[1])
    mask = analysis_mask(maps.data)
    found: dict[str, SessionCrossing] | None = None
    if territories is not None and len(controls) - int(use_age) >= 3:
        found, calibration = {}, ExtentCalibration()
        df = len(controls) - 1 - int(use_age)
    zmaps = {}
    for index, unit in units[units["group"].isin(PATIENT_GROUPS)].iterrows():
        if use_age:
            z = patient_zmap(maps.data[index], maps.data[controls.index],
                             ages.to_numpy(float)[:, None],
                             np.array([float(unit["age"])]))  # fmt: skip
        else:
            z = patient_zmap(maps.data[index], maps.data[controls.index])
        z = np.where(mask, z, np.nan)
        asymmetry = asymmetry_map(maps.data[index], maps.affine, mask,
                                  midline_tolerance=tolerance)  # fmt: skip
        name = unit_name(unit["subject"], unit["session"])
        metadata = {
            "Controls": [unit_name(row.subject, row.session) for row in controls.itertuples()],
            "AgeAdjusted": bool(use_age),
            "Denominator": "prediction-interval SD (Crawford & Howell 1998)",
            "MidlineToleranceVoxels": tolerance,
            "Sources": sources,
        }
        for kind, volume, description in (
            ("stat-z", z, "z of the patient's CBF against the interictal healthy controls"),
            ("desc-asymmetry_stat-ai", asymmetry,
             "hemispheric asymmetry 2 (v - v_mirror) / (v + v_mirror) of the patient's CBF"),
        ):  # fmt: skip
            path = destination / "patients" / f"{name}_space-{maps.space}_{kind}_statmap.nii.gz"
            image = nb.Nifti1Image(volume.astype(np.float32), maps.affine)
            atomic_write(path, lambda temporary, image=image: nb.save(image, temporary))
            extra = {}
            if found is not None and kind == "stat-z":
                covariates = ((ages.to_numpy(float), [float(unit["age"])]) if use_age
                              else (None, None))  # fmt: skip
                settings, _ = calibrated_settings(maps.data[index], maps.data[controls.index],
                                                  mask, maps.affine, None, calibration,
                                                  *covariates)  # fmt: skip
                found[name] = find_clusters(z, *territories, maps.affine, df, settings)
                extra = found[name].sidecar(settings, settings.height(df), calibration)
            write_json(path.with_name(path.name.replace(".nii.gz", ".json")),
                       {"Description": description, **metadata, **extra})  # fmt: skip
        zmaps[name] = z
    if found is not None:
        table = crossing_table(found)
        atomic_write(destination / "territories.tsv", lambda temporary: table.to_csv(
            temporary, sep="\t", index=False, lineterminator="\n", float_format="%.6g",
            na_rep="n/a"))  # fmt: skip
    return zmaps


def figures(
    t_maps: dict[str, np.ndarray], zmaps: dict[str, np.ndarray], affine: np.ndarray,
    territories: np.ndarray | None, limit: int = 6,
) -> list[MapFigure]:
    """Mosaics of the t maps and of the first patients' z maps, with territory outlines."""
    shape = next(iter({**t_maps, **zmaps}.values())).shape
    outline = np.zeros(shape, int) if territories is None else territories
    bar = colorbar(-Z_LIMIT, Z_LIMIT, cmap="diverging", label="t or z")
    result = []
    for title, volume in [*t_maps.items(), *list(zmaps.items())[:limit]]:
        image = nb.Nifti1Image(np.nan_to_num(volume).astype(np.float32), affine)
        canonical, _ = canonical_volume(image)
        labels, _ = canonical_volume(nb.Nifti1Image(outline.astype(np.int16), affine))
        mosaic = territory_overlay(canonical, labels.astype(int), vmax=Z_LIMIT)
        kind = "t map" if title in t_maps else "z map against the interictal controls"
        result.append(MapFigure(f"{title}: {kind}", mosaic,
                                "Arterial territory outlines (MigraineASL); unthresholded.", bar))
    return result
