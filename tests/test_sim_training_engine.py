"""Training on the serving engine's clock: an engine without serving pools, training next to
serving on one Engine, and power caps changed mid-run (``TrainingScheduler.set_cap``)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.frontier.profile import TrainingProfile
from fleet.sim.engine import Engine
from fleet.sim.training import run_training

from _jobs import jobs
from _sim_profiles import toy_profile

IDLE_W = 70.0


def prof(gpus, cap_w=None, ck_steps=0, ck_s=0.0, f=0.0, pf=1.0) -> TrainingProfile:
    """A toy cap response: 500 W/GPU uncapped, 10 s steps; under a lower cap the GPU draws the
    cap and the step stretches in proportion to the square root of the power ratio."""
    w = 500.0 if cap_w is None else min(500.0, float(cap_w))
    step = 10.0 * math.sqrt(500.0 / w)
    return TrainingProfile(model="m", accelerator="H100-SXM", gpus=gpus, precision="bf16",
                           power_cap_w=700.0 if cap_w is None else float(cap_w), step_time_s=step,
                           step_energy_j=step * w * gpus, tokens_per_step=1000, comm_fraction=f,
                           comm_power_fraction=pf, checkpoint_interval_steps=ck_steps, checkpoint_time_s=ck_s,
                           checkpoint_power_fraction=0.25, idle_power_w=IDLE_W)


def factory(ck_steps=0, ck_s=0.0, f=0.0, pf=1.0):
    return lambda model, gpus, ci, power_cap_w=None: prof(gpus, power_cap_w, ck_steps, ck_s, f, pf)


def cap_at(t_s, cap_w, log=None):
    """setup hook: a one-shot controller that sets the pool's cap at ``t_s``."""
    def setup(eng, sched):
        def cb(e, now):
            if log is not None:
                log.append((now, sched.power_w()))
            sched.set_cap(cap_w)
        eng.every(1e12, cb, start_s=t_s)
    return setup


def tiles(seg, node, t_end):
    """The node's segments tile [0, t_end) without gap or overlap (so its power is defined
    everywhere and its energy is the integral of that power)."""
    m = seg["node"] == node
    t0, t1 = np.sort(seg["t0"][m]), np.sort(seg["t1"][m])
    return t0[0] == 0.0 and np.allclose(t0[1:], t1[:-1], rtol=0, atol=1e-9) and t1[-1] == pytest.approx(t_end)


def power_at(seg, node, t):
    m = (seg["node"] == node) & (seg["t0"] <= t) & (seg["t1"] > t)
    return float((seg["energy_j"][m] / (seg["t1"][m] - seg["t0"][m])).sum())


# ---------------------------------------------------------------------- engine without pools
def test_engine_without_serving_pools_runs_the_clock():
    eng = Engine(100.0, seed=1)
    ticks, ends = [], []
    eng.every(25.0, lambda e, now: ticks.append(now))
    eng.at_end(lambda e, t_end: ends.append((t_end, e.now)))
    eng.record("x/s0", 0.0, 40.0, 400.0)
    eng.add_requests(pd.DataFrame({"request_id": [1, 2], "arrival_s": [1.0, 150.0], "input_tokens": [3, 3],
                                   "output_tokens": [4, 4]}))
    run = eng.run()
    assert ticks == [0.0, 25.0, 50.0, 75.0]
    assert ends == [(100.0, pytest.approx(75.0))]
    assert list(run.requests["drop_reason"]) == ["no_pool_for_model", "after_horizon"]
    assert run.segments.energy_by_node() == {"x/s0": 400.0}
    assert len(run.pools) == 0 and run.meta["replicas"] == 0


