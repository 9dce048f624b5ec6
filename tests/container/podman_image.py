"""Build and run the aslmig image with Debian's podman, on a machine with no Docker engine.

What a fresh Debian 12 machine needs (all done here, as root):

- ``podman``, ``runc`` and ``debootstrap`` from apt;
- a ``containers.conf`` with ``default_ulimits`` the machine allows and the ``runc``
  runtime, passed through ``CONTAINERS_CONF`` so the machine's own files stay untouched
  (the kernel here refuses an ``nproc`` limit above ``kernel.pid_max`` in runc's container
  init, so ``nproc`` is capped there);
- the Dockerfile's base image, made locally: ``debootstrap --variant=minbase`` from the mirror
  apt already uses, trimmed like Debian's ``-slim`` images (no docs, man pages, locales or
  apt lists) and ``podman import``-ed under the exact name of the Dockerfile's ``FROM``, so
  the Dockerfile itself stays standard.
"""

from __future__ import annotations

import os
import re
import resource
import shutil
import subprocess
import time
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]
DOCKERFILE = REPOSITORY / "Dockerfile"
TOOLS = ("podman", "runc", "debootstrap")  # each command is its Debian package
DEFAULT_MIRROR = "http://deb.debian.org/debian"
SECURITY_MIRROR = "http://deb.debian.org/debian-security"
APT_SOURCES = Path("/etc/apt/sources.list.d/debian.sources")
BUILD_TIMEOUT_S = 40 * 60
#: Figures the tests measured (printed by ``conftest.py`` at the end of the run).
FIGURES: list[str] = []

# What Debian's -slim images leave out (their dpkg path-exclude list, simplified).
SLIM_DPKG_EXCLUDES = """\
path-exclude /usr/share/doc/*
path-include /usr/share/doc/*/copyright
path-exclude /usr/share/man/*
path-exclude /usr/share/info/*
path-exclude /usr/share/locale/*
path-include /usr/share/locale/locale.alias
path-exclude /usr/share/lintian/*
"""
SLIM_REMOVED = (
    "usr/share/doc",
    "usr/share/man",
    "usr/share/info",
    "usr/share/locale",
    "usr/share/lintian",
    "var/cache/apt",
    "var/lib/apt/lists",
)


class PodmanError(RuntimeError):
    """A podman, apt or debootstrap step failed; the message holds the end of its output."""


def run(command: list[str], timeout: float = 600, **options) -> subprocess.CompletedProcess:
    """Run a command, capture its output, raise :class:`PodmanError` on failure."""
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, **options)
    if result.returncode != 0:
        output = (result.stdout + result.stderr).strip()
        raise PodmanError(f"{' '.join(command[:4])} ... exit {result.returncode}: {output[-4000:]}")
    return result


def missing_tools() -> list[str]:
    """Return the Debian packages whose commands are missing."""
    return [name for name in TOOLS if shutil.which(name) is None]


def install_tools() -> None:
    """Install podman, runc and debootstrap with apt-get (``apt-get update`` if needed)."""
    packages = missing_tools()
    if not packages:
        return
    environment = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    command = ["apt-get", "install", "-y", "-q", *packages]
    try:
        run(command, env=environment)
    except PodmanError:
        run(["apt-get", "update", "-q"], env=environment)
        run(command, env=environment)


def containers_conf(folder: Path) -> Path:
    """Write a ``containers.conf`` (limits this machine allows, runc) and return its path."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    pid_max = int(Path("/proc/sys/kernel/pid_max").read_text())
    nproc = pid_max if nproc == resource.RLIM_INFINITY else min(nproc, pid_max)
    if nofile == resource.RLIM_INFINITY:
        nofile = 1 << 20
    path = folder / "containers.conf"
    path.write_text(
        "[containers]\n"
        f'default_ulimits = ["nofile={nofile}:{nofile}", "nproc={nproc}:{nproc}"]\n'
        "[engine]\n"
        'runtime = "runc"\n'
    )
    return path


def dockerfile_base_image(dockerfile: Path = DOCKERFILE) -> str:
    """Return the default of the Dockerfile's ``ARG DEBIAN_IMAGE`` (its pinned ``FROM``)."""
    match = re.search(r"^ARG DEBIAN_IMAGE=(\S+)$", dockerfile.read_text(), re.MULTILINE)
    if match is None:
        raise PodmanError(f"{dockerfile}: no 'ARG DEBIAN_IMAGE=...' line")
    return match.group(1)


def debian_suite(image: str) -> str:
    """Return the Debian suite named by a tag such as ``debian:bookworm-20250520-slim``."""
    match = re.search(r":([a-z]+)-\d{8}", image)
    if match is None:
        raise PodmanError(f"base image {image}: expected a dated tag such as bookworm-20250520")
    return match.group(1)


