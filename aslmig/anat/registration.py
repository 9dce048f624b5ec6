"""Image registration and resampling with ANTs (Avants et al. 2008, 2011) through antspyx.

Transform conventions (the ANTs ones, used everywhere in :mod:`aslmig.anat`)
----------------------------------------------------------------------------
A *transform list* ``[t1, t2, ..., tn]`` resamples a moving image onto a reference grid:
each reference-grid point ``p`` is mapped to ``tn(...t2(t1(p)))`` in the moving image,
which is sampled there. So ``t1`` acts first on points, and the image is moved by ``tn``
first and by ``t1`` last. ANTs' own words: "the last transform listed is applied first".

:func:`register` of ``moving`` to ``fixed`` returns

- ``forward_transforms = [warp, affine]`` (``[affine]`` for rigid/affine): moves the
  *moving* image onto the *fixed* grid;
- ``inverse_transforms = [affine, inverse_warp]`` with
  ``inverse_invert_flags = (True, False)``: moves the *fixed* image onto the *moving*
  grid. As in ANTs, the affine file is the forward one and must be inverted when applied
  (every ``.mat`` of an inverse list has its flag set, nothing else).

:func:`compose_transforms` chains registrations in the order the image travels, e.g.
``compose_transforms(asl_to_t1w, t1w_to_template)`` gives
``[t1w->template warp, t1w->template affine, asl->t1w rigid]``, which
:func:`apply_transforms` uses to bring ASL data to the template in one resampling.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import nibabel as nb
import numpy as np

from aslmig.anat._images import (
    ants_module,
    ants_scratch,
    read_image,
    write_image,
)
from aslmig.errors import InputError

Kind = Literal["rigid", "affine", "syn"]
Metric = Literal["mattes", "meansquares", "cc"]
Interpolation = Literal["linear", "nearestNeighbor", "bSpline", "genericLabel"]

#: Seed for the random metric sampling of the linear stages (``ANTS_RANDOM_SEED``).
#: Results are bit-for-bit reproducible only with one thread (see ``set_threads``).
RANDOM_SEED = 20150101

#: Linear stages (rigid, affine): iterations per level, shrink factors, smoothing (voxels);
#: as antspyx's defaults but with 100 iterations (not 10) at full resolution, so that a rigid
#: fit reaches sub-voxel accuracy; each level also stops at convergence (1e-6 over 10).
LINEAR_ITERATIONS = (1000, 500, 250, 100)
LINEAR_SHRINK = (6, 4, 2, 1)
LINEAR_SMOOTHING = (3, 2, 1, 0)
#: Fraction of fixed-image voxels sampled (regular grid, randomly jittered) by linear metrics.
LINEAR_SAMPLING = 0.25

#: SyN stage (after an affine stage with antspyx's "SyN" schedule, 2100x1200x1200x0 at
#: shrink 4x2x2x1): iterations at shrink 4, 2, 1 (smoothing 2, 1, 0 voxels), gradient
#: step 0.2, update/total field smoothing 3/0 voxels. Moderate: about 20-40 s for a 2 mm
#: brain on 2 cores; enough to warp masks and tissue priors, not a high-end normalisation.
SYN_ITERATIONS = (40, 20, 10)
SYN_GRADIENT_STEP = 0.2
SYN_FLOW_SIGMA = 3.0
SYN_TOTAL_SIGMA = 0.0
#: Metric parameter per metric: histogram bins (mattes), radius in voxels (cc), unused (ms).
_METRIC_PARAMETER = {"mattes": 32, "meansquares": 0, "cc": 4}
#: Linear-stage metric per metric choice (antspyx cannot use CC in its linear stages).
_LINEAR_METRIC = {"mattes": "mattes", "meansquares": "meansquares", "cc": "GC"}
_DEFORMABLE_METRIC = {"mattes": "mattes", "meansquares": "meansquares", "cc": "CC"}
#: Names of the same metrics in ``ants.image_similarity``.
_SIMILARITY = {
    "mattes": "MattesMutualInformation",
    "meansquares": "MeanSquares",
    "cc": "ANTSNeighborhoodCorrelation",
}
_ANTS_KIND = {"rigid": "Rigid", "affine": "Affine", "syn": "SyN"}
_INTERPOLATIONS = ("linear", "nearestNeighbor", "bSpline", "genericLabel")


@dataclass(frozen=True)
class Registration:
    """The result of :func:`register`: transform files and how well they fit.

    Attributes
    ----------
    kind : str
        ``"rigid"``, ``"affine"`` or ``"syn"`` (affine followed by SyN).
    forward_transforms : tuple of Path
        Moving -> fixed, in ANTs order (``[warp, affine]`` or ``[affine]``): resamples
        the moving image onto the fixed grid. No file needs inverting.
    inverse_transforms : tuple of Path
        Fixed -> moving, in ANTs order (``[affine, inverse_warp]`` or ``[affine]``); the
        affine is the forward file, to be inverted (see ``inverse_invert_flags``).
    metric : str
        The metric optimised (``"mattes"``, ``"meansquares"`` or ``"cc"``).
    metric_value : float
        That metric between the fixed image and the warped moving image, evaluated
        by ``ants.image_similarity`` over the fixed mask when one was given (ANTs sign
        convention: lower is better, e.g. negative mutual information).
    warped : Path
        The moving image resampled onto the fixed grid (linear interpolation).
    moving, fixed : Path
        The registered images.
    """

    kind: str
    forward_transforms: tuple[Path, ...]
    inverse_transforms: tuple[Path, ...]
    metric: str
    metric_value: float
    warped: Path
    moving: Path
    fixed: Path

    @property
    def forward_invert_flags(self) -> tuple[bool, ...]:
        """Inversion flags for ``forward_transforms``: all False."""
        return tuple(False for _ in self.forward_transforms)

    @property
    def inverse_invert_flags(self) -> tuple[bool, ...]:
        """Inversion flags for ``inverse_transforms``: True for the affine (``.mat``) files."""
        return tuple(path.suffix == ".mat" for path in self.inverse_transforms)


def register(
    moving: str | Path,
    fixed: str | Path,
    out_prefix: str | Path,
    kind: Kind,
    moving_mask: str | Path | None = None,
    fixed_mask: str | Path | None = None,
    metric: Metric = "mattes",
    *,
    syn_iterations: Sequence[int] = SYN_ITERATIONS,
    mask_all_stages: bool = False,
    initialise: str = "centre_of_mass",
    start_pitch_deg: float = 0.0,
) -> Registration:
    """Register ``moving`` to ``fixed`` with ANTs and keep the transforms as files.

    Linear stages start from an alignment of the centres of mass, or from the images' own
    world coordinates (``initialise="identity"``). Rigid and affine use
    the ``LINEAR_*`` schedule; ``"syn"`` runs antspyx's ``"SyN"`` recipe (affine stage,
    then symmetric normalisation with ``syn_iterations``). For ``"syn"`` the masks apply to
    the SyN stage only unless ``mask_all_stages``. Metric sampling is seeded with
    ``RANDOM_SEED``. Files written (``P`` = ``out_prefix``): ``P0GenericAffine.mat``,
    ``P1Warp.nii.gz`` and ``P1InverseWarp.nii.gz`` (SyN only), ``PWarped.nii.gz``.

    Parameters
    ----------
    moving, fixed : str or Path
        3D images.
    out_prefix : str or Path
        Prefix of the output files, e.g. ``work/t1w_to_template_`` (folders are created).
    kind : {"rigid", "affine", "syn"}
        Transformation model.
    moving_mask, fixed_mask : str or Path, optional
        Metric masks (non-zero = used), each in the space of its image (any grid).
    metric : {"mattes", "meansquares", "cc"}
        Similarity metric: Mattes mutual information (32 bins; any contrast), mean squares
        (same contrast and scale), or neighbourhood cross-correlation (radius 4, SyN stage;
        global correlation in the linear stages).
    syn_iterations : sequence of int
        SyN iterations per level (coarse to fine, shrink factors 2**k).
    mask_all_stages : bool
        Apply the masks to the linear stages of ``"syn"`` too.
    initialise : {"centre_of_mass", "identity"}
        Starting point: align the centres of mass, or trust the headers (images of one
        session share the scanner's coordinates; a limited field of view moves the centre
        of mass, so ASL -> T1w starts from the headers).
    start_pitch_deg : float
        With ``"centre_of_mass"``: turn the start by this angle about the left-right axis
        through the fixed image's centre of mass (a further start when the first one fails).

    Returns
    -------
    Registration
        The transform files and the final metric value.
    """
    if kind not in _ANTS_KIND:
        raise ValueError(f"kind must be one of {sorted(_ANTS_KIND)}, not {kind!r}")
    if metric not in _SIMILARITY:
        raise ValueError(f"metric must be one of {sorted(_SIMILARITY)}, not {metric!r}")
    if initialise not in _INITIALISATION:
        raise ValueError(f"initialise must be one of {sorted(_INITIALISATION)}")
    ants = ants_module()
    moving_image = read_image(moving, "moving image").clone("float")
    fixed_image = read_image(fixed, "fixed image").clone("float")
    masks = {
        "moving_mask": _read_mask(moving_mask, "moving mask"),
        "mask": _read_mask(fixed_mask, "fixed mask"),
    }
    prefix = Path(out_prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    with ants_scratch() as scratch, _random_seed(RANDOM_SEED):
        start = _INITIALISATION[initialise]
        if start_pitch_deg and initialise == "centre_of_mass":
            start = _turned_start(fixed_image, moving_image, start_pitch_deg, scratch / "start.mat")
        result = ants.registration(
            fixed=fixed_image,
            moving=moving_image,
            type_of_transform=_ANTS_KIND[kind],
            outprefix=str(scratch / "reg_"),
            mask_all_stages=mask_all_stages,
            initial_transform=start,
            **masks,
            **_metric_options(metric),
            **_schedule_options(syn_iterations),
        )
        forward, inverse = _keep_transforms(result, str(prefix))
    warped = write_image(result["warpedmovout"], f"{prefix}Warped.nii.gz", "float")
    value = ants.image_similarity(
        fixed_image,
        result["warpedmovout"].clone("float"),
        metric_type=_SIMILARITY[metric],
        fixed_mask=masks["mask"],
    )
    return Registration(
        kind=kind,
        forward_transforms=forward,
        inverse_transforms=inverse,
        metric=metric,
        metric_value=float(value),
        warped=warped,
        moving=Path(moving),
        fixed=Path(fixed),
    )


# antspyx: None aligns the centres of mass; "Identity" starts from the headers.
_INITIALISATION = {"centre_of_mass": None, "identity": "Identity"}


def _turned_start(fixed: Any, moving: Any, degrees: float, path: Path) -> list[str]:
    """Write the centre-of-mass start turned by ``degrees`` about the left-right axis."""
    ants = ants_module()
    centre = np.asarray(ants.get_center_of_mass(fixed))
    shift = np.asarray(ants.get_center_of_mass(moving)) - centre
    cos, sin = np.cos(np.radians(degrees)), np.sin(np.radians(degrees))
    turn = np.array([[1.0, 0.0, 0.0], [0.0, cos, -sin], [0.0, sin, cos]])
    start = ants.create_ants_transform(matrix=turn, center=centre, translation=shift, dimension=3)
    ants.write_transform(start, str(path))
    return [str(path)]


def _read_mask(path: str | Path | None, role: str) -> Any:
    if path is None:
        return None
    mask = read_image(path, role)
    return (mask != 0).clone("float")


def _metric_options(metric: str) -> dict[str, Any]:
    return {
        "aff_metric": _LINEAR_METRIC[metric],
        "aff_sampling": 32,
        "aff_random_sampling_rate": LINEAR_SAMPLING,
        "syn_metric": _DEFORMABLE_METRIC[metric],
        "syn_sampling": _METRIC_PARAMETER[metric],
    }


def _schedule_options(syn_iterations: Sequence[int]) -> dict[str, Any]:
    return {
        "aff_iterations": LINEAR_ITERATIONS,
        "aff_shrink_factors": LINEAR_SHRINK,
        "aff_smoothing_sigmas": LINEAR_SMOOTHING,
        "reg_iterations": tuple(int(n) for n in syn_iterations),
        "grad_step": SYN_GRADIENT_STEP,
        "flow_sigma": SYN_FLOW_SIGMA,
        "total_sigma": SYN_TOTAL_SIGMA,
    }


@contextlib.contextmanager
def _random_seed(seed: int) -> Iterator[None]:
    """Set ``ANTS_RANDOM_SEED`` (read by antsRegistration at each call) for a block."""
    previous = os.environ.get("ANTS_RANDOM_SEED")
    os.environ["ANTS_RANDOM_SEED"] = str(seed)
    try:
        yield
    finally:
        if previous is None:
            del os.environ["ANTS_RANDOM_SEED"]
        else:
            os.environ["ANTS_RANDOM_SEED"] = previous


def _keep_transforms(
    result: dict[str, Any], prefix: str
) -> tuple[tuple[Path, ...], tuple[Path, ...]]:
    """Copy antspyx's transform files out of the scratch folder to ``prefix`` names."""
    names = {}
    for source in {*result["fwdtransforms"], *result["invtransforms"]}:
        if source.endswith("GenericAffine.mat"):
            names[source] = Path(f"{prefix}0GenericAffine.mat")
        elif source.endswith("InverseWarp.nii.gz"):
            names[source] = Path(f"{prefix}1InverseWarp.nii.gz")
        elif source.endswith("Warp.nii.gz"):
            names[source] = Path(f"{prefix}1Warp.nii.gz")
        else:  # pragma: no cover - only for transform types this module does not request
            raise RuntimeError(f"unexpected ANTs transform output {source}")
        shutil.copyfile(source, names[source])
    forward = tuple(names[source] for source in result["fwdtransforms"])
    inverse = tuple(names[source] for source in result["invtransforms"])
    return forward, inverse


