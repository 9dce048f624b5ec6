"""The ``--dry-run`` plan: per participant and run, the files found and the decisions made."""

from __future__ import annotations

import re
from collections.abc import Callable
from itertools import groupby
from pathlib import Path
from typing import Any

from aslmig.bids.anat_derivatives import AnatDerivatives
from aslmig.bids.layout import AslRun
from aslmig.bids.metadata import AslMetadata
from aslmig.bids.sidecars import relative_name
from aslmig.workflows.constants import QuantificationPlan


def _seconds(values: tuple[float, ...]) -> str:
    return ", ".join(f"{value:g}" for value in values) + " s"


def readout(metadata: AslMetadata) -> str:
    """Describe the readout, e.g. ``2D (24 slices, per-slice PLD from SliceTiming)``."""
    if metadata.acquisition_type == "3D":
        return "3D"
    n_slices = len(metadata.slice_timing or ())
    return f"2D ({n_slices} slices, per-slice PLD from SliceTiming)"


def model_name(metadata: AslMetadata) -> str:
    """Name the quantification model that will be applied."""
    if metadata.is_cbf_only:
        return "none: scanner CBF maps passed through"
    if metadata.is_multi_delay:
        return f"general kinetic model fit (CBF + ATT) over {len(metadata.signal_plds)} delays"
    return f"white-paper single-delay {metadata.labeling_type}"


def delays(metadata: AslMetadata) -> str:
    """Describe the post-labeling delays (inversion times for PASL)."""
    name = "TI" if metadata.labeling_type == "PASL" else "PLD"
    plds = metadata.signal_plds
    text = (
        f"{name} {_seconds(plds)}"
        if len(plds) <= 8
        else (f"{name} {len(plds)} values from {plds[0]:g} to {plds[-1]:g} s")
    )
    if metadata.labeling_duration:
        durations = sorted(
            {
                duration
                for duration, kind in zip(
                    metadata.labeling_duration, metadata.volume_types, strict=True
                )
                if kind not in ("m0scan", "noRF")
            }
        )
        text += f"; labeling duration {_seconds(tuple(durations))}"
    if metadata.bolus_cutoff_delay_time:
        text += (
            f"; bolus cut-off {metadata.bolus_cutoff_technique} at "
            f"{_seconds(metadata.bolus_cutoff_delay_time)} (TI1 = "
            f"{metadata.bolus_cutoff_delay_time[0]:g} s)"
        )
    elif metadata.labeling_type == "PASL":
        text += "; no bolus cut-off (BolusCutOffFlag false)"
    return text


def quantification_lines(plan: QuantificationPlan) -> list[tuple[str, str]]:
    """Plan lines of the decisions: vendor scaling, arterial component, QUIPSS I, warnings."""
    acquisition = plan.acquisition
    conventions = [
        f"{name}: {image.rule}" for name, image in acquisition.scaling.images if image.vendor
    ]
    lines = [("scaling" if number == 0 else "", text) for number, text in enumerate(conventions)]
    if acquisition.is_multi_delay:
        lines.append(("arterial", plan.arterial.reason))
    elif acquisition.labeling_type == "PASL" and acquisition.bolus_cutoff_technique == "QUIPSS":
        lines.append(("equation", "QUIPSS I: bolus term TI - TI1 (Wong et al. 1998)"))
    lines.extend(("warning", message) for message in plan.warning_messages)
    return lines


def anatomy_lines(derivatives: AnatDerivatives | None) -> list[tuple[str, str]]:
    """Plan lines of an anatomy taken from ``--derivatives anat=`` (none without it)."""
    if derivatives is None:
        return []
    names = ", ".join(path.relative_to(derivatives.dataset).as_posix()
                      for path in (*derivatives.files, derivatives.from_template))  # fmt: skip
    return [
        ("anatomy", f"from {derivatives.describe()}; aslmig's anatomy stage is skipped"),
        ("", names),
    ]


