"""End to end through the CLI on datasets made by the independent simulator asldro.

One ASL-BIDS dataset holds five participants, each an asldro configuration (see
tests/data/asldro/README.md); ``aslmig ... participant`` processes them in one call:

- ``motion``: PCASL with a rigid head displacement applied by asldro, with a T1w (a
  T1-weighted image made from the truth segmentation);
- ``motionnot1w``: the same series without a T1w (ASL registered straight to the template);
- ``multidelay``: six PLDs, asldro's default tissue T1s (GM ATT 0.8 s, WM 1.2 s), with a T1w;
- ``multidelaynot1w``: the same series without a T1w (one tissue T1 everywhere);
- ``pcasl`` / ``pasl``: the white-paper-exact recipes (CBF 60 / 20 exactly), with a T1w;
- ``occipital``: the PCASL recipe with -20 % CBF in the left occipital grey matter, with a T1w;
- ``slab``: ``pcasl`` cut to an axial slab above z = -14 mm (no pons), with a T1w.

The asldro grid is ICBM 2009a at 3 mm, so the truth can be compared in template space.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import nibabel as nb
import numpy as np
import pandas as pd
import pytest
from asldro_adapter import asldro_to_bids
from builders import crash_details
from scipy import ndimage

from aslmig.atlas.rois import shipped_migraine_atlas
from aslmig.atlas.templates import resolve_template
from aslmig.cli.run import main

ASLDRO = Path(__file__).parents[1] / "data" / "asldro"
PARTICIPANTS = {
    "motion": ("pcasl_motion", True),
    "motionnot1w": ("pcasl_motion", False),
    "multidelay": ("multi_delay", True),
    "multidelaynot1w": ("multi_delay", False),
    "pcasl": ("pcasl_exact", True),
    "pasl": ("pasl_exact", True),
    "occipital": ("pcasl_occipital", True),
    "slab": ("pcasl_exact", True),
}
SLAB_BOTTOM_MM = -14.0  # the slab keeps the slices whose centre is at or above this height
GM, WM, CSF = 1, 2, 3
# T1-weighted contrast. asldro's own structural image of the exactness recipe has nearly equal
# GM and WM T1 (GM brighter, from proton density), which is not T1w contrast.
T1W_INTENSITY = {GM: 600.0, WM: 900.0, CSF: 150.0}


def synthetic_t1w(dseg_file: Path, out_file: Path) -> Path:
    """A T1w-like image on the truth grid, from the truth segmentation (slightly blurred)."""
    dseg = nb.load(dseg_file)
    labels = np.asanyarray(dseg.dataobj)
    image = np.zeros(labels.shape)
    for label, intensity in T1W_INTENSITY.items():
        image[labels == label] = intensity
    image = ndimage.gaussian_filter(image, 0.5)
    nb.Nifti1Image(image.astype(np.float32), dseg.affine).to_filename(out_file)
    return out_file


def crop_to_slab(source: Path, target: Path, bottom_mm: float) -> Path:
    """Copy an asldro dataset keeping the axial slices at or above ``bottom_mm`` (world z)."""
    target.mkdir(parents=True)
    for path in source.iterdir():
        if not path.name.endswith(".nii.gz"):
            shutil.copy(path, target / path.name)
            continue
        image = nb.load(path)
        heights = image.affine[2, 3] + image.affine[2, 2] * np.arange(image.shape[2])
        first = int(np.flatnonzero(heights >= bottom_mm)[0])
        affine = image.affine.copy()
        affine[:3, 3] = image.affine[:3, :3] @ [0, 0, first] + image.affine[:3, 3]
        data = np.asanyarray(image.dataobj)[:, :, first:]
        nb.Nifti1Image(data, affine, image.header).to_filename(target / path.name)
    return target


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def processed(tmp_path_factory):
    """Build the dataset, run the participant level once, return (bids, output) folders."""
    root = tmp_path_factory.mktemp("asldro")
    bids = root / "bids"
    t1w = synthetic_t1w(ASLDRO / "pcasl_exact" / "truth_dseg.nii.gz", root / "t1w.nii.gz")
    for subject, (source, with_t1w) in PARTICIPANTS.items():
        folder = ASLDRO / source
        if subject == "slab":
            folder = crop_to_slab(folder, root / "slab", SLAB_BOTTOM_MM)
        asldro_to_bids(folder, bids, subject=subject, t1w=t1w if with_t1w else None)
    output = root / "out"
    # asldro simulates no macrovascular signal and its multi-delay series has one pair per PLD:
    # the automatic rule keeps the arterial component off there (no repeats, so no noise
    # estimate but the arterial fit's own residual, which a partial-volume misfit passes: with
    # the component, 6.5 % of brain voxels kept it and native GM ATT read 0.829 s, truth 0.80)
    status = main(
        [str(bids), str(output), "participant", "-w", str(root / "work"), "--nprocs", "2"]
    )
    assert status == 0, crash_details(output)
    return bids, output


def perf(output: Path, subject: str, suffix: str, space: str | None = None) -> Path:
    space_part = f"_space-{space}" if space else ""
    return output / f"sub-{subject}" / "perf" / f"sub-{subject}{space_part}_{suffix}"


def truth(subject: str, name: str) -> nb.Nifti1Image:
    return nb.load(ASLDRO / PARTICIPANTS[subject][0] / f"truth_{name}.nii.gz")


def deep(mask: np.ndarray) -> np.ndarray:
    """Voxels one voxel away from any other tissue (no partial volume after resampling)."""
    return ndimage.binary_erosion(mask, iterations=1)


def template_truth(subject: str, label: int) -> tuple[np.ndarray, str]:
    """The truth label mask resampled (nearest) onto the template grid, deep voxels only."""
    template = resolve_template()
    grid = nb.load(template.t1w)
    dseg = truth(subject, "dseg")
    voxel_map = np.linalg.inv(dseg.affine) @ grid.affine
    labels = ndimage.affine_transform(
        np.asanyarray(dseg.dataobj),
        voxel_map[:3, :3],
        voxel_map[:3, 3],
        output_shape=grid.shape[:3],
        order=0,
    )
    return deep(deep(labels == label)), template.space


def test_outputs_and_sidecars(processed):
    _, output = processed
    space = resolve_template().space
    for subject in PARTICIPANTS:
        for name in (
            "cbf.nii.gz",
            "cbf.json",
            "desc-brain_mask.nii.gz",
            "desc-qc_cbf.json",
            "desc-confounds_timeseries.tsv",
        ):
            assert perf(output, subject, name).is_file(), name
        assert perf(output, subject, "cbf.nii.gz", space).is_file()
        assert (output / f"sub-{subject}.html").is_file()
        sidecar = json.loads(perf(output, subject, "cbf.json").read_text())
        assert sidecar["Units"] == "mL/100 g/min"
        assert sidecar["Sources"][0] == f"bids:raw:sub-{subject}/perf/sub-{subject}_asl.nii.gz"
        assert sidecar["Constants"]["partition_coefficient"]["value"] == 0.9
    assert perf(output, "motion", "from-asl_to-T1w_mode-image_xfm.mat").is_file()
    assert list((output / "logs").glob("config_participant_*.toml"))


@pytest.mark.parametrize(("subject", "tolerance"), [("motion", 0.05), ("motionnot1w", 0.10)])
def test_template_space_grey_matter_cbf(processed, subject, tolerance):
    _, output = processed
    grey, space = template_truth(subject, GM)
    cbf = nb.load(perf(output, subject, "cbf.nii.gz", space)).get_fdata()
    assert grey.sum() > 500
    assert cbf[grey].mean() == pytest.approx(60.0, rel=tolerance)


def test_brain_mask_against_truth(processed):
    _, output = processed
    for subject in ("motion", "motionnot1w"):
        mask = nb.load(perf(output, subject, "desc-brain_mask.nii.gz")).get_fdata() > 0
        brain = np.isin(np.asanyarray(truth(subject, "dseg").dataobj), (GM, WM))
        dice = 2 * (mask & brain).sum() / (mask.sum() + brain.sum())
        assert dice >= 0.9


@pytest.mark.parametrize("subject", ["pcasl", "pasl"])
def test_native_white_paper_cbf_is_exact(processed, subject):
    """Issue 3's CLI check: the exactness recipe gives 60.00 / 20.00 (±0.05) in pure voxels."""
    _, output = processed
    cbf = nb.load(perf(output, subject, "cbf.nii.gz")).get_fdata()
    labels = np.asanyarray(truth(subject, "dseg").dataobj)
    assert cbf[deep(labels == GM)].mean() == pytest.approx(60.0, abs=0.05)
    assert cbf[deep(labels == WM)].mean() == pytest.approx(20.0, abs=0.05)


