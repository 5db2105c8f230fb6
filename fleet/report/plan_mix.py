"""Report page of the GPU mix planner: what to buy, the hourly replicas by type stacked against
demand, the Pareto front with its knee, the baselines and the verification rounds.  Reads a
:class:`~fleet.planning.PlanOutcome` (plain data) and nothing else of the planner."""

from __future__ import annotations

import pandas as pd
from matplotlib.figure import Figure


def tables(outcome) -> dict[str, pd.DataFrame]:
    """CSV tables: the mix, hourly replicas, bucket assignment, capacities, baselines, rounds, front."""
    out = {f"mix_{k}": v for k, v in outcome.tables.items() if isinstance(v, pd.DataFrame) and len(v)}
    if outcome.rounds:
        out["mix_rounds"] = pd.DataFrame([{k: (str(v) if isinstance(v, (list, dict)) else v) for k, v in r.items()}
                                          for r in outcome.rounds])
    m = outcome.metrics
    rows = []
    if "simulated" in m:
        rows.append(m["simulated"])
    for key in ("best_single", "as_written", "as_written_unplanned"):
        if key in m:
            rows.append({k: v for k, v in m[key].items() if k not in ("plan",)})
    if rows:
        out["mix_baselines"] = pd.DataFrame([{k: (str(v) if isinstance(v, dict) else v) for k, v in r.items()}
                                             for r in rows])
    return out


def figures(outcome, dpi: int = 110) -> list[Figure]:
    fig = Figure(figsize=(11, 8.5), dpi=dpi)
    axes = fig.subplots(2, 2)
    t = outcome.tables
    m = outcome.metrics
    # what to buy
    ax = axes[0][0]
    mix = t.get("mix")
    if mix is not None and len(mix):
        ax.barh(mix["pool"], mix["gpus"], color="tab:blue")
        for y, (g, p) in enumerate(zip(mix["gpus"], mix["price_usd_per_gpu_hour"])):
            ax.text(g, y, f" {g} GPUs, {p:.2f} USD/GPU-h", va="center", fontsize=8)
        ax.set_xlabel("GPUs")
    ax.set_title("What to buy or rent")
    # hourly replicas stacked against demand
    ax = axes[0][1]
    hourly, demand = t.get("hourly"), t.get("demand")
    if hourly is not None and len(hourly):
        col = "active_replicas" if "active_replicas" in hourly else "load_replicas"
        piv = hourly.pivot_table(index="hour", columns="pool", values=col, aggfunc="sum").fillna(0.0)
        ax.stackplot(piv.index, piv.T.values, labels=list(piv.columns), step="post", alpha=0.8)
        ax.set_ylabel("active replicas (the replica schedule)")
        ax.set_xlabel("hour")
        ax.legend(fontsize=7, loc="upper left")
        if demand is not None:
            ax2 = ax.twinx()
            ax2.plot(demand["hour"], demand["demand_rps"], color="k", lw=1.5, label="demand")
            ax2.set_ylabel("demand (req/s)")
    ax.set_title("Hourly replicas by type against demand")
    # Pareto front
    ax = axes[1][0]
    pf = t.get("pareto")
    if pf is not None and len(pf):
        a, b = m["pareto"]["objectives"]
        ax.plot(pf[a], pf[b], "o-")
        if m["pareto"].get("knee") is not None:
            k = m["pareto"]["knee"]
            ax.plot([pf[a].iloc[k]], [pf[b].iloc[k]], "r*", ms=14, label="knee")
            ax.legend(fontsize=8)
        col = f"marginal_{a}_per_{b}"
        for i in range(1, len(pf)):
            v = pf[col].iloc[i]
            if v is not None and pd.notna(v):
                ax.annotate(f"{v:.3g}", ((pf[a].iloc[i] + pf[a].iloc[i - 1]) / 2, (pf[b].iloc[i] + pf[b].iloc[i - 1]) / 2),
                            fontsize=7)
        ax.set_xlabel(a)
        ax.set_ylabel(b)
        ax.set_title(f"Pareto front ({a} vs {b}; labels: marginal {a} per {b})")
    else:
        ax.set_title("Pareto front (not requested)")
        ax.axis("off")
    # baselines and rounds as text
    ax = axes[1][1]
    ax.axis("off")
    lines = [outcome.describe()]
    sim = m.get("simulated")
    if sim:
        lines.append(f"plan: {sim['cost_usd']:.2f} USD, {sim['energy_kwh']:.1f} kWh, {sim['carbon_kgco2e']:.1f} kgCO2e, "
                     f"SLO {sim['slo_attainment']:.4f}, hours met {sim['hours_slo_met']:.0%}")
    bs = m.get("best_single")
    if bs:
        lines.append(f"best single ({bs['accelerator']}): {bs['cost_usd']:.2f} USD, {bs['energy_kwh']:.1f} kWh, "
                     f"{bs['carbon_kgco2e']:.1f} kgCO2e, SLO {bs['slo_attainment']:.4f}, hours met "
                     f"{bs['hours_slo_met']:.0%}, {'verified' if bs.get('verified') else 'NOT verified'} "
                     f"in {bs.get('rounds', 1)} round(s)")
        lines.append(f"savings: cost {m.get('cost_saving_pct', float('nan')):.1f}%, energy "
                     f"{m.get('energy_saving_pct', float('nan')):.1f}%, carbon {m.get('carbon_saving_pct', float('nan')):.1f}%")
    aw = m.get("as_written")
    if aw:
        lines.append(f"as written, operated hourly: {aw['cost_usd']:.2f} USD, {aw['energy_kwh']:.1f} kWh, "
                     f"SLO {aw['slo_attainment']:.4f}, hours met {aw['hours_slo_met']:.0%}")
    au = m.get("as_written_unplanned")
    if au:
        lines.append(f"as written, as it is: {au['cost_usd']:.2f} USD, {au['energy_kwh']:.1f} kWh, "
                     f"SLO {au['slo_attainment']:.4f}, hours met {au['hours_slo_met']:.0%}")
    for r in outcome.rounds:
        lines.append(f"round {r['round']}: {r.get('status')}, gpus {r.get('gpus')}, SLO "
                     f"{r.get('slo_attainment', float('nan')):.4f}, derated {len(r.get('derated') or [])}, "
                     f"failing {len(r.get('failing') or [])}")
    for n in outcome.notes[-2:]:
        lines.append("note: " + n[:110])
    ax.text(0, 1, "\n".join(lines), va="top", fontsize=7.5, family="monospace", wrap=True)
    ax.set_title("Baselines and verification rounds")
    fig.suptitle("GPU mix plan")
    fig.tight_layout()
    return [fig]
