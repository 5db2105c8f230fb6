"""The scenario's replica schedule (``schedule:``, ``simulation.inactive``), the typed SimInput
the simulation reads, and errors raised while simulating named by their YAML field."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from fleet.errors import ConfigurationError, ScenarioError
from fleet.scenario import parse_scenario
from fleet.sim import SimInput, simulate
from fleet.siminput import sim_input

BASE = {
    "name": "sched", "seed": 5,
    "fleet": {"pools": [
        {"name": "h100", "accelerator": "H100-SXM", "gpus": 4, "gpus_per_server": 4,
         "serve": [{"model": "llama-3.1-8b", "tp": 1}]},
        {"name": "mix", "accelerator": "H100-SXM", "gpus": 2, "gpus_per_server": 2,
         "serve": [{"model": "llama-3.1-8b", "replicas": 1}, {"model": "Qwen/Qwen3-8B", "replicas": 1}]},
        {"name": "train", "accelerator": "H100-SXM", "gpus": 8, "role": "training"},
    ]},
    "demand": {"inference": [
        {"model": "llama-3.1-8b", "synth": {"profile": "poisson", "rate": 0.3, "hours": 3, "seed": 1,
                                             "input_tokens": 300, "output_tokens": 100}},
        {"model": "qwen3-8b", "synth": {"profile": "poisson", "rate": 0.05, "hours": 3, "seed": 2,
                                         "input_tokens": 300, "output_tokens": 100}}]},
    "simulation": {"horizon_s": 10800, "telemetry_interval_s": 60},
}


def sc_with(**over):
    d = copy.deepcopy(BASE)
    for k, v in over.items():
        if k == "simulation":
            d["simulation"] = {**d["simulation"], **v}
        else:
            d[k] = v
    return d


def error(d) -> ScenarioError:
    with pytest.raises(ScenarioError) as e:
        parse_scenario(d)
    return e.value


# ---------------------------------------------------------------------- validation
@pytest.mark.parametrize("schedule,field,text", [
    ({"h100": [4, 5]}, "schedule.h100[1]", "5 active replicas, but the pool has 4"),
    ({"nope": [1]}, "schedule.nope", "unknown pool 'nope'"),
    ({"train": [1]}, "schedule.train", "training pool"),
    ({"h100": []}, "schedule.h100", "at least one hour"),
    ({"mix": [1]}, "schedule.mix", "serves several models"),
    ({"mix:mistral-7b-v0.1": [1]}, "schedule.mix:mistral-7b-v0.1", "does not serve"),
    ({"mix:llama-3.1-8b": [1, 2]}, "schedule.mix:llama-3.1-8b[1]", "2 active replicas, but mix serves"),
    ({"h100": [1, -1]}, "schedule.h100[1]", "non-negative"),
    ({"h100": [1], "h100:llama-3.1-8b": [2]}, "schedule.h100:llama-3.1-8b", "same serving pool"),
])
def test_schedule_errors_name_the_yaml_path(schedule, field, text):
    e = error(sc_with(schedule=schedule))
    assert e.field == field and text in str(e)


def test_schedule_keys_and_the_typed_input():
    sc = parse_scenario(sc_with(schedule={"h100": [4, 0, 2], "mix:Qwen/Qwen3-8B": [1, 0],
                                          "mix:llama-3.1-8b": [0]}))
    x = sim_input(sc)
    assert isinstance(x, SimInput) and x == sc.sim_input()
    by = {s.engine_pool: s for s in x.schedule}
    assert by["h100"].active == (4, 0, 2) and by["h100"].field == "schedule.h100"
    assert by["mix:qwen3-8b"].field == "schedule.mix:Qwen/Qwen3-8B" and by["mix:qwen3-8b"].at(3) == 0
    assert by["mix:llama-3.1-8b"].at(7) == 0
    # every item carries the YAML path it came from, names resolved
    assert [p.field for p in x.pools] == ["fleet.pools[0]", "fleet.pools[1]", "fleet.pools[2]"]
    assert x.pools[1].serve[1].field == "fleet.pools[1].serve[1]" and x.pools[1].serve[1].model == "qwen3-8b"
    assert x.pools[0].serve[0].replicas == 4 and x.pools[0].standby_w == 7.0 and x.pools[0].idle_w == 72.0
    assert x.inference[1].synth.field == "demand.inference[1].synth"
    with pytest.raises(Exception):
        x.pools[0].gpus = 8          # frozen


def test_fluid_mode_refuses_a_schedule():
    e = error(sc_with(schedule={"h100": [1]}, simulation={"mode": "fluid", "telemetry_interval_s": 3600}))
    assert e.field == "simulation.mode" and "request level" in str(e)
    sc = parse_scenario(sc_with(schedule={"h100": [1]}))
    with pytest.raises(ScenarioError) as e2:
        simulate(sc, mode="fluid")
    assert e2.value.field == "schedule.h100"


# ---------------------------------------------------------------------- simulation
@pytest.fixture(scope="module")
def runs():
    plain = parse_scenario(sc_with())
    allmax = parse_scenario(sc_with(schedule={"h100": [4], "mix:llama-3.1-8b": [1, 1]}))
    sched = {"h100": [4, 1, 0], "mix:qwen3-8b": [1, 0, 1]}
    idle = parse_scenario(sc_with(schedule=sched))
    off = parse_scenario(sc_with(schedule=sched, simulation={"inactive": "off"}))
    return {k: simulate(v) for k, v in (("plain", plain), ("allmax", allmax), ("idle", idle), ("off", off))}


def test_all_max_schedule_gives_byte_identical_tables(runs):
    a, b = runs["plain"], runs["allmax"]
    for t in ("requests", "power", "tree", "pools", "jobs", "schedule"):
        pd.testing.assert_frame_equal(getattr(a, t), getattr(b, t), check_exact=True)


def test_the_result_records_active_replicas_per_hour(runs):
    s = runs["idle"].schedule
    assert list(s.columns) == ["hour", "time_s", "pool", "engine_pool", "model", "replicas", "active"]
    h = s[s.engine_pool == "h100"]
    assert h.active.tolist() == [4, 1, 0] and h.replicas.tolist() == [4, 4, 4]
    assert s[s.engine_pool == "mix:qwen3-8b"].active.tolist() == [1, 0, 1]
    assert s[s.engine_pool == "mix:llama-3.1-8b"].active.tolist() == [1, 1, 1]   # not scheduled: all active
    assert runs["plain"].schedule.active.tolist() == runs["plain"].schedule.replicas.tolist()
    assert runs["idle"].meta["schedule"]["inactive"] == "idle"


def test_zero_hours_wait_and_nothing_is_lost(runs):
    req = runs["idle"].requests
    assert len(req) == len(runs["plain"].requests)
    assert not (req.status == "dropped").any()
    # hour 2 has no h100 replica: llama requests go to mix's llama replica; qwen in hour 1 waits
    qw = req[(req.model == "qwen3-8b") & (req.arrival_s >= 3600) & (req.arrival_s < 7200 - 60)]
    assert len(qw) and (qw.admit_s >= 7200).all() and (qw.status == "completed").all()
    ll = req[(req.model == "llama-3.1-8b") & (req.arrival_s >= 7200)]
    assert (ll.pool == "mix").all()
    h1 = req[(req.pool == "h100") & (req.arrival_s >= 3600) & (req.arrival_s < 7200)]
    assert (h1.replica == 0).all()


def test_inactive_off_draws_the_catalog_standby_power(runs):
    def gpu_w(res, node, t0, t1):
        p = res.power
        m = (p.level == "gpu") & (p.node == node) & (p.time_s >= t0) & (p.time_s < t1)
        return p.power_w[m].to_numpy()

    # h100/r3 is inactive from 3600 s on; it drains within minutes, then draws idle / standby
    np.testing.assert_allclose(gpu_w(runs["idle"], "h100/r3", 4200, 10800), 72.0, rtol=1e-9)
    np.testing.assert_allclose(gpu_w(runs["off"], "h100/r3", 4200, 10800), 7.0, rtol=1e-9)
    # same service, less energy: the difference is (idle - standby) x the time powered down
    pd.testing.assert_frame_equal(runs["idle"].requests, runs["off"].requests)
    d = runs["idle"].pools.gpu_energy_j.sum() - runs["off"].pools.gpu_energy_j.sum()
    assert d > 0.9 * (72 - 7) * (3 * 2400 + 4 * 3600)


# ---------------------------------------------------------------------- error attribution
def test_a_profile_error_names_the_serve_entry():
    sc = parse_scenario(sc_with())

    def factory(op):
        if op.model == "qwen3-8b":
            raise ConfigurationError("no profile for this one")
        from fleet.sim.assemble import default_profile_factory
        return default_profile_factory(op)

    with pytest.raises(ScenarioError) as e:
        simulate(sc, profile_factory=factory)
    assert e.value.field == "fleet.pools[1].serve[1]"


def test_an_engine_error_in_a_serving_pool_names_the_pool_not_the_training(monkeypatch):
    from fleet.sim.replica import Replica

    d = sc_with(demand={**BASE["demand"], "training": {"synth": {"jobs": 2, "hours": 0.5, "max_gpus": 8}}})
    sc = parse_scenario(d)
    orig = Replica._end_decode

    def broken(self, now):
        if self.pool.name == "mix:qwen3-8b":
            raise ConfigurationError("replica fault")
        return orig(self, now)

    monkeypatch.setattr(Replica, "_end_decode", broken)
    with pytest.raises(ScenarioError) as e:
        simulate(sc)
    assert e.value.field == "fleet.pools[1].serve[1]" and "replica fault" in str(e.value)


def test_a_training_error_names_the_training_demand(monkeypatch):
    from fleet.sim.training import TrainingScheduler

    d = sc_with(demand={"training": {"synth": {"jobs": 2, "hours": 0.5, "max_gpus": 8}}})
    sc = parse_scenario(d)

    def broken(self, job):
        raise ConfigurationError("scheduler fault")
        yield  # pragma: no cover

    monkeypatch.setattr(TrainingScheduler, "_arrive", broken)
    with pytest.raises(ScenarioError) as e:
        simulate(sc)
    assert e.value.field == "demand.training" and "scheduler fault" in str(e.value)


def test_a_bad_trace_names_the_trace(tmp_path):
    p = tmp_path / "t.csv"
    p.write_text("request_id,arrival_s,input_tokens,output_tokens\n0,0.5,10,5\n1,1.0,10,0\n")
    d = sc_with(demand={"inference": [{"model": "llama-3.1-8b", "trace": {"path": str(p)}},
                                      {"model": "qwen3-8b", "trace": {"path": str(p)}}]})
    d["demand"]["inference"][0]["trace"]["path"] = str(tmp_path / "t.csv")
    good = tmp_path / "good.csv"
    good.write_text("request_id,arrival_s,input_tokens,output_tokens\n0,0.5,10,5\n")
    d["demand"]["inference"][0]["trace"]["path"] = str(good)
    sc = parse_scenario(d)
    with pytest.raises(ScenarioError) as e:
        simulate(sc)
    assert e.value.field == "demand.inference[1].trace"
