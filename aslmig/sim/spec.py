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

import numpy as np

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
_PROFILE_PATTERN = re.compile(
    r"^\s*([^:=\s]+)\s*:\s*([^:=\s]+)\s*=\s*(biphasic|profile)\((.*)\)\s*$"
)
_PLATEAU_PATTERN = re.compile(r"^\s*([-+]?[0-9.eE+-]+)\s*@\s*([0-9.]+)\s*-\s*([0-9.]+)\s*h\s*$")
_SITE_PATTERN = re.compile(r"^\s*([A-Za-z0-9]+)\s*=\s*([0-9.eE+-]+?)\s*(?:([-+])\s*([0-9.]+))?\s*$")


@dataclass(frozen=True)
class Effect:
    """A fractional change of CBF in one region for one group and phase, or along the attack.

    Attributes
    ----------
    group : str
        ``HC``, ``MwA``, ``MwoA`` or ``*`` (every group).
    phase : str
        A migraine phase or ``*`` (every phase); ``*`` for a time profile.
    roi : str
        Region name of the atlas (``occipital_cortex_L`` ...).
    change : float
        Fractional change, e.g. ``-0.15`` for -15 %; grey-matter CBF in the region is
        multiplied by ``1 + change`` (white-matter CBF for the ``white_matter`` region).
        Unused when ``profile`` is given.
    profile : tuple of (change, start, end)
        A change that follows the hours since the attack onset: plateaus of ``change`` from
        ``start`` to ``end`` hours, joined by straight lines, and no change before the first
        plateau, after the last one, or in sessions without an attack time.
    """

    group: str
    phase: str
    roi: str
    change: float = 0.0
    profile: tuple[tuple[float, float, float], ...] = ()

    def applies_to(self, group: str, phase: str) -> bool:
        """Whether the effect applies to a participant of ``group`` in a ``phase`` session."""
        return self.group in (WILDCARD, group) and self.phase in (WILDCARD, phase)

    def change_at(self, group: str, phase: str, hours_since_onset: float | None) -> float:
        """Fractional change in a session of ``group``, ``phase``, at ``hours_since_onset``."""
        if not self.applies_to(group, phase):
            return 0.0
        if not self.profile:
            return self.change
        if hours_since_onset is None:
            return 0.0
        return profile_change(self.profile, hours_since_onset)

    def __str__(self) -> str:
        if self.profile:
            plateaus = ",".join(f"{c:+g}@{a:g}-{b:g}h" for c, a, b in self.profile)
            return f"{self.group}:{self.roi}=profile({plateaus})"
        return f"{self.group}:{self.phase}:{self.roi}={self.change:g}"


def profile_change(profile: Sequence[tuple[float, float, float]], hours: float) -> float:
    """Piecewise-linear change through the plateaus of a profile; 0 outside them.

    Parameters
    ----------
    profile : sequence of (change, start, end)
        Plateaus in time order, not overlapping.
    hours : float
        Hours since the attack onset.

    Returns
    -------
    float
        The plateau's change inside a plateau, linear between two plateaus, 0 before the
        first start and after the last end.
    """
    corners_t = [t for _, start, end in profile for t in (start, end)]
    corners_c = [c for change, _, _ in profile for c in (change, change)]
    if hours < corners_t[0] or hours > corners_t[-1]:
        return 0.0
    return float(np.interp(hours, corners_t, corners_c))


