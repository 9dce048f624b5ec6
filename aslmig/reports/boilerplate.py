"""Methods boilerplate generated from the parameters actually used (as fMRIPrep does).

:func:`methods_text` turns a :class:`MethodsParameters` (how one ASL run was processed) into a
paragraph that can be pasted into a manuscript, with numbered citations ``[1]``, ``[2]``, ...
in order of first mention, and the list of the references cited in that order. A sentence
whose parameters are not given is left out.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from types import MappingProxyType
from typing import Any, Literal

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


@dataclass(frozen=True)
class MethodsParameters:
    """How one ASL run was processed: everything :func:`methods_text` can describe.

    Only ``labeling_type`` is required; a parameter left at its default (``None``, empty)
    leaves its sentence out.

    Attributes
    ----------
    labeling_type : str
        ``"PCASL"``, ``"CASL"`` or ``"PASL"`` (ASL-BIDS ``ArterialSpinLabelingType``).
    field_strength_t : float, optional
        Magnetic field strength, T.
    readout : str, optional
        ``"2D"`` or ``"3D"`` (``MRAcquisitionType``).
    n_volumes, n_pairs, n_deltam, n_m0 : int, optional
        Volumes of the series, control-label pairs, ΔM volumes given directly, M0 volumes.
    plds : tuple of float
        Post-labeling delay(s), s (PASL: inversion time TI); a single number is accepted.
    labeling_duration : tuple of float
        Labeling duration(s) τ, s (PCASL / CASL); a single number is accepted.
    bolus_cutoff : float, optional
        PASL bolus duration TI1 = ``BolusCutOffDelayTime``, s.
    bolus_cutoff_technique : str, optional
        PASL bolus cut-off technique, e.g. ``"Q2TIPS"``.
    background_suppression : bool, optional
        Whether background suppression was used.
    background_suppression_pulses : int, optional
        Number of background-suppression pulses.
    m0_type : str, optional
        ``"Separate"``, ``"Included"``, ``"Estimate"`` or ``"Absent"``.
    m0_description : str
        Sentence(s) on how M0 was obtained (averaging, TR correction).
    model : str, optional
        ``"white paper single-delay"`` or ``"general kinetic model"``.
    model_details : str
        Sentence(s) on the fit (e.g. optimiser, bounds, ATT prior).
    constants : Mapping[str, Mapping]
        ``{name: {"value", "units", "source"}}``, e.g. the output of
        ``QuantificationConstants.to_dict()`` (non-mapping entries are skipped); a ``source``
        naming a known reference (by key of :data:`REFERENCES` or by first author and year)
        is cited.
    motion_correction : str or False, optional
        Short description of the head-motion correction (shown in parentheses); ``False``:
        not done.
    fd_threshold_mm : float, optional
        Framewise-displacement threshold, mm.
    outlier_rejection : str or False, optional
        ``"SCORE"`` or another method's short description; ``False``: not done.
    template_space : str, optional
        Output template, e.g. ``"MNI152NLin2009cAsym"``.
    t1w_used : bool
        Registration went through the participant's T1w.
    registration_method : str
        Sentence(s) on the registration steps.
    registration_software : str, optional
        E.g. ``"ANTs"`` (cites Tustison 2021 when it is ANTs).
    syn : bool
        SyN nonlinear registration (cites Avants 2008).
    software : Mapping[str, str]
        ``{name: version}``.
    """

    labeling_type: str
    field_strength_t: float | None = None
    readout: str | None = None
    n_volumes: int | None = None
    n_pairs: int | None = None
    n_deltam: int | None = None
    n_m0: int | None = None
    plds: tuple[float, ...] = ()
    labeling_duration: tuple[float, ...] = ()
    bolus_cutoff: float | None = None
    bolus_cutoff_technique: str | None = None
    background_suppression: bool | None = None
    background_suppression_pulses: int | None = None
    m0_type: str | None = None
    m0_description: str = ""
    model: str | None = None
    model_details: str = ""
    constants: Mapping[str, Any] = field(default_factory=dict)
    motion_correction: str | Literal[False] | None = None
    fd_threshold_mm: float | None = None
    outlier_rejection: str | Literal[False] | None = None
    template_space: str | None = None
    t1w_used: bool = False
    registration_method: str = ""
    registration_software: str | None = None
    syn: bool = False
    software: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("plds", "labeling_duration"):
            value = getattr(self, name)
            values = value if isinstance(value, list | tuple) else [value]
            object.__setattr__(self, name, tuple(float(v) for v in values))
        if str(self.labeling_type).upper() not in LABELING_NAMES:
            raise ValueError(
                f"labeling_type must be PCASL, CASL or PASL, got {self.labeling_type!r}"
            )
        if self.readout not in (None, "2D", "3D"):
            raise ValueError(f"readout must be '2D' or '3D', got {self.readout!r}")
        if self.model is not None and str(self.model).lower() not in MODELS:
            raise ValueError(f"model must be one of {MODELS}, got {self.model!r}")
        if self.m0_type is not None and str(self.m0_type).lower() not in M0_TYPES:
            raise ValueError(
                f"m0_type must be Separate, Included, Estimate or Absent, got {self.m0_type!r}"
            )

    def to_dict(self) -> dict[str, Any]:
        """Return the parameters as JSON-ready plain values (the inverse of :meth:`from_dict`)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> MethodsParameters:
        """Build the parameters from a mapping, refusing unknown names.

        Raises
        ------
        ValueError
            An unknown name, a missing ``labeling_type``, or an invalid value.
        """
        known = {item.name for item in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"unknown methods parameter(s) {unknown}; known: {sorted(known)}")
        if "labeling_type" not in values:
            raise ValueError("methods parameters need 'labeling_type' (PCASL, CASL or PASL)")
        return cls(**values)


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


