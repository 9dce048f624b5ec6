"""Simulate an ASL-BIDS migraine cohort from a ground-truth perfusion model in template space.

:func:`simulate_cohort` is the Python entry point (``aslmig simulate`` is a thin wrapper):

1. plan the cohort (:mod:`aslmig.sim.plan`): participants per group (age, sex, typical aura
   side, site, head scaling, global and per-region CBF factors) and their sessions (phase,
   attack timing, head pose, session factor);
2. per session, build grey- and white-matter CBF maps on the template grid (baseline × factors
   × the regional effects that apply to the participant's group and the session's phase);
3. resample the tissue compartments onto the participant's ASL grid at the session's head
   pose (3×3×3 sub-sampling for partial volume; per volume when there is head motion) and
   apply the engine's forward models (:mod:`aslmig.sim.signal`);
4. add Gaussian noise and write the raw dataset; write the truth to
   ``derivatives/ground-truth/``.

Every random draw comes from a stream keyed by the seed and the participant (and session),
and every file is written without timestamps, so the same seed gives byte-identical files.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from aslmig.__about__ import __version__
from aslmig.atlas.templates import bundle_root
from aslmig.errors import InputError
from aslmig.sim import signal
from aslmig.sim.anatomy import (
    TemplateAnatomy,
    grid_for,
    head_matrix,
    load_template_anatomy,
    motion_trajectory,
    resample_channels,
)
from aslmig.sim.io import write_json, write_nifti, write_tsv
from aslmig.sim.plan import (
    STREAM_PURPOSE,
    ParticipantPlan,
    SessionPlan,
    effect_tissue,
    plan_cohort,
    session_change,
    site_distortion,
    stream_rng,
)
from aslmig.sim.regions import AtlasRegions, RegionMask, load_sim_atlas
from aslmig.sim.spec import CohortSpec, check_spec, output_problem
from aslmig.sim.truth_anatomy import write_participant_anatomy

COHORT_NAME = "aslmig simulated migraine ASL cohort"
TRUTH_PIPELINE = "ground-truth"
T1W_NOISE_SD = 5.0
T1W_OFFSET = 10.0


@dataclass(frozen=True)
class SessionImages:
    """Noise-free images of one session on its ASL grid, and the native truth.

    Attributes
    ----------
    series : ndarray
        ASL series (x, y, z, volumes), noise-free.
    m0 : ndarray or None
        Separate M0 image, noise-free (None when M0 is included in the series).
    reference : signal.Compartments
        Compartments at the session's reference head pose (no motion).
    affine : ndarray
        ASL grid voxel-to-world matrix.
    acquisition : signal.Acquisition
        Volume order and timing.
    motion : ndarray
        Per-volume head motion (mm, rad).
    cbf_gm, cbf_wm : ndarray
        Template-space grey- and white-matter CBF, mL/100 g/min.
    """

    series: np.ndarray
    m0: np.ndarray | None
    reference: signal.Compartments
    affine: np.ndarray
    acquisition: signal.Acquisition
    motion: np.ndarray
    cbf_gm: np.ndarray
    cbf_wm: np.ndarray


@dataclass(frozen=True)
class SimulationResult:
    """What :func:`simulate_cohort` wrote.

    Attributes
    ----------
    bids_dir : Path
        The raw ASL-BIDS dataset.
    truth_dir : Path
        ``bids_dir/derivatives/ground-truth``.
    participants : pandas.DataFrame
        ``participants.tsv`` plus the truth columns (head scale, global factor).
    sessions : pandas.DataFrame
        One row per session: participant, session, phase, hours, session factor, noise SD.
    effects : pandas.DataFrame
        The regional effects (group, phase, roi, change, tissue).
    parameters : dict
        The exact simulation parameters (``simulation.json``).
    seconds : float
        Wall time.
    """

    bids_dir: Path
    truth_dir: Path
    participants: pd.DataFrame
    sessions: pd.DataFrame
    effects: pd.DataFrame
    parameters: dict
    seconds: float


def cbf_maps(
    spec: CohortSpec,
    anatomy: TemplateAnatomy,
    participant: ParticipantPlan,
    session: SessionPlan,
    regions: RegionMask | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Template-space grey- and white-matter CBF of one session (the ground truth).

    Parameters
    ----------
    spec : CohortSpec
        The cohort specification.
    anatomy : TemplateAnatomy
        Template grid.
    participant : ParticipantPlan
        The participant (factors, group).
    session : SessionPlan
        The session (phase, factor).
    regions : callable or None
        Region-mask provider (needed when there are effects or regional factors).

    Returns
    -------
    cbf_gm, cbf_wm : ndarray
        mL/100 g/min.
    """
    scale = participant.global_factor * session.factor
    maps = {
        "GM": np.full(anatomy.shape, spec.gm_cbf * scale),
        "WM": np.full(anatomy.shape, spec.wm_cbf * scale),
    }
    changes = [(name, factor) for name, factor in participant.region_factors.items()]
    changes += [(effect.roi, 1.0 + session_change(effect, participant, session))
                for effect in spec.effects]  # fmt: skip
    for roi, factor in changes:
        if factor != 1.0:
            maps[effect_tissue(roi)][regions(roi)] *= factor
    return maps["GM"], maps["WM"]


