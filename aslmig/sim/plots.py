"""Power curves (power against sample size, one panel per design) drawn by matplotlib.

Both files of ``aslmig power`` come from the same matplotlib figure: ``power.png`` by the Agg
renderer and ``power.svg`` by the SVG backend with its text kept as ``<text>`` elements (so the
labels stay searchable and selectable) and without a date or random ids (so a rerun writes the
same bytes).
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")
TARGET_POWER = 0.8
PANEL_SIZE_INCHES = (6.0, 4.0)
DPI = 100

PowerPanels = Mapping[str, tuple[Sequence[int], Mapping[str, Sequence[float]], str]]


def _figure(panels: PowerPanels):
    """Build the figure: one axes per design with a line per effect size."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    count = max(len(panels), 1)
    figure = Figure(figsize=(PANEL_SIZE_INCHES[0] * count, PANEL_SIZE_INCHES[1]), dpi=DPI)
    FigureCanvasAgg(figure)
    for index, (title, (x_values, series, x_label)) in enumerate(panels.items(), start=1):
        axes = figure.add_subplot(1, count, index)
        for number, (name, values) in enumerate(series.items()):
            axes.plot(list(x_values), list(values), marker="s", markersize=4, linewidth=2,
                      color=PALETTE[number % len(PALETTE)], label=name)  # fmt: skip
        axes.axhline(TARGET_POWER, color="#808080", linestyle="--", linewidth=1)
        axes.set_ylim(0.0, 1.0)
        axes.set_xticks(list(x_values))
        axes.grid(axis="y", color="#e0e0e0")
        axes.set_title(title)
        axes.set_xlabel(x_label)
        axes.set_ylabel("power")
        if series:
            axes.legend(loc="center left", bbox_to_anchor=(1.02, 0.5), frameon=False)
    figure.tight_layout()
    return figure


def power_png(panels: PowerPanels) -> bytes:
    """Render one power-vs-n panel per design side by side as a PNG.

    Parameters
    ----------
    panels : Mapping
        Title -> (sample sizes, {effect label: power per sample size}, x-axis label).

    Returns
    -------
    bytes
        PNG file.
    """
    buffer = io.BytesIO()
    _figure(panels).savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def power_svg(panels: PowerPanels) -> str:
    """Render the same panels as :func:`power_png` as a standalone SVG document."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "aslmig-power"}):
        _figure(panels).savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    return buffer.getvalue()
