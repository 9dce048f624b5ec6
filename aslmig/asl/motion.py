"""Volume-type- and delay-aware head-motion correction of an ASL series, and motion confounds.

Why volume-type and delay aware
-------------------------------
Control and label volumes differ by ΔM (about 1 % of the signal, concentrated in grey
matter), M0 volumes have another contrast altogether, and with background suppression the
static-tissue signal of a control or label image changes with its post-labeling delay (PLD):
in a real multi-delay series the mean control falls from 378 to 223 between PLD 0.25 and
1.5 s, differently in every slice of a 2D readout. Registering volumes of different contrasts
to one image lets these intensity differences pull every estimate: the spurious
label/control "zig-zag" of the motion parameters (Wang 2012, MRI 30:1409), and "motion" that
follows the PLD cycle. Here:

1. the volumes are grouped by volume type *and* PLD (``control``, ``label``, ``m0scan`` and a
   separate M0 scan; one group per PLD for multi-delay series), and each group is realigned
   only to its own volumes: every volume to the plain mean of its group, then again to the
   mean of the realigned volumes (two passes). These within-group estimates compare images of
   one contrast and see no ΔM;
2. the groups are brought together (``C_group``) from two independent sources, fused by
   weighted least squares per parameter (:func:`_link_groups`):

   - *image links*: each group mean registered to the hub group's mean (the first control
     group). Label -> control of the same PLD fits a smooth quadratic gain field
     (``between_intensity="smooth"``), which absorbs the slowly varying part of ΔM; pairs of
     different contrast fit one gain per slice for 2D readouts (``slice_axis``; a global gain
     for 3D). Trusted to ``SAME_CONTRAST_LINK_SE_MM`` or ``CROSS_CONTRAST_LINK_SE_MM``.
   - *temporal links*: the head moves continuously, so a still or steadily drifting head is
     at volume ``t`` midway between its positions at ``t - 1`` and ``t + 1``; over every
     triple of consecutive volumes from different groups this constrains the group offsets
     with no image comparison at all, with a standard error from the pooled scatter of
     these second differences over the run (large when the head is restless, small when
     it is still);
3. each volume gets one world matrix ``A = B_volume @ C_group`` (within-group, then
   group-to-reference) and the output is made in **one** cubic-spline resampling of the
   original volume.

Measured: on the real multi-delay series (``sub-O2019``, 6 PLDs, background suppression) the
former type-only realignment gave FD 1.56 mm at every PLD-cycle reset against 0.23 mm
elsewhere (14 volumes above 0.5 mm); grouping by PLD with image links fitting one gain (global)
gives 0.99 vs 0.19 mm, with slice gains 0.23 vs 0.13 mm, and fused with the temporal links
0.10 vs 0.09 mm (no volume above 0.5 mm); see ``benchmarks/asl_motion.py``.

Limit: the part of ΔM that looks like an edge shift cannot be told apart from motion by any
registration that compares control and label intensities; here it enters once, as one
common label offset. On a phantom with a +-50 % left-right perfusion gradient and random
motion of +-3 mm per volume the label offset is 0.013 mm and the grey-matter ΔM loss 2.4 %,
against 0.020 mm and 6.5 % when all volumes are realigned to one common mean
(``tests/asl/test_asl_motion.py``).

The common reference is the M0 mean (``reference="m0"``, the default, when there are M0
volumes or a separate M0 scan) or the control mean. ``deltam``, ``cbf`` and ``noRF`` volumes
are not registered (their contrast is perfusion or noise, too weak for intensity-based
registration): they keep the identity. A series with no control, label or M0 volume (for
example one or two ``deltam`` volumes) is returned as it is, with zero motion.

Kept hand-written (measured 2026-12-05, ``benchmarks/kept_versus_libraries.py``): against
``ants.motion_correction`` (antspyx 0.6.3, one thread, every volume to the unmoved m0scan) on
the phantom of ``tests/asl/test_asl_motion.py`` (1 m0scan + 8 control/label pairs, random
motion within +-3 mm / +-3 deg, noise sd 0.3), this module recovers the motion to 0.011 mm /
0.027 deg at worst (0.045 mm at 70 mm from the centre; mean 0.021 mm) in 2.0-2.5 s. ANTs'
default (``BOLDRigid``) leaves up to 2.6 deg (mean 1.4 deg; 3.2 mm at 70 mm) in 6.7-8.5 s,
``Rigid`` 8.0 deg in 3.9-4.9 s and ``DenseRigid`` (all voxels) 3.1 deg in 15-20 s, all of it
about z: its translations and x/y rotations are within 0.06 mm / 0.07 deg. The phantom is
nearly round in the axial plane (52 x 56 mm), so z rotation is its weakly constrained
parameter and the gap on a real head is likely smaller (not measured); ANTs also has no
grouping by volume type or delay, the point of this module (above).

Conventions
-----------
``matrices[t]`` maps a world point (mm) of the reference image to the world point of volume
``t`` that shows the same tissue: ``realigned[..., t](x) = series[..., t](matrices[t] @ x)``.
``parameters[t]`` are ``(trans_x, trans_y, trans_z, rot_x, rot_y, rot_z)`` (mm, rad) of
``matrices[t] = T(t) @ Rx @ Ry @ Rz``, rotations about the world origin (SPM's and asldro's
convention; see :mod:`aslmig.asl.rigid`). They describe how far the head of volume ``t`` was
from its position in the reference image.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from aslmig.asl import rigid
from aslmig.cbf.volumes import VOLUME_TYPES
from aslmig.errors import InputError

if TYPE_CHECKING:
    import pandas as pd

#: Volume types that are realigned (others keep the identity).
REGISTERED_TYPES = ("control", "label", "m0scan")
#: Group name of a separate M0 scan (``M0Type: Separate``).
SEPARATE_M0 = "separate_m0"
#: Radius (mm) that turns rotations into displacements in framewise displacement.
FD_RADIUS_MM = 50.0
#: Standard errors given to an image link between two group means (mm; rotations as arc
#: length at ``FD_RADIUS_MM``), between images of one contrast (label -> control of one
#: delay: 0.013 mm of ΔM-induced offset on the phantom of the tests) and of different
#: contrasts (M0, or another delay under background suppression: 0.1-0.2 mm of
#: delay-locked bias on the real multi-delay series even with slice gains). A still head's
#: temporal links (second differences of 0.01-0.05 mm) then win over cross-contrast links,
#: and a restless head's (0.1 mm and more) do not.
SAME_CONTRAST_LINK_SE_MM = 0.02
CROSS_CONTRAST_LINK_SE_MM = 0.1
#: Smallest standard deviation assumed for the step between consecutive volumes (mm), so that
#: a noise-free series does not get infinite weight.
STEP_SD_FLOOR_MM = 0.01
CONFOUND_COLUMNS = (
    "trans_x",
    "trans_y",
    "trans_z",
    "rot_x",
    "rot_y",
    "rot_z",
    "framewise_displacement",
    "volume_type",
)
_HUB_ORDER = ("control", "label", "m0scan", SEPARATE_M0)
_LEVER = np.array([1.0, 1.0, 1.0, FD_RADIUS_MM, FD_RADIUS_MM, FD_RADIUS_MM])


@dataclass(frozen=True)
class Realignment:
    """A motion-corrected ASL series and its per-volume rigid transforms.

    Attributes
    ----------
    realigned : ndarray
        Motion-corrected series on the input grid, float32, shape (X, Y, Z, T).
    parameters : ndarray
        Rigid parameters per volume, (T, 6): ``trans_x, trans_y, trans_z`` (mm),
        ``rot_x, rot_y, rot_z`` (rad); see the module conventions.
    matrices : ndarray
        World matrices reference -> volume, (T, 4, 4).
    reference : ndarray
        The common reference image (mean of the realigned reference-type volumes), (X, Y, Z).
    reference_type : str
        ``"m0scan"``, ``"separate_m0"``, ``"control"``, ``"label"`` or ``"none"`` (nothing
        registrable: identity everywhere, the reference is the mean of all volumes).
    affine : ndarray
        Voxel-to-world matrix of the grid.
    volume_types : tuple of str
        The ``aslcontext`` volume type of each volume.
    coverage : ndarray of bool
        Voxels whose sample point lay inside the field of view in every volume (elsewhere the
        edge value was repeated), (X, Y, Z).
    n_groups : int
        Number of groups realigned separately (volume type x PLD, plus a separate M0).
    m0 : ndarray or None
        The separate M0 scan realigned onto the grid, (X, Y, Z, n_m0), float32.
    m0_parameters : ndarray or None
        Its rigid parameters, (n_m0, 6).
    m0_matrices : ndarray or None
        Its world matrices reference -> M0 volume, (n_m0, 4, 4).
    """

    realigned: np.ndarray
    parameters: np.ndarray
    matrices: np.ndarray
    reference: np.ndarray
    reference_type: str
    affine: np.ndarray
    volume_types: tuple[str, ...]
    coverage: np.ndarray
    n_groups: int = 0
    m0: np.ndarray | None = None
    m0_parameters: np.ndarray | None = None
    m0_matrices: np.ndarray | None = None


@dataclass(frozen=True)
class _Group:
    """Volumes of one type and delay: ``data[..., indices]`` (not copied), on grid ``affine``."""

    kind: str
    delay: float | None
    indices: tuple[int, ...]
    data: np.ndarray
    affine: np.ndarray

    def volume(self, k: int) -> np.ndarray:
        """Return the ``k``-th volume of the group as float64."""
        return np.asarray(self.data[..., self.indices[k]], float)

    def __len__(self) -> int:
        return len(self.indices)


@dataclass(frozen=True)
class _GroupFit:
    """Within-group result: matrices (group-mean world -> volume world) and the group mean."""

    matrices: np.ndarray
    mean: np.ndarray


def _check_inputs(
    series: np.ndarray,
    affine: np.ndarray,
    volume_types: Sequence[str],
    source: str | Path,
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    series = np.asarray(series)
    if series.ndim == 3:
        series = series[..., None]
    if series.ndim != 4:
        raise InputError(
            source, f"ASL data has {series.ndim} dimensions", "an ASL series is a 3D or 4D image"
        )
    affine = np.asarray(affine, float)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)) or np.linalg.det(affine) == 0:
        raise InputError(source, "the NIfTI affine is not a valid 4x4 matrix", "fix the header")
    types = tuple(str(v).strip() for v in volume_types)
    if len(types) != series.shape[-1]:
        raise InputError(
            source,
            f"aslcontext lists {len(types)} volumes but the image has {series.shape[-1]}",
            "the aslcontext.tsv needs one row per volume",
        )
    unknown = sorted(set(types) - set(VOLUME_TYPES))
    if unknown:
        raise InputError(
            source, f"unknown aslcontext volume_type {unknown}", f"use {list(VOLUME_TYPES)}"
        )
    if not np.all(np.isfinite(series)):
        raise InputError(source, "ASL data contain NaN or infinite values", "fix the image")
    return series, affine, types


def _check_delays(
    delays: Sequence[float] | None, n_volumes: int, source: str | Path
) -> tuple[float | None, ...]:
    if delays is None:
        return (None,) * n_volumes
    values = tuple(float(d) for d in delays)
    if len(values) != n_volumes:
        raise InputError(
            source,
            f"PostLabelingDelay lists {len(values)} values for {n_volumes} volumes",
            "give one delay per volume (or a single value)",
        )
    return values


def _check_m0(
    m0: np.ndarray | None, m0_affine: np.ndarray | None, affine: np.ndarray, source: str | Path
) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    if m0 is None:
        return None, None
    m0 = np.asarray(m0)
    if m0.ndim == 3:
        m0 = m0[..., None]
    if m0.ndim != 4 or not np.all(np.isfinite(m0)):
        raise InputError(source, "the M0 scan must be a finite 3D or 4D image", "fix the m0scan")
    return m0, affine if m0_affine is None else np.asarray(m0_affine, float)


def _groups(
    series: np.ndarray,
    affine: np.ndarray,
    types: tuple[str, ...],
    delays: tuple[float | None, ...],
    m0: np.ndarray | None,
    m0_affine: np.ndarray | None,
) -> list[_Group]:
    """Group the registered volumes by (type, delay), in order of first appearance.

    M0 volumes carry a nominal delay (often 0): all of them form one group.
    """
    keys = [
        (kind, None if kind == "m0scan" else delay)
        for kind, delay in zip(types, delays, strict=True)
    ]
    groups = []
    for kind, delay in dict.fromkeys(key for key in keys if key[0] in REGISTERED_TYPES):
        indices = tuple(i for i, key in enumerate(keys) if key == (kind, delay))
        groups.append(_Group(kind, delay, indices, series, affine))
    if m0 is not None:
        if any(g.kind == "m0scan" for g in groups):
            raise ValueError("give either m0scan volumes in the series or a separate M0, not both")
        groups.append(_Group(SEPARATE_M0, None, tuple(range(m0.shape[-1])), m0, m0_affine))
    return groups


def _mean_on_grid(
    group: _Group, matrices: np.ndarray, shape: tuple[int, ...], affine: np.ndarray
) -> np.ndarray:
    """Mean of a group's volumes, each sampled at ``matrices[k] @ x`` on the grid."""
    total = np.zeros(shape)
    for k in range(len(group)):
        volume = group.volume(k)
        same = np.allclose(matrices[k], np.eye(4)) and np.allclose(group.affine, affine)
        if same and volume.shape == shape:
            total += volume
        else:
            total += rigid.resample(volume, group.affine, matrices[k], shape, affine)[0]
    return total / len(group)


