"""The report's figures: for each, a pure function from results to the data it plots
(``*_data``, tested without images) and a drawing function that turns that data into a
matplotlib Figure (``draw_*``).  Units are on every axis; titles and legends on every plot.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from .data import RunResult


def _colors() -> list[str]:
    """The colour cycle of the current matplotlib style."""
    import matplotlib

    return matplotlib.rcParams["axes.prop_cycle"].by_key()["color"]

PAGE = (11.69, 8.27)        # A4 landscape, inches
MAX_LINES = 8               # more nodes than this at one level: show the top ones by peak power
COMPONENTS = ("compute", "memory", "interconnect", "static")
COMPONENT_COLORS = {"compute": "#4C72B0", "memory": "#DD8452", "interconnect": "#55A868",
                    "static": "#8C8C8C"}


# ------------------------------------------------------------------------------ formatting
_PREFIX = [(1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k"), (1.0, ""), (1e-3, "m"), (1e-6, "µ")]


def fmt_si(value: float, unit: str, digits: int = 3) -> str:
    """``fmt_si(12345, 'W') == '12.3 kW'``; energy in J is also shown in kWh/MWh by
    :func:`fmt_energy`.  NaN prints as 'n/a'."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    v = float(value)
    if v == 0:
        return f"0 {unit}"
    for f, p in _PREFIX:
        if abs(v) >= f:
            return f"{v / f:.{digits}g} {p}{unit}"
    return f"{v:.{digits}g} {unit}"


def fmt_energy(j: float) -> str:
    if j is None or not math.isfinite(j):
        return "n/a"
    kwh = j / 3.6e6
    if abs(kwh) >= 1000:
        return f"{kwh / 1000:.3g} MWh"
    if abs(kwh) >= 0.1:
        return f"{kwh:.3g} kWh"
    return fmt_si(j, "J")


def fmt_mass_g(g: float) -> str:
    if g is None or not math.isfinite(g):
        return "n/a"
    if abs(g) >= 1e6:
        return f"{g / 1e6:.3g} tCO2e"
    if abs(g) >= 1e3:
        return f"{g / 1e3:.3g} kgCO2e"
    return f"{g:.3g} gCO2e"


def fmt_usd(x: float) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    if abs(x) >= 100:
        return f"${x:,.0f}"
    if abs(x) >= 0.01:
        return f"${x:,.2f}"
    return f"${x:.3g}"


def fmt_metric(value: float, unit: str) -> str:
    """A metric for people: energy in kWh, carbon in kg/t, money in $, the rest with SI prefixes."""
    if unit == "J":
        return fmt_energy(value)
    if unit == "gCO2e":
        return fmt_mass_g(value)
    if unit == "USD":
        return fmt_usd(value)
    if unit == "1":
        return "n/a" if not math.isfinite(value) else f"{value:.3g}"
    if unit == "s" and math.isfinite(value) and value >= 3600:
        return f"{value / 3600:.3g} h"
    if unit in ("W", "s") or unit.startswith("J/"):
        if unit.startswith("J/") and math.isfinite(value) and value >= 3.6e5:
            return f"{value / 3.6e6:.3g} kWh/{unit[2:]}"
        return fmt_si(value, unit)
    if not math.isfinite(value):
        return "n/a"
    if unit in ("requests", "tokens", "GPUs", "servers", "nodes", "jobs"):
        return f"{value:,.0f} {unit}"
    return f"{value:.4g} {unit}"


def _time_axis(t_s: np.ndarray, horizon_s: float) -> tuple[np.ndarray, str]:
    if horizon_s > 3 * 3600:
        return t_s / 3600.0, "time since start (h)"
    if horizon_s > 180:
        return t_s / 60.0, "time since start (min)"
    return t_s, "time since start (s)"


