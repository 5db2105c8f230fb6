"""Run-level glue of the planner: plan -> apply -> simulate -> verify -> tighten, one module per
decision (``operate``, and later ``mix``, ``training``, ``power``).

``fleet.plan`` holds the OR-Tools models and knows the hardware only through frontiers; it never
simulates.  This package is where a plan meets the simulation and the accounting (as
``fleet/run.py`` is for the main job): each module here exposes

* ``add_arguments(parser)`` and ``cli(args) -> int`` for ``fleet plan <kind>`` (see
  :mod:`fleet.commands.plan`), and
* ``plan_and_verify(scenario, spec, *, log) -> PlanOutcome`` for ``fleet run`` when the
  scenario's ``plan.<kind>`` section is set.

A :class:`PlanOutcome` carries the planned scenario (re-validated, with both identities), the
solver's figures, the decisions, every verification round, the simulations of the plan and of the
scenario as written, and the savings; the report reads it and nothing else of the planner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pandas as pd

#: the planner kinds, in the order ``fleet plan`` lists them and ``fleet run`` applies them
KINDS = ("operate", "mix", "training", "power")


@dataclass
class PlanOutcome:
    """What one planner did in one run (plain data; the report reads it)."""

    kind: str                                   # 'operate' | 'mix' | 'training' | 'power'
    status: str                                 # solver status of the last round: OPTIMAL | FEASIBLE | INFEASIBLE | ...
    verified: bool                              # the simulation of the final plan passed every check
    scenario: Any                               # the planned Scenario (re-validated), or the original if none
    solver: dict = field(default_factory=dict)  # Solution.figures() of the final round
    decisions: list[dict] = field(default_factory=list)   # {path, value, was, note}
    rounds: list[dict] = field(default_factory=list)      # one per verification round
    metrics: dict = field(default_factory=dict)           # savings and figures (the --json keys)
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)   # for the report page
    sim: Any = None                             # SimResult of the final plan
    baseline_sim: Any = None                    # SimResult of the scenario as written
    conflicts: list[str] = field(default_factory=list)   # infeasibility explained, in the scenario's words
    notes: list[str] = field(default_factory=list)

    def flat_metrics(self) -> dict[str, tuple[float, str]]:
        """Every numeric figure as ``plan.<kind>.<name>`` with its unit (for regression checks):
        the metrics, plus ``verified`` (1/0) and the number of rounds."""
        out: dict[str, tuple[float, str]] = {}
        for k, v in self.metrics.items():
            if isinstance(v, bool):
                out[f"plan.{self.kind}.{k}"] = (float(v), "1")
            elif isinstance(v, (int, float)) and v is not None:
                if k.endswith("_pct"):
                    unit = "%"
                elif k.endswith("_s"):
                    unit = "s"
                elif k in ("objective", "bound"):
                    unit = str(self.metrics.get("objective_unit", "1"))
                else:
                    unit = str(self.metrics.get(k.replace("planned_", "").replace("baseline_", "") + "_unit", "1"))
                out[f"plan.{self.kind}.{k}"] = (float(v), unit)
        out[f"plan.{self.kind}.verified"] = (1.0 if self.verified else 0.0, "1")
        out[f"plan.{self.kind}.rounds"] = (float(len(self.rounds)), "1")
        return out

    def summary(self) -> dict:
        """A plain-data view for summary.json."""
        return {"kind": self.kind, "status": self.status, "verified": self.verified, "solver": self.solver,
                "metrics": {k: {"value": v, "unit": u} for k, (v, u) in self.flat_metrics().items()},
                "decisions": self.decisions, "rounds": self.rounds, "conflicts": self.conflicts,
                "notes": self.notes}

    def describe(self) -> str:
        what = f"{self.kind}: {self.status}, {'verified' if self.verified else 'NOT verified'} in simulation"
        if self.rounds:
            what += f" after {len(self.rounds)} round{'s' if len(self.rounds) != 1 else ''}"
        return what
