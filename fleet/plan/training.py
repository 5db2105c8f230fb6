"""Carbon- and price-aware training: when each job runs and at which power limit (CP-SAT).

The problem is plain data (:class:`TrainingJob`, :class:`Slots`); :func:`build` writes it as a
:class:`~fleet.plan.core.PlanModel`, :func:`solve` solves it and decodes a :class:`Schedule`;
:func:`fcfs_baseline` (each job at submission, full power, first fit in submission order) and
:func:`perfect_foresight_bound` (each job its own cleanest hours, no capacity or power limit)
say how much of the achievable saving the schedule captured.

Model (per job ``j``, hourly slot ``t`` in the job's window, power limit ``c`` of the grid):

* ``q[j][t][c]`` (integer, 0..:data:`SHARES_PER_SLOT`): the share of slot ``t`` the job runs at
  limit ``c``.  A job's work is counted in units of 1/:data:`UNITS_PER_SLOT` of what it does in
  one slot at full power; at limit ``c`` it does ``r_c`` units per slot (``r_c`` from the
  training frontier: steps per hour at that limit, periodic checkpoints included, rounded down);
* ``y[j][t]`` (bool): the job holds its GPUs in slot ``t``; ``sum_c q <= SHARES_PER_SLOT * y``
  (a job may change its limit inside a slot);
* ``s[j][t]`` (bool): a run block starts in slot ``t`` (``s >= y[t] - y[t-1]``); every block after
  the first costs a checkpoint write, a reload and a partial step (``restart_s`` of run time,
  ``restart_j`` of energy);
* work: ``sum r_c q - ovh * sum s >= work - ovh`` (integer coefficients: exact) by the deadline (slots outside the window have
  no variables); non-interruptible jobs: ``sum s <= 1`` (one contiguous block);
* a job holds its GPUs in a slot only to run, and runs the whole slot when its block goes on into
  the next (blocks have no gaps, as in the simulation);
* GPUs per slot: ``sum gpus_j y[j][t] <= capacity_t``; power per slot (optional): the jobs'
  peak draw above idle within ``power_budget_w[t]`` (the site or row budget less inference and
  the pool's idle floor, computed by the caller); under a budget each job has one limit per slot
  (indicators ``z[j][t][c]``);
* objective: the pool's facility energy (all of its GPUs: the idle floor is a constant, each
  job adds its draw above idle) weighted by the hourly carbon intensity, price, 1 (energy) or a
  weighted sum of the three (kgCO2e, USD, kWh).  Owned GPUs draw idle power when no job runs,
  so a job's cost is its power *above idle*.

The objective is exact in the work done (the last slot of a job is charged only for the
work it does there), so the plan's energy is what the simulation should measure: the caller
verifies that (``fleet.planning.training``).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from ..errors import FleetError, InfeasibleError
from .core import PlanModel, Solution, gap_of

#: work units per slot at full power (resolution of the work accounting: 0.1% of a slot)
UNITS_PER_SLOT = 1000
#: the solver decides each job's share of a slot at each limit in steps of 1/SHARES_PER_SLOT
#: (10 s of an hour): small integer domains, integer slot rows
SHARES_PER_SLOT = 360
#: J per kWh
J_PER_KWH = 3.6e6
#: work below this (units, 1e-6 of a unit = 1e-9 of a slot) is floating-point dust of the LP
#: fill, not a run: it must neither hold GPUs nor open a run block (with its restart cost)
DUST_UNITS = 1e-6
OBJECTIVES = ("carbon", "cost", "energy", "weighted")
#: the default power-limit grid, as fractions of the accelerator's maximum power limit (Zeus and
#: Perseus sweep the limit in steps of this order; 4 points keep the model small)
DEFAULT_CAP_FRACTIONS = (0.5, 0.65, 0.8, 1.0)
#: jobs without a model are trained as this model (the simulation's default, fleet.sim.assemble)
DEFAULT_MODEL = "llama-3.1-8b"


class TrainingPlanError(FleetError):
    """Bad input to the training planner (named field, what was expected)."""


@dataclass(frozen=True)
class CapPoint:
    """One power limit of one job, from the training frontier of its model on the pool's GPUs."""

    cap_w: float              # per GPU
    steps_per_slot: float     # optimizer steps per slot, periodic checkpoints included
    power_w: float            # mean draw of all of the job's GPUs while it runs (W)


@dataclass(frozen=True)
class TrainingJob:
    """A job as the planner sees it.  ``first_slot``: the first whole slot after its submission;
    ``last_slot``: the last slot that ends by its deadline (inclusive)."""

    job_id: int
    gpus: int
    steps: int                          # work, in optimizer steps
    first_slot: int
    last_slot: int
    caps: tuple[CapPoint, ...]          # ascending limit; the last is full power
    interruptible: bool = True
    deferrable: bool = True             # False: starts in its first slot at full power, one block
    priority: float = 0.0
    model: str = DEFAULT_MODEL
    restart_s: float = 0.0              # run time lost per extra block (checkpoint + reload + part step)
    restart_j: float = 0.0              # energy per extra block (J, all GPUs)
    submit_s: float = 0.0
    deadline_s: float = math.nan

    @property
    def full(self) -> CapPoint:
        return self.caps[-1]

    @property
    def hours_full(self) -> float:
        """Run time at full power (h), checkpoints included."""
        return self.steps / self.full.steps_per_slot

    def words(self) -> str:
        """The job as the job table says it: 'job 17 (64 GPUs, 30.0 h of work at 700 W)'."""
        return f"job {self.job_id} ({self.gpus} GPUs, {self.hours_full:.1f} h of work at {self.full.cap_w:.0f} W)"


