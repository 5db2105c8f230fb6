"""What ``fleet grid inspect`` reports about a signal, and its figure.

Statistics are over the rows as they are (each row one interval; for a regular series that is the
time-mean).  The hour-of-day profile is the mean value by UTC hour; its lowest hour is where a
carbon- or price-aware scheduler would put deferrable work.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .._io import atomic_path
from .signal import Signal


def summarize(signal: Signal, max_gaps: int = 20) -> dict[str, Any]:
    """Rows, span, resolution, unit, mean/min/max/p5/p95, gaps and the UTC hour-of-day profile."""
    v = signal.values
    prof = signal.hour_of_day_profile()
    gaps = signal.gaps()
    out: dict[str, Any] = {
        "source": signal.source,
        "kind": signal.kind,
        "unit": signal.unit,
        "interpolation": signal.interpolation,
        "rows": int(len(v)),
        "constant": bool(signal.is_constant),
    }
    if not signal.is_constant:
        span_s = (signal.end - signal.start).total_seconds()
        out.update({
            "start_utc": signal.start.isoformat(),
            "end_utc": signal.end.isoformat(),
            "span_h": span_s / 3600.0,
            "resolution_s": float(signal.step_s),
            "regular": bool(signal.is_regular),
        })
    out.update({
        "mean": float(np.mean(v)),
        "min": float(np.min(v)),
        "max": float(np.max(v)),
        "p5": float(np.percentile(v, 5)),
        "p50": float(np.percentile(v, 50)),
        "p95": float(np.percentile(v, 95)),
        "gaps": len(gaps),
        "missing_intervals": int(sum(g.missing for g in gaps)),
        "gap_list": [str(g) for g in gaps[:max_gaps]],
        "hour_of_day_mean_utc": [None if not np.isfinite(x) else float(x) for x in prof],
    })
    if np.any(np.isfinite(prof)):
        out["lowest_hour_utc"] = int(np.nanargmin(prof))
        out["highest_hour_utc"] = int(np.nanargmax(prof))
    for key in ("zone", "basis", "currency", "region", "estimated_fraction", "source_unit", "mean_lbs_per_mwh",
                "repairs", "filled_gaps", "year_shift"):
        if key in signal.meta:
            out[key] = signal.meta[key]
    return out


def format_summary(s: dict[str, Any]) -> str:
    """Human-readable text for :func:`summarize`'s dict."""
    u = s["unit"]
    lines = [f"source         {s['source']}",
             f"kind           {s['kind']} [{u}], {s['interpolation']} interpolation"]
    if not s["constant"]:
        lines += [f"rows           {s['rows']}",
                  f"span           {s['start_utc']} .. {s['end_utc']} ({s['span_h']:.1f} h)",
                  f"resolution     {s['resolution_s']:g} s{'' if s['regular'] else ' (irregular: gaps)'}"]
    lines += [f"mean           {s['mean']:.4g} {u}",
              f"min / max      {s['min']:.4g} / {s['max']:.4g} {u}",
              f"p5 / p50 / p95 {s['p5']:.4g} / {s['p50']:.4g} / {s['p95']:.4g} {u}",
              f"gaps           {s['gaps']} ({s['missing_intervals']} missing intervals)"]
    lines += [f"  {g}" for g in s["gap_list"]]
    if "lowest_hour_utc" in s:
        prof = s["hour_of_day_mean_utc"]
        lines.append(f"lowest hour    {s['lowest_hour_utc']:02d} UTC ({prof[s['lowest_hour_utc']]:.4g} {u}); "
                     f"highest {s['highest_hour_utc']:02d} UTC ({prof[s['highest_hour_utc']]:.4g} {u})")
        cells = [f"{h:02d}:{'-' if x is None else format(x, '.4g')}" for h, x in enumerate(prof)]
        lines.append("hour profile   " + " ".join(cells[:12]))
        lines.append("(UTC)          " + " ".join(cells[12:]))
    for key in ("zone", "basis", "currency", "estimated_fraction", "repairs", "filled_gaps"):
        if key in s:
            lines.append(f"{key:<14} {s[key]}")
    return "\n".join(lines)


def plot_signal(signal: Signal, out: str | Path, title: str | None = None) -> Path:
    """A PNG: the series over time, and its mean hour-of-day profile (UTC), units on the axes. Atomic."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(12, 4))
    ax1, ax2 = fig.subplots(1, 2, gridspec_kw={"width_ratios": [2.2, 1]})
    label = f"{signal.kind} [{signal.unit}]"
    if signal.is_constant:
        ax1.axhline(signal.values[0])
    else:
        ax1.step(signal.index.tz_convert("UTC").tz_localize(None), signal.values, where="post", lw=0.6)
        for g in signal.gaps():
            ax1.axvspan(g.start.tz_localize(None), g.end.tz_localize(None), color="red", alpha=0.3)
    ax1.set_xlabel("time (UTC)")
    ax1.set_ylabel(label)
    ax1.grid(alpha=0.3)
    prof = signal.hour_of_day_profile()
    ax2.bar(np.arange(24), prof, color="tab:green")
    if np.any(np.isfinite(prof)):
        lo = int(np.nanargmin(prof))
        ax2.bar([lo], [prof[lo]], color="tab:blue", label=f"lowest: {lo:02d} UTC")
        ax2.legend(loc="lower right", fontsize=8)
    ax2.set_xlabel("hour of day (UTC)")
    ax2.set_ylabel(f"mean {label}")
    ax2.set_xticks(range(0, 24, 3))
    ax2.grid(alpha=0.3, axis="y")
    fig.suptitle(title or signal.source or label, fontsize=10)
    fig.tight_layout()
    with atomic_path(out, suffix=".png") as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    return Path(out)
