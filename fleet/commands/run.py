"""``fleet run SCENARIO`` (the main job) and ``fleet check [PATHS] [--update]`` (scenario regression)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ._common import add_json_flag, emit, out_path


def out_dir_arg(text: str) -> Path:
    return Path(out_path(text))


def _verbosity(p: argparse.ArgumentParser) -> None:
    # SUPPRESS: given after the sub-command they set the same flags as `fleet -q/-v run ...`
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bars or info messages")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="log every step; tracebacks on error")


def _quiet_libraries(args) -> None:
    """Default: a progress bar and the result; --verbose: fleet's step log (INFO/DEBUG) without the
    plotting libraries' debug chatter; --quiet: warnings only."""
    import logging

    for name in ("matplotlib", "PIL", "fontTools"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not getattr(args, "verbose", False):
        for name in ("fleet.run", "fleet.report", "fleet.regress"):
            logging.getLogger(name).setLevel(logging.WARNING)
    elif getattr(args, "verbose", False):
        logging.getLogger("fleet").setLevel(logging.DEBUG)


def register(sub) -> None:
    p = sub.add_parser("run", help="run a scenario end to end and write its report",
                       description="Load SCENARIO, build the frontiers, simulate, account energy, cost and "
                                   "carbon, and write reports/<scenario>/ (report.pdf, figures/*.png, "
                                   "CSV tables, summary.json).")
    p.add_argument("scenario", type=Path, nargs="?", default=None,
                   help="scenario YAML file (default: the default scenario shipped with fleet)")
    p.add_argument("-o", "--out", type=out_dir_arg, default=Path("reports"),
                   help="folder that receives <scenario>/ (default: reports)")
    _verbosity(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_run)

    k = sub.add_parser("compare", help="compare the headline metrics of runs (report folders)",
                       description="Print the headline metrics of several runs side by side, with the change "
                                   "relative to the first, e.g. fleet compare reports/whatif_today "
                                   "reports/whatif_hbm_half.")
    k.add_argument("runs", nargs="+", type=Path, help="report folders (or their summary.json)")
    k.add_argument("-m", "--metric", action="append", help="metric to show (repeatable; default: headline set)")
    add_json_flag(k)
    k.set_defaults(func=cmd_compare)

    c = sub.add_parser("check", help="run scenarios and compare their metrics with their expectations",
                       description="Run every scenario (a file, or the *.yaml of a folder) that carries "
                                   "expectations; exit 1 listing every metric outside its tolerance.")
    c.add_argument("paths", nargs="*", type=Path, default=None,
                   help="scenario files or folders (default: scenarios/ and the default scenario shipped "
                        "with fleet)")
    c.add_argument("--update", action="store_true",
                   help="rewrite the expectations with the actual values (adds a default set where there "
                        "are none) and show the diff")
    c.add_argument("--report", type=out_dir_arg, default=None, metavar="DIR",
                   help="also write each scenario's report into DIR/<scenario>/")
    _verbosity(c)
    add_json_flag(c)
    c.set_defaults(func=cmd_check)


COMPARE_METRICS = ["energy.it", "energy.facility", "per_1k_tokens.it_energy", "carbon.operational",
                   "carbon.embodied", "carbon.total", "carbon.intensity_mean", "cost.energy", "cost.hardware",
                   "cost.total", "slo.attainment", "latency.ttft_p99", "latency.tpot_p50", "power.it_peak",
                   "power.max_peak_to_budget"]


def compare_table(summaries: list[dict], metrics: list[str]) -> list[dict]:
    """Rows ``{metric, unit, values: [...], change_pct: [...]}``: each run's value and its change
    relative to the first run (None where a value is missing or the base is zero)."""
    rows = []
    for name in metrics:
        vals = [(s.get("metrics", {}).get(name) or {}).get("value") for s in summaries]
        vals = [v if isinstance(v, (int, float)) and not isinstance(v, bool) else None for v in vals]
        unit = next(((s.get("metrics", {}).get(name) or {}).get("unit") for s in summaries
                     if name in s.get("metrics", {})), "")
        if all(v is None for v in vals):
            continue
        base = vals[0]
        change = [None if (v is None or base in (None, 0)) else 100.0 * (v - base) / abs(base) for v in vals]
        rows.append({"metric": name, "unit": unit, "values": vals, "change_pct": change})
    return rows


def cmd_compare(args) -> int:
    import json

    from ..errors import FleetError
    from ..report.figures import fmt_metric

    summaries = []
    for p in args.runs:
        f = p / "summary.json" if p.is_dir() else p
        if not f.is_file():
            raise FleetError(f"{p}: no summary.json (expected a report folder written by fleet run)")
        try:
            data = json.loads(f.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise FleetError(f"{f}: not valid JSON ({exc})") from exc
        except OSError as exc:
            raise FleetError(f"{f}: cannot read ({exc.strerror or exc})") from exc
        if not isinstance(data, dict) or not isinstance(data.get("metrics", {}), dict) or \
                not all(isinstance(v, dict) for v in data.get("metrics", {}).values()):
            raise FleetError(f"{f}: expected a summary.json written by fleet run (an object with a 'metrics' "
                             f"object of {{value, unit}} entries), got {type(data).__name__}")
        summaries.append(data)
    rows = compare_table(summaries, args.metric or COMPARE_METRICS)
    names = [s.get("scenario", "?") for s in summaries]
    if args.json:
        emit({"scenarios": names, "rows": rows}, True)
        return 0
    table = [["metric", *names]]
    for r in rows:
        cells = [r["metric"]]
        for k, (v, c) in enumerate(zip(r["values"], r["change_pct"])):
            txt = "n/a" if v is None else fmt_metric(float(v), r["unit"])
            if k and c is not None:
                txt += f" ({c:+.1f}%)"
            cells.append(txt)
        table.append(cells)
    widths = [max(len(row[j]) for row in table) for j in range(len(table[0]))]
    lines = ["  ".join(cell.ljust(widths[0]) if j == 0 else cell.rjust(widths[j]) for j, cell in enumerate(row))
             for row in table]
    emit(None, False, "\n".join(lines))
    return 0


def cmd_run(args) -> int:
    from ..report.figures import fmt_metric
    from ..run import run_scenario

    _quiet_libraries(args)
    if args.scenario is None:
        from ..data import DEFAULT_SCENARIO

        args.scenario = DEFAULT_SCENARIO
    r = run_scenario(args.scenario, args.out, quiet=bool(getattr(args, "quiet", False)))
    m = r.accounts.metrics
    out = {"scenario": r.name, "report_dir": r.meta.get("out_dir"), "scenario_hash": r.scenario_hash,
           "metrics": r.accounts.metrics_dict()}
    keys = ["energy.it", "energy.facility", "carbon.total", "cost.total", "slo.attainment",
            "per_1k_tokens.it_energy", "power.it_peak"]
    text = [f"{r.name}: report in {r.meta.get('out_dir')}/report.pdf"]
    text += [f"  {k:<26} {fmt_metric(m[k].value, m[k].unit)}" for k in keys if k in m]
    emit(out, args.json, "\n".join(text))
    return 0


def cmd_check(args) -> int:
    from ..regress import check_scenario, scenario_files, update_scenario

    from ..errors import FleetError

    _quiet_libraries(args)
    if not args.paths:
        from ..data import DEFAULT_SCENARIO

        args.paths = [Path("scenarios"), DEFAULT_SCENARIO]
    files = scenario_files(args.paths)
    if not files:
        raise FleetError(f"{', '.join(map(str, args.paths))}: no scenario files (*.yaml, *.yml) to check")
    results, n_bad, n_updated = [], 0, 0
    for f in files:
        res = check_scenario(f, report_dir=args.report, quiet=bool(getattr(args, "quiet", False)),
                             require_expectations=args.update)
        if args.update and res.error is not None:
            n_bad += 1
            print(res.describe(), flush=True)
            continue
        if args.update and not res.skipped:
            diff = update_scenario(f, res.metrics)
            sys.stdout.write(diff if diff else f"{f}: expectations unchanged\n")
            results.append({"path": str(f), "updated": bool(diff)})
            n_updated += bool(diff)
            continue
        if not res.ok:
            n_bad += 1
        results.append({"path": str(f), "scenario": res.scenario, "ok": res.ok, "skipped": res.skipped,
                        "error": res.error, "wall_s": res.wall_s,
                        "failures": [o.describe() for o in res.failures]})
        if not args.json:
            print(res.describe(), flush=True)
    if args.json:
        emit(results, True)
    if not args.json:
        checked = sum(1 for r in results if not r.get("skipped"))
        if args.update:
            print(f"{n_updated} of {checked} scenarios updated, {n_bad} failed to run", flush=True)
        else:
            print(f"{checked} scenarios checked, {n_bad} failed", flush=True)
    if not args.update and not any(not r.get("skipped") for r in results):
        print("fleet: nothing checked: no scenario carries expectations (add them with --update)",
              file=sys.stderr, flush=True)
        return 1
    return 1 if n_bad else 0
