"""The oversubscription planner: how many servers each row holds, and the capping thresholds.

A scenario-based model (chance constraints over simulated power samples), built, solved and
explained through :class:`fleet.plan.core.PlanModel`.  Data (:class:`PowerProblem`), per row:

* ``samples_w``: power samples of one server of the row (W): the row's power in each telemetry
  interval of the non-oversubscribed simulation (several seeds and days) divided by its servers.
  With demand growing with the servers (the oversubscribed row hosts proportionally more work,
  as in POLCA), a row of ``N`` servers draws ``N x samples_w[k]`` in sample ``k``;
* ``rise_w``: how far one server's power can rise within the controller's reaction time
  (sampling interval + telemetry delay + actuation delay), from the same samples;
* ``brake_w``: one server's power at full load with the power brake on (every GPU at the brake
  cap, plus the server overhead): the controller can always bring ``N`` servers to ``N x brake_w``;
* ``nameplate_w``: one server's nameplate (GPUs at TDP or their static cap, plus overhead):
  ``floor(budget / nameplate_w)`` servers fit without oversubscription.

Decisions: ``rows[r].servers`` (integer) and ``rows[r].t1`` (one of the candidate first
thresholds, fractions of the row budget; the second threshold and the brake follow at stated
offsets).  Constraints, in the scenario's words:

* *capping chance*: the share of samples in which ``N x p_k`` exceeds the first threshold (the
  controller caps low-priority work) is at most ``max_capped_share`` (an indicator per sample,
  ``N p_k - t1 B - M z_k <= 0``, ``sum z_k <= share x K``): this bounds the capped time, which
  is what costs latency;
* *capped chance*: ``capped_w`` are the same row's per-server samples with every server held at
  the controller's second level (``cap_all``: a cap or a locked clock); the share of them in
  which ``N x q_k`` exceeds the brake threshold (the second level does not hold the row, the
  brake must act) is at most ``budget_exceed_share`` (default none: the second level always
  holds the row under the brake threshold, below the budget);
* *reaction headroom*: ``N x rise_w <= (1 - t1) x B``: between crossing the threshold and the
  cap taking effect the row cannot reach its budget (this is what makes a high threshold cost
  servers);
* *brake floor*: ``N x brake_w <= B``: with the brake on the row fits its budget (no trip);
* at least ``min_servers`` (default: what the nameplate allows) and at most ``max_servers``.

The sample, headroom and capped constraints apply only when the row is oversubscribed (a
boolean ``oversubscribed``, 1 when ``N`` exceeds the nameplate count): a row at its nameplate
size never exceeds its budget, whatever its power does.

Objective: the most servers (sum over rows), ties broken towards the higher threshold (less
capping).  Only the ``ceil(share x K) + KEEP_EXTRA`` largest samples of a row get indicators: a
solution that satisfies those satisfies the smaller ones too (the left-hand side grows with
``p_k``), so the model is exact and small.  The plan is a model figure; the simulation with the
controller and breakers verifies it (:mod:`fleet.planning.power`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .core import DEFAULT_TIME_LIMIT_S, Explanation, PlanModel, Solution

#: samples kept beyond the ones a chance constraint may violate (see the module docstring)
KEEP_EXTRA = 50
#: default candidate first thresholds (fraction of the row budget)
DEFAULT_T1 = (0.75, 0.8, 0.85, 0.9, 0.95)


@dataclass(frozen=True)
class RowData:
    row: str
    budget_w: float
    samples_w: np.ndarray          # per-server power samples (W)
    rise_w: float                  # per-server rise within the reaction time (W)
    brake_w: float                 # per-server power with the brake on, full load (W)
    nameplate_w: float             # per-server nameplate (W)
    capped_w: np.ndarray | None = None   # per-server samples at the controller's second level (None: samples_w)
    min_servers: int | None = None
    max_servers: int | None = None
    words: str = ""                # e.g. "row0 (h100: 8 x H100-SXM per server)"

    @property
    def nameplate_servers(self) -> int:
        return int(math.floor(self.budget_w / self.nameplate_w + 1e-9))


@dataclass(frozen=True)
class PowerProblem:
    rows: tuple[RowData, ...]
    t1: tuple[float, ...] = DEFAULT_T1
    max_capped_share: float = 0.05
    budget_exceed_share: float = 0.0
    #: the second threshold and the brake, as offsets above t1 (fractions of the budget, capped at 1)
    t2_offset: float = 0.05
    brake_offset: float = 0.1


@dataclass
class PowerModel:
    problem: PowerProblem
    model: PlanModel
    n_var: dict[str, int] = field(default_factory=dict)
    t_var: dict[tuple[str, int], int] = field(default_factory=dict)


@dataclass
class RowPlan:
    row: str
    servers: int
    nameplate_servers: int
    t1: float
    t2: float
    brake: float
    capped_share_model: float      # share of samples above t1 at the chosen N
    exceed_share_model: float      # share of capped samples above the brake threshold at the chosen N
    peak_model_w: float            # N x the largest sample

    @property
    def extra_pct(self) -> float:
        return 100.0 * (self.servers / self.nameplate_servers - 1.0) if self.nameplate_servers else math.inf


@dataclass
class PowerPlan:
    rows: dict[str, RowPlan]
    solution: Solution

    @property
    def servers(self) -> int:
        return sum(r.servers for r in self.rows.values())

    @property
    def nameplate_servers(self) -> int:
        return sum(r.nameplate_servers for r in self.rows.values())

    @property
    def extra_pct(self) -> float:
        n0 = self.nameplate_servers
        return 100.0 * (self.servers / n0 - 1.0) if n0 else math.inf


def thresholds(problem: PowerProblem, t1: float) -> tuple[float, float, float]:
    brake = min(1.0, t1 + problem.brake_offset)
    t2 = min(t1 + problem.t2_offset, (t1 + brake) / 2.0)
    return t1, round(t2, 6), round(brake, 6)


def build(problem: PowerProblem) -> PowerModel:
    m = PlanModel("power oversubscription", objective_unit="servers")
    pm = PowerModel(problem, m)
    for rd in problem.rows:
        B = float(rd.budget_w)
        p = np.sort(np.asarray(rd.samples_w, dtype=np.float64))[::-1]
        if not len(p) or not np.all(np.isfinite(p)) or p.min() < 0:
            raise ValueError(f"{rd.row}: expected non-negative power samples")
        K = len(p)
        n0 = rd.nameplate_servers
        lo = rd.min_servers if rd.min_servers is not None else n0
        hi = rd.max_servers if rd.max_servers is not None else max(lo, 4 * max(n0, 1))
        n = m.int_var(0, int(hi), f"fleet.power.rows[{rd.row}].servers")
        pm.n_var[rd.row] = n
        m.add("servers", f"{rd.row}: at least {lo} servers", [n], [1.0], lo=lo,
              desc=f"{rd.row}: at least {lo} servers (nameplate allows {n0})", unit="servers")
        ts = []
        for j, t in enumerate(problem.t1):
            v = m.bool_var(f"fleet.power.controller.t1[{rd.row}]={t:g}")
            pm.t_var[(rd.row, j)] = v
            ts.append(v)
        m.add("threshold", f"{rd.row}: one first threshold", ts, np.ones(len(ts)), lo=1, hi=1,
              desc=f"{rd.row}: exactly one first capping threshold", elastic=False)
        tB = np.array([t * B for t in problem.t1])
        M = float(hi) * float(max(p[0], rd.nameplate_w))
        # over = 1 when the row holds more servers than its nameplate allows: only then can it
        # exceed its budget, and only then do the controller's constraints apply
        over = m.bool_var(f"{rd.row}.oversubscribed")
        m.add("oversubscribed", f"{rd.row}: oversubscribed", [n, over], [1.0, -float(hi)], hi=n0,
              desc=f"{rd.row}: more than {n0} servers only when oversubscribed", elastic=False)
        # capping chance: z_k = 1 where N p_k may exceed t1 B
        allow_cap = int(math.floor(problem.max_capped_share * K + 1e-9))
        kc = min(K, allow_cap + KEEP_EXTRA)
        z = [m.bool_var(f"{rd.row}.capped[{k}]") for k in range(kc)]
        for k in range(kc):
            m.add("capping sample", f"{rd.row}: capping sample {k}", [n, *ts, z[k], over], [p[k], *(-tB), -M, M],
                  hi=M,
                  desc=f"{rd.row}: sample {k} ({p[k]:.0f} W per server) under the first threshold unless counted "
                       f"as capped", unit="W", elastic=False)
        m.add("capped time", f"{rd.row}: capped time share", z, np.ones(kc), hi=allow_cap,
              desc=f"{rd.row}: the row runs above its first threshold in at most {problem.max_capped_share:.1%} "
                   f"of the simulated time ({allow_cap} of {K} samples)", unit="samples")
        # capped chance: w_k = 1 where N q_k (second level on) may exceed the brake threshold
        q = np.sort(np.asarray(rd.capped_w if rd.capped_w is not None else rd.samples_w, dtype=np.float64))[::-1]
        Kq = len(q)
        bB = np.array([thresholds(problem, t)[2] * B for t in problem.t1])
        allow_b = int(math.floor(problem.budget_exceed_share * Kq + 1e-9))
        kb = min(Kq, allow_b + KEEP_EXTRA)
        Mq = float(hi) * float(max(q[0], rd.nameplate_w))
        w = [m.bool_var(f"{rd.row}.over_brake[{k}]") for k in range(kb)]
        for k in range(kb):
            m.add("capped sample", f"{rd.row}: capped sample {k}", [n, *ts, w[k], over], [q[k], *(-bB), -Mq, Mq],
                  hi=Mq,
                  desc=f"{rd.row}: capped sample {k} ({q[k]:.0f} W per server) under the brake threshold unless "
                       f"counted as over", unit="W", elastic=False)
        m.add("budget chance", f"{rd.row}: capped exceedance share", w, np.ones(kb), hi=allow_b,
              desc=f"{rd.row}: with every server at the second level the row needs the brake in at most "
                   f"{problem.budget_exceed_share:.1%} of the simulated time ({allow_b} of {Kq} samples)",
              unit="samples")
        # reaction headroom: N rise + t1 B <= B
        Mh = float(hi) * rd.rise_w + B
        m.add("headroom", f"{rd.row}: reaction headroom", [n, *ts, over], [rd.rise_w, *tB, Mh], hi=B + Mh,
              desc=f"{rd.row}: power rising {rd.rise_w:.0f} W per server within the controller's reaction time "
                   f"must not reach the {B / 1e3:g} kW budget from the first threshold", unit="W", show=1e-3,
              shown_unit="kW")
        m.add("brake", f"{rd.row}: brake floor", [n], [rd.brake_w], hi=B,
              desc=f"{rd.row}: with the power brake on ({rd.brake_w:.0f} W per server at full load) the row fits "
                   f"its {B / 1e3:g} kW budget", unit="W", show=1e-3, shown_unit="kW")
        m.minimize([n], [-1.0])
        m.minimize(ts, [-1e-3 * (j + 1) / len(ts) for j in range(len(ts))])
    return pm


def extract(pm: PowerModel, sol: Solution) -> PowerPlan:
    pr = pm.problem
    rows = {}
    for rd in pr.rows:
        n = sol.value(pm.n_var[rd.row])
        j = next(j for j in range(len(pr.t1)) if sol.value(pm.t_var[(rd.row, j)]))
        t1, t2, brake = thresholds(pr, pr.t1[j])
        p = np.asarray(rd.samples_w, dtype=np.float64)
        q = np.asarray(rd.capped_w if rd.capped_w is not None else rd.samples_w, dtype=np.float64)
        rows[rd.row] = RowPlan(rd.row, n, rd.nameplate_servers, t1, t2, brake,
                               float(np.mean(n * p > t1 * rd.budget_w)), float(np.mean(n * q > brake * rd.budget_w)),
                               float(n * p.max()))
    return PowerPlan(rows, sol)


def solve(problem: PowerProblem, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S, cuts: dict[str, int] | None = None,
          ) -> tuple[PowerPlan | None, Solution, Explanation | None]:
    """Build, solve; ``cuts`` (row -> most servers) tighten rows a verification rejected.  An
    infeasible model comes back explained by name."""
    pm = build(problem)
    for row, most in (cuts or {}).items():
        pm.model.add("verification", f"{row}: verified limit", [pm.n_var[row]], [1.0], hi=most,
                     desc=f"{row}: at most {most} servers (a simulation rejected more)", unit="servers")
    sol = pm.model.solve(time_limit_s=time_limit_s)
    if sol.ok:
        return extract(pm, sol), sol, None
    if sol.status == "INFEASIBLE":
        return None, sol, pm.model.explain(time_limit_s=time_limit_s)
    return None, sol, None
