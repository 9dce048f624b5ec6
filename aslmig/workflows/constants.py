"""What the CBF engine will do with a validated run: its acquisition, constants and plan.

The BIDS layer validates the metadata (:class:`~aslmig.bids.metadata.AslMetadata`); this
module turns it into the engine's :class:`~aslmig.cbf.acquisition.Acquisition`, resolves the
constants, checks the timing against the white paper and decides on the arterial component,
so that the dry run, the log, the workflow and the report all say the same thing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from aslmig.bids.layout import AslRun
from aslmig.bids.sidecars import relative_name
from aslmig.cbf.acquisition import (
    Acquisition,
    AcquisitionWarning,
    ArterialDecision,
    acquisition_warnings,
    arterial_component,
    quipss_bolus,
)
from aslmig.cbf.constants import QuantificationConstants
from aslmig.cbf.quantify import resolve_acquisition_constants
from aslmig.cbf.vendor_scaling import ScalingFieldError, VendorScaling, vendor_scaling
from aslmig.config import PhysicsConfig
from aslmig.errors import InputError


def acquisition_of(run: AslRun) -> Acquisition:
    """Return the engine's view of a run's validated metadata.

    Parameters
    ----------
    run : AslRun
        A validated run.

    Returns
    -------
    Acquisition
        Timing, M0 source, labeling and vendor scaling of the series.

    Raises
    ------
    InputError
        When a vendor scaling convention needs a sidecar field that is missing.
    """
    meta = run.metadata
    return Acquisition(
        labeling_type=meta.labeling_type,
        volume_types=meta.volume_types,
        post_labeling_delay=meta.post_labeling_delay,
        labeling_duration=meta.labeling_duration,
        bolus_cutoff_delay_time=meta.bolus_cutoff_delay_time,
        bolus_cutoff_technique=meta.bolus_cutoff_technique,
        background_suppression_pulses=(
            meta.background_suppression_pulses if meta.background_suppression else 0
        ),
        m0_type=meta.m0_type,
        m0_estimate=meta.m0_estimate,
        repetition_time_preparation=meta.repetition_time_preparation,
        magnetic_field_strength=meta.magnetic_field_strength,
        slice_timing=meta.slice_timing,
        slice_axis=meta.slice_axis,
        labeling_efficiency=meta.labeling_efficiency,
        vascular_crushing=meta.vascular_crushing,
        m0_repetition_time_preparation=(
            run.m0_metadata.repetition_time_preparation if run.m0_metadata else None
        ),
        scaling=scaling_of(run),
    )


def scaling_of(run: AslRun) -> VendorScaling:
    """Return the vendor scaling of a run's ASL series and separate M0 scan.

    Parameters
    ----------
    run : AslRun
        A validated run.

    Returns
    -------
    VendorScaling
        See :func:`aslmig.cbf.vendor_scaling.vendor_scaling`.

    Raises
    ------
    InputError
        Naming the sidecar, the field, its value and the fix.
    """
    m0 = run.m0_metadata
    try:
        return vendor_scaling(
            run.sidecar,
            run.metadata.volume_types,
            run.metadata.total_acquired_pairs,
            m0.sidecar if m0 is not None else None,
        )
    except ScalingFieldError as error:
        asl_name = relative_name(run.sidecar_files[-1], run.dataset_root)
        name = m0.sidecar_name if error.image == "m0" and m0 is not None else asl_name
        raise InputError(name, error.problem, error.fix) from None


def has_repetitions(acquisition: Acquisition) -> bool:
    """Whether quantification writes CBF with each repetition left out (for standard errors).

    Single delay: more than one ΔM volume (pairs or ``deltam``); multi-delay: some delay
    repeated (the repeats also give the noise variance that weighs the arrival priors).
    """
    counts = acquisition.volume_counts
    n_deltam = counts.get("control", 0) + counts.get("deltam", 0)
    if n_deltam < 2:
        return False
    return not acquisition.is_multi_delay or n_deltam > len(acquisition.signal_plds)


@dataclass(frozen=True)
class QuantificationPlan:
    """How a run will be quantified.

    Attributes
    ----------
    acquisition : Acquisition
        The series.
    warnings : tuple of AcquisitionWarning
        Timing outside the white paper's recommendations.
    arterial : ArterialDecision
        Whether the multi-delay fit includes the arterial component.
    """

    acquisition: Acquisition
    warnings: tuple[AcquisitionWarning, ...]
    arterial: ArterialDecision

    @property
    def warning_messages(self) -> tuple[str, ...]:
        """The warnings as sentences."""
        return tuple(warning.message for warning in self.warnings)


def plan_quantification(run: AslRun, physics: PhysicsConfig) -> QuantificationPlan:
    """Check that a run can be quantified and say how; refuse what the engine cannot model.

    Parameters
    ----------
    run : AslRun
        A validated run.
    physics : PhysicsConfig
        The physics settings (the arterial component choice).

    Returns
    -------
    QuantificationPlan
        Acquisition, warnings and the arterial decision.

    Raises
    ------
    InputError
        QUIPSS I with several TIs (not modelled) or with TI not after TI1.
    """
    acquisition = acquisition_of(run)
    name = relative_name(run.sidecar_files[-1], run.dataset_root)
    if acquisition.labeling_type == "PASL" and acquisition.bolus_cutoff_technique == "QUIPSS":
        if acquisition.is_multi_delay:
            raise InputError(
                name,
                "BolusCutOffTechnique is QUIPSS (QUIPSS I) with several inversion times: the "
                "kinetic model assumes QUIPSS II/Q2TIPS",
                "quantify each TI as its own single-delay series",
            )
        try:
            quipss_bolus(acquisition)
        except ValueError as error:
            raise InputError(name, str(error)) from None
    return QuantificationPlan(
        acquisition=acquisition,
        warnings=acquisition_warnings(acquisition),
        arterial=arterial_component(acquisition, physics.arterial_component),
    )


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
    try:
        return resolve_acquisition_constants(acquisition_of(run), physics.overrides())
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
