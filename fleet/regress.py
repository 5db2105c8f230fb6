"""Scenario regression: run a scenario and compare its metrics with the expectations it carries.

A scenario's ``expectations`` section lists metrics of ``summary.json`` (``energy.it``,
``carbon.total``, ``slo.attainment``...) or of its per-pool/per-model tables
(``pool.<pool>.<column>``, ``model.<model>.<column>``) with a value and a tolerance, or bounds::

    expectations:
      - {metric: energy.it, value: 1.234e9, rel_tol: 0.01}     # |actual - value| <= 1 % of value
      - {metric: slo.attainment, min: 0.95}                     # bounds
      - {metric: pool.h100.busy_fraction, value: 0.6, abs_tol: 0.05}

``fleet check PATHS`` runs every scenario with expectations and lists each metric outside its
tolerance with expected and actual values; ``fleet check --update`` rewrites the values after an
intended change (the rest of the file is kept as written) and shows the diff.
"""

from __future__ import annotations

import difflib
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ._io import write_text_atomic
from .errors import FleetError, ScenarioError
from .scenario import Expectation, load_scenario, load_yaml_text, read_yaml

#: tolerance when an expectation gives a value and no tolerance
DEFAULT_REL_TOL = 0.01
#: tolerance written by ``--update`` for tail statistics (latency percentiles, power peaks): they
#: move more than totals when a model changes
TAIL_REL_TOL = 0.05
#: metrics written by ``--update`` into a scenario that has no expectations yet
DEFAULT_METRICS = ("energy.it", "energy.facility", "carbon.operational", "carbon.embodied",
                   "cost.total", "slo.attainment", "latency.ttft_p99", "latency.tpot_p50",
                   "power.it_peak", "per_1k_tokens.it_energy")


@dataclass
class Outcome:
    """One expectation against the run."""

    expectation: Expectation
    actual: float | None
    unit: str
    ok: bool
    reason: str = ""

    def describe(self) -> str:
        e = self.expectation
        parts = []
        if e.value is not None:
            tol = []
            if e.rel_tol is not None or e.abs_tol is None:
                tol.append(f"±{100 * (e.rel_tol if e.rel_tol is not None else DEFAULT_REL_TOL):g} %")
            if e.abs_tol is not None:
                tol.append(f"±{e.abs_tol:g}")
            parts.append(f"{e.value:.6g} {' or '.join(tol)}")
        if e.min is not None:
            parts.append(f">= {e.min:.6g}")
        if e.max is not None:
            parts.append(f"<= {e.max:.6g}")
        act = "missing" if self.actual is None else f"{self.actual:.6g}"
        txt = f"{e.metric}: expected {', '.join(parts)}; actual {act} {self.unit}".rstrip()
        if self.reason:
            txt += f" ({self.reason})"
        return txt


@dataclass
class CheckResult:
    """The outcome of checking one scenario."""

    path: Path
    scenario: str = ""
    outcomes: list[Outcome] = field(default_factory=list)
    error: str | None = None
    skipped: str | None = None
    wall_s: float = 0.0
    metrics: dict[str, tuple[float, str]] = field(default_factory=dict)

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.ok]

    @property
    def ok(self) -> bool:
        return self.error is None and not self.failures

    def describe(self) -> str:
        head = f"{self.path}"
        if self.skipped:
            return f"{head}: skipped ({self.skipped})"
        if self.error:
            return f"{head}: ERROR {self.error}"
        if not self.failures:
            return f"{head}: ok ({len(self.outcomes)} expectations, {self.wall_s:.1f} s)"
        lines = [f"{head}: {len(self.failures)} of {len(self.outcomes)} expectations failed"]
        lines += [f"  - {o.describe()}" for o in self.failures]
        return "\n".join(lines)


# ------------------------------------------------------------------------------ metrics
_UNIT_SUFFIX = [("_per_1k_tokens", "per 1k tokens"), ("_j", "J"), ("_w", "W"), ("_s", "s"),
                ("_g", "gCO2e"), ("_usd", "USD"), ("_tokens", "tokens")]


def _unit_of(col: str) -> str:
    for suf, unit in _UNIT_SUFFIX:
        if col.endswith(suf):
            return unit
    return "1"


