"""Shared fixtures."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from builders import DatasetBuilder, fill_example

os.environ.setdefault("NIPYPE_NO_ET", "1")


@pytest.fixture
def example(tmp_path: Path):
    """Return a function that gives a filled copy of a named bids-example."""
    return lambda name: fill_example(name, tmp_path)


@pytest.fixture
def dataset(tmp_path: Path) -> DatasetBuilder:
    """A builder writing into a fresh ``bids`` folder."""
    return DatasetBuilder(tmp_path / "bids")
