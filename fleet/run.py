"""The main job, ``fleet run SCENARIO.yaml``: walk the layers once, left to right.

    load scenario -> build frontiers -> plan (no-op until the planner lands) -> simulate
    -> account energy, cost and carbon -> write the report

Each step is a function here so that the planner (a later issue) plugs in at :func:`plan_step`
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

import numpy as np
import pandas as pd

from . import __version__
from .account import (SERVER_EMBODIED_KGCO2E, SERVER_EMBODIED_SOURCE, SLO, AcceleratorFacts,
                      AccountingInputs, SignalInput, account)
from .errors import FleetError, ScenarioError
from .paths import REPO_ROOT
from .report.data import (BREAKDOWN_COLUMNS, FRONTIER_COLUMNS, LOWER_BOUND_COLUMNS, PoolAnalysis,
                          RunResult)
from .scenario import Scenario, SignalSpec, load_scenario

log = logging.getLogger("fleet.run")

#: Stated defaults when a scenario names no grid signal (so a fresh clone runs with no data).
DEFAULT_CI_G_PER_KWH = 250.0
DEFAULT_PRICE_USD_PER_MWH = 60.0
DEFAULT_SIGNAL_NOTE = "default constant (no site signal in the scenario)"


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
    """The device constants of the scenario's what-if part (None without one)."""
    if sc.whatif is None:
        return None
    from .catalog.device_energy import load_device_constants

    try:
        return load_device_constants(sc.simulation.constants == "calibrated").with_values(dict(sc.whatif.device_constants), kind="what-if",
                                                   source=f"what-if: {sc.whatif.label}", check_range=False)
    except FleetError as exc:
        raise ScenarioError(str(exc), path=sc.path, field="whatif.device_constants") from None


def _whatif_applies(sc: Scenario, accelerator: str) -> bool:
    if sc.whatif is None:
        return False
    if sc.whatif.accelerators is None:
        return True
    from .catalog import get_accelerator

    names = set()
    for i, a in enumerate(sc.whatif.accelerators):
        try:
            names.add(get_accelerator(a).name)
        except FleetError as exc:
            raise ScenarioError(str(exc), path=sc.path, field=f"whatif.accelerators[{i}]") from None
    return get_accelerator(accelerator).name in names


def whatif_profile_factory(sc: Scenario):
    """A ``profile_factory`` for :func:`fleet.sim.simulate` that builds the what-if part's
    profiles for the pools it applies to (None without a what-if)."""
    consts = whatif_constants(sc)
    if consts is None:
        return None
    from .frontier import build_serving_profile
    from .sim.assemble import default_profile_factory

    calibrated = sc.simulation.constants == "calibrated"

    def factory(*, model, accelerator, tp, precision, kv_precision, power_cap_w, max_batch, ep=None):
        if not _whatif_applies(sc, accelerator):
            return default_profile_factory(model=model, accelerator=accelerator, tp=tp, precision=precision,
                                           kv_precision=kv_precision, power_cap_w=power_cap_w,
                                           max_batch=max_batch, calibrated=calibrated, ep=ep)
        return build_serving_profile(model, accelerator, tp, precision=precision, kv_precision=kv_precision,
                                     power_cap_w=power_cap_w, max_batch=max_batch, constants=consts, ep=ep)

    return factory


def build_frontiers(sc: Scenario) -> Frontiers:
    out = Frontiers()
    consts = whatif_constants(sc)
    try:
        from .frontier import make_replica
    except ImportError as exc:   # pragma: no cover - the energy model is part of the package
        for p in sc.fleet.pools:
            for s in p.serve:
                out.errors[(p.name, s.model)] = f"energy model unavailable ({exc})"
        return out
    for p in sc.fleet.pools:
        for s in p.serve:
            try:
                kw = ({"constants": consts} if consts is not None and _whatif_applies(sc, p.accelerator)
                      else {"calibrated": sc.simulation.constants == "calibrated"})
                out.replicas[(p.name, s.model)] = make_replica(s.model, p.accelerator, s.tp, s.precision,
                                                               s.kv_precision, ep=s.ep or 1, **kw)
            except FleetError as exc:
                out.errors[(p.name, s.model)] = str(exc)
    return out


