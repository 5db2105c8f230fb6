"""Training at scale from first principles: layout search, step time, MFU, power, goodput.

A run trains ``model`` on ``tokens`` tokens with ``gpus`` accelerators.  A *layout* is tensor
parallel ``tp`` (inside the scale-up domain), pipeline parallel ``pp`` (any number of stages up to
the layer count: stages may be uneven), data parallel ``dp``, a ZeRO stage (0-3) and activation
recomputation on or off.  ``tp*pp*dp <= gpus``: when the count does not factor (or the global
batch cannot feed more replicas), the largest valid sub-grid runs and the rest are reported idle.

One optimizer step of ``B`` tokens (``global_batch_tokens``), per GPU on the critical path (the
bottleneck pipeline stage), with ``m`` micro-batches of one sequence per data-parallel replica:

* **GEMMs and memory-bound kernels** (:func:`fleet.hardware.energy.evaluate`, the serving model's
  roofline and DVFS): matmul FLOPs at ``TRAIN_GEMM_EFFICIENCY`` x the catalog's attainable rate,
  weight/gradient streams under them (roofline max), the activation traffic of norms, residual
  adds, activation functions, attention I/O and the loss as memory-bound time added to it, and the
  tensor-parallel all-reduces on the critical path: per layer ``2(tp-1)`` ring hops of latency
  plus ``2(tp-1)/tp`` x message / link bandwidth (NVLink inside the scale-up domain).  Launch
  overhead per pass and layer as for serving.  The bottleneck stage carries ``ceil``-balanced
  layers plus the LM head (uneven stages balance them: :func:`stage_imbalance`).
* **Pipeline bubble** (interleaved 1F1B with ``v`` model chunks per stage, the best ``v`` taken):
  ``(pp-1)/v`` micro-batch times per step; pipeline sends (activation and gradient per
  micro-batch per boundary and chunk) on NVLink or the network.
* **Data-parallel gradient traffic** over the network (ring bandwidth term, tree latency term
  ``2 log2(dp)`` hops): it is OVERLAPPED with the backward pass of the last micro-batch only
  (bucketed all-reduce under gradient accumulation); what does not fit in that window is exposed.
  ZeRO-3 also all-gathers the stage's weights forward and backward every micro-batch, prefetched
  under that micro-batch's compute (exposed when longer).  ZeRO >= 1 shards the optimizer update.
* **Optimizer step** (memory-bound: master weights, moments, gradient, low-precision copy) and a
  **per-step overhead** ``STEP_OVERHEAD_S`` (data loading, grad-norm sync, logging).
* **Checkpoints and failures**: the job fails at ``n x FAILURE_RATE_PER_GPU_HOUR`` (grows with
  the GPU count); checkpoints of 14 B/parameter are written at ``CHECKPOINT_WRITE_GBS_PER_NODE``
  every ``tau = sqrt(2 delta M)`` (Young 1974: the interval that minimises the loss for write
  time ``delta`` and job MTBF ``M``); each failure loses ``tau/2`` of work plus ``RESTART_S``.

Power comes from the same device model: the compute phases under DVFS at the cap (never above
it), the waiting phases (bubble, exposed communication, per-step overhead) at the static power of
that clock, checkpoint writes at idle plus half the busy baseline, restarts at idle power.  MFU =
model FLOPs (``6ND`` plus attention, no recomputation) / (GPUs x dense peak x steady step time);
``mfu_with_downtime`` also counts checkpoints and failures.

The few constants marked CALIBRATED were fitted on published runs (bench
``tests/test_train_bench.py``, which prints predicted against published GPU-hours, energy and
MFU, with the runs kept out of the fit marked).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


from ..catalog.precision import normalize_precision
from ..errors import ConfigurationError
from ..hardware.accelerator import GPUS_PER_NODE, build_accelerator
from ..hardware.energy import Device, WorkArrays, evaluate
from .work import _get_model, _llm

#: CALIBRATED: achieved fraction of the catalog's attainable (measured large-GEMM) matmul rate in
#: training: smaller per-GPU GEMMs under tensor parallelism, attention kernels, fp32 accumulation
#: epilogues.  Fitted on OPT-175B, Llama-2-70B and Llama-3.1-405B (test_train_bench.py FIT_RUNS).
TRAIN_GEMM_EFFICIENCY = 0.75
#: CALIBRATED: per optimizer step overhead (s): data loader, gradient-norm all-reduce and
#: clipping, loss logging, optimizer kernel launches; fitted with TRAIN_GEMM_EFFICIENCY.
STEP_OVERHEAD_S = 0.05
#: MEASURED: unexpected interruptions per GPU-hour: 419 in 54 days on 16,384 H100 (Llama 3 paper,
#: Dubey et al. 2024, arXiv 2407.21783, section 3.3.4) = 1.97e-5 /GPU-hour.
FAILURE_RATE_PER_GPU_HOUR = 419.0 / (54.0 * 24.0 * 16384.0)
#: MODELLED: time to detect a failure, reschedule and reload the last checkpoint (s): Llama 3
#: reports > 90% effective training time with an interruption every 3.1 h on 16k GPUs (Dubey et al.
#: 2024, section 3.3.4), i.e. about 15 min lost per interruption beyond the lost work.
RESTART_S = 900.0
#: MODELLED: checkpoint write bandwidth per 8-GPU node to a parallel file system (GB/s);
#: a mid-range figure for NVMe-backed Lustre/GPFS clients (assumption, not a measurement).
CHECKPOINT_WRITE_GBS_PER_NODE = 5.0
#: bytes per parameter a checkpoint persists: bf16 weights (2) + fp32 master weights and two Adam
#: moments (12).
CHECKPOINT_BYTES_PER_PARAM = 14.0
#: default global batch (tokens) when none is given: 4M tokens, the Llama 2 / Chinchilla scale
#: (Touvron et al. 2023; Hoffmann et al. 2022).
DEFAULT_GLOBAL_BATCH_TOKENS = 4 * 1024 * 1024
#: kept for callers of the old model: the data-parallel all-reduce is now overlapped with the
#: last micro-batch's backward pass (see the module docstring), not a fixed share.
DP_OVERLAP = 0.7
#: kept for callers of the old API (``utilization`` now overrides TRAIN_GEMM_EFFICIENCY).
DEFAULT_UTILIZATION = TRAIN_GEMM_EFFICIENCY


#: Training software stacks by framework generation: what the pipeline schedule and the sharding
#: a run could use were (the layout search stays inside them).
#:
#: * ``megatron-core`` (default): Megatron-LM since v2 / Megatron-Core, NeMo, torchtitan and the
#:   like: interleaved 1F1B with virtual pipeline stages (Narayanan et al., "Efficient Large-Scale
#:   Language Model Training on GPU Clusters Using Megatron-LM", SC'21, arXiv 2104.04473), ZeRO 0-3
#:   (or FSDP) alongside.
#: * ``deepspeed-pipeline``: DeepSpeed's PipelineEngine (Megatron-DeepSpeed, as BLOOM was trained:
#:   BigScience 2022, arXiv 2211.05100, "ZeRO stage 1" with DeepSpeed pipeline parallelism) and the
#:   2020 frameworks before the interleaved schedule existed (GPT-3, Brown et al. 2020, trained before
#:   SC'21): non-interleaved 1F1B (PipeDream-Flush, Narayanan et al. ICML'21), whose bubble is
#:   ``(pp-1)`` micro-batch times, and ZeRO at most stage 1 under pipeline parallelism (DeepSpeed
#:   refuses ZeRO-2/3 with its PipelineEngine: deepspeed/runtime/pipe/engine.py asserts
#:   ``zero_optimization_stage() < 2``).
TRAINING_STACKS: dict[str, dict] = {
    "megatron-core": {"interleaved": True, "max_zero_with_pp": 3},
    "deepspeed-pipeline": {"interleaved": False, "max_zero_with_pp": 1},
}
DEFAULT_TRAINING_STACK = "megatron-core"


@dataclass(frozen=True)
class TrainConstants:
    """The training constants in one value (for calibration and what-if runs)."""

    gemm_efficiency: float = TRAIN_GEMM_EFFICIENCY
    step_overhead_s: float = STEP_OVERHEAD_S
    failure_rate_per_gpu_hour: float = FAILURE_RATE_PER_GPU_HOUR
    restart_s: float = RESTART_S
    checkpoint_gbs_per_node: float = CHECKPOINT_WRITE_GBS_PER_NODE


def stage_imbalance(layers: int, pp: int, head_layers: float = 1.0) -> float:
    """Bottleneck stage work over the mean stage work for ``layers`` equal layers plus an LM head
    worth ``head_layers`` layers on the last stage, split into ``pp`` contiguous stages as evenly
    as possible (uneven stages: the last stage may take fewer layers)."""
    if pp <= 1:
        return 1.0
    total = layers + head_layers
    best = math.inf
    for k in range(1, layers + 1):             # layers on each of the first pp-1 stages
        rest = layers - k * (pp - 1)
        if rest < 0:
            break
        best = min(best, max(k, rest + head_layers))
    if not math.isfinite(best):
        best = float(math.ceil(layers / pp)) + head_layers
    return best / (total / pp)


def _fmt_layout(lay: dict) -> str:
    return (f"tp={lay['tp']} pp={lay['pp']} dp={lay['dp']} zero={lay['zero_stage']} "
            f"recompute={'on' if lay['recompute'] else 'off'}")


def _evaluate_layout(ctx: dict, tp: int, pp: int, dp: int, zero: int, recompute: bool):
    """Step time/energy of one layout (None when it does not fit in memory)."""
    llm, m, acc, k = ctx["llm"], ctx["model"], ctx["acc"], ctx["k"]
    arch = ctx["arch"]
    seq, B, prec = ctx["seq_len"], ctx["B"], ctx["precision"]
    used = tp * pp * dp
    mem = llm.training_memory(m, acc.memory_bytes, tp=tp, pp=pp, dp=dp, precision=prec, recompute=recompute,
                              seq_len=seq, micro_batch_tokens=seq, zero_stage=zero)
    if not mem.fits:
        return None, mem
    cost = llm.training_step_cost(m, B, precision=prec, recompute=recompute, tp=tp, pp=pp, dp=dp,
                                  seq_len=seq, zero_stage=zero, micro_batch_tokens=seq)
    m_rep = max(1, math.ceil(cost.micro_batches / dp))
    imb = stage_imbalance(arch.layers, pp, head_layers=ctx["head_layers"])
    eta = ctx["eta"]
    # ---- per GPU, bottleneck stage: GEMMs, memory-bound kernels, TP all-reduce, launches
    tp_hops = 2 * (tp - 1)
    work = WorkArrays(flops=cost.flops / used * imb / eta, lin_bytes=cost.weight_bytes / used * imb,
                      kv_bytes=cost.membound_bytes / used * imb,
                      comm_bytes=cost.tp_comm_bytes / used * imb,
                      comm_messages=cost.tp_messages * tp_hops,
                      steps=3.0 * m_rep, layers=math.ceil(arch.layers / pp))
    dev = ctx["dev"]
    op = evaluate(work, dev, **ctx["cap"])
    t_work = float(op.time_s)
    t_mb = t_work / m_rep
    p_static = float(op.static_j) / t_work                   # W per GPU at this clock while waiting
    e_work = float(op.compute_j) * eta + float(op.memory_j) + float(op.interconnect_j) + float(op.static_j)
    # ---- pipeline: bubble and point-to-point sends
    in_domain = tp * pp <= acc.scaleup_gpus
    pp_bw, pp_j, pp_lat = acc.link(2) if in_domain else acc.network()
    if ctx["net_bw"] is not None and not in_domain:
        pp_bw = ctx["net_bw"]
    msg = seq * arch.hidden * ctx["act_b"] / tp
    # interleaved 1F1B (Narayanan et al. SC'21): v model chunks per stage divide the bubble by v
    # and multiply the pipeline sends by v; the best v <= layers per stage is taken
    t_bubble, t_pp, v_best = (0.0, 0.0, 1)
    if pp > 1:
        per_send = msg / pp_bw + pp_lat
        best_pipe: tuple[float, float, float, int] | None = None
        v = 1
        while v <= (max(1, arch.layers // pp) if ctx["interleaved"] else 1):
            tb = (pp - 1) * t_mb / v
            tq = 2.0 * v * (m_rep + pp - 1) * per_send
            if best_pipe is None or tb + tq < best_pipe[0]:
                best_pipe = (tb + tq, tb, tq, v)
            v *= 2
        assert best_pipe is not None    # v = 1 is always tried
        _, t_bubble, t_pp, v_best = best_pipe
    b_pp = cost.pp_comm_bytes / used
    # ---- data parallel: gradient reduction (overlapped with the last micro-batch's backward)
    dp_net = used > acc.scaleup_gpus
    dp_bw, dp_j, dp_lat = acc.network() if dp_net else acc.link(dp)
    if dp_net and ctx["net_bw"] is not None:
        dp_bw = ctx["net_bw"]
    b_dp = cost.dp_comm_bytes / used
    if zero == 3:           # the per-step share is the gradient reduce-scatter; gathers are per micro-batch
        b_dp = (dp - 1) / dp * ctx["grad_b"] * arch.total_params() / (tp * pp) if dp > 1 else 0.0
    t_dp = b_dp / dp_bw + (2.0 * math.log2(dp) * dp_lat if dp > 1 else 0.0)
    bwd_share = (2.0 / 4.0) if recompute else (2.0 / 3.0)
    t_dp_exposed = max(0.0, t_dp - bwd_share * t_mb)
    t_z3 = 0.0
    b_z3 = 0.0
    if zero == 3 and dp > 1:
        w_stage = ctx["w_b"] * arch.total_params() / (tp * pp)
        per_mb = 2.0 * (dp - 1) / dp * w_stage
        b_z3 = per_mb * m_rep
        t_z3 = m_rep * max(0.0, per_mb / dp_bw + 2.0 * math.log2(dp) * dp_lat - t_mb)
    # ---- optimizer update and per-step overhead
    t_opt = cost.optimizer_bytes / used / acc.attainable_bw
    t0 = k.step_overhead_s
    t_step = t_work + t_bubble + t_pp + t_dp_exposed + t_z3 + t_opt + t0
    e_gpu = (e_work + p_static * (t_bubble + t_pp + t_dp_exposed + t_z3 + t0)
             + cost.optimizer_bytes / used * acc.j_per_byte_memory + p_static * t_opt
             + b_pp * pp_j + (b_dp + b_z3) * dp_j)
    parts = {"compute": float(op.compute_j) * eta,
             "memory": float(op.memory_j) + cost.optimizer_bytes / used * acc.j_per_byte_memory,
             "interconnect": float(op.interconnect_j) + b_pp * pp_j + (b_dp + b_z3) * dp_j}
    parts["static"] = e_gpu - sum(parts.values())
    shares = {"compute": float(op.t_linear_s), "memory_bound_kernels": float(op.t_kv_s),
              "tp_allreduce": float(op.t_comm_s), "launch_overhead": float(op.t_overhead_s),
              "pipeline_bubble": t_bubble, "pp_send": t_pp, "dp_allreduce_exposed": t_dp_exposed,
              "zero3_gather_exposed": t_z3, "optimizer": t_opt, "step_overhead": t0}
    return dict(tp=tp, pp=pp, dp=dp, zero=zero, recompute=recompute, used=used, cost=cost, mem=mem,
                t_step=t_step, e_gpu=e_gpu, shares=shares, clock=float(op.clock_fraction),
                p_static=p_static, t_dp=t_dp, imbalance=imb, m_rep=m_rep, parts=parts, v=v_best), mem


def _goodput(ctx: dict, ev: dict) -> dict:
    """Checkpoint and failure overheads of a run on ``ev['used']`` GPUs (module docstring)."""
    k, _acc, arch = ctx["k"], ctx["acc"], ctx["arch"]
    used = ev["used"]
    nodes = max(1, math.ceil(used / GPUS_PER_NODE))
    delta = CHECKPOINT_BYTES_PER_PARAM * arch.total_params() / (nodes * k.checkpoint_gbs_per_node * 1e9)
    if not ctx["failures"] or k.failure_rate_per_gpu_hour <= 0:
        return dict(checkpoint_s=delta, interval_s=math.inf, mtbf_s=math.inf, f_ckpt=0.0, f_fail=0.0,
                    f_restart=0.0, f_lost=0.0)
    mtbf = 3600.0 / (used * k.failure_rate_per_gpu_hour)
    tau = max(math.sqrt(2.0 * delta * mtbf), delta)
    f_ckpt = delta / tau
    f_lost = 0.5 * tau / mtbf
    f_restart = k.restart_s / mtbf
    tot = f_ckpt + f_lost + f_restart
    if tot > 0.9:                      # a run that cannot make progress is not modelled
        s = 0.9 / tot
        f_ckpt, f_lost, f_restart = f_ckpt * s, f_lost * s, f_restart * s
    return dict(checkpoint_s=delta, interval_s=tau, mtbf_s=mtbf, f_ckpt=f_ckpt, f_fail=f_lost + f_restart,
                f_restart=f_restart, f_lost=f_lost)


def training_estimate(model, gpu, gpus: int, tokens: float, *, tokens_per_step: int | None = None,
                      seq_len: int = 4096, precision: str = "bf16", tp: int | None = None, pp: int | None = None,
                      recompute: bool | None = None, utilization: float | None = None, pue: float = 1.2,
                      carbon_intensity_g_per_kwh: float = 400.0, power_cap_w: float | None = None,
                      calibrated: bool = False, dp: int | None = None, zero_stage: int | None = None,
                      global_batch_tokens: int | None = None, network_gbs_per_gpu: float | None = None,
                      failures: bool = True, constants: TrainConstants | None = None,
                      training_stack: str = DEFAULT_TRAINING_STACK) -> dict:
    """Time (s), GPU and facility energy (J), operational carbon (gCO2e), layout, MFU, average
    power per GPU and the share of time in each overhead of training ``model`` on ``tokens``
    tokens with ``gpus`` accelerators (module docstring).

    ``tp``, ``pp``, ``dp``, ``zero_stage``, ``recompute``: fix that part of the layout (None:
    searched).  ``global_batch_tokens`` (or the older ``tokens_per_step``): tokens per optimizer
    step (default 4M, rounded to whole sequences).  ``utilization``: overrides the calibrated
    GEMM efficiency.  ``network_gbs_per_gpu``: the cluster's scale-out bandwidth per GPU, one way
    (GB/s; default the device constant ``link.network_gbs``).  ``failures``: count checkpoints,
    failures and restarts (True) or report the steady state only.  ``training_stack``: the
    framework generation (:data:`TRAINING_STACKS`): which pipeline schedules and ZeRO stages the
    layout search may use."""

    import math

    from ..limits import MAX_SEQ_LEN, MAX_TRAINING_GPUS

    m = _get_model(model)
    precision = normalize_precision(precision)
    acc = build_accelerator(gpu, calibrated=calibrated)
    llm = _llm()
    arch = llm.architecture(m)
    n = int(gpus)
    if not 1 <= n <= MAX_TRAINING_GPUS:
        raise ConfigurationError(f"--gpus must be in [1, {MAX_TRAINING_GPUS:,}], got {gpus:,}")
    if not (math.isfinite(tokens) and tokens > 0):
        raise ConfigurationError(f"--tokens must be a finite number > 0, got {tokens}")
    if not 1 <= int(seq_len) <= MAX_SEQ_LEN:
        raise ConfigurationError(f"--seq-len must be in [1, {MAX_SEQ_LEN:,}] tokens, got {seq_len}")
    if not (1.0 <= pue < 3.0):
        raise ConfigurationError(f"PUE {pue} is implausible; expected 1.0 <= PUE < 3")
    if not (math.isfinite(carbon_intensity_g_per_kwh) and carbon_intensity_g_per_kwh >= 0):
        raise ConfigurationError(f"carbon intensity must be a finite number >= 0 gCO2e/kWh, "
                                 f"got {carbon_intensity_g_per_kwh}")
    if training_stack not in TRAINING_STACKS:
        raise ConfigurationError(f"unknown training stack {training_stack!r}; expected one of "
                                 f"{', '.join(TRAINING_STACKS)}")
    tstack = TRAINING_STACKS[training_stack]
    k = constants or TrainConstants()
    eta = k.gemm_efficiency if utilization is None else float(utilization)
    if not (0.0 < eta <= 1.0):
        raise ConfigurationError(f"utilization {eta} must be in (0, 1]")
    if seq_len < 1:
        raise ConfigurationError(f"--seq-len must be >= 1, got {seq_len}")
    for name, v in (("tp", tp), ("pp", pp), ("dp", dp)):
        if v is not None and (int(v) != v or int(v) < 1):
            raise ConfigurationError(f"--{name} must be an integer >= 1, got {v}")
    if zero_stage is not None and zero_stage not in (0, 1, 2, 3):
        raise ConfigurationError(f"--zero must be 0, 1, 2 or 3, got {zero_stage}")
    B = global_batch_tokens or tokens_per_step
    if B is None:
        B = max(seq_len, round(DEFAULT_GLOBAL_BATCH_TOKENS / seq_len) * seq_len)
    B = int(B)
    if B < seq_len:
        raise ConfigurationError(f"--global-batch-tokens {B} is below one sequence of {seq_len} tokens")
    if network_gbs_per_gpu is not None and network_gbs_per_gpu <= 0:
        raise ConfigurationError(f"network bandwidth must be > 0 GB/s, got {network_gbs_per_gpu}")
    if power_cap_w is not None:
        from ..hardware.energy import check_cap
        check_cap(Device.from_accelerator(acc, precision, 1), power_cap_w, acc.name)
    prec = llm._norm_precision(precision)
    net_bw = None if network_gbs_per_gpu is None else float(network_gbs_per_gpu) * 1e9 \
        * acc.constants["link.collective_efficiency"]
    ctx = dict(llm=llm, model=m, acc=acc, arch=arch, k=k, seq_len=int(seq_len), B=B, precision=precision,
               eta=eta, dev=Device.from_accelerator(acc, precision, 1),
               cap={} if power_cap_w is None else {"cap_w": float(power_cap_w)},
               net_bw=net_bw, act_b=llm.precision_bytes(llm.activation_precision(prec)),
               w_b=llm.precision_bytes(prec), grad_b=4.0, failures=bool(failures),
               interleaved=bool(tstack["interleaved"]),
               head_layers=max(0.25, arch.vocab * arch.hidden / max(1.0, arch.total_params() / arch.layers)))
    # ---- layout search
    tp_max = min(n, max(GPUS_PER_NODE, 1) if acc.scaleup_gpus >= GPUS_PER_NODE else acc.scaleup_gpus)
    tps = [int(tp)] if tp else [t for t in (1, 2, 4, 8) if t <= tp_max and arch.heads % t == 0]
    pps = [int(pp)] if pp else list(range(1, min(arch.layers, 128, n) + 1))
    zeros = [int(zero_stage)] if zero_stage is not None else [0, 1, 2, 3]
    recs = [bool(recompute)] if recompute is not None else [False, True]
    max_dp_batch = max(1, B // seq_len)                 # every replica needs one micro-batch
    best = None
    last_mem = None
    for t in tps:
        for p_ in pps:
            if t * p_ > n:
                break
            d = int(dp) if dp else min(n // (t * p_), max_dp_batch)
            if d < 1 or t * p_ * d > n:
                continue
            for z in zeros:
                if z > 0 and d == 1 and zero_stage is None:
                    continue
                if p_ > 1 and z > tstack["max_zero_with_pp"]:
                    if zero_stage is not None:
                        raise ConfigurationError(
                            f"ZeRO stage {z} with pipeline parallelism is not available in the "
                            f"{training_stack} training stack (at most {tstack['max_zero_with_pp']})")
                    continue
                for r in recs:
                    ev, mem = _evaluate_layout(ctx, t, p_, d, z, r)
                    last_mem = mem
                    if ev is None:
                        continue
                    g = _goodput(ctx, ev)
                    wall = ev["t_step"] / max(1e-9, 1.0 - g["f_ckpt"] - g["f_fail"])
                    key = (wall, t * p_, z, r)
                    if best is None or key < best[0]:
                        best = (key, ev, g)
    if best is None:
        fixed = ", ".join(f"{a}={b}" for a, b in (("tp", tp), ("pp", pp), ("dp", dp), ("zero", zero_stage),
                                                    ("recompute", recompute)) if b is not None)
        why = f"; last layout tried: {last_mem.reason}" if last_mem is not None else ""
        raise ConfigurationError(
            f"{m.name} training does not fit on {n} x {acc.name} ({acc.spec.memory_gb:g} GB each) with any layout "
            f"(tp<={max(tps) if tps else 0}, pp<={max(pps) if pps else 0}, ZeRO 0-3, recomputation on/off"
            f"{', fixed ' + fixed if fixed else ''}){why}; use more GPUs or a larger-memory GPU")
    _, ev, g = best
    cost, mem = ev["cost"], ev["mem"]
    used = ev["used"]
    idle = n - used
    t_step = ev["t_step"]
    steps = float(tokens) / B
    useful_s = t_step * steps
    f_over = g["f_ckpt"] + g["f_fail"]
    wall_s = useful_s / (1.0 - f_over)
    t_ckpt = wall_s * g["f_ckpt"]
    t_lost = wall_s * g["f_lost"]
    t_restart = wall_s * g["f_restart"]
    p_step = ev["e_gpu"] / t_step                                # W per used GPU while stepping
    p_ckpt = acc.idle_w + 0.5 * acc.active_base_w
    e_used = used * (ev["e_gpu"] * steps + p_step * t_lost + p_ckpt * t_ckpt + acc.idle_w * t_restart)
    e_idle = idle * acc.idle_w * wall_s
    e_gpu = e_used + e_idle
    e_fac = e_gpu * pue
    peak = acc.peak_flops(precision)
    mfu = cost.model_flops / (t_step * used * peak)
    # energy breakdown (whole run): scale the step's parts; waiting phases and downtime -> static
    sh = ev["shares"]
    layout = {"tp": ev["tp"], "pp": ev["pp"], "dp": ev["dp"], "zero_stage": ev["zero"],
              "recompute": ev["recompute"], "gpus_used": used, "idle_gpus": idle,
              "micro_batches_per_replica": ev["m_rep"], "stage_imbalance": ev["imbalance"],
              "virtual_stages": ev["v"],
              "searched": tp is None or pp is None or dp is None or zero_stage is None or recompute is None}
    time_shares = {name: v * steps / wall_s for name, v in sh.items()}
    time_shares["checkpoint"] = g["f_ckpt"]
    time_shares["failures_lost_work"] = g["f_lost"]
    time_shares["failures_restart"] = g["f_restart"]
    bd = {key: v * steps * used for key, v in ev["parts"].items()}
    bd["static"] += e_gpu - sum(bd.values())          # downtime, checkpoints, idle GPUs
    out = {
        "model": m.name, "gpu": acc.name, "gpus": n, "tokens": float(tokens),
        "layout": layout, "layout_text": _fmt_layout(layout),
        "tokens_per_step": B, "global_batch_tokens": B, "steps": steps,
        "time_s": wall_s, "time_days": wall_s / 86400.0, "steady_time_s": useful_s,
        "step_time_s": t_step, "mfu": mfu, "mfu_with_downtime": mfu * useful_s / wall_s,
        "achieved_tflops_per_gpu": cost.model_flops / (t_step * used) / 1e12,
        "gpu_hours": n * wall_s / 3600.0,
        "gpu_energy_j": e_gpu, "gpu_energy_mwh": e_gpu / 3.6e9,
        "facility_energy_j": e_fac, "facility_energy_mwh": e_fac / 3.6e9, "pue": pue,
        "avg_power_w": e_gpu / wall_s, "avg_power_per_gpu_w": e_used / (wall_s * used),
        "step_power_per_gpu_w": p_step, "wait_power_per_gpu_w": ev["p_static"], "clock_fraction": ev["clock"],
        "power_cap_w": float(power_cap_w) if power_cap_w is not None else float(acc.power_max_w),
        "carbon_intensity_g_per_kwh": carbon_intensity_g_per_kwh,
        "operational_co2e_t": e_fac / 3.6e6 * carbon_intensity_g_per_kwh / 1e6,
        "breakdown_j": bd, "time_shares": time_shares,
        "dp_overlap": "gradient all-reduce overlapped with the last micro-batch's backward pass; "
                      f"exposed {sh['dp_allreduce_exposed']:.3g} s of {ev['t_dp']:.3g} s per step",
        "checkpoint": {"write_s": g["checkpoint_s"], "interval_s": g["interval_s"], "job_mtbf_s": g["mtbf_s"]},
        "max_micro_batch_tokens": int(mem.max_micro_batch_tokens),
        "max_micro_batch_sequences": int(mem.max_micro_batch_tokens // seq_len),
        "utilization_assumed": eta, "calibrated": bool(acc.constants.calibrated),
        "training_stack": training_stack,
        "idle_gpu_energy_j": e_idle,
    }
    return out

