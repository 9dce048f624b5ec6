"""The physical constants the CBF engine uses for a validated run (metadata + overrides)."""

from __future__ import annotations

import re
from typing import Any

from aslmig.bids.layout import AslRun
from aslmig.bids.sidecars import relative_name
from aslmig.cbf.constants import QuantificationConstants, resolve_constants
from aslmig.config import PhysicsConfig
from aslmig.errors import InputError


def constants_for(run: AslRun, physics: PhysicsConfig) -> QuantificationConstants:
    """Resolve the quantification constants of a run from its metadata and the overrides.

    Parameters
    ----------
    run : AslRun
        A validated run.
    physics : PhysicsConfig
        User overrides.

    Returns
    -------
    QuantificationConstants
        The values the engine will use, each with its source.
    """
    meta = run.metadata
    pulses = meta.background_suppression_pulses if meta.background_suppression else 0
    try:
        return resolve_constants(
            meta.labeling_type,
            meta.magnetic_field_strength,
            sidecar_labeling_efficiency=meta.labeling_efficiency,
            bs_pulses=pulses,
            overrides=physics.overrides(),
        )
    except ValueError as error:
        name = relative_name(run.sidecar_files[-1], run.dataset_root)
        problem = re.sub(r"overrides\['(\w+)'\]", _option_name, str(error))
        raise InputError(name, problem) from None


def _option_name(match: re.Match) -> str:
    """Name a constant as the user sets it: the option and the config-file key."""
    key = match.group(1)
    return f"--{key.replace('_', '-')} (or [physics] {key} in --config-file)"


def constants_for_run(run: AslRun, physics: PhysicsConfig) -> dict[str, dict[str, Any]]:
    """Return name -> {value, units, source} of each constant used for a run."""
    resolved = constants_for(run, physics).to_dict()
    return {name: record for name, record in resolved.items() if isinstance(record, dict)}
