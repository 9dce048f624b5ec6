"""Collect the participant ROI tables already in OUTPUT_DIR into one long table.

The group level never recomputes participants: it reads
``sub-X[/ses-Y]/perf/sub-X[_ses-Y][_acq-A][_run-N][_space-S]_atlas-NAME_{cbf,att}.tsv``
(one row per ROI; see :data:`aslmig.atlas.extract.COLUMNS`) and turns them into rows of
``subject, session, roi, hemisphere, measure, value, n_runs``.

Measures
--------
``cbf``
    ROI ``mean`` of the CBF table (mL/100 g/min).
``rcbf``
    ``relative_to_reference`` of the CBF table.
``ai``
    ``asymmetry_index`` of the CBF table, 2(L - R)/(L + R), one row per left/right pair
    (``roi`` is the pair's name without ``_L``/``_R``); :func:`orient_asymmetry` turns it
    towards the hemisphere that produces the aura (contralateral to the aura side).
``att``
    ROI ``mean`` of the ATT table (s), for multi-delay runs.

Several runs of one session (``acq``, ``run``) are averaged per ROI; ``n_runs`` counts the
runs with a value.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aslmig.bids.entities import LABEL_CHARACTERS
from aslmig.errors import InputError, quote

#: Measures the group level models.
MEASURES = ("cbf", "rcbf", "ai", "att")
#: Columns of a participant ROI table that the group level reads.
REQUIRED_COLUMNS = (
    "roi",
    "hemisphere",
    "mean",
    "relative_to_reference",
    "asymmetry_index",
    "status",
)
#: Columns of the long table of values.
VALUE_COLUMNS = ("subject", "session", "roi", "hemisphere", "measure", "value", "n_runs")
_ENTITY = re.compile(rf"([a-z]+)-({LABEL_CHARACTERS})")
_RUN_ENTITIES = {"sub", "ses", "acq", "rec", "dir", "run", "space", "atlas"}


@dataclass(frozen=True)
class RoiTable:
    """One participant ROI table found in OUTPUT_DIR.

    Attributes
    ----------
    subject, session : str
        Labels without prefixes (``session`` "" when absent).
    run : str
        The other run entities as in the file name (e.g. ``acq-pcasl_run-1``), or "".
    space : str
        The ``space`` entity ("" for native space).
    suffix : str
        ``cbf`` or ``att``.
    path : str
        Path relative to OUTPUT_DIR (POSIX separators).
    """

    subject: str
    session: str
    run: str
    space: str
    suffix: str
    path: str


def parse_table_name(relative: str, atlas: str) -> RoiTable | None:
    """Parse a participant ROI table name; None if it is not one of ``atlas``.

    Parameters
    ----------
    relative : str
        Path relative to OUTPUT_DIR.
    atlas : str
        The atlas name (``atlas-<NAME>`` entity).

    Returns
    -------
    RoiTable or None
        The parsed name.
    """
    name = relative.rsplit("/", 1)[-1]
    if not name.endswith(".tsv"):
        return None
    *parts, suffix = name[: -len(".tsv")].split("_")
    if suffix not in ("cbf", "att"):
        return None
    entities: dict[str, str] = {}
    for part in parts:
        match = _ENTITY.fullmatch(part)
        if match is None or match.group(1) not in _RUN_ENTITIES:
            return None  # e.g. desc-qc, or a name we do not know
        entities[match.group(1)] = match.group(2)
    if entities.get("atlas") != atlas or "sub" not in entities:
        return None
    run = "_".join(
        f"{key}-{entities[key]}" for key in ("acq", "rec", "dir", "run") if key in entities
    )
    return RoiTable(
        subject=entities["sub"],
        session=entities.get("ses", ""),
        run=run,
        space=entities.get("space", ""),
        suffix=suffix,
        path=relative,
    )


def find_roi_tables(output_dir: Path, atlas: str, space: str = "template") -> list[RoiTable]:
    """Find the participant ROI tables of one atlas in OUTPUT_DIR.

    Parameters
    ----------
    output_dir : Path
        The derivatives dataset.
    atlas : str
        Atlas name, e.g. ``MigraineASL``.
    space : str
        ``"template"`` (any ``space-`` entity; one per run), ``"native"`` (no ``space-``),
        or a template name.

    Returns
    -------
    list of RoiTable
        Sorted by path.
    """
    output_dir = Path(output_dir)
    found = []
    for pattern in ("sub-*/perf/*.tsv", "sub-*/ses-*/perf/*.tsv"):
        for path in output_dir.glob(pattern):
            table = parse_table_name(path.relative_to(output_dir).as_posix(), atlas)
            if table is not None and _space_matches(table.space, space):
                found.append(table)
    found.sort(key=lambda table: table.path)
    seen: dict[tuple[str, str, str, str], str] = {}
    for table in found:
        key = (table.subject, table.session, table.run, table.suffix)
        if key in seen:
            raise InputError(
                output_dir / table.path,
                f"two ROI tables for one run, in spaces {quote(seen[key])} and "
                f"{quote(table.space)}",
                "choose one with 'space' in the model file [inputs]",
            )
        seen[key] = table.space
    return found


def _space_matches(found: str, wanted: str) -> bool:
    if wanted == "template":
        return found != ""
    if wanted == "native":
        return found == ""
    return found == wanted


def read_roi_tables(
    output_dir: Path, tables: Sequence[RoiTable]
) -> tuple[pd.DataFrame, dict[str, str]]:
    """Read and check participant ROI tables into one frame (one ``pandas`` parse in all).

    Parameters
    ----------
    output_dir : Path
        The derivatives dataset.
    tables : sequence of RoiTable
        From :func:`find_roi_tables`.

    Returns
    -------
    frame : pandas.DataFrame
        The rows of every table, with ``_table`` (position in ``tables``); ``n/a`` values and
        the values of rows whose ``status`` is not ``ok`` are NaN in the numeric columns.
    checksums : dict
        Relative path -> ``sha256:...`` of every table read.
    """
    output_dir = Path(output_dir)
    by_header: dict[tuple[str, ...], list[str]] = {}
    checksums = {}
    for position, table in enumerate(tables):
        path = output_dir / table.path
        content = path.read_bytes()
        checksums[table.path] = sha256(content)
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            raise InputError(path, "the ROI table is not UTF-8 text") from None
        header, _, body = text.partition("\n")
        columns = tuple(name.strip() for name in header.rstrip("\r").split("\t"))
        missing = [column for column in REQUIRED_COLUMNS if column not in columns]
        if missing:
            raise InputError(
                path,
                f"the ROI table has no column {', '.join(map(quote, missing))}",
                "rerun the participant level with this version of aslmig",
            )
        lines = by_header.setdefault(columns, [])
        lines.extend(f"{position}\t{line.rstrip(chr(13))}" for line in body.split("\n") if line)
    frames = [_parse(output_dir, tables, columns, lines) for columns, lines in by_header.items()]
    if not frames:
        return pd.DataFrame(columns=["_table", *REQUIRED_COLUMNS]), checksums
    frame = pd.concat([item[["_table", *REQUIRED_COLUMNS]] for item in frames], ignore_index=True)
    frame = frame.sort_values("_table", kind="stable").reset_index(drop=True)
    return _convert(output_dir, tables, frame), checksums


def _parse(output_dir, tables, columns, lines) -> pd.DataFrame:
    try:
        frame = pd.read_csv(
            io.StringIO("\n".join(lines)),
            sep="\t",
            header=None,
            names=["_table", *columns],
            dtype=str,
            keep_default_na=False,
            na_filter=False,
        )
        return frame.assign(_table=frame["_table"].astype(int))
    except (pd.errors.ParserError, ValueError):
        pass
    width = len(columns) + 1
    for line in lines:  # find the file with a ragged row, to name it
        if line.count("\t") + 1 != width:
            path = Path(output_dir) / tables[int(line.split("\t", 1)[0])].path
            raise InputError(
                path,
                f"a row has {line.count(chr(9))} fields, not {len(columns)}",
                "rerun the participant level for this run",
            )
    raise InputError(Path(output_dir), "the ROI tables could not be read")  # pragma: no cover


def _convert(output_dir, tables, frame: pd.DataFrame) -> pd.DataFrame:
    ok = frame["status"].str.strip() == "ok"
    for column in ("mean", "relative_to_reference", "asymmetry_index"):
        text = frame[column].str.strip()
        values = pd.to_numeric(text.where(text != "n/a"), errors="coerce")
        bad = values.isna() & text.ne("n/a") & text.ne("")
        if bad.any():
            first = bad.to_numpy().nonzero()[0][0]
            path = Path(output_dir) / tables[int(frame["_table"].iloc[first])].path
            raise InputError(
                path,
                f"column {column} holds {quote(text.iloc[first])}, not a number or n/a",
                "rerun the participant level for this run",
            )
        frame[column] = values.where(ok).astype(float)
    frame["roi"] = frame["roi"].str.strip()
    frame["hemisphere"] = frame["hemisphere"].str.strip().replace("", "n/a")
    return frame


def read_roi_table(path: Path) -> pd.DataFrame:
    """Read and check one participant ROI table (see :func:`read_roi_tables`)."""
    path = Path(path)
    table = RoiTable("", "", "", "", "cbf", path.name)
    frame, _ = read_roi_tables(path.parent, [table])
    return frame.drop(columns="_table")


def sha256(content: bytes) -> str:
    """Return ``"sha256:<hex digest>"`` of bytes."""
    return "sha256:" + hashlib.sha256(content).hexdigest()


@dataclass(frozen=True)
class CollectedValues:
    """The long table of values read from the participant ROI tables.

    Attributes
    ----------
    values : pandas.DataFrame
        Columns of :data:`VALUE_COLUMNS`, sorted; units with a damaged table are left out.
    checksums : dict
        Relative path -> ``sha256:...`` of every table read.
    damaged : pandas.DataFrame
        ``subject, session, stage, reason`` of the units left out because one of their
        tables is truncated (fewer ROIs than the others of its kind) or holds an infinite
        value.
    """

    values: pd.DataFrame
    checksums: dict[str, str]
    damaged: pd.DataFrame


def read_roi_values(
    output_dir: Path, tables: Sequence[RoiTable], measures: Iterable[str] = MEASURES
) -> CollectedValues:
    """Read participant ROI tables into one long table of values (runs averaged).

    Parameters
    ----------
    output_dir : Path
        The derivatives dataset.
    tables : sequence of RoiTable
        From :func:`find_roi_tables`.
    measures : iterable of str
        Measures to keep (of :data:`MEASURES`).

    Returns
    -------
    CollectedValues
        The values, the checksums of the tables and the units left out with the reason.
    """
    measures = tuple(measures)
    frame, checksums = read_roi_tables(output_dir, tables)
    empty = pd.DataFrame(columns=list(VALUE_COLUMNS))
    if frame.empty:
        return CollectedValues(empty, checksums, _damaged_rows([]))
    position = frame["_table"].to_numpy()
    frame["subject"] = np.array([table.subject for table in tables], dtype=object)[position]
    frame["session"] = np.array([table.session for table in tables], dtype=object)[position]
    suffix = np.array([table.suffix for table in tables], dtype=object)[position]
    damaged = damaged_tables(frame, tables)
    if damaged:
        units = {(tables[index].subject, tables[index].session) for index in damaged}
        keep = ~pd.Series(list(zip(frame["subject"], frame["session"], strict=True))).isin(units)
        frame, suffix = frame[keep.to_numpy()], suffix[keep.to_numpy()]
    report = _damaged_rows([(tables[index], reason) for index, reason in damaged.items()])
    rows = _measure_rows(frame, suffix, measures)
    if not rows:
        return CollectedValues(empty, checksums, report)
    long = pd.concat(rows, ignore_index=True)
    long["value"] = long["value"].astype(float)
    keys = ["subject", "session", "roi", "hemisphere", "measure"]
    grouped = long.groupby(keys, sort=True, dropna=False)["value"]
    values = grouped.mean().to_frame("value")
    values["n_runs"] = grouped.count()
    values = values.reset_index()
    return CollectedValues(values[list(VALUE_COLUMNS)], checksums, report)


def damaged_tables(frame: pd.DataFrame, tables: Sequence[RoiTable]) -> dict[int, str]:
    """Tables that are truncated or hold an infinite value, with the reason.

    A table is truncated when it lacks ROIs that other tables of the same kind (``cbf``
    or ``att``) have: a participant run that stopped while writing, or a table edited by
    hand. Its unit is left out rather than modelled on some of its regions.

    Parameters
    ----------
    frame : pandas.DataFrame
        From :func:`read_roi_tables`.
    tables : sequence of RoiTable
        The tables, indexed by ``frame["_table"]``.

    Returns
    -------
    dict
        Position in ``tables`` -> reason.
    """
    reasons: dict[int, str] = {}
    numeric = frame[["mean", "relative_to_reference", "asymmetry_index"]].to_numpy(float)
    infinite = np.isinf(numeric)
    for row in np.flatnonzero(infinite.any(axis=1)):
        index = int(frame["_table"].iloc[row])
        column = ("mean", "relative_to_reference", "asymmetry_index")[
            int(np.argmax(infinite[row]))
        ]
        reasons.setdefault(
            index,
            f"{tables[index].path}: {column} of ROI {quote(frame['roi'].iloc[row])} is "
            "infinite; rerun the participant level for this run",
        )
    rois = frame.groupby("_table")["roi"].agg(frozenset)
    kinds = pd.Series([tables[index].suffix for index in rois.index], index=rois.index)
    for kind in sorted(set(kinds)):
        of_kind = rois[kinds == kind]
        expected = frozenset().union(*of_kind)
        for index, present in of_kind.items():
            missing = sorted(expected - present)
            if missing:
                reasons.setdefault(
                    int(index),
                    f"{tables[index].path}: truncated ROI table ({len(present)} of "
                    f"{len(expected)} ROIs; missing {', '.join(missing[:4])}"
                    f"{' ...' if len(missing) > 4 else ''}); rerun the participant level",
                )
    return reasons


def _damaged_rows(items: list[tuple[RoiTable, str]]) -> pd.DataFrame:
    rows = [
        {"subject": table.subject, "session": table.session, "stage": "inputs", "reason": reason}
        for table, reason in items
    ]
    return pd.DataFrame(rows, columns=["subject", "session", "stage", "reason"])


def _measure_rows(
    frame: pd.DataFrame, suffix: np.ndarray, measures: tuple[str, ...]
) -> list[pd.DataFrame]:
    keep = ["subject", "session", "roi", "hemisphere"]
    cbf, att = frame[suffix == "cbf"], frame[suffix == "att"]
    rows = []
    for measure, source, column in (
        ("cbf", cbf, "mean"),
        ("rcbf", cbf, "relative_to_reference"),
        ("att", att, "mean"),
    ):
        if measure in measures:
            rows.append(source[keep].assign(measure=measure, value=source[column]))
    if "ai" in measures:
        left = cbf[cbf["roi"].str.endswith("_L") & cbf["hemisphere"].eq("L")]
        rows.append(
            left[keep].assign(
                roi=left["roi"].str[:-2],
                hemisphere="L-R",
                measure="ai",
                value=left["asymmetry_index"],
            )
        )
    return rows


def orient_asymmetry(values: pd.DataFrame, unsided: str = "keep") -> pd.DataFrame:
    """Turn asymmetry indices towards the hemisphere that produces the aura.

    ``aura_side`` is the side of the symptoms (visual field, body); the hemisphere that
    produces them is the other one. ``ai`` rows of a unit with ``aura_side`` ``L`` (right
    hemisphere affected) change sign, so that a positive index always means "affected
    hemisphere > other hemisphere" (a hypoperfused affected hemisphere is negative); ``R``
    keeps the left-minus-right sign. Units without a side keep the left-minus-right index
    (``unsided = "keep"``) or lose their ``ai`` rows (``"exclude"``). The column
    ``orientation`` records the choice per row.

    Parameters
    ----------
    values : pandas.DataFrame
        Long table with ``measure``, ``value`` and ``aura_side`` columns.
    unsided : str
        ``"keep"`` or ``"exclude"``.

    Returns
    -------
    pandas.DataFrame
        A copy with oriented ``ai`` values and an ``orientation`` column.
    """
    values = values.copy()
    is_ai = values["measure"].eq("ai")
    side = values["aura_side"].fillna("")
    sign = np.where(side.eq("L"), -1.0, 1.0)
    values.loc[is_ai, "value"] = values.loc[is_ai, "value"] * sign[is_ai.to_numpy()]
    orientation = np.select(
        [~is_ai, side.eq("L"), side.eq("R")],
        ["n/a", "affected=R (aura L)", "affected=L (aura R)"],
        default="none (L-R)",
    )
    values["orientation"] = orientation
    if unsided == "exclude":
        values = values[~(is_ai & side.eq(""))]
    return values.reset_index(drop=True)