def _register_all(
    group: _Group,
    fixed: np.ndarray,
    affine: np.ndarray,
    initial: np.ndarray | None,
    levels_mm: Sequence[float],
) -> np.ndarray:
    """Register every volume of a group to one fixed image.

    Each volume starts from ``initial[k]``, or (``initial`` None) from the previous volume's
    result, since head position changes little between consecutive volumes.
    """
    prepared = rigid.prepare_levels(fixed, affine, None, levels_mm)
    matrices = np.tile(np.eye(4), (len(group), 1, 1))
    for k in range(len(group)):
        if initial is not None:
            start = initial[k]
        else:
            start = matrices[k - 1] if k else np.eye(4)
        try:
            matrices[k] = rigid.register_rigid(
                prepared, affine, group.volume(k), group.affine, initial=start
            )
        except rigid.RegistrationError as err:
            label = "M0 scan" if group.kind == SEPARATE_M0 else f"{group.kind} volume"
            raise rigid.RegistrationError(f"{label} {group.indices[k]}: {err}") from err
    return matrices


def _realign_group(
    group: _Group, shape: tuple[int, ...], affine: np.ndarray, passes: int
) -> _GroupFit:
    """Realign the volumes of one group to their own mean (``passes`` times)."""
    matrices = np.tile(np.eye(4), (len(group), 1, 1))
    mean = _mean_on_grid(group, matrices, shape, affine)
    if len(group) < 2:
        return _GroupFit(matrices, mean)
    for step in range(passes):
        levels = rigid.DEFAULT_LEVELS_MM if step == 0 else rigid.DEFAULT_LEVELS_MM[-1:]
        matrices = _register_all(group, mean, affine, matrices if step else None, levels)
        if step < passes - 1:
            mean = _mean_on_grid(group, matrices, shape, affine)
    # ``mean`` is the image the last pass registered to: the frame of ``matrices``
    return _GroupFit(matrices, mean)


