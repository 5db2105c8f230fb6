"""``fleet grid``: inspect grid signals (carbon intensity, marginal emissions, prices, PUE) and list
the built-in regions."""

from __future__ import annotations

from pathlib import Path

from ._common import add_json_flag, emit, out_path, positive_float


def _load(args):
    from ..grid import KINDS, load_region_signals, read_signal
    from ..grid.regions import region
    from ..errors import GridError

    target = args.path
    if not Path(target).exists():
        try:
            region(target)
        except GridError as exc:
            raise GridError("no such file, and not a region name", path=target,
                            expected="a grid signal CSV, or a region such as caiso, ERCOT, DE (fleet grid regions)") from exc
        kind = args.kind or "average_ci"
        if kind not in ("average_ci", "marginal_ci", "price"):
            raise GridError(f"a region has no {kind} signal", expected="average_ci | marginal_ci | price")
        return load_region_signals(target, kind, basis=args.basis, currency=args.currency, gaps="keep")
    if args.kind is not None and args.kind not in KINDS:
        raise GridError(f"unknown kind {args.kind!r}", expected=" | ".join(KINDS))
    return read_signal(target, fmt=args.format, kind=args.kind, basis=args.basis, currency=args.currency,
                       unit=args.unit, tz=args.tz, time_column=args.time_column, value_column=args.column,
                       interpolation=args.interpolation)


def _span_s(sig) -> float:
    """Seconds from the signal's first to its last stamp."""
    if len(sig.index) < 2:
        return 0.0
    return float((sig.index[-1] - sig.index[0]).total_seconds())


def cmd_inspect(args) -> int:
    from ..grid.summary import format_summary, plot_signal, summarize

    if args.plot:
        from .._io import check_output_file
        check_output_file(args.plot)
    sig = _load(args)
    if args.resample is not None:
        from ..errors import GridError
        from ..limits import MAX_SIGNAL_POINTS

        n = _span_s(sig) / float(args.resample)
        if n > MAX_SIGNAL_POINTS:
            raise GridError(f"--resample {args.resample:g} s over {_span_s(sig):,.0f} s makes {n:,.0f} points; "
                            f"expected at most {MAX_SIGNAL_POINTS:,} (fleet.limits.MAX_SIGNAL_POINTS): use a "
                            f"longer interval", path=args.path)
        if sig.gaps():
            sig = sig.fill_gaps("ffill")
        sig = sig.resample(float(args.resample))
    summary = summarize(sig)
    if args.plot:
        plot_signal(sig, args.plot)
        summary["plot"] = str(args.plot)
    emit(summary, args.json, None if args.json else format_summary(summary)
         + (f"\nplot           {args.plot}" if args.plot else ""))
    return 0


def hour_of_day_csv(sig, day: str, source: str) -> str:
    """A 24-row generic signal CSV: the signal's mean for each UTC hour of day over its whole span,
    dated on ``day`` (so a one-day scenario starting that day reads it directly).  The header
    carries the unit; the first column the UTC time."""
    import datetime as dt
    import math

    from ..errors import GridError

    try:
        d0 = dt.datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=dt.timezone.utc)
    except ValueError as exc:
        raise GridError(f"--day {day!r}", expected="a date YYYY-MM-DD") from exc
    prof = sig.hour_of_day_profile()
    if len(prof) != 24 or not all(math.isfinite(float(x)) for x in prof):
        raise GridError("the signal does not cover every hour of the day", expected="a series with all 24 UTC hours")
    name = {"average_ci": "carbon_intensity", "marginal_ci": "marginal_carbon_intensity", "price": "price",
            "pue": "pue"}.get(sig.kind, "value")
    lines = [f"time_utc,{name} [{sig.unit}]"]
    for h in range(24):
        lines.append(f"{(d0 + dt.timedelta(hours=h)).strftime('%Y-%m-%dT%H:%M:%SZ')},{float(prof[h]):.6g}")
    del source
    return "\n".join(lines) + "\n"


