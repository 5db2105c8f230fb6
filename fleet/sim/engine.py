"""The serving engine: SimPy clock, a fast event loop for replicas, arrivals, power segments.

Design (why it is fast)
-----------------------
SimPy drives the clock (``eng.env``; training and controllers may register ordinary SimPy
processes on it), but the serving replicas do not use one SimPy process per request or per
replica: their events (end of a prefill step, end of a decode span) live in the engine's own
binary heap of ``(time, seq, replica, generation)`` tuples, arrivals are read in order from the
sorted request table, and the engine merges the three sources (arrivals, its heap, SimPy's queue)
in time order, setting SimPy's clock before each of its own events.  A decode span that is cut
short (an admissible arrival, a profile change) just pushes a new event with a new generation;
the old one is discarded when it surfaces.  With coalesced decode a request costs about 2.7
events (its arrival; the prefill step that admits it, planned together with the decode span that
follows when nothing else waits; the span end at which it completes), whatever its output
length.  SimPy's own per-event cost (a timeout and a process resume, ~0.9-1.3 us here) is
measured by ``tests/test_bench_sim.py``; a heap event costs about a quarter of that, and the
cyclic garbage collector is paused during the loop (it only rescanned live objects).

Ordering at equal times: arrivals first, then heap events (step ends, periodic callbacks), then
SimPy events; among heap events, insertion order.  An idle replica wakes through a zero-delay
heap event, so requests arriving at the same instant are batched into one prefill step.  Runs
are deterministic.

Replica schedule (:meth:`Engine.set_schedule`): per pool, the number of active replicas in each
step (an hour in the scenario).  At each step boundary replicas ``0 .. n-1`` of the pool are
active, the others inactive: the routers see only active replicas (JSQ and least-KV read an
inactive replica's load as +inf, round-robin skips it, a custom router is offered active ones
only); an inactive replica drains (finishes its running and queued requests, takes nothing new)
and then draws its inactive power.  Activated replicas are available immediately.  A request
of a model with no active replica (that can hold it) waits, in arrival order, in a queue of its
model and is routed when one activates; it is never dropped for that.

Horizon: arrivals at or after ``horizon_s`` never enter the system (status ``dropped``,
``drop_reason`` ``after_horizon``); events at or before the horizon run; work in flight at the
horizon is closed with the exact energy up to it (status ``running``).  ``horizon_s=math.inf``
runs until every request is done (periodic callbacks then stop when nothing else is pending).
"""

from __future__ import annotations

import gc
import itertools
from collections import deque
import math
import time
from array import array
from dataclasses import dataclass, field
from heapq import heappop, heappush
from typing import Any, Callable

import numpy as np
import pandas as pd
import simpy

from ..errors import ConfigurationError, InputError
from .replica import Replica
from .router import BuiltinRouter, RequestInfo, make_router
from .serving import (DROP_AFTER_HORIZON, DROP_CONTEXT, DROP_KV, DROP_NO_POOL, DROP_TRIP, ST_DROPPED,
                      RequestStore, ServingPool)

INF = math.inf
MODES = ("coalesced", "iteration")


@dataclass
class Segments:
    """Power segments of every node: node ``node_names[node_id[k]]`` used ``energy_j[k]`` J
    over ``[t0[k], t1[k])`` s.  Replica segments tile each replica's life without gaps."""

    node_id: np.ndarray
    t0: np.ndarray
    t1: np.ndarray
    energy_j: np.ndarray
    node_names: list[str]

    @property
    def node(self) -> np.ndarray:
        """Node name of each segment (object array)."""
        return np.asarray(self.node_names, dtype=object)[self.node_id]

    def __len__(self) -> int:
        return len(self.t0)

    def energy_by_node(self) -> dict[str, float]:
        tot = np.bincount(self.node_id, weights=self.energy_j, minlength=len(self.node_names))
        return {n: float(e) for n, e in zip(self.node_names, tot)}

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame({"node": pd.Categorical.from_codes(self.node_id, self.node_names),
                             "t0": self.t0, "t1": self.t1, "energy_j": self.energy_j})


@dataclass
class ServingRun:
    """What :meth:`Engine.run` returns.

    ``requests``: one row per request, REQUEST_COLUMNS of :mod:`fleet.sim.result` plus
    ``drop_reason``.  ``segments``: power segments of every node (replicas as
    ``f"{pool}/r{i}"``, plus whatever others recorded with :meth:`Engine.record`).  ``pools``:
    per-pool serving stats.  ``replicas``: per-replica stats.  ``series``: long-form
    (time_s, pool, replica, metric, value) samples if asked for.  ``meta``: mode, horizon,
    events, wall time, ...
    """

    requests: pd.DataFrame
    segments: Segments
    pools: pd.DataFrame
    replicas: pd.DataFrame
    series: pd.DataFrame | None
    meta: dict = field(default_factory=dict)


