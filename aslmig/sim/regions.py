"""Region masks on the template grid, for regional effects and regional variability.

The mask provider is a small swappable callable ``name -> bool array`` on the template grid.
:class:`AtlasRegions` builds it from an atlas (an :class:`aslmig.atlas.rois.Atlas`, or any
object with ``rois()`` and ``label_array()``); ``grey_matter`` and ``white_matter`` fall back
to the template's tissue maps when the atlas has no such region.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from aslmig.atlas.extract import roi_mask
from aslmig.errors import InputError, quote
from aslmig.sim.anatomy import TemplateAnatomy, resample_labels

#: A region-mask provider: region name -> boolean mask on the template grid.
RegionMask = Callable[[str], np.ndarray]
TISSUE_REGIONS = ("grey_matter", "white_matter")


def load_sim_atlas(atlas: Any) -> Any:
    """Return an atlas object: ``atlas`` itself, or the built-in atlas of that name.

    Parameters
    ----------
    atlas : str, Path or atlas object
        ``"MigraineASL"`` or an object with ``rois()`` and ``label_array()``.

    Returns
    -------
    object
        The atlas.
    """
    if hasattr(atlas, "rois") and hasattr(atlas, "label_array"):
        return atlas
    try:
        from aslmig.atlas.rois import BUILTIN_ATLASES, load_atlas
    except ImportError:  # pragma: no cover - during development of aslmig.atlas.rois
        raise InputError("--atlas", "the ROI atlases are not available in this version") from None
    if str(atlas) not in BUILTIN_ATLASES or isinstance(atlas, Path):
        raise InputError(
            "--atlas", f"{quote(str(atlas))} is not a built-in atlas", f"use {BUILTIN_ATLASES[0]}"
        )
    try:
        return load_atlas(str(atlas))
    except (OSError, ValueError) as error:
        raise InputError("--atlas", f"cannot load {quote(str(atlas))}: {error}") from None


class AtlasRegions:
    """Region masks of an atlas resampled (nearest neighbour) onto the template grid.

    Parameters
    ----------
    atlas : object
        Atlas with ``rois()`` (objects with ``index``, ``name``, optional ``level``) and
        ``label_array()`` (labels, affine).
    anatomy : TemplateAnatomy
        The template grid of the simulation.
    """

    def __init__(self, atlas: Any, anatomy: TemplateAnatomy) -> None:
        self.atlas = atlas
        self.anatomy = anatomy
        self.rois = {roi.name: roi for roi in atlas.rois()}
        self._labels: np.ndarray | None = None
        self._cache: dict[str, np.ndarray] = {}

    @property
    def names(self) -> list[str]:
        """Known region names: the atlas regions, then the tissue fall-backs."""
        return list(self.rois) + [n for n in TISSUE_REGIONS if n not in self.rois]

    def check(self, name: str, option: str = "--effect") -> None:
        """Raise a one-line :class:`InputError` listing the known names if ``name`` is unknown."""
        if name not in self.names:
            raise InputError(
                option, f"unknown region {quote(name)}", f"known regions: {', '.join(self.names)}"
            )

    def _label_volume(self) -> np.ndarray:
        if self._labels is None:
            labels, affine = self.atlas.label_array()
            labels = np.asarray(labels)
            volumes = labels[..., None] if labels.ndim == 3 else labels
            self._labels = np.stack(
                [
                    resample_labels(
                        volumes[..., k], affine, self.anatomy.shape, self.anatomy.affine
                    )
                    for k in range(volumes.shape[-1])
                ],
                axis=-1,
            )
        return self._labels

    def __call__(self, name: str) -> np.ndarray:
        """Boolean mask of region ``name`` on the template grid."""
        self.check(name)
        if name not in self._cache:
            if name in self.rois:
                labels = self._label_volume()
                self._cache[name] = roi_mask(
                    labels if labels.shape[-1] > 1 else labels[..., 0], self.rois[name]
                )
            else:
                tissue = self.anatomy.gm if name == "grey_matter" else self.anatomy.wm
                self._cache[name] = tissue > 0
        return self._cache[name]
