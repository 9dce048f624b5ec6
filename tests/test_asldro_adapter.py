"""Structure of the ASL-BIDS datasets written by tests/asldro_adapter.py from tests/data/asldro."""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest
from asldro_adapter import asldro_to_bids

DATA = Path(__file__).parent / "data" / "asldro"
DATASETS = [
    "pcasl_exact",
    "pasl_exact",
    "multi_delay",
    "pcasl_noisy/snr10",
    "pcasl_noisy/snr100",
    "pcasl_motion",
]


def _context(path):
    lines = path.read_text().splitlines()
    assert lines[0] == "volume_type"
    return lines[1:]


@pytest.mark.parametrize("name", DATASETS)
def test_source_dataset_is_complete(name):
    src = DATA / name
    for f in (
        "asl.nii.gz",
        "aslcontext.tsv",
        "m0scan.nii.gz",
        "params.json",
        "truth_dseg.nii.gz",
        "truth_dseg.tsv",
        "truth_cbf.nii.gz",
        "truth_att.nii.gz",
        "truth_t1.nii.gz",
    ):
        assert (src / f).is_file(), f
    asl = nib.load(src / "asl.nii.gz")
    assert asl.ndim == 4 and asl.shape[3] == len(_context(src / "aslcontext.tsv"))
    for f in ("m0scan", "truth_dseg", "truth_cbf", "truth_att", "truth_t1"):
        img = nib.load(src / f"{f}.nii.gz")
        assert img.shape == asl.shape[:3], f
        assert np.allclose(img.affine, asl.affine), f
    params = json.loads((src / "params.json").read_text())
    assert params["generator"]["version"] == "2.2.0"
    assert list(params["acquisition"]["acq_matrix"]) == list(asl.shape[:3])


@pytest.mark.parametrize("m0_type", ["Separate", "Included"])
@pytest.mark.parametrize("name", DATASETS)
def test_adapter_structure(tmp_path, name, m0_type):
    src = DATA / name
    out = asldro_to_bids(src, tmp_path, subject="01", m0_type=m0_type)
    params = out["params"]
    perf = tmp_path / "sub-01" / "perf"
    assert out["asl"] == perf / "sub-01_asl.nii.gz"
    assert (perf / "sub-01_asl.json").is_file()
    assert (perf / "sub-01_aslcontext.tsv").is_file()

    desc = json.loads((tmp_path / "dataset_description.json").read_text())
    assert desc["DatasetType"] == "raw" and desc["BIDSVersion"] >= "1.5.0"
    assert "sub-01" in (tmp_path / "participants.tsv").read_text().split()

    ctx = _context(perf / "sub-01_aslcontext.tsv")
    img = nib.load(perf / "sub-01_asl.nii.gz")
    assert img.shape[3] == len(ctx)
    side = json.loads((perf / "sub-01_asl.json").read_text())
    for key in (
        "ArterialSpinLabelingType",
        "PostLabelingDelay",
        "M0Type",
        "BackgroundSuppression",
        "MagneticFieldStrength",
        "MRAcquisitionType",
        "RepetitionTimePreparation",
        "EchoTime",
        "TotalAcquiredPairs",
    ):
        assert key in side, key
    assert "LabelingType" not in side and "M0" not in side  # pre-1.5 names are gone
    assert side["M0Type"] == m0_type
    assert side["BackgroundSuppression"] is False
    assert side["MRAcquisitionType"] == "3D"
    assert side["MagneticFieldStrength"] == 3.0
    assert side["EchoTime"] == 0.01
    assert side["TotalAcquiredPairs"] == ctx.count("control") == ctx.count("label")
    assert side["ArterialSpinLabelingType"] == params["physics"]["label_type"].upper()

    pld = side["PostLabelingDelay"]
    if isinstance(pld, list):
        assert len(pld) == len(ctx)
    if isinstance(side["RepetitionTimePreparation"], list):
        assert len(side["RepetitionTimePreparation"]) == len(ctx)

    if side["ArterialSpinLabelingType"] == "PASL":
        assert side["BolusCutOffFlag"] is True
        assert side["BolusCutOffDelayTime"] == 0.8
        assert side["BolusCutOffTechnique"] == "QUIPSSII"
        assert "LabelingDuration" not in side
        assert side["PostLabelingDelay"] in (1.8, [0.0] + [1.8] * (len(ctx) - 1))
        assert side["LabelingEfficiency"] == 0.98
    else:
        assert side["LabelingDuration"] == 1.8
        assert side["LabelingEfficiency"] == 0.85

    m0 = nib.load(src / "m0scan.nii.gz").get_fdata()
    if m0_type == "Separate":
        assert "m0scan" not in ctx
        assert side["RepetitionTimePreparation"] == 5.0
        m0_side = json.loads((perf / "sub-01_m0scan.json").read_text())
        assert m0_side["IntendedFor"] == "perf/sub-01_asl.nii.gz"
        assert (tmp_path / "sub-01" / m0_side["IntendedFor"]).is_file()
        assert m0_side["RepetitionTimePreparation"] == 20.0
        assert np.array_equal(nib.load(perf / "sub-01_m0scan.nii.gz").get_fdata(), m0)
    else:
        assert ctx[0] == "m0scan" and ctx.count("m0scan") == 1
        assert not (perf / "sub-01_m0scan.nii.gz").exists()
        assert side["RepetitionTimePreparation"][0] == 20.0
        assert side["PostLabelingDelay"][0] == 0.0
        assert np.array_equal(img.dataobj[..., 0], m0)


