"""The container image, built from the Dockerfile as is and run as Apptainer would run it.

The image is built with podman (``podman_image.py`` says how on a machine without Docker)
with ``TEMPLATES=bundled``: this machine cannot reach TemplateFlow. The participant level then
runs on a simulated one-participant dataset as an arbitrary non-root uid, with a read-only
root file system, no network, no capabilities and the dataset mounted read-only: the
conditions Apptainer/Singularity imposes on a cluster. Every test here fails (rather than
skips) when the image cannot be built or run. Outside CI, a machine where we are not root, or
without apt to install podman, skips them; in CI (``CI`` set) that fails too, so that a
broken image can never pass unnoticed.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import time
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
import pytest
from podman_image import (
    FIGURES,
    PodmanError,
    build_image,
    ca_bundle,
    containers_conf,
    dockerfile_base_image,
    image_exists,
    install_tools,
    make_base_image,
    missing_tools,
    run_args,
)

from aslmig import __version__

pytestmark = pytest.mark.slow

IMAGE = "localhost/aslmig:ci-test"
SIZE_LIMIT_BYTES = 1.5e9
UID = 23456  # an arbitrary uid with no /etc/passwd entry in the image
LABEL = "hc01"
LOCAL_CAS = Path("/usr/local/share/ca-certificates")
PEM_BODY_LINE = re.compile(r"^[A-Za-z0-9+/]{64}$")


def _cannot_test(reason: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"the container image cannot be tested in CI: {reason}")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def podman(tmp_path_factory) -> dict[str, str]:
    """Install and configure podman; return the environment its commands run with."""
    if os.geteuid() != 0:
        _cannot_test("podman is configured and run as root here; not running as root")
    if missing_tools() and shutil.which("apt-get") is None:
        _cannot_test(f"{', '.join(missing_tools())} missing and no apt-get to install them")
    started = time.monotonic()
    try:
        install_tools()
    except PodmanError as error:
        pytest.fail(str(error))
    FIGURES.append(f"podman, runc, debootstrap ready in {time.monotonic() - started:.1f} s")
    folder = tmp_path_factory.mktemp("podman")
    return {**os.environ, "CONTAINERS_CONF": str(containers_conf(folder))}


@pytest.fixture(scope="session")
def image(podman, tmp_path_factory) -> str:
    """Build the image from the repository's Dockerfile (making its base image if needed)."""
    base = dockerfile_base_image()
    scratch = tmp_path_factory.mktemp("image")
    try:
        if not image_exists(base, podman):
            seconds = make_base_image(base, scratch, podman)
            FIGURES.append(f"base image {base} made with debootstrap in {seconds:.0f} s")
        seconds = build_image(IMAGE, podman, scratch / "build.log")
    except PodmanError as error:
        pytest.fail(str(error))
    FIGURES.append(f"podman build {IMAGE}: {seconds:.0f} s")
    listing = subprocess.run(["podman", "image", "ls", IMAGE], capture_output=True, text=True,
                             env=podman)  # fmt: skip
    FIGURES.extend(listing.stdout.strip().splitlines())
    return IMAGE


