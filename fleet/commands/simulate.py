"""``fleet simulate SCENARIO -o DIR``: run the simulation of a scenario and write its tables.

Writes ``requests``, ``power`` (long telemetry), ``tree``, ``pools``, ``jobs`` (and ``series``
when the scenario records it) as Parquet or CSV, plus ``meta.json``, into ``DIR`` atomically:
a failed run leaves no partial directory.
"""

from __future__ import annotations

import argparse
import logging

from ._common import add_json_flag, emit, out_path

log = logging.getLogger(__name__)


def register(sub) -> None:
    p = sub.add_parser("simulate", help="simulate a scenario and write its result tables")
    p.add_argument("scenario", help="scenario YAML file")
    p.add_argument("-o", "--output", required=True, metavar="DIR", type=out_path, help="output directory (replaced atomically)")
    p.add_argument("--mode", choices=["coalesced", "iteration", "fluid"], default=None,
                   help="override simulation.mode (iteration = one event per decode iteration, the reference; fluid = hourly steps)")
    p.add_argument("--format", choices=["parquet", "csv"], default="parquet", help="table format [parquet]")
    add_json_flag(p)
    p.set_defaults(func=cmd_simulate)


def cmd_simulate(args: argparse.Namespace) -> int:
    from ..run import simulate_step
    from ..scenario import load_scenario
    from ..sim import save_result

    from .._io import check_output_dir
    from ..sim.assemble import SIM_MARKER

    sc = load_scenario(args.scenario)
    check_output_dir(args.output, SIM_MARKER)       # before the work, not after
    quiet = bool(getattr(args, "quiet", False))
    log.info("simulating %s (%s mode)", sc.name, args.mode or sc.simulation.mode)
    # the same path as `fleet run` (what-if part included)
    res = simulate_step(sc, quiet=quiet, mode=args.mode)
    out = save_result(res, args.output, args.format)
    req = res.requests
    summary = {
        "scenario": sc.name, "output": str(out), "format": args.format,
        "horizon_s": res.meta["horizon_s"], "requests": int(len(req)),
        "completed": int((req["status"] == "completed").sum()) if len(req) else 0,
        "site_energy_kwh": float(res.pools["it_energy_j"].sum()) / 3.6e6,
        "events": res.meta["events"], "wall_s": round(res.meta["wall_s"], 3),
    }
    emit(summary, args.json)
    return 0