def test_multi_delay_att(processed):
    _, output = processed
    grey, space = template_truth("multidelay", GM)
    att = nb.load(perf(output, "multidelay", "att.nii.gz", space)).get_fdata()
    assert att[grey].mean() == pytest.approx(0.8, abs=0.1)
    white, _ = template_truth("multidelay", WM)
    cbf = nb.load(perf(output, "multidelay", "cbf.nii.gz", space)).get_fdata()
    assert cbf[grey].mean() == pytest.approx(60.0, rel=0.05)
    # white matter: tissue T1 from the T1w's tissue maps (GM 1.3 s, WM 0.832 s)
    assert att[white].mean() == pytest.approx(1.2, abs=0.1)
    assert cbf[white].mean() == pytest.approx(20.0, rel=0.10)
    # issue 3's tolerances through the CLI, native space, voxels away from tissue borders
    native_att = nb.load(perf(output, "multidelay", "att.nii.gz")).get_fdata()
    native_cbf = nb.load(perf(output, "multidelay", "cbf.nii.gz")).get_fdata()
    labels = np.asanyarray(truth("multidelay", "dseg").dataobj)
    grey, white = deep(labels == GM), deep(labels == WM)
    assert native_cbf[grey].mean() == pytest.approx(60.0, abs=0.5)
    assert native_att[grey].mean() == pytest.approx(0.8, abs=0.02)
    assert native_cbf[white].mean() == pytest.approx(20.0, abs=0.5)
    assert native_att[white].mean() == pytest.approx(1.2, abs=0.05)


