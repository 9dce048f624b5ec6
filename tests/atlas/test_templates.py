"""Templates: the embedded MNI152NLin2009aSym bundle, TemplateFlow resolution, fetching.

No test downloads: TemplateFlow homes are fakes in ``tmp_path`` and templateflow's downloader
is replaced wherever it could be reached.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from aslmig.atlas import templates
from aslmig.atlas.templates import (
    BUNDLED_SPACE,
    DEFAULT_SPACE,
    TemplateFetchError,
    TemplateFiles,
    bundle_root,
    fetch_templates,
    resolve_template,
    templateflow_env,
)
from aslmig.cli.templates import templates_command
from aslmig.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
TOOL = ROOT / "tools" / "build_template_bundle.py"
TPL = bundle_root() / f"tpl-{BUNDLED_SPACE}"
IMAGES = {
    "t1w": "desc-brain_T1w",
    "brain_mask": "desc-brain_mask",
    "gm": "label-GM_probseg",
    "wm": "label-WM_probseg",
    "csf": "label-CSF_probseg",
}
CASYM_NAMES = {
    "t1w": "T1w",
    "brain_mask": "desc-brain_mask",
    "gm": "label-GM_probseg",
    "wm": "label-WM_probseg",
    "csf": "label-CSF_probseg",
}
TOLERANCE = 1e-6  # float32 scl_slope (1/2040) times 2040 is 1 + 6e-8
HAS_NILEARN = importlib.util.find_spec("nilearn") is not None


def bundled(role: str) -> Path:
    return TPL / f"tpl-{BUNDLED_SPACE}_res-02_{IMAGES[role]}.nii.gz"


def casym(home: Path, role: str) -> Path:
    folder = home / f"tpl-{DEFAULT_SPACE}"
    return folder / f"tpl-{DEFAULT_SPACE}_res-02_{CASYM_NAMES[role]}.nii.gz"


def data(role: str) -> np.ndarray:
    return nib.load(bundled(role)).get_fdata()


@pytest.fixture
def fake_home(tmp_path: Path) -> Path:
    """A TemplateFlow home holding the five cAsym res-02 files (bundle copies, renamed)."""
    home = tmp_path / "templateflow"
    for role in IMAGES:
        target = casym(home, role)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(bundled(role), target)
    return home


@pytest.fixture
def tf_client(fake_home: Path, monkeypatch):
    """templateflow.client (imported against a non-empty home), with every download disabled."""
    with templateflow_env(fake_home):
        import templateflow.client as client

    def refuse(*args, **kwargs):
        raise AssertionError("a template download was attempted")

    monkeypatch.setattr(client, "_s3_get", refuse)
    monkeypatch.setattr(client, "_datalad_get", refuse)
    return client


@pytest.fixture
def no_templateflow(monkeypatch):
    """Fail if aslmig asks templateflow anything."""

    def refuse(home):
        raise AssertionError(f"templateflow was consulted for {home}")

    monkeypatch.setattr(templates, "templateflow_client", refuse)


# --- the bundle -----------------------------------------------------------------------------


def test_bundle_files_exist_and_share_one_2mm_grid():
    images = {role: nib.load(bundled(role)) for role in IMAGES}
    reference = images["t1w"]
    assert reference.shape == (97, 115, 97)
    for image in images.values():
        assert image.header.get_zooms() == (2.0, 2.0, 2.0)
        assert image.shape == reference.shape
        assert np.array_equal(image.affine, reference.affine)
        assert int(image.header["sform_code"]) == 4 and int(image.header["qform_code"]) == 4
    assert np.allclose(reference.affine[:3, 3], [-96.5, -132.5, -78.5])
    for name in ("LICENSE", "template_description.json"):
        assert (TPL / name).stat().st_size > 0
    for name in ("NOTICE", "dataset_description.json"):
        assert (bundle_root() / name).stat().st_size > 0


def test_bundle_is_small():
    total = sum(path.stat().st_size for path in bundle_root().rglob("*") if path.is_file())
    assert total < 3_000_000


def test_probabilities_are_in_unit_interval_and_sum_to_at_most_one():
    gm, wm, csf = data("gm"), data("wm"), data("csf")
    for tissue in (gm, wm, csf):
        assert tissue.min() >= 0.0
        assert tissue.max() <= 1.0 + TOLERANCE
    total = gm + wm + csf
    assert total.max() <= 1.0 + TOLERANCE
    mask = data("brain_mask") > 0
    assert total[mask].mean() > 0.95  # inside the brain the three tissues fill the voxel


def test_mask_is_binary_solid_and_covers_grey_and_white_matter():
    raw = np.asanyarray(nib.load(bundled("brain_mask")).dataobj)
    assert set(np.unique(raw)) == {0, 1}
    mask = raw > 0
    assert np.array_equal(ndimage.binary_fill_holes(mask), mask)
    assert ndimage.label(mask)[1] == 1
    gm, wm, csf = data("gm"), data("wm"), data("csf")
    assert gm[mask].sum() / gm.sum() > 0.98
    assert wm[mask].sum() / wm.sum() > 0.995
    ventricles = csf > 0.9
    assert ventricles.sum() > 500 and mask[ventricles].all()
    assert 1.5e6 < mask.sum() * 8 < 2.1e6  # mm^3: a brain, not a head


def test_t1w_is_the_skull_stripped_source():
    t1w = data("t1w")
    mask = data("brain_mask") > 0
    assert t1w[~ndimage.binary_dilation(mask, iterations=2)].max() == 0.0


def test_template_description_is_honest():
    description = json.loads((TPL / "template_description.json").read_text())
    assert description["Identifier"] == BUNDLED_SPACE
    assert "Symmetrical" in description["Name"] and "2009a" in description["Name"]
    assert "McConnell" in description["License"]
    assert "https://doi.org/10.1016/j.neuroimage.2010.07.033" in description["ReferencesAndLinks"]
    grid = description["res"]["02"]
    image = nib.load(bundled("gm"))
    assert grid["shape"] == list(image.shape)
    assert np.allclose(grid["origin"], image.affine[:3, 3])
    notes = description["aslmig"]["Files"]
    for role in ("csf", "brain_mask"):
        assert notes[bundled(role).name].startswith("DERIVED")
    assert set(notes) == {bundled(role).name for role in IMAGES}


def test_licence_is_templateflows_icbm_notice():
    spec = importlib.util.find_spec("templateflow")
    skeleton = Path(next(iter(spec.submodule_search_locations))) / "conf/templateflow-skel.zip"
    if not skeleton.is_file():
        pytest.skip("templateflow's skeleton is not available")
    with zipfile.ZipFile(skeleton) as archive:
        published = archive.read(f"tpl-{BUNDLED_SPACE}/LICENSE").decode()
    ours = (TPL / "LICENSE").read_text()

    def normalise(text: str) -> str:
        return " ".join(text.replace("\u2013", "-").split())

    assert normalise(ours) == normalise(published)
    assert normalise(published) in normalise((bundle_root() / "NOTICE").read_text())


# --- resolving ------------------------------------------------------------------------------


def check_bundled(files: TemplateFiles) -> None:
    assert files.origin == "bundled"
    assert files.space == BUNDLED_SPACE
    assert files.resolution_mm == 2
    for role in IMAGES:
        assert getattr(files, role) == bundled(role)
    assert "Fonov" in files.citation and "McConnell" in files.licence


def test_empty_home_falls_back_to_the_bundle(tmp_path, monkeypatch, no_templateflow, caplog):
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tmp_path / "absent"))
    with caplog.at_level(logging.INFO, logger="aslmig"):
        files = resolve_template()
    check_bundled(files)
    assert "bundled MNI152NLin2009aSym" in caplog.text
    assert not (tmp_path / "absent").exists()  # no TemplateFlow stub was created


def test_foreign_home_falls_back_to_the_bundle(tmp_path, monkeypatch, no_templateflow):
    home = tmp_path / "tf"
    other = home / "tpl-MNI152NLin6Asym" / "tpl-MNI152NLin6Asym_res-02_T1w.nii.gz"
    other.parent.mkdir(parents=True)
    shutil.copyfile(bundled("t1w"), other)
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(home))
    check_bundled(resolve_template())


def test_complete_templateflow_home_is_used(fake_home, tf_client, monkeypatch):
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(fake_home))
    files = resolve_template()
    assert files.origin == "templateflow"
    assert files.space == DEFAULT_SPACE
    for role in IMAGES:
        assert getattr(files, role) == casym(fake_home, role)
    assert "TemplateFlow" in files.citation
    explicit = resolve_template(2, DEFAULT_SPACE, home=fake_home)
    assert explicit == files


@pytest.mark.parametrize("damage", ["empty", "missing", "truncated", "s3 error body"])
def test_incomplete_home_falls_back_without_downloading(
    fake_home, tf_client, monkeypatch, no_templateflow, damage
):
    def refuse(*args, **kwargs):
        raise AssertionError("templateflow.api.get was called")

    monkeypatch.setattr(tf_client.TemplateFlowClient, "get", refuse)
    target = casym(fake_home, "csf")
    content = target.read_bytes()
    if damage == "empty":
        target.write_bytes(b"")
    elif damage == "missing":
        target.unlink()
    elif damage == "truncated":
        target.write_bytes(content[: len(content) // 2])
    else:
        target.write_bytes(b"<?xml version='1.0'?><Error><Code>AccessDenied</Code></Error>")
    check_bundled(resolve_template(home=fake_home))
    if damage == "empty":
        assert target.stat().st_size == 0


def test_asym_2009a_preference_selects_the_bundle(fake_home, no_templateflow):
    check_bundled(resolve_template(preferred=BUNDLED_SPACE, home=fake_home))


def test_unsupported_requests_are_input_errors(tmp_path, no_templateflow):
    with pytest.raises(InputError, match="not supported"):
        resolve_template(preferred="MNI152NLin2009cAsymm", home=tmp_path)
    with pytest.raises(InputError, match="1 mm is not bundled"):
        resolve_template(1, home=tmp_path)


def test_to_dict_is_json_ready():
    files = resolve_template(preferred=BUNDLED_SPACE)
    record = json.loads(json.dumps(files.to_dict()))
    assert record["space"] == BUNDLED_SPACE and record["origin"] == "bundled"
    assert record["resolution_mm"] == 2
    assert record["csf"] == str(bundled("csf"))
    assert set(record) == {
        "space", "resolution_mm", "t1w", "brain_mask", "gm", "wm", "csf",
        "origin", "citation", "licence",
    }  # fmt: skip


def test_resolving_never_imports_templateflow_when_files_are_missing(tmp_path):
    home = tmp_path / "absent"
    code = (
        "import sys\n"
        "from aslmig.atlas.templates import resolve_template\n"
        "files = resolve_template()\n"
        "assert files.origin == 'bundled', files\n"
        "assert 'templateflow' not in sys.modules\n"
    )
    env = {**os.environ, "TEMPLATEFLOW_HOME": str(home)}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path)
    assert not home.exists()


# --- fetching -------------------------------------------------------------------------------


@pytest.fixture
def placeholder_home(fake_home: Path) -> Path:
    """The fake home with the five files as TemplateFlow's empty placeholders."""
    for role in IMAGES:
        casym(fake_home, role).write_bytes(b"")
    return fake_home


