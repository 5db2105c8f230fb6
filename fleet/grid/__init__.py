"""fleet.grid: grid signals (average and marginal carbon intensity, electricity price, PUE).

One type, :class:`Signal` (UTC inside, step or linear interpolation, stated); readers for the
Electricity Maps hourly export, WattTime MOER, hourly price files and generic CSV
(:func:`read_signal` detects which); a region registry (:func:`load_region_signals`); PUE models
(:class:`PUE`).  Imports nothing from fleet except errors, paths and _io.

Typical use on a simulation clock::

    ci = load_region_signals("caiso", "average_ci").for_window(start_utc, horizon_s)
    ci.bind(start_utc)
    g = ci.value_at(t_s)                          # O(1), gCO2e/kWh
    grams = ci.weighted_sum(energy_j, t0_s, t1_s)  # exact, splits intervals at hour boundaries
"""

from .pue import DEFAULT_PUE_CURVE, PUE, PUECurve
from .readers import (FORMATS, detect_format, read_electricitymaps, read_generic, read_prices, read_signal,
                      read_watttime, write_signal_csv)
from .regions import REGIONS, Region, load_region_signals, region, region_file
from .signal import GAP_POLICIES, INTERPOLATIONS, KINDS, BoundSignal, Gap, Signal, split_at_boundaries
from .summary import plot_signal, summarize
from .units import LB_PER_MWH_TO_G_PER_KWH, normalise_unit, per_energy

__all__ = [
    "Signal", "BoundSignal", "Gap", "KINDS", "INTERPOLATIONS", "GAP_POLICIES", "split_at_boundaries",
    "read_signal", "read_electricitymaps", "read_watttime", "read_prices", "read_generic", "write_signal_csv",
    "detect_format", "FORMATS",
    "Region", "REGIONS", "region", "region_file", "load_region_signals",
    "PUE", "PUECurve", "DEFAULT_PUE_CURVE",
    "summarize", "plot_signal",
    "LB_PER_MWH_TO_G_PER_KWH", "normalise_unit", "per_energy",
]
