"""The planner's shared core: a linear integer model kept as data, built into OR-Tools CP-SAT,
solved, checked and explained.

Every decision model in ``fleet.plan`` (operate, mix, training, power) is written against
:class:`PlanModel`:

1. **build**: named integer/boolean variables (named after the scenario paths they decide, e.g.
   ``fleet.pools[h100].power_cap_w=350`` or ``schedule[h100][14]``) and linear constraints, each in
   a named *group* with a sentence in the scenario's words (``row0 power budget in hour 14``);
   the caller may add its own constraints before solving (PyPSA's ``create_model`` pattern);
2. **solve**: the data is turned into a CP-SAT model; float coefficients are scaled to integers
   at a stated resolution, rounding in the *conservative* direction (a solution of the integer
   model satisfies the real one), and the largest rounding is recorded; the result carries
   status, objective, best bound, gap, wall time, solver version, workers and seed;
3. **check**: the returned solution is re-evaluated in floating point against every constraint
   and the objective (OR-Tools GitHub #3639: never trust a status blindly);
4. **explain**: an infeasible model is re-solved *elastically* (one slack per constraint, a
   penalty for each constraint that needs one, then for the amount), which names the fewest
   constraints that must give way and by how much; the answer is confirmed by re-solving with
   only those constraints dropped (OR-Tools GitHub #5141: cores are not trusted as they come).

CP-SAT and not MathOpt/HiGHS: every decision here is an integer (replicas, GPUs, on/off slots),
the continuous quantities (W, USD, g) are data, and CP-SAT gives a proven bound and gap with a
reliable time limit (HiGHS through pywraplp ignores time limits, issues 4747 and 5016).
Determinism: one worker and a fixed seed by default, so the same scenario gives the same plan
(more workers are faster on large models but may return a different plan among equal optima).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable, Sequence

import numpy as np

from ..errors import FleetError, InfeasibleError

#: integer coefficients are scaled so that the largest one in a row is about this large (the
#: relative rounding of any coefficient is then at most 1 / (2 x this) of the row's largest)
COEF_TARGET = 1_000_000
#: HiGHS's relative MIP gap tolerance: a solve stops as OPTIMAL once proven within it
HIGHS_GAP = 1e-4
#: default solver time limit (s)
DEFAULT_TIME_LIMIT_S = 30.0

STATUS_NAMES = ("OPTIMAL", "FEASIBLE", "INFEASIBLE", "UNKNOWN", "MODEL_INVALID")


class PlanError(FleetError):
    """A plan that could not be made (no solution within the time limit, a model error)."""


@dataclass(frozen=True)
class Constraint:
    """``lo <= sum(coef[i] * x[idx[i]]) <= hi`` (one side may be infinite), with its words.

    ``desc`` is a sentence in the scenario's words ("row0 power budget (6.5 kW) in hour 14");
    ``unit`` is the unit of the row (W, req/s, GPUs); ``show`` converts a value of the row into
    the unit it is shown in (e.g. W -> kW: ``1e-3`` with ``shown_unit='kW'``)."""

    group: str
    name: str
    idx: np.ndarray
    coef: np.ndarray
    lo: float
    hi: float
    desc: str
    unit: str = ""
    show: float = 1.0
    shown_unit: str | None = None
    elastic: bool = True
    offset: float = 0.0      # added to the row and its bounds when shown (a constant moved to the right-hand side)

    def lhs(self, values: np.ndarray) -> float:
        return float(np.dot(self.coef, values[self.idx].astype(float)))

    def violation(self, values: np.ndarray, tol: float = 1e-9) -> float:
        v = self.lhs(values)
        scale = max(1.0, float(np.max(np.abs(self.coef))) if len(self.coef) else 1.0,
                    abs(self.lo) if math.isfinite(self.lo) else 0.0, abs(self.hi) if math.isfinite(self.hi) else 0.0)
        over = max(0.0, v - self.hi) if math.isfinite(self.hi) else 0.0
        under = max(0.0, self.lo - v) if math.isfinite(self.lo) else 0.0
        d = max(over, under)
        return d if d > tol * scale else 0.0

    def fmt(self, x: float) -> str:
        u = self.shown_unit if self.shown_unit is not None else self.unit
        return f"{x * self.show:.4g}" + (f" {u}" if u else "")


@dataclass(frozen=True)
class SolverInfo:
    name: str
    version: str
    workers: int
    seed: int
    time_limit_s: float


@dataclass
class Solution:
    """What a solve returns.  ``objective`` and ``bound`` are in the objective's own unit
    (re-evaluated in floating point from the true coefficients; the integer model's own figures
    are ``objective_int``/``bound_int`` at ``objective_resolution`` units per integer step)."""

    status: str
    objective: float
    bound: float
    gap: float
    wall_s: float
    values: np.ndarray
    solver: SolverInfo
    objective_unit: str
    objective_resolution: float
    objective_int: int | None = None
    bound_int: int | None = None
    max_rounding: dict[str, float] = field(default_factory=dict)   # group -> largest relative rounding
    violations: list[str] = field(default_factory=list)             # from the float re-check (should be empty)
    names: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status in ("OPTIMAL", "FEASIBLE")

    def value(self, i: int) -> int:
        return int(self.values[i])

    def by_name(self) -> dict[str, int]:
        return {n: int(v) for n, v in zip(self.names, self.values)}

    def figures(self) -> dict:
        """The solver's figures as plain numbers (for JSON and the report)."""
        return {"status": self.status, "objective": _num(self.objective), "bound": _num(self.bound),
                "gap": _num(self.gap), "solve_s": round(self.wall_s, 4), "objective_unit": self.objective_unit,
                "objective_resolution": self.objective_resolution, "solver": self.solver.name,
                "solver_version": self.solver.version, "workers": self.solver.workers, "seed": self.solver.seed,
                "time_limit_s": self.solver.time_limit_s,
                "max_rounding": {k: _num(v) for k, v in self.max_rounding.items()},
                "violations": list(self.violations)}


