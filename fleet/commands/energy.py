"""``fleet estimate``, ``fleet frontier`` and ``fleet calibrate``: the energy model on the command line.

* ``fleet estimate``: steady-state serving (or, with ``--train``, a training run) of one model on
  N GPUs: energy per output token, throughput, power, latency and the energy breakdown.
* ``fleet frontier``: time/energy/power of one decode iteration at a grid of power caps and its
  Pareto-optimal subset.
* ``fleet calibrate``: fit a few device constants to the ML.ENERGY measurements and report the
  error of the uncalibrated and the calibrated model.
"""

from __future__ import annotations

import argparse

import numpy as np

from ..catalog.device_energy import has_calibration
from ..catalog.precision import STORAGE
from ..errors import ConfigurationError
from ..limits import MAX_CAPS, MAX_REPLICA_GPUS, MAX_SEQ_LEN, MAX_TRAINING_GPUS
from ._common import (add_json_flag, emit, float_in, int_in, nonempty, nonneg_float, nonneg_int, positive_float,
                      positive_int, pue_float)


def _f(v) -> float:
    return float(np.asarray(v).ravel()[0])


def _check_replica_gpus(args) -> None:
    """A serving replica is one tensor-parallel group inside a scale-up domain."""
    if args.gpus > MAX_REPLICA_GPUS:
        raise ConfigurationError(f"--gpus {args.gpus:,} GPUs in one serving replica; expected at most "
                                 f"{MAX_REPLICA_GPUS} (a scale-up domain, e.g. an NVL72 rack): a fleet of "
                                 f"replicas is a scenario (fleet run), or use --train for a training run")


def _use_calibrated(args) -> bool:
    if args.calibrated is None:
        return has_calibration()
    return bool(args.calibrated)


def _operating_point(args, calibrated: bool, *, power_cap_w: float | None = None, max_batch: int | None = None):
    """The :class:`~fleet.frontier.OperatingPoint` the replica flags name (the same value and
    the same precision vocabulary as the Python API and a scenario's serve entry)."""
    from ..frontier import DEFAULT_MAX_BATCH, OperatingPoint
    return OperatingPoint(args.model, args.gpu, tp=args.gpus, ep=args.ep, precision=args.precision,
                          kv_precision=args.kv_precision, power_cap_w=power_cap_w,
                          max_batch=DEFAULT_MAX_BATCH if max_batch is None else max_batch,
                          constants="calibrated" if calibrated else "physical",
                          **({} if getattr(args, "stack", None) is None else {"stack": args.stack}))


def _add_replica_args(p, *, batch: bool = True) -> None:
    p.add_argument("--model", required=True, help="model name or Hugging Face id (fleet models list)")
    p.add_argument("--gpu", required=True, help="accelerator name (fleet hardware list)")
    p.add_argument("--gpus", type=int_in(1, MAX_TRAINING_GPUS, "a GPU count"), default=1, help="GPUs per replica (tensor parallel degree)")
    p.add_argument("--precision", type=nonempty, default="bf16",
                   help="weight precision: " + ", ".join(STORAGE) + " (or an alias: bfloat16, float16, e4m3, awq ...)")
    p.add_argument("--kv-precision", type=nonempty, default=None, help="KV-cache precision (default: activation dtype)")
    p.add_argument("--ep", type=positive_int, default=1,
                   help="expert-parallel degree (MoE only; 1 = off, else equal to --gpus: the experts are split "
                        "over the replica's GPUs, attention stays tensor-parallel, as vLLM --enable-expert-parallel)")
    p.add_argument("--stack", default=None,
                   help="serving software stack (fleet/catalog/serving_stacks.yaml): vllm-mlenergy-v3 (default, "
                        "the stack the constants were calibrated on), tensorrt-llm-1.0, vllm-splitwise-2023, "
                        "or an alias (vllm, trtllm, vllm-2023)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("--calibrated", dest="calibrated", action="store_true", default=None,
                   help="use the calibrated device constants (default when a calibration exists)")
    g.add_argument("--uncalibrated", dest="calibrated", action="store_false",
                   help="use the physical device constants only")