@dataclass(frozen=True)
class SiteEffect:
    """How one acquisition site distorts the CBF it measures (the truth is unchanged).

    Attributes
    ----------
    name : str
        Site label written to ``participants.tsv``.
    scale : float
        Multiplicative effect: measured CBF = ``scale`` x (true CBF + ``offset``), e.g. 0.8 for
        a labeling efficiency 20 % below the one in the sidecars.
    offset : float
        Additive effect, mL/100 g/min (e.g. a vascular or background-suppression bias).
    """

    name: str
    scale: float = 1.0
    offset: float = 0.0

    def __str__(self) -> str:
        return f"{self.name}={self.scale:g}{self.offset:+g}"


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
        Regional CBF changes (they multiply when several apply), fixed per phase or
        following the hours since the attack onset.
    sites : tuple of SiteEffect
        Acquisition sites: participants are assigned to them in turn within each group, and
        each distorts the CBF it measures (none: one site, no ``site`` column).
    site_imbalance : float
        Probability (0-1) that a participant goes to its group's "home" site (group number
        modulo the number of sites) instead of the next site in turn: 0 balances the groups
        across sites, values near 1 confound site and group.
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
    sites: tuple[SiteEffect, ...] = ()
    site_imbalance: float = 0.0
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
        out["sites"] = [asdict(site) for site in self.sites]
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
    """Parse ``GROUP:PHASE:ROI=CHANGE`` or a time profile ``GROUP:ROI=biphasic(...)``.

    A time profile lists plateaus ``CHANGE@START-ENDh`` (hours since the attack onset),
    e.g. ``MwA:occipital_cortex_L=biphasic(-0.20@0-2h,+0.15@6-24h)``: -20 % from 0 to 2 h,
    a straight line to +15 % at 6 h, +15 % until 24 h, then no change (see
    :func:`profile_change`). ``biphasic`` needs two plateaus of opposite sign, ``profile``
    one or more.

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
    profile = _PROFILE_PATTERN.match(str(text))
    if profile:
        return _parse_profile(text, option, *profile.groups())
    match = _EFFECT_PATTERN.match(str(text))
    fix = (
        "write GROUP:PHASE:ROI=CHANGE, e.g. MwA:ictal:occipital_cortex_L=-0.15, or "
        "GROUP:ROI=biphasic(-0.20@0-2h,+0.15@6-24h)"
    )
    if not match:
        raise InputError(option, f"{quote(text)} is not GROUP:PHASE:ROI=CHANGE", fix)
    group, phase, roi, change = match.groups()
    try:
        value = float(change)
    except ValueError:
        raise InputError(option, f"{quote(text)}: {quote(change)} is not a number", fix) from None
    return Effect(group, phase, roi, value)


def _parse_profile(text: str, option: str, group: str, roi: str, kind: str, body: str) -> Effect:
    fix = "write plateaus CHANGE@START-ENDh in time order, e.g. biphasic(-0.20@0-2h,+0.15@6-24h)"
    plateaus = []
    for part in body.split(","):
        match = _PLATEAU_PATTERN.match(part)
        try:
            change, start, end = (float(value) for value in match.groups()) if match else ()
        except ValueError:
            match = None
        if not match:
            raise InputError(option, f"{quote(text)}: {quote(part)} is not CHANGE@START-ENDh", fix)
        plateaus.append((change, start, end))
    times = [t for _, start, end in plateaus for t in (start, end)]
    if any(later < earlier for earlier, later in zip(times, times[1:], strict=False)):
        raise InputError(option, f"{quote(text)}: the plateaus overlap or are not in order", fix)
    signs = {change > 0 for change, _, _ in plateaus if change}
    if kind == "biphasic" and (len(plateaus) != 2 or len(signs) != 2):
        text = f"{quote(text)}: biphasic needs two plateaus of opposite sign"
        raise InputError(option, text, fix)
    return Effect(group, WILDCARD, roi, profile=tuple(plateaus))


def parse_site(text: str, option: str = "--site") -> SiteEffect:
    """Parse ``NAME=SCALE[+OFFSET]``, e.g. ``B=0.8`` or ``C=1.1-4`` (offset in mL/100 g/min).

    Parameters
    ----------
    text : str
        The site and its distortion of the measured CBF.
    option : str
        Option name for messages.

    Returns
    -------
    SiteEffect
        The parsed site.
    """
    match = _SITE_PATTERN.match(str(text))
    fix = "write NAME=SCALE[+OFFSET], e.g. --site A=1 --site B=0.8+3"
    try:
        name, scale, sign, offset = match.groups() if match else (None,) * 4
        if name is None:
            raise ValueError(text)
        value = float(offset or 0.0) * (-1.0 if sign == "-" else 1.0)
        return SiteEffect(name, float(scale), value)
    except ValueError:
        raise InputError(option, f"{quote(text)} is not NAME=SCALE[+OFFSET]", fix) from None


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
        changes = [change for change, _, _ in effect.profile] or [effect.change]
        if not all(math.isfinite(change) and change > -1 for change in changes):
            raise InputError(
                "--effect", f"{quote(str(effect))}: the change must be a fraction above -1"
            )


def _check_sites(spec: CohortSpec) -> None:
    if not (math.isfinite(spec.site_imbalance) and 0 <= spec.site_imbalance <= 1):
        raise InputError("--site-imbalance", f"is {quote(spec.site_imbalance)}",
                         "give a probability between 0 and 1")  # fmt: skip
    names = [site.name for site in spec.sites]
    if len(set(names)) != len(names):
        raise InputError("--site", "names a site twice", "give each site once")
    for site in spec.sites:
        if not (math.isfinite(site.scale) and 0.2 <= site.scale <= 5):
            raise InputError("--site", f"{quote(str(site))}: scale {site.scale:g}",
                             "give a factor between 0.2 and 5")  # fmt: skip
        if not (math.isfinite(site.offset) and abs(site.offset) < spec.wm_cbf + spec.gm_cbf):
            raise InputError("--site", f"{quote(str(site))}: offset {site.offset:g}",
                             "give an offset smaller than the CBF itself")  # fmt: skip


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
    _check_sites(spec)
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
