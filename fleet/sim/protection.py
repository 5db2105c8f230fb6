"""Protection and control on the live power tree: breakers with trip curves, and the harness that
runs a power-capping controller (:mod:`fleet.sim.control`) with its telemetry and actuation
delays and its faults.

Both act on the power the engine sees *now* (:class:`LivePower`: every serving replica's
``power_w``, every training server's ``server_power_w``, idle spares, and the server overhead of
:mod:`fleet.sim.power`, ``static_w + per_gpu_w * P_gpu / TDP``), through periodic callbacks on the
engine's clock (``Engine.every``), not on the telemetry computed after the run.

Breakers: a breaker of rating R with curve points (r_k, t_k) trips at the first check (every
``check_s``: the curve's resolution) at which, for some k, ``model: average`` (default): the mean
of its node's power over the last ``t_k`` seconds (the checks in ``(now - t_k, now]``, with
``t_k`` seconds of history since it closed) is above ``r_k * R``, as a thermal element integrates
its load (short dips do not reset it, short spikes do not trip it); ``definite``: the power has
been above ``r_k * R`` without a break for ``t_k`` seconds.  A point with ``t_k = 0`` trips on
one check above.  Under a constant overload both trip exactly ``t_k`` after it began.  Its
servers go dark at once: serving replicas drop or re-route what they held
(:meth:`fleet.sim.engine.Engine.set_dark`), training jobs on them fail back to their checkpoint
(:meth:`fleet.sim.training.TrainingScheduler.set_dark`), the servers draw 0 W (GPUs and overhead)
until ``reset_s`` later.  Every trip is a row of ``SimResult.trips`` and counted in
``meta['protection']``.

Controller harness: every ``interval_s`` a reading of the row power is made, the mean of
``samples`` live samples spread over the interval (a meter's average: instantaneous spikes of a
prefill step are averaged as a PDU would); the reading reaches the controller
``telemetry_delay_s`` after the end of its interval (never, if it was taken during a telemetry outage: the
controller is then stepped with ``None``); the controller's actions are applied
``actuation_delay_s`` after its step.  After ``fail_at_s`` the controller is no longer stepped
(the levers stay where they were).  Every applied action is a row of ``SimResult.controller_actions``
(time, row, lever, classes, value, reason).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from ..errors import ConfigurationError
from .control import Action, Controller, PolcaController, RowInfo

TRIP_COLUMNS = {
    "time_s": "float64 s: when the breaker tripped", "level": "str: site | row | rack", "node": "str",
    "power_w": "float64 W at the trip", "rating_w": "float64 W", "ratio": "float64: power / rating",
    "curve_ratio": "float64: the curve point that tripped", "curve_s": "float64 s: its time",
    "reset_s": "float64 s: when power came back", "servers": "int64: servers darkened",
    "requests": "int64: requests held by its replicas (dropped or re-routed)", "jobs": "int64: training jobs hit",
}
ACTION_COLUMNS = {
    "time_s": "float64 s: when the lever moved (the controller's step + actuation delay)",
    "decided_s": "float64 s: the controller's step", "row": "str", "pool": "str",
    "lever": "str: cap | clock | admission", "classes": "str: the pool's priority class", "value": "float64: W (cap), MHz (clock), 1/0 (admission); "
                                                               "NaN: released", "level": "int64",
    "reason": "str",
}


class LivePower:
    """Instantaneous power (W) per server, rack, row and the site, from the engine's state."""

    def __init__(self, tree, eng, training: dict) -> None:
        self.tree = tree
        self.eng = eng
        gidx = tree.gpu_index()
        self.reps = eng.replicas()
        self.rep_srv = np.array([tree.gpu_nodes[gidx[r.node]].server for r in self.reps], dtype=np.int64)
        ns = len(tree.servers)
        self.ns = ns
        const = np.zeros(ns)
        rep_nodes = {r.node for r in self.reps}
        self.train = []
        tnodes: set[str] = set()
        for pool, sched in training.items():
            idx = np.array([gidx[f"{pool}/s{k}"] for k in range(len(sched.server_gpus))], dtype=np.int64)
            self.train.append((sched, np.array([tree.gpu_nodes[i].server for i in idx], dtype=np.int64)))
            tnodes.update(f"{pool}/s{k}" for k in range(len(sched.server_gpus)))
        for g in tree.gpu_nodes:
            if g.node not in rep_nodes and g.node not in tnodes and math.isfinite(g.idle_w):
                const[g.server] += g.idle_w
        self.const = const
        self.static = np.array([s.static_w for s in tree.servers])
        self.k = np.array([s.per_gpu_w / s.tdp_w for s in tree.servers])
        self.dark = np.zeros(ns, dtype=np.int64)          # trips holding each server dark
        rows = list(tree.rows)
        racks = list(tree.racks)
        self.row_names, self.rack_names = rows, racks
        self.srv_rack = np.array([racks.index(s.rack) for s in tree.servers], dtype=np.int64)
        self.srv_row = np.array([rows.index(tree.racks[s.rack][0]) for s in tree.servers], dtype=np.int64)
        self.row_budget = np.array([tree.rows[r] for r in rows], dtype=np.float64)

    def servers(self) -> np.ndarray:
        on = self.dark == 0
        g = self.const * on
        if len(self.reps):
            g = g + np.bincount(self.rep_srv, weights=[r.power_w for r in self.reps], minlength=self.ns)
        for sched, srv in self.train:
            g[srv] += sched.server_power_w()
        return self.static * on + g * (1.0 + self.k)

    def levels(self) -> dict[str, np.ndarray]:
        s = self.servers()
        return {"server": s,
                "rack": np.bincount(self.srv_rack, weights=s, minlength=len(self.rack_names)),
                "row": np.bincount(self.srv_row, weights=s, minlength=len(self.row_names)),
                "site": np.array([s.sum()])}

    def rows(self) -> np.ndarray:
        return np.bincount(self.srv_row, weights=self.servers(), minlength=len(self.row_names))


