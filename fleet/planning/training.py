"""training: when each training job runs and at which power limit (carbon, cost or energy).

Plans the scenario's training jobs on its training pool with :mod:`fleet.plan.training` (hourly
slots over the simulation horizon, the site's hourly carbon intensity, price and PUE, the pool's
GPUs and the power budget left by inference), applies the schedule as a re-validated scenario
(``demand.training.schedule``: per job, the windows it runs in and its power limit in each),
simulates it and verifies that every deadline is met and that the simulated energy and carbon of
the pool agree with the plan within the tolerance; a job found late is re-planned with more work
(``derate``), a bounded number of rounds.  Compared with the FCFS baseline (each job at
submission at full power) and the per-job perfect-foresight bound.
"""

from __future__ import annotations

import argparse
import math
from typing import Callable

import numpy as np
import pandas as pd

from ..errors import FleetError, ScenarioError
from ..plan import training as pt
from . import PlanOutcome

SLOT_S = 3600.0


# ------------------------------------------------------------------------------ the problem
def _pool(sc, spec):
    tpools = sc.training_pools()
    name = spec.pool or (sc.demand.training.pool if sc.demand.training is not None else None)
    if name is None:
        if len(tpools) != 1:
            raise ScenarioError(f"expected exactly one training pool or plan.training.pool, found {len(tpools)}",
                                path=sc.path, field="plan.training.pool")
        return tpools[0]
    for p in tpools:
        if p.name == name:
            return p
    raise ScenarioError(f"no training pool named {name!r}", path=sc.path, field="plan.training.pool")


def cap_grid(pool, fractions) -> list[float]:
    """Per-GPU power limits (W) of the grid: fractions of the pool's maximum, clipped to the
    accelerator's settable range, ascending and distinct."""
    from ..frontier import accelerator_power

    acc = accelerator_power(pool.accelerator)
    top = float(pool.power_cap_w) if pool.power_cap_w is not None else acc.power_max_w
    caps = sorted({round(max(acc.power_min_w, min(top, f * top)), 1) for f in fractions})
    if caps[-1] != round(top, 1):
        caps.append(round(top, 1))
    return caps


def cap_point(profile, slot_s: float = SLOT_S) -> pt.CapPoint:
    """Rate and mean power of a job at one limit from its training profile (periodic checkpoints
    included, as the simulation runs them)."""
    k = profile.checkpoint_interval_steps
    c = profile.checkpoint_time_s if k > 0 else 0.0
    per_step_s = profile.step_time_s + (c / k if k > 0 else 0.0)
    per_step_j = profile.step_energy_j + (profile.checkpoint_power_w * c / k if k > 0 else 0.0)
    return pt.CapPoint(float(profile.power_cap_w), slot_s / per_step_s, per_step_j / per_step_s)