def _hub(groups: Sequence[_Group]) -> int:
    """Index of the group every image link goes to: the first of the first kind present."""
    kind = next(k for k in _HUB_ORDER if any(g.kind == k for g in groups))
    return next(i for i, g in enumerate(groups) if g.kind == kind)


def _reference_kind(groups: Sequence[_Group], reference: str) -> str:
    m0_kinds = [g.kind for g in groups if g.kind in ("m0scan", SEPARATE_M0)]
    if reference == "m0" and m0_kinds:
        return m0_kinds[0]
    if any(g.kind == "control" for g in groups):
        return "control"
    return groups[_hub(groups)].kind


def _image_links(
    groups: Sequence[_Group],
    fits: Sequence[_GroupFit],
    affine: np.ndarray,
    hub: int,
    intensity: str,
    slice_axis: int | None,
) -> tuple[np.ndarray, np.ndarray]:
    """Register each group mean to the hub's: world matrices hub -> group, standard errors."""
    links = np.tile(np.eye(4), (len(groups), 1, 1))
    errors = np.zeros(len(groups))
    for index, group in enumerate(groups):
        if index == hub:
            continue
        same_contrast = {groups[hub].kind, group.kind} <= {"control", "label"} and (
            groups[hub].delay == group.delay
        )
        pair_intensity = intensity if same_contrast else "global"
        if not same_contrast and slice_axis is not None:
            pair_intensity = "slices"
        errors[index] = SAME_CONTRAST_LINK_SE_MM if same_contrast else CROSS_CONTRAST_LINK_SE_MM
        links[index] = rigid.register_rigid(
            fits[hub].mean,
            affine,
            fits[index].mean,
            affine,
            intensity=pair_intensity,
            slice_axis=slice_axis,
        )
    return links, errors


