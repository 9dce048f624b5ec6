"""Participant and group reports: figures, methods boilerplate, HTML.

- :mod:`~aslmig.reports.colormaps`, :mod:`~aslmig.reports.mosaics`: raster figures (slice
  mosaics, edge overlays) as uint8 RGB arrays, encoded by :mod:`~aslmig.reports.png`;
- :mod:`~aslmig.reports.svg`: every inline SVG figure, and the allow-list they must pass;
- :mod:`~aslmig.reports.boilerplate`: the methods text of a run;
- :mod:`~aslmig.reports.templating`: the Jinja2 templates shared by
  :mod:`~aslmig.reports.participant` and :mod:`~aslmig.reports.group`.

No nipype here: the reports are functions of arrays, tables and strings.
"""

from aslmig.reports.boilerplate import REFERENCES, methods_text
from aslmig.reports.colormaps import COLORMAPS
from aslmig.reports.mosaics import edge_overlay, mosaic
from aslmig.reports.participant import RunReport, render_participant_report
from aslmig.reports.png import data_uri, encode_png
from aslmig.reports.svg import colorbar, line_plot_svg

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