def _plain_log_ticks(axis) -> None:
    """Log axis ticks at 1, 2, 5 x 10^k written as plain numbers; no minor labels (no overlap)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    lo, hi = axis.get_view_interval()
    decades = math.log10(hi / lo) if lo > 0 and hi > lo else 1.0
    subs = (1.0, 2.0, 5.0) if decades <= 2.2 else (1.0,)
    axis.set_major_locator(LogLocator(base=10, subs=subs))
    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


# ------------------------------------------------------------------------------ 1. summary
def summary_data(r: RunResult) -> list[tuple[str, list[tuple[str, str]]]]:
    """Sections of (label, formatted value) for the one-page summary."""
    m = r.accounts.metrics

    def g(name: str) -> str:
        return fmt_metric(m[name].value, m[name].unit) if name in m else "n/a"

    pools = r.accounts.pools
    fleet = [(f"{p.pool} ({p.role})", f"{p.gpus} x {p.accelerator}, {p.servers} server{'s' if p.servers != 1 else ''}"
              + (f", cap {p.power_cap_w:.0f} W" if math.isfinite(p.power_cap_w) else ", uncapped")
              + (f"; {str(p.models).replace(';', ', ')}" if str(p.models) not in ("", "nan", "None") else ""))
             for p in pools.itertuples()]
    fleet.append(("horizon", g("horizon") + f" from {r.meta.get('start_utc', '?')}"))
    energy = [("IT energy", g("energy.it")), ("  of which GPUs", g("energy.gpu")),
              ("  of which server overhead", g("energy.server_overhead")),
              ("facility energy (x PUE)", g("energy.facility")), ("effective PUE", g("pue.effective")),
              ("mean / peak IT power", f"{g('power.it_mean')} / {g('power.it_peak')}"),
              ("IT energy per 1k output tokens", g("per_1k_tokens.it_energy"))]
    carbon = [("operational", g("carbon.operational")), ("embodied (amortised)", g("carbon.embodied")),
              ("total", g("carbon.total")),
              ("grid intensity (energy-weighted)", g("carbon.intensity_mean")
               + f" [{r.meta.get('carbon_signal', 'average')}]"),
              ("per 1k output tokens", g("per_1k_tokens.carbon"))]
    cost = [("energy", g("cost.energy")), ("hardware", g("cost.hardware")), ("total", g("cost.total")),
            ("per 1k output tokens", g("per_1k_tokens.cost"))]
    slo = [("requests done / dropped / running",
            f"{m['requests.completed'].value:,.0f} / "
            f"{m['requests.dropped'].value:,.0f} / {m['requests.running_at_horizon'].value:,.0f}"
            if "requests.total" in m else "n/a"),
           ("SLO attainment", f"{100 * m['slo.attainment'].value:.1f} %"
            if "slo.attainment" in m and math.isfinite(m["slo.attainment"].value) else "n/a"),
           ("goodput", g("slo.goodput")),
           ("TTFT p50 / p99", f"{g('latency.ttft_p50')} / {g('latency.ttft_p99')}"),
           ("TPOT p50 / p99", f"{g('latency.tpot_p50')} / {g('latency.tpot_p99')}")]
    if "training.jobs_completed" in m:
        slo.append(("training jobs completed", g("training.jobs_completed")))
    peaks = []
    nodes = r.accounts.nodes
    if len(nodes):
        b = nodes[np.isfinite(nodes["budget_w"].astype(float))].sort_values("peak_to_budget", ascending=False)
        for n in b.head(6).itertuples():
            flag = "  OVER" if n.peak_to_budget > 1 else ""
            peaks.append((f"{n.node} ({n.level})",
                          f"peak {fmt_si(n.peak_w, 'W')} of {fmt_si(n.budget_w, 'W')} "
                          f"({100 * n.peak_to_budget:.0f} %){flag}"))
    if not peaks:
        peaks.append(("budgets", "no power budgets in the scenario"))
    by_model = []
    for mm in r.accounts.models.head(6).itertuples():
        att = f"{100 * mm.slo_attainment:.1f} %" if math.isfinite(mm.slo_attainment) else "n/a"
        by_model.append((str(mm.model), f"{fmt_si(mm.it_energy_j_per_1k_tokens, 'J')} · "
                         f"{mm.carbon_g_per_1k_tokens:.3g} g · {fmt_usd(mm.cost_usd_per_1k_tokens)} · SLO {att}"))
    if not by_model:
        by_model.append(("models", "no inference demand"))
    return [("Fleet", fleet), ("Energy", energy), ("Carbon", carbon), ("Cost", cost),
            ("Service", slo), ("Power peaks against budgets", peaks),
            ("By model, per 1k output tokens", by_model)]


def draw_summary(r: RunResult):
    from matplotlib.figure import Figure

    fig = Figure(figsize=PAGE)
    fig.suptitle(r.title, fontsize=16, fontweight="bold", x=0.04, ha="left", y=0.97)
    sub = (f"scenario {r.name}  ·  hash {r.scenario_hash}  ·  seed {r.seed}  ·  fleet "
           f"{r.meta.get('version', '?')}  ·  commit {(r.meta.get('git_commit') or 'n/a')[:10]}")
    fig.text(0.04, 0.925, sub, fontsize=9, color="#555555")
    sections = summary_data(r)
    y = 0.87
    lead = plan_lead(r)
    if lead:                                       # the decisions and their savings lead the page
        fig.text(0.04, y, "Plan: what was decided, and what it saves against the scenario as written",
                 fontsize=12, fontweight="bold", color="#0b5394")
        y -= 0.03
        for label, value in lead:
            fig.text(0.05, y, _clip(label, 30), fontsize=9)
            fig.text(0.20, y, _esc(_clip(value, 130)), fontsize=9, family="monospace")
            y -= 0.024
        y -= 0.012
    title, rows = sections[0]                      # the fleet: full width
    fig.text(0.04, y, title, fontsize=12, fontweight="bold")
    y -= 0.032
    for label, value in rows[:8]:
        fig.text(0.05, y, _clip(label, 40), fontsize=9)
        fig.text(0.25, y, _clip(value, 120), fontsize=9, family="monospace")
        y -= 0.026
    if len(rows) > 8:
        fig.text(0.05, y, f"... {len(rows) - 8} more pools (see pools.csv)", fontsize=9)
        y -= 0.026
    top = y - 0.02
    step = 0.026 if not lead else 0.0215
    cols = [sections[1:4], sections[4:]]
    for ci, col in enumerate(cols):
        x0 = 0.04 + ci * 0.49
        y = top
        for title, rows in col:
            fig.text(x0, y, title, fontsize=12, fontweight="bold")
            y -= 0.032
            for label, value in rows:
                fig.text(x0 + 0.01, y, _clip(label, 30), fontsize=9)
                # 38 monospace characters at 9 pt from x0 + 0.21 end inside the A4 page (no cut-off)
                fig.text(x0 + 0.21, y, _esc(_clip(value, 38)), fontsize=9, family="monospace")
                y -= step
            y -= 0.02 if not lead else 0.01
    return fig


def plan_lead(r: RunResult) -> list[tuple[str, str]]:
    """The summary page's first lines when the run was planned: per planner, its decisions in
    brief, the savings against the scenario as written and the solver's verdict."""
    out: list[tuple[str, str]] = []
    for o in r.plans:
        m = o.metrics
        decided = "; ".join(f"{d['path']} = {d['value'] if not isinstance(d['value'], list) else _span(d['value'])}"
                            for d in o.decisions[:4])
        out.append((f"{o.kind}: decisions", decided or "none"))
        sav = [f"{label} {m[k]:+.1f} %" for k, label in (("energy_saving_pct", "energy"),
                                                        ("cost_saving_pct", "energy cost"),
                                                        ("carbon_saving_pct", "carbon"))
               if m.get(k) is not None and math.isfinite(m[k])]
        if sav:
            out.append((f"{o.kind}: saved", ", ".join(sav) + " (both simulated)"))
        slo = m.get("slo_attainment")
        out.append((f"{o.kind}: verdict",
                    f"{o.solver.get('solver', '?')} {o.status}, gap {100 * float(o.solver.get('gap') or 0):.2f} %; "
                    + ("verified" if o.verified else "NOT verified") + f" in simulation after {len(o.rounds)} round(s)"
                    + (f"; SLO attainment {100 * slo:.2f} %" if slo is not None and math.isfinite(slo) else "")))
    return out