#: A temporal link: the groups of three consecutive registered volumes (before, at, after).
_Bend = tuple[int, int, int]


def _temporal_bends(
    groups: Sequence[_Group], fits: Sequence[_GroupFit], n_volumes: int
) -> dict[_Bend, np.ndarray]:
    """Collect how far each volume's within-group estimate sits off its neighbours' midpoint.

    A head that is still or drifts steadily is, at volume ``t``, midway between its positions
    at ``t - 1`` and ``t + 1``. With full estimates ``w_t + c_{g(t)}`` (within-group
    parameters plus group offset) this gives, for three consecutive volumes of groups
    ``(f, g, h)``, ``c_g - (c_f + c_h) / 2 = (w_{t-1} + w_{t+1}) / 2 - w_t``. The
    second difference is used rather than the step, so that a steady drift does not enter
    the links of an alternating design. Returns ``{(f, g, h): values}`` with ``values``
    (n, 6) in mm and lever-scaled rotations; triples within one group say nothing and are
    left out. Unregistered volumes (``deltam``, ``cbf``, ``noRF``) are skipped; a separate M0
    scan has no place in the series' time.
    """
    owner = np.full(n_volumes, -1)
    within = np.zeros((n_volumes, 6))
    for index, (group, fit) in enumerate(zip(groups, fits, strict=True)):
        if group.kind == SEPARATE_M0:
            continue
        owner[list(group.indices)] = index
        within[list(group.indices)] = _parameters(fit.matrices) * _LEVER
    order = np.flatnonzero(owner >= 0)
    bends: dict[_Bend, list[np.ndarray]] = {}
    for before, at, after in zip(order[:-2], order[1:-1], order[2:], strict=True):
        key = (int(owner[before]), int(owner[at]), int(owner[after]))
        if len(set(key)) > 1:
            midpoint = 0.5 * (within[before] + within[after])
            bends.setdefault(key, []).append(midpoint - within[at])
    return {key: np.array(values) for key, values in bends.items()}


