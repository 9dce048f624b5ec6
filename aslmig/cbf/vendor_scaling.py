"""Vendor scaling conventions: the factors that turn stored image values into signal.

ΔM/M0 is a ratio of two images, so a scale factor that differs between the ASL series and
the M0 image (or between ΔM and M0 volumes of one series) biases CBF by that factor. ASL-BIDS
asks for images that are already scaled (Clement et al. 2022), but dcm2niix keeps the vendor
fields that say how the stored values were scaled, and two conventions need a correction:

* **Philips** (Chenevert et al. 2014; dcm2niix Philips notes). A stored pixel value PV gives a
  *display* value DV = PV·RS + RI and a *floating-point* value FP = DV / (RS·SS), with
  RS = ``PhilipsRescaleSlope``, RI = ``PhilipsRescaleIntercept`` and SS = ``PhilipsScaleSlope``.
  Only FP is proportional to the MR signal across series: RS is chosen per series, so the
  ASL series and its M0 scan usually have different display scales. dcm2niix writes FP by
  default (``-p y``, ``UsePhilipsFloatNotDisplayScaling`` 1: nothing to do) and DV with
  ``-p n`` (``UsePhilipsFloatNotDisplayScaling`` 0: every volume of that image is multiplied
  by 1/(RS·SS)). Each image follows its own sidecar: m0scan volumes of the ASL series share
  its factor, a separate M0 scan has its own. Without any Philips field the values are taken
  as already floating-point, as ExploreASL's BIDS conversion writes them after applying and
  removing the fields (ExploreASL ``xASL_adm_GetPhilipsScaling`` follows the same rules).
* **GE** 3D spiral PCASL products: the scanner's perfusion-weighted (``deltam``) image is the
  *sum* over the NEX label/control pairs, multiplied by 32 (45.24 in the work-in-progress
  releases up to 15); the proton-density M0 image is not scaled. ΔM volumes are therefore
  divided by 32·NEX (ExploreASL ``xASL_quant_ASL`` takes NEX from ``NumberOfAverages``; the
  ASL-BIDS GE example asl001 carries it only as ``TotalAcquiredPairs``, which is used here).
  Control/label or CBF volumes of GE series have no such convention and are used as stored.
* **Siemens** and other vendors: the images are used as stored (after the NIfTI
  ``scl_slope``/``scl_inter``, which nibabel applies).

A field that a convention needs but the sidecar lacks is refused with
:class:`ScalingFieldError` (the workflow layer turns it into a one-line input error naming
the sidecar).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

CHENEVERT_2014 = (
    "Chenevert TL, Malyarenko DI, Newitt D, et al. Errors in quantitative image analysis due "
    "to platform-dependent image scaling. Transl Oncol 2014;7:65-71"
)
DCM2NIIX_PHILIPS = (
    "dcm2niix Philips notes, Image Scaling (github.com/rordenlab/dcm2niix, Philips/README.md); "
    "Li X et al. The first step for neuroimaging data analysis: DICOM to NIfTI conversion. "
    "J Neurosci Methods 2016;264:47-56"
)
EXPLOREASL_2020 = (
    "Mutsaerts HJMM, Petr J, Groot P, et al. ExploreASL: an image processing pipeline for "
    "multi-center ASL perfusion MRI studies. NeuroImage 2020;219:117031"
)
CLEMENT_2022 = (
    "Clement P, Castellaro M, Okell TW, et al. ASL-BIDS, the brain imaging data structure "
    "extension for arterial spin labeling. Sci Data 2022;9:543"
)
#: GE's ΔM scale factor: product releases (software major version > 15) and the older
#: work-in-progress sequence (ExploreASL ``xASL_quant_ASL``).
GE_DELTAM_SCALE = 32.0
GE_WIP_DELTAM_SCALE = 45.24
GE_LAST_WIP_RELEASE = 15
PHILIPS_FIELDS = (
    "UsePhilipsFloatNotDisplayScaling",
    "PhilipsRescaleSlope",
    "PhilipsRescaleIntercept",
    "PhilipsScaleSlope",
)
#: DICOM tags of the Philips slopes (Chenevert 2014; dcm2niix Philips notes).
PHILIPS_TAGS = {"PhilipsRescaleSlope": "(2005,140A)", "PhilipsScaleSlope": "(2005,100E)"}
_RECONVERT = "or reconvert the DICOMs with dcm2niix -p y (its default)"


class ScalingFieldError(ValueError):
    """A vendor convention needs a sidecar field that is missing or invalid.

    Parameters
    ----------
    image : str
        ``"asl"`` (the ASL series' sidecar) or ``"m0"`` (the separate M0 scan's sidecar).
    problem : str
        What is wrong, naming the field and its value.
    fix : str
        What would fix it.
    """

    def __init__(self, image: str, problem: str, fix: str) -> None:
        self.image, self.problem, self.fix = image, problem, fix
        super().__init__(f"{image} sidecar: {problem} ({fix})")


@dataclass(frozen=True)
class ImageScaling:
    """How the stored values of one image become signal.

    Attributes
    ----------
    factor : float
        Multiplies every volume of the image.
    deltam_factor : float
        Further multiplies its ``deltam`` volumes (GE).
    rule : str
        The convention applied, in words.
    sources : tuple of str
        Its citations.
    vendor : str or None
        The vendor whose convention was applied (None: no convention, values as stored).
    """

    factor: float = 1.0
    deltam_factor: float = 1.0
    rule: str = "none: values used as stored"
    sources: tuple[str, ...] = ()
    vendor: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Plain values for the provenance."""
        return {
            "vendor": self.vendor,
            "factor": self.factor,
            "deltam_factor": self.deltam_factor,
            "rule": self.rule,
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class VendorScaling:
    """The scaling of the ASL series and of its separate M0 scan.

    Attributes
    ----------
    asl : ImageScaling
        The ASL series (its m0scan volumes included).
    m0 : ImageScaling or None
        A separate M0 scan (None when there is none).
    """

    asl: ImageScaling = ImageScaling()
    m0: ImageScaling | None = None

    def volume_factors(self, volume_types: Sequence[str]) -> np.ndarray:
        """Return the factor of each volume of the ASL series.

        Parameters
        ----------
        volume_types : sequence of str
            ``aslcontext`` volume types.

        Returns
        -------
        ndarray
            One factor per volume.
        """
        deltam = np.array([kind == "deltam" for kind in volume_types])
        return self.asl.factor * np.where(deltam, self.asl.deltam_factor, 1.0)

    @property
    def m0_factor(self) -> float:
        """Factor of the separate M0 scan (1 without one)."""
        return self.m0.factor if self.m0 is not None else 1.0

    @property
    def images(self) -> tuple[tuple[str, ImageScaling], ...]:
        """(name, scaling) of the ASL series and, when there is one, the separate M0 scan."""
        named = (("ASL series", self.asl), ("separate M0 scan", self.m0))
        return tuple((name, image) for name, image in named if image is not None)

    def to_dict(self) -> dict[str, Any]:
        """Plain values for the CBF sidecar's ``scaling`` entry."""
        return {
            "asl": self.asl.to_dict(),
            "m0_scan": self.m0.to_dict() if self.m0 is not None else None,
        }


def _is_vendor(sidecar: Mapping[str, Any], pattern: str) -> bool:
    manufacturer = sidecar.get("Manufacturer")
    return isinstance(manufacturer, str) and re.search(pattern, manufacturer, re.I) is not None


def _positive(sidecar: Mapping[str, Any], field: str, image: str, why: str) -> float:
    value = sidecar.get(field)
    header = f"the DICOM tag {PHILIPS_TAGS[field]}"
    if value is None:
        raise ScalingFieldError(
            image, f"{field} is missing; {why}", f"add {field} from {header} {_RECONVERT}"
        )
    valid = isinstance(value, int | float) and not isinstance(value, bool)
    if not valid or not (np.isfinite(value) and value > 0):
        raise ScalingFieldError(
            image,
            f"{field} is {value!r:.40}; {why}",
            f"give the positive number of {header} {_RECONVERT}",
        )
    return float(value)


def philips_scaling(sidecar: Mapping[str, Any], image: str = "asl") -> ImageScaling:
    """Apply the Philips display/floating-point convention to one image's sidecar.

    Parameters
    ----------
    sidecar : mapping
        The image's JSON sidecar.
    image : str
        ``"asl"`` or ``"m0"``, for error messages.

    Returns
    -------
    ImageScaling
        Factor 1/(RS·SS) for display values, 1 for floating-point values.

    Raises
    ------
    ScalingFieldError
        Philips slopes without ``UsePhilipsFloatNotDisplayScaling``, or display values
        without a valid ``PhilipsRescaleSlope``/``PhilipsScaleSlope``.
    """
    sources = (CHENEVERT_2014, DCM2NIIX_PHILIPS, EXPLOREASL_2020)
    present = [field for field in PHILIPS_FIELDS if sidecar.get(field) is not None]
    if not present:
        return ImageScaling(
            vendor="Philips",
            rule="Philips without scaling fields: values taken as already floating-point "
            "(ASL-BIDS asks for scaled images; ExploreASL's conversion applies and removes "
            "the fields)",
            sources=(CLEMENT_2022, EXPLOREASL_2020),
        )
    use_float = sidecar.get("UsePhilipsFloatNotDisplayScaling")
    if use_float is None:
        raise ScalingFieldError(
            image,
            f"UsePhilipsFloatNotDisplayScaling is missing while {present[0]} is given, so "
            "display and floating-point values cannot be told apart",
            "add UsePhilipsFloatNotDisplayScaling: 1 if dcm2niix ran with -p y (its default), "
            "0 with -p n",
        )
    if use_float not in (0, 1):  # True/False compare equal to 1/0
        raise ScalingFieldError(
            image, f"UsePhilipsFloatNotDisplayScaling is {use_float!r:.40}", "use 1 or 0"
        )
    if use_float == 1:
        return ImageScaling(
            vendor="Philips",
            rule="Philips floating-point values (UsePhilipsFloatNotDisplayScaling 1): as stored",
            sources=sources,
        )
    why = "Philips display values (UsePhilipsFloatNotDisplayScaling 0) need it"
    rescale = _positive(sidecar, "PhilipsRescaleSlope", image, why)
    scale = _positive(sidecar, "PhilipsScaleSlope", image, why)
    return ImageScaling(
        vendor="Philips",
        factor=1.0 / (rescale * scale),
        rule=f"Philips display values to floating point: FP = DV / (RS*SS), "
        f"RS {rescale:g}, SS {scale:g}",
        sources=sources,
    )


def ge_scaling(
    sidecar: Mapping[str, Any], volume_types: Sequence[str], total_acquired_pairs: int
) -> ImageScaling:
    """Apply GE's ΔM convention (sum over NEX pairs times 32) to an ASL series.

    Parameters
    ----------
    sidecar : mapping
        The ASL series' sidecar.
    volume_types : sequence of str
        ``aslcontext`` volume types.
    total_acquired_pairs : int
        ``TotalAcquiredPairs`` (NEX of GE's product sequences).

    Returns
    -------
    ImageScaling
        ``deltam_factor`` 1/(32·NEX) when the series holds ΔM volumes, else no scaling.

    Raises
    ------
    ScalingFieldError
        ΔM volumes without a readable ``SoftwareVersions`` (it decides 32 or 45.24).
    """
    if "deltam" not in volume_types:
        return ImageScaling(rule="GE without deltam volumes: values used as stored", vendor="GE")
    version = sidecar.get("SoftwareVersions")
    match = re.search(r"\d+", version) if isinstance(version, str) else None
    if match is None:
        shown = "missing" if version is None else f"{version!r:.40}"
        raise ScalingFieldError(
            image="asl",
            problem=f"SoftwareVersions is {shown}; GE deltam volumes are scaled by 32 x NEX "
            f"(product) or {GE_WIP_DELTAM_SCALE:g} x NEX (releases up to "
            f"{GE_LAST_WIP_RELEASE}) and the release decides which",
            fix="add SoftwareVersions from the DICOM header (0018,1020), e.g. "
            "'27_LX_MR_Software_release:RX27.0_R02'",
        )
    release = int(match.group())
    scale = GE_DELTAM_SCALE if release > GE_LAST_WIP_RELEASE else GE_WIP_DELTAM_SCALE
    return ImageScaling(
        vendor="GE",
        deltam_factor=1.0 / (scale * total_acquired_pairs),
        rule=f"GE deltam = sum over NEX pairs x {scale:g} (release {release}): "
        f"divided by {scale:g} x {total_acquired_pairs} (TotalAcquiredPairs)",
        sources=(EXPLOREASL_2020,),
    )


def vendor_scaling(
    asl_sidecar: Mapping[str, Any],
    volume_types: Sequence[str],
    total_acquired_pairs: int,
    m0_sidecar: Mapping[str, Any] | None = None,
) -> VendorScaling:
    """Decide the scaling of an ASL series and its separate M0 scan from their sidecars.

    Parameters
    ----------
    asl_sidecar : mapping
        The ASL series' sidecar.
    volume_types : sequence of str
        ``aslcontext`` volume types.
    total_acquired_pairs : int
        ``TotalAcquiredPairs``.
    m0_sidecar : mapping, optional
        The separate M0 scan's sidecar.

    Returns
    -------
    VendorScaling
        The factors, the rules applied and their citations.

    Raises
    ------
    ScalingFieldError
        When a convention needs a field that is missing or invalid.
    """
    m0 = None
    if _is_philips(asl_sidecar):
        asl = philips_scaling(asl_sidecar, "asl")
    elif _is_vendor(asl_sidecar, r"\bGE\b"):
        asl = ge_scaling(asl_sidecar, volume_types, total_acquired_pairs)
    else:
        asl = _as_stored(asl_sidecar)
    if m0_sidecar is not None:
        m0 = (
            philips_scaling(m0_sidecar, "m0") if _is_philips(m0_sidecar) else _as_stored(m0_sidecar)
        )
    return VendorScaling(asl, m0)


def _as_stored(sidecar: Mapping[str, Any]) -> ImageScaling:
    manufacturer = sidecar.get("Manufacturer")
    name = f"{manufacturer:.40}" if isinstance(manufacturer, str) else "unknown manufacturer"
    return ImageScaling(
        rule=f"{name}: no vendor convention, values used as stored (NIfTI scl_slope/scl_inter)"
    )


def _is_philips(sidecar: Mapping[str, Any]) -> bool:
    """Philips by name, or by the Philips-only fields dcm2niix writes."""
    return _is_vendor(sidecar, "philips") or any(
        sidecar.get(field) is not None for field in PHILIPS_FIELDS
    )