def _span(v: list) -> str:
    return f"{min(v)}..{max(v)} by hour" if v else "[]"


def _empty_page(title: str, message: str):
    """A page that says plainly why there is nothing to plot."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=PAGE)
    fig.suptitle(title, fontsize=14, fontweight="bold")
    fig.text(0.5, 0.55, message, ha="center", va="center", fontsize=12, color="#444444", wrap=True)
    return fig


def _esc(s: str) -> str:
    """Text drawn as-is: a '$' (prices) must not start matplotlib mathtext."""
    return str(s).replace("$", r"\$")


def _clip(s: str, n: int) -> str:
    s = str(s)
    return s if len(s) <= n else s[: n - 1] + "…"


# ------------------------------------------------------------------------------ 2. fleet & utilisation
def fleet_data(r: RunResult) -> pd.DataFrame:
    """Per pool: GPUs, busy fraction (0-1), mean batch, mean IT power (W) and energy share."""
    p = r.accounts.pools
    out = p[["pool", "role", "accelerator", "gpus", "servers", "busy_fraction", "mean_batch",
             "mean_it_power_w", "it_energy_j"]].copy()
    tot = out["it_energy_j"].sum()
    out["energy_share"] = out["it_energy_j"] / tot if tot else np.nan
    return out.reset_index(drop=True)


def fleet_table_rows(r: RunResult) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the fleet table (one row per pool, formatted for people)."""
    p = r.accounts.pools
    d = fleet_data(r)
    head = ["pool", "role", "accelerator", "GPUs", "servers", "cap (W/GPU)", "models", "busy (%)",
            "mean batch", "mean IT power", "IT energy", "share (%)"]
    rows = []
    for a, b in zip(p.itertuples(), d.itertuples()):
        rows.append([a.pool, a.role, a.accelerator, f"{a.gpus}", f"{a.servers}",
                     f"{a.power_cap_w:.0f}" if math.isfinite(a.power_cap_w) else "uncapped",
                     _clip(str(a.models).replace(";", ", "), 34) or "-", f"{100 * b.busy_fraction:.1f}",
                     f"{b.mean_batch:.1f}" if math.isfinite(b.mean_batch) else "-",
                     fmt_si(b.mean_it_power_w, "W"), fmt_energy(b.it_energy_j),
                     f"{100 * b.energy_share:.1f}" if math.isfinite(b.energy_share) else "-"])
    return head, rows