def _num(x: float) -> float | None:
    x = float(x)
    return x if math.isfinite(x) else None


@dataclass
class Conflict:
    """One constraint that must give way for the model to be feasible, and by how much."""

    group: str
    name: str
    desc: str
    amount: float            # in the row's unit
    text: str


@dataclass
class Explanation:
    conflicts: list[Conflict]
    confirmed: bool          # re-solved with only these constraints dropped: feasible
    note: str = ""

    def lines(self) -> list[str]:
        return [c.text for c in self.conflicts]


class PlanModel:
    """A linear integer model as data (see the module docstring)."""

    def __init__(self, name: str, objective_unit: str = ""):
        self.name = name
        self.objective_unit = objective_unit
        self.names: list[str] = []
        self.lb: list[int] = []
        self.ub: list[int] = []
        self.constraints: list[Constraint] = []
        self._by_name: dict[str, int] = {}
        self._obj_idx: list[np.ndarray] = []
        self._obj_coef: list[np.ndarray] = []
        self.objective_offset = 0.0

    # ------------------------------------------------------------------ variables
    def int_var(self, lo: int, hi: int, name: str) -> int:
        if name in self._by_name:
            raise ValueError(f"duplicate variable name {name!r}")
        if int(lo) > int(hi):
            raise ValueError(f"variable {name!r}: lower bound {lo} above upper bound {hi}")
        self._by_name[name] = len(self.names)
        self.names.append(name)
        self.lb.append(int(lo))
        self.ub.append(int(hi))
        return len(self.names) - 1

    def bool_var(self, name: str) -> int:
        return self.int_var(0, 1, name)

    def var(self, name: str) -> int:
        return self._by_name[name]

    @property
    def n_vars(self) -> int:
        return len(self.names)

    # ------------------------------------------------------------------ constraints
    def add(self, group: str, name: str, idx: Sequence[int] | np.ndarray, coef: Sequence[float] | np.ndarray,
            lo: float = -math.inf, hi: float = math.inf, desc: str = "", *, unit: str = "", show: float = 1.0,
            shown_unit: str | None = None, elastic: bool = True, offset: float = 0.0) -> Constraint:
        idx_a = np.asarray(idx, dtype=np.int64)
        coef_a = np.asarray(coef, dtype=float)
        if idx_a.shape != coef_a.shape:
            raise ValueError(f"constraint {name!r}: {len(idx_a)} variables but {len(coef_a)} coefficients")
        if not np.all(np.isfinite(coef_a)):
            raise ValueError(f"constraint {name!r}: non-finite coefficient")
        if math.isnan(lo) or math.isnan(hi) or lo > hi:
            raise ValueError(f"constraint {name!r}: bounds [{lo}, {hi}]")
        c = Constraint(group, name, idx_a, coef_a, float(lo), float(hi), desc or name, unit, show, shown_unit,
                       elastic, float(offset))
        self.constraints.append(c)
        return c

    def minimize(self, idx: Sequence[int] | np.ndarray, coef: Sequence[float] | np.ndarray) -> None:
        """Add terms to the objective (minimised); call several times to add more."""
        idx_a = np.asarray(idx, dtype=np.int64)
        coef_a = np.asarray(coef, dtype=float)
        if not np.all(np.isfinite(coef_a)):
            raise ValueError("non-finite objective coefficient")
        self._obj_idx.append(idx_a)
        self._obj_coef.append(coef_a)

    def clear_objective(self) -> None:
        """Drop every objective term and the offset (to minimise something else on the same model,
        e.g. the epsilon-constraint method of a Pareto front)."""
        self._obj_idx.clear()
        self._obj_coef.clear()
        self.objective_offset = 0.0

    def objective_terms(self) -> tuple[np.ndarray, np.ndarray]:
        """(variable index, coefficient) of the objective, duplicates summed."""
        if not self._obj_idx:
            return np.zeros(0, np.int64), np.zeros(0)
        idx = np.concatenate(self._obj_idx)
        coef = np.concatenate(self._obj_coef)
        out = np.zeros(self.n_vars)
        np.add.at(out, idx, coef)
        nz = np.flatnonzero(out)
        return nz, out[nz]

    def objective_value(self, values: np.ndarray) -> float:
        idx, coef = self.objective_terms()
        return float(np.dot(coef, values[idx].astype(float))) + self.objective_offset

    def check(self, values: np.ndarray) -> list[str]:
        """Every constraint and bound re-evaluated in floating point: the violated ones, in words."""
        out = []
        v = np.asarray(values)
        lb, ub = np.asarray(self.lb), np.asarray(self.ub)
        for i in np.flatnonzero((v < lb) | (v > ub)):
            out.append(f"{self.names[i]} = {int(v[i])} outside [{lb[i]}, {ub[i]}]")
        for c in self.constraints:
            d = c.violation(v)
            if d > 0:
                out.append(f"{c.desc}: off by {c.fmt(d)}")
        return out

    # ------------------------------------------------------------------ solve
    def solve(self, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S, workers: int = 1, seed: int = 0,
              hint: np.ndarray | None = None, drop: Iterable[str] = (), log: Callable[[str], None] | None = None,
              first_solution: bool = False, backend: str = "cp-sat", deterministic: bool = False) -> Solution:
        """Solve with CP-SAT (``backend='cp-sat'``: integer coefficients at a stated resolution)
        or HiGHS through MathOpt (``'highs'``: branch and cut on the floating-point rows, one
        thread, relative gap tolerance :data:`HIGHS_GAP`).  ``drop``: names of constraints to
        leave out (used by explain); ``first_solution``: stop at the first solution found (the
        time-limit path, made deterministic for tests: the result is FEASIBLE with its bound and
        gap).  ``deterministic`` (CP-SAT): the limit is in CP-SAT's deterministic time units (about
        a second of work each) instead of wall time, so a time-limited solve returns the same plan
        on a fast or a loaded machine (with one worker); the wall time is capped at 10 x that."""
        if time_limit_s <= 0 or not math.isfinite(time_limit_s):
            raise PlanError(f"expected a positive time limit, got {time_limit_s}")
        if backend == "highs":
            return self._solve_highs(time_limit_s, set(drop), first_solution)
        if backend != "cp-sat":
            raise PlanError(f"unknown solver backend {backend!r}; expected cp-sat or highs")
        from ortools.sat.python import cp_model

        t0 = time.perf_counter()
        dropped = set(drop)
        cp = cp_model.CpModel()
        x = [cp.new_int_var(int(lo), int(hi), n) for n, lo, hi in zip(self.names, self.lb, self.ub)]
        rounding: dict[str, float] = {}
        lbf, ubf = np.asarray(self.lb, dtype=float), np.asarray(self.ub, dtype=float)   # once, not per row
        for c in self.constraints:
            if c.name in dropped:
                continue
            for sense, bound in (("le", c.hi), ("ge", c.lo)):
                if not math.isfinite(bound):
                    continue
                ic, ib, rel = _scaled_row(c.coef, bound, sense, (lbf[c.idx], ubf[c.idx]))
                if rel > rounding.get(c.group, 0.0):
                    rounding[c.group] = rel
                expr = cp_model.LinearExpr.weighted_sum([x[i] for i in c.idx], [int(a) for a in ic])
                cp.add(expr <= ib if sense == "le" else expr >= ib)
        oidx, ocoef = self.objective_terms()
        oscale = _scale_for(ocoef)
        ocoef_int = np.rint(ocoef * oscale).astype(np.int64)
        if len(ocoef):
            orel = float(np.max(np.abs(ocoef_int / oscale - ocoef)) / max(np.max(np.abs(ocoef)), 1e-300))
            rounding["objective"] = orel
            cp.minimize(cp_model.LinearExpr.weighted_sum([x[i] for i in oidx], [int(a) for a in ocoef_int]))
        if hint is not None:
            for i, v in enumerate(np.asarray(hint)):
                cp.add_hint(x[i], int(min(max(v, self.lb[i]), self.ub[i])))
        solver = cp_model.CpSolver()
        if deterministic:
            solver.parameters.max_deterministic_time = float(time_limit_s)
            solver.parameters.max_time_in_seconds = 10.0 * float(time_limit_s)
        else:
            solver.parameters.max_time_in_seconds = float(time_limit_s)
        solver.parameters.num_workers = int(workers)
        solver.parameters.random_seed = int(seed)
        if first_solution:
            solver.parameters.stop_after_first_solution = True
        st = solver.solve(cp)
        wall = time.perf_counter() - t0
        status = solver.status_name(st)
        info = SolverInfo("CP-SAT", _ortools_version(), int(workers), int(seed), float(time_limit_s))
        resolution = 1.0 / oscale
        if status in ("OPTIMAL", "FEASIBLE"):
            vals = np.array([solver.value(v) for v in x], dtype=np.int64)
            obj = self.objective_value(vals)
            obj_int = int(round(solver.objective_value)) if len(ocoef) else 0
            bnd_int = int(math.ceil(solver.best_objective_bound - 1e-9)) if len(ocoef) else 0
            # the bound in real units: the integer bound, less the worst rounding of the objective
            # at the solution's scale (objective coefficients were rounded to the nearest step)
            bound = bnd_int / oscale + self.objective_offset if len(ocoef) else obj
            if status == "OPTIMAL":
                bound = obj
            bound = min(bound, obj)
            gap = 0.0 if status == "OPTIMAL" else _gap(obj, bound)
            sol = Solution(status, obj, bound, gap, wall, vals, info, self.objective_unit, resolution, obj_int,
                           bnd_int, rounding, self.check(vals) if not dropped else [], list(self.names))
            if sol.violations and log is not None:
                log(f"{self.name}: the solution breaks {len(sol.violations)} constraints on re-check")
            return sol
        return Solution(status, math.nan, math.nan, math.nan, wall, np.zeros(self.n_vars, np.int64), info,
                        self.objective_unit, resolution, None, None, rounding, [], list(self.names))

    def _solve_highs(self, time_limit_s: float, dropped: set[str], first_solution: bool) -> Solution:
        from datetime import timedelta

        from ortools.math_opt.python import mathopt

        t0 = time.perf_counter()
        mdl = mathopt.Model(name=self.name)
        x = [mdl.add_integer_variable(lb=float(lo), ub=float(hi), name=n)
             for n, lo, hi in zip(self.names, self.lb, self.ub)]
        for c in self.constraints:
            if c.name in dropped:
                continue
            expr = mathopt.fast_sum(float(a) * x[int(i)] for i, a in zip(c.idx, c.coef))
            mdl.add_linear_constraint(lb=c.lo, ub=c.hi, expr=expr, name=c.name)
        oidx, ocoef = self.objective_terms()
        mdl.minimize(mathopt.fast_sum(float(a) * x[int(i)] for i, a in zip(oidx, ocoef)))
        params = mathopt.SolveParameters(time_limit=timedelta(seconds=float(time_limit_s)),
                                         relative_gap_tolerance=HIGHS_GAP, random_seed=0)
        if first_solution:
            params.solution_limit = 1
        res = mathopt.solve(mdl, mathopt.SolverType.HIGHS, params=params)
        wall = time.perf_counter() - t0
        reason = res.termination.reason
        info = SolverInfo("HiGHS (MathOpt)", _ortools_version(), 1, 0, float(time_limit_s))
        R = mathopt.TerminationReason
        if res.has_primal_feasible_solution():
            vals = np.array([round(res.variable_values(v)) for v in x], dtype=np.int64)
            obj = self.objective_value(vals)
            dual = res.termination.objective_bounds.dual_bound + self.objective_offset
            status = "OPTIMAL" if reason == R.OPTIMAL else "FEASIBLE"
            bound = min(obj, dual) if math.isfinite(dual) else -math.inf
            gap = _gap(obj, bound) if status == "FEASIBLE" else _gap(obj, bound) if obj != bound else 0.0
            sol = Solution(status, obj, bound, gap, wall, vals, info, self.objective_unit, 0.0, None, None, {},
                           self.check(vals) if not dropped else [], list(self.names))
            return sol
        status = "INFEASIBLE" if reason in (R.INFEASIBLE,) else "UNKNOWN"
        return Solution(status, math.nan, math.nan, math.nan, wall, np.zeros(self.n_vars, np.int64), info,
                        self.objective_unit, 0.0, None, None, {}, [], list(self.names))

    # ------------------------------------------------------------------ explain
    def explain(self, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S, workers: int = 1, seed: int = 0) -> Explanation:
        """Why the model is infeasible, in its constraints' words (see the module docstring)."""

        el = PlanModel(self.name + " (elastic)", "violations")
        el.names, el.lb, el.ub = list(self.names), list(self.lb), list(self.ub)
        el._by_name = dict(self._by_name)
        slack_of: list[tuple[Constraint, int, int, float]] = []
        lbf, ubf = np.asarray(self.lb, dtype=float), np.asarray(self.ub, dtype=float)   # once, not per row
        for c in self.constraints:
            if not c.elastic:
                el.constraints.append(c)
                continue
            lo_v, hi_v = lbf[c.idx], ubf[c.idx]
            reach = float(np.sum(np.maximum(np.abs(c.coef * lo_v), np.abs(c.coef * hi_v))))
            rhs = max(abs(c.lo) if math.isfinite(c.lo) else 0.0, abs(c.hi) if math.isfinite(c.hi) else 0.0)
            unit_step = _scale_for(np.concatenate([c.coef, [rhs if rhs else 1.0]]))
            smax = int(min(math.ceil((reach + rhs) * unit_step) + 1, 2 ** 40))
            s = el.int_var(0, smax, f"slack[{c.name}]")
            z = el.bool_var(f"relaxed[{c.name}]")
            # s <= smax * z
            el.constraints.append(Constraint("elastic", f"link[{c.name}]", np.array([s, z]),
                                             np.array([1.0, -float(smax)]), -math.inf, 0.0, "link", elastic=False))
            idx = np.concatenate([c.idx, [s]])
            if math.isfinite(c.hi):
                el.constraints.append(Constraint(c.group, c.name + "#le", idx,
                                                 np.concatenate([c.coef, [-1.0 / unit_step]]), -math.inf, c.hi,
                                                 c.desc, c.unit, elastic=False))
            if math.isfinite(c.lo):
                el.constraints.append(Constraint(c.group, c.name + "#ge", idx,
                                                 np.concatenate([c.coef, [1.0 / unit_step]]), c.lo, math.inf,
                                                 c.desc, c.unit, elastic=False))
            slack_of.append((c, s, z, unit_step))
        # lexicographic: first as few relaxed constraints as possible, then (with that many) the
        # smallest total relative violation (two solves: one weighted sum would lose the second
        # term to the integer scaling of the objective)
        zs = [z for _, _, z, _ in slack_of]
        el.minimize(zs, [1.0] * len(zs))
        sol = el.solve(time_limit_s=time_limit_s, workers=workers, seed=seed)
        if sol.ok:
            count = int(round(sum(sol.values[z] for z in zs)))
            el.add("elastic", "fewest relaxed", zs, [1.0] * len(zs), hi=count, desc="fewest relaxed",
                   elastic=False)
            el._obj_idx, el._obj_coef = [], []
            el.minimize([s for _, s, _, _ in slack_of],
                        [1.0 / max(1.0, _rhs_steps(c, st)) for c, _, _, st in slack_of])
            sol2 = el.solve(time_limit_s=time_limit_s, workers=workers, seed=seed, hint=sol.values)
            if sol2.ok:
                sol = sol2
        if not sol.ok:
            return Explanation([], False, f"the elastic model did not solve ({sol.status}): even relaxing every "
                                          "constraint group leaves no solution (check variable bounds)")
        conflicts = []
        for c, s, z, step in slack_of:
            if sol.values[z] == 0 and sol.values[s] == 0:
                continue
            amount = float(sol.values[s]) / step
            lhs = c.lhs(sol.values)
            o = c.offset
            if math.isfinite(c.hi) and lhs > c.hi:
                text = (f"{c.desc}: needs {c.fmt(lhs + o)}, {c.fmt(lhs - c.hi)} over the limit of "
                        f"{c.fmt(c.hi + o)}")
                amount = lhs - c.hi
            elif math.isfinite(c.lo) and lhs < c.lo:
                text = (f"{c.desc}: reaches only {c.fmt(lhs + o)} of the {c.fmt(c.lo + o)} required "
                        f"({c.fmt(c.lo - lhs)} short)")
                amount = c.lo - lhs
            else:
                continue
            conflicts.append(Conflict(c.group, c.name, c.desc, amount, text))
        # the other side of each conflict: constraints at their limit in the elastic solution that
        # share variables with a relaxed one (what the relaxed constraint runs into)
        relaxed = {c.name for c in conflicts}
        touched: set[int] = set()
        for c, _, _, _ in slack_of:
            if c.name in relaxed:
                touched.update(int(i) for i in c.idx)
        for k, conf in enumerate(conflicts):
            against = []
            for c, _, _, _ in slack_of:
                if c.name in relaxed or not touched.intersection(int(i) for i in c.idx):
                    continue
                lhs = c.lhs(sol.values)
                nz = np.abs(c.coef[c.coef != 0])
                step = float(nz.min()) if len(nz) else 0.0    # one more unit of the smallest term
                tight = [t for t in (c.hi, c.lo) if math.isfinite(t)]
                for t in tight:
                    if abs(lhs - t) < max(step, 1e-9 * max(1.0, abs(t))):
                        against.append(f"{c.desc} (at its limit of {c.fmt(t + c.offset)})")
                        break
            if against:
                shown = against[:3] + ([f"{len(against) - 3} more"] if len(against) > 3 else [])
                conflicts[k] = Conflict(conf.group, conf.name, conf.desc, conf.amount,
                                        conf.text + "; it runs into " + "; ".join(shown))
        if not conflicts:
            return Explanation([], False, "the elastic model needs no relaxation: the infeasibility comes from "
                                          "variable bounds or non-elastic constraints")
        confirm = self.solve(time_limit_s=time_limit_s, workers=workers, seed=seed,
                             drop=[c.name for c in conflicts])
        return Explanation(conflicts, confirm.ok,
                           "confirmed: feasible once only these constraints are dropped" if confirm.ok
                           else "not confirmed: dropping these constraints alone is not enough")