@dataclass(frozen=True)
class Slots:
    """Hourly signals and limits over the horizon (slot ``t`` is ``[t*slot_s, (t+1)*slot_s)``)."""

    ci_g_per_kwh: np.ndarray
    price_usd_per_mwh: np.ndarray
    pue: np.ndarray
    capacity_gpus: np.ndarray           # GPUs of the pool usable by planned jobs, per slot
    idle_w_per_gpu: float
    pool_gpus: int
    power_budget_w: np.ndarray | None = None   # jobs' draw above idle allowed per slot (W); None: no limit
    slot_s: float = 3600.0
    ci_signal: str = "average"          # 'average' | 'marginal'
    sources: tuple[str, ...] = ()

    @property
    def n(self) -> int:
        return len(self.ci_g_per_kwh)

    def per_joule(self, objective: str, weights: dict | None = None) -> np.ndarray:
        """Objective units per J of GPU energy in each slot (facility energy through PUE)."""
        kwh = self.pue / J_PER_KWH
        if objective == "energy":
            return kwh
        if objective == "carbon":
            return kwh * self.ci_g_per_kwh / 1000.0           # kgCO2e
        if objective == "cost":
            return kwh * self.price_usd_per_mwh / 1000.0      # USD
        if objective == "weighted":
            w = weights or {}
            return (w.get("energy", 0.0) * kwh + w.get("carbon", 0.0) * kwh * self.ci_g_per_kwh / 1000.0
                    + w.get("cost", 0.0) * kwh * self.price_usd_per_mwh / 1000.0)
        raise TrainingPlanError(f"unknown objective {objective!r}; expected one of {', '.join(OBJECTIVES)}")


OBJECTIVE_UNITS = {"carbon": "kgCO2e", "cost": "USD", "energy": "kWh", "weighted": "weighted"}


@dataclass
class _JobRates:
    """Integer work accounting of one job."""

    caps: list[CapPoint]
    rate: np.ndarray            # units per slot at each cap (int)
    marg_j_per_unit: np.ndarray  # J above idle per unit at each cap
    work: int                   # units
    ovh: int                    # units lost per extra block
    steps_per_unit: float


def job_rates(job: TrainingJob, idle_w_per_gpu: float, slot_s: float = 3600.0) -> _JobRates:
    full = job.full.steps_per_slot
    caps = list(job.caps)
    r_exact = np.array([c.steps_per_slot / full * UNITS_PER_SLOT for c in caps])
    rate = np.floor(r_exact + 1e-9).astype(np.int64)
    steps_per_unit = full / UNITS_PER_SLOT
    # J above idle per unit: (power - idle) x time per step x steps per unit
    marg = np.array([(c.power_w - job.gpus * idle_w_per_gpu) * slot_s / c.steps_per_slot * steps_per_unit
                     for c in caps])
    work = int(math.ceil(job.steps / steps_per_unit - 1e-9))
    ovh = int(math.ceil(job.restart_s / slot_s * UNITS_PER_SLOT - 1e-9)) if job.interruptible else 0
    return _JobRates(caps, rate, marg, max(1, work), ovh, steps_per_unit)


# ------------------------------------------------------------------------------ schedules
@dataclass
class Schedule:
    """Work per (job, slot, cap) and what it costs.  ``units`` rows: job_id, slot, cap_w, units,
    fraction (of the slot at that cap).  Figures are facility figures (PUE) of the pool's GPUs."""

    name: str
    rows: pd.DataFrame
    blocks: dict[int, int]                  # job -> run blocks
    end_slot: dict[int, float]              # job -> completion (slots, fractional)
    energy_kwh: float
    carbon_kg: float
    cost_usd: float
    job_energy_kwh: float                   # the jobs' own GPU energy x PUE
    floor_energy_kwh: float                 # every pool GPU at idle, all horizon, x PUE
    floor_carbon_kg: float
    floor_cost_usd: float
    deadlines_missed: list[int] = field(default_factory=list)
    hourly: pd.DataFrame | None = None      # slot, gpus, job_power_w (above idle), pool_energy_kwh, carbon_kg, cost_usd

    def figures(self) -> dict:
        return {"energy_kwh": self.energy_kwh, "carbon_kg": self.carbon_kg, "cost_usd": self.cost_usd,
                "job_energy_kwh": self.job_energy_kwh, "deadlines_missed": len(self.deadlines_missed)}

    def caps_by_job_slot(self) -> dict[tuple[int, int], list[tuple[float, float]]]:
        out: dict[tuple[int, int], list[tuple[float, float]]] = {}
        for r in self.rows.itertuples(index=False):
            out.setdefault((int(r.job_id), int(r.slot)), []).append((float(r.cap_w), float(r.fraction)))
        return out


