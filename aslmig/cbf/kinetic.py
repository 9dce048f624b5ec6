"""Forward kinetic models of the ASL difference signal, with analytic derivatives.

All signals are returned as ΔM/M0 (difference magnetisation over *tissue* equilibrium
magnetisation), with arterial blood M0 taken as M0/λ. Times are in seconds, CBF in
mL/100 g/min, arterial blood volume (aBV) as a volume fraction.

Models (Buxton et al. 1998, MRM 40:383; the white paper, Alsop et al. 2015):

* ``"full"``: the general kinetic model with the label exchanging into tissue on arrival, so
  that after arrival it relaxes with the apparent T1' where 1/T1' = 1/T1_tissue + f/λ.
* ``"whitepaper"``: the white paper's simplification that the label relaxes with blood T1
  throughout (T1' = T1_blood). For PCASL/CASL beyond arrival + bolus, and for PASL after the
  bolus has fully arrived, this is exactly the white-paper single-delay equation.

Timing conventions (ASL-BIDS): for PCASL/CASL ``delay`` is the post-labeling delay w and
``tau`` the labeling duration, so the time since the start of labeling is t = w + τ. For PASL
``delay`` is the inversion time TI (time since the labeling pulse) and ``tau`` the bolus
duration TI1 (``BolusCutOffDelayTime``).

The arterial (macrovascular) component follows Chappell et al. 2010 (MRM 63:1357): labeled
blood still in arteries, a bolus of duration τ arriving at the arterial transit time ATT_a,
here with Gaussian-dispersed edges (standard deviation ``dispersion_sd``) so that the model is
differentiable in ATT_a.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.special import ndtr

from aslmig.cbf.constants import QuantificationConstants

KINETIC_MODELS = ("full", "whitepaper")
_SERIES_LIMIT = 1e-3  # |k x| below which expm1(kx)/k is evaluated by its Taylor series
_SQRT_2PI = np.sqrt(2.0 * np.pi)


@dataclass(frozen=True)
class KineticSettings:
    """Constants the kinetic model needs, in one small object.

    Attributes
    ----------
    labeling_type : str
        PCASL, CASL or PASL.
    model : str
        ``"full"`` or ``"whitepaper"``.
    partition_coefficient, t1_blood, labeling_efficiency, unit_scale : float
        As in :class:`~aslmig.cbf.constants.QuantificationConstants`.
    t1_tissue : float, ndarray or None
        Tissue T1 (s); required by the full model. An array gives one value per voxel and
        must broadcast against the signal arrays (e.g. shape ``(n_voxels, 1)``).
    """

    labeling_type: str
    model: str
    partition_coefficient: float
    t1_blood: float
    t1_tissue: float | np.ndarray | None
    labeling_efficiency: float
    unit_scale: float

    @classmethod
    def from_constants(
        cls,
        constants: QuantificationConstants,
        model: str,
        t1_tissue: np.ndarray | float | None = None,
    ) -> KineticSettings:
        """Build settings from resolved constants and a model name.

        Parameters
        ----------
        constants : QuantificationConstants
            Resolved constants.
        model : str
            ``"full"`` or ``"whitepaper"``.
        t1_tissue : ndarray or float, optional
            Tissue T1 (s) replacing ``constants.t1_tissue``, e.g. a per-voxel array.

        Returns
        -------
        KineticSettings
            The settings.
        """
        if model not in KINETIC_MODELS:
            raise ValueError(f"unknown kinetic model {model!r}; use one of {KINETIC_MODELS}")
        if t1_tissue is not None:
            t1_tissue = np.asarray(t1_tissue, float)
            if np.any(~np.isfinite(t1_tissue)) or np.any(t1_tissue <= 0):
                raise ValueError("tissue T1 values must be positive finite seconds")
            t1_tissue = float(t1_tissue) if t1_tissue.ndim == 0 else t1_tissue
        elif model == "full":
            t1_tissue = constants.require_t1_tissue()
        else:
            t1_tissue = constants.t1_tissue
        return cls(
            labeling_type=constants.labeling_type,
            model=model,
            partition_coefficient=constants.partition_coefficient,
            t1_blood=constants.t1_blood,
            t1_tissue=t1_tissue,
            labeling_efficiency=constants.labeling_efficiency,
            unit_scale=constants.unit_scale,
        )

    @property
    def is_pulsed(self) -> bool:
        """Whether the labeling is pulsed (PASL)."""
        return self.labeling_type == "PASL"

    def apparent_rate(self, flow: np.ndarray) -> tuple[np.ndarray, float]:
        """Return 1/T1' for a flow in mL/g/s and its derivative with respect to that flow.

        Parameters
        ----------
        flow : ndarray
            Perfusion in mL/g/s.

        Returns
        -------
        rate : ndarray
            1/T1' in 1/s.
        drate_dflow : float
            d(1/T1')/d(flow).
        """
        if self.model == "whitepaper":
            return np.full_like(flow, 1.0 / self.t1_blood), 0.0
        inv_lambda = 1.0 / self.partition_coefficient
        return 1.0 / self.t1_tissue + flow * inv_lambda, inv_lambda


def _expm1_over_k(k: np.ndarray, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return E = (e^{kx} - 1)/k and dE/dk, stable as k -> 0 (where E -> x)."""
    y = k * x
    small = np.abs(y) < _SERIES_LIMIT
    k_safe = np.where(small, 1.0, k)
    exact = np.expm1(y) / k_safe
    exact_dk = (x * np.exp(y) - exact) / k_safe
    series = x * (1 + y * (1 / 2 + y * (1 / 6 + y * (1 / 24 + y / 120))))
    series_dk = x * x * (1 / 2 + y * (1 / 3 + y * (1 / 8 + y * (1 / 30 + y / 144))))
    return np.where(small, series, exact), np.where(small, series_dk, exact_dk)


def _continuous_tissue(
    flow: np.ndarray, att: np.ndarray, pld: np.ndarray, tau: np.ndarray, s: KineticSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PCASL/CASL tissue signal and its derivatives in flow (mL/g/s) and ATT."""
    rate, drate = s.apparent_rate(flow)
    pref = 2.0 * s.labeling_efficiency / s.partition_coefficient * np.exp(-att / s.t1_blood)
    since_arrival = np.maximum(pld + tau - att, 0.0)  # u = t - ATT
    since_bolus_end = pld - att  # v = w - ATT
    filling = (since_arrival > 0) & (since_bolus_end < 0)
    draining = since_bolus_end >= 0
    v = np.maximum(since_bolus_end, 0.0)

    decay_u = np.exp(-since_arrival * rate)
    h_fill = -np.expm1(-since_arrival * rate) / rate
    dh_fill_drate = (since_arrival * decay_u - h_fill) / rate
    decay_v = np.exp(-v * rate)
    decay_tau = np.exp(-tau * rate)
    h_drain = decay_v * (1.0 - decay_tau) / rate
    dh_drain_drate = -v * h_drain + decay_v * tau * decay_tau / rate - h_drain / rate

    h = np.where(draining, h_drain, np.where(filling, h_fill, 0.0))
    dh_drate = np.where(draining, dh_drain_drate, np.where(filling, dh_fill_drate, 0.0))
    dh_datt = np.where(draining, rate * h_drain, np.where(filling, -decay_u, 0.0))

    signal = pref * flow * h
    d_flow = pref * (h + flow * dh_drate * drate)
    d_att = pref * flow * (dh_datt - h / s.t1_blood)
    return signal, d_flow, d_att


def _pulsed_tissue(
    flow: np.ndarray, att: np.ndarray, ti: np.ndarray, tau: np.ndarray, s: KineticSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """PASL tissue signal and its derivatives in flow (mL/g/s) and ATT."""
    rate, drate = s.apparent_rate(flow)
    k = 1.0 / s.t1_blood - rate  # dk/dflow = -drate
    pref = 2.0 * s.labeling_efficiency / s.partition_coefficient * np.exp(-ti / s.t1_blood)
    since_arrival = np.maximum(ti - att, 0.0)  # u
    filling = (since_arrival > 0) & (since_arrival < tau)
    drained = since_arrival >= tau

    g_fill, dg_fill_dk = _expm1_over_k(k, since_arrival)
    e_tau, de_tau_dk = _expm1_over_k(k, tau)
    after = np.maximum(since_arrival - tau, 0.0)
    growth = np.exp(k * after)
    g_drain = growth * e_tau
    dg_drain_dk = after * g_drain + growth * de_tau_dk

    g = np.where(drained, g_drain, np.where(filling, g_fill, 0.0))
    dg_dk = np.where(drained, dg_drain_dk, np.where(filling, dg_fill_dk, 0.0))
    dg_datt = np.where(drained, -k * g_drain, np.where(filling, -np.exp(k * since_arrival), 0.0))

    signal = pref * flow * g
    d_flow = pref * (g - flow * dg_dk * drate)
    d_att = pref * flow * dg_datt
    return signal, d_flow, d_att


def tissue_signal_and_jacobian(
    cbf: np.ndarray, att: np.ndarray, delay: np.ndarray, tau: np.ndarray, s: KineticSettings
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Tissue ΔM/M0 and its derivatives with respect to CBF and ATT.

    Parameters
    ----------
    cbf : ndarray
        CBF in mL/100 g/min (broadcastable with ``delay``).
    att : ndarray
        Arterial transit time, s.
    delay : ndarray
        PLD (PCASL/CASL) or TI (PASL), s.
    tau : ndarray
        Labeling duration (PCASL/CASL) or bolus duration TI1 (PASL), s.
    s : KineticSettings
        Model and constants.

    Returns
    -------
    signal, d_cbf, d_att : ndarray
        ΔM/M0, d(ΔM/M0)/d(CBF) per mL/100 g/min, and d(ΔM/M0)/d(ATT) per second.
    """
    flow = np.asarray(cbf, dtype=float) / s.unit_scale
    args = (flow, np.asarray(att, float), np.asarray(delay, float), np.asarray(tau, float), s)
    model = _pulsed_tissue if s.is_pulsed else _continuous_tissue
    signal, d_flow, d_att = model(*args)
    return signal, d_flow / s.unit_scale, d_att


def tissue_signal(
    cbf: np.ndarray, att: np.ndarray, delay: np.ndarray, tau: np.ndarray, s: KineticSettings
) -> np.ndarray:
    """Tissue ΔM/M0 of the Buxton model (see :func:`tissue_signal_and_jacobian`).

    Parameters
    ----------
    cbf, att, delay, tau : ndarray
        CBF (mL/100 g/min), ATT (s), PLD or TI (s), labeling/bolus duration (s).
    s : KineticSettings
        Model and constants.

    Returns
    -------
    ndarray
        ΔM/M0.
    """
    return tissue_signal_and_jacobian(cbf, att, delay, tau, s)[0]


def arterial_signal_and_jacobian(
    abv: np.ndarray,
    att_arterial: np.ndarray,
    delay: np.ndarray,
    tau: np.ndarray,
    s: KineticSettings,
    dispersion_sd: float,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Arterial (macrovascular) ΔM/M0 and its derivatives in aBV and arterial ATT.

    Parameters
    ----------
    abv : ndarray
        Arterial blood volume fraction (0-1).
    att_arterial : ndarray
        Arterial arrival time, s.
    delay, tau : ndarray
        PLD or TI, and labeling/bolus duration, s.
    s : KineticSettings
        Model and constants.
    dispersion_sd : float
        Standard deviation (s) of the Gaussian smoothing of the bolus edges; must be > 0.

    Returns
    -------
    signal, d_abv, d_att_arterial : ndarray
        ΔM/M0 and its derivatives.
    """
    if dispersion_sd <= 0:
        raise ValueError("arterial dispersion_sd must be > 0 s (it keeps the model smooth)")
    abv = np.asarray(abv, float)
    att_a = np.asarray(att_arterial, float)
    delay = np.asarray(delay, float)
    tau = np.asarray(tau, float)
    since_label = delay if s.is_pulsed else delay + tau
    z_start = (since_label - att_a) / dispersion_sd
    z_end = (since_label - att_a - tau) / dispersion_sd
    box = ndtr(z_start) - ndtr(z_end)
    dbox_datt = (np.exp(-0.5 * z_end**2) - np.exp(-0.5 * z_start**2)) / (_SQRT_2PI * dispersion_sd)
    scale = 2.0 * s.labeling_efficiency / s.partition_coefficient
    if s.is_pulsed:
        decay = np.exp(-since_label / s.t1_blood)
        d_decay = 0.0
    else:
        decay = np.exp(-att_a / s.t1_blood)
        d_decay = -decay / s.t1_blood
    d_abv = scale * decay * box
    signal = abv * d_abv
    d_att = scale * abv * (d_decay * box + decay * dbox_datt)
    return signal, d_abv, d_att


def kinetic_signal(
    cbf: np.ndarray,
    att: np.ndarray,
    delays: np.ndarray,
    constants: QuantificationConstants,
    *,
    labeling_duration: np.ndarray,
    model: str = "full",
    abv: np.ndarray | float = 0.0,
    att_arterial: np.ndarray | float | None = None,
    arterial_dispersion_sd: float = 0.1,
) -> np.ndarray:
    """Forward model: ΔM/M0 for given CBF and ATT (and optional arterial component).

    Parameters
    ----------
    cbf : ndarray
        CBF in mL/100 g/min; broadcast against ``delays``.
    att : ndarray
        Tissue arterial transit time, s.
    delays : ndarray
        PLDs (PCASL/CASL) or TIs (PASL), s.
    constants : QuantificationConstants
        Resolved constants.
    labeling_duration : ndarray
        Labeling duration τ (PCASL/CASL) or bolus duration TI1 (PASL), s.
    model : str
        ``"full"`` or ``"whitepaper"``.
    abv : ndarray or float
        Arterial blood volume fraction; 0 disables the arterial component.
    att_arterial : ndarray or float, optional
        Arterial arrival time, s; required when ``abv`` is non-zero.
    arterial_dispersion_sd : float
        Gaussian edge smoothing of the arterial bolus, s.

    Returns
    -------
    ndarray
        ΔM/M0.
    """
    s = KineticSettings.from_constants(constants, model)
    signal = tissue_signal(cbf, att, delays, labeling_duration, s)
    if np.any(np.asarray(abv) != 0):
        if att_arterial is None:
            raise ValueError("att_arterial is required when abv is non-zero")
        signal = (
            signal
            + arterial_signal_and_jacobian(
                abv, att_arterial, delays, labeling_duration, s, arterial_dispersion_sd
            )[0]
        )
    return signal
