"""Acquisition plausibility (white paper ranges), the arterial-component decision and the
QUIPSS I model (issue 13 items 2-3)."""

from dataclasses import replace

import numpy as np
import pytest

from aslmig.cbf.acquisition import (
    Acquisition,
    acquisition_warnings,
    arterial_component,
    quipss_bolus,
)
from aslmig.cbf.constants import resolve_constants
from aslmig.cbf.quantify import quantify_series
from aslmig.cbf.single_delay import single_delay_signal

PCASL = Acquisition(
    labeling_type="PCASL",
    volume_types=("control", "label"),
    post_labeling_delay=(1.8, 1.8),
    labeling_duration=(1.8, 1.8),
    bolus_cutoff_delay_time=None,
    bolus_cutoff_technique=None,
    background_suppression_pulses=0,
    m0_type="Estimate",
    m0_estimate=1000.0,
    repetition_time_preparation=(4.0, 4.0),
    magnetic_field_strength=3.0,
)
PASL = replace(
    PCASL,
    labeling_type="PASL",
    post_labeling_delay=(1.8, 1.8),
    labeling_duration=None,
    bolus_cutoff_delay_time=(0.8,),
    bolus_cutoff_technique="QUIPSSII",
)
O2019_PLDS = (0.25, 0.5, 0.75, 1.0, 1.25, 1.5)


def _multi_delay(plds=O2019_PLDS, repeats=2, **changes):
    types = ("label", "control") * len(plds) * repeats
    return replace(
        PCASL,
        volume_types=types,
        post_labeling_delay=tuple(np.repeat(plds, 2 * repeats)),
        labeling_duration=(1.8,) * len(types),
        repetition_time_preparation=(4.0,) * len(types),
        **changes,
    )


def test_white_paper_timing_gives_no_warning():
    assert acquisition_warnings(PCASL) == ()
    assert acquisition_warnings(PASL) == ()
    assert acquisition_warnings(_multi_delay((0.5, 1.0, 1.5, 2.0))) == ()


@pytest.mark.parametrize(
    ("pld", "words"),
    [
        (0.2, "PostLabelingDelay 0.2 s is outside the white paper's recommendation (1.5-2 s"),
        (0.2, "CBF will be vessel-dominated"),
        (1.2, "overestimated near arteries"),
        (2.5, "unbiased but noisier"),
    ],
)
def test_single_delay_pld_outside_the_range(pld, words):
    acquisition = replace(PCASL, post_labeling_delay=(pld, pld))
    (warning,) = acquisition_warnings(acquisition)
    assert warning.field == "PostLabelingDelay" and warning.value == f"{pld:g} s"
    assert words in warning.message and "Alsop 2015" in warning.message


def test_labeling_and_bolus_durations():
    short = replace(PCASL, labeling_duration=(1.0, 1.0))
    assert [w.field for w in acquisition_warnings(short)] == ["LabelingDuration"]
    long_bolus = replace(PASL, bolus_cutoff_delay_time=(1.2,))
    (warning,) = acquisition_warnings(long_bolus)
    assert warning.field == "BolusCutOffDelayTime (TI1)" and "underestimated" in warning.meaning


def test_multi_delay_is_judged_by_its_longest_delay_not_its_early_ones():
    (warning,) = acquisition_warnings(_multi_delay())
    assert warning.field == "PostLabelingDelay (longest)" and warning.value == "1.5 s"


def test_scanner_cbf_maps_are_not_judged():
    cbf_only = replace(PCASL, volume_types=("cbf",), post_labeling_delay=(0.2,),
                       labeling_duration=(1.8,), repetition_time_preparation=(4.0,))  # fmt: skip
    assert acquisition_warnings(cbf_only) == ()


