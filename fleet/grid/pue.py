"""Power usage effectiveness (PUE): facility energy = PUE x IT energy.

A PUE is a :class:`~fleet.grid.signal.Signal` of kind ``pue`` and unit ``"1"``: a constant
(:meth:`PUE.constant`), a time series read from a file (:meth:`PUE.from_signal`), or a function of the
outside temperature (:meth:`PUE.from_temperature`, a piecewise-linear curve PUE(T) applied to a
temperature signal).

Default curve (:data:`DEFAULT_PUE_CURVE`) -- **modelled, not measured**; an illustrative shape for a
modern air-cooled hyperscale site with economisers:

* at or below 10 °C: 1.10 -- the economiser carries the cooling load.  Anchor: Google reports a
  fleet-wide trailing-twelve-month PUE of 1.10 for 2023 (Google 2024 Environmental Report).
* 10 -> 25 °C: linear to 1.20 -- partial mechanical cooling.
* 25 -> 35 °C: linear to 1.40 -- chillers carry most of the load.
* above 35 °C: held at 1.40 (the curve is clamped at both ends).

For scale, the Uptime Institute Global Data Center Survey 2023 reports an industry-average annual PUE of
1.58; give a curve or a constant of your own for an older or a liquid-cooled site.  The breakpoints
are our assumption, labelled ``modelled`` in :attr:`PUECurve.status`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import GridError, fmt_value
from .signal import Signal
from .units import temperature_to_celsius


@dataclass(frozen=True)
class PUECurve:
    """Piecewise-linear PUE as a function of outside dry-bulb temperature in °C (clamped at the ends)."""

    temps_c: tuple[float, ...]
    pue: tuple[float, ...]
    source: str = ""
    status: str = "modelled"  # measured | calibrated | modelled

    def __post_init__(self) -> None:
        t = np.asarray(self.temps_c, dtype=float)
        p = np.asarray(self.pue, dtype=float)
        if len(t) < 1 or len(t) != len(p):
            raise GridError("PUE curve: temperatures and PUE values must be non-empty and of equal length")
        if not (np.all(np.isfinite(t)) and np.all(np.isfinite(p))):
            raise GridError("PUE curve: non-finite breakpoint", expected="finite numbers")
        if np.any(np.diff(t) <= 0):
            raise GridError("PUE curve: temperatures must increase", expected="strictly increasing breakpoints")
        if np.any(p < 1.0):
            raise GridError(f"PUE curve: PUE {p.min():g} below 1", expected="PUE >= 1 (facility >= IT energy)")

    def __call__(self, temp_c: np.ndarray | float) -> np.ndarray:
        return np.interp(np.asarray(temp_c, dtype=float), self.temps_c, self.pue)


DEFAULT_PUE_CURVE = PUECurve(
    temps_c=(10.0, 25.0, 35.0),
    pue=(1.10, 1.20, 1.40),
    source="modelled: floor 1.10 = Google fleet TTM PUE 2023 (Google 2024 Environmental Report); "
           "rise with temperature assumed (economiser -> mechanical cooling); industry mean 1.58 "
           "(Uptime Institute survey 2023) for scale",
    status="modelled",
)


class PUE:
    """A PUE signal with the facility-energy helper.  Times are seconds on the simulation clock."""

    def __init__(self, signal: Signal):
        if signal.kind != "pue" or signal.unit != "1":
            raise GridError(f"{signal.describe_where()}: a PUE needs kind 'pue' and unit '1', got "
                            f"{signal.kind!r} in {signal.unit!r}")
        if float(np.min(signal.values)) < 1.0:
            raise GridError(f"{signal.describe_where()}: PUE {float(np.min(signal.values)):g} is below 1",
                            expected="PUE >= 1")
        self.signal = signal

    @classmethod
    def constant(cls, value: float) -> "PUE":
        """A constant PUE (e.g. 1.2)."""
        try:
            v = float(value)
        except (TypeError, ValueError) as exc:
            raise GridError(f"PUE {fmt_value(value)} is not a number", expected="a number >= 1") from exc
        if not (v >= 1.0 and np.isfinite(v)):
            raise GridError(f"PUE {fmt_value(value)} is below 1 or not finite", expected="a number >= 1")
        return cls(Signal.constant(v, "1", "pue", source=f"constant PUE {v:g}"))

    @classmethod
    def from_signal(cls, signal: Signal) -> "PUE":
        return cls(signal)

    @classmethod
    def from_temperature(cls, temperature: Signal, curve: PUECurve = DEFAULT_PUE_CURVE) -> "PUE":
        """PUE(T(t)) for a temperature signal in degC, K or degF (the interpolation of the temperature
        series is kept: a linear temperature gives PUE at its sample points, joined linearly)."""
        try:
            temp_c = temperature_to_celsius(temperature.values, temperature.unit)
        except ValueError as exc:
            raise GridError(f"{temperature.describe_where()}: {exc}") from exc
        meta = {**temperature.meta, "pue_curve": {"temps_c": list(curve.temps_c), "pue": list(curve.pue),
                                                    "source": curve.source, "status": curve.status}}
        meta.pop("lines", None)
        sig = Signal(temperature.index, curve(temp_c), "1", "pue", temperature.interpolation,
                     f"PUE(T) from {temperature.describe_where()}", meta, temperature.resolution_s,
                     temperature.is_constant)
        return cls(sig)

    def bind(self, start_utc: Any) -> "PUE":
        self.signal.bind(start_utc)
        return self

    def value_at(self, t_s: float) -> float:
        return self.signal.value_at(t_s)

    def at(self, t_s, start_utc: Any = None) -> np.ndarray:
        return self.signal.at(t_s, start_utc)

    def facility_energy(self, it_energy_j, start_s, end_s=None, start_utc: Any = None) -> np.ndarray:
        """Facility energy in J for IT energy ``it_energy_j`` spent over ``[start_s, end_s)`` (exact
        time-mean PUE over each interval; the PUE at ``start_s`` when ``end_s`` is None)."""
        return self.signal.weighted(it_energy_j, start_s, end_s, start_utc)
