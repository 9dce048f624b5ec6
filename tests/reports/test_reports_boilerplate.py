from __future__ import annotations

import json
import re

import pytest

from aslmig.cbf.constants import resolve_constants
from aslmig.reports.boilerplate import (
    REFERENCES,
    MethodsParameters,
    citation_numbers,
    format_references,
    methods_text,
)

FULL = {
    "labeling_type": "PCASL",
    "field_strength_t": 3.0,
    "readout": "3D",
    "n_volumes": 42,
    "n_pairs": 20,
    "n_m0": 2,
    "plds": [1.8],
    "labeling_duration": 1.8,
    "background_suppression": True,
    "background_suppression_pulses": 4,
    "m0_type": "Separate",
    "m0_description": "two M0 volumes were averaged and corrected for their 2 s TR",
    "model": "white paper single-delay",
    "model_details": "voxels outside the brain mask were set to zero",
    "constants": {
        "partition_coefficient": {"value": 0.9, "units": "mL/g", "source": "alsop2015"},
        "t1_blood": {"value": 1.65, "units": "s", "source": "Alsop DC et al. ... 2015 (3.0 T)"},
        "labeling_efficiency": {
            "value": 0.7,
            "units": "1",
            "source": "sidecar: LabelingEfficiency",
        },
    },
    "motion_correction": "rigid-body realignment to the mean control image",
    "fd_threshold_mm": 0.5,
    "outlier_rejection": "SCORE",
    "template_space": "MNI152NLin2009cAsym",
    "t1w_used": True,
    "registration_method": "The ASL reference was aligned rigidly to the T1w.",
    "registration_software": "ANTs",
    "syn": True,
    "software": {"aslmig": "0.1.0", "nipype": "1.11.0", "ANTs": "2.5.1"},
}


def _cited_keys(text: str, references: list[str]) -> set[str]:
    numbers = set(citation_numbers(text))
    assert numbers == set(range(1, len(references) + 1)), "every reference cited, none extra"
    by_text = {value: key for key, value in REFERENCES.items()}
    return {by_text[references[n - 1]] for n in numbers}


def test_full_parameters_are_all_mentioned():
    text, refs = methods_text(MethodsParameters.from_dict(FULL))
    for fragment in [
        "pseudo-continuous arterial spin labeling (PCASL)",
        "3 T",
        "3D readout",
        "42 volumes",
        "20 control-label pairs",
        "2 M0 volumes",
        "post-labeling delay was 1.8 s",
        "labeling duration was 1.8 s",
        "4 inversion pulses",
        "separately acquired M0",
        "corrected for their 2 s TR",
        "λ = 0.9 mL/g",
        "arterial blood T1 = 1.65 s",
        "α = 0.7 (from the sidecar field LabelingEfficiency)",
        "rigid-body realignment",
        "0.5 mm",
        "SCORE",
        "MNI152NLin2009cAsym",
        "T1-weighted",
        "ANTs",
        "SyN",
        "nipype 1.11.0",
        "ANTs 2.5.1",
        "aslmig 0.1.0",
        "aligned rigidly",
        "Voxels outside the brain mask",
    ]:
        assert fragment in text, fragment
    assert _cited_keys(text, refs) == {
        "gorgolewski2016",
        "clement2022",
        "power2012",
        "dolui2017",
        "alsop2015",
        "fonov2011",
        "tustison2021",
        "avants2008",
    }
    assert "[1, 2]" in text  # BIDS and ASL-BIDS come first
    assert "2022;9:543" in refs[1]


def test_multi_delay_pasl_cites_buxton_and_lists_every_delay():
    text, refs = methods_text(
        MethodsParameters.from_dict(
            {
                "labeling_type": "pasl",
                "plds": [0.5, 1.0, 1.5, 2.0],
                "bolus_cutoff": 0.8,
                "bolus_cutoff_technique": "Q2TIPS",
                "model": "general kinetic model",
                "background_suppression": False,
                "outlier_rejection": False,
                "motion_correction": False,
            }
        )
    )
    assert "inversion times were 0.5, 1, 1.5, 2 s" in text
    assert "TI1 was 0.8 s (Q2TIPS)" in text
    assert "no background suppression" in text
    assert "No outlier rejection" in text and "not corrected" in text
    assert "labeling duration" not in text
    keys = _cited_keys(text, refs)
    assert "buxton1998" in keys and "alsop2015" not in keys and "dolui2017" not in keys
    assert "power2012" not in keys


