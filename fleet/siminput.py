"""The seam between the scenario and the simulation: :func:`sim_input` turns a validated
:class:`~fleet.scenario.Scenario` into the typed, frozen :class:`~fleet.sim.input.SimInput` the
simulation reads (names resolved, every item carrying its YAML path in ``field``).

It lives at the scenario level (``fleet.sim`` may not import ``fleet.scenario``); the scenario's
checks have run before, so a problem found here is a bug, not bad input.
"""

from __future__ import annotations

from .sim.input import (InferenceInput, PoolInput, PowerBudgets, ScheduleInput, ServeInput, SimInput,
                        SimOptions, SizeRouteInput, StretchInput, SynthInput, TraceInput, TrainingInput, TrainingSynthInput, frozen_map)


def engine_pool_name(pool_name: str, n_models: int, model: str) -> str:
    """An engine pool is named like its scenario pool when that serves one model, else
    ``f"{pool}:{model}"`` (model: canonical)."""
    return pool_name if n_models == 1 else f"{pool_name}:{model}"


def _serves(sc, i: int, pool) -> tuple[ServeInput, ...]:
    from .frontier import canonical_model

    if pool.role != "serving":
        return ()
    used = sum(s.replicas * s.tp for s in pool.serve if s.replicas is not None)
    out = []
    for j, s in enumerate(pool.serve):
        model = canonical_model(s.model)
        reps = s.replicas if s.replicas is not None else (pool.gpus - used) // s.tp
        out.append(ServeInput(
            field=f"fleet.pools[{i}].serve[{j}]", model=model, model_as_written=s.model,
            engine_pool=engine_pool_name(pool.name, len(pool.serve), model), replicas=int(reps), tp=int(s.tp),
            precision=s.precision, kv_precision=s.kv_precision, max_batch=s.max_batch,
            chunked_prefill=bool(s.chunked_prefill), max_prefill_tokens=s.max_prefill_tokens, ep=s.ep,
            op=sc.operating_point(i, j)))
    return tuple(out)


def _pools(sc) -> tuple[PoolInput, ...]:
    from .frontier import accelerator_power

    out = []
    for i, p in enumerate(sc.fleet.pools):
        acc = accelerator_power(p.accelerator)
        out.append(PoolInput(
            field=f"fleet.pools[{i}]", name=p.name, role=p.role, accelerator=acc.name, gpus=int(p.gpus),
            gpus_per_server=int(p.gpus_per_server), servers_per_rack=int(p.servers_per_rack), row=p.row,
            static_w=float(p.static_w), per_gpu_w=float(p.server.per_gpu_w),
            power_cap_w=None if p.power_cap_w is None else float(p.power_cap_w),
            tdp_w=float(acc.tdp_w), idle_w=float(acc.idle_w), standby_w=float(acc.standby_w),
            serve=_serves(sc, i, p)))
    return tuple(out)


def _inference(sc) -> tuple[InferenceInput, ...]:
    from .frontier import canonical_model

    out = []
    for k, d in enumerate(sc.demand.inference):
        where = f"demand.inference[{k}]"
        tr, sy = d.trace, d.synth
        trace = synth = None
        if tr is not None:
            trace = TraceInput(field=f"{where}.trace", path=tr.path, format=tr.format,
                               mapping=None if tr.mapping is None else frozen_map(tr.mapping),
                               rate_scale=float(tr.rate_scale),
                               window=None if tr.window is None else (float(tr.window[0]), float(tr.window[1])),
                               time_shift_s=float(tr.time_shift_s),
                               stretch=None if tr.stretch is None else StretchInput(
                                   rate=float(tr.stretch.rate), hours=float(tr.stretch.hours),
                                   peak_to_trough=float(tr.stretch.peak_to_trough),
                                   peak_hour=float(tr.stretch.peak_hour), cv=float(tr.stretch.cv)))
        if sy is not None:
            synth = SynthInput(field=f"{where}.synth", profile=sy.profile, rate=float(sy.rate), hours=float(sy.hours),
                               cv=float(sy.cv), seed=sy.seed, input_tokens=sy.input_tokens,
                               output_tokens=sy.output_tokens, tokens_cv=float(sy.tokens_cv),
                               peak_to_trough=float(sy.peak_to_trough), peak_hour=float(sy.peak_hour),
                               servegen_model=sy.servegen_model)
        out.append(InferenceInput(field=where, model=canonical_model(d.model), trace=trace, synth=synth))
    return tuple(out)


