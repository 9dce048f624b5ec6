"""Quantify one ASL run from files to files: the nipype face of :mod:`aslmig.cbf.quantify`.

:func:`quantify_run` reads the images, calls :func:`aslmig.cbf.quantify.quantify_series` and
writes the maps and the provenance; :class:`QuantifyCBF` is its thin nipype wrapper.
"""

from __future__ import annotations

import json
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

from aslmig.cbf.acquisition import Acquisition
from aslmig.cbf.quantify import QuantifyOptions, TissueMaps, quantify_series
from aslmig.interfaces._io import load_array, save_array

#: Maps written by :func:`quantify_run` (when the model produces them).
MAP_NAMES = ("cbf", "att", "abv", "r2", "cbf_timeseries", "cbf_replicates", "deltam")


def quantify_run(
    asl_file: str,
    acquisition: Acquisition,
    mask_file: str,
    out_dir: Path,
    m0_file: str | None = None,
    tissue_files: dict[str, str] | None = None,
    own_segmentation: bool = False,
    overrides: dict[str, float] | None = None,
    options: QuantifyOptions | None = None,
    warnings: tuple[str, ...] = (),
) -> dict[str, Any]:
    """Quantify CBF (and ATT, aBV) of one run in its native space, files in and out.

    Parameters
    ----------
    asl_file : str
        The (motion-corrected) ASL series.
    acquisition : Acquisition
        Its acquisition.
    mask_file : str
        Brain mask in ASL space.
    out_dir : Path
        Where the maps are written.
    m0_file : str, optional
        Separate M0 image on the ASL grid (M0Type Separate).
    tissue_files : dict, optional
        ``{"gm": path, "wm": path, "csf": path}`` probability maps in ASL space.
    own_segmentation : bool
        Whether the tissue maps come from the participant's own T1w.
    overrides : dict, optional
        Physics constant overrides.
    options : QuantifyOptions, optional
        User choices.
    warnings : tuple of str
        Acquisition warnings, recorded in the provenance.

    Returns
    -------
    dict
        Paths of the maps written (see :data:`MAP_NAMES`) and the ``provenance``.
    """
    image = nb.load(asl_file)
    tissues = {name: load_array(path) for name, path in (tissue_files or {}).items()}
    result = quantify_series(
        np.asanyarray(image.dataobj, dtype=float),
        acquisition,
        load_array(mask_file) > 0,
        voxel_size_mm=image.header.get_zooms()[:3],
        separate_m0=load_array(m0_file) if m0_file else None,
        tissues=TissueMaps(**tissues, own_segmentation=own_segmentation),
        overrides=overrides,
        options=options,
        warnings=warnings,
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    outputs: dict[str, Any] = {
        name: save_array(array, image.affine, out_dir / f"{name}.nii.gz")
        for name, array in result.maps.items()
    }
    outputs["provenance"] = result.provenance
    return outputs


class _QuantifyInputSpec(BaseInterfaceInputSpec):
    asl_file = File(exists=True, mandatory=True, desc="motion-corrected ASL series")
    acquisition = traits.Instance(Acquisition, mandatory=True, desc="the run's acquisition")
    mask_file = File(exists=True, mandatory=True, desc="brain mask, ASL space")
    m0_file = File(exists=True, desc="separate M0 on the ASL grid")
    tissue_files = traits.Dict(desc="gm/wm/csf probability maps in ASL space")
    own_segmentation = traits.Bool(False, usedefault=True, desc="tissue maps from own T1w")
    overrides = traits.Dict(desc="physics constant overrides")
    options = traits.Instance(QuantifyOptions, desc="quantification choices")
    warnings = traits.List(traits.Str, desc="acquisition warnings for the provenance")


class _QuantifyOutputSpec(TraitedSpec):
    cbf = File(desc="mean CBF, mL/100 g/min")
    att = File(desc="arterial transit time, s (multi-delay)")
    abv = File(desc="arterial blood volume fraction (multi-delay, arterial component)")
    r2 = File(desc="coefficient of determination of the fit (multi-delay)")
    cbf_timeseries = File(desc="per-pair CBF (single delay)")
    cbf_replicates = File(desc="CBF with each repetition left out in turn (4-D)")
    deltam = File(desc="mean ΔM")
    provenance = File(desc="JSON provenance: model, constants, M0, warnings, fit summary")


class QuantifyCBF(SimpleInterface):
    """Quantify CBF (and ATT, aBV) of one run with the :mod:`aslmig.cbf` engine."""

    input_spec = _QuantifyInputSpec
    output_spec = _QuantifyOutputSpec

    def _run_interface(self, runtime):
        inputs = self.inputs

        def given(name: str) -> Any:
            value = getattr(inputs, name)
            return value if isdefined(value) else None

        outputs = quantify_run(
            inputs.asl_file,
            inputs.acquisition,
            inputs.mask_file,
            Path(runtime.cwd),
            m0_file=given("m0_file"),
            tissue_files=given("tissue_files"),
            own_segmentation=inputs.own_segmentation,
            overrides=given("overrides"),
            options=given("options"),
            warnings=tuple(given("warnings") or ()),
        )
        provenance = Path(runtime.cwd) / "provenance.json"
        provenance.write_text(json.dumps(outputs.pop("provenance"), indent=2, default=_plain))
        self._results["provenance"] = str(provenance)
        self._results.update(outputs)
        return runtime


def _plain(value: Any) -> Any:
    if hasattr(value, "tolist"):
        return value.tolist()
    return str(value)