def test_minimal_parameters_give_a_short_text():
    text, refs = methods_text(MethodsParameters("CASL"))
    assert "continuous arterial spin labeling (CASL)" in text
    assert _cited_keys(text, refs) == {"gorgolewski2016", "clement2022"}


def test_constants_from_the_cbf_engine_are_cited_by_author_and_year():
    constants = resolve_constants("PCASL", 3.0, bs_pulses=4).to_dict()
    text, refs = methods_text(MethodsParameters("PCASL", constants=constants))
    alpha = constants["labeling_efficiency"]["value"]
    assert f"α = {alpha:.6g}" in text
    assert "λ = 0.9 mL/g" in text and "arterial blood T1 = 1.65 s" in text
    assert "tissue T1 = 1.33 s" in text
    keys = _cited_keys(text, refs)
    assert {"alsop2015", "garcia2005", "wansapura1999"} <= keys
    assert "source:" not in text  # every source was recognised


def test_override_and_unknown_sources():
    text, refs = methods_text(
        MethodsParameters.from_dict(
            {
                "labeling_type": "PCASL",
                "constants": {
                    "t1_blood": {"value": 1.7, "units": "s", "source": "override (configuration)"},
                    "custom_thing": {"value": 2, "units": "au", "source": "local lab value"},
                    "labeling_type": "PCASL",  # non-mapping entries are skipped
                },
            }
        )
    )
    assert "arterial blood T1 = 1.7 s (set in the configuration)" in text
    assert "custom thing = 2 au (source: local lab value)" in text


def test_other_outlier_method_and_template_without_t1w():
    text, refs = methods_text(
        MethodsParameters.from_dict(
            {
                "labeling_type": "PCASL",
                "outlier_rejection": "volumes beyond 3 SD of the mean GM CBF were removed.",
                "template_space": "MNI152NLin6Asym",
                "t1w_used": False,
            }
        )
    )
    assert "(volumes beyond 3 SD of the mean GM CBF were removed)" in text
    assert "no T1-weighted image was used" in text
    assert "fonov2011" not in _cited_keys(text, refs)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"labeling_type": "PCASL", "pld": 1.8}, "unknown methods parameter"),
        ({"plds": [1.8]}, "labeling_type"),
        ({"labeling_type": "FAIR"}, "labeling_type"),
        ({"labeling_type": "PCASL", "readout": "2.5D"}, "readout"),
        ({"labeling_type": "PCASL", "model": "magic"}, "model"),
        ({"labeling_type": "PCASL", "m0_type": "Sometimes"}, "m0_type"),
    ],
)
def test_bad_parameters_are_refused(params, match):
    with pytest.raises(ValueError, match=match):
        MethodsParameters.from_dict(params)


def test_reference_table_and_formatting():
    for key in [
        "alsop2015",
        "buxton1998",
        "power2012",
        "avants2008",
        "tustison2021",
        "dolui2017",
        "fonov2011",
        "gorgolewski2016",
        "clement2022",
    ]:
        assert re.search(r"(19|20)\d\d", REFERENCES[key])
    assert "Sci Data. 2022;9:543" in REFERENCES["clement2022"]
    listing = format_references(["A", "B"])
    assert listing == "[1] A\n[2] B"


def test_parameters_round_trip_through_plain_values():
    params = MethodsParameters.from_dict(FULL)
    assert params.plds == (1.8,) and params.labeling_duration == (1.8,)
    assert MethodsParameters.from_dict(json.loads(json.dumps(params.to_dict()))) == params
    with pytest.raises(TypeError):
        MethodsParameters("PCASL", pld=1.8)  # a typo cannot silently drop a sentence
