"""aslmig.cbf against the independent ASL digital reference object (asldro 2.2.0).

The data in ``tests/data/asldro/`` (see its README.md and each ``params.json``) were made by
asldro from a known ground truth: GM CBF 60 / ATT 0.8 s, WM CBF 20 / ATT 1.2 s (mL/100 g/min,
s), lambda 0.9, T1 blood 1.65 s, 3 T. asldro simulates the full Buxton model (tissue T1 after
arrival). The ``*_exact`` sets use tissue T1 = 1/(1/T1b - f/lambda), which makes the
white-paper equation exact; ``multi_delay`` uses asldro's default tissue T1 (GM 1.33 s,
WM 0.83 s), which the full-model fit must be told.

Tolerances are the acceptance criteria and are not to be loosened: white paper 60.00/20.00
+/- 0.05; multi-delay CBF +/- 0.5, ATT +/- 0.02 s (GM) / 0.05 s (WM); noisy mean within 2 %.
"""

import json
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from aslmig.cbf import (
    calibrate_m0,
    deltam_to_cbf,
    fit_multi_delay,
    kinetic_signal,
    quantify_single_delay,
    resolve_constants,
    split_asl_series,
)
from aslmig.cbf.single_delay import whitepaper_scale

DATA = Path(__file__).resolve().parents[1] / "data" / "asldro"
GM, WM = 1, 2

pytestmark = pytest.mark.skipif(
    not (DATA / "pcasl_exact" / "params.json").exists(), reason="asldro test data not present"
)


def _load(name):
    """Read one dataset of the neutral asldro form (asl, aslcontext, m0scan, truth, params)."""
    folder = DATA / name
    params = json.loads((folder / "params.json").read_text())
    context = (folder / "aslcontext.tsv").read_text().split()[1:]
    plds_file = folder / "plds.tsv"
    if plds_file.exists():
        plds = [float(row.split()[1]) for row in plds_file.read_text().splitlines()[1:]]
    else:
        plds = (
            params["physics"].get("post_labeling_delay_s")
            or params["physics"]["inversion_time_TI_s"]
        )
    image = {
        key: np.asarray(nib.load(folder / f"{key}.nii.gz").dataobj, dtype=float)
        for key in ("asl", "m0scan", "truth_cbf", "truth_att", "truth_t1")
    }
    seg = np.asarray(nib.load(folder / "truth_dseg.nii.gz").dataobj).astype(int)
    return params, context, plds, image, seg


def _quantify_inputs(name):
    params, context, plds, image, seg = _load(name)
    physics = params["physics"]
    constants = resolve_constants(
        physics["label_type"],
        physics["magnetic_field_strength_T"],
        sidecar_labeling_efficiency=physics["labeling_efficiency"],
        overrides={"t1_blood": physics["t1_arterial_blood_s"]},
    )
    split = split_asl_series(image["asl"], context, plds=plds)
    m0_volumes = image["m0scan"] if image["m0scan"].ndim == 4 else image["m0scan"][..., None]
    m0, _ = calibrate_m0(
        "Separate",
        m0_volumes=m0_volumes,
        repetition_time=params["acquisition"]["repetition_time_m0scan_s"],
        t1_tissue=constants.t1_tissue,
    )
    if constants.labeling_type == "PASL":
        timing = {"bolus_cutoff_delay_time": physics["bolus_cut_off_delay_time_TI1_s"]}
    else:
        timing = {"labeling_duration": physics["labeling_duration_s"]}
    return params, constants, split, m0, timing, image, seg


@pytest.mark.parametrize("name", ["pcasl_exact", "pasl_exact"])
def test_white_paper_quantification_is_exact(name):
    _, constants, split, m0, timing, image, seg = _quantify_inputs(name)
    cbf, provenance = quantify_single_delay(
        split.deltam, m0, split.deltam_plds, constants, mask=seg > 0, **timing
    )
    assert np.mean(cbf[seg == GM]) == pytest.approx(60.0, abs=0.05)
    assert np.mean(cbf[seg == WM]) == pytest.approx(20.0, abs=0.05)
    # voxel-wise too, in pure-tissue voxels
    np.testing.assert_allclose(cbf[seg == GM], image["truth_cbf"][seg == GM], atol=0.05)
    assert provenance["constants"]["labeling_efficiency"]["source"] == "sidecar: LabelingEfficiency"


