"""``fleet sweep FILE``: many scenarios at once on Dask (a LocalCluster or an existing scheduler),
resumable, with a sensitivity report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_json_flag, emit


def register(sub) -> None:
    p = sub.add_parser("sweep", help="run a sweep of scenarios on Dask and report each input's effect",
                       description="Run every point of a sweep file (a base scenario, parameters by scenario "
                                   "path, a design, seeds, metrics) as Dask tasks: on a LocalCluster of one "
                                   "worker process per core, or on an existing cluster with --scheduler. "
                                   "Results stream into DIR/results/*.parquet; --resume runs only the "
                                   "missing points. Writes DIR/report.pdf (tornado, Sobol indices, Pareto, "
                                   "best points).")
    p.add_argument("sweep", type=Path, help="sweep file, e.g. scenarios/sweep_example.yaml")
    p.add_argument("-o", "--out", type=Path, required=True, metavar="DIR", help="the sweep's output folder")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="worker processes of the local cluster (default: one per core; 0: run here, serially)")
    p.add_argument("--scheduler", default=None, metavar="ADDR",
                   help="an existing Dask scheduler, e.g. tcp://HOST:8786 (its workers need the same fleet)")
    p.add_argument("--resume", action="store_true", help="continue the sweep in DIR: run only the missing points")
    p.add_argument("--batch-size", type=int, default=None, metavar="N",
                   help="points per Dask task (default: from the sweep file, else sized to the cluster)")
    p.add_argument("--no-report", action="store_true", help="write the results only, no PDF/PNG report")
    p.add_argument("-q", "--quiet", action="store_true", default=argparse.SUPPRESS,
                   help="no progress bar or info messages")
    p.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS,
                   help="log every step; tracebacks on error")
    add_json_flag(p)
    p.set_defaults(func=cmd_sweep)


def cmd_sweep(args) -> int:
    import logging

    import distributed  # noqa: F401  (it sets its loggers' levels on import: set ours after)

    from ..errors import FleetError
    from ..sweep import run_sweep

    for name in ("matplotlib", "PIL", "fontTools", "distributed", "tornado", "fleet.run", "fleet.report"):
        logging.getLogger(name).setLevel(logging.DEBUG if getattr(args, "verbose", False) and
                                         name.startswith("fleet") else logging.WARNING)
    _once_per_message()
    if args.workers is not None and args.workers < 0:
        raise FleetError(f"--workers: expected 0 or more, got {args.workers}")
    if args.workers is not None and args.scheduler:
        raise FleetError("--workers and --scheduler exclude each other (an existing cluster has its own workers)")
    if args.batch_size is not None and args.batch_size < 1:
        raise FleetError(f"--batch-size: expected a positive integer, got {args.batch_size}")
    try:
        o = run_sweep(args.sweep, args.out, workers=args.workers, scheduler=args.scheduler, resume=args.resume,
                      quiet=bool(getattr(args, "quiet", False)), batch_size=args.batch_size,
                      report=not args.no_report)
    except KeyboardInterrupt:
        import sys

        print(f"fleet sweep: stopped; the finished points are in {args.out}/results/. Run the same command "
              f"with --resume to run only the missing ones.", file=sys.stderr)
        raise
    out = {"sweep": o.name, "out_dir": str(o.out_dir), "points": o.points, "design_rows": o.design_rows,
           "already_done": o.already_done, "run_now": len(o.executed), "lost": o.lost,
           "lost_error": o.lost_error, "counts": o.counts,
           "workers": o.workers, "batch_size": o.batch_size, "wall_s": o.wall_s, "complete": o.complete,
           "report": [str(o.out_dir / f) for f in o.report_files if f == "report.pdf"],
           "errors": [{"point_id": p, "status": s, "error": e} for p, s, e in o.errors]}
    lines = [f"{o.name}: {o.points} points ({o.already_done} already done, {len(o.executed)} run now"
             + (f" on {o.workers} worker{'s' if o.workers != 1 else ''}, {o.batch_size} per task" if o.executed else "") + f") in {o.wall_s:.1f} s",
             "  " + ", ".join(f"{s} {n}" for s, n in o.counts.items()),
             f"  results: {o.out_dir / 'results'}/ (Parquet, one row per point)"]
    if "report.pdf" in o.report_files:
        lines.append(f"  report:  {o.out_dir / 'report.pdf'}")
    if o.errors:
        lines.append(f"  {len(o.errors)} points failed (status and error recorded), e.g.:")
        seen: dict[str, str] = {}       # first line of an error -> its status
        for _, s, e in o.errors:
            seen.setdefault(e.splitlines()[0][:160] if e else "", s)
        lines += [f"    {s}: {e}" for e, s in list(seen.items())[:5]]
    if not o.complete:
        lines.append(f"  INCOMPLETE: {o.points - sum(o.counts.values())} points have no result"
                     + (f" (a task failed on the cluster: {o.lost_error})" if o.lost_error else "")
                     + "; run again with --resume")
    emit(out, args.json, "\n".join(lines))
    return 0 if o.complete else 1


def _once_per_message() -> None:
    """Points repeat the same warning (a gap filled in a region's data, say): show each once."""
    import logging

    from ..sweep import once_per_message

    once = once_per_message()
    for h in logging.getLogger().handlers:
        h.addFilter(once)
