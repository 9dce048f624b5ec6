r"""The reports' HTML: Jinja2 templates (package data in ``aslmig/data/reports/``).

Both reports extend one layout, ``base.html``: a self-contained HTML5 page with an embedded
style sheet (``report.css``), no script, and a Content-Security-Policy that forbids loading
anything from outside the file. Every ``{{ value }}`` is HTML-escaped by Jinja2's autoescape;
before that, control characters (terminal escape sequences, which XML forbids) are shown as
visible ``\xNN`` codes. Only two kinds of value are inserted unescaped: images, as PNG
``data:`` URIs (filter ``png_uri``), and SVG figures, which the filter ``svg`` checks against
an allow-list of elements and attributes (:func:`aslmig.reports.svg.check_svg`).
Undefined template variables are an error, so a misspelt name cannot silently drop a section.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import jinja2
import numpy as np
from markupsafe import Markup

from aslmig.__about__ import __version__
from aslmig.reports.png import data_uri, encode_png
from aslmig.reports.svg import check_svg, visible_text

#: Forbids scripts and every load that is not the file itself or a data: image.
CONTENT_SECURITY_POLICY = "default-src 'none'; img-src data:; style-src 'unsafe-inline'"


def _finalize(value: Any) -> Any:
    """Make every ``{{ value }}`` printable text; checked markup passes through."""
    return value if isinstance(value, Markup) else visible_text(value)


def is_number(value: Any) -> bool:
    """Return whether a table cell holds a number (booleans are not numbers here)."""
    return isinstance(value, int | float | np.integer | np.floating) and not isinstance(
        value, bool | np.bool_
    )


def display_value(value: Any) -> str:
    """Format a table cell: 4 significant digits, ``n/a`` for missing, ``yes``/``no``."""
    if value is None:
        return "n/a"
    if isinstance(value, bool | np.bool_):
        return "yes" if value else "no"
    if isinstance(value, int | np.integer):
        return str(int(value))
    if isinstance(value, float | np.floating):
        return "n/a" if not math.isfinite(float(value)) else f"{float(value):.4g}"
    return str(value)


def _png_uri(image: np.ndarray) -> str:
    return data_uri(encode_png(image))


def _svg(svg: str) -> Markup:
    return Markup(check_svg(svg))


@functools.cache
def environment() -> jinja2.Environment:
    """Return the reports' Jinja2 environment (autoescape on, undefined names refused)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("aslmig", "data/reports"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        finalize=_finalize,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )
    env.filters.update(png_uri=_png_uri, svg=_svg, display=display_value)
    env.tests["number"] = is_number
    env.globals.update(version=__version__, csp=Markup(CONTENT_SECURITY_POLICY))
    return env


def render(template: str, **context: Any) -> str:
    """Render one of the report templates.

    Parameters
    ----------
    template : str
        File name in ``aslmig/data/reports/``, e.g. ``"participant.html"``.
    **context
        The template's variables.

    Returns
    -------
    str
        The HTML document.
    """
    return environment().get_template(template).render(**context)
