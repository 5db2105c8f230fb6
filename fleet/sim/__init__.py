"""fleet.sim: the discrete-event fleet simulation.

``simulate(SimInput) -> SimResult`` is the entry point (see :mod:`fleet.sim.assemble`); the
serving engine is :class:`fleet.sim.engine.Engine`, training pools :mod:`fleet.sim.training`,
the power tree and telemetry :mod:`fleet.sim.power`, long horizons :mod:`fleet.sim.fluid`.
"""

from .input import SimInput
from .result import (JOB_COLUMNS, POOL_COLUMNS, POWER_COLUMNS, REQUEST_COLUMNS, SCHEDULE_COLUMNS, TREE_COLUMNS,
                     SimResult)


def simulate(x, **kwargs):
    """Simulate a :class:`~fleet.sim.input.SimInput` (``fleet.siminput.sim_input(scenario)``; a
    loaded scenario is converted too); see :func:`fleet.sim.assemble.simulate`
    (``fleet.simulate`` also takes a path)."""
    from .assemble import simulate as _simulate

    return _simulate(x, **kwargs)


def save_result(result, out_dir, fmt: str = "parquet"):
    from .assemble import save_result as _save

    return _save(result, out_dir, fmt)


__all__ = ["simulate", "save_result", "SimInput", "SimResult", "REQUEST_COLUMNS", "POWER_COLUMNS",
           "TREE_COLUMNS", "POOL_COLUMNS", "JOB_COLUMNS", "SCHEDULE_COLUMNS"]
