"""The group level's maps and report: ``OUTPUT_DIR/group/<label>/report.html``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from aslmig.atlas.migraine import LEVELS
from aslmig.atlas.rois import shipped_migraine_atlas
from aslmig.atlas.templates import BUNDLED_SPACE
from aslmig.bids.derivatives import ATLAS_DIR, GROUP_REPORT_NAME
from aslmig.group.maps import (
    MapSettings,
    UnitMaps,
    figures,
    run_patient_maps,
    run_voxelwise,
)
from aslmig.group.territories import CROSSING_NOTE
from aslmig.reports.group import write_group_report
from aslmig.reports.timecourse import timecourse_figures

TERRITORY_LEVEL = LEVELS.index("territories")


def territory_labels(maps: UnitMaps, output_dir: Path) -> np.ndarray | None:
    """Return the MigraineASL territories on the maps' grid (shipped, or built for the run)."""
    candidates = [shipped_migraine_atlas().image] if maps.space == BUNDLED_SPACE else []
    candidates += sorted((Path(output_dir) / ATLAS_DIR).glob(
        f"atlas-MigraineASL_space-{maps.space}_*dseg.nii.gz"))  # fmt: skip
    import nibabel as nb

    for path in candidates:
        image = nb.load(path)
        if image.shape[:3] == maps.data.shape[1:] and np.allclose(image.affine, maps.affine):
            return np.asanyarray(image.dataobj)[..., TERRITORY_LEVEL].astype(int)
    return None


def territory_names() -> dict[int, str]:
    """Return the MigraineASL territory labels' names (the same in every space)."""
    table = shipped_migraine_atlas().table
    rows = table[table["level"] == TERRITORY_LEVEL]
    return dict(zip(rows["index"].astype(int), rows["name"].astype(str), strict=True))


def methods_text(statistics: pd.DataFrame, settings: MapSettings, voxelwise: pd.DataFrame) -> str:
    """Describe the models, corrections and maps actually computed."""
    models = statistics[["model", "test", "formula"]].drop_duplicates()
    parts = [
        "Regional CBF (absolute, relative to whole grey matter, and hemispheric asymmetry "
        "oriented to the hemisphere contralateral to the aura side) was taken from the "
        "participant-level tables of aslmig, averaging the runs of a session. Models: "
        + "; ".join(f"{row.model} ({row.test}): {row.formula}" for row in models.itertuples())
        + ". Effect sizes are Hedges' g with 95% confidence intervals; p values were corrected "
        "with the Benjamini-Hochberg false discovery rate within each family (one test of one "
        "model on one measure, over regions and contrasts).",
    ]
    if "timecourse_F" in set(statistics["test"]):
        parts.append(
            "Time course across the attack: within the patients of each group, regional values "
            "were modelled as the patient's random intercept plus, for sessions up to the "
            "window on the clock, a restricted cubic spline in log(1 + hours since the attack "
            "onset) (Harrell 2015; 3-5 knots at quantiles of the observed times; interictal "
            "sessions anchor the curve at zero), fitted by REML with between-within degrees of "
            "freedom. Any change was tested with the Wald F test of the spline; a biphasic "
            "course (below zero early and above zero later) with an intersection-union test "
            "(Berger 1982) of two sup-t tests over the time grid, and the time of the sign "
            "change was reported with a 95% interval from draws of the spline coefficients."
        )
    if not voxelwise.empty:
        correction = "maximum voxel statistic"
        correction += f", cluster mass at |t| > {settings.cluster_threshold:g}"
        correction += ", and threshold-free cluster enhancement" if settings.tfce else ""
        parts.append(
            "Voxelwise, template-space CBF maps were compared with permutation tests "
            f"(Freedman-Lane for designs with covariates, sign flipping for within-patient "
            f"differences; up to {settings.permutations} permutations, seed {settings.seed}; "
            "all relabellings when fewer exist), with family-wise error control by the "
            f"{correction}. Contrasts: "
            + "; ".join(voxelwise["description"])
            + ". Each patient session was also compared with the interictal healthy controls "
            "voxel by voxel (z with the prediction-interval standard deviation of Crawford & "
            "Howell 1998, age-adjusted with at least four controls), and its hemispheric "
            "asymmetry map was computed."
        )
    return " ".join(parts)


def _read_crossing(destination: Path) -> pd.DataFrame | None:
    """Return the territory-crossing table written by :func:`run_patient_maps`, if any."""
    path = destination / "territories.tsv"
    if not path.is_file():
        return None
    return pd.read_csv(path, sep="\t", keep_default_na=False, dtype={"session_map": str})


def write_maps_and_report(
    destination: Path,
    output_dir: Path,
    statistics: pd.DataFrame,
    values: pd.DataFrame,
    maps: UnitMaps | None,
    settings: MapSettings,
    sources: list[str],
    timecourse: pd.DataFrame | None = None,
) -> Path:
    """Run the voxelwise stage (when maps are given) and write the group report.

    Returns
    -------
    Path
        The report.
    """
    summary = pd.DataFrame(columns=["description"])
    figure_list = []
    if maps is not None:
        summary, t_maps = run_voxelwise(maps, destination, settings, sources)
        summary.to_csv(destination / "voxelwise.tsv", sep="\t", index=False,
                       lineterminator="\n", float_format="%.6g")  # fmt: skip
        territories = territory_labels(maps, output_dir)
        named = None if territories is None else (territories, territory_names())
        zmaps = run_patient_maps(maps, destination, sources, named)
        if t_maps or zmaps:
            figure_list = figures(t_maps, zmaps, maps.affine, territories)
    report = destination / GROUP_REPORT_NAME
    write_group_report(
        report,
        title=f"aslmig group report: {destination.name}",
        statistics=statistics,
        values=values,
        methods=methods_text(statistics, settings, summary),
        maps=figure_list,
        timecourse=timecourse_figures(timecourse, statistics) if timecourse is not None else (),
        crossing=_read_crossing(destination),
        crossing_note=CROSSING_NOTE,
    )
    return report
