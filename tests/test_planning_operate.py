"""The operate plan applied and verified: a plan the simulation rejects is derated and solved
again until it holds; infeasible budgets are explained in the scenario's words (CLI exit 2); a
planned scenario re-validates like a hand-written one; `fleet run` plans and reports both
identities."""

from __future__ import annotations

import json

import pytest

from fleet.cli import main
from fleet.errors import InfeasibleError, ScenarioError
from fleet.planning import operate as po
from fleet.scenario import OperatePlanSpec, load_scenario

from tests._scenarios import small_scenario


def _scenario(tmp_path, name="op", **over):
    """An hour of synthetic chat at 24 req/s on four H100 replicas (one 4-GPU server): one replica
    sustains about 17 req/s within the SLO (max_batch 64 binds), so two must be active."""
    base = dict(
        fleet={"pools": [{"name": "h100", "accelerator": "H100-SXM", "gpus": 4, "gpus_per_server": 4,
                          "serve": [{"model": "llama-3.1-8b", "tp": 1, "max_batch": 64}]}],
               "power": {"site_budget_w": 4500, "rows": {"row0": 4500}}},
        demand={"inference": [{"model": "llama-3.1-8b",
                               "synth": {"profile": "poisson", "rate": 24.0, "hours": 1.0,
                                         "input_tokens": 600, "output_tokens": 200},
                               "slo": {"ttft_s": 1.0, "tpot_s": 0.05}}]},
        simulation={"horizon_s": 3600, "telemetry_interval_s": 60},
        plan={"operate": {"objective": "energy", "caps": [0.5, 0.75, 1.0], "rounds": 4}},
    )
    base.update(over)
    return load_scenario(small_scenario(tmp_path, name, **base))


def test_a_plan_the_simulation_rejects_is_derated_and_then_holds(tmp_path, monkeypatch):
    # an over-optimistic capacity (1.6 x the steady state: 27 req/s) packs one replica for 24 req/s:
    # the simulation rejects the plan, the failing hour is derated (x 0.7, twice) and the plan is
    # solved again until it holds with two replicas
    monkeypatch.setattr(po, "calibrate_utilisation", lambda *a, **k: 1.6)
    sc = _scenario(tmp_path)
    spec = sc.plan.operate.model_copy(update={"utilisation": 1.0, "derate": 0.7})
    out = po.plan_and_verify(sc, spec, baseline=False)
    assert len(out.rounds) >= 2
    first, last = out.rounds[0], out.rounds[-1]
    assert first["hours_below_target"] > 0 and first["derated"]
    assert out.verified and last["hours_below_target"] == 0 and last["budget_excess_hours"] == 0
    assert out.scenario.schedule["h100"] == [2] and first["caps"] == last["caps"]
    assert last["min_hourly_attainment"] >= spec.slo_target


def test_infeasible_budget_is_explained_by_name(tmp_path, capsys):
    # 1.2 kW for a server whose static overhead alone is 0.9 kW, with 24 req/s to serve
    sc = _scenario(tmp_path, "tight", fleet={
        "pools": [{"name": "h100", "accelerator": "H100-SXM", "gpus": 4, "gpus_per_server": 4,
                   "serve": [{"model": "llama-3.1-8b", "tp": 1, "max_batch": 64}]}],
        "power": {"site_budget_w": 1200}})
    with pytest.raises(InfeasibleError) as e:
        po.plan_and_verify(sc, sc.plan.operate, baseline=False)
    text = str(e.value)
    assert "site: 1.2 kW budget in hour" in text and "llama-3.1-8b demand in hour" in text
    assert main(["plan", "operate", str(sc.path)]) == 2
    assert "site: 1.2 kW budget" in capsys.readouterr().err


def test_a_planned_scenario_revalidates(tmp_path):
    sc = _scenario(tmp_path)
    with pytest.raises(ScenarioError, match=r"schedule\.h100\[1\]: 5 active replicas, but the pool has 4"):
        sc.with_updates({"schedule": {"h100": [4, 5]}})
    with pytest.raises(ScenarioError, match="power_cap_w"):
        sc.with_updates({"fleet.pools[h100].power_cap_w": 5000})
    ok = sc.with_updates({"schedule": {"h100": [1, 2]}, "fleet.pools[h100].power_cap_w": 350})
    assert ok.derived_from == sc.hash() and ok.hash() != sc.hash()
    assert sc.schedule == {} and sc.fleet.pools[0].power_cap_w is None      # the original is untouched


def test_plan_operate_json_and_fleet_run_record_both_identities(tmp_path, capsys):
    sc = _scenario(tmp_path, "cli")
    assert main(["plan", "operate", str(sc.path), "--json", "--time-limit", "10"]) == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("status", "objective", "bound", "gap", "solve_s", "energy_saving_pct", "cost_saving_pct",
                "carbon_saving_pct", "slo_attainment", "rounds", "decisions"):
        assert key in doc
    assert doc["status"] in ("OPTIMAL", "FEASIBLE") and 0 <= doc["gap"] <= 1e-3
    assert doc["energy_saving_pct"] > 0 and doc["slo_attainment"] >= 0.99
    assert main(["run", str(sc.path), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    summary = json.loads((tmp_path / "out" / "cli" / "summary.json").read_text())
    assert summary["scenario_as_written"]["hash"] == sc.hash()
    planned = summary["scenario_planned"]
    assert planned["derived_from"] == sc.hash() and planned["hash"] == summary["scenario_hash"]
    assert planned["content"]["schedule"]["h100"] == doc["decisions"][1]["value"]
    plan = summary["plans"][0]
    assert plan["kind"] == "operate" and plan["verified"]
    assert plan["metrics"]["plan.operate.energy_saving_pct"]["unit"] == "%"


def test_spec_defaults_are_stated():
    s = OperatePlanSpec()
    assert s.solver == "highs" and s.slo_target == 0.99 and s.rounds >= 1