def _compartments(
    channels: np.ndarray, anatomy: TemplateAnatomy, head: np.ndarray, grid
) -> signal.Compartments:
    shape, affine = grid
    return signal.Compartments.from_channels(
        resample_channels(channels, anatomy.affine, head, shape, affine)
    )


def render_session(
    spec: CohortSpec,
    anatomy: TemplateAnatomy,
    participant: ParticipantPlan,
    session: SessionPlan,
    regions: RegionMask | None = None,
) -> SessionImages:
    """Noise-free ASL series (and M0) of one session, with its native-space truth.

    Parameters
    ----------
    spec : CohortSpec
        The cohort specification.
    anatomy : TemplateAnatomy
        Template grid.
    participant : ParticipantPlan
        The participant.
    session : SessionPlan
        The session.
    regions : callable, optional
        Region-mask provider.

    Returns
    -------
    SessionImages
        Images in float64.
    """
    cbf_gm, cbf_wm = cbf_maps(spec, anatomy, participant, session, regions)
    measured_gm, measured_wm = site_distortion(participant.site, cbf_gm, cbf_wm)
    channels = signal.template_channels(
        anatomy.gm, anatomy.wm, anatomy.csf, measured_gm, measured_wm
    )
    grid = grid_for(spec.voxel_mm)
    acquisition = signal.plan_acquisition(spec, grid[0][2])
    rng = stream_rng(spec, *session.key, STREAM_PURPOSE["noise"])
    motion = motion_trajectory(
        rng, acquisition.n_volumes, spec.motion_translation_mm, spec.motion_rotation_deg
    )
    head = head_matrix(session.pose, participant.scale)
    reference = _compartments(channels, anatomy, head, grid)
    constants = signal.tissue_constants(spec)
    volumes = []
    for index, kind in enumerate(acquisition.volume_types):
        compartments = reference
        if np.any(motion[index]):
            moved = head_matrix(motion[index]) @ head
            compartments = _compartments(channels, anatomy, moved, grid)
        deltam = None
        if kind == "label":
            deltam = signal.volume_deltam(
                spec, compartments, acquisition.delays[index], acquisition.slice_timing, constants
            )
        volumes.append(signal.series_volume(kind, compartments, deltam, spec, acquisition))
    m0 = None
    if spec.m0_type == "Separate":
        m0 = reference.m0 * signal.m0_recovery(signal.M0_REPETITION_TIME_S, acquisition.constants)
    return SessionImages(
        np.stack(volumes, axis=-1), m0, reference, grid[1], acquisition, motion, cbf_gm, cbf_wm
    )


def noise_sd(spec: CohortSpec, reference: signal.Compartments) -> float:
    """Noise SD of every volume: mean brain M0 / SNR (0 for an infinite SNR).

    Parameters
    ----------
    spec : CohortSpec
        Gives the SNR.
    reference : signal.Compartments
        Compartments at the reference head pose.

    Returns
    -------
    float
        Standard deviation of the Gaussian noise (image units).
    """
    if math.isinf(spec.snr):
        return 0.0
    tissue = (
        reference.weights["GM"] / signal.TISSUE_M0["GM"]
        + reference.weights["WM"] / signal.TISSUE_M0["WM"]
    )
    brain = tissue > 0.5
    return float(reference.m0[brain].mean() / spec.snr) if brain.any() else 0.0


