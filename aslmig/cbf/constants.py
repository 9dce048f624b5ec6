"""Physical constants of ASL quantification, with their citations and provenance.

Every constant used by :mod:`aslmig.cbf` lives here, next to the reference it comes from.
:func:`resolve_constants` turns a labeling type, a field strength, the sidecar's
``LabelingEfficiency`` / background-suppression pulse count and the user's overrides into one
frozen :class:`QuantificationConstants`, whose :meth:`~QuantificationConstants.to_dict` lists
each value with the source it came from, ready to be written to an output sidecar.

Precedence, highest first: a user override (configuration) > the sidecar's
``LabelingEfficiency`` (labeling efficiency only) > the literature default (times
0.95 per background-suppression pulse when the pulse count is known).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

WHITE_PAPER = (
    "Alsop DC et al. Recommended implementation of arterial spin-labeled perfusion MRI for "
    "clinical applications. Magn Reson Med 2015;73:102-116"
)
WANG_2005 = (
    "Wang J et al. Amplitude-modulated continuous arterial spin-labeling 3.0-T perfusion MR "
    "imaging with a single coil. Radiology 2005;235:218-228"
)
GARCIA_2005 = (
    "Garcia DM, Duhamel G, Alsop DC. Efficiency of inversion pulses for background suppressed "
    "arterial spin labeling. Magn Reson Med 2005;54:366-372"
)
WANSAPURA_1999 = (
    "Wansapura JP et al. NMR relaxation times in the human brain at 3.0 tesla. "
    "J Magn Reson Imaging 1999;9:531-538 (grey matter T1 1.331 s; FSL BASIL rounds to 1.3 s)"
)
WRIGHT_2008 = (
    "Wright PJ et al. Water proton T1 measurements in brain tissue at 7, 3, and 1.5 T using "
    "IR-EPI, IR-TSE, and MPRAGE. MAGMA 2008;21:121-130 (grey matter T1 about 1.2 s at 1.5 T)"
)

#: Labeling types known to the quantification engine (ASL-BIDS ``ArterialSpinLabelingType``).
LABELING_TYPES = ("PCASL", "CASL", "PASL")

#: Blood-brain partition coefficient of water, mL/g (white paper).
PARTITION_COEFFICIENT = 0.9
#: Conversion from mL/g/s to mL/100 g/min (white paper).
UNIT_SCALE = 6000.0
#: Labeling efficiency per labeling type, without background suppression.
LABELING_EFFICIENCY = MappingProxyType({"PCASL": 0.85, "PASL": 0.98, "CASL": 0.68})
LABELING_EFFICIENCY_SOURCE = MappingProxyType(
    {"PCASL": WHITE_PAPER, "PASL": WHITE_PAPER, "CASL": f"{WHITE_PAPER}; {WANG_2005}"}
)
#: Multiplicative efficiency of each background-suppression inversion pulse.
BS_PULSE_EFFICIENCY = 0.95
#: T1 of arterial blood in seconds, by nominal field strength in tesla (white paper).
T1_BLOOD = MappingProxyType({1.5: 1.35, 3.0: 1.65})
#: T1 of (grey-matter) tissue in seconds, by nominal field strength in tesla.
T1_TISSUE = MappingProxyType({1.5: 1.2, 3.0: 1.33})
T1_TISSUE_SOURCE = MappingProxyType({1.5: WRIGHT_2008, 3.0: WANSAPURA_1999})
#: T1 of white matter in seconds, by nominal field strength (only where a source is cited);
#: used with tissue probability maps for a per-voxel tissue T1 in the full kinetic model.
T1_WHITE_MATTER = MappingProxyType({3.0: 0.832})
T1_WHITE_MATTER_SOURCE = MappingProxyType(
    {3.0: "Wansapura JP et al. J Magn Reson Imaging 1999;9:531-538 (white matter T1 0.832 s)"}
)
#: Grey- over white-matter perfusion in healthy adults, used where a typical ratio is needed
#: (the pseudo-CBF map of QEI, partial-volume weighting of tissue T1). Dolui et al. 2024,
#: J Magn Reson Imaging (QEI); the white paper's GM ~ 2-3 x WM.
GM_WM_FLOW_RATIO = 2.5
#: How far (tesla) a reported field strength may be from a nominal one (e.g. 2.89 T -> 3 T).
FIELD_STRENGTH_TOLERANCE_T = 0.25

#: Names that ``overrides`` may set, with their units.
CONSTANT_UNITS = MappingProxyType(
    {
        "partition_coefficient": "mL/g",
        "t1_blood": "s",
        "t1_tissue": "s",
        "t1_white_matter": "s",
        "labeling_efficiency": "1",
        "bs_pulse_efficiency": "1",
        "unit_scale": "(mL/100 g/min) / (mL/g/s)",
    }
)


#: Plausible range (lowest, highest, inclusive) of each constant, whatever its source
#: (command line, configuration file, sidecar): a value outside is a unit or typing mistake.
CONSTANT_RANGES = MappingProxyType(
    {
        "partition_coefficient": (0.1, 2.0),
        "t1_blood": (0.2, 5.0),
        "t1_tissue": (0.2, 5.0),
        "t1_white_matter": (0.2, 5.0),
        "labeling_efficiency": (0.01, 1.0),
        "bs_pulse_efficiency": (0.01, 1.0),
        "unit_scale": (1.0, 1e6),
    }
)


def check_constant(name: str, value: object) -> float:
    """Return a constant's value as a float, or raise ``ValueError`` saying what is wrong.

    One rule for every source of a constant (command line, configuration file, sidecar):
    it must be a finite number within :data:`CONSTANT_RANGES`. The message guesses the
    usual mistakes: a percentage for a fraction (85 for 0.85) and milliseconds for seconds
    (1650 for 1.65).

    Parameters
    ----------
    name : str
        A key of :data:`CONSTANT_UNITS`.
    value : object
        The value given.

    Returns
    -------
    float
        The checked value.
    """
    if name not in CONSTANT_RANGES:
        raise ValueError(f"unknown constant {name!r}; known: {sorted(CONSTANT_RANGES)}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} is not a number") from None
    low, high = CONSTANT_RANGES[name]
    units = CONSTANT_UNITS[name]
    if math.isfinite(number) and low <= number <= high:
        return number
    hint = ""
    if units == "1" and 1.0 < number <= 100.0:
        hint = f": it is a fraction, did you mean {number / 100:g}?"
    elif units == "s" and 1.0e2 <= number <= 1.0e4:
        hint = f": it is in seconds, did you mean {number / 1000:g} (milliseconds given)?"
    shown = "a fraction" if units == "1" else units
    given = repr(value) if isinstance(value, str) else f"{number:g}"
    raise ValueError(f"{name}={given} is outside {low:g}-{high:g} ({shown}){hint}")


@dataclass(frozen=True)
class QuantificationConstants:
    """The constants actually used to quantify one ASL run.

    Attributes
    ----------
    labeling_type : str
        ``"PCASL"``, ``"CASL"`` or ``"PASL"``.
    field_strength_t : float or None
        Magnetic field strength in tesla, as given.
    partition_coefficient : float
        Blood-brain partition coefficient λ, mL/g.
    t1_blood : float
        Longitudinal relaxation time of arterial blood, s.
    t1_tissue : float or None
        Longitudinal relaxation time of tissue, s (None when unknown for this field strength
        and not overridden; functions that need it then raise ``ValueError``).
    t1_white_matter : float or None
        T1 of white matter, s, for a per-voxel tissue T1 built from tissue maps (None when no
        source is cited at this field strength and it is not overridden).
    labeling_efficiency : float
        Labeling efficiency α, background suppression included.
    unit_scale : float
        Conversion from mL/g/s to mL/100 g/min (6000).
    bs_pulses : int or None
        Number of background-suppression pulses taken into account (None when unknown).
    bs_pulse_efficiency : float
        Efficiency factor per background-suppression pulse.
    sources : Mapping[str, str]
        Where each value came from (citation, ``"sidecar: ..."`` or ``"override"``).
    """

    labeling_type: str
    field_strength_t: float | None
    partition_coefficient: float
    t1_blood: float
    t1_tissue: float | None
    t1_white_matter: float | None
    labeling_efficiency: float
    unit_scale: float
    bs_pulses: int | None
    bs_pulse_efficiency: float
    sources: Mapping[str, str] = field(default_factory=dict, compare=False)

    def require_t1_tissue(self) -> float:
        """Return the tissue T1, or raise ``ValueError`` if it is unknown.

        Returns
        -------
        float
            Tissue T1 in seconds.
        """
        if self.t1_tissue is None:
            raise ValueError(
                "tissue T1 is unknown at this field strength; set overrides['t1_tissue'] (s)"
            )
        return self.t1_tissue

    def to_dict(self) -> dict[str, Any]:
        """List every constant with its value, units and source, for an output sidecar.

        Returns
        -------
        dict
            ``{name: {"value": ..., "units": ..., "source": ...}}`` plus ``labeling_type``,
            ``field_strength_t`` and ``bs_pulses``.
        """
        out: dict[str, Any] = {
            "labeling_type": self.labeling_type,
            "field_strength_t": self.field_strength_t,
            "bs_pulses": self.bs_pulses,
        }
        for name, units in CONSTANT_UNITS.items():
            out[name] = {
                "value": getattr(self, name),
                "units": units,
                "source": self.sources.get(name, ""),
            }
        return out


def normalize_labeling_type(labeling_type: str) -> str:
    """Return the canonical upper-case labeling type, or raise ``ValueError``.

    Parameters
    ----------
    labeling_type : str
        ASL-BIDS ``ArterialSpinLabelingType`` (case-insensitive).

    Returns
    -------
    str
        One of :data:`LABELING_TYPES`.
    """
    canonical = str(labeling_type).strip().upper()
    if canonical not in LABELING_TYPES:
        raise ValueError(
            f"unknown labeling type {labeling_type!r}; ArterialSpinLabelingType must be one of "
            f"{', '.join(LABELING_TYPES)}"
        )
    return canonical


def nominal_field_strength(field_strength_t: float | None) -> float | None:
    """Map a reported field strength to 1.5 or 3.0 T, or None if it is neither.

    Parameters
    ----------
    field_strength_t : float or None
        ``MagneticFieldStrength`` in tesla.

    Returns
    -------
    float or None
        The nominal field strength with tabulated T1 values.
    """
    if field_strength_t is None:
        return None
    for nominal in T1_BLOOD:
        if abs(float(field_strength_t) - nominal) <= FIELD_STRENGTH_TOLERANCE_T:
            return nominal
    return None


def _check_overrides(overrides: Mapping[str, float]) -> dict[str, float]:
    unknown = sorted(set(overrides) - set(CONSTANT_UNITS))
    if unknown:
        raise ValueError(
            f"unknown constant override(s) {unknown}; allowed names are {sorted(CONSTANT_UNITS)}"
        )
    return {name: check_constant(name, value) for name, value in overrides.items()}


def _default_efficiency(
    labeling_type: str, bs_pulses: int | None, bs_pulse_efficiency: float
) -> tuple[float, str]:
    base = LABELING_EFFICIENCY[labeling_type]
    source = f"default {base} for {labeling_type} ({LABELING_EFFICIENCY_SOURCE[labeling_type]})"
    if not bs_pulses:
        return base, source
    value = base * bs_pulse_efficiency**bs_pulses
    source += f" x {bs_pulse_efficiency}^{bs_pulses} background-suppression pulses ({GARCIA_2005})"
    return value, source


def _check_bs_pulses(bs_pulses: int | None) -> int | None:
    if bs_pulses is None:
        return None
    if int(bs_pulses) != bs_pulses or bs_pulses < 0:
        raise ValueError(
            f"BackgroundSuppressionNumberPulses={bs_pulses} must be a non-negative integer"
        )
    return int(bs_pulses)


def resolve_constants(
    labeling_type: str,
    field_strength_t: float | None,
    sidecar_labeling_efficiency: float | None = None,
    bs_pulses: int | None = None,
    overrides: Mapping[str, float] | None = None,
) -> QuantificationConstants:
    """Resolve the quantification constants for one ASL run.

    Parameters
    ----------
    labeling_type : str
        ASL-BIDS ``ArterialSpinLabelingType``: PCASL, CASL or PASL.
    field_strength_t : float or None
        ``MagneticFieldStrength`` in tesla. Defaults for T1 exist at 1.5 and 3 T (±0.25 T);
        at other field strengths ``overrides`` must give ``t1_blood``.
    sidecar_labeling_efficiency : float, optional
        The sidecar's ``LabelingEfficiency``; it replaces the default (background suppression
        is then assumed to be included in it).
    bs_pulses : int, optional
        ``BackgroundSuppressionNumberPulses``; each pulse multiplies the default efficiency by
        0.95. None means unknown (no correction), 0 means no background suppression.
    overrides : Mapping[str, float], optional
        User configuration; keys from :data:`CONSTANT_UNITS`. Overrides win over everything.

    Returns
    -------
    QuantificationConstants
        The values used, each with its source.

    Raises
    ------
    ValueError
        Unknown labeling type, unknown override name, non-positive values, or a field
        strength without tabulated T1 and no ``t1_blood`` override.
    """
    kind = normalize_labeling_type(labeling_type)
    user = _check_overrides(overrides or {})
    pulses = _check_bs_pulses(bs_pulses)
    nominal = nominal_field_strength(field_strength_t)
    sources: dict[str, str] = {}

    def pick(name: str, default: float | None, default_source: str) -> float | None:
        if name in user:
            sources[name] = "override (configuration)"
            return user[name]
        sources[name] = default_source
        return default

    partition = pick("partition_coefficient", PARTITION_COEFFICIENT, WHITE_PAPER)
    unit_scale = pick("unit_scale", UNIT_SCALE, WHITE_PAPER)
    bs_eff = pick("bs_pulse_efficiency", BS_PULSE_EFFICIENCY, GARCIA_2005)
    if nominal is None:
        t1_blood = pick("t1_blood", None, "")
        t1_tissue = pick("t1_tissue", None, "unknown at this field strength")
        t1_wm = pick("t1_white_matter", None, "unknown at this field strength")
        if t1_blood is None:
            raise ValueError(
                f"no default blood T1 for MagneticFieldStrength={field_strength_t} T "
                "(defaults exist at 1.5 and 3 T); set overrides['t1_blood'] (s)"
            )
    else:
        t1_blood = pick("t1_blood", T1_BLOOD[nominal], f"{WHITE_PAPER} ({nominal} T)")
        t1_tissue = pick("t1_tissue", T1_TISSUE[nominal], T1_TISSUE_SOURCE[nominal])
        t1_wm = pick(
            "t1_white_matter",
            T1_WHITE_MATTER.get(nominal),
            T1_WHITE_MATTER_SOURCE.get(nominal, "unknown at this field strength"),
        )

    if "labeling_efficiency" in user:
        efficiency = user["labeling_efficiency"]
        sources["labeling_efficiency"] = "override (configuration)"
    elif sidecar_labeling_efficiency is not None:
        try:
            efficiency = check_constant("labeling_efficiency", sidecar_labeling_efficiency)
        except ValueError as error:
            raise ValueError(
                f"sidecar LabelingEfficiency: {error}; fix the sidecar or override "
                "labeling_efficiency"
            ) from None
        sources["labeling_efficiency"] = "sidecar: LabelingEfficiency"
    else:
        efficiency, sources["labeling_efficiency"] = _default_efficiency(kind, pulses, bs_eff)

    return QuantificationConstants(
        labeling_type=kind,
        field_strength_t=None if field_strength_t is None else float(field_strength_t),
        partition_coefficient=partition,
        t1_blood=t1_blood,
        t1_tissue=t1_tissue,
        t1_white_matter=t1_wm,
        labeling_efficiency=efficiency,
        unit_scale=unit_scale,
        bs_pulses=pulses,
        bs_pulse_efficiency=bs_eff,
        sources=MappingProxyType(sources),
    )