def test_fetch_offline_fails_clearly(placeholder_home, tf_client, monkeypatch):
    import requests

    def offline(config, filepath):
        raise requests.exceptions.ConnectionError("Failed to resolve 'templateflow.s3'")

    monkeypatch.setattr(tf_client, "_s3_get", offline)
    with pytest.raises(TemplateFetchError) as caught:
        fetch_templates(placeholder_home)
    message = str(caught.value)
    assert "could not download" in message and "ConnectionError" in message
    assert str(placeholder_home) in message and "bundled" in message


def test_fetch_command_reports_offline_in_one_line(
    placeholder_home, tf_client, monkeypatch, capsys
):
    def offline(config, filepath):
        raise OSError("Network is unreachable")

    monkeypatch.setattr(tf_client, "_s3_get", offline)
    assert templates_command(["fetch", "--home", str(placeholder_home)]) == 1
    error = capsys.readouterr().err
    assert error.startswith("aslmig templates: error: could not download")
    assert len(error.strip().splitlines()) == 1


def test_fetch_gets_exactly_the_needed_files(placeholder_home, tf_client, monkeypatch):
    requested = []

    def fake_download(config, filepath):
        requested.append(filepath.name)
        role = next(role for role in IMAGES if filepath == casym(placeholder_home, role))
        filepath.write_bytes(bundled(role).read_bytes())

    monkeypatch.setattr(tf_client, "_s3_get", fake_download)
    paths = fetch_templates(placeholder_home)
    assert sorted(requested) == sorted(casym(placeholder_home, role).name for role in IMAGES)
    assert sorted(paths) == sorted(casym(placeholder_home, role) for role in IMAGES)
    assert resolve_template(home=placeholder_home).origin == "templateflow"


