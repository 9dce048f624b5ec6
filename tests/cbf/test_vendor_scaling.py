"""Vendor scaling conventions (issue 13 item 4): each rule with hand-computed numbers.

The sidecars are real scanners' metadata from the CC0 bids-examples copied in
``tests/data/bids_examples`` (asl001 GE 3D spiral, asl002 Philips 2D EPI); the Philips fields
that dcm2niix writes are added to them where a rule needs them.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from aslmig.cbf.acquisition import Acquisition
from aslmig.cbf.constants import resolve_constants
from aslmig.cbf.quantify import quantify_series
from aslmig.cbf.single_delay import single_delay_signal
from aslmig.cbf.vendor_scaling import (
    ScalingFieldError,
    VendorScaling,
    ge_scaling,
    philips_scaling,
    vendor_scaling,
)

EXAMPLES = Path(__file__).parents[1] / "data" / "bids_examples"


def _sidecar(dataset: str, name: str) -> dict:
    subject = "sub-Sub1" if dataset in ("asl003", "asl004") else "sub-Sub103"
    path = EXAMPLES / dataset / subject / "perf" / f"{subject}_{name}.json"
    return json.loads(path.read_text())


PHILIPS_ASL = _sidecar("asl002", "asl")
PHILIPS_M0 = _sidecar("asl002", "m0scan")
GE_ASL = _sidecar("asl001", "asl")
SIEMENS_ASL = _sidecar("asl005", "asl")
#: dcm2niix -p n (display values): RS and SS differ between the ASL series and the M0 scan.
ASL_DISPLAY = {"UsePhilipsFloatNotDisplayScaling": 0, "PhilipsRescaleSlope": 2.5,
               "PhilipsRescaleIntercept": 0, "PhilipsScaleSlope": 0.004}  # fmt: skip
M0_DISPLAY = {"UsePhilipsFloatNotDisplayScaling": 0, "PhilipsRescaleSlope": 1.6,
              "PhilipsRescaleIntercept": 0, "PhilipsScaleSlope": 0.0025}  # fmt: skip


def test_philips_display_values_become_floating_point():
    """FP = DV / (RS·SS): DV 1000 with RS 2.5, SS 0.004 -> 100 000; M0 DV 800 with RS 1.6,
    SS 0.0025 -> 200 000 (Chenevert 2014)."""
    scaling = vendor_scaling(
        {**PHILIPS_ASL, **ASL_DISPLAY}, ("control", "label"), 35, {**PHILIPS_M0, **M0_DISPLAY}
    )
    assert 1000.0 * scaling.volume_factors(("control", "label"))[0] == pytest.approx(100_000.0)
    assert 800.0 * scaling.m0_factor == pytest.approx(200_000.0)
    assert "RS 2.5, SS 0.004" in scaling.asl.rule
    assert any("Chenevert" in source for source in scaling.asl.sources)
    # the ratio that CBF depends on: DV ratio 1000/800 = 1.25 is FP ratio 0.5
    ratio = 1000.0 * scaling.asl.factor / (800.0 * scaling.m0_factor)
    assert ratio == pytest.approx(0.5)


def test_philips_floating_point_and_already_scaled_images_are_used_as_stored():
    floating = {**ASL_DISPLAY, "UsePhilipsFloatNotDisplayScaling": 1}
    assert philips_scaling({**PHILIPS_ASL, **floating}).factor == 1.0
    as_true = {**floating, "UsePhilipsFloatNotDisplayScaling": True}
    assert philips_scaling({**PHILIPS_ASL, **as_true}).factor == 1.0
    as_converted = philips_scaling(PHILIPS_ASL)  # bids-examples: ExploreASL removed the fields
    assert as_converted.factor == 1.0 and "already floating-point" in as_converted.rule


def test_philips_included_m0_shares_the_series_factor():
    scaling = vendor_scaling({**PHILIPS_ASL, **ASL_DISPLAY}, ("m0scan", "control", "label"), 35)
    np.testing.assert_allclose(scaling.volume_factors(("m0scan", "control", "label")), 100.0)
    assert scaling.m0 is None and scaling.m0_factor == 1.0


@pytest.mark.parametrize(
    ("fields", "image", "message"),
    [
        ({"PhilipsRescaleSlope": 2.5, "PhilipsScaleSlope": 0.004}, "asl",
         "UsePhilipsFloatNotDisplayScaling is missing while PhilipsRescaleSlope is given"),
        ({"UsePhilipsFloatNotDisplayScaling": 0, "PhilipsRescaleSlope": 2.5}, "asl",
         "PhilipsScaleSlope is missing"),
        ({"UsePhilipsFloatNotDisplayScaling": 0, "PhilipsScaleSlope": 0.004,
          "PhilipsRescaleSlope": 0}, "asl", "PhilipsRescaleSlope is 0"),
        ({"UsePhilipsFloatNotDisplayScaling": 0, "PhilipsScaleSlope": "0.004",
          "PhilipsRescaleSlope": 2.5}, "asl", "PhilipsScaleSlope is '0.004'"),
        ({"UsePhilipsFloatNotDisplayScaling": 2}, "asl", "UsePhilipsFloatNotDisplayScaling is 2"),
    ],
)  # fmt: skip
def test_philips_fields_a_rule_needs_are_refused_when_missing_or_invalid(fields, image, message):
    with pytest.raises(ScalingFieldError) as refused:
        vendor_scaling({**PHILIPS_ASL, **fields}, ("control", "label"), 35)
    assert refused.value.image == image
    assert message in refused.value.problem
    assert refused.value.fix


def test_philips_m0_sidecar_refusal_names_the_m0():
    with pytest.raises(ScalingFieldError) as refused:
        vendor_scaling(PHILIPS_ASL, ("control", "label"), 35,
                       {**PHILIPS_M0, "UsePhilipsFloatNotDisplayScaling": 0})  # fmt: skip
    assert refused.value.image == "m0"
    assert "PhilipsRescaleSlope is missing" in refused.value.problem


def test_ge_deltam_is_divided_by_32_times_the_pairs():
    """asl001 (GE DV24, TotalAcquiredPairs 3): ΔM 960 -> 960 / (32·3) = 10; M0 unchanged."""
    types = ("deltam", "m0scan")
    scaling = vendor_scaling(GE_ASL, types, GE_ASL["TotalAcquiredPairs"])
    np.testing.assert_allclose(np.array([960.0, 5000.0]) * scaling.volume_factors(types),
                               [10.0, 5000.0])  # fmt: skip
    assert "32 x 3" in scaling.asl.rule


def test_ge_older_release_uses_its_own_factor_and_control_label_is_as_stored():
    old = ge_scaling({**GE_ASL, "SoftwareVersions": "12_LX_MR"}, ("deltam",), 2)
    assert 904.8 * old.deltam_factor == pytest.approx(10.0)  # 904.8 / (45.24·2)
    assert ge_scaling(GE_ASL, ("control", "label"), 3).deltam_factor == 1.0


@pytest.mark.parametrize("version", [None, "unknown release"])
def test_ge_deltam_without_a_release_is_refused(version):
    sidecar = {key: value for key, value in GE_ASL.items() if key != "SoftwareVersions"}
    if version is not None:
        sidecar["SoftwareVersions"] = version
    with pytest.raises(ScalingFieldError, match="SoftwareVersions is"):
        vendor_scaling(sidecar, ("deltam", "m0scan"), 3)


def test_siemens_and_unknown_vendors_are_used_as_stored():
    scaling = vendor_scaling(SIEMENS_ASL, ("control", "label"), 8, _sidecar("asl005", "m0scan"))
    assert scaling.asl.factor == scaling.m0_factor == scaling.asl.deltam_factor == 1.0
    assert scaling.asl.rule.startswith("Siemens") and scaling.asl.vendor is None
    assert vendor_scaling({}, ("deltam",), 1).asl.rule.startswith("unknown manufacturer")


def test_quantification_with_display_values_equals_floating_point_truth():
    """CBF 60 written as Philips display values (ASL RS·SS = 0.01, M0 RS·SS = 0.004) reads
    60 with the rule applied; without it 60·0.01/0.004 = 150."""
    constants = resolve_constants("PCASL", 3.0)
    acquisition = Acquisition(
        labeling_type="PCASL", volume_types=("control", "label"), post_labeling_delay=(1.8, 1.8),
        labeling_duration=(1.8, 1.8), bolus_cutoff_delay_time=None, bolus_cutoff_technique=None,
        background_suppression_pulses=0, m0_type="Separate", m0_estimate=None,
        repetition_time_preparation=(5.0, 5.0), magnetic_field_strength=3.0,
        m0_repetition_time_preparation=(9.0,),
    )  # fmt: skip
    m0_fp = np.full((3, 3, 2), 2.0e5)
    control_fp = np.full((3, 3, 2), 1.0e5)
    label_fp = control_fp - single_delay_signal(60.0, 1.8, constants, labeling_duration=1.8) * m0_fp
    to_display = 2.5 * 0.004  # DV = FP·RS·SS
    data = np.stack([control_fp, label_fp], axis=-1) * to_display
    m0 = m0_fp * (1.6 * 0.0025)
    mask = np.ones((3, 3, 2), bool)
    scaled = replace(acquisition, scaling=vendor_scaling(
        {**PHILIPS_ASL, **ASL_DISPLAY}, acquisition.volume_types, 35, {**PHILIPS_M0, **M0_DISPLAY}
    ))  # fmt: skip
    result = quantify_series(data, scaled, mask, voxel_size_mm=(3, 3, 3), separate_m0=m0)
    np.testing.assert_allclose(result.maps["cbf"], 60.0, rtol=1e-9)
    assert result.provenance["scaling"]["m0_scan"]["factor"] == pytest.approx(250.0)
    unscaled = quantify_series(data, acquisition, mask, voxel_size_mm=(3, 3, 3), separate_m0=m0)
    np.testing.assert_allclose(unscaled.maps["cbf"], 150.0, rtol=1e-9)
    assert unscaled.provenance["scaling"] == VendorScaling().to_dict()