#: A bend further than this many robust standard deviations from its link's median is a jerk
#: of the head, not scatter, and is left out of the temporal links.
JERK_THRESHOLD_SD = 5.0


def _drop_jerks(bends: dict[_Bend, np.ndarray]) -> dict[_Bend, np.ndarray]:
    """Leave out the bends of sudden head movements (outliers about their link's median).

    The scale is 1.4826 x the median absolute deviation of the bends about their link
    medians, pooled over the links with at least three bends (the exact zeros of the median
    bends themselves left out), floored at ``STEP_SD_FLOOR_MM``.
    """
    residuals = [values - np.median(values, axis=0) for values in bends.values() if len(values) > 2]
    pooled = np.abs(np.concatenate(residuals)) if residuals else np.zeros((0, 6))
    pooled = pooled[np.any(pooled > 0, axis=1)]
    if len(pooled) == 0:
        return bends
    scale = np.maximum(1.4826 * np.median(pooled, axis=0), STEP_SD_FLOOR_MM)
    kept = {}
    for key, values in bends.items():
        distance = np.abs(values - np.median(values, axis=0)) / scale
        calm = values[np.all(distance <= JERK_THRESHOLD_SD, axis=1)]
        if len(calm):
            kept[key] = calm
    return kept


def _bend_variance(bends: dict[_Bend, np.ndarray]) -> np.ndarray:
    """Pooled variance (6,) of the bends about their link means; inf without replicates."""
    residuals = [values - values.mean(axis=0) for values in bends.values() if len(values) > 1]
    dof = sum(len(r) - 1 for r in residuals)
    if dof == 0:
        return np.full(6, np.inf)
    variance = sum((r**2).sum(axis=0) for r in residuals) / dof
    return np.maximum(variance, STEP_SD_FLOOR_MM**2)


