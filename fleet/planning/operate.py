"""Plan power caps and hourly active replicas (operate), apply, simulate, verify, tighten.

The loop (``plan_and_verify``):

1. *problem*: hourly demand per model from the scenario's traces and generators; for each serving
   pool and candidate cap, one replica's SLO-bound capacity and its power curve from the frontier
   (:func:`fleet.plan.operate.replica_capacity`), scaled by a utilisation calibrated in short
   simulations (:func:`calibrate_utilisation`); hourly PUE, price and carbon intensity from the
   site (:mod:`fleet.signals`); site and row budgets;
2. *solve* (:func:`fleet.plan.operate.solve`); an infeasible model is explained by name;
3. *apply*: the caps and the schedule become a re-validated scenario
   (:meth:`~fleet.scenario.Scenario.with_updates`);
4. *verify*: the planned scenario is simulated on the traces; every hour's SLO attainment per
   model must reach ``slo_target`` and every budget must hold at telemetry resolution;
5. *tighten*: the capacity of each (pool, hour) whose requests missed is derated, a budget that
   was exceeded is lowered by the excess in that hour, and the model is solved again (at most
   ``rounds`` rounds, each reported).  A plan that never verifies is reported as failed.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import FleetError, InfeasibleError, ScenarioError
from ..plan import operate as op

_log = logging.getLogger("fleet.plan")

#: short calibration simulations: length (s) of Poisson arrivals per trial, and bisection steps
CALIB_WINDOW_S = 600.0
CALIB_STEPS = 6
_CALIB_CACHE: dict[tuple, float] = {}


# ==================================================================================== problem
@dataclass
class GroupInfo:
    """How a group of the model maps back to the scenario."""

    key: str
    pool_index: int
    serve_index: int
    pool: str
    model: str            # canonical
    model_as_written: str
    replicas: int
    tp: int
    engine_pool: str
    capacities: list[op.Capacity] = field(default_factory=list)
    utilisation: float = 1.0
    utilisation_note: str = ""


@dataclass
class Context:
    """Everything the problem was built from (kept for the report and the rounds)."""

    problem: op.OperateProblem
    groups: list[GroupInfo]
    hours: int
    hour_starts: pd.DatetimeIndex
    tokens: dict[str, tuple[float, float]]     # model -> mean (input, output) tokens
    slo: dict[str, tuple[float | None, float | None]]
    requests: pd.DataFrame
    signal_notes: dict[str, str]


def candidate_caps(acc, fractions: list[float]) -> tuple[float, ...]:
    """Caps (W per GPU) at ``fractions`` of the maximum power limit, clipped to the range."""
    hi = float(acc.power_max_w)
    lo = float(acc.power_min_w or 0.0)
    return tuple(sorted({round(min(hi, max(lo, f * hi)), 1) for f in fractions}))


def build_problem(sc, spec, *, derate: dict[tuple[str, int], float] | None = None,
                  budget_margin: dict[tuple[str, int], float] | None = None,
                  calibrate: bool = True) -> Context:
    """The operate problem of scenario ``sc`` (see the module docstring)."""
    from ..frontier import accelerator_power, canonical_model
    from ..signals import accounting_inputs, hourly
    from ..sim.assemble import build_requests

    if sc.simulation.mode == "fluid":
        raise ScenarioError("the operate planner needs the request-level simulation to verify its plan; "
                            "use simulation.mode: coalesced", path=sc.path, field="simulation.mode")
    req, end = build_requests(sc.sim_input())
    horizon = float(sc.simulation.horizon_s or (end + 120.0))
    hours = max(1, math.ceil(horizon / 3600.0 - 1e-9))
    if not len(req):
        raise ScenarioError("the operate planner needs inference demand", path=sc.path, field="demand.inference")
    arr = req["arrival_s"].to_numpy(float)
    models = req["model"].astype(str).to_numpy()
    hour_of = np.minimum((arr // 3600.0).astype(np.int64), hours - 1)
    demand: dict[str, np.ndarray] = {}
    tokens: dict[str, tuple[float, float]] = {}
    for m in sorted(set(models)):
        sel = models == m
        demand[m] = np.bincount(hour_of[sel], minlength=hours)[:hours] / 3600.0
        tokens[m] = (float(req.loc[sel, "input_tokens"].mean()), float(req.loc[sel, "output_tokens"].mean()))
    # SLOs per canonical model: the strictest of its demands
    slo: dict[str, tuple[float | None, float | None]] = {}
    words: dict[str, str] = {}
    for d in sc.demand.inference:
        m = canonical_model(d.model)
        t0, p0 = slo.get(m, (None, None))
        t1, p1 = d.slo.ttft_s, d.slo.tpot_s
        slo[m] = (min(x for x in (t0, t1) if x is not None) if (t0 or t1) else None,
                  min(x for x in (p0, p1) if x is not None) if (p0 or p1) else None)
        words.setdefault(m, d.model)
    inputs, _, _ = accounting_inputs(sc, hours * 3600.0)
    ci = hourly(inputs.carbon_intensity, sc.start_utc, hours)
    price = hourly(inputs.price, sc.start_utc, hours)
    pue = hourly(inputs.pue, sc.start_utc, hours)
    from ..frontier import build_serving_profile
    groups: list[op.Group] = []
    infos: list[GroupInfo] = []
    pool_caps: dict[str, tuple[float, ...]] = {}
    pool_row: dict[str, str] = {}
    pool_static: dict[str, float] = {}
    levels = op.DEFAULT_LEVELS
    derate = derate or {}
    for i, pool in enumerate(sc.fleet.pools):
        if pool.role != "serving":
            continue
        acc = accelerator_power(pool.accelerator)
        caps = candidate_caps(acc, list(spec.caps))
        pool_caps[pool.name] = caps
        pool_row[pool.name] = pool.row
        pool_static[pool.name] = pool.servers * pool.static_w
        used = sum(s.replicas * s.tp for s in pool.serve if s.replicas is not None)
        for j, s in enumerate(pool.serve):
            model = canonical_model(s.model)
            reps = s.replicas if s.replicas is not None else (pool.gpus - used) // s.tp
            key = pool.name if len(pool.serve) == 1 else f"{pool.name}:{s.model}"
            engine_pool = pool.name if len(pool.serve) == 1 else f"{pool.name}:{model}"
            info = GroupInfo(key, i, j, pool.name, model, s.model, int(reps), s.tp, engine_pool)
            i_tok, o_tok = tokens.get(model, (1024.0, 256.0))
            ttft, tpot = slo.get(model, (None, None))
            profiles = []
            for c in caps:
                try:
                    prof = build_serving_profile(sc.operating_point(i, j).with_cap(c))
                except FleetError as exc:
                    raise ScenarioError(str(exc), path=sc.path, field=f"fleet.pools[{i}].serve[{j}]") from exc
                profiles.append(prof)
                info.capacities.append(op.replica_capacity(prof, i_tok, o_tok, ttft_s=ttft, tpot_s=tpot))
            # utilisation: calibrated at the highest cap by short simulations, or the stated margin
            util = float(spec.utilisation)
            note = f"stated utilisation margin {util:g} (plan.operate.utilisation)"
            top = info.capacities[-1]
            if calibrate and top.rps_model > 0:
                f = calibrate_utilisation(profiles[-1], model, top.rps_model, s.max_batch, req[models == model],
                                          ttft, tpot, float(spec.slo_target), seed=sc.seed)
                if f > 0:
                    util = min(util, f) if spec.utilisation < 1.0 else f
                    note = (f"calibrated: one replica meets the SLO for {spec.slo_target:.0%} of requests up to "
                            f"{f:.2f} x its steady-state capacity (Poisson arrivals, {CALIB_WINDOW_S:.0f} s, "
                            f"bisection); planned at {util:.2f}")
            info.utilisation, info.utilisation_note = util, note
            opts = []
            for c, cap in zip(caps, info.capacities):
                rps = cap.rps_model * util
                lp = tuple(cap.power_at(u * rps) for u in levels)
                opts.append(op.CapOption(c, rps, lp, c * s.tp))
            # an inactive replica draws its idle power, or its GPUs' standby power when switched off
            inactive = (float(profiles[-1].idle_power_w) if sc.simulation.inactive == "idle"
                        else float(acc.standby_w) * s.tp)
            ovh = float(pool.server.per_gpu_w) / float(acc.tdp_w)
            d = tuple(float(derate.get((key, h), 1.0)) for h in range(hours))
            groups.append(op.Group(key, pool.name, model, int(reps), s.tp, pool.row, tuple(opts), inactive, ovh, d))
            infos.append(info)
    if not groups:
        raise ScenarioError("the operate planner needs a serving pool", path=sc.path, field="fleet.pools")
    power = sc.fleet.power
    prob = op.OperateProblem(tuple(groups), pool_caps, pool_row, pool_static,
                             {m: v for m, v in demand.items()}, pue, price, ci,
                             site_budget_w=power.site_budget_w if spec.keep_budgets else None,
                             row_budget_w=dict(power.rows) if spec.keep_budgets else {},
                             objective=spec.objective, weights=dict(spec.weights), levels=levels,
                             model_words=words, budget_margin_w=dict(budget_margin or {}))
    starts = pd.date_range(pd.Timestamp(sc.start_utc), periods=hours, freq="h")
    notes = {"carbon_intensity": inputs.carbon_intensity.description, "price": inputs.price.description,
             "pue": inputs.pue.description}
    return Context(prob, infos, hours, starts, tokens, slo, req, notes)


def calibrate_utilisation(profile, model: str, rps_model: float, max_batch: int, demand: pd.DataFrame,
                          ttft_s: float | None, tpot_s: float | None, target: float, *, seed: int = 0) -> float:
    """The largest multiple of the steady-state capacity at which one replica, fed Poisson
    arrivals with the demand's token lengths (resampled), meets the SLO for ``target`` of its
    requests in a :data:`CALIB_WINDOW_S` simulation; bisection over [0.2, 1.2] in
    :data:`CALIB_STEPS` steps, cached per operating point, token mix and SLO."""
    from ..accounting import SLO, slo_met
    from ..sim.engine import Engine

    i_tok = demand["input_tokens"].to_numpy(np.int64)
    o_tok = demand["output_tokens"].to_numpy(np.int64)
    key = (profile.model, profile.accelerator, profile.tp, profile.precision, profile.kv_precision,
           round(float(profile.power_cap_w), 3), int(max_batch), round(float(rps_model), 9), len(i_tok),
           int(i_tok.sum()), int(o_tok.sum()), ttft_s, tpot_s, float(target), int(seed))
    if key in _CALIB_CACHE:
        return _CALIB_CACHE[key]
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFF, 7])
    slo = {model: SLO(ttft_s=ttft_s or math.inf, tpot_s=tpot_s or math.inf, e2e_s=math.inf)}

    def ok(frac: float) -> bool:
        rate = frac * rps_model
        n = max(20, int(rate * CALIB_WINDOW_S))
        gaps = rng.exponential(1.0 / rate, n)
        pick = rng.integers(0, len(i_tok), n)
        df = pd.DataFrame({"request_id": np.arange(n, dtype=np.int64), "arrival_s": np.cumsum(gaps),
                           "input_tokens": np.maximum(1, i_tok[pick]), "output_tokens": np.maximum(1, o_tok[pick]),
                           "model": model})
        horizon = float(df["arrival_s"].iloc[-1]) + 300.0
        eng = Engine(horizon, seed=seed)
        eng.add_serving_pool("calib", profile, 1, model, max_batch=max_batch)
        eng.set_router(model, "jsq")
        eng.add_requests(df)
        run = eng.run()
        r = run.requests
        # the first minute warms the replica up from empty: judge the rest
        r = r[r["arrival_s"] >= 60.0]
        met = slo_met(r, slo)
        return bool(len(met)) and float(met.mean()) >= target

    lo, hi = 0.2, 1.2
    if not ok(lo):
        _CALIB_CACHE[key] = 0.0
        return 0.0
    for _ in range(CALIB_STEPS):
        mid = 0.5 * (lo + hi)
        if ok(mid):
            lo = mid
        else:
            hi = mid
    _CALIB_CACHE[key] = lo
    return lo


# ==================================================================================== verify
def apply(sc, ctx: Context, plan: op.OperatePlan):
    """The planned scenario: caps and schedule written back, re-validated."""
    updates: dict[str, Any] = {}
    for info in ctx.groups:
        updates[f"fleet.pools[{info.pool_index}].power_cap_w"] = plan.caps[info.pool]
    sched = dict(sc.content().get("schedule") or {})
    for info in ctx.groups:
        sched[info.key] = [int(n) for n in plan.schedule[info.key]]
    updates["schedule"] = sched
    return sc.with_updates(updates, note="plan.operate")


def decisions_table(sc, ctx: Context, plan: op.OperatePlan) -> list[dict]:
    out = []
    for info in ctx.groups:
        pool = sc.fleet.pools[info.pool_index]
        was = pool.power_cap_w
        out.append({"path": f"fleet.pools[{info.pool}].power_cap_w", "value": plan.caps[info.pool],
                    "was": was, "note": f"cap per GPU (W); {'uncapped' if was is None else f'{was:g} W'} as written"})
        out.append({"path": f"schedule[{info.key}]", "value": list(plan.schedule[info.key]), "was": info.replicas,
                    "note": f"active replicas per hour (of {info.replicas})"})
    return out


def plan_and_verify(sc, spec=None, *, log: Callable[[str], None] | None = None, baseline: bool = True,
                    time_limit_s: float | None = None):
    """Plan, apply, simulate, verify and tighten (module docstring); a :class:`PlanOutcome`."""
    from ..accounting import SLO, peaks_against_budgets, slo_attainment
    from ..run import simulate_step
    from . import PlanOutcome

    say = log or (lambda m: _log.info(m))
    spec = spec or sc.plan.operate
    if spec is None:
        from ..scenario import OperatePlanSpec

        spec = OperatePlanSpec()
    tl = float(time_limit_s if time_limit_s is not None else spec.time_limit_s)
    derate: dict[tuple[str, int], float] = {}
    margin: dict[tuple[str, int], float] = {}
    rounds: list[dict] = []
    prev = None
    planned_sc, sim, sol, plan, ctx = sc, None, None, None, None
    verified = False
    budgets = {}
    if sc.fleet.power.site_budget_w is not None:
        budgets["site"] = float(sc.fleet.power.site_budget_w)
    budgets.update({r: float(w) for r, w in sc.fleet.power.rows.items()})
    for k in range(int(spec.rounds)):
        ctx = build_problem(sc, spec, derate=derate, budget_margin=margin)
        plan, sol, ex = op.solve(ctx.problem, time_limit_s=tl, hint=prev, backend=spec.solver)
        if plan is None:
            if ex is not None:
                lines = ex.lines() or [ex.note]
                raise InfeasibleError(f"{sc.name}: plan.operate: no caps and schedule satisfy every constraint"
                                      + (f" (round {k + 1}, after derating what the simulation rejected)" if k else ""),
                                      lines)
            raise FleetError(f"{sc.name}: plan.operate: no plan found within {tl:g} s ({sol.status}); "
                             "raise plan.operate.time_limit_s")
        planned_sc = apply(sc, ctx, plan)
        say(f"round {k + 1}: {sol.status}, objective {sol.objective:.6g} {sol.objective_unit}, gap {sol.gap:.2%}, "
            f"caps {plan.caps}")
        sim = simulate_step(planned_sc, quiet=True)
        slo = {m: SLO(ttft_s=v[0] or math.inf, tpot_s=v[1] or math.inf, e2e_s=math.inf) for m, v in ctx.slo.items()}
        att = slo_attainment(sim.requests, slo, by=("engine_pool", "model", "hour"), hours=ctx.hours)
        peaks = peaks_against_budgets(sim.power, budgets, hours=ctx.hours)
        by_model = att.groupby(["model", "hour"])[["requests", "met"]].sum().reset_index()
        by_model["attainment"] = by_model["met"] / by_model["requests"]
        bad = by_model[by_model["attainment"] < spec.slo_target]
        over = peaks[peaks["peak_w"] > peaks["budget_w"] * (1 + 1e-9)]
        total = float(att["met"].sum() / att["requests"].sum()) if len(att) else 1.0
        rnd = {"round": k + 1, **sol.figures(), "caps": dict(plan.caps),
               "planned_energy_kwh": plan.planned_energy_kwh, "slo_attainment": total,
               "min_hourly_attainment": float(by_model["attainment"].min()) if len(by_model) else 1.0,
               "hours_below_target": int(len(bad)), "budget_excess_hours": int(len(over)),
               "max_peak_to_budget": float((peaks["peak_w"] / peaks["budget_w"]).max()) if len(peaks) else None,
               "derated": []}
        if not len(bad) and not len(over):
            verified = True
            rounds.append(rnd)
            say(f"round {k + 1}: verified: SLO attainment {total:.4f}, every hour at or above "
                f"{spec.slo_target:.2%}, no budget exceeded")
            break
        # tighten: derate the groups of each failing (model, hour); lower budgets that were exceeded
        for _, row in bad.iterrows():
            for info in ctx.groups:
                if info.model != row["model"]:
                    continue
                a = att[(att["engine_pool"] == info.engine_pool) & (att["hour"] == row["hour"])]
                if len(a) and float(a["attainment"].iloc[0]) >= spec.slo_target:
                    continue
                key = (info.key, int(row["hour"]))
                derate[key] = derate.get(key, 1.0) * float(spec.derate)
                rnd["derated"].append({"group": info.key, "hour": int(row["hour"]), "factor": derate[key],
                                       "attainment": float(row["attainment"])})
        for _, row in over.iterrows():
            key = (str(row["node"]), int(row["hour"]))
            margin[key] = margin.get(key, 0.0) + float(row["peak_w"] - row["budget_w"])
            rnd["derated"].append({"budget": key[0], "hour": key[1], "lowered_by_w": margin[key]})
        rounds.append(rnd)
        say(f"round {k + 1}: rejected by the simulation ({len(bad)} model-hours below {spec.slo_target:.2%}, "
            f"{len(over)} budget excesses): derating and solving again")
        prev = plan
    assert sol is not None and plan is not None and ctx is not None, "at least one round ran (rounds >= 1)"
    outcome = PlanOutcome("operate", sol.status, verified, planned_sc, sol.figures(),
                          decisions_table(sc, ctx, plan), rounds, {}, {}, sim, None)
    outcome.tables["schedule"] = schedule_table(ctx, plan)
    outcome.tables["capacity"] = capacity_table(ctx)
    outcome.notes += [f"{g.key}: {g.utilisation_note}" for g in ctx.groups]
    outcome.notes += [f"{k}: {v}" for k, v in ctx.signal_notes.items()]
    outcome.notes.append("planned peaks count every active replica at its cap (a GPU never exceeds its cap), "
                         "inactive replicas at idle power, and the server overhead")
    if not verified:
        outcome.notes.append(f"the plan did not verify in {len(rounds)} rounds: the last round is reported, and "
                             "it does not meet the SLO target or a budget in every hour")
    if baseline:
        base = simulate_step(sc, quiet=True)
        outcome.baseline_sim = base
        outcome.metrics = savings(sc, planned_sc, sim, base)
    outcome.metrics.update({"status": sol.status, "objective": sol.objective, "bound": sol.bound, "gap": sol.gap,
                            "solve_s": sol.wall_s, "rounds": len(rounds), "verified": verified,
                            "objective_kind": spec.objective, "objective_unit": sol.objective_unit})
    return outcome


def savings(sc, planned_sc, sim, base) -> dict:
    """Energy, cost and carbon of the planned run against the scenario as written (both simulated)."""
    from ..accounting import account
    from ..signals import accounting_inputs

    out: dict[str, Any] = {}
    accs = []
    for s, r in ((planned_sc, sim), (sc, base)):
        inputs, _, _ = accounting_inputs(s, float(r.meta.get("horizon_s") or 0.0))
        accs.append(account(r, inputs).metrics)
    plan_m, base_m = accs
    for key, name in (("energy.facility", "energy"), ("cost.energy", "cost"), ("carbon.operational", "carbon")):
        a, b = plan_m[key].value, base_m[key].value
        out[f"{name}_saving_pct"] = 100.0 * (b - a) / b if b else None
        out[f"planned_{name}"] = a
        out[f"baseline_{name}"] = b
        out[f"{name}_unit"] = plan_m[key].unit
    out["slo_attainment"] = plan_m["slo.attainment"].value
    out["baseline_slo_attainment"] = base_m["slo.attainment"].value
    out["peak_to_budget"] = plan_m["power.max_peak_to_budget"].value if "power.max_peak_to_budget" in plan_m else None
    out["baseline_peak_to_budget"] = (base_m["power.max_peak_to_budget"].value
                                      if "power.max_peak_to_budget" in base_m else None)
    return out


def schedule_table(ctx: Context, plan: op.OperatePlan) -> pd.DataFrame:
    rows = []
    for info in ctx.groups:
        for h in range(ctx.hours):
            rows.append({"group": info.key, "pool": info.pool, "model": info.model, "hour": h,
                         "hour_start_utc": ctx.hour_starts[h].isoformat(), "active": plan.schedule[info.key][h],
                         "replicas": info.replicas, "cap_w": plan.caps[info.pool],
                         "demand_rps": float(ctx.problem.demand_rps[info.model][h]),
                         "planned_capacity_rps": float(plan.served_capacity[info.model][h])})
    return pd.DataFrame(rows)


def capacity_table(ctx: Context) -> pd.DataFrame:
    rows = []
    for info, g in zip(ctx.groups, ctx.problem.groups):
        for cap_w, c, o in zip(ctx.problem.pool_caps[info.pool], info.capacities, g.options):
            rows.append({"group": info.key, "cap_w": cap_w, "steady_rps": c.rps_model, "batch": c.batch,
                         "itl_s": c.itl_s, "ttft_s": c.ttft_s, "planned_rps": o.capacity_rps,
                         "power_full_w": o.level_power_w[-1], "utilisation": info.utilisation})
    return pd.DataFrame(rows)


# ==================================================================================== CLI
def add_arguments(p) -> None:
    from pathlib import Path

    from ..commands._common import add_json_flag

    p.add_argument("scenario", type=Path, help="scenario YAML")
    p.add_argument("--objective", choices=["energy", "cost", "carbon", "weighted"], default=None,
                   help="what to minimise (default: the scenario's plan.operate.objective, else energy)")
    p.add_argument("--time-limit", type=float, default=None, metavar="S", help="solver time limit per round (s)")
    add_json_flag(p)


def cli(args) -> int:
    from ..commands._common import emit
    from ..scenario import OperatePlanSpec, load_scenario

    if args.time_limit is not None and not (args.time_limit > 0 and math.isfinite(args.time_limit)):
        raise FleetError(f"--time-limit: expected a positive number of seconds, got {args.time_limit}")
    sc = load_scenario(args.scenario)
    spec = sc.plan.operate or OperatePlanSpec()
    if args.objective:
        spec = spec.model_copy(update={"objective": args.objective})
    out = plan_and_verify(sc, spec, time_limit_s=args.time_limit,
                          log=None if args.json else (lambda m: print(m)))
    m = out.metrics
    doc = {"status": out.status, "objective": m["objective"], "bound": m["bound"], "gap": m["gap"],
           "solve_s": m["solve_s"], "objective_kind": m["objective_kind"], "objective_unit": m["objective_unit"],
           "energy_saving_pct": m.get("energy_saving_pct"), "cost_saving_pct": m.get("cost_saving_pct"),
           "carbon_saving_pct": m.get("carbon_saving_pct"), "slo_attainment": m.get("slo_attainment"),
           "baseline_slo_attainment": m.get("baseline_slo_attainment"), "verified": out.verified,
           "rounds": out.rounds, "decisions": out.decisions, "solver": out.solver,
           "scenario_hash": sc.hash(), "planned_scenario_hash": out.scenario.hash(), "notes": out.notes}
    if args.json:
        emit(doc, True)
    else:
        lines = [f"plan operate: {out.status}, {'verified' if out.verified else 'NOT verified'} "
                 f"after {len(out.rounds)} round(s)",
                 f"  objective {m['objective']:.6g} {m['objective_unit']} ({m['objective_kind']}), bound "
                 f"{m['bound']:.6g}, gap {m['gap']:.3%}, solve {m['solve_s']:.2f} s"]
        for d in out.decisions:
            lines.append(f"  {d['path']} = {d['value']}  ({d['note']})")
        for key, label in (("energy", "energy"), ("cost", "energy cost"), ("carbon", "carbon")):
            if m.get(f"{key}_saving_pct") is not None:
                lines.append(f"  {label}: {m[f'planned_{key}']:.4g} vs {m[f'baseline_{key}']:.4g} {m[f'{key}_unit']} "
                             f"as written ({m[f'{key}_saving_pct']:+.1f} % saved)")
        lines.append(f"  SLO attainment: {m.get('slo_attainment', float('nan')):.4f} planned, "
                     f"{m.get('baseline_slo_attainment', float('nan')):.4f} as written")
        emit(doc, False, "\n".join(lines))
    return 0 if out.verified else 1
