"""The GPU mix: which accelerators to buy or rent, how many, and which requests each serves, hour
by hour, on the planner core (:mod:`fleet.plan.core`).

The problem as plain data (:class:`MixProblem`):

* **candidates** (:class:`Candidate`): an accelerator x tensor-parallel degree x precision x power
  cap that holds the model, with its capacity per request-size bucket under the SLO (requests per
  second one replica sustains, from the frontier: :func:`bucket_capacity`; 0 = it cannot serve that
  bucket within the SLO or memory), its power when busy on each bucket, its idle power, its price
  (per GPU-hour: a rental or a purchase amortised; 'reserved' is paid every hour for the peak
  count, 'hourly' only per active GPU-hour), embodied carbon per GPU-hour and its place (GPUs per server, servers per rack, row);
* **buckets** (:class:`Bucket`) of input x output tokens with a rate per bucket and hour;
* grid signals per hour (price, carbon intensity, PUE), power budgets (site, rows), racks,
  availability per accelerator type and an optional budget (USD over the horizon).

Decisions (variables named after what they decide):

* ``share[c][b][h]``: how many of the ``slices`` equal slices of bucket ``b``'s rate in hour ``h``
  candidate ``c`` serves (Mélange's request slices, here per hour; each slice goes to one type);
* ``active[c][h]``: replicas of ``c`` serving in hour ``h`` (at least the sum of the load
  fractions it carries, as in Mélange);
* ``replicas[c]``: replicas of ``c`` owned or rented at the peak (at least every hour's active);
  ``servers[c]`` and ``racks[c]`` that hold them.

Constraints: every bucket-hour fully served; replicas within availability; peak power at the
chosen caps plus server overhead within the site and row budgets; racks; the budget.

Objectives (each a linear expression kept by name in :attr:`MixModel.terms`): ``cost`` (USD:
hardware plus facility energy at the hourly price), ``energy`` (facility kWh), ``carbon``
(operational kgCO2e at the hourly intensity), ``embodied`` (kgCO2e amortised), ``total_carbon``
(both), or a weighted sum.  :func:`pareto` walks the front between two of them by the
epsilon-constraint method on the one built model (OR-Tools has no native multi-objective solve),
hinting each point with the previous one.

Solver: CP-SAT through :class:`~fleet.plan.core.PlanModel`.  Every decision is an integer
(slices, replicas, servers, racks); the continuous quantities (W, USD, g) are data, scaled
conservatively by the core; CP-SAT proves a bound (the gap is reported) and honours its time limit,
returning the best plan found with its gap.

Energy model of a replica in an hour: idle power while active plus, for the share of its
capacity a bucket uses, the difference between its busy power on that bucket and idle (power is
linear in load between idle and the SLO-bound operating point).  Replicas that are not active
in an hour draw the candidate's ``parked_w`` when it is stated (the planning glue states what the
simulation's replica schedule draws: idle power, or the GPUs' standby power when
``simulation.inactive`` is 'off'); otherwise owned (purchased) replicas are parked at
``parked_fraction`` of their idle power and 'hourly' replicas are released (no power).  'hourly'
replicas are paid only for their active hours.  Server overhead follows the scenario's server model:
``static_w`` per server (for every owned server, every hour) plus ``per_gpu_w x P_gpu / TDP``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from fractions import Fraction
from typing import Callable, Sequence

import numpy as np

from .core import COEF_TARGET, PlanModel, Solution

#: joules per kWh
J_PER_KWH = 3.6e6
#: hours per year (for amortisation: 365 days)
HOURS_PER_YEAR = 8760.0

OBJECTIVES = ("cost", "energy", "carbon", "embodied", "total_carbon")
UNITS = {"cost": "USD", "energy": "kWh", "carbon": "kgCO2e", "embodied": "kgCO2e", "total_carbon": "kgCO2e"}


# ============================================================================ capacity from the frontier
@dataclass(frozen=True)
class BucketCapacity:
    """One replica serving requests of ``input_tokens`` in, ``output_tokens`` out under the SLO."""

    rps: float            # requests per second at the SLO-bound batch, times the utilisation margin
    batch: int            # running batch of that operating point (0: cannot serve)
    itl_s: float          # inter-token latency at that batch (s)
    ttft_s: float         # prefill + first iteration (s), queueing not included
    power_w: float        # whole-replica power at that operating point (W)
    reason: str = ""      # why the capacity is zero


def bucket_capacity(profile, input_tokens: float, output_tokens: float, *, ttft_s: float | None,
                    tpot_s: float | None, utilisation: float = 0.85) -> BucketCapacity:
    """Capacity of one replica (a :class:`~fleet.frontier.ServingProfile`) for one bucket.

    Continuous batching in steady state (as :mod:`fleet.frontier.steady`): ``B`` sequences of ``I``
    prompt and ``O`` output tokens; an iteration sees ``C = B (I + O/2)`` context tokens and
    amortises ``B / O`` prefills, so ``t_it = t_dec(B, C) + (B/O) t_pre(I)``.  The SLO-bound
    batch is the largest ``B`` with ``t_it <= TPOT``, ``t_pre(I) + t_it <= TTFT`` and
    ``C <= KV capacity`` (and ``I + O`` within the model's context); throughput is
    ``B / (O t_it)`` requests per second, times ``utilisation`` (the queueing margin: the
    simulation sees bursts, the steady state does not).  Zero capacity, never an error, when no
    batch meets the SLO or the request does not fit."""
    I, O = max(1.0, float(input_tokens)), max(1.0, float(output_tokens))
    if I + O > profile.max_context_tokens:
        return BucketCapacity(0.0, 0, math.nan, math.nan, 0.0, "longer than the model's context")
    if I + O > profile.kv_capacity_tokens:
        return BucketCapacity(0.0, 0, math.nan, math.nan, 0.0, "one request does not fit the KV cache")
    b = np.arange(1, profile.max_batch + 1, dtype=float)
    C = b * (I + O / 2.0)
    t_pre, e_pre = profile.prefill(I)
    t_it = profile.dec_t0[1:] + profile.dec_t1[1:] * C + (b / O) * t_pre
    e_it = profile.dec_e0[1:] + profile.dec_e1[1:] * C + (b / O) * e_pre
    ok = C <= profile.kv_capacity_tokens
    if tpot_s is not None:
        ok &= t_it <= tpot_s
    if ttft_s is not None:
        ok &= t_pre + t_it <= ttft_s
    if not ok.any():
        why = "TPOT" if tpot_s is not None and t_it[0] > tpot_s else "TTFT"
        return BucketCapacity(0.0, 0, float(t_it[0]), float(t_pre + t_it[0]), 0.0,
                              f"even one request misses the {why} SLO")
    thr = np.where(ok, b / (O * t_it), 0.0)
    k = int(np.argmax(thr))
    return BucketCapacity(float(thr[k] * utilisation), int(b[k]), float(t_it[k]), float(t_pre + t_it[k]),
                          float(e_it[k] / t_it[k]))


# ============================================================================ the problem as data
@dataclass(frozen=True)
class Bucket:
    """Requests with ``input_lo <= input < input_hi`` and ``output_lo <= output < output_hi``
    tokens; ``input_tokens``/``output_tokens`` are the sizes its capacity is computed at (a
    conservative representative, e.g. the bucket's upper quantile)."""

    name: str
    input_lo: float
    input_hi: float
    output_lo: float
    output_hi: float
    input_tokens: float
    output_tokens: float

    def words(self) -> str:
        return (f"requests of {_fmt_range(self.input_lo, self.input_hi)} prompt and "
                f"{_fmt_range(self.output_lo, self.output_hi)} output tokens")


def _fmt_range(lo: float, hi: float) -> str:
    return f"{lo:g}+" if not math.isfinite(hi) else f"{lo:g}-{hi:g}"


@dataclass(frozen=True)
class Candidate:
    name: str                           # the pool it becomes, e.g. "h100-sxm-tp1-bf16-560w"
    accelerator: str                    # canonical catalog name (the availability group)
    tp: int
    precision: str
    cap_w: float                        # per-GPU power cap (W)
    tdp_w: float                        # per-GPU TDP (W), for the server's load-proportional overhead
    idle_w: float                       # whole replica, model loaded, nothing running (W)
    capacity_rps: np.ndarray            # (B,) req/s per replica under the SLO (0: cannot serve)
    busy_w: np.ndarray                  # (B,) whole-replica power at that capacity (W)
    price_usd_per_gpu_hour: float       # rental, or purchase / (amortisation years x 8760 h)
    #: 'reserved': paid every hour for the peak count (a purchase amortised, or a reserved rental);
    #: 'hourly': paid per active GPU-hour, released (no power, no cost) when not active
    pricing: str = "reserved"
    embodied_g_per_gpu_hour: float = 0.0
    gpus_per_server: int = 8
    servers_per_rack: int = 4
    server_static_w: float = 1800.0     # per server (W)
    server_per_gpu_w: float = 350.0     # per GPU at TDP (W)
    server_embodied_g_per_hour: float = 0.0
    server_usd_per_hour: float = 0.0
    row: str = "row0"
    max_replicas: int | None = None     # a bound of its own (None: availability only)
    #: whole-replica power when owned or rented but not active in an hour (W); None: the problem's
    #: ``parked_fraction`` of ``idle_w`` ('reserved') or nothing ('hourly': released).  The planning glue sets it to what the simulation's
    #: replica schedule draws (``simulation.inactive``: idle power, or the GPUs' standby power)
    parked_w: float | None = None
    notes: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def overhead_factor(self) -> float:
        """IT power per W of GPU power (the GPU plus the server's load-proportional part)."""
        return 1.0 + self.server_per_gpu_w / self.tdp_w


@dataclass
class MixProblem:
    candidates: list[Candidate]
    buckets: list[Bucket]
    rates: np.ndarray                           # (B, H) req/s
    price_usd_per_kwh: np.ndarray               # (H,)
    ci_g_per_kwh: np.ndarray                    # (H,)
    pue: np.ndarray                             # (H,)
    availability_gpus: dict[str, int] = field(default_factory=dict)   # accelerator -> max GPUs
    site_budget_w: float | None = None
    row_budget_w: dict[str, float] = field(default_factory=dict)
    racks: int | None = None
    budget_usd: float | None = None             # hardware + energy over the horizon
    slices: int = 4                             # slices per bucket-hour
    parked_fraction: float = 1.0                # idle power of owned replicas not active
    hour_s: float = 3600.0
    model: str = ""
    slo_words: str = "the SLO"
    where: str = "plan.mix"                     # scenario path of the section (for explanations)
    hour_labels: list[str] | None = None
    #: shares as reals (MathOpt HiGHS; only replicas, servers and racks are integers) instead of
    #: integer slices (CP-SAT, Mélange's semantics)
    continuous_shares: bool = True

    @property
    def hours(self) -> int:
        return int(self.rates.shape[1])

    def check(self) -> None:
        B, H = len(self.buckets), self.hours
        if self.rates.shape != (B, H):
            raise ValueError(f"rates has shape {self.rates.shape}, expected ({B}, {H})")
        for name in ("price_usd_per_kwh", "ci_g_per_kwh", "pue"):
            if np.asarray(getattr(self, name)).shape != (H,):
                raise ValueError(f"{name} must have one value per hour ({H})")
        for c in self.candidates:
            if c.capacity_rps.shape != (B,) or c.busy_w.shape != (B,):
                raise ValueError(f"candidate {c.name}: capacity and power need one value per bucket ({B})")
        if np.any(self.rates < 0) or not np.all(np.isfinite(self.rates)):
            raise ValueError("rates must be finite and non-negative")


# ============================================================================ the model
@dataclass
class MixModel:
    """The built model, its variable index arrays and its objective terms by name."""

    problem: MixProblem
    model: PlanModel
    share: dict[tuple[int, int, int], int]      # (c, b, h) -> variable
    active: np.ndarray                          # (C, H) variable index
    replicas: np.ndarray                        # (C,)
    servers: np.ndarray                         # (C,)
    racks: np.ndarray                           # (C,)
    terms: dict[str, tuple[np.ndarray, np.ndarray, float]]   # objective name -> (idx, coef, constant)

    def evaluate(self, values: np.ndarray) -> dict[str, float]:
        return {k: float(np.dot(c, values[i].astype(float)) + off) for k, (i, c, off) in self.terms.items()}


def _scaled(terms: dict[str, tuple[np.ndarray, np.ndarray, float]], weights: dict[str, float]
            ) -> tuple[np.ndarray, np.ndarray, float]:
    idx, coef, off = [], [], 0.0
    for k, w in weights.items():
        if w == 0:
            continue
        i, c, o = terms[k]
        idx.append(i)
        coef.append(c * w)
        off += o * w
    if not idx:
        return np.zeros(0, np.int64), np.zeros(0), 0.0
    return np.concatenate(idx), np.concatenate(coef), off


def build(problem: MixProblem) -> MixModel:
    """Build the CP-SAT model of ``problem`` (see the module docstring)."""
    problem.check()
    P = problem
    C, B, H = len(P.candidates), len(P.buckets), P.hours
    S = int(P.slices)
    m = PlanModel(f"mix {P.model}".strip(), "USD")
    rates = np.asarray(P.rates, float)
    hour_h = P.hour_s / 3600.0
    lab = P.hour_labels or [f"hour {h}" for h in range(H)]

    # bounds on replicas: the most any hour could need of a candidate, and availability
    ub_rep = np.zeros(C, np.int64)
    for c, cand in enumerate(P.candidates):
        cap = cand.capacity_rps
        need = 0.0
        for h in range(H):
            need = max(need, float(np.sum(np.where(cap > 0, rates[:, h] / np.where(cap > 0, cap, 1.0), 0.0))))
        # (availability stays a constraint row, not a bound, so that explain can name it)
        u = int(math.ceil(need + 1e-9)) + 1
        if cand.max_replicas is not None:
            u = min(u, int(cand.max_replicas))
        ub_rep[c] = max(u, 0)

    replicas = np.array([m.int_var(0, int(ub_rep[c]), f"replicas[{cand.name}]")
                         for c, cand in enumerate(P.candidates)], dtype=np.int64)
    servers = np.array([m.int_var(0, int(math.ceil(ub_rep[c] * cand.tp / cand.gpus_per_server)),
                                  f"servers[{cand.name}]") for c, cand in enumerate(P.candidates)], dtype=np.int64)
    racks = np.array([m.int_var(0, int(math.ceil(ub_rep[c] * cand.tp / cand.gpus_per_server
                                                 / cand.servers_per_rack)), f"racks[{cand.name}]")
                      for c, cand in enumerate(P.candidates)], dtype=np.int64)
    active = np.array([[m.int_var(0, int(ub_rep[c]), f"active[{cand.name}][{h}]") for h in range(H)]
                       for c, cand in enumerate(P.candidates)], dtype=np.int64).reshape(C, H)
    share: dict[tuple[int, int, int], int] = {}
    for c, cand in enumerate(P.candidates):
        if ub_rep[c] == 0:
            continue
        for b in range(B):
            if cand.capacity_rps[b] <= 0:
                continue
            for h in range(H):
                if rates[b, h] > 0:
                    share[(c, b, h)] = m.int_var(0, S, f"share[{cand.name}][{P.buckets[b].name}][{h}]")

    # ---- demand: every slice of every bucket-hour goes to one candidate
    for b, bk in enumerate(P.buckets):
        for h in range(H):
            if rates[b, h] <= 0:
                continue
            idx = [share[(c, b, h)] for c in range(C) if (c, b, h) in share]
            m.add("demand", f"demand[{bk.name}][{h}]", idx, [1.0] * len(idx), lo=S, hi=S,
                  desc=f"{bk.words()} in {lab[h]} ({rates[b, h]:.3g} req/s) must be served within "
                       f"{P.slo_words}" + ("" if idx else " (no allowed accelerator can serve them within it)"),
                  unit="slices", show=1.0 / S, shown_unit="of the demand")

    # ---- load: the active replicas carry the load fractions of their slices
    for c, cand in enumerate(P.candidates):
        for h in range(H):
            idx, coef = [], []
            for b in range(B):
                v = share.get((c, b, h))
                if v is not None:
                    idx.append(v)
                    coef.append(rates[b, h] / S / cand.capacity_rps[b])
            idx.append(int(active[c, h]))
            coef.append(-1.0)
            m.add("load", f"load[{cand.name}][{h}]", idx, coef, hi=0.0,
                  desc=f"the {cand.name} replicas active in {lab[h]} carry the load they are given",
                  unit="replicas", elastic=False)
            m.add("peak", f"peak[{cand.name}][{h}]", [int(active[c, h]), int(replicas[c])], [1.0, -1.0], hi=0.0,
                  desc=f"active {cand.name} replicas in {lab[h]} are at most those owned or rented",
                  unit="replicas", elastic=False)
        # servers and racks that hold the replicas
        m.add("space", f"servers_hold[{cand.name}]", [int(replicas[c]), int(servers[c])],
              [float(cand.tp), -float(cand.gpus_per_server)], hi=0.0,
              desc=f"{cand.name}: {cand.gpus_per_server} GPUs per server", unit="GPUs", elastic=False)
        m.add("space", f"racks_hold[{cand.name}]", [int(servers[c]), int(racks[c])],
              [1.0, -float(cand.servers_per_rack)], hi=0.0,
              desc=f"{cand.name}: {cand.servers_per_rack} servers per rack", unit="servers", elastic=False)

    # ---- availability per accelerator type
    for acc, n in P.availability_gpus.items():
        cs = [c for c, cand in enumerate(P.candidates) if cand.accelerator == acc]
        if not cs:
            continue
        m.add("availability", f"available[{acc}]", [int(replicas[c]) for c in cs],
              [float(P.candidates[c].tp) for c in cs], hi=float(n),
              desc=f"at most {n} {acc} GPUs are available ({P.where}.accelerators[{acc}].max_gpus)",
              unit="GPUs")

    # ---- power at the chosen caps plus server overhead (peak, every GPU at its cap)
    def power_row(cs: Sequence[int]) -> tuple[list[int], list[float]]:
        idx, coef = [], []
        for c in cs:
            cand = P.candidates[c]
            idx += [int(replicas[c]), int(servers[c])]
            coef += [cand.tp * cand.cap_w * cand.overhead_factor, cand.server_static_w]
        return idx, coef

    if P.site_budget_w is not None:
        idx, coef = power_row(range(C))
        m.add("power", "site_power", idx, coef, hi=float(P.site_budget_w),
              desc=f"the site power budget ({P.site_budget_w / 1e3:.4g} kW, fleet.power.site_budget_w) at the "
                   "chosen caps plus server overhead", unit="W", show=1e-3, shown_unit="kW")
    for row, w in P.row_budget_w.items():
        cs = [c for c, cand in enumerate(P.candidates) if cand.row == row]
        if not cs:
            continue
        idx, coef = power_row(cs)
        m.add("power", f"row_power[{row}]", idx, coef, hi=float(w),
              desc=f"the power budget of {row} ({w / 1e3:.4g} kW, fleet.power.rows.{row}) at the chosen caps "
                   "plus server overhead", unit="W", show=1e-3, shown_unit="kW")
    if P.racks is not None:
        m.add("space", "racks", [int(r) for r in racks], [1.0] * C, hi=float(P.racks),
              desc=f"at most {P.racks} racks ({P.where}.racks)", unit="racks")

    # ---- objective terms (linear, by name)
    e_idx, e_coef = [], []       # facility kWh per hour -> also price and carbon per hour
    cost_idx, cost_coef = [], []
    carb_idx, carb_coef = [], []
    emb_idx, emb_coef = [], []
    price = np.asarray(P.price_usd_per_kwh, float)
    ci = np.asarray(P.ci_g_per_kwh, float)
    pue = np.asarray(P.pue, float)

    def energy(var: int, kwh_it_per_h: np.ndarray) -> None:
        """``var`` times ``kwh_it_per_h[h]`` IT kWh in each hour (through PUE, price, intensity)."""
        fac = kwh_it_per_h * pue
        tot = float(np.sum(fac))
        if tot == 0:
            return
        e_idx.append(var)
        e_coef.append(tot)
        cost_idx.append(var)
        cost_coef.append(float(np.sum(fac * price)))
        carb_idx.append(var)
        carb_coef.append(float(np.sum(fac * ci)) / 1e3)

    for c, cand in enumerate(P.candidates):
        of = cand.overhead_factor
        idle_kwh = cand.idle_w * of * hour_h / 1e3
        if cand.parked_w is not None:
            parked_w = cand.parked_w          # as the simulation draws it, whatever the pricing
        else:
            parked_w = 0.0 if cand.pricing == "hourly" else float(P.parked_fraction) * cand.idle_w
        parked = min(1.0, parked_w / cand.idle_w) if cand.idle_w > 0 else 0.0
        for h in range(H):
            one = np.zeros(H)
            one[h] = idle_kwh * (1.0 - parked)
            energy(int(active[c, h]), one)
            for b in range(B):
                v = share.get((c, b, h))
                if v is None:
                    continue
                frac = rates[b, h] / S / cand.capacity_rps[b]          # replicas' worth of load
                one = np.zeros(H)
                one[h] = frac * max(0.0, cand.busy_w[b] - cand.idle_w) * of * hour_h / 1e3
                energy(v, one)
        # owned replicas parked at idle, and server static power, every hour
        energy(int(replicas[c]), np.full(H, idle_kwh * parked))
        energy(int(servers[c]), np.full(H, cand.server_static_w * hour_h / 1e3))
        gpu_hours = cand.tp * hour_h
        if cand.pricing == "hourly":
            for h in range(H):
                cost_idx.append(int(active[c, h]))
                cost_coef.append(gpu_hours * cand.price_usd_per_gpu_hour)
        else:
            cost_idx.append(int(replicas[c]))
            cost_coef.append(gpu_hours * H * cand.price_usd_per_gpu_hour)
            cost_idx.append(int(servers[c]))
            cost_coef.append(hour_h * H * cand.server_usd_per_hour)
        emb_idx += [int(replicas[c]), int(servers[c])]
        emb_coef += [gpu_hours * H * cand.embodied_g_per_gpu_hour / 1e3,
                     hour_h * H * cand.server_embodied_g_per_hour / 1e3]

    def arr(i, c):
        return np.asarray(i, np.int64), np.asarray(c, float)

    terms = {
        "cost": (*arr(cost_idx, cost_coef), 0.0),
        "energy": (*arr(e_idx, e_coef), 0.0),
        "carbon": (*arr(carb_idx, carb_coef), 0.0),
        "embodied": (*arr(emb_idx, emb_coef), 0.0),
    }
    terms["total_carbon"] = _scaled(terms, {"carbon": 1.0, "embodied": 1.0})
    if P.budget_usd is not None:
        i, c, off = terms["cost"]
        m.add("budget", "budget", i, c, hi=float(P.budget_usd) - off,
              desc=f"the budget ({P.budget_usd:,.2f} USD over the horizon, {P.where}.budget_usd)", unit="USD")
    return MixModel(P, m, share, active, replicas, servers, racks, terms)


# ============================================================================ solve
@dataclass
class MixPlan:
    """A solved plan: the solver's figures and the decisions in plain arrays."""

    solution: Solution
    objective: str
    figures: dict[str, float]                   # every objective term evaluated (USD, kWh, kgCO2e)
    replicas: np.ndarray                        # (C,) owned or rented at the peak
    active: np.ndarray                          # (C, H)
    share: np.ndarray                           # (C, B, H) fraction of each bucket-hour's rate
    load: np.ndarray                            # (C, H) replicas' worth of load
    servers: np.ndarray
    racks: np.ndarray

    @property
    def ok(self) -> bool:
        return self.solution.ok

    def gpus(self, problem: MixProblem) -> dict[str, int]:
        """GPUs per candidate (pool) chosen (nonzero only)."""
        return {c.name: int(self.replicas[i] * c.tp) for i, c in enumerate(problem.candidates)
                if self.replicas[i] > 0}

    def allocation(self, problem: MixProblem) -> dict[str, int]:
        """GPUs per accelerator type."""
        out: dict[str, int] = {}
        for i, c in enumerate(problem.candidates):
            if self.replicas[i] > 0:
                out[c.accelerator] = out.get(c.accelerator, 0) + int(self.replicas[i] * c.tp)
        return out


def set_objective(mm: MixModel, objective: str | dict[str, float]) -> str:
    """Make ``objective`` (a name of :data:`OBJECTIVES` or weights by name) the model's objective."""
    weights = {objective: 1.0} if isinstance(objective, str) else dict(objective)
    for k in weights:
        if k not in mm.terms:
            raise ValueError(f"unknown objective {k!r}; expected one of {', '.join(OBJECTIVES)}")
    idx, coef, off = _scaled(mm.terms, weights)
    mm.model.clear_objective()
    mm.model.minimize(idx, coef)
    mm.model.objective_offset = off
    mm.model.objective_unit = UNITS[objective] if isinstance(objective, str) else "weighted"
    return objective if isinstance(objective, str) else "weighted"


def read_plan(mm: MixModel, sol: Solution, objective: str) -> MixPlan:
    P = mm.problem
    C, B, H = len(P.candidates), len(P.buckets), P.hours
    v = sol.values
    share = np.zeros((C, B, H))
    load = np.zeros((C, H))
    for (c, b, h), i in mm.share.items():
        f = v[i] / P.slices
        share[c, b, h] = f
        load[c, h] += f * P.rates[b, h] / P.candidates[c].capacity_rps[b]
    figs = mm.evaluate(v) if sol.ok else {k: math.nan for k in mm.terms}
    reps = v[mm.replicas].astype(int)
    act = v[mm.active].astype(int)
    for c, cand in enumerate(P.candidates):
        if cand.pricing == "hourly" and H:
            # nothing is paid for hourly replicas beyond the active ones: the peak is the most active
            reps[c] = min(reps[c], int(act[c].max()))
    return MixPlan(sol, objective, figs, reps, act, share, load,
                   v[mm.servers].astype(int), v[mm.racks].astype(int))


def solve(mm: MixModel, objective: str | dict[str, float] = "cost", *, time_limit_s: float = 10.0,
          workers: int = 1, seed: int = 0, hint: np.ndarray | None = None,
          log: Callable[[str], None] | None = None, solver: str | None = None,
          gap_tolerance: float = 1e-6) -> MixPlan:
    """Solve for ``objective``; a time limit returns the best plan found with its gap.
    ``gap_tolerance``: relative gap at which HiGHS stops (1e-6: proven optimal).

    ``solver``: 'highs' (MathOpt HiGHS; the default when the problem's ``continuous_shares`` is
    set) or 'cp-sat' (the core's CP-SAT: every share an integer number of slices)."""
    name = set_objective(mm, objective)
    solver = solver or ("highs" if mm.problem.continuous_shares else "cp-sat")
    if solver == "highs":
        cont = np.zeros(mm.model.n_vars, bool)
        cont[list(mm.share.values())] = True
        sol = solve_mathopt(mm.model, cont, time_limit_s=time_limit_s, workers=workers, seed=seed, hint=hint,
                            gap_tolerance=gap_tolerance)
    else:
        sol = mm.model.solve(time_limit_s=time_limit_s, workers=workers, seed=seed, hint=hint, log=log)
    return read_plan(mm, sol, name)


#: feasibility tolerance of the float re-check of a MathOpt (floating-point LP) solution, relative
#: to a row's largest coefficient or bound (HiGHS' own primal feasibility tolerance is 1e-7)
MATHOPT_CHECK_TOL = 1e-6


def solve_mathopt(pm: PlanModel, continuous: np.ndarray, *, time_limit_s: float, workers: int = 1, seed: int = 0,
                  hint: np.ndarray | None = None, gap_tolerance: float = 1e-6) -> Solution:
    """Solve a core :class:`PlanModel` with MathOpt's HiGHS (a MIP with LP bounds), the variables
    flagged in ``continuous`` relaxed to reals within their bounds.  Float coefficients are passed
    as they are (no integer scaling); the result is a core :class:`Solution` (values as floats,
    integers exactly integral), re-checked in floating point like the core's."""
    import time as _time

    from ortools.math_opt.python import mathopt

    from .core import SolverInfo, _gap, _ortools_version

    t0 = _time.perf_counter()
    mo = mathopt.Model(name=pm.name)
    xs = [mo.add_variable(lb=float(lo), ub=float(hi), is_integer=not bool(continuous[i]), name=n)
          for i, (n, lo, hi) in enumerate(zip(pm.names, pm.lb, pm.ub))]
    for c in pm.constraints:
        expr = mathopt.LinearExpression()
        expr = sum((float(a) * xs[int(i)] for i, a in zip(c.idx, c.coef)), start=mathopt.LinearExpression())
        lo = c.lo if math.isfinite(c.lo) else -math.inf
        hi = c.hi if math.isfinite(c.hi) else math.inf
        mo.add_linear_constraint(lb=lo, ub=hi, expr=expr, name=c.name)
    oidx, ocoef = pm.objective_terms()
    mo.minimize(sum((float(a) * xs[int(i)] for i, a in zip(oidx, ocoef)), start=mathopt.LinearExpression())
                + pm.objective_offset)
    params = mathopt.SolveParameters(time_limit=__import__("datetime").timedelta(seconds=float(time_limit_s)),
                                     random_seed=int(seed), relative_gap_tolerance=float(gap_tolerance),
                                     enable_output=False)
    mp = None
    if hint is not None:
        h = np.asarray(hint, float)
        mp = mathopt.ModelSolveParameters(solution_hints=[mathopt.SolutionHint(
            variable_values={xs[i]: float(h[i]) for i in range(len(xs)) if not continuous[i]})])
    res = mathopt.solve(mo, mathopt.SolverType.HIGHS, params=params, model_params=mp)
    wall = _time.perf_counter() - t0
    info = SolverInfo("MathOpt HiGHS", _ortools_version(), int(workers), int(seed), float(time_limit_s))
    reason = res.termination.reason
    R = mathopt.TerminationReason
    if res.has_primal_feasible_solution():
        vals = np.array([res.variable_values(x) for x in xs], float)
        ints = ~np.asarray(continuous, bool)
        vals[ints] = np.rint(vals[ints])
        vals = np.clip(vals, np.asarray(pm.lb, float), np.asarray(pm.ub, float))
        obj = pm.objective_value(vals)
        bnd = float(res.termination.objective_bounds.dual_bound)
        bnd = min(obj, bnd) if math.isfinite(bnd) else -math.inf
        status = "OPTIMAL" if reason == R.OPTIMAL else "FEASIBLE"
        gap = 0.0 if status == "OPTIMAL" and _gap(obj, bnd) <= 1e-6 else _gap(obj, bnd)
        if status == "OPTIMAL" and gap > 1e-6:
            status = "FEASIBLE"           # stopped at the stated gap tolerance, not proven optimal
        viol = []
        for c in pm.constraints:
            d = c.violation(vals, tol=MATHOPT_CHECK_TOL)
            if d > 0:
                viol.append(f"{c.desc}: off by {c.fmt(d)}")
        return Solution(status, obj, bnd if math.isfinite(bnd) else math.nan, gap, wall, vals, info,
                        pm.objective_unit, 0.0, None, None, {}, viol, list(pm.names))
    status = "INFEASIBLE" if reason in (R.INFEASIBLE, R.INFEASIBLE_OR_UNBOUNDED) else "UNKNOWN"
    return Solution(status, math.nan, math.nan, math.nan, wall, np.zeros(pm.n_vars), info, pm.objective_unit,
                    0.0, None, None, {}, [], list(pm.names))


# ============================================================================ presolve and hints
def dominated(problem: MixProblem) -> dict[str, str]:
    """Candidates another candidate of the same accelerator, tensor parallelism, pricing, price,
    place and limits beats on every count (capacity on every bucket, idle, parked and peak power,
    busy energy per request): any plan using the dominated one is matched or beaten by the same
    plan using the other, for every objective and constraint of :func:`build`.  Returns
    {dominated name: dominating name}; dropping them leaves the optimum unchanged and the model
    smaller (e.g. bf16 beside fp8 at the same tensor parallelism)."""
    out: dict[str, str] = {}
    cands = problem.candidates
    same = ("accelerator", "tp", "pricing", "price_usd_per_gpu_hour", "embodied_g_per_gpu_hour", "gpus_per_server",
            "servers_per_rack", "server_static_w", "server_per_gpu_w", "server_embodied_g_per_hour",
            "server_usd_per_hour", "row", "max_replicas", "tdp_w")

    def parked(c: Candidate) -> float:
        if c.parked_w is not None:
            return c.parked_w
        return 0.0 if c.pricing == "hourly" else problem.parked_fraction * c.idle_w

    def per_req(c: Candidate) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(c.capacity_rps > 0, np.maximum(0.0, c.busy_w - c.idle_w) / c.capacity_rps, np.inf)

    for i, c in enumerate(cands):
        for j, d in enumerate(cands):
            if i == j or d.name in out or any(getattr(c, k) != getattr(d, k) for k in same):
                continue
            ok = (np.all(d.capacity_rps >= c.capacity_rps) and d.idle_w <= c.idle_w and parked(d) <= parked(c)
                  and d.cap_w <= c.cap_w and np.all(per_req(d)[c.capacity_rps > 0] <= per_req(c)[c.capacity_rps > 0])
                  and d.idle_w - parked(d) <= c.idle_w - parked(c))
            strict = (np.any(d.capacity_rps > c.capacity_rps) or d.idle_w < c.idle_w or d.cap_w < c.cap_w
                      or j < i)
            if ok and strict:
                out[c.name] = d.name
                break
    return out


def hint_from(mm: MixModel, plan: "MixPlan", problem: MixProblem) -> np.ndarray:
    """A hint for ``mm`` from a plan of another problem over a subset of its candidates (e.g. the
    best single type): the integer decisions matched by candidate name, every other candidate at
    zero.  The plan is feasible in ``mm`` when ``mm``'s problem has the same buckets, hours and
    limits, so the solve starts from it (the mix is never worse than that plan)."""
    P = mm.problem
    v = np.zeros(mm.model.n_vars)
    idx = {c.name: k for k, c in enumerate(P.candidates)}
    S = float(P.slices)
    for k, c in enumerate(problem.candidates):
        j = idx.get(c.name)
        if j is None:
            continue
        v[mm.replicas[j]] = plan.replicas[k]
        v[mm.servers[j]] = plan.servers[k]
        v[mm.racks[j]] = plan.racks[k]
        v[mm.active[j]] = plan.active[k]
        for b in range(len(P.buckets)):
            for h in range(P.hours):
                var = mm.share.get((j, b, h))
                if var is not None:
                    v[var] = plan.share[k, b, h] * S
    return v


# ============================================================================ Pareto front
@dataclass
class ParetoPoint:
    f1: float
    f2: float
    eps: float | None                 # the bound on f2 this point was solved under (None: an end)
    gap: float
    status: str
    plan: MixPlan


@dataclass
class ParetoFront:
    first: str
    second: str
    points: list[ParetoPoint]         # ordered by f2 decreasing (f1 increasing)
    knee: int | None
    marginal: list[float]             # between neighbours: -(delta f1)/(delta f2), e.g. USD per kgCO2e

    def table(self) -> list[dict]:
        rows = []
        for k, p in enumerate(self.points):
            rows.append({self.first: p.f1, self.second: p.f2, "eps": p.eps, "gap": p.gap, "status": p.status,
                         "knee": k == self.knee,
                         f"marginal_{self.first}_per_{self.second}": self.marginal[k - 1] if k else None})
        return rows


def pareto(mm: MixModel, first: str, second: str, *, points: int = 6, time_limit_s: float = 10.0,
           workers: int = 1, seed: int = 0) -> ParetoFront:
    """The front between ``first`` and ``second`` (both minimised) by the epsilon-constraint method:
    the two ends (each lexicographically optimal), then ``first`` minimised under
    ``second <= eps`` for ``eps`` evenly between the ends, each solve hinted with the previous point.
    Every point is a plan with its gap.  Dominated points (possible where a solve stops at its time
    limit) are kept and flagged by their gap; the knee is the point farthest from the line between
    the ends (normalised axes)."""
    for k in (first, second):
        if k not in mm.terms:
            raise ValueError(f"unknown objective {k!r}; expected one of {', '.join(OBJECTIVES)}")
    m = mm.model
    i2, c2, o2 = mm.terms[second]
    i1, c1, o1 = mm.terms[first]

    def with_eps(name: str, idx, coef, off, hi):
        m.constraints = [c for c in m.constraints if c.name != name]
        if hi is not None:
            m.add("pareto", name, idx, coef, hi=hi - off, desc=f"{name} bound", elastic=False)

    def solve_under(obj: str, bound_name: str | None, bound_idx=None, bound_coef=None, bound_off=0.0,
                    hi=None, hint=None) -> MixPlan:
        with_eps("eps", i2, c2, o2, None)
        with_eps("lex", i1, c1, o1, None)
        if bound_name is not None:
            with_eps(bound_name, bound_idx, bound_coef, bound_off, hi)
        return solve(mm, obj, time_limit_s=time_limit_s, workers=workers, seed=seed, hint=hint)

    def lift(x: float) -> float:
        # a bound a little above the attained value (the core rounds rows conservatively)
        return x + max(abs(x) * 1e-6, 1e-9)

    a = solve_under(first, None)
    if not a.ok:
        with_eps("eps", i2, c2, o2, None)
        return ParetoFront(first, second, [], None, [])
    a2 = solve_under(second, "lex", i1, c1, o1, lift(a.figures[first]), hint=a.solution.values)
    a = a2 if a2.ok else a
    b = solve_under(second, None, hint=a.solution.values)
    b2 = solve_under(first, "eps", i2, c2, o2, lift(b.figures[second]), hint=b.solution.values)
    b = b2 if b2.ok else b
    pts = [ParetoPoint(a.figures[first], a.figures[second], None, a.solution.gap, a.solution.status, a)]
    hi2, lo2 = a.figures[second], b.figures[second]
    prev = a
    if points > 2 and hi2 - lo2 > 1e-9 * max(1.0, abs(hi2)):
        for step in range(1, points - 1):
            eps = hi2 - (hi2 - lo2) * step / (points - 1)
            mp = solve_under(first, "eps", i2, c2, o2, eps, hint=prev.solution.values)
            if mp.ok:
                pts.append(ParetoPoint(mp.figures[first], mp.figures[second], eps, mp.solution.gap,
                                       mp.solution.status, mp))
                prev = mp
    pts.append(ParetoPoint(b.figures[first], b.figures[second], lo2, b.solution.gap, b.solution.status, b))
    with_eps("eps", i2, c2, o2, None)
    # drop exact duplicates (equal plans at neighbouring eps)
    uniq: list[ParetoPoint] = []
    for pt in pts:
        if uniq and abs(pt.f1 - uniq[-1].f1) <= 1e-9 * max(1, abs(pt.f1)) and \
                abs(pt.f2 - uniq[-1].f2) <= 1e-9 * max(1, abs(pt.f2)):
            continue
        uniq.append(pt)
    return ParetoFront(first, second, uniq, knee_index([p.f1 for p in uniq], [p.f2 for p in uniq]),
                       [marginal(uniq[k - 1], uniq[k]) for k in range(1, len(uniq))])


def marginal(p: ParetoPoint, q: ParetoPoint) -> float:
    """Cost of the first objective per unit of the second saved between two neighbouring points."""
    d2 = p.f2 - q.f2
    return (q.f1 - p.f1) / d2 if d2 != 0 else math.inf


def knee_index(f1: Sequence[float], f2: Sequence[float]) -> int | None:
    """The point farthest from the line between the two ends, on axes normalised to [0, 1]."""
    n = len(f1)
    if n < 3:
        return None
    x = np.asarray(f1, float)
    y = np.asarray(f2, float)
    xr, yr = np.ptp(x) or 1.0, np.ptp(y) or 1.0
    xn, yn = (x - x.min()) / xr, (y - y.min()) / yr
    ax, ay, bx, by = xn[0], yn[0], xn[-1], yn[-1]
    d = np.abs((by - ay) * xn - (bx - ax) * yn + bx * ay - by * ax) / max(math.hypot(bx - ax, by - ay), 1e-12)
    return int(np.argmax(d))


# ============================================================================ derating after a verification round
def derate(problem: MixProblem, failed: dict[tuple[str, int], float]) -> MixProblem:
    """A problem whose capacities of (candidate name, bucket index) are multiplied by the given
    factors (a bucket whose SLO failed in simulation on that candidate)."""
    cands = []
    for c in problem.candidates:
        cap = c.capacity_rps.copy()
        for b in range(len(cap)):
            f = failed.get((c.name, b))
            if f is not None:
                cap[b] *= f
        cands.append(replace(c, capacity_rps=cap))
    return replace(problem, candidates=cands)


# ============================================================================ Mélange compatibility
@dataclass
class MelangeResult:
    status: str
    cost_per_hour: float                    # USD/h
    allocation: dict[str, int]              # GPU name -> count
    bound: float
    gap: float
    solve_s: float
    assignment: list[dict]                  # one per slice: bucket (i, j), slice, gpu


def _exact(x: float) -> Fraction:
    return Fraction(repr(float(x)))


def melange(config: dict, *, time_limit_s: float = 30.0, workers: int = 1, seed: int = 0) -> MelangeResult:
    """Solve a problem given in Mélange's input format (Griggs et al., arXiv 2404.14527;
    ``tyler-griggs/melange-release``, README "Explanation of Inputs and Outputs").

    ``gpu_info``: GPU name -> ``{"cost": USD/h, "tputs": [[req/s per (input, output) bucket]]}``;
    ``workload_distribution``: the share of requests in each bucket; ``total_request_rate``
    (req/s); ``slice_factor``: slices per bucket.  Semantics (its ILP): each bucket's rate is cut
    into ``slice_factor`` equal slices; every slice is assigned to exactly one GPU type; a GPU
    type's count is at least the sum, over the slices it serves, of slice rate / its throughput on
    that bucket; minimise the sum of count x cost.  A zero (or missing) throughput means the GPU
    cannot serve that bucket (Mélange itself divides by it and fails).

    Solved on the planner core with exact integer coefficients where the input's decimals allow
    (the loads as fractions over a common denominator), so the answer is the proven optimum of the
    same ILP, not of a rounded one."""
    from ..errors import InputError

    try:
        gpus = dict(config["gpu_info"])
        dist = [list(map(float, row)) for row in config["workload_distribution"]]
        rate = float(config["total_request_rate"])
        sf = int(config.get("slice_factor", 1))
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"not a Mélange configuration ({exc})",
                         expected="gpu_info, workload_distribution, total_request_rate, slice_factor") from exc
    if sf < 1 or rate < 0 or not gpus:
        raise InputError("slice_factor must be >= 1, total_request_rate >= 0 and gpu_info non-empty",
                         expected="a Mélange configuration")
    names = list(gpus)
    nI, nO = len(dist), (len(dist[0]) if dist else 0)
    tput = {}
    for g in names:
        t = gpus[g].get("tputs")
        if not isinstance(t, list) or len(t) != nI or any(not isinstance(r, list) or len(r) != nO for r in t):
            raise InputError(f"gpu_info.{g}.tputs must be a {nI} x {nO} table like workload_distribution",
                             expected="one throughput (req/s) per bucket")
        tput[g] = [[float(v) for v in r] for r in t]
        if "cost" not in gpus[g]:
            raise InputError(f"gpu_info.{g} has no cost", expected="USD per hour")
    # loads per (slice, gpu) as exact fractions
    slices = []
    for i in range(nI):
        for j in range(nO):
            if dist[i][j] > 0 and rate > 0:
                for k in range(sf):
                    slices.append((i, j, k))
    load = {}
    for n_s, (i, j, k) in enumerate(slices):
        r = _exact(dist[i][j]) * _exact(rate) / sf
        for g in names:
            t = tput[g][i][j]
            if t > 0 and math.isfinite(t):
                load[(n_s, g)] = r / _exact(t)
    den = 1
    for f in load.values():
        den = den * f.denominator // math.gcd(den, f.denominator)
    m = PlanModel("melange", "USD/h")
    y = {g: m.int_var(0, max(1, int(math.ceil(sum(float(load.get((s, g), 0)) for s in range(len(slices)))))),
                      f"count[{g}]") for g in names}
    x = {(s, g): m.bool_var(f"assign[{slices[s][0]},{slices[s][1]}#{slices[s][2]}][{g}]")
         for s in range(len(slices)) for g in names if (s, g) in load}
    exact = den <= COEF_TARGET and all(f * den <= COEF_TARGET for f in load.values())
    for s, (i, j, k) in enumerate(slices):
        idx = [x[(s, g)] for g in names if (s, g) in x]
        m.add("assign", f"assign[{i},{j}#{k}]", idx, [1.0] * len(idx), lo=1, hi=1,
              desc=f"slice {k} of bucket ({i}, {j}) goes to exactly one GPU type"
                   + ("" if idx else " (every GPU type has zero throughput for it)"))
    for g in names:
        idx = [x[(s, g)] for s in range(len(slices)) if (s, g) in x]
        if exact:
            coef = [float(load[(s, g)] * den) for s in range(len(slices)) if (s, g) in x] + [-float(den)]
        else:
            coef = [float(load[(s, g)]) for s in range(len(slices)) if (s, g) in x] + [-1.0]
        m.add("capacity", f"capacity[{g}]", idx + [y[g]], coef, hi=0.0,
              desc=f"{g} count covers the load of its slices")
    if exact:
        # integral rows: make the core keep them exact (it rescales only rows above its target)
        m.constraints = [_integral(c) for c in m.constraints]
    m.minimize([y[g] for g in names], [float(gpus[g]["cost"]) for g in names])
    sol = m.solve(time_limit_s=time_limit_s, workers=workers, seed=seed)
    if not sol.ok:
        return MelangeResult(sol.status, math.nan, {}, math.nan, math.nan, sol.wall_s, [])
    alloc = {g: int(sol.values[y[g]]) for g in names}
    assign = [{"bucket": [slices[s][0], slices[s][1]], "slice": slices[s][2], "gpu": g}
              for (s, g), v in x.items() if sol.values[v]]
    cost = float(sum(alloc[g] * float(gpus[g]["cost"]) for g in names))
    return MelangeResult(sol.status, cost, alloc, sol.bound, sol.gap, sol.wall_s, assign)


def _integral(c):
    """Integral rows whose coefficients exceed the core's target would be rescaled (and rounded);
    divide them by their gcd first so they stay exact where they can."""
    if not np.all(c.coef == np.rint(c.coef)):
        return c
    g = 0
    for v in np.abs(c.coef).astype(np.int64):
        g = math.gcd(g, int(v))
    if g > 1:
        return replace(c, coef=c.coef / g, hi=math.floor(c.hi / g) if math.isfinite(c.hi) else c.hi,
                       lo=math.ceil(c.lo / g) if math.isfinite(c.lo) else c.lo)
    return c