def test_multi_delay_without_a_t1w(processed):
    """Issue 13 item 7: without a T1w grey matter is exact (it once read 60.9, from a T1 map
    built from template priors); white matter carries the documented bias of fitting one
    tissue T1 (the grey matter's 1.33 s) to asldro's WM T1 of 0.832 s."""
    _, output = processed
    sidecar = json.loads(perf(output, "multidelaynot1w", "cbf.json").read_text())
    assert sidecar["tissue_t1"].startswith("1.33 s everywhere")
    labels = np.asanyarray(truth("multidelaynot1w", "dseg").dataobj)
    grey, white = deep(labels == GM), deep(labels == WM)
    cbf = nb.load(perf(output, "multidelaynot1w", "cbf.nii.gz")).get_fdata()
    att = nb.load(perf(output, "multidelaynot1w", "att.nii.gz")).get_fdata()
    assert cbf[grey].mean() == pytest.approx(60.0, abs=0.5)  # measured 60.00
    assert att[grey].mean() == pytest.approx(0.8, abs=0.02)  # measured 0.800 s
    # one T1 of 1.33 s in WM (T1 0.832 s): measured 12.47 mL/100 g/min and 0.964 s; the
    # library fit of the truth WM voxels gives the same (docs/methods.md, "Tissue T1")
    assert cbf[white].mean() == pytest.approx(12.5, abs=0.5)
    assert att[white].mean() == pytest.approx(0.96, abs=0.05)


# --- regional tables (issue 5) --------------------------------------------------------------

GREY_ROIS = (
    "dorsal_rostral_pons_L", "dorsal_rostral_pons_R", "hypothalamus_L", "hypothalamus_R",
    "thalamus_L", "thalamus_R", "occipital_cortex_L", "occipital_cortex_R", "calcarine_L",
    "calcarine_R", "pons", "grey_matter",
)  # fmt: skip
# The JHU territories put parts of the occipital cortex in the MCA (occipital branch) and VB
# territories too (29 % and 3 % of occipital_cortex_L voxels on the bundled grid).
CHANGED_BY_THE_OCCIPITAL_DROP = {
    "occipital_cortex_L", "calcarine_L", "territory_PCA_L", "territory_MCA_L", "territory_VB_L",
    "grey_matter",
}  # fmt: skip


def regions(output: Path, subject: str, native: bool = False, parameter: str = "cbf"):
    space = None if native else resolve_template().space
    path = perf(output, subject, f"atlas-MigraineASL_{parameter}.tsv", space)
    return pd.read_csv(path, sep="\t", na_values="n/a", keep_default_na=False).set_index("roi")


