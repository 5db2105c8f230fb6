"""Property tests: random damage to real grid files.  Whatever the damage, every reader either returns
a valid Signal or raises one of the project's own errors (a FleetError subclass), never anything else."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.errors import FleetError
from fleet.grid import Signal, read_signal
from fleet.grid.summary import summarize

SOURCES = [
    "electricitymaps-hourly-ci-2023/JP-TK_2023_hourly.csv",
    "hourly-electricity-prices-2023/DE-LU_prices_2023_utc.csv",
    "vessim-watttime-caiso-north-moer/watttime_example.csv",
]
GENERIC = ("time,ci [gCO2e/kWh]\n2023-01-01T00:00:00Z,100.5\n2023-01-01T01:00:00Z,90\n"
           "2023-01-01T02:00:00Z,80\n2023-01-01T04:00:00Z,70\n2023-01-01T05:00:00Z,60\n")

JUNK = st.text(alphabet=list(',\n\r"\' :-+TZ.0123456789eE;nNaAinf₂\x00\tabc[]()/'), min_size=1, max_size=12)


@pytest.fixture(scope="module")
def samples(shared_data):
    out = []
    for rel in SOURCES:
        lines = (shared_data / rel).read_bytes().split(b"\n")
        out.append(b"\n".join(lines[:40]) + b"\n")
    out.append(GENERIC.encode())
    return out


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("grid_props")


mutation = st.one_of(
    st.tuples(st.just("delete"), st.floats(0, 1), st.integers(1, 40)),
    st.tuples(st.just("insert"), st.floats(0, 1), JUNK),
    st.tuples(st.just("bytes"), st.floats(0, 1), st.binary(min_size=1, max_size=4)),
    st.tuples(st.just("truncate"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("swap_lines"), st.floats(0, 1), st.integers(1, 30)),
    st.tuples(st.just("dup_line"), st.floats(0, 1), st.just(0)),
    st.tuples(st.just("field"), st.floats(0, 1), JUNK),
)


def _mutate(data: bytes, ops) -> bytes:
    for op, where, arg in ops:
        pos = int(where * len(data)) if data else 0
        if op == "delete":
            data = data[:pos] + data[pos + arg:]
        elif op == "insert":
            data = data[:pos] + arg.encode("utf-8") + data[pos:]
        elif op == "bytes":
            data = data[:pos] + arg + data[pos:]
        elif op == "truncate":
            data = data[:pos]
        else:
            lines = data.split(b"\n")
            i = min(int(where * len(lines)), len(lines) - 1)
            if op == "swap_lines":
                j = min(i + arg, len(lines) - 1)
                lines[i], lines[j] = lines[j], lines[i]
            elif op == "dup_line":
                lines.insert(i, lines[i])
            else:  # replace one field of a line
                fields = lines[i].split(b",")
                k = int(where * 997) % len(fields)
                fields[k] = arg.encode("utf-8")
                lines[i] = b",".join(fields)
            data = b"\n".join(lines)
    return data


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, len(SOURCES)), ops=st.lists(mutation, min_size=1, max_size=4),
       fmt=st.sampled_from([None, "electricitymaps", "watttime", "prices", "generic"]),
       tz=st.sampled_from([None, "UTC", "Europe/Berlin", "Not/AZone"]),
       gaps=st.sampled_from(["keep", "error", "ffill", "interpolate"]),
       currency=st.sampled_from(["USD", "local"]), basis=st.sampled_from(["lca", "direct"]),
       unit=st.sampled_from([None, "gCO2e/kWh", "1"]))
def test_damaged_files_raise_only_fleet_errors(samples, workdir, which, ops, fmt, tz, gaps, currency, basis, unit):
    path = workdir / "damaged.csv"
    path.write_bytes(_mutate(samples[which], ops))
    try:
        sig = read_signal(path, fmt=fmt, tz=tz, gaps=gaps, currency=currency, basis=basis, unit=unit)
    except FleetError:
        return
    # a signal that came back is valid, and everything downstream fails only with our own errors
    assert isinstance(sig, Signal)
    assert np.all(np.isfinite(sig.values)) and len(sig) >= 1
    assert sig.index.tz is not None and np.all(np.diff(sig.index.asi8) > 0)
    try:
        summarize(sig)
        b = sig.bind(sig.start)
        b.value_at(0.0)
        sig.weighted_sum(np.ones(3), np.zeros(3), np.full(3, 10.0))
        sig.resample(3600.0)
    except FleetError:
        pass


def test_undamaged_samples_read(samples, workdir):
    for i, data in enumerate(samples):
        p = workdir / f"ok{i}.csv"
        p.write_bytes(data)
        sig = read_signal(p)
        assert len(sig) >= 5
