"""Time, energy and power of a unit of work on a replica: roofline + first-principles energy.

Inputs are the work totals over the replica's ``tp`` GPUs (FLOPs and bytes from
:mod:`fleet.workload.llm`) and the per-GPU :class:`Device` figures (from an
:class:`~fleet.hardware.accelerator.Accelerator` and the device constants).  Every function is
vectorised: fields may be numpy arrays that broadcast (a frontier grid, the rows of a calibration
data set), so building a profile or fitting constants is a handful of array operations.

Time (per step, all GPUs of the replica work in parallel on their 1/tp share)::

    t_linear  = max(F / (tp * F_att * x), B_crit / (tp * BW_att))  GEMMs: weights + activations
    B_crit    = B_lin + S + (B_exp + S) * (1/eta_moe - 1)          MoE: expert stream at eta_moe, EP skew S
    t_kv      = B_kv / (tp * BW_att)                                 attention reads/writes KV (memory-bound)
    t_comm    = B_comm / (tp * BW_link) + messages * latency         tensor-parallel collectives
    t_host    = steps * (layers * t_layer + moe_layers * t_moe) + seqs * t_seq
                                                                     launches, scheduling, sampling (framework)
    t_ovh     = steps * t_iter + (1 - o) * t_host + o * max(t_host - t_gpu, 0)
    t_gpu     = t_linear + t_kv + t_comm
    t         = t_gpu + t_ovh

``o`` (``host_overlap``, a property of the serving stack) is 0 when the host work adds to the
GPU time (CUDA-graph replay, synchronous scheduling: every stack calibrated before stacks existed)
and 1 when it runs concurrently with the GPU (eager PyTorch enqueues kernels asynchronously, so
a step lasts ``max(t_gpu, t_host)``).  The overheads, the collective's latency and bandwidth
efficiency and the kernel efficiency come from the serving stack
(:mod:`fleet.catalog.serving_stack`) when one is given to :meth:`Device.from_accelerator`.

Attention and the GEMMs are separate kernels, so their times add; within the GEMMs compute and
the weight stream overlap (roofline max).

Energy (whole replica)::

    E_compute      = F * e_flop * V(x)^2                 (e_flop: pJ/FLOP at the precision and node)
    E_memory       = (B_lin + B_kv) * e_byte              (HBM/GDDR access + on-chip delivery)
    E_interconnect = B_comm * e_link
    E_static       = tp * (P_idle + P_membg + P_base * g(x)) * t - tp * P_base * g(x) * (1 - w) * t_wait
                     (idle floor + active memory-interface background + busy baseline under DVFS;
                      while the GPU waits, on collective latency or on the host, it draws only the
                      share ``w`` = ``wait_power_fraction`` of the busy baseline, a stack property)
    t_wait         = messages * latency + t_ovh

``power = E / t`` never exceeds the cap: a cap selects the highest clock whose power fits
(:func:`fleet.hardware.dvfs.solve_clock`); if even the lowest clock is above the cap the GPU is
modelled as duty-cycled (time stretched to ``E / cap``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigurationError
from .accelerator import Accelerator
from .dvfs import VFCurve, solve_clock


@dataclass(frozen=True)
class WorkArrays:
    """Work of one step on the whole replica (totals over its tp GPUs); fields broadcast."""

    flops: Any                  # FLOP
    lin_bytes: Any              # B: weights + activations streamed by the GEMMs
    kv_bytes: Any               # B: KV cache read + written by attention
    comm_bytes: Any = 0.0       # B: sent over the scale-up link, summed over GPUs
    comm_messages: Any = 0.0    # collectives on the critical path
    steps: Any = 1.0            # framework iterations (each pays the per-step overhead)
    layers: Any = 0.0           # transformer layers (per-layer launch overhead)
    seqs: Any = 0.0             # sequences in the step (per-sequence scheduling/sampling overhead)
    expert_bytes: Any = 0.0     # B: routed-expert weights among lin_bytes (grouped-GEMM stream)
    expert_skew_bytes: Any = 0.0  # B: EP busiest-rank excess x ranks (critical path only, no energy)
    moe_layers: Any = 0.0       # MoE layers (per-MoE-layer router/permute/quantise launches)

    @classmethod
    def from_cost(cls, cost, *, steps: float = 1.0, layers: float = 0.0, seqs: float = 0.0,
                  moe_layers: float = 0.0) -> "WorkArrays":
        """From a :class:`fleet.workload.llm.WorkCost`."""
        return cls(flops=float(cost.flops),
                   lin_bytes=float(cost.weight_bytes) + float(getattr(cost, "act_bytes", 0.0)),
                   kv_bytes=float(getattr(cost, "kv_read_bytes", 0.0)) + float(getattr(cost, "kv_write_bytes", 0.0)),
                   comm_bytes=float(getattr(cost, "comm_bytes", 0.0)),
                   comm_messages=float(getattr(cost, "comm_messages", 0.0)),
                   steps=steps, layers=layers, seqs=seqs,
                   expert_bytes=float(getattr(cost, "expert_bytes", 0.0)),
                   expert_skew_bytes=float(getattr(cost, "expert_skew_bytes", 0.0)),
                   moe_layers=moe_layers)

    @classmethod
    def stack(cls, works: list["WorkArrays"]) -> "WorkArrays":
        return cls(**{f.name: np.array([np.asarray(getattr(w, f.name), float) for w in works])
                      for f in fields(cls)})

    def scaled(self, k) -> "WorkArrays":
        """The work multiplied by ``k`` (e.g. a fraction of a prefill amortised per iteration)."""
        return WorkArrays(*(np.asarray(getattr(self, f.name), float) * k for f in fields(self)))

    def __add__(self, other: "WorkArrays") -> "WorkArrays":
        return WorkArrays(*(np.asarray(getattr(self, f.name), float) + np.asarray(getattr(other, f.name), float)
                            for f in fields(self)))


@dataclass(frozen=True)
class Device:
    """Per-GPU figures of one accelerator at one compute precision (floats or arrays)."""

    tp: Any
    f_att: Any          # FLOP/s per GPU, attainable, max clock
    bw_att: Any         # B/s per GPU, attainable
    j_flop: Any         # J/FLOP at max-clock voltage
    j_byte: Any         # J/B memory
    link_bw: Any        # B/s per GPU for collectives
    j_link: Any         # J/B over the link
    link_lat: Any       # s per collective message
    idle_w: Any         # W per GPU
    base_w: Any         # W per GPU, busy baseline at max clock
    t_iter: Any         # s per framework step
    t_layer: Any        # s per layer per step
    t_seq: Any          # s per sequence per step (CPU scheduling, sampling, detokenisation)
    power_min_w: Any = 0.0
    power_max_w: Any = np.inf
    vf: VFCurve | None = None
    mem_bg_w: Any = 0.0  # W per GPU: active memory interface background (not DVFS-scaled)
    moe_bw_fraction: Any = 1.0  # fraction of bw_att the MoE grouped-GEMM weight stream reaches
    t_moe_layer: Any = 0.0      # s per MoE layer per step (router, top-k, permute, quantise)
    host_overlap: Any = 0.0     # 0: host overhead adds to GPU time; 1: runs concurrently (max)
    wait_power_fraction: Any = 1.0  # share of the busy baseline drawn while waiting

    @classmethod
    def from_accelerator(cls, acc: Accelerator, precision: str = "bf16", tp: int = 1,
                         stack: Mapping[str, float] | None = None, phase: str = "decode") -> "Device":
        """The per-GPU figures of ``acc`` at ``precision`` in a replica of ``tp`` GPUs.

        ``stack``: the resolved parameters of a serving stack
        (:meth:`fleet.catalog.serving_stack.ServingStack.values`); None: the device constants'
        overheads and collectives (what the reference stack resolves to).  ``phase``
        (``"decode"`` or ``"prefill"``) picks the stack's kernel efficiency."""
        c = acc.constants
        if phase not in ("decode", "prefill"):
            raise ValueError(f"phase must be 'decode' or 'prefill', got {phase!r}")
        if stack is None:
            bw, jl, lat = acc.link(tp)
            t_iter, t_layer, t_seq = c["overhead.iteration_s"], c["overhead.per_layer_s"], c["overhead.per_sequence_s"]
            t_moe, keff, overlap, wait = c.get("overhead.per_moe_layer_s") or 0.0, 1.0, 0.0, 1.0
        else:
            s = stack
            bw, jl, lat = acc.link(tp, bw_efficiency=s["collective.bw_efficiency"],
                                   latency_s=s["collective.latency_s"],
                                   latency_per_gpu_s=s["collective.latency_per_gpu_s"])
            t_iter, t_layer, t_seq = s["overhead.iteration_s"], s["overhead.per_layer_s"], s["overhead.per_sequence_s"]
            t_moe, overlap, wait = s["overhead.per_moe_layer_s"], s["overhead.host_overlap"], s["power.wait_fraction"]
            keff = s[f"kernel.{phase}_efficiency"]
        return cls(tp=float(tp), f_att=acc.attainable_flops(precision) * keff, bw_att=acc.attainable_bw * keff,
                   j_flop=acc.j_per_flop(precision), j_byte=acc.j_per_byte_memory,
                   link_bw=bw, j_link=jl, link_lat=lat, idle_w=acc.idle_w, base_w=acc.active_base_w,
                   t_iter=t_iter, t_layer=t_layer, t_seq=t_seq,
                   power_min_w=acc.power_min_w, power_max_w=acc.power_max_w,
                   vf=VFCurve.from_constants(c), mem_bg_w=acc.memory_background_w,
                   moe_bw_fraction=acc.moe_weight_stream_fraction(precision),
                   t_moe_layer=t_moe, host_overlap=overlap, wait_power_fraction=wait)