def test_regional_tables_for_every_run(processed):
    _, output = processed
    for subject in PARTICIPANTS:
        for native in (False, True):
            table = regions(output, subject, native)
            assert len(table) == 21
            sidecar = json.loads(
                perf(output, subject, "atlas-MigraineASL_cbf.json",
                     None if native else resolve_template().space).read_text()
            )  # fmt: skip
            assert sidecar["Atlas"]["Name"] == "MigraineASL"
            assert len(sidecar["Atlas"]["SHA256"]) == 64
            assert sidecar["Sources"][0].startswith("bids:raw:")
    att = regions(output, "multidelay", parameter="att")
    assert att.loc["grey_matter", "gm_restricted_mean"] == pytest.approx(0.8, abs=0.05)
    assert regions(output, "multidelay", True, "att").loc["white_matter", "mean"] == pytest.approx(
        1.2, abs=0.05
    )


@pytest.mark.parametrize("subject", ["pcasl", "pasl"])
def test_grey_matter_rois_on_asldro_truth(processed, subject):
    """GM-restricted CBF is 60 +/- 0.5 in every GM region (native space), coverage 1."""
    _, output = processed
    native, template = regions(output, subject, True), regions(output, subject)
    assert (native["status"] == "ok").all() and (template["coverage"] >= 0.99).all()
    for roi in GREY_ROIS:
        assert native.loc[roi, "gm_restricted_mean"] == pytest.approx(60.0, abs=0.5), roi
        # template space: the map is interpolated from 3 mm to 2 mm, so GM-restricted voxels
        # at tissue borders mix in white matter (measured -2.5 % to -7 %)
        assert template.loc[roi, "gm_restricted_mean"] == pytest.approx(60.0, rel=0.08), roi
    assert native.loc["white_matter", "mean"] == pytest.approx(20.0, abs=0.5)


def test_left_occipital_drop_is_found_and_nothing_else_moves(processed):
    """asldro truth with -20 % CBF in the left occipital GM (tools/asldro)."""
    _, output = processed
    truth_ai = 2 * (48.0 - 60.0) / (48.0 + 60.0)
    native, reference = regions(output, "occipital", True), regions(output, "pcasl", True)
    assert native.loc["occipital_cortex_L", "gm_restricted_mean"] == pytest.approx(48.0, rel=0.05)
    assert native.loc["occipital_cortex_R", "gm_restricted_mean"] == pytest.approx(60.0, abs=0.5)
    left, right = native.loc["occipital_cortex_L"], native.loc["occipital_cortex_R"]
    grey_ai = 2 * (left.gm_restricted_mean - right.gm_restricted_mean)
    grey_ai /= left.gm_restricted_mean + right.gm_restricted_mean
    assert grey_ai == pytest.approx(truth_ai, rel=0.05)
    # The reported index compares plain means, so it is that of the truth only for a pure-GM
    # region. Voxels not GM-dominated (share 1 - g of the region) dilute it: if they carry at
    # most the right side's 60 and no asymmetry of their own, |index| >= |truth| * bound below
    # (measured: 7 % of the region, index 0.947 of the truth; the bound is 0.92).
    assert left.asymmetry_index == pytest.approx(
        2 * (left["mean"] - right["mean"]) / (left["mean"] + right["mean"]), rel=1e-9
    )
    grey_share = min(left.n_grey / left.n_voxels, right.n_grey / right.n_voxels)
    dilution = grey_share * 108.0 / (grey_share * 108.0 + 2 * 60.0 * (1 - grey_share))
    assert truth_ai * 1.05 <= left.asymmetry_index <= truth_ai * dilution
    # the two participants are registered separately, so region boundaries (and the partial-
    # volume mix of plain means) move slightly; the grey-matter-restricted values do not
    for roi in set(native.index) - CHANGED_BY_THE_OCCIPITAL_DROP - {"white_matter"}:
        before = reference.loc[roi, "gm_restricted_mean"]
        assert native.loc[roi, "gm_restricted_mean"] == pytest.approx(before, abs=0.5), roi
    assert native.loc["white_matter", "mean"] == pytest.approx(
        reference.loc["white_matter", "mean"], rel=0.02
    )
    template = regions(output, "occipital")
    ratio = (
        template.loc["occipital_cortex_L", "gm_restricted_mean"]
        / template.loc["occipital_cortex_R", "gm_restricted_mean"]
    )
    assert ratio == pytest.approx(0.8, rel=0.05)
    assert template.loc["occipital_cortex_L", "asymmetry_index"] == pytest.approx(truth_ai, rel=0.1)


