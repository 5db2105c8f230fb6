"""The operate plan's report page: the caps, the active replicas by hour against the demand, the
solver's figures, the savings against the scenario as written, and every verification round.

Reads a :class:`fleet.planning.PlanOutcome` (plain results) and draws with matplotlib's
object-oriented API (``matplotlib.figure.Figure``), so it never touches a user's backend.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .figures import PAGE


def _pct(x) -> str:
    return "n/a" if x is None or not math.isfinite(float(x)) else f"{float(x):+.1f} %"


def _num(x, fmt: str = ".4g") -> str:
    return "n/a" if x is None or not math.isfinite(float(x)) else format(float(x), fmt)


def headline(outcome) -> list[tuple[str, str]]:
    """(label, value) lines that lead the report: decisions, then savings, then the solver."""
    m = outcome.metrics
    rows: list[tuple[str, str]] = []
    caps = [d for d in outcome.decisions if d["path"].endswith("power_cap_w")]
    for d in caps:
        pool = d["path"].split("[", 1)[1].split("]", 1)[0]
        was = "uncapped" if d.get("was") is None else f"{d['was']:g} W"
        rows.append((f"cap {pool}", f"{d['value']:g} W per GPU (was {was})"))
    for d in outcome.decisions:
        if d["path"].startswith("schedule["):
            v = list(d["value"])
            rows.append((f"active {d['path'][9:-1]}", f"{min(v)}-{max(v)} of {d['was']} replicas by hour "
                                                      f"(mean {np.mean(v):.1f})"))
    for key, label in (("energy", "energy saved"), ("cost", "energy cost saved"), ("carbon", "carbon saved")):
        if m.get(f"{key}_saving_pct") is not None:
            a, b, unit = m.get(f"planned_{key}"), m.get(f"baseline_{key}"), m.get(f"{key}_unit", "")
            if unit == "J" and a is not None and b is not None:
                a, b, unit = a / 3.6e6, b / 3.6e6, "kWh"
            elif unit == "gCO2e" and a is not None and b is not None:
                a, b, unit = a / 1e3, b / 1e3, "kgCO2e"
            rows.append((label, f"{_pct(m[f'{key}_saving_pct'])} ({_num(a)} planned vs {_num(b)} {unit} "
                                "as written, both simulated)"))
    if m.get("slo_attainment") is not None:
        rows.append(("SLO attainment", f"{100 * m['slo_attainment']:.2f} % planned, "
                                       f"{100 * m.get('baseline_slo_attainment', float('nan')):.2f} % as written"))
    s = outcome.solver
    rows.append(("solver", f"{s.get('solver', '?')} {s.get('status', '?')}, gap {100 * (s.get('gap') or 0):.3f} %, "
                           f"{s.get('solve_s', float('nan')):.2f} s; "
                           f"{'verified' if outcome.verified else 'NOT verified'} in {len(outcome.rounds)} round(s)"))
    return rows


def figures(outcome, dpi: int = 110) -> list:
    from matplotlib.figure import Figure

    fig = Figure(figsize=PAGE, dpi=dpi)
    fig.suptitle("Plan: power caps and active replicas by hour (operate)", fontsize=14, fontweight="bold",
                 x=0.04, ha="left", y=0.97)
    y = 0.91
    for label, value in headline(outcome):
        fig.text(0.04, y, label, fontsize=9)
        fig.text(0.20, y, value.replace("$", r"\$")[:95], fontsize=9, family="monospace")
        y -= 0.027
    sched = outcome.tables.get("schedule")
    ax = fig.add_axes((0.07, 0.30, 0.58, y - 0.36))
    if sched is not None and len(sched):
        for key, g in sched.groupby("group", sort=True):
            ax.step(g["hour"], g["active"], where="post", label=f"{key}: active replicas (cap {g['cap_w'].iloc[0]:g} W)")
        ax.set_xlabel("hour from the start")
        ax.set_ylabel("active replicas")
        ax.set_ylim(bottom=0)
        ax2 = ax.twinx()
        d = sched.groupby("hour", sort=True).agg(demand=("demand_rps", "first"), cap=("planned_capacity_rps", "sum"))
        ax2.plot(d.index, d["demand"], color="#444444", lw=1.5, label="demand (req/s)")
        ax2.plot(d.index, d["cap"], color="#999999", lw=1, ls="--", label="planned capacity (req/s)")
        ax2.set_ylabel("requests per second")
        ax2.set_ylim(bottom=0)
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = ax2.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
        ax.set_title("active replicas against demand", fontsize=10)
    # the verification rounds
    rounds = pd.DataFrame(outcome.rounds)
    fig.text(0.70, 0.86 if y > 0.7 else y, "verification rounds", fontsize=11, fontweight="bold")
    yy = (0.83 if y > 0.7 else y - 0.03)
    for r in outcome.rounds:
        line = (f"{r['round']}: {r['status']}, {r['objective']:.4g} {r.get('objective_unit', '')}, "
                f"gap {100 * (r.get('gap') or 0):.2f} %")
        fig.text(0.70, yy, line, fontsize=8, family="monospace")
        yy -= 0.022
        caps = ", ".join(f"{k} {v:g} W" for k, v in r.get("caps", {}).items())
        fig.text(0.71, yy, f"caps {caps}"[:52], fontsize=8, family="monospace")
        yy -= 0.022
        fig.text(0.71, yy, f"SLO {100 * r['slo_attainment']:.2f} %, worst hour "
                           f"{100 * r['min_hourly_attainment']:.1f} %", fontsize=8, family="monospace")
        yy -= 0.022
        ok = r["hours_below_target"] == 0 and r["budget_excess_hours"] == 0
        fig.text(0.71, yy, "passed" if ok else f"{r['hours_below_target']} model-hours below target, "
                                               f"{r['budget_excess_hours']} over budget: derated"[:52],
                 fontsize=8, family="monospace", color="#1a7f37" if ok else "#b42318")
        yy -= 0.03
    del rounds
    # notes
    yn = 0.22
    fig.text(0.04, yn, "how the plan was made", fontsize=11, fontweight="bold")
    yn -= 0.026
    for note in outcome.notes[:7]:
        fig.text(0.05, yn, note.replace("$", r"\$")[:170], fontsize=7.5)
        yn -= 0.022
    return [fig]


def tables(outcome) -> dict[str, pd.DataFrame]:
    """CSV tables of the page: the schedule (per group and hour) and the capacities per cap."""
    out = {f"plan_operate_{k}": v for k, v in outcome.tables.items()}
    out["plan_operate_rounds"] = pd.DataFrame([{k: v for k, v in r.items() if not isinstance(v, (dict, list))}
                                               for r in outcome.rounds])
    return out