def _tissue_t1(params, seg):
    """Tissue T1 map from the segmentation and the T1 asldro used per tissue (params.json)."""
    tissues = params["ground_truth"]["tissues"]
    return np.where(seg == GM, tissues["GM"]["t1_s"], tissues["WM"]["t1_s"])


def test_multi_delay_full_model_fit_recovers_cbf_and_att():
    params, constants, split, m0, timing, _, seg = _quantify_inputs("multi_delay")
    mask = (seg == GM) | (seg == WM)
    fit = fit_multi_delay(
        split.deltam,
        m0,
        split.deltam_plds,
        constants,
        mask=mask,
        model="full",
        t1_tissue=_tissue_t1(params, seg),
        **timing,
    )
    assert np.mean(fit.cbf[seg == GM]) == pytest.approx(60.0, abs=0.5)
    assert np.mean(fit.att[seg == GM]) == pytest.approx(0.80, abs=0.02)
    assert np.mean(fit.cbf[seg == WM]) == pytest.approx(20.0, abs=0.5)
    assert np.mean(fit.att[seg == WM]) == pytest.approx(1.20, abs=0.05)
    assert fit.converged[mask].all()
    assert np.min(fit.r2[mask]) > 0.999999


def test_multi_delay_single_tissue_t1_biases_white_matter():
    """The physics finding: one tissue T1 (1.3 s) for all voxels does not fit asldro's WM."""
    _, constants, split, m0, timing, _, seg = _quantify_inputs("multi_delay")
    fit = fit_multi_delay(split.deltam, m0, split.deltam_plds, constants, mask=seg == WM, **timing)
    assert abs(np.mean(fit.cbf[seg == WM]) - 20.0) > 5.0


def test_asldro_signal_matches_our_full_kinetic_model_at_every_delay():
    """White-paper CBF per delay of asldro's default-T1 data = our forward full model."""
    params, constants, split, m0, timing, _, seg = _quantify_inputs("multi_delay")
    tissues = params["ground_truth"]["tissues"]
    cbf_per_volume = deltam_to_cbf(split.deltam, m0, split.deltam_plds, constants, **timing)
    for label, name in ((GM, "GM"), (WM, "WM")):
        truth = tissues[name]
        c = resolve_constants("PCASL", 3.0, overrides={"t1_tissue": truth["t1_s"]})
        for k, pld in enumerate(split.deltam_plds):
            ratio = kinetic_signal(
                truth["cbf_ml_100g_min"], truth["att_s"], pld, c, labeling_duration=1.8
            )
            predicted = ratio * whitepaper_scale(pld, 1.8, c)
            measured = np.mean(cbf_per_volume[..., k][seg == label])
            assert measured == pytest.approx(predicted, rel=1e-4), (name, pld)


def test_single_delay_full_model_with_assumed_att_recovers_truth():
    params, constants, split, m0, timing, image, seg = _quantify_inputs("multi_delay")
    pick = np.isclose(split.deltam_plds, 1.5)
    cbf = deltam_to_cbf(
        split.deltam[..., pick],
        m0,
        split.deltam_plds[pick],
        constants,
        mask=seg > 0,
        model="full",
        att=np.where(seg == GM, 0.8, 1.2),
        t1_tissue=_tissue_t1(params, seg),
        **timing,
    )[..., 0]
    assert np.mean(cbf[seg == GM]) == pytest.approx(60.0, abs=0.05)
    assert np.mean(cbf[seg == WM]) == pytest.approx(20.0, abs=0.05)


def test_noisy_data_gm_mean_stays_within_two_percent():
    _, constants, split, m0, timing, _, seg = _quantify_inputs("pcasl_noisy/snr100")
    cbf, _ = quantify_single_delay(
        split.deltam, m0, split.deltam_plds, constants, mask=seg > 0, **timing
    )
    assert np.mean(cbf[seg == GM]) == pytest.approx(60.0, rel=0.02)