# ------------------------------------------------------------------------------ plan (placeholder)
@dataclass
class PlanDecisions:
    """What the planner decided (GPU mix, caps, oversubscription, training schedule).  Empty
    until the OR-Tools planner lands; ``applied`` says whether the scenario was changed."""

    enabled: bool = False
    applied: bool = False
    decisions: list[dict] = field(default_factory=list)
    note: str = "no planning: the scenario's fleet is simulated as written"

    def describe(self) -> str:
        return self.note if not self.decisions else f"{len(self.decisions)} decisions: {self.note}"


def plan_step(scenario: Scenario, frontiers: Frontiers) -> PlanDecisions:
    """PLANNER HOOK (a later issue fills this with OR-Tools): choose the GPU mix, power caps and
    oversubscription from the frontiers, and return decisions to apply to ``scenario`` before the
    simulation (which then verifies them).  Today it is a deliberate no-op."""
    if scenario.plan.enabled:
        return PlanDecisions(enabled=True, note="plan.enabled is set, but the planner is not built yet: "
                                                "the fleet is simulated as written")
    return PlanDecisions()


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
    return simulate(scenario, **kw)


# ------------------------------------------------------------------------------ accounting inputs
def _signal(spec: SignalSpec | None, site_region: str | None, kind: str, sc: Scenario, horizon_s: float,
            default: float, unit: str, sources: list[str]) -> SignalInput:
    """Resolve a site signal (constant, region or file) for the simulated window."""
    field = {"average_ci": "carbon_intensity", "price": "price", "pue": "pue"}[kind]
    if spec is None and site_region is not None and kind != "pue":
        spec = SignalSpec(region=site_region)
    if spec is None:
        return SignalInput(default, unit, f"{default:g} {unit}, {DEFAULT_SIGNAL_NOTE}")
    if spec.constant is not None:
        shown = f"{spec.constant:g}" + (f" {unit}" if unit != "1" else "")
        return SignalInput(float(spec.constant), unit, f"constant {shown} (scenario)")
    from . import grid

    start = sc.start_utc
    try:
        if spec.region is not None:
            k = "marginal_ci" if (kind == "average_ci" and spec.signal == "marginal") else kind
            sig = grid.load_region_signals(spec.region, k, basis=spec.basis, gaps=spec.gaps)
            reg = grid.region(spec.region)
            what = {"average_ci": f"Electricity Maps 2023 hourly {spec.basis.upper()} average intensity",
                    "marginal_ci": "WattTime MOER (marginal)", "price": "2023 hourly wholesale price"}[k]
            desc = f"{what}, {reg.zone}"
            sources.append(f"{desc}: {sig.source}")
        else:
            path = spec.file if spec.file.is_absolute() else (sc.base_dir / spec.file)
            sig = grid.read_signal(path, basis=spec.basis, gaps=spec.gaps)
            desc = f"{path.name} ({sig.kind})"
            sources.append(f"{field}: {path}")
        sig = sig.for_window(start, horizon_s, year_shift=spec.year_shift)
        if "year_shift" in sig.meta:
            desc += f", moved from {sig.meta['year_shift'].get('from')} to the simulated year"
    except FleetError as exc:
        raise ScenarioError(str(exc), path=sc.path, field=f"site.{field}") from None
    if kind == "pue":
        if float(np.min(sig.values)) < 1.0:
            raise ScenarioError("PUE below 1 in the series", path=sc.path, field="site.pue")
    return SignalInput(sig, unit if kind != "pue" else "1", desc)


def _canon_model(name: str) -> str:
    try:
        from .catalog import get_model

        return get_model(name).name
    except (FleetError, ImportError):
        return name


