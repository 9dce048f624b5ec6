"""Inline SVG of the reports: the allow-list that every embedded SVG figure must pass."""

from __future__ import annotations

import xml.etree.ElementTree as ET

#: SVG elements allowed in a report (what this module writes).
SVG_ELEMENTS = frozenset(
    {"svg", "g", "title", "desc", "rect", "line", "polyline", "path", "circle", "text", "tspan"}
)


def check_svg(svg: str, name: str = "svg") -> str:
    """Return ``svg`` unchanged if it only uses harmless SVG, else raise ``ValueError``.

    Parameters
    ----------
    svg : str
        One ``<svg>`` element.
    name : str, optional
        What it is, for the error message.

    Returns
    -------
    str
        The same string.

    Raises
    ------
    ValueError
        Not well-formed XML, a root other than ``<svg>``, an element outside
        :data:`SVG_ELEMENTS` (e.g. ``script``, ``foreignObject``, ``image``), an event-handler
        (``on*``) attribute, a ``style`` attribute, or any ``href``.
    """
    try:
        root = ET.fromstring(svg)
    except ET.ParseError as err:
        raise ValueError(f"{name} is not well-formed SVG: {err}") from None
    if _local(root.tag) != "svg":
        raise ValueError(f"{name} must be an <svg> element, got <{_local(root.tag)}>")
    for element in root.iter():
        if _local(element.tag) not in SVG_ELEMENTS:
            raise ValueError(f"{name} contains a disallowed <{_local(element.tag)}> element")
        for attribute in element.attrib:
            local = _local(attribute).lower()
            if local.startswith("on") or local == "href" or local == "style":
                raise ValueError(f"{name} contains a disallowed attribute {local!r}")
    return svg


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]
