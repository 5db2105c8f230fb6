"""The sweep report: sensitivity (tornado, Sobol indices), Pareto plot, best points.

It reads a :class:`SweepReportData` of plain tables (made by :func:`fleet.sweep.write_sweep_report`)
and draws with matplotlib's object-oriented API (``matplotlib.figure.Figure``, no pyplot), so a
user's own backend and open figures are left alone.  Writes ``report.pdf``, ``figures/*.png`` and
the tables as CSV (``sensitivity.csv``, ``sobol.csv``, ``pareto.csv``, ``best_points.csv``).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from .._io import atomic_path
from .figures import PAGE, fmt_metric

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.figure import Figure

log = logging.getLogger("fleet.report")

METRIC_PREFIX = "metric."
PARAM_PREFIX = "param."
LOW_COLOR, HIGH_COLOR = "#4C72B0", "#DD8452"
FRONT_COLOR, FEASIBLE_COLOR, OTHER_COLOR = "#C44E52", "#4C72B0", "#BBBBBB"
MAX_TORNADO_BARS = 12


@dataclass
class SweepReportData:
    name: str
    method: str
    metrics: list[str]
    parameters: list[str]
    results: pd.DataFrame                 # one row per point (fleet.sweep.read_results)
    feasible: pd.Series                   # ok and within the constraints, per results row
    tornado: pd.DataFrame
    sobol: pd.DataFrame
    best: pd.DataFrame
    pareto: tuple[str, str] | None = None
    pareto_front: pd.DataFrame | None = None
    objective: str | None = None
    maximize: set[str] = field(default_factory=set)
    constraints: list[str] = field(default_factory=list)
    units: dict[str, str] = field(default_factory=dict)
    description: str = ""
    fleet_version: str = ""
    design_rows: int = 0


def _figure(size: tuple[float, float] = PAGE) -> Figure:
    from matplotlib.figure import Figure

    return Figure(figsize=size)


def _fmt(value, unit: str) -> str:
    try:
        return fmt_metric(float(value), unit)
    except (TypeError, ValueError):
        return "n/a"


def _stem(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("_")


def _unit_label(unit: str) -> str:
    return "" if unit in ("", "1") else f" ({unit})"


# ------------------------------------------------------------------------------ pages
def draw_overview(d: SweepReportData):
    fig = _figure()
    fig.suptitle(f"Sweep {d.name}", fontsize=14, x=0.05, ha="left")
    res = d.results
    counts = res["status"].value_counts() if len(res) else pd.Series(dtype=int)
    lines = [d.description] if d.description else []
    lines += [
        f"design: {d.method}, {d.design_rows} design rows, {len(res)} distinct points recorded",
        "status: " + ", ".join(f"{s} {int(counts.get(s, 0))}" for s in ("ok", "invalid", "error")),
        f"feasible (ok and within the constraints): {int(d.feasible.sum())}",
        f"parameters: {', '.join(d.parameters)}",
        f"metrics: {', '.join(d.metrics)}",
        f"objective: {'maximise' if d.objective in d.maximize else 'minimise'} {d.objective}",
        "constraints: " + ("; ".join(d.constraints) if d.constraints else "none"),
        f"fleet {d.fleet_version}",
        "",
        "Sensitivity (tornado): the mean of each metric at each level of one parameter, averaged over",
        "every other parameter and seed; bars span the lowest to the highest level mean. Sobol indices",
        "(Sobol designs): first-order S1 (Saltelli 2010) and total ST (Jansen 1999), 95 % bootstrap intervals.",
    ]
    ok = res[res["status"] == "ok"] if len(res) else res
    if len(ok):
        lines += ["", "metric ranges over ok points (min / median / max):"]
        for m in d.metrics:
            col = METRIC_PREFIX + m
            if col in ok and ok[col].notna().any():
                u = d.units.get(m, "")
                lines.append(f"  {m}: {_fmt(ok[col].min(), u)} / {_fmt(ok[col].median(), u)} / {_fmt(ok[col].max(), u)}")
    bad = res[res["status"] != "ok"] if len(res) else res
    if len(bad):
        lines += ["", f"failed points ({len(bad)}), first errors:"]
        for err, n in bad["error"].fillna("").str.slice(0, 140).value_counts().head(5).items():
            lines.append(f"  {n} x {err}")
    fig.text(0.05, 0.9, "\n".join(lines), va="top", ha="left", family="monospace", fontsize=8.5)
    return fig


def draw_tornado(d: SweepReportData, metric: str):
    t = d.tornado[d.tornado["metric"] == metric].head(MAX_TORNADO_BARS)
    unit = d.units.get(metric, "")
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    if not len(t):
        ax.text(0.5, 0.5, "no ok points", ha="center", transform=ax.transAxes)
        ax.set_axis_off()
        return fig
    t = t.iloc[::-1]
    y = np.arange(len(t))
    mean = float(t["mean"].iloc[0])
    ax.barh(y, t["low"] - mean, left=mean, color=LOW_COLOR, label="level with the lowest mean")
    ax.barh(y, t["high"] - mean, left=mean, color=HIGH_COLOR, label="level with the highest mean")
    ax.axvline(mean, color="black", lw=0.8)
    span = float((t["high"] - t["low"]).max()) or abs(mean) or 1.0
    for yi, (_, r) in zip(y, t.iterrows()):
        ax.text(r["low"] - 0.01 * span, float(yi), str(r["low_level"]), ha="right", va="center", fontsize=8)
        ax.text(r["high"] + 0.01 * span, float(yi), str(r["high_level"]), ha="left", va="center", fontsize=8)
    ax.set_yticks(y, [str(p) for p in t["parameter"]])
    ax.set_xlim(float(t["low"].min()) - 0.25 * span, float(t["high"].max()) + 0.25 * span)
    ax.set_xlabel(f"{metric}{_unit_label(unit)}; vertical line: mean over ok points ({_fmt(mean, unit)})")
    ax.set_title(f"Sensitivity of {metric} to each parameter (tornado: main-effect range)")
    ax.legend(loc="lower right", fontsize=8)
    fig.subplots_adjust(left=0.32, right=0.95)
    return fig


def draw_sobol(d: SweepReportData, metric: str):
    t = d.sobol[d.sobol["metric"] == metric]
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    x = np.arange(len(t))
    w = 0.38
    for off, key, color, label in ((-w / 2, "S1", LOW_COLOR, "first order S1"),
                                   (w / 2, "ST", HIGH_COLOR, "total ST")):
        v = t[key].to_numpy(dtype=float)
        lo = np.clip(v - t[f"{key}_lo"].to_numpy(dtype=float), 0, None)
        hi = np.clip(t[f"{key}_hi"].to_numpy(dtype=float) - v, 0, None)
        ax.bar(x + off, v, w, color=color, label=label, yerr=np.vstack([np.nan_to_num(lo), np.nan_to_num(hi)]),
               capsize=3)
    ax.set_xticks(x, [str(p) for p in t["parameter"]], rotation=20, ha="right")
    ax.axhline(0, color="black", lw=0.6)
    n = int(t["n"].iloc[0]) if len(t) else 0
    ax.set_ylabel("Sobol index (fraction of the variance, 1)")
    ax.set_title(f"Sobol indices of {metric} ({n} base rows; bars: 95 % bootstrap intervals)")
    ax.legend(fontsize=8)
    fig.subplots_adjust(bottom=0.25)
    return fig


def draw_pareto(d: SweepReportData):
    assert d.pareto is not None         # pages draws it for a pair of metrics only
    xm, ym = d.pareto
    res = d.results
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    xc, yc = METRIC_PREFIX + xm, METRIC_PREFIX + ym
    ok = res["status"] == "ok"
    infeas = ok & ~d.feasible
    ax.scatter(res.loc[infeas, xc], res.loc[infeas, yc], s=14, color=OTHER_COLOR,
               label=f"outside the constraints ({int(infeas.sum())})")
    ax.scatter(res.loc[d.feasible, xc], res.loc[d.feasible, yc], s=16, color=FEASIBLE_COLOR,
               label=f"feasible ({int(d.feasible.sum())})")
    f = d.pareto_front
    if f is not None and len(f):
        ax.plot(f[xc], f[yc], "-o", color=FRONT_COLOR, ms=6, lw=1.2, label=f"Pareto front ({len(f)})")
    ax.set_xlabel(f"{xm}{_unit_label(d.units.get(xm, ''))} ({'more' if xm in d.maximize else 'less'} is better)")
    ax.set_ylabel(f"{ym}{_unit_label(d.units.get(ym, ''))} ({'more' if ym in d.maximize else 'less'} is better)")
    title = f"Pareto: {xm} against {ym}"
    if d.constraints:
        title += f"\nconstraints: {'; '.join(d.constraints)}"
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return fig


def best_rows(d: SweepReportData) -> tuple[list[str], list[list[str]]]:
    """The best-points table as text: rank, each parameter, each metric."""
    b = d.best
    head = ["rank", *d.parameters, *d.metrics]
    rows = []
    for _, r in b.iterrows():
        cells = [str(int(r["rank"]))]
        for p in d.parameters:
            v = r.get(PARAM_PREFIX + p)
            cells.append(f"{v:.4g}" if isinstance(v, float) else str(v))
        for m in d.metrics:
            cells.append(_fmt(r.get(METRIC_PREFIX + m), d.units.get(m, "")))
        rows.append(cells)
    return head, rows


def draw_best(d: SweepReportData):
    fig = _figure()
    ax = fig.add_subplot(1, 1, 1)
    ax.set_axis_off()
    sense = "highest" if d.objective in d.maximize else "lowest"
    title = f"Best points: {sense} {d.objective}"
    title += f" under {'; '.join(d.constraints)}" if d.constraints else " (no constraints)"
    ax.set_title(title)
    head, rows = best_rows(d)
    if not rows:
        ax.text(0.5, 0.5, "no point meets the constraints", ha="center", transform=ax.transAxes)
        return fig
    short = [h if len(h) <= 22 else "…" + h[-21:] for h in head]
    tab = ax.table(cellText=rows, colLabels=short, loc="upper center", cellLoc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(7 if len(head) > 8 else 8)
    tab.scale(1, 1.3)
    return fig


def pages(d: SweepReportData) -> list[tuple[str, Figure]]:
    out = [("overview", draw_overview(d))]
    for m in d.metrics:
        if len(d.tornado) and (d.tornado["metric"] == m).any():
            out.append((f"tornado_{_stem(m)}", draw_tornado(d, m)))
    for m in d.metrics:
        if len(d.sobol) and (d.sobol["metric"] == m).any():
            out.append((f"sobol_{_stem(m)}", draw_sobol(d, m)))
    if d.pareto and len(d.results) and (d.results["status"] == "ok").any():
        out.append(("pareto", draw_pareto(d)))
    out.append(("best_points", draw_best(d)))
    return out


# ------------------------------------------------------------------------------ writing
def _csv(df: pd.DataFrame | None, path: Path) -> bool:
    if df is None:
        return False
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=False, float_format="%.10g")
    return True


def _readable_file(p: Path) -> None:
    import os

    mask = os.umask(0)
    os.umask(mask)
    p.chmod(0o666 & ~mask)


def write_sweep_report(d: SweepReportData, out: str | Path, *, pdf: bool = True, png: bool = True,
                       dpi: int = 110) -> list[str]:
    """Write the report's PDF, PNGs and CSV tables into ``out``; returns the file names."""
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    out = Path(out)
    files: list[str] = []
    for name, df in (("sensitivity.csv", d.tornado), ("sobol.csv", d.sobol if len(d.sobol) else None),
                     ("pareto.csv", d.pareto_front), ("best_points.csv", d.best)):
        if _csv(df, out / name):
            files.append(name)
    if png:
        (out / "figures").mkdir(exist_ok=True)
    with matplotlib.rc_context({"font.size": 9, "axes.titlesize": 11, "svg.hashsalt": "fleet",
                                "pdf.compression": 6}):
        drawn = pages(d)
        if pdf:
            with atomic_path(out / "report.pdf") as tmp:
                with PdfPages(tmp, metadata={"Title": f"fleet sweep {d.name}", "Creator": "fleet",
                                             "CreationDate": None}) as pp:
                    for _, fig in drawn:
                        pp.savefig(fig)
            files.append("report.pdf")
        if png:
            for stem, fig in drawn:
                fig.savefig(out / "figures" / f"{stem}.png", dpi=dpi)
                files.append(f"figures/{stem}.png")
    for f in files:
        _readable_file(out / f)
    log.info("sweep report written to %s", out)
    return files
