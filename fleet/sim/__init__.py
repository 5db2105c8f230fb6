"""fleet.sim: the discrete-event fleet simulation.

``simulate(scenario) -> SimResult`` is the entry point (see :mod:`fleet.sim.assemble`); the
serving engine is :class:`fleet.sim.engine.Engine`, training pools :mod:`fleet.sim.training`,
the power tree and telemetry :mod:`fleet.sim.power`, long horizons :mod:`fleet.sim.fluid`.
"""

from .result import JOB_COLUMNS, POOL_COLUMNS, POWER_COLUMNS, REQUEST_COLUMNS, TREE_COLUMNS, SimResult


def simulate(scenario, **kwargs):
    """Simulate a loaded scenario; see :func:`fleet.sim.assemble.simulate` (``fleet.simulate`` also takes a path)."""
    from .assemble import simulate as _simulate

    return _simulate(scenario, **kwargs)


def save_result(result, out_dir, fmt: str = "parquet"):
    from .assemble import save_result as _save

    return _save(result, out_dir, fmt)


__all__ = ["simulate", "save_result", "SimResult", "REQUEST_COLUMNS", "POWER_COLUMNS", "TREE_COLUMNS",
           "POOL_COLUMNS", "JOB_COLUMNS"]
