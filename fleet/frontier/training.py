"""Build :class:`~fleet.frontier.profile.TrainingProfile` from the energy model.

One optimizer step of ``model`` data-parallel over ``gpus`` GPUs (tensor parallel ``tp`` inside
a node, ``dp = gpus / tp``) is costed in two phases with :func:`fleet.hardware.energy.evaluate`:

* compute phase: the step's FLOPs, HBM bytes and tensor-parallel traffic
  (:func:`fleet.workload.llm.training_step_cost`) on a device of ``gpus`` GPUs with the
  intra-node link (NVLink) for the TP collectives;
* communication phase: the data-parallel gradient all-reduce over the network, assumed NOT
  overlapped with compute (a stated, conservative simplification: real frameworks overlap part
  of it with the backward pass), at the network's bandwidth, energy per bit and latency.

The power dip during the communication phase is what the simulation shows at iteration
boundaries.  Checkpoints: every ``checkpoint_interval_s`` (rounded to whole steps) the job
writes bf16 weights + fp32 Adam state (14 B/parameter, or 16 with bf16 gradients kept; we use
the 14 B that must persist) at ``CHECKPOINT_WRITE_GBS_PER_NODE`` per node; the GPUs wait at
their idle power plus the static baseline while it writes.  Both storage figures are
ASSUMPTIONS (modelled, not measured) and stated here.
"""

from __future__ import annotations

import dataclasses
import math
from functools import lru_cache

from ..hardware.accelerator import GPUS_PER_NODE, build_accelerator
from ..hardware.energy import Device, WorkArrays, check_cap, evaluate
from ..workload import llm
from .profile import TrainingProfile

#: MODELLED: checkpoint write bandwidth per 8-GPU node to a parallel file system (GB/s); a
#: mid-range figure for NVMe-backed Lustre/GPFS clients (assumption, not a measurement).
CHECKPOINT_WRITE_GBS_PER_NODE = 5.0
#: bytes per parameter that a checkpoint persists: bf16 weights (2) + fp32 master weights and
#: two Adam moments (12).
CHECKPOINT_BYTES_PER_PARAM = 14.0
#: default micro-batch: sequences of ``seq_len`` tokens per GPU per step (stated default)
DEFAULT_SEQS_PER_GPU = 8


@lru_cache(maxsize=256)
def build_training_profile(model: str, accelerator: str, gpus: int, *, precision: str = "bf16",
                           power_cap_w: float | None = None, tp: int | None = None,
                           tokens_per_step: int | None = None, seq_len: int = 4096,
                           checkpoint_interval_s: float = 3600.0) -> TrainingProfile:
    """A training step profile for ``model`` on ``gpus`` x ``accelerator`` (names).

    ``tp`` defaults to ``min(8, gpus)`` (a divisor of ``gpus``); ``tokens_per_step`` (the global
    batch) to ``8 x seq_len`` tokens per GPU.  ``power_cap_w`` is per GPU (None: uncapped).
    """
    from ..catalog import get_model

    gpus = int(gpus)
    if gpus < 1:
        raise ValueError("gpus must be >= 1")
    spec = get_model(model)
    acc = build_accelerator(accelerator)
    if tp is None:
        tp = math.gcd(gpus, GPUS_PER_NODE)
    dp = max(1, gpus // tp)
    tokens = int(tokens_per_step or DEFAULT_SEQS_PER_GPU * seq_len * gpus)
    cost = llm.training_step_cost(spec, tokens, precision=precision, tp=tp, dp=dp,
                                  zero_stage=1 if dp > 1 else 0, seq_len=seq_len)
    dev = Device.from_accelerator(acc, precision, tp=gpus)
    check_cap(dev, power_cap_w, acc.name)
    nv_bw, nv_j, nv_lat = acc.link(min(tp, GPUS_PER_NODE))
    dev_node = dataclasses.replace(dev, link_bw=nv_bw, j_link=nv_j, link_lat=nv_lat)
    compute = WorkArrays(flops=cost.flops, lin_bytes=cost.hbm_bytes, kv_bytes=0.0,
                         comm_bytes=cost.tp_comm_bytes + cost.pp_comm_bytes,
                         comm_messages=cost.tp_messages + cost.pp_messages,
                         steps=1.0, layers=float(llm.architecture(spec).layers), seqs=0.0)
    op_c = evaluate(compute, dev_node, cap_w=power_cap_w)
    t_c, e_c = float(op_c.time_s), float(op_c.energy_j)
    t_m, e_m = 0.0, 0.0
    if cost.dp_comm_bytes > 0:
        net_bw, net_j, net_lat = acc.network() if gpus > GPUS_PER_NODE else acc.link(gpus)
        dev_net = dataclasses.replace(dev, link_bw=net_bw, j_link=net_j, link_lat=net_lat)
        comm = WorkArrays(flops=0.0, lin_bytes=0.0, kv_bytes=0.0, comm_bytes=cost.dp_comm_bytes,
                          comm_messages=cost.dp_messages, steps=0.0)
        op_m = evaluate(comm, dev_net, cap_w=power_cap_w)
        t_m, e_m = float(op_m.time_s), float(op_m.energy_j)
    step_t = t_c + t_m
    step_e = e_c + e_m
    p_c = e_c / t_c
    comm_frac = t_m / step_t
    comm_pf = (e_m / t_m) / p_c if t_m > 0 else 1.0
    nodes = math.ceil(gpus / GPUS_PER_NODE)
    ckpt_t = llm.architecture(spec).total_params() * CHECKPOINT_BYTES_PER_PARAM \
        / (nodes * CHECKPOINT_WRITE_GBS_PER_NODE * 1e9)
    ckpt_p = gpus * (acc.idle_w + acc.active_base_w * 0.5)      # waiting on I/O: idle + half the baseline
    ckpt_steps = max(1, int(round(checkpoint_interval_s / step_t))) if checkpoint_interval_s > 0 else 0
    prof = TrainingProfile(
        model=spec.name, accelerator=acc.name, gpus=gpus, precision=precision,
        power_cap_w=float(power_cap_w if power_cap_w is not None else acc.power_max_w),
        step_time_s=step_t, step_energy_j=step_e, tokens_per_step=tokens,
        comm_fraction=comm_frac, comm_power_fraction=comm_pf,
        checkpoint_interval_steps=ckpt_steps, checkpoint_time_s=ckpt_t,
        checkpoint_power_fraction=ckpt_p / p_c, idle_power_w=float(acc.idle_w),
        meta={"tp": tp, "dp": dp, "mfu": cost.model_flops / (step_t * gpus * dev.f_att),
              "source": "fleet.hardware.energy.evaluate on fleet.workload.llm.training_step_cost",
              "checkpoint": f"{CHECKPOINT_BYTES_PER_PARAM} B/param at "
                            f"{CHECKPOINT_WRITE_GBS_PER_NODE} GB/s per node (assumption)"})
    prof.validate()
    return prof