# ------------------------------------------------------------------------------------ estimate
def _recompute_arg(v):
    """--recompute on|off|auto -> True / False / None (searched)."""
    if v is None or v == "auto":
        return None
    return v == "on"


def _estimate(args) -> int:
    cal = _use_calibrated(args)
    if args.train:
        from ..frontier.train_estimate import training_estimate
        if args.ep != 1:
            raise ConfigurationError("--ep is a serving option; training layouts are not expert-parallel here")
        if getattr(args, "stack", None) is not None:
            raise ConfigurationError("--stack is a serving option (serving software); training uses the training "
                                     "model's own efficiency")
        if args.tokens is None:
            raise ConfigurationError("--train needs --tokens D (training tokens)")
        out = training_estimate(args.model, args.gpu, args.gpus, float(args.tokens),
                                seq_len=args.seq_len, precision=args.precision, utilization=args.utilization,
                                pue=args.pue, carbon_intensity_g_per_kwh=args.carbon_intensity,
                                power_cap_w=args.power_cap, calibrated=cal, tp=args.tp, pp=args.pp, dp=args.dp,
                                zero_stage=args.zero, recompute=_recompute_arg(args.recompute),
                                global_batch_tokens=args.global_batch_tokens,
                                network_gbs_per_gpu=args.network_gbs, training_stack=args.training_stack)
        lay = out["layout"]
        shares = "  ".join(f"{k.replace('_', ' ')} {v:.1%}" for k, v in out["time_shares"].items() if v >= 0.005)
        text = (f"{out['model']} on {out['gpus']} x {out['gpu']}, {out['tokens']:.3g} tokens, "
                f"global batch {out['global_batch_tokens']:,} tokens\n"
                f"  layout          {out['layout_text']}"
                f"{'' if lay['virtual_stages'] == 1 else ', ' + str(lay['virtual_stages']) + ' virtual stages'}"
                f" on {lay['gpus_used']} GPUs ({lay['idle_gpus']} idle)\n"
                f"  time            {out['time_days']:.2f} days, {out['gpu_hours']:,.0f} GPU-hours "
                f"(step {out['step_time_s']:.2f} s)\n"
                f"  MFU             {out['mfu']:.1%} steady, {out['mfu_with_downtime']:.1%} with checkpoints and failures "
                f"({out['achieved_tflops_per_gpu']:.0f} TFLOP/s per GPU)\n"
                f"  GPU energy      {out['gpu_energy_mwh']:.1f} MWh, facility {out['facility_energy_mwh']:.1f} MWh (PUE {out['pue']})\n"
                f"  carbon          {out['operational_co2e_t']:.1f} tCO2e at {out['carbon_intensity_g_per_kwh']:.0f} g/kWh\n"
                f"  avg power       {out['avg_power_per_gpu_w']:.0f} W per GPU ({out['avg_power_w'] / 1e3:.1f} kW in all; "
                f"cap {out['power_cap_w']:.0f} W)\n"
                f"  time shares     {shares}\n"
                f"  largest micro-batch {out['max_micro_batch_tokens']} tokens per GPU")
        emit(out, args.json, text)
        return 0
    if args.batch is not None and args.max_num_seqs is not None:
        raise ConfigurationError("give --batch (an exact running batch) or --max-num-seqs (vLLM's upper bound), "
                                 "not both")
    if args.batch is None and args.max_num_seqs is None:
        raise ConfigurationError("--batch or --max-num-seqs is required (or use --train)")
    for name in ("batch", "max_num_seqs", "input_tokens", "output_tokens"):
        if name in ("batch", "max_num_seqs") and getattr(args, name) is None:
            continue
        if getattr(args, name) is None:
            raise ConfigurationError(f"--{name.replace('_', '-')} is required (or use --train)")
        if getattr(args, name) < 1:
            raise ConfigurationError(f"--{name.replace('_', '-')} must be >= 1, got {getattr(args, name)}")
    _check_replica_gpus(args)
    from ..frontier.build import make_replica
    from ..frontier.steady import effective_batch, steady_kv_tokens_per_seq, steady_max_batch, steady_state
    op = _operating_point(args, cal, power_cap_w=args.power_cap)
    rep = make_replica(op)                    # checks the fit and the cap's range
    if args.sm_clock is not None:             # --sm-clock overrides --power-cap
        rep = make_replica(op.with_clock(args.sm_clock))
    ctx_len = int(args.input_tokens + args.output_tokens)
    held = steady_kv_tokens_per_seq(args.input_tokens, args.output_tokens)
    # the KV-cache limit on steady-state occupancy (I + O/2 tokens per running sequence), the rule
    # the simulation follows (fleet.frontier.steady)
    mb = steady_max_batch(rep.kv_capacity_tokens, args.input_tokens, args.output_tokens)
    if mb < 1:
        raise ConfigurationError(
            f"one request of {ctx_len} tokens does not fit the KV cache of {rep.tp} x {rep.acc.name} "
            f"({rep.kv_capacity_tokens} tokens); add GPUs or use a lower --kv-precision")
    if args.max_num_seqs is not None:
        batch, limited_by = effective_batch(rep.kv_capacity_tokens, args.input_tokens, args.output_tokens,
                                            args.max_num_seqs)
    else:
        batch, limited_by = int(args.batch), "batch"
        if args.batch > mb:
            raise ConfigurationError(
                f"--batch {args.batch} does not fit: the KV cache of {rep.tp} x {rep.acc.name} "
                f"({rep.kv_capacity_tokens} tokens) holds at most {mb} running sequences in steady state "
                f"({held:g} tokens each on average: {args.input_tokens} in + half of {args.output_tokens} out; "
                f"max_batch); lower --batch, use --max-num-seqs, add GPUs or use a lower --kv-precision")
    assert rep.op is not None                 # make_replica keeps the operating point it built
    s = steady_state(rep, batch, args.input_tokens, args.output_tokens, power_cap_w=rep.op.power_cap_w,
                     clock=rep.clock_fraction)
    out = {
        "model": rep.model_name, "gpu": rep.acc.name, "gpus": rep.tp, "precision": rep.precision,
        "kv_precision": rep.kv_precision, "batch": int(batch),
        "input_tokens": int(args.input_tokens), "output_tokens": int(args.output_tokens),
        "power_cap_w": args.power_cap,
        "sm_clock_mhz": args.sm_clock,
        "energy_per_output_token_j": _f(s.energy_per_output_token_j),
        "output_tokens_per_s": _f(s.output_tokens_per_s),
        "avg_power_w": _f(s.avg_power_w),
        "itl_ms": 1e3 * _f(s.itl_s),
        "ttft_ms": 1e3 * _f(s.ttft_s),
        "breakdown_j": {k: _f(v) for k, v in s.breakdown_j.items()},
        "max_batch": mb,
        "calibrated": bool(rep.acc.constants.calibrated),
        "clock_fraction": _f(s.clock_fraction),
        "energy_per_request_j": _f(s.energy_per_output_token_j) * args.output_tokens,
        "kv_capacity_tokens": rep.kv_capacity_tokens,
        "idle_power_w": rep.tp * rep.acc.idle_w,
        "stack": rep.op.stack,
    }
    out["batch_limited_by"] = limited_by
    out["kv_tokens_per_seq_steady"] = held
    if args.max_num_seqs is not None:
        out["max_num_seqs"] = int(args.max_num_seqs)
    if rep.ep > 1:
        out["ep"] = rep.ep
    br = out["breakdown_j"]
    text = (f"{out['model']} on {out['gpus']} x {out['gpu']} ({out['precision']}"
            f"{'' if rep.ep == 1 else f', ep {rep.ep}'}), batch {out['batch']}, "
            f"{out['input_tokens']} in / {out['output_tokens']} out"
            f"{'' if args.power_cap is None else f', cap {args.power_cap:g} W'}"
            f" [{'calibrated' if out['calibrated'] else 'uncalibrated'}, stack {out['stack']}]\n"
            f"  energy / output token  {out['energy_per_output_token_j']:.4f} J "
            f"(compute {br['compute']:.4f}, memory {br['memory']:.4f}, interconnect {br['interconnect']:.4f}, "
            f"static {br['static']:.4f})\n"
            f"  throughput             {out['output_tokens_per_s']:.0f} tokens/s\n"
            f"  power                  {out['avg_power_w']:.0f} W (all GPUs)\n"
            f"  ITL / TTFT             {out['itl_ms']:.1f} ms / {out['ttft_ms']:.1f} ms\n"
            f"  max batch              {out['max_batch']} (KV cache at steady-state occupancy, "
            f"{held:g} tokens per sequence)"
            + ("" if args.max_num_seqs is None else
               f"\n  effective batch        {batch} of --max-num-seqs {args.max_num_seqs} "
               f"(limited by {'the KV cache' if limited_by == 'kv_cache' else '--max-num-seqs'})"))
    emit(out, args.json, text)
    return 0


