"""The operate planner: per serving pool one power cap, and per hour how many replicas are active.

The model (CP-SAT through :class:`fleet.plan.core.PlanModel`), on plain data (:class:`OperateProblem`):

* ``cap[p]=c``: one boolean per pool and candidate cap, exactly one true (the cap holds all day);
* ``active[g][h][c][k]``: replicas of group ``g`` (a pool's served model) active in hour ``h`` at
  cap ``c`` and *load level* ``k``: a replica at level ``k`` serves ``levels[k]`` of its
  SLO-bound capacity and draws the power the frontier gives at that throughput;
* demand: for each model and hour, the active replicas' served rate covers the demand;
* replicas: at most the group's replicas active; only at the pool's chosen cap;
* budgets: in every hour the *planned peak* of each row and of the site stays within its budget,
  with every active replica at its cap (the cap is the hard limit a GPU never exceeds), inactive
  replicas at their inactive power, and the server overhead (static plus load-proportional);
* objective: facility energy (kWh, through the hourly PUE), energy cost (USD at hourly prices),
  operational carbon (kg at hourly intensity) or a weighted sum; the hardware cost is a constant
  of the fleet as given and is reported, not optimised.

Why load levels: a replica's power grows concavely with its throughput (a decode iteration streams
the weights once for the whole batch), so the energy per request falls as a replica is loaded,
and fewer, busier replicas use less energy than many idle ones.  Discrete levels make that
concave curve exact at the levels and keep the model linear.  The planned energy is a model
figure; the simulation of the plan gives the measured one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from ..errors import FleetError
from .core import DEFAULT_TIME_LIMIT_S, Explanation, PlanModel, Solution

#: load levels of an active replica (share of its SLO-bound capacity)
DEFAULT_LEVELS = (0.25, 0.5, 0.75, 1.0)
HOUR_S = 3600.0


# ====================================================================================== capacity
@dataclass(frozen=True)
class Capacity:
    """What one replica sustains at one operating point within the SLO, from its frontier.

    ``rps_model``: the largest request rate (req/s) of the steady state whose inter-token latency
    meets the TPOT SLO, whose prefill plus first iteration meets the TTFT SLO and whose KV cache
    fits (no queueing); ``batch``: that steady state's batch.  ``curve_rps``/``curve_w``: replica
    power (all its GPUs, W) against throughput, from idle to ``rps_model`` (0 where nothing fits)."""

    rps_model: float
    batch: int
    itl_s: float
    ttft_s: float
    curve_rps: np.ndarray
    curve_w: np.ndarray
    idle_w: float
    reason: str = ""

    def power_at(self, rps: float) -> float:
        """Replica power (W) at a throughput (req/s), linear between the frontier's points."""
        if self.rps_model <= 0:
            return self.idle_w
        return float(np.interp(rps, self.curve_rps, self.curve_w))


def replica_capacity(profile, input_tokens: float, output_tokens: float, *, ttft_s: float | None,
                     tpot_s: float | None) -> Capacity:
    """The steady-state capacity of one replica (``profile``: a
    :class:`~fleet.frontier.ServingProfile`) for requests of mean ``input_tokens`` prompt and
    ``output_tokens`` output tokens (see :mod:`fleet.frontier.steady`: each iteration emits one
    token per running sequence and prefills ``B/O`` new requests; the mean sequence holds
    ``I + O/2`` tokens of KV cache)."""
    i_tok = max(1.0, float(input_tokens))
    o_tok = max(1.0, float(output_tokens))
    idle = float(profile.idle_power_w)
    t_pre, e_pre = profile.prefill(i_tok)
    rates, powers, itls, ttfts = [0.0], [idle], [], []
    best = 0
    reason = ""
    for b in range(1, int(profile.max_batch) + 1):
        ctx = b * (i_tok + 0.5 * o_tok)
        if ctx > profile.kv_capacity_tokens:
            if b == 1:
                reason = "one request's KV cache does not fit"
            break
        t_dec, e_dec = profile.decode_iter(b, ctx)
        k = b / o_tok
        t_it = float(t_dec + k * t_pre)
        e_it = float(e_dec + k * e_pre)
        itl, ttft = t_it, float(t_pre + t_it)
        if (tpot_s is not None and itl > tpot_s) or (ttft_s is not None and ttft > ttft_s):
            if b == 1:
                reason = (f"even one request misses the SLO (inter-token {itl:.3g} s, first token {ttft:.3g} s)")
            break
        rates.append(b / (o_tok * t_it))
        powers.append(e_it / t_it)
        itls.append(itl)
        ttfts.append(ttft)
        best = b
    if best == 0:
        return Capacity(0.0, 0, math.nan, math.nan, np.array([0.0]), np.array([idle]), idle, reason)
    r = np.asarray(rates)
    p = np.asarray(powers)
    # keep the curve monotone in throughput (it is, batch by batch; guard rounding)
    p = np.maximum.accumulate(p)
    return Capacity(float(r[-1]), best, itls[-1], ttfts[-1], r, p, idle)