# ---------------------------------------------------------------------- one clock with serving
def test_training_and_serving_share_one_engine_without_changing_either():
    rng = np.random.default_rng(3)
    n = 400
    req = pd.DataFrame({"request_id": np.arange(n), "arrival_s": np.sort(rng.uniform(0, 900, n)),
                        "input_tokens": rng.integers(20, 400, n), "output_tokens": rng.integers(5, 200, n)})
    js = jobs({"job_id": 1, "submit_s": 5.0, "gpus": 8, "duration_s": 300.0},
              {"job_id": 2, "submit_s": 50.0, "gpus": 12, "duration_s": 200.0, "fail_at_s": 60.0})
    kw = dict(idle_w_per_gpu=IDLE_W, interval_s=10.0, horizon_s=1000.0, restart_delay_s=30.0)

    def serving_engine():
        eng = Engine(1000.0, seed=0)
        eng.add_serving_pool("srv", toy_profile(), 2, "m")
        eng.add_requests(req)
        return eng

    alone = serving_engine().run()
    solo = run_training("t", [8, 8], js, factory(), **kw)
    eng = serving_engine()
    seen = []
    both = run_training("t", [8, 8], js, factory(), eng=eng,
                        setup=lambda e, s: e.every(100.0, lambda e_, now: seen.append(
                            (now, sum(r.power_w for r in e_.replicas()), s.power_w()))), **kw)
    run = both.run_result
    # serving is untouched by the training processes on its clock, and vice versa
    pd.testing.assert_frame_equal(run.requests, alone.requests)
    pd.testing.assert_frame_equal(both.jobs_frame(), solo.jobs_frame())
    e_both, e_alone = run.segments.energy_by_node(), alone.segments.energy_by_node()
    for node, e in e_alone.items():
        assert e_both[node] == e
    for k, v in solo.segments().items():
        np.testing.assert_array_equal(both.segments()[k], v)
    # a periodic callback reads serving and training power at the same instants
    assert [t for t, _, _ in seen] == [100.0 * i for i in range(10)]
    tseg = both.segments()
    for t, p_serve, p_train in seen:
        assert p_serve > 0
        assert p_train == pytest.approx(power_at(tseg, "t/s0", t) + power_at(tseg, "t/s1", t), rel=1e-9)


# ---------------------------------------------------------------------- caps mid-run
def test_set_cap_mid_run_lowers_power_and_energy_is_the_integral():
    js = jobs({"job_id": 1, "submit_s": 0.0, "gpus": 8, "duration_s": 1000.0})   # 100 steps of 10 s
    log = []
    s = run_training("t", [8], js, factory(), idle_w_per_gpu=IDLE_W, interval_s=1.0, horizon_s=3000.0,
                     setup=cap_at(333.0, 300.0, log))
    j = s.jobs_frame().set_index("job_id").loc[1]
    hi, lo = prof(8), prof(8, 300.0)
    # asked at 333 s, in step 34: the switch waits for its end at 340 s; 66 steps remain at 300 W
    t_b = 340.0
    assert j.status == "completed" and j.steps == 100
    assert j.end_s == pytest.approx(t_b + 66 * lo.step_time_s)
    assert j.energy_j == pytest.approx(34 * hi.step_energy_j + 66 * lo.step_energy_j, rel=1e-12)
    seg = s.segments()
    assert tiles(seg, "t/s0", 3000.0)
    assert seg["energy_j"].sum() == pytest.approx(j.energy_j + IDLE_W * 8 * (3000.0 - j.end_s), rel=1e-12)
    # power steps down at the boundary, not when asked
    assert power_at(seg, "t/s0", 335.0) == pytest.approx(8 * 500.0)
    assert power_at(seg, "t/s0", 341.0) == pytest.approx(8 * 300.0)
    assert log == [(333.0, pytest.approx(8 * 500.0))]
    # the telemetry integral of that power is the recorded energy
    from fleet.scenario import parse_scenario
    from fleet.sim.power import bin_energy, build_tree, rollup
    fl = parse_scenario({"name": "x", "fleet": {"pools": [
        {"name": "t", "accelerator": "H100-SXM", "gpus": 8, "role": "training"}]}}, check=False).sim_input()
    tree = build_tree(fl.pools, fl.power, {}, tdp_w={"t": 700.0})
    e_bin = rollup(bin_energy(seg, tree, 60.0, 3000.0), tree)["gpu"][1][0]     # J per 60 s bin
    assert e_bin.sum() == pytest.approx(seg["energy_j"].sum(), rel=1e-12)
    assert e_bin[4] / 60.0 == pytest.approx(8 * 500.0) and e_bin[6] / 60.0 == pytest.approx(8 * 300.0)


