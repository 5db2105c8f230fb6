"""Carbon- and price-aware training plans (fleet.plan.training, fleet.planning.training): hand-checkable
optima, infeasibility in the job table's words, interruptible versus contiguous jobs, power limits only
where they pay, plan and simulation agreeing, and the time-limit path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fleet.errors import InfeasibleError
from fleet.plan import training as pt

FULL = pt.CapPoint(700.0, 1000.0, 8 * 700.0)          # 8 GPUs: 1000 steps per hour at 5.6 kW


def _job(i, hours, first, last, *, gpus=8, caps=(FULL,), interruptible=True, restart_s=0.0, restart_j=0.0):
    steps = int(round(hours * caps[-1].steps_per_slot))
    return pt.TrainingJob(i, gpus, steps, first, last, tuple(caps), interruptible=interruptible,
                          restart_s=restart_s, restart_j=restart_j)


def _slots(ci, gpus=8, idle=0.0, budget=None):
    n = len(ci)
    return pt.Slots(np.asarray(ci, float), np.full(n, 50.0), np.ones(n), np.full(n, gpus), idle, gpus,
                    None if budget is None else np.asarray(budget, float))


def _slots_of(res, jid):
    r = res.schedule.rows
    return sorted(int(t) for t in r[r["job_id"] == jid]["slot"])


# ---------------------------------------------------------------------- optimum by hand
def test_two_jobs_six_slots_hand_checked_optimum():
    """One 8-GPU pool; job 0: 2 h anywhere in hours 0-5, job 1: 1 h in hours 0-2.  Intensities
    500, 100, 400, 50, 300, 200: job 1 takes hour 1 (100), job 0 hours 3 and 5 (50 + 200); each
    hour at 5.6 kWh (PUE 1): (100 + 50 + 200) x 5.6 / 1000 = 1.96 kg.  Baseline (at submission):
    job 0 in hours 0-1, job 1 in hour 2: 1000 x 5.6 / 1000 = 5.6 kg.  Bound (no capacity): job 0
    in hours 3 and 1, job 1 in hour 1: 250 x 5.6 / 1000 = 1.4 kg."""
    res = pt.plan([_job(0, 2, 0, 5), _job(1, 1, 0, 2)], _slots([500, 100, 400, 50, 300, 200]))
    assert res.solution.status == "OPTIMAL"
    assert _slots_of(res, 0) == [3, 5] and _slots_of(res, 1) == [1]
    m = res.metrics()
    assert m["carbon_kg"] == pytest.approx(1.96, rel=1e-9)
    assert m["baseline_carbon_kg"] == pytest.approx(5.6, rel=1e-9)
    assert m["bound_carbon_kg"] == pytest.approx(1.4, rel=1e-9)
    assert m["saving_pct"] == pytest.approx(65.0, rel=1e-9)
    assert m["bound_capture_pct"] == pytest.approx(100 * (5.6 - 1.96) / (5.6 - 1.4), rel=1e-9)
    assert m["deadlines_missed"] == 0 and m["energy_kwh"] == pytest.approx(16.8)


def test_idle_gpus_count_and_last_slot_is_charged_for_its_work_only():
    """A 1.5 h job on a pool of 8 GPUs idling at 50 W: the pool's energy is the idle floor over the
    horizon plus the job's draw above idle for 1.5 h, not 2 h."""
    res = pt.plan([_job(0, 1.5, 0, 3)], _slots([100, 100, 100, 100], idle=50.0))
    e = res.schedule.energy_kwh
    floor = 8 * 50 * 4 / 1000
    assert e == pytest.approx(floor + (5600 - 400) * 1.5 / 1000, rel=1e-6)


