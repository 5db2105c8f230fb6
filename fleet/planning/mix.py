"""GPU mix: which accelerators to buy or rent and how many, hour by hour, verified in simulation (or Mélange's format).

``fleet plan mix SCENARIO`` builds the candidates (each allowed accelerator x tensor parallelism
x precision x power cap that holds the model; capacity per request-size bucket under the SLO from
the frontier), the buckets and their hourly rates (from the scenario's requests), solves
:mod:`fleet.plan.mix`, applies the plan as a re-validated scenario (a pool per chosen candidate,
the ``size_aware`` router sending each bucket to the pools the plan assigned it to), simulates it,
derates the capacities of buckets that miss the SLO and solves again (a bounded number of rounds),
and compares with the best single accelerator type (solved and simulated the same way) and the
scenario's fleet as written.

The simulation has no replica schedule yet (scenario ``schedule:``, another helper's work): the
planned fleet is simulated at its peak size with every replica active in every hour, and the
plan's hardware cost is priced the same way (``reserved``), so plan and simulation agree.

``fleet plan mix --melange CONFIG.json`` answers a Mélange input file (``gpu_info``,
``workload_distribution``, ``total_request_rate``, ``slice_factor``) with its ``cost_per_hour``
and ``allocation``.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import FleetError, InfeasibleError, InputError, ScenarioError
from ..plan import mix as pm
from . import PlanOutcome

#: tensor-parallel degrees tried when an accelerator names none (the two smallest that fit)
DEFAULT_TPS = (1, 2, 4, 8)


# ============================================================================ inputs from the scenario
@dataclass
class MixInputs:
    problem: pm.MixProblem
    requests: pd.DataFrame            # the model's requests with a 'bucket' column
    horizon_s: float
    notes: list[str] = field(default_factory=list)
    capacity: pd.DataFrame | None = None     # one row per (candidate, bucket)


def _spec(sc, override: dict | None = None):
    from ..scenario import MixPlanSpec

    spec = sc.plan.mix
    if spec is None:
        raise ScenarioError("no plan.mix section: say which accelerators the plan may buy "
                            "(plan: {mix: {accelerators: {H100-SXM: {}, A10G: {}}}})", path=sc.path, field="plan.mix")
    if override:
        data = spec.model_dump()
        data.update({k: v for k, v in override.items() if v is not None})
        spec = MixPlanSpec.model_validate(data)
    return spec


def _demand(sc, spec):
    from ..frontier import canonical_model

    inf = sc.demand.inference
    if spec.model is None:
        models = {canonical_model(d.model) for d in inf}
        if len(models) != 1:
            raise ScenarioError(f"the demand has {len(models)} models; say which one to plan for", path=sc.path,
                                field="plan.mix.model")
        model = models.pop()
    else:
        model = canonical_model(spec.model)
    ds = [d for d in inf if canonical_model(d.model) == model]
    if not ds:
        raise ScenarioError(f"no inference demand for {model}", path=sc.path, field="plan.mix.model")
    slo = ds[0].slo
    return model, slo


def _edges(values: np.ndarray, stated, q: int) -> np.ndarray:
    if stated:
        e = np.unique(np.asarray(stated, float))
    else:
        qs = np.quantile(values, np.arange(1, q) / q) if len(values) else np.zeros(0)
        e = np.unique(np.ceil(qs))
    return np.concatenate([[0.0], e[e > 0], [math.inf]])


def _hourly(sig, start, hours: int) -> np.ndarray:
    times = pd.date_range(pd.Timestamp(start).tz_convert("UTC"), periods=hours, freq="h")
    return np.asarray(sig.at(times), float)


def build_inputs(sc, spec, *, profile_factory=None) -> MixInputs:
    """The mix problem of scenario ``sc`` under ``spec`` (its ``plan.mix`` section)."""
    from ..catalog import get_accelerator
    from ..frontier import accelerator_power
    from ..run import accounting_inputs
    from ..sim.assemble import build_requests, default_profile_factory

    model, slo = _demand(sc, spec)
    req, end = build_requests(sc.sim_input())
    req = req[req["model"] == model].reset_index(drop=True)
    horizon = float(sc.simulation.horizon_s or math.ceil(end / 3600.0) * 3600.0)
    H = max(1, int(math.ceil(horizon / 3600.0 - 1e-9)))
    # buckets
    ie = _edges(req["input_tokens"].to_numpy(float), spec.buckets.input_edges, spec.buckets.quantiles)
    oe = _edges(req["output_tokens"].to_numpy(float), spec.buckets.output_edges, spec.buckets.quantiles)
    bi = np.searchsorted(ie, req["input_tokens"].to_numpy(float), side="right") - 1
    bo = np.searchsorted(oe, req["output_tokens"].to_numpy(float), side="right") - 1
    nI, nO = len(ie) - 1, len(oe) - 1
    bidx = bi * nO + bo
    hour = np.minimum((req["arrival_s"].to_numpy(float) // 3600.0).astype(int), H - 1)
    counts = np.zeros((nI * nO, H))
    np.add.at(counts, (bidx, hour), 1.0)
    buckets, keep = [], []
    for i in range(nI):
        for o in range(nO):
            k = i * nO + o
            sel = bidx == k
            if not sel.any():
                continue
            # capacity is computed at the bucket's mean sizes (throughput is linear in tokens)
            buckets.append(pm.Bucket(f"in{i}out{o}", ie[i], ie[i + 1], oe[o], oe[o + 1],
                                     float(req["input_tokens"].to_numpy()[sel].mean()),
                                     float(req["output_tokens"].to_numpy()[sel].mean())))
            keep.append(k)
    remap = {k: j for j, k in enumerate(keep)}
    req = req.assign(bucket=[remap[int(k)] for k in bidx])
    rates = counts[keep] / 3600.0
    # grid and accounting
    inputs, _, _ = accounting_inputs(sc, H * 3600.0)
    price = _hourly(inputs.price, sc.start_utc, H) / 1e3           # USD/MWh -> USD/kWh
    ci = _hourly(inputs.carbon_intensity, sc.start_utc, H)
    pue = _hourly(inputs.pue, sc.start_utc, H)
    from ..frontier import OperatingPoint

    base_factory = profile_factory or default_profile_factory

    def factory(**kw):
        # candidates are operating points of the scenario's device constants (a what-if part,
        # which names existing accelerators, does not apply to the catalog's candidates)
        return base_factory(OperatingPoint(constants=sc.simulation.constants, **kw))
    a = sc.accounting
    lifetime_h = a.lifetime_years * pm.HOURS_PER_YEAR
    srv_emb = inputs.server_embodied_kgco2e * 1e3 / lifetime_h
    cands: list[pm.Candidate] = []
    rows_cap = []
    notes: list[str] = []
    for name, acc_spec in spec.accelerators.items():
        where = f"plan.mix.accelerators.{name}"
        try:
            spec_row = get_accelerator(name)
        except FleetError as exc:
            raise ScenarioError(str(exc), path=sc.path, field=where) from None
        acc = accelerator_power(spec_row.name)
        price_h = acc_spec.price_usd_per_gpu_hour
        emb = spec_row.embodied_kgco2e
        purchase = spec_row.purchase_usd
        rental = spec_row.price_usd_per_gpu_hour
        for key, ov in a.accelerators.items():
            if get_accelerator(key).name == spec_row.name:
                emb = ov.embodied_kgco2e if ov.embodied_kgco2e is not None else emb
                purchase = ov.purchase_usd if ov.purchase_usd is not None else purchase
                rental = ov.price_usd_per_gpu_hour if ov.price_usd_per_gpu_hour is not None else rental
        if price_h is None:
            if a.cost_model == "purchase":
                price_h = None if _nan(purchase) else purchase / (a.amortisation_years * pm.HOURS_PER_YEAR)
            else:
                price_h = None if _nan(rental) else rental
        if price_h is None:
            raise ScenarioError(f"no {'purchase price' if a.cost_model == 'purchase' else 'hourly price'} for "
                                f"{spec_row.name} in the catalog: state price_usd_per_gpu_hour", path=sc.path,
                                field=f"{where}.price_usd_per_gpu_hour")
        emb_h = 0.0 if _nan(emb) else emb * 1e3 / lifetime_h
        tps = acc_spec.tp or DEFAULT_TPS
        precisions = acc_spec.precisions or spec.precisions
        fitted = 0
        for tp in tps:
            if tp > acc_spec.gpus_per_server or acc_spec.gpus_per_server % tp:
                continue
            if acc_spec.tp is None and fitted >= 2:
                break
            any_fit = False
            for prec in precisions:
                for frac in spec.caps:
                    cap_w = min(max(frac * acc.power_max_w, acc.power_min_w), acc.power_max_w)
                    try:
                        prof = factory(model=model, accelerator=spec_row.name, tp=int(tp), precision=prec,
                                       kv_precision=None, power_cap_w=None if frac >= 1.0 else cap_w,
                                       max_batch=spec.max_batch)
                    except FleetError as exc:
                        notes.append(f"{spec_row.name} tp={tp} {prec}: {str(exc).splitlines()[0]}")
                        continue
                    any_fit = True
                    caps, pw = np.zeros(len(buckets)), np.zeros(len(buckets))
                    for b, bk in enumerate(buckets):
                        bc = pm.bucket_capacity(prof, bk.input_tokens, bk.output_tokens, ttft_s=slo.ttft_s,
                                                tpot_s=slo.tpot_s, utilisation=spec.utilisation)
                        caps[b], pw[b] = bc.rps, bc.power_w
                        rows_cap.append({"accelerator": spec_row.name, "tp": tp, "precision": prec,
                                         "cap_w": cap_w, "bucket": bk.name, "input_tokens": bk.input_tokens,
                                         "output_tokens": bk.output_tokens, "capacity_rps": bc.rps,
                                         "batch": bc.batch, "itl_s": bc.itl_s, "ttft_s": bc.ttft_s,
                                         "power_w": bc.power_w, "reason": bc.reason})
                    if not np.any(caps > 0):
                        notes.append(f"{spec_row.name} tp={tp} {prec} at {cap_w:g} W serves no bucket within the SLO")
                        continue
                    cname = _pool_name(spec_row.name, tp, prec, None if frac >= 1.0 else cap_w)
                    pricing = acc_spec.pricing or "reserved"
                    cands.append(pm.Candidate(
                        cname, spec_row.name, int(tp), prec, float(cap_w), float(acc.tdp_w),
                        float(prof.idle_power_w), caps, pw, float(price_h), pricing, emb_h,
                        acc_spec.gpus_per_server, acc_spec.servers_per_rack,
                        225.0 * acc_spec.gpus_per_server, 350.0, srv_emb,
                        (a.server_capex_usd / (a.amortisation_years * pm.HOURS_PER_YEAR))
                        if a.cost_model == "purchase" else 0.0,
                        acc_spec.row, None,
                        {"power_cap_w": None if frac >= 1.0 else cap_w, "max_batch": spec.max_batch}))
            fitted += any_fit
    if not cands:
        raise ScenarioError("no allowed accelerator holds the model and serves any request size within the SLO"
                            + (": " + "; ".join(notes[:4]) if notes else ""), path=sc.path,
                            field="plan.mix.accelerators")
    avail = {}
    for name, acc_spec in spec.accelerators.items():
        if acc_spec.max_gpus is not None:
            avail[get_accelerator(name).name] = int(acc_spec.max_gpus)
    slo_words = " and ".join(x for x in (f"TTFT {slo.ttft_s:g} s" if slo.ttft_s else "",
                                         f"TPOT {slo.tpot_s * 1e3:g} ms" if slo.tpot_s else "") if x) or "no SLO"
    start = pd.Timestamp(sc.start_utc)
    P = pm.MixProblem(cands, buckets, rates, price, ci, pue, avail, sc.fleet.power.site_budget_w,
                      dict(sc.fleet.power.rows), spec.racks, spec.budget_usd, spec.slices, 1.0, 3600.0, model,
                      f"the SLO ({slo_words}, demand of {model})", "plan.mix",
                      [f"hour {h} ({(start + pd.Timedelta(hours=h)).strftime('%H:00 UTC')})" for h in range(H)])
    return MixInputs(P, req, H * 3600.0, notes, pd.DataFrame(rows_cap))


def _nan(x) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def _pool_name(acc: str, tp: int, prec: str, cap_w: float | None) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", acc.lower()).strip("-")
    return f"{base}-tp{tp}-{prec}" + (f"-{cap_w:.0f}w" if cap_w is not None else "")


# ============================================================================ apply
def apply_plan(sc, inputs: MixInputs, plan: pm.MixPlan, *, note: str = "GPU mix plan"):
    """The scenario with the plan's pools (replacing those serving the planned model) and the
    size-aware routes; re-validated like a hand-written file."""
    P = inputs.problem
    from ..frontier import canonical_model

    keep = []
    for p in sc.content()["fleet"]["pools"]:
        serves = [canonical_model(s["model"]) for s in p.get("serve", [])]
        if p.get("role", "serving") == "serving" and P.model in serves:
            continue
        keep.append(p)
    pools, routes = [], []
    for c, cand in enumerate(P.candidates):
        n = int(plan.replicas[c])
        if n <= 0:
            continue
        pool = {"name": cand.name, "accelerator": cand.accelerator, "gpus": n * cand.tp,
                "gpus_per_server": cand.gpus_per_server, "servers_per_rack": cand.servers_per_rack,
                "row": cand.row, "serve": [{"model": P.model, "tp": cand.tp, "precision": cand.precision,
                                             "max_batch": int(cand.notes.get("max_batch", 256))}]}
        if cand.notes.get("power_cap_w") is not None:
            pool["power_cap_w"] = float(cand.notes["power_cap_w"])
        pools.append(pool)
        for b, bk in enumerate(P.buckets):
            w = plan.share[c, b, :]
            if np.any(w > 1e-9):
                routes.append({"model": P.model, "pool": cand.name,
                               "input_tokens": [float(bk.input_lo), _fin(bk.input_hi)],
                               "output_tokens": [float(bk.output_lo), _fin(bk.output_hi)],
                               "weight": [round(float(x), 6) for x in w]})
    ups = {"fleet.pools": keep + pools, "simulation.router": "size_aware", "simulation.size_routes": routes,
           "plan": None, "expectations": None}
    return sc.with_updates(ups, note=note)


def _fin(x: float) -> float:
    return float(x) if math.isfinite(x) else 1e12


# ============================================================================ simulate and verify
@dataclass
class SimFigures:
    label: str
    cost_usd: float
    energy_kwh: float
    carbon_kg: float
    embodied_kg: float
    slo_attainment: float
    hours_met: float                  # share of hours whose attainment >= target
    hourly: np.ndarray                # attainment per hour
    by_pool_bucket: pd.DataFrame      # pool, bucket, requests, attainment
    gpus: dict[str, int]
    sim: Any = None

    def as_dict(self) -> dict:
        return {"label": self.label, "cost_usd": self.cost_usd, "energy_kwh": self.energy_kwh,
                "carbon_kgco2e": self.carbon_kg, "embodied_kgco2e": self.embodied_kg,
                "slo_attainment": self.slo_attainment, "hours_slo_met": self.hours_met, "gpus": self.gpus}


def simulate_and_account(sc, inputs: MixInputs, target: float, label: str) -> SimFigures:
    from ..accounting import account, slo_met
    from ..run import accounting_inputs, simulate_step

    sim = simulate_step(sc, quiet=True)
    ai, _, _ = accounting_inputs(sc, float(sim.meta["horizon_s"]))
    acc = account(sim, ai)
    req = sim.requests
    req = req[req["model"] == inputs.problem.model]
    met = slo_met(req, ai.slo)
    H = inputs.problem.hours
    hour = np.minimum((req["arrival_s"].to_numpy(float) // 3600.0).astype(int), H - 1)
    n = np.bincount(hour, minlength=H).astype(float)
    good = np.bincount(hour, weights=met.astype(float), minlength=H)
    hourly = np.where(n > 0, good / np.maximum(n, 1), 1.0)
    # bucket of each simulated request (same edges)
    P = inputs.problem
    b = np.full(len(req), -1)
    inp, out = req["input_tokens"].to_numpy(float), req["output_tokens"].to_numpy(float)
    for k, bk in enumerate(P.buckets):
        b[(inp >= bk.input_lo) & (inp < bk.input_hi) & (out >= bk.output_lo) & (out < bk.output_hi)] = k
    df = pd.DataFrame({"pool": req["pool"].astype(str).to_numpy(), "bucket": b, "met": met})
    bpb = df.groupby(["pool", "bucket"]).agg(requests=("met", "size"), attainment=("met", "mean")).reset_index()
    gpus = {p.name: p.gpus for p in sc.fleet.pools if p.role == "serving"}
    return SimFigures(label, acc.value("cost.total"), acc.value("energy.facility") / pm.J_PER_KWH,
                      acc.value("carbon.operational") / 1e3, acc.value("carbon.embodied") / 1e3,
                      float(met.mean()) if len(met) else math.nan, float(np.mean(hourly >= target)), hourly,
                      bpb, gpus, sim)


def _failed(fig: SimFigures, P: pm.MixProblem, target: float, derate: float) -> dict[tuple[str, int], float]:
    out = {}
    names = {c.name for c in P.candidates}
    for r in fig.by_pool_bucket.itertuples():
        if r.pool in names and r.bucket >= 0 and r.attainment < target:
            out[(r.pool, int(r.bucket))] = derate
    return out


# ============================================================================ the loop
def _solve(P: pm.MixProblem, spec, objective, log) -> tuple[pm.MixModel, pm.MixPlan]:
    mm = pm.build(P)
    plan = pm.solve(mm, objective, time_limit_s=spec.time_limit_s)
    if plan.ok:
        log(f"mix: {plan.solution.status} {plan.solution.objective:.6g} {plan.solution.objective_unit} "
            f"(bound {plan.solution.bound:.6g}, gap {plan.solution.gap:.2%}) in {plan.solution.wall_s:.2f} s")
    return mm, plan


def _objective(spec):
    return dict(spec.weights) if spec.objective == "weighted" else spec.objective


def explain(P: pm.MixProblem, time_limit_s: float) -> list[str]:
    """Why no plan exists, in the scenario's words (the core's elastic re-solve on the slice model)."""
    import dataclasses

    mm = pm.build(dataclasses.replace(P, continuous_shares=False))
    ex = mm.model.explain(time_limit_s=time_limit_s)
    lines = ex.lines() or [ex.note]
    if ex.conflicts and not ex.confirmed:
        lines.append(ex.note)
    return lines


def best_single(sc, inputs: MixInputs, spec, log) -> tuple[str | None, pm.MixPlan | None, list[dict]]:
    """The best single accelerator type (all its candidates), solved the same way."""
    import dataclasses

    P = inputs.problem
    rows, best, best_plan = [], None, None
    for acc in dict.fromkeys(c.accelerator for c in P.candidates):
        sub = dataclasses.replace(P, candidates=[c for c in P.candidates if c.accelerator == acc])
        mm = pm.build(sub)
        plan = pm.solve(mm, _objective(spec), time_limit_s=spec.time_limit_s)
        row = {"accelerator": acc, "status": plan.solution.status,
               "objective": plan.solution.objective if plan.ok else None,
               "gpus": int(sum(plan.gpus(sub).values())) if plan.ok else None}
        rows.append(row)
        if plan.ok and (best_plan is None or plan.solution.objective < best_plan[1].solution.objective):
            best, best_plan = acc, (sub, plan)
    return best, best_plan, rows


def plan_and_verify(scenario, spec=None, *, log: Callable[[str], None] | None = None,
                    pareto: list[str] | None = None) -> PlanOutcome:
    """Plan the GPU mix of ``scenario``, apply it, simulate it and verify it (see the module docstring)."""
    log = log or (lambda s: None)
    sc = scenario
    spec = spec or _spec(sc)
    target = spec.slo_target
    inputs = build_inputs(sc, spec)
    P = inputs.problem
    obj = _objective(spec)
    out = PlanOutcome("mix", "UNKNOWN", False, sc, notes=list(inputs.notes))
    rounds: list[dict] = []
    failed: dict[tuple[str, int], float] = {}
    planned = plan = fig = None
    Pr = P
    for r in range(spec.rounds):
        Pr = pm.derate(P, failed) if failed else P
        mm, plan = _solve(Pr, spec, obj, log)
        if not plan.ok:
            out.status = plan.solution.status
            if plan.solution.status == "INFEASIBLE":
                out.conflicts = explain(Pr, spec.time_limit_s)
            rounds.append({"round": r + 1, "status": plan.solution.status, "derated": len(failed)})
            break
        planned = apply_plan(sc, inputs, plan, note=f"GPU mix plan, round {r + 1}")
        fig = simulate_and_account(planned, inputs, target, "plan")
        new = _failed(fig, Pr, target, spec.derate)
        rounds.append({"round": r + 1, "status": plan.solution.status, "objective": plan.solution.objective,
                       "gap": plan.solution.gap, "solve_s": plan.solution.wall_s, "gpus": plan.allocation(Pr),
                       "slo_attainment": fig.slo_attainment, "hours_slo_met": fig.hours_met,
                       "derated": [f"{k[0]} / {P.buckets[k[1]].name}" for k in sorted(failed)],
                       "failing": [f"{k[0]} / {P.buckets[k[1]].name}" for k in sorted(new)]})
        log(f"round {r + 1}: SLO attainment {fig.slo_attainment:.4f}, hours meeting {target:g}: "
            f"{fig.hours_met:.1%}; {len(new)} pool/bucket pairs below target")
        if not new or fig.hours_met >= 0.99 and fig.slo_attainment >= target:
            out.verified = fig.hours_met >= 0.99
            break
        for k, f in new.items():
            failed[k] = failed.get(k, 1.0) * f
    out.rounds = rounds
    if plan is None or not plan.ok or planned is None:
        return out
    out.status = plan.solution.status
    out.scenario = planned
    out.sim = fig.sim
    out.solver = plan.solution.figures()
    alloc = plan.allocation(Pr)
    out.decisions = [{"path": f"fleet.pools[{c.name}].gpus", "value": int(plan.replicas[i] * c.tp), "was": None,
                      "note": f"{plan.replicas[i]} replicas of {c.tp} x {c.accelerator} {c.precision}"
                              + (f" capped at {c.cap_w:g} W" if c.notes.get('power_cap_w') else "")}
                     for i, c in enumerate(Pr.candidates) if plan.replicas[i] > 0]
    metrics: dict[str, Any] = {**{k: out.solver[k] for k in ("status", "objective", "bound", "gap", "solve_s")},
                               "objective_name": spec.objective, "objective_unit": out.solver["objective_unit"],
                               "cost_per_hour": plan.figures["cost"] / P.hours, "allocation": alloc,
                               "plan": {k: v for k, v in plan.figures.items()},
                               "slo_attainment": fig.slo_attainment, "hours_slo_met": fig.hours_met,
                               "rounds": len(rounds), "verified": out.verified, "simulated": fig.as_dict()}
    tables = _tables(Pr, plan, inputs)
    # baselines
    if spec.baselines:
        acc, sub_plan, rows = best_single(sc, inputs, spec, log)
        tables["single_types"] = pd.DataFrame(rows)
        if sub_plan is not None:
            sub, splan = sub_plan
            sfig = simulate_and_account(apply_plan(sc, MixInputs(sub, inputs.requests, inputs.horizon_s), splan,
                                                   note=f"best single type: {acc}"), inputs, target, f"best single ({acc})")
            out.baseline_sim = sfig.sim
            metrics["best_single"] = {"accelerator": acc, "plan": dict(splan.figures),
                                      "allocation": splan.allocation(sub), **sfig.as_dict()}
            for k, a, b in (("cost", fig.cost_usd, sfig.cost_usd), ("energy", fig.energy_kwh, sfig.energy_kwh),
                            ("carbon", fig.carbon_kg, sfig.carbon_kg)):
                metrics[f"{k}_saving_pct"] = 100.0 * (1.0 - a / b) if b else None
            metrics["plan_cost_saving_pct"] = 100.0 * (1.0 - plan.figures["cost"] / splan.figures["cost"])
        try:
            afig = simulate_and_account(sc, inputs, target, "as written")
            metrics["as_written"] = afig.as_dict()
        except FleetError as exc:
            out.notes.append(f"the scenario's fleet as written was not simulated: {exc}")
    # Pareto front
    pair = pareto or spec.pareto
    if pair:
        mm2 = pm.build(Pr)
        front = pm.pareto(mm2, pair[0], pair[1], points=spec.pareto_points, time_limit_s=spec.time_limit_s)
        tables["pareto"] = pd.DataFrame(front.table())
        metrics["pareto"] = {"objectives": list(pair), "points": front.table(), "knee": front.knee}
    out.metrics = metrics
    out.tables = tables
    out.notes.append("verified with every planned replica active in every hour (peak-sized fleet): the "
                     "simulation has no replica schedule in this build; hardware is priced the same way")
    return out


def _tables(P: pm.MixProblem, plan: pm.MixPlan, inputs: MixInputs) -> dict[str, pd.DataFrame]:
    rows = []
    for c, cand in enumerate(P.candidates):
        if plan.replicas[c] <= 0:
            continue
        for h in range(P.hours):
            rows.append({"pool": cand.name, "accelerator": cand.accelerator, "hour": h,
                         "active_replicas": int(np.ceil(plan.load[c, h] - 1e-9)), "load_replicas": plan.load[c, h],
                         "owned_replicas": int(plan.replicas[c]), "gpus_per_replica": cand.tp})
    hourly = pd.DataFrame(rows)
    demand = pd.DataFrame({"hour": np.arange(P.hours), "demand_rps": P.rates.sum(axis=0)})
    mix = pd.DataFrame([{"pool": c.name, "accelerator": c.accelerator, "tp": c.tp, "precision": c.precision,
                         "cap_w": c.cap_w, "replicas": int(plan.replicas[i]), "gpus": int(plan.replicas[i] * c.tp),
                         "price_usd_per_gpu_hour": c.price_usd_per_gpu_hour, "pricing": c.pricing}
                        for i, c in enumerate(P.candidates) if plan.replicas[i] > 0])
    assign = []
    for c, cand in enumerate(P.candidates):
        for b, bk in enumerate(P.buckets):
            s = plan.share[c, b]
            if s.sum() > 0:
                assign.append({"pool": cand.name, "bucket": bk.name, "input": f"{bk.input_lo:g}-{bk.input_hi:g}",
                               "output": f"{bk.output_lo:g}-{bk.output_hi:g}", "mean_share": float(s.mean())})
    return {"mix": mix, "hourly": hourly, "demand": demand, "assignment": pd.DataFrame(assign),
            "capacity": inputs.capacity if inputs.capacity is not None else pd.DataFrame()}


# ============================================================================ CLI
def add_arguments(p) -> None:
    p.add_argument("scenario", nargs="?", help="scenario YAML with a plan.mix section")
    p.add_argument("--melange", metavar="CONFIG.json", help="solve a Mélange input file instead")
    p.add_argument("--objective", choices=["cost", "energy", "carbon", "embodied", "total_carbon"])
    p.add_argument("--pareto", metavar="A,B", help="trace the Pareto front between two objectives, e.g. cost,carbon")
    p.add_argument("--time-limit", type=float, metavar="S", help="solver time limit per solve (s)")
    p.add_argument("--no-baselines", action="store_true", help="skip the best-single-type baseline")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating, float)):
        return float(x) if math.isfinite(float(x)) else None
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    return x


def cli_melange(path: str, as_json: bool, time_limit_s: float | None) -> int:
    try:
        cfg = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such file", path=path) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno) from None
    try:
        res = pm.melange(cfg, time_limit_s=time_limit_s or 30.0)
    except InputError as exc:
        raise InputError(str(exc), path=path) from None
    if not math.isfinite(res.cost_per_hour):
        raise InfeasibleError(f"{path}: no allocation serves every bucket", ["a bucket has zero throughput on "
                                                                             "every GPU type"])
    out = {"status": res.status, "cost_per_hour": res.cost_per_hour, "allocation": res.allocation,
           "bound": res.bound, "gap": res.gap, "solve_s": res.solve_s, "solver": "CP-SAT"}
    if as_json:
        print(json.dumps(_jsonable(out), indent=2))
    else:
        print(f"{res.status}: {res.cost_per_hour:.4g} USD/h, " + ", ".join(f"{g}: {n}" for g, n in res.allocation.items()))
    return 0


def cli(args) -> int:
    if args.melange:
        return cli_melange(args.melange, args.json, args.time_limit)
    if not args.scenario:
        raise InputError("expected a scenario file or --melange CONFIG.json")
    from ..scenario import load_scenario

    sc = load_scenario(args.scenario)
    override = {"objective": args.objective, "time_limit_s": args.time_limit}
    if args.no_baselines:
        override["baselines"] = False
    pareto = None
    if args.pareto:
        pareto = [s.strip() for s in args.pareto.split(",")]
        bad = [s for s in pareto if s not in pm.OBJECTIVES]
        if len(pareto) != 2 or bad or pareto[0] == pareto[1]:
            raise InputError(f"--pareto expects two different objectives of {', '.join(pm.OBJECTIVES)}, "
                             f"got {args.pareto!r}")
    spec = _spec(sc, override)
    log = (lambda s: None) if args.json else (lambda s: print(s, file=sys.stderr))
    out = plan_and_verify(sc, spec, log=log, pareto=pareto)
    if out.conflicts:
        raise InfeasibleError(f"{sc.path}: plan.mix", out.conflicts)
    keys = ("status", "objective", "bound", "gap", "solve_s", "cost_per_hour", "allocation", "cost_saving_pct",
            "energy_saving_pct", "carbon_saving_pct", "slo_attainment", "rounds")
    m = out.metrics
    if args.json:
        doc = {k: m.get(k) for k in keys}
        doc.update({k: v for k, v in m.items() if k not in keys})
        doc["round_details"] = out.rounds
        doc["verified"] = out.verified
        doc["notes"] = out.notes
        print(json.dumps(_jsonable(doc), indent=2))
        return 0
    print(out.describe())
    for k in keys:
        if k in m:
            print(f"  {k}: {m[k]}")
    for r in out.rounds:
        print(f"  round {r['round']}: {r}")
    for n in out.notes:
        print(f"  note: {n}")
    return 0
