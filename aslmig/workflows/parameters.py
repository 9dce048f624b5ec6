"""Plain-value descriptions of a run for nipype inputs: metadata and methods parameters."""

from __future__ import annotations

import dataclasses
from importlib import metadata
from typing import Any

import nibabel as nb
import nipype
import numpy as np

from aslmig.__about__ import __version__
from aslmig.atlas.templates import TemplateFiles
from aslmig.bids.layout import AslRun
from aslmig.config import RunConfig
from aslmig.reports.boilerplate import MethodsParameters
from aslmig.workflows.constants import constants_for

MOTION_CORRECTION = (
    "rigid-body, each volume type and post-labeling delay realigned to its own mean, the group "
    "means then brought together by registration and by the continuity of the head's position "
    "in time"
)


def run_metadata(run: AslRun) -> dict[str, Any]:
    """Return the run's validated metadata as a dictionary, plus the separate M0 scan's TR."""
    metadata = dataclasses.asdict(run.metadata)
    if run.m0_metadata is not None:
        metadata["m0_repetition_time_preparation"] = run.m0_metadata.repetition_time_preparation
    return metadata


def _m0_description(run: AslRun) -> str:
    descriptions = {
        "Separate": "M0 was the separate M0 scan, realigned to the ASL series",
        "Included": "M0 was the mean of the m0scan volumes of the series",
        "Estimate": "M0 was the scalar M0Estimate of the sidecar",
    }
    return descriptions.get(run.metadata.m0_type, "no M0 was needed (scanner CBF maps)")


def _software_versions() -> dict[str, str]:
    versions = {
        "aslmig": __version__,
        "nipype": nipype.__version__,
        "nibabel": nb.__version__,
        "numpy": np.__version__,
    }
    try:
        versions["antspyx"] = metadata.version("antspyx")
    except metadata.PackageNotFoundError:  # pragma: no cover - antspyx is a dependency
        pass
    return versions


def methods_parameters(
    run: AslRun, config: RunConfig, template: TemplateFiles, has_anat: bool
) -> MethodsParameters:
    """Parameters of the methods boilerplate (see :func:`aslmig.reports.methods_text`).

    Parameters
    ----------
    run : AslRun
        The validated run.
    config : RunConfig
        The run configuration.
    template : TemplateFiles
        The output template.
    has_anat : bool
        Whether registration goes through the participant's T1w.

    Returns
    -------
    MethodsParameters
        What the run's methods paragraph describes.
    """
    meta = run.metadata
    counts = meta.volume_counts
    durations = (
        {
            duration
            for duration, kind in zip(meta.labeling_duration, meta.volume_types, strict=True)
            if kind not in ("m0scan", "noRF")
        }
        if meta.labeling_duration
        else set()
    )
    cutoff = meta.bolus_cutoff_delay_time
    return MethodsParameters(
        labeling_type=meta.labeling_type,
        field_strength_t=meta.magnetic_field_strength,
        readout=meta.acquisition_type,
        n_volumes=meta.n_volumes,
        n_pairs=counts.get("control", 0),
        n_deltam=counts.get("deltam") or None,
        n_m0=counts.get("m0scan") or None,
        plds=tuple(meta.signal_plds),
        labeling_duration=tuple(sorted(durations)),
        bolus_cutoff=cutoff[0] if cutoff else None,
        bolus_cutoff_technique=meta.bolus_cutoff_technique if cutoff else None,
        background_suppression=meta.background_suppression,
        background_suppression_pulses=meta.background_suppression_pulses,
        m0_type=meta.m0_type,
        m0_description=_m0_description(run),
        model="general kinetic model" if meta.is_multi_delay else "white paper single-delay",
        constants=constants_for(run, config.physics).to_dict(),
        motion_correction=MOTION_CORRECTION,
        template_space=template.space,
        t1w_used=has_anat,
        registration_software="ANTs",
        syn=True,
        software=_software_versions(),
    )