# --------------------------------------------------------------------------- writing


def _stem(participant: ParticipantPlan, session: SessionPlan) -> str:
    return f"sub-{participant.label}_ses-{session.label}"


def _session_dir(root: Path, participant: ParticipantPlan, session: SessionPlan) -> Path:
    return root / f"sub-{participant.label}" / f"ses-{session.label}"


def write_session(
    root: Path,
    spec: CohortSpec,
    participant: ParticipantPlan,
    session: SessionPlan,
    images: SessionImages,
) -> float:
    """Add noise to a session's images and write them with their sidecars; return the SD.

    Parameters
    ----------
    root : Path
        Dataset root.
    spec : CohortSpec
        The cohort specification.
    participant, session : ParticipantPlan, SessionPlan
        Who and when.
    images : SessionImages
        Noise-free images.

    Returns
    -------
    float
        Noise SD used.
    """
    sd = noise_sd(spec, images.reference)
    rng = stream_rng(spec, *session.key, STREAM_PURPOSE["noise"], 1)
    perf = _session_dir(root, participant, session) / "perf"
    stem = _stem(participant, session)
    series = images.series + (rng.normal(0.0, sd, images.series.shape) if sd else 0.0)
    write_nifti(perf / f"{stem}_asl.nii.gz", series, images.affine)
    write_tsv(
        perf / f"{stem}_aslcontext.tsv",
        ["volume_type"],
        [[kind] for kind in images.acquisition.volume_types],
    )
    write_json(perf / f"{stem}_asl.json", signal.asl_sidecar(spec, images.acquisition))
    if images.m0 is not None:
        m0 = images.m0 + (rng.normal(0.0, sd, images.m0.shape) if sd else 0.0)
        write_nifti(perf / f"{stem}_m0scan.nii.gz", m0, images.affine)
        intended = f"ses-{session.label}/perf/{stem}_asl.nii.gz"
        write_json(perf / f"{stem}_m0scan.json", signal.m0_sidecar(spec, intended))
    return sd


def write_t1w(
    root: Path,
    spec: CohortSpec,
    anatomy: TemplateAnatomy,
    participant: ParticipantPlan,
) -> Path:
    """Write the participant's T1w-like image in the first session, at that session's pose."""
    session = participant.sessions[0]
    shape, affine = grid_for(spec.t1w_voxel_mm)
    channels = signal.t1w_channels(anatomy.gm, anatomy.wm, anatomy.csf)
    image = resample_channels(
        channels, anatomy.affine, head_matrix(session.pose, participant.scale), shape, affine
    )[0]
    rng = stream_rng(spec, *session.key, STREAM_PURPOSE["noise"], 2)
    if not math.isinf(spec.snr):
        image = image + rng.normal(0.0, T1W_NOISE_SD, shape)
    anat = _session_dir(root, participant, session) / "anat"
    path = write_nifti(
        anat / f"{_stem(participant, session)}_T1w.nii.gz",
        np.round(image + T1W_OFFSET),
        affine,
        dtype=np.int16,
    )
    sidecar = {"MagneticFieldStrength": spec.field_strength, "MRAcquisitionType": "3D"}
    write_json(anat / f"{_stem(participant, session)}_T1w.json", sidecar)
    return path


PARTICIPANTS_JSON = {
    "participant_id": {"Description": "Participant label"},
    "group": {
        "Description": "Diagnostic group",
        "Levels": {
            "HC": "healthy control",
            "MwA": "migraine with aura",
            "MwoA": "migraine without aura",
        },
    },
    "age": {"Description": "Age", "Units": "year"},
    "sex": {"Description": "Sex", "Levels": {"F": "female", "M": "male"}},
    "aura_side_typical": {
        "Description": "Side of the visual field where the aura usually starts (MwA)",
        "Levels": {"left": "left", "right": "right"},
    },
}
SESSIONS_JSON = {
    "session_id": {"Description": "Session label"},
    "migraine_phase": {
        "Description": "Migraine phase at the time of the scan",
        "Levels": {
            "interictal": "between attacks",
            "preictal": "before an attack",
            "ictal": "during an attack",
            "postictal": "after an attack",
        },
    },
    "hours_since_attack_onset": {"Description": "Time since the attack began", "Units": "h"},
    "hours_to_next_attack_onset": {
        "Description": "Time from the scan to the onset of the next attack",
        "Units": "h",
    },
}
SITE_JSON = {"site": {"Description": "Acquisition site"}}


