"""Report page of the power-oversubscription planner: the row's power against its thresholds and
budget in the verified simulation, the controller's actions, the breaker trips, the per-server
power samples the plan was made from, and the verification rounds.  Reads a
:class:`~fleet.planning.PlanOutcome` (plain data: its tables, metrics and the SimResult of the
plan) and nothing else of the planner."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from matplotlib.figure import Figure


def tables(outcome) -> dict[str, pd.DataFrame]:
    """CSV tables: the rows' plan, the samples, the verification rounds, the controller's actions
    and the trips of the verified simulation."""
    out = {f"power_{k}": v for k, v in outcome.tables.items() if isinstance(v, pd.DataFrame) and len(v)}
    if outcome.rounds:
        out["power_rounds"] = pd.DataFrame([{k: (str(v) if isinstance(v, (list, dict)) else v) for k, v in r.items()}
                                            for r in outcome.rounds])
    sim = outcome.sim
    for name in ("controller_actions", "trips"):
        df = getattr(sim, name, None) if sim is not None else None
        if df is not None:
            out[f"power_{name}"] = df
    return out


def figures(outcome, dpi: int = 110) -> list[Figure]:
    m = outcome.metrics
    rows = m.get("rows", {})
    sim = outcome.sim
    fig = Figure(figsize=(11, 8.5), dpi=dpi)
    axes = fig.subplots(2, 2)
    trips = int(m.get("trips", 0) or 0)
    fig.suptitle(f"Power oversubscription: {m.get('servers', '?')} servers where the nameplate allows "
                 f"{m.get('nameplate_servers', '?')} ({m.get('extra_servers_pct', math.nan):+.1f} %), "
                 f"{trips} breaker trip{'s' if trips != 1 else ''} in verification", fontsize=11)
    # row power against thresholds and budget, with the controller's actions and any trip
    ax = axes[0][0]
    if sim is not None and sim.power is not None and len(sim.power):
        p = sim.power[sim.power["level"] == "row"]
        budgets = dict(zip(sim.tree["node"], sim.tree["budget_w"]))
        for row, g in p.groupby("node", sort=True):
            ax.plot(g["time_s"] / 3600.0, g["power_w"] / 1e3, lw=0.8, label=f"{row} power")
            b = budgets.get(row, math.nan)
            if math.isfinite(b):
                ax.axhline(b / 1e3, color="k", lw=1.2, label="budget")
                plan = rows.get(row, {})
                for key, style in (("t1", ":"), ("t2", "--"), ("brake", "-.")):
                    if key in plan:
                        ax.axhline(plan[key] * b / 1e3, color="tab:red", ls=style, lw=0.9,
                                   label=f"{key} {plan[key]:.0%}")
        acts = getattr(sim, "controller_actions", None)
        if acts is not None and len(acts):
            for t in acts["time_s"].unique():
                ax.axvline(t / 3600.0, color="tab:orange", lw=0.4, alpha=0.5)
        tr = getattr(sim, "trips", None)
        if tr is not None and len(tr):
            ax.scatter(tr["time_s"] / 3600.0, tr["power_w"] / 1e3, marker="x", color="k", zorder=5,
                       label="trip")
        ax.set_xlabel("hour")
        ax.set_ylabel("kW")
        ax.legend(fontsize=7, loc="lower right")
    ax.set_title("Row power (verified run, first seed) against thresholds and budget", fontsize=9)
    # controller actions: the lever value over time per pool
    ax = axes[0][1]
    acts = getattr(sim, "controller_actions", None) if sim is not None else None
    if acts is not None and len(acts):
        for (pool, lever), g in acts.groupby(["pool", "lever"], sort=True):
            v = g["value"].to_numpy(dtype=float)
            ax.step(g["time_s"] / 3600.0, np.where(np.isnan(v), np.nan, v), where="post", marker=".",
                    label=f"{pool} {lever}")
            free = g[np.isnan(v)]
            ax.scatter(free["time_s"] / 3600.0, np.zeros(len(free)), marker="|", color="tab:green")
        ax.set_xlabel("hour")
        ax.set_ylabel("cap (W) or locked clock (MHz); | released")
        ax.legend(fontsize=7)
    else:
        ax.text(0.5, 0.5, "no controller action", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"Controller actions ({m.get('controller_actions', 0)} over the verification runs; "
                 f"capped {m.get('capped_time_share', 0.0):.1%} of the time)", fontsize=9)
    # per-server power samples the plan was made from, scaled to the planned row
    ax = axes[1][0]
    smp = outcome.tables.get("samples")
    if smp is not None and len(smp):
        for row, g in smp.groupby("row", sort=True):
            plan = rows.get(row, {})
            n = plan.get("servers", 1)
            ax.hist(g["server_power_w"] * n / 1e3, bins=60, alpha=0.7, label=f"{row} x {n} servers")
            if sim is not None:
                b = dict(zip(sim.tree["node"], sim.tree["budget_w"])).get(row, math.nan)
                if math.isfinite(b):
                    ax.axvline(b / 1e3, color="k", lw=1.2)
                    if "t1" in plan:
                        ax.axvline(plan["t1"] * b / 1e3, color="tab:red", ls=":")
        ax.set_xlabel("row power if uncapped (kW)")
        ax.set_ylabel("samples")
        ax.legend(fontsize=7)
    ax.set_title("Uncapped row power at the planned size (samples of the nameplate row)", fontsize=9)
    # the figures in words
    ax = axes[1][1]
    ax.axis("off")
    lines = [f"status {outcome.status}, {'verified' if outcome.verified else 'NOT verified'}, "
             f"{len(outcome.rounds)} round(s)",
             f"extra servers {m.get('extra_servers_pct', math.nan):+.1f} %",
             f"breaker trips {trips}",
             f"capped time {m.get('capped_time_share', math.nan):.2%}",
             f"p99 TTFT change {m.get('p99_ttft_change_pct', math.nan):+.1f} %",
             f"p99 TPOT change {m.get('p99_tpot_change_pct', math.nan):+.1f} %",
             f"SLO attainment {m.get('slo_attainment', math.nan):.4f} "
             f"(nameplate row {m.get('baseline_slo_attainment', math.nan):.4f})",
             f"simulated days {m.get('days_simulated', 0.0):.2f}, verification seeds {m.get('seeds', [])}"]
    for r in outcome.rounds:
        lines.append(f"round {r['round']}: {r.get('servers')} "
                     + ("verified" if not r.get("failures") else "rejected: " + "; ".join(r["failures"])))
    ax.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", fontsize=8, family="monospace", wrap=True)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return [fig]