def flat_metrics(result) -> dict[str, tuple[float, str]]:
    """Every checkable number of a run: the accounts' metrics plus ``pool.<pool>.<column>`` and
    ``model.<model>.<column>`` for each numeric column of the per-pool and per-model tables."""
    out: dict[str, tuple[float, str]] = {k: (float(m.value), m.unit) for k, m in result.accounts.metrics.items()}
    for prefix, table, key in (("pool", result.accounts.pools, "pool"), ("model", result.accounts.models, "model")):
        if table is None or not len(table):
            continue
        for _, row in table.iterrows():
            for col, v in row.items():
                if col == key or isinstance(v, str) or v is None:
                    continue
                try:
                    out[f"{prefix}.{row[key]}.{col}"] = (float(v), _unit_of(str(col)))
                except (TypeError, ValueError):
                    continue
    for plan in getattr(result, "plans", None) or []:
        out.update(plan.flat_metrics())
    out.update(protection_metrics(getattr(result, "sim", None)))
    return out


def protection_metrics(sim) -> dict[str, tuple[float, str]]:
    """``protection.trips``, ``protection.controller_actions``, ``protection.requests_hit_by_trips``
    and ``protection.capped_time_share.<row>`` of a simulation with breakers or a capping
    controller (fleet.sim.protection); nothing otherwise."""
    meta = getattr(sim, "meta", None) or {}
    pr = meta.get("protection")
    if not pr:
        return {}
    out = {f"protection.{k}": (float(pr[k]), "1") for k in ("trips", "controller_actions", "requests_hit_by_trips",
                                                             "jobs_hit_by_trips") if k in pr}
    for row, v in (pr.get("capped_time_share") or {}).items():
        out[f"protection.capped_time_share.{row}"] = (float(v), "1")
    return out


def evaluate(expectations: list[Expectation], metrics: dict[str, tuple[float, str]]) -> list[Outcome]:
    """Compare each expectation with the metrics; a missing or non-finite metric fails."""
    out = []
    for e in expectations:
        if e.metric not in metrics:
            near = difflib.get_close_matches(e.metric, list(metrics), n=3)
            out.append(Outcome(e, None, "", False, "no such metric" + (f"; did you mean {', '.join(near)}?"
                                                                      if near else "")))
            continue
        a, unit = metrics[e.metric]
        if not math.isfinite(a):
            out.append(Outcome(e, a, unit, False, "not a finite number"))
            continue
        ok, why = True, []
        if e.value is not None:
            rel = e.rel_tol if e.rel_tol is not None else (DEFAULT_REL_TOL if e.abs_tol is None else 0.0)
            tol = max(rel * abs(e.value), e.abs_tol or 0.0)
            if abs(a - e.value) > tol:
                ok = False
                dev = (a - e.value) / e.value if e.value else math.inf
                why.append(f"off by {100 * dev:+.3g} %" if math.isfinite(dev) else f"off by {a - e.value:+.6g}")
        if e.min is not None and a < e.min:
            ok = False
            why.append("below min")
        if e.max is not None and a > e.max:
            ok = False
            why.append("above max")
        out.append(Outcome(e, a, unit, ok, "; ".join(why)))
    return out


# ------------------------------------------------------------------------------ checking
def scenario_files(paths: list[str | Path]) -> list[Path]:
    """Scenario files named by ``paths`` (a directory means its ``*.yaml``/``*.yml``, sorted)."""
    out: list[Path] = []
    for p in paths:
        p = Path(p)
        if p.is_dir():
            out += sorted([*p.glob("*.yaml"), *p.glob("*.yml")])
        elif p.is_file():
            out.append(p)
        else:
            raise FleetError(f"{p}: no such scenario file or directory")
    return out


def check_scenario(path: str | Path, *, report_dir: str | Path | None = None, quiet: bool = True,
                   require_expectations: bool = False) -> CheckResult:
    """Run the scenario at ``path`` (writing a report only if ``report_dir`` is given) and compare
    its metrics with its expectations.  Errors become ``CheckResult.error``, not exceptions."""
    from .run import run_scenario

    path = Path(path)
    res = CheckResult(path)
    t0 = time.perf_counter()
    try:
        if read_yaml(path).get("kind") == "sweep":     # a sweep file (fleet sweep), not a scenario
            res.skipped = "a sweep file: run it with fleet sweep"
            return res
        sc = load_scenario(path)
        res.scenario = sc.name
        if not sc.expectations and not require_expectations:
            res.skipped = "no expectations"
            return res
        r = run_scenario(sc, report_dir, quiet=quiet, report=report_dir is not None)
        res.metrics = flat_metrics(r)
        res.outcomes = evaluate(sc.expectations, res.metrics)
    except FleetError as exc:
        res.error = str(exc)
    finally:
        res.wall_s = time.perf_counter() - t0
    return res


# ------------------------------------------------------------------------------ --update
_TOP_KEY = re.compile(r"^[^\s#-][^:]*:")