@dataclass(frozen=True)
class Evaluation:
    """Result arrays of :func:`evaluate` (whole replica; SI): the time, energy and power of some
    work at one clock.  (Not to be confused with :class:`fleet.frontier.OperatingPoint`, the
    deployment a profile is built for.)"""

    time_s: Any
    energy_j: Any
    power_w: Any
    compute_j: Any
    memory_j: Any
    interconnect_j: Any
    static_j: Any
    clock_fraction: Any
    t_linear_s: Any
    t_kv_s: Any
    t_comm_s: Any
    t_overhead_s: Any

    def breakdown(self) -> dict[str, Any]:
        return {"compute": self.compute_j, "memory": self.memory_j,
                "interconnect": self.interconnect_j, "static": self.static_j}


def _parts(work: WorkArrays, dev: Device):
    tp = np.asarray(dev.tp, float)
    t_c1 = np.asarray(work.flops, float) / (tp * dev.f_att)          # compute time at x = 1
    # the grouped-GEMM expert stream runs at moe_bw_fraction of the streaming bandwidth, and
    # under EP the busiest rank streams expert_skew_bytes (x ranks) more than the mean rank
    exp_b = np.asarray(work.expert_bytes, float) + np.asarray(work.expert_skew_bytes, float)
    t_w = (np.asarray(work.lin_bytes, float) + np.asarray(work.expert_skew_bytes, float)
           + exp_b * (1.0 / np.asarray(dev.moe_bw_fraction, float) - 1.0)) / (tp * dev.bw_att)
    t_kv = np.asarray(work.kv_bytes, float) / (tp * dev.bw_att)
    t_comm_bw = np.asarray(work.comm_bytes, float) / (tp * dev.link_bw)
    t_comm_lat = np.asarray(work.comm_messages, float) * dev.link_lat
    t_fixed = np.asarray(work.steps, float) * dev.t_iter
    t_host = (np.asarray(work.steps, float) * (np.asarray(work.layers, float) * dev.t_layer
                                               + np.asarray(work.moe_layers, float) * dev.t_moe_layer)
              + np.asarray(work.seqs, float) * dev.t_seq)
    e_c1 = np.asarray(work.flops, float) * dev.j_flop
    e_m = (np.asarray(work.lin_bytes, float) + np.asarray(work.kv_bytes, float)) * dev.j_byte
    e_i = np.asarray(work.comm_bytes, float) * dev.j_link
    # the part of t_w that only the busiest EP rank spends streaming (the others wait for it)
    t_skew = (np.asarray(work.expert_skew_bytes, float) / np.asarray(dev.moe_bw_fraction, float)
              / (tp * dev.bw_att))
    return tp, t_c1, t_w, t_kv, t_comm_bw, t_comm_lat, t_fixed, t_host, e_c1, e_m, e_i, t_skew


