"""Phantom images shared by the tests of aslmig.anat (written once per session)."""

from __future__ import annotations

import numpy as np
import pytest
from anat_phantom import Phantom, rigid, write_phantom

#: The subject is the template phantom moved by this map (rotation, anisotropic scaling,
#: translation), then given a bias field and noise.
SUBJECT_MAP = rigid((3.0, -4.0, 6.0), (2.0, -3.0, 1.0)) @ np.diag([1.06, 0.95, 1.03, 1.0])
SUBJECT_BIAS = 0.5
SUBJECT_NOISE = 15.0


@pytest.fixture(scope="session")
def template(tmp_path_factory) -> Phantom:
    """The unperturbed phantom, with skull."""
    return write_phantom(tmp_path_factory.mktemp("template"), "tpl")


@pytest.fixture(scope="session")
def stripped_template(tmp_path_factory) -> Phantom:
    """The unperturbed phantom, skull-stripped (like the bundled template)."""
    return write_phantom(tmp_path_factory.mktemp("template_brain"), "tplbrain", skull=False)


@pytest.fixture(scope="session")
def subject(tmp_path_factory) -> Phantom:
    """The phantom moved, biased and noisy: a 'subject' with skull and known tissues."""
    return write_phantom(
        tmp_path_factory.mktemp("subject"),
        "sub",
        transform=SUBJECT_MAP,
        bias=SUBJECT_BIAS,
        noise=SUBJECT_NOISE,
        seed=2,
    )