def evaluate(name: str, jobs: list[TrainingJob], slots: Slots, work: dict[int, np.ndarray],
             blocks: dict[int, int] | None = None) -> Schedule:
    """The figures of a schedule given as ``work[job_id] = units[slot, cap]`` (int array of
    shape (n slots, n caps of the job))."""
    n = slots.n
    rows = []
    marg_j = np.zeros(n)          # J above idle per slot
    gpus_held = np.zeros(n)
    restart_j = np.zeros(n)
    end_slot: dict[int, float] = {}
    missed = []
    bl = dict(blocks or {})
    job_j = np.zeros(n)
    for job in jobs:
        jr = job_rates(job, slots.idle_w_per_gpu, slots.slot_s)
        w = np.asarray(work[job.job_id])
        w = np.where(np.abs(w) > DUST_UNITS, w, 0)      # float dust of an LP fill is no work
        frac = w / np.maximum(jr.rate, 1)[None, :]
        held = frac.sum(axis=1) > 0
        marg_j += (w * jr.marg_j_per_unit[None, :]).sum(axis=1)
        gpus_held += held * job.gpus
        # blocks and completion
        starts = np.flatnonzero(held & ~np.concatenate([[False], held[:-1]]))
        nb = bl.get(job.job_id, len(starts))
        bl[job.job_id] = nb
        if nb > 1:
            for s in starts[1:]:
                restart_j[s] += job.restart_j
        done = float(w.sum()) - jr.ovh * max(0, nb - 1)
        if held.any():
            last = int(np.flatnonzero(held)[-1])
            end_slot[job.job_id] = last + float(frac[last].sum())
        else:
            end_slot[job.job_id] = math.nan
        if done < jr.work - 1e-3 or not held.any() or end_slot[job.job_id] > job.last_slot + 1 + 1e-6:
            missed.append(job.job_id)
        for t, c in zip(*np.nonzero(w)):
            rows.append((job.job_id, int(t), jr.caps[c].cap_w, float(w[t, c]), float(frac[t, c])))
        job_j += (w * jr.marg_j_per_unit[None, :]).sum(axis=1) \
            + frac.sum(axis=1) * job.gpus * slots.idle_w_per_gpu * slots.slot_s
    job_j += restart_j
    floor_j = slots.pool_gpus * slots.idle_w_per_gpu * slots.slot_s
    pool_j = floor_j + marg_j + restart_j
    kwh = slots.per_joule("energy")
    kg = slots.per_joule("carbon")
    usd = slots.per_joule("cost")
    hourly = pd.DataFrame({"slot": np.arange(n), "gpus": gpus_held, "job_power_w": (marg_j + restart_j) / slots.slot_s,
                           "pool_energy_kwh": pool_j * kwh, "carbon_kg": pool_j * kg, "cost_usd": pool_j * usd,
                           "ci_g_per_kwh": slots.ci_g_per_kwh, "price_usd_per_mwh": slots.price_usd_per_mwh})
    df = pd.DataFrame(rows, columns=["job_id", "slot", "cap_w", "units", "fraction"])
    return Schedule(name, df, bl, end_slot, float((pool_j * kwh).sum()), float((pool_j * kg).sum()),
                    float((pool_j * usd).sum()), float((job_j * kwh).sum()),
                    float(floor_j * kwh.sum()), float(floor_j * kg.sum()), float(floor_j * usd.sum()),
                    missed, hourly)


# ------------------------------------------------------------------------------ checks
def job_problems(jobs: list[TrainingJob], slots: Slots) -> list[tuple[int, str]]:
    """(job_id, reason) for each job that cannot meet its deadline whatever the others do."""
    out: list[tuple[int, str]] = []
    cap = np.asarray(slots.capacity_gpus)
    for job in jobs:
        jr = job_rates(job, slots.idle_w_per_gpu, slots.slot_s)
        lo, hi = max(job.first_slot, 0), min(job.last_slot, slots.n - 1)
        window = max(0, hi - lo + 1)
        need = jr.work / jr.rate.max()
        where = (f"between its submission (hour {job.first_slot}) and its deadline "
                 f"(hour {job.last_slot + 1})")
        if job.gpus > slots.pool_gpus:
            out.append((job.job_id, f"{job.words()} needs {job.gpus} GPUs; the pool has {slots.pool_gpus}"))
            continue
        if window < need - 1e-9:
            out.append((job.job_id, f"{job.words()} cannot finish {where}: it needs {need:.1f} h at full power "
                        f"and the window holds {window} h" + (" (the deadline is past the planning horizon)"
                                                              if job.last_slot >= slots.n else "")))
            continue
        free = int(np.sum(cap[lo:hi + 1] >= job.gpus)) if window else 0
        if free < need - 1e-9:
            out.append((job.job_id, f"{job.words()} cannot finish {where}: it needs {need:.1f} h at full power "
                        f"and only {free} of those {window} h have {job.gpus} GPUs free"))
    return out


# ------------------------------------------------------------------------------ build & solve
@dataclass
class Built:
    model: PlanModel
    jobs: list[TrainingJob]
    slots: Slots
    rates: dict[int, _JobRates]
    p_idx: dict[int, np.ndarray]        # job -> (window, caps) variable indices
    y_idx: dict[int, np.ndarray]
    s_idx: dict[int, np.ndarray]
    window: dict[int, tuple[int, int]]  # job -> (first, last) slot with variables
    objective: str
    build_s: float = 0.0
    z_idx: dict = field(default_factory=dict)   # (job, slot) -> limit indicator variables (power budget only)