TransformChain = Registration | str | Path | Sequence[str | Path]


def compose_transforms(*chains: TransformChain) -> list[str]:
    """Chain transforms so that a moving image crosses several spaces in one resampling.

    Give the chains in the order the *image* travels: first the one that leaves the
    moving image's space. For ASL -> T1w -> template::

        transforms = compose_transforms(asl_to_t1w, t1w_to_template)
        # == [*t1w_to_template.forward_transforms, *asl_to_t1w.forward_transforms]
        apply_transforms(cbf, template_t1w, transforms, out_file)

    The result lists the last chain first because ANTs maps reference-grid points through
    the list from its start (see the module notes). A :class:`Registration` contributes its
    ``forward_transforms`` (no inversion needed); a path or a list of paths is taken as an
    ANTs-ordered list that needs no inversion either. For chains that do need inverted
    affines (e.g. the ``inverse_transforms`` of a registration), concatenate the flags in
    the same order: ``[*flags_of_last_chain, ..., *flags_of_first_chain]``.

    Parameters
    ----------
    *chains : Registration, str, Path or sequence of str or Path
        Transform chains, in the order the image travels.

    Returns
    -------
    list of str
        One ANTs-ordered transform list for :func:`apply_transforms`.
    """
    if not chains:
        raise ValueError("compose_transforms needs at least one transform chain")
    composed: list[str] = []
    for chain in reversed(chains):
        composed.extend(_chain_files(chain))
    return composed