def _link_groups(
    image_links: np.ndarray,
    link_errors: np.ndarray,
    bends: dict[_Bend, np.ndarray],
    hub: int,
) -> np.ndarray:
    """Fuse image and temporal links into one offset per group (weighted least squares).

    Unknowns: the offset ``c_g`` (6 parameters, hub-mean frame -> group-mean frame) of every
    group but the hub (``c_hub = 0``). Observations: ``c_g = image link`` with its standard
    error (``link_errors``); for each temporal link ``(f, g, h)`` with ``n`` bends,
    ``c_g - (c_f + c_h) / 2 = mean bend`` with variance ``pooled bend variance / n``, jerks of
    the head left out (:func:`_drop_jerks`). Each
    parameter is solved on its own (the offsets are small, so parameters add).

    Returns
    -------
    ndarray
        World matrices hub-mean -> each group mean, (G, 4, 4).
    """
    n_groups = len(image_links)
    if n_groups < 2:
        return image_links
    free = [g for g in range(n_groups) if g != hub]
    design, observed, weights = [], [], []
    for g in free:
        design.append(np.eye(n_groups)[g])
        observed.append(rigid.rigid_parameters(image_links[g]) * _LEVER)
        weights.append(np.full(6, link_errors[g] ** -2.0))
    bends = _drop_jerks(bends)
    variance = _bend_variance(bends)
    for (f, g, h), values in bends.items():
        row = np.zeros(n_groups)
        row[g] += 1.0
        row[f] -= 0.5
        row[h] -= 0.5
        design.append(row)
        observed.append(values.mean(axis=0))
        weights.append(len(values) / variance)
    design = np.array(design)[:, free]
    observed, root_weights = np.array(observed), np.sqrt(np.array(weights))
    offsets = np.zeros((n_groups, 6))
    for k in range(6):
        weighted = design * root_weights[:, k : k + 1]
        offsets[free, k] = np.linalg.lstsq(weighted, observed[:, k] * root_weights[:, k])[0]
    return np.array([rigid.rigid_matrix(offset / _LEVER) for offset in offsets])


def _apply(
    volumes: np.ndarray,
    vol_affine: np.ndarray,
    matrices: np.ndarray,
    shape: tuple[int, ...],
    affine: np.ndarray,
    coverage: np.ndarray,
) -> np.ndarray:
    """One cubic-spline resampling per volume onto the grid; updates ``coverage``."""
    out = np.empty((*shape, volumes.shape[-1]), dtype=np.float32)
    for t in range(volumes.shape[-1]):
        volume = np.asarray(volumes[..., t], float)
        same_grid = volume.shape == shape and np.allclose(vol_affine, affine)
        if same_grid and np.allclose(matrices[t], np.eye(4)):
            out[..., t] = volume
            continue
        out[..., t], inside = rigid.resample(volume, vol_affine, matrices[t], shape, affine)
        coverage &= inside
    return out


