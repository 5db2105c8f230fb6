"""Training time, energy and carbon from the step cost and the same device model.

A step of ``tokens_per_step`` tokens on ``tp*pp*dp`` GPUs: FLOPs and HBM bytes from
:func:`fleet.workload.llm.training_step_cost`; the tensor-parallel traffic runs over the
scale-up link (NVLink within a node), pipeline and data-parallel traffic over the network once
a replica spans more than one node (else NVLink).  Time per step::

    t = max(F / (N * F_att * x * U), B_hbm / (N * BW_att)) + t_tp + t_pp + t_dp_exposed

where ``U`` is the achieved fraction of attainable matmul throughput outside the roofline
(kernel mix, pipeline bubble; ``utilization`` option, default a modelled 0.75 -> MFU of about
0.75 x matmul_efficiency ~ 0.55-0.6 on H100, in line with published Megatron runs at 40-60%
MFU), and data-parallel gradient traffic is assumed 70% overlapped with the backward pass.
Energy = compute + memory + interconnect + static over the step, as for serving; facility
energy = GPU energy x PUE; operational carbon = facility energy x carbon intensity.
"""

from __future__ import annotations

from ..errors import ConfigurationError
from ..hardware.accelerator import GPUS_PER_NODE, build_accelerator
from ..hardware.energy import Device, WorkArrays, evaluate
from .work import _get_model, _llm

DEFAULT_UTILIZATION = 0.75
DP_OVERLAP = 0.7


def exposed_link_share(t_exposed_s: float, t_overlapped_s: float) -> float:
    """Share of a step's link energy spent in the exposed-communication phase (by time)."""
    return t_exposed_s / max(t_exposed_s + t_overlapped_s, 1e-12)


