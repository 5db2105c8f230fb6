"""fleet: a datacenter power and carbon fleet planner for AI accelerators.

The public API is curated here; see the README for the layers (catalog, hardware, workload,
grid, frontier, sim, plan, account, report).
"""

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

__all__ = [
    "__version__",
    "FleetError",
    "InputError",
    "TraceError",
    "GridError",
    "CatalogError",
    "ScenarioError",
    "ConfigurationError",
    "InfeasibleError",
]