# ---------------------------------------------------------------------- infeasible, in words
def test_job_that_cannot_meet_its_deadline_is_named():
    jobs = [_job(0, 1, 0, 5), _job(17, 30, 3, 19, gpus=8)]
    res = pt.plan(jobs, _slots(np.full(24, 100.0)))
    assert not res.ok
    text = "\n".join(res.conflicts)
    assert ("job 17 (8 GPUs, 30.0 h of work at 700 W) cannot finish between its submission (hour 3) and its "
            "deadline (hour 20)") in text
    assert "needs 30.0 h at full power and the window holds 17 h" in text
    with pytest.raises(InfeasibleError, match="job 17"):
        pt.plan(jobs, _slots(np.full(24, 100.0)), raise_on_infeasible=True)


def test_jobs_that_clash_on_the_pool_are_explained_by_the_solver():
    """Each job fits alone, not together: the elastic re-solve names a deadline or the pool's GPUs."""
    jobs = [_job(0, 2, 0, 2), _job(1, 2, 0, 2)]
    res = pt.plan(jobs, _slots([100, 100, 100, 100]), time_limit_s=5)
    assert not res.ok and res.solution.status == "INFEASIBLE"
    text = "\n".join(res.conflicts)
    assert ("must finish between its submission (hour 0) and its deadline (hour 3)" in text
            or "GPUs in hour" in text), text


# ---------------------------------------------------------------------- interruptible vs contiguous
CI_SAW = [100, 500, 100, 500, 100, 500, 300, 300]


def test_interruptible_job_takes_the_clean_hours_a_contiguous_one_cannot():
    inter = pt.plan([_job(0, 3, 0, 7)], _slots(CI_SAW))
    cont = pt.plan([_job(0, 3, 0, 7, interruptible=False)], _slots(CI_SAW))
    assert _slots_of(inter, 0) == [0, 2, 4]
    s = _slots_of(cont, 0)
    assert s == list(range(s[0], s[0] + 3))                  # one block
    assert cont.schedule.blocks[0] == 1 and inter.schedule.blocks[0] == 3
    assert inter.schedule.carbon_kg == pytest.approx(300 * 5.6 / 1000)
    assert cont.schedule.carbon_kg == pytest.approx(700 * 5.6 / 1000)   # 100 + 500 + 100 at best
    # the bound follows the same rule: contiguous jobs get their best block
    assert cont.bound.carbon_kg == pytest.approx(700 * 5.6 / 1000)


def test_restart_cost_makes_interrupting_pay_only_when_it_saves_enough():
    """A pause costs 0.5 h of run time: interrupting twice needs one more hour, so the job stays
    in one block when the saving is smaller than what the extra hours cost."""
    ci = [100, 150, 100, 150, 100, 900, 900, 900]
    cheap = pt.plan([_job(0, 3, 0, 7, restart_s=1800.0)], _slots(ci))
    assert cheap.schedule.blocks[0] == 1
    ci2 = [100, 5000, 100, 5000, 100, 100, 900, 900]
    res = pt.plan([_job(0, 3, 0, 7, restart_s=1800.0)], _slots(ci2))
    assert res.schedule.blocks[0] >= 2
    # a paused job does its work plus the restarts: 3 h + 0.5 h per extra block
    units = res.schedule.rows["units"].sum() / pt.UNITS_PER_SLOT
    assert units == pytest.approx(3 + 0.5 * (res.schedule.blocks[0] - 1), abs=2e-3)


# ---------------------------------------------------------------------- power limits where they pay
def test_power_limits_only_where_they_pay():
    # 350 W: 60% of the speed at 50% of the power -> 17% less energy per step; 550 W: slower AND
    # more energy per step than full power (never worth it)
    low = pt.CapPoint(350.0, 600.0, 8 * 350.0)
    bad = pt.CapPoint(550.0, 700.0, 8 * 550.0)
    caps = (low, bad, FULL)
    ci = np.full(10, 200.0)
    roomy = pt.plan([_job(0, 3, 0, 9, caps=caps)], _slots(ci), objective="energy")
    assert set(roomy.schedule.rows["cap_w"]) == {350.0}
    assert roomy.schedule.energy_kwh == pytest.approx(3 / 0.6 * 2.8, rel=1e-3)
    tight = pt.plan([_job(0, 3, 0, 2, caps=caps)], _slots(ci), objective="energy")
    assert set(tight.schedule.rows["cap_w"]) == {700.0}         # no time to run slower
    mid = pt.plan([_job(0, 3, 0, 3, caps=caps)], _slots(ci), objective="energy")
    assert 550.0 not in set(mid.schedule.rows["cap_w"])         # the dominated limit is never chosen
    assert mid.schedule.energy_kwh < tight.schedule.energy_kwh
    # with hourly carbon, the limit is lowered in the dirty hours first
    ci2 = np.array([50, 50, 50, 400, 400])
    res = pt.plan([_job(0, 3.6, 0, 4, caps=caps)], _slots(ci2), objective="carbon")
    r = res.schedule.rows
    assert set(r[r["slot"] < 3]["cap_w"]) == {700.0}


