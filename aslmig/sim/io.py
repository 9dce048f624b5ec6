"""Byte-reproducible writers: gzip without timestamps, stable JSON and TSV."""

from __future__ import annotations

import gzip
import json
from collections.abc import Sequence
from pathlib import Path

import nibabel as nb
import numpy as np

GZIP_LEVEL = 6


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray, dtype=np.float32) -> Path:
    """Write a NIfTI-1 image, gzip-compressed with a zero timestamp (same bytes every time).

    Parameters
    ----------
    path : Path
        Destination ending in ``.nii.gz``.
    data : ndarray
        Voxel values (3D or 4D).
    affine : ndarray
        4x4 voxel-to-world matrix.
    dtype : numpy dtype
        On-disk data type.

    Returns
    -------
    Path
        ``path``.
    """
    image = nb.Nifti1Image(np.asarray(data, dtype=dtype), affine)
    image.header.set_xyzt_units("mm", "sec")
    image.header.set_qform(affine, code=1)
    image.header.set_sform(affine, code=1)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(image.to_bytes(), compresslevel=GZIP_LEVEL, mtime=0))
    return path


def write_json(path: Path, content: dict) -> Path:
    """Write indented JSON with a final newline."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(content, indent=2) + "\n")
    return path


def format_cell(value: object) -> str:
    """Format one TSV cell: ``n/a`` for missing, floats to 12 decimals."""
    if value is None or (isinstance(value, float) and not np.isfinite(value)):
        return "n/a"
    if isinstance(value, float | np.floating):
        return repr(round(float(value), 12))
    return str(value)


def write_tsv(path: Path, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> Path:
    """Write a tab-separated table with a header row.

    Parameters
    ----------
    path : Path
        Destination.
    columns : sequence of str
        Header.
    rows : sequence of sequences
        One value per column.

    Returns
    -------
    Path
        ``path``.
    """
    lines = ["\t".join(columns)]
    lines += ["\t".join(format_cell(v) for v in row) for row in rows]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n")
    return path