def build(jobs: list[TrainingJob], slots: Slots, objective: str = "carbon", weights: dict | None = None,
          ) -> Built:
    """The CP-SAT model of the problem (see the module docstring)."""
    t0 = time.perf_counter()
    if objective not in OBJECTIVES:
        raise TrainingPlanError(f"unknown objective {objective!r}; expected one of {', '.join(OBJECTIVES)}")
    per_j = slots.per_joule(objective, weights)
    m = PlanModel("training schedule", OBJECTIVE_UNITS[objective])
    n = slots.n
    Q = SHARES_PER_SLOT
    rates, p_idx, y_idx, s_idx, window, z_idx = {}, {}, {}, {}, {}, {}
    cap_rows: list[list[int]] = [[] for _ in range(n)]
    cap_coef: list[list[float]] = [[] for _ in range(n)]
    pw_rows: list[list[int]] = [[] for _ in range(n)]
    pw_coef: list[list[float]] = [[] for _ in range(n)]
    for job in jobs:
        jr = job_rates(job, slots.idle_w_per_gpu, slots.slot_s)
        rates[job.job_id] = jr
        lo, hi = _window(job, jr, n)
        window[job.job_id] = (lo, hi)
        L, C = hi - lo + 1, len(jr.caps)
        jid = job.job_id
        caps_ok = np.ones(C, bool) if job.deferrable else (np.arange(C) == C - 1)
        fixed = not job.deferrable
        P = np.zeros((max(L, 0), C), np.int64)
        Y = np.zeros(max(L, 0), np.int64)
        S = np.zeros(max(L, 0), np.int64)
        above = np.array([c.power_w for c in jr.caps]) - job.gpus * slots.idle_w_per_gpu   # W above idle
        for k in range(L):
            t = lo + k
            for c in range(C):
                P[k, c] = m.int_var(0, Q if caps_ok[c] else 0, f"schedule[{jid}][{t}]@{jr.caps[c].cap_w:g}W")
            Y[k] = m.int_var(1 if fixed else 0, 1, f"run[{jid}][{t}]")
            S[k] = m.int_var(1 if (fixed and k == 0) else 0, 0 if (fixed and k > 0) else 1, f"start[{jid}][{t}]")
            # a slot's shares at each limit add up to at most the slot (when the job holds its GPUs)
            m.add("slot", f"slot[{jid}][{t}]", list(P[k]) + [Y[k]], [1.0] * C + [-float(Q)], hi=0.0,
                  desc=f"{job.words()} runs at most the whole of hour {t}", unit="shares", elastic=False)
            # the GPUs are held only to run: some share in the slot, and the whole slot if the
            # block goes on in the next one (a block runs without gaps, as the simulation does)
            m.add("slot", f"used[{jid}][{t}]", list(P[k]) + [Y[k]], [1.0] * C + [-1.0], lo=0.0,
                  desc=f"{job.words()} holds its GPUs in hour {t} only to run", unit="shares", elastic=False)
            if k > 0:
                m.add("slot", f"full[{jid}][{t - 1}]", list(P[k - 1]) + [Y[k - 1], Y[k]],
                      [1.0] * C + [-float(Q), -float(Q)], lo=-float(Q),
                      desc=f"{job.words()} runs all of hour {t - 1} when it runs on into hour {t}", unit="shares",
                      elastic=False)
            prev = [Y[k - 1]] if k > 0 else []
            m.add("start", f"start[{jid}][{t}]", [Y[k], S[k]] + prev, [1.0, -1.0] + [-1.0] * len(prev), hi=0.0,
                  desc=f"{job.words()} starts a run block in hour {t} if it runs then and not before",
                  elastic=False)
            cap_rows[t].append(Y[k])
            cap_coef[t].append(float(job.gpus))
            if slots.power_budget_w is not None:
                # under a power budget: one limit per slot (z), so the budget holds the peak draw
                Z = [m.bool_var(f"limit[{jid}][{t}]@{jr.caps[c].cap_w:g}W") for c in range(C)]
                for c in range(C):
                    m.add("slot", f"limit[{jid}][{t}][{c}]", [P[k, c], Z[c]], [1.0, -float(Q)], hi=0.0,
                          desc=f"{job.words()} runs at {jr.caps[c].cap_w:g} W in hour {t} only if that is its "
                               f"limit then", elastic=False)
                m.add("slot", f"one_limit[{jid}][{t}]", Z, [1.0] * C, hi=1.0,
                      desc=f"{job.words()} has one power limit in hour {t}", elastic=False)
                z_idx[(jid, t)] = Z
                pw_rows[t].extend(Z)
                pw_coef[t].extend(list(above))
            # objective: energy above idle of each share x the slot's signal; an extra block's restart
            m.minimize(P[k], above * slots.slot_s / Q * per_j[t])
            if job.restart_j > 0:
                m.minimize([S[k]], [job.restart_j * per_j[t]])
        p_idx[jid], y_idx[jid], s_idx[jid] = P, Y, S
        deadline = (f"between its submission (hour {job.first_slot}) and its deadline (hour {job.last_slot + 1})"
                    if job.deferrable else f"starting at its submission (hour {lo}), not deferrable")
        # in units x shares (integer coefficients: the row is exact)
        idx = np.concatenate([P.ravel(), S])
        coef = list(np.tile(jr.rate.astype(float), max(L, 0))) + [-float(jr.ovh * Q)] * len(S)
        m.add("work", f"work[{jid}]", idx, coef, lo=float((jr.work - jr.ovh) * Q),
              desc=f"{job.words()} must finish {deadline}", unit="units", show=1.0 / (UNITS_PER_SLOT * Q),
              shown_unit="h at full power")
        if not job.interruptible or not job.deferrable:
            m.add("contiguous", f"contiguous[{jid}]", list(S), [1.0] * len(S), hi=1.0,
                  desc=f"{job.words()} is not interruptible: it runs in one block", unit="blocks")
    for t in range(n):
        if cap_rows[t]:
            m.add("gpus", f"gpus[{t}]", cap_rows[t], cap_coef[t], hi=float(slots.capacity_gpus[t]),
                  desc=f"the pool's {int(slots.capacity_gpus[t])} GPUs in hour {t}", unit="GPUs")
        if slots.power_budget_w is not None and pw_rows[t]:
            m.add("power", f"power[{t}]", pw_rows[t], pw_coef[t], hi=float(slots.power_budget_w[t]),
                  desc=f"the power budget left to training in hour {t} ({slots.power_budget_w[t] / 1e3:.1f} kW "
                       f"above idle)", unit="W", show=1e-3, shown_unit="kW")
    # the idle floor: every GPU of the pool at idle over the horizon (a constant)
    m.objective_offset = float(slots.pool_gpus * slots.idle_w_per_gpu * slots.slot_s * per_j.sum())
    return Built(m, jobs, slots, rates, p_idx, y_idx, s_idx, window, objective, time.perf_counter() - t0, z_idx)


def _window(job: TrainingJob, jr: _JobRates, n: int) -> tuple[int, int]:
    lo, hi = max(job.first_slot, 0), min(job.last_slot, n - 1)
    if not job.deferrable:
        hi = min(hi, lo + int(math.ceil(jr.work / jr.rate[-1])) - 1)
    return lo, max(hi, lo - 1)