def cmd_profile(args) -> int:
    from .._io import write_text_atomic

    sig = _load(args)
    text = hour_of_day_csv(sig, args.day, str(args.path))
    write_text_atomic(Path(args.out), text)
    emit({"out": str(args.out), "kind": sig.kind, "unit": sig.unit, "source": getattr(sig, "source", str(args.path)),
          "hours": 24, "day": args.day}, args.json,
         f"wrote {args.out}: the UTC hour-of-day means of {args.path} ({sig.kind}, {sig.unit}) dated {args.day}")
    return 0


def cmd_regions(args) -> int:
    from ..grid.regions import REGIONS

    rows = [{"zone": r.zone, "name": r.name, "aliases": list(r.aliases), "timezone": r.timezone,
             "signals": sorted(r.files), "files": dict(r.files), "notes": r.notes} for r in REGIONS]
    text = "\n".join(f"{r['zone']:<12} {r['name']:<22} aliases: {', '.join(r['aliases']):<32} "
                     f"signals: {', '.join(r['signals'])}" for r in rows)
    emit(rows, args.json, text)
    return 0


def register(sub) -> None:
    p = sub.add_parser("grid", help="grid signals: carbon intensity, marginal emissions, prices, PUE")
    gs = p.add_subparsers(dest="grid_command", metavar="GRID_COMMAND")

    i = gs.add_parser("inspect", help="statistics, gaps and hour-of-day profile of a grid signal file or region")
    i.add_argument("path", help="a signal CSV (Electricity Maps, WattTime MOER, hourly prices, generic), "
                                "or a region name (caiso, ERCOT, DE, ...)")
    i.add_argument("--kind", default=None,
                   help="average_ci | marginal_ci | price | pue | generic (checked against the file; "
                        "for a region: which signal, default average_ci)")
    i.add_argument("--format", default=None, choices=["electricitymaps", "watttime", "prices", "generic"],
                   help="override format detection")
    i.add_argument("--basis", default="lca", choices=["lca", "direct"],
                   help="Electricity Maps intensity: life-cycle (default) or direct (combustion)")
    i.add_argument("--currency", default="USD", help="price files: USD (default) or local")
    i.add_argument("--unit", default=None, help="generic files: unit of the values (else from the header)")
    i.add_argument("--tz", default=None, help="generic files with naive times: their time zone (e.g. UTC)")
    i.add_argument("--time-column", dest="time_column", default=None, help="generic files: the time column")
    i.add_argument("--column", default=None, help="generic files: the value column")
    i.add_argument("--interpolation", default=None, choices=["step", "linear"], help="override (default step)")
    i.add_argument("--resample", default=None, type=positive_float, metavar="SECONDS",
                   help="time-mean resample to this interval first (gaps filled forward)")
    i.add_argument("--plot", type=out_path, default=None, metavar="OUT.png", help="write a PNG of the series and its profile")
    add_json_flag(i)
    i.set_defaults(func=cmd_inspect)

    f = gs.add_parser("profile", help="write the hour-of-day means of a grid signal as a 24-hour CSV",
                      description="Average a grid signal (a region's 2023 data or a file) by UTC hour of day "
                                  "and write the 24 means as a generic signal CSV dated on --day: a small, "
                                  "derived profile a scenario can carry without the reference data.")
    f.add_argument("path", help="a signal CSV or a region name (caiso, ERCOT, DE, ...)")
    f.add_argument("--kind", default=None, help="for a region: average_ci (default), marginal_ci or price")
    f.add_argument("--basis", default="lca", choices=["lca", "direct"], help="Electricity Maps basis")
    f.add_argument("--currency", default="USD", help="price files: USD (default) or local")
    f.add_argument("--day", default="2023-06-01", help="the UTC day the 24 rows are dated on (YYYY-MM-DD)")
    f.add_argument("-o", "--out", required=True, help="output CSV")
    for k in ("format", "unit", "tz", "time_column", "column", "interpolation"):
        f.set_defaults(**{k: None})
    add_json_flag(f)
    f.set_defaults(func=cmd_profile)

    r = gs.add_parser("regions", help="the built-in regions and their reference signals")
    add_json_flag(r)
    r.set_defaults(func=cmd_regions)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
