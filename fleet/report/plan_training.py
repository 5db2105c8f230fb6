"""Report page of the training planner (``plan.training``): the schedule over the hourly carbon
intensity and price, and the savings against the FCFS baseline and the per-job bound.

Reads a :class:`fleet.planning.PlanOutcome` of kind ``training`` (its ``tables`` and ``metrics``)
and nothing else of the planner.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def figures(outcome, dpi: int = 110) -> list[Figure]:
    """Two figures: the schedule over the signals, and the savings."""
    if outcome is None or outcome.kind != "training" or "hourly" not in outcome.tables:
        return []
    return [_schedule_figure(outcome, dpi), _savings_figure(outcome, dpi)]


def tables(outcome) -> dict[str, pd.DataFrame]:
    """CSV tables: the schedule (job, hour, limit, share), the hourly plan and baseline, the jobs."""
    if outcome is None or outcome.kind != "training":
        return {}
    return {f"plan_training_{k}": v for k, v in outcome.tables.items() if isinstance(v, pd.DataFrame)}


def _schedule_figure(outcome, dpi: int) -> Figure:
    h = outcome.tables["hourly"]
    base = outcome.tables.get("baseline_hourly")
    sched = outcome.tables.get("schedule")
    fig = Figure(figsize=(10, 6.2), dpi=dpi)
    ax1, ax2 = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 1.4]})
    t = h["slot"].to_numpy()
    ax1.step(t, h["ci_g_per_kwh"], where="post", color="tab:green", lw=1.2, label="carbon intensity")
    ax1.set_ylabel("gCO2e/kWh")
    axp = ax1.twinx()
    axp.step(t, h["price_usd_per_mwh"], where="post", color="tab:gray", lw=0.8, alpha=0.7, label="price")
    axp.set_ylabel("USD/MWh")
    sig = outcome.metrics.get("signal", {})
    ax1.set_title(f"Training schedule for {outcome.metrics.get('objective', '?')} "
                  f"({sig.get('carbon', 'carbon intensity')})", fontsize=10)
    lines = ax1.get_legend_handles_labels()[0] + axp.get_legend_handles_labels()[0]
    ax1.legend(lines, ["carbon intensity", "price"], loc="upper right", fontsize=8)
    # GPUs busy per hour by power limit (plan), and the baseline's GPUs busy
    if sched is not None and len(sched):
        n = len(t)
        caps = sorted(sched["cap_w"].unique())
        gpus_of = outcome.tables["jobs"].set_index("job_id")["gpus"] if "jobs" in outcome.tables else None
        bottom = np.zeros(n)
        cmap = [f"C{i}" for i in range(len(caps))]
        for c, col in zip(caps, cmap):
            s = sched[sched["cap_w"] == c]
            g = np.zeros(n)
            w = s["fraction"].to_numpy() * (gpus_of.reindex(s["job_id"]).to_numpy() if gpus_of is not None else 1)
            np.add.at(g, s["slot"].to_numpy().astype(int), w)
            ax2.bar(t, g, bottom=bottom, width=1.0, align="edge", color=col, label=f"plan at {c:.0f} W", lw=0)
            bottom += g
    if base is not None:
        ax2.step(base["slot"], base["gpus"], where="post", color="k", lw=1.0, label="baseline (at submission)")
    ax2.set_ylabel("GPU-hours per hour")
    ax2.set_xlabel("hour of the horizon")
    ax2.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    return fig


def _savings_figure(outcome, dpi: int) -> Figure:
    m = outcome.metrics
    fig = Figure(figsize=(10, 3.6), dpi=dpi)
    axes = fig.subplots(1, 3)
    for ax, (key, unit, label) in zip(axes, (("carbon_kg", "kgCO2e", "carbon"), ("cost_usd", "USD", "cost"),
                                            ("energy_kwh", "kWh", "energy"))):
        vals = [m.get(f"baseline_{key}"), m.get(key), m.get(f"bound_{key}")]
        names = ["baseline", "plan", "bound"]
        ok = [(nm, v) for nm, v in zip(names, vals) if v is not None]
        ax.bar([a for a, _ in ok], [b for _, b in ok], color=["0.6", "tab:green", "tab:blue"][:len(ok)])
        ax.set_title(f"{label} ({unit})", fontsize=9)
        for i, (_, v) in enumerate(ok):
            ax.annotate(f"{v:.4g}", (i, v), ha="center", va="bottom", fontsize=8)
    fig.suptitle(f"Saving {m.get('saving_pct', float('nan')):.1f}% of {m.get('saving_of', '?')} against the "
                 f"baseline; {m.get('bound_capture_pct', float('nan')):.0f}% of what the per-job bound allows; "
                 f"deadlines missed in simulation: {m.get('sim_deadlines_missed', '?')}", fontsize=9)
    fig.tight_layout()
    return fig
