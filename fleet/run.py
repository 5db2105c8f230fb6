"""The main job, ``fleet run SCENARIO.yaml``: walk the layers once, left to right.

    load scenario -> build frontiers -> plan (no-op until the planner lands) -> simulate
    -> account energy, cost and carbon -> write the report

Each step is a function here so that the planner plugs in at :func:`plan_step`
without touching the rest.  Progress bars on a terminal (tqdm), quiet under ``CI`` or
``quiet=True``; ``logging`` (``fleet.run``) says what is happening at INFO/DEBUG.
"""

from __future__ import annotations

import logging
import math
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from . import __version__
from .accounting import account
from .errors import FleetError, ScenarioError
from .paths import REPO_ROOT
from .report.data import (BREAKDOWN_COLUMNS, FRONTIER_COLUMNS, LOWER_BOUND_COLUMNS, PoolAnalysis,
                          RunResult)
from .scenario import Scenario, load_scenario

log = logging.getLogger("fleet.run")

# ------------------------------------------------------------------------------ progress
def progress_enabled(quiet: bool = False) -> bool:
    """Bars only on an interactive terminal, never under CI or --quiet."""
    if quiet or os.environ.get("CI"):
        return False
    return sys.stderr.isatty()


class _Steps:
    """A tqdm bar over the job's steps (or nothing), plus logging of each step."""

    def __init__(self, names: list[str], enabled: bool):
        self.bar = None
        if enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=len(names), desc="fleet run", unit="step", file=sys.stderr, leave=False)
        self.t0 = time.perf_counter()
        self.timings: dict[str, float] = {}
        self._cur: str | None = None
        self._t = self.t0

    def start(self, name: str) -> None:
        self._finish()
        self._cur, self._t = name, time.perf_counter()
        log.info("step: %s", name)
        if self.bar is not None:
            self.bar.set_description(f"fleet run: {name}")

    def sub(self, what: str) -> None:
        log.debug("  %s", what)
        if self.bar is not None:
            self.bar.set_postfix_str(what)

    def _finish(self) -> None:
        if self._cur is not None:
            self.timings[self._cur] = time.perf_counter() - self._t
            if self.bar is not None:
                self.bar.update(1)
            self._cur = None

    def close(self) -> None:
        self._finish()
        if self.bar is not None:
            self.bar.close()


# ------------------------------------------------------------------------------ frontiers
@dataclass
class Frontiers:
    """The energy model of each (serving pool, model): a ``fleet.frontier`` replica object, or
    the reason it could not be built.  The simulation builds its own ServingProfiles from the
    scenario; these serve the report (breakdown, lower bound, frontier) and the planner."""

    replicas: dict[tuple[str, str], Any] = field(default_factory=dict)
    errors: dict[tuple[str, str], str] = field(default_factory=dict)


def whatif_constants(sc: Scenario):
    """The device constants of the scenario's what-if part (None without one);
    :func:`fleet.scenario.whatif_constants`."""
    from .scenario import whatif_constants as _wc

    return _wc(sc)


def whatif_profile_factory(sc: Scenario):
    """A ``profile_factory`` for :func:`fleet.sim.simulate` for a scenario with a what-if part
    (None without one).  The scenario's operating points already carry the what-if constants
    where they apply (:func:`fleet.scenario.serve_operating_point`), so this is the default
    factory; kept for callers that pass it explicitly."""
    if sc.whatif is None:
        return None
    from .sim.assemble import default_profile_factory

    return default_profile_factory


def build_frontiers(sc: Scenario) -> Frontiers:
    """The energy model of each (serving pool, model), built at the scenario's operating point
    (:meth:`fleet.scenario.Scenario.operating_point`: its cap, precisions, constants, what-if)."""
    out = Frontiers()
    whatif_constants(sc)          # a bad what-if part is the scenario's error, not one pool's
    from .frontier import make_replica

    for i, p in enumerate(sc.fleet.pools):
        for j, s in enumerate(p.serve):
            try:
                out.replicas[(p.name, s.model)] = make_replica(sc.operating_point(i, j))
            except FleetError as exc:
                out.errors[(p.name, s.model)] = str(exc)
    return out