def test_coverage_follows_the_field_of_view(processed):
    _, output = processed
    template, native = regions(output, "slab"), regions(output, "slab", True)
    for table in (template, native):
        assert table.loc["pons", "status"].startswith("n/a: coverage")
        assert np.isnan(table.loc["pons", "mean"])
        assert table.loc["thalamus_L", "coverage"] == pytest.approx(1.0, abs=0.01)
    assert native.loc["thalamus_L", "gm_restricted_mean"] == pytest.approx(60.0, abs=0.5)
    assert native.loc["calcarine_R", "gm_restricted_mean"] == pytest.approx(60.0, abs=0.5)
    # expected: the fraction of the region's template voxels inside the slab (ASL voxels are
    # 3 mm, so the slab's lower edge is 1.5 mm below the centre of its lowest slice)
    atlas = shipped_migraine_atlas()
    affine = atlas.label_array()[1]
    for roi in ("occipital_cortex_L", "grey_matter"):
        voxels = atlas.mask(roi)
        heights = affine[2, 3] + affine[2, 2] * np.arange(voxels.shape[2])
        inside = heights >= SLAB_BOTTOM_MM - 1.5
        expected = voxels[:, :, inside].sum() / voxels.sum()
        assert template.loc[roi, "coverage"] == pytest.approx(expected, abs=0.05), roi


def test_anatomical_derivatives_give_the_same_template_cbf(processed, tmp_path):
    """``--derivatives anat=``: an fMRIPrep-like dataset made of our own anatomy of ``pcasl``.

    The second run must not run our anatomy (no N4, extraction, SyN, Atropos in its work
    directory) and must give the template-space CBF of the first: GM mean within 0.2 %
    (measured 0.003 %) and 99 % of brain voxels within 1.5 mL/100 g/min (measured 0.80;
    the rest is the ASL -> T1w rigid registration, whose target is rebuilt from the given
    mask on the working grid: native CBF is identical).
    """
    from fmriprep_like import GENERATED_BY, from_aslmig_run

    bids, output = processed
    template = resolve_template()
    dataset = from_aslmig_run(
        output.parent / "work", output, "pcasl", template, tmp_path / "fmriprep"
    )
    reused, work = tmp_path / "out", tmp_path / "work"
    status = main([
        str(bids), str(reused), "participant", "--participant-label", "pcasl", "-w", str(work),
        "--derivatives", f"anat={dataset}",
    ])  # fmt: skip
    assert status == 0, crash_details(reused)
    ran = {path.name for path in work.rglob("*") if path.is_dir()}
    assert "derivative_anatomy" in ran
    assert ran.isdisjoint({"prepare_t1w", "brain_extraction", "segment_tissues", "asl_to_template"})
    grey, space = template_truth("pcasl", GM)
    own = nb.load(perf(output, "pcasl", "cbf.nii.gz", space)).get_fdata()
    given = nb.load(perf(reused, "pcasl", "cbf.nii.gz", space)).get_fdata()
    assert given[grey].mean() == pytest.approx(own[grey].mean(), rel=0.002)
    brain = (own > 0) & (given > 0)
    assert brain.sum() > 0.99 * (own > 0).sum()
    assert np.percentile(np.abs(given - own)[brain], 99) < 1.5
    mask_sidecar = json.loads(
        (reused / "sub-pcasl" / "anat" / "sub-pcasl_desc-brain_mask.json").read_text()
    )
    assert mask_sidecar["Sources"][1] == "bids:anat:sub-pcasl/anat/sub-pcasl_desc-brain_mask.nii.gz"
    qc = json.loads(perf(reused, "pcasl", "desc-qc_cbf.json").read_text())
    given_mask = nb.load(dataset / "sub-pcasl" / "anat" / "sub-pcasl_desc-brain_mask.nii.gz")
    volume_ml = (given_mask.get_fdata() > 0).sum() * np.prod(given_mask.header.get_zooms()) / 1000
    assert qc["t1w_brain_volume_ml"] == pytest.approx(volume_ml, abs=0.1)  # checked: given mask
    report = (reused / "sub-pcasl.html").read_text()
    assert f"{GENERATED_BY['Name']} {GENERATED_BY['Version']} derivatives in {dataset}" in report
