"""`fleet calibrate` as a library call: both fits, in order, and one consistent constant set.

1. Serving constants (:data:`fleet.hardware.calibrate.DEFAULT_FIT_PARAMS`) against the dense
   ML.ENERGY v3 H100 rows (:mod:`fleet.frontier.mlenergy`).
2. DVFS-shape constants (:data:`fleet.hardware.zeus.DVFS_FIT_PARAMS`) against the Zeus V100 and
   A40 power-limit curves, starting FROM the constants of step 1 (the busy baseline fitted there
   shapes the capped curves), so that the written set is the one both reports describe.

RTX 6000 and P100 Zeus curves are never fitted: they are reported as held-out GPUs.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ..catalog.device_energy import DeviceConstants, load_device_constants
from ..hardware.calibrate import FitResult
from ..hardware.zeus import ZEUS_FILES, ZEUS_HELDOUT, fit_dvfs, load_zeus_set, zeus_report
from .mlenergy import DEFAULT_HOLDOUT, calibrate, load_problem


def _fitted_table(fit: FitResult, base: DeviceConstants) -> dict:
    return {k: {"value": v, "physical": base.constant(k).value, "unit": base.constant(k).unit,
                "range": [base.constant(k).lo, base.constant(k).hi]} for k, v in fit.values.items()}


def calibrate_all(mlenergy_csv: str | Path, zeus_dir: str | Path, *, input_tokens=None,
                  holdout: tuple[str, ...] = DEFAULT_HOLDOUT) -> tuple[dict, FitResult]:
    """Run both fits; return the report and the merged fit (values relative to the physical file)."""
    t0 = time.perf_counter()
    base = load_device_constants(False)
    prob = load_problem(mlenergy_csv, input_tokens=input_tokens)
    rep = calibrate(prob, holdout=holdout, base=base)
    fit = rep.pop("_fit")
    serving = fit.constants(base)
    zset = load_zeus_set(zeus_dir)
    zfit = fit_dvfs(zset, serving)
    final = zfit.constants(serving)
    heldout_files = {k: v for k, v in ZEUS_HELDOUT.items() if (Path(zeus_dir) / f"summary_power_{k}.csv").exists()}
    zrep: dict[str, Any] = {"data": str(zeus_dir), "fitted": _fitted_table(zfit, base),
            "uncalibrated": zeus_report(zeus_dir, base), "calibrated": zeus_report(zeus_dir, final),
            "heldout_gpus_uncalibrated": zeus_report(zeus_dir, base, files=heldout_files) if heldout_files else {},
            "heldout_gpus_calibrated": zeus_report(zeus_dir, final, files=heldout_files) if heldout_files else {},
            "holdout": {}}
    for i, (stem, gpu) in enumerate(ZEUS_FILES.items()):       # fit on the other GPU, test on this one
        others = [z for j, z in enumerate(zset) if j != i]
        if others:
            hf = fit_dvfs(others, serving)
            zrep["holdout"][gpu] = zeus_report(zeus_dir, hf.constants(serving), files={stem: gpu})[gpu]
    rep["zeus"] = zrep
    rep["seconds"] = time.perf_counter() - t0
    merged = FitResult(values={**fit.values, **zfit.values}, start={**fit.start, **zfit.start},
                       cost=fit.cost + zfit.cost, nfev=fit.nfev + zfit.nfev, success=fit.success and zfit.success,
                       message=f"{fit.message}; {zfit.message}", at_bound=fit.at_bound + zfit.at_bound)
    return rep, merged