def _data_sentence(p: MethodsParameters, cite: _Citations) -> str:
    kind = str(p.labeling_type).upper()
    where = f" at {_fmt(p.field_strength_t)} T" if p.field_strength_t else ""
    readout = f" with a {p.readout} readout" if p.readout else ""
    text = f"Perfusion was imaged with {LABELING_NAMES[kind]}{where}{readout}."
    text += _counts_sentence(p)
    bids = cite.cite("gorgolewski2016", "clement2022")
    return text + f" Data were organised and read following BIDS and ASL-BIDS {bids}."


def _and_join(items: Sequence[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _counts_sentence(p: MethodsParameters) -> str:
    parts = [
        f"{getattr(p, key)} {noun}"
        for key, noun in (
            ("n_pairs", "control-label pairs"),
            ("n_deltam", "ΔM volumes"),
            ("n_m0", "M0 volumes"),
        )
        if getattr(p, key) is not None
    ]
    if p.n_volumes is not None:
        detail = f" ({_and_join(parts)})" if parts else ""
        return f" The ASL series comprised {p.n_volumes} volumes{detail}."
    return f" The ASL series comprised {_and_join(parts)}." if parts else ""


def _timing_sentence(p: MethodsParameters) -> str:
    kind = str(p.labeling_type).upper()
    parts = []
    if p.plds:
        plds = list(dict.fromkeys(p.plds))
        noun = "inversion time" if kind == "PASL" else "post-labeling delay"
        plural = "s" if len(plds) > 1 else ""
        parts.append(f"the {noun}{plural} {'were' if plural else 'was'} {_seconds(plds)}")
    if p.labeling_duration and kind != "PASL":
        parts.append(f"the labeling duration was {_seconds(p.labeling_duration)}")
    if p.bolus_cutoff is not None:
        how = f" ({p.bolus_cutoff_technique})" if p.bolus_cutoff_technique else ""
        parts.append(f"the bolus duration TI1 was {_seconds(p.bolus_cutoff)}{how}")
    if p.background_suppression is not None:
        parts.append(_background_suppression(p))
    if not parts:
        return ""
    text = "; ".join(parts)
    return text[0].upper() + text[1:] + "."


def _background_suppression(p: MethodsParameters) -> str:
    if not p.background_suppression:
        return "no background suppression was used"
    pulses = p.background_suppression_pulses
    if pulses is None:
        return "background suppression was used (number of pulses not reported)"
    return f"background suppression used {pulses} inversion pulse{'s' if pulses != 1 else ''}"


def _m0_sentence(p: MethodsParameters) -> str:
    if p.m0_type is None and not p.m0_description:
        return ""
    text = ""
    if p.m0_type is not None:
        text = f"Calibration used {M0_TYPES[str(p.m0_type).lower()]}."
    if p.m0_description:
        text += f" {_sentence(p.m0_description)}"
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


def _preprocessing_sentences(p: MethodsParameters, cite: _Citations) -> str:
    out = []
    if p.motion_correction:
        out.append(f"Head motion was corrected ({_fragment(p.motion_correction)}).")
        fd = "Framewise displacement (FD) was computed from the motion parameters " + cite.cite(
            "power2012"
        )
        if p.fd_threshold_mm is not None:
            fd += f"; volumes with FD above {_fmt(p.fd_threshold_mm)} mm were flagged"
        out.append(fd + ".")
    elif p.motion_correction is False:
        out.append("Head motion was not corrected.")
    method = p.outlier_rejection
    if method is not None and str(method).strip().upper() == "SCORE":
        out.append(
            "Outlier volumes were rejected with SCORE (structural correlation-based outlier "
            f"rejection) {cite.cite('dolui2017')}."
        )
    elif method:
        out.append(f"Outlier volumes were rejected ({_fragment(method)}).")
    elif method is False:
        out.append("No outlier rejection was applied.")
    return " ".join(out)


def _model_sentence(p: MethodsParameters, cite: _Citations) -> str:
    if p.model is None:
        return ""
    if str(p.model).lower() == "general kinetic model":
        text = (
            "CBF and arterial transit time (ATT) were estimated by fitting the general kinetic "
            f"model {cite.cite('buxton1998')} to the ΔM/M0 signal at all delays."
        )
    else:
        text = (
            "CBF was quantified with the single-compartment, single-delay model recommended by "
            f"the ASL white paper {cite.cite('alsop2015')}."
        )
    if p.model_details:
        text += f" {_sentence(p.model_details)}"
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


def _constants_sentence(p: MethodsParameters, cite: _Citations) -> str:
    constants = p.constants
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


def _registration_sentence(p: MethodsParameters, cite: _Citations) -> str:
    space = p.template_space
    if not space and not p.registration_method:
        return ""
    if space:
        ref = f" {cite.cite('fonov2011')}" if str(space).startswith("MNI152NLin2009") else ""
        route = (
            "to the participant's T1-weighted image and from there"
            if p.t1w_used
            else "directly (no T1-weighted image was used)"
        )
        text = f"The ASL reference image was registered {route} to the {space} template{ref}."
    else:
        text = ""
    if p.registration_method:
        text += f" {_sentence(p.registration_method)}"
    tools = []
    software = p.registration_software
    if software:
        ants = str(software).strip().lower().startswith("ants")
        tools.append(f"{software}{' ' + cite.cite('tustison2021') if ants else ''}")
    if p.syn:
        tools.append(f"symmetric normalization (SyN) {cite.cite('avants2008')}")
    if tools:
        text += " Registration used " + " with ".join(tools) + "."
    return text.strip()


def _software_sentence(p: MethodsParameters) -> str:
    software = p.software
    if not software:
        return ""
    listed = ", ".join(f"{name} {version}" for name, version in software.items())
    return f"Software: {listed}."


def methods_text(params: MethodsParameters) -> tuple[str, list[str]]:
    """Write a methods paragraph for one ASL run from the parameters actually used.

    Parameters
    ----------
    params : MethodsParameters
        How the run was processed.

    Returns
    -------
    text : str
        Plain text (not HTML-escaped) with numbered citations ``[n]``.
    references : list of str
        Full reference strings; entry ``n - 1`` is citation ``[n]``.
    """
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