def write_tables(root: Path, plans: list[ParticipantPlan]) -> None:
    """Write ``participants.tsv``/``.json`` and each ``sub-X_sessions.tsv``/``.json``."""
    sites = any(p.site for p in plans)
    columns = {**PARTICIPANTS_JSON, **(SITE_JSON if sites else {})}
    write_tsv(
        root / "participants.tsv",
        list(columns),
        [
            [p.participant_id, p.group, p.age, p.sex, p.aura_side]
            + ([p.site.name] if sites else [])
            for p in plans
        ],
    )
    write_json(root / "participants.json", columns)
    write_json(root / "sessions.json", SESSIONS_JSON)
    for p in plans:
        rows = [
            [f"ses-{s.label}", s.phase, s.hours_since_onset, s.hours_to_next_onset]
            for s in p.sessions
        ]
        write_tsv(
            root / p.participant_id / f"{p.participant_id}_sessions.tsv", list(SESSIONS_JSON), rows
        )


def write_description(root: Path, spec: CohortSpec) -> None:
    """Write ``dataset_description.json``, ``README`` and the template ``NOTICE``."""
    write_json(
        root / "dataset_description.json",
        {
            "Name": COHORT_NAME,
            "BIDSVersion": "1.10.0",
            "DatasetType": "raw",
            "License": "CC0 (simulated data; anatomy from the ICBM 2009a template, see NOTICE)",
            "Authors": ["aslmig simulate"],
            "GeneratedBy": [{"Name": "aslmig simulate", "Version": __version__}],
        },
    )
    groups = ", ".join(f"{n} {g}" for g, n in spec.n_per_group.items())
    (root / "README").write_text(
        "Simulated ASL-BIDS migraine cohort written by `aslmig simulate` "
        f"(aslmig {__version__}, seed {spec.seed}): {groups}; phases {', '.join(spec.phases)}.\n"
        "The ground truth is in derivatives/ground-truth/ (simulation.json lists every "
        "parameter).\n"
    )
    (root / "NOTICE").write_bytes((bundle_root() / "NOTICE").read_bytes())


# --------------------------------------------------------------------------- truth


def _truth_sidecar(description: str, units: str, space: str | None) -> dict:
    out = {"Description": description, "Units": units, "GeneratedBy": "aslmig simulate"}
    if space:
        out["Space"] = space
    return out


def write_session_truth(
    truth: Path,
    spec: CohortSpec,
    anatomy: TemplateAnatomy,
    participant: ParticipantPlan,
    session: SessionPlan,
    images: SessionImages,
) -> None:
    """Write the template- and native-space truth maps and the motion of one session."""
    perf = _session_dir(truth, participant, session) / "perf"
    stem = _stem(participant, session)
    space = f"space-{anatomy.space}"
    maps = {
        f"{space}_label-GM_cbf": (images.cbf_gm, "Grey-matter CBF"),
        f"{space}_label-WM_cbf": (images.cbf_wm, "White-matter CBF"),
    }
    template = signal.Compartments.from_channels(
        signal.template_channels(anatomy.gm, anatomy.wm, anatomy.csf, images.cbf_gm, images.cbf_wm)
    )
    maps[f"{space}_cbf"] = (template.mixed_cbf(), "M0-weighted CBF of all tissue")
    for name, (data, text) in maps.items():
        write_nifti(perf / f"{stem}_{name}.nii.gz", data, anatomy.affine)
        write_json(
            perf / f"{stem}_{name}.json", _truth_sidecar(text, "mL/100 g/min", anatomy.space)
        )
    write_nifti(perf / f"{stem}_cbf.nii.gz", images.reference.mixed_cbf(), images.affine)
    write_json(
        perf / f"{stem}_cbf.json",
        _truth_sidecar(
            "M0-weighted CBF on the ASL grid at the session's head pose (no motion)",
            "mL/100 g/min",
            None,
        ),
    )
    if spec.is_multi_delay:
        for tissue, value in (("GM", spec.att_gm), ("WM", spec.att_wm)):
            name = f"{space}_label-{tissue}_att"
            write_nifti(
                perf / f"{stem}_{name}.nii.gz",
                np.where(anatomy.tissue(tissue) > 0, value, 0.0),
                anatomy.affine,
            )
            write_json(
                perf / f"{stem}_{name}.json",
                _truth_sidecar(f"{tissue} arterial transit time", "s", anatomy.space),
            )
    write_tsv(
        perf / f"{stem}_desc-motion_timeseries.tsv",
        ["trans_x", "trans_y", "trans_z", "rot_x", "rot_y", "rot_z"],
        images.motion.tolist(),
    )