def shares_of(sched: Schedule, built: Built) -> dict[int, np.ndarray]:
    """Slot shares (in 1/SHARES_PER_SLOT) per job of a schedule, shares[job][slot, cap]: rounded so
    that no slot holds more than SHARES_PER_SLOT and the job's work is still covered."""
    Q = SHARES_PER_SLOT
    out = {j.job_id: np.zeros((built.slots.n, len(built.rates[j.job_id].caps)), np.int64) for j in built.jobs}
    for r in sched.rows.itertuples(index=False):
        caps = [c.cap_w for c in built.rates[int(r.job_id)].caps]
        out[int(r.job_id)][int(r.slot), caps.index(float(r.cap_w))] = int(math.floor(float(r.fraction) * Q + 1e-6))
    for job in built.jobs:
        jr = built.rates[job.job_id]
        q = out[job.job_id]
        held = q.sum(axis=1) > 0
        nb = int(np.sum(held & ~np.concatenate([[False], held[:-1]])))
        need = jr.work + jr.ovh * max(0, nb - 1)
        deficit = need - float((q * jr.rate[None, :]).sum()) / Q
        for t in np.flatnonzero(held):
            if deficit <= 1e-9:
                break
            room = Q - int(q[t].sum())
            if room <= 0:
                continue
            c = int(np.argmax(q[t] * 0 + jr.rate)) if q[t].sum() == 0 else int(np.flatnonzero(q[t])[-1])
            add = min(room, int(math.ceil(deficit * Q / jr.rate[c] - 1e-9)))
            q[t, c] += add
            deficit -= add * jr.rate[c] / Q
        # every held slot full (the rounding down took a share from each): move shares to the
        # fastest limit instead
        top = int(np.argmax(jr.rate))
        for t in np.flatnonzero(held):
            for c in np.argsort(jr.rate):
                if deficit <= 1e-9:
                    break
                gain = int(jr.rate[top] - jr.rate[c])
                if c == top or q[t, c] <= 0 or gain <= 0:
                    continue
                mv = min(int(q[t, c]), int(math.ceil(deficit * Q / gain - 1e-9)))
                q[t, c] -= mv
                q[t, top] += mv
                deficit -= mv * gain / Q
        # a block runs without gaps: every slot but a block's last is whole (topped up at its limit)
        for t in np.flatnonzero(held[:-1] & held[1:]):
            room = Q - int(q[t].sum())
            if room > 0:
                q[t, int(np.argmax(q[t]))] += room
    return out


def hint_from(built: Built, sched: Schedule) -> np.ndarray:
    """A solution vector (hint) from a schedule (e.g. the FCFS baseline or the greedy one)."""
    v = np.zeros(built.model.n_vars, np.int64)
    sh = shares_of(sched, built)
    for job in built.jobs:
        lo, hi = built.window[job.job_id]
        if hi < lo:
            continue
        q = sh[job.job_id][lo:hi + 1]
        v[built.p_idx[job.job_id]] = q
        held = q.sum(axis=1) > 0
        v[built.y_idx[job.job_id]] = held
        v[built.s_idx[job.job_id]] = held & ~np.concatenate([[False], held[:-1]])
        for k in range(hi - lo + 1):
            z = built.z_idx.get((job.job_id, lo + k))
            if z is not None:
                v[z] = q[k] > 0
    return v


def _trim(job: TrainingJob, jr: _JobRates, units: np.ndarray) -> np.ndarray:
    """Work units per (slot, cap) cut at the job's completion (a job stops when its work is done:
    its last share is only partly used)."""
    held = units.sum(axis=1) > 0
    nb = int(np.sum(held & ~np.concatenate([[False], held[:-1]])))
    need = jr.work + jr.ovh * max(0, nb - 1)
    out = np.zeros_like(units, dtype=float)
    left = float(need)
    for t in np.flatnonzero(held):
        for c in np.argsort([-cp.cap_w for cp in jr.caps]):      # higher limit first, as applied
            u = float(units[t, c])
            if u <= 0 or left <= 0:
                continue
            take = min(u, left)
            out[t, c] = take
            left -= take
    return out


def decode(built: Built, sol: Solution | np.ndarray, name: str = "plan") -> Schedule:
    vals = sol.values if isinstance(sol, Solution) else np.asarray(sol)
    work = {}
    blocks = {}
    for job in built.jobs:
        lo, hi = built.window[job.job_id]
        jr = built.rates[job.job_id]
        w = np.zeros((built.slots.n, len(jr.caps)))
        if hi >= lo:
            q = vals[built.p_idx[job.job_id]].astype(float)
            w[lo:hi + 1] = q * jr.rate[None, :] / SHARES_PER_SLOT
            blocks[job.job_id] = int(vals[built.s_idx[job.job_id]].sum())
        work[job.job_id] = _trim(job, jr, w)
    return evaluate(name, built.jobs, built.slots, work, blocks)


def _insert(job: TrainingJob, jr: _JobRates, lo: int, hi: int, free: np.ndarray, budget: np.ndarray | None,
            slots: Slots, per_j: np.ndarray) -> np.ndarray | None:
    """The job's cheapest work (units[slot in lo..hi, cap]) in the slots where its GPUs (and its
    draw) still fit: the LP fill for an interruptible job (repeated until its restarts are paid
    for), the best single block otherwise."""
    if hi < lo:
        return None
    C = len(jr.caps)
    above = np.array([c.power_w for c in jr.caps]) - job.gpus * slots.idle_w_per_gpu
    rate = np.tile(jr.rate.astype(float), (hi - lo + 1, 1))
    if not job.deferrable:
        rate[:, :-1] = 0
    rate[free[lo:hi + 1] < job.gpus] = 0
    if budget is not None:
        rate[above[None, :] > budget[lo:hi + 1, None] + 1e-9] = 0
    cost = jr.marg_j_per_unit[None, :] * per_j[lo:hi + 1, None]
    if job.interruptible and job.deferrable:
        need, f = jr.work, None
        for _ in range(4):
            f = _lp_fill(cost, rate, need)
            if f is None:
                return None
            held = f.sum(axis=1) > 1e-9
            nb = int(np.sum(held & ~np.concatenate([[False], held[:-1]])))
            if need >= jr.work + jr.ovh * max(0, nb - 1):
                return f
            need = jr.work + jr.ovh * max(0, nb - 1)
        return None
    # one block: whole slots from its start at one limit, the last slot partly (as the model and
    # the simulation run a block: no gaps); the cheapest start and limit
    best, bval = None, math.inf
    W = hi - lo + 1
    for c in range(C):
        if jr.rate[c] <= 0:
            continue
        k = int(math.ceil(jr.work / jr.rate[c] - 1e-12))
        ok = rate[:, c] > 0
        for s0 in range(0, W - k + 1):
            if not ok[s0:s0 + k].all():
                continue
            g = np.zeros((W, C))
            g[s0:s0 + k, c] = jr.rate[c]
            g[s0 + k - 1, c] = jr.work - jr.rate[c] * (k - 1)
            v = float((g[s0:s0 + k, c] * cost[s0:s0 + k, c]).sum())
            if v < bval:
                bval, best = v, g
    return best


