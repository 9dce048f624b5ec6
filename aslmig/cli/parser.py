"""Command-line parser following the BIDS-Apps contract.

``aslmig BIDS_DIR OUTPUT_DIR {participant,group} [options]``, plus helper commands
(``aslmig demo``) that do not take the BIDS-App positionals.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from aslmig.__about__ import __version__
from aslmig.config import PLUGINS

ANALYSIS_LEVELS = ("participant", "group")


class UsageError(Exception):
    """A command-line usage mistake (exit status 2)."""


class _Parser(argparse.ArgumentParser):
    """An argparse parser that raises instead of exiting, so the caller owns exit codes."""

    def error(self, message: str) -> None:  # noqa: D102 - argparse hook
        raise UsageError(f"{self.prog}: {message} (see {self.prog} --help)")


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} is not a positive integer")
    return value


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is not an integer >= 0")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number")
    return value


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a JSON object") from None
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"{text!r} is not a JSON object")
    return value


def build_parser() -> argparse.ArgumentParser:
    """Build the BIDS-App argument parser.

    Returns
    -------
    argparse.ArgumentParser
        The parser; its help text is the CLI reference in ``docs/``.
    """
    parser = _Parser(
        prog="aslmig",
        description=(
            "ASL perfusion MRI for migraine research: calibrated CBF (and ATT) per "
            "participant, regional tables, and group statistics, from an ASL-BIDS dataset."
        ),
        epilog=(
            "Helper commands: 'aslmig demo [DIR]' sets up and runs a built-in example; "
            "'aslmig templates {fetch,list}' prefetches or lists the template files; "
            "'aslmig simulate OUT_DIR' writes a simulated cohort with known truth; "
            "'aslmig power' estimates statistical power by simulation; "
            "'aslmig slurm BIDS_DIR OUTPUT_DIR' writes SLURM array and group job scripts."
        ),
    )
    parser.add_argument("bids_dir", type=Path, help="the input ASL-BIDS dataset (read-only)")
    parser.add_argument("output_dir", type=Path, help="where the derivatives dataset is written")
    parser.add_argument("analysis_level", choices=ANALYSIS_LEVELS, help="processing stage")
    parser.add_argument("--version", action="version", version=f"aslmig {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="count",
        default=0,
        help="more log output (repeat for more)",
    )

    selection = parser.add_argument_group("what to process")
    selection.add_argument(
        "--participant-label",
        "--participant_label",
        nargs="+",
        metavar="LABEL",
        help="participants to process ('01' or 'sub-01')",
    )
    selection.add_argument(
        "--session-label", nargs="+", metavar="LABEL", help="sessions to process ('1' or 'ses-1')"
    )
    selection.add_argument(
        "--bids-filter-file",
        type=Path,
        metavar="FILE",
        help="JSON entity filters per query (asl, m0scan, t1w); "
        'null = entity absent, "*" = any value',
    )
    selection.add_argument(
        "--bids-database-dir",
        type=Path,
        metavar="DIR",
        help="directory for pybids' index, reused on later runs",
    )
    selection.add_argument(
        "--skip-bids-validation",
        action="store_true",
        default=None,
        help="do not check file names against the BIDS specification",
    )
    selection.add_argument(
        "--dry-run",
        action="store_true",
        help="print the files and decisions per run, compute nothing",
    )

    execution = parser.add_argument_group("execution")
    execution.add_argument(
        "-w",
        "--work-dir",
        type=Path,
        metavar="DIR",
        help="nipype working directory (reused by reruns)",
    )
    execution.add_argument(
        "--nprocs",
        "--n-cpus",
        type=_positive_int,
        metavar="N",
        help="processes nipype may run at once",
    )
    execution.add_argument(
        "--omp-nthreads",
        type=_positive_int,
        metavar="N",
        help="threads per process (ITK/ANTs, BLAS)",
    )
    execution.add_argument(
        "--mem-gb", type=_positive_float, metavar="GB", help="memory nipype may plan for"
    )
    execution.add_argument(
        "--plugin",
        choices=PLUGINS,
        help="nipype execution plugin (SLURM/SGE split the graph into jobs)",
    )
    execution.add_argument(
        "--plugin-args",
        type=_json_object,
        metavar="JSON",
        help='plugin arguments as a JSON object, e.g. \'{"sbatch_args": "--time=1:00:00"}\'',
    )
    execution.add_argument(
        "--stop-on-first-crash",
        action="store_true",
        default=None,
        help="stop everything at the first failing node",
    )
    execution.add_argument(
        "--config-file",
        type=Path,
        metavar="FILE",
        help="TOML file with [execution], [physics], [regions] and [group] tables "
        "(command-line options win)",
    )

    regions = parser.add_argument_group("regions of interest")
    regions.add_argument(
        "--atlas",
        dest="atlases",
        action="append",
        metavar="NAME|DIR",
        help="ROI set for the regional tables: 'MigraineASL' (default) or a folder with "
        "'<name>_dseg.nii.gz' + '<name>_dseg.tsv' (index, name) in the template's space; "
        "repeat for several",
    )
    regions.add_argument(
        "--roi-spheres",
        type=Path,
        metavar="FILE",
        help="TSV of spheres (name, x, y, z, radius_mm, space) in template millimetres",
    )
    regions.add_argument(
        "--min-coverage",
        type=_positive_float,
        metavar="FRACTION",
        help="smallest fraction of an ROI's voxels with data for it to be reported (0.5)",
    )

    group = parser.add_argument_group("group level")
    group.add_argument(
        "--model",
        type=Path,
        metavar="FILE",
        help="group model file (TOML: [labels], [inputs], [[model]]; see docs/group.md); "
        "default: the built-in models",
    )
    group.add_argument(
        "--group-label",
        metavar="NAME",
        help="write the group outputs to OUTPUT_DIR/group/NAME/ (default 'default')",
    )
    group.add_argument(
        "--group-atlas",
        metavar="NAME",
        help="atlas of the participant ROI tables to model (default 'MigraineASL')",
    )
    group.add_argument(
        "--missing",
        choices=("report", "error"),
        help="labelled participants without outputs: list them (report, default) or stop",
    )
    group.add_argument(
        "--permutations",
        type=_positive_int,
        metavar="N",
        help="permutations of the voxelwise tests (default 1000; all of them when fewer exist)",
    )
    group.add_argument(
        "--tfce",
        action="store_true",
        default=None,
        help="add threshold-free cluster enhancement to the voxelwise tests (slow)",
    )
    group.add_argument(
        "--no-voxelwise",
        dest="voxelwise",
        action="store_false",
        default=None,
        help="skip the voxelwise maps (ROI statistics only)",
    )
    group.add_argument(
        "--seed",
        type=_non_negative_int,
        metavar="N",
        help="seed of the permutations, an integer >= 0 (default 1)",
    )
    group.add_argument(
        "--unlabelled",
        choices=("error", "exclude"),
        help="unknown or missing group/phase/covariate values: one error listing them "
        "(default) or leave those units out with the reason recorded",
    )

    physics = parser.add_argument_group("physics (defaults: ASL white paper, Alsop 2015)")
    physics.add_argument(
        "--labeling-efficiency",
        type=_positive_float,
        metavar="ALPHA",
        help="labeling efficiency (wins over the sidecar's LabelingEfficiency and "
        "the white-paper default)",
    )
    physics.add_argument(
        "--t1-blood",
        type=_positive_float,
        metavar="S",
        help="longitudinal relaxation time of arterial blood (s)",
    )
    physics.add_argument(
        "--t1-tissue",
        type=_positive_float,
        metavar="S",
        help="longitudinal relaxation time of tissue (s), for M0 TR correction "
        "and the full kinetic model",
    )
    physics.add_argument(
        "--partition-coefficient",
        type=_positive_float,
        metavar="LAMBDA",
        help="blood-brain partition coefficient (mL/g)",
    )
    physics.add_argument(
        "--m0-scale",
        type=_positive_float,
        metavar="F",
        help="multiply M0 by this vendor scaling factor",
    )
    return parser


EXECUTION_OPTIONS = (
    "work_dir",
    "nprocs",
    "omp_nthreads",
    "mem_gb",
    "plugin",
    "plugin_args",
    "stop_on_first_crash",
    "bids_database_dir",
    "skip_bids_validation",
)
REGIONS_OPTIONS = ("atlases", "roi_spheres", "min_coverage")
#: Group-level options: argparse destination -> GroupConfig field.
GROUP_OPTIONS = {
    "model": "model",
    "group_label": "label",
    "group_atlas": "atlas",
    "missing": "missing",
    "unlabelled": "unlabelled",
    "permutations": "permutations",
    "tfce": "tfce",
    "voxelwise": "voxelwise",
    "seed": "seed",
}
PHYSICS_OPTIONS = (
    "labeling_efficiency",
    "t1_blood",
    "t1_tissue",
    "partition_coefficient",
    "m0_scale",
)


def explicit_sections(args: argparse.Namespace) -> dict[str, dict]:
    """Collect the section options the user actually gave (None means not given)."""

    def given(names: tuple[str, ...]) -> dict:
        values = {name: getattr(args, name) for name in names}
        return {
            name: str(value) if isinstance(value, Path) else value
            for name, value in values.items()
            if value is not None
        }

    regions = given(REGIONS_OPTIONS)
    if "atlases" in regions:
        regions["atlases"] = tuple(regions["atlases"])
    return {
        "execution": given(EXECUTION_OPTIONS),
        "physics": given(PHYSICS_OPTIONS),
        "regions": regions,
        "group": {GROUP_OPTIONS[key]: value for key, value in given(tuple(GROUP_OPTIONS)).items()},
    }