def _effects_frame(spec: CohortSpec) -> pd.DataFrame:
    rows = [
        {
            "group": e.group,
            "phase": e.phase,
            "roi": e.roi,
            "change": e.change if not e.profile else None,
            "profile": str(e).split("=", 1)[1] if e.profile else None,
            "tissue": effect_tissue(e.roi),
        }
        for e in spec.effects
    ]
    return pd.DataFrame(rows, columns=["group", "phase", "roi", "change", "profile", "tissue"])


def _participants_frame(plans: list[ParticipantPlan]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "participant_id": p.participant_id,
                "group": p.group,
                "age": p.age,
                "sex": p.sex,
                "aura_side_typical": p.aura_side,
                "site": p.site.name if p.site else None,
                "head_scale": p.scale,
                "global_factor": p.global_factor,
            }
            for p in plans
        ]
    )


def write_truth_tables(
    truth: Path,
    spec: CohortSpec,
    plans: list[ParticipantPlan],
    sessions: pd.DataFrame,
    parameters: dict,
) -> None:
    """Write the truth's description, parameters, effects and factor tables."""
    write_json(
        truth / "dataset_description.json",
        {
            "Name": "aslmig simulate: ground truth",
            "BIDSVersion": "1.10.0",
            "DatasetType": "derivative",
            "GeneratedBy": [{"Name": "aslmig simulate", "Version": __version__}],
            "SourceDatasets": [{"URL": "../../"}],
        },
    )
    write_json(truth / "simulation.json", parameters)
    effects = _effects_frame(spec)
    write_tsv(truth / "effects.tsv", list(effects.columns), effects.values.tolist())
    frame = _participants_frame(plans)
    write_tsv(truth / "participants.tsv", list(frame.columns), frame.values.tolist())
    write_tsv(truth / "sessions.tsv", list(sessions.columns), sessions.values.tolist())
    rows = [[p.participant_id, name, f] for p in plans for name, f in p.region_factors.items()]
    write_tsv(truth / "region_factors.tsv", ["participant_id", "roi", "factor"], rows)


def _session_row(participant: ParticipantPlan, session: SessionPlan, sd: float) -> dict:
    row = {
        "participant_id": participant.participant_id,
        "session_id": f"ses-{session.label}",
        "group": participant.group,
        "migraine_phase": session.phase,
        "hours_since_attack_onset": session.hours_since_onset,
        "hours_to_next_attack_onset": session.hours_to_next_onset,
        "session_factor": session.factor,
        "noise_sd": sd,
    }
    names = (
        "pose_trans_x",
        "pose_trans_y",
        "pose_trans_z",
        "pose_rot_x",
        "pose_rot_y",
        "pose_rot_z",
    )
    row.update({name: float(v) for name, v in zip(names, session.pose, strict=True)})
    return row


# --------------------------------------------------------------------------- entry point


def prepare_regions(spec: CohortSpec, anatomy: TemplateAnatomy) -> AtlasRegions | None:
    """Load the atlas when effects or regional factors need it, and check effect regions.

    Parameters
    ----------
    spec : CohortSpec
        The cohort specification.
    anatomy : TemplateAnatomy
        Template grid.

    Returns
    -------
    AtlasRegions or None
        The mask provider, or None when no region is needed.
    """
    if not spec.effects and spec.region_sd == 0:
        return None
    regions = AtlasRegions(load_sim_atlas(spec.atlas), anatomy)
    for effect in spec.effects:
        regions.check(effect.roi)
    return regions


