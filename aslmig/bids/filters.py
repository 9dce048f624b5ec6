"""``--bids-filter-file``: per-query entity filters, as in fMRIPrep and ASLPrep.

The file is a JSON object whose keys name a query (``asl``, ``m0scan``, ``t1w``) and
whose values map BIDS entities to a value, a list of values, ``null`` (the entity must
be absent) or ``"*"`` (any value, but present). The ``asl`` query also accepts sidecar
fields (CamelCase names such as ``ArterialSpinLabelingType``) matched against the
series' merged metadata, e.g. ``{"asl": {"ArterialSpinLabelingType": "PCASL"}}``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aslmig.bids.sidecars import read_json
from aslmig.errors import InputError, quote

QUERY_NAMES = ("asl", "m0scan", "t1w")
FILTERABLE_ENTITIES = (
    "session",
    "task",
    "acquisition",
    "ceagent",
    "reconstruction",
    "direction",
    "run",
    "echo",
    "part",
)
#: Entities that have their own command-line option instead.
OPTION_ENTITIES = {"subject": "--participant-label"}


def load_bids_filters(path: Path) -> dict[str, dict[str, Any]]:
    """Read and validate a BIDS filter file, translating ``null`` and ``"*"`` for pybids.

    Parameters
    ----------
    path : Path
        The JSON filter file.

    Returns
    -------
    dict
        Query name -> pybids keyword filters.

    Raises
    ------
    InputError
        When the file is unreadable or names an unknown query, an unknown entity or a
        value that is not a string, an integer, a list of those, ``null`` or ``"*"``.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "the BIDS filter file does not exist")
    content = read_json(path)
    filters: dict[str, dict[str, Any]] = {}
    for query_name, entity_filters in content.items():
        if query_name not in QUERY_NAMES:
            raise InputError(
                path,
                f"unknown query {quote(query_name)}",
                f"use one of {', '.join(QUERY_NAMES)}",
            )
        if not isinstance(entity_filters, dict):
            raise InputError(path, f"{query_name} must map entity names to values")
        filters[query_name] = {
            entity: _translate(path, query_name, entity, value)
            for entity, value in entity_filters.items()
        }
    return filters


def is_metadata_field(name: str) -> bool:
    """Tell whether a filter key names a sidecar field (CamelCase) rather than an entity."""
    return name[:1].isupper()


def split_metadata_filters(query: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Separate entity filters (for pybids) from sidecar-field filters (for us)."""
    entities = {key: value for key, value in query.items() if not is_metadata_field(key)}
    fields = {key: value for key, value in query.items() if is_metadata_field(key)}
    return entities, fields


def metadata_matches(sidecar: dict[str, Any], field_filters: dict[str, Any]) -> bool:
    """Tell whether a sidecar satisfies every sidecar-field filter (value or list of values)."""
    for name, wanted in field_filters.items():
        allowed = wanted if isinstance(wanted, list) else [wanted]
        if sidecar.get(name) not in allowed:
            return False
    return True


def _translate(path: Path, query_name: str, entity: str, value: Any) -> Any:
    from bids.layout import Query

    if is_metadata_field(entity):
        if query_name != "asl":
            raise InputError(
                path,
                f"{query_name}: sidecar field {quote(entity)} can only filter the asl query",
            )
        values = value if isinstance(value, list) else [value]
        if not all(isinstance(item, str | int | float | bool) for item in values):
            raise InputError(path, f"asl.{entity} must be a value or a list of values")
        return value
    if entity in OPTION_ENTITIES:
        raise InputError(
            path,
            f"{query_name}: filter {entity} with {OPTION_ENTITIES[entity]} instead",
        )
    if entity not in FILTERABLE_ENTITIES:
        raise InputError(
            path,
            f"{query_name}: unknown entity {quote(entity)}",
            f"use one of {', '.join(FILTERABLE_ENTITIES)} (pybids names, e.g. acquisition) "
            "or a CamelCase sidecar field",
        )
    if value is None:
        return Query.NONE
    if value == "*":
        return Query.ANY
    values = value if isinstance(value, list) else [value]
    for item in values:
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise InputError(
                path,
                f"{query_name}.{entity} is {quote(value)}",
                'use a string, an integer, a list of them, null or "*"',
            )
    if entity == "run":
        if not all(str(item).isascii() and str(item).isdigit() for item in values):
            raise InputError(path, f"{query_name}.run is {quote(value)}", "runs are integers")
        return [int(item) for item in values] if isinstance(value, list) else int(value)
    return value
