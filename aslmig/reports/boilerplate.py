"""Methods boilerplate generated from the parameters actually used (as fMRIPrep does).

:func:`methods_text` turns a dictionary describing how one ASL run was processed into a
paragraph that can be pasted into a manuscript, with numbered citations ``[1]``, ``[2]``, ...
in order of first mention, and the list of the references cited in that order.

Parameters understood by :func:`methods_text` (every key optional except ``labeling_type``;
a sentence whose keys are absent is left out; unknown keys are an error, so a typo cannot
silently drop a sentence):

========================== ===================================================================
key                        meaning
========================== ===================================================================
labeling_type              ``"PCASL"``, ``"CASL"`` or ``"PASL"`` (ASL-BIDS
                           ``ArterialSpinLabelingType``)
field_strength_t           magnetic field strength, T
readout                    ``"2D"`` or ``"3D"`` (``MRAcquisitionType``)
n_volumes                  number of volumes in the ASL series
n_pairs                    number of control-label pairs
n_deltam                   number of ΔM volumes given directly
n_m0                       number of M0 volumes
plds                       post-labeling delay(s), s (PASL: inversion time TI); one or a list
labeling_duration          labeling duration τ, s (PCASL / CASL); one or a list
bolus_cutoff               PASL bolus duration TI1 = ``BolusCutOffDelayTime``, s
bolus_cutoff_technique     PASL bolus cut-off technique, e.g. ``"Q2TIPS"``
background_suppression     bool
background_suppression_pulses
                           number of background-suppression pulses (int)
m0_type                    ``"Separate"``, ``"Included"``, ``"Estimate"`` or ``"Absent"``
m0_description             sentence(s) on how M0 was obtained (averaging, TR correction)
model                      ``"white paper single-delay"`` or ``"general kinetic model"``
model_details              sentence(s) on the fit (e.g. optimiser, bounds, ATT prior)
constants                  ``{name: {"value", "units", "source"}}``, e.g. the output of
                           ``QuantificationConstants.to_dict()`` (non-mapping entries are
                           skipped); ``source`` naming a known reference (by key of
                           :data:`REFERENCES` or by first author and year) is cited
motion_correction          short description of head-motion correction (shown in
                           parentheses), or None (not done)
fd_threshold_mm            framewise-displacement threshold, mm
outlier_rejection          ``"SCORE"``, another method's short description, or None
                           (not done)
template_space             output template, e.g. ``"MNI152NLin2009cAsym"``
t1w_used                   bool: registration went through the participant's T1w
registration_method        sentence(s) on the registration steps
registration_software      e.g. ``"ANTs"`` (cites Tustison 2021 when it is ANTs)
syn                        bool: SyN nonlinear registration (cites Avants 2008)
software                   ``{name: version}``
========================== ===================================================================
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any

#: Full reference strings, by citation key.
REFERENCES: Mapping[str, str] = MappingProxyType(
    {
        "alsop2015": (
            "Alsop DC, Detre JA, Golay X, et al. Recommended implementation of arterial "
            "spin-labeled perfusion MRI for clinical applications: a consensus of the ISMRM "
            "perfusion study group and the European consortium for ASL in dementia. "
            "Magn Reson Med. 2015;73(1):102-116. doi:10.1002/mrm.25197"
        ),
        "buxton1998": (
            "Buxton RB, Frank LR, Wong EC, Siewert B, Warach S, Edelman RR. A general kinetic "
            "model for quantitative perfusion imaging with arterial spin labeling. "
            "Magn Reson Med. 1998;40(3):383-396. doi:10.1002/mrm.1910400308"
        ),
        "power2012": (
            "Power JD, Barnes KA, Snyder AZ, Schlaggar BL, Petersen SE. Spurious but systematic "
            "correlations in functional connectivity MRI networks arise from subject motion. "
            "NeuroImage. 2012;59(3):2142-2154. doi:10.1016/j.neuroimage.2011.10.018"
        ),
        "avants2008": (
            "Avants BB, Epstein CL, Grossman M, Gee JC. Symmetric diffeomorphic image "
            "registration with cross-correlation: evaluating automated labeling of elderly and "
            "neurodegenerative brain. Med Image Anal. 2008;12(1):26-41. "
            "doi:10.1016/j.media.2007.06.004"
        ),
        "tustison2021": (
            "Tustison NJ, Cook PA, Holbrook AJ, et al. The ANTsX ecosystem for quantitative "
            "biological and medical imaging. Sci Rep. 2021;11:9068. "
            "doi:10.1038/s41598-021-87564-6"
        ),
        "dolui2017": (
            "Dolui S, Wang Z, Shinohara RT, Wolk DA, Detre JA. Structural Correlation-based "
            "Outlier Rejection (SCORE) algorithm for arterial spin labeling time series. "
            "J Magn Reson Imaging. 2017;45(6):1786-1797. doi:10.1002/jmri.25436"
        ),
        "fonov2011": (
            "Fonov V, Evans AC, Botteron K, Almli CR, McKinstry RC, Collins DL. Unbiased "
            "average age-appropriate atlases for pediatric studies. NeuroImage. "
            "2011;54(1):313-327. doi:10.1016/j.neuroimage.2010.07.033"
        ),
        "gorgolewski2016": (
            "Gorgolewski KJ, Auer T, Calhoun VD, et al. The brain imaging data structure, a "
            "format for organizing and describing outputs of neuroimaging experiments. "
            "Sci Data. 2016;3:160044. doi:10.1038/sdata.2016.44"
        ),
        "clement2022": (
            "Clement P, Castellaro M, Okell TW, et al. ASL-BIDS, the brain imaging data "
            "structure extension for arterial spin labeling. Sci Data. 2022;9:543. "
            "doi:10.1038/s41597-022-01615-9"
        ),
        "garcia2005": (
            "Garcia DM, Duhamel G, Alsop DC. Efficiency of inversion pulses for background "
            "suppressed arterial spin labeling. Magn Reson Med. 2005;54(2):366-372. "
            "doi:10.1002/mrm.20556"
        ),
        "wang2005": (
            "Wang J, Zhang Y, Wolf RL, Roc AC, Alsop DC, Detre JA. Amplitude-modulated "
            "continuous arterial spin-labeling 3.0-T perfusion MR imaging with a single coil: "
            "feasibility study. Radiology. 2005;235(1):218-228. doi:10.1148/radiol.2351031663"
        ),
        "wansapura1999": (
            "Wansapura JP, Holland SK, Dunn RS, Ball WS Jr. NMR relaxation times in the human "
            "brain at 3.0 tesla. J Magn Reson Imaging. 1999;9(4):531-538. "
            "doi:10.1002/(SICI)1522-2586(199904)9:4<531::AID-JMRI4>3.0.CO;2-L"
        ),
        "wright2008": (
            "Wright PJ, Mougin OE, Totman JJ, et al. Water proton T1 measurements in brain "
            "tissue at 7, 3, and 1.5 T using IR-EPI, IR-TSE, and MPRAGE: results and "
            "optimization. MAGMA. 2008;21(1-2):121-130. doi:10.1007/s10334-008-0104-8"
        ),
    }
)
#: First author and year by which a free-text constant ``source`` is matched to a reference.
SOURCE_PATTERNS: Mapping[str, tuple[str, str]] = MappingProxyType(
    {
        key: (value.split(" ", 1)[0], re.search(r"(19|20)\d\d", value).group(0))
        for key, value in REFERENCES.items()
    }
)
#: Keys :func:`methods_text` accepts.
PARAMETER_KEYS = frozenset(
    {
        "labeling_type",
        "field_strength_t",
        "readout",
        "n_volumes",
        "n_pairs",
        "n_deltam",
        "n_m0",
        "plds",
        "labeling_duration",
        "bolus_cutoff",
        "bolus_cutoff_technique",
        "background_suppression",
        "background_suppression_pulses",
        "m0_type",
        "m0_description",
        "model",
        "model_details",
        "constants",
        "motion_correction",
        "fd_threshold_mm",
        "outlier_rejection",
        "template_space",
        "t1w_used",
        "registration_method",
        "registration_software",
        "syn",
        "software",
    }
)
LABELING_NAMES = MappingProxyType(
    {
        "PCASL": "pseudo-continuous arterial spin labeling (PCASL)",
        "CASL": "continuous arterial spin labeling (CASL)",
        "PASL": "pulsed arterial spin labeling (PASL)",
    }
)
MODELS = ("white paper single-delay", "general kinetic model")
M0_TYPES = MappingProxyType(
    {
        "separate": "a separately acquired M0 scan",
        "included": "M0 volumes included in the ASL series",
        "estimate": "a single M0 estimate given in the metadata (M0Type Estimate)",
        "absent": "no M0 image (M0Type Absent); M0 came from a reference region",
    }
)
CONSTANT_NAMES = MappingProxyType(
    {
        "partition_coefficient": "blood-brain partition coefficient λ",
        "t1_blood": "arterial blood T1",
        "t1_tissue": "tissue T1",
        "labeling_efficiency": "labeling efficiency α",
        "bs_pulse_efficiency": "inversion efficiency per background-suppression pulse",
        "unit_scale": "unit conversion factor",
    }
)


class _Citations:
    """Numbers references in order of first citation."""

    def __init__(self) -> None:
        self.keys: list[str] = []

    def cite(self, *keys: str) -> str:
        numbers = []
        for key in keys:
            if key not in REFERENCES:
                raise KeyError(f"unknown reference key {key!r}")
            if key not in self.keys:
                self.keys.append(key)
            numbers.append(self.keys.index(key) + 1)
        return "[" + ", ".join(str(n) for n in numbers) + "]"

    def references(self) -> list[str]:
        return [REFERENCES[key] for key in self.keys]


def _fmt(value: Any) -> str:
    """Format a number without spurious digits (``1.8``, ``0.9``, ``1650``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return str(value)
    return f"{float(value):.6g}"


def _seconds(values: Any) -> str:
    items = list(values) if isinstance(values, (list, tuple)) else [values]
    unique = list(dict.fromkeys(float(v) for v in items))
    return ", ".join(_fmt(v) for v in unique) + " s"


def _as_list(values: Any) -> list[float]:
    items = list(values) if isinstance(values, (list, tuple)) else [values]
    return list(dict.fromkeys(float(v) for v in items))


def _check(params: Mapping[str, Any]) -> None:
    unknown = sorted(set(params) - PARAMETER_KEYS)
    if unknown:
        raise ValueError(f"unknown methods parameter(s) {unknown}; known: {sorted(PARAMETER_KEYS)}")
    if "labeling_type" not in params:
        raise ValueError("methods parameters need 'labeling_type' (PCASL, CASL or PASL)")
    if str(params["labeling_type"]).upper() not in LABELING_NAMES:
        raise ValueError(
            f"labeling_type must be PCASL, CASL or PASL, got {params['labeling_type']!r}"
        )
    if params.get("readout") not in (None, "2D", "3D"):
        raise ValueError(f"readout must be '2D' or '3D', got {params['readout']!r}")
    if params.get("model") is not None and str(params["model"]).lower() not in MODELS:
        raise ValueError(f"model must be one of {MODELS}, got {params['model']!r}")
    if params.get("m0_type") is not None and str(params["m0_type"]).lower() not in M0_TYPES:
        raise ValueError(
            f"m0_type must be Separate, Included, Estimate or Absent, got {params['m0_type']!r}"
        )


def _data_sentence(p: Mapping[str, Any], cite: _Citations) -> str:
    kind = str(p["labeling_type"]).upper()
    where = f" at {_fmt(p['field_strength_t'])} T" if p.get("field_strength_t") else ""
    readout = f" with a {p['readout']} readout" if p.get("readout") else ""
    text = f"Perfusion was imaged with {LABELING_NAMES[kind]}{where}{readout}."
    text += _counts_sentence(p)
    bids = cite.cite("gorgolewski2016", "clement2022")
    return text + f" Data were organised and read following BIDS and ASL-BIDS {bids}."


def _and_join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _counts_sentence(p: Mapping[str, Any]) -> str:
    parts = [
        f"{p[key]} {noun}"
        for key, noun in (
            ("n_pairs", "control-label pairs"),
            ("n_deltam", "ΔM volumes"),
            ("n_m0", "M0 volumes"),
        )
        if p.get(key) is not None
    ]
    if p.get("n_volumes") is not None:
        detail = f" ({_and_join(parts)})" if parts else ""
        return f" The ASL series comprised {p['n_volumes']} volumes{detail}."
    return f" The ASL series comprised {_and_join(parts)}." if parts else ""


def _timing_sentence(p: Mapping[str, Any]) -> str:
    kind = str(p["labeling_type"]).upper()
    parts = []
    if p.get("plds") is not None:
        plds = _as_list(p["plds"])
        noun = "inversion time" if kind == "PASL" else "post-labeling delay"
        plural = "s" if len(plds) > 1 else ""
        parts.append(f"the {noun}{plural} {'were' if plural else 'was'} {_seconds(plds)}")
    if p.get("labeling_duration") is not None and kind != "PASL":
        parts.append(f"the labeling duration was {_seconds(p['labeling_duration'])}")
    if p.get("bolus_cutoff") is not None:
        how = f" ({p['bolus_cutoff_technique']})" if p.get("bolus_cutoff_technique") else ""
        parts.append(f"the bolus duration TI1 was {_seconds(p['bolus_cutoff'])}{how}")
    if p.get("background_suppression") is not None:
        parts.append(_background_suppression(p))
    if not parts:
        return ""
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _background_suppression(p: Mapping[str, Any]) -> str:
    if not p["background_suppression"]:
        return "no background suppression was used"
    pulses = p.get("background_suppression_pulses")
    if pulses is None:
        return "background suppression was used (number of pulses not reported)"
    return f"background suppression used {pulses} inversion pulse{'s' if pulses != 1 else ''}"


def _m0_sentence(p: Mapping[str, Any]) -> str:
    if p.get("m0_type") is None and not p.get("m0_description"):
        return ""
    text = ""
    if p.get("m0_type") is not None:
        text = f"Calibration used {M0_TYPES[str(p['m0_type']).lower()]}."
    if p.get("m0_description"):
        text += f" {_sentence(p['m0_description'])}"
    return text.strip()


def _sentence(text: Any) -> str:
    """Capitalise a free-text fragment and end it with a full stop."""
    value = str(text).strip()
    if not value:
        return ""
    value = value[0].upper() + value[1:]
    return value if value.endswith((".", "!", "?")) else value + "."


def _fragment(text: Any) -> str:
    """Return a free-text fragment for use inside parentheses (no final full stop)."""
    return str(text).strip().rstrip(".")


def _preprocessing_sentences(p: Mapping[str, Any], cite: _Citations) -> str:
    out = []
    if p.get("motion_correction"):
        out.append(f"Head motion was corrected ({_fragment(p['motion_correction'])}).")
        fd = "Framewise displacement (FD) was computed from the motion parameters " + cite.cite(
            "power2012"
        )
        if p.get("fd_threshold_mm") is not None:
            fd += f"; volumes with FD above {_fmt(p['fd_threshold_mm'])} mm were flagged"
        out.append(fd + ".")
    elif "motion_correction" in p:
        out.append("Head motion was not corrected.")
    method = p.get("outlier_rejection")
    if method is not None and str(method).strip().upper() == "SCORE":
        out.append(
            "Outlier volumes were rejected with SCORE (structural correlation-based outlier "
            f"rejection) {cite.cite('dolui2017')}."
        )
    elif method:
        out.append(f"Outlier volumes were rejected ({_fragment(method)}).")
    elif "outlier_rejection" in p:
        out.append("No outlier rejection was applied.")
    return " ".join(out)


def _model_sentence(p: Mapping[str, Any], cite: _Citations) -> str:
    if p.get("model") is None:
        return ""
    if str(p["model"]).lower() == "general kinetic model":
        text = (
            "CBF and arterial transit time (ATT) were estimated by fitting the general kinetic "
            f"model {cite.cite('buxton1998')} to the ΔM/M0 signal at all delays."
        )
    else:
        text = (
            "CBF was quantified with the single-compartment, single-delay model recommended by "
            f"the ASL white paper {cite.cite('alsop2015')}."
        )
    if p.get("model_details"):
        text += f" {_sentence(p['model_details'])}"
    return text


def _source_note(source: str, cite: _Citations) -> str:
    """Return a citation or a short provenance note for a constant's ``source``."""
    text = str(source or "").strip()
    if not text:
        return ""
    if text in REFERENCES:
        return " " + cite.cite(text)
    lowered = text.lower()
    if lowered.startswith("override"):
        return " (set in the configuration)"
    if lowered.startswith("sidecar"):
        field = text.split(":", 1)[1].strip() if ":" in text else "metadata"
        return f" (from the sidecar field {field})"
    keys = [
        key for key, (author, year) in SOURCE_PATTERNS.items() if author in text and year in text
    ]
    if keys:
        return " " + cite.cite(*keys)
    return f" (source: {text})"


def _constants_sentence(p: Mapping[str, Any], cite: _Citations) -> str:
    constants = p.get("constants") or {}
    items = []
    for name, entry in constants.items():
        if not isinstance(entry, Mapping) or entry.get("value") is None:
            continue
        label = CONSTANT_NAMES.get(name, str(name).replace("_", " "))
        units = str(entry.get("units") or "")
        unit_text = "" if units in ("", "1") else f" {units}"
        note = _source_note(entry.get("source", ""), cite)
        items.append(f"{label} = {_fmt(entry['value'])}{unit_text}{note}")
    if not items:
        return ""
    return "Constants: " + "; ".join(items) + "."


def _registration_sentence(p: Mapping[str, Any], cite: _Citations) -> str:
    space = p.get("template_space")
    if not space and not p.get("registration_method"):
        return ""
    if space:
        ref = f" {cite.cite('fonov2011')}" if str(space).startswith("MNI152NLin2009") else ""
        route = (
            "to the participant's T1-weighted image and from there"
            if p.get("t1w_used")
            else "directly (no T1-weighted image was used)"
        )
        text = f"The ASL reference image was registered {route} to the {space} template{ref}."
    else:
        text = ""
    if p.get("registration_method"):
        text += f" {_sentence(p['registration_method'])}"
    tools = []
    software = p.get("registration_software")
    if software:
        ants = str(software).strip().lower().startswith("ants")
        tools.append(f"{software}{' ' + cite.cite('tustison2021') if ants else ''}")
    if p.get("syn"):
        tools.append(f"symmetric normalization (SyN) {cite.cite('avants2008')}")
    if tools:
        text += " Registration used " + " with ".join(tools) + "."
    return text.strip()


def _software_sentence(p: Mapping[str, Any]) -> str:
    software = p.get("software") or {}
    if not software:
        return ""
    listed = ", ".join(f"{name} {version}" for name, version in software.items())
    return f"Software: {listed}."


def methods_text(params: Mapping[str, Any]) -> tuple[str, list[str]]:
    """Write a methods paragraph for one ASL run from the parameters actually used.

    Parameters
    ----------
    params : Mapping[str, Any]
        Keys as listed in the module docstring (:data:`PARAMETER_KEYS`); only
        ``labeling_type`` is required.

    Returns
    -------
    text : str
        Plain text (not HTML-escaped) with numbered citations ``[n]``.
    references : list of str
        Full reference strings; entry ``n - 1`` is citation ``[n]``.

    Raises
    ------
    ValueError
        Unknown keys, or an invalid labeling type, readout, model or M0 type.
    """
    _check(params)
    cite = _Citations()
    sentences = [
        _data_sentence(params, cite),
        _timing_sentence(params),
        _m0_sentence(params),
        _preprocessing_sentences(params, cite),
        _model_sentence(params, cite),
        _constants_sentence(params, cite),
        _registration_sentence(params, cite),
        _software_sentence(params),
    ]
    text = " ".join(s for s in sentences if s)
    return text, cite.references()


def citation_numbers(text: str) -> list[int]:
    """Return the citation numbers used in a methods text, in order of appearance.

    Parameters
    ----------
    text : str
        Output of :func:`methods_text`.

    Returns
    -------
    list of int
        Every number inside ``[...]`` brackets.
    """
    return [int(n) for group in re.findall(r"\[(\d+(?:, \d+)*)\]", text) for n in group.split(", ")]


def format_references(references: Sequence[str]) -> str:
    """Return a numbered plain-text reference list.

    Parameters
    ----------
    references : sequence of str
        From :func:`methods_text`.

    Returns
    -------
    str
        One ``[n] reference`` per line.
    """
    return "\n".join(f"[{n}] {ref}" for n, ref in enumerate(references, start=1))
