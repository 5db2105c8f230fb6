"""Fit a few device constants to measurements, inside their stated physical ranges.

The fit is generic: a ``predict(constants) -> {metric: array}`` function (built by the caller
from precomputed work arrays, so one evaluation is a handful of numpy operations) and measured
arrays of the same metrics.  Residuals are log-ratios (relative errors, symmetric), solved with
:func:`scipy.optimize.least_squares` with box bounds equal to each constant's plausible range;
parameters are scaled to [0, 1] over their ranges so the solver sees a well-conditioned problem.

Calibrated values never replace the physical constants on disk: :func:`write_calibration`
writes them to a separate file (``device_energy_calibrated.yaml``) with the data set, the fit
quality and the date, and :func:`fleet.catalog.device_energy.load_device_constants` applies them
only when asked (``calibrated=True``).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import yaml

from .._io import write_text_atomic
from ..catalog.device_energy import CALIBRATED_PATH, DeviceConstants

#: the constants `fleet calibrate` fits by default (each kept inside its range)
DEFAULT_FIT_PARAMS: tuple[str, ...] = (
    "memory.attainable_bw_fraction",
    "static.active_fraction",
    "compute.operand_delivery_factor",
    "overhead.iteration_s",
    "overhead.per_sequence_s",
)


@dataclass
class FitResult:
    values: dict[str, float]          # fitted constant -> value
    start: dict[str, float]           # the physical values the fit started from
    cost: float                       # 0.5 * sum of squared log-residuals
    nfev: int
    success: bool
    message: str
    at_bound: list[str] = field(default_factory=list)

    def constants(self, base: DeviceConstants) -> DeviceConstants:
        return base.with_values(self.values, kind="calibrated", source="fleet calibrate", calibrated=True)


def abs_pct_error(pred, meas) -> np.ndarray:
    """|pred - meas| / meas in percent."""
    pred = np.asarray(pred, float)
    meas = np.asarray(meas, float)
    return 100.0 * np.abs(pred - meas) / np.abs(meas)


def error_summary(pred: Mapping[str, np.ndarray], meas: Mapping[str, np.ndarray], mask=None) -> dict:
    """Median and p90 absolute percentage error per metric (over ``mask`` rows)."""
    out = {}
    for k in meas:
        e = abs_pct_error(pred[k], meas[k])
        if mask is not None:
            e = e[np.asarray(mask, bool)]
        out[k] = {"n": int(e.size),
                  "median_ape_pct": float(np.median(e)) if e.size else None,
                  "p90_ape_pct": float(np.percentile(e, 90)) if e.size else None}
    return out


def fit_constants(predict: Callable[[DeviceConstants], Mapping[str, np.ndarray]],
                  measured: Mapping[str, np.ndarray], base: DeviceConstants,
                  params: Sequence[str] = DEFAULT_FIT_PARAMS, *, metrics: Sequence[str] | None = None,
                  mask=None, weights: Mapping[str, float] | None = None, max_nfev: int = 200) -> FitResult:
    """Least-squares fit of ``params`` (within their ranges) to ``measured`` (log residuals)."""
    from scipy.optimize import least_squares

    metrics = list(metrics or measured.keys())
    consts = [base.constant(p) for p in params]
    lo = np.array([c.lo for c in consts])
    hi = np.array([c.hi for c in consts])
    x0 = np.array([(c.value - c.lo) / (c.hi - c.lo) for c in consts])
    sel = np.ones(len(next(iter(measured.values()))), bool) if mask is None else np.asarray(mask, bool)
    w = {m: float((weights or {}).get(m, 1.0)) for m in metrics}
    logm = {m: np.log(np.asarray(measured[m], float)[sel]) for m in metrics}

    def values_of(z):
        return {p: float(lo[i] + np.clip(z[i], 0.0, 1.0) * (hi[i] - lo[i])) for i, p in enumerate(params)}

    def resid(z):
        c = base.with_values(values_of(z), kind="calibrated", source="fit", check_range=False)
        pred = predict(c)
        return np.concatenate([w[m] * (np.log(np.maximum(np.asarray(pred[m], float)[sel], 1e-300)) - logm[m])
                               for m in metrics])

    res = least_squares(resid, x0, bounds=(np.zeros_like(x0), np.ones_like(x0)), x_scale=1.0,
                        diff_step=1e-3, max_nfev=max_nfev, method="trf")
    vals = values_of(res.x)
    at_bound = [p for i, p in enumerate(params) if res.x[i] < 1e-3 or res.x[i] > 1 - 1e-3]
    return FitResult(values=vals, start={c.name: c.value for c in consts}, cost=float(res.cost),
                     nfev=int(res.nfev), success=bool(res.success), message=str(res.message), at_bound=at_bound)


def write_calibration(fit: FitResult, base: DeviceConstants, *, data: str, summary: Mapping | None = None,
                      path: Path | None = None) -> Path:
    """Write the fitted constants to the calibrated-constants file (atomically)."""
    path = Path(path or CALIBRATED_PATH)
    doc: dict[str, Any] = {
        "note": "written by `fleet calibrate --write`; physical values stay in device_energy.yaml",
        "fitted_on": str(data),
        "date_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d"),
        "fit": {"cost": fit.cost, "nfev": fit.nfev, "success": fit.success, "at_bound": fit.at_bound},
        "summary": dict(summary or {}),
        "calibrated": {},
    }
    for name, v in fit.values.items():
        c = base.constant(name)
        doc["calibrated"][name] = {
            "value": float(v), "unit": c.unit, "range": [c.lo, c.hi],
            "physical_value": c.value,
            "source": f"bounded least-squares fit (log residuals) to {data}",
            "kind": "calibrated",
        }
    text = yaml.safe_dump(doc, sort_keys=False, width=110)
    write_text_atomic(path, text)
    return path