def simulate_cohort(
    out_dir: Path,
    spec: CohortSpec,
    *,
    anatomy: TemplateAnatomy | None = None,
    progress: Callable[[str], None] | None = None,
    truth_anatomy: bool = False,
) -> SimulationResult:
    """Write a simulated ASL-BIDS cohort and its ground truth.

    Parameters
    ----------
    out_dir : Path
        New or empty folder for the raw dataset (the truth goes to
        ``out_dir/derivatives/ground-truth``).
    spec : CohortSpec
        The cohort specification.
    anatomy : TemplateAnatomy, optional
        Template tissue maps (default: the bundled 2 mm MNI152NLin2009aSym template).
    progress : callable, optional
        Called with one line per participant written.
    truth_anatomy : bool, optional
        Also write each participant's known brain mask, tissue maps and T1w <-> template
        transforms into the truth under fMRIPrep's names
        (:mod:`aslmig.sim.truth_anatomy`), for ``--derivatives anat=<truth>``.

    Returns
    -------
    SimulationResult
        Paths, tables and parameters.

    Raises
    ------
    InputError
        Bad specification, unknown region, or a non-empty ``out_dir``; nothing is written.
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    check_spec(spec)
    problem = output_problem(out_dir)
    if problem:
        raise InputError(out_dir, problem, "choose a new or empty folder")
    anatomy = anatomy or load_template_anatomy()
    regions = prepare_regions(spec, anatomy)
    region_names = [name for name in regions.rois] if regions and spec.region_sd > 0 else []
    plans = plan_cohort(spec, region_names)
    truth = out_dir / "derivatives" / TRUTH_PIPELINE
    out_dir.mkdir(parents=True, exist_ok=True)
    write_description(out_dir, spec)
    write_tables(out_dir, plans)
    rows = []
    for participant in plans:
        t1w = write_t1w(out_dir, spec, anatomy, participant)
        if truth_anatomy:
            write_participant_anatomy(
                truth / f"sub-{participant.label}" / "anat",
                f"sub-{participant.label}",
                t1w,
                anatomy,
                participant.sessions[0].pose,
                participant.scale,
                spec.t1w_voxel_mm,
            )
        for session in participant.sessions:
            images = render_session(spec, anatomy, participant, session, regions)
            sd = write_session(out_dir, spec, participant, session, images)
            write_session_truth(truth, spec, anatomy, participant, session, images)
            rows.append(_session_row(participant, session, sd))
        if progress:
            progress(
                f"{participant.participant_id} ({participant.group}): "
                f"{len(participant.sessions)} session(s)"
            )
    sessions = pd.DataFrame(rows)
    parameters = simulation_parameters(spec, anatomy, regions)
    write_truth_tables(truth, spec, plans, sessions, parameters)
    return SimulationResult(
        out_dir,
        truth,
        _participants_frame(plans),
        sessions,
        _effects_frame(spec),
        parameters,
        time.perf_counter() - start,
    )


def simulation_parameters(
    spec: CohortSpec, anatomy: TemplateAnatomy, regions: AtlasRegions | None
) -> dict:
    """Return the exact parameters of a simulation, for ``simulation.json``."""
    constants = signal.tissue_constants(spec)
    return {
        "aslmig_version": __version__,
        "spec": spec.to_dict(),
        "template_space": anatomy.space,
        "atlas_regions": regions.names if regions else [],
        "tissue_m0": signal.TISSUE_M0,
        "control_fraction_of_m0": signal.CONTROL_FRACTION[spec.background_suppression_pulses > 0],
        "forward_model": (
            "Buxton general kinetic model (aslmig.cbf.kinetic.kinetic_signal, model='full')"
            if spec.is_multi_delay
            else "white-paper single-delay model (aslmig.cbf.single_delay.single_delay_signal)"
        ),
        "constants": {t: c.to_dict() for t, c in constants.items()},
        "noise": "Gaussian, SD = mean brain M0 / snr, independent in every voxel and volume",
        "subsamples_per_axis": 3,
    }
