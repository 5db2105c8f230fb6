"""Benchmark: read a generated 10-million-row Azure-format CSV in bounded memory.

Run: python -m pytest -m bench -s tests/test_bench_traces.py

Prints rows/s (median of 3 streamed reads) and peak resident memory (VmHWM of a fresh
subprocess per measurement, so the numbers do not include the generator; it includes about
105 MB for the Python interpreter with numpy, pandas and pyarrow loaded) for streaming with
1,000,000- and 100,000-row chunks and for reading the whole table at once.  No timing assertions:
only that every row was read and that streaming peak memory is far below the whole read.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys

import numpy as np
import pytest

N_ROWS = 10_000_000

_READER = r"""
import json, resource, sys, time
from fleet.workload.traces import iter_trace_chunks, read_trace
path, mode, chunk = sys.argv[1], sys.argv[2], int(sys.argv[3])
t = time.perf_counter()
n = 0; tokens = 0
if mode == "stream":
    for c in iter_trace_chunks(path, chunksize=chunk):
        n += len(c); tokens += int(c["input_tokens"].sum())
else:
    df = read_trace(path, chunksize=chunk)
    n = len(df); tokens = int(df["input_tokens"].sum())
dt = time.perf_counter() - t
try:  # VmHWM: this process image's own peak (ru_maxrss would include the forking parent's)
    hwm = next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM")) / 1024
except (OSError, StopIteration):
    hwm = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"rows": n, "tokens": tokens, "seconds": dt, "peak_rss_mb": hwm}))
"""


def _generate(path, n: int) -> int:
    """An Azure-format CSV (TIMESTAMP, ContextTokens, GeneratedTokens), Poisson at 100 req/s."""
    import pyarrow as pa
    import pyarrow.csv as pcsv

    rng = np.random.default_rng(0)
    gaps_ns = (rng.exponential(1 / 100.0, n) * 1e9).astype(np.int64)
    ts = (np.int64(1_700_158_623_979_960_100) + np.cumsum(gaps_ns)).astype("datetime64[ns]")
    inp = rng.integers(1, 8000, n)
    out = rng.integers(1, 1000, n)
    table = pa.table({"TIMESTAMP": pa.array(ts), "ContextTokens": inp, "GeneratedTokens": out})
    with open(path, "wb") as fh:
        fh.write(b"TIMESTAMP,ContextTokens,GeneratedTokens\n")
        pcsv.write_csv(table, fh, pcsv.WriteOptions(include_header=False, quoting_style="none"))
    return int(inp.sum())


def _run(path, mode: str, chunk: int) -> dict:
    res = subprocess.run([sys.executable, "-c", _READER, str(path), mode, str(chunk)],
                         capture_output=True, text=True, check=True)
    return json.loads(res.stdout)


@pytest.mark.bench
def test_bench_read_10m_row_csv(tmp_path):
    path = tmp_path / "azure_10m.csv"
    tokens = _generate(path, N_ROWS)
    size_mb = path.stat().st_size / 1e6
    stream = [_run(path, "stream", 1_000_000) for _ in range(3)]
    small = _run(path, "stream", 100_000)
    whole = _run(path, "whole", 1_000_000)
    for r in stream + [small, whole]:
        assert r["rows"] == N_ROWS and r["tokens"] == tokens
    med = statistics.median(r["seconds"] for r in stream)
    runs = ", ".join(f"{r['seconds']:.2f}" for r in stream)
    print(f"\n10M-row Azure-format CSV ({size_mb:.0f} MB):")
    print(f"  streamed, 1,000,000-row chunks: {N_ROWS / med:,.0f} rows/s (median of 3: "
          f"{runs} s), peak RSS "
          f"{max(r['peak_rss_mb'] for r in stream):.0f} MB")
    print(f"  streamed, 100,000-row chunks:   {N_ROWS / small['seconds']:,.0f} rows/s, peak RSS "
          f"{small['peak_rss_mb']:.0f} MB")
    print(f"  whole table (read_trace):       {N_ROWS / whole['seconds']:,.0f} rows/s, peak RSS "
          f"{whole['peak_rss_mb']:.0f} MB")
    # bounded memory: small chunks use far less memory than holding the 10M-row table
    assert small["peak_rss_mb"] < 0.5 * whole["peak_rss_mb"]