def _chain_files(chain: TransformChain) -> list[str]:
    if isinstance(chain, Registration):
        files = list(chain.forward_transforms)
    elif isinstance(chain, str | Path):
        files = [chain]
    else:
        files = list(chain)
    for path in files:
        if not Path(path).is_file():
            raise InputError(path, "the transform file does not exist", "rerun the registration")
    return [str(path) for path in files]


def apply_transforms(
    in_file: str | Path,
    reference_file: str | Path,
    transforms: str | Path | Sequence[str | Path],
    out_file: str | Path,
    interpolation: Interpolation = "linear",
    invert_flags: Sequence[bool] | None = None,
    *,
    default_value: float = 0.0,
) -> Path:
    """Resample a 3D image or a 4D series onto a reference grid through a transform list.

    All transforms are composed and applied in one resampling. A 4D input is resampled
    volume by volume with the same 3D transforms (ANTs time-series mode); its fourth axis
    (e.g. repetition time) is kept. The output is float32, except with
    ``nearestNeighbor``/``genericLabel`` interpolation, where it keeps the input's voxel
    type (label maps stay integers). ``bSpline`` can overshoot (negative values near edges).

    Parameters
    ----------
    in_file : str or Path
        The moving image (3D or 4D).
    reference_file : str or Path
        The grid to resample onto (a 3D image; of a 4D image, the spatial grid is used).
    transforms : str, Path or sequence of str or Path
        ANTs-ordered transform list (see :func:`compose_transforms`); empty = identity.
    out_file : str or Path
        Where to write the result.
    interpolation : {"linear", "nearestNeighbor", "bSpline", "genericLabel"}
        Interpolator.
    invert_flags : sequence of bool, optional
        Per transform, whether to invert it (affine ``.mat`` files only). Default: none
        (unlike antspyx, which guesses for a ``[.mat, warp]`` pair).
    default_value : float
        Value outside the moving image.

    Returns
    -------
    Path
        ``out_file``.
    """
    if interpolation not in _INTERPOLATIONS:
        raise ValueError(f"interpolation must be one of {_INTERPOLATIONS}, not {interpolation!r}")
    if isinstance(transforms, str | Path):
        transforms = [transforms]
    transforms = [str(t) for t in transforms]
    flags = _invert_flags(transforms, invert_flags)
    ants = ants_module()
    _chain_files(transforms)
    moving = read_image(in_file, "image to resample", ndims=(3, 4))
    input_dtype = _stored_dtype(in_file)
    reference = _reference_grid(read_image(reference_file, "reference image", ndims=(3, 4)))
    with ants_scratch() as scratch:
        if not transforms:  # antsApplyTransforms needs at least one transform
            transforms, flags = [_identity_file(scratch / "identity.mat")], [False]
        warped = ants.apply_transforms(
            fixed=reference.clone("float"),
            moving=moving.clone("float"),
            transformlist=transforms,
            interpolator=interpolation,
            imagetype=3 if moving.dimension == 4 else 0,
            whichtoinvert=flags,
            defaultvalue=default_value,
            singleprecision=True,
        )
    out_file = write_image(warped, out_file, "float")
    if interpolation in ("nearestNeighbor", "genericLabel") and input_dtype is not None:
        _cast_file(out_file, input_dtype)
    return out_file


