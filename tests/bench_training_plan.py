"""On-demand benchmark and experiments of the training planner (fleet.plan.training); not collected
by pytest (the bench test in test_plan_training_bench.py calls :func:`benchmark`).

    PYTHONPATH=$PWD python3 tests/bench_training_plan.py --bench            # 200-job week, 4 limits
    PYTHONPATH=$PWD python3 tests/bench_training_plan.py --experiments      # 8 regions, needs ../shared/data
    PYTHONPATH=$PWD python3 tests/bench_training_plan.py --make-scenario-jobs

Jobs: AcmeTrace-calibrated draws (fleet.workload.jobs.generate_jobs, Seren) with their run times
multiplied by ``stretch`` (AcmeTrace's median job runs two minutes: as drawn, 200 jobs fill about
1% of a 64-GPU pool for a week and no capacity is contended; x20 makes it about a third),
deadlines 1 to 7 days after the earliest end, Llama-3.1-8B on H100 (the default profile for
jobs without a model), power limits 350/455/560/700 W, hourly slots.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
REGIONS = ("gb", "de", "caiso", "jp-tk", "ercot", "nyiso", "pjm", "sg")
START = "2023-03-06T00:00:00Z"
CAPS = (0.5, 0.65, 0.8, 1.0)


def make_jobs(n=200, days=7, seed=11, stretch=20.0, max_gpus=64, slack_days=(1, 7)):
    from fleet.workload.jobs import generate_jobs

    df = generate_jobs(n=n, horizon_s=days * 86400.0, seed=seed, max_gpus=max_gpus, deferrable_frac=1.0)
    df["duration_s"] = np.minimum(np.round(df["duration_s"] * stretch), 48 * 3600.0).clip(lower=60.0)
    rng = np.random.default_rng(seed)
    slack = rng.integers(slack_days[0], slack_days[1] + 1, len(df)) * 86400.0
    df["deadline_s"] = np.round(df["submit_s"] + df["duration_s"] + slack)
    df["fail_at_s"] = np.nan
    return df


def planner_jobs(df, caps_frac=CAPS, interruptible=True, accelerator="H100-SXM", model="llama-3.1-8b"):
    """fleet.plan.training jobs from a job table (as fleet.planning.training does for a scenario)."""
    from fleet.frontier import accelerator_power
    from fleet.frontier.training import training_profile_for_job
    from fleet.plan import training as pt
    from fleet.planning.training import SLOT_S, cap_point

    acc = accelerator_power(accelerator)
    caps = sorted({round(max(acc.power_min_w, f * acc.power_max_w), 1) for f in caps_frac})
    out = []
    for r in df.itertuples(index=False):
        prof = {c: training_profile_for_job(model, acc.name, int(r.gpus), power_cap_w=c,
                                            checkpoint_interval_s=float(r.checkpoint_interval_s), calibrated=True)
                for c in caps}
        base = training_profile_for_job(model, acc.name, int(r.gpus), power_cap_w=None,
                                        checkpoint_interval_s=float(r.checkpoint_interval_s), calibrated=True)
        steps = max(1, int(round(float(r.duration_s) / base.step_time_s)))
        full = prof[caps[-1]]
        out.append(pt.TrainingJob(
            int(r.job_id), int(r.gpus), steps, int(math.ceil(r.submit_s / SLOT_S - 1e-9)),
            int(math.floor(r.deadline_s / SLOT_S + 1e-9)) - 1, tuple(cap_point(prof[c]) for c in caps),
            interruptible=interruptible, restart_s=2 * full.checkpoint_time_s + full.step_time_s,
            restart_j=2 * full.checkpoint_time_s * full.checkpoint_power_w, submit_s=float(r.submit_s),
            deadline_s=float(r.deadline_s)))
    return out


def slots_for(ci, gpus=64, price=None, idle_w=72.0):
    from fleet.plan import training as pt

    n = len(ci)
    return pt.Slots(np.asarray(ci, float), np.full(n, 60.0) if price is None else np.asarray(price, float),
                    np.full(n, 1.2), np.full(n, gpus), idle_w, gpus)


def region_ci(region, n):
    from fleet.grid import load_region_signals

    t0 = pd.Timestamp(START)
    sig = load_region_signals(region, "average_ci").for_window(t0, n * 3600.0)
    off = np.arange(n) * 3600.0
    return np.asarray(sig.bind(t0).mean_over(off, off + 3600.0), float)


def synthetic_ci(n, seed=0):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    return 300 + 150 * np.cos((t - 14) / 24 * 2 * np.pi) + 60 * np.sin(t / 80) + rng.uniform(0, 40, n)


def benchmark(time_limit_s=60.0, workers=2, stretch=20.0, out=print):
    """The 200-job week at hourly slots with 4 power limits: build, greedy, solve, gap."""
    from fleet.plan import training as pt

    df = make_jobs(stretch=stretch)
    jobs = planner_jobs(df)
    n = int(max(j.last_slot for j in jobs)) + 1
    sl = slots_for(synthetic_ci(n))
    t = time.perf_counter()
    built = pt.build(jobs, sl)
    t_build = time.perf_counter() - t
    t = time.perf_counter()
    gr = pt.greedy(jobs, sl)
    t_greedy = time.perf_counter() - t
    t = time.perf_counter()
    res = pt.plan(jobs, sl, time_limit_s=time_limit_s, workers=workers)
    t_all = time.perf_counter() - t
    s = res.solution
    m = res.metrics()
    fig = {"jobs": len(jobs), "slots": n, "vars": built.model.n_vars, "rows": len(built.model.constraints),
           "build_s": round(t_build, 2), "greedy_s": round(t_greedy, 2), "plan_s": round(t_all, 2),
           "solve_s": s.wall_s, "status": s.status, "objective_kg": s.objective, "bound_kg": s.bound,
           "gap_pct": 100 * s.gap, "greedy_kg": gr.carbon_kg if gr else None, "baseline_kg": m["baseline_carbon_kg"],
           "per_job_bound_kg": m["bound_carbon_kg"], "bound_capture_pct": m["bound_capture_pct"],
           "workers": workers, "time_limit_s": time_limit_s}
    out("training plan benchmark: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                                 for k, v in fig.items()))
    return fig


def _greedy_kg(res):
    """The carbon of the first (greedy) schedule of a plan, for 'did CP-SAT improve on it'."""
    from fleet.plan import training as pt

    gr = pt.greedy(res.built.jobs, res.built.slots)
    return gr.carbon_kg if gr is not None else float("inf")


def experiments(time_limit_s=5.0, stretch=20.0, out=print, regions=REGIONS):
    """Per region: carbon saved against running at submission, share of the per-job bound
    captured, interruptible or not, and what power limits add on top of shifting."""
    from fleet.plan import training as pt

    df = make_jobs(stretch=stretch)
    rows = []
    for region in regions:
        for inter in (True, False):
            jobs = planner_jobs(df, interruptible=inter)
            n = int(max(j.last_slot for j in jobs)) + 1
            sl = slots_for(region_ci(region, n))
            jobs_full = planner_jobs(df, caps_frac=(1.0,), interruptible=inter)
            t0 = time.perf_counter()
            shift = pt.plan(jobs_full, sl, time_limit_s=time_limit_s)
            both = pt.plan(jobs, sl, time_limit_s=time_limit_s)
            wall = time.perf_counter() - t0
            b = both.baseline
            floor = b.floor_carbon_kg
            if not (shift.ok and both.ok):
                out(f"{region} interruptible={inter}: no schedule: shift {shift.solution and shift.solution.status}, "
                    f"with limits {both.solution and both.solution.status}: {(shift.conflicts + both.conflicts)[:2]}")
                continue
            def pct(x):   # saving on the jobs' carbon above the idle floor
                return 100 * (b.carbon_kg - x) / (b.carbon_kg - floor)
            rows.append({
                "region": region, "interruptible": inter,
                "baseline_kg": b.carbon_kg,
                "shift_saving_pct": pct(shift.schedule.carbon_kg),
                "shift_bound_pct": pct(shift.bound.carbon_kg),
                "shift_capture_pct": 100 * (b.carbon_kg - shift.schedule.carbon_kg) / (b.carbon_kg - shift.bound.carbon_kg),
                "caps_saving_pct": pct(both.schedule.carbon_kg),
                "caps_bound_pct": pct(both.bound.carbon_kg),
                "caps_capture_pct": both.metrics()["bound_capture_pct"],
                "caps_add_pts": pct(both.schedule.carbon_kg) - pct(shift.schedule.carbon_kg),
                "total_saving_pct": both.metrics()["saving_pct"],
                "gap_pct": 100 * both.solution.gap, "missed": len(both.schedule.deadlines_missed),
                "base_missed": len(b.deadlines_missed),
                "first": f"{shift.hint_from}/{both.hint_from}",
                "cpsat_better": f"{int(shift.schedule.carbon_kg < _greedy_kg(shift) - 1e-9)}"
                                f"/{int(both.schedule.carbon_kg < _greedy_kg(both) - 1e-9)}",
                "wall_s": wall})
            out(", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[-1].items()))
    tab = pd.DataFrame(rows)
    out(tab.to_string(index=False, float_format=lambda x: f"{x:.1f}"))
    return tab


def make_scenario_jobs():
    """scenarios/training_carbon_jobs.csv (see the scenario's header)."""
    from fleet.workload.jobs import generate_jobs, write_jobs

    df = generate_jobs(n=40, horizon_s=4 * 86400, seed=7, max_gpus=16, deferrable_frac=1.0)
    df["duration_s"] = np.minimum(np.round(df["duration_s"] * 30), 30 * 3600).clip(lower=1800)
    rng = np.random.default_rng(7)
    slack = rng.integers(1, 4, len(df)) * 86400.0
    df["deadline_s"] = np.minimum(np.round(df["submit_s"] + df["duration_s"] + slack), 7 * 86400.0)
    df["fail_at_s"] = np.nan
    write_jobs(df, ROOT / "scenarios" / "training_carbon_jobs.csv")


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--bench", action="store_true")
    ap.add_argument("--experiments", action="store_true")
    ap.add_argument("--make-scenario-jobs", action="store_true")
    ap.add_argument("--time-limit", type=float, default=None)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--stretch", type=float, default=20.0)
    ap.add_argument("--regions", default=",".join(REGIONS), help="comma-separated (experiments)")
    a = ap.parse_args()
    if a.make_scenario_jobs:
        make_scenario_jobs()
    if a.bench:
        benchmark(a.time_limit or 60.0, a.workers, a.stretch)
    if a.experiments:
        experiments(a.time_limit or 5.0, a.stretch, regions=tuple(a.regions.split(",")))
    sys.exit(0)
