"""Routers: which replica (of all pools serving one model) gets an arriving request.

Built-ins:

* ``round_robin``: replicas in turn (pool order, then replica index); ignores load and speed.
* ``jsq`` (join the shortest queue): the replica with the fewest requests in the system
  (queued + running), *normalised by the replica's capacity* (its decode tokens/s at a
  KV-feasible batch, :attr:`Replica.capacity`), so a faster H100 replica takes proportionally more
  than an A100 replica serving the same model.  Ties go to the lowest index.
* ``least_kv``: the replica with the lowest KV-cache load, counted as the KV tokens held at the
  replica's last event plus the tokens its queue will need, over its KV capacity (within a
  coalesced decode span the growth is not seen until the span ends; a real router also sees a
  lagged metric).

Replica schedules: only active replicas are routed to (JSQ and least-KV read an inactive
replica's load as +inf, round-robin skips it, a custom router is offered the active ones only).

Custom routers implement the :class:`Router` protocol: ``choose(request, replicas) -> Replica``
where ``request`` is a :class:`RequestInfo` and ``replicas`` the model's replicas that can hold
the request.  The built-ins have a fast internal path (``_pick``) that the engine uses instead of
building a ``RequestInfo`` per request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple, Protocol, Sequence, runtime_checkable

import numpy as np

from ..errors import ConfigurationError

if TYPE_CHECKING:  # pragma: no cover
    from .replica import Replica


class RequestInfo(NamedTuple):
    """What a custom router sees of a request (tokens, seconds)."""
    request_id: int
    arrival_s: float
    input_tokens: int
    output_tokens: int
    model: str


@runtime_checkable
class Router(Protocol):
    def choose(self, request: RequestInfo, replicas: Sequence["Replica"]) -> "Replica":
        ...


class BuiltinRouter:
    """Base of the built-in routers: ``bind`` gives them the model's replicas once."""

    name = "builtin"

    def __init__(self) -> None:
        self.replicas: list["Replica"] = []

    def bind(self, replicas: list["Replica"]) -> None:
        self.replicas = list(replicas)

    def _pick(self) -> "Replica":          # pragma: no cover - overridden
        raise NotImplementedError

    def choose(self, request: RequestInfo, replicas: Sequence["Replica"]) -> "Replica":
        """Protocol form: choose among ``replicas`` (a subset of the bound ones)."""
        if len(replicas) == len(self.replicas):
            return self._pick()
        return self._pick_among(replicas)

    def _pick_among(self, replicas: Sequence["Replica"]) -> "Replica":
        return replicas[0]

    def _pick_active(self) -> "Replica":
        """The pick among the active replicas (a replica schedule is in force; at least one is
        active).  Load-based routers read an inactive replica's load as +inf, so ``_pick`` is it."""
        return self._pick()


class RoundRobin(BuiltinRouter):
    name = "round_robin"

    def __init__(self) -> None:
        super().__init__()
        self._next = 0

    def _pick(self) -> "Replica":
        r = self.replicas[self._next]
        self._next = (self._next + 1) % len(self.replicas)
        return r

    def _pick_among(self, replicas: Sequence["Replica"]) -> "Replica":
        r = replicas[self._next % len(replicas)]
        self._next = (self._next + 1) % len(self.replicas)
        return r

    def _pick_active(self) -> "Replica":
        """The next active replica in turn (inactive ones are skipped, not counted)."""
        reps = self.replicas
        n = len(reps)
        k = self._next
        for _ in range(n):
            r = reps[k]
            k = (k + 1) % n
            if r.active:
                self._next = k
                return r
        raise ConfigurationError("round_robin: no active replica")   # the engine checks first


class JoinShortestQueue(BuiltinRouter):
    """Least (queued + running) / capacity; the replicas keep ``load`` up to date themselves."""

    name = "jsq"

    def bind(self, replicas: list["Replica"]) -> None:
        super().bind(replicas)
        self.load = np.zeros(len(self.replicas))
        for k, r in enumerate(self.replicas):
            r.load_arr = self.load
            r.load_idx = k
            r.load_inv = 1.0 / r.capacity
            self.load[k] = r.n_in * r.load_inv
        self._argmin = self.load.argmin

    def _pick(self) -> "Replica":
        return self.replicas[self._argmin()]

    def _pick_among(self, replicas: Sequence["Replica"]) -> "Replica":
        return min(replicas, key=lambda r: (self.load[r.load_idx], r.load_idx))


