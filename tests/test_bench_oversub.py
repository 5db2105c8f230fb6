"""Benchmarks and experiments of issue 11 (power oversubscription), behind the ``bench`` marker:

* the controller's (and breakers') cost per simulated hour on a 100-row site;
* the planning time (the CP-SAT model alone, and ``fleet plan power`` on a small row);
* the experiments of the closing note (``test_experiments``; long: tens of minutes on two cores,
  ``FLEET_OVERSUB_DAYS`` sets the verification days, default 30).

Run: ``PYTHONPATH=$PWD python3 -m pytest -m bench -s tests/test_bench_oversub.py``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from _sim_profiles import toy_profile

pytestmark = pytest.mark.bench

REPO = Path(__file__).resolve().parents[1]


def _site(rows: int, controller: bool):
    from fleet.scenario import parse_scenario

    pools = [{"name": f"p{k}", "accelerator": "H100-SXM", "gpus": 4, "gpus_per_server": 2, "row": f"row{k}",
              "server": {"static_w": 400.0, "per_gpu_w": 0.0},
              "serve": [{"model": "llama-3.1-8b", "tp": 1}]} for k in range(rows)]
    power = {"rows": {f"row{k}": 2600.0 for k in range(rows)}}
    if controller:
        power["controller"] = {"interval_s": 2, "telemetry_delay_s": 2, "actuation_delay_s": 1,
                               "t1": 0.8, "t2": 0.9, "brake": 0.97}
        power["breakers"] = [{"level": "row"}]
    data = {"name": "site100", "seed": 1, "fleet": {"pools": pools, "power": power},
            "demand": {"inference": [{"model": "llama-3.1-8b",
                                      "synth": {"profile": "poisson", "rate": 2.0 * rows, "hours": 0.1, "seed": 3,
                                                "input_tokens": 500, "output_tokens": 200}}]},
            "simulation": {"horizon_s": 360, "telemetry_interval_s": 10, "record": ["requests"]}}
    return parse_scenario(data, check=False)


def _factory(op):
    s = (op.power_cap_w or 700.0) / 700.0
    return toy_profile(power_scale=s, speed=s ** 0.3, cap_w=op.power_cap_w or 700.0)


def test_controller_cost_per_simulated_hour_on_100_rows():
    from fleet.sim import simulate

    walls = {}
    for ctl in (False, True):
        sc = _site(100, ctl)
        best = np.inf
        for _ in range(2):
            t0 = time.perf_counter()
            r = simulate(sc, profile_factory=_factory)
            best = min(best, time.perf_counter() - t0)
        walls[ctl] = (best, r)
    hours = 360.0 / 3600.0
    extra = walls[True][0] - walls[False][0]
    meta = walls[True][1].meta["protection"]
    print(f"\n100-row site (400 GPUs, 200 servers, 400 replicas), {hours * 60:.0f} simulated minutes: "
          f"{walls[False][0]:.2f} s without protection, {walls[True][0]:.2f} s with the controller (2 s readings of "
          f"4 samples each) and 100 row breakers (1 s checks): {extra / hours:.1f} s of wall time per simulated "
          f"hour ({meta['controller_steps']} controller steps, {meta['controller_actions']} actions, "
          f"{meta['trips']} trips)")
    assert walls[True][1].meta["protection"]["breakers"] == 100


def test_planning_time():
    from fleet.plan.power import PowerProblem, RowData, solve

    rng = np.random.default_rng(0)
    rows = tuple(RowData(f"row{k}", 61_200.0, rng.gamma(100.0, 36.0, 5000), 150.0, 3000.0, 5100.0,
                         capped_w=rng.gamma(100.0, 33.0, 5000)) for k in range(10))
    t0 = time.perf_counter()
    plan, sol, _ = solve(PowerProblem(rows, max_capped_share=0.02, budget_exceed_share=0.001))
    wall = time.perf_counter() - t0
    print(f"\nplan.power model, 10 rows x 5000 samples (x2: free and capped): {sol.status} in {wall:.2f} s "
          f"(solver {sol.wall_s:.2f} s), {plan.servers} servers, {plan.extra_pct:+.1f} % over nameplate")
    assert sol.status == "OPTIMAL"

    import yaml

    from fleet.planning.power import plan_and_verify
    from fleet.scenario import load_scenario

    sys_path = REPO / "tests"
    import sys

    sys.path.insert(0, str(sys_path))
    from test_planning_power import _scenario

    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "fleet-bench-oversub"
    tmp.mkdir(exist_ok=True)
    out = plan_and_verify(load_scenario(_scenario(tmp)), log_fn=lambda m: None)
    m = out.metrics
    print(f"fleet plan power on a 4-server row (1 sampling + 1 verification seed of 6 min): "
          f"{m['plan_wall_s']:.2f} s in all, {m['solve_s']:.3f} s in the solver, {m['rounds']} round(s)")
    del yaml


def _inference_window_scenario(tmp: Path, days: int, hours: float = 6.0, nameplate_servers: int = 12):
    """The oversub_inference row, each simulated day represented by its ``hours`` peak hours; its
    budget holds ``nameplate_servers`` servers at nameplate (5.1 kW each)."""
    import yaml

    from fleet.scenario import load_scenario

    src = yaml.safe_load((REPO / "scenarios" / "oversub_inference.yaml").read_text())
    tr = src["demand"]["inference"][0]["trace"]
    tr["path"] = str((REPO / "scenarios" / tr["path"]).resolve())
    # daily mean 5.6 req/s for 16 servers (peak 8, a peak-to-trough of 2.5); the window's centre is the peak
    tr["stretch"] = {"rate": 5.6, "hours": hours, "peak_to_trough": 2.5, "peak_hour": hours / 2}
    src["simulation"]["horizon_s"] = hours * 3600.0
    src["simulation"]["telemetry_interval_s"] = 10
    ctl = src["fleet"]["power"]["controller"]
    ctl.update(cap_all=0.95, cap_low=0.9, cap_brake=0.7, hysteresis=0.05)
    src["plan"]["power"] = {"seeds": 3, "verify_seeds": days, "horizon_s": hours * 3600.0, "max_capped_share": 1.0,
                            "warmup_s": 300, "outages": [[7200.0, 7800.0]], "rounds": 3,
                            "rise_quantile": 0.999}
    budget = 5100.0 * nameplate_servers
    src["fleet"]["power"]["rows"] = {"row0": budget}
    src["fleet"]["power"]["site_budget_w"] = budget
    src.pop("expectations", None)
    p = tmp / "oversub_inference_days.yaml"
    p.write_text(yaml.safe_dump(src, sort_keys=False))
    return load_scenario(p)


def test_experiments(tmp_path):
    """The closing note's figures (long)."""
    from fleet.planning.power import plan_and_verify

    days = int(os.environ.get("FLEET_OVERSUB_DAYS", "30"))
    n0 = int(os.environ.get("FLEET_OVERSUB_NAMEPLATE", "12"))
    parts = os.environ.get("FLEET_OVERSUB_PARTS", "inference,outage,training").split(",")
    t0 = time.perf_counter()
    sc = _inference_window_scenario(tmp_path, days, nameplate_servers=n0)
    if "inference" in parts:
        out = plan_and_verify(sc, log_fn=lambda m: print("  " + m))
        m = out.metrics
    else:                       # the outage costs of a stated plan: FLEET_OVERSUB_PLAN="servers,t1"
        n, t1 = os.environ.get("FLEET_OVERSUB_PLAN", "16,0.9").split(",")
        from fleet.plan.power import PowerProblem, thresholds

        t = thresholds(PowerProblem(()), float(t1))
        m = {"rows": {"row0": {"servers": int(n), "t1": t[0], "t2": t[1], "brake": t[2]}}}
        return _outages(sc, m, days, parts)
    print(f"\nINFERENCE ({days} days, each its 6 peak hours at request level, one 10-min telemetry outage a day): "
          f"{m['servers']} servers on a {m['nameplate_servers']}-server nameplate budget = "
          f"{m['extra_servers_pct']:+.1f} %, trips {m['trips']}, capped {m['capped_time_share']:.1%} of the window, "
          f"p99 TTFT {m['p99_ttft_change_pct']:+.2f} %, p99 TPOT {m['p99_tpot_change_pct']:+.2f} %, SLO "
          f"{m['slo_attainment']:.4f} vs {m['baseline_slo_attainment']:.4f}, {m['days_simulated']:.1f} simulated "
          f"days in all ({m['days_verified']:.1f} verified), verified={out.verified}, "
          f"{time.perf_counter() - t0:.0f} s")
    _outages(sc, m, days, parts)


