"""``fleet plan <kind> SCENARIO``: run one planner (plan, apply, simulate, verify) and print its
decisions, the solver's figures, each verification round and the savings.

Each kind lives in :mod:`fleet.planning.<kind>` and brings its own arguments
(``add_arguments``) and entry point (``cli``); kinds whose module is absent are not listed.
"""

from __future__ import annotations

import importlib

from ..planning import KINDS


def register(sub) -> None:
    p = sub.add_parser("plan", help="decide with OR-Tools: power caps and active replicas (operate), ...",
                       description="Plan a scenario with OR-Tools, apply the plan, simulate it and verify it "
                                   "(tightening and solving again where the simulation rejects it).")
    kinds = p.add_subparsers(dest="plan_kind", metavar="KIND")
    for kind in KINDS:
        try:
            mod = importlib.import_module(f"fleet.planning.{kind}")
        except ModuleNotFoundError as exc:
            if exc.name == f"fleet.planning.{kind}":
                continue
            raise
        k = kinds.add_parser(kind, help=(mod.__doc__ or kind).strip().splitlines()[0],
                             description=(mod.__doc__ or "").strip())
        mod.add_arguments(k)
        k.set_defaults(func=mod.cli)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