def realign_series(
    series: np.ndarray,
    affine: np.ndarray,
    volume_types: Sequence[str],
    reference: Literal["m0", "control"] = "m0",
    *,
    post_labeling_delays: Sequence[float] | None = None,
    slice_axis: int | None = None,
    m0: np.ndarray | None = None,
    m0_affine: np.ndarray | None = None,
    passes: int = 2,
    between_intensity: Literal["global", "smooth"] = "smooth",
    source: str | Path = "ASL series",
) -> Realignment:
    """Correct head motion of an ASL series without letting ΔM, M0 or BS contrast bias it.

    Parameters
    ----------
    series : ndarray
        ASL series (X, Y, Z, T), volumes on the last axis.
    affine : ndarray
        Voxel-to-world matrix (NIfTI qform/sform), mm.
    volume_types : sequence of str
        ``aslcontext`` volume type of each volume.
    reference : {"m0", "control"}
        Common reference: the mean M0 (``m0scan`` volumes or ``m0``) when there is one, else
        the control mean; ``"control"``: the control mean when there are controls.
    post_labeling_delays : sequence of float, optional
        PLD (or TI) of each volume: controls and labels are realigned within each delay
        (background suppression changes their contrast with the delay). None: one group per
        volume type.
    slice_axis : int, optional
        Voxel axis of the slices of a 2D multi-slice readout: links between groups of
        different contrast then fit one gain per slice. None for 3D readouts.
    m0 : ndarray, optional
        A separate M0 scan (``M0Type: Separate``), 3D or 4D; realigned with the series and
        returned in :attr:`Realignment.m0` on the series grid.
    m0_affine : ndarray, optional
        Voxel-to-world matrix of ``m0`` (default: ``affine``).
    passes : int
        Within-group realignment passes (mean -> realign -> new mean); 2 by default.
    between_intensity : {"smooth", "global"}
        Intensity model of the label -> control link of one delay (see
        :func:`aslmig.asl.rigid.register_rigid`). ``"smooth"`` (a quadratic gain field)
        absorbs the slowly varying part of ΔM, which cuts the ΔM-induced label offset;
        ``"global"`` fits one scale.
    source : str or Path
        File name used in error messages.

    Returns
    -------
    Realignment
        Realigned series, per-volume parameters and matrices, the reference image.

    Raises
    ------
    InputError
        Data that are not 3D/4D, non-finite, or do not match ``volume_types`` or
        ``post_labeling_delays``; a volume that cannot be registered (no overlap left with
        its group's mean).
    ValueError
        An unknown ``reference``, ``passes`` < 1, or both ``m0scan`` volumes and ``m0``.
    """
    if reference not in ("m0", "control"):
        raise ValueError(f"reference={reference!r}; use 'm0' or 'control'")
    if passes < 1:
        raise ValueError(f"passes={passes} must be at least 1")
    series, affine, types = _check_inputs(series, affine, volume_types, source)
    delays = _check_delays(post_labeling_delays, len(types), source)
    m0, m0_affine = _check_m0(m0, m0_affine, affine, source)
    shape = series.shape[:3]
    groups = _groups(series, affine, types, delays, m0, m0_affine)
    try:
        fits = [_realign_group(group, shape, affine, passes) for group in groups]
        composed = _compose(
            groups, fits, affine, reference, between_intensity, slice_axis, len(types)
        )
    except rigid.RegistrationError as err:
        raise InputError(
            source, f"head-motion correction failed: {err}", "check that volume for artifacts"
        ) from err
    reference_kind = _reference_kind(groups, reference) if groups else "none"

    matrices = np.tile(np.eye(4), (len(types), 1, 1))
    m0_matrices = None
    for group, group_matrices in zip(groups, composed, strict=True):
        if group.kind == SEPARATE_M0:
            m0_matrices = group_matrices
        else:
            matrices[list(group.indices)] = group_matrices
    coverage = np.ones(shape, bool)
    realigned = _apply(series, affine, matrices, shape, affine, coverage)
    m0_out = None
    if m0_matrices is not None:
        m0_out = _apply(m0, m0_affine, m0_matrices, shape, affine, coverage)

    if reference_kind == "none":
        reference_image = realigned.mean(axis=-1, dtype=float)
    elif reference_kind == SEPARATE_M0:
        reference_image = m0_out.mean(axis=-1, dtype=float)
    else:
        chosen = [i for i, kind in enumerate(types) if kind == reference_kind]
        reference_image = realigned[..., chosen].mean(-1, dtype=float)
    return Realignment(
        realigned=realigned,
        parameters=_parameters(matrices),
        matrices=matrices,
        reference=reference_image,
        reference_type=reference_kind,
        affine=affine,
        volume_types=types,
        coverage=coverage,
        n_groups=len(groups),
        m0=m0_out,
        m0_parameters=None if m0_matrices is None else _parameters(m0_matrices),
        m0_matrices=m0_matrices,
    )