def _outages(sc, m, days, parts):
    from fleet.planning.power import _controller, _simulate, figures, resized, row_infos, _slo

    if "outage" not in parts:
        return _training(days, parts)
    # what the outage costs: the planned row, blind from the start of its window for 25 minutes
    # (levers not yet set: held), a controller that fails two hours in (levers held, or released)
    spec = sc.plan.power
    infos = row_infos(sc, spec)
    servers = {r: v["servers"] for r, v in m["rows"].items()}
    ctl = _controller(sc).model_dump(mode="json")
    r0 = m["rows"]["row0"]
    ctl.update(t1=r0["t1"], t2=r0["t2"], brake=r0["brake"])
    slo = _slo(sc)
    n_cost = min(days, 5)
    for label, c in (("blind 25 min from the window start (hold)", dict(ctl, outages=[[0.0, 1500.0]])),
                     ("blind 25 min, fail-safe cap_all", dict(ctl, outages=[[0.0, 1500.0]],
                                                              on_telemetry_loss="cap_all", stale_s=6.0)),
                     ("controller fails at 2 h, levers held", dict(ctl, fail_at_s=7200.0)),
                     ("controller fails at 2 h, levers released", dict(ctl, fail_at_s=7200.0, fail_mode="release"))):
        sims = [_simulate(resized(sc, infos, servers, seed=int(sc.seed) + 1000 + k, horizon_s=spec.horizon_s,
                                  controller=c, breakers=[{"level": "row"}], record=("requests", "power")))
                for k in range(n_cost)]
        f = figures(sims, slo, c.get("outages", []))
        print(f"OUTAGE {label} ({n_cost} days): trips {f.trips}, requests lost {f.dropped}, SLO attainment "
              f"{f.slo_attainment:.4f} (in the outage {f.slo_attainment_in_outages:.4f}), p99 TTFT {f.ttft_p99_s:.3f} s, "
              f"capped {f.capped_time_share:.1%}, completed {sum(int((s.requests['status'] == 'completed').sum()) for s in sims)}"
              f" of {f.requests}")
    _training(days, parts)


def _training(days: int, parts) -> None:
    from fleet.planning.power import plan_and_verify
    from fleet.scenario import load_scenario

    if "training" not in parts:
        return
    t1 = time.perf_counter()
    tr = load_scenario(REPO / "scenarios" / "oversub_training.yaml")
    tr_days = max(1, min(days, 6))
    for share in (0.05, 1.0):
        spec_t = tr.plan.power.model_copy(update={"verify_seeds": tr_days, "max_capped_share": share})
        o = plan_and_verify(tr, spec_t, log_fn=lambda msg: print("  " + msg))
        mt = o.metrics
        print(f"TRAINING (capped share <= {share:.0%}; {tr_days} verification runs of 4 h): {mt['servers']} servers on "
              f"{mt['nameplate_servers']} = {mt['extra_servers_pct']:+.1f} %, trips {mt['trips']}, capped "
              f"{mt['capped_time_share']:.1%}, tokens per server {mt['training_throughput_change_pct']:+.1f} %, "
              f"verified={o.verified}; {time.perf_counter() - t1:.0f} s")