def _rhs_steps(c: Constraint, step: float) -> float:
    rhs = max(abs(c.lo) if math.isfinite(c.lo) else 0.0, abs(c.hi) if math.isfinite(c.hi) else 0.0)
    return rhs * step


def _gap(obj: float, bound: float) -> float:
    if not (math.isfinite(obj) and math.isfinite(bound)):
        return math.nan
    return abs(obj - bound) / max(abs(obj), 1e-12)


def _scale_for(coef: np.ndarray) -> float:
    """A power of ten that brings the largest |coef| to at most COEF_TARGET (and integral
    coefficients that are already small stay exact)."""
    a = np.abs(np.asarray(coef, dtype=float))
    a = a[a > 0]
    if not len(a):
        return 1.0
    if np.all(a == np.rint(a)) and a.max() <= COEF_TARGET:
        return 1.0
    return 10.0 ** math.floor(math.log10(COEF_TARGET / a.max()))


def _scaled_row(coef: np.ndarray, bound: float, sense: str, bounds: tuple[np.ndarray, np.ndarray]
                ) -> tuple[np.ndarray, int, float]:
    """Integer coefficients and bound of ``coef . x <= bound`` (or ``>=``), rounded so that any
    integer solution of the scaled row satisfies the real row (for x within its bounds, which
    are non-negative in every fleet model), and the largest relative rounding of a coefficient."""
    lo_v, hi_v = bounds
    a = np.abs(coef)
    if len(a) and np.all(a == np.rint(a)) and a.max() <= COEF_TARGET and abs(bound) <= 2 ** 62:
        scale = 1.0        # integer coefficients stay exact, however large the bound (rounded inward)
    else:
        scale = _scale_for(np.concatenate([coef, [bound] if bound else []]) if abs(bound) <= 1e15 else coef)
    sc = coef * scale
    exact = np.all(sc == np.rint(sc))
    if exact:
        ic = np.rint(sc).astype(np.int64)
    elif np.all(lo_v >= 0):
        ic = (np.ceil(sc - 1e-9) if sense == "le" else np.floor(sc + 1e-9)).astype(np.int64)
    else:
        raise PlanError("a row with fractional coefficients over variables that can be negative cannot be "
                        "rounded conservatively")
    b = bound * scale
    ib = int(math.floor(b + 1e-9)) if sense == "le" else int(math.ceil(b - 1e-9))
    amax = float(np.max(np.abs(sc))) if len(sc) else 1.0
    rel = float(np.max(np.abs(ic - sc)) / amax) if len(sc) and amax > 0 else 0.0
    return ic, ib, rel


def _ortools_version() -> str:
    try:
        from importlib.metadata import version

        return version("ortools")
    except Exception:  # noqa: BLE001 - the version is informative only
        return "unknown"


def gap_of(objective: float, bound: float) -> float:
    """The relative gap between an objective and a lower bound (0 when they agree)."""
    return _gap(objective, bound)


def raise_infeasible(model: PlanModel, what: str, *, time_limit_s: float = DEFAULT_TIME_LIMIT_S) -> None:
    """Explain ``model`` and raise :class:`~fleet.errors.InfeasibleError` with its conflicts."""
    ex = model.explain(time_limit_s=time_limit_s)
    lines = ex.lines() or [ex.note]
    if ex.conflicts and not ex.confirmed:
        lines.append(ex.note)
    raise InfeasibleError(f"{what}: no plan satisfies every constraint", lines)
