"""GPU mix: which accelerators to buy or rent and how many, hour by hour, verified in simulation (or Mélange's format).

``fleet plan mix SCENARIO`` builds the candidates (each allowed accelerator x tensor parallelism
x precision x power cap that holds the model; capacity per request-size bucket under the SLO from
the frontier; candidates another beats on every count are dropped), the buckets and their hourly
rates (from the scenario's requests), solves :mod:`fleet.plan.mix`, applies the plan as a
re-validated scenario (a pool per chosen candidate holding its peak replicas, the replica schedule
``schedule.<pool>`` with the plan's active replicas per hour, and the ``size_aware`` router sending
each bucket to the pools the plan assigned it to in that hour), simulates it, derates the
capacities of (pool, bucket) pairs that miss the SLO and solves again (a bounded number of
rounds).

Pricing per accelerator type (``plan.mix.accelerators.<name>.pricing``): 'reserved' (the default:
owned GPUs amortised, or rentals held for the whole horizon) pays the peak count every hour;
'hourly' (on-demand rentals) pays only the GPU-hours the schedule keeps active.  The simulated
cost is the accounting's energy cost plus the hardware paid that way, counted from the
simulation's own schedule table (the accounting itself bills every rented GPU for the horizon).
Inactive replicas draw what ``simulation.inactive`` says, in the plan and in the simulation.

Baselines, solved and verified the same way (same rounds, same router and schedule): every
single accelerator type scaled hour by hour (the best verified one is the reference of the
savings) and the scenario's fleet as written (its count fixed, operated hour by hour); the fleet
as written is also simulated as it is.  The mix solve starts from the best single type's plan, so
the mix is never planned worse than it.

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

from ..catalog import get_accelerator
from ..errors import FleetError, InfeasibleError, InputError, ScenarioError
from ..frontier import accelerator_power
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
    context: Any = None                      # makes candidates (e.g. of the pools as written)


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


class _CandidateContext:
    """Makes :class:`~fleet.plan.mix.Candidate` s of one scenario: an accelerator at a tensor
    parallelism, precision and cap, with its capacity per bucket from the frontier, its price
    (the plan's, the scenario's accounting override, then the catalog's) and what it draws when
    the replica schedule switches it off (``simulation.inactive``)."""

    def __init__(self, sc, spec, model, slo, buckets, factory, inputs, rows_cap, notes):
        self.sc, self.spec, self.model, self.slo, self.buckets = sc, spec, model, slo, buckets
        self.factory, self.rows_cap, self.notes = factory, rows_cap, notes
        a = sc.accounting
        self.lifetime_h = a.lifetime_years * pm.HOURS_PER_YEAR
        self.srv_emb = inputs.server_embodied_kgco2e * 1e3 / self.lifetime_h

    def price(self, spec_row, stated: float | None, pricing: str | None, where: str) -> tuple[float, str]:
        """USD per GPU-hour and how it is paid: 'reserved' (every hour for the peak count: a
        purchase amortised, or a rental held for the horizon) or 'hourly' (per active GPU-hour,
        only where the scenario says so: ``plan.mix.accelerators.<name>.pricing``)."""
        sc, a = self.sc, self.sc.accounting
        price_h = stated
        purchase, rental = spec_row.purchase_usd, spec_row.price_usd_per_gpu_hour
        for key, ov in a.accelerators.items():
            if get_accelerator(key).name == spec_row.name:
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
        return float(price_h), pricing or "reserved"

    def embodied(self, spec_row) -> float:
        emb = spec_row.embodied_kgco2e
        for key, ov in self.sc.accounting.accelerators.items():
            if get_accelerator(key).name == spec_row.name and ov.embodied_kgco2e is not None:
                emb = ov.embodied_kgco2e
        return 0.0 if _nan(emb) else emb * 1e3 / self.lifetime_h

    def candidate(self, spec_row, tp: int, prec: str, frac: float | None, price_h: float, pricing: str,
                  gpus_per_server: int, servers_per_rack: int, row: str, *, name: str | None = None,
                  cap_w: float | None = None, max_batch: int | None = None, max_replicas: int | None = None):
        """The candidate, None when the model does not fit (noted), False when it fits but serves
        no bucket within the SLO (noted).  ``frac``: cap as a fraction of the maximum limit (or
        ``cap_w`` in W; neither: uncapped)."""
        sc, spec, slo, a = self.sc, self.spec, self.slo, self.sc.accounting
        acc = accelerator_power(spec_row.name)
        if cap_w is None and frac is not None and frac < 1.0:
            cap_w = min(max(frac * acc.power_max_w, acc.power_min_w), acc.power_max_w)
        eff_cap = float(cap_w) if cap_w is not None else float(acc.power_max_w)
        mb = int(max_batch or spec.max_batch)
        try:
            prof = self.factory(model=self.model, accelerator=spec_row.name, tp=int(tp), precision=prec,
                                kv_precision=None, power_cap_w=cap_w, max_batch=mb)
        except FleetError as exc:
            self.notes.append(f"{spec_row.name} tp={tp} {prec}: {str(exc).splitlines()[0]}")
            return None
        caps, pw = np.zeros(len(self.buckets)), np.zeros(len(self.buckets))
        for b, bk in enumerate(self.buckets):
            bc = pm.bucket_capacity(prof, bk.input_tokens, bk.output_tokens, ttft_s=slo.ttft_s,
                                    tpot_s=slo.tpot_s, utilisation=spec.utilisation)
            caps[b], pw[b] = bc.rps, bc.power_w
            self.rows_cap.append({"accelerator": spec_row.name, "tp": tp, "precision": prec,
                                  "cap_w": eff_cap, "bucket": bk.name, "input_tokens": bk.input_tokens,
                                  "output_tokens": bk.output_tokens, "capacity_rps": bc.rps,
                                  "batch": bc.batch, "itl_s": bc.itl_s, "ttft_s": bc.ttft_s,
                                  "power_w": bc.power_w, "reason": bc.reason,
                                  "usd_per_1k_requests": (1e3 * price_h * tp / 3600.0 / bc.rps) if bc.rps > 0
                                  else math.inf})
        if not np.any(caps > 0):
            self.notes.append(f"{spec_row.name} tp={tp} {prec} at {eff_cap:g} W serves no bucket within the SLO")
            return False
        # what a replica draws when the schedule switches it off (as the simulation draws it)
        parked = float(prof.idle_power_w) if sc.simulation.inactive == "idle" else \
            float(tp) * float(getattr(spec_row, "standby_w", 0.0) or 0.0)
        cname = name or _pool_name(spec_row.name, tp, prec, cap_w)
        return pm.Candidate(
            cname, spec_row.name, int(tp), prec, eff_cap, float(acc.tdp_w),
            float(prof.idle_power_w), caps, pw, float(price_h), pricing, self.embodied(spec_row),
            gpus_per_server, servers_per_rack, 225.0 * gpus_per_server, 350.0, self.srv_emb,
            (a.server_capex_usd / (a.amortisation_years * pm.HOURS_PER_YEAR)) if a.cost_model == "purchase" else 0.0,
            row, max_replicas, parked, {"power_cap_w": cap_w, "max_batch": mb})


def build_inputs(sc, spec, *, profile_factory=None) -> MixInputs:
    """The mix problem of scenario ``sc`` under ``spec`` (its ``plan.mix`` section)."""
    from ..catalog import get_accelerator
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
    cands: list[pm.Candidate] = []
    rows_cap: list[dict] = []
    notes: list[str] = []
    ctx = _CandidateContext(sc, spec, model, slo, buckets, factory, inputs, rows_cap, notes)
    for name, acc_spec in spec.accelerators.items():
        where = f"plan.mix.accelerators.{name}"
        try:
            spec_row = get_accelerator(name)
        except FleetError as exc:
            raise ScenarioError(str(exc), path=sc.path, field=where) from exc
        price_h, pricing = ctx.price(spec_row, acc_spec.price_usd_per_gpu_hour, acc_spec.pricing, where)
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
                    made = ctx.candidate(spec_row, int(tp), prec, frac, price_h, pricing, acc_spec.gpus_per_server,
                                         acc_spec.servers_per_rack, acc_spec.row)
                    if made is None:
                        continue
                    any_fit = True
                    if made is not False:
                        cands.append(made)
            fitted += any_fit
    drop = pm.dominated(pm.MixProblem(cands, buckets, rates, price, ci, pue)) if len(cands) > 1 else {}
    if drop:
        cands = [c for c in cands if c.name not in drop]
        notes.append("dropped as dominated (the other does as well or better on every count at the same price): "
                     + ", ".join(f"{k} by {v}" for k, v in drop.items()))
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
    return MixInputs(P, req, H * 3600.0, notes, pd.DataFrame(rows_cap), ctx)


def _nan(x) -> bool:
    try:
        return x is None or math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def _pool_name(acc: str, tp: int, prec: str, cap_w: float | None) -> str:
    base = re.sub(r"[^a-z0-9]+", "-", acc.lower()).strip("-")
    return f"{base}-tp{tp}-{prec}" + (f"-{cap_w:.0f}w" if cap_w is not None else "")


# ============================================================================ apply
def apply_plan(sc, inputs: MixInputs, plan: pm.MixPlan, *, note: str = "GPU mix plan", problem=None):
    """The scenario with the plan's pools (replacing those serving the planned model), the
    size-aware routes (each bucket to the pools the plan gave it, hour by hour) and the replica
    schedule (``schedule.<pool>``: the plan's active replicas per hour; the pool holds the peak),
    re-validated like a hand-written file."""
    P = problem or inputs.problem
    from ..frontier import canonical_model

    keep = []
    for p in sc.content()["fleet"]["pools"]:
        serves = [canonical_model(s["model"]) for s in p.get("serve", [])]
        if p.get("role", "serving") == "serving" and P.model in serves:
            continue
        keep.append(p)
    pools, routes, schedule = [], [], {}
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
        schedule[cand.name] = [int(x) for x in active_hours(plan, c)]
        for b, bk in enumerate(P.buckets):
            w = plan.share[c, b, :]
            if np.any(w > 1e-9):
                routes.append({"model": P.model, "pool": cand.name,
                               "input_tokens": [float(bk.input_lo), _fin(bk.input_hi)],
                               "output_tokens": [float(bk.output_lo), _fin(bk.output_hi)],
                               "weight": [round(float(x), 6) for x in w]})
    old = {k: v for k, v in (sc.content().get("schedule") or {}).items()
           if k.partition(":")[0] in {p["name"] for p in keep}}
    ups = {"fleet.pools": keep + pools, "simulation.router": "size_aware", "simulation.size_routes": routes,
           "schedule": {**old, **schedule} or None, "plan": None, "expectations": None}
    return sc.with_updates(ups, note=note)


def active_hours(plan: pm.MixPlan, c: int) -> np.ndarray:
    """Active replicas of candidate ``c`` per hour: at least its load rounded up, at most its peak."""
    need = np.ceil(np.asarray(plan.load[c], float) - 1e-9).astype(int)
    return np.minimum(np.maximum(np.asarray(plan.active[c], int), need), int(plan.replicas[c]))


def _fin(x: float) -> float:
    return float(x) if math.isfinite(x) else 1e12


# ============================================================================ simulate and verify
@dataclass
class SimFigures:
    label: str
    cost_usd: float                   # energy (accounted) + hardware as paid (schedule and pricing)
    energy_kwh: float
    carbon_kg: float
    embodied_kg: float
    slo_attainment: float
    hours_met: float                  # share of hours whose attainment >= target
    hourly: np.ndarray                # attainment per hour
    by_pool_bucket: pd.DataFrame      # pool, bucket, requests, attainment
    gpus: dict[str, int]
    sim: Any = None
    hardware_usd: float = math.nan
    energy_usd: float = math.nan
    gpu_hours: float = math.nan       # GPU-hours paid for
    requests: int = 0

    def as_dict(self) -> dict:
        return {"label": self.label, "cost_usd": self.cost_usd, "hardware_usd": self.hardware_usd,
                "energy_usd": self.energy_usd, "energy_kwh": self.energy_kwh,
                "carbon_kgco2e": self.carbon_kg, "embodied_kgco2e": self.embodied_kg,
                "slo_attainment": self.slo_attainment, "hours_slo_met": self.hours_met, "gpus": self.gpus,
                "gpu_hours_paid": self.gpu_hours, "requests": self.requests}


def simulate_and_account(sc, inputs: MixInputs, target: float, label: str, problem=None) -> SimFigures:
    """Simulate ``sc`` and account it.  Hardware of the pools that are candidates of ``problem``
    is paid as the plan prices it: 'reserved' for the peak count every hour, 'hourly' for the
    GPU-hours the simulation's replica schedule kept active (``SimResult.schedule``); other pools
    as the accounting prices them.  Energy, carbon and their cost are the accounting's."""
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
    hw, gpu_h = _hardware(sc, sim, acc, problem)
    e_usd = acc.value("cost.energy")
    return SimFigures(label, e_usd + hw, acc.value("energy.facility") / pm.J_PER_KWH,
                      acc.value("carbon.operational") / 1e3, acc.value("carbon.embodied") / 1e3,
                      float(met.mean()) if len(met) else math.nan, float(np.mean(hourly >= target)), hourly,
                      bpb, gpus, sim, hw, e_usd, gpu_h, int(len(req)))


def _hardware(sc, sim, acc, problem) -> tuple[float, float]:
    """Hardware cost (USD) and GPU-hours paid of a simulated scenario (see simulate_and_account)."""
    cands = {c.name: c for c in (problem.candidates if problem is not None else [])}
    horizon_h = float(sim.meta["horizon_s"]) / 3600.0
    sched = getattr(sim, "schedule", None)
    total, gpu_h = 0.0, 0.0
    for r in acc.pools.itertuples():
        if r.role != "serving" and r.pool not in cands:
            total += float(r.hardware_cost_usd)
            gpu_h += float(r.gpus) * horizon_h
            continue
        c = cands.get(r.pool)
        if c is None:
            total += float(r.hardware_cost_usd)
            gpu_h += float(r.gpus) * horizon_h
            continue
        if c.pricing == "hourly" and sched is not None and len(sched):
            s = sched[sched["pool"] == r.pool]
            # each hour's active replicas over the part of that hour inside the horizon
            frac = np.clip(horizon_h - s["hour"].to_numpy(float), 0.0, 1.0)
            g = float(np.sum(s["active"].to_numpy(float) * frac)) * c.tp
        else:
            g = float(r.gpus) * horizon_h
        servers = math.ceil(float(r.gpus) / c.gpus_per_server)
        total += g * c.price_usd_per_gpu_hour + (0.0 if c.pricing == "hourly" else
                                                   servers * c.server_usd_per_hour * horizon_h)
        gpu_h += g
    return total, gpu_h


def _failed(fig: SimFigures, P: pm.MixProblem, target: float, derate: float) -> dict[tuple[str, int], float]:
    out = {}
    names = {c.name for c in P.candidates}
    for r in fig.by_pool_bucket.itertuples():
        if r.pool in names and r.bucket >= 0 and r.attainment < target:
            out[(r.pool, int(r.bucket))] = derate
    return out


# ============================================================================ the loop


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


@dataclass
class Verified:
    """One plan solved, applied, simulated and derated until it holds (or the rounds run out)."""

    label: str
    status: str
    problem: pm.MixProblem                  # the last round's (derated) problem
    plan: pm.MixPlan | None
    scenario: Any                           # the applied scenario of the last round
    fig: SimFigures | None
    rounds: list[dict]
    verified: bool
    first_objective: float = math.nan       # round 1's objective (a lower bound on later rounds')
    conflicts: list[str] = field(default_factory=list)

    @property
    def objective(self) -> float:
        return self.plan.solution.objective if self.plan is not None and self.plan.ok else math.inf


def plan_verify_loop(sc, inputs: MixInputs, P: pm.MixProblem, spec, *, label: str, log=None,
                     hint_plan: tuple[pm.MixProblem, pm.MixPlan] | None = None,
                     fix_replicas: bool = False, first: pm.MixPlan | None = None) -> Verified:
    """Solve ``P``, apply (pools, size-aware routes, replica schedule), simulate, derate the
    (pool, bucket) pairs that miss ``spec.slo_target`` and solve again, at most ``spec.rounds``
    rounds; the plan is verified when its p99-style target holds in at least 99% of hours.
    ``hint_plan``: a plan of a subset of the candidates to start from (the best single type).
    ``fix_replicas``: every candidate keeps its ``max_replicas`` (the fleet as written)."""
    log = log or (lambda s: None)
    target = spec.slo_target
    obj = _objective(spec)
    failed: dict[tuple[str, int], float] = {}
    rounds: list[dict] = []
    out = Verified(label, "UNKNOWN", P, None, None, None, rounds, False)
    for r in range(spec.rounds):
        Pr = pm.derate(P, failed) if failed else P
        if r == 0 and first is not None:
            plan = first
        else:
            mm = pm.build(Pr)
            hint = None
            if hint_plan is not None:
                hint = pm.hint_from(mm, hint_plan[1], hint_plan[0])
            plan = pm.solve(mm, obj, time_limit_s=spec.time_limit_s, hint=hint)
        if r == 0:
            out.first_objective = plan.solution.objective if plan.ok else math.inf
        if not plan.ok:
            out.status = plan.solution.status
            if plan.solution.status == "INFEASIBLE" and r == 0:
                out.conflicts = explain(Pr, spec.time_limit_s)
            rounds.append({"round": r + 1, "status": plan.solution.status, "derated": len(failed)})
            break
        log(f"{label}, round {r + 1}: {plan.solution.status} {plan.solution.objective:.6g} "
            f"{plan.solution.objective_unit} (gap {plan.solution.gap:.2%}, {plan.solution.wall_s:.2f} s)")
        if fix_replicas:
            plan.replicas = np.array([int(c.max_replicas or plan.replicas[i]) for i, c in enumerate(Pr.candidates)])
        planned = apply_plan(sc, inputs, plan, note=f"{label}, round {r + 1}", problem=Pr)
        fig = simulate_and_account(planned, inputs, target, label, problem=Pr)
        new = _failed(fig, Pr, target, spec.derate)
        rounds.append({"round": r + 1, "status": plan.solution.status, "objective": plan.solution.objective,
                       "gap": plan.solution.gap, "solve_s": plan.solution.wall_s, "gpus": plan.allocation(Pr),
                       "simulated_cost_usd": fig.cost_usd, "slo_attainment": fig.slo_attainment,
                       "hours_slo_met": fig.hours_met,
                       "derated": [f"{k[0]} / {P.buckets[k[1]].name}" for k in sorted(failed)],
                       "failing": [f"{k[0]} / {P.buckets[k[1]].name}" for k in sorted(new)]})
        log(f"{label}, round {r + 1}: SLO attainment {fig.slo_attainment:.4f}, hours meeting {target:g}: "
            f"{fig.hours_met:.1%}; {len(new)} pool/bucket pairs below target")
        out.status, out.problem, out.plan, out.scenario, out.fig = plan.solution.status, Pr, plan, planned, fig
        out.verified = fig.hours_met >= HOURS_MET_TARGET
        if not new or out.verified and fig.slo_attainment >= target:
            break
        for k, f in new.items():
            failed[k] = failed.get(k, 1.0) * f
    return out


#: share of hours whose SLO attainment must reach ``plan.mix.slo_target`` for a plan to be verified
HOURS_MET_TARGET = 0.99


def best_single(sc, inputs: MixInputs, spec, log) -> tuple[Verified | None, list[dict]]:
    """The best single accelerator type (all its candidates: tensor parallelism, precision, cap),
    each solved and verified like the mix (same derating rounds); the best is the lowest final
    objective among the verified types (or among all when none verifies).  A type whose round-1
    objective is already at least the best verified final objective is not simulated: derating
    only lowers capacities, so its later rounds cannot do better (said in its row)."""
    import dataclasses

    P = inputs.problem
    obj = _objective(spec)
    firsts = []
    for acc in dict.fromkeys(c.accelerator for c in P.candidates):
        sub = dataclasses.replace(P, candidates=[c for c in P.candidates if c.accelerator == acc])
        plan = pm.solve(pm.build(sub), obj, time_limit_s=spec.time_limit_s)
        firsts.append((plan.solution.objective if plan.ok else math.inf, acc, sub, plan))
    firsts.sort(key=lambda t: (t[0], t[1]))
    rows, best = [], None
    for f0, acc, sub, plan in firsts:
        row = {"accelerator": acc, "status": plan.solution.status, "first_objective": f0 if plan.ok else None}
        if not plan.ok:
            rows.append({**row, "verified": False, "note": "no plan (" + plan.solution.status.lower() + ")"})
            continue
        if best is not None and best.verified and f0 >= best.objective:
            rows.append({**row, "verified": None, "note": f"not simulated: its unverified plan already costs more "
                                                          f"than the verified {best.label}"})
            continue
        v = plan_verify_loop(sc, inputs, sub, spec, label=f"single {acc}", log=log, first=plan)
        rows.append({**row, "objective": v.objective, "verified": v.verified, "rounds": len(v.rounds),
                     "gpus": int(sum(v.plan.gpus(v.problem).values())) if v.plan is not None else None,
                     **({k: getattr(v.fig, k) for k in ("cost_usd", "energy_kwh", "carbon_kg", "slo_attainment",
                                                         "hours_met")} if v.fig is not None else {})})
        if v.plan is None:
            continue
        better = best is None or (v.verified, -v.objective) > (best.verified, -best.objective)
        if better:
            best = v
    return best, rows


def as_written(sc, inputs: MixInputs, spec, log) -> tuple[Verified | None, SimFigures | None, list[str]]:
    """The scenario's fleet as written: its pools serving the model (accelerator, tensor
    parallelism, precision, cap, count), operated by the same planner (active replicas per hour,
    size-aware routes; the count fixed, paid as the plan prices that type) and verified the same
    way; and simulated as it is (every replica active, its own router)."""
    import dataclasses

    notes = []
    P, ctx = inputs.problem, inputs.context
    cands = []
    if ctx is not None:
        from ..frontier import canonical_model

        for pool in sc.fleet.pools:
            if pool.role != "serving":
                continue
            for s in pool.serve:
                if canonical_model(s.model) != P.model:
                    continue
                if len(pool.serve) != 1:
                    notes.append(f"pool {pool.name} serves several models: not planned as written")
                    continue
                row = get_accelerator(pool.accelerator)
                ms = spec.accelerators.get(pool.accelerator)
                price_h, pricing = ctx.price(row, ms.price_usd_per_gpu_hour if ms else None,
                                             ms.pricing if ms else None, f"fleet.pools[{pool.name}]")
                reps = s.replicas if s.replicas is not None else pool.gpus // s.tp
                c = ctx.candidate(row, int(s.tp), s.precision, None, price_h, pricing, pool.gpus_per_server,
                                  pool.servers_per_rack, pool.row, name=pool.name, cap_w=pool.power_cap_w,
                                  max_batch=s.max_batch, max_replicas=int(reps))
                if c:
                    cands.append(c)
    ver = None
    if cands:
        sub = dataclasses.replace(P, candidates=cands, availability_gpus={})
        ver = plan_verify_loop(sc, inputs, sub, spec, label="as written", log=log, fix_replicas=True)
        if ver.plan is None:
            notes.append(f"the fleet as written cannot serve the demand within the SLO ({ver.status.lower()})"
                         + (": " + "; ".join(ver.conflicts[:3]) if ver.conflicts else ""))
    raw = None
    try:
        raw = simulate_and_account(sc, inputs, spec.slo_target, "as written, as it is")
    except FleetError as exc:
        notes.append(f"the scenario's fleet as written was not simulated: {exc}")
    return ver, raw, notes


def plan_and_verify(scenario, spec=None, *, log: Callable[[str], None] | None = None,
                    pareto: list[str] | None = None) -> PlanOutcome:
    """Plan the GPU mix of ``scenario``, apply it, simulate it and verify it (see the module
    docstring); the baselines (best single type, fleet as written) are solved and verified the
    same way, and the savings are the simulated figures against the verified best single type."""
    log = log or (lambda s: None)
    sc = scenario
    spec = spec or _spec(sc)
    inputs = build_inputs(sc, spec)
    P = inputs.problem
    out = PlanOutcome("mix", "UNKNOWN", False, sc, notes=list(inputs.notes))
    single, single_rows = (best_single(sc, inputs, spec, log) if spec.baselines else (None, []))
    hint = (single.problem, single.plan) if single is not None and single.plan is not None else None
    mix = plan_verify_loop(sc, inputs, P, spec, label="mix", log=log, hint_plan=hint)
    out.rounds = mix.rounds
    out.status = mix.status
    out.conflicts = mix.conflicts
    if mix.plan is None:
        return out
    plan, Pr, fig = mix.plan, mix.problem, mix.fig
    assert fig is not None, "a plan that was made was simulated"
    out.verified = mix.verified
    out.scenario = mix.scenario
    out.sim = fig.sim
    out.solver = plan.solution.figures()
    alloc = plan.allocation(Pr)
    out.decisions = [{"path": f"fleet.pools[{c.name}].gpus", "value": int(plan.replicas[i] * c.tp), "was": None,
                      "note": f"{plan.replicas[i]} replicas of {c.tp} x {c.accelerator} {c.precision}"
                              + (f" capped at {c.cap_w:g} W" if c.notes.get('power_cap_w') else "")
                              + f", paid {'per active hour' if c.pricing == 'hourly' else 'for every hour'}"}
                     for i, c in enumerate(Pr.candidates) if plan.replicas[i] > 0]
    out.decisions += [{"path": f"schedule.{c.name}", "value": [int(x) for x in active_hours(plan, i)], "was": None,
                       "note": "active replicas per hour"} for i, c in enumerate(Pr.candidates) if plan.replicas[i] > 0]
    metrics: dict[str, Any] = {**{k: out.solver[k] for k in ("status", "objective", "bound", "gap", "solve_s")},
                               "objective_name": spec.objective, "objective_unit": out.solver["objective_unit"],
                               "cost_per_hour": plan.figures["cost"] / P.hours, "allocation": alloc,
                               "plan": {k: v for k, v in plan.figures.items()},
                               "slo_attainment": fig.slo_attainment, "hours_slo_met": fig.hours_met,
                               "rounds": len(mix.rounds), "verified": out.verified, "simulated": fig.as_dict(),
                               "pricing": {c.accelerator: c.pricing for c in P.candidates}}
    tables = _tables(Pr, plan, inputs)
    if spec.baselines:
        tables["single_types"] = pd.DataFrame(single_rows)
        if single is not None and single.fig is not None:
            sfig, splan = single.fig, single.plan
            assert splan is not None, "a simulated baseline was planned"
            out.baseline_sim = sfig.sim
            metrics["best_single"] = {"accelerator": single.problem.candidates[0].accelerator,
                                      "verified": single.verified, "rounds": len(single.rounds),
                                      "plan": dict(splan.figures), "allocation": splan.allocation(single.problem),
                                      **sfig.as_dict()}
            for k, a, b in (("cost", fig.cost_usd, sfig.cost_usd), ("energy", fig.energy_kwh, sfig.energy_kwh),
                            ("carbon", fig.carbon_kg, sfig.carbon_kg),
                            ("total_carbon", fig.carbon_kg + fig.embodied_kg, sfig.carbon_kg + sfig.embodied_kg)):
                metrics[f"{k}_saving_pct"] = 100.0 * (1.0 - a / b) if b else None
            metrics["plan_cost_saving_pct"] = 100.0 * (1.0 - plan.figures["cost"] / splan.figures["cost"])
            tables["hourly_single"] = _hourly_table(single.problem, splan)
        aw, raw, notes = as_written(sc, inputs, spec, log)
        out.notes += notes
        if aw is not None and aw.fig is not None:
            metrics["as_written"] = {"verified": aw.verified, "rounds": len(aw.rounds), **aw.fig.as_dict()}
        if raw is not None:
            metrics["as_written_unplanned"] = raw.as_dict()
    # Pareto front
    pair = pareto or spec.pareto
    if pair:
        mm2 = pm.build(Pr)
        front = pm.pareto(mm2, pair[0], pair[1], points=spec.pareto_points, time_limit_s=spec.time_limit_s)
        tables["pareto"] = pd.DataFrame(front.table())
        metrics["pareto"] = {"objectives": list(pair), "points": front.table(), "knee": front.knee}
    out.metrics = metrics
    out.tables = tables
    return out


def summary_metrics(outcome: PlanOutcome) -> dict[str, tuple[float, str]]:
    """Flat ``plan.mix.*`` metrics (value, unit) for summary.json and scenario expectations."""
    m = outcome.metrics
    out: dict[str, tuple[float, str]] = {}

    def put(k, v, unit):
        if v is not None and isinstance(v, (int, float)) and math.isfinite(float(v)):
            out[f"plan.mix.{k}"] = (float(v), unit)

    put("objective", m.get("objective"), m.get("objective_unit", ""))
    put("gap", m.get("gap"), "fraction")
    put("cost_per_hour", m.get("cost_per_hour"), "USD/h")
    put("rounds", m.get("rounds"), "rounds")
    put("verified", float(bool(m.get("verified"))), "bool")
    for key in ("cost", "energy", "carbon"):
        put(f"plan.{key}", (m.get("plan") or {}).get(key), pm.UNITS[key])
    for who in ("simulated", "best_single", "as_written"):
        d = m.get(who)
        if not d:
            continue
        p = "" if who == "simulated" else f"{who}."
        put(f"{p}cost", d.get("cost_usd"), "USD")
        put(f"{p}energy", d.get("energy_kwh"), "kWh")
        put(f"{p}carbon", d.get("carbon_kgco2e"), "kgCO2e")
        put(f"{p}slo_attainment", d.get("slo_attainment"), "fraction")
        put(f"{p}hours_slo_met", d.get("hours_slo_met"), "fraction")
    for k in ("cost", "energy", "carbon", "total_carbon"):
        put(f"{k}_saving_pct", m.get(f"{k}_saving_pct"), "%")
    return out


def _hourly_table(P: pm.MixProblem, plan: pm.MixPlan) -> pd.DataFrame:
    rows = []
    for c, cand in enumerate(P.candidates):
        if plan.replicas[c] <= 0:
            continue
        act = active_hours(plan, c)
        for h in range(P.hours):
            rows.append({"pool": cand.name, "accelerator": cand.accelerator, "hour": h,
                         "active_replicas": int(act[h]), "load_replicas": plan.load[c, h],
                         "owned_replicas": int(plan.replicas[c]), "gpus_per_replica": cand.tp,
                         "pricing": cand.pricing})
    return pd.DataFrame(rows)


def _tables(P: pm.MixProblem, plan: pm.MixPlan, inputs: MixInputs) -> dict[str, pd.DataFrame]:
    hourly = _hourly_table(P, plan)
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
    except FileNotFoundError as exc:
        raise InputError("no such file", path=path) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"not valid JSON: {exc.msg}", path=path, line=exc.lineno) from exc
    try:
        res = pm.melange(cfg, time_limit_s=time_limit_s or 30.0)
    except InputError as exc:
        raise InputError(str(exc), path=path) from exc
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