def test_cap_change_during_a_checkpoint_and_a_failure_after_it():
    # 10 s steps, checkpoint (4 s) every 5 steps; fails 130 s after start, restarts after 20 s
    f = factory(ck_steps=5, ck_s=4.0)
    js = jobs({"job_id": 1, "submit_s": 0.0, "gpus": 8, "duration_s": 200.0, "fail_at_s": 130.0})
    s = run_training("t", [8], js, f, idle_w_per_gpu=IDLE_W, interval_s=1.0, horizon_s=2000.0,
                     restart_delay_s=20.0, setup=cap_at(52.0, 125.0))     # in the first checkpoint
    j = s.jobs_frame().set_index("job_id").loc[1]
    hi, lo = f("m", 8, 0), f("m", 8, 0, power_cap_w=125.0)
    assert lo.step_time_s == pytest.approx(20.0)
    # the checkpoint ends at 54 s at the old point; then 20 s steps, checkpoint after step 10
    # (254 s)... the failure at 130 s loses the 3 steps since step 5 plus most of a 4th
    t_b = 54.0
    lost = 130.0 - t_b
    assert j.restarts == 1 and j.status == "completed"
    # restart at 150 s from step 5 at the new cap: 15 steps, checkpoints after steps 10 and 15
    assert j.end_s == pytest.approx(150.0 + 15 * 20.0 + 2 * 4.0)
    expect = (5 * hi.step_energy_j + 4.0 * hi.checkpoint_power_w + lost * lo.step_power_w
              + 15 * lo.step_energy_j + 2 * 4.0 * lo.checkpoint_power_w)
    assert j.energy_j == pytest.approx(expect, rel=1e-12)
    assert tiles(s.segments(), "t/s0", 2000.0)


def test_resolved_steps_switch_at_a_step_end_and_cap_can_be_lifted():
    f = factory(f=0.25, pf=0.4)             # 10 s steps at 1 s telemetry: compute/comm resolved
    js = jobs({"job_id": 1, "submit_s": 0.0, "gpus": 8, "duration_s": 400.0})
    powers = []

    def setup(eng, sched):
        eng.every(100.0, lambda e, now: sched.set_cap(250.0 if now < 200.0 else None), start_s=101.0)
        eng.every(1.0, lambda e, now: powers.append((now, sched.power_w())), start_s=0.5)

    s = run_training("t", [8], js, f, idle_w_per_gpu=IDLE_W, interval_s=1.0, horizon_s=1000.0, setup=setup)
    seg = s.segments()
    lo = f("m", 8, 0, power_cap_w=250.0)
    # 250 W from 110 s: 10 steps of 10 s, then 9 of 10*sqrt(2) s, asked back at 201 s, switched
    # at the end of the step in progress
    n_lo = math.ceil((201.0 - 110.0) / lo.step_time_s)
    t_up = 110.0 + n_lo * lo.step_time_s
    j = s.jobs_frame().set_index("job_id").loc[1]
    assert j.end_s == pytest.approx(t_up + (40 - 11 - n_lo) * 10.0)
    assert tiles(seg, "t/s0", 1000.0)
    # power_w() as a controller reads it matches the recorded segments at every sample
    for t, p in powers:
        assert p == pytest.approx(power_at(seg, "t/s0", t), rel=1e-9, abs=1e-9)
    ps = dict(powers)
    hi = f("m", 8, 0)
    assert ps[105.5] == pytest.approx(hi.compute_power_w)              # compute phase, uncapped
    assert ps[109.5] == pytest.approx(hi.comm_power_w)                 # communication phase
    assert ps[110.5] == pytest.approx(lo.compute_power_w)              # capped
    assert lo.compute_power_w < 0.6 * hi.compute_power_w
    assert ps[math.floor(t_up) + 3.5] == pytest.approx(hi.compute_power_w)   # lifted


@settings(max_examples=25, deadline=None)
@given(caps=st.lists(st.tuples(st.floats(1.0, 2500.0), st.sampled_from([None, 150.0, 300.0, 450.0])),
                     max_size=6),
       ck=st.sampled_from([(0, 0.0), (3, 4.0), (7, 12.0)]),
       fail=st.sampled_from([math.nan, 95.0, 400.0]))