# ====================================================================================== problem
@dataclass(frozen=True)
class CapOption:
    """One candidate cap of a group: per-GPU cap, the replica's capacity there, and its power
    (all GPUs of the replica, W) at each load level."""

    cap_w: float
    capacity_rps: float          # planned capacity (after the utilisation margin and any derating)
    level_power_w: tuple[float, ...]
    peak_w: float                # replica power bound for budgets: cap x GPUs


@dataclass(frozen=True)
class Group:
    """One served model of one pool (an engine pool of the simulation)."""

    key: str                      # the scenario's schedule key: pool name, or 'pool:model'
    pool: str
    model: str
    replicas: int
    tp: int
    row: str
    options: tuple[CapOption, ...]        # aligned with the pool's candidate caps
    inactive_w: float                     # one inactive replica (all GPUs), W
    overhead_per_w: float                 # server overhead per W of GPU power (per_gpu_w / TDP)
    derate: tuple[float, ...] = ()        # per hour: capacity multiplier from verification (1 = none)


@dataclass(frozen=True)
class OperateProblem:
    groups: tuple[Group, ...]
    pool_caps: dict[str, tuple[float, ...]]     # pool -> candidate caps (W per GPU)
    pool_row: dict[str, str]
    pool_static_w: dict[str, float]             # servers' static overhead (W), constant
    demand_rps: dict[str, np.ndarray]           # model -> request rate per hour (req/s)
    pue: np.ndarray                             # per hour
    price_usd_per_mwh: np.ndarray
    ci_g_per_kwh: np.ndarray
    site_budget_w: float | None = None
    row_budget_w: dict[str, float] = field(default_factory=dict)
    objective: str = "energy"                   # energy | cost | carbon | weighted
    weights: dict[str, float] = field(default_factory=dict)
    levels: tuple[float, ...] = DEFAULT_LEVELS
    model_words: dict[str, str] = field(default_factory=dict)   # model -> how the scenario names it
    #: (node, hour) -> W taken off that budget in that hour (verification found it exceeded)
    budget_margin_w: dict[tuple[str, int], float] = field(default_factory=dict)

    @property
    def hours(self) -> int:
        return len(self.pue)


OBJECTIVE_UNITS = {"energy": "kWh", "cost": "USD", "carbon": "kgCO2e", "weighted": "weighted"}


def objective_weights(problem: OperateProblem) -> np.ndarray:
    """Objective units per kWh of IT energy in each hour (PUE, price and intensity folded in)."""
    h = problem.hours
    kwh = np.asarray(problem.pue, float)                      # facility kWh per IT kWh
    usd = kwh * np.asarray(problem.price_usd_per_mwh, float) / 1000.0
    kg = kwh * np.asarray(problem.ci_g_per_kwh, float) / 1000.0
    if problem.objective == "energy":
        return kwh
    if problem.objective == "cost":
        return usd
    if problem.objective == "carbon":
        return kg
    if problem.objective == "weighted":
        w = problem.weights
        if not w or sum(w.values()) <= 0:
            raise FleetError("plan.operate.weights: expected a positive weight for at least one of energy, cost, carbon")
        return w.get("energy", 0.0) * kwh + w.get("cost", 0.0) * usd + w.get("carbon", 0.0) * kg + np.zeros(h)
    raise FleetError(f"unknown objective {problem.objective!r}; expected energy, cost, carbon or weighted")


@dataclass
class OperateModel:
    """The built model and where its variables are."""

    model: PlanModel
    problem: OperateProblem
    cap_var: dict[tuple[str, int], int]                   # (pool, cap index) -> var
    active_var: dict[tuple[int, int, int, int], int]      # (group, hour, cap, level) -> var


def _kw(w: float) -> str:
    return f"{w / 1000:.3g} kW"


