"""GM/WM/CSF probability maps with Atropos (Avants et al. 2011, Neuroinformatics 9:381).

A three-class Gaussian mixture with a Markov random field prior is fitted inside the brain
mask, initialised by k-means, or by template tissue priors already warped to the T1w grid
(then also used as spatial priors with weight ``prior_weight``). The posterior probability
maps are returned and serve as partial-volume estimates (as in fMRIPrep/sMRIPrep). Classes
are named by their mean T1w intensity: CSF < GM < WM.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from aslmig.anat._images import (
    ants_module,
    ants_scratch,
    from_array,
    read_image,
    require_same_grid,
    write_image,
)
from aslmig.errors import InputError

#: Tissue names, in increasing T1w intensity.
TISSUES = ("csf", "gm", "wm")
#: Labels of the hard segmentation ``dseg.nii.gz`` (the sMRIPrep convention).
DSEG_LABELS = {"csf": 1, "gm": 2, "wm": 3}
#: MRF smoothing factor and neighbourhood radius (voxels), as antsAtroposN4.sh.
MRF_SMOOTHING = 0.1
MRF_RADIUS = 1
#: EM iterations (the convergence threshold is 0: all iterations run).
ITERATIONS = 5
#: Weight of template priors against the data (antsCorticalThickness.sh uses 0.25).
PRIOR_WEIGHT = 0.25


def segment_tissues(
    t1w_brain: str | Path,
    mask: str | Path,
    priors: Mapping[str, str | Path] | None,
    out_dir: str | Path,
    *,
    prior_weight: float = PRIOR_WEIGHT,
    mrf_smoothing: float = MRF_SMOOTHING,
    iterations: int = ITERATIONS,
) -> dict[str, Path]:
    """Segment a bias-corrected T1w into CSF, GM and WM probability maps.

    Parameters
    ----------
    t1w_brain : str or Path
        Bias-corrected T1w (skull-stripped or not: only voxels inside ``mask`` count).
    mask : str or Path
        Brain mask on the same grid.
    priors : mapping of str to str or Path, or None
        Template tissue probability maps warped to the T1w grid, keyed ``gm``, ``wm`` and
        ``csf`` (any case); None for k-means initialisation.
    out_dir : str or Path
        Folder for ``label-{CSF,GM,WM}_probseg.nii.gz`` and ``dseg.nii.gz``
        (1 CSF, 2 GM, 3 WM; 0 outside the mask).
    prior_weight : float
        Weight of the priors in [0, 1] (0: initialisation only).
    mrf_smoothing : float
        MRF smoothing factor.
    iterations : int
        EM iterations.

    Returns
    -------
    dict of str to Path
        ``{"gm": ..., "wm": ..., "csf": ...}`` probability maps (float32, 0 outside mask).
    """
    if not 0.0 <= prior_weight <= 1.0:
        raise ValueError(f"prior_weight must be in [0, 1], not {prior_weight}")
    image = read_image(t1w_brain, "T1w image").clone("float")
    mask_image = read_image(mask, "brain mask")
    require_same_grid(image, mask_image, mask, t1w_brain)
    inside = mask_image.numpy() > 0
    mask_image = from_array(inside.astype(np.float32), like=image)
    initial = "Kmeans[3]" if priors is None else _prior_images(priors, image, t1w_brain)
    with ants_scratch():
        result = ants_module().atropos(
            a=image,
            x=mask_image,
            i=initial,
            m=f"[{mrf_smoothing},{'x'.join([str(MRF_RADIUS)] * 3)}]",
            c=f"[{int(iterations)},0]",
            priorweight=prior_weight,
        )
        posteriors = [p.numpy() * inside for p in result["probabilityimages"]]
    by_tissue = _name_by_intensity(posteriors, image.numpy(), inside, t1w_brain)
    return _write_maps(by_tissue, inside, image, Path(out_dir))


def _prior_images(priors: Mapping[str, str | Path], image: Any, t1w: str | Path) -> list[Any]:
    """Read the priors in the order CSF, GM, WM, on the T1w grid."""
    named = {str(key).lower(): value for key, value in priors.items()}
    missing = sorted(set(TISSUES) - set(named))
    if missing:
        raise ValueError(f"tissue priors missing for {missing}; give gm, wm and csf")
    images = []
    for tissue in TISSUES:
        prior = read_image(named[tissue], f"{tissue.upper()} prior").clone("float")
        require_same_grid(image, prior, named[tissue], t1w)
        images.append(from_array(np.clip(prior.numpy(), 0.0, 1.0), like=image))
    return images


def _name_by_intensity(
    posteriors: list[np.ndarray], intensity: np.ndarray, inside: np.ndarray, source: str | Path
) -> dict[str, np.ndarray]:
    """Order the classes by posterior-weighted mean intensity: CSF < GM < WM."""
    if len(posteriors) != len(TISSUES):
        raise RuntimeError(f"Atropos returned {len(posteriors)} classes, not 3")
    means = []
    for posterior in posteriors:
        weight = posterior[inside]
        if weight.sum() <= 0:
            raise InputError(
                source,
                "a tissue class is empty inside the brain mask",
                "check that the mask covers the brain of this T1w",
            )
        means.append(float((weight * intensity[inside]).sum() / weight.sum()))
    order = np.argsort(means)
    return {tissue: posteriors[index] for tissue, index in zip(TISSUES, order, strict=True)}


def _write_maps(
    maps: dict[str, np.ndarray], inside: np.ndarray, like: Any, out_dir: Path
) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for tissue in ("gm", "wm", "csf"):
        probability = np.clip(maps[tissue], 0.0, 1.0).astype(np.float32)
        paths[tissue] = write_image(
            from_array(probability, like=like),
            out_dir / f"label-{tissue.upper()}_probseg.nii.gz",
            "float",
        )
    stack = np.stack([maps[tissue] for tissue in TISSUES])
    labels = np.array([DSEG_LABELS[tissue] for tissue in TISSUES], dtype=np.uint8)
    dseg = np.where(inside, labels[np.argmax(stack, axis=0)], 0).astype(np.uint8)
    write_image(from_array(dseg, like=like), out_dir / "dseg.nii.gz", "unsigned char")
    return paths