class _Periodic:
    """A periodic callback living in the engine heap."""

    __slots__ = ("eng", "interval", "callback", "gen")

    def __init__(self, eng: "Engine", interval: float, callback: Callable) -> None:
        self.eng = eng
        self.interval = interval
        self.callback = callback
        self.gen = 0

    def _fire(self, now: float, gen: int) -> None:
        eng = self.eng
        self.callback(eng, now)
        nxt = now + self.interval
        if nxt >= eng.horizon_s or (eng.horizon_s == INF and eng._drained()):
            return
        heappush(eng._heap, (nxt, next(eng._counter), self, 0))


class _Once:
    """A one-shot callback living in the engine heap (:meth:`Engine.at`)."""

    __slots__ = ("eng", "callback")

    def __init__(self, eng: "Engine", callback: Callable) -> None:
        self.eng = eng
        self.callback = callback

    def _fire(self, now: float, gen: int) -> None:
        self.callback(self.eng, now)


class _Schedule:
    """The replica schedules of an engine, as one heap event per step boundary where a count
    changes (none at all when nothing ever changes: an all-max schedule costs nothing)."""

    __slots__ = ("eng", "step", "pools", "period")

    def __init__(self, eng: "Engine", step: float, pools: list) -> None:
        self.eng = eng
        self.step = step
        self.pools = pools           # [(ServingPool, counts tuple)]
        period = 1
        for _, c in pools:
            period = math.lcm(period, len(c))
        self.period = min(period, 1_000_000)

    def counts(self, h: int) -> list[int]:
        return [c[h % len(c)] for _, c in self.pools]

    def apply(self, h: int, now: float) -> None:
        eng = self.eng
        for (pool, _), n in zip(self.pools, self.counts(h)):
            eng._set_active(pool, n, now)

    def next_change(self, h: int) -> int | None:
        """The first step after ``h`` whose counts differ from the step before it."""
        prev = self.counts(h)
        for k in range(h + 1, h + self.period + 1):
            cur = self.counts(k)
            if cur != prev:
                return k
        return None

    def push_after(self, h: int) -> None:
        eng = self.eng
        k = self.next_change(h)
        if k is None:
            return
        t = k * self.step
        if t >= eng.horizon_s:
            return
        heappush(eng._heap, (t, next(eng._counter), self, k))

    def _fire(self, now: float, k: int) -> None:
        self.apply(k, now)
        eng = self.eng
        if eng.horizon_s == INF and eng._ai >= eng._n and eng._busy == 0 and not eng._servable_waiting():
            return               # drained: no more steps needed
        self.push_after(k)