class LeastKV(BuiltinRouter):
    """Least (KV held + KV needed by the queue) / KV capacity, as of each replica's last event."""

    name = "least_kv"

    def bind(self, replicas: list["Replica"]) -> None:
        super().bind(replicas)
        self.kv = np.zeros(len(self.replicas))
        for k, r in enumerate(self.replicas):
            r.kv_arr = self.kv
            r.load_idx = k
            self.kv[k] = (r.C + len(r.run) + r.pf_reserved + r.q_tokens) / r.cap
        self._argmin = self.kv.argmin

    def _pick(self) -> "Replica":
        return self.replicas[self._argmin()]

    def _pick_among(self, replicas: Sequence["Replica"]) -> "Replica":
        return min(replicas, key=lambda r: (self.kv[r.load_idx], r.load_idx))


class SizeAwareRouter:
    """Routes each request by its size and hour to the pools a plan assigned its bucket to
    (``simulation.router: size_aware`` with ``simulation.size_routes``; the GPU-mix planner writes
    them, :mod:`fleet.plan.mix`).

    ``routes``: ``(model or None, pool, (in_lo, in_hi), (out_lo, out_hi), weights per hour)``; a
    request of ``I`` prompt and ``O`` output tokens arriving in hour ``h`` matches a route when
    ``in_lo <= I < in_hi`` and ``out_lo <= O < out_hi`` and its weight in hour ``h`` (the list
    repeats over the horizon) is positive.  Among the matching pools one is chosen by smooth
    weighted round robin (deterministic, in proportion to the weights), then its replica with the
    fewest requests per unit of capacity (as ``jsq``).  A request no route matches, or whose pools
    cannot hold it, goes to the least-loaded of all the replicas it was offered (as ``jsq``).
    The router reads the request's output length at arrival, as Mélange's buckets do (an oracle,
    or a predictor good enough to bucket by)."""

    name = "size_aware"

    def __init__(self, routes, hour_s: float = 3600.0) -> None:
        self.routes = [(m, str(p), (float(i[0]), float(i[1])), (float(o[0]), float(o[1])),
                        np.asarray(w, dtype=float)) for m, p, i, o, w in routes]
        if not self.routes:
            raise ConfigurationError("the size_aware router needs at least one route")
        self.hour_s = float(hour_s)
        self._credit: dict[tuple, dict[str, float]] = {}

    @staticmethod
    def _least(replicas: Sequence["Replica"]) -> "Replica":
        return min(replicas, key=lambda r: (r.n_in / r.capacity, r.pool.name, r.index))

    def choose(self, request: RequestInfo, replicas: Sequence["Replica"]) -> "Replica":
        h = int(request.arrival_s // self.hour_s)
        weights: dict[str, float] = {}
        key = []
        for k, (m, pool, (ilo, ihi), (olo, ohi), w) in enumerate(self.routes):
            if m is not None and m != request.model:
                continue
            if not (ilo <= request.input_tokens < ihi and olo <= request.output_tokens < ohi):
                continue
            wh = float(w[h % len(w)])
            if wh > 0:
                weights[pool] = weights.get(pool, 0.0) + wh
                key.append(k)
        if weights:
            by_pool: dict[str, list] = {}
            for r in replicas:
                name = r.pool.name.split(":", 1)[0]
                if name in weights:
                    by_pool.setdefault(name, []).append(r)
            live = {p: w for p, w in weights.items() if p in by_pool}
            if live:
                # smooth weighted round robin (nginx): deterministic and proportional
                credit = self._credit.setdefault((tuple(key), h), {})
                total = sum(live.values())
                for p, wt in live.items():
                    credit[p] = credit.get(p, 0.0) + wt
                best = max(sorted(live), key=lambda p: credit[p])
                credit[best] -= total
                return self._least(by_pool[best])
        return self._least(replicas)


_BUILTIN = {"round_robin": RoundRobin, "rr": RoundRobin, "jsq": JoinShortestQueue,
            "join_shortest_queue": JoinShortestQueue, "least_kv": LeastKV}


def make_router(spec: "str | Router") -> "Router":
    """A router from its name (``round_robin``, ``jsq``, ``least_kv``) or a Router instance."""
    if isinstance(spec, str):
        try:
            return _BUILTIN[spec]()
        except KeyError as exc:
            raise ConfigurationError(
                f"unknown router {spec!r}; expected one of round_robin, jsq, least_kv "
                "or an object with choose(request, replicas)") from exc
    if not callable(getattr(spec, "choose", None)):
        raise ConfigurationError("a router must have a method choose(request, replicas) -> replica")
    return spec
