"""The ``fleet`` command.

Each command group lives in its own module under :mod:`fleet.commands` and exposes
``register(subparsers)``; a registered sub-command sets ``func(args) -> int``.  Modules are
listed here, in help order.  Every :class:`~fleet.errors.FleetError` is printed as one clear
message and the process exits non-zero; no traceback unless ``--verbose``.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys

from . import __version__
from .errors import FleetError

COMMAND_MODULES = [
    "fleet.commands.catalog",    # hardware list, models list
    "fleet.commands.energy",     # estimate, frontier, calibrate
    "fleet.commands.trace",      # trace inspect, trace synth
    "fleet.commands.grid",       # grid inspect
    "fleet.commands.simulate",   # simulate
    "fleet.commands.run",        # run, check
    "fleet.commands.plan",       # plan operate|mix|training|power
    "fleet.commands.sweep",      # sweep
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="fleet",
        description="Datacenter power and carbon fleet planner for AI accelerators.",
    )
    parser.add_argument("--version", action="version", version=f"fleet {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what is happening; tracebacks on error")
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bars or info messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    # the command line draws only into files: a headless matplotlib backend, chosen here and
    # nowhere in the library (a user's own MPLBACKEND wins)
    os.environ.setdefault("MPLBACKEND", "Agg")
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:   # a bad argument (exit 2, message printed) or --help/--version (0)
        return exc.code if isinstance(exc.code, int) else 2
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else (logging.WARNING if args.quiet else logging.INFO),
        format="%(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except FleetError as exc:
        if args.verbose:
            raise
        print(f"fleet: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("fleet: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