def jobs_for(sc, spec, pool, n_slots: int, *, calibrated: bool | None = None,
             caps: list[float] | None = None) -> list[pt.TrainingJob]:
    """The planner's view of the pool's job table: work in steps (as the simulation counts them,
    at the pool's configured cap), the window in whole slots, rates and power at each limit from
    the training frontier (:func:`fleet.frontier.training.training_profile_for_job`)."""
    from ..frontier import accelerator_power
    from ..frontier.training import training_profile_for_job
    from ..sim.assemble import build_jobs

    acc = accelerator_power(pool.accelerator)
    cal = (sc.simulation.constants == "calibrated") if calibrated is None else calibrated
    caps = caps or cap_grid(pool, spec.caps)
    table = build_jobs(sc.sim_input(), pool)
    inter = spec.interruptible
    out = []
    for i, row in enumerate(table.sort_values(["submit_s", "job_id"], kind="stable").to_dict("records")):
        jid = int(row["job_id"])
        ci = float(row.get("checkpoint_interval_s") or 3600.0)
        ci = ci if math.isfinite(ci) and ci > 0 else 3600.0
        model = row["model"]
        gpus = int(row["gpus"])

        def prof(cap, _m=model, _g=gpus, _ci=ci):
            try:
                return training_profile_for_job(_m, acc.name, _g, power_cap_w=cap, checkpoint_interval_s=_ci,
                                                calibrated=cal)
            except FleetError as exc:
                raise ScenarioError(f"training job {jid}: {exc}", path=sc.path, field="demand.training") from exc

        base = prof(pool.power_cap_w)
        tokens = row.get("tokens")
        if tokens is not None and np.isfinite(tokens) and tokens > 0:
            steps = int(math.ceil(float(tokens) / base.tokens_per_step))
        else:
            steps = max(1, int(round(float(row["duration_s"]) / base.step_time_s)))
        points = tuple(cap_point(prof(c)) for c in caps)
        full = prof(caps[-1])
        ck = full.checkpoint_time_s
        deadline = float(row.get("deadline_s", math.nan))
        deferrable = bool(row.get("deferrable", False))
        last = (int(math.floor(deadline / SLOT_S + 1e-9)) - 1) if math.isfinite(deadline) else n_slots - 1
        interruptible = inter if isinstance(inter, bool) else jid in set(inter)
        out.append(pt.TrainingJob(
            job_id=jid, gpus=gpus, steps=steps, first_slot=int(math.ceil(float(row["submit_s"]) / SLOT_S - 1e-9)),
            last_slot=last, caps=points, interruptible=interruptible, deferrable=deferrable,
            priority=float(row.get("priority", 0) or 0), model=str(model),
            restart_s=2 * ck + full.step_time_s, restart_j=2 * ck * full.checkpoint_power_w,
            submit_s=float(row["submit_s"]), deadline_s=deadline))
    return out


def horizon_slots(sc) -> int:
    """Slots of the plan: the simulation horizon, else the latest deadline or end of the jobs."""
    if sc.simulation.horizon_s is not None:
        return int(math.ceil(sc.simulation.horizon_s / SLOT_S - 1e-9))
    raise ScenarioError("the training planner needs simulation.horizon_s (whole hours) covering every deadline",
                        path=sc.path, field="simulation.horizon_s")


def slots_for(sc, spec, pool, n: int, inference_w: np.ndarray | None = None,
              sources: list[str] | None = None) -> pt.Slots:
    """Hourly signals (the site's carbon intensity, price and PUE, as accounting resolves them),
    the pool's GPUs, and the power left to the jobs above idle."""
    from ..frontier import accelerator_power
    from ..run import accounting_inputs

    inputs, src, signal = accounting_inputs(sc, n * SLOT_S)
    hours = pd.date_range(pd.Timestamp(sc.start_utc).tz_convert("UTC") if pd.Timestamp(sc.start_utc).tz
                          else pd.Timestamp(sc.start_utc).tz_localize("UTC"), periods=n, freq="h")
    ci = inputs.carbon_intensity.at(hours)
    price = inputs.price.at(hours)
    pue = inputs.pue.at(hours)
    acc = accelerator_power(pool.accelerator)
    budget = None
    if spec.power_budget:
        lim = _budget_w(sc, pool)
        if lim is not None:
            inf = np.zeros(n) if inference_w is None else np.asarray(inference_w, float)[:n]
            # the pool's idle floor and its servers' static draw are there whatever the plan does
            floor = pool.gpus * acc.idle_w + pool.servers * pool.static_w
            budget = np.maximum(0.0, lim - inf - floor)
    desc = [inputs.carbon_intensity.description, inputs.price.description, inputs.pue.description] + list(src)
    if sources is not None:
        sources.extend(desc)
    return pt.Slots(ci, price, pue, np.full(n, pool.gpus), float(acc.idle_w), int(pool.gpus), budget, SLOT_S,
                    signal, tuple(desc))


def _budget_w(sc, pool) -> float | None:
    """The tightest budget over the pool: its row's, else the site's (W)."""
    best = None
    pw = sc.fleet.power
    if pw is not None:
        if pw.site_budget_w is not None:
            best = float(pw.site_budget_w)
        rows = pw.rows or {}
        if isinstance(rows, dict) and pool.row in rows and rows[pool.row] is not None:
            best = min(best, float(rows[pool.row])) if best is not None else float(rows[pool.row])
    return best


