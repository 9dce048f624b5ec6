"""Participant and group reports: PNG encoding, figures, methods boilerplate, HTML.

Pure functions of arrays and strings (numpy and the standard library); no nipype, no plotting
library.
"""

from aslmig.reports.boilerplate import REFERENCES, methods_text
from aslmig.reports.figures import (
    COLORMAPS,
    colorbar,
    edge_overlay,
    line_plot_svg,
    mosaic,
)
from aslmig.reports.participant import RunReport, render_participant_report
from aslmig.reports.png import data_uri, encode_png

__all__ = [
    "COLORMAPS",
    "REFERENCES",
    "RunReport",
    "colorbar",
    "data_uri",
    "edge_overlay",
    "encode_png",
    "line_plot_svg",
    "methods_text",
    "mosaic",
    "render_participant_report",
]
