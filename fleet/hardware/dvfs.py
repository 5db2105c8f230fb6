"""DVFS: how an SM clock (set directly, or chosen by a power cap) changes voltage and power.

Normalised clock ``x = f / f_max`` in ``[x_min, 1]``.  Voltage (relative to the voltage at
``f_max``) is flat at ``v_floor`` below the knee ``x_knee`` and rises linearly to 1 at ``x = 1``::

    V(x) = v_floor + (1 - v_floor) * clip((x - x_knee) / (1 - x_knee), 0, 1)

Consequences used by :mod:`fleet.hardware.energy` (CMOS: switching energy C V^2 per event):

* dynamic energy per FLOP scales with ``V(x)^2`` (the same switching events at a lower voltage);
* compute time scales with ``1/x``;
* the busy baseline power (clock tree, schedulers, leakage) scales as
  ``(1 - leak) * x * V^2 + leak * V`` of its max-clock value;
* HBM time and energy do not change (the memory clock is not scaled by SM DVFS).

A power cap picks the highest ``x`` whose average power does not exceed the cap
(:func:`solve_clock`), the behaviour of NVIDIA's power limiter over its averaging window.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from ..catalog.device_energy import DeviceConstants


@dataclass(frozen=True)
class VFCurve:
    v_floor: float
    x_knee: float
    x_min: float
    leakage_fraction: float

    @classmethod
    def from_constants(cls, c: DeviceConstants) -> "VFCurve":
        return cls(c["dvfs.v_floor"], c["dvfs.x_knee"], c["dvfs.x_min"], c["dvfs.leakage_fraction"])

    def voltage(self, x):
        """Relative core voltage at normalised clock ``x`` (array-friendly)."""
        x = np.asarray(x, dtype=float)
        ramp = np.clip((x - self.x_knee) / (1.0 - self.x_knee), 0.0, 1.0)
        return self.v_floor + (1.0 - self.v_floor) * ramp

    def dynamic_factor(self, x):
        """Energy per switching event relative to max clock: ``V(x)^2``."""
        v = self.voltage(x)
        return v * v

    def baseline_factor(self, x):
        """Busy-baseline power relative to max clock."""
        x = np.asarray(x, dtype=float)
        v = self.voltage(x)
        return (1.0 - self.leakage_fraction) * x * v * v + self.leakage_fraction * v


def solve_clock(power_of_x: Callable[[np.ndarray], np.ndarray], cap_w, x_min: float,
                shape=None, iters: int = 40) -> np.ndarray:
    """Largest ``x`` in ``[x_min, 1]`` with ``power_of_x(x) <= cap_w`` (vectorised bisection).

    ``power_of_x`` must be non-decreasing in ``x``.  Where even ``x_min`` exceeds the cap,
    ``x_min`` is returned (the caller then stretches time so that power equals the cap).
    """
    cap = np.asarray(cap_w, dtype=float)
    if shape is None:
        shape = np.broadcast(cap, power_of_x(np.ones(1))).shape
    one = np.ones(shape)
    p1 = power_of_x(one)
    ok = p1 <= cap
    lo = np.full(shape, x_min)
    hi = one.copy()
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        good = power_of_x(mid) <= cap
        lo = np.where(good, mid, lo)
        hi = np.where(good, hi, mid)
    return np.where(ok, 1.0, lo)
