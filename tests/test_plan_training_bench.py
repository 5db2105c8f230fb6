"""Benchmark of the training planner (run with ``-m bench -s``): a 200-job week at hourly slots with
4 power limits; prints build and solve time, the gap to the best bound and the share of the per-job
bound captured (target: within 2% in under 60 s on 2 cores; see tests/bench_training_plan.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))


@pytest.mark.bench
def test_training_plan_200_jobs_week():
    from bench_training_plan import benchmark

    fig = benchmark(time_limit_s=60.0, workers=2)
    assert fig["status"] in ("OPTIMAL", "FEASIBLE")
    assert fig["objective_kg"] <= fig["baseline_kg"]
    assert fig["plan_s"] < 180
