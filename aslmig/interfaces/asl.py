"""ASL preprocessing: volume-type-aware motion correction, reference image and brain mask."""

from __future__ import annotations

from pathlib import Path

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

from aslmig.asl.motion import confounds_table, realign_series
from aslmig.asl.reference import brain_mask
from aslmig.interfaces._io import save_array


def preprocess_asl(
    asl_file: str, volume_types: list[str], out_dir: Path, m0_file: str | None = None
) -> dict[str, str]:
    """Realign an ASL series (and its separate M0), and derive its reference and brain mask.

    Parameters
    ----------
    asl_file : str
        The raw ASL series.
    volume_types : list of str
        Its ``aslcontext`` volume types.
    out_dir : Path
        Where the outputs are written.
    m0_file : str, optional
        A separate M0 scan, realigned with the series onto its grid.

    Returns
    -------
    dict
        Paths of ``realigned``, ``reference``, ``mask``, ``confounds`` and, with a separate
        M0 scan, ``m0``.
    """
    image = nb.load(asl_file)
    series = np.asanyarray(image.dataobj, dtype=np.float32)
    if series.ndim == 3:
        series = series[..., np.newaxis]
    m0_image = nb.load(m0_file) if m0_file else None
    realignment = realign_series(
        series,
        image.affine,
        volume_types,
        m0=None if m0_image is None else np.asanyarray(m0_image.dataobj, dtype=np.float32),
        m0_affine=None if m0_image is None else m0_image.affine,
        source=asl_file,
    )
    affine = image.affine
    outputs = {
        "realigned": save_array(realignment.realigned, affine, out_dir / "realigned.nii.gz"),
        "reference": save_array(realignment.reference, affine, out_dir / "reference.nii.gz"),
        "mask": save_array(
            brain_mask(realignment.reference, affine), affine, out_dir / "mask.nii.gz", np.uint8
        ),
    }
    if realignment.m0 is not None:
        outputs["m0"] = save_array(realignment.m0, affine, out_dir / "m0.nii.gz")
    confounds = confounds_table(realignment.parameters, volume_types)
    confounds_path = out_dir / "confounds.tsv"
    confounds.to_csv(confounds_path, sep="\t", index=False, na_rep="n/a")
    outputs["confounds"] = str(confounds_path)
    return outputs


class _PreprocessInputSpec(BaseInterfaceInputSpec):
    asl_file = File(exists=True, mandatory=True, desc="raw ASL series")
    volume_types = traits.List(traits.Str, mandatory=True, desc="aslcontext volume types")
    m0_file = File(exists=True, desc="separate M0 scan")


class _PreprocessOutputSpec(TraitedSpec):
    realigned = File(desc="motion-corrected series")
    reference = File(desc="reference image (mean M0, else mean control)")
    mask = File(desc="brain mask")
    m0 = File(desc="separate M0 realigned onto the series grid")
    confounds = File(desc="motion parameters and framewise displacement (TSV)")


class PreprocessASL(SimpleInterface):
    """Motion-correct an ASL series by volume type; reference image and brain mask."""

    input_spec = _PreprocessInputSpec
    output_spec = _PreprocessOutputSpec

    def _run_interface(self, runtime):
        m0_file = self.inputs.m0_file if isdefined(self.inputs.m0_file) else None
        self._results.update(
            preprocess_asl(
                self.inputs.asl_file, list(self.inputs.volume_types), Path(runtime.cwd), m0_file
            )
        )
        return runtime
