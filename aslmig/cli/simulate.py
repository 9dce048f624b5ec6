"""``aslmig simulate OUT_DIR``: write a simulated ASL-BIDS migraine cohort with known truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from aslmig.cli.parser import CommandParser, number, whole_number
from aslmig.sim.cohort import simulate_cohort
from aslmig.sim.spec import (
    GROUPS,
    LABELING_TYPES,
    M0_TYPES,
    PHASES,
    READOUTS,
    CohortSpec,
    parse_counts,
    parse_effect,
    parse_site,
)

EXIT_OK = 0
_DEFAULTS = CohortSpec()




def _add_cohort(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("cohort")
    group.add_argument(
        "--n",
        nargs="+",
        default=["HC=2", "MwA=2", "MwoA=2"],
        metavar="GROUP=N",
        help=f"participants per group ({', '.join(GROUPS)}); default HC=2 MwA=2 MwoA=2",
    )
    group.add_argument(
        "--phases",
        nargs="+",
        default=list(_DEFAULTS.phases),
        metavar="PHASE",
        help=f"sessions of each patient, one per phase ({', '.join(PHASES)}); "
        "healthy controls have one interictal session (default: interictal "
        "ictal)",
    )
    group.add_argument(
        "--effect",
        action="append",
        default=[],
        metavar="GROUP:PHASE:ROI=CHANGE",
        help="fractional grey-matter CBF change in a region, e.g. "
        "MwA:ictal:occipital_cortex_L=-0.15 ('*' for any group or phase), or along the "
        "attack, e.g. MwA:occipital_cortex_L=biphasic(-0.20@0-2h,+0.15@6-24h) (repeatable)",
    )
    group.add_argument(
        "--site",
        action="append",
        default=[],
        metavar="NAME=SCALE[+OFFSET]",
        help="an acquisition site that measures SCALE x (CBF + OFFSET), e.g. B=0.8 "
        "(repeatable; participants are assigned to the sites in turn)",
    )
    group.add_argument(
        "--subject-sd",
        type=number,
        default=_DEFAULTS.subject_sd,
        help="SD of the per-participant global CBF factor (default %(default)s)",
    )
    group.add_argument(
        "--region-sd",
        type=number,
        default=_DEFAULTS.region_sd,
        help="SD of the per-participant factor of each region (default %(default)s)",
    )
    group.add_argument(
        "--session-sd",
        type=number,
        default=_DEFAULTS.session_sd,
        help="SD of the per-session global CBF factor (default %(default)s)",
    )
    group.add_argument(
        "--gm-cbf",
        type=number,
        default=_DEFAULTS.gm_cbf,
        help="grey-matter CBF, mL/100 g/min (default %(default)s)",
    )
    group.add_argument(
        "--wm-cbf",
        type=number,
        default=_DEFAULTS.wm_cbf,
        help="white-matter CBF, mL/100 g/min (default %(default)s)",
    )
    group.add_argument(
        "--att-gm",
        type=number,
        default=_DEFAULTS.att_gm,
        help="grey-matter arterial transit time, s (default %(default)s)",
    )
    group.add_argument(
        "--att-wm",
        type=number,
        default=_DEFAULTS.att_wm,
        help="white-matter arterial transit time, s (default %(default)s)",
    )


def _add_acquisition(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("acquisition")
    group.add_argument(
        "--labeling",
        choices=LABELING_TYPES,
        default=_DEFAULTS.labeling_type,
        help="labeling type (default %(default)s)",
    )
    group.add_argument(
        "--plds",
        nargs="+",
        type=number,
        default=list(_DEFAULTS.plds),
        metavar="S",
        help="post-labeling delay(s), or inversion time(s) TI for "
        "PASL, s; several values give multi-delay data (default 1.8)",
    )
    group.add_argument(
        "--labeling-duration",
        type=number,
        default=_DEFAULTS.labeling_duration,
        help="PCASL labeling duration, s (default %(default)s)",
    )
    group.add_argument(
        "--bolus-cutoff",
        type=number,
        default=_DEFAULTS.bolus_cutoff,
        help="PASL bolus duration TI1 (QUIPSS II), s (default %(default)s)",
    )
    group.add_argument(
        "--pairs",
        type=whole_number,
        default=_DEFAULTS.pairs,
        help="control/label pairs per delay (default %(default)s)",
    )
    group.add_argument(
        "--readout",
        choices=READOUTS,
        default=_DEFAULTS.readout,
        help="2D (multi-slice, with SliceTiming) or 3D (default %(default)s)",
    )
    group.add_argument(
        "--slice-duration",
        type=number,
        default=_DEFAULTS.slice_duration,
        help="time between 2D slices, s (default %(default)s)",
    )
    group.add_argument(
        "--m0",
        choices=M0_TYPES,
        default=_DEFAULTS.m0_type,
        help="M0 as a separate scan or volumes of the series (default %(default)s)",
    )
    group.add_argument(
        "--background-suppression",
        type=whole_number,
        metavar="PULSES",
        default=_DEFAULTS.background_suppression_pulses,
        help="number of background-suppression pulses (default 0: none)",
    )
    group.add_argument(
        "--field-strength",
        type=number,
        default=_DEFAULTS.field_strength,
        help="1.5 or 3 T (default %(default)s)",
    )
    group.add_argument(
        "--voxel",
        type=number,
        default=_DEFAULTS.voxel_mm,
        help="isotropic ASL voxel size, mm (default %(default)s)",
    )
    group.add_argument(
        "--t1w-voxel",
        type=number,
        default=_DEFAULTS.t1w_voxel_mm,
        help="isotropic T1w voxel size, mm (default %(default)s)",
    )


def _add_image(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("image quality and head position")
    group.add_argument(
        "--snr",
        type=number,
        default=_DEFAULTS.snr,
        help="mean brain M0 / noise SD of every volume; 'inf' for no noise (default %(default)s)",
    )
    group.add_argument(
        "--motion-translation",
        type=number,
        metavar="MM",
        default=_DEFAULTS.motion_translation_mm,
        help="largest head displacement within a series, mm (default 0)",
    )
    group.add_argument(
        "--motion-rotation",
        type=number,
        metavar="DEG",
        default=_DEFAULTS.motion_rotation_deg,
        help="largest head rotation within a series, degrees (default 0)",
    )
    group.add_argument(
        "--pose-translation",
        type=number,
        metavar="MM",
        default=_DEFAULTS.pose_translation_mm,
        help="largest per-axis head position of a session, mm (default %(default)s)",
    )
    group.add_argument(
        "--pose-rotation",
        type=number,
        metavar="DEG",
        default=_DEFAULTS.pose_rotation_deg,
        help="largest per-axis head rotation of a session, degrees (default %(default)s)",
    )
    group.add_argument(
        "--scale-sd",
        type=number,
        default=_DEFAULTS.scale_sd,
        help="SD of the per-participant head scaling (default %(default)s)",
    )
    group.add_argument(
        "--atlas",
        default="MigraineASL",
        help="atlas whose regions effects name (default %(default)s)",
    )
    group.add_argument(
        "--seed",
        type=whole_number,
        default=_DEFAULTS.seed,
        help="random seed; the same seed writes identical files (default %(default)s)",
    )


def build_simulate_parser() -> argparse.ArgumentParser:
    """Return the parser of ``aslmig simulate``."""
    parser = CommandParser(
        prog="aslmig simulate",
        description="Write a simulated ASL-BIDS migraine cohort (participants.tsv, sessions, "
        "T1w, ASL series, M0, complete sidecars) from a ground-truth perfusion model in "
        "template space; the truth goes to OUT_DIR/derivatives/ground-truth.",
    )
    parser.add_argument("out_dir", type=Path, help="new or empty folder for the dataset")
    _add_cohort(parser)
    _add_acquisition(parser)
    _add_image(parser)
    return parser


def spec_from_args(args: argparse.Namespace) -> CohortSpec:
    """Turn parsed arguments into a :class:`CohortSpec` (checked by ``simulate_cohort``)."""
    return CohortSpec(
        n_per_group=parse_counts(args.n),
        phases=tuple(args.phases),
        effects=tuple(parse_effect(text) for text in args.effect),
        sites=tuple(parse_site(text) for text in args.site),
        subject_sd=args.subject_sd,
        region_sd=args.region_sd,
        session_sd=args.session_sd,
        gm_cbf=args.gm_cbf,
        wm_cbf=args.wm_cbf,
        att_gm=args.att_gm,
        att_wm=args.att_wm,
        labeling_type=args.labeling,
        plds=tuple(args.plds),
        labeling_duration=args.labeling_duration,
        bolus_cutoff=args.bolus_cutoff,
        pairs=args.pairs,
        readout=args.readout,
        slice_duration=args.slice_duration,
        m0_type=args.m0,
        background_suppression_pulses=args.background_suppression,
        field_strength=args.field_strength,
        snr=args.snr,
        motion_translation_mm=args.motion_translation,
        motion_rotation_deg=args.motion_rotation,
        pose_translation_mm=args.pose_translation,
        pose_rotation_deg=args.pose_rotation,
        scale_sd=args.scale_sd,
        voxel_mm=args.voxel,
        t1w_voxel_mm=args.t1w_voxel,
        atlas=args.atlas,
        seed=args.seed,
    )


def simulate_command(argv: list[str]) -> int:
    """Run ``aslmig simulate``.

    Parameters
    ----------
    argv : list of str
        Arguments after ``simulate``.

    Returns
    -------
    int
        Exit status (usage and input errors propagate to :func:`aslmig.cli.run.main`).
    """
    args = build_simulate_parser().parse_args(argv)
    result = simulate_cohort(args.out_dir, spec_from_args(args), progress=print)
    n_sessions = len(result.sessions)
    print(
        f"Simulated {len(result.participants)} participant(s), {n_sessions} session(s) in "
        f"{result.seconds:.1f} s: {result.bids_dir}\nGround truth: {result.truth_dir}"
    )
    return EXIT_OK
