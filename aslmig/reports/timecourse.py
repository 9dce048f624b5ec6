"""Figures of the time-course models: the curve, its bands and the sessions as points.

Drawn with matplotlib (Agg canvas, no pyplot state) into RGB arrays that the group report
embeds as PNG; the same table gives the same pixels.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from aslmig.reports.group import MapFigure

#: Panels per figure (one figure per model, subset and measure).
MAX_PANELS = 6
#: ROIs always shown when present: the regions of the aura.
KEY_ROIS = ("occipital_cortex_L", "occipital_cortex_R", "calcarine_L", "calcarine_R")
UNITS = {"cbf": "ΔCBF (mL/100 g/min)", "rcbf": "Δ relative CBF", "ai": "Δ asymmetry index",
         "att": "ΔATT (s)"}  # fmt: skip


def _chosen_rois(statistics: pd.DataFrame, key: dict, rois: list[str]) -> list[str]:
    """ROIs with q < 0.05 in the model's tests first, then the key ROIs, at most MAX_PANELS."""
    rows = statistics[
        (statistics["model"] == key["model"])
        & (statistics["measure"] == key["measure"])
        & statistics["contrast"].astype(str).str.startswith(f"{key['subset']}:")
    ]
    q = pd.to_numeric(rows["q"], errors="coerce")
    hits = rows.loc[q < 0.05].sort_values("q", key=lambda s: pd.to_numeric(s))["roi"]
    ordered = [*dict.fromkeys([*hits, *[roi for roi in KEY_ROIS if roi in rois]])]
    return ordered[:MAX_PANELS]


def _panel(axes, curve: pd.DataFrame, points: pd.DataFrame, title: str, unit: str) -> None:
    hours = curve["hours"].to_numpy(float)
    axes.axhline(0.0, color="0.4", linewidth=0.8)
    axes.fill_between(hours, curve["band_low"], curve["band_high"], color="#c6dbef",
                      label="simultaneous 95% band")  # fmt: skip
    axes.fill_between(hours, curve["ci_low"], curve["ci_high"], color="#6baed6",
                      label="pointwise 95% CI")  # fmt: skip
    axes.plot(hours, curve["estimate"], color="#08306b", linewidth=1.8, label="estimate")
    axes.scatter(points["hours"], points["estimate"], s=10, color="#d62728", zorder=3,
                 label="sessions")  # fmt: skip
    axes.set_xscale("symlog", linthresh=1.0)
    axes.set_title(title, fontsize=9)
    axes.set_xlabel("hours since attack onset" if "since" in curve["clock"].iloc[0]
                    else "hours to next attack onset", fontsize=8)  # fmt: skip
    axes.set_ylabel(unit, fontsize=8)
    axes.tick_params(labelsize=7)


def render_panels(panels: list[tuple[str, pd.DataFrame, pd.DataFrame]], unit: str) -> np.ndarray:
    """Draw one panel per (title, curve rows, session rows); return an RGB uint8 array."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    columns = min(3, len(panels))
    rows = int(np.ceil(len(panels) / columns))
    figure = Figure(figsize=(3.2 * columns, 2.6 * rows), dpi=100)
    canvas = FigureCanvasAgg(figure)
    for index, (title, curve, points) in enumerate(panels, start=1):
        _panel(figure.add_subplot(rows, columns, index), curve, points, title, unit)
    figure.axes[0].legend(fontsize=6, loc="best")
    figure.tight_layout()
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


def timecourse_figures(timecourse: pd.DataFrame, statistics: pd.DataFrame) -> list[MapFigure]:
    """One figure per time-course model, group subset and measure.

    Parameters
    ----------
    timecourse : pandas.DataFrame
        ``timecourse.tsv`` (:data:`aslmig.group.models.TIMECOURSE_COLUMNS`).
    statistics : pandas.DataFrame
        ``roi_statistics.tsv``: chooses the ROIs shown (those with q < 0.05 first, then the
        occipital and calcarine cortex).

    Returns
    -------
    list of MapFigure
        Figures in table order (empty without time-course rows).
    """
    figures = []
    if timecourse.empty:
        return figures
    for (model, subset, measure), rows in timecourse.groupby(
        ["model", "subset", "measure"], sort=False
    ):
        key = {"model": model, "subset": subset, "measure": measure}
        rois = _chosen_rois(statistics, key, list(dict.fromkeys(rows["roi"])))
        panels = []
        for roi in rois:
            of_roi = rows[rows["roi"] == roi]
            if not of_roi.empty:
                panels.append((roi, of_roi[of_roi["kind"] == "curve"],
                               of_roi[of_roi["kind"] == "session"]))  # fmt: skip
        if not panels:
            continue
        image = render_panels(panels, UNITS.get(measure, measure))
        caption = (
            f"{subset}, {measure}: change from the patients' interictal level along the attack "
            "(restricted cubic spline in log time, random intercept per patient); dark band "
            "pointwise 95% CI, light band simultaneous 95% band, points: sessions minus their "
            "patient's level. ROIs with q < 0.05 first, then the occipital and calcarine cortex."
        )
        figures.append(MapFigure(f"{model}: {subset} {measure}", image, caption))
    return figures
