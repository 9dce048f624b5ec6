"""Physics core of aslmig: ASL CBF quantification as pure numpy/scipy functions.

Arrays in, arrays out; no I/O, no nipype, nothing else from the aslmig package (nibabel only
for its FWHM-to-sigma conversion). Times are in
seconds, CBF in mL/100 g/min, and the volume axis of every series is the last axis.
The equations, constants and references are in ``docs/methods.md``.
"""

from aslmig.cbf.calibration import (
    M0_TYPES,
    ReferenceRegionCalibration,
    calibrate_m0,
    smooth_m0,
    tr_correction_factor,
)
from aslmig.cbf.constants import (
    LABELING_TYPES,
    QuantificationConstants,
    resolve_constants,
)
from aslmig.cbf.kinetic import KineticSettings, kinetic_signal
from aslmig.cbf.kinetic_fit import (
    ArrivalPriors,
    FitBounds,
    FitOptions,
    FitStatus,
    fit_kinetic_curves,
)
from aslmig.cbf.multi_delay import (
    FitSummary,
    MultiDelayFit,
    average_repeats,
    fit_multi_delay,
)
from aslmig.cbf.outliers import ScoreResult, score_outlier_rejection
from aslmig.cbf.qc import (
    compute_qc_metrics,
    deltam_tsnr,
    deltam_tsnr_map,
    gm_wm_ratio,
    mean_tissue_cbf,
    motion_summary,
    negative_gm_percent,
    quality_evaluation_index,
    spatial_cov,
)
from aslmig.cbf.single_delay import (
    average_cbf_series,
    deltam_to_cbf,
    quantify_single_delay,
    single_delay_signal,
)
from aslmig.cbf.volumes import (
    VOLUME_TYPES,
    SplitVolumes,
    check_cbf_scaling,
    check_deltam_scaling,
    split_asl_series,
)

__all__ = [
    "ArrivalPriors",
    "LABELING_TYPES",
    "M0_TYPES",
    "VOLUME_TYPES",
    "FitBounds",
    "FitOptions",
    "FitStatus",
    "FitSummary",
    "KineticSettings",
    "MultiDelayFit",
    "QuantificationConstants",
    "ReferenceRegionCalibration",
    "ScoreResult",
    "SplitVolumes",
    "average_cbf_series",
    "average_repeats",
    "calibrate_m0",
    "check_cbf_scaling",
    "check_deltam_scaling",
    "compute_qc_metrics",
    "deltam_to_cbf",
    "deltam_tsnr",
    "deltam_tsnr_map",
    "fit_kinetic_curves",
    "fit_multi_delay",
    "gm_wm_ratio",
    "kinetic_signal",
    "mean_tissue_cbf",
    "motion_summary",
    "negative_gm_percent",
    "quality_evaluation_index",
    "quantify_single_delay",
    "resolve_constants",
    "score_outlier_rejection",
    "single_delay_signal",
    "smooth_m0",
    "spatial_cov",
    "split_asl_series",
    "tr_correction_factor",
]