@pytest.mark.parametrize(
    ("acquisition", "choice", "enabled", "words"),
    [
        (_multi_delay(), "auto", True, "0.25 s) is shorter than the arterial arrival time (1 s"),
        (_multi_delay(vascular_crushing=True), "auto", False, "VascularCrushing is true"),
        (_multi_delay((1.5, 2.0, 2.5, 3.0)), "auto", False, "past the arterial arrival"),
        (_multi_delay((1.5, 2.0, 2.5, 3.0)), "on", True, "on (configuration)"),
        (_multi_delay(), "off", False, "off (configuration)"),
        (_multi_delay(repeats=1), "auto", False, "no delay is repeated"),
        (_multi_delay(repeats=1), "on", True, "on (configuration)"),
        (_multi_delay((0.25, 0.5, 1.0)), "on", False, "3 distinct delays cannot"),
        (PCASL, "on", False, "single delay"),
    ],
)
def test_arterial_component_decision(acquisition, choice, enabled, words):
    decision = arterial_component(acquisition, choice)
    assert decision.enabled is enabled and words in decision.reason


def test_arterial_decision_for_pasl_uses_the_time_after_the_bolus():
    pasl = replace(_multi_delay((1.0, 1.5, 2.0, 2.5)), labeling_type="PASL",
                   labeling_duration=None, bolus_cutoff_delay_time=(0.8,),
                   bolus_cutoff_technique="Q2TIPS")  # fmt: skip
    assert arterial_component(pasl).enabled  # 1.0 - 0.8 = 0.2 s < 0.4 s
    later = replace(pasl, post_labeling_delay=tuple(np.repeat((1.4, 1.8, 2.2, 2.6), 4)))
    assert not arterial_component(later).enabled


def test_quipss_i_bolus_term_and_its_refusal():
    quipss = replace(PASL, bolus_cutoff_technique="QUIPSS", bolus_cutoff_delay_time=(0.7,))
    bolus, source = quipss_bolus(quipss)
    assert bolus == pytest.approx(1.1) and "Wong" in source
    assert quipss_bolus(PASL)[0] == 0.8  # QUIPSS II: the bolus is TI1
    with pytest.raises(ValueError, match="after the saturation"):
        quipss_bolus(replace(quipss, post_labeling_delay=(0.6, 0.6)))


def test_quipss_i_quantification_is_exact():
    """Signal of the QUIPSS I model, 2·α·M0b·f·(TI − TI1)·e^(−TI/T1b) (Wong 1998), back to
    CBF 60; the QUIPSS II equation on the same data would read 60·(TI − TI1)/TI1."""
    quipss = replace(PASL, bolus_cutoff_technique="QUIPSS", bolus_cutoff_delay_time=(0.7,),
                     m0_type="Estimate", m0_estimate=1000.0)  # fmt: skip
    constants = resolve_constants("PASL", 3.0)
    ti, ti1 = 1.8, 0.7
    ratio = single_delay_signal(60.0, ti, constants, bolus_cutoff_delay_time=ti - ti1)
    control = np.full((3, 3, 2), 500.0)
    data = np.stack([control, control - ratio * 1000.0], axis=-1)
    result = quantify_series(data, quipss, np.ones((3, 3, 2), bool), voxel_size_mm=(3, 3, 3))
    np.testing.assert_allclose(result.maps["cbf"], 60.0, rtol=1e-9)
    assert "TI-TI1" in result.provenance["equation"]
    assert "Wong" in result.provenance["equation_source"]


def test_multi_delay_quipss_i_is_refused():
    quipss = replace(_multi_delay((1.0, 1.5, 2.0, 2.5), repeats=1), labeling_type="PASL",
                     labeling_duration=None, bolus_cutoff_delay_time=(0.7,),
                     bolus_cutoff_technique="QUIPSS")  # fmt: skip
    data = np.full((2, 2, 2, 8), 500.0)
    with pytest.raises(ValueError, match="QUIPSS I bolus cut-off is not modelled"):
        quantify_series(data, quipss, np.ones((2, 2, 2), bool), voxel_size_mm=(3, 3, 3))
