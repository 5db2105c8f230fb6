"""Time-energy frontiers over power caps, as numpy tables built once and looked up fast.

:func:`build_serving_frontier` builds one :class:`ServingProfile` per cap on a grid from the
accelerator's lowest to its highest settable limit and stacks their decode/prefill coefficients
into 2-D arrays (caps x batch).  A lookup is then a few array operations: the (cap, time,
energy, power) of one decode iteration at every cap, and its Pareto-optimal subset (no other cap
is both faster and cheaper in energy).
"""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from ..errors import ConfigurationError
from .build import (DEFAULT_CONTEXT_RANGE, build_serving_profile, decode_point, make_replica, operating_point,
                    prefill_point)
from .operating_point import OperatingPoint
from .profile import ServingProfile


@dataclass(frozen=True)
class ServingFrontier:
    """Profiles of one replica at a grid of per-GPU power caps (ascending)."""

    caps_w: np.ndarray                  # (n,)
    profiles: tuple[ServingProfile, ...]
    t0: np.ndarray                      # (n, max_batch+1) decode intercepts (s)
    t1: np.ndarray                      # (n, max_batch+1) (s / context token)
    e0: np.ndarray                      # (n, max_batch+1) (J)
    e1: np.ndarray                      # (n, max_batch+1) (J / context token)
    pre_t: np.ndarray                   # (n, 3)
    pre_e: np.ndarray                   # (n, 3)
    _caps_list: list[float] = field(init=False, repr=False, compare=False)   # caps_w for bisect

    def __post_init__(self) -> None:
        # read-only (cached and shared, like its profiles): in-place writes raise ValueError
        from .profile import read_only_array

        for name in ("caps_w", "t0", "t1", "e0", "e1", "pre_t", "pre_e"):
            object.__setattr__(self, name, read_only_array(getattr(self, name)))
        object.__setattr__(self, "profiles", tuple(self.profiles))
        object.__setattr__(self, "_caps_list", [float(c) for c in self.caps_w])

    @property
    def max_batch(self) -> int:
        return self.profiles[0].max_batch

    def at_cap(self, cap_w: float) -> ServingProfile:
        """The profile of the highest grid cap not above ``cap_w`` (a cap is a ceiling)."""
        lo, hi = float(self.caps_w[0]), float(self.caps_w[-1])
        if not (lo - 1e-9 <= cap_w <= hi + 1e-9):
            raise ConfigurationError(f"power cap {cap_w:g} W is outside the frontier's range [{lo:g}, {hi:g}] W")
        i = bisect.bisect_right(self._caps_list, cap_w + 1e-9) - 1
        return self.profiles[max(i, 0)]

    def decode_points(self, batch: int, context_tokens: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(cap W, time s, energy J, power W) of one decode iteration at every grid cap.

        ``context_tokens`` is the TOTAL context over the batch (the profile convention)."""
        t = self.t0[:, batch] + self.t1[:, batch] * context_tokens
        e = self.e0[:, batch] + self.e1[:, batch] * context_tokens
        return self.caps_w, t, e, e / t

    def prefill_points(self, tokens: float, tokens_sq: float | None = None):
        """(cap W, time s, energy J, power W) of one prefill step of ``tokens`` prompt tokens
        (``tokens_sq``: sum of squared per-request counts; default one request) at every cap."""
        sq = tokens * tokens if tokens_sq is None else tokens_sq
        t = self.pre_t[:, 0] + self.pre_t[:, 1] * tokens + self.pre_t[:, 2] * sq
        e = self.pre_e[:, 0] + self.pre_e[:, 1] * tokens + self.pre_e[:, 2] * sq
        return self.caps_w, t, e, e / t

    def pareto(self, batch: int, context_tokens: float, phase: str = "decode"):
        """All points and the boolean mask of the Pareto-optimal ones (min time, min energy).

        ``phase="decode"``: one iteration of ``batch`` sequences holding ``context_tokens`` in
        total; ``phase="prefill"``: one prefill step of ``batch`` prompt tokens (context unused)."""
        if phase == "decode":
            caps, t, e, p = self.decode_points(batch, context_tokens)
        elif phase == "prefill":
            caps, t, e, p = self.prefill_points(float(batch))
        else:
            raise ConfigurationError(f"phase {phase!r}; expected 'decode' or 'prefill'")
        return caps, t, e, p, pareto_mask(t, e)


def pareto_mask(t: np.ndarray, e: np.ndarray) -> np.ndarray:
    """True where no other point has both lower-or-equal time and energy (one strictly)."""
    order = np.lexsort((e, t))                # by time, then energy
    keep = np.zeros(len(t), bool)
    best = np.inf
    for i in order:
        if e[i] < best - 1e-15:
            keep[i] = True
            best = e[i]
    return keep


@lru_cache(maxsize=64)
def _frontier(op: OperatingPoint, n_caps: int, context_range: tuple) -> ServingFrontier:
    rep = make_replica(op.uncapped())
    caps = np.linspace(float(rep.device.power_min_w), float(rep.device.power_max_w), int(n_caps))
    profs = tuple(build_serving_profile(op.with_cap(float(c)), context_range=context_range) for c in caps)
    return ServingFrontier(
        caps_w=caps, profiles=profs,
        t0=np.stack([p.dec_t0 for p in profs]), t1=np.stack([p.dec_t1 for p in profs]),
        e0=np.stack([p.dec_e0 for p in profs]), e1=np.stack([p.dec_e1 for p in profs]),
        pre_t=np.array([p.pre_t for p in profs]), pre_e=np.array([p.pre_e for p in profs]))


def build_serving_frontier(op, accelerator=None, tp: int = 1, precision: str = "bf16",
                           kv_precision: str | None = None, *, max_batch: int | None = None, n_caps: int = 11,
                           context_range=DEFAULT_CONTEXT_RANGE, calibrated: bool = False,
                           constants=None, ep: int | None = 1) -> ServingFrontier:
    """Profiles of operating point ``op`` at ``n_caps`` caps from ``power_min_w`` to
    ``power_max_w`` (cached; ``op``'s own cap or clock is ignored).

    Convenience form: ``build_serving_frontier(model, accelerator, tp, precision, kv_precision,
    max_batch=, calibrated=, constants=, ep=)`` as in
    :func:`~fleet.frontier.build.build_serving_profile`."""
    if int(n_caps) < 2:
        raise ConfigurationError(f"a frontier needs at least 2 caps, got {n_caps}")
    if isinstance(op, OperatingPoint):
        if accelerator is not None:
            raise TypeError("build_serving_frontier(op) takes an OperatingPoint alone; the keyword form "
                            "starts build_serving_frontier(model, accelerator, ...)")
    elif accelerator is None:
        raise TypeError("build_serving_frontier() needs an OperatingPoint, or a model and an accelerator")
    else:
        op = operating_point(op, accelerator, tp, precision, kv_precision, max_batch=max_batch,
                             calibrated=calibrated, constants=constants, ep=ep)
    return _frontier(op.uncapped(), int(n_caps), tuple(float(v) for v in context_range))


def operating_point_breakdown(op, *args, precision: str = "bf16", kv_precision: str | None = None,
                              power_cap_w: float | None = None, clock: float | None = None,
                              calibrated: bool = False, phase: str = "decode", constants=None,
                              ep: int | None = 1) -> dict:
    """Energy breakdown (J: compute, memory, interconnect, static), time and power of one decode
    iteration (``context_tokens`` total over the batch) or one prefill of ``batch`` tokens.

    ``operating_point_breakdown(op, batch, context_tokens, phase=)`` at an
    :class:`OperatingPoint` (its cap or locked clock); convenience form
    ``operating_point_breakdown(model, accelerator, tp, batch, context_tokens, precision=,
    kv_precision=, power_cap_w=, clock=, calibrated=, constants=, ep=)`` (``clock``: locked
    fraction of the maximum clock)."""
    if isinstance(op, OperatingPoint):
        if len(args) != 2:
            raise TypeError("operating_point_breakdown(op, batch, context_tokens) takes two positional arguments "
                            "after the operating point")
        batch, context_tokens = args
        rep = make_replica(op)
        power_cap_w, clock = op.power_cap_w, rep.clock_fraction
    else:
        if len(args) != 4:
            raise TypeError("operating_point_breakdown(model, accelerator, tp, batch, context_tokens)")
        accelerator, tp, batch, context_tokens = args
        rep = make_replica(operating_point(op, accelerator, tp, precision, kv_precision, calibrated=calibrated,
                                           constants=constants, ep=ep))
    if phase == "decode":
        ev = decode_point(rep, int(batch), float(context_tokens) / max(int(batch), 1),
                          power_cap_w=power_cap_w, clock=clock)
    elif phase == "prefill":
        ev = prefill_point(rep, int(batch), power_cap_w=power_cap_w, clock=clock)
    else:
        raise ConfigurationError(f"phase {phase!r}; expected 'decode' or 'prefill'")
    f = lambda v: float(np.asarray(v).ravel()[0])  # noqa: E731
    return {"time_s": f(ev.time_s), "energy_j": f(ev.energy_j), "power_w": f(ev.power_w),
            "clock_fraction": f(ev.clock_fraction),
            "breakdown_j": {k: f(v) for k, v in ev.breakdown().items()}}
