"""Plan power oversubscription: servers per row and capping thresholds, verified against trips.

The loop (``plan_and_verify``):

1. *sizes*: a row's nameplate size is ``floor(budget / server nameplate)`` servers (GPUs at TDP,
   or at the pool's static cap, plus the server overhead at full load).  The scenario's pools in
   the row define the work per server: a row resized to ``N`` servers gets its pools' GPUs and its
   demand (trace ``stretch.rate`` or ``rate_scale``, synthetic ``rate``, synthetic training
   ``jobs``) scaled by ``N / N_written`` (each server hosts the same work, as in POLCA);
2. *samples*: the row at its nameplate size, without controller or breakers, is simulated on
   ``seeds`` seeds; every telemetry interval (after ``warmup_s``) gives one per-server power
   sample (row power / servers), and the rise within the controller's reaction time (sampling
   interval + telemetry delay + actuation delay, rounded up to telemetry intervals); the same runs
   with every server held at the controller's second level give the capped samples; the brake's
   per-server power comes from the frontier (:func:`brake_gpu_w`);
3. *solve* :mod:`fleet.plan.power` (servers per row and the first threshold; an infeasible model
   is explained by name);
4. *verify*: the planned row (resized, controller at the chosen thresholds, the scenario's
   breakers or a default row breaker, telemetry outages of ``plan.power.outages`` added to the
   controller's) and the nameplate row are simulated on ``verify_seeds`` other seeds: zero trips,
   pooled p99 TTFT and TPOT within ``latency_tolerance_pct`` of the nameplate row's, SLO
   attainment at least ``slo_target``;
5. *tighten*: a row that failed gets a cut (at most one server fewer than planned) and the
   capped-time target is halved; solved again, at most ``rounds`` rounds, each reported.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import pandas as pd

from ..errors import FleetError, InfeasibleError, ScenarioError
from ..plan import power as pp

log = logging.getLogger("fleet.plan")

#: the breaker a verification uses on a row when the scenario states none: rated at the row
#: budget, a thermal-magnetic-like curve (see fleet.scenario.BreakerSpec's default)
DEFAULT_BREAKER = {"level": "row"}


@dataclass
class RowInfo:
    row: str
    budget_w: float
    pools: list[int]                   # indices of the scenario's pools in the row
    servers_written: int
    nameplate_w: float                 # per server (mean over the row's servers)
    brake_w: float                     # per server, brake on, full load
    nameplate_servers: int


@dataclass
class RunFigures:
    """What one set of verification simulations showed."""

    seeds: list[int]
    days: float
    trips: int
    capped_time_share: float
    ttft_p99_s: float
    tpot_p99_s: float
    slo_attainment: float
    requests: int
    dropped: int
    actions: int
    train_tokens_per_server: float = math.nan
    outage_s: float = 0.0
    slo_attainment_in_outages: float = math.nan
    sims: list = field(default_factory=list)

    def as_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if k != "sims"}


def _spec(sc, spec):
    if spec is not None:
        return spec
    if sc.plan.power is not None:
        return sc.plan.power
    from ..scenario import PowerPlanSpec

    return PowerPlanSpec()


def _controller(sc):
    from ..scenario import ControllerSpec

    return sc.fleet.power.controller or ControllerSpec()


def row_infos(sc, spec) -> list[RowInfo]:
    """The rows to plan, with their nameplate sizes (module docstring, step 1)."""
    from ..frontier import accelerator_power

    pw = sc.fleet.power
    rows = spec.rows if spec.rows is not None else sorted({p.row for p in sc.fleet.pools if p.row in pw.rows})
    if not rows:
        raise ScenarioError("plan.power needs a row with a budget (fleet.power.rows)", path=sc.path,
                            field="fleet.power.rows")
    ctl = _controller(sc)
    out = []
    for r in rows:
        if r not in pw.rows:
            raise ScenarioError(f"row {r!r} has no budget; expected one in fleet.power.rows", path=sc.path,
                                field="plan.power.rows")
        idx = [i for i, p in enumerate(sc.fleet.pools) if p.row == r]
        if not idx:
            raise ScenarioError(f"row {r!r} holds no pool", path=sc.path, field="plan.power.rows")
        n, plate, brake = 0, 0.0, 0.0
        for i in idx:
            p = sc.fleet.pools[i]
            acc = accelerator_power(p.accelerator)
            top = float(p.power_cap_w) if p.power_cap_w is not None else float(acc.tdp_w)
            g = p.gpus_per_server
            k = p.server.per_gpu_w / float(acc.tdp_w)
            ns = p.servers
            n += ns
            plate += ns * (g * top * (1 + k) + p.static_w)
            brake += ns * (g * brake_gpu_w(sc, i, ctl) * (1 + k) + p.static_w)
        B = float(pw.rows[r])
        out.append(RowInfo(r, B, idx, n, plate / n, brake / n, int(math.floor(B / (plate / n) + 1e-9))))
    return out


def replica_peak_w(profile) -> float:
    """The highest power (W, whole replica) of a serving profile: its decode iterations at every
    batch (1 k tokens of context per sequence) and its prefill steps of 0.5 k to 8 k tokens."""
    b = np.arange(1, len(profile.dec_t0))
    c = 1024.0 * b
    t = profile.dec_t0[1:] + profile.dec_t1[1:] * c
    e = profile.dec_e0[1:] + profile.dec_e1[1:] * c
    dec = float(np.max(e / t)) if len(b) else 0.0
    x = np.array([512.0, 2048.0, 8192.0])
    pt = profile.pre_t[0] + profile.pre_t[1] * x + profile.pre_t[2] * x * x
    pe = profile.pre_e[0] + profile.pre_e[1] * x + profile.pre_e[2] * x * x
    return max(dec, float(np.max(pe / pt)), float(profile.idle_power_w))


def brake_gpu_w(sc, i: int, ctl) -> float:
    """Per-GPU power (W) of pool ``i`` at full load with the power brake on: from the frontier
    (the profile at the brake's cap or locked clock) for a serving pool, the brake cap for a
    training pool (the training model has no clock lever)."""
    from ..frontier import accelerator_power, build_serving_profile
    from ..frontier.build import _clock_mhz

    p = sc.fleet.pools[i]
    acc = accelerator_power(p.accelerator)
    top = float(p.power_cap_w) if p.power_cap_w is not None else float(acc.power_max_w)
    cap = min(top, max(float(acc.power_min_w), ctl.cap_brake * float(acc.power_max_w)))
    if p.role == "training" or not p.serve:
        return cap
    worst = 0.0
    for j, sv in enumerate(p.serve):
        op = sc.operating_point(i, j)
        op = op.with_clock(_clock_mhz(op.accelerator, ctl.cap_brake)) if ctl.lever == "clock" else op.with_cap(cap)
        worst = max(worst, replica_peak_w(build_serving_profile(op)) / op.tp)
    return worst


def forced_level2(ctl_raw: dict) -> dict:
    """A controller that holds every server at its second level from its first reading on (the
    capped samples): thresholds near zero, no brake, no release, no faults."""
    return dict(ctl_raw, t1=0.001, t2=0.002, brake=1.99, admission=None, outages=[], fail_at_s=None,
                release_hold_s=1e12)


_JOB_DIR: list = []


def _scaled_jobs(sc, f: float):
    """The scenario's training job file with ``round(n x f)`` jobs (the table cycled, new ids), in
    a temporary directory removed at exit: a resized row gets proportionally more (or fewer) jobs."""
    import atexit
    import shutil
    import tempfile
    from pathlib import Path

    from ..workload.jobs import read_jobs

    jobs = read_jobs(sc.demand.training.jobs)
    n = max(1, int(round(len(jobs) * f)))
    out = jobs.iloc[[k % len(jobs) for k in range(n)]].copy()
    out = out.sort_values("submit_s", kind="stable")
    out["job_id"] = np.arange(n, dtype=np.int64)
    if not _JOB_DIR:
        d = tempfile.mkdtemp(prefix="fleet-plan-power-")
        _JOB_DIR.append(d)
        atexit.register(shutil.rmtree, d, True)
    path = Path(_JOB_DIR[0]) / f"jobs_{n}.csv"
    out.to_csv(path, index=False)
    return path


def resized(sc, infos: list[RowInfo], servers: dict[str, int], *, seed: int, horizon_s: float | None,
            controller: dict | None, breakers: list | None, record=("requests",)):
    """``sc`` with each planned row resized to ``servers[row]`` servers and its demand scaled
    (module docstring, step 1), the seed set, and the controller and breakers as given (None:
    removed)."""
    data = sc.content()
    factor_of_pool = {}
    for info in infos:
        n = servers.get(info.row, info.servers_written)
        f = n / info.servers_written
        for i in info.pools:
            factor_of_pool[i] = f
    pools = data["fleet"]["pools"]
    for i, f in factor_of_pool.items():
        p = pools[i]
        gps = int(p.get("gpus_per_server", 8))
        srv = max(1, int(round(math.ceil(int(p["gpus"]) / gps) * f)))
        p["gpus"] = srv * gps
        for s in p.get("serve", []) or []:
            if s.get("replicas") is not None:
                s["replicas"] = max(1, int(round(int(s["replicas"]) * f)))
    # demand: scaled by the factor of the pools serving (inference) or running (training) it
    fs = sorted(set(factor_of_pool.values()))
    if len(fs) > 1:
        raise ScenarioError("plan.power resizes rows by one factor at a time; plan rows serving the same demand "
                            "together (give one row in plan.power.rows)", path=sc.path, field="plan.power.rows")
    f = fs[0] if fs else 1.0
    for k, d in enumerate(data.get("demand", {}).get("inference", []) or []):
        if d.get("synth") is not None:
            d["synth"]["rate"] = float(d["synth"]["rate"]) * f
            if d["synth"].get("seed") is not None:
                d["synth"]["seed"] = int(seed) * 1009 + k
        elif d.get("trace") is not None:
            tr = d["trace"]
            if tr.get("stretch") is not None:
                tr["stretch"]["rate"] = float(tr["stretch"]["rate"]) * f
            else:
                tr["rate_scale"] = float(tr.get("rate_scale", 1.0)) * f
    tr = (data.get("demand") or {}).get("training")
    if tr and tr.get("jobs") is not None and abs(f - 1.0) > 1e-12:
        tr["jobs"] = str(_scaled_jobs(sc, f))
    if tr and tr.get("synth") is not None:
        tr["synth"]["jobs"] = max(1, int(round(int(tr["synth"].get("jobs", 10)) * f)))
        if tr["synth"].get("seed") is not None:
            tr["synth"]["seed"] = int(seed) * 1013
    data["seed"] = int(seed)
    sim = data.setdefault("simulation", {})
    if horizon_s is not None:
        sim["horizon_s"] = float(horizon_s)
    sim["record"] = list(record)
    sim["progress"] = False
    pw = data["fleet"].setdefault("power", {})
    pw.pop("controller", None)
    pw.pop("breakers", None)
    if controller is not None:
        pw["controller"] = controller
    if breakers:
        pw["breakers"] = breakers
    data.pop("plan", None)
    data.pop("expectations", None)
    from ..scenario import parse_scenario

    return parse_scenario(data, path=sc.path)


def _simulate(sc):
    from ..run import simulate_step

    return simulate_step(sc, quiet=True)


def row_series(sim, row: str) -> tuple[np.ndarray, np.ndarray]:
    p = sim.power
    p = p[(p["level"] == "row") & (p["node"] == row)]
    return p["time_s"].to_numpy(), p["power_w"].to_numpy()


def samples(sims, info: RowInfo, n: int, reaction_s: float, dt: float, quantile: float, warmup_s: float = 0.0
            ) -> tuple[np.ndarray, float]:
    """Per-server power samples of a row of ``n`` servers over ``sims`` (from ``warmup_s`` on:
    a run starts empty), and the per-server rise within ``reaction_s`` (the ``quantile`` of the
    rises over every lag up to it)."""
    lags = max(1, int(math.ceil(reaction_s / dt - 1e-9)))
    ps, rises = [], []
    for s in sims:
        t, w = row_series(s, info.row)
        x = w[t >= warmup_s] / n
        ps.append(x)
        for lag in range(1, lags + 1):
            if len(x) > lag:
                rises.append(x[lag:] - x[:-lag])
    p = np.concatenate(ps) if ps else np.zeros(0)
    r = np.concatenate(rises) if rises else np.zeros(1)
    rise = float(np.quantile(r, quantile)) if len(r) else 0.0
    return p, max(0.0, rise)


def _slo(sc) -> dict:
    from ..frontier import canonical_model

    out = {}
    for d in sc.demand.inference:
        out[canonical_model(d.model)] = (d.slo.ttft_s, d.slo.tpot_s)
    return out


def figures(sims, slo: dict, outages: list) -> RunFigures:
    """Pooled figures of verification runs (latency percentiles over every request of every run)."""
    reqs = [s.requests for s in sims]
    req = pd.concat(reqs, ignore_index=True) if reqs else pd.DataFrame()
    done = req[req["status"] == "completed"] if len(req) else req
    trips = sum(int(s.meta.get("protection", {}).get("trips", 0)) for s in sims)
    shares = []
    for s in sims:
        cs = s.meta.get("protection", {}).get("capped_time_share", {})
        shares.append(float(np.mean(list(cs.values()))) if cs else 0.0)
    met = np.ones(len(req), dtype=bool)
    in_out = np.zeros(len(req), dtype=bool)
    if len(req):
        for m, (ttft, tpot) in slo.items():
            mine = (req["model"] == m).to_numpy()
            ok = (req["status"] == "completed").to_numpy().copy()
            if ttft is not None:
                ok &= (req["ttft_s"] <= ttft).to_numpy()
            if tpot is not None:
                ok &= ~(req["tpot_s"] > tpot).to_numpy()
            met[mine] = ok[mine]
        arr = req["arrival_s"].to_numpy()
        for a, b in outages:
            in_out |= (arr >= a) & (arr < b)
    days = sum(float(s.meta.get("horizon_s", 0.0)) for s in sims) / 86400.0
    tok, srv = 0.0, 0
    for s in sims:
        tp = s.pools[s.pools["role"] == "training"]
        tok += float(tp["input_tokens"].sum())
        srv += int(tp["servers"].sum())
    return RunFigures(
        seeds=[int(s.meta.get("seed", 0)) for s in sims], days=days, trips=trips,
        capped_time_share=float(np.mean(shares)) if shares else 0.0,
        ttft_p99_s=float(done["ttft_s"].quantile(0.99)) if len(done) else math.nan,
        tpot_p99_s=float(done["tpot_s"].dropna().quantile(0.99)) if len(done) and done["tpot_s"].notna().any()
        else math.nan,
        slo_attainment=float(met.mean()) if len(met) else 1.0, requests=int(len(req)),
        dropped=int((req["status"] == "dropped").sum()) if len(req) else 0,
        actions=sum(len(s.controller_actions) for s in sims if s.controller_actions is not None),
        train_tokens_per_server=tok / srv if srv else math.nan,
        outage_s=float(sum(b - a for a, b in outages)) * len(sims),
        slo_attainment_in_outages=float(met[in_out].mean()) if in_out.any() else math.nan, sims=list(sims))


def _change(a: float, b: float) -> float:
    return 100.0 * (a / b - 1.0) if b and math.isfinite(a) and math.isfinite(b) else math.nan


def plan_and_verify(sc, spec=None, *, log_fn: Callable[[str], None] | None = None, log=None):
    """Plan, apply, simulate, verify, tighten (module docstring); a :class:`PlanOutcome`."""
    from . import PlanOutcome

    say = log_fn or log or (lambda m: logging.getLogger("fleet.plan").info(m))
    spec = _spec(sc, spec)
    t_start = time.perf_counter()
    infos = row_infos(sc, spec)
    ctl = _controller(sc)
    slo = _slo(sc)
    dt = float(sc.simulation.telemetry_interval_s)
    reaction = ctl.interval_s + ctl.telemetry_delay_s + ctl.actuation_delay_s
    base_seed = int(sc.seed)
    n0 = {i.row: i.nameplate_servers for i in infos}
    for i in infos:
        if i.nameplate_servers < 1:
            raise ScenarioError(f"row {i.row}: its {i.budget_w / 1e3:g} kW budget holds no server of "
                                f"{i.nameplate_w / 1e3:.2f} kW nameplate", path=sc.path, field=f"fleet.power.rows.{i.row}")
    # ---- samples: the nameplate row, uncontrolled
    t0 = time.perf_counter()
    sample_sims = [_simulate(resized(sc, infos, n0, seed=base_seed + k, horizon_s=spec.horizon_s, controller=None,
                                     breakers=None, record=("requests",)))
                   for k in range(spec.seeds)]
    ctl_raw = ctl.model_dump(mode="json")
    capped_sims = [_simulate(resized(sc, infos, n0, seed=base_seed + k, horizon_s=spec.horizon_s,
                                     controller=forced_level2(ctl_raw), breakers=None, record=("requests",)))
                   for k in range(spec.seeds)]
    sample_s = time.perf_counter() - t0
    rows = []
    for i in infos:
        p, rise = samples(sample_sims, i, i.nameplate_servers, reaction, dt, spec.rise_quantile, spec.warmup_s)
        q, _ = samples(capped_sims, i, i.nameplate_servers, reaction, dt, spec.rise_quantile, spec.warmup_s)
        most = None
        if spec.max_extra_pct is not None:
            most = int(math.floor(i.nameplate_servers * (1 + spec.max_extra_pct / 100.0) + 1e-9))
        rows.append(pp.RowData(i.row, i.budget_w, p, rise, i.brake_w, i.nameplate_w, capped_w=q, max_servers=most,
                               words=f"{i.row} ({', '.join(sc.fleet.pools[k].name for k in i.pools)})"))
    for r in rows:
        capped_max = float(np.max(r.capped_w)) if r.capped_w is not None else math.nan
        say(f"{r.row}: per-server power mean {np.mean(r.samples_w):.0f} W, p99 {np.quantile(r.samples_w, 0.99):.0f} W, "
            f"max {np.max(r.samples_w):.0f} W; at the second level max {capped_max:.0f} W (nameplate {r.nameplate_w:.0f} W, brake {r.brake_w:.0f} W), rise within "
            f"{reaction:g} s {r.rise_w:.0f} W")
    say(f"samples: {sum(len(r.samples_w) for r in rows)} per-server power samples from {spec.seeds} seed(s) of "
        f"the nameplate row ({sample_s:.1f} s)")
    # ---- verification baseline: the nameplate row on the verification seeds, uncontrolled
    vseeds = [base_seed + 1000 + k for k in range(spec.verify_seeds)]
    base_sims = [_simulate(resized(sc, infos, n0, seed=s, horizon_s=spec.horizon_s, controller=None, breakers=None,
                                   record=("requests", "power")))
                 for s in vseeds]
    base = figures(base_sims, slo, [])
    outages = [list(o) for o in ctl_raw.get("outages", [])] + [list(o) for o in spec.outages]
    breakers = [b.model_dump(mode="json") for b in sc.fleet.power.breakers] or [dict(DEFAULT_BREAKER)]
    cuts: dict[str, int] = {}
    share = float(spec.max_capped_share)
    rounds, plan, sol, fig, planned_sc, solve_s = [], None, None, None, sc, 0.0
    verified = False
    for k in range(int(spec.rounds)):
        problem = pp.PowerProblem(tuple(rows), tuple(spec.t1), share, float(spec.budget_exceed_share),
                                  float(spec.t2_offset), float(spec.brake_offset))
        t0 = time.perf_counter()
        plan, sol, ex = pp.solve(problem, time_limit_s=float(spec.time_limit_s), cuts=cuts)
        solve_s += time.perf_counter() - t0
        if plan is None:
            if ex is not None:
                raise InfeasibleError(f"{sc.name}: plan.power: no server count satisfies every constraint"
                                      + (f" (round {k + 1})" if k else ""), ex.lines() or [ex.note])
            raise FleetError(f"{sc.name}: plan.power: no plan within {spec.time_limit_s:g} s ({sol.status})")
        servers = {r: rp.servers for r, rp in plan.rows.items()}
        row_ctl: dict[str, Any] | None = dict(ctl_raw, outages=outages)
        rp0 = next(iter(plan.rows.values()))
        assert row_ctl is not None
        row_ctl.update(t1=rp0.t1, t2=rp0.t2, brake=rp0.brake)
        if ctl_raw.get("admission") is not None and ctl_raw["admission"] <= rp0.brake:
            row_ctl["admission"] = None
        if all(rp.servers <= rp.nameplate_servers for rp in plan.rows.values()):
            row_ctl = None          # not oversubscribed: the row never exceeds its budget, nothing to cap
        planned_sc = resized(sc, infos, servers, seed=base_seed, horizon_s=None, controller=row_ctl, breakers=breakers,
                             record=tuple(sc.simulation.record))
        say(f"round {k + 1}: {sol.status}: " + ", ".join(
            f"{r}: {rp.servers} servers ({rp.extra_pct:+.1f} % over nameplate {rp.nameplate_servers}), t1 {rp.t1:.0%}"
            for r, rp in plan.rows.items()))
        sims = [_simulate(resized(sc, infos, servers, seed=s, horizon_s=spec.horizon_s, controller=row_ctl,
                                  breakers=breakers, record=("requests", "power")))
                for s in vseeds]
        fig = figures(sims, slo, outages)
        ttft_ch = _change(fig.ttft_p99_s, base.ttft_p99_s)
        tpot_ch = _change(fig.tpot_p99_s, base.tpot_p99_s)
        fails = []
        if fig.trips:
            fails.append(f"{fig.trips} breaker trip(s)")
        if math.isfinite(base.ttft_p99_s) and not ttft_ch <= spec.latency_tolerance_pct:
            fails.append(f"p99 TTFT {ttft_ch:+.1f} % (tolerance {spec.latency_tolerance_pct:g} %)")
        if math.isfinite(base.tpot_p99_s) and not tpot_ch <= spec.latency_tolerance_pct:
            fails.append(f"p99 TPOT {tpot_ch:+.1f} % (tolerance {spec.latency_tolerance_pct:g} %)")
        train_ch = _change(fig.train_tokens_per_server, base.train_tokens_per_server)
        if math.isfinite(train_ch) and not train_ch >= -spec.latency_tolerance_pct:
            fails.append(f"training throughput per server {train_ch:+.1f} % (tolerance {spec.latency_tolerance_pct:g} %)")
        if fig.slo_attainment < spec.slo_target:
            fails.append(f"SLO attainment {fig.slo_attainment:.4f} below {spec.slo_target:g}")
        rounds.append({"round": k + 1, **sol.figures(), "servers": servers,
                       "t1": {r: rp.t1 for r, rp in plan.rows.items()}, "max_capped_share": share,
                       **{f"verify_{kk}": v for kk, v in fig.as_dict().items()},
                       "p99_ttft_change_pct": ttft_ch, "p99_tpot_change_pct": tpot_ch,
                       "training_throughput_change_pct": train_ch, "failures": fails})
        if not fails:
            verified = True
            say(f"round {k + 1}: verified on {len(vseeds)} seed(s): no trip, p99 TTFT {ttft_ch:+.1f} %, "
                f"p99 TPOT {tpot_ch:+.1f} %, training tokens per server {train_ch:+.1f} %, SLO attainment "
                f"{fig.slo_attainment:.4f}")
            break
        say(f"round {k + 1}: rejected ({'; '.join(fails)}): one server fewer, capped-time target halved")
        for rname, rp in plan.rows.items():
            cuts[rname] = max(rp.nameplate_servers, rp.servers - 1)
        share /= 2.0
        if all(rp.servers <= rp.nameplate_servers for rp in plan.rows.values()):
            break
    assert plan is not None and fig is not None and sol is not None, "at least one round ran"
    m: dict[str, Any] = {
        "extra_servers_pct": plan.extra_pct, "servers": plan.servers, "nameplate_servers": plan.nameplate_servers,
        "trips": fig.trips, "capped_time_share": fig.capped_time_share,
        "p99_ttft_change_pct": _change(fig.ttft_p99_s, base.ttft_p99_s),
        "p99_tpot_change_pct": _change(fig.tpot_p99_s, base.tpot_p99_s),
        "training_throughput_change_pct": _change(fig.train_tokens_per_server, base.train_tokens_per_server),
        "days_simulated": fig.days + base.days + sum(float(s.meta.get("horizon_s", 0))
                                                      for s in sample_sims + capped_sims) / 86400.0,
        "days_verified": fig.days, "seeds": fig.seeds, "sample_seeds": [base_seed + k for k in range(spec.seeds)],
        "slo_attainment": fig.slo_attainment, "baseline_slo_attainment": base.slo_attainment,
        "slo_attainment_in_outages": fig.slo_attainment_in_outages, "outage_s": fig.outage_s,
        "p99_ttft_s": fig.ttft_p99_s, "p99_tpot_s": fig.tpot_p99_s, "baseline_p99_ttft_s": base.ttft_p99_s,
        "baseline_p99_tpot_s": base.tpot_p99_s, "controller_actions": fig.actions,
        "rows": {r: {"servers": rp.servers, "nameplate_servers": rp.nameplate_servers, "extra_pct": rp.extra_pct,
                     "t1": rp.t1, "t2": rp.t2, "brake": rp.brake, "capped_share_model": rp.capped_share_model,
                     "exceed_share_model": rp.exceed_share_model}
                 for r, rp in plan.rows.items()},
        "status": sol.status, "verified": verified, "rounds": len(rounds), "solve_s": solve_s,
        "plan_wall_s": time.perf_counter() - t_start,
    }
    decisions = []
    for info in infos:
        rp = plan.rows[info.row]
        decisions.append({"path": f"fleet.power.rows[{info.row}].servers", "value": rp.servers,
                          "was": info.servers_written,
                          "note": f"servers in the row (nameplate allows {rp.nameplate_servers}: "
                                  f"{rp.extra_pct:+.1f} %)"})
        decisions.append({"path": "fleet.power.controller.t1", "value": rp.t1, "was": ctl.t1,
                          "note": f"first threshold (then t2 {rp.t2:.0%}, brake {rp.brake:.0%} of the budget)"})
    out = PlanOutcome("power", sol.status, verified, planned_sc, sol.figures(), decisions, rounds, m, {},
                      fig.sims[0] if fig.sims else None, base.sims[0] if base.sims else None)
    out.tables["rows"] = pd.DataFrame([{"row": r, **v} for r, v in m["rows"].items()])
    out.tables["samples"] = pd.DataFrame({"row": np.concatenate([[r.row] * len(r.samples_w) for r in rows]),
                                          "server_power_w": np.concatenate([r.samples_w for r in rows])})
    out.notes.append(f"per-server power samples from {spec.seeds} seed(s) of the nameplate row; reaction time "
                     f"{reaction:g} s (sampling {ctl.interval_s:g} s + telemetry delay {ctl.telemetry_delay_s:g} s "
                     f"+ actuation {ctl.actuation_delay_s:g} s), rise per server "
                     + ", ".join(f"{r.row} {r.rise_w:.0f} W" for r in rows))
    out.notes.append(f"verified with breakers {breakers} and telemetry outages {outages or 'none'}; latency "
                     f"compared with the nameplate row on the same seeds")
    if not verified:
        out.notes.append(f"the plan did not verify in {len(rounds)} round(s); the last round is reported")
    return out


# ------------------------------------------------------------------------------ CLI
def add_arguments(p) -> None:
    from pathlib import Path

    from ..commands._common import add_json_flag

    p.add_argument("scenario", type=Path, help="scenario YAML")
    p.add_argument("--seeds", type=int, default=None, metavar="N", help="sampling seeds (default plan.power.seeds)")
    p.add_argument("--verify-seeds", type=int, default=None, metavar="N",
                   help="verification seeds (default plan.power.verify_seeds)")
    add_json_flag(p)


def cli(args) -> int:
    from ..commands._common import emit
    from ..scenario import load_scenario

    sc = load_scenario(args.scenario)
    spec = _spec(sc, None)
    upd = {}
    for name, v in (("seeds", args.seeds), ("verify_seeds", args.verify_seeds)):
        if v is not None:
            if v < 1:
                raise FleetError(f"--{name.replace('_', '-')}: expected a positive integer, got {v}")
            upd[name] = v
    if upd:
        spec = spec.model_copy(update=upd)
    out = plan_and_verify(sc, spec, log_fn=None if args.json else (lambda msg: print(msg)))
    m = out.metrics
    keys = ("extra_servers_pct", "servers", "nameplate_servers", "trips", "capped_time_share", "p99_ttft_change_pct",
            "p99_tpot_change_pct", "days_simulated", "days_verified", "seeds", "slo_attainment",
            "baseline_slo_attainment", "slo_attainment_in_outages", "rows", "status", "verified", "solve_s",
            "plan_wall_s")
    doc = {k: m.get(k) for k in keys}
    doc.update({"rounds": out.rounds, "decisions": out.decisions, "solver": out.solver, "notes": out.notes,
                "scenario_hash": sc.hash(), "planned_scenario_hash": out.scenario.hash()})
    if args.json:
        emit(doc, True)
    else:
        lines = [f"plan power: {out.status}, {'verified' if out.verified else 'NOT verified'} after "
                 f"{len(out.rounds)} round(s)"]
        for r, v in m["rows"].items():
            lines.append(f"  {r}: {v['servers']} servers (nameplate {v['nameplate_servers']}, {v['extra_pct']:+.1f} %), "
                         f"thresholds t1 {v['t1']:.0%}, t2 {v['t2']:.0%}, brake {v['brake']:.0%}")
        pct = lambda x: "n/a" if x is None or not math.isfinite(x) else f"{x:+.1f} %"  # noqa: E731
        lines.append(f"  trips {m['trips']}, capped time {m['capped_time_share']:.2%}, p99 TTFT "
                     f"{pct(m['p99_ttft_change_pct'])}, p99 TPOT {pct(m['p99_tpot_change_pct'])}, training tokens "
                     f"per server {pct(m.get('training_throughput_change_pct'))}, {m['days_simulated']:.2f} simulated "
                     f"days, seeds {m['seeds']}")
        emit(doc, False, "\n".join(lines))
    return 0 if out.verified else 1
