"""Physical constants that the CBF engine will use for a run (shown by --dry-run)."""

from __future__ import annotations

from typing import Any

from aslmig.bids.layout import AslRun
from aslmig.config import PhysicsConfig


def constants_for_run(run: AslRun, physics: PhysicsConfig) -> dict[str, Any]:
    """Return name -> record of the constants for a run (filled in by the CBF engine)."""
    return {}
