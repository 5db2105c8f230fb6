"""Benchmarks of the scenario-side of the simulation (run with ``pytest -m bench -s``): telemetry
binning and roll-up at the scale of the issue's 100x Azure target, the fluid model over a year of
hours, and the stage breakdown of simulate() on the Azure conversation trace."""

from __future__ import annotations

import statistics
import time

import numpy as np
import pandas as pd
import pytest

pytestmark = pytest.mark.bench


def _median(fn, n=3):
    out = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return statistics.median(out)


def test_bench_telemetry_800_replicas():
    from fleet.scenario import parse_scenario
    from fleet.sim.power import Placement, bin_energy, build_tree, telemetry

    fl = parse_scenario({"name": "b", "fleet": {"pools": [{"name": "h", "accelerator": "H100-SXM", "gpus": 800,
                                                          "serve": [{"model": "llama-3.1-8b"}]}]}}, check=False).sim_input()
    tree = build_tree(fl.pools, fl.power, {"h": [Placement("h/r", 800, 1, 72.0)]}, tdp_w={"h": 700.0})
    rng = np.random.default_rng(0)
    n, H = 5_800_000, 3624.0          # about 3 segments per request of the 1.9 M-request target
    t0 = np.sort(rng.uniform(0, H - 1, n))
    d = rng.exponential(0.05, n)
    seg = {"node_idx": rng.integers(0, 800, n), "t0": t0, "t1": np.minimum(t0 + d, H), "energy_j": d * 400}
    tb = _median(lambda: bin_energy(seg, tree, 1.0, H))
    b = bin_energy(seg, tree, 1.0, H)
    tt = _median(lambda: telemetry(None, tree, 1.0, H, binned=b))
    print(f"\ntelemetry: {n:,} segments on 800 replicas x {int(H)} bins: binning {tb:.2f} s "
          f"({n / tb / 1e6:.1f} M segments/s), long table of {len(telemetry(None, tree, 1.0, H, binned=b)):,} "
          f"rows {tt:.2f} s")


def test_bench_fluid_year():
    from fleet.frontier import build_serving_profile
    from fleet.sim.fluid import FluidModel

    m = FluidModel(build_serving_profile("llama-3.1-8b", "H100-SXM", 1), 100, 1.0, 0.6, 0.4)
    h = np.arange(8760)
    load = pd.DataFrame({"time_s": h * 3600.0, "duration_s": 3600.0, "rate_rps": 400 + 300 * np.sin(2 * np.pi * h / 24),
                         "input_mean": 1155.0, "input_sq_mean": 2.0e6, "output_mean": 211.0})
    t = _median(lambda: m.predict(load))
    print(f"\nfluid: a year of hourly steps for a 100-replica group in {t:.2f} s")


def test_bench_simulate_stages(shared_data, tmp_path):
    import yaml

    from fleet.scenario import load_scenario
    from fleet.sim import simulate

    d = {"name": "bench", "seed": 1,
         "fleet": {"pools": [{"name": "h100", "accelerator": "H100-SXM", "gpus": 8,
                              "serve": [{"model": "llama-3.1-8b", "tp": 1}]}]},
         "demand": {"inference": [{"model": "llama-3.1-8b", "trace": {
             "path": str(shared_data / "azure-llm-inference-2023" / "AzureLLMInferenceTrace_conv.csv")}}]},
         "simulation": {"telemetry_interval_s": 1.0}}
    p = tmp_path / "b.yaml"
    p.write_text(yaml.safe_dump(d))
    sc = load_scenario(p)
    simulate(sc)                                  # warm the profile cache
    runs = [simulate(sc) for _ in range(3)]
    walls = sorted(r.meta["wall_s"] for r in runs)
    r = runs[[x.meta["wall_s"] for x in runs].index(walls[1])]
    n = len(r.requests)
    print(f"\nsimulate(): Azure conv ({n:,} requests) on 8 x H100 replicas, 1 s telemetry: "
          f"{walls[1]:.2f} s wall (median of 3), {n / walls[1]:,.0f} requests/s end to end; "
          f"stages {r.meta['stages']}")
