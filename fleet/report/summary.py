"""``summary.json``: what was run (scenario, hash, version, commit, seed) and every metric with
its unit.  This is the file scenario regression (:mod:`fleet.regress`) reads."""

from __future__ import annotations

import math
from typing import Any

from .data import RunResult


def _clean(obj: Any):
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        try:
            obj = obj.item()
        except (AttributeError, ValueError):
            pass
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def summary_dict(r: RunResult, files: list[str] | None = None) -> dict:
    m = r.meta
    return _clean({
        "scenario": r.name,
        "title": r.title,
        "scenario_path": m.get("scenario_path"),
        "scenario_hash": r.scenario_hash,
        "scenario_content": m.get("scenario_content"),
        "fleet_version": m.get("version"),
        "git_commit": m.get("git_commit"),
        "seed": r.seed,
        "start_utc": m.get("start_utc"),
        "horizon_s": m.get("horizon_s"),
        "carbon_signal": m.get("carbon_signal"),
        "plan": m.get("plan"),
        "plans": [p.summary() for p in r.plans],
        "scenario_as_written": m.get("scenario_as_written"),
        "scenario_planned": m.get("scenario_planned"),
        "metrics": r.accounts.metrics_dict(),
        "assumptions": [vars(a) for a in r.accounts.assumptions],
        "energy_model_notes": list(r.analysis.notes),
        "files": sorted(files or []),
    })


#: the one file of a report that differs between two runs of the same scenario and seed
RUN_RECORD = "run.json"


def run_record(r: RunResult) -> dict:
    """``run.json``: how this particular run went (wall time per step, in seconds).  Everything
    else in a report folder is a function of the scenario and its seed, byte for byte."""
    m = r.meta
    timings = {k: float(v) for k, v in (m.get("timings_s") or {}).items()}
    return _clean({
        "note": "wall times of this run; the only file of the report that changes when the same "
                "scenario and seed are run again",
        "scenario": r.name,
        "scenario_hash": r.scenario_hash,
        "timings_s": timings,
        "total_s": sum(timings.values()),
    })