def training_estimate(model, gpu, gpus: int, tokens: float, *, tokens_per_step: int | None = None,
                      seq_len: int = 4096, precision: str = "bf16", tp: int | None = None, pp: int | None = None,
                      recompute: bool = False, utilization: float | None = None, pue: float = 1.2,
                      carbon_intensity_g_per_kwh: float = 400.0, power_cap_w: float | None = None,
                      calibrated: bool = False) -> dict:
    """Time (s), GPU and facility energy (J), operational carbon (gCO2e) of training ``model``
    on ``tokens`` tokens with ``gpus`` accelerators; plus the largest micro-batch that fits."""
    import math

    from ..limits import MAX_SEQ_LEN, MAX_TRAINING_GPUS

    m = _get_model(model)
    acc = build_accelerator(gpu, calibrated=calibrated)
    llm = _llm()
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
    u = DEFAULT_UTILIZATION if utilization is None else float(utilization)
    if not (0.0 < u <= 1.0):
        raise ConfigurationError(f"utilization {u} must be in (0, 1]")
    # parallel layout: the smallest TP (within a node), then the smallest PP, at which the model
    # state and one sequence of activations fit (ZeRO-1 optimizer sharding)
    layout = None
    tps = [tp] if tp else [t for t in (1, 2, 4, 8) if t <= min(n, GPUS_PER_NODE)]
    pps = [pp] if pp else [p for p in (1, 2, 4, 8, 16, 32, 64) if p <= n]
    for p_ in pps:
        for t in tps:
            if n % (t * p_):
                continue
            dp = n // (t * p_)
            mem = llm.training_memory(m, acc.memory_bytes, tp=t, pp=p_, dp=dp, precision=precision,
                                      recompute=recompute, seq_len=seq_len, zero_stage=1)
            if mem.max_micro_batch_tokens > 0:
                layout = (t, p_, dp, mem)
                break
        if layout is not None:
            break
    if layout is None:
        raise ConfigurationError(
            f"{m.name} training state does not fit on {n} x {acc.name} ({acc.spec.memory_gb:g} GB) with "
            f"tp<=8, pp<=64 (gpus divisible by tp*pp), ZeRO-1; use another GPU count, a larger-memory GPU "
            f"or recomputation")
    t_, pp, dp, mem = layout
    mbt = max(1, int(mem.max_micro_batch_tokens))
    step_tokens = int(tokens_per_step or max(seq_len * dp, min(4_000_000, seq_len * dp * 8)))
    cost = llm.training_step_cost(m, step_tokens, precision=precision, recompute=recompute, tp=t_, pp=pp, dp=dp,
                                  seq_len=seq_len, zero_stage=1, micro_batch_tokens=min(mbt, seq_len))
    dev = Device.from_accelerator(acc, precision, n)
    nv_bw, nv_j, nv_lat = acc.link(t_)
    net_bw, net_j, net_lat = acc.network()
    multi_node = n > GPUS_PER_NODE
    # communication time (per GPU share) and energy
    t_tp = cost.tp_comm_bytes / n / nv_bw + cost.tp_messages * nv_lat
    bw_pd, j_pd, lat_pd = (net_bw, net_j, net_lat) if multi_node else (nv_bw, nv_j, nv_lat)
    t_pp = cost.pp_comm_bytes / n / bw_pd + cost.pp_messages * lat_pd
    t_dp = (1.0 - DP_OVERLAP) * (cost.dp_comm_bytes / n / bw_pd + cost.dp_messages * lat_pd)
    e_comm = cost.tp_comm_bytes * nv_j + (cost.pp_comm_bytes + cost.dp_comm_bytes) * j_pd
    work = WorkArrays(flops=cost.flops / u, lin_bytes=cost.hbm_bytes, kv_bytes=0.0, steps=0.0)
    # the utilisation factor stretches compute time; its energy is charged for the real FLOPs only.
    # An uncapped GPU is limited by its TDP: no phase of a step draws more than the cap.
    kw = {} if power_cap_w is None else {"cap_w": float(power_cap_w)}
    cap_gpu = float(power_cap_w) if power_cap_w is not None else float(acc.tdp_w)
    op = evaluate(work, dev, **kw)
    e_compute = float(op.compute_j) * u
    p_static = float(op.static_j) / float(op.time_s)
    t_exposed = t_tp + t_pp + t_dp
    # the compute phase carries the overlapped share of the link energy (the exposed share is the
    # low-power phase at the end of the step, see fleet.frontier.training); where that lifts the
    # phase above the cap, the power limit stretches it (static power over the longer phase)
    exposed_share = exposed_link_share(t_exposed, DP_OVERLAP * cost.dp_comm_bytes / n / bw_pd)
    t_compute = float(op.time_s)
    e_dyn = e_compute + float(op.memory_j) + e_comm * (1.0 - exposed_share)
    if e_dyn / t_compute + p_static > n * cap_gpu:
        t_compute = e_dyn / (n * cap_gpu - p_static)
    t_step = t_compute + t_exposed
    e_static = p_static * t_step
    e_step = e_compute + float(op.memory_j) + e_comm + e_static
    steps = float(tokens) / step_tokens
    e_gpu = e_step * steps
    e_fac = e_gpu * pue
    mfu = cost.model_flops / (t_step * n * acc.peak_flops(precision))
    return {
        "model": m.name, "gpu": acc.name, "gpus": n, "tokens": float(tokens),
        "layout": {"tp": t_, "pp": pp, "dp": dp, "zero_stage": 1, "recompute": recompute},
        "tokens_per_step": step_tokens, "steps": steps,
        "time_s": t_step * steps, "time_days": t_step * steps / 86400.0,
        "step_time_s": t_step, "mfu": mfu,
        "gpu_energy_j": e_gpu, "gpu_energy_mwh": e_gpu / 3.6e9,
        "facility_energy_j": e_fac, "facility_energy_mwh": e_fac / 3.6e9, "pue": pue,
        "avg_power_w": e_step / t_step,
        "power_cap_w": cap_gpu,
        "carbon_intensity_g_per_kwh": carbon_intensity_g_per_kwh,
        "operational_co2e_t": e_fac / 3.6e6 * carbon_intensity_g_per_kwh / 1e6,
        "breakdown_j": {"compute": e_compute * steps, "memory": float(op.memory_j) * steps,
                        "interconnect": e_comm * steps, "static": e_static * steps},
        "max_micro_batch_tokens": int(mem.max_micro_batch_tokens),
        "max_micro_batch_sequences": int(mem.max_micro_batch_tokens // seq_len),
        "utilization_assumed": u, "calibrated": bool(acc.constants.calibrated),
    }