# ------------------------------------------------------------------------------------ frontier
def _frontier(args) -> int:
    from ..frontier.frontier import build_serving_frontier
    _check_replica_gpus(args)
    if args.phase == "prefill" and args.context < 1:
        raise ConfigurationError(f"--context must be >= 1 prompt token for --phase prefill, got {args.context}")
    cal = _use_calibrated(args)
    fr = build_serving_frontier(_operating_point(args, cal, max_batch=max(args.batch, 1)), n_caps=args.caps)
    if args.phase == "decode" and (args.batch < 1 or args.batch > fr.max_batch):
        raise ConfigurationError(f"--batch must be in [1, {fr.max_batch}], got {args.batch}")
    if args.context < 0:
        raise ConfigurationError(f"--context must be >= 0, got {args.context}")
    if args.phase == "decode":
        caps, t, e, p, mask = fr.pareto(args.batch, float(args.batch) * float(args.context))
        per_token = float(args.batch)
        what = f"one decode iteration, batch {args.batch}, {args.context} tokens/seq"
    else:
        caps, t, e, p, mask = fr.pareto(args.context, 0.0, phase="prefill")
        per_token = float(args.context)
        what = f"one prefill of {args.context} prompt tokens"
    pts = [{"cap_w": float(c), "time_s": float(ti), "energy_j": float(ei), "power_w": float(pi),
            "energy_per_token_j": float(ei) / per_token, "pareto": bool(m)}
           for c, ti, ei, pi, m in zip(caps, t, e, p, mask)]
    out = {"model": fr.profiles[0].model, "gpu": fr.profiles[0].accelerator, "gpus": fr.profiles[0].tp,
           "phase": args.phase, "batch": args.batch, "context_per_seq": args.context,
           "calibrated": fr.profiles[0].calibrated,
           "pareto": [q for q in pts if q["pareto"]], "points": pts}
    if args.ep > 1:
        out["ep"] = int(args.ep)
    lines = [f"{out['model']} on {out['gpus']} x {out['gpu']}{'' if args.ep == 1 else f' (ep {args.ep})'}: {what}",
             f"{'cap W':>7} {'time ms':>9} {'energy J':>9} {'power W':>8}  pareto"]
    lines += [f"{q['cap_w']:7.0f} {q['time_s'] * 1e3:9.3f} {q['energy_j']:9.3f} {q['power_w']:8.0f}  "
              f"{'*' if q['pareto'] else ''}" for q in pts]
    emit(out, args.json, "\n".join(lines))
    return 0


