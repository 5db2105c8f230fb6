"""Benchmarks of the main job (run with: python -m pytest -m bench -s tests/test_run_bench.py).

Prints the wall time of `fleet run` (the default scenario) end to end and per step (median of 3),
and the time to render the report alone.  No timing assertions: the figures are for the record."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import pytest

from fleet.data import DEFAULT_SCENARIO
from fleet.report import write_report
from fleet.run import run_scenario

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.bench
def test_bench_default_scenario_end_to_end(tmp_path):
    walls, steps = [], []
    for k in range(3):
        t0 = time.perf_counter()
        r = run_scenario(DEFAULT_SCENARIO, tmp_path / f"r{k}", quiet=True)
        walls.append(time.perf_counter() - t0)
        steps.append(r.meta["timings_s"])
    med = statistics.median(walls)
    n = int(r.accounts.value("requests.total"))
    print(f"\nfleet run (default scenario): median {med:.2f} s over 3 runs "
          f"({n:,} requests, {r.accounts.value('horizon') / 3600:.0f} h simulated)")
    for name in steps[0]:
        print(f"  {name:<16} {statistics.median(s[name] for s in steps):7.3f} s")
    t = []
    for k in range(3):
        t0 = time.perf_counter()
        write_report(r, tmp_path / f"rep{k}")
        t.append(time.perf_counter() - t0)
    print(f"  report alone (9 pages PDF + PNG + CSV + JSON): median {statistics.median(t):.2f} s")