# ------------------------------------------------------------------------------ plan
@dataclass
class PlanDecisions:
    """What the planners decided (each a :class:`fleet.planning.PlanOutcome`), and the scenario
    the job then reports: the last planner's re-validated scenario (``scenario``) and its
    verified simulation (``sim``, reused instead of simulating again)."""

    enabled: bool = False
    applied: bool = False
    decisions: list[dict] = field(default_factory=list)
    outcomes: list = field(default_factory=list)
    scenario: Scenario | None = None
    sim: Any = None
    note: str = "no planning: the scenario's fleet is simulated as written"

    def describe(self) -> str:
        if not self.outcomes:
            return self.note
        return "; ".join(o.describe() for o in self.outcomes)


def plan_step(scenario: Scenario, frontiers: Frontiers | None = None, *,
              log=None) -> PlanDecisions:
    """Run every planner the scenario's ``plan`` section names, in :data:`fleet.planning.KINDS`
    order, each on the scenario the previous one planned; every plan is applied, simulated and
    verified by its planner (fleet.planning.<kind>.plan_and_verify).  No ``plan`` section: a
    stated no-op."""
    import importlib

    from .planning import KINDS

    if not scenario.plan.enabled:
        return PlanDecisions()
    out = PlanDecisions(enabled=True, applied=True, note="")
    cur = scenario
    for kind in KINDS:
        spec = getattr(scenario.plan, kind, None)
        if spec is None:
            continue
        try:
            mod = importlib.import_module(f"fleet.planning.{kind}")
        except ModuleNotFoundError as exc:
            if exc.name != f"fleet.planning.{kind}":
                raise
            raise ScenarioError(f"the {kind} planner is not part of this build", path=scenario.path,
                                field=f"plan.{kind}") from exc
        o = mod.plan_and_verify(cur, spec, log=log)
        out.outcomes.append(o)
        out.decisions += [dict(d, planner=kind) for d in o.decisions]
        cur = o.scenario
        out.sim = o.sim
    out.scenario = cur
    out.note = out.describe()
    return out


# ------------------------------------------------------------------------------ simulate
def simulate_step(scenario: Scenario, *, quiet: bool = False, mode: str | None = None):
    """The simulation of the scenario as written (after the plan step), with the what-if part's
    profiles if there is one.  Its own progress bar follows ``simulation.progress`` and is off
    when ``quiet`` or under CI.  ``fleet run`` and ``fleet simulate`` both simulate through here,
    so a scenario's what-if part applies to both; ``mode`` overrides ``simulation.mode``."""
    from . import sim as _sim

    simulate = getattr(_sim, "simulate", None)
    if simulate is None:
        raise FleetError("the simulation (fleet.sim.simulate) is not available in this build")
    kw: dict[str, Any] = {}
    factory = whatif_profile_factory(scenario)
    if factory is not None:
        kw["profile_factory"] = factory
    if not progress_enabled(quiet):
        kw["progress"] = False
    if mode is not None:
        kw["mode"] = mode
    from .siminput import sim_input

    return simulate(sim_input(scenario), **kw)


# ------------------------------------------------------------------------------ accounting inputs
# resolved in fleet.signals (before planning as well as for accounting); re-exported here
from .signals import _canon_model  # noqa: E402
from .signals import (DEFAULT_CI_G_PER_KWH, DEFAULT_PRICE_USD_PER_MWH, DEFAULT_SIGNAL_NOTE,  # noqa: E402,F401
                      accounting_inputs)