def test_power_budget_caps_the_draw():
    caps = (pt.CapPoint(350.0, 600.0, 8 * 350.0), FULL)
    ci = np.array([50, 50, 500, 500, 500, 500])
    free = pt.plan([_job(0, 2, 0, 5, caps=caps)], _slots(ci))
    assert _slots_of(free, 0) == [0, 1]
    res = pt.plan([_job(0, 2, 0, 5, caps=caps)], _slots(ci, budget=np.full(6, 3000.0)))
    assert set(res.schedule.rows["cap_w"]) == {350.0}          # 5.6 kW does not fit in 3 kW


# ---------------------------------------------------------------------- time limit
def test_time_limit_returns_the_best_schedule_with_its_gap():
    rng = np.random.default_rng(3)
    n = 72
    ci = 200 + 150 * np.sin(np.arange(n) / 24 * 2 * np.pi) + rng.uniform(0, 50, n)
    jobs = []
    for i in range(24):
        first = int(rng.integers(0, 40))
        h = float(rng.uniform(1, 8))
        jobs.append(_job(i, h, first, min(n - 1, first + int(h) + int(rng.integers(4, 30))),
                         gpus=int(rng.choice([1, 2, 4, 8])), caps=(pt.CapPoint(350.0, 600.0, 8 * 350.0), FULL)))
    res = pt.plan(jobs, _slots(ci, gpus=16), time_limit_s=0.2)
    assert res.ok and res.solution.status in ("FEASIBLE", "OPTIMAL")
    g = res.solution.gap
    assert g is not None and 0.0 <= g < 1.0
    assert res.solution.bound <= res.solution.objective + 1e-9
    assert not res.schedule.deadlines_missed
    assert res.schedule.carbon_kg <= res.baseline.carbon_kg + 1e-9
    assert res.bound.carbon_kg <= res.schedule.carbon_kg + 1e-9


# ---------------------------------------------------------------------- plan and simulation agree
def _scenario(tmp_path: Path, interruptible=True):
    from fleet.scenario import load_scenario

    hours = 48
    t = np.arange(hours)
    ci = 300 + 200 * np.cos((t - 3) / 24 * 2 * np.pi)          # clean mid-afternoon UTC
    lines = ["time_utc,ci [gCO2e/kWh]"] + [f"2023-06-01T{h % 24:02d}:00Z".replace("06-01", f"06-{1 + h // 24:02d}")
                                            + f",{v:.1f}" for h, v in zip(t, ci)]
    (tmp_path / "ci.csv").write_text("\n".join(lines) + "\n")
    jobs = ["job_id,submit_s,gpus,model,tokens,duration_s,priority,deadline_s,deferrable,fail_at_s,"
            "checkpoint_interval_s",
            "0,0,8,,,18000,0,172800,true,,1800",
            "1,3600,4,,,7200,0,86400,true,,1800",
            "2,7200,8,,,10800,0,172800,true,,1800",
            "3,36000,2,,,3600,0,172800,true,,1800"]
    (tmp_path / "jobs.csv").write_text("\n".join(jobs) + "\n")
    (tmp_path / "s.yaml").write_text(f"""
name: tplan
seed: 1
start_utc: 2023-06-01T00:00:00Z
fleet:
  pools:
    - {{name: train, accelerator: H100-SXM, gpus: 16, role: training}}
demand:
  training: {{jobs: jobs.csv, model: llama-3.1-8b}}
simulation: {{horizon_s: {hours * 3600}, telemetry_interval_s: 600}}
site: {{carbon_intensity: {{file: ci.csv}}, price: 60, pue: 1.2}}
plan:
  training: {{objective: carbon, interruptible: {str(interruptible).lower()}, time_limit_s: 10}}
""")
    return load_scenario(tmp_path / "s.yaml")