def test_caps_at_random_times_keep_the_books(caps, ck, fail):
    f = factory(ck_steps=ck[0], ck_s=ck[1], f=0.2, pf=0.5)
    js = jobs({"job_id": 1, "submit_s": 0.0, "gpus": 12, "duration_s": 600.0, "fail_at_s": fail},
              {"job_id": 2, "submit_s": 30.0, "gpus": 4, "duration_s": 300.0},
              {"job_id": 3, "submit_s": 60.0, "gpus": 8, "duration_s": 200.0})

    samples = []

    def setup(eng, sched):
        for t, c in caps:
            eng.every(1e12, lambda e, now, c=c: sched.set_cap(c), start_s=t)
        eng.every(7.3, lambda e, now: samples.append((now, sched.server_power_w())), start_s=0.37)

    H = 3000.0
    s = run_training("t", [8, 8], js, f, idle_w_per_gpu=IDLE_W, interval_s=5.0, horizon_s=H,
                     restart_delay_s=30.0, setup=setup)
    seg = s.segments()
    jf = s.jobs_frame()
    assert np.all(seg["t1"] > seg["t0"]) and seg["t0"].min() >= 0 and seg["t1"].max() <= H
    # the power a controller reads is the power recorded, on every server at every sample
    for t, per_server in samples:
        for k in (0, 1):
            assert per_server[k] == pytest.approx(power_at(seg, f"t/s{k}", t), rel=1e-9, abs=1e-6)
            assert 0 < per_server[k] <= f("m", 8, 0).compute_power_w * (1 + 1e-9)
    # every joule recorded is a job's or an idle GPU's: idle energy = idle W x free GPU-seconds
    idle_gpu_s = 16 * H - s.busy_gpu_s
    assert seg["energy_j"].sum() == pytest.approx(jf.energy_j.sum() + IDLE_W * idle_gpu_s, rel=1e-9)
    done = jf[jf.status == "completed"]
    assert (done.steps == done.total_steps).all()
    assert (jf.status == "completed").all()


# ---------------------------------------------------------------------- end to end, real profiles
def test_controller_caps_a_training_pool_through_simulate(tmp_path):
    from fleet import load_scenario
    from fleet.sim import simulate

    jobs_csv = tmp_path / "jobs.csv"
    pd.DataFrame({"job_id": [0], "submit_s": [0.0], "gpus": [8], "model": ["llama-3.1-8b"], "tokens": [np.nan],
                  "duration_s": [7200.0], "priority": [0], "deadline_s": [np.nan], "deferrable": [False],
                  "fail_at_s": [np.nan], "checkpoint_interval_s": [1800.0]}).to_csv(jobs_csv, index=False)
    d = {"name": "capped", "fleet": {"pools": [{"name": "t", "accelerator": "H100-SXM", "gpus": 8,
                                                "role": "training"}]},
         "demand": {"training": {"jobs": "jobs.csv"}},
         "simulation": {"horizon_s": 4 * 3600.0, "telemetry_interval_s": 60.0}}
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump(d))
    sc = load_scenario(p)
    free = simulate(sc)
    seen = {}

    def on_engine(eng, training):
        def cb(e, now):
            seen["before_w"] = training["t"].power_w()
            training["t"].set_cap(400.0)
        eng.every(1e12, cb, start_s=3600.0)

    capped = simulate(sc, on_engine=on_engine)
    gpu = {k: r.power[(r.power.level == "pool")].set_index("time_s").power_w for k, r in
           (("free", free), ("capped", capped))}
    # same power before the cap, lower after (the switch waits for the step in progress)
    assert gpu["capped"].loc[1800.0] == pytest.approx(gpu["free"].loc[1800.0], rel=1e-12)
    assert gpu["capped"].loc[5400.0] < gpu["free"].loc[5400.0] - 8 * 50.0
    assert seen["before_w"] == pytest.approx(free.jobs.energy_j.iloc[0] / free.jobs.end_s.iloc[0], rel=0.05)
    jf, jc = free.jobs.iloc[0], capped.jobs.iloc[0]
    assert jc.status == jf.status == "completed" and jc.steps == jf.steps
    assert jc.end_s > jf.end_s
    # energy is still the integral of the pool's telemetry: the jobs' energy plus idle GPUs
    from fleet.frontier import accelerator_power
    idle_w = accelerator_power("H100-SXM").idle_w
    for r in (free, capped):
        pool = r.pools.set_index("pool").loc["t"]
        idle_j = idle_w * 8 * 4 * 3600.0 * (1.0 - pool.busy_fraction)
        assert pool.gpu_energy_j == pytest.approx(r.jobs.energy_j.sum() + idle_j, rel=1e-9)
    assert capped.jobs.energy_j.iloc[0] != pytest.approx(free.jobs.energy_j.iloc[0], rel=1e-3)
