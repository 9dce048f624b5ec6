"""Quantify one ASL run: split volumes, calibrate M0, CBF (and ATT), from files to files.

:func:`quantify_run` chooses the engine functions from the run's validated metadata; the
:class:`QuantifyCBF` interface is its thin nipype wrapper.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nb
import numpy as np
from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from aslmig.cbf import (
    calibrate_m0,
    fit_multi_delay,
    quantify_single_delay,
    resolve_constants,
    split_asl_series,
)
from aslmig.cbf.multi_delay import tissue_t1_map
from aslmig.cbf.single_delay import deltam_to_cbf
from aslmig.interfaces._io import load_array, save_array


@dataclass(frozen=True)
class QuantifyOptions:
    """User choices for quantification (all written to the provenance)."""

    averaging: str = "mean"
    m0_scale: float = 1.0
    m0_smoothing_fwhm_mm: float = 0.0
    multi_delay_model: str = "full"
    min_m0_fraction: float = 0.25


def _load(path: str | None) -> np.ndarray | None:
    return None if not path else load_array(path)


def _m0_volumes(
    metadata: dict[str, Any], split_m0: np.ndarray | None, m0_file: str | None
) -> tuple[np.ndarray | None, tuple[float, ...] | None]:
    """Return the M0 volumes and their TRs from the series (Included) or the M0 file."""
    if metadata["m0_type"] == "Included":
        tr = tuple(
            tr
            for tr, kind in zip(
                metadata["repetition_time_preparation"], metadata["volume_types"], strict=True
            )
            if kind == "m0scan"
        )
        return split_m0, tr
    if metadata["m0_type"] == "Separate":
        m0 = _load(m0_file)
        m0 = m0[..., np.newaxis] if m0.ndim == 3 else m0
        return m0, tuple(metadata["m0_repetition_time_preparation"])
    return None, None


def _reliable_m0(
    mask: np.ndarray, m0: np.ndarray | float, min_fraction: float
) -> tuple[np.ndarray, dict[str, float | int]]:
    """Drop brain-mask voxels whose M0 is a small fraction of the brain's median M0.

    Dividing by a near-zero M0 (edge slices, signal dropout) gives meaningless CBF values
    of thousands of mL/100 g/min; such voxels are left out (set to 0) and counted.
    """
    if np.ndim(m0) == 0:
        return mask, {"fraction_of_median": min_fraction, "voxels_excluded": 0}
    median = float(np.median(m0[mask])) if mask.any() else 0.0
    if median <= 0:
        raise ValueError(
            f"the M0 image has no positive signal in the brain mask (median {median:g}); "
            "check the M0 scan and m0_scale"
        )
    threshold = min_fraction * median
    reliable = mask & (m0 > threshold)
    record = {
        "fraction_of_median": min_fraction,
        "threshold": threshold,
        "voxels_excluded": int(mask.sum() - reliable.sum()),
    }
    return reliable, record


def _tissue_t1(constants, tissues: dict[str, np.ndarray]) -> tuple[object, str]:
    """Tissue T1 for the full kinetic model: a GM/WM-weighted map when both are known."""
    if constants.t1_white_matter is not None and "gm" in tissues and "wm" in tissues:
        t1_map = tissue_t1_map(
            tissues["gm"], tissues["wm"], constants.t1_tissue, constants.t1_white_matter
        )
        return t1_map, (
            f"per voxel from GM/WM probabilities (GM {constants.t1_tissue} s, "
            f"WM {constants.t1_white_matter} s)"
        )
    return constants.t1_tissue, f"{constants.t1_tissue} s everywhere"


def quantify_run(
    asl_file: str,
    metadata: dict[str, Any],
    mask_file: str,
    out_dir: Path,
    m0_file: str | None = None,
    tissue_files: dict[str, str] | None = None,
    overrides: dict[str, float] | None = None,
    options: QuantifyOptions | None = None,
) -> dict[str, Any]:
    """Quantify CBF (and ATT for multi-delay series) in the native ASL space.

    Parameters
    ----------
    asl_file : str
        The (motion-corrected) ASL series.
    metadata : dict
        ``dataclasses.asdict`` of the run's :class:`~aslmig.bids.metadata.AslMetadata`, plus
        ``m0_repetition_time_preparation`` for a separate M0 scan.
    mask_file : str
        Brain mask in ASL space.
    out_dir : Path
        Where the maps are written.
    m0_file : str, optional
        Separate M0 image on the ASL grid (M0Type Separate).
    tissue_files : dict, optional
        ``{"gm": path, "wm": path, "csf": path}`` probability maps in ASL space (needed for
        SCORE averaging).
    overrides : dict, optional
        Physics constant overrides (see :func:`aslmig.cbf.resolve_constants`).
    options : QuantifyOptions, optional
        Averaging and M0 handling choices.

    Returns
    -------
    dict
        Paths of ``cbf`` (and ``att``, ``cbf_timeseries``, ``deltam``) and the ``provenance``.
    """
    options = options or QuantifyOptions()
    image = nb.load(asl_file)
    data = np.asanyarray(image.dataobj, dtype=float)
    if data.ndim == 3:
        data = data[..., np.newaxis]
    mask = _load(mask_file) > 0
    tissues = {name: _load(path) for name, path in (tissue_files or {}).items()}
    constants = resolve_constants(
        metadata["labeling_type"],
        metadata["magnetic_field_strength"],
        sidecar_labeling_efficiency=metadata["labeling_efficiency"],
        bs_pulses=(
            metadata["background_suppression_pulses"] if metadata["background_suppression"] else 0
        ),
        overrides=overrides,
    )
    split = split_asl_series(
        data,
        metadata["volume_types"],
        plds=metadata["post_labeling_delay"],
        labeling_durations=metadata["labeling_duration"],
    )
    outputs: dict[str, Any] = {}
    affine, header = image.affine, image.header
    out_dir.mkdir(parents=True, exist_ok=True)

    def save(name: str, array: np.ndarray) -> str:
        outputs[name] = save_array(array, affine, out_dir / f"{name}.nii.gz")
        return outputs[name]

    if split.deltam is None:
        cbf = split.cbf.mean(axis=-1) if split.cbf.ndim == 4 else split.cbf
        save("cbf", np.where(mask, cbf, 0.0))
        outputs["provenance"] = {"model": "scanner CBF maps passed through (mean)"}
        return outputs
    m0_volumes, m0_tr = _m0_volumes(metadata, split.m0scan, m0_file)
    m0, m0_info = calibrate_m0(
        metadata["m0_type"],
        m0_volumes=m0_volumes,
        m0_estimate=metadata["m0_estimate"],
        repetition_time=m0_tr,
        t1_tissue=constants.t1_tissue,
        partition_coefficient=constants.partition_coefficient,
        m0_scale=options.m0_scale,
        smoothing_fwhm_mm=options.m0_smoothing_fwhm_mm or None,
        voxel_size_mm=header.get_zooms()[:3],
        mask=mask,
    )
    mask, m0_floor = _reliable_m0(mask, m0, options.min_m0_fraction)
    m0_info["low_m0_floor"] = m0_floor
    save("deltam", split.deltam.mean(axis=-1))
    timing = {
        "labeling_duration": split.deltam_labeling_durations,
        "bolus_cutoff_delay_time": metadata["bolus_cutoff_delay_time"],
        "slice_timing": metadata["slice_timing"],
        "slice_axis": metadata["slice_axis"],
        "mask": mask,
    }
    if len(set(split.deltam_plds.tolist())) > 1:
        t1_tissue, t1_note = _tissue_t1(constants, tissues)
        fit = fit_multi_delay(
            split.deltam,
            m0,
            split.deltam_plds,
            constants,
            model=options.multi_delay_model,
            t1_tissue=t1_tissue,
            **timing,
        )
        fit.provenance["tissue_t1"] = t1_note
        save("cbf", fit.cbf)
        save("att", fit.att)
        save("r2", fit.r2)
        provenance = fit.provenance
    else:
        series = deltam_to_cbf(split.deltam, m0, split.deltam_plds, constants, **timing)
        cbf, provenance = quantify_single_delay(
            split.deltam,
            m0,
            split.deltam_plds,
            constants,
            averaging=options.averaging,
            gm=tissues.get("gm"),
            wm=tissues.get("wm"),
            csf=tissues.get("csf"),
            series=series,
            **timing,
        )
        save("cbf", cbf)
        save("cbf_timeseries", series)
    provenance["m0"] = m0_info
    provenance["options"] = {
        "averaging": options.averaging,
        "m0_scale": options.m0_scale,
        "m0_smoothing_fwhm_mm": options.m0_smoothing_fwhm_mm,
        "multi_delay_model": options.multi_delay_model,
        "min_m0_fraction": options.min_m0_fraction,
    }
    outputs["provenance"] = provenance
    return outputs


class _QuantifyInputSpec(BaseInterfaceInputSpec):
    asl_file = File(exists=True, mandatory=True, desc="motion-corrected ASL series")
    metadata = traits.Dict(mandatory=True, desc="validated run metadata (as a dict)")
    mask_file = File(exists=True, mandatory=True, desc="brain mask, ASL space")
    m0_file = File(exists=True, desc="separate M0 on the ASL grid")
    tissue_files = traits.Dict(desc="gm/wm/csf probability maps in ASL space")
    overrides = traits.Dict(desc="physics constant overrides")
    averaging = traits.Enum("mean", "median", "score", usedefault=True)
    m0_scale = traits.Float(1.0, usedefault=True)
    m0_smoothing_fwhm_mm = traits.Float(0.0, usedefault=True)


class _QuantifyOutputSpec(TraitedSpec):
    cbf = File(desc="mean CBF, mL/100 g/min")
    att = File(desc="arterial transit time, s (multi-delay)")
    cbf_timeseries = File(desc="per-pair CBF (single delay)")
    deltam = File(desc="mean ΔM")
    provenance = File(desc="JSON provenance: model, constants, M0, dropped volumes")


class QuantifyCBF(SimpleInterface):
    """Quantify CBF (and ATT) of one run with the :mod:`aslmig.cbf` engine."""

    input_spec = _QuantifyInputSpec
    output_spec = _QuantifyOutputSpec

    def _run_interface(self, runtime):
        inputs = self.inputs
        defined = {
            name: getattr(inputs, name) if isdefined(getattr(inputs, name)) else None
            for name in ("m0_file", "tissue_files")
        }
        outputs = quantify_run(
            inputs.asl_file,
            inputs.metadata,
            inputs.mask_file,
            Path(runtime.cwd),
            m0_file=defined["m0_file"],
            tissue_files=defined["tissue_files"],
            overrides=inputs.overrides if isdefined(inputs.overrides) else None,
            options=QuantifyOptions(
                averaging=inputs.averaging,
                m0_scale=inputs.m0_scale,
                m0_smoothing_fwhm_mm=inputs.m0_smoothing_fwhm_mm,
            ),
        )
        provenance = Path(runtime.cwd) / "provenance.json"
        provenance.write_text(json.dumps(outputs.pop("provenance"), indent=2, default=_plain))
        self._results["provenance"] = str(provenance)
        for name in ("cbf", "att", "cbf_timeseries", "deltam"):
            if name in outputs:
                self._results[name] = outputs[name]
        return runtime


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
