"""Single-patient z maps: one patient's map against a control sample, voxel by voxel.

numpy only; the equations (Crawford & Howell 1998, with covariates) are in
``docs/group-voxelwise.md`` section 7.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike


def _covariates(values: ArrayLike | None, rows: int, name: str) -> np.ndarray:
    if values is None:
        return np.zeros((rows, 0))
    array = np.asarray(values, dtype=float)
    array = array.reshape(rows, -1) if array.ndim <= 1 else array
    if array.shape[0] != rows or array.ndim != 2 or not np.all(np.isfinite(array)):
        raise ValueError(f"{name} must be finite with {rows} row(s), got shape {array.shape}")
    return array


def patient_zmap(
    patient: ArrayLike,
    controls: ArrayLike,
    control_covariates: ArrayLike | None = None,
    patient_covariates: ArrayLike | None = None,
    *,
    prediction_interval: bool = True,
) -> np.ndarray:
    """Return the z map of one patient against a control sample, voxel by voxel.

    Parameters
    ----------
    patient : array_like
        The patient's map (any shape ``S``, e.g. ``(n_voxels,)`` or 3-D).
    controls : array_like, shape (n_controls, *S)
        The controls' maps on the same grid.
    control_covariates : array_like, shape (n_controls,) or (n_controls, q), optional
        Covariates regressed out in the controls (e.g. age); centred internally.
    patient_covariates : array_like, shape (q,), optional
        The patient's covariate values (required with ``control_covariates``).
    prediction_interval : bool, optional
        Divide by the standard error of prediction
        ``s sqrt(1 + 1/n + x0'(Xc'Xc)^-1 x0)`` (default; Crawford & Howell 1998 without
        covariates), where ``Xc`` are the centred control covariates and ``x0`` the patient's
        centred covariates; if False divide by the residual SD ``s`` alone.

    Returns
    -------
    ndarray, shape S
        ``(patient - predicted control mean) / SD``, with ``s^2 = RSS / (n - q - 1)``; NaN where
        the SD is zero or an input is not finite.
    """
    x0 = np.asarray(patient, dtype=float)
    y = np.asarray(controls, dtype=float)
    if y.shape[1:] != x0.shape:
        raise ValueError(f"controls {y.shape} must be (n_controls, *{x0.shape})")
    n = y.shape[0]
    covariates = _covariates(control_covariates, n, "control_covariates")
    q = covariates.shape[1]
    if (patient_covariates is None) != (control_covariates is None):
        raise ValueError("give covariates for both the controls and the patient, or for neither")
    target = _covariates(patient_covariates, 1, "patient_covariates")[0] if q else np.zeros(0)
    if target.size != q:
        raise ValueError(f"patient_covariates needs {q} value(s), got {target.size}")
    if n - q - 1 < 1:
        raise ValueError(f"{n} controls are too few for {q} covariate(s)")
    centre = covariates.mean(axis=0)
    centred, x_new = covariates - centre, target - centre
    design = np.column_stack([np.ones(n), centred])
    flat = y.reshape(n, -1)
    beta, *_ = np.linalg.lstsq(design, flat, rcond=None)
    residual = flat - design @ beta
    variance = np.einsum("nv,nv->v", residual, residual) / (n - q - 1)
    factor = 1.0
    if prediction_interval:
        leverage = float(x_new @ np.linalg.solve(centred.T @ centred, x_new)) if q else 0.0
        factor = 1.0 + 1.0 / n + leverage
    predicted = beta[0] + (x_new @ beta[1:] if q else 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = (x0.reshape(-1) - predicted) / np.sqrt(variance * factor)
    return np.where(np.isfinite(z), z, np.nan).reshape(x0.shape)
