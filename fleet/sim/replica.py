"""A serving replica with vLLM-style continuous batching, coalesced decode and exact energy.

Scheduling (what one replica does, in vLLM v0 terms)
----------------------------------------------------
* FCFS admission from the replica's queue.  A request (or a preempted one coming back) is
  admitted when the batch has room (``running + admitted < max_batch``, with
  ``max_batch = min(pool setting, profile.max_batch)``) and the KV cache has room for its
  prefill *plus one more decode iteration of every sequence plus a 1 % watermark* (this is
  vLLM's ``watermark=0.01``; without the one-iteration headroom an admission could be preempted
  before any sequence made progress, a livelock).  A replica with nothing running always admits
  its queue head (its size was checked against the whole cache when it arrived).
* Prefill ahead of decode: at an iteration boundary, if the queue head is admissible, the step is
  a prefill step over every admissible request in FCFS order whose prompts together stay under
  ``max_prefill_tokens`` (the first one always fits).  Running sequences wait during that step
  (vLLM v0 without chunked prefill).  The first output token of a request is produced at the end
  of its prefill step.
* Chunked prefill (option): every step decodes all running sequences (one token each) and spends
  the rest of the token budget ``max_prefill_tokens`` on prompt chunks of admitted requests, FCFS.
  A mixed step takes ``t_dec(b, C) + pre_t1*n + pre_t2*((c+n)^2 - c^2)`` summed over chunks (``c``
  tokens of that prompt already done, ``n`` in this chunk), so a prompt's chunks add up to exactly
  its unchunked quadratic cost; the prefill's fixed cost ``pre_t0`` is paid only by pure prefill
  steps.  Same form for energy.
* KV cache: a sequence with ``g`` generated tokens holds ``input + g`` tokens; a decode iteration
  over context ``C = sum(input + g - 1)`` (the tokens it reads) needs one more slot per sequence.
  When the next iteration does not fit, the most recently admitted sequence is preempted
  (recomputation): it frees its KV, goes back to the *front* of the queue, and its next prefill
  runs over ``input + g`` tokens and produces its token ``g + 1``.  In the step where a
  preemption happens nothing is admitted (as vLLM does).  KV is counted in tokens, not in
  vLLM's 16-token blocks (the rounding would waste at most 15 tokens per sequence).
* Requests whose ``input + output`` exceeds the model's context or the whole KV cache are
  dropped on arrival by the engine (``drop_reason``), so every admitted request can finish.

Coalesced decode
----------------
Between two events the batch ``b`` is fixed, so the replica jumps straight to the next
completion (the running sequence with the fewest remaining tokens) or to the last iteration
before the KV cache overflows: ``n = min(n_finish, n_kv)`` iterations in closed form with
:meth:`ServingProfile.decode_span` (context grows exactly as ``C0 + i*b``).  One event per batch
change.  An arrival mid-span that could be admitted (batch and KV room at the next boundary) cuts
the span to the end of the iteration in flight (found with ``decode_iters_within``); arrivals
that could not be admitted do not touch the span.  Book-keeping is O(log b) per event:

* ``K``: iterations done by this replica; a sequence that joins decode at ``K_j`` with ``r``
  tokens still to generate finishes at ``K_j + r`` (a heap of finish iterations);
* ``C``: total context of the running batch, maintained incrementally
  (``ctx_i = ctxbase_i + K``);
* ``Ecum``: cumulative decode energy per sequence (each span's energy / b added to it); a
  sequence's decode energy is the difference between its exit and entry values.  Prefill energy
  is shared among the requests of the step in proportion to their prompt tokens.

Iteration mode (``iteration=True``) runs the same scheduler with spans of one iteration (one
event per decode iteration): the reference the coalesced mode is validated against.

Operating point changes
-----------------------
:meth:`Replica.set_profile` takes effect at the next iteration boundary: a decode span in
flight is cut to the end of the iteration in flight, a prefill step finishes under the old
profile, an idle replica switches immediately.  Everything before the boundary is costed with the
old profile, everything after with the new one.

Energy: every instant of the replica's life lies in exactly one recorded segment (idle,
prefill step, decode span), whose energy is the exact integral of the modelled power.
"""

from __future__ import annotations

import math
from array import array
from collections import deque
from heapq import heappop, heappush
from typing import TYPE_CHECKING

from ..frontier.steady import KV_WATERMARK  # one constant for the estimate and the simulation
from .serving import ST_COMPLETED, ST_RUNNING

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np

    from ..frontier.profile import ServingProfile
    from .engine import Engine
    from .serving import ServingPool

class _Sink:
    """Where an inactive replica writes its router load (the router must not see it)."""

    __slots__ = ()

    def __setitem__(self, key: int, value: float) -> None:
        pass


_SINK = _Sink()