@dataclass
class _Breaker:
    level: str
    node: str
    index: int
    rating_w: float
    curve: tuple
    reset_s: float
    reroute: bool
    servers: np.ndarray
    above: list        # per curve point: since when above it (definite); nan: not above
    average: bool = True
    tripped_until: float = -math.inf
    start: float | None = None         # when its history began (run start, or its last reset)
    hist: list = field(default_factory=list)   # per curve point: (time, W) of the checks within its time
    sums: list = field(default_factory=list)   # per curve point: their sum (W)

    def __post_init__(self) -> None:
        self.hist = [deque() for _ in self.curve]
        self.sums = [0.0] * len(self.curve)


class Protection:
    """Breakers and the controller harness of one run (built by :func:`attach`)."""

    def __init__(self, x, tree, eng, training: dict, groups, factory, controller=None) -> None:
        self.x = x
        self.tree = tree
        self.eng = eng
        self.training = training
        self.live = LivePower(tree, eng, training)
        self.trips: list[dict] = []
        self.actions: list[dict] = []
        self.dark_spans: list[tuple[int, float, float]] = []     # (server, t0, t1)
        self.breakers: list[_Breaker] = []
        self._groups = groups
        self._factory = factory
        self._profiles: dict = {}
        self._build_breakers()
        self._rep_by_server: dict[int, list] = {}
        self._server_of: dict[int, int] = {}
        for r, s in zip(self.live.reps, self.live.rep_srv.tolist()):
            self._rep_by_server.setdefault(s, []).append(r)
            self._server_of[id(r)] = s
        self._train_by_server: dict[int, list] = {}
        for sched, srv in self.live.train:
            for k, s in enumerate(srv.tolist()):
                self._train_by_server.setdefault(s, []).append((sched, k))
        self.capped_s: dict[str, float] = {r: 0.0 for r in self.live.row_names}
        self._cap_since: dict[str, float] = {}
        self._lever: dict[tuple[str, str], float | None] = {}
        self.controller: Controller | None = None
        c = x.power.controller
        if c is not None:
            self._setup_controller(c, controller)

    # ------------------------------------------------------------------ breakers
    def _build_breakers(self) -> None:
        lp = self.live
        tree = self.tree
        for b in self.x.power.breakers:
            if b.level == "site":
                cands = [("site", 0, tree.site_budget_w, np.arange(lp.ns))]
            elif b.level == "row":
                cands = [(r, i, lp.row_budget[i], np.flatnonzero(lp.srv_row == i)) for i, r in enumerate(lp.row_names)]
            else:
                cands = [(r, i, tree.racks[r][2], np.flatnonzero(lp.srv_rack == i))
                         for i, r in enumerate(lp.rack_names)]
            if b.node is not None:
                cands = [c for c in cands if c[0] == b.node]
                if not cands:
                    raise ConfigurationError(f"{b.field}.node: no {b.level} called {b.node!r} in the power tree")
            for node, idx, budget, servers in cands:
                rating = b.rating_w if b.rating_w is not None else budget
                if rating is None or not math.isfinite(rating):
                    if b.node is not None:
                        raise ConfigurationError(f"{b.field}: {node} has no budget; give rating_w")
                    continue
                self.breakers.append(_Breaker(b.level, node, idx, float(rating), tuple(sorted(b.curve)),
                                              float(b.reset_s), b.on_trip == "reroute", servers,
                                              [math.nan] * len(b.curve), b.model == "average"))
        if self.breakers:
            check = min(b.check_s for b in self.x.power.breakers)
            self.eng.every(check, self._check)

    def _check(self, eng, now: float) -> None:
        lv = None
        for b in self.breakers:
            if now < b.tripped_until:
                continue
            if lv is None:
                lv = self.live.levels()
            p = float(lv[b.level][b.index])
            ratio = p / b.rating_w
            if b.start is None:
                b.start = now
            for k, (r, t) in enumerate(b.curve):
                if b.average:
                    # the mean power over the last t seconds (the checks in (now - t, now]) above
                    # r x rating, with t seconds of history since the breaker closed
                    if t <= 0:
                        hot = ratio > r
                    else:
                        win = b.hist[k]
                        win.append((now, p))
                        b.sums[k] += p
                        while len(win) > 1 and win[0][0] <= now - t + 1e-9:
                            b.sums[k] -= win.popleft()[1]
                        hot = now - b.start >= t - 1e-9 and b.sums[k] / len(win) > r * b.rating_w
                else:
                    if ratio > r:
                        if math.isnan(b.above[k]):
                            b.above[k] = now
                    else:
                        b.above[k] = math.nan
                    hot = ratio > r and now - b.above[k] >= t - 1e-9
                if hot:
                    self._trip(b, now, p, ratio, r, t)
                    lv = None
                    break

    def _trip(self, b: _Breaker, now: float, p: float, ratio: float, r: float, t: float) -> None:
        b.above = [math.nan] * len(b.above)
        for w in b.hist:
            w.clear()
        b.sums = [0.0] * len(b.curve)
        b.start = None
        b.tripped_until = now + b.reset_s
        held, jobs = 0, 0
        for s in b.servers.tolist():
            self.live.dark[s] += 1
            if self.live.dark[s] > 1:
                continue
            for rep in self._rep_by_server.get(s, []):
                held += self.eng.set_dark(rep, True, now, reroute=b.reroute)
            by_sched: dict = {}
            for sched, k in self._train_by_server.get(s, []):
                by_sched.setdefault(id(sched), (sched, []))[1].append(k)
            for sched, ks in by_sched.values():
                jobs += len(sched.set_dark(ks, True))
        self.trips.append({"time_s": now, "level": b.level, "node": b.node, "power_w": p, "rating_w": b.rating_w,
                           "ratio": ratio, "curve_ratio": r, "curve_s": t, "reset_s": b.tripped_until,
                           "servers": int(len(b.servers)), "requests": int(held), "jobs": int(jobs)})
        # a heap event registered now runs before the periodic check at the same instant
        self.eng.at(b.tripped_until, lambda _eng, _t, b=b, t0=now: self._reset(b, t0))

    def _reset(self, b: _Breaker, t0: float) -> None:
        now = self.eng.env.now
        for s in b.servers.tolist():
            self.live.dark[s] -= 1
            if self.live.dark[s] > 0:
                continue
            self.dark_spans.append((s, t0, now))
            for rep in self._rep_by_server.get(s, []):
                self.eng.set_dark(rep, False, now)
            by_sched: dict = {}
            for sched, k in self._train_by_server.get(s, []):
                by_sched.setdefault(id(sched), (sched, []))[1].append(k)
            for sched, ks in by_sched.values():
                sched.set_dark(ks, False)

    # ------------------------------------------------------------------ controller
    def _setup_controller(self, c, custom=None) -> None:
        lp = self.live
        if custom is None and c.kind != "polca":
            raise ConfigurationError(f"{c.field}.kind: unknown controller {c.kind!r}; expected polca")
        rows = [r for i, r in enumerate(lp.row_names) if math.isfinite(lp.row_budget[i])] if c.rows is None \
            else list(c.rows)
        for r in rows:
            if r not in lp.row_names:
                raise ConfigurationError(f"{c.field}.rows: no row {r!r} in the power tree; rows: {lp.row_names}")
            if not math.isfinite(lp.row_budget[lp.row_names.index(r)]):
                raise ConfigurationError(f"{c.field}.rows: row {r!r} has no budget (fleet.power.rows.{r})")
        prio = dict(c.priority)
        pools = {p.name: p for p in self.x.pools}
        for name in prio:
            if name not in pools:
                raise ConfigurationError(f"{c.field}.priority: no pool {name!r}; pools: {list(pools)}")
        self.klass = {p.name: prio.get(p.name, "training" if p.role == "training" else "interactive")
                      for p in self.x.pools}
        infos = {}
        for r in rows:
            classes = tuple(sorted({self.klass[p.name] for p in self.x.pools if p.row == r}))
            static = float(lp.static[lp.srv_row == lp.row_names.index(r)].sum())
            infos[r] = RowInfo(r, float(lp.row_budget[lp.row_names.index(r)]), classes, static)
        self.ctl_rows = rows
        self.row_idx = np.array([lp.row_names.index(r) for r in rows], dtype=np.int64)
        self.cfg = c
        self.controller = custom if custom is not None else PolcaController(c)
        self.controller.start(infos)   # type: ignore[union-attr]  # set on the line above
        self.ctl_events = 0
        self.level_state: dict[tuple[str, str], tuple[str, float | None]] = {}
        n = max(1, int(getattr(c, "samples", 1)))
        self._acc = np.zeros(len(rows))
        self._n_acc = 0
        self._per = n
        # live samples at the middle of each of n sub-intervals; a reading every n samples
        self._interval = float(getattr(self.controller, "interval_s", None) or c.interval_s)
        step = self._interval / n
        self.eng.every(step, self._sub, start_s=step / 2.0)
        if c.fail_at_s is not None and getattr(c, "fail_mode", "hold") == "release":
            self.eng.at(c.fail_at_s, lambda _e, t: self._fail_open(t))

    def _sub(self, eng, now: float) -> None:
        c = self.cfg
        if c.fail_at_s is not None and now >= c.fail_at_s:
            return
        self._acc += self.live.rows()[self.row_idx]
        self._n_acc += 1
        if self._n_acc < self._per:
            return
        mean = self._acc / self._n_acc
        self._acc[:] = 0.0
        self._n_acc = 0
        t = now + self._interval / (2 * self._per)      # the end of the averaging window
        if c.telemetry_delay_s > 0:
            eng.at(t + c.telemetry_delay_s, lambda _e, _t, m=mean, ts=t: self._sample(ts, m))
        else:
            eng.at(t, lambda _e, _t, m=mean, ts=t: self._sample(ts, m))

    def _sample(self, t_meas: float, mean) -> None:
        """A reading taken at ``t_meas`` reaches the controller now (after the telemetry delay)."""
        c = self.cfg
        lost = any(a <= t_meas < b for a, b in c.outages)
        if lost:
            readings = None
        else:
            readings = {r: (t_meas, float(v)) for r, v in zip(self.ctl_rows, mean.tolist())}
        self._step(readings)
    def _step(self, readings) -> None:
        now = self.eng.env.now
        c = self.cfg
        if c.fail_at_s is not None and now >= c.fail_at_s:
            return
        self.ctl_events += 1
        assert self.controller is not None, "steps run only once a controller is registered"
        acts = self.controller.step(now, readings)
        if not acts:
            return
        self.eng.at(now + c.actuation_delay_s, lambda _e, _t, a=acts, t=now: self._apply(a, t))

    def _fail_open(self, now: float) -> None:
        """The controller failed and its levers return to uncapped (``fail_mode: release``)."""
        acts = [Action(row, lever, (k,), None, "controller failed: its levers return to uncapped", 0)
                for (row, k), v in sorted(self._lever.items()) if v is not None
                for lever in (self.cfg.lever,)]
        if acts:
            self._apply(acts, now)

    def _profile(self, g, op):
        key = (g.engine_pool, op)
        p = self._profiles.get(key)
        if p is None:
            p = self._profiles[key] = self._factory(op)
        return p

    def _apply(self, acts: list[Action], decided: float) -> None:
        now = self.eng.env.now
        from ..frontier.build import _clock_mhz
        from ..frontier import accelerator_power

        for a in acts:
            pools = [p for p in self.x.pools if p.row == a.row and (not a.classes or self.klass[p.name] in a.classes)]
            for p in pools:
                acc = accelerator_power(p.accelerator)
                lever, note = a.lever, ""
                if a.lever == "admission":
                    for g in self._groups:
                        if g.pool == p.name:
                            for rep in self.eng.replicas(g.engine_pool):
                                if not self.live.dark[self._server_of[id(rep)]]:
                                    self.eng.set_admitting(rep, a.value is None or a.value > 0, now)
                    value_logged = a.value if a.value is not None else 1.0
                else:
                    cap_w = None if a.value is None else min(acc.power_max_w, max(acc.power_min_w,
                                                                                a.value * acc.power_max_w))
                    if p.power_cap_w is not None and cap_w is not None:
                        cap_w = min(cap_w, p.power_cap_w)
                    if p.role == "training":
                        sched = self.training.get(p.name)
                        if sched is not None:
                            sched.set_cap(cap_w)
                        if a.lever == "clock":
                            lever, note = "cap", " (training has no clock lever: capped at the same fraction)"
                        value_logged = math.nan if cap_w is None else cap_w
                    else:
                        value_logged = math.nan
                        for g in self._groups:
                            if g.pool != p.name:
                                continue
                            base = g.serve.op
                            if a.value is None:
                                op = base
                            elif a.lever == "clock":
                                op = base.with_clock(_clock_mhz(acc.name, a.value))
                            else:
                                op = base.with_cap(cap_w)
                            prof = self._profile(g, op)
                            for rep in self.eng.replicas(g.engine_pool):
                                rep.set_profile(prof)
                            if a.value is not None:
                                v = op.locked_clock_mhz if a.lever == "clock" else cap_w
                                value_logged = math.nan if v is None else float(v)
                self.actions.append({"time_s": now, "decided_s": decided, "row": a.row, "pool": p.name,
                                     "lever": lever, "classes": self.klass[p.name], "value": float(value_logged),
                                     "level": int(a.level), "reason": a.reason + note})
            # capped time: a row counts as capped while any class of it runs capped (or clock-locked)
            if a.lever in ("cap", "clock"):
                for k in a.classes:
                    self._lever[(a.row, k)] = a.value
                capped = any(v is not None for (r, _), v in self._lever.items() if r == a.row)
                if capped and a.row not in self._cap_since:
                    self._cap_since[a.row] = now
                elif not capped and a.row in self._cap_since:
                    self.capped_s[a.row] += now - self._cap_since.pop(a.row)

    # ------------------------------------------------------------------ results
    def finish(self, t_end: float) -> None:
        for row, t0 in list(self._cap_since.items()):
            self.capped_s[row] += t_end - t0
        self._cap_since.clear()
        for b in self.breakers:
            if b.tripped_until > t_end:
                for s in b.servers.tolist():
                    self.dark_spans.append((s, b.tripped_until - b.reset_s, t_end))
        if self.controller is not None:
            self.controller.finish(t_end)

    def trips_frame(self) -> pd.DataFrame:
        df = pd.DataFrame.from_records(self.trips, columns=list(TRIP_COLUMNS))
        return df.astype({"time_s": "float64", "power_w": "float64", "rating_w": "float64", "ratio": "float64",
                          "curve_ratio": "float64", "curve_s": "float64", "reset_s": "float64",
                          "servers": "int64", "requests": "int64", "jobs": "int64"})

    def actions_frame(self) -> pd.DataFrame:
        df = pd.DataFrame.from_records(self.actions, columns=list(ACTION_COLUMNS))
        return df.astype({"time_s": "float64", "decided_s": "float64", "value": "float64", "level": "int64"})

    def meta(self, horizon: float) -> dict:
        rows: list[str] = self.ctl_rows if self.controller is not None else []
        return {"trips": len(self.trips), "breakers": len(self.breakers),
                "requests_hit_by_trips": int(sum(t["requests"] for t in self.trips)),
                "jobs_hit_by_trips": int(sum(t["jobs"] for t in self.trips)),
                "controller": None if self.controller is None else (
                    self.cfg.kind if isinstance(self.controller, PolcaController) else type(self.controller).__name__),
                "controller_actions": len(self.actions),
                "controller_steps": getattr(self, "ctl_events", 0),
                "capped_time_share": {r: self.capped_s[r] / horizon for r in rows},
                "telemetry_outages": [] if self.controller is None else [list(o) for o in self.cfg.outages],
                "controller_fail_at_s": None if self.controller is None else self.cfg.fail_at_s}

    def dark(self) -> dict | None:
        if not self.dark_spans:
            return None
        a = np.array(self.dark_spans, dtype=np.float64)
        return {"server": a[:, 0].astype(np.int64), "t0": a[:, 1], "t1": a[:, 2]}


def attach(x, tree, eng, training: dict, groups, factory, controller=None) -> Protection | None:
    """Register the breakers and the controller of ``x.power`` on the engine (None: neither);
    ``controller`` replaces the built-in POLCA-style one (same harness, delays and faults)."""
    if not x.power.breakers and x.power.controller is None:
        return None
    for g in groups:
        eng.guard_pool(g.engine_pool)
    return Protection(x, tree, eng, training, groups, factory, controller=controller)