def draw_fleet(r: RunResult):
    from matplotlib.figure import Figure

    d = fleet_data(r)
    fig = Figure(figsize=PAGE)
    fig.suptitle("Fleet and utilisation by pool", fontsize=14, fontweight="bold")
    n_rows = min(len(r.accounts.pools), 10)
    gs = fig.add_gridspec(2, 3, height_ratios=[0.25 + 0.12 * n_rows, 2.6], hspace=0.3, top=0.9, bottom=0.1,
                          left=0.07, right=0.97, wspace=0.3)
    tab = fig.add_subplot(gs[0, :])
    tab.axis("off")
    head, rows = fleet_table_rows(r)
    shown = rows[:10]
    t = tab.table(cellText=shown, colLabels=head, loc="upper center", cellLoc="center")
    t.auto_set_font_size(False)
    t.set_fontsize(8)
    t.auto_set_column_width(col=list(range(len(head))))
    t.scale(1, 1.3)
    for (i, _j), cell in t.get_celld().items():
        if i == 0:
            cell.set_text_props(fontweight="bold")
            cell.set_facecolor("#EEEEEE")
    if len(rows) > 10:
        tab.set_title(f"first 10 of {len(rows)} pools (all in pools.csv)", fontsize=8, loc="left")
    axes = [fig.add_subplot(gs[1, k]) for k in range(3)]
    x = np.arange(len(d))
    labels = [f"{a}\n{b}\n{g} GPUs" for a, b, g in zip(d["pool"], d["accelerator"], d["gpus"])]
    specs = [
        (100 * d["busy_fraction"].astype(float), "#4C72B0", "busy share of replica-time (%)",
         "Utilisation (replica-time not idle)", "{:.0f} %"),
        (d["mean_it_power_w"].astype(float) / 1e3, "#DD8452", "mean IT power (kW)",
         "Mean IT power (GPUs + server overhead)", "{:.2g} kW"),
        (d["mean_batch"].astype(float), "#55A868", "mean running batch (requests)",
         "Mean running batch while busy (serving)", "{:.1f}"),
    ]
    for ax, (v, color, ylab, title, fmt) in zip(axes, specs):
        vv = np.nan_to_num(v.to_numpy())
        ax.bar(x, vv, color=color, width=0.6)
        for xi, val in zip(x, v):
            ax.annotate("n/a" if not math.isfinite(val) else fmt.format(val), (xi, 0 if not math.isfinite(val) else val),
                        xytext=(0, 3), textcoords="offset points", ha="center", fontsize=8)
        ax.set_ylabel(ylab)
        ax.set_title(title, fontsize=10)
        ax.set_xticks(x, labels, fontsize=8)
        ax.grid(axis="y", alpha=0.3)
        top = float(np.nanmax(vv)) if len(vv) else 1.0
        ax.set_ylim(0, max(top * 1.18, 1e-9))
    axes[0].set_ylim(0, 110)
    return fig


# ------------------------------------------------------------------------------ 3. power over time
@dataclass
class LevelSeries:
    level: str
    nodes: list[str]
    time_s: np.ndarray
    power_w: dict[str, np.ndarray]
    budget_w: dict[str, float]
    hidden: int = 0             # nodes not drawn (only the top MAX_LINES by peak are)


def power_levels_data(r: RunResult, levels=("site", "row", "rack", "pool")) -> list[LevelSeries]:
    """Per tree level, the power time series of (up to MAX_LINES) nodes and their budgets."""
    p = r.sim.power
    tree = r.sim.tree.set_index("node") if len(r.sim.tree) else pd.DataFrame(columns=["budget_w"])
    out = []
    for level in levels:
        d = p[p["level"] == level]
        if not len(d):
            continue
        wide = d.pivot_table(index="time_s", columns="node", values="power_w", aggfunc="sum", observed=True).sort_index()
        peaks = wide.max().sort_values(ascending=False)
        keep = list(peaks.index[:MAX_LINES])
        budgets = {n: float(tree["budget_w"].get(n, np.nan)) if n in tree.index else float("nan")
                   for n in keep}
        out.append(LevelSeries(level, keep, wide.index.to_numpy(float),
                               {n: wide[n].to_numpy(float) for n in keep}, budgets,
                               hidden=max(0, len(peaks) - len(keep))))
    return out


def draw_power_levels(r: RunResult):
    from matplotlib.figure import Figure

    data = power_levels_data(r)
    n = max(1, len(data))
    fig = Figure(figsize=PAGE)
    axes = fig.subplots(n, 1, sharex=True, squeeze=False)
    fig.suptitle("Power over time at each level of the tree, against its budget", fontsize=14,
                 fontweight="bold")
    horizon = float(r.meta.get("horizon_s") or (data[0].time_s.max() if data else 1.0))
    xlabel = "time"
    colors = _colors()
    for ax, ls in zip(axes[:, 0], data):
        x, xlabel = _time_axis(ls.time_s, horizon)
        for i, node in enumerate(ls.nodes):
            c = colors[i % len(colors)]
            ax.step(x, ls.power_w[node] / 1e3, where="post", lw=0.9, color=c, label=node)
            b = ls.budget_w.get(node, float("nan"))
            if math.isfinite(b):
                ax.axhline(b / 1e3, color=c, ls="--", lw=1.0, label=f"{node} budget")
                over = ls.power_w[node] > b
                if over.any():
                    ax.fill_between(x, b / 1e3, ls.power_w[node] / 1e3, where=over, step="post",
                                    color="red", alpha=0.25, lw=0, label=f"{node} over budget")
        title = f"{ls.level} level"
        if ls.hidden:
            title += f" (top {len(ls.nodes)} of {len(ls.nodes) + ls.hidden} nodes by peak)"
        ax.set_title(title, fontsize=10, loc="left")
        ax.set_ylabel("power (kW)")
        ax.grid(alpha=0.3)
        ax.set_ylim(bottom=0)
        ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), fontsize=7, frameon=False)
    axes[-1, 0].set_xlabel(xlabel)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