def apt_mirror(sources: Path = APT_SOURCES) -> str:
    """Return the Debian mirror apt uses here (the first ``URIs:``), else deb.debian.org."""
    if sources.is_file():
        match = re.search(r"^URIs:\s*(\S+)", sources.read_text(), re.MULTILINE)
        if match:
            return match.group(1)
    return DEFAULT_MIRROR


def image_exists(name: str, environment: dict[str, str]) -> bool:
    """Return True when podman's store holds ``name``."""
    result = subprocess.run(["podman", "image", "exists", name], env=environment)
    return result.returncode == 0


def slim_down(rootfs: Path, suite: str, mirror: str) -> None:
    """Trim a debootstrap tree like Debian's -slim images and give it their apt sources."""
    for relative in SLIM_REMOVED:
        shutil.rmtree(rootfs / relative, ignore_errors=True)
    (rootfs / "var/lib/apt/lists/partial").mkdir(parents=True)
    (rootfs / "var/cache/apt/archives/partial").mkdir(parents=True)
    (rootfs / "etc/dpkg/dpkg.cfg.d/docker").write_text(SLIM_DPKG_EXCLUDES)
    (rootfs / "etc/apt/sources.list").unlink(missing_ok=True)
    (rootfs / "etc/apt/sources.list.d/debian.sources").write_text(
        f"Types: deb\nURIs: {mirror}\nSuites: {suite} {suite}-updates\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n\n"
        f"Types: deb\nURIs: {SECURITY_MIRROR}\nSuites: {suite}-security\nComponents: main\n"
        "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    )


def make_base_image(name: str, scratch: Path, environment: dict[str, str]) -> float:
    """Debootstrap a minbase Debian tree and import it as ``name``; return seconds taken."""
    started = time.monotonic()
    suite, mirror = debian_suite(name), apt_mirror()
    rootfs = scratch / "rootfs"
    run(["debootstrap", "--variant=minbase", suite, str(rootfs), mirror], timeout=1200)
    slim_down(rootfs, suite, mirror)
    archive = scratch / "rootfs.tar"
    run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(archive), "."])
    run(["podman", "import", str(archive), name], env=environment)
    shutil.rmtree(rootfs)
    archive.unlink()
    return time.monotonic() - started


def ca_bundle() -> Path:
    """Return this machine's CA bundle (with any proxy CA), passed as the ``extra_ca`` secret."""
    return Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")


def git_revision() -> str:
    """Return the commit being built, or ``'unknown'`` outside a git checkout."""
    result = subprocess.run(
        ["git", "-C", str(REPOSITORY), "rev-parse", "HEAD"], capture_output=True, text=True
    )
    return result.stdout.strip() if result.returncode == 0 else "unknown"


def build_image(tag: str, environment: dict[str, str], log: Path) -> float:
    """Build the repository's Dockerfile as is (bundled templates); return seconds taken."""
    started = time.monotonic()
    command = [
        "podman", "build", "--pull=never",
        "--secret", f"id=extra_ca,src={ca_bundle()}",
        "--build-arg", "TEMPLATES=bundled",
        "--build-arg", f"REVISION={git_revision()}",
        "-t", tag, "-f", str(DOCKERFILE), str(REPOSITORY),
    ]  # fmt: skip
    with log.open("w") as stream:
        result = subprocess.run(
            command, stdout=stream, stderr=subprocess.STDOUT, env=environment,
            timeout=BUILD_TIMEOUT_S,
        )  # fmt: skip
    if result.returncode != 0:
        raise PodmanError(f"podman build exit {result.returncode}: {log.read_text()[-4000:]}")
    subprocess.run(["podman", "image", "prune", "-f"], capture_output=True, env=environment)
    return time.monotonic() - started


def run_args(image: str, uid: int, mounts: list[tuple[Path, str, str]]) -> list[str]:
    """Return ``podman run`` arguments with the conditions Apptainer imposes.

    Parameters
    ----------
    image : str
        Image to run.
    uid : int
        User and group id (not in the image's ``/etc/passwd``).
    mounts : list of (host path, container path, ``'ro'`` or ``'rw'``)
        Bind mounts.

    Returns
    -------
    list of str
        ``podman run`` up to and including the image (the command's arguments follow).
    """
    command = [
        "podman", "run", "--rm", "--user", f"{uid}:{uid}", "--read-only",
        "--network", "none", "--cap-drop", "all", "--security-opt", "no-new-privileges",
    ]  # fmt: skip
    for host, inside, mode in mounts:
        command += ["-v", f"{host}:{inside}:{mode}"]
    return [*command, image]
