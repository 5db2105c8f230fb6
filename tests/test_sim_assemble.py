"""simulate(scenario) end to end: demand from a real trace and a generator, heterogeneous serving
pools, a training pool, the power tree, the pool table, and the CLI's atomic output."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
import yaml

from fleet.errors import ScenarioError
from fleet.scenario import load_scenario
from fleet.sim import simulate
from fleet.sim.result import JOB_COLUMNS, POOL_COLUMNS, POWER_COLUMNS, REQUEST_COLUMNS, TREE_COLUMNS


def scenario(tmp_path, shared_data, **over) -> dict:
    d = {
        "name": "hetero",
        "seed": 7,
        "fleet": {"pools": [
            {"name": "h100", "accelerator": "H100-SXM", "gpus": 4, "gpus_per_server": 4, "row": "row0",
             "serve": [{"model": "llama-3.1-8b", "tp": 1, "replicas": 3}]},          # one spare GPU
            {"name": "a100", "accelerator": "A100-80GB-SXM", "gpus": 2, "gpus_per_server": 2, "row": "row0",
             "power_cap_w": 300.0, "serve": [{"model": "llama-3.1-8b", "tp": 1}]},
            {"name": "train", "accelerator": "H100-SXM", "gpus": 8, "role": "training", "row": "row1"},
        ], "power": {"site_budget_w": 50000.0}},
        "demand": {
            "inference": [{"model": "llama-3.1-8b",
                           "trace": {"path": str(shared_data / "azure-llm-inference-2023" /
                                                 "AzureLLMInferenceTrace_conv.csv"),
                                     "window": [0.0, 120.0]}}],
            "training": {"synth": {"jobs": 3, "hours": 0.05, "max_gpus": 8}},
        },
        "simulation": {"telemetry_interval_s": 2.0, "record": ["requests", "power", "series"]},
    }
    d.update(over)
    return d


@pytest.fixture(scope="module")
def result(tmp_path_factory, shared_data):
    tmp = tmp_path_factory.mktemp("sc")
    p = tmp / "s.yaml"
    p.write_text(yaml.safe_dump(scenario(tmp, shared_data)))
    return simulate(load_scenario(p))


def test_tables_follow_the_contract(result):
    assert set(REQUEST_COLUMNS) <= set(result.requests.columns)
    assert list(result.power.columns) == list(POWER_COLUMNS)
    assert set(TREE_COLUMNS) <= set(result.tree.columns)
    assert list(result.pools.columns) == list(POOL_COLUMNS)
    assert set(JOB_COLUMNS) <= set(result.jobs.columns)
    m = result.meta
    for k in ("scenario", "scenario_hash", "seed", "horizon_s", "telemetry_interval_s", "start_utc", "mode",
              "wall_s", "events"):
        assert k in m
    assert m["horizon_s"] % m["telemetry_interval_s"] == 0
    assert m["start_utc"].startswith("2023-06-01T00:00:00")
    assert result.series is not None and {"queue", "running", "kv_used_tokens"} <= set(result.series.metric)


def test_demand_is_the_trace_window(result, shared_data):
    from fleet.workload.traces import read_trace, window
    ref = window(read_trace(shared_data / "azure-llm-inference-2023" / "AzureLLMInferenceTrace_conv.csv"), 0, 120)
    req = result.requests
    assert len(req) == len(ref) > 100
    np.testing.assert_array_equal(np.sort(req.input_tokens.to_numpy()), np.sort(ref.input_tokens.to_numpy()))
    # both pools served, under their scenario names
    assert set(req.pool) == {"h100", "a100"}
    assert (req.status == "completed").all()          # the drain lets all finish


def test_energy_closes_across_tables(result):
    dt = result.meta["telemetry_interval_s"]
    pw = result.power
    pools = result.pools.set_index("pool")
    for pool in pools.index:
        e = (pw[(pw.level == "pool") & (pw.node == pool)].power_w * dt).sum()
        assert e == pytest.approx(pools.loc[pool, "it_energy_j"], rel=1e-9)
    site = (pw[pw.level == "site"].power_w * dt).sum()
    assert site == pytest.approx(pools.it_energy_j.sum(), rel=1e-9)
    # gpu level: every gpu node of a pool sums to its GPU energy
    tree = result.tree.set_index("node")
    g = pw[pw.level == "gpu"].copy()
    g["pool"] = g.node.map(tree["pool"])
    by_pool = (g.power_w * dt).groupby(g.pool).sum()
    for pool in pools.index:
        assert by_pool[pool] == pytest.approx(pools.loc[pool, "gpu_energy_j"], rel=1e-9)
    # request energy is part of (not more than) the serving GPUs' energy
    req_e = result.requests.groupby("pool").energy_j.sum()
    for pool in ("h100", "a100"):
        assert 0 < req_e[pool] < pools.loc[pool, "gpu_energy_j"]


def test_server_overhead_and_spares(result):
    pools = result.pools.set_index("pool")
    H = result.meta["horizon_s"]
    # h100: one 4-GPU server: static 4 x 225 W plus 350 W x GPU energy / 700 W
    h = pools.loc["h100"]
    assert h.server_overhead_energy_j == pytest.approx(900.0 * H + 0.5 * h.gpu_energy_j, rel=1e-9)
    # the spare GPU idles; the capped A100 pool never exceeds its cap per GPU
    pw = result.power
    spare = pw[(pw.level == "gpu") & (pw.node == "h100/spare0")].power_w
    assert spare.nunique() == 1 and 20 < spare.iloc[0] < 150
    a = pw[(pw.level == "gpu") & pw.node.str.startswith("a100/r")].power_w
    assert a.max() <= 300.0 + 1e-6
    assert pools.loc["a100", "power_cap_w"] == 300.0 and math.isnan(pools.loc["h100", "power_cap_w"])


def test_training_pool(result):
    j = result.jobs
    assert len(j) == 3 and (j.pool == "train").all()
    started = j[j.start_s.notna()]
    assert len(started) >= 1 and (started.start_s >= started.submit_s).all()
    t = result.pools.set_index("pool").loc["train"]
    assert t.role == "training" and 0 < t.busy_fraction <= 1
    # its GPU energy = jobs' energy + idle GPUs
    assert t.gpu_energy_j >= j.energy_j.sum()


def test_same_seed_same_result(tmp_path, shared_data):
    p = tmp_path / "s.yaml"
    p.write_text(yaml.safe_dump(scenario(tmp_path, shared_data)))
    a, b = simulate(load_scenario(p)), simulate(load_scenario(p))
    for name in ("requests", "power", "pools", "jobs", "tree"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


def test_multi_model_pool_and_synth(tmp_path):
    d = {"name": "mm", "seed": 1,
         "fleet": {"pools": [{"name": "p", "accelerator": "H100-SXM", "gpus": 8, "serve": [
             {"model": "llama-3.1-8b", "tp": 1, "replicas": 2},
             {"model": "llama-3.1-70b", "tp": 4, "precision": "fp8"}]}]},
         "demand": {"inference": [
             {"model": "llama-3.1-8b", "synth": {"rate": 2.0, "hours": 0.02}},
             {"model": "llama-3.1-70b", "synth": {"rate": 0.5, "hours": 0.02, "input_tokens": 500,
                                                  "output_tokens": 100}}]},
         "simulation": {"telemetry_interval_s": 5.0}}
    p = tmp_path / "mm.yaml"
    p.write_text(yaml.safe_dump(d))
    r = simulate(load_scenario(p))
    assert set(r.requests.engine_pool) == {"p:llama-3.1-8b", "p:llama-3.1-70b"}
    assert set(r.requests.pool) == {"p"}
    pool = r.pools.iloc[0]
    assert pool.replicas == 3 and pool.models == "llama-3.1-8b;llama-3.1-70b" and pool.tp == 4
    # 2 x 1 + 1 x 4 GPUs used, 2 spare in the one server
    gpu = r.tree[r.tree.level == "gpu"]
    assert gpu.gpus.sum() == 8 and "p/spare0" in set(gpu.node)


def test_cli_writes_atomically_and_reports_errors(tmp_path, shared_data, capsys):
    from fleet.cli import main
    p = tmp_path / "s.yaml"
    d = scenario(tmp_path, shared_data)
    d["demand"]["inference"][0]["trace"]["window"] = [0.0, 30.0]
    p.write_text(yaml.safe_dump(d))
    out = tmp_path / "out"
    assert main(["simulate", str(p), "-o", str(out), "--format", "csv", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["requests"] == summary["completed"] > 0
    for name in ("requests", "power", "tree", "pools", "jobs", "series"):
        assert (out / f"{name}.csv").is_file()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["scenario"] == "hetero" and meta["seed"] == 7
    pools = pd.read_csv(out / "pools.csv")
    assert pools.it_energy_j.sum() / 3.6e6 == pytest.approx(summary["site_energy_kwh"])
    # a bad scenario: clear error, exit 2, no output directory
    d["fleet"]["pools"][0]["gpus"] = -4
    p.write_text(yaml.safe_dump(d))
    bad = tmp_path / "bad"
    assert main(["simulate", str(p), "-o", str(bad)]) == 2
    err = capsys.readouterr().err
    assert "fleet.pools[0].gpus: expected a positive integer, got -4" in err
    assert not bad.exists()


def test_training_only_needs_a_horizon(tmp_path):
    d = {"name": "t", "fleet": {"pools": [{"name": "t", "accelerator": "H100-SXM", "gpus": 8,
                                           "role": "training"}]}}
    p = tmp_path / "t.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(ScenarioError, match="simulation.horizon_s"):
        simulate(load_scenario(p))
    d["simulation"] = {"horizon_s": 100.0, "telemetry_interval_s": 10.0}
    p.write_text(yaml.safe_dump(d))
    r = simulate(load_scenario(p))
    site = r.power[r.power.level == "site"].power_w
    # idle GPUs + idle overhead only: 8 x idle + 1800 W static + 350 x 8 x idle/700
    from fleet.hardware.accelerator import build_accelerator
    idle = build_accelerator("H100-SXM").idle_w
    assert site.to_numpy() == pytest.approx(8 * idle + 1800 + 350 * 8 * idle / 700)


def test_deferrable_training_waits_for_the_release_signal(tmp_path):
    jobs = tmp_path / "jobs.csv"
    pd.DataFrame({"job_id": [0, 1], "submit_s": [0.0, 0.0], "gpus": [8, 8], "model": ["llama-3.1-8b"] * 2,
                  "tokens": [np.nan, np.nan], "duration_s": [600.0, 600.0], "priority": [0, 0],
                  "deadline_s": [np.nan, np.nan], "deferrable": [True, False], "fail_at_s": [np.nan, np.nan],
                  "checkpoint_interval_s": [1800.0, 1800.0]}).to_csv(jobs, index=False)
    d = {"name": "defer", "fleet": {"pools": [{"name": "t", "accelerator": "H100-SXM", "gpus": 16,
                                               "role": "training"}]},
         "demand": {"training": {"jobs": "jobs.csv"}},
         "simulation": {"horizon_s": 3 * 3600.0, "telemetry_interval_s": 60.0}}
    p = tmp_path / "d.yaml"
    p.write_text(yaml.safe_dump(d))
    sc = load_scenario(p)
    # e.g. "grid intensity below a threshold": true from 02:00
    r = simulate(sc, release_signal=lambda t: t >= 7200.0, release_check_s=900.0)
    j = r.jobs.set_index("job_id")
    assert j.loc[1, "start_s"] == 0.0 and j.loc[0, "start_s"] == pytest.approx(7200.0)
    assert (j.status == "completed").all()
    # the site power shows the deferred job as a step after 02:00
    site = r.power[r.power.level == "site"].set_index("time_s").power_w
    assert site.loc[7200.0] > site.loc[3600.0] + 8 * 300


def test_telemetry_too_fine_for_the_horizon_is_a_clear_error(tmp_path):
    d = {"name": "big", "fleet": {"pools": [{"name": "h", "accelerator": "H100-SXM", "gpus": 800,
                                             "serve": [{"model": "llama-3.1-8b"}]}]},
         "demand": {"inference": [{"model": "llama-3.1-8b", "synth": {"rate": 1.0, "hours": 0.01}}]},
         "simulation": {"horizon_s": 365 * 86400.0, "telemetry_interval_s": 1.0}}
    p = tmp_path / "big.yaml"
    p.write_text(yaml.safe_dump(d))
    with pytest.raises(ScenarioError, match="simulation.telemetry_interval_s: .*fluid"):
        simulate(load_scenario(p))