# ------------------------------------------------------------------------------------ calibrate
def _parse_inputs(items) -> dict[str, int]:
    out = {}
    for it in items or []:
        if "=" not in it:
            raise ConfigurationError(f"--input-tokens {it!r}; expected TASK=TOKENS, e.g. lm-arena-chat=350")
        k, v = it.split("=", 1)
        try:
            out[k.strip()] = int(v)
        except ValueError as exc:
            raise ConfigurationError(f"--input-tokens {it!r}: {v!r} is not an integer") from exc
    return out


def _calibrate(args) -> int:
    from pathlib import Path

    from ..catalog.device_energy import load_device_constants
    from ..frontier.calibration import calibrate_all
    from ..frontier.mlenergy import DEFAULT_HOLDOUT
    from ..hardware.calibrate import write_calibration
    from ..paths import shared_data
    zdir = args.zeus or str(shared_data("zeus-gpu-power-limit-profiles"))
    holdout = tuple(args.holdout.split(",")) if args.holdout else DEFAULT_HOLDOUT
    rep, merged = calibrate_all(args.data, zdir, input_tokens=_parse_inputs(args.input_tokens), holdout=holdout)
    if args.write:
        path = write_calibration(merged, load_device_constants(False),
                                 data=f"{Path(args.data).name}; {Path(zdir).name}/summary_power_{{v100,a40}}.csv",
                                 summary={"dense_calibrated": rep["calibrated"]["dense"]["overall"],
                                          "dense_uncalibrated": rep["uncalibrated"]["dense"]["overall"],
                                          "zeus_calibrated": rep["zeus"]["calibrated"]})
        rep["written"] = str(path)
    emit(rep, args.json, _calibration_text(rep))
    return 0


