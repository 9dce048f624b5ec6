"""Regional values of a simulated cohort without images, for fast checks of the group level.

The participants, sessions, factors, effects (fixed or along the attack) and sites are the
ones :func:`aslmig.sim.plan.plan_cohort` draws for the image simulator, so a cohort checked
here is the cohort ``aslmig simulate`` would write. Per session and region::

    truth    = gm_cbf x participant factor x session factor x region factor x (1 + effects)
    measured = site scale x (truth + site offset) x (1 + N(0, measurement_sd))

An effect changes only the region it names (in the images, a region inside it, e.g. the
calcarine cortex within the occipital cortex, changes too). The result has the columns of the
group level's ``roi_values.tsv``, so it can be modelled directly.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from aslmig.bids.derivatives import ROI_VALUES_COLUMNS
from aslmig.sim.plan import STREAM_PURPOSE, plan_cohort, session_change, stream_rng
from aslmig.sim.spec import CohortSpec, check_spec


def simulate_roi_values(
    spec: CohortSpec, rois: Sequence[str], measurement_sd: float = 0.05
) -> pd.DataFrame:
    """Return measured regional CBF of every session of a simulated cohort.

    Parameters
    ----------
    spec : CohortSpec
        The cohort (groups, phases, effects, sites, variability, seed).
    rois : sequence of str
        Region names; every region gets a per-participant factor (``spec.region_sd``).
    measurement_sd : float
        SD of the multiplicative measurement error of one regional value (fraction).

    Returns
    -------
    pandas.DataFrame
        Long table with the columns of ``roi_values.tsv``
        (:data:`aslmig.bids.derivatives.ROI_VALUES_COLUMNS`; measure ``cbf``).
    """
    check_spec(spec)
    rois = list(rois)
    rows = []
    for participant in plan_cohort(spec, rois):
        site = participant.site
        for session in participant.sessions:
            rng = stream_rng(spec, *session.key, STREAM_PURPOSE["noise"], 3)
            noise = 1.0 + measurement_sd * rng.standard_normal(len(rois))
            base = spec.gm_cbf * participant.global_factor * session.factor
            for roi, error in zip(rois, noise, strict=True):
                truth = base * participant.region_factors[roi]
                for effect in spec.effects:
                    if effect.roi == roi:
                        truth *= 1.0 + session_change(effect, participant, session)
                measured = truth if site is None else site.scale * (truth + site.offset)
                rows.append(
                    {
                        "subject": participant.label,
                        "session": session.label,
                        "group": participant.group,
                        "phase": session.phase,
                        "phase_source": "column",
                        "age": float(participant.age),
                        "sex": participant.sex,
                        "site": site.name if site else "",
                        "aura_side": {"left": "L", "right": "R"}.get(participant.aura_side, ""),
                        "hours_since_onset": _hours(session.hours_since_onset),
                        "hours_to_next_onset": _hours(session.hours_to_next_onset),
                        "roi": roi,
                        "hemisphere": roi[-1] if roi.endswith(("_L", "_R")) else "n/a",
                        "measure": "cbf",
                        "orientation": "n/a",
                        "value": measured * error,
                        "n_runs": 1,
                    }
                )
    return pd.DataFrame(rows, columns=list(ROI_VALUES_COLUMNS))


def _hours(value: float | None) -> float:
    return np.nan if value is None else float(value)
