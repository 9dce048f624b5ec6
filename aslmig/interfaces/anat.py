"""Thin nipype interfaces over :mod:`aslmig.anat` (ANTs through antspyx).

Transform lists follow the ANTs convention: pass them in the order given to resample a
moving image onto a fixed grid; in an inverse list, affine (``.mat``) files are inverted and
inverse warps are used as they are.
"""

from __future__ import annotations

from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from aslmig.anat.bias import n4_bias_correct
from aslmig.anat.brain import extract_brain
from aslmig.anat.registration import apply_transforms, register
from aslmig.anat.segmentation import segment_tissues


def inversion_flags(transforms: list[str], inverse: bool) -> list[bool]:
    """Which transforms ANTs must invert: the affines of an inverse chain, nothing else."""
    return [inverse and str(path).endswith(".mat") for path in transforms]


def _optional(value):
    return value if isdefined(value) else None


class _N4InputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True)
    mask_file = File(exists=True)


class _FileOutputSpec(TraitedSpec):
    out_file = File()


class N4BiasCorrect(SimpleInterface):
    """N4 bias-field correction."""

    input_spec = _N4InputSpec
    output_spec = _FileOutputSpec

    def _run_interface(self, runtime):
        out_file = Path(runtime.cwd) / "t1w_n4.nii.gz"
        n4_bias_correct(self.inputs.in_file, out_file, _optional(self.inputs.mask_file))
        self._results["out_file"] = str(out_file)
        return runtime


class _BrainInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="bias-corrected T1w (with skull)")
    template_t1w = File(exists=True, mandatory=True)
    template_mask = File(exists=True, mandatory=True)


class _BrainOutputSpec(TraitedSpec):
    mask = File(desc="brain mask, T1w space")
    brain = File(desc="skull-stripped T1w")
    anat2std_xfm = traits.List(File(), desc="T1w -> template (ANTs order)")
    std2anat_xfm = traits.List(File(), desc="template -> T1w (ANTs order)")


class BrainExtraction(SimpleInterface):
    """Template-based brain extraction; also returns the T1w <-> template transforms."""

    input_spec = _BrainInputSpec
    output_spec = _BrainOutputSpec

    def _run_interface(self, runtime):
        result = extract_brain(
            self.inputs.in_file,
            self.inputs.template_t1w,
            self.inputs.template_mask,
            Path(runtime.cwd),
            bias_correct=False,  # the input is already N4-corrected
        )
        self._results.update(
            mask=str(result.mask),
            brain=str(result.brain),
            anat2std_xfm=[str(path) for path in result.template_transforms.forward_transforms],
            std2anat_xfm=[str(path) for path in result.template_transforms.inverse_transforms],
        )
        return runtime


class _SegmentInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="bias-corrected T1w")
    mask = File(exists=True, mandatory=True)
    std2anat_xfm = traits.List(File(exists=True), desc="template -> T1w, for the priors")
    template_gm = File(exists=True)
    template_wm = File(exists=True)
    template_csf = File(exists=True)


class _SegmentOutputSpec(TraitedSpec):
    gm = File()
    wm = File()
    csf = File()


class SegmentTissues(SimpleInterface):
    """GM/WM/CSF probability maps (Atropos, with template priors when given)."""

    input_spec = _SegmentInputSpec
    output_spec = _SegmentOutputSpec

    def _run_interface(self, runtime):
        out_dir = Path(runtime.cwd)
        priors = None
        if isdefined(self.inputs.std2anat_xfm) and isdefined(self.inputs.template_gm):
            transforms = list(self.inputs.std2anat_xfm)
            priors = {}
            for tissue in ("gm", "wm", "csf"):
                priors[tissue] = apply_transforms(
                    getattr(self.inputs, f"template_{tissue}"),
                    self.inputs.in_file,
                    transforms,
                    out_dir / f"prior_{tissue}.nii.gz",
                    interpolation="linear",
                    invert_flags=inversion_flags(transforms, inverse=True),
                )
        maps = segment_tissues(self.inputs.in_file, self.inputs.mask, priors, out_dir)
        self._results.update({tissue: str(maps[tissue]) for tissue in ("gm", "wm", "csf")})
        return runtime


