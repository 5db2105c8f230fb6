"""fleet: a datacenter power and carbon fleet planner for AI accelerators.

The curated public API.  Names are imported lazily (on first use) so that ``import fleet`` and
the ``fleet`` command start fast; ``dir(fleet)`` lists them all.

Layers, bottom to top (see DESIGN.md): catalog -> hardware / workload -> frontier (the narrow
waist) -> sim / plan -> account -> report; scenario and run wire them.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

from .errors import (  # noqa: E402
    CatalogError,
    ConfigurationError,
    FleetError,
    GridError,
    InfeasibleError,
    InputError,
    ScenarioError,
    TraceError,
)

#: public name -> module that defines it
_LAZY = {
    # catalog
    "AcceleratorSpec": "fleet.catalog", "ModelSpec": "fleet.catalog", "get_accelerator": "fleet.catalog",
    "get_model": "fleet.catalog", "accelerators": "fleet.catalog", "models": "fleet.catalog",
    # work model and bounds
    "WorkCost": "fleet.workload.llm", "prefill_cost": "fleet.workload.llm", "decode_cost": "fleet.workload.llm",
    "memory_plan": "fleet.workload.llm", "max_batch": "fleet.workload.llm",
    "training_step_cost": "fleet.workload.llm", "training_memory": "fleet.workload.llm",
    "landauer_j_per_bit": "fleet.hardware.bounds", "inference_token_lower_bound_j": "fleet.hardware.bounds",
    "training_lower_bound_j": "fleet.hardware.bounds", "gap_orders_of_magnitude": "fleet.hardware.bounds",
    # hardware and the narrow waist
    "build_accelerator": "fleet.hardware", "load_device_constants": "fleet.catalog.device_energy",
    "OperatingPoint": "fleet.frontier", "normalize_precision": "fleet.catalog.precision",
    "ServingProfile": "fleet.frontier", "ServingFrontier": "fleet.frontier",
    "build_serving_profile": "fleet.frontier", "build_serving_frontier": "fleet.frontier",
    "operating_point_breakdown": "fleet.frontier",
    # demand
    "read_trace": "fleet.workload.traces", "write_trace": "fleet.workload.traces",
    "trace_stats": "fleet.workload.traces", "synth_trace": "fleet.workload.synth",
    "generate_jobs": "fleet.workload.jobs", "read_jobs": "fleet.workload.jobs",
    # grid
    "Signal": "fleet.grid", "read_signal": "fleet.grid", "load_region_signals": "fleet.grid", "PUE": "fleet.grid",
    # scenario, simulation, main job
    "Scenario": "fleet.scenario", "load_scenario": "fleet.scenario",
    "SimResult": "fleet.sim", "Engine": "fleet.sim.engine", "SimInput": "fleet.sim.input",
    "sim_input": "fleet.siminput",
    "account": "fleet.accounting", "Accounts": "fleet.accounting", "Metric": "fleet.accounting",
    "run_scenario": "fleet.run", "plan_step": "fleet.run", "write_report": "fleet.report",
    "check_scenario": "fleet.regress",
    # sweeps (many scenarios on Dask)
    "load_sweep": "fleet.sweep", "run_sweep": "fleet.sweep", "read_sweep_results": "fleet.sweep",
}


def simulate(scenario, **kwargs):
    """Simulate a scenario, given as a path to its YAML, a loaded :class:`Scenario` or its typed
    :class:`~fleet.sim.input.SimInput`, and return a :class:`SimResult` of DataFrames (see
    :func:`fleet.sim.assemble.simulate`)."""
    from .scenario import load_scenario
    from .sim import simulate as _simulate

    from .sim.input import SimInput
    from .siminput import sim_input

    if isinstance(scenario, SimInput):
        return _simulate(scenario, **kwargs)
    if not hasattr(scenario, "fleet"):
        scenario = load_scenario(scenario)
    return _simulate(sim_input(scenario), **kwargs)


def __getattr__(name: str):
    mod = _LAZY.get(name)
    if mod is None:
        raise AttributeError(f"module 'fleet' has no attribute {name!r}")
    value = getattr(importlib.import_module(mod), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(list(globals()) + list(_LAZY))


__all__ = [
    "__version__", "FleetError", "InputError", "TraceError", "GridError", "CatalogError",
    "ScenarioError", "ConfigurationError", "InfeasibleError", "simulate", *_LAZY,
]
