"""Thin nipype interfaces over :mod:`aslmig.anat` (ANTs through antspyx).

Transform lists follow the ANTs convention: pass them in the order given to resample a
moving image onto a fixed grid; in an inverse list, affine (``.mat``) files are inverted and
inverse warps are used as they are.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from nipype.interfaces.base import (
    BaseInterfaceInputSpec,
    File,
    SimpleInterface,
    TraitedSpec,
    isdefined,
    traits,
)

from aslmig.anat.brain import extract_brain
from aslmig.anat.derivatives import working_anatomy
from aslmig.anat.prepare import prepare_t1w
from aslmig.anat.quality import check_brain_mask
from aslmig.anat.registration import apply_transforms, register
from aslmig.anat.segmentation import segment_tissues

#: nipype's interface logger: its warnings reach the console (level WARNING).
LOGGER = logging.getLogger("nipype.interface")


def inversion_flags(transforms: list[str], inverse: bool) -> list[bool]:
    """Which transforms ANTs must invert: the affines of an inverse chain, nothing else."""
    return [inverse and str(path).endswith(".mat") for path in transforms]


def _optional(value):
    return value if isdefined(value) else None


class _PrepareInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="raw T1w")
    skull_strip = traits.Enum("auto", "skip", "force", usedefault=True)


class _PrepareOutputSpec(TraitedSpec):
    out_file = File(desc="bias-corrected working image (2 mm)")
    skull_stripped = traits.Bool(desc="whether the T1w is taken as skull-stripped")


class PrepareT1w(SimpleInterface):
    """Skull detection, field-of-view crop, 2 mm working image and N4."""

    input_spec = _PrepareInputSpec
    output_spec = _PrepareOutputSpec

    def _run_interface(self, runtime):
        result = prepare_t1w(self.inputs.in_file, runtime.cwd, self.inputs.skull_strip)
        self._results.update(out_file=str(result.image), skull_stripped=result.skull_stripped)
        return runtime


class _FileOutputSpec(TraitedSpec):
    out_file = File()


class _BrainInputSpec(BaseInterfaceInputSpec):
    in_file = File(exists=True, mandatory=True, desc="bias-corrected working T1w")
    skull_stripped = traits.Bool(False, usedefault=True, desc="the T1w has no skull")
    full_grid = File(exists=True, desc="original T1w, for a brain mask on its grid")
    template_t1w = File(exists=True, mandatory=True)
    template_mask = File(exists=True, mandatory=True)


class _BrainOutputSpec(TraitedSpec):
    mask = File(desc="brain mask, working grid")
    full_mask = File(desc="brain mask, grid of the original T1w")
    brain = File(desc="skull-stripped T1w")
    warped = File(desc="the T1w resampled onto the template")
    anat2std_xfm = traits.List(File(), desc="T1w -> template (ANTs order)")
    std2anat_xfm = traits.List(File(), desc="template -> T1w (ANTs order, affines inverted)")


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
            skull_stripped=self.inputs.skull_stripped,
            full_grid=_optional(self.inputs.full_grid),
        )
        transforms = result.template_transforms
        self._results.update(
            mask=str(result.mask),
            brain=str(result.brain),
            warped=str(transforms.warped),
            anat2std_xfm=[str(path) for path in transforms.forward_transforms],
            std2anat_xfm=[str(path) for path in transforms.inverse_transforms],
        )
        if result.full_mask is not None:
            self._results["full_mask"] = str(result.full_mask)
        return runtime


class _CheckInputSpec(BaseInterfaceInputSpec):
    t1w = File(exists=True, mandatory=True, desc="the T1w the mask belongs to")
    mask = File(exists=True, mandatory=True, desc="its brain mask, same grid")
    warped = File(exists=True, mandatory=True, desc="the T1w on the template grid")
    template_t1w = File(exists=True, mandatory=True)
    template_mask = File(exists=True, mandatory=True)


class _CheckOutputSpec(TraitedSpec):
    out_file = File(desc="plausibility measures and warnings (JSON, t1w_* keys)")


class CheckBrainMask(SimpleInterface):
    """Plausibility of the T1w brain mask; each problem is logged as a warning."""

    input_spec = _CheckInputSpec
    output_spec = _CheckOutputSpec

    def _run_interface(self, runtime):
        check = check_brain_mask(
            self.inputs.t1w,
            self.inputs.mask,
            warped=self.inputs.warped,
            template=self.inputs.template_t1w,
            template_mask=self.inputs.template_mask,
        )
        for warning in check.warnings:
            LOGGER.warning("%s: %s", Path(self.inputs.t1w).name, warning)
        out_file = Path(runtime.cwd) / "t1w_qc.json"
        out_file.write_text(json.dumps(check.metrics(), indent=2))
        self._results["out_file"] = str(out_file)
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


class _WorkingAnatomyInputSpec(BaseInterfaceInputSpec):
    t1w = File(exists=True, mandatory=True, desc="derivative preprocessed T1w")
    mask = File(exists=True, mandatory=True, desc="its brain mask")
    gm = File(exists=True, mandatory=True)
    wm = File(exists=True, mandatory=True)
    csf = File(exists=True, mandatory=True)


class _WorkingAnatomyOutputSpec(TraitedSpec):
    t1w = File(desc="T1w, working grid")
    brain = File(desc="T1w times the mask, working grid")
    mask = File(desc="brain mask, working grid")
    gm = File()
    wm = File()
    csf = File()


class WorkingAnatomy(SimpleInterface):
    """Anatomy from an fMRIPrep/sMRIPrep dataset on the working grid (nothing estimated)."""

    input_spec = _WorkingAnatomyInputSpec
    output_spec = _WorkingAnatomyOutputSpec

    def _run_interface(self, runtime):
        tissues = {tissue: getattr(self.inputs, tissue) for tissue in ("gm", "wm", "csf")}
        result = working_anatomy(self.inputs.t1w, self.inputs.mask, tissues, runtime.cwd)
        self._results.update(
            t1w=str(result.t1w),
            brain=str(result.brain),
            mask=str(result.mask),
            **{tissue: str(path) for tissue, path in result.tissues.items()},
        )
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