# ------------------------------------------------------------------------------ pool analysis
def analyse_pools(sc: Scenario, sim, frontiers: Frontiers) -> PoolAnalysis:
    """Energy breakdown per output token at each serving pool's simulated operating point (mean
    batch, mean prompt and output lengths), the Landauer lower bound, and the time-energy
    frontier across power caps (steady-state model, :mod:`fleet.frontier.steady`)."""
    notes: list[str] = []
    br, lb, fr = [], [], []
    from .frontier.steady import steady_state
    from .hardware.bounds import inference_token_lower_bound_j

    pools = sim.pools.set_index("pool") if len(sim.pools) else None
    req = sim.requests
    fractions = sc.report.frontier_cap_fractions
    for (pool_name, model), rep in frontiers.replicas.items():
        p = sc.fleet.pool(pool_name)
        mean_batch = float(pools.loc[pool_name, "mean_batch"]) if pools is not None and pool_name in pools.index \
            else float("nan")
        serve = next(s for s in p.serve if s.model == model)
        batch = int(min(max(1, round(mean_batch)) if math.isfinite(mean_batch) else 1, serve.max_batch))
        canon = rep.model_name
        r = req[(req["pool"] == pool_name) & (req["status"] == "completed")] if len(req) else req
        if "model" in r and len(r):
            r = r[r["model"].astype(str).isin([model, canon])]
        i_tok = float(r["input_tokens"].mean()) if len(r) else 1024.0
        o_tok = float(r["output_tokens"].mean()) if len(r) else 256.0
        cap = p.power_cap_w
        try:
            st = steady_state(rep, batch, int(round(i_tok)), max(1, int(round(o_tok))), power_cap_w=cap)
        except FleetError as exc:
            notes.append(f"{pool_name}/{model}: steady state not evaluated ({exc})")
            continue
        gpu_j = float("nan")
        if pools is not None and pool_name in pools.index and pools.loc[pool_name, "output_tokens"] > 0:
            gpu_j = float(pools.loc[pool_name, "gpu_energy_j"] / pools.loc[pool_name, "output_tokens"])
        br.append({"pool": pool_name, "model": canon, "accelerator": rep.acc.name, "batch": batch,
                   "power_cap_w": cap if cap is not None else float(rep.device.power_max_w),
                   **{f"{k}_j": float(v) for k, v in st.breakdown_j.items()},
                   "model_j": float(st.energy_per_output_token_j), "simulated_gpu_j": gpu_j})
        try:
            bound = inference_token_lower_bound_j(rep.model, serve.precision, kv_precision=rep.kv_precision)
            lb.append({"pool": pool_name, "model": canon, "lower_bound_j": float(bound),
                       "method": "Landauer k_B T ln2 (300 K) x bits a token must irreversibly write "
                                 "(KV entry + activations + sampled token); fleet.hardware.bounds"})
        except FleetError as exc:
            notes.append(f"{pool_name}/{model}: lower bound not evaluated ({exc})")
        lo = float(rep.device.power_min_w or 0.0)
        hi = float(rep.device.power_max_w)
        caps = sorted({min(hi, max(lo, f * hi)) for f in fractions} | {cap if cap is not None else hi})
        for c in caps:
            try:
                s2 = steady_state(rep, batch, int(round(i_tok)), max(1, int(round(o_tok))), power_cap_w=c)
            except FleetError as exc:
                notes.append(f"{pool_name}/{model}: cap {c:g} W not evaluated ({exc})")
                continue
            fr.append({"pool": pool_name, "model": canon, "power_cap_w": c, "cap_fraction": c / hi,
                       "itl_s": float(s2.itl_s), "j_per_token": float(s2.energy_per_output_token_j),
                       "tokens_per_s": float(s2.output_tokens_per_s),
                       "current": bool(abs(c - (cap if cap is not None else hi)) < 1e-9)})
    for (pool_name, model), err in frontiers.errors.items():
        notes.append(f"{pool_name}/{model}: no energy model ({err})")
    if br:
        notes.append("breakdown and frontier: steady-state continuous batching at each pool's simulated mean "
                     "batch and mean prompt/output lengths (fleet.frontier.steady), modelled, not measured")
    return PoolAnalysis(pd.DataFrame(br, columns=BREAKDOWN_COLUMNS),
                        pd.DataFrame(lb, columns=LOWER_BOUND_COLUMNS),
                        pd.DataFrame(fr, columns=FRONTIER_COLUMNS), notes)


def _slo_table(sc: Scenario) -> dict[str, dict]:
    """Per model (as written and canonical): its SLO in seconds (None where not set)."""
    out = {}
    for d in sc.demand.inference:
        v = {"ttft_s": d.slo.ttft_s, "tpot_s": d.slo.tpot_s, "e2e_s": d.slo.e2e_s}
        out[d.model] = v
        out[_canon_model(d.model)] = v
    return out