def _draw(job: TrainingJob, jr: _JobRates, w: np.ndarray, idle_w: float) -> np.ndarray:
    above = np.array([c.power_w for c in jr.caps]) - job.gpus * idle_w
    return (w / np.maximum(jr.rate, 1)[None, :] * above[None, :]).sum(axis=1)


def greedy(jobs: list[TrainingJob], slots: Slots, objective: str = "carbon", weights: dict | None = None,
           passes: int = 3, why: list[str] | None = None, retries: int = 8) -> Schedule | None:
    """A quick feasible schedule (the solver's first hint): jobs with the least slack first, each
    into its own cheapest hours among those with its GPUs (and power) still free, at its best
    limits (a job that finds no room moves to the front, up to ``retries`` times); then ``passes``
    rounds of taking each job out and putting it back where it is cheapest given the others.
    None if some job does not fit that way (then ``why``, if given, gets that job in the job
    table's words)."""
    per_j = slots.per_joule(objective, weights)
    n = slots.n
    free = np.asarray(slots.capacity_gpus, float).copy()
    budget = None if slots.power_budget_w is None else np.asarray(slots.power_budget_w, float).copy()
    info = []
    for job in jobs:
        jr = job_rates(job, slots.idle_w_per_gpu, slots.slot_s)
        lo, hi = _window(job, jr, n)
        slack = (hi - lo + 1) - jr.work / jr.rate.max()
        info.append((slack, -job.gpus, job.job_id, job, jr, lo, hi))
    info.sort(key=lambda x: x[:3])
    alloc: dict[int, np.ndarray] = {}

    def take(job, jr, lo, w, sign):
        held = w.sum(axis=1) > 1e-9
        free[lo:lo + len(w)][held] -= sign * job.gpus
        if budget is not None:
            budget[lo:lo + len(w)] -= sign * _draw(job, jr, w, slots.idle_w_per_gpu)

    # a job that finds no room (small jobs in the cheap hours fragment the pool for a large block)
    # goes to the front and the placement starts over, at most ``retries`` times
    for attempt in range(retries + 1):
        failed = None
        for k, (_, _, _, job, jr, lo, hi) in enumerate(info):
            w = _insert(job, jr, lo, hi, free, budget, slots, per_j)
            if w is None:
                failed = k
                break
            alloc[job.job_id] = w
            take(job, jr, lo, w, +1)
        if failed is None:
            break
        job = info[failed][3]
        if attempt == retries or failed == 0:
            if why is not None:
                why.append(f"{job.words()} found no room between its submission (hour {job.first_slot}) and "
                           f"its deadline (hour {job.last_slot + 1}) after {failed} other jobs were placed "
                           f"(first schedule: least slack first, {attempt} jobs that found no room moved ahead)")
            return None
        for _, _, _, j2, jr2, lo2, _ in info[:failed]:
            take(j2, jr2, lo2, alloc.pop(j2.job_id), -1)
        info.insert(0, info.pop(failed))
    for _ in range(passes):
        better = False
        for _, _, _, job, jr, lo, hi in sorted(info, key=lambda x: -x[0]):
            old = alloc[job.job_id]
            cost = jr.marg_j_per_unit[None, :] * per_j[lo:hi + 1, None]
            take(job, jr, lo, old, -1)
            w = _insert(job, jr, lo, hi, free, budget, slots, per_j)
            if w is not None and float((w * cost).sum()) < float((old * cost).sum()) * (1 - 1e-9) - 1e-12:
                alloc[job.job_id] = w
                better = True
            take(job, jr, lo, alloc[job.job_id], +1)
        if not better:
            break
    work = {}
    for _, _, _, job, jr, lo, hi in info:
        w = np.zeros((n, len(jr.caps)))
        w[lo:hi + 1] = alloc[job.job_id]
        work[job.job_id] = w
    return evaluate("greedy", jobs, slots, work)


@dataclass
class PlanResult:
    schedule: Schedule | None
    solution: Solution | None
    built: Built | None
    baseline: Schedule
    bound: Schedule | None
    bound_shift_only: Schedule | None
    objective: str
    conflicts: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: jobs left out because they cannot meet their deadline whatever the others do
    #: (``plan(drop_infeasible=True)``): job_id -> why, in the job table's words
    dropped: dict[int, str] = field(default_factory=dict)
    hint_from: str = ""                     # the first schedule offered to the solver ('' if none)

    @property
    def ok(self) -> bool:
        return self.schedule is not None

    def metrics(self) -> dict:
        """The --json figures (plain numbers)."""
        b, s, bd = self.baseline, self.schedule, self.bound
        out = {"objective": self.objective, "baseline_carbon_kg": b.carbon_kg, "baseline_cost_usd": b.cost_usd,
               "baseline_energy_kwh": b.energy_kwh, "baseline_deadlines_missed": len(b.deadlines_missed)}
        if bd is not None:
            out.update({"bound_carbon_kg": bd.carbon_kg, "bound_cost_usd": bd.cost_usd,
                        "bound_energy_kwh": bd.energy_kwh})
        if s is not None:
            key = {"carbon": "carbon_kg", "cost": "cost_usd", "energy": "energy_kwh"}.get(self.objective, "carbon_kg")
            base, plan = getattr(b, key), getattr(s, key)
            bnd = getattr(bd, key) if bd is not None else math.nan
            floor = {"carbon_kg": b.floor_carbon_kg, "cost_usd": b.floor_cost_usd,
                     "energy_kwh": b.floor_energy_kwh}[key]
            out.update({"carbon_kg": s.carbon_kg, "cost_usd": s.cost_usd, "energy_kwh": s.energy_kwh,
                        "deadlines_missed": len(s.deadlines_missed),
                        "saving_pct": 100.0 * (base - plan) / base if base else 0.0,
                        "saving_above_idle_pct": 100.0 * (base - plan) / (base - floor) if base > floor else 0.0,
                        "bound_saving_pct": 100.0 * (base - bnd) / base if base else 0.0,
                        "bound_capture_pct": (100.0 * (base - plan) / (base - bnd) if base - bnd > 1e-9 * abs(base)
                                              else 100.0),
                        "saving_of": key, "idle_floor": floor})
            if self.bound_shift_only is not None:
                out["bound_shift_only_" + key] = getattr(self.bound_shift_only, key)
        if self.solution is not None:
            out["solver"] = self.solution.figures()
        if self.dropped:
            out["jobs_dropped"] = [{"job_id": k, "why": v} for k, v in sorted(self.dropped.items())]
        return out


