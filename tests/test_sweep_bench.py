"""Benchmarks of `fleet sweep` (run with: python -m pytest -m bench -s tests/test_sweep_bench.py).

Prints (no timing assertions; the figures are for the record):
- points per minute on a small scenario with 1 and 2 worker processes (warm workers), and the ratio;
- the scheduling overhead per point at 10,000 trivial points (no simulation): the whole pipeline
  (design and hashing, batching, Dask round trips, Parquet files) divided by the points, with Dask
  (2 workers) and serially in this process.
"""

from __future__ import annotations

import copy
import time

import pytest
from test_sweep import BASE

from fleet.sweep import design_points, parse_sweep, read_results, run_sweep

SMALL_POINTS = 16


def _small_sweep(tmp_path, values, name):
    base = copy.deepcopy(BASE)
    base["simulation"]["horizon_s"] = 300                     # 5 minutes, ~600 requests per point
    base["demand"]["inference"][0]["synth"]["hours"] = 0.084
    data = {"kind": "sweep", "name": name, "base": base, "metrics": ["energy.it", "cost.total", "carbon.total"],
            "parameters": [{"path": "site.carbon_intensity", "values": values}]}
    return parse_sweep(data, path=tmp_path / f"{name}.yaml")


@pytest.mark.bench
def test_bench_points_per_minute_1_and_2_workers(tmp_path):
    import distributed

    rates = {}
    for n in (1, 2):
        cluster = distributed.LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0")
        client = distributed.Client(cluster)
        try:
            # warm every worker (imports, catalog, serving profiles): one point each, batch size 1
            run_sweep(_small_sweep(tmp_path, [float(1000 + k) for k in range(n)], f"warm{n}"), tmp_path / f"w{n}",
                      client=client, quiet=True, report=False, batch_size=1)
            sw = _small_sweep(tmp_path, [float(100 + k) for k in range(SMALL_POINTS)], f"small{n}")
            t0 = time.perf_counter()
            o = run_sweep(sw, tmp_path / f"s{n}", client=client, quiet=True, report=False, batch_size=1)
            wall = time.perf_counter() - t0
        finally:
            client.close()
            cluster.close()
        assert o.counts["ok"] == SMALL_POINTS
        r = read_results(tmp_path / f"s{n}")
        rates[n] = SMALL_POINTS / wall * 60
        print(f"\nfleet sweep, {SMALL_POINTS} small points (5 min of Poisson traffic on 2 x H100, mean "
              f"{r['wall_s'].mean():.2f} s per point on a worker), {n} worker(s): {wall:.2f} s, "
              f"{rates[n]:.0f} points/min")
    print(f"fleet sweep scaling: 2 workers / 1 worker = {rates[2] / rates[1]:.2f}x "
          f"(ideal 2x on 2 free cores)")


def _trivial_sweep(tmp_path, n_side=100):
    """n_side x n_side points that only apply their values (no scenario validation, no simulation)."""
    base = copy.deepcopy(BASE)
    data = {"kind": "sweep", "name": f"trivial{n_side}", "base": base, "metrics": ["x"],
            "parameters": [{"path": "site.carbon_intensity", "values": [float(k) for k in range(n_side)]},
                           {"path": "site.price", "values": [float(k) for k in range(n_side)]}]}
    return parse_sweep(data, path=tmp_path / f"trivial{n_side}.yaml")


def _trivial_point(data, base_path):
    return {"x": (data["site"]["carbon_intensity"] + data["site"]["price"], "1")}


@pytest.mark.bench
def test_bench_overhead_per_point_at_10000_trivial_points(tmp_path):
    import distributed

    sw = _trivial_sweep(tmp_path)
    t0 = time.perf_counter()
    n = len(design_points(sw))
    t_design = time.perf_counter() - t0
    assert n == 10_000
    t0 = time.perf_counter()
    o = run_sweep(sw, tmp_path / "serial", workers=0, quiet=True, report=False, point_fn=_trivial_point)
    t_serial = time.perf_counter() - t0
    assert o.counts["ok"] == n
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    client = distributed.Client(cluster)
    try:
        # warm the workers (imports) so that the figure is the pipeline's, not the processes' start
        run_sweep(_trivial_sweep(tmp_path, 4), tmp_path / "warm", client=client, quiet=True, report=False,
                  point_fn=_trivial_point, batch_size=1)
        t0 = time.perf_counter()
        o = run_sweep(sw, tmp_path / "dask", client=client, quiet=True, report=False, point_fn=_trivial_point)
        t_dask = time.perf_counter() - t0
    finally:
        client.close()
        cluster.close()
    assert o.counts["ok"] == n and len(read_results(tmp_path / "dask")) == n
    print(f"\nfleet sweep, {n} trivial points: design and hashing {t_design:.2f} s "
          f"({1e6 * t_design / n:.0f} µs/point)")
    print(f"  serial (no Dask): {t_serial:.2f} s, {1e6 * t_serial / n:.0f} µs/point")
    print(f"  Dask, 2 workers, {o.batch_size} points per task ({-(-n // o.batch_size)} tasks): {t_dask:.2f} s, "
          f"{1e6 * t_dask / n:.0f} µs/point of scheduling overhead (pipeline wall time / points)")