IDLE, PREFILL, DECODE, WAKE = 0, 1, 2, 3
#: a prefill step merged into the decode span after it: (t0, t1, energy J, batch, rows, prompt tokens)
_PrefillRecord = tuple[float, float, float, int, list[int], list[int]]
PHASE_NAMES = ("idle", "prefill", "decode", "idle")


class Replica:
    """One replica (``tp`` GPUs holding one model copy) of a serving pool.

    Public, read-only state: ``queued`` (requests waiting), ``running`` (admitted: decoding +
    prefilling), ``kv_used_tokens``, ``power_w`` (current modelled power, W), ``profile``.
    """

    __slots__ = (
        "eng", "pool", "index", "node", "node_id", "profile", "_pending_profile", "_pool_max_batch",
        "chunked", "mpt", "iteration", "B", "cap", "wm", "dt0", "dt1", "de0", "de1", "pt0", "pt1",
        "pt2", "pe0", "pe1", "pe2", "idle_w", "queue", "run", "fheap", "K", "C", "Ecum", "phase",
        "gen", "t_phase", "span_n", "span_b", "span_C0", "span_end", "pf_batch", "pf_tok",
        "pf_reserved", "pf_done", "pf_sum", "pf_sq", "pf_rec", "just_preempted", "seg", "_heap", "_cnt", "S", "n_in",
        "load_arr", "load_idx", "load_inv", "kv_arr", "q_tokens", "busy_s", "batch_s", "tokens_in",
        "tokens_out", "recomputed_tokens", "completed", "preemptions", "capacity", "idle_j",
        "active", "off", "inactive_w", "_router_slots",
    )

    def __init__(self, eng: "Engine", pool: "ServingPool", index: int, node_id: int,
                 profile: "ServingProfile", iteration: bool) -> None:
        self.eng = eng
        self.pool = pool
        self.index = index
        self.node = f"{pool.name}/r{index}"
        self.node_id = node_id
        self._pool_max_batch = pool.max_batch
        self.chunked = pool.chunked_prefill
        self.mpt = int(pool.max_prefill_tokens)
        self.iteration = bool(iteration)
        self._pending_profile: ServingProfile | None = None
        # replica schedule (Engine.set_schedule): ``active`` replicas are offered to the router;
        # an inactive one drains and, once idle, is ``off``: it draws ``inactive_w`` (W, whole
        # replica; None: its profile's idle power) until it is activated again
        self.active = True
        self.off = False
        self.inactive_w: float | None = None
        # the router's vectors while inactive (load_arr and kv_arr write to the sink meanwhile)
        self._router_slots: tuple[np.ndarray | _Sink | None, np.ndarray | _Sink | None] | None = None
        self._load_profile(profile)
        self.queue: deque[int] = deque()
        self.run: dict[int, int] = {}        # row -> finish iteration (insertion order = admission order)
        self.fheap: list[tuple[int, int]] = []
        self.K = 0
        self.C = 0
        self.Ecum = 0.0
        self.phase = IDLE
        self.gen = 0
        self.t_phase = 0.0
        self.span_n = 0
        self.span_b = 0
        self.span_C0 = 0
        self.span_end = 0.0
        self.pf_batch: list[int] = []        # rows in the prefill step in flight
        self.pf_tok: list[int] = []          # their prompt tokens in this step
        self.pf_reserved = 0                 # KV tokens reserved by admitted, not yet decoding requests
        self.pf_sum = 0                      # sum and sum of squares of pf_tok (unchunked step)
        self.pf_sq = 0
        # a prefill step merged into the decode span that follows it, not yet recorded:
        # (t0, t1, energy, batch for stats, rows, prompt tokens)
        self.pf_rec: _PrefillRecord | None = None
        self.pf_done: dict[int, int] = {}    # chunked prefill: row -> prompt tokens already prefilled
        self.just_preempted = False
        self.seg = array("d")                # (t0, t1, energy_j) triples of this replica
        self._heap = eng._heap
        self._cnt = eng._counter
        self.S = eng._store                  # the request store, set by the engine at run()
        self.n_in = 0                        # requests routed here and not finished (queued + running)
        self.load_arr: np.ndarray | _Sink | None = None    # router load vector (numpy) and this replica's slot
        self.load_idx = 0
        self.load_inv = 1.0
        self.kv_arr: np.ndarray | _Sink | None = None      # router KV-load vector (least_kv), same slot
        self.q_tokens = 0                    # KV tokens the queued requests will need
        self.busy_s = 0.0
        self.idle_j = 0.0                    # energy of the idle segments (J)
        self.batch_s = 0.0                   # integral of running batch over busy time (s)
        self.tokens_in = 0
        self.tokens_out = 0
        self.recomputed_tokens = 0
        self.completed = 0
        self.preemptions = 0

    # ------------------------------------------------------------------ profile
    def _load_profile(self, p: "ServingProfile") -> None:
        self.profile = p
        mb = p.max_batch if self._pool_max_batch is None else min(int(self._pool_max_batch), p.max_batch)
        self.B = int(mb)
        self.cap = int(p.kv_capacity_tokens)
        self.wm = int(KV_WATERMARK * self.cap)
        # decode tables as Python lists (fast scalar indexing), shared by every replica of the
        # engine that runs this profile (one copy stays in the CPU caches, not one per replica)
        tables = self.eng._tables
        tab = tables.get(id(p))
        if tab is None or tab[0] is not p:
            tab = (p, [float(x) for x in p.dec_t0], [float(x) for x in p.dec_t1],
                   [float(x) for x in p.dec_e0], [float(x) for x in p.dec_e1])
            tables[id(p)] = tab
        self.dt0, self.dt1, self.de0, self.de1 = tab[1], tab[2], tab[3], tab[4]
        self.pt0, self.pt1, self.pt2 = (float(x) for x in p.pre_t)
        self.pe0, self.pe1, self.pe2 = (float(x) for x in p.pre_e)
        self.idle_w = float(p.idle_power_w) if not (self.off and self.inactive_w is not None) else self.inactive_w
        # relative serving capacity used by load-aware routers: decode tokens/s at the largest
        # batch whose sequences (1 k prompt + 1 k context on average) fit in the KV cache
        b = max(1, min(self.B, self.cap // 2048))
        self.capacity = b / (self.dt0[b] + self.dt1[b] * b * 1024.0)

    def set_profile(self, profile: "ServingProfile") -> None:
        """Change the operating point (power cap, clock) from the next iteration boundary on."""
        if self.phase == IDLE:
            now = self.eng.env.now
            self._close_idle(now)
            self._load_profile(profile)
            self.t_phase = now
            self._update_load()
            return
        self._pending_profile = profile
        if self.phase == DECODE:
            self._cut_span(self.eng.env.now)

    def _apply_pending_profile(self) -> None:
        p = self._pending_profile
        assert p is not None, "a profile change is pending"
        self._pending_profile = None
        self._load_profile(p)
        self._update_load()

    def _update_load(self) -> None:
        if self.load_arr is not None:
            self.load_inv = 1.0 / self.capacity
            self.load_arr[self.load_idx] = self.n_in * self.load_inv
        if self.kv_arr is not None:
            self.kv_arr[self.load_idx] = (self.C + len(self.run) + self.pf_reserved + self.q_tokens) / self.cap

    # ------------------------------------------------------------------ replica schedule
    @property
    def sim_origin(self) -> tuple[str, str]:
        """Where an error raised by this replica comes from (the engine pool)."""
        return ("serving", self.pool.name)

    def set_active(self, on: bool, now: float) -> None:
        """Activate or deactivate (the engine's replica schedule does this at hour boundaries).

        Deactivated: the router no longer sees the replica (its load slots read +inf); it
        finishes what it holds (running and queued requests) and, once idle, powers down to
        ``inactive_w``.  Activated: available immediately (no warm-up is modelled), at its
        profile's idle power until work arrives."""
        if on == self.active:
            return
        self.active = on
        if on:
            if self.off:
                self.off = False
                if self.inactive_w is not None:
                    self._close_idle(now)
                    self.t_phase = now
                    self.idle_w = float(self.profile.idle_power_w)
            slots = self._router_slots
            if slots is not None:
                self._router_slots = None
                self.load_arr, self.kv_arr = slots
                self._update_load()
            return
        la, ka = self.load_arr, self.kv_arr
        if la is not None or ka is not None:
            self._router_slots = (la, ka)
            if la is not None:
                la[self.load_idx] = math.inf
                self.load_arr = _SINK
            if ka is not None:
                ka[self.load_idx] = math.inf
                self.kv_arr = _SINK
        if self.phase == IDLE:
            self._power_down(now)

    def _power_down(self, now: float) -> None:
        """An inactive replica with nothing left to do: draw the inactive power from ``now``."""
        self.off = True
        w = self.inactive_w
        if w is not None and w != self.idle_w:
            self._close_idle(now)
            self.t_phase = now
            self.idle_w = w

    # ------------------------------------------------------------------ power loss (breaker trip)
    def go_dark(self, now: float) -> list[int]:
        """The replica loses power at ``now`` (a breaker tripped, fleet.sim.protection): the step
        in flight is closed with the energy used up to ``now`` (as at the horizon), every request
        it held (queued, prefilling, decoding) is taken from it and returned (rows), with its
        generated tokens as of the last completed iteration (a re-routed one is recomputed like a
        preempted one), and the replica draws 0 W, hidden from the router, until :meth:`restore`."""
        S = self.S
        ph = self.phase
        undone = set()
        if self.pf_rec is not None and now < self.pf_rec[1]:
            undone = set(self.pf_rec[4])
        K_before = self.K
        self.finalize(now)
        rows = []
        inp, gen = S.inp, S.gen
        for i in self.run:
            if i not in undone:
                gen[i] = S.ctxbase[i] + K_before - inp[i] + 1
            rows.append(i)
        rows.extend(i for i in self.pf_batch if i not in self.run)
        rows.extend(self.queue)
        if ph != IDLE:
            self.eng._busy -= 1
        self.queue.clear()
        self.run.clear()
        self.fheap.clear()
        self.C = 0
        self.pf_batch = []
        self.pf_tok = []
        self.pf_reserved = 0
        self.pf_sum = self.pf_sq = 0
        self.pf_rec = None
        self.pf_done = {}
        self.just_preempted = False
        self.q_tokens = 0
        self.n_in = 0
        self.gen += 1                     # events in flight are stale
        self.phase = IDLE
        self.t_phase = now                # finalize recorded everything up to now
        self.idle_w = 0.0
        if self._pending_profile is not None:
            self._apply_pending_profile()
            self.idle_w = 0.0
        la = self.load_arr
        if la is not None:
            la[self.load_idx] = 0.0
        saved = self.inactive_w
        self.inactive_w = 0.0
        self.set_active(False, now)
        self.inactive_w = saved
        return rows

    def restore(self, now: float) -> None:
        """Power back after :meth:`go_dark`: idle at the profile's idle power, offered to the router."""
        self._close_idle(now)
        self.t_phase = now
        self.off = False
        self.idle_w = float(self.profile.idle_power_w)
        self.set_active(True, now)

    # ------------------------------------------------------------------ public state
    @property
    def queued(self) -> int:
        return len(self.queue)

    @property
    def running(self) -> int:
        """Admitted requests: decoding plus prefilling."""
        return len(self.run) + (len(self.pf_done) if self.chunked else len(self.pf_batch))

    @property
    def kv_used_tokens(self) -> int:
        """KV tokens held now (running sequences' input + generated, plus admitted prefills)."""
        if self.phase == DECODE and self.span_b:
            n = self._iters_done(self.eng.env.now)
            return self.span_C0 + n * self.span_b + self.span_b + self.pf_reserved
        return self.C + len(self.run) + self.pf_reserved

    @property
    def power_w(self) -> float:
        """Modelled power now (W): idle power, the mean power of the prefill step in flight, or
        the power of the decode iteration in flight."""
        ph = self.phase
        if ph == IDLE or ph == WAKE:
            return self.idle_w
        if ph == DECODE:
            now = self.eng.env.now
            if now < self.t_phase:          # merged prefill step in flight
                assert self.pf_rec is not None
                t0, t1, e = self.pf_rec[:3]
                return e / (t1 - t0)
            b = self.span_b
            c = self.span_C0 + self._iters_done(now) * b
            return (self.de0[b] + self.de1[b] * c) / (self.dt0[b] + self.dt1[b] * c)
        t, e = self._prefill_cost()
        return e / t if t > 0 else self.idle_w

    @property
    def phase_name(self) -> str:
        return PHASE_NAMES[self.phase]

    # ------------------------------------------------------------------ closed forms
    def _span_time(self, b: int, c0: int, n: int) -> float:
        return n * self.dt0[b] + self.dt1[b] * (n * c0 + b * n * (n - 1) * 0.5)

    def _iters_done(self, now: float) -> int:
        """Whole decode iterations of the span in flight finished by ``now`` (clipped to the span).

        The closed form of :meth:`ServingProfile.decode_iters_within`, inlined on the hot path
        with the replica's own table references (the mode-agreement tests hold the two together)."""
        b = self.span_b
        c0 = self.span_C0
        el = now - self.t_phase
        if el <= 0.0:
            return 0
        a = self.dt0[b]
        k = self.dt1[b]
        q = 0.5 * k * b
        lin = a + k * c0 - q
        if q <= 0.0:
            n = int(el // lin)
        else:
            n = int((-lin + math.sqrt(lin * lin + 4.0 * q * el)) / (2.0 * q))
        st = self._span_time
        while n > 0 and st(b, c0, n) > el:
            n -= 1
        while st(b, c0, n + 1) <= el:
            n += 1
        return min(n, self.span_n)

    def _prefill_cost(self) -> tuple[float, float]:
        """Time and energy of the prefill (or mixed chunked) step in flight."""
        if not self.chunked:
            tok = self.pf_sum
            sq = self.pf_sq
            return (self.pt0 + self.pt1 * tok + self.pt2 * sq,
                    self.pe0 + self.pe1 * tok + self.pe2 * sq)
        return self._mixed_cost()[:2]

    # ------------------------------------------------------------------ events
    def _push(self, t: float) -> None:
        self.gen += 1
        heappush(self._heap, (t, next(self._cnt), self, self.gen))

    def _fire(self, now: float, gen: int) -> None:
        if gen != self.gen:
            return                      # a span that was cut short: stale event
        ph = self.phase
        if ph == DECODE:
            self._end_decode(now)
        elif ph == WAKE:
            pass
        elif self.chunked:
            self._end_mixed(now)
        else:
            self._end_prefill(now)
        self._schedule(now)
        ka = self.kv_arr
        if ka is not None:
            ka[self.load_idx] = (self.C + len(self.run) + self.pf_reserved + self.q_tokens) / self.cap

    def _close_idle(self, now: float) -> None:
        t0 = self.t_phase
        if now > t0:
            e = self.idle_w * (now - t0)
            self.idle_j += e
            self.seg.extend((t0, now, e))

    def on_arrival(self, i: int, now: float) -> None:
        """A request (row ``i``) routed to this replica arrives at ``now``."""
        q = self.queue
        was_empty = not q
        q.append(i)
        S = self.S
        need = S.inp[i] + S.gen[i] + 1
        self.q_tokens += need
        self.n_in += 1
        la = self.load_arr
        if la is not None:
            la[self.load_idx] = self.n_in * self.load_inv
        ka = self.kv_arr
        if ka is not None:
            ka[self.load_idx] = (self.C + len(self.run) + self.pf_reserved + self.q_tokens) / self.cap
        ph = self.phase
        if ph == IDLE:
            self._close_idle(now)
            self.eng._busy += 1
            if self.eng._ta_next == now:
                # more arrivals at this instant: wake through a zero-delay event so that all of
                # them are queued before the first step is formed (arrivals run before heap
                # events at a tie)
                self.phase = WAKE
                self.t_phase = now
                self._push(now)
            else:
                self._schedule(now)
        elif ph == DECODE and was_empty and not self.just_preempted:
            # would the request be admitted at the next iteration boundary?  If so, cut the span.
            b = self.span_b
            if b + 1 > self.B:
                return
            room = self.cap - (b + need + b + 1 + self.wm) - self.pf_reserved
            if self.span_C0 + b > room:      # C only grows within a span: cannot be admitted
                return
            if now <= self.t_phase:          # merged prefill in flight: its end is the boundary
                if self.span_n > 0:
                    self._cut_to(0)
                return
            n = self._iters_done(now)
            if n + 1 >= self.span_n:
                return                        # the span ends with the iteration in flight anyway
            if self.span_C0 + (n + 1) * b > room:
                return
            self._cut_to(n + 1)

    def _cut_span(self, now: float) -> None:
        if now <= self.t_phase:
            if self.span_n > 0:
                self._cut_to(0)
            return
        n = self._iters_done(now)
        if n + 1 < self.span_n:
            self._cut_to(n + 1)

    def _cut_to(self, n: int) -> None:
        self.span_n = n
        t_end = self.t_phase + self._span_time(self.span_b, self.span_C0, n)
        self.span_end = t_end
        self._push(t_end)

    # ------------------------------------------------------------------ scheduler
    def _schedule(self, now: float) -> None:
        """Iteration boundary: start the next step (prefill, decode span) or go idle."""
        if self._pending_profile is not None:
            self._apply_pending_profile()
        if self.chunked:
            self._schedule_chunked(now)
            return
        if self.queue and not self.just_preempted and self._start_prefill(now):
            return
        if self.run:
            self._start_decode(now)
        else:
            self.phase = IDLE
            self.t_phase = now
            self.eng._busy -= 1
            if not self.active:
                self._power_down(now)

    def _start_prefill(self, now: float) -> bool:
        S = self.S
        inp = S.inp
        gen = S.gen
        q = self.queue
        B = self.B
        cap = self.cap
        wm = self.wm
        budget = self.mpt
        nb = len(self.run)
        used = self.C + nb
        batch = self.pf_batch
        toks = self.pf_tok
        tok = 0
        sq = 0
        while q:
            i = q[0]
            p = inp[i] + gen[i]
            need = p + 1
            if nb + 1 > B:
                break
            if used + need + nb + 1 + wm > cap and not (nb == 0 and need <= cap):
                break
            if batch and tok + p > budget:
                break
            q.popleft()
            self.q_tokens -= need
            batch.append(i)
            toks.append(p)
            tok += p
            sq += p * p
            used += need
            nb += 1
        if not batch:
            return False
        self.pf_reserved = used - self.C - len(self.run)
        self.pf_sum = tok
        self.pf_sq = sq
        dt = self.pt0 + self.pt1 * tok + self.pt2 * sq
        admit = S.admit
        status = S.status
        out = S.out
        merge = not q
        for i in batch:
            if admit[i] != admit[i]:
                admit[i] = now
                status[i] = ST_RUNNING
            if gen[i] + 1 >= out[i]:
                merge = False
        t1 = now + dt
        if merge:
            # Nothing else is waiting and nobody finishes at the end of this step, so the step
            # will be followed by a decode span: apply the prefill's effects now, as of t1, and
            # plan the span right away (one event for both).  An arrival or a profile change
            # during the prefill cuts the plan back to t1 (see on_arrival / _cut_span).
            e = self.pe0 + self.pe1 * tok + self.pe2 * sq
            nb0 = len(self.run)
            self.pf_rec = (now, t1, e, nb0 + len(batch), batch, toks)
            self.pf_batch = []
            self.pf_tok = []
            self._apply_prefill(t1, e, batch, toks)
            self._start_decode(t1)
            return True
        self.phase = PREFILL
        self.t_phase = now
        self.span_end = t1
        self._push(t1)
        return True

    def _end_prefill(self, now: float) -> None:
        t0 = self.t_phase
        batch = self.pf_batch
        toks = self.pf_tok
        e = self.pe0 + self.pe1 * self.pf_sum + self.pe2 * self.pf_sq
        self.seg.extend((t0, now, e))
        dt = now - t0
        self.busy_s += dt
        self.batch_s += dt * (len(self.run) + len(batch))
        self._apply_prefill(now, e, batch, toks)
        batch.clear()
        toks.clear()

    def _flush_prefill_record(self) -> None:
        """Record the merged prefill step planned together with the decode span in flight."""
        assert self.pf_rec is not None
        t0, t1, e, nb, _, _ = self.pf_rec
        self.pf_rec = None
        self.seg.extend((t0, t1, e))
        dt = t1 - t0
        self.busy_s += dt
        self.batch_s += dt * nb

    def _apply_prefill(self, now: float, e: float, batch: list[int], toks: list[int]) -> None:
        """End of a prefill step at ``now``: first tokens, energy shares, join the decode batch."""
        S = self.S
        tok = self.pf_sum
        inp = S.inp
        out = S.out
        gen = S.gen
        energy = S.energy
        first = S.first
        run = self.run
        fheap = self.fheap
        K = self.K
        C = self.C
        Ecum = self.Ecum
        eentry = S.eentry
        ctxbase = S.ctxbase
        share = e / tok
        for j, i in enumerate(batch):
            p = toks[j]
            energy[i] += share * p
            g = gen[i]
            if g == 0:
                self.tokens_in += p
            else:
                self.recomputed_tokens += p
            g += 1
            gen[i] = g
            if first[i] != first[i]:
                first[i] = now
            self.tokens_out += 1
            o = out[i]
            if g >= o:
                self._complete(i, now)
            else:
                ctx = inp[i] + g - 1
                ctxbase[i] = ctx - K
                fk = K + o - g
                run[i] = fk
                heappush(fheap, (fk, i))
                C += ctx
                eentry[i] = Ecum
        self.C = C
        self.pf_reserved = 0

    def _complete(self, i: int, now: float) -> None:
        S = self.S
        S.done[i] = now
        S.status[i] = ST_COMPLETED
        self.completed += 1
        self.n_in -= 1
        la = self.load_arr
        if la is not None:
            la[self.load_idx] = self.n_in * self.load_inv

    def _preempt_latest(self) -> None:
        run = self.run
        i = next(reversed(run))
        del run[i]
        S = self.S
        ctx = S.ctxbase[i] + self.K
        self.C -= ctx
        S.gen[i] = ctx - S.inp[i] + 1
        S.energy[i] += self.Ecum - S.eentry[i]
        S.preempt[i] += 1
        self.preemptions += 1
        self.queue.appendleft(i)
        self.q_tokens += ctx + 2          # input + generated + 1
        self.just_preempted = True

    def _start_decode(self, now: float) -> None:
        run = self.run
        b = len(run)
        cap = self.cap
        while b > self.B or self.C + 2 * b > cap:
            self._preempt_latest()
            b -= 1
        if b == 0:      # everything preempted (only after a profile change shrank the cache)
            self.just_preempted = False
            self._schedule(now)
            return
        fh = self.fheap
        while True:
            fk, i = fh[0]
            if run.get(i) == fk:
                break
            heappop(fh)
        C = self.C
        n = fk - self.K
        nkv = (cap - C - b) // b
        if nkv < n:
            n = nkv
        if self.iteration or self.just_preempted:
            n = 1
            self.just_preempted = False
        dt = n * self.dt0[b] + self.dt1[b] * (n * C + b * n * (n - 1) * 0.5)
        self.phase = DECODE
        self.t_phase = now
        self.span_n = n
        self.span_b = b
        self.span_C0 = C
        t1 = now + dt
        self.span_end = t1
        g = self.gen + 1
        self.gen = g
        heappush(self._heap, (t1, next(self._cnt), self, g))

    def _end_decode(self, now: float) -> None:
        rec = self.pf_rec
        if rec is not None:     # the merged prefill step before this span
            self.pf_rec = None
            t0, t1, e, nb = rec[0], rec[1], rec[2], rec[3]
            self.seg.extend((t0, t1, e))
            self.busy_s += t1 - t0
            self.batch_s += (t1 - t0) * nb
        n = self.span_n
        if n == 0:          # a merged plan cut back to the end of its prefill step
            return
        b = self.span_b
        c0 = self.span_C0
        e = n * self.de0[b] + self.de1[b] * (n * c0 + b * n * (n - 1) * 0.5)
        t0 = self.t_phase
        self.seg.extend((t0, now, e))
        dt = now - t0
        self.busy_s += dt
        self.batch_s += dt * b
        self.tokens_out += n * b
        Ecum = self.Ecum + e / b
        self.Ecum = Ecum
        K = self.K + n
        self.K = K
        C = c0 + n * b
        fh = self.fheap
        run = self.run
        if fh[0][0] <= K:
            S = self.S
            ctxbase = S.ctxbase
            energy = S.energy
            eentry = S.eentry
            gen = S.gen
            out = S.out
            done = S.done
            status = S.status
            nd = 0
            while fh and fh[0][0] <= K:
                fk, i = heappop(fh)
                if run.get(i) != fk:
                    continue
                del run[i]
                C -= ctxbase[i] + K
                energy[i] += Ecum - eentry[i]
                gen[i] = out[i]
                done[i] = now
                status[i] = ST_COMPLETED
                nd += 1
            self.completed += nd
            self.n_in -= nd
            la = self.load_arr
            if la is not None:
                la[self.load_idx] = self.n_in * self.load_inv
        self.C = C

    # ------------------------------------------------------------------ chunked prefill
    def _mixed_cost(self) -> tuple[float, float, float]:
        """(time, energy, prefill part of the energy) of the chunked step in flight."""
        b = self.span_b
        c0 = self.span_C0
        pt = 0.0
        pe = 0.0
        done = self.pf_done
        p1, p2, e1, e2 = self.pt1, self.pt2, self.pe1, self.pe2
        for i, n in zip(self.pf_batch, self.pf_tok):
            c = done[i]
            quad = (c + n) * (c + n) - c * c
            pt += p1 * n + p2 * quad
            pe += e1 * n + e2 * quad
        if b:
            return self.dt0[b] + self.dt1[b] * c0 + pt, self.de0[b] + self.de1[b] * c0 + pe, pe
        return self.pt0 + pt, self.pe0 + pe, self.pe0 + pe

    def _schedule_chunked(self, now: float) -> None:
        """One mixed step (decode every running sequence + prompt chunks) while prompts are
        pending; a coalesced decode span otherwise."""
        run = self.run
        done = self.pf_done
        S = self.S
        inp = S.inp
        gen = S.gen
        q = self.queue
        # make room for one decode iteration of every running sequence
        while run and (len(run) > self.B or self.C + 2 * len(run) + self.pf_reserved > self.cap):
            self._preempt_latest()
        # admit new requests (FCFS) into the prefilling set (not in a step that preempted)
        if q and not self.just_preempted:
            B, cap, wm = self.B, self.cap, self.wm
            nb = len(run) + len(done)
            used = self.C + len(run) + self.pf_reserved
            while q:
                i = q[0]
                need = inp[i] + gen[i] + 1
                if nb + 1 > B:
                    break
                if used + need + nb + 1 + wm > cap and not (nb == 0 and need <= cap):
                    break
                q.popleft()
                self.q_tokens -= need
                done[i] = 0
                used += need
                nb += 1
                self.pf_reserved += need
                if S.admit[i] != S.admit[i]:
                    S.admit[i] = now
                    S.status[i] = ST_RUNNING
        if not done:
            if run:
                self._start_decode(now)     # one iteration only if this step preempted
            else:
                self.just_preempted = False
                self.phase = IDLE
                self.t_phase = now
                self.eng._busy -= 1
                if not self.active:
                    self._power_down(now)
            return
        self.just_preempted = False
        b = len(run)
        budget = max(self.mpt - b, 1)
        batch = self.pf_batch
        toks = self.pf_tok
        for i, c in done.items():
            if budget <= 0:
                break
            n = min(inp[i] + gen[i] - c, budget)
            batch.append(i)
            toks.append(n)
            budget -= n
        self.phase = PREFILL
        self.t_phase = now
        self.span_b = b
        self.span_C0 = self.C
        self.span_n = 1 if b else 0
        dt = self._mixed_cost()[0]
        self.span_end = now + dt
        self._push(now + dt)

    def _end_mixed(self, now: float) -> None:
        t, e, pe = self._mixed_cost()
        t0 = self.t_phase
        self.seg.extend((t0, now, e))
        dt = now - t0
        self.busy_s += dt
        b = self.span_b
        self.batch_s += dt * (b + len(self.pf_done))
        S = self.S
        inp = S.inp
        out = S.out
        gen = S.gen
        energy = S.energy
        if b:
            # the decode part: one iteration of the running batch
            self.Ecum += (e - pe) / b
            self.tokens_out += b
            self.K += 1
            self.C += b
            K = self.K
            fh = self.fheap
            run = self.run
            C = self.C
            while fh and fh[0][0] <= K:
                fk, i = heappop(fh)
                if run.get(i) != fk:
                    continue
                del run[i]
                C -= S.ctxbase[i] + K
                energy[i] += self.Ecum - S.eentry[i]
                gen[i] = out[i]
                self._complete(i, now)
            self.C = C
        # the prefill part: shared by chunk tokens
        done = self.pf_done
        toks = self.pf_tok
        tot = sum(toks)
        share = pe / tot if tot else 0.0
        for i, n in zip(self.pf_batch, toks):
            energy[i] += share * n
            c = done[i] + n
            p = inp[i] + gen[i]
            if c < p:
                done[i] = c
                continue
            del done[i]
            if gen[i] == 0:
                self.tokens_in += p
            else:
                self.recomputed_tokens += p
            self.pf_reserved -= p + 1
            g = gen[i] + 1
            gen[i] = g
            if S.first[i] != S.first[i]:
                S.first[i] = now
            self.tokens_out += 1
            o = out[i]
            if g >= o:
                self._complete(i, now)
            else:
                ctx = inp[i] + g - 1
                K = self.K
                S.ctxbase[i] = ctx - K
                fk = K + o - g
                self.run[i] = fk
                heappush(self.fheap, (fk, i))
                self.C += ctx
                S.eentry[i] = self.Ecum
        self.pf_batch.clear()
        toks.clear()

    # ------------------------------------------------------------------ horizon
    def finalize(self, t_end: float) -> None:
        """Close the segment in flight at ``t_end`` (the horizon): energy of the whole
        iterations done plus the elapsed fraction of the one in flight (linear within it), and
        attribute it to the requests in flight."""
        ph = self.phase
        if ph == WAKE:
            return
        if ph == IDLE:
            self._close_idle(t_end)
            return
        S = self.S
        if self.pf_rec is not None:
            if t_end >= self.pf_rec[1]:
                self._flush_prefill_record()
            else:
                self._finalize_merged_prefill(t_end)
        t0 = self.t_phase
        if t_end > t0:
            dt = t_end - t0
            self.busy_s += dt
            if ph == DECODE:
                b = self.span_b
                c0 = self.span_C0
                n = self._iters_done(t_end)
                t_n = self._span_time(b, c0, n)
                e = n * self.de0[b] + self.de1[b] * (n * c0 + b * n * (n - 1) * 0.5)
                if n < self.span_n:
                    c = c0 + n * b
                    ti = self.dt0[b] + self.dt1[b] * c
                    frac = min(1.0, max(0.0, (t_end - t0 - t_n) / ti))
                    e += frac * (self.de0[b] + self.de1[b] * c)
                self.seg.extend((t0, t_end, e))
                self.batch_s += dt * b
                self.Ecum += e / b
            else:
                # prefill / mixed step in flight: linear share of its energy
                if self.chunked:
                    t, e, pe = self._mixed_cost()
                else:
                    t, e = self._prefill_cost()
                    pe = e
                frac = min(1.0, dt / t) if t > 0 else 1.0
                self.seg.extend((t0, t_end, e * frac))
                self.batch_s += dt * (len(self.run) + len(self.pf_batch))
                b = len(self.run)
                if self.chunked and b:
                    self.Ecum += (e - pe) * frac / b
                tot = sum(self.pf_tok)
                if tot:
                    for i, n in zip(self.pf_batch, self.pf_tok):
                        S.energy[i] += pe * frac * n / tot
        for i in self.run:          # decode energy of the sequences in the batch
            S.energy[i] += self.Ecum - S.eentry[i]
            S.eentry[i] = self.Ecum

    def _finalize_merged_prefill(self, t_end: float) -> None:
        """The horizon falls inside a merged prefill step: keep the elapsed fraction of its
        energy, and undo what it would have done at its end (first tokens, shares)."""
        assert self.pf_rec is not None
        t0, t1, e, nb, batch, toks = self.pf_rec
        self.pf_rec = None
        S = self.S
        frac = (t_end - t0) / (t1 - t0) if t1 > t0 else 1.0
        self.seg.extend((t0, t_end, e * frac))
        self.busy_s += t_end - t0
        self.batch_s += (t_end - t0) * nb
        tot = sum(toks)
        for i, p in zip(batch, toks):
            S.energy[i] -= e * (1.0 - frac) * p / tot
            S.gen[i] -= 1
            self.tokens_out -= 1
            if S.gen[i] == 0:
                self.tokens_in -= p
                S.first[i] = math.nan       # its first token would have come at the step's end
            else:
                self.recomputed_tokens -= p
        # the decode span planned after the step has not started: nothing more to record
        self.t_phase = t_end
