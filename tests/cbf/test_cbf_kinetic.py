"""Kinetic models: reference values, analytic Jacobians, limits."""

import numpy as np
import pytest

from aslmig.cbf.constants import resolve_constants
from aslmig.cbf.kinetic import (
    KineticSettings,
    arterial_signal_and_jacobian,
    kinetic_signal,
    tissue_signal_and_jacobian,
)

PCASL = resolve_constants("PCASL", 3.0)
PASL = resolve_constants("PASL", 3.0)
DELAYS = np.array([0.2, 0.5, 0.8, 1.1, 1.4, 1.8, 2.3, 3.0])


def test_pcasl_white_paper_reference_value_beyond_arrival():
    # tau = PLD = 1.8 s, alpha 0.85, lambda 0.9, T1b 1.65 s, CBF 60 (design notes: 0.0069525)
    ratio = kinetic_signal(60, 0.8, 1.8, PCASL, labeling_duration=1.8, model="whitepaper")
    assert ratio == pytest.approx(0.0069525, rel=1e-5)


def test_pasl_white_paper_reference_value_after_bolus():
    ratio = kinetic_signal(60, 0.7, 1.8, PASL, labeling_duration=0.8, model="whitepaper")
    assert ratio == pytest.approx(0.0058523, rel=1e-5)


def test_full_model_equals_white_paper_when_tissue_t1_makes_them_equal():
    # 1/T1' = 1/T1t + f/lambda = 1/T1b when T1t = 1/(1/T1b - f/lambda)
    flow = 60 / 6000
    t1_tissue = 1 / (1 / 1.65 - flow / 0.9)
    c = resolve_constants("PCASL", 3.0, overrides={"t1_tissue": t1_tissue})
    full = kinetic_signal(60, 1.0, DELAYS, c, labeling_duration=1.8, model="full")
    wp = kinetic_signal(60, 1.0, DELAYS, c, labeling_duration=1.8, model="whitepaper")
    np.testing.assert_allclose(full, wp, rtol=1e-12, atol=1e-18)


def test_full_model_with_shorter_tissue_t1_gives_less_signal_after_arrival():
    full = kinetic_signal(60, 0.8, 1.8, PCASL, labeling_duration=1.8, model="full")
    wp = kinetic_signal(60, 0.8, 1.8, PCASL, labeling_duration=1.8, model="whitepaper")
    assert full < 0.8 * wp  # T1 tissue 1.3 s < T1 blood 1.65 s (design notes: 45.8 vs 60)


def test_no_signal_before_arrival():
    ratio = kinetic_signal(60, 2.0, np.array([0.0, 0.1]), PCASL, labeling_duration=1.8)
    assert np.all(ratio == 0)
    pulsed = kinetic_signal(60, 1.0, np.array([0.5, 0.99]), PASL, labeling_duration=0.8)
    assert np.all(pulsed == 0)


@pytest.mark.parametrize("constants", [PCASL, PASL], ids=["PCASL", "PASL"])
@pytest.mark.parametrize("model", ["full", "whitepaper"])
@pytest.mark.parametrize("att", [0.45, 0.95, 1.37, 2.15])  # off the kinks
def test_tissue_jacobian_matches_central_differences(constants, model, att):
    s = KineticSettings.from_constants(constants, model)
    tau = 1.8 if constants.labeling_type == "PCASL" else 0.8
    _, d_cbf, d_att = tissue_signal_and_jacobian(55.0, att, DELAYS, tau, s)
    h = 1e-6
    f = lambda c, a: tissue_signal_and_jacobian(c, a, DELAYS, tau, s)[0]  # noqa: E731
    num_cbf = (f(55.0 + h, att) - f(55.0 - h, att)) / (2 * h)
    num_att = (f(55.0, att + h) - f(55.0, att - h)) / (2 * h)
    np.testing.assert_allclose(d_cbf, num_cbf, rtol=1e-6, atol=1e-12)
    np.testing.assert_allclose(d_att, num_att, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize("constants", [PCASL, PASL], ids=["PCASL", "PASL"])
def test_arterial_jacobian_matches_central_differences(constants):
    s = KineticSettings.from_constants(constants, "full")
    tau = 1.8 if constants.labeling_type == "PCASL" else 0.8
    _, d_abv, d_att = arterial_signal_and_jacobian(0.02, 0.6, DELAYS, tau, s, 0.1)
    h = 1e-7
    f = lambda b, a: arterial_signal_and_jacobian(b, a, DELAYS, tau, s, 0.1)[0]  # noqa: E731
    np.testing.assert_allclose(d_abv, (f(0.02 + h, 0.6) - f(0.02 - h, 0.6)) / (2 * h), rtol=1e-6)
    np.testing.assert_allclose(
        d_att, (f(0.02, 0.6 + h) - f(0.02, 0.6 - h)) / (2 * h), rtol=1e-5, atol=1e-9
    )


def test_arterial_component_is_a_dispersed_bolus_of_blood():
    s = KineticSettings.from_constants(PCASL, "whitepaper")
    # PCASL: arterial label present while PLD < arrival time; amplitude 2 alpha aBV/lambda e^-Ta/T1b
    signal = arterial_signal_and_jacobian(0.01, 1.0, np.array([0.2, 3.0]), 1.8, s, 1e-3)[0]
    expected = 2 * 0.85 * 0.01 / 0.9 * np.exp(-1.0 / 1.65)
    assert signal[0] == pytest.approx(expected, rel=1e-9)
    assert signal[1] == pytest.approx(0.0, abs=1e-15)


def test_full_model_needs_tissue_t1():
    c = resolve_constants("PCASL", 7.0, overrides={"t1_blood": 2.1})
    with pytest.raises(ValueError, match="t1_tissue"):
        KineticSettings.from_constants(c, "full")
    with pytest.raises(ValueError, match="unknown kinetic model"):
        KineticSettings.from_constants(PCASL, "buxton")
