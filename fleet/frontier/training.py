"""Build :class:`~fleet.frontier.profile.TrainingProfile` from the energy model.

One optimizer step (layout, time, energy) comes from the energy helper's training estimate
(:mod:`fleet.frontier.train_estimate`); this module adds the shape of a step: a compute phase and
an exposed-communication phase (the power dip the simulation shows at iteration boundaries).  Checkpoints: every ``checkpoint_interval_s`` (rounded to whole steps) the job
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
from ..workload import llm
from .profile import TrainingProfile

#: MODELLED: checkpoint write bandwidth per 8-GPU node to a parallel file system (GB/s); a
#: mid-range figure for NVMe-backed Lustre/GPFS clients (assumption, not a measurement).
CHECKPOINT_WRITE_GBS_PER_NODE = 5.0
#: bytes per parameter that a checkpoint persists: bf16 weights (2) + fp32 master weights and
#: two Adam moments (12).
CHECKPOINT_BYTES_PER_PARAM = 14.0


@lru_cache(maxsize=256)
def build_training_profile(model: str, accelerator: str, gpus: int, *, precision: str = "bf16",
                           power_cap_w: float | None = None, tokens_per_step: int | None = None,
                           seq_len: int = 4096, checkpoint_interval_s: float = 3600.0,
                           calibrated: bool = False) -> TrainingProfile:
    """A training step profile for ``model`` on ``gpus`` x ``accelerator`` (names).

    Step time, step energy, the parallel layout and the global batch come from the energy
    helper's :func:`fleet.frontier.train_estimate.training_estimate` (one step's worth of
    tokens), so the simulation and ``fleet estimate`` agree.  This function adds the shape
    inside a step: the exposed communication (tensor/pipeline-parallel traffic and the
    non-overlapped share of the data-parallel all-reduce, with the same formulas and overlap as
    the estimate) forms the low-power phase at the end of each step, at static power plus the
    link energy; and the checkpoint pauses (see the module docstring).  ``power_cap_w`` is per
    GPU (None: uncapped).
    """
    from ..catalog import get_model
    from .train_estimate import training_estimate

    gpus = int(gpus)
    if gpus < 1:
        raise ValueError("gpus must be >= 1")
    spec = get_model(model)
    acc = build_accelerator(accelerator, calibrated=calibrated)
    probe = training_estimate(spec, acc.spec, gpus, 1.0, tokens_per_step=tokens_per_step, seq_len=seq_len,
                              precision=precision, power_cap_w=power_cap_w, calibrated=calibrated, failures=False)
    tokens = int(probe["tokens_per_step"])
    # one step's worth, steady state (checkpoints are the simulation's own pauses, below)
    est = training_estimate(spec, acc.spec, gpus, float(tokens), tokens_per_step=tokens, seq_len=seq_len,
                            precision=precision, power_cap_w=power_cap_w, calibrated=calibrated, failures=False)
    lay = est["layout"]
    tp, pp, dp = lay["tp"], lay["pp"], lay["dp"]
    step_t = float(est["step_time_s"])
    step_e = float(est["gpu_energy_j"])             # one step (tokens = tokens_per_step)
    # the low-power phase of a step: everything the GPUs spend waiting (pipeline bubble, exposed
    # tensor/pipeline/data-parallel communication, per-step overhead), at the static power of the
    # step's clock (fleet.frontier.train_estimate)
    sh = est["time_shares"]
    wait_share = sum(sh.get(k, 0.0) for k in ("tp_allreduce", "pipeline_bubble", "pp_send", "dp_allreduce_exposed",
                                              "zero3_gather_exposed", "step_overhead"))
    t_comm = min(wait_share * step_t, 0.9 * step_t)
    p_comm = gpus * float(est["wait_power_per_gpu_w"])
    p_comp = (step_e - p_comm * t_comm) / (step_t - t_comm)
    cap_total = gpus * float(est["power_cap_w"])
    if p_comp > cap_total * (1.0 + 1e-9):
        # only when the exposed phase was clipped above: the power limit stretches the compute
        # phase (same energy), so no phase draws more than the cap
        step_t = t_comm + (step_e - p_comm * t_comm) / cap_total
        p_comp = cap_total
    if p_comm > p_comp:            # never a "dip" above the compute power
        p_comm = p_comp
    comm_frac = t_comm / step_t
    comm_pf = p_comm / p_comp
    nodes = math.ceil(gpus / GPUS_PER_NODE)
    ckpt_t = llm.architecture(spec).total_params() * CHECKPOINT_BYTES_PER_PARAM \
        / (nodes * CHECKPOINT_WRITE_GBS_PER_NODE * 1e9)
    ckpt_p = gpus * (acc.idle_w + acc.active_base_w * 0.5)      # waiting on I/O: idle + half the baseline
    ckpt_steps = max(1, int(round(checkpoint_interval_s / step_t))) if checkpoint_interval_s > 0 else 0
    prof = TrainingProfile(
        model=spec.name, accelerator=acc.name, gpus=gpus, precision=precision,
        power_cap_w=float(power_cap_w if power_cap_w is not None else acc.tdp_w),
        step_time_s=step_t, step_energy_j=step_e, tokens_per_step=tokens,
        comm_fraction=comm_frac, comm_power_fraction=comm_pf,
        checkpoint_interval_steps=ckpt_steps, checkpoint_time_s=ckpt_t,
        checkpoint_power_fraction=min(1.0, ckpt_p / p_comp), idle_power_w=float(acc.idle_w),
        meta={"tp": tp, "pp": pp, "dp": dp, "mfu": float(est["mfu"]),
              "source": "fleet.frontier.train_estimate.training_estimate (step time and energy); "
                        "exposed-communication phase and checkpoints added here",
              "checkpoint": f"{CHECKPOINT_BYTES_PER_PARAM} B/param at "
                            f"{CHECKPOINT_WRITE_GBS_PER_NODE} GB/s per node (assumption)"})
    prof.validate()
    return prof


def training_profile_for_job(model: str, accelerator: str, gpus: int, **kwargs) -> TrainingProfile:
    """:func:`build_training_profile`, or, when the model's training state does not fit on
    ``gpus`` GPUs (a 1-GPU job of an 8B model), the profile of the smallest power-of-two GPU
    count on which it fits, scaled to ``gpus`` GPUs: same step time and per-GPU power, tokens
    per step in proportion.  This models such a job as a slice of a larger data-parallel run (a
    stated approximation: job tables such as AcmeTrace's give small jobs without a model, and
    for jobs given by duration only their power matters)."""
    from ..errors import ConfigurationError

    try:
        return build_training_profile(model, accelerator, gpus, **kwargs)
    except ConfigurationError:
        pass
    g = GPUS_PER_NODE
    while g <= 4096:
        if g > gpus:
            try:
                base = build_training_profile(model, accelerator, g, **kwargs)
            except ConfigurationError:
                g *= 2
                continue
            k = gpus / g
            return dataclasses.replace(
                base, gpus=int(gpus), step_energy_j=base.step_energy_j * k,
                tokens_per_step=max(1, int(round(base.tokens_per_step * k))),
                meta=dict(base.meta, scaled_from_gpus=g,
                          note=f"{model} does not fit on {gpus} GPUs: a {gpus}/{g} slice of a {g}-GPU run"))
        g *= 2
    raise ConfigurationError(f"{model} training does not fit on up to 4096 x {accelerator}")
