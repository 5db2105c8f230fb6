"""CSV tables of a run (column names carry their units)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..accounting import iter_metric_rows
from .data import RunResult

#: above this many requests the per-request table is written as Parquet instead of CSV
MAX_CSV_REQUESTS = 100_000


def write_tables(r: RunResult, out: Path) -> list[str]:
    """Write metrics.csv, pools.csv, models.csv, hourly.csv, nodes.csv, jobs.csv, requests.csv
    (or requests.parquet when large) and the energy-model tables into ``out``; returns the names."""
    a = r.accounts
    files: list[str] = []

    def put(name: str, df: pd.DataFrame) -> None:
        df.to_csv(out / name, index=False, float_format="%.10g")
        files.append(name)

    put("metrics.csv", pd.DataFrame(list(iter_metric_rows(a.metrics)),
                                    columns=["metric", "value", "unit", "note"]))
    put("pools.csv", a.pools)
    put("models.csv", a.models)
    hourly = a.hourly.copy()
    if len(hourly):
        hourly["hour_utc"] = pd.DatetimeIndex(hourly["hour_utc"]).strftime("%Y-%m-%dT%H:%M:%SZ")
    put("hourly.csv", hourly)
    put("nodes.csv", a.nodes)
    for name, df in plan_tables(r).items():
        put(f"{name}.csv", df)
    if r.sim.jobs is not None and len(r.sim.jobs):
        put("jobs.csv", r.sim.jobs)
    if len(a.requests) > MAX_CSV_REQUESTS:
        a.requests.to_parquet(out / "requests.parquet", index=False)
        files.append("requests.parquet")
    else:
        put("requests.csv", a.requests)
    put("assumptions.csv", pd.DataFrame([vars(x) for x in a.assumptions],
                                        columns=["name", "value", "unit", "source"]))
    an = r.analysis
    if len(an.breakdown):
        put("energy_breakdown.csv", an.breakdown)
    if len(an.lower_bound):
        put("lower_bound.csv", an.lower_bound)
    if len(an.frontier):
        put("frontier.csv", an.frontier)
    return files


def plan_tables(r: RunResult) -> dict[str, pd.DataFrame]:
    """The planners' tables (``fleet.report.plan_<kind>.tables``), by file stem."""
    import importlib

    out: dict[str, pd.DataFrame] = {}
    for o in r.plans:
        try:
            mod = importlib.import_module(f"fleet.report.plan_{o.kind}")
        except ModuleNotFoundError:
            continue
        if hasattr(mod, "tables"):
            out.update(mod.tables(o))
    return out