# ------------------------------------------------------------------------------ 4. power CDF per row
def power_cdf_data(r: RunResult, level: str = "row") -> dict[str, tuple[np.ndarray, np.ndarray, float]]:
    """Per row: (sorted power W, cumulative probability, budget W) of its telemetry samples."""
    p = r.sim.power
    d = p[p["level"] == level]
    if not len(d):   # no rows: the site
        d = p[p["level"] == "site"]
    tree = r.sim.tree.set_index("node") if len(r.sim.tree) else None
    out = {}
    for node, g in d.groupby("node", observed=True):
        v = np.sort(g["power_w"].to_numpy(float))
        prob = np.arange(1, len(v) + 1) / len(v)
        b = float(tree.loc[node, "budget_w"]) if tree is not None and node in tree.index else float("nan")
        out[str(node)] = (v, prob, b)
    return out


def draw_power_cdf(r: RunResult):
    from matplotlib.figure import Figure

    data = power_cdf_data(r)
    fig = Figure(figsize=PAGE)
    ax = fig.subplots()
    fig.suptitle("Distribution of power per row (CDF of telemetry samples)", fontsize=14, fontweight="bold")
    colors = _colors()
    for i, (node, (v, prob, b)) in enumerate(data.items()):
        c = colors[i % len(colors)]
        ax.step(v / 1e3, prob, where="post", color=c, label=f"{node}  (p99 {fmt_si(np.percentile(v, 99), 'W')})")
        if math.isfinite(b):
            ax.axvline(b / 1e3, color=c, ls="--", lw=1, label=f"{node} budget {fmt_si(b, 'W')}")
    ax.set_xlabel("power (kW)")
    ax.set_ylabel("fraction of time at or below (–)")
    ax.set_ylim(0, 1.02)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


# ------------------------------------------------------------------------------ 5. latency CDFs
LATENCIES = (("ttft_s", "time to first token"), ("tpot_s", "time per output token"),
             ("e2e_s", "end-to-end latency"))


def latency_cdf_data(r: RunResult) -> dict[str, dict[str, tuple[np.ndarray, float]]]:
    """{metric: {model: (sorted latencies of completed requests in s, SLO in s or NaN)}}."""
    req = r.sim.requests
    out: dict[str, dict[str, tuple[np.ndarray, float]]] = {}
    if not len(req):
        return out
    done = req[req["status"] == "completed"]
    for col, _ in LATENCIES:
        per = {}
        for model, g in done.groupby("model", observed=True):
            v = np.sort(g[col].to_numpy(float))
            v = v[np.isfinite(v)]
            slo = (r.slo.get(str(model)) or {}).get(col)
            per[str(model)] = (v, float(slo) if slo is not None else float("nan"))
        out[col] = per
    return out


def draw_latency_cdf(r: RunResult):
    from matplotlib.figure import Figure

    data = latency_cdf_data(r)
    title = "Latency of completed requests (CDF) against the SLO"
    if not any(len(v) for per in data.values() for v, _ in per.values()):
        return _empty_page(title, "No completed inference requests in this scenario.")
    fig = Figure(figsize=PAGE)
    axes = fig.subplots(1, 3)
    fig.suptitle(title, fontsize=14, fontweight="bold")
    colors = _colors()
    for ax, (col, label) in zip(axes, LATENCIES):
        per = data.get(col, {})
        for i, (model, (v, slo)) in enumerate(per.items()):
            c = colors[i % len(colors)]
            if len(v):
                ax.step(v, np.arange(1, len(v) + 1) / len(v), where="post", color=c, label=model)
            if math.isfinite(slo):
                share = float(np.mean(v <= slo)) if len(v) else float("nan")
                ax.axvline(slo, color=c, ls="--", lw=1,
                           label=f"{model} SLO {fmt_si(slo, 's')} ({100 * share:.0f} % met)")
        ax.set_xscale("log")
        _plain_log_ticks(ax.xaxis)
        ax.set_xlabel(f"{label} (s, log scale)")
        ax.set_ylabel("fraction of requests (–)")
        ax.set_title(label)
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3, which="both")
        if per:
            ax.legend(loc="lower right", fontsize=7)
        else:
            ax.text(0.5, 0.5, "no completed requests", ha="center", transform=ax.transAxes)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


