"""`fleet plan power` end to end on a small row (synthetic demand, repo files only): the plan is
verified in simulation with the controller and breakers, the JSON carries the issue's keys, the
report page renders, an impossible request is explained by name."""

from __future__ import annotations

import json

import pytest
import yaml

from fleet.errors import InfeasibleError
from fleet.scenario import load_scenario


def _scenario(tmp_path, **plan):
    data = {
        "name": "oversub_small", "seed": 2,
        "fleet": {"pools": [{"name": "h100", "accelerator": "H100-SXM", "gpus": 8, "gpus_per_server": 2,
                             "row": "row0", "serve": [{"model": "llama-3.1-8b", "tp": 1, "max_batch": 64}]}],
                  # nameplate per 2-GPU server: 2 x 700 x 1.5 + 450 = 2550 W; 4 servers = 10.2 kW
                  "power": {"rows": {"row0": 10200.0},
                            "controller": {"interval_s": 2, "telemetry_delay_s": 1, "actuation_delay_s": 1,
                                           "lever": "cap", "cap_all": 0.6, "cap_brake": 0.4}}},
        "demand": {"inference": [{"model": "llama-3.1-8b",
                                  "synth": {"profile": "poisson", "rate": 3.0, "hours": 0.1,
                                            "input_tokens": 800, "output_tokens": 200},
                                  "slo": {"ttft_s": 1.0, "tpot_s": 0.1}}]},
        "simulation": {"horizon_s": 360, "telemetry_interval_s": 5},
        "plan": {"power": dict({"seeds": 1, "verify_seeds": 1, "max_capped_share": 0.05, "warmup_s": 30,
                                "outages": [[120, 180]]}, **plan)},
    }
    p = tmp_path / "oversub_small.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return p


def test_plan_verifies_and_reports(tmp_path):
    from fleet.planning.power import plan_and_verify
    from fleet.report import plan_power

    sc = load_scenario(_scenario(tmp_path))
    out = plan_and_verify(sc, log_fn=lambda m: None)
    m = out.metrics
    for key in ("extra_servers_pct", "trips", "capped_time_share", "p99_ttft_change_pct", "p99_tpot_change_pct",
                "days_simulated", "seeds"):
        assert key in m
    assert m["nameplate_servers"] == 4
    assert out.verified and m["trips"] == 0
    assert m["servers"] >= 4 and m["extra_servers_pct"] == pytest.approx(100.0 * (m["servers"] / 4 - 1))
    assert m["p99_ttft_change_pct"] <= 5.0 and m["p99_tpot_change_pct"] <= 5.0
    # a rejected round says why and is tightened (one server fewer) before the next
    for a, b in zip(out.rounds, out.rounds[1:]):
        assert a["failures"] and sum(b["servers"].values()) < sum(a["servers"].values())
    assert not out.rounds[-1]["failures"]
    # the planned scenario holds the servers and the thresholds, re-validated
    planned = out.scenario
    assert planned.fleet.pools[0].gpus == 2 * m["servers"]
    assert planned.derived_from is None or isinstance(planned.derived_from, str)
    figs = plan_power.figures(out, dpi=60)
    assert len(figs) == 1
    assert "power_rows" in plan_power.tables(out)


def test_impossible_minimum_is_explained(tmp_path, monkeypatch):
    from fleet.plan import power as pp
    from fleet.planning.power import plan_and_verify

    sc = load_scenario(_scenario(tmp_path, max_extra_pct=10.0))
    real = pp.PowerProblem

    def demanding(rows, *a, **k):          # ask for 8 servers in a row whose brake floor allows fewer
        rows = tuple(pp.RowData(**{**r.__dict__, "min_servers": 40}) for r in rows)
        return real(rows, *a, **k)

    monkeypatch.setattr(pp, "PowerProblem", demanding)
    with pytest.raises(InfeasibleError) as ei:
        plan_and_verify(sc, log_fn=lambda m: None)
    assert "row0" in str(ei.value) and "at least 40 servers" in str(ei.value)


def test_cli_json(tmp_path, capsys):
    from fleet.cli import main

    rc = main(["plan", "power", str(_scenario(tmp_path)), "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["verified"]
    assert {"extra_servers_pct", "trips", "capped_time_share", "p99_ttft_change_pct", "p99_tpot_change_pct",
            "days_simulated", "seeds"} <= set(doc)
