"""aslmig: arterial spin labeling perfusion MRI for migraine research, as a BIDS App."""

from aslmig.__about__ import __version__

__all__ = ["__version__"]
