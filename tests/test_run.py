"""`fleet run`: the whole job on a small scenario, its outputs, errors and determinism."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from fleet.cli import main
from fleet.run import PlanDecisions, build_frontiers, git_commit, plan_step, progress_enabled, run_scenario
from fleet.scenario import load_scenario

from _scenarios import REPO, small_scenario


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("run")
    path = small_scenario(d)
    return path, run_scenario(path, d / "reports", quiet=True)


def test_run_writes_a_complete_report(small_run):
    path, r = small_run
    out = Path(r.meta["out_dir"])
    assert out.name == "small" and (out / "report.pdf").stat().st_size > 10_000
    s = json.loads((out / "summary.json").read_text())
    sc = load_scenario(path)
    assert s["scenario"] == "small" and s["scenario_hash"] == sc.hash() and s["seed"] == 3
    assert s["fleet_version"] == __import__("fleet").__version__
    # HEAD at run time (other commits may land while the tests run): a real commit of this repo
    sha = s["git_commit"]
    assert git_commit() is not None and re.fullmatch(r"[0-9a-f]{40}", sha)
    import subprocess
    assert subprocess.run(["git", "cat-file", "-e", f"{sha}^{{commit}}"], cwd=REPO).returncode == 0
    assert s["metrics"]["carbon.operational"]["unit"] == "gCO2e"
    # the accounts follow the scenario's constants exactly
    m = r.accounts.metrics
    assert m["energy.facility"].value == pytest.approx(1.3 * m["energy.it"].value, rel=1e-12)
    assert m["carbon.operational"].value == pytest.approx(m["energy.facility"].value / 3.6e6 * 300, rel=1e-9)
    assert m["cost.energy"].value == pytest.approx(m["energy.facility"].value / 3.6e9 * 80, rel=1e-9)
    # IT energy = GPU + server overhead from the simulation's pool table
    assert m["energy.it"].value == pytest.approx(float(r.sim.pools["it_energy_j"].sum()), rel=1e-6)
    assert 0.0 <= m["slo.attainment"].value <= 1.0


def test_energy_model_tables_for_the_report(small_run):
    _, r = small_run
    a = r.analysis
    assert list(a.breakdown["pool"]) == ["h100"]
    b = a.breakdown.iloc[0]
    parts = b["compute_j"] + b["memory_j"] + b["interconnect_j"] + b["static_j"]
    assert parts == pytest.approx(b["model_j"], rel=1e-6)         # components add up to the total
    assert 0 < a.lower_bound["lower_bound_j"].iloc[0] < b["model_j"] * 1e-3
    f = a.frontier.sort_values("power_cap_w")
    assert f["current"].sum() == 1 and f[f["current"]]["power_cap_w"].iloc[0] == pytest.approx(700.0)
    assert (f["itl_s"] > 0).all() and (f["j_per_token"] > 0).all()
    # lower caps never make an iteration faster
    assert f["itl_s"].is_monotonic_decreasing


def test_same_seed_same_numbers(small_run, tmp_path):
    path, r = small_run
    r2 = run_scenario(path, None, quiet=True)
    for k, m in r.accounts.metrics.items():
        v2 = r2.accounts.metrics[k].value
        assert (m.value == v2) or (m.value != m.value and v2 != v2), k


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_rerun_is_byte_identical_except_the_run_record(small_run, tmp_path):
    """Same scenario and seed: every file of the report (CSV, PNG, PDF, summary.json) is the same
    bytes, so a rerun can be checked with `cmp`; wall times live only in run.json."""
    import time
    path, r = small_run
    time.sleep(1.1)                     # a PDF date (1 s resolution) taken from the clock would differ
    r2 = run_scenario(path, tmp_path / "again", quiet=True)
    a, b = _files(Path(r.meta["out_dir"])), _files(Path(r2.meta["out_dir"]))
    assert sorted(a) == sorted(b)
    assert {"run.json", "summary.json", "report.pdf"} <= set(a)
    assert any(f.endswith(".png") for f in a) and any(f.endswith(".csv") for f in a)
    differ = [f for f in a if f != "run.json" and a[f] != b[f]]
    assert not differ, differ
    rec = json.loads(a["run.json"])
    assert rec["timings_s"] and all(v >= 0 for v in rec["timings_s"].values())
    assert "timings_s" not in json.loads(a["summary.json"])
    assert b"CreationDate (D:20230601100000" in a["report.pdf"]      # the scenario's own start_utc


def test_plan_step_is_a_stated_no_op(small_run):
    path, _ = small_run
    sc = load_scenario(path)
    d = plan_step(sc, build_frontiers(sc))
    assert isinstance(d, PlanDecisions) and not d.applied and d.decisions == []


def test_progress_is_quiet_in_ci_and_with_quiet(monkeypatch):
    monkeypatch.setenv("CI", "true")
    assert not progress_enabled()
    monkeypatch.delenv("CI")
    assert not progress_enabled(quiet=True)


def test_cli_run_and_bad_scenario_leaves_nothing(tmp_path, capsys):
    path = small_scenario(tmp_path, "cli")
    assert main(["run", str(path), "-o", str(tmp_path / "out"), "--quiet"]) == 0
    assert (tmp_path / "out" / "cli" / "report.pdf").is_file()
    text = capsys.readouterr().out
    assert "report in" in text and "kWh" in text
    bad = small_scenario(tmp_path, "bad", fleet={"pools": [{"name": "h100", "accelerator": "H100-SXM",
                                                             "gpus": -4}]})
    assert main(["run", str(bad), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert re.search(r"bad\.yaml: fleet\.pools\[0\]\.gpus: expected a positive integer", err), err
    assert not (tmp_path / "out" / "bad").exists()
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["cli"]


def test_site_signal_errors_name_the_field(tmp_path):
    path = small_scenario(tmp_path, "nosig", site={"carbon_intensity": {"region": "atlantis"}})
    with pytest.raises(Exception) as e:
        run_scenario(path, tmp_path / "out", quiet=True)
    assert "site.carbon_intensity" in str(e.value) and "atlantis" in str(e.value)
    assert not (tmp_path / "out").exists()


def test_region_signals_from_shared_data(tmp_path, shared_data):
    path = small_scenario(tmp_path, "caiso", site={"region": "caiso", "pue": 1.1})
    r = run_scenario(path, None, quiet=True)
    h = r.accounts.hourly
    import pandas as pd
    ci = pd.read_csv(shared_data / "electricitymaps-hourly-ci-2023" / "US-CAL-CISO_2023_hourly.csv",
                     encoding="utf-8")
    row = ci[ci["Datetime (UTC)"] == "2023-06-01 10:00:00"].iloc[0]
    assert h["carbon_intensity_g_per_kwh"].iloc[0] == pytest.approx(row["Carbon Intensity gCO₂eq/kWh (LCA)"])
    assert "US-CAL-CISO" in r.accounts.metrics["carbon.operational"].note


def test_whatif_part_changes_the_profiles_and_bad_names_are_located(tmp_path):
    base = run_scenario(small_scenario(tmp_path, "base"), None, quiet=True)
    wi = small_scenario(tmp_path, "wi", whatif={"label": "HBM at half the pJ/bit", "accelerators": ["H100"],
                                                "device_constants": {"memory.pj_per_bit.HBM3": 1.7}})
    r = run_scenario(wi, None, quiet=True)
    gb, gw = base.accounts.value("energy.gpu"), r.accounts.value("energy.gpu")
    assert gw < gb                                     # cheaper bits, same demand and timing model
    assert r.analysis.breakdown["memory_j"].iloc[0] < base.analysis.breakdown["memory_j"].iloc[0]
    assert any("what-if" in s for s in r.meta["data_sources"])
    bad = small_scenario(tmp_path, "wibad", whatif={"label": "x", "device_constants": {"memory.nope": 1.0}})
    with pytest.raises(Exception, match=r"wibad\.yaml: whatif\.device_constants\.memory\.nope: unknown device constant"):
        run_scenario(bad, None, quiet=True)


def test_marginal_signal_is_stated(tmp_path, shared_data):
    """WattTime MOER (CAISO North, June-July 2023) as the carbon signal; the output says 'marginal'."""
    path = small_scenario(tmp_path, "moer", start_utc="2023-06-15T18:00:00Z",
                          site={"carbon_intensity": {"region": "caiso", "signal": "marginal"}, "price": 50})
    r = run_scenario(path, tmp_path / "out", quiet=True)
    assert r.meta["carbon_signal"] == "marginal"
    assert "marginal" in r.accounts.metrics["carbon.operational"].note
    s = json.loads((tmp_path / "out" / "moer" / "summary.json").read_text())
    assert s["carbon_signal"] == "marginal"
    # independent: the hour's mean of the 5-minute MOER (lb/MWh) x 0.453592 (g/kWh per lb/MWh)
    import pandas as pd
    raw = pd.read_csv(shared_data / "vessim-watttime-caiso-north-moer" / "watttime_example.csv")
    t = pd.to_datetime(raw.iloc[:, 0], utc=True)
    hour = raw.iloc[:, 1][(t >= "2023-06-15T18:00Z") & (t < "2023-06-15T19:00Z")]
    assert len(hour) == 12
    assert r.accounts.hourly["carbon_intensity_g_per_kwh"].iloc[0] == pytest.approx(hour.mean() * 0.45359237,
                                                                                       rel=1e-6)


def test_compare_two_runs(tmp_path, capsys):
    from fleet.commands.run import compare_table

    a = small_scenario(tmp_path, "cmp_a")
    b = small_scenario(tmp_path, "cmp_b", site={"carbon_intensity": 600, "price": 80, "pue": 1.3})
    for p in (a, b):
        assert main(["run", str(p), "-o", str(tmp_path / "out"), "-q"]) == 0
    capsys.readouterr()
    sa = json.loads((tmp_path / "out" / "cmp_a" / "summary.json").read_text())
    sb = json.loads((tmp_path / "out" / "cmp_b" / "summary.json").read_text())
    rows = {r["metric"]: r for r in compare_table([sa, sb], ["carbon.operational", "energy.it", "nope"])}
    assert "nope" not in rows
    assert rows["energy.it"]["change_pct"][1] == pytest.approx(0.0, abs=1e-9)      # same fleet and demand
    assert rows["carbon.operational"]["change_pct"][1] == pytest.approx(100.0, rel=1e-6)   # 600 vs 300 g/kWh
    assert main(["compare", str(tmp_path / "out" / "cmp_a"), str(tmp_path / "out" / "cmp_b"),
                 "-m", "carbon.operational"]) == 0
    out = capsys.readouterr().out
    assert "cmp_a" in out and "(+100.0%)" in out
    assert main(["compare", str(tmp_path / "nowhere")]) == 2


def test_a_signal_file_with_a_gap_follows_the_stated_policy(tmp_path):
    """A carbon file missing one hour: filled forward by default, refused with `gaps: error`."""
    hours = [f"2023-06-01T{h:02d}:00:00Z" for h in range(24) if h != 10]   # 10:00 is missing
    lines = ["time,value [gCO2e/kWh]"] + [f"{t},{100 + i}" for i, t in enumerate(hours)]
    csv = tmp_path / "ci.csv"
    csv.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ok = small_scenario(tmp_path, "gapfill", site={"carbon_intensity": {"file": str(csv)}, "price": 50})
    r = run_scenario(ok, None, quiet=True)
    # the run starts at 10:00, the missing hour: forward fill gives the 09:00 value (100 + 9)
    assert r.accounts.hourly["carbon_intensity_g_per_kwh"].iloc[0] == pytest.approx(109.0)
    bad = small_scenario(tmp_path, "gaperr", site={"carbon_intensity": {"file": str(csv), "gaps": "error"},
                                                  "price": 50})
    with pytest.raises(Exception, match=r"site\.carbon_intensity"):
        run_scenario(bad, None, quiet=True)


def test_report_frontiers_follow_the_pools_expert_parallelism(tmp_path):
    """The report's breakdown and frontier pages use the same work as the simulation: an
    expert-parallel MoE pool gets an expert-parallel replica."""
    fleet_spec = {"pools": [{"name": "moe", "accelerator": "H100-SXM", "gpus": 2, "gpus_per_server": 2,
                             "serve": [{"model": "qwen3-30b-a3b", "tp": 2, "ep": 2}]}]}
    demand = {"inference": [{"model": "qwen3-30b-a3b",
                             "trace": {"path": str(REPO / "traces" / "poisson_1h.csv"), "window": [0, 60]}}]}
    sc = load_scenario(small_scenario(tmp_path, "moe_ep", fleet=fleet_spec, demand=demand))
    fr = build_frontiers(sc)
    assert not fr.errors
    assert fr.replicas[("moe", "qwen3-30b-a3b")].ep == 2