class Engine:
    """Discrete-event engine for serving pools (and a SimPy clock for everything else).

    ``horizon_s``: simulated time (s), ``math.inf`` to drain the demand.  ``seed``: seeds
    ``eng.rng`` (a numpy Generator for routers and other users; the serving engine itself is
    deterministic).  ``mode``: ``"coalesced"`` (one event per batch change) or ``"iteration"``
    (one event per decode iteration, the reference).  ``series_interval_s``: if set, sample
    queue length, running batch and KV use of every replica at that interval.  An engine with
    no serving pools is valid (a training-only fleet: its clock drives the training pools;
    requests, if any, are dropped as ``no_pool_for_model``).
    """

    def __init__(self, horizon_s: float, seed: int = 0, mode: str = "coalesced",
                 series_interval_s: float | None = None) -> None:
        if mode not in MODES:
            raise ConfigurationError(f"unknown simulation mode {mode!r}; expected one of {MODES}")
        if not (horizon_s > 0):
            raise ConfigurationError(f"horizon_s must be positive, got {horizon_s}")
        self.horizon_s = float(horizon_s)
        self.seed = int(seed)
        self.mode = mode
        self.rng = np.random.default_rng(seed)
        self.env = simpy.Environment()
        self._heap: list = []
        self._tables: dict[int, tuple] = {}     # id(profile) -> (profile, decode tables as lists)
        self._counter = itertools.count()
        self._pools: list[ServingPool] = []
        self._pool_by_name: dict[str, ServingPool] = {}
        self._replicas: list[Replica] = []
        self._routers: dict[str, Any] = {}
        self._frames: list[pd.DataFrame] = []
        self._store: RequestStore = None  # type: ignore[assignment]  # made by run(), before any event
        self._node_ids: dict[str, int] = {}
        self._node_names: list[str] = []
        self._rec_node = array("i")
        self._rec = array("d")
        self._busy = 0
        self._ai = 0
        self._ta_next = INF      # time of the next arrival (set by the loop before each delivery)
        self._n = 0
        self._ran = False
        self._series: list[tuple] | None = None
        self._series_interval = series_interval_s
        self._at_end: list[Callable] = []
        self._schedules: dict[str, tuple[tuple[int, ...], float | None]] = {}
        self._schedule_step = 3600.0
        self._sched: _Schedule | None = None
        self._waiting: list = []                 # per model code: requests waiting for an active replica
        self._model_active: list[int] = []       # per model code: active replicas
        self._sched_model: list[bool] = []       # per model code: has a pool with a schedule
        self._servable: list[bool] = []          # per model code: some step has an active replica
        self._active_log: list[tuple[float, str, int]] = []   # (time s, pool, active replicas) as set
        self.events = 0

    # ------------------------------------------------------------------ building
    def _node(self, name: str) -> int:
        k = self._node_ids.get(name)
        if k is None:
            k = len(self._node_names)
            self._node_ids[name] = k
            self._node_names.append(name)
        return k

    def add_serving_pool(self, name: str, profile, replicas: int, model: str,
                         max_batch: int | None = None, chunked_prefill: bool = False,
                         max_prefill_tokens: int | None = None) -> ServingPool:
        """A pool of ``replicas`` identical replicas of ``model`` at operating point ``profile``."""
        if self._ran:
            raise ConfigurationError("add pools before run()")
        if name in self._pool_by_name:
            raise ConfigurationError(f"duplicate serving pool name {name!r}")
        if int(replicas) < 1:
            raise ConfigurationError(f"pool {name!r}: replicas must be >= 1, got {replicas}")
        if max_batch is not None and int(max_batch) < 1:
            raise ConfigurationError(f"pool {name!r}: max_batch must be >= 1, got {max_batch}")
        try:
            profile.validate()
        except ValueError as exc:
            raise ConfigurationError(f"pool {name!r}: invalid serving profile: {exc}") from exc
        if max_prefill_tokens is None:
            max_prefill_tokens = 2048 if chunked_prefill else max(8192, int(profile.max_context_tokens))
        pool = ServingPool(name=name, code=len(self._pools), model=model, profile=profile,
                           max_batch=max_batch, chunked_prefill=bool(chunked_prefill),
                           max_prefill_tokens=int(max_prefill_tokens))
        self._pools.append(pool)
        self._pool_by_name[name] = pool
        iteration = self.mode == "iteration"
        for k in range(int(replicas)):
            r = Replica(self, pool, k, self._node(f"{name}/r{k}"), profile, iteration)
            pool.replicas.append(r)
            self._replicas.append(r)
        return pool

    def set_router(self, model: str, router) -> None:
        """Router over all replicas of all pools serving ``model``: ``"round_robin"`` | ``"jsq"``
        | ``"least_kv"`` | an object with ``choose(request, replicas) -> replica``."""
        self._routers[model] = make_router(router)

    def set_schedule(self, pool: str, active: "list[int] | tuple[int, ...]", *, step_s: float = 3600.0,
                     inactive_w: float | None = None) -> None:
        """Replica schedule of ``pool``: ``active[k % len(active)]`` replicas active over
        ``[k * step_s, (k + 1) * step_s)`` (the list repeats).  Replicas ``0 .. n-1`` are the
        active ones; the others drain and then draw ``inactive_w`` W each (whole replica; None:
        the profile's idle power).  Every pool with a schedule must use the same ``step_s``."""
        if self._ran:
            raise ConfigurationError("set schedules before run()")
        p = self._pool_by_name.get(pool)
        if p is None:
            raise ConfigurationError(f"no serving pool {pool!r} to schedule; pools: {list(self._pool_by_name)}")
        counts = tuple(int(x) for x in active)
        if not counts:
            raise ConfigurationError(f"pool {pool!r}: a schedule needs at least one step")
        bad = [k for k, x in enumerate(counts) if not 0 <= x <= len(p.replicas)]
        if bad:
            raise ConfigurationError(f"pool {pool!r}: step {bad[0]} has {counts[bad[0]]} active replicas, "
                                     f"expected 0 to {len(p.replicas)}")
        if not (step_s > 0):
            raise ConfigurationError(f"schedule step must be positive, got {step_s}")
        if self._schedules and step_s != self._schedule_step:
            raise ConfigurationError("every pool's schedule must use the same step")
        if inactive_w is not None and not (inactive_w >= 0):
            raise ConfigurationError(f"pool {pool!r}: inactive power must be >= 0 W, got {inactive_w}")
        self._schedule_step = float(step_s)
        self._schedules[pool] = (counts, None if inactive_w is None else float(inactive_w))
        for r in p.replicas:
            r.inactive_w = None if inactive_w is None else float(inactive_w)

    # ------------------------------------------------------------------ protection (fleet.sim.protection)
    def guard_pool(self, pool: str) -> None:
        """Route ``pool``'s model to active replicas only (as with a replica schedule), so that
        replicas may be taken away during the run (:meth:`set_dark`, :meth:`set_admitting`).
        A pool without a schedule gets a constant all-replicas one (no events)."""
        if self._ran:
            raise ConfigurationError("guard pools before run()")
        p = self._pool_by_name[pool]
        if pool not in self._schedules:
            self._schedules[pool] = ((len(p.replicas),), None)

    def set_dark(self, rep: Replica, dark: bool, now: float, reroute: bool = False) -> int:
        """Power a replica off (a breaker trip) or back on.  The requests it held are dropped
        (``drop_reason`` 'breaker_trip') or, with ``reroute``, routed again (recomputed like a
        preemption).  Returns the number of requests it held."""
        m = rep.pool.mcode
        if not dark:
            was = rep.active
            rep.restore(now)
            if not was and m >= 0:
                self._model_active[m] += 1
                if self._waiting[m]:
                    self._dispatch_waiting(m, now)
            return 0
        was = rep.active
        rows = rep.go_dark(now)
        if was and m >= 0:
            self._model_active[m] -= 1
        S = self._store
        if reroute:
            saved = self._ta_next
            self._ta_next = INF
            try:
                for i in rows:
                    S.preempt[i] += 1
                    self._route_slow(i, now)
            finally:
                self._ta_next = saved
        else:
            for i in rows:
                S.status[i] = ST_DROPPED
                S.drop[i] = DROP_TRIP
        return len(rows)

    def set_admitting(self, rep: Replica, on: bool, now: float) -> None:
        """Admission control: offer a replica to the router or not (it finishes what it holds)."""
        if rep.active == on:
            return
        rep.set_active(on, now)
        m = rep.pool.mcode
        if m >= 0:
            self._model_active[m] += 1 if on else -1
            if on and self._waiting[m]:
                self._dispatch_waiting(m, now)

    def active_log(self) -> list[tuple[float, str, int]]:
        """(time s, pool, active replicas) each time a schedule set a pool's count (from t = 0)."""
        return list(self._active_log)

    def add_requests(self, df: pd.DataFrame) -> None:
        """Add requests (canonical table: request_id, arrival_s, input_tokens, output_tokens,
        optional model).  May be called several times; rows are merged by arrival time."""
        if self._ran:
            raise ConfigurationError("add requests before run()")
        need = ("request_id", "arrival_s", "input_tokens", "output_tokens")
        missing = [c for c in need if c not in df.columns]
        if missing:
            raise InputError(f"request table lacks columns {missing}", expected=", ".join(need))
        cols = list(need) + (["model"] if "model" in df.columns else [])
        self._frames.append(df[cols])

    def record(self, node: str, t0: float, t1: float, energy_j: float) -> None:
        """Record that ``node`` used ``energy_j`` J over [t0, t1) s (any node: training GPUs,
        servers, ...)."""
        self._rec_node.append(self._node(node))
        self._rec.extend((float(t0), float(t1), float(energy_j)))

    def every(self, interval_s: float, callback: Callable[["Engine", float], Any],
              start_s: float = 0.0) -> None:
        """Call ``callback(eng, now)`` at ``start_s``, ``start_s + interval_s``, ... (< horizon)."""
        if not (interval_s > 0):
            raise ConfigurationError(f"interval must be positive, got {interval_s}")
        heappush(self._heap, (float(start_s), next(self._counter),
                              _Periodic(self, float(interval_s), callback), 0))

    def at(self, t_s: float, callback: Callable[["Engine", float], Any]) -> None:
        """Call ``callback(eng, t_s)`` once at ``t_s`` (a heap event: at equal times, in the order
        registered, before SimPy events)."""
        heappush(self._heap, (float(t_s), next(self._counter), _Once(self, callback), 0))

    def at_end(self, callback: Callable[["Engine", float], Any]) -> None:
        """Call ``callback(eng, t_end)`` once after the last event, before the results are
        collected: close segments still open at the end (training attempts running at the
        horizon, idle GPUs).  ``t_end`` is the horizon, or the drain time when it is infinite.
        (Additive, for training on the shared clock: fleet/sim/training.py.)"""
        self._at_end.append(callback)

    def replicas(self, pool: str | None = None) -> list[Replica]:
        """Replicas (of one pool, or all), in pool order then index (use :meth:`every` or a
        SimPy process on ``eng.env`` to act on them during the run)."""
        if pool is None:
            return list(self._replicas)
        return list(self._pool_by_name[pool].replicas)

    @property
    def pools(self) -> list[ServingPool]:
        return list(self._pools)

    @property
    def now(self) -> float:
        return self.env.now

    def _servable_waiting(self) -> bool:
        """Requests wait that some step of the schedule will serve (a model whose every pool is
        scheduled at 0 throughout would wait forever: an endless run must not wait for it)."""
        return any(q and self._servable[m] for m, q in enumerate(self._waiting))

    def _drained(self) -> bool:
        return self._ai >= self._n and self._busy == 0 and not self.env._queue and not self._servable_waiting() and \
            all(not isinstance(e[2], Replica) or e[3] != e[2].gen for e in self._heap)

    # ------------------------------------------------------------------ setup at run()
    def _setup(self) -> None:
        if self._frames:
            df = pd.concat(self._frames, ignore_index=True) if len(self._frames) > 1 else self._frames[0]
        else:
            # no requests (e.g. a training-only demand on a fleet serving several models)
            df = pd.DataFrame({"request_id": np.zeros(0, np.int64), "arrival_s": np.zeros(0),
                               "input_tokens": np.zeros(0, np.int64), "output_tokens": np.zeros(0, np.int64),
                               "model": np.zeros(0, dtype=object)})
        df = df.sort_values("arrival_s", kind="stable") if not df["arrival_s"].is_monotonic_increasing else df
        arr = df["arrival_s"].to_numpy(dtype=np.float64)
        if len(arr) and (not np.all(np.isfinite(arr)) or arr[0] < 0):
            raise InputError("arrival_s must be finite and >= 0", expected="seconds from the start")
        for c in ("input_tokens", "output_tokens"):
            v = df[c].to_numpy()
            if len(v) and v.min() < 1:
                raise InputError(f"{c} must be >= 1 (row {int(np.argmin(v))})", expected="a positive integer")
        models = {p.model for p in self._pools}
        # no serving pools (a training-only fleet): any request is dropped as "no pool"
        default = next(iter(models)) if len(models) == 1 else (None if models else "")
        S = RequestStore(df, default)
        self._store = S
        self._n = S.n
        for r in self._replicas:
            r.S = S
        # routers per model code
        self._route: list[Any] = []
        self._model_reps: list[list[Replica]] = []
        self._limits: list[tuple[int, int, int, int]] = []   # min/max (context, kv) per model
        for m in S.model_names:
            reps = [r for p in self._pools if p.model == m for r in p.replicas]
            self._model_reps.append(reps)
            if not reps:
                self._route.append(None)
                self._limits.append((0, 0, 0, 0))
                continue
            router = self._routers.get(m)
            if router is None:
                router = make_router("jsq")
                self._routers[m] = router
            if isinstance(router, BuiltinRouter):
                router.bind(reps)
            self._route.append(router)
            ctx = [int(r.profile.max_context_tokens) for r in reps]
            kv = [r.cap for r in reps]
            self._limits.append((min(ctx), max(ctx), min(kv), max(kv)))
        nm = len(S.model_names)
        self._waiting = [deque() for _ in range(nm)]
        self._model_active = [len(reps) for reps in self._model_reps]
        self._sched_model = [False] * nm
        self._servable = [True] * nm
        code = {name: k for k, name in enumerate(S.model_names)}
        for p in self._pools:
            p.mcode = code.get(p.model, -1)
        if self._schedules:
            for name in self._schedules:
                mc = self._pool_by_name[name].mcode
                if mc >= 0:
                    self._sched_model[mc] = True
            for mc, reps in enumerate(self._model_reps):
                self._servable[mc] = any(p.name not in self._schedules or max(self._schedules[p.name][0]) > 0
                                        for p in {r.pool.name: r.pool for r in reps}.values())
            self._sched = _Schedule(self, self._schedule_step,
                                    [(self._pool_by_name[n], c) for n, (c, _) in self._schedules.items()])
            self._sched.apply(0, 0.0)            # step 0 from the start (replicas are idle)
            self._sched.push_after(0)
        if self._series_interval:
            self._series = []
            self.every(self._series_interval, Engine._sample_series)

    def _sample_series(self, now: float) -> None:
        s = self._series
        assert s is not None, "sampling is scheduled only with a series list"
        for r in self._replicas:
            s.append((now, r.pool.code, r.index, len(r.queue), r.running, r.kv_used_tokens))

    # ------------------------------------------------------------------ replica schedule
    def _set_active(self, pool: ServingPool, n: int, now: float) -> None:
        """Replicas 0 .. n-1 of ``pool`` active, the rest inactive (draining, then off)."""
        self._active_log.append((now, pool.name, int(n)))
        delta = 0
        for k, r in enumerate(pool.replicas):
            on = k < n
            if r.active != on:
                r.set_active(on, now)
                delta += 1 if on else -1
        m = pool.mcode
        if m < 0 or not delta:
            return
        self._model_active[m] += delta
        if delta > 0 and self._waiting[m]:
            self._dispatch_waiting(m, now)

    def _dispatch_waiting(self, m: int, now: float) -> None:
        """Route the requests of model ``m`` that waited for an active replica, in arrival order;
        replicas woken by them batch them into one step (zero-delay wake, as for simultaneous
        arrivals).  Requests no active replica can hold keep waiting."""
        q = self._waiting[m]
        self._waiting[m] = deque()
        saved = self._ta_next
        self._ta_next = now
        try:
            for i in q:
                self._route_slow(i, now)
        finally:
            self._ta_next = saved

    # ------------------------------------------------------------------ the loop
    def _route_slow(self, i: int, now: float) -> None:
        """Arrival needing checks: model without pools, or a request that does not fit every
        replica of its model."""
        S = self._store
        m = int(S.model_code[i])
        reps = self._model_reps[m]
        if not reps:
            S.status[i] = ST_DROPPED
            S.drop[i] = DROP_NO_POOL
            return
        size = S.inp[i] + S.out[i]
        if self._sched_model[m]:
            self._route_scheduled(i, m, size, now)
            return
        ok = [r for r in reps if size <= r.profile.max_context_tokens and size <= r.cap]
        if not ok:
            S.status[i] = ST_DROPPED
            S.drop[i] = DROP_CONTEXT if all(size > r.profile.max_context_tokens for r in reps) else DROP_KV
            return
        router = self._route[m]
        if isinstance(router, BuiltinRouter) and len(ok) == len(reps):
            rep = router._pick()
        else:
            rep = self._ask_router(router, i, m, ok, "replicas")
        self._deliver(rep, i, now)

    def _route_scheduled(self, i: int, m: int, size: int, now: float) -> None:
        """Routing for a model with a replica schedule: active replicas only; wait if none."""
        S = self._store
        reps = self._model_reps[m]
        lim = self._limits[m]
        router = self._route[m]
        if size <= min(lim[0], lim[2]):          # fits every replica of the model
            if self._model_active[m] == 0:
                self._waiting[m].append(i)
                return
            if isinstance(router, BuiltinRouter):
                self._deliver(router._pick_active(), i, now)
                return
            ok = [r for r in reps if r.active]
        else:
            fit = [r for r in reps if size <= r.profile.max_context_tokens and size <= r.cap]
            if not fit:
                S.status[i] = ST_DROPPED
                S.drop[i] = DROP_CONTEXT if all(size > r.profile.max_context_tokens for r in reps) else DROP_KV
                return
            ok = [r for r in fit if r.active]
            if not ok:
                self._waiting[m].append(i)
                return
        if isinstance(router, BuiltinRouter):
            rep = router._pick_among(ok)
        else:
            rep = self._ask_router(router, i, m, ok, "active replicas")
        self._deliver(rep, i, now)

    def _ask_router(self, router, i: int, m: int, ok: list, what: str) -> Replica:
        """A custom router's choice for request ``i`` among ``ok``; a choice outside them is the
        router's error (named as such)."""
        S = self._store
        info = RequestInfo(int(S.rid[i]), S.arrival[i], S.inp[i], S.out[i], S.model_names[m])
        rep = router.choose(info, ok)
        if rep not in ok:
            exc = ConfigurationError(
                f"router {type(router).__name__} returned {getattr(rep, 'node', rep)!r} for request "
                f"{int(S.rid[i])}, which is not one of the {what} it was offered")
            exc.sim_origin = ("router", S.model_names[m])
            raise exc
        return rep

    def _deliver(self, rep: Replica, i: int, now: float) -> None:
        S = self._store
        S.pool[i] = rep.pool.code
        S.replica[i] = rep.index
        rep.on_arrival(i, now)

    def run(self) -> ServingRun:
        """Run to the horizon and return the results."""
        if self._ran:
            raise ConfigurationError("an Engine runs once")
        self._ran = True
        wall0 = time.perf_counter()
        cpu0 = time.process_time()
        self._setup()
        S = self._store
        n = S.n
        # fast path per model: a built-in router, and every request fits every replica
        # (a model with a replica schedule always takes the slow path: active replicas only)
        fast = []
        for m, router in enumerate(self._route):
            lim = self._limits[m]
            fast.append((router._pick if isinstance(router, BuiltinRouter) and not self._sched_model[m] else None,
                         min(lim[0], lim[2]) if router is not None else -1))
        # the loop allocates millions of short-lived tuples and no reference cycles: the cyclic
        # garbage collector would only rescan the live objects again and again
        gc_was_enabled = gc.isenabled()
        gc.disable()
        try:
            events, ai = self._loop(S, fast)
        except Exception as exc:
            tag_origin(exc)
            raise
        finally:
            if gc_was_enabled:
                gc.enable()
        self._ai = n
        for k in range(ai, n):          # arrivals at or after the horizon
            S.status[k] = ST_DROPPED
            S.drop[k] = DROP_AFTER_HORIZON
        t_end = self.horizon_s if self.horizon_s != INF else self.env.now
        for cb in self._at_end:
            cb(self, t_end)
        for r in self._replicas:
            r.finalize(t_end)
        self.events = events
        loop_wall = time.perf_counter() - wall0
        loop_cpu = time.process_time() - cpu0
        res = self._collect(t_end)
        res.meta.update({"events": events, "loop_wall_s": loop_wall, "loop_cpu_s": loop_cpu,
                         "wall_s": time.perf_counter() - wall0})
        return res

    def _loop(self, S: RequestStore, fast: list) -> tuple[int, int]:
        """Merge arrivals, the engine heap and SimPy's queue in time order until the horizon.
        Returns (events processed, index of the first arrival not processed)."""
        env = self.env
        squeue = env._queue
        heap = self._heap
        H = self.horizon_s
        arrival = S.arrival
        n = S.n
        inp = S.inp
        out = S.out
        mcode = S.model_code.tolist() if n else []
        single = fast[0] if len(fast) == 1 else None
        spool = S.pool
        srep = S.replica
        events = 0
        ai = 0
        ta = arrival[0] if n else INF
        if ta >= H:
            ta = INF
        while True:
            th = heap[0][0] if heap else INF
            ts = squeue[0][0] if squeue else INF
            if th <= ts and th < ta:
                if th > H or th == INF:
                    break
                t, _, obj, g = heappop(heap)
                env._now = t
                obj._fire(t, g)
                events += 1
            elif ts < ta:
                if ts > H:
                    break
                env.step()
                events += 1
            else:
                if ta == INF:
                    break
                env._now = t = ta
                i = ai
                ai += 1
                self._ai = ai
                if ai < n:
                    ta = arrival[ai]
                    if ta >= H:
                        ta = INF
                else:
                    ta = INF
                self._ta_next = ta
                pick, lim = single if single is not None else fast[mcode[i]]
                if pick is not None and inp[i] + out[i] <= lim:
                    rep = pick()
                    spool[i] = rep.pool.code
                    srep[i] = rep.index
                    rep.on_arrival(i, t)
                else:
                    self._route_slow(i, t)
                events += 1
        return events, ai

    # ------------------------------------------------------------------ results
    def _collect(self, t_end: float) -> ServingRun:
        S = self._store
        pool_names = [p.name for p in self._pools]
        req = S.to_frame(pool_names)
        # segments: replicas first, then external records
        ids, segs = [], []
        for r in self._replicas:
            a = np.frombuffer(r.seg, dtype=np.float64) if len(r.seg) else np.zeros(0)
            segs.append(a.reshape(-1, 3))
            ids.append(np.full(len(a) // 3, r.node_id, dtype=np.int32))
        if len(self._rec):
            segs.append(np.frombuffer(self._rec, dtype=np.float64).reshape(-1, 3))
            ids.append(np.frombuffer(self._rec_node, dtype=np.int32).copy())
        allseg = np.concatenate(segs) if segs else np.zeros((0, 3))
        seg = Segments(node_id=np.concatenate(ids) if ids else np.zeros(0, np.int32),
                       t0=allseg[:, 0].copy(), t1=allseg[:, 1].copy(), energy_j=allseg[:, 2].copy(),
                       node_names=list(self._node_names))
        rows = []
        for r in self._replicas:
            e = float(np.frombuffer(r.seg, dtype=np.float64)[2::3].sum()) if len(r.seg) else 0.0
            rows.append({"pool": r.pool.name, "replica": r.index, "node": r.node,
                         "accelerator": r.profile.accelerator, "model": r.pool.model,
                         "energy_j": e, "idle_energy_j": r.idle_j, "busy_s": r.busy_s, "batch_s": r.batch_s,
                         "input_tokens": r.tokens_in, "output_tokens": r.tokens_out,
                         "recomputed_tokens": r.recomputed_tokens,
                         "requests_completed": r.completed, "preemptions": r.preemptions,
                         "iterations": r.K, "power_cap_w": float(r.profile.power_cap_w)})
        reps = pd.DataFrame(rows)
        prow = []
        for p in self._pools:
            sub = reps[reps["pool"] == p.name]
            busy = float(sub["busy_s"].sum())
            prow.append({"pool": p.name, "role": "serving", "accelerator": p.profile.accelerator,
                         "models": p.model, "replicas": len(p.replicas), "tp": int(p.profile.tp),
                         "gpus": len(p.replicas) * int(p.profile.tp),
                         "power_cap_w": float(p.profile.power_cap_w),
                         "gpu_energy_j": float(sub["energy_j"].sum()),
                         "input_tokens": int(sub["input_tokens"].sum()),
                         "output_tokens": int(sub["output_tokens"].sum()),
                         "recomputed_tokens": int(sub["recomputed_tokens"].sum()),
                         "requests_completed": int(sub["requests_completed"].sum()),
                         "preemptions": int(sub["preemptions"].sum()),
                         "busy_fraction": busy / (t_end * len(p.replicas)) if t_end > 0 else 0.0,
                         "mean_batch": float(sub["batch_s"].sum()) / busy if busy > 0 else 0.0})
        pools = pd.DataFrame(prow)
        series = None
        if self._series is not None:
            a = np.array(self._series, dtype=np.float64).reshape(-1, 6)
            parts = []
            for col, metric in ((3, "queue"), (4, "running"), (5, "kv_used_tokens")):
                parts.append(pd.DataFrame({
                    "time_s": a[:, 0], "pool": np.array(pool_names, dtype=object)[a[:, 1].astype(int)],
                    "replica": a[:, 2].astype(np.int64), "metric": metric, "value": a[:, col]}))
            series = pd.concat(parts, ignore_index=True)
        meta = {"mode": self.mode, "horizon_s": self.horizon_s, "t_end_s": t_end, "seed": self.seed,
                "requests": S.n, "replicas": len(self._replicas),
                "routers": {m: getattr(r, "name", type(r).__name__) for m, r in self._routers.items()}}
        if self._schedules:
            meta["waiting_at_end"] = int(sum(len(q) for q in self._waiting))
        return ServingRun(requests=req, segments=seg, pools=pools, replicas=reps, series=series, meta=meta)


def tag_origin(exc: BaseException) -> None:
    """Attach ``exc.sim_origin``, the component an error raised while simulating comes from
    (``("serving", engine_pool)``, ``("training", pool)``, ``("router", model)``, ...): the
    innermost frame of its traceback whose ``self`` has a ``sim_origin``, unless the raiser set
    one.  The scenario level maps it to the YAML field."""
    if getattr(exc, "sim_origin", None) is not None:
        return
    found = None
    seen: set[int] = set()
    e: BaseException | None = exc
    while e is not None and id(e) not in seen:      # SimPy re-raises a process's error as a copy
        seen.add(id(e))                             # whose __cause__ is the original
        own = getattr(e, "sim_origin", None)
        if isinstance(own, tuple):
            found = own
            break
        tb = e.__traceback__
        while tb is not None:
            obj = tb.tb_frame.f_locals.get("self")
            origin = getattr(obj, "sim_origin", None) if obj is not None else None
            if isinstance(origin, tuple):
                found = origin
            tb = tb.tb_next
        if found is not None:
            break
        e = e.__cause__ or e.__context__
    if found is not None:
        try:
            setattr(exc, "sim_origin", found)     # any exception may carry one (FleetError declares it)
        except AttributeError:        # pragma: no cover - exceptions with __slots__
            pass