def _training(sc) -> TrainingInput | None:
    tr = sc.demand.training
    if tr is None:
        return None
    tpools = sc.training_pools()
    target = tr.pool or (tpools[0].name if len(tpools) == 1 else None)
    s = tr.synth
    synth = None if s is None else TrainingSynthInput(
        field="demand.training.synth", jobs=int(s.jobs), hours=float(s.hours), seed=s.seed, model=s.model,
        max_gpus=s.max_gpus, deferrable_fraction=float(s.deferrable_fraction))
    return TrainingInput(field="demand.training", pool=target, model=tr.model, jobs=tr.jobs, synth=synth,
                         release_times=None if tr.release_times is None else frozen_map(tr.release_times),
                         schedule=None if tr.schedule is None else frozen_map(
                             {int(k): tuple((float(a), float(b), None if c is None else float(c)) for a, b, c in v)
                              for k, v in tr.schedule.items()}))


def _schedule(sc, pools: tuple[PoolInput, ...]) -> tuple[ScheduleInput, ...]:
    from .scenario import schedule_targets

    out = []
    for key, (pool, serve) in schedule_targets(sc).items():
        p = next(x for x in pools if x.name == pool.name)
        s_in = p.serve[serve]
        out.append(ScheduleInput(field=f"schedule.{key}", pool=p.name, engine_pool=s_in.engine_pool,
                                 active=tuple(int(v) for v in sc.schedule[key])))
    return tuple(out)


def _breakers(pw) -> tuple:
    from .sim.input import BreakerInput

    return tuple(BreakerInput(field=f"fleet.power.breakers[{k}]", level=b.level, node=b.node, rating_w=b.rating_w,
                              curve=tuple((float(r), float(t)) for r, t in b.curve), reset_s=float(b.reset_s),
                              on_trip=b.on_trip, check_s=float(b.check_s), model=b.model)
                 for k, b in enumerate(pw.breakers))


def _controller(pw):
    from .sim.input import ControllerInput

    c = pw.controller
    if c is None:
        return None
    return ControllerInput(
        field="fleet.power.controller", kind=c.kind, rows=None if c.rows is None else tuple(c.rows),
        interval_s=float(c.interval_s), samples=int(c.samples), telemetry_delay_s=float(c.telemetry_delay_s),
        actuation_delay_s=float(c.actuation_delay_s), t1=float(c.t1), t2=float(c.t2), brake=float(c.brake),
        admission=None if c.admission is None else float(c.admission), hysteresis=float(c.hysteresis),
        release_hold_s=float(c.release_hold_s), release=c.release, lever=c.lever, cap_low=float(c.cap_low), cap_all=float(c.cap_all),
        cap_brake=float(c.cap_brake), low_priority=tuple(c.low_priority), priority=frozen_map(c.priority),
        on_telemetry_loss=c.on_telemetry_loss, stale_s=float(c.stale_s),
        outages=tuple((float(a), float(b)) for a, b in c.outages),
        fail_at_s=None if c.fail_at_s is None else float(c.fail_at_s), fail_mode=c.fail_mode)


def sim_input(scenario) -> SimInput:
    """The :class:`~fleet.sim.input.SimInput` of a loaded (validated) scenario."""
    sc = scenario
    pools = _pools(sc)
    pw = sc.fleet.power
    sim = sc.simulation
    return SimInput(
        name=sc.name, seed=int(sc.seed), start_utc=sc.start_utc, pools=pools, inference=_inference(sc),
        training=_training(sc),
        power=PowerBudgets(site_budget_w=pw.site_budget_w, rows=frozen_map(pw.rows), rack_budget_w=pw.rack_budget_w,
                           racks=frozen_map(pw.racks), server_budget_w=pw.server_budget_w,
                           breakers=_breakers(pw), controller=_controller(pw)),
        simulation=SimOptions(horizon_s=sim.horizon_s, telemetry_interval_s=float(sim.telemetry_interval_s),
                              mode=sim.mode, router=sim.router, record=tuple(sim.record), progress=bool(sim.progress),
                              constants=sim.constants, inactive=sim.inactive,
                              size_routes=tuple(SizeRouteInput(r.model, r.pool,
                                                               (float(r.input_tokens[0]), float(r.input_tokens[1])),
                                                               (float(r.output_tokens[0]), float(r.output_tokens[1])),
                                                               tuple(map(float, r.weight)))
                                                for r in sim.size_routes)),
        schedule=_schedule(sc, pools), scenario_hash=sc.hash(), path=sc.path)
