"""Install Debian packages a test needs (as root, with apt-get), or fail saying what is missing."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Sequence

import pytest


def ensure_commands(commands: Sequence[str], packages: Sequence[str]) -> None:
    """Make sure ``commands`` are on PATH, installing ``packages`` with apt-get when needed.

    ``apt-get update`` is run only when the first install fails. Fails the test (never skips:
    a skipped check would pass unnoticed) when the commands are still missing.
    """
    missing = [name for name in commands if shutil.which(name) is None]
    if not missing:
        return
    if shutil.which("apt-get") is None or os.geteuid() != 0:
        pytest.fail(f"{', '.join(missing)} missing; install {' '.join(packages)} (apt-get)")
    command = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    started = time.monotonic()
    result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        subprocess.run(["apt-get", "update"], capture_output=True, text=True, env=environment)
        result = subprocess.run(command, capture_output=True, text=True, env=environment)
    if result.returncode != 0:
        pytest.fail(
            f"cannot install {' '.join(packages)} with apt-get (exit {result.returncode}): "
            f"{result.stderr.strip()[-500:]}"
        )
    print(f"apt-get install {' '.join(packages)}: {time.monotonic() - started:.1f} s")
    still = [name for name in commands if shutil.which(name) is None]
    if still:
        pytest.fail(f"still missing after installing {' '.join(packages)}: {', '.join(still)}")