def _compose(
    groups: list[_Group],
    fits: list[_GroupFit],
    affine: np.ndarray,
    reference: str,
    intensity: str,
    slice_axis: int | None,
    n_volumes: int,
) -> list[np.ndarray]:
    """Per group, the matrices reference -> volume: ``B_volume @ C_group``."""
    if not groups:
        return []
    hub = _hub(groups)
    images, errors = _image_links(groups, fits, affine, hub, intensity, slice_axis)
    to_group = _link_groups(images, errors, _temporal_bends(groups, fits, n_volumes), hub)
    reference_kind = _reference_kind(groups, reference)
    first_reference = next(i for i, g in enumerate(groups) if g.kind == reference_kind)
    from_reference = np.linalg.inv(to_group[first_reference])
    return [fit.matrices @ link @ from_reference for fit, link in zip(fits, to_group, strict=True)]


def _parameters(matrices: np.ndarray) -> np.ndarray:
    return np.array([rigid.rigid_parameters(m) for m in matrices]).reshape(-1, 6)


def framewise_displacement(params: np.ndarray, radius_mm: float = FD_RADIUS_MM) -> np.ndarray:
    """Framewise displacement (Power et al. 2012, NeuroImage 59:2142).

    ``FD_t = |Δtx| + |Δty| + |Δtz| + r (|Δrx| + |Δry| + |Δrz|)``, differences between
    consecutive volumes, rotations in radians turned into arc length on a sphere of radius
    ``r``; the first volume's FD is 0.

    Parameters
    ----------
    params : ndarray
        (T, 6) translations (mm) and rotations (rad).
    radius_mm : float
        Sphere radius, mm (50 mm, Power et al.).

    Returns
    -------
    ndarray
        FD per volume, mm, shape (T,).
    """
    params = np.asarray(params, float)
    if params.ndim != 2 or params.shape[1] != 6:
        raise ValueError(f"params must have shape (T, 6), got {params.shape}")
    if not radius_mm > 0:
        raise ValueError(f"radius_mm={radius_mm} must be positive")
    if params.shape[0] == 0:
        return np.zeros(0)
    steps = np.abs(np.diff(params, axis=0))
    fd = steps[:, :3].sum(axis=1) + radius_mm * steps[:, 3:].sum(axis=1)
    return np.concatenate([[0.0], fd])


def confounds_table(
    params: np.ndarray, volume_types: Sequence[str], radius_mm: float = FD_RADIUS_MM
) -> pd.DataFrame:
    """Motion confounds as a ``desc-confounds_timeseries.tsv``-ready table.

    Parameters
    ----------
    params : ndarray
        (T, 6) rigid parameters (:attr:`Realignment.parameters`).
    volume_types : sequence of str
        ``aslcontext`` volume type of each volume.
    radius_mm : float
        Radius for :func:`framewise_displacement`.

    Returns
    -------
    pandas.DataFrame
        Columns ``trans_x, trans_y, trans_z`` (mm), ``rot_x, rot_y, rot_z`` (rad),
        ``framewise_displacement`` (mm, 0 for the first volume) and ``volume_type``; write it
        with ``to_csv(path, sep=TAB, index=False)`` where ``TAB`` is a tab character.
    """
    import pandas as pd

    params = np.asarray(params, float)
    types = [str(v) for v in volume_types]
    if params.ndim != 2 or params.shape != (len(types), 6):
        raise ValueError(
            f"params shape {params.shape} does not match {len(types)} volume types x 6"
        )
    table = pd.DataFrame(params, columns=list(CONFOUND_COLUMNS[:6]))
    table["framewise_displacement"] = framewise_displacement(params, radius_mm)
    table["volume_type"] = types
    return table
