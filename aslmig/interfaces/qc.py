"""Quality control of one run: CBF metrics, motion and registration overlap (Dice)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    traits,
)

from aslmig.cbf.qc import compute_qc_metrics
from aslmig.interfaces._io import load_array


def dice(first: np.ndarray, second: np.ndarray) -> float:
    """Dice overlap of two boolean masks on the same grid."""
    first, second = np.asarray(first, bool), np.asarray(second, bool)
    total = first.sum() + second.sum()
    return float(2.0 * np.logical_and(first, second).sum() / total) if total else float("nan")


def run_qc(
    cbf_file: str,
    tissue_files: dict[str, str],
    mask_file: str,
    confounds_file: str,
    registered_mask_file: str,
    target_mask_file: str,
) -> dict[str, Any]:
    """Compute the QC metrics of one run.

    Parameters
    ----------
    cbf_file : str
        Native-space mean CBF.
    tissue_files : dict
        ``gm``, ``wm``, ``csf`` probability maps in ASL space.
    mask_file : str
        ASL brain mask (native).
    confounds_file : str
        Motion confounds TSV with ``framewise_displacement``.
    registered_mask_file, target_mask_file : str
        The ASL brain mask resampled into the registration target's space, and the target's
        own brain mask (T1w, or the template when there is no T1w).

    Returns
    -------
    dict
        Metric name -> value.
    """
    mask = load_array(mask_file) > 0
    cbf = np.where(mask, load_array(cbf_file), np.nan)
    tissues = {name: load_array(path) * mask for name, path in tissue_files.items()}
    fd = pd.read_csv(confounds_file, sep="\t")["framewise_displacement"].to_numpy(float)
    metrics = compute_qc_metrics(
        np.nan_to_num(cbf),
        tissues["gm"],
        tissues["wm"],
        tissues.get("csf"),
        framewise_displacement=fd,
    )
    metrics["registration_dice"] = dice(
        load_array(registered_mask_file) > 0.5, load_array(target_mask_file) > 0.5
    )
    metrics["brain_mask_voxels"] = int(mask.sum())
    return {key: _plain(value) for key, value in metrics.items()}


# Warning thresholds of the participant report (policy, not physics).
MIN_REGISTRATION_DICE = 0.8
MAX_NEGATIVE_GM_PERCENT = 10.0
GM_CBF_RANGE = (20.0, 120.0)


def qc_warnings(metrics: dict[str, Any]) -> list[str]:
    """Plain-language warnings for QC values outside their usual range.

    Parameters
    ----------
    metrics : dict
        Output of :func:`run_qc`.

    Returns
    -------
    list of str
        One sentence per problem (empty when nothing stands out).
    """
    warnings = []
    dice_value = metrics.get("registration_dice")
    if dice_value is not None and dice_value < MIN_REGISTRATION_DICE:
        warnings.append(
            f"Brain-mask overlap after registration is low (Dice {dice_value:.2f} < "
            f"{MIN_REGISTRATION_DICE}): check the registration figure."
        )
    moving = metrics.get("n_fd_above_threshold") or 0
    if moving:
        warnings.append(
            f"{moving} volume(s) moved more than {metrics.get('fd_threshold_mm')} mm "
            "(framewise displacement)."
        )
    negative = metrics.get("negative_gm_cbf_percent")
    if negative is not None and negative > MAX_NEGATIVE_GM_PERCENT:
        warnings.append(f"{negative:.1f} % of grey-matter voxels have negative CBF.")
    grey = metrics.get("mean_gm_cbf")
    if grey is not None and not GM_CBF_RANGE[0] <= grey <= GM_CBF_RANGE[1]:
        warnings.append(
            f"Mean grey-matter CBF {grey:.1f} mL/100 g/min is outside "
            f"{GM_CBF_RANGE[0]:g}-{GM_CBF_RANGE[1]:g}: check M0 scaling and labeling."
        )
    return warnings


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value


class _QCInputSpec(BaseInterfaceInputSpec):
    cbf = File(exists=True, mandatory=True)
    gm = File(exists=True, mandatory=True)
    wm = File(exists=True, mandatory=True)
    csf = File(exists=True, mandatory=True)
    mask = File(exists=True, mandatory=True)
    confounds = File(exists=True, mandatory=True)
    registered_mask = File(exists=True, mandatory=True)
    target_mask = File(exists=True, mandatory=True)


class _QCOutputSpec(TraitedSpec):
    out_file = File(desc="QC metrics (JSON)")


class ComputeQC(SimpleInterface):
    """Compute CBF, motion and registration QC metrics of one run."""

    input_spec = _QCInputSpec
    output_spec = _QCOutputSpec

    def _run_interface(self, runtime):
        inputs = self.inputs
        metrics = run_qc(
            inputs.cbf,
            {"gm": inputs.gm, "wm": inputs.wm, "csf": inputs.csf},
            inputs.mask,
            inputs.confounds,
            inputs.registered_mask,
            inputs.target_mask,
        )
        out_file = Path(runtime.cwd) / "qc.json"
        out_file.write_text(json.dumps(metrics, indent=2, sort_keys=True))
        self._results["out_file"] = str(out_file)
        return runtime


class _TissueDictInputSpec(BaseInterfaceInputSpec):
    gm = File(exists=True, mandatory=True)
    wm = File(exists=True, mandatory=True)
    csf = File(exists=True, mandatory=True)


class _TissueDictOutputSpec(TraitedSpec):
    tissue_files = traits.Dict(desc="{'gm': ..., 'wm': ..., 'csf': ...}")


class TissueDict(SimpleInterface):
    """Bundle three tissue maps into the dictionary the quantification node expects."""

    input_spec = _TissueDictInputSpec
    output_spec = _TissueDictOutputSpec

    def _run_interface(self, runtime):
        self._results["tissue_files"] = {
            "gm": self.inputs.gm,
            "wm": self.inputs.wm,
            "csf": self.inputs.csf,
        }
        return runtime