def describe_run(
    run: AslRun,
    root: Path,
    constants: Callable[[AslRun], dict[str, Any]] | None = None,
    decisions: Callable[[AslRun], list[tuple[str, str]]] | None = None,
) -> list[tuple[str, str]]:
    """List (heading, text) lines that describe one run's inputs and decisions.

    Parameters
    ----------
    run : AslRun
        A validated run.
    root : Path
        Dataset root, for relative names.
    constants : callable, optional
        Returns the physical constants that will be used for the run (name -> record with
        ``value``, ``unit`` and ``source``).
    decisions : callable, optional
        Returns more (heading, text) lines for the run (e.g. :func:`quantification_lines`).

    Returns
    -------
    list of (str, str)
        Lines of the plan.
    """
    meta = run.metadata
    counts = ", ".join(f"{count} {kind}" for kind, count in meta.volume_counts.items())
    suppression = "no background suppression"
    if meta.background_suppression:
        pulses = meta.background_suppression_pulses
        suppression = "background suppression" + (f" ({pulses} pulses)" if pulses else "")
    lines = [
        ("series", relative_name(run.asl_file, root)),
        ("aslcontext", f"{relative_name(run.aslcontext_file, root)}: {counts}"),
        ("sidecars", ", ".join(relative_name(path, root) for path in run.sidecar_files)),
        ("labeling", f"{meta.labeling_type}, {meta.magnetic_field_strength:g} T, {suppression}"),
        ("readout", readout(meta)),
        ("delays", delays(meta)),
        ("M0", _m0_line(run, root)),
        ("T1w", _t1w_line(run, root)),
        ("model", model_name(meta)),
    ]
    if decisions is not None:
        lines.extend(decisions(run))
    if constants is not None:
        for number, (name, record) in enumerate(constants(run).items()):
            lines.append(("constants" if number == 0 else "", f"{name} = {_constant_line(record)}"))
    return lines


# "Alsop DC et al. Recommended ... Magn Reson Med 2015;73:102-116" -> "Alsop 2015"
_CITATION = re.compile(r"([A-Z][a-z]+) [A-Z]{1,3}\b[^()]*?\b((?:19|20)\d\d)\b[^()]*?(?=\s*[()]|$)")


def short_source(source: str) -> str:
    """Shorten each full citation in a source text to 'Author Year'."""
    return _CITATION.sub(lambda match: f"{match.group(1)} {match.group(2)}", source)


def _constant_line(record: dict[str, Any]) -> str:
    units = record.get("units", "")
    units = "" if units in ("", "1") else f" {units}"
    value = "unknown" if record["value"] is None else f"{record['value']:g}{units}"
    return f"{value} ({short_source(record.get('source', ''))})"


def _m0_line(run: AslRun, root: Path) -> str:
    if run.m0_file is None:
        return f"{run.metadata.m0_type}: {run.m0_reason}"
    text = f"Separate: {relative_name(run.m0_file, root)} ({run.m0_reason}"
    if run.m0_metadata is not None:
        text += f", {run.m0_metadata.n_volumes} volume(s), TR "
        text += _seconds(tuple(sorted(set(run.m0_metadata.repetition_time_preparation))))
    text += ")"
    for pepolar in run.pepolar_m0_files:
        text += f"; reverse phase-encoded M0 {relative_name(pepolar, root)}"
    return text


def _t1w_line(run: AslRun, root: Path) -> str:
    if run.t1w_file is None:
        return run.t1w_reason
    return f"{relative_name(run.t1w_file, root)} ({run.t1w_reason})"


def format_plan(
    runs: list[AslRun],
    root: Path,
    constants: Callable[[AslRun], dict[str, Any]] | None = None,
    decisions: Callable[[AslRun], list[tuple[str, str]]] | None = None,
) -> str:
    """Format the dry-run plan of all runs, grouped by participant.

    Parameters
    ----------
    runs : list of AslRun
        Validated runs, sorted by participant.
    root : Path
        Dataset root.
    constants, decisions : callable, optional
        See :func:`describe_run`.

    Returns
    -------
    str
        The plan as text.
    """
    blocks = [f"aslmig dry run: {len(runs)} ASL run(s) in {root}"]
    for subject, subject_runs in groupby(runs, key=lambda run: run.subject):
        subject_runs = list(subject_runs)
        blocks.append(f"\nsub-{subject}: {len(subject_runs)} run(s)")
        for run in subject_runs:
            blocks.append(f"  {run.name}")
            lines = describe_run(run, root, constants, decisions)
            blocks.extend(f"    {heading:<12} {text}" for heading, text in lines)
    blocks.append("\nNothing was computed or written (--dry-run).")
    return "\n".join(blocks)