def test_multi_delay_plds():
    out_plds = json.loads((DATA / "multi_delay" / "params.json").read_text())
    plds = out_plds["acquisition"]["post_labeling_delay_per_volume_s"]
    assert sorted(set(plds)) == [0.25, 0.5, 1.0, 1.5, 2.0, 2.5]
    rows = (DATA / "multi_delay" / "plds.tsv").read_text().splitlines()[1:]
    assert [float(r.split("\t")[1]) for r in rows] == plds


def test_session_and_t1w(tmp_path):
    out = asldro_to_bids(
        DATA / "pcasl_exact", tmp_path, subject="sub-02", session="ses-ictal", t1w=True
    )
    perf = tmp_path / "sub-02" / "ses-ictal" / "perf"
    assert out["asl"] == perf / "sub-02_ses-ictal_asl.nii.gz"
    m0_side = json.loads((perf / "sub-02_ses-ictal_m0scan.json").read_text())
    assert m0_side["IntendedFor"] == "ses-ictal/perf/sub-02_ses-ictal_asl.nii.gz"
    assert (tmp_path / "sub-02" / m0_side["IntendedFor"]).is_file()
    t1 = tmp_path / "sub-02" / "ses-ictal" / "anat" / "sub-02_ses-ictal_T1w.nii.gz"
    assert t1.is_file() and out["t1w"] == t1
    # a second subject goes into the same dataset
    asldro_to_bids(
        DATA / "pasl_exact", tmp_path, subject="03", t1w=DATA / "pcasl_exact" / "t1w.nii.gz"
    )
    assert (tmp_path / "participants.tsv").read_text().split() == [
        "participant_id",
        "sub-02",
        "sub-03",
    ]
    with pytest.raises(FileNotFoundError):
        asldro_to_bids(DATA / "pasl_exact", tmp_path / "x", t1w=True)
    with pytest.raises(ValueError):
        asldro_to_bids(DATA / "pasl_exact", tmp_path / "y", m0_type="Estimate")


def test_exact_white_paper_numbers():
    """The README's headline numbers, recomputed from the committed files."""
    src = DATA / "pcasl_exact"
    asl = nib.load(src / "asl.nii.gz").get_fdata()
    ctx = _context(src / "aslcontext.tsv")
    m0 = nib.load(src / "m0scan.nii.gz").get_fdata()
    seg = np.asarray(nib.load(src / "truth_dseg.nii.gz").dataobj)
    c = np.array(ctx)
    dm = asl[..., c == "control"].mean(-1) - asl[..., c == "label"].mean(-1)
    t1b, lam, alpha, tau, pld = 1.65, 0.9, 0.85, 1.8, 1.8
    with np.errstate(divide="ignore", invalid="ignore"):
        cbf = (
            6000 * lam * dm * np.exp(pld / t1b) / (2 * alpha * t1b * m0 * (1 - np.exp(-tau / t1b)))
        )
    assert np.allclose(cbf[seg == 1], 60.0, atol=0.05)
    assert np.allclose(cbf[seg == 2], 20.0, atol=0.05)