# ------------------------------------------------------------------------------ 6. energy per token
def energy_per_token_data(r: RunResult) -> pd.DataFrame:
    """Per serving pool (and model): modelled breakdown (J per output token by component), the
    simulated GPU energy per output token, the facility energy per token from the accounts, and the
    physical lower bound with the gap (ratio) to the simulated figure."""
    acc = r.accounts.pools
    serving = acc[acc["role"] == "serving"]
    rows = []
    br = r.analysis.breakdown
    lb = r.analysis.lower_bound
    for p in serving.itertuples():
        out_tok = float(p.output_tokens)
        sim_j = p.gpu_energy_j / out_tok if out_tok > 0 else float("nan")
        fac_j = p.facility_energy_j / out_tok if out_tok > 0 else float("nan")
        b = br[br["pool"] == p.pool] if len(br) else br
        row = {"pool": p.pool, "accelerator": p.accelerator, "simulated_gpu_j": sim_j,
               "facility_j": fac_j}
        for c in COMPONENTS:
            row[f"{c}_j"] = float(b[f"{c}_j"].mean()) if len(b) else float("nan")
        row["model_j"] = float(b["model_j"].mean()) if len(b) else float("nan")
        lbj = lb[lb["pool"] == p.pool]["lower_bound_j"] if len(lb) else pd.Series(dtype=float)
        row["lower_bound_j"] = float(lbj.mean()) if len(lbj) else float("nan")
        row["gap_ratio"] = sim_j / row["lower_bound_j"] if row["lower_bound_j"] > 0 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def draw_energy_per_token(r: RunResult):
    from matplotlib.figure import Figure

    d = energy_per_token_data(r)
    title = "Energy per output token by pool: breakdown and the gap to the physical lower bound"
    if not len(d):
        return _empty_page(title, "No serving pool in this scenario: energy per token applies to serving.\n"
                                  "Training energy is in pools.csv and jobs.csv.")
    fig = Figure(figsize=PAGE)
    (ax, ax2) = fig.subplots(1, 2, gridspec_kw={"width_ratios": [3, 2]})
    fig.suptitle(title, fontsize=13, fontweight="bold")
    x = np.arange(len(d))
    bottom = np.zeros(len(d))
    for c in COMPONENTS:
        v = np.nan_to_num(d[f"{c}_j"].to_numpy(float))
        ax.bar(x, v, bottom=bottom, color=COMPONENT_COLORS[c], width=0.55,
               label=f"{c} (energy model, steady state)")
        bottom += v
    for xi, tot in zip(x, bottom):
        if tot > 0:
            ax.annotate(f"model: {tot:.3g} J", (xi + 0.29, tot), xytext=(3, 0), textcoords="offset points",
                        ha="left", va="center", fontsize=8)
    ax.plot(x, d["simulated_gpu_j"], "kD", ms=8, label="simulated GPU energy / output tokens")
    ax.plot(x, d["facility_j"], "r^", ms=8, label="facility energy (IT x PUE) / output tokens")
    ax.set_xticks(x, [f"{p}\n{a}" for p, a in zip(d["pool"], d["accelerator"])], fontsize=9)
    ax.set_ylabel("energy per output token (J/token)")
    ax.set_title("Breakdown at the simulated batch (prefill included)", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8, loc="upper left")
    ax.set_ylim(0, max(np.nanmax(np.r_[bottom, d["simulated_gpu_j"], d["facility_j"]]) * 1.35, 1e-9))
    ax.set_xlim(-0.6, len(d) - 0.1)          # room for the 'model: x J' label of the last bar
    # lower bound, log scale
    lb = d["lower_bound_j"].to_numpy(float)
    sim = d["simulated_gpu_j"].to_numpy(float)
    ax2.semilogy(x, sim, "kD", ms=8, label="simulated GPU J/token")
    if np.isfinite(lb).any():
        ax2.semilogy(x, lb, "gv", ms=9, label="physical lower bound J/token")
        for xi, s, low in zip(x, sim, lb):
            if math.isfinite(s) and math.isfinite(low) and low > 0:
                ax2.vlines(xi, low, s, color="#999999", lw=1)
                ratio = s / low
                txt = f"{ratio:,.0f}x above" if ratio < 1e6 else f"{ratio:.1e}x above"
                ax2.annotate(txt, (xi, math.sqrt(s * low)), xytext=(6, 0),
                             textcoords="offset points", fontsize=8, va="center", rotation=90)
    else:
        ax2.text(0.5, 0.5, "lower bound not available\n" + "\n".join(r.analysis.notes[:2]),
                 ha="center", va="center", transform=ax2.transAxes, fontsize=8, wrap=True)
    ax2.set_xticks(x, list(d["pool"]), fontsize=9)
    ax2.tick_params(axis="x", pad=2)
    ax2.set_xlim(-0.6, len(d) - 0.4)
    ax2.set_ylabel("energy per output token (J/token, log scale)")
    ax2.set_title("Gap to the physical lower bound", fontsize=10)
    ax2.grid(alpha=0.3, which="both")
    ax2.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=2, frameon=False)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


