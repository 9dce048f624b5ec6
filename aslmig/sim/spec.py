"""What a simulated cohort looks like: groups, sessions, effects, acquisition, variability.

:class:`CohortSpec` is the single description of a simulation; :func:`check_spec` validates it
and raises :class:`~aslmig.errors.InputError` naming the command-line option at fault, so the
command line and the Python API refuse bad input with the same one-line messages.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from aslmig.errors import InputError, quote

GROUPS = ("HC", "MwA", "MwoA")
PHASES = ("interictal", "preictal", "ictal", "postictal")
#: Phase given to the single session of a healthy control.
CONTROL_PHASE = "interictal"
WILDCARD = "*"
LABELING_TYPES = ("PCASL", "PASL")
READOUTS = ("2D", "3D")
M0_TYPES = ("Separate", "Included")
FIELD_STRENGTHS = (1.5, 3.0)
_EFFECT_PATTERN = re.compile(r"^\s*([^:=\s]+)\s*:\s*([^:=\s]+)\s*:\s*([^:=\s]+)\s*=\s*(\S+)\s*$")


@dataclass(frozen=True)
class Effect:
    """A fractional change of CBF in one region for one group and phase.

    Attributes
    ----------
    group : str
        ``HC``, ``MwA``, ``MwoA`` or ``*`` (every group).
    phase : str
        A migraine phase or ``*`` (every phase).
    roi : str
        Region name of the atlas (``occipital_cortex_L`` ...).
    change : float
        Fractional change, e.g. ``-0.15`` for -15 %; grey-matter CBF in the region is
        multiplied by ``1 + change`` (white-matter CBF for the ``white_matter`` region).
    """

    group: str
    phase: str
    roi: str
    change: float

    def applies_to(self, group: str, phase: str) -> bool:
        """Whether the effect applies to a participant of ``group`` in a ``phase`` session."""
        return self.group in (WILDCARD, group) and self.phase in (WILDCARD, phase)

    def __str__(self) -> str:
        return f"{self.group}:{self.phase}:{self.roi}={self.change:g}"


@dataclass(frozen=True)
class CohortSpec:
    """Everything that defines a simulated cohort (defaults give a small 3 T PCASL study).

    Attributes
    ----------
    n_per_group : Mapping[str, int]
        Participants per group (``HC``, ``MwA``, ``MwoA``); groups left out have none.
    phases : tuple of str
        Session phases of each patient (one session per phase, in this order); healthy
        controls have one ``interictal`` session.
    effects : tuple of Effect
        Regional CBF changes (they multiply when several apply).
    subject_sd : float
        SD of the per-participant global CBF factor (1 + N(0, SD)).
    region_sd : float
        SD of the per-participant, per-region factor of each atlas region.
    session_sd : float
        SD of the per-session global CBF factor (test-retest variability).
    gm_cbf, wm_cbf : float
        Baseline grey- and white-matter CBF, mL/100 g/min.
    att_gm, att_wm : float
        Arterial transit times (s) of grey and white matter (multi-delay model).
    labeling_type : str
        ``PCASL`` or ``PASL``.
    plds : tuple of float
        Post-labeling delays (PCASL) or inversion times TI (PASL), s; more than one value
        gives a multi-delay acquisition.
    labeling_duration : float
        PCASL labeling duration τ, s.
    bolus_cutoff : float
        PASL bolus duration TI1 (QUIPSS II ``BolusCutOffDelayTime``), s.
    pairs : int
        Control/label pairs per delay.
    readout : str
        ``3D`` or ``2D`` (2D writes ``SliceTiming``; each slice is read later).
    slice_duration : float
        Time between consecutive 2D slices, s.
    m0_type : str
        ``Separate`` (an ``m0scan`` file) or ``Included`` (m0scan volumes in the series).
    background_suppression_pulses : int
        Number of background-suppression pulses (0: none).
    field_strength : float
        1.5 or 3 T.
    snr : float
        Image signal-to-noise ratio: the noise SD of every volume is the mean brain M0
        divided by ``snr`` (``inf``: no noise).
    motion_translation_mm, motion_rotation_deg : float
        Largest head displacement and rotation within a series.
    pose_translation_mm, pose_rotation_deg : float
        Largest per-axis head position and rotation of a session relative to the template.
    scale_sd : float
        SD of the per-participant global head scaling (1 + N(0, SD), clipped to ±3 SD).
    voxel_mm : float
        Isotropic ASL voxel size, mm.
    t1w_voxel_mm : float
        Isotropic T1w voxel size, mm.
    atlas : str, Path or object
        Name or path of the ROI atlas (:func:`aslmig.atlas.rois.load_atlas`), or an atlas
        object with ``rois()`` and ``label_array()``.
    seed : int
        Seed of every random draw.
    """

    n_per_group: Mapping[str, int] = field(default_factory=lambda: {"HC": 2, "MwA": 2, "MwoA": 2})
    phases: tuple[str, ...] = ("interictal", "ictal")
    effects: tuple[Effect, ...] = ()
    subject_sd: float = 0.10
    region_sd: float = 0.05
    session_sd: float = 0.05
    gm_cbf: float = 60.0
    wm_cbf: float = 20.0
    att_gm: float = 0.8
    att_wm: float = 1.2
    labeling_type: str = "PCASL"
    plds: tuple[float, ...] = (1.8,)
    labeling_duration: float = 1.8
    bolus_cutoff: float = 0.8
    pairs: int = 4
    readout: str = "3D"
    slice_duration: float = 0.035
    m0_type: str = "Separate"
    background_suppression_pulses: int = 0
    field_strength: float = 3.0
    snr: float = 100.0
    motion_translation_mm: float = 0.0
    motion_rotation_deg: float = 0.0
    pose_translation_mm: float = 4.0
    pose_rotation_deg: float = 4.0
    scale_sd: float = 0.03
    voxel_mm: float = 4.0
    t1w_voxel_mm: float = 2.0
    atlas: Any = "MigraineASL"
    seed: int = 0

    @property
    def is_multi_delay(self) -> bool:
        """Whether more than one delay is acquired."""
        return len(set(self.plds)) > 1

    def to_dict(self) -> dict[str, Any]:
        """Return the specification as JSON-ready values."""
        out = {item.name: getattr(self, item.name) for item in fields(self)}
        out["n_per_group"] = dict(self.n_per_group)
        out["phases"] = list(self.phases)
        out["plds"] = list(self.plds)
        out["effects"] = [asdict(e) for e in self.effects]
        out["snr"] = "inf" if math.isinf(self.snr) else self.snr
        atlas = self.atlas
        out["atlas"] = atlas if isinstance(atlas, str) else str(getattr(atlas, "name", atlas))
        return out


def parse_counts(items: Sequence[str], option: str = "--n") -> dict[str, int]:
    """Parse ``GROUP=N`` items into participants per group.

    Parameters
    ----------
    items : sequence of str
        E.g. ``["HC=3", "MwA=3"]``.
    option : str
        Option name for messages.

    Returns
    -------
    dict
        Group -> count, in the order given.
    """
    counts: dict[str, int] = {}
    for item in items:
        group, sep, number = str(item).partition("=")
        if not sep:
            raise InputError(option, f"{quote(item)} is not GROUP=N", "e.g. --n HC=3 MwA=3")
        try:
            counts[group.strip()] = int(number)
        except ValueError:
            raise InputError(
                option, f"{quote(item)}: {quote(number)} is not a whole number"
            ) from None
    return counts


def parse_effect(text: str, option: str = "--effect") -> Effect:
    """Parse ``GROUP:PHASE:ROI=CHANGE`` (``*`` for any group or phase).

    Parameters
    ----------
    text : str
        E.g. ``"MwA:ictal:occipital_cortex_L=-0.15"``.
    option : str
        Option name for messages.

    Returns
    -------
    Effect
        The parsed effect (not yet checked against groups, phases and ROIs).
    """
    match = _EFFECT_PATTERN.match(str(text))
    fix = "write GROUP:PHASE:ROI=CHANGE, e.g. MwA:ictal:occipital_cortex_L=-0.15"
    if not match:
        raise InputError(option, f"{quote(text)} is not GROUP:PHASE:ROI=CHANGE", fix)
    group, phase, roi, change = match.groups()
    try:
        value = float(change)
    except ValueError:
        raise InputError(option, f"{quote(text)}: {quote(change)} is not a number", fix) from None
    return Effect(group, phase, roi, value)


def _positive(option: str, value: float, allow_inf: bool = False) -> None:
    ok = value > 0 and (math.isfinite(value) or (allow_inf and value == math.inf))
    if not ok:
        raise InputError(option, f"is {quote(value)}", "give a positive number")


def _non_negative(option: str, value: float) -> None:
    if not (math.isfinite(value) and value >= 0):
        raise InputError(option, f"is {quote(value)}", "give a number >= 0")


def _check_groups(spec: CohortSpec) -> None:
    if not spec.n_per_group:
        raise InputError("--n", "no participants requested", "e.g. --n HC=3 MwA=3")
    for group, count in spec.n_per_group.items():
        if group not in GROUPS:
            raise InputError("--n", f"unknown group {quote(group)}", f"use {', '.join(GROUPS)}")
        if int(count) != count or count <= 0:
            raise InputError("--n", f"{group}={count}", "give a whole number of participants > 0")
    if sum(spec.n_per_group.values()) > 999:
        raise InputError("--n", "more than 999 participants", "simulate fewer participants")


def _check_phases(spec: CohortSpec) -> None:
    if not spec.phases:
        raise InputError("--phases", "no phase given", f"use some of {', '.join(PHASES)}")
    for phase in spec.phases:
        if phase not in PHASES:
            raise InputError(
                "--phases", f"unknown phase {quote(phase)}", f"use {', '.join(PHASES)}"
            )
    if len(set(spec.phases)) != len(spec.phases):
        raise InputError("--phases", "lists a phase twice", "give each phase once")


def _check_effects(spec: CohortSpec) -> None:
    for effect in spec.effects:
        if effect.group != WILDCARD and effect.group not in GROUPS:
            raise InputError(
                "--effect",
                f"{quote(str(effect))}: unknown group {quote(effect.group)}",
                f"use {', '.join(GROUPS)} or *",
            )
        if effect.phase != WILDCARD and effect.phase not in PHASES:
            raise InputError(
                "--effect",
                f"{quote(str(effect))}: unknown phase {quote(effect.phase)}",
                f"use {', '.join(PHASES)} or *",
            )
        if not (math.isfinite(effect.change) and effect.change > -1):
            raise InputError(
                "--effect", f"{quote(str(effect))}: the change must be a fraction above -1"
            )


def _check_acquisition(spec: CohortSpec) -> None:
    if spec.labeling_type not in LABELING_TYPES:
        raise InputError(
            "--labeling", f"is {quote(spec.labeling_type)}", f"use {', '.join(LABELING_TYPES)}"
        )
    if spec.readout not in READOUTS:
        raise InputError("--readout", f"is {quote(spec.readout)}", "use 2D or 3D")
    if spec.m0_type not in M0_TYPES:
        raise InputError("--m0", f"is {quote(spec.m0_type)}", "use Separate or Included")
    if float(spec.field_strength) not in FIELD_STRENGTHS:
        raise InputError("--field-strength", f"is {quote(spec.field_strength)}", "use 1.5 or 3")
    if not spec.plds:
        raise InputError("--plds", "no delay given", "e.g. --plds 1.8")
    for pld in spec.plds:
        _positive("--plds", pld)
        if pld > 5:
            raise InputError("--plds", f"{pld:g} s is longer than 5 s", "give delays in seconds")
    if spec.labeling_type == "PASL" and min(spec.plds) <= spec.bolus_cutoff:
        raise InputError(
            "--plds", "every inversion time must exceed the bolus duration TI1 (--bolus-cutoff)"
        )
    for option, value in (
        ("--labeling-duration", spec.labeling_duration),
        ("--bolus-cutoff", spec.bolus_cutoff),
        ("--slice-duration", spec.slice_duration),
        ("--voxel", spec.voxel_mm),
        ("--t1w-voxel", spec.t1w_voxel_mm),
        ("--gm-cbf", spec.gm_cbf),
        ("--att-gm", spec.att_gm),
        ("--att-wm", spec.att_wm),
    ):
        _positive(option, value)
    _non_negative("--wm-cbf", spec.wm_cbf)
    if spec.voxel_mm < 1.5 or spec.t1w_voxel_mm < 1.0:
        raise InputError("--voxel", "voxels this small are slower than useful", "use >= 1.5 mm")
    if int(spec.pairs) != spec.pairs or spec.pairs < 1:
        raise InputError("--pairs", f"is {quote(spec.pairs)}", "give a whole number >= 1")
    pulses = spec.background_suppression_pulses
    if int(pulses) != pulses or not 0 <= pulses <= 8:
        raise InputError("--background-suppression", f"is {quote(pulses)}", "give 0-8 pulses")


def check_spec(spec: CohortSpec) -> None:
    """Refuse an impossible specification with a one-line :class:`InputError`.

    Region names of effects are checked later, against the atlas.

    Parameters
    ----------
    spec : CohortSpec
        The specification.
    """
    _check_groups(spec)
    _check_phases(spec)
    _check_effects(spec)
    _check_acquisition(spec)
    _positive("--snr", spec.snr, allow_inf=True)
    for option, value in (
        ("--subject-sd", spec.subject_sd),
        ("--region-sd", spec.region_sd),
        ("--session-sd", spec.session_sd),
        ("--scale-sd", spec.scale_sd),
        ("--motion-translation", spec.motion_translation_mm),
        ("--motion-rotation", spec.motion_rotation_deg),
        ("--pose-translation", spec.pose_translation_mm),
        ("--pose-rotation", spec.pose_rotation_deg),
    ):
        _non_negative(option, value)
    for option, value in (
        ("--subject-sd", spec.subject_sd),
        ("--region-sd", spec.region_sd),
        ("--session-sd", spec.session_sd),
        ("--scale-sd", spec.scale_sd),
    ):
        if value > 0.3:
            raise InputError(option, f"is {value:g}", "use at most 0.3 (larger SDs allow CBF <= 0)")


def output_problem(out_dir: Path) -> str | None:
    """Return why ``out_dir`` cannot receive a new dataset, or None."""
    if out_dir.exists() and not out_dir.is_dir():
        return "exists and is not a directory"
    if out_dir.is_dir() and any(out_dir.iterdir()):
        return "is not empty"
    return None
