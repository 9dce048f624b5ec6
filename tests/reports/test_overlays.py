"""Tests of aslmig.reports.overlays (z map mosaic with territory outlines)."""

from __future__ import annotations

import numpy as np
import pytest

from aslmig.reports.overlays import territory_overlay


def test_territory_overlay_draws_outlines():
    z = np.zeros((10, 10, 4))
    z[:5] = 2.0
    labels = np.zeros((10, 10, 4), dtype=int)
    labels[1:5, 1:9] = 3
    labels[5:9, 1:9] = 7
    image = territory_overlay(z, labels, slices=[1, 2], zoom=2, color=(0, 255, 0), annotate=False)
    assert image.dtype == np.uint8 and image.ndim == 3
    green = np.all(image == (0, 255, 0), axis=2)
    assert green.any()
    plain = territory_overlay(
        z, np.zeros_like(labels), slices=[1, 2], zoom=2, color=(0, 255, 0), annotate=False
    )
    assert not np.all(plain == (0, 255, 0), axis=2).any()
    with pytest.raises(ValueError, match="shape"):
        territory_overlay(z, labels[:5])
