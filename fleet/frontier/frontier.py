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
from .build import DEFAULT_CONTEXT_RANGE, build_serving_profile, decode_point, make_replica, prefill_point
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
def _frontier(model: str, accelerator: str, tp: int, precision: str, kv_precision, max_batch, n_caps: int,
              context_range: tuple, calibrated: bool, constants=None, ep: int = 1) -> ServingFrontier:
    rep = make_replica(model, accelerator, tp, precision, kv_precision, calibrated=calibrated, constants=constants,
                       ep=ep)
    caps = np.linspace(float(rep.device.power_min_w), float(rep.device.power_max_w), int(n_caps))
    profs = tuple(build_serving_profile(model, accelerator, tp, precision, kv_precision, float(c), max_batch,
                                        context_range, calibrated=calibrated, constants=constants, ep=ep)
                  for c in caps)
    return ServingFrontier(
        caps_w=caps, profiles=profs,
        t0=np.stack([p.dec_t0 for p in profs]), t1=np.stack([p.dec_t1 for p in profs]),
        e0=np.stack([p.dec_e0 for p in profs]), e1=np.stack([p.dec_e1 for p in profs]),
        pre_t=np.array([p.pre_t for p in profs]), pre_e=np.array([p.pre_e for p in profs]))


def build_serving_frontier(model, accelerator, tp: int = 1, precision: str = "bf16",
                           kv_precision: str | None = None, *, max_batch: int | None = None, n_caps: int = 11,
                           context_range=DEFAULT_CONTEXT_RANGE, calibrated: bool = False,
                           constants=None, ep: int | None = 1) -> ServingFrontier:
    """Profiles at ``n_caps`` caps from ``power_min_w`` to ``power_max_w`` (cached); ``constants``
    and ``ep`` (expert-parallel degree) as in :func:`~fleet.frontier.build.build_serving_profile`."""
    if int(n_caps) < 2:
        raise ConfigurationError(f"a frontier needs at least 2 caps, got {n_caps}")
    rep_name = make_replica(model, accelerator, tp, precision, kv_precision, calibrated=calibrated,
                            constants=constants, ep=ep)
    return _frontier(rep_name.model_name, rep_name.acc.name, int(tp), rep_name.precision, kv_precision,
                     None if max_batch is None else int(max_batch), int(n_caps),
                     tuple(float(v) for v in context_range), bool(calibrated), constants, rep_name.ep)


def operating_point_breakdown(model, accelerator, tp: int, batch: int, context_tokens: float, *,
                              precision: str = "bf16", kv_precision: str | None = None,
                              power_cap_w: float | None = None, clock: float | None = None,
                              calibrated: bool = False, phase: str = "decode", constants=None,
                              ep: int | None = 1) -> dict:
    """Energy breakdown (J: compute, memory, interconnect, static), time and power of one decode
    iteration (``context_tokens`` total over the batch) or one prefill of ``batch`` tokens
    (``ep``: expert-parallel degree, as in :func:`~fleet.frontier.build.make_replica`)."""
    rep = make_replica(model, accelerator, tp, precision, kv_precision, calibrated=calibrated, constants=constants,
                       ep=ep)
    if phase == "decode":
        op = decode_point(rep, int(batch), float(context_tokens) / max(int(batch), 1),
                          power_cap_w=power_cap_w, clock=clock)
    elif phase == "prefill":
        op = prefill_point(rep, int(batch), power_cap_w=power_cap_w, clock=clock)
    else:
        raise ConfigurationError(f"phase {phase!r}; expected 'decode' or 'prefill'")
    f = lambda v: float(np.asarray(v).ravel()[0])  # noqa: E731
    return {"time_s": f(op.time_s), "energy_j": f(op.energy_j), "power_w": f(op.power_w),
            "clock_fraction": f(op.clock_fraction),
            "breakdown_j": {k: f(v) for k, v in op.breakdown().items()}}