def _calibration_text(rep: dict) -> str:
    names = {"energy_per_token_j": "energy/token", "output_throughput_tok_s": "throughput",
             "avg_power_w_total": "power"}
    lines = [f"ML.ENERGY calibration: {rep['rows_used']} rows used ({rep['dense_rows']} dense, {rep['moe_rows']} MoE); "
             f"skipped: " + ", ".join(f"{k}: {v}" for k, v in rep["skipped"].items()),
             "input tokens assumed per task: " + ", ".join(f"{k}={v}" for k, v in rep["input_tokens_assumed"].items()),
             "fitted constants (physical -> calibrated, range):"]
    for k, v in rep["fitted"].items():
        lines.append(f"  {k:36s} {v['physical']:.4g} -> {v['value']:.4g} {v['unit']}  [{v['range'][0]:g}, {v['range'][1]:g}]")
    lines.append("absolute percentage error, median / p90:")
    for arch in ("dense", "moe"):
        for model in ("uncalibrated", "calibrated"):
            for scope, errs in rep[model][arch].items():
                cells = "  ".join(f"{names[m]} {e['median_ape_pct']:5.1f}/{e['p90_ape_pct']:5.1f}%"
                                  for m, e in errs.items() if e["n"])
                n = next(iter(errs.values()))["n"]
                lines.append(f"  {arch:5s} {model:12s} {scope:16s} n={n:3d}  {cells}")
    if "holdout" in rep:
        h = rep["holdout"]
        cells = "  ".join(f"{names[m]} {e['median_ape_pct']:5.1f}/{e['p90_ape_pct']:5.1f}%"
                          for m, e in h["errors_on_heldout"].items())
        lines.append(f"  held-out models {', '.join(h['models'])} (fit without them, n={h['rows']}): {cells}")
    if "zeus" in rep:
        z = rep["zeus"]
        lines.append("DVFS shape vs Zeus power-limit curves (max |error| of median normalised time / energy; "
                     "energy-minimising limit measured -> predicted):")
        for k, v in z["fitted"].items():
            lines.append(f"  {k:36s} {v['physical']:.4g} -> {v['value']:.4g} {v['unit']}  [{v['range'][0]:g}, {v['range'][1]:g}]")
        tags = {"uncalibrated": "uncalibrated", "calibrated": "calibrated", "holdout": "fit on other",
                "heldout_gpus_uncalibrated": "never fitted, physical", "heldout_gpus_calibrated": "never fitted, calibrated"}
        for model, tag in tags.items():
            for gpu, r in z.get(model, {}).items():
                lines.append(f"  {gpu:16s} {tag:24s} time {r['max_abs_err_time']:.3f}  energy {r['max_abs_err_energy']:.3f}  "
                             f"argmin {r['argmin_energy_measured_w']:.0f} -> {r['argmin_energy_predicted_w']:.0f} W")
    if "written" in rep:
        lines.append(f"calibrated constants written to {rep['written']}")
    lines.append(f"({rep['seconds']:.1f} s)")
    return "\n".join(lines)