def _inspect(image: str, environment: dict[str, str]) -> dict:
    result = subprocess.run(
        ["podman", "image", "inspect", image], capture_output=True, text=True, env=environment
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[0]


def _podman_run(command: list[str], environment: dict[str, str], timeout: float = 1800):
    return subprocess.run(command, capture_output=True, text=True, env=environment,
                          timeout=timeout)  # fmt: skip


def _owned_folder(path: Path) -> Path:
    """A folder the container's uid owns, as a user's own folders on a cluster."""
    path.mkdir(parents=True)
    os.chown(path, UID, UID)
    return path


def test_image_size_labels_user_and_entrypoint(image, podman):
    info = _inspect(image, podman)
    FIGURES.append(f"image size: {info['Size'] / 1e9:.2f} GB (target <= 1.5 GB)")
    assert info["Size"] <= SIZE_LIMIT_BYTES
    config = info["Config"]
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == __version__
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.source"].startswith("https://")
    assert labels["org.opencontainers.image.base.name"] == dockerfile_base_image()
    assert re.fullmatch(r"[0-9a-f]{40}|unknown", labels["org.opencontainers.image.revision"])
    assert config["User"] == "aslmig"
    assert config["Entrypoint"] == ["aslmig"]
    environment = dict(item.split("=", 1) for item in config["Env"])
    assert environment["TEMPLATEFLOW_HOME"] == "/opt/templateflow"
    assert environment["ASLMIG_CONTAINER_TAG"] == f"aslmig:{__version__}"
    assert not any("secrets" in value for value in environment.values())


def test_default_user_is_not_root_and_version_matches(image, podman):
    result = _podman_run(["podman", "run", "--rm", "--network", "none", "--read-only",
                          "--entrypoint", "sh", image, "-c", "id -u; aslmig --version"],
                         podman)  # fmt: skip
    assert result.returncode == 0, result.stderr
    uid, version = result.stdout.split("\n")[:2]
    assert uid == "1000"
    assert __version__ in version


def _certificates(bundle: Path) -> set[str]:
    """First base64 line of every certificate in a PEM bundle (enough to recognise one)."""
    lines = bundle.read_text().splitlines()
    return {
        lines[index + 1]
        for index, line in enumerate(lines[:-1])
        if line == "-----BEGIN CERTIFICATE-----" and PEM_BODY_LINE.match(lines[index + 1])
    }


def test_build_time_ca_certificates_are_not_baked_into_the_image(image, podman):
    """The machine's own CAs (a proxy's), passed in the ``extra_ca`` secret, leave no trace.

    They are the certificates added under ``/usr/local/share/ca-certificates`` (Debian's place
    for local CAs, merged into the bundle given as the secret); no file of the image may hold
    one.
    """
    local = set()
    for path in sorted(LOCAL_CAS.glob("**/*.crt")):
        local |= _certificates(path)
    if not local:
        pytest.skip(f"no local CA under {LOCAL_CAS}: no proxy CA to look for")
    assert local <= _certificates(ca_bundle()), f"{ca_bundle()} lacks the local CAs"
    patterns = [argument for line in sorted(local) for argument in ("-e", line)]
    search = _podman_run(
        ["podman", "run", "--rm", "--network", "none", "--user", "0", "--entrypoint", "grep",
         image, "-rlF", "--exclude-dir=proc", "--exclude-dir=sys", "--exclude-dir=dev",
         *patterns, "/"],
        podman,
    )  # fmt: skip
    assert search.returncode == 1, f"CA found in: {search.stdout}{search.stderr}"
    FIGURES.append(f"{len(local)} local CA(s) passed as the build secret: not in the image")


def test_bundled_templates_are_used_when_built_without_templateflow(image, podman):
    result = _podman_run(["podman", "run", "--rm", "--network", "none", "--read-only",
                          "--user", f"{UID}:{UID}", image, "templates", "list", "--json"],
                         podman)  # fmt: skip
    assert result.returncode == 0, result.stderr
    selection = json.loads(result.stdout)
    assert selection["origin"] == "bundled"
    assert selection["space"] == "MNI152NLin2009aSym"
    assert selection["templateflow_home"] == "/opt/templateflow"


@pytest.fixture(scope="session")
def participant_run(image, podman, tmp_path_factory):
    """Simulate one participant with the image, then run its participant level read-only."""
    root = tmp_path_factory.mktemp("container-run")
    simulated = _owned_folder(root / "simulated")
    command = run_args(image, UID, [(simulated, "/sim", "rw")])
    simulate = _podman_run([*command, "simulate", "/sim/bids", "--n", "HC=1",
                            "--phases", "interictal"], podman)  # fmt: skip
    assert simulate.returncode == 0, simulate.stderr
    output, work = _owned_folder(root / "out"), _owned_folder(root / "work")
    mounts = [(simulated / "bids", "/data", "ro"), (output, "/out", "rw"), (work, "/work", "rw")]
    started = time.monotonic()
    result = _podman_run([*run_args(image, UID, mounts), "/data", "/out", "participant",
                          "-w", "/work", "--nprocs", "2"], podman)  # fmt: skip
    FIGURES.append(f"participant level in the container: {time.monotonic() - started:.0f} s")
    return result, simulated / "bids", output


def test_participant_level_runs_read_only_non_root_offline(participant_run):
    result, bids, output = participant_run
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    perf = output / f"sub-{LABEL}" / "ses-1" / "perf"
    stem = f"sub-{LABEL}_ses-1"
    for name in (
        f"{stem}_cbf.nii.gz",
        f"{stem}_cbf.json",
        f"{stem}_space-MNI152NLin2009aSym_cbf.nii.gz",
        f"{stem}_space-MNI152NLin2009aSym_atlas-MigraineASL_cbf.tsv",
        f"{stem}_desc-qc_cbf.json",
    ):
        assert (perf / name).is_file(), name
    assert (output / f"sub-{LABEL}.html").is_file()
    assert (perf / f"{stem}_cbf.nii.gz").stat().st_uid == UID

    description = json.loads((output / "dataset_description.json").read_text())
    assert description["GeneratedBy"][0]["Container"] == {
        "Type": "docker",
        "Tag": f"aslmig:{__version__}",
    }
    sidecar = json.loads((perf / f"{stem}_cbf.json").read_text())
    assert sidecar["Sources"], "the CBF sidecar names its sources"

    # the same check as the demo's end-to-end test: native CBF against the simulator's truth
    # on the same grid, mean over the brain mask (measured in the container: see the note)
    truth_file = bids / "derivatives" / "ground-truth" / f"sub-{LABEL}" / "ses-1" / "perf"
    truth = nb.load(truth_file / f"{stem}_cbf.nii.gz").get_fdata()
    cbf = nb.load(perf / f"{stem}_cbf.nii.gz").get_fdata()
    mask = nb.load(perf / f"{stem}_desc-brain_mask.nii.gz").get_fdata() > 0
    inside = mask & (truth > 5) & np.isfinite(cbf)
    ratio = cbf[inside].mean() / truth[inside].mean()
    FIGURES.append(f"container CBF / truth over the brain mask: {ratio:.4f}")
    assert ratio == pytest.approx(1.0, abs=0.02)

    table = pd.read_csv(perf / f"{stem}_space-MNI152NLin2009aSym_atlas-MigraineASL_cbf.tsv",
                        sep="\t")  # fmt: skip
    regions = set(table["roi"])
    assert {"pons", "hypothalamus_L", "occipital_cortex_L", "grey_matter"} <= regions
    assert table.loc[table["roi"] == "grey_matter", "mean"].item() > 20


def test_bad_input_in_the_container_exits_2_with_one_line(image, podman, tmp_path):
    output = _owned_folder(tmp_path / "out")
    mounts = [(output, "/out", "rw")]
    result = _podman_run([*run_args(image, UID, mounts), "/data", "/out", "participant"],
                         podman)  # fmt: skip
    assert result.returncode == 2
    message = result.stderr.strip()
    assert len(message.splitlines()) == 1 and "/data" in message
    assert not any(output.iterdir())
