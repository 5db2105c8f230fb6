"""Benchmark: the operate planner at 24 hours x 10 pools x 8 caps (target: optimal in under 2 s).

Ten pools, one per accelerator type that holds Llama-3.1-8B, eight replicas each, eight caps
each, a diurnal demand at about half the fleet's capacity and a site budget that binds at the
peak.  Capacities and power curves come from the real frontiers (calibrated constants).  Prints
build and solve time, status, objective, bound and gap for HiGHS (the default) and CP-SAT at a
2 s time limit (median of 3 runs) and a 20 s one.

    python3 -m pytest -m bench -s tests/test_bench_plan_operate.py
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from fleet.plan import operate as op

ACCS = ["H100-SXM", "H200", "A100-80GB", "A100-40GB", "L40S", "B200", "MI300X", "H100-PCIe", "L4", "A10G"]


def problem(hours: int = 24, caps: int = 8) -> op.OperateProblem:
    from fleet.frontier import OperatingPoint, accelerator_power, build_serving_profile

    groups, pool_caps = [], {}
    total = 0.0
    for name in ACCS:
        acc = accelerator_power(name)
        grid = tuple(float(round(c, 1)) for c in np.linspace(max(acc.power_min_w or 0.0, 0.4 * acc.power_max_w),
                                                           acc.power_max_w, caps))
        opts = []
        for c in grid:
            prof = build_serving_profile(OperatingPoint("llama-3.1-8b", name, 1, power_cap_w=c, max_batch=128))
            cap = op.replica_capacity(prof, 600, 250, ttft_s=2.0, tpot_s=0.1)
            rps = 0.85 * cap.rps_model
            opts.append(op.CapOption(c, rps, tuple(cap.power_at(u * rps) for u in op.DEFAULT_LEVELS), c))
        idle = float(build_serving_profile(OperatingPoint("llama-3.1-8b", name, 1, max_batch=128)).idle_power_w)
        groups.append(op.Group(acc.name, acc.name, "llama-3.1-8b", 8, 1, "row0", tuple(opts), idle,
                               350.0 / acc.tdp_w))
        pool_caps[acc.name] = grid
        total += 8 * opts[-1].capacity_rps
    h = np.arange(hours)
    lam = total * (0.35 + 0.2 * np.cos(2 * np.pi * (h - 14) / 24))
    site = sum(8 * g.options[-1].peak_w * (1 + g.overhead_per_w) for g in groups) * 0.6 + 10 * 900.0
    return op.OperateProblem(tuple(groups), pool_caps, {g.pool: "row0" for g in groups},
                             {g.pool: 900.0 for g in groups}, {"llama-3.1-8b": lam}, np.full(hours, 1.2),
                             60 + 30 * np.sin(h / 24 * 2 * np.pi), 250 + 80 * np.cos(h / 24 * 2 * np.pi),
                             site_budget_w=site, objective="carbon")


@pytest.mark.bench
def test_bench_operate_24h_10_pools_8_caps():
    pr = problem()
    for backend in ("highs", "cp-sat"):
        for limit in (2.0, 20.0):
            builds, solves, sols = [], [], []
            for _ in range(3 if limit < 10 else 1):
                t = time.perf_counter()
                om = op.build(pr)
                builds.append(time.perf_counter() - t)
                t = time.perf_counter()
                s = om.model.solve(time_limit_s=limit, backend=backend)
                solves.append(time.perf_counter() - t)
                sols.append(s)
            s = sols[-1]
            print(f"\noperate 24 h x 10 pools x 8 caps, {backend}, time limit {limit:g} s: {om.model.n_vars} "
                  f"variables, {len(om.model.constraints)} rows; build {statistics.median(builds):.2f} s, "
                  f"solve {statistics.median(solves):.2f} s (median of {len(sols)}); {s.status}, objective "
                  f"{s.objective:.5g} {s.objective_unit}, bound {s.bound:.5g}, gap {100 * s.gap:.3f} %")
            assert s.ok and s.violations == []