def _stored_dtype(path: str | Path) -> np.dtype | None:
    """Return the voxel type of an unscaled NIfTI file (None if it has a scale factor)."""
    header = nb.load(str(path)).header
    slope, inter = header.get_slope_inter()
    if slope not in (None, 1.0) or inter not in (None, 0.0):
        return None
    return header.get_data_dtype()


def _identity_file(path: Path) -> str:
    ants = ants_module()
    ants.write_transform(ants.create_ants_transform(dimension=3), str(path))
    return str(path)


def _cast_file(path: Path, dtype: np.dtype) -> None:
    """Rewrite a float image with the voxel type of the input (labels stay integers)."""
    image = nb.load(str(path))
    data = np.asanyarray(image.dataobj)
    if np.issubdtype(dtype, np.integer):
        data = np.rint(data)
    header = image.header.copy()
    header.set_data_dtype(dtype)
    nb.Nifti1Image(data.astype(dtype), image.affine, header).to_filename(str(path))


def _invert_flags(transforms: list[str], invert_flags: Sequence[bool] | None) -> list[bool]:
    if invert_flags is None:
        return [False] * len(transforms)
    flags = [bool(flag) for flag in invert_flags]
    if len(flags) != len(transforms):
        raise ValueError(f"{len(flags)} invert flags for {len(transforms)} transforms")
    for path, flag in zip(transforms, flags, strict=True):
        if flag and not path.endswith(".mat"):
            raise ValueError(f"only affine (.mat) transforms can be inverted, not {path}")
    return flags


def _reference_grid(image: Any) -> Any:
    if image.dimension == 4:
        return ants_module().slice_image(image, axis=3, idx=0)
    return image


def affine_matrix(transform_file: str | Path) -> np.ndarray:
    """Return an ANTs affine transform file as a 4x4 matrix on RAS+ (NIfTI) coordinates.

    The matrix maps points the way ANTs does, from the reference (fixed) space to the
    moving space; ITK stores it in LPS+ coordinates, converted here.

    Parameters
    ----------
    transform_file : str or Path
        An ANTs ``.mat`` affine (or rigid) transform.

    Returns
    -------
    numpy.ndarray
        4x4 homogeneous matrix ``M`` with ``x_moving = M @ x_fixed`` (RAS+, mm).
    """
    transform = ants_module().read_transform(str(transform_file))
    parameters = np.asarray(transform.parameters, dtype=float)
    center = np.asarray(transform.fixed_parameters, dtype=float)
    linear = parameters[:9].reshape(3, 3)
    offset = parameters[9:12] + center - linear @ center
    lps = np.eye(4)
    lps[:3, :3] = linear
    lps[:3, 3] = offset
    flip = np.diag([-1.0, -1.0, 1.0, 1.0])
    return flip @ lps @ flip