def fcfs_baseline(jobs: list[TrainingJob], slots: Slots) -> Schedule:
    """Every job at submission at full power, in submission order (priority first), first fit:
    the earliest start at or after its first slot where its GPUs are free for its whole run."""
    n = slots.n
    free = np.asarray(slots.capacity_gpus, dtype=float).copy()
    work = {}
    order = sorted(jobs, key=lambda j: (-j.priority, j.submit_s, j.job_id))
    for job in order:
        jr = job_rates(job, slots.idle_w_per_gpu, slots.slot_s)
        C = len(jr.caps)
        need = int(math.ceil(jr.work / jr.rate[-1]))
        w = np.zeros((n, C), np.int64)
        start = None
        for t in range(max(job.first_slot, 0), n - need + 1):
            if np.all(free[t:t + need] >= job.gpus):
                start = t
                break
        if start is None:
            start = min(max(job.first_slot, 0), max(n - need, 0))   # runs over capacity: counted as is
        left = jr.work
        for t in range(start, min(start + need, n)):
            u = min(left, int(jr.rate[-1]))
            w[t, C - 1] = u
            left -= u
            free[t] -= job.gpus
        work[job.job_id] = w
    return evaluate("fcfs", jobs, slots, work)


def _lp_fill(cost: np.ndarray, rate: np.ndarray, need: int) -> np.ndarray | None:
    """Cheapest work (units[slot, cap]) of ``need`` units over slots whose cost per unit at each
    cap is ``cost[slot, cap]``, a slot's share at most 1 (the LP relaxation, solved exactly by
    filling the lower convex hull of each slot's (work, cost) options in order of slope)."""
    L, C = cost.shape
    if L == 0:
        return None
    rate = np.broadcast_to(np.asarray(rate, dtype=float), cost.shape)
    seg_slot, seg_from, seg_to, seg_slope, seg_len = [], [], [], [], []
    for t in range(L):
        pts = sorted([(0, 0.0, -1)] + [(float(rate[t, c]), float(cost[t, c] * rate[t, c]), c) for c in range(C)
                                          if rate[t, c] > 0])
        hull = [pts[0]]
        for p in pts[1:]:
            if p[0] == hull[-1][0]:
                if p[1] < hull[-1][1]:
                    hull[-1] = p
                continue
            while len(hull) >= 2:
                (x1, y1, _), (x2, y2, _) = hull[-2], hull[-1]
                if (y2 - y1) * (p[0] - x1) >= (p[1] - y1) * (x2 - x1):
                    hull.pop()
                else:
                    break
            hull.append(p)
        # only the decreasing-slope part matters (work is always wanted): keep convex segments
        for a, b in zip(hull[:-1], hull[1:]):
            seg_slot.append(t)
            seg_from.append(a[2])
            seg_to.append(b[2])
            seg_slope.append((b[1] - a[1]) / (b[0] - a[0]))
            seg_len.append(b[0] - a[0])
    order = np.argsort(np.asarray(seg_slope), kind="stable")
    # frac[t][c]: share of slot t at cap c
    frac = np.zeros((L, C))
    left = float(need)
    tol = 1e-9 * max(float(need), 1.0)
    for i in order:
        if left <= tol:
            break
        t, c0, c1, ln = seg_slot[i], seg_from[i], seg_to[i], seg_len[i]
        take = min(1.0, left / ln)
        # moving along the segment from option c0 to c1: share of c1 grows, of c0 shrinks
        if c0 >= 0:
            frac[t, c0] -= take
        frac[t, c1] += take
        left -= take * ln
    if left > 1e-6:
        return None
    frac[np.abs(frac) < 1e-12] = 0.0      # cancellations of the hull walk (c0 -> c1) leave dust
    return frac * rate


def perfect_foresight_bound(jobs: list[TrainingJob], slots: Slots, objective: str = "carbon",
                            weights: dict | None = None, shift_only: bool = False) -> Schedule:
    """Each job alone in its own cheapest hours (at its best limits; at full power with
    ``shift_only``), ignoring the pool's capacity, the power budget and restart costs: a lower
    bound on any schedule.  Interruptible jobs: the LP over their window; non-interruptible
    ones: the best window of the length their slowest limit needs (the LP inside it)."""
    per_j = slots.per_joule(objective, weights)
    n = slots.n
    work = {}
    for job in jobs:
        jr = job_rates(job, slots.idle_w_per_gpu, slots.slot_s)
        C = len(jr.caps)
        rate = jr.rate.copy()
        if shift_only or not job.deferrable:
            rate[:-1] = 0
        lo, hi = max(job.first_slot, 0), min(job.last_slot, n - 1)
        w = np.zeros((n, C))
        if not job.deferrable:
            hi = min(hi, lo + int(math.ceil(jr.work / rate[-1])) - 1)
        if hi >= lo:
            cost = jr.marg_j_per_unit[None, :] * per_j[lo:hi + 1, None]
            best = None
            if job.interruptible and job.deferrable:
                best = (0, _lp_fill(cost, rate, jr.work))
            else:
                Lmax = int(math.ceil(jr.work / max(rate[rate > 0].min(), 1)))
                Lmin = int(math.ceil(jr.work / rate.max()))
                bval = math.inf
                for s in range(0, hi - lo + 1 - Lmin + 1):
                    L = min(Lmax, hi - lo + 1 - s)
                    f = _lp_fill(cost[s:s + L], rate, jr.work)
                    if f is None:
                        continue
                    v = float((f * cost[s:s + L]).sum())
                    if v < bval:
                        bval, best = v, (s, f)
            if best is not None:
                s, f = best
                if f is not None:
                    w[lo + s:lo + s + f.shape[0]] = f
        work[job.job_id] = w
    # fractional units are fine for a bound: evaluate with float work
    sch = evaluate("bound (shift only)" if shift_only else "bound", jobs, slots,
                   {k: v for k, v in work.items()}, {j.job_id: 1 for j in jobs})
    return sch