# ------------------------------------------------------------------------------ 7. carbon by hour
def carbon_hourly_data(r: RunResult) -> pd.DataFrame:
    """Per UTC hour: facility energy (kWh), operational carbon (g), grid intensity (g/kWh), price."""
    h = r.accounts.hourly
    return pd.DataFrame({"hour_utc": h["hour_utc"], "facility_kwh": h["facility_energy_j"] / 3.6e6,
                         "carbon_g": h["operational_carbon_g"],
                         "intensity_g_per_kwh": h["carbon_intensity_g_per_kwh"],
                         "price_usd_per_mwh": h["price_usd_per_mwh"]})


def draw_carbon_hourly(r: RunResult):
    import matplotlib.dates as mdates
    from matplotlib.figure import Figure

    d = carbon_hourly_data(r)
    title = "Operational carbon by hour with the grid carbon intensity"
    if not len(d):
        return _empty_page(title, "No energy was recorded, so there is no operational carbon.")
    fig = Figure(figsize=PAGE)
    (ax, axp) = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    fig.suptitle(title, fontsize=14, fontweight="bold")
    t = pd.DatetimeIndex(d["hour_utc"]).tz_convert("UTC").tz_localize(None)
    width = 1 / 24 * 0.85
    ax.bar(t, d["carbon_g"] / 1e3, width=width, align="edge", color="#8C564B",
           label="operational carbon (kgCO2e per hour)")
    ax.set_ylabel("operational carbon (kgCO2e/h)")
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    edges = t.append(pd.DatetimeIndex([t[-1] + pd.Timedelta(hours=1)]))
    ax2.stairs(d["intensity_g_per_kwh"].to_numpy(float), edges, color="#2CA02C", lw=1.5, baseline=None,
               label=f"grid intensity ({r.meta.get('carbon_signal', 'average')}, gCO2e/kWh)")
    ax2.set_ylabel("grid carbon intensity (gCO2e/kWh)")
    ax2.set_ylim(bottom=0)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = ax2.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    axp.bar(t, d["facility_kwh"], width=width, align="edge", color="#1F77B4",
            label="facility energy (kWh per hour)")
    axp.set_ylabel("facility energy (kWh/h)")
    axp.grid(alpha=0.3)
    axq = axp.twinx()
    axq.stairs(d["price_usd_per_mwh"].to_numpy(float), edges, color="#FF7F0E", lw=1.5, baseline=None,
               label="electricity price (USD/MWh)")
    axq.set_ylabel("price (USD/MWh)")
    h1, l1 = axp.get_legend_handles_labels()
    h2, l2 = axq.get_legend_handles_labels()
    axp.legend(h1 + h2, l1 + l2, loc="upper left", fontsize=8)
    axp.set_xlabel("hour (UTC)")
    loc = mdates.AutoDateLocator(minticks=4, maxticks=10)
    axp.xaxis.set_major_locator(loc)
    axp.xaxis.set_major_formatter(mdates.ConciseDateFormatter(loc))
    fig.tight_layout(rect=(0, 0, 1, 0.95))
    return fig


# ------------------------------------------------------------------------------ 8. frontier
def frontier_data(r: RunResult) -> dict[str, pd.DataFrame]:
    """Per pool (and model): its operating points across power caps, sorted by cap."""
    f = r.analysis.frontier
    out: dict[str, pd.DataFrame] = {}
    if not len(f):
        return out
    for (pool, model), g in f.groupby(["pool", "model"], sort=False):
        out[f"{pool} · {model}"] = g.sort_values("power_cap_w").reset_index(drop=True)
    return out


def frontier_labels(g: pd.DataFrame, rel: float = 2e-3, span: tuple[float, float] | None = None,
                    frac: float = 0.015) -> list[tuple[float, float, str]]:
    """One label per visually distinct operating point: caps whose points coincide (the GPU never
    reaches them at this batch) or lie within ``frac`` of the plotted ``span`` (x range in s,
    y range in J) of the previous label share one label 'lo-hi W'."""
    out: list[tuple[float, float, list[float]]] = []
    for row in g.sort_values("power_cap_w").itertuples():
        if out:
            px, py = out[-1][0], out[-1][1]
            same = abs(row.itl_s - px) <= rel * px and abs(row.j_per_token - py) <= rel * py
            if span is not None:
                same = same or (abs(row.itl_s - px) <= frac * span[0] and abs(row.j_per_token - py) <= frac * span[1])
        else:
            same = False
        if same:
            out[-1][2].append(row.power_cap_w)
        else:
            out.append((row.itl_s, row.j_per_token, [row.power_cap_w]))
    return [(x, y, f"{caps[0]:.0f} W" if len(caps) == 1 else f"{caps[0]:.0f}-{caps[-1]:.0f} W")
            for x, y, caps in out]


