"""What quantification needs to know about an acquisition, and whether its timing is sound.

:class:`Acquisition` is the physics engine's typed view of one ASL series (the BIDS layer
builds it from validated metadata; this package imports nothing from it).
:func:`acquisition_warnings` compares the timing with the white paper's recommendations
(Alsop et al. 2015, MRM 73:102, Table 1) and says, for each field outside them, what the
numbers will mean; :func:`arterial_component` decides whether the multi-delay fit includes an
arterial (macrovascular) component.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from aslmig.cbf.constants import WHITE_PAPER
from aslmig.cbf.vendor_scaling import VendorScaling

SIGNAL_VOLUME_TYPES = ("control", "label", "deltam", "cbf")
#: White-paper recommendations (Alsop 2015, Table 1): PCASL/CASL labeling duration 1.8 s;
#: PLD 1.5-2.0 s (children 1.5 s, adults < 70 y 1.8 s, > 70 y and patients 2.0 s); PASL
#: (QUIPSS II / Q2TIPS) bolus duration TI1 0.8 s and TI chosen like the PCASL PLD.
RECOMMENDED_PLD_S = (1.5, 2.0)
RECOMMENDED_LABELING_DURATION_S = (1.5, 2.0)
RECOMMENDED_TI1_S = (0.7, 0.8)
#: A multi-delay acquisition should reach the white paper's single-delay PLD (1.8 s), so that
#: late-arriving tissue (white matter, watershed areas) is sampled after arrival.
MULTI_DELAY_LONGEST_PLD_S = 1.8
#: BASIL's prior arterial arrival time (tissue 1.3 s for PCASL/CASL, 0.7 s for PASL, minus
#: 0.3 s; oxford_asl / fabber aslrest). Delays after the bolus shorter than this still see
#: labeled blood in the arteries.
ARTERIAL_ARRIVAL_S = {"PCASL": 1.0, "CASL": 1.0, "PASL": 0.4}
ARTERIAL_CHOICES = ("auto", "on", "off")
WONG_1998 = (
    "Wong EC, Buxton RB, Frank LR. Quantitative imaging of perfusion using a single "
    "subtraction (QUIPSS and QUIPSS II). Magn Reson Med 1998;39:702-708"
)


@dataclass(frozen=True)
class Acquisition:
    """The acquisition of one ASL series, as quantification needs it (times in s).

    Per-volume fields hold one value per volume of the series.

    Attributes
    ----------
    labeling_type : str
        PCASL, CASL or PASL.
    volume_types : tuple of str
        ``aslcontext`` volume types.
    post_labeling_delay : tuple of float
        PLD (PCASL/CASL) or TI (PASL) per volume.
    labeling_duration : tuple of float or None
        Labeling duration per volume (PCASL/CASL).
    bolus_cutoff_delay_time : tuple of float or None
        ``BolusCutOffDelayTime`` (PASL): TI1, or (TI1, TI1s) for Q2TIPS.
    bolus_cutoff_technique : str or None
        QUIPSS, QUIPSSII or Q2TIPS.
    background_suppression_pulses : int or None
        Pulses (0 without background suppression, None when unknown).
    m0_type : str
        Separate, Included, Estimate or Absent.
    m0_estimate : float or None
        ``M0Estimate``.
    repetition_time_preparation : tuple of float
        Per volume.
    magnetic_field_strength : float
        Tesla.
    slice_timing : tuple of float or None
        2-D readouts.
    slice_axis : int
        Spatial axis of the slices.
    labeling_efficiency : float or None
        The sidecar's ``LabelingEfficiency``.
    vascular_crushing : bool or None
        ``VascularCrushing``.
    m0_repetition_time_preparation : tuple of float or None
        TR of a separate M0 scan's volumes.
    scaling : VendorScaling
        Vendor scale factors of the series and of its separate M0 scan
        (:func:`aslmig.cbf.vendor_scaling.vendor_scaling`).
    """

    labeling_type: str
    volume_types: tuple[str, ...]
    post_labeling_delay: tuple[float, ...]
    labeling_duration: tuple[float, ...] | None
    bolus_cutoff_delay_time: tuple[float, ...] | None
    bolus_cutoff_technique: str | None
    background_suppression_pulses: int | None
    m0_type: str
    m0_estimate: float | None
    repetition_time_preparation: tuple[float, ...]
    magnetic_field_strength: float
    slice_timing: tuple[float, ...] | None = None
    slice_axis: int = 2
    labeling_efficiency: float | None = None
    vascular_crushing: bool | None = None
    m0_repetition_time_preparation: tuple[float, ...] | None = None
    scaling: VendorScaling = VendorScaling()

    @property
    def signal_plds(self) -> tuple[float, ...]:
        """Distinct PLDs (TIs for PASL) of the perfusion-weighted volumes, sorted."""
        return tuple(sorted({
            pld
            for pld, kind in zip(self.post_labeling_delay, self.volume_types, strict=True)
            if kind in SIGNAL_VOLUME_TYPES
        }))  # fmt: skip

    @property
    def signal_labeling_durations(self) -> tuple[float, ...]:
        """Distinct labeling durations of the perfusion-weighted volumes (PCASL/CASL)."""
        if not self.labeling_duration:
            return ()
        return tuple(sorted({
            duration
            for duration, kind in zip(self.labeling_duration, self.volume_types, strict=True)
            if kind in SIGNAL_VOLUME_TYPES
        }))  # fmt: skip

    @property
    def is_multi_delay(self) -> bool:
        """Whether the perfusion-weighted volumes span more than one delay."""
        return len(self.signal_plds) > 1

    @property
    def most_repeats_per_delay(self) -> int:
        """Largest number of ΔM measurements (label or ΔM volumes) sharing one PLD/TI."""
        counts = Counter(
            pld
            for pld, kind in zip(self.post_labeling_delay, self.volume_types, strict=True)
            if kind in ("label", "deltam")
        )
        return max(counts.values(), default=0)

    @property
    def volume_counts(self) -> dict[str, int]:
        """Number of volumes of each type."""
        return dict(Counter(self.volume_types))

    @property
    def bolus_duration(self) -> float | None:
        """PASL bolus duration TI1 (the first ``BolusCutOffDelayTime``), s."""
        return self.bolus_cutoff_delay_time[0] if self.bolus_cutoff_delay_time else None

    def earliest_post_bolus_delay(self) -> float:
        """Time from the end of the labeled bolus to the earliest readout, s.

        PCASL/CASL: the shortest PLD; PASL: the shortest TI − TI1 (TI without bolus cut-off).
        """
        earliest = min(self.signal_plds)
        if self.labeling_type == "PASL":
            return earliest - (self.bolus_duration or 0.0)
        return earliest


@dataclass(frozen=True)
class AcquisitionWarning:
    """A timing field outside the white paper's recommendation, and what it means.

    Attributes
    ----------
    field : str
        The ASL-BIDS field, e.g. ``PostLabelingDelay``.
    value : str
        Its value as shown, e.g. ``0.2 s``.
    recommended : str
        The recommended value or range, e.g. ``1.5-2.0 s``.
    meaning : str
        What the numbers will mean.
    """

    field: str
    value: str
    recommended: str
    meaning: str

    @property
    def message(self) -> str:
        """One sentence for the log, the report and the sidecar."""
        return (
            f"{self.field} {self.value} is outside the white paper's recommendation "
            f"({self.recommended}; Alsop 2015): {self.meaning}"
        )


def _seconds(value: float) -> str:
    return f"{value:g} s"


def _range(bounds: tuple[float, float]) -> str:
    return f"{bounds[0]:g}-{bounds[1]:g} s"


def _single_delay_warnings(acquisition: Acquisition) -> list[AcquisitionWarning]:
    pld = acquisition.signal_plds[0]
    name = "PostLabelingDelay (TI)" if acquisition.labeling_type == "PASL" else "PostLabelingDelay"
    low, high = RECOMMENDED_PLD_S
    if pld < 1.0:
        meaning = (
            "most of the label is still in the arteries at readout; CBF will be "
            "vessel-dominated (high along arteries, low in late-arriving tissue) and is not "
            "tissue perfusion"
        )
    elif pld < low:
        meaning = (
            "part of the label may not have reached the tissue yet: CBF is overestimated "
            "near arteries and underestimated where transit is long (white matter, "
            "watershed areas)"
        )
    elif pld > high:
        meaning = "the label has decayed longer (T1 of blood): CBF is unbiased but noisier"
    else:
        return []
    return [AcquisitionWarning(name, _seconds(pld), _range(RECOMMENDED_PLD_S), meaning)]


def _labeling_warnings(acquisition: Acquisition) -> list[AcquisitionWarning]:
    warnings = []
    if acquisition.labeling_type == "PASL":
        ti1 = acquisition.bolus_duration
        low, high = RECOMMENDED_TI1_S
        if ti1 is not None and not low <= ti1 <= high:
            meaning = (
                "a bolus cut-off later than the labeled bolus's natural end breaks the QUIPSS "
                "assumption (CBF underestimated)"
                if ti1 > high
                else "a short bolus gives less signal (noisier CBF)"
            )
            warnings.append(AcquisitionWarning("BolusCutOffDelayTime (TI1)", _seconds(ti1),
                                               _range(RECOMMENDED_TI1_S), meaning))  # fmt: skip
        return warnings
    low, high = RECOMMENDED_LABELING_DURATION_S
    for tau in acquisition.signal_labeling_durations:
        if not low <= tau <= high:
            meaning = (
                "less label is delivered (noisier CBF; the white-paper equation still applies)"
                if tau < low
                else "more label but longer TR; check that the PLD still exceeds transit"
            )
            warnings.append(AcquisitionWarning("LabelingDuration", _seconds(tau),
                                               _range(RECOMMENDED_LABELING_DURATION_S),
                                               meaning))  # fmt: skip
    return warnings


def acquisition_warnings(acquisition: Acquisition) -> tuple[AcquisitionWarning, ...]:
    """List the timing fields outside the white paper's recommendations.

    Single delay: the PLD (TI for PASL) against 1.5-2.0 s. Multi-delay: the longest delay
    against 1.8 s (short early delays are how a multi-delay acquisition samples arrival).
    Always: the labeling duration (PCASL/CASL, 1.5-2.0 s) or bolus duration TI1 (PASL,
    0.7-0.8 s). Scanner CBF maps (no ΔM) are not checked.

    Parameters
    ----------
    acquisition : Acquisition
        The series.

    Returns
    -------
    tuple of AcquisitionWarning
        Empty when the timing follows the recommendations.
    """
    kinds = {kind for kind in acquisition.volume_types if kind in SIGNAL_VOLUME_TYPES}
    if kinds == {"cbf"} or not acquisition.signal_plds:
        return ()
    warnings = _labeling_warnings(acquisition)
    if not acquisition.is_multi_delay:
        warnings = _single_delay_warnings(acquisition) + warnings
    elif max(acquisition.signal_plds) < MULTI_DELAY_LONGEST_PLD_S:
        longest = max(acquisition.signal_plds)
        warnings.insert(0, AcquisitionWarning(
            "PostLabelingDelay (longest)", _seconds(longest),
            f"the longest delay at least {MULTI_DELAY_LONGEST_PLD_S:g} s, its single-delay PLD",
            "tissue that has not received its label by then (white matter, watershed areas) "
            "is not sampled after arrival; its CBF and ATT rest on the model's extrapolation",
        ))  # fmt: skip
    return tuple(warnings)


@dataclass(frozen=True)
class ArterialDecision:
    """Whether the multi-delay fit includes an arterial component, and why."""

    enabled: bool
    reason: str


def arterial_component(acquisition: Acquisition, choice: str = "auto") -> ArterialDecision:
    """Decide whether the multi-delay fit includes an arterial (macrovascular) component.

    ``auto`` (the default) turns it on, as FSL BASIL does for multi-delay data, when labeled
    blood can still be in the arteries at the earliest readout: the earliest delay after the
    bolus (PCASL/CASL: the shortest PLD; PASL: TI − TI1) is shorter than BASIL's prior
    arterial arrival time (1.0 s PCASL/CASL, 0.4 s PASL) and vascular crushing was not used
    (``VascularCrushing`` not true, BASIL's ``--artsupp``). The fit needs at least four
    distinct delays for its four parameters, and ``auto`` also needs a delay measured at
    least twice: the per-voxel choice of the arterial model tests it against the noise
    (:func:`aslmig.cbf.kinetic_fit.fit_kinetic_curves`), and without repeats the only noise
    estimate is the arterial fit's own residual, which also holds model error (a tissue T1
    that is not the voxel's, partial volume) that the arterial term absorbs: on noise-free
    curves fitted with a 10 % tissue T1 error that residual-based choice kept the component
    in 97 % of voxels (ATT +0.7 s), and on asldro's multi-delay data in 6.5 % of voxels.

    Parameters
    ----------
    acquisition : Acquisition
        The series.
    choice : {"auto", "on", "off"}
        The user's setting.

    Returns
    -------
    ArterialDecision
        Enabled or not, with the reason in words.
    """
    if choice not in ARTERIAL_CHOICES:
        raise ValueError(f"arterial component {choice!r}; use one of {ARTERIAL_CHOICES}")
    if not acquisition.is_multi_delay:
        return ArterialDecision(False, "single delay: no arterial component")
    n_delays = len(acquisition.signal_plds)
    if choice == "off":
        return ArterialDecision(False, "off (configuration)")
    if n_delays < 4:
        return ArterialDecision(False, f"{n_delays} distinct delays cannot fit four parameters")
    if choice == "on":
        return ArterialDecision(True, "on (configuration)")
    earliest = acquisition.earliest_post_bolus_delay()
    arrival = ARTERIAL_ARRIVAL_S[acquisition.labeling_type]
    if acquisition.vascular_crushing:
        return ArterialDecision(False, "auto: off, VascularCrushing is true")
    if earliest >= arrival:
        return ArterialDecision(
            False, f"auto: off, the earliest delay after the bolus ({earliest:g} s) is past "
            f"the arterial arrival time ({arrival:g} s)"
        )  # fmt: skip
    if acquisition.most_repeats_per_delay < 2:
        return ArterialDecision(
            False, "auto: off, no delay is repeated, so there is no noise estimate to test "
            "the arterial model against (model error would pass for arterial signal)"
        )  # fmt: skip
    return ArterialDecision(
        True, f"auto: on, the earliest delay after the bolus ({earliest:g} s) is shorter than "
        f"the arterial arrival time ({arrival:g} s) and VascularCrushing is not true"
    )  # fmt: skip


def quipss_bolus(acquisition: Acquisition) -> tuple[float, str]:
    """Bolus term of the PASL equation and its source: TI1 (QUIPSS II/Q2TIPS) or TI − TI1.

    QUIPSS I saturates the imaging slab at TI1 and images at TI, so the tissue holds the label
    delivered between TI1 and TI: ΔM = 2·α·M0b·f·(TI − TI1)·e^(−TI/T1b) (Wong et al. 1998),
    valid when the arterial transit time is shorter than TI1 and the labeled bolus is still
    passing at TI. QUIPSS II / Q2TIPS cut the bolus at TI1: ΔM = 2·α·M0b·f·TI1·e^(−TI/T1b)
    (the white paper's equation).

    Parameters
    ----------
    acquisition : Acquisition
        A single-delay PASL series with bolus cut-off.

    Returns
    -------
    bolus : float
        The bolus duration in the equation, s.
    source : str
        Where the equation comes from.
    """
    ti1 = acquisition.bolus_duration
    if ti1 is None:
        raise ValueError(
            "PASL quantification needs BolusCutOffDelayTime (TI1); without bolus cut-off the "
            "bolus duration is unknown"
        )
    if acquisition.bolus_cutoff_technique != "QUIPSS":
        return ti1, WHITE_PAPER
    ti = acquisition.signal_plds[0]
    if ti <= ti1:
        raise ValueError(
            f"QUIPSS I needs the inversion time TI ({ti:g} s) after the saturation at TI1 "
            f"({ti1:g} s); check PostLabelingDelay and BolusCutOffDelayTime"
        )
    return ti - ti1, WONG_1998
