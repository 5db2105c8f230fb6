"""The narrow waist: what one replica costs per unit of work at one operating point.

A :class:`ServingProfile` describes one serving replica (one model on ``tp`` GPUs of one
accelerator, one weight/KV precision) at one operating point (a power cap or a locked clock).
It is produced by the energy model (:mod:`fleet.hardware` via :func:`fleet.frontier.build`)
and consumed by the simulation and the planner, which know the hardware only through it.

Representation (all SI: seconds, joules, watts; whole replica, i.e. summed over its ``tp`` GPUs):

* Decode iteration at running batch ``b`` (1 <= b <= max_batch) whose sequences together hold
  ``C`` context tokens in the KV cache::

      t(b, C) = dec_t0[b] + dec_t1[b] * C          (seconds)
      e(b, C) = dec_e0[b] + dec_e1[b] * C          (joules, includes static energy over t)

  The energy model is a roofline (max of compute and memory time) under DVFS, which is
  piecewise-affine in C; the builder fits one affine line per batch over the context range it
  was asked to cover and records the worst relative error of that fit in
  ``decode_fit_max_rel_err`` (the error bound of everything built on it).

* Prefill step that processes new prompt tokens ``n_i`` for a set of requests::

      t = pre_t0 + pre_t1 * sum(n_i) + pre_t2 * sum(n_i**2)
      e = pre_e0 + pre_e1 * sum(n_i) + pre_e2 * sum(n_i**2)

  (the quadratic term is attention over the prompt itself), fit error in
  ``prefill_fit_max_rel_err``.

* ``idle_power_w``: power of the replica's GPUs when they hold the model but run nothing.

Because each decode iteration adds one token per running sequence, the context seen by
iteration ``i`` (0-based) of a span that starts at context ``C0`` with a fixed batch ``b`` is
``C0 + i*b``, and the time and energy of ``n`` iterations have closed forms
(:meth:`decode_span`); the number of whole iterations that fit in a time window is the root of a
quadratic (:meth:`decode_iters_within`).  This is what lets the simulation coalesce decode:
one event per batch change, not per token.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from types import MappingProxyType

import numpy as np
from numpy.typing import ArrayLike


def read_only_array(a: ArrayLike) -> np.ndarray:
    """A non-writeable copy of ``a`` (same dtype and values): profiles are cached and shared by
    every run of the process, so their tables must not be mutable through a caller's reference."""
    out = np.array(a, copy=True)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class ServingProfile:
    model: str                      # canonical short model name, e.g. "llama-3.1-8b"
    accelerator: str                # canonical accelerator name, e.g. "H100-SXM"
    tp: int                         # GPUs in the replica (tensor parallel degree)
    precision: str                  # weight precision, e.g. "bf16", "fp8"
    kv_precision: str               # KV-cache precision
    power_cap_w: float              # per-GPU power cap of this operating point (W)
    clock_fraction: float           # modelled SM clock relative to max at typical decode load (0-1]
    max_batch: int                  # largest running batch the scheduler may use
    kv_capacity_tokens: int         # KV-cache tokens that fit in the replica's memory after weights
    max_context_tokens: int         # longest sequence (prompt + output) the model accepts
    idle_power_w: float             # whole replica, model loaded, nothing running (W)
    dec_t0: np.ndarray              # shape (max_batch + 1,), index 0 unused (s)
    dec_t1: np.ndarray              # (s per context token)
    dec_e0: np.ndarray              # (J)
    dec_e1: np.ndarray              # (J per context token)
    pre_t: tuple[float, float, float]   # (s, s/token, s/token^2)
    pre_e: tuple[float, float, float]   # (J, J/token, J/token^2)
    decode_fit_max_rel_err: float = 0.0
    prefill_fit_max_rel_err: float = 0.0
    calibrated: bool = False
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    def __post_init__(self) -> None:
        # read-only: a cached profile is shared by every later run in the process (a caller that
        # mutated dec_t0 in place would silently corrupt them all); writes raise ValueError
        for name in ("dec_t0", "dec_t1", "dec_e0", "dec_e1"):
            object.__setattr__(self, name, read_only_array(getattr(self, name)))
        object.__setattr__(self, "pre_t", tuple(self.pre_t))
        object.__setattr__(self, "pre_e", tuple(self.pre_e))
        object.__setattr__(self, "meta", MappingProxyType(dict(self.meta)))

    # ---------------------------------------------------------------- decode
    def decode_iter(self, batch: int, context_tokens: float) -> tuple[float, float]:
        """Time (s) and energy (J) of one decode iteration."""
        return (self.dec_t0[batch] + self.dec_t1[batch] * context_tokens,
                self.dec_e0[batch] + self.dec_e1[batch] * context_tokens)

    def decode_power(self, batch: int, context_tokens: float) -> float:
        t, e = self.decode_iter(batch, context_tokens)
        return e / t

    def decode_span(self, batch: int, context_tokens: float, n_iters: int) -> tuple[float, float]:
        """Time (s) and energy (J) of ``n_iters`` decode iterations at a fixed batch starting at
        total context ``context_tokens``; iteration ``i`` sees ``context_tokens + i*batch``."""
        if n_iters <= 0:
            return 0.0, 0.0
        c_sum = n_iters * context_tokens + batch * n_iters * (n_iters - 1) / 2.0
        return (n_iters * self.dec_t0[batch] + self.dec_t1[batch] * c_sum,
                n_iters * self.dec_e0[batch] + self.dec_e1[batch] * c_sum)

    def decode_iters_within(self, batch: int, context_tokens: float, seconds: float) -> int:
        """The largest ``n`` with ``decode_span(batch, context_tokens, n)[0] <= seconds``."""
        if seconds <= 0:
            return 0
        a = self.dec_t0[batch]
        k = self.dec_t1[batch]
        # T(n) = q n^2 + l n with q = k b / 2, l = a + k C0 - k b / 2
        q = 0.5 * k * batch
        lin = a + k * context_tokens - q
        if q <= 0.0:
            n = int(seconds // lin) if lin > 0 else 0
        else:
            n = int((-lin + math.sqrt(lin * lin + 4.0 * q * seconds)) / (2.0 * q))
        # guard the floating-point edge in both directions
        while n > 0 and self.decode_span(batch, context_tokens, n)[0] > seconds:
            n -= 1
        while self.decode_span(batch, context_tokens, n + 1)[0] <= seconds:
            n += 1
        return n

    # ---------------------------------------------------------------- prefill
    def prefill(self, tokens: float, tokens_sq: float | None = None) -> tuple[float, float]:
        """Time (s) and energy (J) of a prefill step over ``tokens`` new prompt tokens in total;
        ``tokens_sq`` is the sum of squares of the per-request counts (defaults to one request)."""
        if tokens <= 0:
            return 0.0, 0.0
        sq = tokens * tokens if tokens_sq is None else tokens_sq
        t0, t1, t2 = self.pre_t
        e0, e1, e2 = self.pre_e
        return t0 + t1 * tokens + t2 * sq, e0 + e1 * tokens + e2 * sq

    # ---------------------------------------------------------------- checks
    def validate(self) -> None:
        """Raise ``ValueError`` if the tables are not physically sensible."""
        n = self.max_batch + 1
        for name in ("dec_t0", "dec_t1", "dec_e0", "dec_e1"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise ValueError(f"{name} has shape {arr.shape}, expected ({n},)")
            if not np.all(np.isfinite(arr[1:])) or np.any(arr[1:] < 0):
                raise ValueError(f"{name} must be finite and non-negative")
        if np.any(self.dec_t0[1:] <= 0):
            raise ValueError("decode iteration time must be positive")
        if self.kv_capacity_tokens <= 0:
            raise ValueError("no room for a KV cache")
        if self.idle_power_w < 0:
            raise ValueError("negative idle power")


# ---------------------------------------------------------------------------------------------
# Training (read by fleet.sim.training)
@dataclass(frozen=True)
class TrainingProfile:
    """One training job's optimizer step on ``gpus`` GPUs of one accelerator (whole job, SI).

    A step takes ``step_time_s`` and ``step_energy_j``.  Inside a step, the last
    ``comm_fraction`` of the time is communication (gradient all-reduce not overlapped with
    compute) at ``comm_power_fraction`` of the compute-phase power, so the compute-phase power is
    ``step_energy_j / (step_time_s * (1 - f + f * comm_power_fraction))``.  Every
    ``checkpoint_interval_steps`` steps the job pauses ``checkpoint_time_s`` to write a checkpoint
    at ``checkpoint_power_fraction`` of the compute-phase power.  ``idle_power_w`` is per GPU
    (GPUs allocated to nothing).
    """

    model: str
    accelerator: str
    gpus: int
    precision: str
    power_cap_w: float              # per GPU (W)
    step_time_s: float
    step_energy_j: float
    tokens_per_step: int
    comm_fraction: float = 0.0
    comm_power_fraction: float = 1.0
    checkpoint_interval_steps: int = 0      # 0: no checkpoints
    checkpoint_time_s: float = 0.0
    checkpoint_power_fraction: float = 0.3
    idle_power_w: float = 0.0
    meta: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def step_power_w(self) -> float:
        """Mean power over a step (W, whole job)."""
        return self.step_energy_j / self.step_time_s

    @property
    def compute_power_w(self) -> float:
        f = self.comm_fraction
        return self.step_energy_j / (self.step_time_s * (1.0 - f + f * self.comm_power_fraction))

    @property
    def comm_power_w(self) -> float:
        return self.compute_power_w * self.comm_power_fraction

    @property
    def checkpoint_power_w(self) -> float:
        return self.compute_power_w * self.checkpoint_power_fraction

    @property
    def checkpoint_energy_j(self) -> float:
        return self.checkpoint_power_w * self.checkpoint_time_s

    def validate(self) -> None:
        if self.gpus < 1 or self.step_time_s <= 0 or self.step_energy_j < 0:
            raise ValueError("a training profile needs gpus >= 1, step_time_s > 0, step_energy_j >= 0")
        if not 0 <= self.comm_fraction < 1 or self.comm_power_fraction < 0:
            raise ValueError("comm_fraction must be in [0, 1) and comm_power_fraction >= 0")
        if self.checkpoint_interval_steps < 0 or self.checkpoint_time_s < 0:
            raise ValueError("checkpoint interval and time must be >= 0")
