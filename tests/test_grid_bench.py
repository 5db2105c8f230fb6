"""Lookup speed of grid signals (run with ``python -m pytest -m bench -s tests/test_grid_bench.py``).

Prints ns per scalar lookup (``value_at`` after ``bind``: what the simulation calls per event) and per
element of a vectorised lookup of 1M times, for the real CAISO hourly intensity (regular: index
arithmetic), the same series with irregular stamps (bisect / searchsorted) and linear interpolation.
Median of several runs; no timing assertions.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from fleet.grid import Signal, read_signal

N_VEC = 1_000_000
N_SCALAR = 200_000
REPEATS = 5


def _median_ns(fn, n):
    times = []
    for _ in range(REPEATS):
        t0 = time.perf_counter_ns()
        fn()
        times.append((time.perf_counter_ns() - t0) / n)
    return float(np.median(times))


@pytest.mark.bench
def test_lookup_speed(shared_data):
    caiso = read_signal(shared_data / "electricitymaps-hourly-ci-2023" / "US-CAL-CISO_2023_hourly.csv")
    start = pd.Timestamp("2023-01-01", tz="UTC")
    # irregular stamps (hourly, with one half-hour step), gap-free at 1 h nominal resolution
    idx = caiso.index.insert(1, caiso.index[0] + pd.Timedelta(minutes=30))
    vals = np.insert(caiso.values, 1, caiso.values[0])
    irregular = Signal(idx, vals, caiso.unit, "average_ci", resolution_s=3600.0)
    linear = Signal(caiso.index, caiso.values, caiso.unit, "average_ci", "linear")
    rng = np.random.default_rng(42)
    t_vec = rng.uniform(0, 8759 * 3600.0, N_VEC)
    t_list = t_vec[:N_SCALAR].tolist()
    print()
    for name, sig in (("step, regular (index arithmetic)", caiso), ("step, irregular (bisect)", irregular),
                      ("linear, regular", linear)):
        b = sig.bind(start)
        va = b.value_at

        def scalar():
            for t in t_list:
                va(t)

        ns_scalar = _median_ns(scalar, N_SCALAR)
        ns_vec = _median_ns(lambda: b.at(t_vec), N_VEC)
        ref = np.array([va(t) for t in t_list[:1000]])
        np.testing.assert_array_equal(ref, b.at(t_vec[:1000]))
        print(f"grid lookup {name:34s}: scalar value_at {ns_scalar:7.1f} ns/lookup; "
              f"vectorised at() over 1M times {ns_vec:6.2f} ns/lookup")
    # through the Signal method (one more call layer than the bound closure)
    caiso.bind(start)
    sva = caiso.value_at

    def via_signal():
        for t in t_list:
            sva(t)

    print(f"grid lookup {'Signal.value_at after bind()':34s}: scalar value_at "
          f"{_median_ns(via_signal, N_SCALAR):7.1f} ns/lookup")
    # energy weighting of 1M intervals that straddle hour boundaries
    a = t_vec
    e = np.full(N_VEC, 1e3)
    ns_w = _median_ns(lambda: caiso.weighted(e, a, a + 900.0, start), N_VEC)
    print(f"grid weighted() exact, 1M 15-minute intervals: {ns_w:6.2f} ns/interval")