# --- command line ---------------------------------------------------------------------------


def test_list_command_shows_origin(tmp_path, fake_home, tf_client, capsys):
    assert templates_command(["list", "--home", str(tmp_path / "absent")]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"space: {BUNDLED_SPACE} (2 mm), bundled with aslmig")
    assert str(bundled("gm")) in out
    assert templates_command(["list", "--home", str(fake_home), "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["origin"] == "templateflow" and record["templateflow_home"] == str(fake_home)


def test_templates_command_usage_errors(capsys):
    assert templates_command([]) == 2
    assert templates_command(["pull"]) == 2
    assert "invalid choice" in capsys.readouterr().err
    assert templates_command(["fetch", "--resolution", "3"]) == 2
    assert "3 mm is not available" in capsys.readouterr().err


# --- regeneration ---------------------------------------------------------------------------


def load_tool():
    spec = importlib.util.spec_from_file_location("build_template_bundle", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.skipif(not HAS_NILEARN, reason="nilearn (a build-time tool only) is not installed")
def test_build_tool_regenerates_the_bundle(tmp_path):
    tool = load_tool()
    source = tool.nilearn_data_dir()
    recorded = json.loads((TPL / "template_description.json").read_text())
    for name, entry in recorded["aslmig"]["Source"]["Files"].items():
        if not (source / name).is_file() or tool.sha256(source / name) != entry["sha256"]:
            pytest.skip(f"installed nilearn ships a different {name}")
    files = tool.bundle_files(source)
    committed = {
        path.relative_to(bundle_root()).as_posix()
        for path in bundle_root().rglob("*")
        if path.is_file()
    }
    assert set(files) == committed
    for relative, content in files.items():
        path = bundle_root() / relative
        if relative.endswith("template_description.json"):
            fresh_json, stored_json = json.loads(content), json.loads(path.read_bytes())
            for record in (fresh_json, stored_json):
                del record["aslmig"]["Source"]["Version"]  # nilearn's version, not its data
            assert fresh_json == stored_json
            continue
        if not relative.endswith(".nii.gz"):
            assert content == path.read_bytes(), relative
            continue
        fresh = nib.Nifti1Image.from_bytes(gzip.decompress(content))
        stored = nib.load(path)
        assert np.array_equal(np.asanyarray(fresh.dataobj), np.asanyarray(stored.dataobj))
        assert np.array_equal(fresh.affine, stored.affine)
        assert fresh.dataobj.slope == stored.dataobj.slope


def test_bundle_names_follow_templateflow():
    entities = r"(desc|label)-[A-Za-z]+_[a-zA-Z0-9]+"
    pattern = re.compile(rf"tpl-{BUNDLED_SPACE}_res-02_{entities}\.nii\.gz")
    names = sorted(path.name for path in TPL.glob("*.nii.gz"))
    assert len(names) == 5 and all(pattern.fullmatch(name) for name in names)
