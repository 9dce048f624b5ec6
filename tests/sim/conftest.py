"""Fixtures of the simulation tests: the phantom template and its fake atlas."""

from __future__ import annotations

import pytest
from sim_phantom import fake_atlas, phantom_anatomy


@pytest.fixture(scope="session")
def anatomy():
    return phantom_anatomy()


@pytest.fixture(scope="session")
def atlas(anatomy):
    return fake_atlas(anatomy)