def test_plan_and_simulation_agree(tmp_path):
    from fleet.planning.training import plan_and_verify

    sc = _scenario(tmp_path)
    out = plan_and_verify(sc, sc.plan.training)
    assert out.status in ("OPTIMAL", "FEASIBLE")
    assert out.verified, out.rounds
    m = out.metrics
    assert m["sim_deadlines_missed"] == 0 and m["deadlines_missed"] == 0
    for k in ("energy", "carbon", "job_energy"):
        assert m["plan_sim_rel_diff"][k] <= 0.02
    assert m["carbon_kg"] < m["baseline_carbon_kg"]
    assert m["bound_carbon_kg"] <= m["carbon_kg"] + 1e-9
    # the planned scenario carries the schedule, re-validated; the simulation paused and resumed
    sch = out.scenario.demand.training.schedule
    assert set(sch) == {0, 1, 2, 3}
    assert out.scenario.derived_from == sc.hash()
    jobs = out.sim.jobs
    assert (jobs["status"] == "completed").all()
    # the report page draws from the outcome alone
    from fleet.report.plan_training import figures, tables

    figs = figures(out, dpi=50)
    assert len(figs) == 2 and all(f.axes for f in figs)
    assert "plan_training_schedule" in tables(out)


def test_cli_json_keys(tmp_path, capsys):
    from fleet.cli import main

    sc = _scenario(tmp_path, interruptible=False)
    rc = main(["plan", "training", str(sc.path), "--json", "--objective", "cost", "--time-limit", "5"])
    assert rc == 0
    d = json.loads(capsys.readouterr().out)
    for k in ("carbon_kg", "baseline_carbon_kg", "bound_carbon_kg", "saving_pct", "bound_capture_pct", "cost_usd",
              "baseline_cost_usd", "energy_kwh", "baseline_energy_kwh", "deadlines_missed", "schedule", "signal"):
        assert k in d, k
    assert d["objective"] == "cost" and d["saving_of"] == "cost_usd"
    # one block per job when nothing may be interrupted
    for w in d["schedule"].values():
        assert all(abs(a[1] - b[0]) < 1e-6 for a, b in zip(w, w[1:]))


# ---------------------------------------------------------------------- the example scenario
def test_example_scenario_saving(shared_data):
    """scenarios/training_carbon.yaml (DE-LU, a week, 40 jobs, 16 x H100): the plan saves carbon
    against running at submission, captures most of what the per-job bound allows, meets every
    deadline in simulation and agrees with it.  Pinned ranges: the solver stops at its time limit,
    so the figure may move a little between machines."""
    from fleet.planning.training import plan_and_verify
    from fleet.scenario import load_scenario

    sc = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "training_carbon.yaml")
    out = plan_and_verify(sc, sc.plan.training, time_limit_s=5)
    m = out.metrics
    assert out.verified
    assert 29.0 <= m["saving_pct"] <= 40.0, m["saving_pct"]
    assert m["bound_capture_pct"] >= 75.0, m["bound_capture_pct"]
    assert m["sim_deadlines_missed"] == 0


# ---------------------------------------------------------------------- the first schedule as a fallback
CAPS4 = (pt.CapPoint(350.0, 696.0, 8 * 380.0), pt.CapPoint(455.0, 828.0, 8 * 470.0),
         pt.CapPoint(560.0, 910.0, 8 * 570.0), FULL)


