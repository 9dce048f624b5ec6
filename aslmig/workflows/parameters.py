"""Plain-value descriptions of a run for nipype inputs: metadata and methods parameters."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import nibabel as nb
import nipype
import numpy as np

from aslmig.__about__ import __version__
from aslmig.atlas.templates import TemplateFiles
from aslmig.bids.anat_derivatives import generated_by
from aslmig.bids.layout import AslRun
from aslmig.cbf.vendor_scaling import VendorScaling
from aslmig.config import RunConfig
from aslmig.reports.boilerplate import MethodsParameters
from aslmig.workflows.constants import QuantificationPlan, constants_for, plan_quantification

MOTION_CORRECTION = (
    "rigid-body, each volume type and post-labeling delay realigned to its own mean, the group "
    "means then brought together by registration and by the continuity of the head's position "
    "in time"
)


def model_details(plan: QuantificationPlan, has_anat: bool) -> str:
    """Describe the quantification choices a run's methods paragraph should state."""
    acquisition = plan.acquisition
    if not acquisition.is_multi_delay:
        if acquisition.labeling_type == "PASL" and acquisition.bolus_cutoff_technique == "QUIPSS":
            return (
                "With QUIPSS I bolus cut-off the bolus term was TI - TI1 (Wong et al. 1998, "
                "Magn Reson Med 39:702) instead of TI1"
            )
        return ""
    tissue_t1 = (
        "a tissue T1 weighted by the T1w's grey- and white-matter fractions times flow"
        if has_anat
        else "the grey-matter T1 in every voxel (no T1w segmentation)"
    )
    text = (
        "Repeats were averaged per delay and weighted by their number; the fit was a bounded "
        f"Levenberg-Marquardt least-squares in every voxel with {tissue_t1}, with Gaussian "
        "priors on the arrival times (FSL BASIL's defaults: 1.3 s for PCASL, 0.7 s for PASL, "
        "SD 1 s) weighted by each voxel's noise variance from its repeats"
    )
    if plan.arterial.enabled:
        text += (
            ". An arterial (macrovascular) component (Chappell et al. 2010, Magn Reson Med "
            "63:1357) with its own arrival time and blood volume was fitted and kept where it "
            "lowered the misfit significantly (F-test of the nested models, 1 % level) "
            f"({plan.arterial.reason})"
        )
    return text


def _m0_description(run: AslRun, scaling: VendorScaling) -> str:
    descriptions = {
        "Separate": "M0 was the separate M0 scan, realigned to the ASL series",
        "Included": "M0 was the mean of the m0scan volumes of the series",
        "Estimate": "M0 was the scalar M0Estimate of the sidecar",
    }
    text = descriptions.get(run.metadata.m0_type, "no M0 was needed (scanner CBF maps)")
    rescaled = [
        f"{name}: {image.rule}"
        for name, image in scaling.images
        if image.factor != 1.0 or image.deltam_factor != 1.0
    ]
    if rescaled:
        text += f". Stored values were rescaled by the vendor convention ({'; '.join(rescaled)})"
    return text


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
    plan = plan_quantification(run, config.physics)
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
        m0_description=_m0_description(run, plan.acquisition.scaling),
        model="general kinetic model" if meta.is_multi_delay else "white paper single-delay",
        model_details=model_details(plan, has_anat),
        constants=constants_for(run, config.physics).to_dict(),
        motion_correction=MOTION_CORRECTION,
        template_space=template.space,
        t1w_used=has_anat,
        registration_method=_anatomy_sentence(config),
        registration_software="ANTs",
        syn=config.anatomy.anat_derivatives is None,
        software=_software_versions(),
    )


def _anatomy_sentence(config: RunConfig) -> str:
    """Say where the anatomy came from when it was not computed (``--derivatives anat=``)."""
    dataset = config.anatomy.anat_derivatives
    if dataset is None:
        return ""
    return (
        "The T1w brain mask, GM/WM/CSF probability maps and T1w-to-template transform were "
        f"taken from the {generated_by(Path(dataset))} derivatives in {dataset} (the "
        "preprocessed T1w was the anatomical reference); aslmig's own anatomical steps did "
        "not run"
    )
