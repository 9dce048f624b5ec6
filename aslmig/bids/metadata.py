"""ASL-BIDS metadata rules: sidecar + aslcontext + image shape -> a typed, validated record.

The official BIDS schema does not enforce the conditional ASL rules (M0Type, PASL bolus
fields, per-volume arrays), so they are checked here. Every refusal names the file and
the field and says what would fix it.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aslmig.bids.sidecars import finite_number
from aslmig.errors import LARGEST_TEXT_BYTES, InputError, quote, reading, regular_file_size

VOLUME_TYPES = ("control", "label", "m0scan", "deltam", "cbf", "noRF")
SIGNAL_VOLUME_TYPES = ("control", "label", "deltam", "cbf")
LABELING_TYPES = ("PCASL", "CASL", "PASL")
M0_TYPES = ("Separate", "Included", "Estimate", "Absent")
BOLUS_CUTOFF_TECHNIQUES = ("QUIPSS", "QUIPSSII", "Q2TIPS")

# Largest plausible value, in seconds, of each timing field. Larger values are almost
# always milliseconds written where BIDS wants seconds.
SECONDS_LIMITS = {
    "PostLabelingDelay": 10.0,
    "LabelingDuration": 10.0,
    "BolusCutOffDelayTime": 10.0,
    "RepetitionTimePreparation": 100.0,
    "EchoTime": 1.0,
    "SliceTiming": 20.0,
    "BackgroundSuppressionPulseTime": 20.0,
}
_LARGEST_FIELD_STRENGTH_T = 15.0


@dataclass(frozen=True)
class SourceNames:
    """How the files of one run are named in messages (dataset-relative paths)."""

    sidecar: str
    aslcontext: str
    image: str


@dataclass(frozen=True)
class AslMetadata:
    """Validated acquisition description of one ASL run (times in seconds).

    Per-volume fields always hold one value per volume of the series, whether the
    sidecar gave a scalar or an array.
    """

    labeling_type: str
    volume_types: tuple[str, ...]
    post_labeling_delay: tuple[float, ...]
    labeling_duration: tuple[float, ...] | None
    bolus_cutoff_flag: bool | None
    bolus_cutoff_delay_time: tuple[float, ...] | None
    bolus_cutoff_technique: str | None
    background_suppression: bool
    background_suppression_pulses: int | None
    background_suppression_pulse_times: tuple[float, ...] | None
    m0_type: str
    m0_estimate: float | None
    repetition_time_preparation: tuple[float, ...]
    echo_time: float
    magnetic_field_strength: float
    acquisition_type: str
    slice_timing: tuple[float, ...] | None
    slice_axis: int
    labeling_efficiency: float | None
    total_acquired_pairs: int
    image_shape: tuple[int, ...]
    manufacturer: str | None = None
    vascular_crushing: bool | None = None

    @property
    def n_volumes(self) -> int:
        """Number of volumes in the series."""
        return len(self.volume_types)

    @property
    def volume_counts(self) -> dict[str, int]:
        """Number of volumes of each type present."""
        return dict(Counter(self.volume_types))

    @property
    def signal_plds(self) -> tuple[float, ...]:
        """Distinct PLDs (or TIs for PASL) of the perfusion-weighted volumes, sorted."""
        plds = {
            pld
            for pld, kind in zip(self.post_labeling_delay, self.volume_types, strict=True)
            if kind in SIGNAL_VOLUME_TYPES
        }
        return tuple(sorted(plds))

    @property
    def is_multi_delay(self) -> bool:
        """Whether the perfusion-weighted volumes span more than one delay."""
        return len(self.signal_plds) > 1

    @property
    def is_cbf_only(self) -> bool:
        """Whether the series holds scanner-computed CBF maps only."""
        kinds = {kind for kind in self.volume_types if kind in SIGNAL_VOLUME_TYPES}
        return kinds == {"cbf"}


@dataclass(frozen=True)
class M0Metadata:
    """Validated description of a separate M0 image.

    ``sidecar`` (the merged raw metadata, e.g. for vendor scaling fields) and
    ``sidecar_name`` (its dataset-relative name, for messages) are kept as read.
    """

    repetition_time_preparation: tuple[float, ...]
    echo_time: float | None
    image_shape: tuple[int, ...]
    sidecar: dict[str, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)
    sidecar_name: str = ""

    @property
    def n_volumes(self) -> int:
        """Number of M0 volumes in the file."""
        return self.image_shape[3] if len(self.image_shape) > 3 else 1


# --------------------------------------------------------------------------- readers


def read_aslcontext(path: Path, shown_as: str) -> tuple[str, ...]:
    """Read the volume types listed in an ``*_aslcontext.tsv`` file.

    Parameters
    ----------
    path : Path
        The aslcontext file.
    shown_as : str
        How to name the file in error messages.

    Returns
    -------
    tuple of str
        One volume type per volume.
    """
    regular_file_size(path, shown_as, limit=LARGEST_TEXT_BYTES)
    try:
        with reading(shown_as):
            lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise InputError(shown_as, "the file is not UTF-8 text", "save it as UTF-8") from None
    while lines and not lines[-1].strip():
        lines.pop()
    if not lines or lines[0].strip().split("\t")[0] != "volume_type":
        raise InputError(
            shown_as,
            "the first line must be the column header 'volume_type'",
            "add the header line",
        )
    volume_types = tuple(line.strip() for line in lines[1:])
    for number, kind in enumerate(volume_types, start=1):
        if kind not in VOLUME_TYPES:
            raise InputError(
                shown_as,
                f"volume {number} has volume_type {quote(kind)}",
                f"use one of {', '.join(VOLUME_TYPES)}",
            )
    if not volume_types:
        raise InputError(shown_as, "the file lists no volumes", "list one volume_type per volume")
    return volume_types


# --------------------------------------------------------------------------- field helpers


class _Fields:
    """Typed access to the fields of one sidecar, raising errors that name the file."""

    def __init__(self, sidecar: dict[str, Any], shown_as: str) -> None:
        self.sidecar = sidecar
        self.name = shown_as

    def error(self, problem: str, fix: str | None = None) -> InputError:
        return InputError(self.name, problem, fix)

    def has(self, field: str) -> bool:
        return self.sidecar.get(field) is not None

    def require(self, field: str, why: str = "") -> Any:
        if not self.has(field):
            reason = f" {why}" if why else ""
            raise self.error(f"{field} is missing{reason}", f"add {field} to the sidecar")
        return self.sidecar[field]

    def choice(self, field: str, allowed: Sequence[str], required: bool = True) -> str | None:
        if not required and not self.has(field):
            return None
        value = self.require(field)
        if value not in allowed:
            raise self.error(
                f"{field} is {quote(value)}", f"use one of {', '.join(allowed)} (case-sensitive)"
            )
        return value

    def boolean(self, field: str, required: bool = True) -> bool | None:
        if not required and not self.has(field):
            return None
        value = self.require(field)
        if not isinstance(value, bool):
            raise self.error(f"{field} is {quote(value)}", "use true or false (JSON booleans)")
        return value

    def number(
        self,
        field: str,
        required: bool = True,
        minimum: float = 0.0,
        inclusive: bool = False,
        maximum: float | None = None,
    ) -> float | None:
        if not required and not self.has(field):
            return None
        value = self.require(field)
        if not finite_number(value):
            raise self.error(f"{field} is {quote(value)}, not a finite number")
        self._check_range(field, [float(value)], minimum, inclusive, maximum)
        return float(value)

    def numbers(
        self,
        field: str,
        n_expected: int | None,
        n_label: str = "",
        minimum: float = 0.0,
        inclusive: bool = True,
        required: bool = True,
    ) -> tuple[float, ...] | None:
        """Read a scalar (broadcast to ``n_expected``) or an array of exactly ``n_expected``."""
        if not required and not self.has(field):
            return None
        value = self.require(field)
        values = value if isinstance(value, list) else [value]
        if not values or not all(finite_number(item) for item in values):
            raise self.error(f"{field} must be a number or an array of finite numbers")
        if isinstance(value, list) and n_expected is not None and len(values) != n_expected:
            raise self.error(f"{field} has {len(values)} values but {n_label}")
        floats = [float(item) for item in values]
        self._check_range(field, floats, minimum, inclusive, None)
        if n_expected is not None and not isinstance(value, list):
            floats = floats * n_expected
        return tuple(floats)

    def _check_range(
        self,
        field: str,
        values: list[float],
        minimum: float,
        inclusive: bool,
        maximum: float | None,
    ) -> None:
        low = min(values)
        if low < minimum or (low == minimum and not inclusive):
            relation = "at least" if inclusive else "greater than"
            raise self.error(f"{field} has the value {low:g}; it must be {relation} {minimum:g}")
        limit = SECONDS_LIMITS.get(field)
        high = max(values)
        if limit is not None and high > limit:
            raise self.error(
                f"{field} has the value {high:g}, which looks like milliseconds",
                "BIDS wants seconds: divide by 1000",
            )
        if maximum is not None and high > maximum:
            raise self.error(f"{field} has the value {high:g}; it must be at most {maximum:g}")


# --------------------------------------------------------------------------- ASL rules


def parse_asl_metadata(
    sidecar: dict[str, Any],
    volume_types: tuple[str, ...],
    image_shape: tuple[int, ...],
    names: SourceNames,
    has_m0_file: bool,
) -> AslMetadata:
    """Validate the metadata of one ASL run by the ASL-BIDS rules.

    Parameters
    ----------
    sidecar : dict
        Merged ``*_asl.json`` metadata.
    volume_types : tuple of str
        The volume types read from ``*_aslcontext.tsv``.
    image_shape : tuple of int
        Shape of the ASL image (3D or 4D).
    names : SourceNames
        Dataset-relative names of the files, for messages.
    has_m0_file : bool
        Whether a separate M0 image was found for this run.

    Returns
    -------
    AslMetadata
        The validated, typed description.

    Raises
    ------
    InputError
        On the first rule broken, naming the file and the field.
    """
    fields = _Fields(sidecar, names.sidecar)
    if len(image_shape) not in (3, 4):
        raise InputError(names.image, f"the image has {len(image_shape)} dimensions, not 3 or 4")
    n_volumes = image_shape[3] if len(image_shape) == 4 else 1
    if len(volume_types) != n_volumes:
        raise InputError(
            names.aslcontext,
            f"lists {len(volume_types)} volumes but {names.image} has {n_volumes}",
            "list one volume_type per volume of the series",
        )
    _check_volume_mix(volume_types, names.aslcontext)
    per_volume = f"{names.aslcontext} lists {n_volumes} volumes"
    if fields.boolean("LookLocker", required=False):
        raise fields.error("LookLocker is true: Look-Locker readouts are not supported")

    labeling_type = fields.choice("ArterialSpinLabelingType", LABELING_TYPES)
    plds = fields.numbers("PostLabelingDelay", n_volumes, per_volume)
    _check_signal_plds(fields, plds, volume_types, labeling_type)
    durations = None
    if labeling_type in ("PCASL", "CASL"):
        durations = fields.numbers("LabelingDuration", n_volumes, per_volume, required=True)
        _check_signal_durations(fields, durations, volume_types)
    bolus_flag, bolus_times, bolus_technique = _bolus_cutoff(fields, labeling_type)

    m0_type = fields.choice("M0Type", M0_TYPES)
    background_suppression = fields.boolean("BackgroundSuppression")
    m0_estimate = _check_m0_type(
        fields, m0_type, volume_types, background_suppression, has_m0_file, names.aslcontext
    )
    bs_pulses, bs_times = _background_suppression(fields, background_suppression)

    tr_prep = fields.numbers("RepetitionTimePreparation", n_volumes, per_volume, inclusive=False)
    acquisition_type = fields.choice("MRAcquisitionType", ("2D", "3D"))
    slice_axis = _slice_axis(fields)
    slice_timing = _slice_timing(fields, acquisition_type, image_shape, slice_axis, tr_prep)
    pairs = fields.require("TotalAcquiredPairs")
    if not isinstance(pairs, int) or isinstance(pairs, bool) or pairs < 1:
        raise fields.error(f"TotalAcquiredPairs is {quote(pairs)}", "use a positive integer")
    manufacturer = sidecar.get("Manufacturer")
    return AslMetadata(
        labeling_type=labeling_type,
        volume_types=volume_types,
        post_labeling_delay=plds,
        labeling_duration=durations,
        bolus_cutoff_flag=bolus_flag,
        bolus_cutoff_delay_time=bolus_times,
        bolus_cutoff_technique=bolus_technique,
        background_suppression=background_suppression,
        background_suppression_pulses=bs_pulses,
        background_suppression_pulse_times=bs_times,
        m0_type=m0_type,
        m0_estimate=m0_estimate,
        repetition_time_preparation=tr_prep,
        echo_time=_echo_time(fields),
        magnetic_field_strength=fields.number(
            "MagneticFieldStrength", maximum=_LARGEST_FIELD_STRENGTH_T
        ),
        acquisition_type=acquisition_type,
        slice_timing=slice_timing,
        slice_axis=slice_axis,
        labeling_efficiency=fields.number("LabelingEfficiency", required=False, maximum=1.0),
        total_acquired_pairs=pairs,
        image_shape=tuple(image_shape),
        manufacturer=manufacturer if isinstance(manufacturer, str) else None,
        vascular_crushing=fields.boolean("VascularCrushing", required=False),
    )


def _check_volume_mix(volume_types: tuple[str, ...], shown_as: str) -> None:
    counts = Counter(volume_types)
    if counts["control"] != counts["label"]:
        raise InputError(
            shown_as,
            f"lists {counts['control']} control but {counts['label']} label volumes",
            "every control volume needs its label volume",
        )
    if not any(counts[kind] for kind in SIGNAL_VOLUME_TYPES):
        raise InputError(
            shown_as,
            "lists no control/label, deltam or cbf volume, so there is no perfusion signal",
        )


def _check_signal_plds(
    fields: _Fields,
    plds: tuple[float, ...],
    volume_types: tuple[str, ...],
    labeling_type: str,
) -> None:
    """Perfusion-weighted PASL volumes need a positive inversion time."""
    if labeling_type != "PASL":
        return
    for number, (pld, kind) in enumerate(zip(plds, volume_types, strict=True), start=1):
        if kind in SIGNAL_VOLUME_TYPES and pld <= 0:
            raise fields.error(
                f"PostLabelingDelay (the inversion time for PASL) is {pld:g} for {kind} "
                f"volume {number}",
                "give the inversion time TI in seconds",
            )


def _check_signal_durations(
    fields: _Fields, durations: tuple[float, ...], volume_types: tuple[str, ...]
) -> None:
    for number, (duration, kind) in enumerate(zip(durations, volume_types, strict=True), start=1):
        if kind in SIGNAL_VOLUME_TYPES and duration <= 0:
            raise fields.error(
                f"LabelingDuration is {duration:g} for {kind} volume {number}",
                "give the labeling duration in seconds (0 only for m0scan/noRF volumes)",
            )


def _bolus_cutoff(
    fields: _Fields, labeling_type: str
) -> tuple[bool | None, tuple[float, ...] | None, str | None]:
    if labeling_type != "PASL":
        return None, None, None
    flag = fields.boolean("BolusCutOffFlag")
    if not flag:
        return flag, None, None
    times = fields.numbers("BolusCutOffDelayTime", None, minimum=0.0, inclusive=False)
    if list(times) != sorted(times):
        raise fields.error("BolusCutOffDelayTime values must increase")
    technique = fields.choice("BolusCutOffTechnique", BOLUS_CUTOFF_TECHNIQUES)
    return flag, times, technique


def _check_m0_type(
    fields: _Fields,
    m0_type: str,
    volume_types: tuple[str, ...],
    background_suppression: bool,
    has_m0_file: bool,
    aslcontext_name: str,
) -> float | None:
    """Apply the M0Type rules; return M0Estimate when it is the M0 source."""
    has_m0_volumes = "m0scan" in volume_types
    if m0_type == "Included" and not has_m0_volumes:
        raise fields.error(
            f"M0Type is Included but {aslcontext_name} lists no m0scan volume",
            "mark the M0 volumes as m0scan, or set M0Type to the real M0 source",
        )
    if m0_type != "Included" and has_m0_volumes:
        raise fields.error(
            f"M0Type is {m0_type} but {aslcontext_name} lists m0scan volumes",
            "set M0Type to Included",
        )
    if m0_type == "Separate" and not has_m0_file:
        raise fields.error(
            "M0Type is Separate but no *_m0scan.nii[.gz] file belongs to this run",
            "add the M0 scan to perf/ with the run's entities, or name the run in its IntendedFor",
        )
    if m0_type == "Estimate":
        return fields.number("M0Estimate")
    cbf_only = {kind for kind in volume_types if kind in SIGNAL_VOLUME_TYPES} == {"cbf"}
    if m0_type == "Absent" and background_suppression and not cbf_only:
        raise fields.error(
            "M0Type is Absent and BackgroundSuppression is true: background-suppressed "
            "control images cannot stand in for M0, so CBF cannot be calibrated",
            "add the M0 scan, or set M0Type to Estimate with an M0Estimate",
        )
    return None


def _background_suppression(
    fields: _Fields, background_suppression: bool
) -> tuple[int | None, tuple[float, ...] | None]:
    pulses = fields.sidecar.get("BackgroundSuppressionNumberPulses")
    valid_count = isinstance(pulses, int) and not isinstance(pulses, bool) and pulses >= 0
    if pulses is not None and not valid_count:
        raise fields.error(
            f"BackgroundSuppressionNumberPulses is {quote(pulses)}", "use a whole number >= 0"
        )
    times = fields.numbers("BackgroundSuppressionPulseTime", None, required=False)
    if pulses is not None and times is not None and len(times) != pulses:
        raise fields.error(
            f"BackgroundSuppressionPulseTime has {len(times)} values but "
            f"BackgroundSuppressionNumberPulses is {pulses}"
        )
    if not background_suppression:
        if pulses:
            raise fields.error(
                f"BackgroundSuppression is false but BackgroundSuppressionNumberPulses is {pulses}",
                "make the two fields agree",
            )
        return None, None
    if pulses is None and times is not None:
        pulses = len(times)
    return pulses, times


def _slice_axis(fields: _Fields) -> int:
    direction = fields.sidecar.get("SliceEncodingDirection", "k")
    axes = {"i": 0, "j": 1, "k": 2, "i-": 0, "j-": 1, "k-": 2}
    if direction not in axes:
        raise fields.error(
            f"SliceEncodingDirection is {quote(direction)}", "use one of i, j, k, i-, j-, k-"
        )
    return axes[direction]


def _slice_timing(
    fields: _Fields,
    acquisition_type: str,
    image_shape: tuple[int, ...],
    slice_axis: int,
    tr_prep: tuple[float, ...],
) -> tuple[float, ...] | None:
    required = acquisition_type == "2D"
    why = "(2D readouts need it: each slice has its own post-labeling delay)"
    if required and not fields.has("SliceTiming"):
        fields.require("SliceTiming", why)
    n_slices = image_shape[slice_axis]
    timing = fields.numbers("SliceTiming", None, required=required, minimum=0.0, inclusive=True)
    if timing is None:
        return None
    if len(timing) != n_slices:
        raise fields.error(
            f"SliceTiming has {len(timing)} values but the image has {n_slices} slices",
            "give one acquisition time per slice",
        )
    if max(timing) >= min(tr_prep):
        raise fields.error(
            f"SliceTiming reaches {max(timing):g} s, not shorter than RepetitionTimePreparation",
            "SliceTiming is in seconds from the start of the readout",
        )
    return timing


def _echo_time(fields: _Fields) -> float:
    value = fields.require("EchoTime")
    values = fields.numbers("EchoTime", None, inclusive=False)
    if isinstance(value, list) and len(set(values)) > 1:
        raise fields.error("EchoTime lists several echoes: multi-echo ASL is not supported")
    return values[0]


# --------------------------------------------------------------------------- M0 rules


def parse_m0_metadata(
    sidecar: dict[str, Any],
    image_shape: tuple[int, ...],
    asl_shape: tuple[int, ...],
    sidecar_name: str,
    image_name: str,
) -> M0Metadata:
    """Validate a separate M0 scan against its ASL series.

    Parameters
    ----------
    sidecar : dict
        Merged ``*_m0scan.json`` metadata.
    image_shape : tuple of int
        Shape of the M0 image.
    asl_shape : tuple of int
        Shape of the ASL image it calibrates.
    sidecar_name, image_name : str
        Dataset-relative names of the files, for messages.

    Returns
    -------
    M0Metadata
        The validated description.
    """
    fields = _Fields(sidecar, sidecar_name)
    if len(image_shape) not in (3, 4):
        raise InputError(image_name, f"the image has {len(image_shape)} dimensions, not 3 or 4")
    if tuple(image_shape[:3]) != tuple(asl_shape[:3]):
        raise InputError(
            image_name,
            f"the M0 grid {image_shape[:3]} differs from the ASL grid {tuple(asl_shape[:3])}",
            "acquire or resample the M0 scan on the ASL grid",
        )
    n_volumes = image_shape[3] if len(image_shape) == 4 else 1
    tr_prep = fields.numbers(
        "RepetitionTimePreparation",
        n_volumes,
        f"{image_name} has {n_volumes} volumes",
        inclusive=False,
    )
    return M0Metadata(
        repetition_time_preparation=tr_prep,
        echo_time=fields.number("EchoTime", required=False),
        image_shape=tuple(image_shape),
        sidecar=sidecar,
        sidecar_name=sidecar_name,
    )