def build(problem: OperateProblem) -> OperateModel:
    """Build the CP-SAT model of ``problem`` (the caller may add constraints before solving)."""
    H = problem.hours
    if H <= 0:
        raise FleetError("the operate plan needs at least one hour of demand")
    levels = np.asarray(problem.levels, float)
    if not len(levels) or np.any(levels <= 0) or np.any(levels > 1):
        raise FleetError("load levels must be in (0, 1]")
    wobj = objective_weights(problem)
    m = PlanModel("operate", OBJECTIVE_UNITS[problem.objective])
    cap_var: dict[tuple[str, int], int] = {}
    for pool, caps in problem.pool_caps.items():
        ids = [m.bool_var(f"fleet.pools[{pool}].power_cap_w={c:g}") for c in caps]
        for j, v in enumerate(ids):
            cap_var[(pool, j)] = v
        m.add("cap", f"one cap[{pool}]", ids, [1.0] * len(ids), lo=1, hi=1,
              desc=f"pool {pool}: exactly one power cap", elastic=False)
    active: dict[tuple[int, int, int, int], int] = {}
    offset = 0.0
    for gi, g in enumerate(problem.groups):
        caps = problem.pool_caps[g.pool]
        if len(g.options) != len(caps):
            raise FleetError(f"group {g.key}: {len(g.options)} cap options for {len(caps)} caps")
        ovh = 1.0 + g.overhead_per_w
        for h in range(H):
            all_h = []
            for c in range(len(caps)):
                ids = [m.int_var(0, g.replicas, f"schedule[{g.key}][{h}]@cap{c}/level{k}") for k in range(len(levels))]
                for k, v in enumerate(ids):
                    active[(gi, h, c, k)] = v
                # only at the pool's chosen cap
                m.add("cap", f"link[{g.key}][{h}][{c}]", ids + [cap_var[(g.pool, c)]],
                      [1.0] * len(ids) + [-float(g.replicas)], hi=0,
                      desc=f"{g.key} hour {h}: replicas only at the chosen cap", elastic=False)
                all_h += ids
                # energy of the active replicas (relative to inactive), objective units
                opt = g.options[c]
                coef = [(opt.level_power_w[k] - g.inactive_w) * ovh / 1000.0 * wobj[h] for k in range(len(levels))]
                m.minimize(ids, coef)
            m.add("replicas", f"replicas[{g.key}][{h}]", all_h, [1.0] * len(all_h), hi=g.replicas,
                  desc=f"{g.key}: {g.replicas} replicas", unit="replicas", elastic=False)
            offset += g.replicas * g.inactive_w * ovh / 1000.0 * wobj[h]
    for pool, static in problem.pool_static_w.items():
        offset += float(static) / 1000.0 * float(np.sum(wobj))
    m.objective_offset = offset
    # demand per model and hour
    models = sorted(problem.demand_rps)
    for name in models:
        lam = np.asarray(problem.demand_rps[name], float)
        if len(lam) != H:
            raise FleetError(f"demand of {name}: {len(lam)} hours, expected {H}")
        mine = [gi for gi, g in enumerate(problem.groups) if g.model == name]
        words = problem.model_words.get(name, name)
        if not mine:
            raise FleetError(f"{words} is demanded but no serving pool serves it")
        for h in range(H):
            if lam[h] <= 0:
                continue
            ids, coef = [], []
            for gi in mine:
                g = problem.groups[gi]
                d = g.derate[h] if g.derate else 1.0
                for c, opt in enumerate(g.options):
                    for k, u in enumerate(levels):
                        if opt.capacity_rps > 0:
                            ids.append(active[(gi, h, c, k)])
                            coef.append(u * opt.capacity_rps * d)
            pools = ", ".join(problem.groups[gi].key for gi in mine)
            m.add("demand", f"demand[{name}][{h}]", ids, coef, lo=float(lam[h]),
                  desc=f"{words} demand in hour {h} ({lam[h]:.3g} req/s) within its SLO on {pools}",
                  unit="req/s")
    # budgets: planned peak per hour
    def budget_rows(label: str, gis: list[int], static_w: float, budget: float, group: str) -> None:
        base = static_w + sum(problem.groups[gi].replicas * problem.groups[gi].inactive_w
                              * (1.0 + problem.groups[gi].overhead_per_w) for gi in gis)
        for h in range(H):
            ids, coef = [], []
            for gi in gis:
                g = problem.groups[gi]
                ovh = 1.0 + g.overhead_per_w
                for c, opt in enumerate(g.options):
                    for k in range(len(levels)):
                        ids.append(active[(gi, h, c, k)])
                        coef.append((opt.peak_w - g.inactive_w) * ovh)
            cut = float(problem.budget_margin_w.get((label, h), 0.0))
            m.add(group, f"{group}[{label}][{h}]", ids, coef, hi=budget - base - cut,
                  desc=f"{label}: {_kw(budget)} budget in hour {h} (server overhead and inactive replicas "
                       f"take {_kw(base)}; active replicas counted at their cap"
                       + (f"; {_kw(cut)} held back after the simulation exceeded it" if cut else "") + ")",
                  unit="W", show=1e-3, shown_unit="kW", offset=base)
    if problem.site_budget_w is not None:
        budget_rows("site", list(range(len(problem.groups))), sum(problem.pool_static_w.values()),
                    float(problem.site_budget_w), "site budget")
    for row, w in sorted(problem.row_budget_w.items()):
        gis = [gi for gi, g in enumerate(problem.groups) if g.row == row]
        static = sum(s for p, s in problem.pool_static_w.items() if problem.pool_row.get(p) == row)
        budget_rows(row, gis, static, float(w), "row budget")
    return OperateModel(m, problem, cap_var, active)