def register(sub) -> None:
    p = sub.add_parser("estimate", help="energy, throughput and latency of serving (or training) one model",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    _add_replica_args(p)
    p.add_argument("--batch", type=positive_int, help="exact running batch (concurrent requests); refused when its "
                   "steady-state KV occupancy does not fit")
    p.add_argument("--max-num-seqs", type=positive_int, default=None,
                   help="vLLM's batch limit: run the largest batch that fits the KV cache, up to N, and report it")
    p.add_argument("--input-tokens", type=positive_int, help="prompt tokens per request")
    p.add_argument("--output-tokens", type=positive_int, help="output tokens per request")
    p.add_argument("--power-cap", type=positive_float, default=None, help="per-GPU power cap (W)")
    p.add_argument("--sm-clock", type=positive_float, default=None,
                   help="locked SM clock (MHz; overrides --power-cap), e.g. 1410 on H100")
    p.add_argument("--train", action="store_true", help="estimate a training run instead of serving")
    p.add_argument("--tokens", type=positive_float, default=None, help="training tokens D (with --train)")
    p.add_argument("--seq-len", type=int_in(1, MAX_SEQ_LEN, "a sequence length"), default=4096,
                   help="training sequence length (with --train)")
    p.add_argument("--utilization", type=float_in(0.0, 1.0, lo_open=True, what="a fraction"), default=None,
                   help="achieved fraction of attainable matmul throughput in training "
                        "(default: the calibrated TRAIN_GEMM_EFFICIENCY)")
    p.add_argument("--tp", type=positive_int, default=None, help="training: tensor-parallel degree (default: searched)")
    p.add_argument("--pp", type=positive_int, default=None,
                   help="training: pipeline stages (uneven allowed; default: searched)")
    p.add_argument("--dp", type=positive_int, default=None, help="training: data-parallel degree (default: searched)")
    p.add_argument("--zero", type=int, default=None, choices=(0, 1, 2, 3),
                   help="training: ZeRO stage (default: searched)")
    p.add_argument("--recompute", choices=("on", "off", "auto"), default=None,
                   help="training: activation recomputation (default auto: searched)")
    p.add_argument("--global-batch-tokens", type=positive_int, default=None,
                   help="training: tokens per optimizer step (default 4M)")
    p.add_argument("--network-gbs", type=positive_float, default=None,
                   help="training: scale-out bandwidth per GPU, GB/s one way (default: device constant)")
    p.add_argument("--training-stack", default="megatron-core", choices=("megatron-core", "deepspeed-pipeline"),
                   help="training: framework generation (megatron-core: interleaved 1F1B and ZeRO 0-3; "
                        "deepspeed-pipeline: 1F1B without interleaving, ZeRO <= 1 with pipelines, as BLOOM and "
                        "the 2020 runs)")
    p.add_argument("--pue", type=pue_float, default=1.2, help="power usage effectiveness (facility / IT energy)")
    p.add_argument("--carbon-intensity", type=nonneg_float, default=400.0, help="grid carbon intensity (gCO2e/kWh)")
    add_json_flag(p)
    p.set_defaults(func=_estimate)

    p = sub.add_parser("frontier", help="time-energy Pareto points of a decode iteration over power caps")
    _add_replica_args(p)
    p.add_argument("--batch", type=positive_int, default=64, help="running batch")
    p.add_argument("--context", type=nonneg_int, default=1024,
                   help="context tokens per sequence (decode) or prompt tokens (prefill)")
    p.add_argument("--phase", choices=("decode", "prefill"), default="decode", help="unit of work")
    p.add_argument("--caps", type=int_in(2, MAX_CAPS, "a number of caps"), default=11, help="number of caps from the min to the max limit")
    add_json_flag(p)
    p.set_defaults(func=_frontier)

    p = sub.add_parser("calibrate", help="fit device constants to the ML.ENERGY measurements; report errors")
    p.add_argument("--data", required=True, help="mlenergy_v3_llm_configs_h100.csv")
    p.add_argument("--write", action="store_true", help="write fleet/catalog/device_energy_calibrated.yaml")
    p.add_argument("--input-tokens", action="append", metavar="TASK=N",
                   help="override an assumed prompt length per task (repeatable)")
    p.add_argument("--holdout", default=None, help="comma-separated models left out of the hold-out fit")
    p.add_argument("--zeus", default=None, help="folder of the Zeus summary_power_*.csv files "
                   "(default ../shared/data/zeus-gpu-power-limit-profiles)")
    add_json_flag(p)
    p.set_defaults(func=_calibrate)
