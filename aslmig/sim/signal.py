"""The simulated acquisition: volume order, sidecars, and the forward model of every volume.

Physics comes only from :mod:`aslmig.cbf`: the white-paper single-delay model
(:func:`aslmig.cbf.single_delay.single_delay_signal`) for one delay, the Buxton general kinetic
model (:func:`aslmig.cbf.kinetic.kinetic_signal`, ``model="full"``, tissue T1 of grey or white
matter) for several, and :func:`aslmig.cbf.calibration.tr_correction_factor` for M0 volumes
acquired with a short repetition time.

Each ASL voxel holds up to three compartments (grey matter, white matter, CSF) with weights
``w_t = p_t · M0_t`` (partial volume times tissue equilibrium magnetisation) and their own CBF
and ATT; the voxel's ΔM is ``Σ_t w_t · s_t`` where ``s_t`` is the model ΔM/M0 of the
compartment, and its M0 is ``Σ_t w_t``. For one delay the model is linear in CBF, so a
white-paper quantification returns exactly the M0-weighted CBF ``Σ_t w_t·CBF_t / Σ_t w_t``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from aslmig.cbf.calibration import LONG_TR_THRESHOLD_S, tr_correction_factor
from aslmig.cbf.constants import QuantificationConstants, resolve_constants
from aslmig.cbf.kinetic import kinetic_signal
from aslmig.cbf.single_delay import effective_delays, single_delay_signal
from aslmig.sim.spec import CohortSpec

#: Equilibrium magnetisation (arbitrary units) of each tissue.
TISSUE_M0 = {"GM": 1000.0, "WM": 800.0, "CSF": 1400.0}
#: T1w-like contrast of each tissue.
T1W_INTENSITY = {"GM": 600.0, "WM": 900.0, "CSF": 150.0}
#: Control-image intensity relative to M0, without and with background suppression.
CONTROL_FRACTION = {False: 0.9, True: 0.1}
ECHO_TIME_S = 0.0112
M0_REPETITION_TIME_S = 10.0
READOUT_S = 0.6
BS_PULSE_SPACING_S = 0.3
MANUFACTURER = "aslmig simulate (digital phantom)"


@dataclass(frozen=True)
class Acquisition:
    """Volume order and timing of one simulated ASL series.

    Attributes
    ----------
    volume_types : tuple of str
        ``aslcontext.tsv`` volume types.
    delays : ndarray
        PLD (PCASL) or TI (PASL) of every volume, s (0 for m0scan volumes).
    durations : ndarray
        Labeling duration of every volume (PCASL; 0 for m0scan volumes), s.
    repetition_time : float
        ``RepetitionTimePreparation`` of the ASL volumes, s.
    slice_timing : tuple of float or None
        ``SliceTiming`` of a 2D readout.
    constants : QuantificationConstants
        The constants the engine will resolve from the sidecar (grey-matter tissue T1).
    """

    volume_types: tuple[str, ...]
    delays: np.ndarray
    durations: np.ndarray
    repetition_time: float
    slice_timing: tuple[float, ...] | None
    constants: QuantificationConstants

    @property
    def n_volumes(self) -> int:
        """Number of volumes of the series."""
        return len(self.volume_types)


def engine_constants(spec: CohortSpec) -> QuantificationConstants:
    """Constants the engine resolves for the simulated sidecar (no overrides).

    Parameters
    ----------
    spec : CohortSpec
        The cohort specification.

    Returns
    -------
    QuantificationConstants
        Resolved constants.
    """
    return resolve_constants(
        spec.labeling_type, spec.field_strength, bs_pulses=spec.background_suppression_pulses
    )


def tissue_constants(spec: CohortSpec) -> dict[str, QuantificationConstants]:
    """Constants per compartment: grey matter and white matter differ in tissue T1 only.

    Parameters
    ----------
    spec : CohortSpec
        The cohort specification.

    Returns
    -------
    dict
        ``{"GM": ..., "WM": ...}``.
    """
    base = engine_constants(spec)
    t1_wm = base.t1_white_matter if base.t1_white_matter is not None else base.t1_tissue
    wm = resolve_constants(
        spec.labeling_type,
        spec.field_strength,
        bs_pulses=spec.background_suppression_pulses,
        overrides={"t1_tissue": t1_wm},
    )
    return {"GM": base, "WM": wm}


def plan_acquisition(spec: CohortSpec, n_slices: int) -> Acquisition:
    """Order the volumes: [m0scan,] then ``pairs`` control/label pairs per delay.

    Parameters
    ----------
    spec : CohortSpec
        The cohort specification.
    n_slices : int
        Slices of the ASL grid (for 2D ``SliceTiming``).

    Returns
    -------
    Acquisition
        The series description.
    """
    types: list[str] = []
    delays: list[float] = []
    if spec.m0_type == "Included":
        types.append("m0scan")
        delays.append(0.0)
    for pld in spec.plds:
        for _ in range(spec.pairs):
            types += ["control", "label"]
            delays += [float(pld), float(pld)]
    is_pcasl = spec.labeling_type == "PCASL"
    durations = np.array(
        [spec.labeling_duration if (kind != "m0scan" and is_pcasl) else 0.0 for kind in types]
    )
    timing = None
    readout = READOUT_S
    if spec.readout == "2D":
        timing = tuple(round(k * spec.slice_duration, 6) for k in range(n_slices))
        readout = max(READOUT_S, n_slices * spec.slice_duration)
    labeling = spec.labeling_duration if is_pcasl else 0.0
    repetition_time = round(labeling + max(spec.plds) + readout + 0.5, 3)
    return Acquisition(
        tuple(types), np.array(delays), durations, repetition_time, timing, engine_constants(spec)
    )


def _per_volume(values: np.ndarray, as_list: bool) -> float | list[float]:
    return [float(v) for v in values] if as_list else float(values[0])


def asl_sidecar(spec: CohortSpec, acquisition: Acquisition) -> dict:
    """Return the complete ``*_asl.json`` sidecar of a simulated series.

    Parameters
    ----------
    spec : CohortSpec
        The cohort specification.
    acquisition : Acquisition
        The series description.

    Returns
    -------
    dict
        ASL-BIDS metadata.
    """
    per_volume = spec.m0_type == "Included" or spec.is_multi_delay
    sidecar: dict = {
        "ArterialSpinLabelingType": spec.labeling_type,
        "PostLabelingDelay": _per_volume(acquisition.delays, per_volume),
    }
    if spec.labeling_type == "PCASL":
        sidecar["PCASLType"] = "balanced"
        sidecar["LabelingDuration"] = _per_volume(acquisition.durations, per_volume)
    else:
        sidecar.update(
            PASLType="FAIR",
            BolusCutOffFlag=True,
            BolusCutOffDelayTime=spec.bolus_cutoff,
            BolusCutOffTechnique="QUIPSSII",
        )
    pulses = spec.background_suppression_pulses
    sidecar["BackgroundSuppression"] = pulses > 0
    if pulses:
        sidecar["BackgroundSuppressionNumberPulses"] = pulses
        sidecar["BackgroundSuppressionPulseTime"] = [
            round(0.1 + k * BS_PULSE_SPACING_S, 3) for k in range(pulses)
        ]
    sidecar.update(
        M0Type=spec.m0_type,
        TotalAcquiredPairs=spec.pairs * len(spec.plds),
        RepetitionTimePreparation=acquisition.repetition_time,
        MagneticFieldStrength=spec.field_strength,
        MRAcquisitionType=spec.readout,
        EchoTime=ECHO_TIME_S,
        VascularCrushing=False,
        Manufacturer=MANUFACTURER,
    )
    if acquisition.slice_timing is not None:
        sidecar["SliceTiming"] = list(acquisition.slice_timing)
        sidecar["SliceEncodingDirection"] = "k"
    return sidecar


def m0_sidecar(spec: CohortSpec, intended_for: str) -> dict:
    """Return the ``*_m0scan.json`` sidecar of a separate M0 scan."""
    return {
        "RepetitionTimePreparation": M0_REPETITION_TIME_S,
        "EchoTime": ECHO_TIME_S,
        "MagneticFieldStrength": spec.field_strength,
        "MRAcquisitionType": spec.readout,
        "IntendedFor": intended_for,
    }


def m0_recovery(repetition_time: float, constants: QuantificationConstants) -> float:
    """Fraction of M0 an M0 volume shows at ``repetition_time`` (as the engine corrects it).

    Parameters
    ----------
    repetition_time : float
        ``RepetitionTimePreparation`` of the M0 volume, s.
    constants : QuantificationConstants
        Gives the tissue T1 the engine uses for the correction.

    Returns
    -------
    float
        1 for a long TR, else 1 − e^(−TR/T1_tissue).
    """
    if repetition_time >= LONG_TR_THRESHOLD_S:
        return 1.0
    return float(1.0 / tr_correction_factor(repetition_time, constants.require_t1_tissue()))


@dataclass(frozen=True)
class Compartments:
    """Tissue compartments of every voxel of a grid (see the module docstring).

    Attributes
    ----------
    weights : dict of ndarray
        ``w_t = p_t · M0_t`` of GM, WM and CSF.
    cbf : dict of ndarray
        M0-weighted mean CBF of the GM and WM compartments, mL/100 g/min.
    """

    weights: dict[str, np.ndarray]
    cbf: dict[str, np.ndarray]

    @classmethod
    def from_channels(cls, channels: np.ndarray) -> Compartments:
        """Build from resampled channels ``[w_GM, w_WM, w_CSF, w_GM·CBF_GM, w_WM·CBF_WM]``."""
        weights = {"GM": channels[0], "WM": channels[1], "CSF": channels[2]}
        cbf = {}
        for tissue, weighted in (("GM", channels[3]), ("WM", channels[4])):
            w = weights[tissue]
            cbf[tissue] = np.divide(weighted, w, out=np.zeros_like(w), where=w > 1e-9)
        return cls(weights, cbf)

    @property
    def m0(self) -> np.ndarray:
        """Equilibrium magnetisation ``Σ_t w_t``."""
        return self.weights["GM"] + self.weights["WM"] + self.weights["CSF"]

    def mixed_cbf(self) -> np.ndarray:
        """M0-weighted CBF ``Σ_t w_t CBF_t / Σ_t w_t`` (0 where M0 is 0)."""
        m0 = self.m0
        flow = self.weights["GM"] * self.cbf["GM"] + self.weights["WM"] * self.cbf["WM"]
        return np.divide(flow, m0, out=np.zeros_like(m0), where=m0 > 1e-9)


def template_channels(
    gm: np.ndarray, wm: np.ndarray, csf: np.ndarray, cbf_gm: np.ndarray, cbf_wm: np.ndarray
) -> np.ndarray:
    """Stack the linear channels that are resampled from template to subject space.

    Parameters
    ----------
    gm, wm, csf : ndarray
        Tissue probabilities.
    cbf_gm, cbf_wm : ndarray
        Grey- and white-matter CBF maps, mL/100 g/min.

    Returns
    -------
    ndarray
        ``(5, *shape)``: ``w_GM, w_WM, w_CSF, w_GM·CBF_GM, w_WM·CBF_WM``.
    """
    w_gm, w_wm = gm * TISSUE_M0["GM"], wm * TISSUE_M0["WM"]
    return np.stack([w_gm, w_wm, csf * TISSUE_M0["CSF"], w_gm * cbf_gm, w_wm * cbf_wm])


def compartment_signal(
    spec: CohortSpec,
    tissue: str,
    cbf: np.ndarray,
    delays: np.ndarray,
    constants: QuantificationConstants,
) -> np.ndarray:
    """ΔM/M0 of one compartment at the given (effective) delays.

    Parameters
    ----------
    spec : CohortSpec
        Gives the labeling and ATT.
    tissue : str
        ``"GM"`` or ``"WM"``.
    cbf : ndarray
        CBF, mL/100 g/min.
    delays : ndarray
        PLD/TI broadcastable against ``cbf``, s.
    constants : QuantificationConstants
        Constants of the compartment.

    Returns
    -------
    ndarray
        ΔM/M0.
    """
    pasl = spec.labeling_type == "PASL"
    if not spec.is_multi_delay:
        return single_delay_signal(
            cbf,
            delays,
            constants,
            labeling_duration=None if pasl else spec.labeling_duration,
            bolus_cutoff_delay_time=spec.bolus_cutoff if pasl else None,
        )
    att = spec.att_gm if tissue == "GM" else spec.att_wm
    tau = spec.bolus_cutoff if pasl else spec.labeling_duration
    return kinetic_signal(
        cbf, np.full_like(cbf, att), delays, constants, labeling_duration=tau, model="full"
    )


def volume_deltam(
    spec: CohortSpec,
    compartments: Compartments,
    delay: float,
    slice_timing: tuple[float, ...] | None,
    constants: dict[str, QuantificationConstants],
) -> np.ndarray:
    """ΔM of one label/control pair: ``Σ_t w_t · s_t`` on the grid of ``compartments``.

    Parameters
    ----------
    spec : CohortSpec
        The cohort specification.
    compartments : Compartments
        Tissue weights and CBF of every voxel.
    delay : float
        Nominal PLD/TI, s.
    slice_timing : tuple of float, optional
        2D slice times (slices along the third axis).
    constants : dict
        Per-compartment constants (:func:`tissue_constants`).

    Returns
    -------
    ndarray
        ΔM (M0 units).
    """
    shape = compartments.m0.shape
    delays = effective_delays(delay, 1, shape, slice_timing, 2)[..., 0]
    total = np.zeros(shape)
    for tissue in ("GM", "WM"):
        signal = compartment_signal(
            spec, tissue, compartments.cbf[tissue], delays, constants[tissue]
        )
        total += compartments.weights[tissue] * signal
    return total


def series_volume(
    kind: str,
    compartments: Compartments,
    deltam: np.ndarray | None,
    spec: CohortSpec,
    acquisition: Acquisition,
) -> np.ndarray:
    """Noise-free image of one volume of the series.

    Parameters
    ----------
    kind : str
        ``m0scan``, ``control`` or ``label``.
    compartments : Compartments
        Tissue weights and CBF at this volume's head position.
    deltam : ndarray or None
        ΔM of the volume (label volumes).
    spec : CohortSpec
        The cohort specification.
    acquisition : Acquisition
        The series description.

    Returns
    -------
    ndarray
        Image intensities.
    """
    m0 = compartments.m0
    if kind == "m0scan":
        return m0 * m0_recovery(acquisition.repetition_time, acquisition.constants)
    control = CONTROL_FRACTION[spec.background_suppression_pulses > 0] * m0
    return control if kind == "control" else control - deltam


def t1w_channels(gm: np.ndarray, wm: np.ndarray, csf: np.ndarray) -> np.ndarray:
    """One-channel T1w-like contrast of tissue probability maps, ``(1, *shape)``."""
    image = gm * T1W_INTENSITY["GM"] + wm * T1W_INTENSITY["WM"] + csf * T1W_INTENSITY["CSF"]
    return image[None]