def _sig(x: float, digits: int = 6) -> float:
    if x == 0 or not math.isfinite(x):
        return x
    return float(f"{x:.{digits}g}")


def _render(exps: list[dict], comments: dict[str, str] | None = None) -> list[str]:
    lines = ["expectations:"]
    comments = comments or {}
    for e in exps:
        items = ", ".join(f"{k}: {_yaml_scalar(v)}" for k, v in e.items() if v is not None)
        line = f"  - {{{items}}}"
        c = comments.get(str(e.get("metric")))
        lines.append(f"{line}   {c}" if c else line)
    return lines


_ENTRY_COMMENT = re.compile(r"^\s*-\s*\{\s*metric:\s*([^,}\s]+).*\}\s*(#.*)$")


def _entry_comments(block: list[str]) -> dict[str, str]:
    """Trailing comments of one-line entries (``- {metric: x, ...}  # why``), by metric."""
    out: dict[str, str] = {}
    for ln in block:
        m = _ENTRY_COMMENT.match(ln)
        if m:
            out.setdefault(m.group(1), m.group(2))
    return out


def _yaml_scalar(v) -> str:
    if isinstance(v, float):
        if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
            return f"{v:.6g}".replace("e+0", "e+").replace("e-0", "e-")
        return f"{v:.6g}"
    if isinstance(v, str):
        return v if re.fullmatch(r"[A-Za-z0-9_.\-/]+", v) else yaml.safe_dump(v).strip().removesuffix("\n...")
    return str(v)


def updated_expectations(sc_expectations: list[Expectation], metrics: dict[str, tuple[float, str]]) -> list[dict]:
    """New expectation entries: values replaced by the actual metrics (6 significant digits),
    tolerances and bounds kept; a scenario without expectations gets :data:`DEFAULT_METRICS`."""
    out = []
    if not sc_expectations:
        for name in DEFAULT_METRICS:
            if name in metrics and math.isfinite(metrics[name][0]):
                tail = name.startswith("latency.") or name.endswith("_peak")
                tol = TAIL_REL_TOL if tail else DEFAULT_REL_TOL
                out.append({"metric": name, "value": _sig(metrics[name][0]), "rel_tol": tol})
        return out
    for e in sc_expectations:
        d: dict[str, object] = {"metric": e.metric, "value": e.value, "rel_tol": e.rel_tol, "abs_tol": e.abs_tol,
             "min": e.min, "max": e.max}
        if e.value is not None and e.metric in metrics and math.isfinite(metrics[e.metric][0]):
            d["value"] = _sig(metrics[e.metric][0])
        out.append(d)
    return out


def rewrite_expectations(text: str, exps: list[dict]) -> str:
    """``text`` with its top-level ``expectations:`` block replaced (appended if absent); every
    other line is kept as written (comments included)."""
    lines = text.splitlines()
    start = next((i for i, ln in enumerate(lines) if re.match(r"^expectations\s*:", ln)), None)
    if start is None:
        new = _render(exps)
        body = lines[:]
        while body and not body[-1].strip():
            body.pop()
        return "\n".join(body + ([""] if body else []) + new) + "\n"
    end = start + 1
    while end < len(lines) and not _TOP_KEY.match(lines[end]):
        end += 1
    # keep trailing blank/comment lines that precede the next key with the next key
    tail = end
    while tail - 1 > start and (not lines[tail - 1].strip() or lines[tail - 1].lstrip().startswith("#")):
        tail -= 1
    new = _render(exps, _entry_comments(lines[start:tail]))
    out = lines[:start] + new + lines[tail:]
    return "\n".join(out) + "\n"


def update_scenario(path: str | Path, metrics: dict[str, tuple[float, str]]) -> str:
    """Rewrite the expectations of the scenario at ``path`` from ``metrics`` (atomically) and return
    the unified diff ('' if nothing changed).  The result is re-read and validated before it is
    written; everything outside the block must read back unchanged."""
    path = Path(path)
    sc = load_scenario(path, check=False)
    old = path.read_text(encoding="utf-8")
    new = rewrite_expectations(old, updated_expectations(sc.expectations, metrics))
    before, after = read_yaml(path), load_yaml_text(new, path)
    before.pop("expectations", None)
    after_rest = dict(after)
    after_rest.pop("expectations", None)
    if before != after_rest:
        raise ScenarioError("rewriting the expectations would change other keys; not written", path=path,
                            field="expectations")
    from .scenario import parse_scenario

    parse_scenario(after, path=path, check=False)
    if new == old:
        return ""
    write_text_atomic(path, new)
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True), str(path), str(path)))