class _RegisterInputSpec(BaseInterfaceInputSpec):
    moving = File(exists=True, mandatory=True)
    fixed = File(exists=True, mandatory=True)
    moving_mask = File(exists=True)
    fixed_mask = File(exists=True)
    kind = traits.Enum("rigid", "affine", "syn", mandatory=True)
    initialise = traits.Enum(
        "centre_of_mass", "identity", usedefault=True, desc="start from the centres of mass "
        "or from the headers (same-session images)"
    )  # fmt: skip


class _RegisterOutputSpec(TraitedSpec):
    forward_transforms = traits.List(File(), desc="moving -> fixed (ANTs order)")
    forward_invert = traits.List(traits.Bool())
    inverse_transforms = traits.List(File(), desc="fixed -> moving (ANTs order)")
    inverse_invert = traits.List(traits.Bool())


class RegisterImages(SimpleInterface):
    """Register two images with ANTs (rigid, affine or affine + SyN)."""

    input_spec = _RegisterInputSpec
    output_spec = _RegisterOutputSpec

    def _run_interface(self, runtime):
        result = register(
            self.inputs.moving,
            self.inputs.fixed,
            str(Path(runtime.cwd) / "xfm_"),
            self.inputs.kind,
            moving_mask=_optional(self.inputs.moving_mask),
            fixed_mask=_optional(self.inputs.fixed_mask),
            initialise=self.inputs.initialise,
        )
        forward = [str(path) for path in result.forward_transforms]
        inverse = [str(path) for path in result.inverse_transforms]
        self._results.update(
            forward_transforms=forward,
            forward_invert=inversion_flags(forward, inverse=False),
            inverse_transforms=inverse,
            inverse_invert=inversion_flags(inverse, inverse=True),
        )
        return runtime


class _ApplyInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True)
    reference = File(exists=True, mandatory=True)
    transforms = traits.List(File(exists=True), mandatory=True)
    invert_flags = traits.List(traits.Bool())
    interpolation = traits.Enum("linear", "nearestNeighbor", "bSpline", usedefault=True)


class ApplyTransforms(SimpleInterface):
    """Resample an image onto a reference grid through a transform chain (one resampling)."""

    input_spec = _ApplyInputSpec
    output_spec = _FileOutputSpec

    def _run_interface(self, runtime):
        out_file = Path(runtime.cwd) / ("resampled_" + Path(self.inputs.in_file).name)
        if not out_file.name.endswith(".gz"):
            out_file = out_file.with_name(out_file.name + ".gz")
        apply_transforms(
            self.inputs.in_file,
            self.inputs.reference,
            list(self.inputs.transforms),
            out_file,
            interpolation=self.inputs.interpolation,
            invert_flags=_optional(self.inputs.invert_flags),
        )
        self._results["out_file"] = str(out_file)
        return runtime


class _ConcatInputSpec(BaseInterfaceInputSpec):
    first = traits.List(File(exists=True), mandatory=True, desc="applied last to the image")
    first_invert = traits.List(traits.Bool())
    second = traits.List(File(exists=True), desc="applied first to the image")
    second_invert = traits.List(traits.Bool())
    second_is_inverse = traits.Bool(
        False, usedefault=True, desc="second is an inverse chain (invert its affines)"
    )


class _ConcatOutputSpec(TraitedSpec):
    transforms = traits.List(File())
    invert_flags = traits.List(traits.Bool())


class ConcatTransforms(SimpleInterface):
    """Chain two transform lists, e.g. [T1w -> template] + [ASL -> T1w] = ASL -> template."""

    input_spec = _ConcatInputSpec
    output_spec = _ConcatOutputSpec

    def _run_interface(self, runtime):
        transforms, flags = [], []
        for files, invert, inverse in (
            (self.inputs.first, self.inputs.first_invert, False),
            (self.inputs.second, self.inputs.second_invert, self.inputs.second_is_inverse),
        ):
            if not isdefined(files):
                continue
            transforms += list(files)
            if isdefined(invert):
                flags += list(invert)
            else:
                flags += inversion_flags(list(files), inverse=inverse)
        self._results.update(transforms=transforms, invert_flags=flags)
        return runtime
