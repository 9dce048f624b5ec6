"""Noise-free round trips: the engine's inverse models return the simulated truth.

The forward model of ``aslmig simulate`` mixes grey matter, white matter and CSF in each ASL
voxel with weights p_t·M0_t. For one delay the white-paper model is linear in CBF, so the
engine's quantification returns the M0-weighted CBF of every voxel exactly. For several
delays, voxels of pure grey matter (weights from the phantom's 12 mm grey-matter shell) return
the grey-matter CBF and ATT of the Buxton model exactly.
"""

from __future__ import annotations

import numpy as np
import pytest

from aslmig.cbf.calibration import calibrate_m0
from aslmig.cbf.multi_delay import fit_multi_delay
from aslmig.cbf.single_delay import quantify_single_delay
from aslmig.sim import CohortSpec, parse_effect
from aslmig.sim.anatomy import load_template_anatomy
from aslmig.sim.cohort import prepare_regions, render_session
from aslmig.sim.plan import plan_cohort
from aslmig.sim.signal import M0_REPETITION_TIME_S, TISSUE_M0

MULTI = (0.5, 1.0, 1.5, 2.0, 2.5)
TOLERANCE = 1e-6


def _session(spec, anatomy):
    regions = prepare_regions(spec, anatomy)
    plans = plan_cohort(spec, list(regions.rois) if regions and spec.region_sd else [])
    participant = plans[-1]
    return render_session(spec, anatomy, participant, participant.sessions[-1], regions)


def _engine_inputs(spec, images):
    """ΔM, calibrated M0 (as the engine computes it) and the per-pair delays."""
    acquisition = images.acquisition
    types = np.array(acquisition.volume_types)
    deltam = images.series[..., types == "control"] - images.series[..., types == "label"]
    if spec.m0_type == "Separate":
        volumes, tr = images.m0[..., None], M0_REPETITION_TIME_S
    else:
        volumes, tr = images.series[..., types == "m0scan"], acquisition.repetition_time
    m0, _ = calibrate_m0(
        spec.m0_type,
        m0_volumes=volumes,
        repetition_time=tr,
        t1_tissue=acquisition.constants.t1_tissue,
    )
    delays = list(acquisition.delays[types == "label"])
    timing = dict(labeling_duration=spec.labeling_duration)
    if spec.labeling_type == "PASL":
        timing = dict(bolus_cutoff_delay_time=spec.bolus_cutoff)
    return deltam, m0, delays, timing


def _spec(atlas, **kwargs) -> CohortSpec:
    base = dict(
        n_per_group={"MwA": 1},
        snr=float("inf"),
        pairs=1,
        atlas=atlas,
        effects=(parse_effect("MwA:ictal:occipital_cortex_L=-0.15"),),
    )
    return CohortSpec(**{**base, **kwargs})


@pytest.mark.parametrize(
    "labeling, readout, m0_type, pulses",
    [
        ("PCASL", "3D", "Separate", 0),
        ("PCASL", "2D", "Included", 4),
        ("PASL", "2D", "Separate", 0),
        ("PASL", "3D", "Included", 2),
    ],
)
def test_single_delay_quantification_returns_the_truth(
    anatomy, atlas, labeling, readout, m0_type, pulses
):
    spec = _spec(
        atlas,
        labeling_type=labeling,
        readout=readout,
        m0_type=m0_type,
        background_suppression_pulses=pulses,
        field_strength=1.5 if pulses else 3.0,
    )
    images = _session(spec, anatomy)
    deltam, m0, delays, timing = _engine_inputs(spec, images)
    truth = images.reference.mixed_cbf()
    brain = images.reference.m0 > 0.05 * TISSUE_M0["GM"]
    cbf, _ = quantify_single_delay(
        deltam,
        m0,
        delays,
        images.acquisition.constants,
        slice_timing=images.acquisition.slice_timing,
        mask=brain,
        **timing,
    )
    relative = np.abs(cbf[brain] - truth[brain]) / np.maximum(truth[brain], 1e-6)
    assert brain.sum() > 10_000
    assert relative.max() < TOLERANCE


@pytest.mark.parametrize(
    "labeling, readout, m0_type",
    [("PCASL", "3D", "Separate"), ("PCASL", "2D", "Included"), ("PASL", "3D", "Separate")],
)
def test_multi_delay_fit_returns_cbf_and_att_in_pure_grey_matter(
    anatomy, atlas, labeling, readout, m0_type
):
    spec = _spec(
        atlas,
        labeling_type=labeling,
        readout=readout,
        m0_type=m0_type,
        plds=MULTI,
        region_sd=0.05,
        subject_sd=0.1,
    )
    images = _session(spec, anatomy)
    deltam, m0, delays, timing = _engine_inputs(spec, images)
    weights = images.reference.weights
    pure = weights["GM"] >= TISSUE_M0["GM"] * (1 - 1e-12)
    fit = fit_multi_delay(
        deltam,
        m0,
        delays,
        images.acquisition.constants,
        mask=pure,
        slice_timing=images.acquisition.slice_timing,
        **timing,
    )
    truth = images.reference.cbf["GM"][pure]
    assert pure.sum() > 1000
    assert np.max(np.abs(fit.cbf[pure] - truth) / truth) < TOLERANCE
    assert np.max(np.abs(fit.att[pure] - spec.att_gm)) < TOLERANCE * spec.att_gm


def test_template_anatomy_round_trip():
    """On the bundled template (no pure voxels), single delay is exact everywhere."""
    anatomy = load_template_anatomy()
    spec = CohortSpec(n_per_group={"HC": 1}, snr=float("inf"), pairs=1, region_sd=0.0)
    images = _session(spec, anatomy)
    deltam, m0, delays, timing = _engine_inputs(spec, images)
    brain = images.reference.m0 > 0.05 * TISSUE_M0["GM"]
    cbf, _ = quantify_single_delay(
        deltam, m0, delays, images.acquisition.constants, mask=brain, **timing
    )
    truth = images.reference.mixed_cbf()
    assert np.max(np.abs(cbf[brain] - truth[brain]) / truth[brain]) < TOLERANCE
    factor = images.cbf_gm.max() / spec.gm_cbf
    grey = images.reference.weights["GM"] > 0
    assert np.allclose(images.reference.cbf["GM"][grey], spec.gm_cbf * factor)
