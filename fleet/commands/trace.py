"""``fleet trace``: inspect request traces, synthesise demand, generate training-job tables.

* ``fleet trace inspect PATH [--format F] [--json] [--plot out.png]``
* ``fleet trace synth --profile {poisson,gamma,diurnal,servegen} --rate R --hours H --seed S ... -o OUT``
* ``fleet trace jobs --cluster {seren,kalos} (--n N | --days D) --seed S ... -o OUT``
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import (add_json_flag, emit, float_in, int_in, nonempty, nonneg_float, out_path, positive_float,
                      positive_int, seed_int)
from ..limits import MAX_GENERATED_JOBS


def register(sub) -> None:
    p = sub.add_parser("trace", help="inspect request traces, synthesise demand and training jobs")
    tsub = p.add_subparsers(dest="trace_command", metavar="SUBCOMMAND")

    pi = tsub.add_parser("inspect", help="summary statistics (and a plot) of a request trace")
    pi.add_argument("path", help="trace file (Azure CSV, Mooncake JSONL, BurstGPT CSV, canonical CSV/Parquet)")
    pi.add_argument("--format", default=None, help="override format detection (azure, mooncake, burstgpt, canonical)")
    pi.add_argument("--plot", type=out_path, default=None, metavar="PNG", help="write rate-over-time and token histograms here")
    add_json_flag(pi)
    pi.set_defaults(func=cmd_inspect)

    ps = tsub.add_parser("synth", help="generate synthetic requests (deterministic for a seed)")
    ps.add_argument("--profile", required=True, choices=["poisson", "gamma", "diurnal", "servegen"])
    ps.add_argument("--rate", type=positive_float, required=True, help="mean request rate, requests/s")
    ps.add_argument("--hours", type=positive_float, required=True, help="length of the trace, hours")
    ps.add_argument("--seed", type=seed_int, required=True)
    ps.add_argument("--cv", type=positive_float, default=1.0,
                    help="coefficient of variation of inter-arrival times (1 = Poisson) [1]")
    ps.add_argument("--peak-to-trough", type=float_in(1.0, what="a ratio"), default=2.0, help="diurnal: peak/trough rate ratio [2]")
    ps.add_argument("--peak-hour", type=float_in(0.0, 24.0, hi_open=True, what="an hour of the day"), default=14.0, help="diurnal: hour of the peak [14]")
    ps.add_argument("--weekend-factor", type=positive_float, default=1.0,
                    help="diurnal: Saturday/Sunday rate factor (!= 1 makes a weekly profile) [1]")
    ps.add_argument("--servegen-model", type=nonempty, default="m-large", help="servegen: model class [m-large]")
    ps.add_argument("--servegen-file", default=None, help="servegen: rate CSV [shared data]")
    ps.add_argument("--start-hour", type=nonneg_float, default=0.0, help="start this many hours into the profile [0]")
    tok = ps.add_mutually_exclusive_group()
    tok.add_argument("--tokens-from", default=None, metavar="TRACE",
                     help="resample (input, output) lengths from this trace")
    tok.add_argument("--lognormal", nargs=4, type=float_in(what="a finite number"), default=None,
                     metavar=("IN_MU", "IN_SIGMA", "OUT_MU", "OUT_SIGMA"),
                     help="lognormal token lengths (parameters of ln tokens) [Azure conv fit]")
    ps.add_argument("--rho", type=float_in(-1.0, 1.0, what="a correlation"), default=None, help="with --lognormal: correlation of the logs [0]")
    ps.add_argument("--input-max", type=positive_int, default=None, help="with --lognormal: cap on input tokens")
    ps.add_argument("--output-max", type=positive_int, default=None, help="with --lognormal: cap on output tokens")
    ps.add_argument("--model", default=None, help="fill the model column with this name")
    ps.add_argument("-o", "--output", type=out_path, required=True, help="output .csv or .parquet")
    add_json_flag(ps)
    ps.set_defaults(func=cmd_synth)

    pj = tsub.add_parser("jobs", help="generate a training-job table calibrated to AcmeTrace")
    pj.add_argument("--cluster", default="seren", choices=["seren", "kalos"])
    pj.add_argument("--n", type=int_in(1, MAX_GENERATED_JOBS, "a number of jobs"), default=None, help="number of jobs")
    pj.add_argument("--days", type=positive_float, default=None, help="submission horizon, days")
    pj.add_argument("--seed", type=seed_int, required=True)
    pj.add_argument("--rate-per-hour", type=positive_float, default=None,
                    help="job submissions per hour [the cluster's own rate]")
    pj.add_argument("--max-gpus", type=positive_int, default=None, help="cap GPUs per job (small fleets)")
    pj.add_argument("--deferrable-frac", type=float_in(0.0, 1.0, what="a fraction"), default=0.3, help="share of deferrable jobs [0.3]")
    pj.add_argument("--deadline-slack-hours", type=nonneg_float, default=24.0,
                    help="deferrable jobs: deadline slack after the earliest end, hours [24]")
    pj.add_argument("--checkpoint-interval", type=positive_float, default=1800.0, help="seconds [1800]")
    pj.add_argument("--model", default=None, help="fill the model column with this name [empty]")
    pj.add_argument("-o", "--output", type=out_path, required=True, help="output CSV")
    add_json_flag(pj)
    pj.set_defaults(func=cmd_jobs)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _fmt_stats(st: dict) -> str:
    if st["rows"] == 0:
        return f"rows  0\nsource  {st.get('source')}"
    lines = [
        f"source            {st.get('source')} ({st.get('format')})",
        f"t0                {st.get('t0') or '-'}",
        f"rows              {st['rows']:,}",
        f"span              {st['span_s']:.1f} s ({st['span_s'] / 60:.1f} min)",
        f"mean rate         {st['mean_rate_rps']:.3f} req/s",
        f"peak rate (1 s)   {st['peak_rate_1s_rps']:.0f} req/s",
        f"peak rate (60 s)  {st['peak_rate_60s_rps']:.2f} req/s",
        f"burstiness        CV of inter-arrival times {st['interarrival_cv']:.3f} "
        f"({st['duplicate_arrivals']} duplicate arrival times)",
    ]
    for c, name in (("input_tokens", "input tokens"), ("output_tokens", "output tokens")):
        lines.append(f"{name:<17} mean {st[c + '_mean']:.1f}  p50 {st[c + '_p50']:.0f}  "
                     f"p99 {st[c + '_p99']:.0f}  max {st[c + '_max']}")
    return "\n".join(lines)


def plot_trace(df, path: str | Path, title: str = "") -> Path:
    """PNG: request rate over time (60 s bins) and input/output token histograms (atomic write)."""
    import numpy as np
    from matplotlib.figure import Figure

    from .._io import atomic_path

    t = df["arrival_s"].to_numpy()
    fig = Figure(figsize=(8, 9))
    axes = fig.subplots(3, 1)
    if t.size:
        span = max(float(t[-1]), 1.0)
        width = 60.0 if span <= 6 * 3600 else 600.0
        counts = np.bincount(np.floor(t / width).astype(np.int64))
        x = np.arange(counts.size) * width
        unit, div = ("h", 3600.0) if span > 3 * 3600 else ("min", 60.0)
        axes[0].step(x / div, counts / width, where="post")
        axes[0].set_xlabel(f"time from trace start ({unit})")
        axes[0].set_ylabel(f"request rate (req/s, {width:.0f} s bins)")
    for ax, col, name in ((axes[1], "input_tokens", "input"), (axes[2], "output_tokens", "output")):
        v = df[col].to_numpy()
        if v.size:
            bins = np.logspace(0, np.log10(max(v.max(), 2)), 60)
            ax.hist(v, bins=bins)
            ax.set_xscale("log")
        ax.set_xlabel(f"{name} length (tokens)")
        ax.set_ylabel("requests (count)")
    fig.suptitle(title or str(df.attrs.get("source") or "trace"), fontsize=9)
    fig.tight_layout()
    with atomic_path(path, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    return Path(path)


def cmd_inspect(args: argparse.Namespace) -> int:
    from ..workload.traces import read_trace, trace_stats

    if args.plot:
        from .._io import check_output_file
        check_output_file(args.plot)
    df = read_trace(args.path, format=args.format)
    st = trace_stats(df)
    if args.plot:
        plot_trace(df, args.plot)
        st["plot"] = str(args.plot)
    emit(st, args.json, _fmt_stats(st) + (f"\nplot              {args.plot}" if args.plot else ""))
    return 0


def cmd_synth(args: argparse.Namespace) -> int:
    from ..errors import FleetError
    from ..workload.synth import AZURE_CONV_LOGNORMAL, EmpiricalTokens, LognormalTokens, synth_trace
    from ..workload.traces import read_trace, trace_stats, write_trace

    from .._io import check_output_file

    check_output_file(args.output)
    tokens: EmpiricalTokens | LognormalTokens
    if args.tokens_from:
        tokens = EmpiricalTokens.from_trace(read_trace(args.tokens_from))
    elif args.lognormal:
        a, b, c, d = args.lognormal
        tokens = LognormalTokens(a, b, c, d, rho=args.rho if args.rho is not None else 0.0,
                                 input_max=131072 if args.input_max is None else args.input_max,
                                 output_max=8192 if args.output_max is None else args.output_max,
                                 source=f"lognormal {a} {b} {c} {d}")
    else:
        if args.rho is not None or args.input_max is not None or args.output_max is not None:
            raise FleetError("--rho/--input-max/--output-max need --lognormal")
        tokens = AZURE_CONV_LOGNORMAL
    if not args.hours > 0:
        raise FleetError(f"--hours must be > 0, got {args.hours}")
    df = synth_trace(args.profile, args.rate, args.hours * 3600.0, args.seed, cv=args.cv, tokens=tokens,
                     model=args.model, peak_to_trough=args.peak_to_trough, peak_hour=args.peak_hour,
                     weekend_factor=args.weekend_factor, servegen_model=args.servegen_model,
                     servegen_path=args.servegen_file, start_s=args.start_hour * 3600.0)
    if len(df) == 0:
        raise FleetError("the synthetic trace has no requests (rate x hours too small)")
    write_trace(df, args.output, float_format="%.6f")
    st = trace_stats(df)
    st["output"] = str(args.output)
    emit(st, args.json, f"wrote {args.output}\n" + _fmt_stats(st))
    return 0


def cmd_jobs(args: argparse.Namespace) -> int:
    from ..errors import FleetError
    from ..workload.jobs import generate_jobs, write_jobs

    from .._io import check_output_file

    if args.n is None and args.days is None:
        raise FleetError("fleet trace jobs needs --n or --days")
    check_output_file(args.output)
    df = generate_jobs(n=args.n, horizon_s=args.days * 86400.0 if args.days is not None else None,
                       cluster=args.cluster, seed=args.seed,
                       rate_per_s=args.rate_per_hour / 3600.0 if args.rate_per_hour else None,
                       deferrable_frac=args.deferrable_frac,
                       deadline_slack_s=args.deadline_slack_hours * 3600.0,
                       checkpoint_interval_s=args.checkpoint_interval, max_gpus=args.max_gpus,
                       model=args.model)
    write_jobs(df, args.output)
    gpu_h = float((df["gpus"] * df["duration_s"]).sum()) / 3600.0
    st = {"output": str(args.output), "jobs": len(df), "cluster": args.cluster,
          "span_s": float(df["submit_s"].iloc[-1]) if len(df) else 0.0,
          "gpus_mean": float(df["gpus"].mean()), "gpus_max": int(df["gpus"].max()),
          "duration_mean_s": float(df["duration_s"].mean()), "duration_p50_s": float(df["duration_s"].median()),
          "gpu_hours": gpu_h, "failing_jobs": int(df["fail_at_s"].notna().sum()),
          "deferrable_jobs": int(df["deferrable"].sum())}
    emit(st, args.json)
    return 0
