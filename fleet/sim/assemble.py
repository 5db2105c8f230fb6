"""Wiring: a :class:`~fleet.sim.input.SimInput` in, a :class:`~fleet.sim.result.SimResult` out.

``simulate(x)`` takes the typed input (:func:`fleet.siminput.sim_input` builds it from a
scenario; for convenience anything with a ``sim_input()`` method, such as a loaded
:class:`~fleet.scenario.Scenario`, is converted).  Errors are :class:`~fleet.errors.ScenarioError`
naming the YAML field of the item that caused them (``fleet.pools[i].serve[j]``,
``demand.inference[k].trace``, ``demand.training``, ``schedule.<pool>``), carried by the input.

Steps:

1. demand: every inference demand's trace (read, windowed, rate-scaled, time-shifted) or
   synthetic stream, labelled with its model and merged into one request table;
2. profiles: one :class:`~fleet.frontier.ServingProfile` per (pool, served model) from
   :func:`fleet.frontier.build_serving_profile` at the pool's power cap (or from
   ``profile_factory``, the hook tests and the planner use);
3. the serving engine (:class:`fleet.sim.engine.Engine`): one engine pool per (pool, model),
   named like the scenario pool when it serves one model, else ``f"{pool}:{model}"``; one router
   per model over every pool that serves it;
4. training pools (:mod:`fleet.sim.training`), one ``TrainingScheduler`` each, on the same
   engine: SimPy processes on ``Engine.env`` driven by its run loop, segments through
   ``Engine.record`` (nodes ``f"{pool}/s{k}"``, one per server), so serving and training power
   share one clock (a power-capping controller registered with ``on_engine`` sees and acts on
   both; a training-only fleet runs on an engine without serving pools);
5. the power tree and telemetry (:mod:`fleet.sim.power`), and the pool table;
6. the replica schedule (``schedule`` of the input), applied by the engine at each hour
   boundary (:meth:`fleet.sim.engine.Engine.set_schedule`); the active replicas per hour and
   engine pool are the ``schedule`` table of the result (every pool, scheduled or not).
   Inactive replicas draw ``simulation.inactive``: 'idle' (the profile's idle power, i.e. the
   catalog's measured idle_w per GPU) or 'off' (the catalog's modelled standby_w per GPU); the
   server overhead is unchanged (a server with powered-down GPUs is still on).

``simulation.mode: fluid`` replaces step 3 by :func:`fleet.sim.fluid.run_fluid` (hourly steps,
calibrated per group on request-level windows) and skips generating the requests; training then
runs on an engine of its own (no serving pools).  Fluid mode refuses a replica schedule (the
fluid model is calibrated for a fixed replica count): simulate it at request level.

Horizon: ``simulation.horizon_s``, or the end of the demand (the last synthetic hour, the last
trace arrival, the last training submission) plus :data:`DRAIN_S` for requests in flight; always
rounded up to a whole number of telemetry intervals so every telemetry bin is complete.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Protocol

import numpy as np
import pandas as pd

from ..errors import FleetError, ScenarioError
from .input import SCHEDULE_STEP_S, SimInput, TraceInput
from .power import Placement, bin_energy, build_tree, telemetry
from .result import POOL_COLUMNS, JOB_COLUMNS, SCHEDULE_COLUMNS, SimResult

if TYPE_CHECKING:
    from ..frontier import OperatingPoint, ServingProfile

if TYPE_CHECKING:  # pragma: no cover
    from ..frontier.profile import ServingProfile

#: seconds added after the end of the demand when no horizon is given (requests in flight finish)
DRAIN_S = 120.0
#: largest (gpu nodes x telemetry intervals) table built (about 1 GB per float64 array)
MAX_TELEMETRY_CELLS = 120_000_000
#: every ``fleet simulate`` output folder holds this file: a folder without it is not replaced
SIM_MARKER = "meta.json"
#: model trained by jobs that name none
DEFAULT_TRAINING_MODEL = "llama-3.1-8b"


def _sub_seed(seed: int, *key: int) -> int:
    return int(np.random.SeedSequence([int(seed) & 0xFFFFFFFF, *key]).generate_state(1)[0])


# ---------------------------------------------------------------------- demand
def _scenario_error(x: SimInput, exc: FleetError, field: str) -> ScenarioError:
    """``exc`` as a ScenarioError naming ``field`` of the scenario (a ScenarioError is kept)."""
    if isinstance(exc, ScenarioError):
        return exc
    return ScenarioError(str(exc), path=x.path, field=field)


def trace_demand(x: SimInput, k: int, tr: TraceInput) -> tuple[pd.DataFrame, float]:
    """The requests of ``demand.inference[k].trace`` (read, windowed, rate-scaled, shifted) and
    the end of that demand (s).  Shared by the request-level and the fluid simulation."""
    from ..workload import traces

    try:
        df = traces.read_trace(tr.path, tr.format, tr.mapping)
        if tr.window is not None:
            df = traces.window(df, tr.window[0], tr.window[1])
        st = tr.stretch
        if st is not None:
            from ..workload import synth

            df = synth.stretch_trace(df, synth.diurnal_profile(st.rate, st.peak_to_trough, st.peak_hour),
                                     st.hours * 3600.0, _sub_seed(x.seed, 3, k), cv=st.cv)
        if tr.rate_scale != 1.0:
            df = traces.scale_rate(df, tr.rate_scale, seed=_sub_seed(x.seed, 1, k))
        if tr.time_shift_s:
            df = traces.time_shift(df, tr.time_shift_s)
        _check_requests(df)
    except FleetError as exc:
        raise _scenario_error(x, exc, tr.field) from exc
    end = float(df["arrival_s"].iloc[-1]) if len(df) else 0.0
    if st is not None:
        end = max(end, st.hours * 3600.0 + tr.time_shift_s)
    elif tr.window is not None:
        end = max(end, tr.window[1] - tr.window[0] + tr.time_shift_s)
    return df, end


def _check_requests(df: pd.DataFrame) -> None:
    """What the engine requires of a request table, checked per demand so that an error names it."""
    from ..errors import InputError

    if not len(df):
        return
    arr = df["arrival_s"].to_numpy(dtype=np.float64)
    if not np.all(np.isfinite(arr)) or arr.min() < 0:
        raise InputError("arrival_s must be finite and >= 0", expected="seconds from the start")
    for c in ("input_tokens", "output_tokens"):
        v = df[c].to_numpy()
        if v.min() < 1:
            raise InputError(f"{c} must be >= 1 (row {int(np.argmin(v))})", expected="a positive integer")


def build_requests(x: SimInput) -> tuple[pd.DataFrame, float]:
    """The merged request table of every inference demand and the end of the demand (s)."""
    from ..workload import synth, traces

    frames, end = [], 0.0
    for k, d in enumerate(x.inference):
        model = d.model
        if d.trace is not None:
            df, d_end = trace_demand(x, k, d.trace)
        else:
            sy = d.synth
            assert sy is not None, "an inference demand has a trace or a synth (checked on load)"
            try:
                tokens = _synth_tokens(sy)
                seed = sy.seed if sy.seed is not None else _sub_seed(x.seed, 2, k)
                duration = sy.hours * 3600.0
                df = synth.synth_trace(sy.profile, sy.rate, duration, seed, cv=sy.cv, tokens=tokens,
                                       peak_to_trough=sy.peak_to_trough, peak_hour=sy.peak_hour,
                                       servegen_model=sy.servegen_model)
            except FleetError as exc:
                raise _scenario_error(x, exc, sy.field) from exc
            d_end = duration
        df = df.copy()
        df["model"] = model
        frames.append(df)
        end = max(end, d_end)
    if not frames:
        return pd.DataFrame({"request_id": np.zeros(0, np.int64), "arrival_s": np.zeros(0),
                             "input_tokens": np.zeros(0, np.int64), "output_tokens": np.zeros(0, np.int64),
                             "model": np.zeros(0, dtype=object)}), 0.0
    if len(frames) == 1:
        req = frames[0]
    else:
        req = traces.merge(frames)
    return req, end


def _synth_tokens(sy):
    """The token sampler of a synthetic demand: None (the generator's Azure-conversation fit) or
    lognormal with the given means and coefficient of variation."""
    from ..workload import synth

    if sy.input_tokens is None and sy.output_tokens is None:
        return None
    base = synth.AZURE_CONV_LOGNORMAL
    sig = math.sqrt(math.log(1.0 + sy.tokens_cv ** 2))
    mi, mo = base.mean()
    mi = sy.input_tokens or mi
    mo = sy.output_tokens or mo
    return synth.LognormalTokens(math.log(mi) - sig * sig / 2, sig, math.log(mo) - sig * sig / 2, sig, 0.0,
                                 source=f"lognormal means {mi:g}/{mo:g}, cv {sy.tokens_cv:g}")


def build_jobs(x: SimInput, pool) -> pd.DataFrame:
    """The training job table of a training pool (empty if the demand has none for it)."""
    from ..workload import jobs as wjobs

    tr = x.training
    if tr is None or tr.pool != pool.name:
        return pd.DataFrame(columns=list(wjobs.JOB_COLUMNS))
    try:
        if tr.jobs is not None:
            df = wjobs.read_jobs(tr.jobs)
        else:
            s = tr.synth
            assert s is not None, "training demand has jobs or a synth (checked on load)"
            df = wjobs.generate_jobs(n=s.jobs, horizon_s=s.hours * 3600.0,
                                     seed=s.seed if s.seed is not None else _sub_seed(x.seed, 3),
                                     deferrable_frac=s.deferrable_fraction,
                                     max_gpus=min(pool.gpus, s.max_gpus or pool.gpus),
                                     model=s.model or tr.model)
    except FleetError as exc:
        raise _scenario_error(x, exc, tr.field) from exc
    df = df.copy()
    default = tr.model or DEFAULT_TRAINING_MODEL
    df["model"] = [m if isinstance(m, str) and m else default for m in df["model"]]
    return df


# ---------------------------------------------------------------------- profiles
class ProfileFactory(Protocol):
    """``factory(op) -> ServingProfile``: the profile one replica of each (pool, served model)
    runs, given its :class:`~fleet.frontier.OperatingPoint` (model, accelerator, tp, ep,
    precisions, the pool's power cap, max batch, device constants)."""

    def __call__(self, op: OperatingPoint) -> ServingProfile: ...


def default_profile_factory(op: OperatingPoint) -> ServingProfile:
    """Profiles from the energy model at ``op`` (cached on it)."""
    from ..frontier import build_serving_profile

    return build_serving_profile(op)


@dataclass
class _Group:
    """One engine pool: a served model of a scenario pool."""

    pool: str
    engine_pool: str
    model: str
    replicas: int
    tp: int
    profile: ServingProfile
    serve: object = None     # the input's ServeInput (its ``field`` names it in the scenario)
    pool_in: object = None   # the input's PoolInput


def _groups(x: SimInput, factory: ProfileFactory) -> list[_Group]:
    out = []
    for pool in x.pools:
        if pool.role != "serving":
            continue
        for s in pool.serve:
            assert s.op is not None, "the typed input carries each serve entry's operating point"
            try:
                prof = factory(s.op)
            except FleetError as exc:
                raise _scenario_error(x, exc, s.field) from exc
            out.append(_Group(pool.name, s.engine_pool, s.model, int(s.replicas), s.tp, prof, s, pool))
    return out


# ---------------------------------------------------------------------- simulate
def _horizon(x: SimInput, demand_end: float, jobs_end: float, dt: float, drain: bool = True) -> float:
    h = x.simulation.horizon_s
    if h is None:
        end = max(demand_end, jobs_end)
        if end <= 0:
            raise ScenarioError("no demand to simulate and no horizon: give simulation.horizon_s",
                                path=x.path, field=f"{x.simulation.field}.horizon_s")
        h = end + (DRAIN_S if drain else 0.0)
    if dt > h * (1.0 + 1e-9):
        # stretching the horizon to one interval would inflate energy, cost and carbon
        what = "horizon_s" if x.simulation.horizon_s is not None else "the end of the demand (no horizon_s)"
        raise ScenarioError(f"the telemetry interval ({dt:g} s{', fluid mode steps at least an hour' if not drain else ''}) "
                            f"is longer than the simulated time ({h:g} s, {what}); expected an interval <= the "
                            f"horizon", path=x.path, field=f"{x.simulation.field}.telemetry_interval_s")
    return math.ceil(h / dt - 1e-9) * dt


def simulate(x, *, mode: str | None = None, progress: bool | None = None,
             profile_factory: ProfileFactory | None = None,
             requests: pd.DataFrame | None = None,
             release_signal: Callable[[float], bool] | None = None,
             release_check_s: float = 3600.0,
             on_engine: Callable[..., None] | None = None,
             controller=None) -> SimResult:
    """Simulate ``x``, a :class:`~fleet.sim.input.SimInput` (or anything with a ``sim_input()``
    method, such as a loaded :class:`~fleet.scenario.Scenario`; ``fleet.simulate`` also takes a path).

    ``mode`` overrides ``simulation.mode``; ``progress`` shows a progress bar; ``requests``
    replaces the scenario's inference demand (a canonical table with a ``model`` column);
    ``profile_factory(op)`` (a :class:`ProfileFactory`: an
    :class:`~fleet.frontier.OperatingPoint` in, a ServingProfile out) replaces the energy
    model's profile builder.  ``release_signal(t_s) -> bool``
    releases waiting deferrable training jobs when true (polled every ``release_check_s``): the
    hook for a carbon- or price-aware policy (e.g. grid intensity below a threshold).
    ``on_engine(eng, training)`` is called once everything is registered and before the run,
    with the :class:`~fleet.sim.engine.Engine` and the training schedulers by pool name: the
    hook for a controller (``eng.every(dt, cb)``; ``eng.replicas()[i].set_profile(p)``,
    ``training[pool].set_cap(w)``, ``training[pool].power_w()``); in fluid mode the engine
    carries the training pools only.  ``controller``: a power-capping controller of your own
    (:class:`fleet.sim.control.Controller`) run by the protection harness in place of the
    built-in POLCA-style one, with the delays and faults of ``fleet.power.controller`` (its
    defaults when the scenario has none).
    """
    from ..frontier.training import training_profile_for_job
    from .engine import Engine
    from .training import TrainingScheduler

    if not isinstance(x, SimInput):
        conv = getattr(x, "sim_input", None)
        if not callable(conv):
            raise TypeError("simulate() takes a SimInput (fleet.siminput.sim_input(scenario)) or a loaded "
                            "scenario; fleet.simulate(path) loads one for you")
        x = conv()
    wall0 = time.perf_counter()
    stages: dict[str, float] = {}
    lap = [wall0]

    def mark(name: str) -> None:
        now = time.perf_counter()
        stages[name] = round(now - lap[0], 4)
        lap[0] = now

    sim = x.simulation
    mode = mode or sim.mode
    progress = sim.progress if progress is None else progress
    dt = sim.telemetry_interval_s
    factory = profile_factory or default_profile_factory

    fluid = mode == "fluid"
    if fluid and x.schedule:
        raise ScenarioError("a replica schedule is simulated at request level only (the fluid model is "
                            "calibrated for a fixed replica count): use mode coalesced or iteration, "
                            "or remove 'schedule'", path=x.path, field=x.schedule[0].field)
    if fluid:
        # hourly steps; the telemetry interval is the step (at least an hour)
        from .fluid import hourly_demand

        dt = max(dt, 3600.0)
        demand = hourly_demand(x, dt)
        req, demand_end = None, max([d.end_s for d in demand.values()] or [0.0])
    elif requests is None:
        req, demand_end = build_requests(x)
    else:
        req = requests
        demand_end = float(req["arrival_s"].max()) if len(req) else 0.0
    tpools = x.training_pools()
    job_tables = {p.name: build_jobs(x, p) for p in tpools}
    jobs_end = max([float(j["submit_s"].max()) for j in job_tables.values() if len(j)] or [0.0])
    horizon = _horizon(x, demand_end, jobs_end, dt, drain=not fluid)
    mark("demand_s")
    groups = _groups(x, factory)
    mark("profiles_s")

    # ---------------------------------------------------------------- power tree
    placements: dict[str, list[Placement]] = {}
    for g in groups:
        placements.setdefault(g.pool, []).append(
            Placement(f"{g.engine_pool}/r", g.replicas, g.tp, idle_w=float(g.profile.idle_power_w)))
    tree = build_tree(x.pools, x.power, placements)
    cells = len(tree.gpu_nodes) * round(horizon / dt)
    if cells > MAX_TELEMETRY_CELLS:
        raise ScenarioError(
            f"telemetry of {len(tree.gpu_nodes)} GPU nodes x {round(horizon / dt):,} intervals "
            f"({cells:,} cells) would not fit in memory; expected at most {MAX_TELEMETRY_CELLS:,}: use a "
            f"telemetry interval of at least {math.ceil(len(tree.gpu_nodes) * horizon / MAX_TELEMETRY_CELLS)} s "
            f"or simulation.mode: fluid", path=x.path, field=f"{sim.field}.telemetry_interval_s")

    # ---------------------------------------------------------------- serving
    fluid_info, fluid_run, bar = None, None, None
    if fluid:
        from .fluid import run_fluid

        fluid_run, fluid_info = run_fluid(x, groups, demand, horizon, dt)
        eng = Engine(horizon, seed=x.seed)          # the training pools' clock
    else:
        eng, bar = _build_engine(x, groups, req if groups else None, horizon, dt, mode, progress)
    mark("serving_s")

    # ---------------------------------------------------------------- training (same engine)
    training: dict[str, TrainingScheduler] = {}
    for pool in tpools:
        cap = pool.power_cap_w

        def prof_for(model, gpus, ci, power_cap_w=None, _acc=pool.accelerator, _cap=cap):
            return training_profile_for_job(model, _acc, gpus,
                                            power_cap_w=_cap if power_cap_w is None else power_cap_w,
                                            checkpoint_interval_s=ci if ci and ci > 0 else 3600.0,
                                            calibrated=sim.constants == "calibrated")

        servers = [min(pool.gpus_per_server, pool.gpus - k * pool.gpus_per_server) for k in range(pool.servers)]
        tr = x.training
        try:
            sched = TrainingScheduler(eng, pool.name, servers, job_tables[pool.name], prof_for,
                                      idle_w_per_gpu=pool.idle_w, interval_s=dt, horizon_s=horizon,
                                      release_times=(dict(tr.release_times) if tr is not None and
                                                     tr.release_times is not None else None),
                                      release_signal=release_signal, release_check_s=release_check_s)
        except FleetError as exc:
            raise _scenario_error(x, exc, tr.field if tr is not None else pool.field) from exc
        sched.start()
        if tr is not None and tr.schedule and tr.pool == pool.name:
            sched.set_job_plan({int(k): list(v) for k, v in tr.schedule.items()})
        training[pool.name] = sched
    protection = None
    if controller is not None and x.power.controller is None:
        import dataclasses

        from .input import ControllerInput

        x = dataclasses.replace(x, power=dataclasses.replace(x.power, controller=ControllerInput(
            field=f"{x.power.field}.controller")))
    if x.power.breakers or x.power.controller is not None:
        if fluid and groups:
            raise ScenarioError("breakers and the capping controller act on the live power of the request-level "
                                "simulation: use mode coalesced or iteration (or simulate representative windows)",
                                path=x.path, field=x.power.field)
        from .protection import attach

        try:
            protection = attach(x, tree, eng, training, groups, factory, controller=controller)
        except FleetError as exc:
            raise _scenario_error(x, exc, x.power.field) from exc
    if on_engine is not None:
        on_engine(eng, training)
    mark("training_s")

    try:
        run = eng.run()
    except FleetError as exc:
        raise _scenario_error(x, exc, _field_of(x, groups, getattr(exc, "sim_origin", None))) from exc
    finally:
        if bar is not None:
            bar.n = round(horizon)
            bar.close()
    job_frames = [s_.jobs_frame() for s_ in training.values()]
    train_events = sum(s_.events for s_ in training.values())
    busy_gpu_s = {name: s_.busy_gpu_s for name, s_ in training.items()}
    engine_events = int(run.meta.get("events", 0))
    seg_runs = [run]
    if fluid_run is not None:
        seg_runs.insert(0, fluid_run)       # serving (fluid) first, then the training engine's
        run = fluid_run
    mark("engine_s")

    # segments as indices into the tree's gpu nodes (no per-segment strings: millions of them)
    gidx = tree.gpu_index()
    parts_idx, parts = [], []
    for r_ in seg_runs:
        seg_ = r_.segments
        name_to_idx = np.array([gidx.get(n, -1) for n in seg_.node_names], dtype=np.int64)
        parts_idx.append(name_to_idx[seg_.node_id] if len(seg_) else np.zeros(0, np.int64))
        parts.append((seg_.t0, seg_.t1, seg_.energy_j))
    node_idx = np.concatenate(parts_idx)
    if np.any(node_idx < 0):
        raise RuntimeError("power segments recorded for nodes that are not in the power tree")
    segments = {"node_idx": node_idx, "t0": np.concatenate([p[0] for p in parts]),
                "t1": np.concatenate([p[1] for p in parts]), "energy_j": np.concatenate([p[2] for p in parts])}
    if protection is not None:
        protection.finish(horizon)
    binned = bin_energy(segments, tree, dt, horizon,
                        dark=protection.dark() if protection is not None else None)
    levels = ("gpu", "server", "rack", "row", "site", "pool") if "power" in sim.record \
        else ("rack", "row", "site", "pool")
    power = telemetry(None, tree, dt, horizon, levels=levels, binned=binned)
    mark("power_s")

    # ---------------------------------------------------------------- tables
    requests_df = run.requests.copy()
    to_pool = {g.engine_pool: g.pool for g in groups}
    if len(requests_df):
        requests_df["engine_pool"] = requests_df["pool"]
        requests_df["pool"] = requests_df["pool"].map(lambda p: to_pool.get(p, p))
    pools = _pool_table(x, groups, run.pools, tree, binned, horizon, busy_gpu_s, job_frames)
    schedule = _schedule_table(groups, eng if not fluid else None, horizon)
    jobs = pd.concat(job_frames, ignore_index=True) if job_frames else \
        pd.DataFrame({c: pd.Series(dtype=_JOB_DTYPES.get(c, "object")) for c in JOB_COLUMNS})
    meta = {
        "scenario": x.name, "scenario_hash": x.scenario_hash, "scenario_path": str(x.path) if x.path else None,
        "seed": x.seed, "horizon_s": horizon, "telemetry_interval_s": dt,
        "start_utc": x.start_utc.isoformat(), "mode": mode, "router": sim.router,
        # events of the engine loop (serving and training processes on one clock), plus the fluid
        # steps; training_events: the training schedulers' decisions
        "events": engine_events + (int(fluid_run.meta.get("events", 0)) if fluid_run is not None else 0),
        "engine_events": engine_events, "training_events": train_events,
        "requests": int(len(requests_df)), "segments": int(len(segments["t0"])),
        "engine_loop_wall_s": run.meta.get("loop_wall_s"),
        "profiles": {g.engine_pool: {"model": g.model, "accelerator": g.profile.accelerator, "tp": g.tp,
                                     "power_cap_w": float(g.profile.power_cap_w),
                                     "decode_fit_max_rel_err": float(g.profile.decode_fit_max_rel_err),
                                     "prefill_fit_max_rel_err": float(g.profile.prefill_fit_max_rel_err),
                                     "calibrated": bool(g.profile.calibrated)} for g in groups},
        "drain_s": DRAIN_S if (sim.horizon_s is None and not fluid) else 0.0,
    }
    if fluid_info is not None:
        meta["fluid"] = fluid_info
    if x.schedule:
        meta["schedule"] = {"step_s": SCHEDULE_STEP_S, "inactive": sim.inactive,
                            "pools": {s.engine_pool: list(s.active) for s in x.schedule},
                            "waiting_at_end": int(run.meta.get("waiting_at_end", 0))}
    trips = actions = None
    if protection is not None:
        meta["protection"] = protection.meta(horizon)
        trips, actions = protection.trips_frame(), protection.actions_frame()
    mark("tables_s")
    meta["stages"] = stages
    meta["wall_s"] = time.perf_counter() - wall0
    return SimResult(requests=requests_df, power=power, tree=tree.table, pools=pools, jobs=jobs,
                     meta=meta, series=run.series, schedule=schedule, trips=trips, controller_actions=actions)


def _build_engine(x: SimInput, groups, req, horizon: float, dt: float, mode: str, progress: bool):
    """The request-level serving simulation (sim-core's :class:`~fleet.sim.engine.Engine`), set
    up but not run (training pools join it), and the progress bar, if any."""
    from .engine import Engine

    sim = x.simulation
    eng = Engine(horizon, seed=x.seed, mode=mode, series_interval_s=dt if "series" in sim.record else None)
    models = []
    for g in groups:
        s = g.serve
        try:
            eng.add_serving_pool(g.engine_pool, g.profile, g.replicas, g.model, max_batch=s.max_batch,
                                 chunked_prefill=s.chunked_prefill, max_prefill_tokens=s.max_prefill_tokens)
        except FleetError as exc:
            raise _scenario_error(x, exc, s.field) from exc
        if g.model not in models:
            models.append(g.model)
    for model in models:
        if sim.router == "size_aware":
            from ..frontier import canonical_model
            from .router import SizeAwareRouter

            routes = [(None if r.model is None else canonical_model(r.model), r.pool, r.input_tokens,
                       r.output_tokens, r.weight) for r in sim.size_routes]
            eng.set_router(model, SizeAwareRouter([r for r in routes if r[0] in (None, model)] or routes))
        else:
            eng.set_router(model, sim.router)
    by_engine_pool = {g.engine_pool: g for g in groups}
    for sch in x.schedule:
        g = by_engine_pool[sch.engine_pool]
        # inactive power of a whole replica: its profile's idle power ('idle'), or its GPUs'
        # standby power ('off'; catalog standby_w, modelled)
        off_w = None if sim.inactive == "idle" else g.tp * float(g.pool_in.standby_w)
        try:
            eng.set_schedule(sch.engine_pool, sch.active, step_s=SCHEDULE_STEP_S, inactive_w=off_w)
        except FleetError as exc:
            raise _scenario_error(x, exc, sch.field) from exc
    if req is not None and len(req):
        eng.add_requests(req)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=round(horizon), unit="sim-s", desc=f"simulate {x.name}", leave=False)

        def _tick(e, now, _bar=bar):
            _bar.n = round(now)
            _bar.refresh()

        eng.every(max(horizon / 200.0, dt), _tick)
    return eng, bar


def _field_of(x: SimInput, groups, origin) -> str:
    """The YAML field an engine error comes from (``origin``: see fleet.sim.engine.tag_origin)."""
    kind, name = origin if isinstance(origin, tuple) and len(origin) == 2 else (None, None)
    if kind == "serving":
        for g in groups:
            if g.engine_pool == name:
                return g.serve.field
    if kind == "router":
        return f"{x.simulation.field}.router"
    if kind == "training":
        if x.training is not None and x.training.pool == name:
            return x.training.field
        for p in x.pools:
            if p.name == name:
                return p.field
    if kind == "schedule":
        for sch in x.schedule:
            if sch.engine_pool == name:
                return sch.field
    return x.simulation.field


def _schedule_table(groups, eng, horizon: float) -> pd.DataFrame:
    """Active replicas per hour (from the start) and engine pool, as the engine set them (every
    replica active in fluid mode and for pools without a schedule)."""
    n_hours = max(1, int(math.ceil(horizon / SCHEDULE_STEP_S - 1e-9)))
    log = eng.active_log() if eng is not None else []
    changes: dict[str, list[tuple[float, int]]] = {}
    for t, pool, n in log:
        changes.setdefault(pool, []).append((t, n))
    hours = np.arange(n_hours, dtype=np.int64)
    parts = []
    for g in groups:
        active = np.full(n_hours, g.replicas, dtype=np.int64)
        for t, n in changes.get(g.engine_pool, []):
            active[hours * SCHEDULE_STEP_S >= t - 1e-9] = n
        parts.append(pd.DataFrame({"hour": hours, "time_s": hours * SCHEDULE_STEP_S,
                                   "pool": g.pool, "engine_pool": g.engine_pool, "model": g.model,
                                   "replicas": np.int64(g.replicas), "active": active}))
    if not parts:
        return pd.DataFrame({c: pd.Series(dtype=("int64" if c in ("hour", "replicas", "active") else
                                                 "float64" if c == "time_s" else "object"))
                             for c in SCHEDULE_COLUMNS})
    df = pd.concat(parts, ignore_index=True)
    return df.astype({"hour": "int64", "time_s": "float64", "replicas": "int64", "active": "int64"})


_JOB_DTYPES = {"job_id": "int64", "gpus": "int64", "steps": "int64", "restarts": "int64", "submit_s": "float64",
               "start_s": "float64", "end_s": "float64", "energy_j": "float64", "pool": "object", "status": "object"}


def _pool_table(x: SimInput, groups, serving: pd.DataFrame, tree, binned, horizon, busy_gpu_s,
                job_frames) -> pd.DataFrame:
    rolled_gpu = binned.gpu.sum(axis=1)
    over = binned.overhead.sum(axis=1)
    rows = []
    for pool in x.pools:
        gi = [i for i, g in enumerate(tree.gpu_nodes) if g.pool == pool.name]
        si = tree.pool_servers(pool.name)
        gpu_e = float(rolled_gpu[gi].sum())
        ovh_e = float(over[si].sum())
        mine = [g for g in groups if g.pool == pool.name]
        st = serving[serving["pool"].isin([g.engine_pool for g in mine])] if len(serving) else serving
        row = {"pool": pool.name, "role": pool.role, "accelerator": pool.accelerator,
               "models": ";".join(g.model for g in mine), "gpus": pool.gpus, "servers": pool.servers,
               "replicas": sum(g.replicas for g in mine), "tp": max([g.tp for g in mine] or [0]),
               "power_cap_w": float(pool.power_cap_w) if pool.power_cap_w is not None else math.nan,
               "gpu_energy_j": gpu_e, "server_overhead_energy_j": ovh_e, "it_energy_j": gpu_e + ovh_e,
               "input_tokens": 0, "output_tokens": 0, "requests_completed": 0,
               "busy_fraction": 0.0, "mean_batch": math.nan}
        if pool.role == "serving" and len(st):
            reps = st["replicas"].to_numpy()
            busy = st["busy_fraction"].to_numpy() * reps
            row.update(input_tokens=int(st["input_tokens"].sum()), output_tokens=int(st["output_tokens"].sum()),
                       requests_completed=int(st["requests_completed"].sum()),
                       busy_fraction=float(busy.sum() / reps.sum()) if reps.sum() else 0.0,
                       mean_batch=float((st["mean_batch"].to_numpy() * busy).sum() / busy.sum())
                       if busy.sum() > 0 else 0.0)
        elif pool.role == "training":
            jf = [j for j in job_frames if len(j) and (j["pool"] == pool.name).any()]
            tok = sum(int((j["steps"] * j["tokens_per_step"]).sum()) for j in jf)
            row.update(input_tokens=tok, busy_fraction=busy_gpu_s.get(pool.name, 0.0) / (pool.gpus * horizon),
                       requests_completed=0)
        rows.append(row)
    df = pd.DataFrame.from_records(rows, columns=list(POOL_COLUMNS))
    return df.astype({"gpus": "int64", "servers": "int64", "replicas": "int64", "tp": "int64",
                      "input_tokens": "int64", "output_tokens": "int64", "requests_completed": "int64"})


# ---------------------------------------------------------------------- output
def save_result(result: SimResult, out_dir: str | Path, fmt: str = "parquet") -> Path:
    """Write every table (``requests``, ``power``, ``tree``, ``pools``, ``jobs``, ``series``)
    as Parquet or CSV plus ``meta.json`` into ``out_dir``, atomically (all or nothing)."""
    from .._io import atomic_dir
    from .._io import to_json

    if fmt not in ("parquet", "csv"):
        raise FleetError(f"unknown output format {fmt!r}; expected parquet or csv")
    tables = {"requests": result.requests, "power": result.power, "tree": result.tree,
              "pools": result.pools, "jobs": result.jobs}
    if result.series is not None:
        tables["series"] = result.series
    if getattr(result, "schedule", None) is not None:
        tables["schedule"] = result.schedule
    for name in ("trips", "controller_actions"):
        if getattr(result, name, None) is not None:
            tables[name] = getattr(result, name)
    with atomic_dir(out_dir, marker=SIM_MARKER) as tmp:
        for name, df in tables.items():
            df = df.copy()
            for c in df.columns:
                if df[c].dtype == object and df[c].map(lambda v: isinstance(v, tuple)).any():
                    df[c] = df[c].map(lambda v: ";".join(map(str, v)) if isinstance(v, tuple) else v)
            if fmt == "parquet":
                df.to_parquet(tmp / f"{name}.parquet", index=False)
            else:
                df.to_csv(tmp / f"{name}.csv", index=False)
        (tmp / "meta.json").write_text(to_json(result.meta) + "\n", encoding="utf-8")
    return Path(out_dir)