def inference_power_w(sc, sim, pool_name: str, n: int) -> np.ndarray:
    """Hourly mean draw of everything but the training pool (site level minus the pool), from a
    simulation of the scenario as written."""
    p = sim.power
    out = np.zeros(n)
    if p is None or not len(p):
        return out
    site = p[p["level"] == "site"]
    pool = p[(p["level"] == "pool") & (p["node"] == pool_name)]
    dt = float(sim.meta["telemetry_interval_s"])
    for df, sign in ((site, 1.0), (pool, -1.0)):
        h = (df["time_s"].to_numpy() // SLOT_S).astype(int)
        ok = h < n
        np.add.at(out, h[ok], sign * df["power_w"].to_numpy()[ok] * dt / SLOT_S)
    return np.maximum(out, 0.0)


# ------------------------------------------------------------------------------ apply & verify
def windows(schedule: pt.Schedule, slot_s: float = SLOT_S) -> dict[int, list[list[float]]]:
    """Per job: ``[start_s, end_s, cap_w]`` windows in time order, adjacent windows at the same
    limit merged.  Inside a slot the higher limit runs first; a slot's share sets its length."""
    out: dict[int, list[list[float]]] = {}
    df = schedule.rows.sort_values(["job_id", "slot", "cap_w"], ascending=[True, True, False], kind="stable")
    for jid, g in df.groupby("job_id", sort=True):
        ws: list[list[float]] = []
        t_prev_slot, pos = -1, 0.0
        for r in g.itertuples(index=False):
            if r.fraction <= 1e-9:
                continue
            if int(r.slot) != t_prev_slot:
                t_prev_slot, pos = int(r.slot), int(r.slot) * slot_s
            a, b = pos, pos + min(1.0, float(r.fraction)) * slot_s
            pos = b
            b = round(b, 3)
            a = round(a, 3)
            if b <= a:
                continue
            if ws and abs(ws[-1][1] - a) < 1e-6 and ws[-1][2] == float(r.cap_w):
                ws[-1][1] = b
            else:
                ws.append([a, b, float(r.cap_w)])
        # a slot the job holds but only partly uses, followed by the next: run on (no pause)
        for i in range(len(ws) - 1):
            nxt = math.floor(ws[i][1] / slot_s + 1e-9)
            if ws[i + 1][0] == (nxt + (0 if ws[i][1] % slot_s == 0 else 1)) * slot_s and ws[i][1] % slot_s:
                ws[i][1] = ws[i + 1][0]
        out[int(jid)] = ws
    return out


def sim_hourly_gpu_j(sim, pool_name: str, n: int) -> np.ndarray:
    """The training pool's GPU energy (J) per hour from the simulation's telemetry (gpu level:
    the nodes ``{pool}/s{k}``, jobs and idle GPUs)."""
    p = sim.power
    g = p[(p["level"] == "gpu") & p["node"].str.startswith(pool_name + "/s")]
    dt = float(sim.meta["telemetry_interval_s"])
    out = np.zeros(n)
    h = (g["time_s"].to_numpy() // SLOT_S).astype(int)
    ok = h < n
    np.add.at(out, h[ok], g["power_w"].to_numpy()[ok] * dt)
    return out


def verify(sim, schedule: pt.Schedule, jobs: list[pt.TrainingJob], slots: pt.Slots, pool_name: str,
           tolerance: float) -> dict:
    """Deadlines met and energy/carbon of plan and simulation within ``tolerance``."""
    n = slots.n
    e_sim = sim_hourly_gpu_j(sim, pool_name, n)
    kwh = slots.per_joule("energy")
    kg = slots.per_joule("carbon")
    usd = slots.per_joule("cost")
    sim_kwh, sim_kg, sim_usd = float((e_sim * kwh).sum()), float((e_sim * kg).sum()), float((e_sim * usd).sum())
    jt = sim.jobs
    jt = jt[jt["pool"] == pool_name] if "pool" in jt.columns else jt
    by = {int(r.job_id): r for r in jt.itertuples(index=False)}
    late, unfinished = [], []
    for j in jobs:
        r = by.get(j.job_id)
        if r is None or r.status != "completed":
            unfinished.append(j.job_id)
            continue
        if math.isfinite(j.deadline_s) and r.end_s > j.deadline_s + 1e-6:
            late.append(j.job_id)
    # the jobs' own energy: simulated (job table) against planned
    sim_job_kwh = float(jt["energy_j"].sum()) * float(np.mean(slots.pue)) / pt.J_PER_KWH
    rel = {"energy": _rel(sim_kwh, schedule.energy_kwh), "carbon": _rel(sim_kg, schedule.carbon_kg),
           "cost": _rel(sim_usd, schedule.cost_usd), "job_energy": _rel(sim_job_kwh, schedule.job_energy_kwh)}
    ok = not late and not unfinished and max(rel["energy"], rel["carbon"], rel["job_energy"]) <= tolerance
    return {"ok": ok, "late": late, "unfinished": unfinished, "sim_energy_kwh": sim_kwh, "sim_carbon_kg": sim_kg,
            "sim_cost_usd": sim_usd, "sim_job_energy_kwh": sim_job_kwh, "plan_energy_kwh": schedule.energy_kwh,
            "plan_carbon_kg": schedule.carbon_kg, "plan_job_energy_kwh": schedule.job_energy_kwh,
            "rel_diff": rel, "sim_hourly_gpu_j": e_sim}


def _rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-12)


def plan_and_verify(scenario, spec, *, log: Callable[[str], None] | None = None,
                    time_limit_s: float | None = None, objective: str | None = None,
                    baseline_sim: bool = True) -> PlanOutcome:
    """Plan, apply, simulate, verify, tighten (see the module docstring)."""
    from ..sim import simulate

    say = log or (lambda s: None)
    sc = scenario
    if sc.demand.training is None:
        raise ScenarioError("plan.training needs training jobs (demand.training)", path=sc.path,
                            field="demand.training")
    if sc.demand.training.schedule:
        raise ScenarioError("the scenario already carries a training schedule; remove demand.training.schedule "
                            "to plan it again", path=sc.path, field="demand.training.schedule")
    pool = _pool(sc, spec)
    n = horizon_slots(sc)
    objective = objective or spec.objective
    limit = float(time_limit_s or spec.time_limit_s)
    base_sim = simulate(sc) if (baseline_sim or (spec.power_budget and sc.demand.inference)) else None
    inf_w = inference_power_w(sc, base_sim, pool.name, n) if (base_sim is not None and sc.demand.inference) else None
    sources: list[str] = []
    slots = slots_for(sc, spec, pool, n, inf_w, sources)
    jobs0 = jobs_for(sc, spec, pool, n)
    jobs = list(jobs0)
    rounds, res, planned, sim, ver = [], None, sc, None, None
    factor = {j.job_id: 1.0 for j in jobs0}
    for rnd in range(spec.rounds):
        res = pt.plan(jobs, slots, objective=objective, weights=dict(spec.weights), time_limit_s=limit,
                      workers=spec.workers)
        if not res.ok:
            say(f"training plan round {rnd + 1}: {res.solution.status if res.solution else 'INFEASIBLE'}")
            rounds.append({"round": rnd + 1, "status": res.solution.status if res.solution else "INFEASIBLE",
                           "conflicts": res.conflicts})
            break
        assert res.schedule is not None and res.solution is not None    # ok: a schedule and its solution
        # evaluate the planned work on the true jobs (a derated round does more work than needed)
        wins = windows(res.schedule)
        planned = sc.with_updates({"demand.training.schedule": wins},
                                  note=f"training schedule planned for {objective}")
        sim = simulate(planned)
        ver = verify(sim, res.schedule, jobs, slots, pool.name, spec.tolerance)
        rounds.append({"round": rnd + 1, "status": res.solution.status, "objective": res.solution.objective,
                       "gap": res.solution.gap, "late": ver["late"], "unfinished": ver["unfinished"],
                       "rel_diff": ver["rel_diff"], "ok": ver["ok"]})
        say(f"training plan round {rnd + 1}: {res.solution.status}, late {ver['late']}, "
            f"agreement {', '.join(f'{k} {100 * v:.2f}%' for k, v in ver['rel_diff'].items())}")
        if ver["ok"] or rnd == spec.rounds - 1:
            break
        bad = set(ver["late"]) | set(ver["unfinished"])
        if not bad:
            break           # only the energy agreement failed: more rounds would not change it
        for j in bad:
            factor[j] *= spec.derate
        jobs = [pt.replace(j, steps=int(math.ceil(j.steps * factor[j.job_id]))) if factor[j.job_id] > 1 else j
                for j in jobs0]
    return _outcome(sc, planned, res, rounds, sim, base_sim, ver, slots, jobs0, objective, sources)


def _outcome(sc, planned, res, rounds, sim, base_sim, ver, slots, jobs, objective, sources) -> PlanOutcome:
    if res is None or not res.ok:
        return PlanOutcome("training", (res.solution.status if res and res.solution else "INFEASIBLE"), False, sc,
                           solver=res.solution.figures() if res and res.solution else {}, rounds=rounds,
                           metrics=res.metrics() if res else {}, baseline_sim=base_sim,
                           conflicts=list(res.conflicts) if res else [],
                           notes=["no schedule: " + "; ".join(res.conflicts) if res else ""])
    m = res.metrics()
    s = res.schedule
    m.update({"signal": {"carbon": f"{slots.ci_signal} carbon intensity", "objective": objective,
                         "sources": list(sources)},
              "jobs": len(jobs), "slots": slots.n,
              "interruptions": int(sum(max(0, b - 1) for b in s.blocks.values())),
              "capped_share_pct": _capped_share(s, jobs),
              "verified": bool(ver["ok"]) if ver else False})
    if ver:
        m.update({"sim_energy_kwh": ver["sim_energy_kwh"], "sim_carbon_kg": ver["sim_carbon_kg"],
                  "sim_cost_usd": ver["sim_cost_usd"], "sim_job_energy_kwh": ver["sim_job_energy_kwh"],
                  "sim_deadlines_missed": len(ver["late"]) + len(ver["unfinished"]),
                  "plan_sim_rel_diff": ver["rel_diff"]})
    decisions = [{"path": f"demand.training.schedule[{jid}]", "value": w, "was": None,
                  "note": f"{len(w)} window(s), limits {sorted({x[2] for x in w})} W"}
                 for jid, w in sorted(windows(s).items())]
    tables = {"schedule": s.rows, "hourly": s.hourly, "baseline_hourly": res.baseline.hourly,
              "jobs": _job_table(res, jobs)}
    if res.bound is not None:
        tables["bound_hourly"] = res.bound.hourly
    if ver is not None:
        h = s.hourly.copy()
        h["sim_pool_energy_kwh"] = ver["sim_hourly_gpu_j"] * slots.per_joule("energy")
        tables["hourly"] = h
    notes = [f"objective: {objective} ({m['signal']['carbon']} for carbon); figures are the training pool's "
             f"GPU energy (jobs and idle GPUs) through PUE; server overhead is not planned",
             "baseline: each job at submission at full power, first fit in submission order; bound: each job alone "
             "in its own cheapest hours (no capacity, power budget or restart cost)"]
    return PlanOutcome("training", res.solution.status, bool(ver and ver["ok"]), planned,
                       solver=res.solution.figures(), decisions=decisions, rounds=rounds, metrics=m, tables=tables,
                       sim=sim, baseline_sim=base_sim, conflicts=[], notes=notes)


def _capped_share(s: pt.Schedule, jobs: list[pt.TrainingJob]) -> float:
    full = {j.job_id: j.full.cap_w for j in jobs}
    if not len(s.rows):
        return 0.0
    capped = s.rows["cap_w"].to_numpy() < np.array([full[int(j)] for j in s.rows["job_id"]]) - 1e-6
    w = s.rows["fraction"].to_numpy()
    return float(100.0 * w[capped].sum() / max(w.sum(), 1e-12))


def _job_table(res, jobs) -> pd.DataFrame:
    s, b = res.schedule, res.baseline
    recs = []
    for j in jobs:
        r = s.rows[s.rows["job_id"] == j.job_id]
        recs.append({"job_id": j.job_id, "gpus": j.gpus, "work_h_full": j.hours_full, "submit_h": j.submit_s / SLOT_S,
                     "deadline_h": j.deadline_s / SLOT_S, "interruptible": j.interruptible,
                     "start_h": float(r["slot"].min()) if len(r) else math.nan,
                     "end_h": s.end_slot.get(j.job_id, math.nan), "baseline_end_h": b.end_slot.get(j.job_id, math.nan),
                     "blocks": s.blocks.get(j.job_id, 0),
                     "mean_cap_w": float(np.average(r["cap_w"], weights=r["fraction"])) if len(r) else math.nan})
    return pd.DataFrame(recs)


# ------------------------------------------------------------------------------ CLI
def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("scenario", help="scenario YAML with a training pool and training jobs")
    p.add_argument("--objective", choices=pt.OBJECTIVES, default=None,
                   help="what to minimise (default: the scenario's plan.training.objective, else carbon)")
    p.add_argument("--time-limit", type=float, default=None, help="solver time limit (s)")
    p.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")


def cli(args) -> int:
    from ..commands._common import emit
    from ..scenario import TrainingPlanSpec, load_scenario

    sc = load_scenario(args.scenario)
    spec = sc.plan.training if (sc.plan is not None and sc.plan.training is not None) else TrainingPlanSpec()
    if args.time_limit is not None and not args.time_limit > 0:
        raise ScenarioError(f"--time-limit must be positive, got {args.time_limit}")
    out = plan_and_verify(sc, spec, time_limit_s=args.time_limit, objective=args.objective)
    m = dict(out.metrics)
    m.pop("idle_floor", None)
    result = {"status": out.status, "verified": out.verified, **m, "rounds": out.rounds,
              "conflicts": out.conflicts,
              "schedule": {str(k): v for k, v in (out.scenario.demand.training.schedule or {}).items()}
              if out.scenario.demand.training is not None else {}}
    if args.json:
        emit(result, True)
    else:
        emit(None, False, _text(out))
    return 0 if out.status in ("OPTIMAL", "FEASIBLE") else 1


def _text(out: PlanOutcome) -> str:
    m = out.metrics
    if out.conflicts or out.status not in ("OPTIMAL", "FEASIBLE"):
        return "training plan: no schedule\n" + "\n".join(f"  - {c}" for c in out.conflicts)
    key = m.get("saving_of", "carbon_kg")
    lines = [f"training plan: {out.describe()} (objective: {m['objective']}; {m['signal']['carbon']})",
             f"  solver: {out.solver.get('status')} in {out.solver.get('solve_s')} s, gap {out.solver.get('gap')}",
             f"  carbon {m['carbon_kg']:.1f} kg (baseline {m['baseline_carbon_kg']:.1f}, bound "
             f"{m.get('bound_carbon_kg', float('nan')):.1f})",
             f"  cost {m['cost_usd']:.2f} USD (baseline {m['baseline_cost_usd']:.2f}); energy {m['energy_kwh']:.1f} kWh "
             f"(baseline {m['baseline_energy_kwh']:.1f})",
             f"  saving on {key}: {m['saving_pct']:.1f}% ({m['saving_above_idle_pct']:.1f}% above the idle floor), "
             f"{m['bound_capture_pct']:.0f}% of what the bound allows ({m['bound_saving_pct']:.1f}%)",
             f"  deadlines missed: plan {m['deadlines_missed']}, simulation {m.get('sim_deadlines_missed')}, "
             f"baseline {m['baseline_deadlines_missed']}; interruptions {m['interruptions']}; "
             f"{m['capped_share_pct']:.0f}% of run time below full power"]
    for r in out.rounds:
        lines.append(f"  round {r['round']}: {r['status']}, late {r.get('late')}, plan vs simulation "
                     + ", ".join(f"{k} {100 * v:.2f}%" for k, v in (r.get('rel_diff') or {}).items()))
    return "\n".join(lines)