def evaluate(work: WorkArrays, dev: Device, *, clock=None, cap_w=None) -> Evaluation:
    """Time, energy, power and breakdown of ``work`` on ``dev``.

    ``clock``: a locked normalised SM clock ``f/f_max`` (overrides the cap); ``cap_w``: a per-GPU
    power cap in W (None: uncapped, max clock).  Both may be arrays.
    """
    vf = dev.vf or VFCurve(0.7, 0.55, 0.15, 0.3)
    tp, t_c1, t_w, t_kv, t_comm_bw, t_comm_lat, t_fixed, t_host, e_c1, e_m, e_i, t_skew = _parts(work, dev)
    idle_share = (tp - 1.0) / tp
    ov = np.asarray(dev.host_overlap, float)
    wf = np.asarray(dev.wait_power_fraction, float)
    t_comm = t_comm_bw + t_comm_lat
    # the per-step overhead when host work adds (ov = 0), in the order the model always summed it
    t_ovh0 = (np.asarray(work.steps, float) * (dev.t_iter + np.asarray(work.layers, float) * dev.t_layer
                                               + np.asarray(work.moe_layers, float) * dev.t_moe_layer)
              + np.asarray(work.seqs, float) * dev.t_seq)
    overlapped = bool(np.any(ov > 0))

    def overhead(t_lin):
        # per-step overhead: fixed, plus host work that adds (ov = 0) or hides behind the GPU (ov = 1)
        if not overlapped:
            return t_ovh0
        t_gpu = t_lin + t_kv + t_comm
        return np.where(ov > 0, t_fixed + (1.0 - ov) * t_host + ov * np.maximum(t_host - t_gpu, 0.0), t_ovh0)

    rest_t = t_kv + t_comm + t_ovh0                         # an upper bound, for shapes only
    p_floor = tp * (np.asarray(dev.idle_w, float) + np.asarray(dev.mem_bg_w, float))
    p_base = tp * np.asarray(dev.base_w, float)

    def at(x):
        t_lin = np.maximum(t_c1 / x, t_w)
        t_o = overhead(t_lin)
        t = t_lin + (t_kv + t_comm + t_o)
        e_c = e_c1 * vf.dynamic_factor(x)
        # EP imbalance: while the busiest rank streams its extra experts the other (tp-1) ranks
        # wait at the idle floor, without the busy baseline
        wait = np.clip(t_lin - np.maximum(t_c1 / x, t_w - t_skew), 0.0, None)
        g = p_base * vf.baseline_factor(x)
        e_s = (p_floor + g) * t - g * wait * idle_share - g * (1.0 - wf) * (t_comm_lat + t_o)
        return t, e_c, e_s

    def power(x):
        t, e_c, e_s = at(x)
        return (e_c + e_m + e_i + e_s) / t

    if clock is not None:
        x = np.clip(np.asarray(clock, float), vf.x_min, 1.0)
        cap_tot = None
    elif cap_w is not None:
        cap_tot = tp * np.asarray(cap_w, float)
        shape = np.broadcast(cap_tot, t_c1, t_w, rest_t, p_base).shape
        x = solve_clock(power, cap_tot, vf.x_min, shape=shape)
    else:
        x = np.ones(np.broadcast(t_c1, t_w, rest_t).shape)
        cap_tot = None
    t, e_c, e_s = at(x)
    e = e_c + e_m + e_i + e_s
    if cap_tot is not None:
        # duty-cycled below the lowest clock: stretch time, power pinned at the cap; the idle floor
        # keeps burning over the stretch
        over = e / t > cap_tot * (1 + 1e-9)
        if np.any(over):
            # solve t' with (e + p_floor (t' - t)) / t' = cap  ->  t' = (e - p_floor t) / (cap - p_floor)
            denom = np.maximum(cap_tot - p_floor, 1e-9)
            t2 = np.where(over, np.maximum((e - p_floor * t) / denom, t), t)
            e_s = np.where(over, e_s + p_floor * (t2 - t), e_s)
            e = e_c + e_m + e_i + e_s
            t = t2
    t_lin = np.maximum(t_c1 / x, t_w)
    t_ovh = overhead(t_lin)
    zero = np.zeros_like(t)
    return Evaluation(time_s=t, energy_j=e, power_w=e / t, compute_j=e_c + zero, memory_j=e_m + zero,
                          interconnect_j=e_i + zero, static_j=e_s, clock_fraction=x + zero,
                          t_linear_s=t_lin + zero, t_kv_s=t_kv + zero, t_comm_s=t_comm + zero,
                          t_overhead_s=t_ovh + zero)


def check_cap(dev: Device, cap_w: float | None, name: str = "accelerator") -> None:
    """Raise :class:`ConfigurationError` if ``cap_w`` is outside the settable range."""
    if cap_w is None:
        return
    lo, hi = float(dev.power_min_w), float(dev.power_max_w)
    if not (lo - 1e-9 <= float(cap_w) <= hi + 1e-9):
        raise ConfigurationError(f"power cap {cap_w:g} W is outside the settable range of {name}: "
                                 f"[{lo:g}, {hi:g}] W")


#: former name of :class:`Evaluation` (kept so older imports keep working)
OperatingPoint = Evaluation