# ------------------------------------------------------------------------------ provenance
def git_commit(cwd: Path = REPO_ROOT) -> str | None:
    """The repository's HEAD commit, or None outside a git checkout."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=cwd, capture_output=True, text=True,
                             timeout=10, check=False)
    except (OSError, subprocess.SubprocessError):
        return None
    sha = out.stdout.strip()
    return sha if out.returncode == 0 and len(sha) == 40 else None


# ------------------------------------------------------------------------------ the job
def run_scenario(scenario: str | Path | Scenario, out_root: str | Path | None = "reports", *,
                 quiet: bool = False, report: bool = True) -> RunResult:
    """Run one scenario end to end; write ``<out_root>/<name>/`` unless ``out_root`` is None or
    ``report`` is False.  Returns the :class:`RunResult` (everything the report shows)."""
    steps = ["load scenario", "build frontiers", "plan", "simulate", "account", "analyse pools"]
    if report and out_root is not None:
        steps.append("write report")
    bar = _Steps(steps, progress_enabled(quiet))
    try:
        bar.start("load scenario")
        sc = scenario if isinstance(scenario, Scenario) else load_scenario(scenario)
        if report and out_root is not None:     # refuse a bad output location before the work
            from ._io import check_output_dir
            from .report import REPORT_MARKER

            check_output_dir(Path(out_root) / sc.name, REPORT_MARKER)
        bar.sub(sc.name)
        bar.start("build frontiers")
        frontiers = build_frontiers(sc)
        bar.start("plan")
        decisions = plan_step(sc, frontiers, log=lambda m: log.info("plan: %s", m))
        log.info("plan: %s", decisions.describe())
        written = sc
        if decisions.scenario is not None:
            sc = decisions.scenario              # the planned scenario, re-validated
            frontiers = build_frontiers(sc)
        bar.start("simulate")
        sim = decisions.sim if decisions.sim is not None else simulate_step(sc, quiet=quiet)
        horizon = float(sim.meta.get("horizon_s") or 0.0)
        log.info("simulated %.0f s: %d requests, %d telemetry rows", horizon, len(sim.requests), len(sim.power))
        bar.start("account")
        sim.meta.setdefault("start_utc", sc.start_utc.isoformat())
        inputs, sources, carbon_signal = accounting_inputs(sc, horizon)
        if sc.whatif is not None:
            sources.append(f"what-if part '{sc.whatif.label}' on "
                           f"{', '.join(sc.whatif.accelerators) if sc.whatif.accelerators else 'every pool'}: "
                           + ", ".join(f"{k} = {v:g}" for k, v in sc.whatif.device_constants.items()))
        acc = account(sim, inputs)
        bar.start("analyse pools")
        analysis = analyse_pools(sc, sim, frontiers)
        result = RunResult(
            name=sc.name, title=sc.report.title or sc.description or sc.name, scenario_hash=sc.hash(),
            seed=sc.seed, sim=sim, accounts=acc, analysis=analysis,
            slo=_slo_table(sc), plans=list(decisions.outcomes),
            meta={"scenario_path": str(sc.path) if sc.path else None, "version": __version__,
                  "scenario_content": sc._raw if sc._raw is not None else sc.model_dump(mode="json"),
                  "scenario_as_written": {"hash": written.hash(), "content": written.content()},
                  "scenario_planned": ({"hash": sc.hash(), "derived_from": sc.derived_from,
                                        "updates": sc._updates, "content": sc.content()}
                                       if sc is not written else None),
                  "git_commit": git_commit(), "start_utc": sc.start_utc.isoformat(), "horizon_s": horizon,
                  "carbon_signal": carbon_signal, "plan": decisions.describe(), "data_sources": sources,
                  "timings_s": bar.timings})
        if report and out_root is not None:
            bar.start("write report")
            from .report import write_report

            out = Path(out_root) / sc.name
            write_report(result, out, pdf=sc.report.pdf, png=sc.report.png, dpi=sc.report.dpi,
                         progress=bar.sub)
            result.meta["out_dir"] = str(out)
    finally:
        bar.close()
    result.meta["timings_s"] = dict(bar.timings)
    return result