def test_float_dust_is_no_run_block():
    """An LP fill can leave 1e-14 units in a slot; that is no run: one block, no restart owed,
    the deadline met (counted as a second block it owed a restart it never did)."""
    job = _job(0, 1, 0, 3, caps=CAPS4, restart_s=100.0, restart_j=1e5)
    w = np.zeros((4, 4))
    w[0, 3] = 7e-15
    w[2, 3] = 1000.0
    s = pt.evaluate("x", [job], _slots([100, 100, 100, 100]), {0: w})
    assert s.blocks[0] == 1 and not s.deadlines_missed
    # lower limits cheaper per unit of work: the hull walk moves shares between limits
    cost = np.array([[0.8, 0.85, 0.9, 1.0]] * 5) * np.array([1.0, 1.3, 0.7, 2.0, 1.1])[:, None]
    for need in (51, 59, 93, 1046, 2345):
        f = pt._lp_fill(cost, np.array([696, 828, 910, 1000]), need)
        assert f is not None and np.all((f == 0) | (f > 1e-6)) and f.sum() == pytest.approx(need)


def test_greedy_meets_the_deadline_it_can_meet_whatever_the_job_size():
    """One interruptible job with restart costs, sizes of 10 to 3000 steps in a 5-hour window: the
    greedy schedule always meets its deadline (float dust of the LP fill once counted as extra
    blocks owing restarts, and 200-job plans had no first schedule to fall back on)."""
    sl = _slots([100, 130, 70, 200, 110])
    for steps in range(10, 3000, 7):
        job = pt.TrainingJob(0, 8, steps, 0, 4, CAPS4, restart_s=97.0, restart_j=8e4)
        g = pt.greedy([job], sl)
        assert g is not None and not g.deadlines_missed, steps


def _contended(n_jobs=20, hours=72, seed=0):
    rng = np.random.default_rng(seed)
    ci = 300 + 150 * np.cos(np.arange(hours) / 24 * 2 * np.pi) + rng.uniform(0, 40, hours)
    jobs = []
    for i in range(n_jobs):
        first = int(rng.integers(0, hours - 30))
        work = float(rng.uniform(0.05, 6.0))
        last = min(hours - 1, first + int(np.ceil(work)) + int(rng.integers(4, 24)))
        jobs.append(_job(i, work, first, last, gpus=int(rng.choice([8, 16, 32])), caps=CAPS4,
                         interruptible=bool(i % 3), restart_s=97.0, restart_j=8e4))
    return jobs, _slots(ci, gpus=64, idle=72.0)


def test_greedy_is_the_fallback_when_the_solver_has_no_time():
    """A 20-job, 3-day problem on 64 GPUs with restart costs and 4 limits: the greedy schedule meets
    every deadline by its own accounting, the model accepts it, and with almost no solver time
    plan() returns it rather than no schedule."""
    jobs, sl = _contended()
    gr = pt.greedy(jobs, sl)
    assert gr is not None and not gr.deadlines_missed
    res = pt.plan(jobs, sl, time_limit_s=1e-3)
    assert res.ok and res.hint_from == "greedy" and not res.schedule.deadlines_missed
    assert res.schedule.carbon_kg <= gr.carbon_kg * (1 + 1e-3)
    assert res.schedule.carbon_kg < res.baseline.carbon_kg


def test_a_job_that_cannot_meet_its_deadline_is_dropped_by_name():
    jobs = [_job(0, 1, 0, 5), _job(17, 30, 3, 19, gpus=8)]
    res = pt.plan(jobs, _slots(np.full(24, 100.0)), drop_infeasible=True)
    assert res.ok and list(res.dropped) == [17] and not res.schedule.deadlines_missed
    assert "job 17 (8 GPUs, 30.0 h of work at 700 W) cannot finish" in res.notes[0]
    assert res.metrics()["jobs_dropped"][0]["job_id"] == 17
    assert set(res.schedule.rows["job_id"]) == {0}