def accounting_inputs(sc: Scenario, horizon_s: float) -> tuple[AccountingInputs, list[str], str]:
    """AccountingInputs from the scenario's site and accounting sections and the catalog;
    also the data sources used and the carbon signal type ('average' | 'marginal')."""
    from .catalog import get_accelerator

    sources: list[str] = []
    site = sc.site
    ci = _signal(site.carbon_intensity, site.region, "average_ci", sc, horizon_s, DEFAULT_CI_G_PER_KWH,
                 "gCO2e/kWh", sources)
    price = _signal(site.price, site.region, "price", sc, horizon_s, DEFAULT_PRICE_USD_PER_MWH,
                    "USD/MWh", sources)
    pue = _signal(site.pue, None, "pue", sc, horizon_s, 1.2, "1", sources)
    carbon_signal = site.carbon_intensity.signal if site.carbon_intensity is not None else "average"
    a = sc.accounting
    facts: dict[str, AcceleratorFacts] = {}
    for p in sc.fleet.pools:
        spec = get_accelerator(p.accelerator)
        src = spec.sources if hasattr(spec, "sources") else {}
        f = AcceleratorFacts(spec.name, spec.embodied_kgco2e, src.get("embodied_source", "catalog"),
                             spec.purchase_usd, spec.price_usd_per_gpu_hour, src.get("price_source", "catalog"),
                             spec.tdp_w)
        for key, ov in a.accelerators.items():
            try:
                same = get_accelerator(key).name == spec.name
            except FleetError:
                raise ScenarioError("unknown accelerator", path=sc.path,
                                    field=f"accounting.accelerators.{key}") from None
            if same:
                f = AcceleratorFacts(
                    spec.name,
                    ov.embodied_kgco2e if ov.embodied_kgco2e is not None else f.embodied_kgco2e,
                    ov.source if ov.embodied_kgco2e is not None else f.embodied_source,
                    ov.purchase_usd if ov.purchase_usd is not None else f.purchase_usd,
                    ov.price_usd_per_gpu_hour if ov.price_usd_per_gpu_hour is not None else f.price_usd_per_gpu_hour,
                    ov.source if (ov.purchase_usd is not None or ov.price_usd_per_gpu_hour is not None)
                    else f.price_source, f.tdp_w)
        facts[spec.name] = f
        facts[p.accelerator] = f
    slo: dict[str, SLO] = {}
    for d in sc.demand.inference:
        s = SLO(ttft_s=d.slo.ttft_s or math.inf, tpot_s=d.slo.tpot_s or math.inf, e2e_s=d.slo.e2e_s or math.inf)
        slo[d.model] = s
        slo[_canon_model(d.model)] = s
    inputs = AccountingInputs(
        carbon_intensity=ci, price=price, pue=pue, accelerators=facts, carbon_signal=carbon_signal,
        lifetime_years=a.lifetime_years,
        lifetime_source="LLMCarbon (ICLR 2024): 5-year hardware lifetime" if a.lifetime_years == 5.0
        else "scenario accounting.lifetime_years",
        server_embodied_kgco2e=a.server_embodied_kgco2e if a.server_embodied_kgco2e is not None
        else SERVER_EMBODIED_KGCO2E,
        server_embodied_source=a.server_embodied_source or (SERVER_EMBODIED_SOURCE if a.server_embodied_kgco2e
                                                            is None else "scenario"),
        cost_model=a.cost_model, amortisation_years=a.amortisation_years, server_capex_usd=a.server_capex_usd,
        slo=slo)
    return inputs, sources, carbon_signal


# ------------------------------------------------------------------------------ pool analysis
def analyse_pools(sc: Scenario, sim, frontiers: Frontiers) -> PoolAnalysis:
    """Energy breakdown per output token at each serving pool's simulated operating point (mean
    batch, mean prompt and output lengths), the Landauer lower bound, and the time-energy
    frontier across power caps (steady-state model, :mod:`fleet.frontier.steady`)."""
    notes: list[str] = []
    br, lb, fr = [], [], []
    try:
        from .frontier.steady import steady_state
        from .hardware.bounds import inference_token_lower_bound_j
    except ImportError as exc:   # pragma: no cover
        return PoolAnalysis(notes=[f"energy model unavailable: {exc}"])
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
        decisions = plan_step(sc, frontiers)
        log.info("plan: %s", decisions.describe())
        bar.start("simulate")
        sim = simulate_step(sc, quiet=quiet)
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
            slo=_slo_table(sc),
            meta={"scenario_path": str(sc.path) if sc.path else None, "version": __version__,
                  "scenario_content": sc._raw if sc._raw is not None else sc.model_dump(mode="json"),
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
