"""``docker/requirements.lock`` pins exactly one version of everything and satisfies pyproject."""

from __future__ import annotations

import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPOSITORY = Path(__file__).resolve().parents[2]
LOCK = REPOSITORY / "docker" / "requirements.lock"
IMAGE_PYTHON = {"python_version": "3.11", "python_full_version": "3.11.2",
                "sys_platform": "linux", "platform_system": "Linux"}  # fmt: skip


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in LOCK.read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{line}: not an exact pin"
        name = canonicalize_name(requirement.name)
        assert name not in pins, f"{name} pinned twice"
        pins[name] = specifier.version
    return pins


def _pyproject() -> dict:
    return tomllib.loads((REPOSITORY / "pyproject.toml").read_text())


def _check(requirements: list[str], pins: dict[str, str]) -> list[str]:
    problems = []
    for text in requirements:
        requirement = Requirement(text)
        if requirement.marker and not requirement.marker.evaluate(IMAGE_PYTHON):
            continue
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            problems.append(f"{requirement.name} is not in the lock")
        elif not requirement.specifier.contains(pinned, prereleases=True):
            problems.append(f"{requirement.name}=={pinned} does not satisfy {text}")
    return problems


def test_lock_pins_every_dependency_within_pyproject_ranges():
    pins = _pins()
    assert _check(_pyproject()["project"]["dependencies"], pins) == []


def test_lock_pins_the_build_backend_within_build_system_requires():
    pins = _pins()
    assert _check(_pyproject()["build-system"]["requires"], pins) == []
    assert {"pip", "setuptools", "wheel"} <= set(pins)


def test_lock_checks_catch_ranges_missing_pins_and_versions_out_of_range(tmp_path, monkeypatch):
    broken = tmp_path / "requirements.lock"
    broken.write_text("numpy>=1.24\n")
    monkeypatch.setattr(sys.modules[__name__], "LOCK", broken)
    with pytest.raises(AssertionError, match="not an exact pin"):
        _pins()
    assert _check(["numpy>=1.24", "nibabel>=5"], {"numpy": "1.20.0"}) == [
        "numpy==1.20.0 does not satisfy numpy>=1.24",
        "nibabel is not in the lock",
    ]
    assert _check(["tomli>=2.0; python_version<'3.11'"], {}) == []
