"""What a report is made from: the results of one run, never the simulation or planner internals.

:class:`RunResult` is built by :func:`fleet.run.run_scenario`; tests build it from a synthetic
:class:`~fleet.sim.result.SimResult`.  All tables use SI units in their column names.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from ..accounting import Accounts
from ..sim.result import SimResult

#: Energy breakdown per output token of each serving pool at its simulated operating point.
BREAKDOWN_COLUMNS = ["pool", "model", "accelerator", "batch", "power_cap_w", "compute_j", "memory_j",
                     "interconnect_j", "static_j", "model_j", "simulated_gpu_j"]
#: Physical lower bound of the energy per output token (J), and how it was obtained.
LOWER_BOUND_COLUMNS = ["pool", "model", "lower_bound_j", "method"]
#: Time-energy frontier: each pool's steady-state operating points across power caps.
FRONTIER_COLUMNS = ["pool", "model", "power_cap_w", "cap_fraction", "itl_s", "j_per_token",
                    "tokens_per_s", "current"]


@dataclass
class PoolAnalysis:
    """Energy-model view of each pool (from :mod:`fleet.frontier`); empty tables when the energy
    model could not be evaluated (``notes`` says why)."""

    breakdown: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=BREAKDOWN_COLUMNS))
    lower_bound: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=LOWER_BOUND_COLUMNS))
    frontier: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=FRONTIER_COLUMNS))
    notes: list[str] = field(default_factory=list)


@dataclass
class RunResult:
    """Everything one ``fleet run`` produced, as the report reads it."""

    name: str
    title: str
    scenario_hash: str
    seed: int
    sim: SimResult
    accounts: Accounts
    analysis: PoolAnalysis = field(default_factory=PoolAnalysis)
    #: per model: {'ttft_s': .., 'tpot_s': .., 'e2e_s': ..} (None where no SLO)
    slo: dict[str, dict] = field(default_factory=dict)
    #: what each planner decided (fleet.planning.PlanOutcome: decisions, solver figures, rounds,
    #: savings against the scenario as written); empty without a ``plan`` section
    plans: list = field(default_factory=list)
    #: provenance and context: scenario_path, version, git_commit, start_utc, horizon_s,
    #: carbon_signal, plan (decisions), timings_s, data_sources (list of str)
    meta: dict = field(default_factory=dict)