def draw_frontier(r: RunResult):
    from matplotlib.figure import Figure

    data = frontier_data(r)
    title = "Time-energy frontier of each pool: energy per token against latency across power caps"
    if not data:
        return _empty_page(title, "No serving pool with an energy model to draw.\n"
                           + "\n".join(r.analysis.notes[:3]))
    fig = Figure(figsize=PAGE)
    ax = fig.subplots()
    fig.suptitle(title, fontsize=13, fontweight="bold")
    colors = _colors()
    span = (1.0, 1.0)
    if data:
        allf = pd.concat(list(data.values()))
        span = (float(np.ptp(allf["itl_s"])) or 1.0, float(np.ptp(allf["j_per_token"])) or 1.0)
    for i, (key, g) in enumerate(data.items()):
        c = colors[i % len(colors)]
        ax.plot(g["itl_s"] * 1e3, g["j_per_token"], "-o", color=c, ms=4, label=key)
        for x, y, text in frontier_labels(g, span=span):
            ax.annotate(text, (x * 1e3, y), xytext=(5, 4), textcoords="offset points", fontsize=7, color=c)
        cur = g[g["current"]]
        if len(cur):
            ax.plot(cur["itl_s"] * 1e3, cur["j_per_token"], "*", color=c, ms=15, mec="k",
                    label=f"{key}: configured cap")
    if not data:
        ax.text(0.5, 0.5, "frontier not available\n" + "\n".join(r.analysis.notes[:2]),
                ha="center", va="center", transform=ax.transAxes)
    ax.set_xlabel("inter-token latency at the simulated batch (ms/token)")
    ax.set_ylabel("energy per output token (J/token)")
    ax.grid(alpha=0.3)
    if data:
        ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    return fig


# ------------------------------------------------------------------------------ 9. appendix
def _value_text(value, unit: str) -> str:
    if value is None:
        return "not available"
    if isinstance(value, (int, float)):
        v = f"{value:.4g}"
    else:
        v = str(value)
    if unit and unit not in ("-", "1") and unit not in v:
        v += f" {unit}"
    return v


def appendix_data(r: RunResult) -> list[tuple[str, str, str]]:
    """(item, value with unit, source or note) rows: every assumption the numbers depend on."""
    rows = [(a.name, _value_text(a.value, a.unit), str(a.source or "")) for a in r.accounts.assumptions]
    for s in r.meta.get("data_sources", []):
        desc, _, where = str(s).partition(": ")
        rows.append(("data file", desc, where))
    for note in r.analysis.notes:
        rows.append(("energy model", "", note))
    plan = r.meta.get("plan")
    if plan:
        rows.append(("plan step", "", str(plan)))
    sim = r.sim.meta
    rows.append(("simulation", f"{sim.get('mode', '?')} mode, seed {r.seed}",
                 f"telemetry every {sim.get('telemetry_interval_s', '?')} s; fleet.sim"))
    return rows


def draw_appendix(r: RunResult):
    import textwrap

    from matplotlib.figure import Figure

    rows = appendix_data(r)
    figs = []
    per_page = 24
    for start in range(0, max(1, len(rows)), per_page):
        fig = Figure(figsize=PAGE)
        fig.suptitle("Appendix: assumptions and data sources" + (" (continued)" if start else ""),
                     fontsize=14, fontweight="bold", x=0.04, ha="left")
        y = 0.9
        fig.text(0.04, y, "item", fontsize=9, fontweight="bold")
        fig.text(0.27, y, "value", fontsize=9, fontweight="bold")
        fig.text(0.50, y, "source / note", fontsize=9, fontweight="bold")
        y -= 0.03
        for name, value, source in rows[start:start + per_page]:
            val = textwrap.wrap(value, 44) or [""]
            src = textwrap.wrap(source, 95, break_on_hyphens=False) or [""]
            n = min(max(len(val), len(src), 1), 3)
            fig.text(0.04, y, _clip(name, 42), fontsize=8, va="top")
            fig.text(0.27, y, _esc("\n".join(val[:3])), fontsize=8, va="top")
            fig.text(0.50, y, _esc("\n".join(src[:3])), fontsize=8, va="top", color="#333333")
            y -= 0.021 * n + 0.008
            if y < 0.05:
                break
        figs.append(fig)
    return figs


#: (file stem, page title, drawing function) in page order
def draw_plans(r: RunResult):
    """One page (or more) per planner that ran (``fleet.report.plan_<kind>.figures``); none
    without a plan."""
    import importlib

    figs = []
    for o in r.plans:
        try:
            mod = importlib.import_module(f"fleet.report.plan_{o.kind}")
        except ModuleNotFoundError:
            continue
        figs += list(mod.figures(o, dpi=int(r.meta.get("dpi") or 110)))
    return figs


PAGES = [
    ("01_summary", "Summary", draw_summary),
    ("01b_plan", "Plan", draw_plans),
    ("02_fleet", "Fleet and utilisation", draw_fleet),
    ("03_power_tree", "Power over time by level", draw_power_levels),
    ("04_power_cdf", "Power distribution per row", draw_power_cdf),
    ("05_latency", "Latency CDFs", draw_latency_cdf),
    ("06_energy_per_token", "Energy per token", draw_energy_per_token),
    ("07_carbon", "Carbon by hour", draw_carbon_hourly),
    ("08_frontier", "Time-energy frontier", draw_frontier),
    ("09_appendix", "Assumptions and sources", draw_appendix),
]