def plan(jobs: list[TrainingJob], slots: Slots, *, objective: str = "carbon", weights: dict | None = None,
         time_limit_s: float = 30.0, workers: int = 1, seed: int = 0, bounds: bool = True,
         raise_on_infeasible: bool = False, drop_infeasible: bool = False) -> PlanResult:
    """Baseline, bound, and the CP-SAT schedule, started from the cheaper of the greedy schedule
    and the baseline among those the model accepts (every deadline met, capacity and power
    held); the solver's schedule is kept only where it is better than that first one.
    Infeasible problems come back with ``conflicts`` in the job table's words;
    ``drop_infeasible``: a job that cannot meet its deadline whatever the others do is left out
    (named in ``dropped`` and ``notes``) and the others are planned (baseline and bounds too)."""
    if not jobs:
        raise TrainingPlanError("no training jobs to plan")
    dropped: dict[int, str] = {}
    pre = job_problems(jobs, slots)
    if pre and drop_infeasible and not raise_on_infeasible:
        dropped = dict(pre)
        jobs = [j for j in jobs if j.job_id not in dropped]
        pre = []
        if not jobs:
            raise TrainingPlanError("no training job can meet its deadline: " + "; ".join(dropped.values()))
    notes = [f"left out (cannot meet its deadline): {v}" for _, v in sorted(dropped.items())]
    base = fcfs_baseline(jobs, slots)
    bound = perfect_foresight_bound(jobs, slots, objective, weights) if bounds else None
    shift = perfect_foresight_bound(jobs, slots, objective, weights, shift_only=True) if bounds else None
    if pre:
        msgs = [m for _, m in pre]
        if raise_on_infeasible:
            raise InfeasibleError("training schedule: no plan meets every deadline", msgs)
        return PlanResult(None, None, None, base, bound, shift, objective, msgs, notes, dropped)
    built = build(jobs, slots, objective, weights)
    why: list[str] = []
    gr = greedy(jobs, slots, objective, weights, why=why)
    # the first schedule: the model itself judges it (rounded to the solver's shares), not the
    # schedule's own accounting; the cheaper valid one of the greedy and the baseline
    hint, hint_name = None, ""
    for cand in (gr, base):
        if cand is None:
            continue
        h = hint_from(built, cand)
        if built.model.check(h):
            continue
        if hint is None or built.model.objective_value(h) < built.model.objective_value(hint):
            hint, hint_name = h, cand.name
    # deterministic time: a time-limited schedule is the same on every machine (one worker)
    sol = built.model.solve(time_limit_s=time_limit_s, workers=workers, seed=seed, hint=hint,
                            deterministic=workers == 1)
    if hint is not None and sol.status != "INFEASIBLE":
        hv = built.model.objective_value(hint)
        if not sol.ok or hv < sol.objective - 1e-9 * abs(hv):
            # the solver found nothing better in time than the first schedule: keep that (FEASIBLE,
            # with the solver's bound if it has one)
            b0 = sol.bound if sol.ok and math.isfinite(sol.bound) else math.nan
            sol = replace(sol, status="FEASIBLE", values=hint, objective=hv, bound=min(b0, hv) if b0 == b0 else b0,
                          gap=gap_of(hv, min(b0, hv)) if b0 == b0 else math.nan)
    if sol.ok and bound is not None and sol.status != "OPTIMAL":
        # the per-job bound is a lower bound too: report the gap to the tighter of the two
        pb = objective_of(bound, objective, weights)
        b0 = sol.bound if math.isfinite(sol.bound) else -math.inf
        if pb > b0:
            sol = replace(sol, bound=min(pb, sol.objective), gap=gap_of(sol.objective, min(pb, sol.objective)))
    if not sol.ok:
        conflicts: list[str] = []
        if sol.status == "INFEASIBLE":
            ex = built.model.explain(time_limit_s=time_limit_s, workers=workers, seed=seed)
            conflicts = ex.lines() or [ex.note]
        else:
            conflicts = [f"no schedule found within the time limit ({time_limit_s:g} s): {sol.status}"] + why
        if raise_on_infeasible:
            raise InfeasibleError("training schedule: no plan meets every deadline", conflicts)
        return PlanResult(None, sol, built, base, bound, shift, objective, conflicts, notes, dropped, hint_name)
    sched = decode(built, sol)
    return PlanResult(sched, sol, built, base, bound, shift, objective, [], notes, dropped, hint_name)


def objective_of(sched: Schedule, objective: str, weights: dict | None = None) -> float:
    """A schedule's figure in the objective's unit."""
    if objective == "weighted":
        w = weights or {}
        return (w.get("energy", 0.0) * sched.energy_kwh + w.get("carbon", 0.0) * sched.carbon_kg
                + w.get("cost", 0.0) * sched.cost_usd)
    return {"carbon": sched.carbon_kg, "cost": sched.cost_usd, "energy": sched.energy_kwh}[objective]


def derate(jobs: list[TrainingJob], factor: float) -> list[TrainingJob]:
    """Jobs whose work is ``factor`` (> 1) times larger: a tightened plan after the simulation
    found a job slower than planned."""
    return [replace(j, steps=int(math.ceil(j.steps * factor))) for j in jobs]
