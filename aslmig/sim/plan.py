"""Planning a simulated cohort: participants, sessions, their random factors and sites.

Every random draw comes from a stream keyed by the seed and the participant (and session),
so that a plan is the same whether it is rendered into images
(:mod:`aslmig.sim.cohort`) or into regional values (:mod:`aslmig.sim.roitable`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from aslmig.sim.anatomy import random_pose
from aslmig.sim.spec import CONTROL_PHASE, GROUPS, WILDCARD, CohortSpec, SiteEffect

SEX_FEMALE_PROBABILITY = {"HC": 0.6, "MwA": 0.75, "MwoA": 0.75}
AGE_RANGE = (20, 55)
#: Hours since the attack onset of ictal and postictal sessions: log-uniform over these ranges
#: (as many sessions between 0.5 and 1 h as between 12 and 24 h, so that the early hours of
#: an attack, when the aura's hypoperfusion lasts, are sampled).
ICTAL_HOURS = {"ictal": (0.5, 24.0), "postictal": (24.0, 72.0)}
#: Hours to the next attack onset of preictal sessions (uniform).
PREICTAL_HOURS = (2.0, 48.0)
STREAM_PURPOSE = {"participant": 0, "session": 1, "noise": 2}


@dataclass(frozen=True)
class SessionPlan:
    """One session of a participant.

    Attributes
    ----------
    label : str
        Session label (``1``, ``2`` ...).
    phase : str
        Migraine phase.
    hours_since_onset : float or None
        Hours since the attack began (ictal and postictal sessions).
    hours_to_next_onset : float or None
        Hours to the next attack onset (preictal sessions).
    pose : ndarray
        Head pose (mm, rad) relative to the template.
    factor : float
        Per-session global CBF factor.
    key : tuple of int
        Random-stream key of the session.
    """

    label: str
    phase: str
    hours_since_onset: float | None
    hours_to_next_onset: float | None
    pose: np.ndarray
    factor: float
    key: tuple[int, ...]


@dataclass(frozen=True)
class ParticipantPlan:
    """One participant and the truth that does not change between sessions.

    Attributes
    ----------
    label : str
        Participant label without ``sub-``.
    group : str
        ``HC``, ``MwA`` or ``MwoA``.
    age : int
        Years.
    sex : str
        ``F`` or ``M``.
    aura_side : str
        Typical aura side (``left``/``right``, ``n/a`` without aura).
    site : SiteEffect or None
        Acquisition site (None: single-site cohort).
    scale : float
        Global head scaling.
    global_factor : float
        Per-participant global CBF factor.
    region_factors : dict
        Region name -> CBF factor.
    sessions : tuple of SessionPlan
        Sessions in order.
    """

    label: str
    group: str
    age: int
    sex: str
    aura_side: str
    site: SiteEffect | None
    scale: float
    global_factor: float
    region_factors: dict[str, float] = field(repr=False)
    sessions: tuple[SessionPlan, ...]

    @property
    def participant_id(self) -> str:
        """``sub-<label>``."""
        return f"sub-{self.label}"


def stream_rng(spec: CohortSpec, *key: int) -> np.random.Generator:
    """Random stream of one purpose of one participant (and session) of a cohort."""
    return np.random.default_rng([int(spec.seed) & 0xFFFFFFFF, *key])


def _factor(rng: np.random.Generator, sd: float) -> float:
    """1 + N(0, sd), clipped to ±3 SD (always positive for sd <= 0.3)."""
    return float(1.0 + sd * np.clip(rng.standard_normal(), -3.0, 3.0))


def participant_label(group: str, number: int) -> str:
    """Label of the ``number``-th (1-based) participant of ``group``, e.g. ``mwa01``."""
    return f"{group.lower()}{number:02d}"


def session_phases(spec: CohortSpec, group: str) -> tuple[str, ...]:
    """Phases of a participant's sessions: the spec's phases; one interictal for controls."""
    return (CONTROL_PHASE,) if group == "HC" else tuple(spec.phases)


def _plan_sessions(spec: CohortSpec, key: tuple[int, ...], group: str) -> tuple[SessionPlan, ...]:
    sessions = []
    for number, phase in enumerate(session_phases(spec, group), start=1):
        session_key = (*key, STREAM_PURPOSE["session"], number)
        rng = stream_rng(spec, *session_key)
        pose = random_pose(rng, spec.pose_translation_mm, spec.pose_rotation_deg)
        factor = _factor(rng, spec.session_sd)
        hours, to_next = None, None
        if phase in ICTAL_HOURS:
            low, high = np.log(ICTAL_HOURS[phase])
            hours = round(float(np.exp(rng.uniform(low, high))), 2)
        elif phase == "preictal":
            to_next = round(float(rng.uniform(*PREICTAL_HOURS)), 1)
        sessions.append(SessionPlan(str(number), phase, hours, to_next, pose, factor, session_key))
    return tuple(sessions)


def aura_side(spec: CohortSpec, group: str, random_side: str) -> str:
    """Typical aura side of a participant: ``n/a`` without aura, else the visual-field side.

    When the MwA effects change one hemisphere only (regions ending in ``_L`` or ``_R``),
    the aura is on the opposite side of the visual field (a left occipital change gives a
    right-hemifield aura); otherwise the side is ``random_side``.
    """
    if group != "MwA":
        return "n/a"
    hemispheres = {
        effect.roi.rsplit("_", 1)[-1]
        for effect in spec.effects
        if effect.group in (WILDCARD, "MwA") and effect.roi.endswith(("_L", "_R"))
    }
    if len(hemispheres) == 1:
        return {"L": "right", "R": "left"}[hemispheres.pop()]
    return random_side


def _site(spec: CohortSpec, group: str, number: int, rng: np.random.Generator):
    """Return the participant's site: in turn, or its group's home (``site_imbalance``)."""
    if not spec.sites:
        return None
    home = rng.random() < spec.site_imbalance
    index = GROUPS.index(group) if home else number - 1
    return spec.sites[index % len(spec.sites)]


def plan_cohort(spec: CohortSpec, region_names: list[str] | None = None) -> list[ParticipantPlan]:
    """Draw the participants and sessions of a cohort (no images).

    Parameters
    ----------
    spec : CohortSpec
        The cohort specification.
    region_names : list of str, optional
        Regions that get a per-participant factor (``spec.region_sd``).

    Returns
    -------
    list of ParticipantPlan
        Participants ordered by group (``HC``, ``MwA``, ``MwoA``) and number.
    """
    plans = []
    for group in GROUPS:
        for number in range(1, int(spec.n_per_group.get(group, 0)) + 1):
            key = (GROUPS.index(group), number)
            rng = stream_rng(spec, *key, STREAM_PURPOSE["participant"])
            age = int(rng.integers(AGE_RANGE[0], AGE_RANGE[1] + 1))
            sex = "F" if rng.random() < SEX_FEMALE_PROBABILITY[group] else "M"
            random_side = ("left", "right")[int(rng.integers(2))]
            side = aura_side(spec, group, random_side)
            scale = _factor(rng, spec.scale_sd)
            global_factor = _factor(rng, spec.subject_sd)
            regions = {name: _factor(rng, spec.region_sd) for name in (region_names or [])}
            site = _site(spec, group, number, rng)
            plans.append(
                ParticipantPlan(
                    participant_label(group, number),
                    group,
                    age,
                    sex,
                    side,
                    site,
                    scale,
                    global_factor,
                    regions,
                    _plan_sessions(spec, key, group),
                )
            )
    return plans


def effect_tissue(roi: str) -> str:
    """Compartment an effect or regional factor acts on: WM for ``white_matter``, else GM."""
    return "WM" if roi == "white_matter" else "GM"


def session_change(effect, participant: ParticipantPlan, session: SessionPlan) -> float:
    """Fractional change of an effect in one session (by group, phase and attack time)."""
    return effect.change_at(participant.group, session.phase, session.hours_since_onset)


def site_distortion(
    site: SiteEffect | None, cbf_gm: np.ndarray, cbf_wm: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """CBF as a site measures it: ``scale * (cbf + offset)`` (the truth stays unchanged).

    The forward models are linear in CBF, so scaling the CBF that drives them is the same as
    scaling the difference signal, e.g. by a labeling efficiency that differs from the one in
    the sidecar.
    """
    if site is None:
        return cbf_gm, cbf_wm
    return site.scale * (cbf_gm + site.offset), site.scale * (cbf_wm + site.offset)