@dataclass
class OperatePlan:
    """The decisions of a solved model."""

    solution: Solution
    caps: dict[str, float]                        # pool -> W per GPU
    schedule: dict[str, list[int]]                # group key -> active replicas per hour
    served_capacity: dict[str, np.ndarray]        # model -> planned capacity per hour (req/s)
    planned_energy_kwh: float                     # facility energy of the plan (model)
    planned_peak_w: dict[str, np.ndarray]         # 'site' / row -> planned peak per hour (W)


def extract(om: OperateModel, sol: Solution) -> OperatePlan:
    pr = om.problem
    H = pr.hours
    levels = np.asarray(pr.levels, float)
    caps: dict[str, float] = {}
    cap_idx: dict[str, int] = {}
    for (pool, j), v in om.cap_var.items():
        if sol.values[v]:
            caps[pool] = float(pr.pool_caps[pool][j])
            cap_idx[pool] = j
    sched: dict[str, list[int]] = {}
    served = {m: np.zeros(H) for m in pr.demand_rps}
    energy = 0.0
    peak: dict[str, np.ndarray] = {}
    site = np.full(H, float(sum(pr.pool_static_w.values())))
    rows = {r: np.full(H, float(sum(s for p, s in pr.pool_static_w.items() if pr.pool_row.get(p) == r)))
            for r in set(pr.pool_row.values())}
    for gi, g in enumerate(pr.groups):
        c = cap_idx[g.pool]
        opt = g.options[c]
        ovh = 1.0 + g.overhead_per_w
        counts = []
        for h in range(H):
            n_k = np.array([sol.values[om.active_var[(gi, h, c, k)]] for k in range(len(levels))])
            n = int(n_k.sum())
            counts.append(n)
            d = g.derate[h] if g.derate else 1.0
            if g.model in served:
                served[g.model][h] += float(np.dot(n_k, levels)) * opt.capacity_rps * d
            p_act = float(np.dot(n_k, opt.level_power_w)) + (g.replicas - n) * g.inactive_w
            energy += p_act * ovh / 1000.0 * float(pr.pue[h])
            pk = (n * opt.peak_w + (g.replicas - n) * g.inactive_w) * ovh
            site[h] += pk
            rows[g.row][h] += pk
        sched[g.key] = counts
    energy += sum(pr.pool_static_w.values()) / 1000.0 * float(np.sum(pr.pue))
    peak["site"] = site
    peak.update(rows)
    return OperatePlan(sol, caps, sched, served, energy, peak)


def solve(problem: OperateProblem, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S, workers: int = 1, seed: int = 0,
          hint: OperatePlan | None = None, extra: Callable[[OperateModel], None] | None = None,
          backend: str = "highs") -> tuple[OperatePlan | None, Solution, Explanation | None]:
    """Build, (let ``extra`` add constraints), solve with ``backend`` ('highs' or 'cp-sat'); an
    infeasible model comes back explained (in the constraints' words)."""
    om = build(problem)
    if extra is not None:
        extra(om)
    hv = None
    if hint is not None:
        hv = _hint_values(om, hint)
    sol = om.model.solve(time_limit_s=time_limit_s, workers=workers, seed=seed, hint=hv, backend=backend)
    if sol.ok:
        return extract(om, sol), sol, None
    if sol.status == "INFEASIBLE":
        return None, sol, om.model.explain(time_limit_s=time_limit_s, workers=workers, seed=seed)
    return None, sol, None


def _hint_values(om: OperateModel, plan: OperatePlan) -> np.ndarray:
    """A hint from a previous plan: same caps, its replicas at full load (the solver repairs)."""
    v = np.zeros(om.model.n_vars, np.int64)
    pr = om.problem
    for (pool, j), var in om.cap_var.items():
        v[var] = int(abs(pr.pool_caps[pool][j] - plan.caps.get(pool, -1)) < 1e-9)
    top = len(pr.levels) - 1
    for gi, g in enumerate(pr.groups):
        at = [jj for jj, c in enumerate(pr.pool_caps[g.pool]) if abs(c - plan.caps.get(g.pool, -1)) < 1e-9]
        if not at or g.key not in plan.schedule:
            continue
        for h, n in enumerate(plan.schedule[g.key][:pr.hours]):
            v[om.active_var[(gi, h, at[0], top)]] = int(n)
    return v
