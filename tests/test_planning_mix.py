"""`fleet plan mix` on a scenario: apply, simulate with the size-aware router, verify, derate."""

from __future__ import annotations

import numpy as np
import pytest
import pandas as pd

from fleet.scenario import parse_scenario

SC = {
    "name": "mix_small", "seed": 3,
    "fleet": {"pools": [{"name": "h100", "accelerator": "H100-SXM", "gpus": 1,
                         "serve": [{"model": "llama-3.1-8b", "tp": 1, "max_batch": 64}]}]},
    "demand": {"inference": [{"model": "llama-3.1-8b",
                              "synth": {"profile": "poisson", "rate": 0.5, "hours": 1.0},
                              "slo": {"ttft_s": 2.0, "tpot_s": 0.1}}]},
    "simulation": {"horizon_s": 3600, "telemetry_interval_s": 300},
    "plan": {"mix": {"accelerators": {"H100-SXM": {"max_gpus": 4, "tp": [1]}, "A10G": {"max_gpus": 4, "tp": [1]}},
                     "buckets": {"quantiles": 2}, "rounds": 3, "baselines": False, "time_limit_s": 5}},
}


def _sc():
    return parse_scenario(SC)


def test_plan_applies_as_a_valid_scenario_and_simulates():
    from fleet.planning import mix as gm
    out = gm.plan_and_verify(_sc())
    assert out.status == "OPTIMAL" and out.rounds
    planned = out.scenario
    assert planned.derived_from == _sc().hash()
    assert planned.simulation.router == "size_aware" and planned.simulation.size_routes
    pools = {d["path"].split("[")[1].split("]")[0] for d in out.decisions if d["path"].startswith("fleet.pools")}
    assert {p.name for p in planned.fleet.pools} == pools
    # the plan's active replicas per hour are the scenario's replica schedule, and the simulation ran it
    assert set(planned.schedule) == pools
    sched = out.sim.schedule
    for name, hours in planned.schedule.items():
        got = sched[sched["pool"] == name].sort_values("hour")["active"].tolist()
        assert got == hours[:len(got)]
    assert 0 < out.metrics["slo_attainment"] <= 1
    assert set(out.metrics["allocation"]) <= {"H100-SXM", "A10G"}
    # every request was routed to a planned pool
    assert set(out.sim.requests["pool"].unique()) <= {p.name for p in planned.fleet.pools}


def test_a_round_that_fails_is_derated_and_the_next_passes(monkeypatch):
    from fleet.planning import mix as gm
    calls = []

    def fake(sc, inputs, target, label, problem=None):
        pools = [p.name for p in sc.fleet.pools]
        k = len(calls)
        calls.append(pools)
        att = 0.5 if k == 0 else 1.0
        bpb = pd.DataFrame({"pool": [pools[0]], "bucket": [0], "requests": [100], "attainment": [att]})
        H = inputs.problem.hours
        return gm.SimFigures(label, 1.0, 1.0, 1.0, 0.0, att, float(att >= target), np.full(H, att), bpb,
                             {p: 1 for p in pools})

    monkeypatch.setattr(gm, "simulate_and_account", fake)
    out = gm.plan_and_verify(_sc())
    assert len(out.rounds) == 2 and out.verified
    assert out.rounds[0]["failing"] and not out.rounds[0]["derated"]
    assert out.rounds[1]["derated"] == out.rounds[0]["failing"] and not out.rounds[1]["failing"]


def test_report_page_draws(tmp_path):
    from fleet.planning import mix as gm
    from fleet.report import plan_mix
    out = gm.plan_and_verify(_sc())
    figs = plan_mix.figures(out, dpi=50)
    assert len(figs) == 1
    figs[0].savefig(tmp_path / "mix.png")
    assert "mix_mix" in plan_mix.tables(out)


def test_infeasible_scenario_is_explained_by_the_cli(tmp_path, capsys):
    import yaml
    from fleet.cli import main
    d = dict(SC)
    d["plan"] = {"mix": {**SC["plan"]["mix"], "accelerators": {"H100-SXM": {"max_gpus": 0, "tp": [1]}}}}
    p = tmp_path / "x.yaml"
    p.write_text(yaml.safe_dump(d))
    assert main(["plan", "mix", str(p)]) == 2
    err = capsys.readouterr().err
    assert "at most 0 H100-SXM GPUs are available (plan.mix.accelerators[H100-SXM].max_gpus)" in err


