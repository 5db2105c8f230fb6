"""Breakers and the capping controller on the live power tree (fleet.sim.protection, fleet.sim.control).

Fast: hand-made serving profiles (tests/_sim_profiles.py) whose power scales with the cap, a few
minutes of simulated time."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from _sim_profiles import toy_profile
from fleet.scenario import parse_scenario
from fleet.sim import simulate
from fleet.sim.control import PolcaController, RowInfo

TDP = 700.0
STATIC_W = 400.0          # per server (2 GPUs per server below)
PER_GPU_W = 0.0


def factory(op):
    """Power scales with the cap (a cap below the draw is binding); the step time grows as
    (700 / cap)^0.3, a made-up but monotone response."""
    cap = op.power_cap_w or TDP
    s = cap / TDP
    return toy_profile(power_scale=s, speed=s ** 0.3, cap_w=cap)


def scenario(power: dict, rate: float = 60.0, hours: float = 0.05, horizon: float = 300.0, gpus: int = 4,
             dt: float = 1.0, demand: bool = True):
    data = {
        "name": "prot", "seed": 1,
        "fleet": {"pools": [{"name": "h100", "accelerator": "H100-SXM", "gpus": gpus, "gpus_per_server": 2,
                             "server": {"static_w": STATIC_W, "per_gpu_w": PER_GPU_W},
                             "serve": [{"model": "llama-3.1-8b", "tp": 1}]}],
                  "power": power},
        "demand": {"inference": [{"model": "llama-3.1-8b",
                                  "synth": {"profile": "poisson", "rate": rate, "hours": hours, "seed": 2,
                                            "input_tokens": 500, "output_tokens": 300},
                                  "slo": {"ttft_s": 1.0, "tpot_s": 0.1}}] if demand else []},
        "simulation": {"horizon_s": horizon, "telemetry_interval_s": dt},
    }
    return parse_scenario(data, check=False)


def row_power(r):
    p = r.power[r.power.level == "row"]
    return p["time_s"].to_numpy(), p["power_w"].to_numpy()


# ---------------------------------------------------------------------- breakers
def test_breaker_trips_exactly_when_its_curve_says_and_its_servers_go_dark():
    # idle row: 2 servers x 400 W + 4 GPUs x 100 W idle = 1200 W from t = 0, constant.  A breaker
    # rated 1000 W (ratio 1.2) with curve (1.1, 30 s) trips at t = 30 s exactly; dark for 60 s
    # (0 W), back at 90 s, above again, trips at 120 s, 210 s.
    sc = scenario({"rows": {"row0": 1000.0},
                   "breakers": [{"level": "row", "curve": [[1.1, 30.0], [5.0, 0.0]], "reset_s": 60.0}]},
                  demand=False, horizon=240.0)
    r = simulate(sc, profile_factory=factory)
    assert list(r.trips["time_s"]) == [30.0, 120.0, 210.0]
    assert list(r.trips["curve_ratio"]) == [1.1] * 3
    assert r.trips["ratio"].iloc[0] == pytest.approx(1.2)
    assert r.meta["protection"]["trips"] == 3
    t, p = row_power(r)
    assert np.allclose(p[t < 30], 1200.0)
    assert np.allclose(p[(t >= 30) & (t < 90)], 0.0)       # dark: GPUs and server overhead
    assert np.allclose(p[(t >= 90) & (t < 120)], 1200.0)


def test_a_trip_drops_or_reroutes_the_requests_its_replicas_held():
    # rack breakers: only one rack of two trips (the second rack's rating is its own budget, high)
    power = {"rows": {"row0": 1e6}, "racks": {"row0/rack0": 900.0, "row0/rack1": 1e6},
             "breakers": [{"level": "rack", "curve": [[1.0, 20.0]], "reset_s": 1000.0}]}
    data_pool = dict(servers_per_rack=1)
    sc = scenario(power, rate=20.0, horizon=200.0)
    raw = sc.content()
    raw["fleet"]["pools"][0].update(data_pool)
    drop = simulate(parse_scenario(raw, check=False), profile_factory=factory)
    assert len(drop.trips) == 1 and drop.trips["node"].iloc[0] == "row0/rack0"
    lost = drop.requests[drop.requests["drop_reason"] == "breaker_trip"]
    assert len(lost) == drop.trips["requests"].iloc[0] > 0
    assert set(lost["replica"]) <= {0, 1}                     # the replicas of the tripped rack
    # after the trip, new requests go to the other rack only
    later = drop.requests[drop.requests["arrival_s"] > drop.trips["time_s"].iloc[0]]
    assert set(later["replica"]) == {2, 3}
    raw["fleet"]["power"]["breakers"][0]["on_trip"] = "reroute"
    rer = simulate(parse_scenario(raw, check=False), profile_factory=factory)
    assert len(rer.trips) == 1
    assert not (rer.requests["drop_reason"] == "breaker_trip").any()
    assert (rer.requests["status"] == "completed").sum() > (drop.requests["status"] == "completed").sum()


# ---------------------------------------------------------------------- controller (harness, in the simulation)
CTL = {"interval_s": 2.0, "telemetry_delay_s": 3.0, "actuation_delay_s": 1.5, "t1": 0.8, "t2": 0.9, "brake": 0.97,
       "cap_low": 0.5, "cap_all": 0.6, "cap_brake": 0.4, "hysteresis": 0.2, "release_hold_s": 20.0}


def test_controller_acts_within_its_delays_and_keeps_the_row_under_its_budget():
    # 4 GPUs at ~650 W under load + 800 W static ~ 3.4 kW; budget 3 kW; capped at 60 % (420 W)
    # the row draws ~ 2.4 kW
    budget = 3000.0
    sc = scenario({"rows": {"row0": budget}, "controller": dict(CTL, brake=1.5)}, rate=60.0, hours=0.05,
                  horizon=300.0)
    r = simulate(sc, profile_factory=factory)
    a = r.controller_actions
    assert len(a) >= 1
    first = a.iloc[0]
    assert first["time_s"] - first["decided_s"] == pytest.approx(1.5)           # actuation delay
    assert (first["decided_s"] - 3.0) % 2.0 == pytest.approx(0.0)              # a sample + telemetry delay
    assert first["lever"] == "cap" and first["value"] == pytest.approx(420.0)  # cap_all of 700 W (no low class)
    t, p = row_power(r)
    over = t[p > budget]
    assert len(over) and over[0] < first["time_s"]                               # it was over before acting
    # once the cap is in place (the next whole bin after the action), the row stays under the budget
    settled = t >= math.floor(first["time_s"]) + 1
    assert p[settled].max() <= budget
    assert r.meta["protection"]["capped_time_share"]["row0"] > 0


def test_controller_releases_after_the_hysteresis_and_logs_every_action():
    budget = 3000.0
    sc = scenario({"rows": {"row0": budget}, "controller": CTL}, rate=60.0, hours=0.05, horizon=400.0)
    r = simulate(sc, profile_factory=factory)
    a = r.controller_actions
    rel = a[a["value"].isna()]
    assert len(rel) >= 1                                         # the demand ends at 180 s: released
    assert rel["reason"].str.contains("release").all()
    # released no earlier than the hold after the demand ended (power fell below 90% - 20%)
    assert rel["decided_s"].iloc[-1] >= 180.0 + CTL["release_hold_s"]
    assert set(a.columns) >= {"time_s", "row", "lever", "reason"}


def test_polca_controller_thresholds_hysteresis_and_priorities_by_hand():
    cfg = SimpleNamespace(interval_s=1.0, t1=0.8, t2=0.9, brake=0.95, admission=None, hysteresis=0.05,
                          release_hold_s=3.0, release="threshold", lever="cap", cap_low=0.5, cap_all=0.7, cap_brake=0.3,
                          low_priority=("training", "batch"), on_telemetry_loss="hold", stale_s=5.0)
    c = PolcaController(cfg)
    c.start({"row0": RowInfo("row0", 100.0, ("interactive", "training"))})
    step = lambda t, w: c.step(t, {"row0": (t, w)})  # noqa: E731
    assert step(0, 70) == []
    a = step(1, 85)                                  # above t1: training only
    assert [(x.classes, x.value) for x in a] == [(("training",), 0.5)]
    a = step(2, 91)                                  # above t2: interactive too
    assert [(x.classes, x.value) for x in a] == [(("interactive",), 0.7)]
    assert step(3, 86) == []                         # between t2 - hysteresis and t2: hold
    assert step(4, 84) == []                         # below 85 %: the hold starts
    assert step(5, 84) == [] and step(6, 84) == []
    a = step(7, 84)                                  # 3 s below: back to level 1
    assert [(x.classes, x.value) for x in a] == [(("interactive",), None)]
    assert c.level["row0"] == 1
    a = step(8, 99)                                  # straight to the brake
    assert [(set(x.classes), x.value) for x in a] == [({"interactive", "training"}, 0.3)]
    assert c.step(9, None) == [] and c.level["row0"] == 3     # telemetry lost: hold


def test_telemetry_outage_and_controller_failure_are_counted():
    budget = 3000.0
    ctl = dict(CTL, outages=[[0.0, 100.0]])         # blind for the first 100 s: the row runs over
    r = simulate(scenario({"rows": {"row0": budget}, "controller": ctl,
                           "breakers": [{"level": "row", "curve": [[1.0, 20.0]], "reset_s": 30.0}]},
                          horizon=200.0), profile_factory=factory)
    assert r.meta["protection"]["trips"] >= 1
    assert r.controller_actions.empty or r.controller_actions["decided_s"].min() >= 100.0
    ok = simulate(scenario({"rows": {"row0": budget}, "controller": CTL,
                            "breakers": [{"level": "row", "curve": [[1.0, 20.0]], "reset_s": 30.0}]},
                           horizon=200.0), profile_factory=factory)
    assert ok.meta["protection"]["trips"] == 0
    failed = simulate(scenario({"rows": {"row0": budget}, "controller": dict(CTL, fail_at_s=0.0)},
                               horizon=100.0), profile_factory=factory)
    assert failed.controller_actions.empty and failed.meta["protection"]["controller_steps"] == 0


def test_no_protection_means_no_protection_tables():
    r = simulate(scenario({"rows": {"row0": 3000.0}}, horizon=60.0, hours=0.01), profile_factory=factory)
    assert r.trips is None and r.controller_actions is None and "protection" not in r.meta


def test_bad_controller_rows_are_named():
    from fleet.errors import ScenarioError

    with pytest.raises(ScenarioError, match="rowX"):
        simulate(scenario({"rows": {"row0": 3000.0}, "controller": dict(CTL, rows=["rowX"])}, horizon=30.0,
                          hours=0.005), profile_factory=factory)
    with pytest.raises(Exception, match="t1 < t2 < brake"):
        scenario({"rows": {"row0": 3000.0}, "controller": dict(CTL, t1=0.95, t2=0.9)})


def test_same_seed_same_protection_tables():
    sc = scenario({"rows": {"row0": 3000.0}, "controller": CTL, "breakers": [{"level": "row"}]}, horizon=120.0)
    a = simulate(sc, profile_factory=factory)
    b = simulate(sc, profile_factory=factory)
    assert a.controller_actions.equals(b.controller_actions) and a.power.equals(b.power)


def test_a_controller_of_your_own():
    from fleet.sim.control import Action

    class CapAtTen:
        """Caps every class of every row at 60 % from t = 10 s on, logs what it saw."""

        interval_s = 2.0

        def __init__(self):
            self.seen, self.done, self.finished = [], False, None

        def start(self, rows):
            self.rows = rows

        def step(self, t, readings):
            self.seen.append((t, readings))
            if t >= 10 and not self.done:
                self.done = True
                return [Action(r, "cap", info.classes, 0.6, "my rule", 1) for r, info in self.rows.items()]
            return []

        def finish(self, t):
            self.finished = t

    mine = CapAtTen()
    r = simulate(scenario({"rows": {"row0": 3000.0}}, horizon=60.0, hours=0.01), profile_factory=factory,
                 controller=mine)
    a = r.controller_actions
    assert len(a) == 1 and a["value"].iloc[0] == pytest.approx(420.0) and a["reason"].iloc[0] == "my rule"
    assert mine.finished == 60.0 and len(mine.seen) >= 20
    assert r.meta["protection"]["controller"] == "CapAtTen"


def test_a_failing_controller_holds_or_releases_its_levers():
    power = {"rows": {"row0": 3000.0}, "controller": dict(CTL, brake=1.5, fail_at_s=60.0)}
    held = simulate(scenario(power, horizon=120.0), profile_factory=factory)
    assert held.controller_actions["time_s"].max() < 60.0          # nothing after the failure
    power["controller"]["fail_mode"] = "release"
    rel = simulate(scenario(power, horizon=120.0), profile_factory=factory)
    last = rel.controller_actions.iloc[-1]
    assert last["time_s"] == 60.0 and math.isnan(last["value"]) and "controller failed" in last["reason"]
    t, p = row_power(rel)
    assert p[(t >= 61) & (t < 120)].max() > 3000.0                  # uncapped again: over the budget