def test_snr10_gm_mean_is_within_three_standard_errors():
    """At SNR 10 the SE of the GM mean is 6 % (README), so 2 % cannot be asked; 3 SE can."""
    _, constants, split, m0, timing, _, seg = _quantify_inputs("pcasl_noisy/snr10")
    cbf, _ = quantify_single_delay(
        split.deltam, m0, split.deltam_plds, constants, mask=seg > 0, **timing
    )
    gm = cbf[seg == GM]
    standard_error = gm.std(ddof=1) / np.sqrt(gm.size)
    assert 0.03 * 60 < standard_error < 0.1 * 60
    assert abs(gm.mean() - 60.0) < 3 * standard_error


def test_score_drops_the_pair_with_the_motion_spike():
    """pcasl_motion: volume 4 (the control of pair 2) jumps 3 deg / 2.1 mm (README)."""
    _, constants, split, m0, timing, _, seg = _quantify_inputs("pcasl_motion")
    cbf, provenance = quantify_single_delay(
        split.deltam,
        m0,
        split.deltam_plds,
        constants,
        mask=seg > 0,
        averaging="score",
        gm=seg == GM,
        wm=seg == WM,
        csf=seg == 3,
        **timing,
    )
    assert 2 in provenance["dropped_volumes"]
    assert len(provenance["kept_volumes"]) >= 2


def _independent_arterial_term(abv, att_arterial, plds, tau, alpha, lam, t1b, sd):
    """Arterial ΔM/M0 of a labelled bolus still in the arteries (Chappell et al. 2010), by
    numerical convolution of the sharp bolus with a Gaussian of standard deviation ``sd``
    (scipy quad; independent of aslmig's closed form): 2·α·aBV·e^(−ATTa/T1b)/λ inside."""
    from scipy import integrate, stats

    def smoothed_box(t):
        value, _ = integrate.quad(
            lambda s: stats.norm.pdf(t - s, scale=sd), att_arterial, att_arterial + tau
        )
        return value

    since_label = np.asarray(plds) + tau
    box = np.array([smoothed_box(t) for t in since_label])
    return 2.0 * alpha * abv * np.exp(-att_arterial / t1b) / lam * box


def test_multi_delay_arterial_component_on_asldro_tissue_signal():
    """asldro's tissue signal plus an independently computed arterial term: the arterial fit
    recovers CBF 60/20 and ATT 0.8/1.2 s as without it, and the arterial parameters."""
    params, constants, split, m0, timing, _, seg = _quantify_inputs("multi_delay")
    physics = params["physics"]
    arterial_truth = {GM: (0.012, 0.55), WM: (0.006, 0.85)}  # aBV, arterial arrival (s)
    deltam = split.deltam.copy()
    for label, (abv, att_a) in arterial_truth.items():
        term = _independent_arterial_term(
            abv, att_a, split.deltam_plds, physics["labeling_duration_s"],
            constants.labeling_efficiency, constants.partition_coefficient, constants.t1_blood,
            0.1,
        )  # fmt: skip
        deltam[seg == label] += term * m0[seg == label][:, None]
    every_eighth = (np.arange(seg.size).reshape(seg.shape) % 8) == 0  # keeps the test fast
    mask = ((seg == GM) | (seg == WM)) & every_eighth
    seg = np.where(mask, seg, 0)
    fit = fit_multi_delay(
        deltam, m0, split.deltam_plds, constants, mask=mask, model="full", arterial=True,
        t1_tissue=_tissue_t1(params, seg), **timing,
    )  # fmt: skip
    assert np.mean(fit.cbf[seg == GM]) == pytest.approx(60.0, abs=0.5)
    assert np.mean(fit.att[seg == GM]) == pytest.approx(0.80, abs=0.02)
    assert np.mean(fit.cbf[seg == WM]) == pytest.approx(20.0, abs=0.5)
    assert np.mean(fit.att[seg == WM]) == pytest.approx(1.20, abs=0.05)
    for label, (abv, att_a) in arterial_truth.items():
        assert np.median(fit.abv[seg == label]) == pytest.approx(abv, rel=0.01)
        assert np.median(fit.att_arterial[seg == label]) == pytest.approx(att_a, abs=0.01)
    assert fit.summary.n_not_converged == 0 and fit.summary.n_at_bound == 0