def _sc_with(**mix):
    d = {**SC, "plan": {"mix": {**SC["plan"]["mix"], **mix}}}
    return parse_scenario(d)


def test_hourly_types_are_paid_per_active_gpu_hour_of_the_simulated_schedule():
    from fleet.planning import mix as gm
    acc = {"H100-SXM": {"max_gpus": 4, "tp": [1], "pricing": "hourly", "price_usd_per_gpu_hour": 2.0},
           "A10G": {"max_gpus": 4, "tp": [1], "pricing": "reserved", "price_usd_per_gpu_hour": 1.0}}
    out = gm.plan_and_verify(_sc_with(accelerators=acc))
    sim = out.metrics["simulated"]
    sched = out.sim.schedule
    want = 0.0
    for p in out.scenario.fleet.pools:
        if p.accelerator == "H100-SXM":          # hourly: active GPU-hours
            want += 2.0 * float(sched[sched["pool"] == p.name]["active"].sum())
        else:                                    # reserved: every GPU, every hour
            want += 1.0 * p.gpus * 1.0
    assert sim["hardware_usd"] == pytest.approx(want, rel=1e-9)
    assert sim["cost_usd"] == pytest.approx(sim["hardware_usd"] + sim["energy_usd"], rel=1e-12)
    assert out.metrics["pricing"] == {"H100-SXM": "hourly", "A10G": "reserved"}


def test_baselines_are_solved_and_verified_like_the_plan():
    from fleet.planning import mix as gm
    out = gm.plan_and_verify(_sc_with(baselines=True))
    m = out.metrics
    best = m["best_single"]
    assert best["rounds"] >= 1 and best["verified"] in (True, False)
    rows = out.tables["single_types"]
    assert set(rows["accelerator"]) == {"H100-SXM", "A10G"}
    # the reference is the best verified single type, and the savings are simulated figures against it
    assert m["cost_saving_pct"] == pytest.approx(100 * (1 - m["simulated"]["cost_usd"] / best["cost_usd"]))
    # the mix starts from the best single type's plan: never planned worse than it
    assert m["objective"] <= best["plan"]["cost"] * (1 + 1e-9) + 1e-9
    # the fleet as written (1 x H100, tp 1) operated hour by hour and verified, and as it is
    assert m["as_written"]["gpus"] == {"h100": 1} and m["as_written"]["rounds"] >= 1
    assert m["as_written_unplanned"]["gpus"] == {"h100": 1}
    flat = gm.summary_metrics(out)
    assert flat["plan.mix.cost_saving_pct"][1] == "%" and "plan.mix.best_single.cost" in flat


@pytest.mark.bench
def test_bench_mix_azure_plan_against_the_best_single_type(shared_data):
    """The example (scenarios/mix_azure.yaml): plan, verify, baselines; prints the figures of the
    note (about 1.5 minutes on 2 cores: every single type verified, the fleet as written, the
    mix).  Pins the plan's cost and its simulated SLO attainment."""
    import json
    from pathlib import Path

    from fleet.planning import mix as gm
    from fleet.scenario import load_scenario

    sc = load_scenario(Path(__file__).resolve().parents[1] / "scenarios" / "mix_azure.yaml")
    out = gm.plan_and_verify(sc)
    m = out.metrics
    keys = ("status", "objective", "gap", "cost_per_hour", "allocation", "cost_saving_pct", "energy_saving_pct",
            "carbon_saving_pct", "slo_attainment", "hours_slo_met", "rounds", "verified")
    print("\nmix_azure:", json.dumps(gm._jsonable({k: m.get(k) for k in keys})))
    for who in ("simulated", "best_single", "as_written", "as_written_unplanned"):
        d = {k: v for k, v in m[who].items() if k != "plan"}
        print(f"  {who}:", json.dumps(gm._jsonable(d)))
    assert out.verified and m["hours_slo_met"] >= 0.99
    assert m["objective"] == pytest.approx(122.0, rel=0.02)            # USD over the day, as planned
    assert m["simulated"]["cost_usd"] == pytest.approx(122.5, rel=0.02)
    assert m["slo_attainment"] == pytest.approx(0.9993, abs=0.003)
    assert m["cost_saving_pct"] >= -1e-6                                 # never worse than the best single type
