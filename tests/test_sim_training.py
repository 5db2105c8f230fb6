"""Training pools: gang scheduling, EASY backfill, priorities, deferrable release, failures,
checkpoints and the power segments they leave."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fleet.frontier.profile import TrainingProfile
from fleet.scenario import parse_scenario
from fleet.sim.power import bin_energy, build_tree, rollup
from fleet.sim.training import plan_run, plan_segments, run_training

from _jobs import jobs


def prof(gpus, step=10.0, per_gpu_w=500.0, ck_steps=0, ck_s=0.0, f=0.0, pf=1.0) -> TrainingProfile:
    return TrainingProfile(model="m", accelerator="H100-SXM", gpus=gpus, precision="bf16", power_cap_w=700.0,
                           step_time_s=step, step_energy_j=step * per_gpu_w * gpus, tokens_per_step=1000,
                           comm_fraction=f, comm_power_fraction=pf, checkpoint_interval_steps=ck_steps,
                           checkpoint_time_s=ck_s, checkpoint_power_fraction=0.25, idle_power_w=70.0)


def run(js, servers=(8, 8), horizon=10_000.0, interval=1.0, factory=None, **kw):
    factory = factory or (lambda model, gpus, ci: prof(gpus))
    return run_training("t", list(servers), js, factory, idle_w_per_gpu=70.0, interval_s=interval,
                        horizon_s=horizon, **kw)


def starts(s):
    return s.jobs_frame().set_index("job_id")


def test_single_job_timeline_and_energy():
    f = lambda model, gpus, ci: prof(gpus, step=10.0, ck_steps=4, ck_s=3.0)   # noqa: E731
    s = run(jobs({"job_id": 1, "submit_s": 5.0, "gpus": 8, "duration_s": 100.0}), factory=f, horizon=500.0)
    j = starts(s).loc[1]
    # 10 steps, checkpoints after steps 4 and 8: 10*10 + 2*3 s
    assert j.status == "completed" and j.start_s == 5.0 and j.end_s == pytest.approx(5.0 + 106.0)
    p = f("m", 8, 0)
    assert j.energy_j == pytest.approx(10 * p.step_energy_j + 2 * 3.0 * p.checkpoint_power_w)
    seg = s.segments()
    total = seg["energy_j"].sum()
    # the job's energy plus every unallocated GPU-second at idle power
    idle = 70.0 * (16 * 500.0 - 8 * 106.0)
    assert total == pytest.approx(j.energy_j + idle, rel=1e-12)
    # one job on one server: all of its segments on t/s0
    assert set(seg["node"]) == {"t/s0", "t/s1"}


def test_fifo_with_easy_backfill():
    js = jobs({"job_id": 1, "submit_s": 0.0, "gpus": 12, "duration_s": 1000.0},
              {"job_id": 2, "submit_s": 1.0, "gpus": 16, "duration_s": 100.0},   # head, must wait for 1
              {"job_id": 3, "submit_s": 2.0, "gpus": 4, "duration_s": 500.0},    # ends before 1: backfilled
              {"job_id": 4, "submit_s": 3.0, "gpus": 4, "duration_s": 5000.0})   # would delay 2: waits
    j = starts(run(js))
    assert j.loc[1, "start_s"] == 0.0
    assert j.loc[3, "start_s"] == 2.0            # backfilled
    assert j.loc[2, "start_s"] == pytest.approx(1000.0)   # reservation kept
    assert j.loc[4, "start_s"] == pytest.approx(1100.0)   # after the head, not before


def test_backfill_can_be_turned_off_and_priorities_win():
    js = jobs({"job_id": 1, "submit_s": 0.0, "gpus": 12, "duration_s": 1000.0},
              {"job_id": 2, "submit_s": 1.0, "gpus": 16, "duration_s": 100.0},
              {"job_id": 3, "submit_s": 2.0, "gpus": 4, "duration_s": 500.0})
    j = starts(run(js, backfill=False))
    assert j.loc[3, "start_s"] == pytest.approx(1100.0)
    js = jobs({"job_id": 1, "submit_s": 0.0, "gpus": 16, "duration_s": 100.0},
              {"job_id": 2, "submit_s": 1.0, "gpus": 16, "duration_s": 100.0, "priority": 0},
              {"job_id": 3, "submit_s": 2.0, "gpus": 16, "duration_s": 100.0, "priority": 5})
    j = starts(run(js))
    assert j.loc[3, "start_s"] == pytest.approx(100.0) and j.loc[2, "start_s"] == pytest.approx(200.0)


def test_deferrable_release_by_time_deadline_and_signal():
    js = jobs({"job_id": 1, "submit_s": 0.0, "gpus": 8, "duration_s": 100.0, "deferrable": True},
              {"job_id": 2, "submit_s": 0.0, "gpus": 8, "duration_s": 100.0, "deferrable": True,
               "deadline_s": 900.0},
              {"job_id": 3, "submit_s": 0.0, "gpus": 8, "duration_s": 50.0})
    j = starts(run(js, servers=(8, 8, 8), release_times={1: 400.0}))
    assert j.loc[1, "start_s"] == pytest.approx(400.0)
    assert j.loc[2, "start_s"] == pytest.approx(800.0)     # latest start that meets its deadline
    assert j.loc[3, "start_s"] == 0.0                      # not deferrable
    # a signal threshold (e.g. grid carbon below a level), polled hourly
    sig = lambda t: t >= 7200.0   # noqa: E731
    j = starts(run(jobs({"job_id": 1, "submit_s": 10.0, "gpus": 8, "duration_s": 100.0, "deferrable": True}),
                   horizon=20_000.0, release_signal=sig))
    assert j.loc[1, "start_s"] == pytest.approx(7210.0)
    # no signal at all: released at submit
    j = starts(run(jobs({"job_id": 1, "submit_s": 10.0, "gpus": 8, "duration_s": 100.0, "deferrable": True})))
    assert j.loc[1, "start_s"] == 10.0


def test_failure_loses_work_since_checkpoint_and_restarts():
    f = lambda model, gpus, ci: prof(gpus, step=10.0, ck_steps=5, ck_s=2.0)   # noqa: E731
    js = jobs({"job_id": 1, "submit_s": 0.0, "gpus": 8, "duration_s": 200.0, "fail_at_s": 75.0})
    s = run(js, factory=f, restart_delay_s=30.0, horizon=1000.0)
    j = starts(s).loc[1]
    # 20 steps; checkpoints after 5, 10, 15.  Fail at 75 s: steps 1-5 (50 s) + ckpt (52 s) +
    # 2 more steps (72 s); checkpoint at step 5 kept, 2 steps lost.  Restart at 105 s from step 5:
    # 15 steps + 2 checkpoints = 154 s -> ends at 259 s.
    assert j.status == "completed" and j.restarts == 1
    assert j.end_s == pytest.approx(105.0 + 154.0)
    p = f("m", 8, 0)
    expect = (p.step_energy_j * 5 + p.checkpoint_power_w * 2 + p.compute_power_w * (75 - 52)) \
        + (15 * p.step_energy_j + 2 * 2.0 * p.checkpoint_power_w)
    assert j.energy_j == pytest.approx(expect)


def test_running_at_horizon_and_status():
    s = run(jobs({"job_id": 1, "submit_s": 0.0, "gpus": 16, "duration_s": 1000.0},
                 {"job_id": 2, "submit_s": 1.0, "gpus": 16, "duration_s": 10.0}), horizon=505.0)
    j = starts(s)
    assert j.loc[1, "status"] == "running" and j.loc[1, "steps"] == 50
    assert j.loc[2, "status"] == "queued" and math.isnan(j.loc[2, "start_s"])
    assert s.segments()["t1"].max() <= 505.0


def test_too_big_job_is_an_error():
    from fleet.errors import ConfigurationError
    with pytest.raises(ConfigurationError, match="needs 32 GPUs"):
        run(jobs({"job_id": 9, "submit_s": 0.0, "gpus": 32, "duration_s": 10.0}))


def test_comm_dips_visible_and_segments_coalesced():
    # 4 s steps, 25% communication at 40% power: visible at 1 s telemetry
    p = prof(8, step=4.0, f=0.25, pf=0.4)
    plan = plan_run(p, 0.0, 0, 10)
    t0, t1, e = plan_segments(p, plan, 40.0, 1.0)
    assert len(t0) == 20 and e.sum() == pytest.approx(10 * p.step_energy_j)
    fl = parse_scenario({"name": "x", "fleet": {"pools": [
        {"name": "t", "accelerator": "H100-SXM", "gpus": 8, "role": "training"}]}}, check=False).sim_input()
    tree = build_tree(fl.pools, fl.power, {}, tdp_w={"t": 700.0})
    seg = {"node": np.full(len(t0), "t/s0", dtype=object), "t0": t0, "t1": t1, "energy_j": e}
    g = rollup(bin_energy(seg, tree, 1.0, 40.0), tree)["gpu"][1][0]
    assert g.max() == pytest.approx(p.compute_power_w) and g.min() == pytest.approx(p.comm_power_w)
    # short steps (0.5 s) over a long run: one segment per checkpoint block, not per step
    p2 = prof(8, step=0.5, f=0.25, pf=0.4, ck_steps=1000, ck_s=5.0)
    plan = plan_run(p2, 0.0, 0, 100_000)
    t0, t1, e = plan_segments(p2, plan, 1e9, 1.0)
    assert len(t0) == 100 + 99
    assert e.sum() == pytest.approx(100_000 * p2.step_energy_j + 99 * 5.0 * p2.checkpoint_power_w)


def test_real_profile_from_energy_model():
    from fleet.frontier.training import build_training_profile
    p = build_training_profile("llama-3.1-8b", "H100-SXM", 64)
    # modelled, so loose physical bounds: per-GPU power between idle and TDP, MFU 20-75 %
    assert 70.0 < p.step_power_w / 64 <= 700.0
    assert 0.2 < p.meta["mfu"] < 0.75
    assert 0 < p.comm_fraction < 0.5 and p.comm_power_fraction < 1.0
    capped = build_training_profile("llama-3.1-8b", "H100-SXM", 64, power_cap_w=400.0)
    assert capped.step_time_s > p.step_time_s and capped.step_power_w / 64 <= 400.0 + 1e-6


def test_job_too_small_for_its_model_is_a_slice_of_a_larger_run():
    from fleet.frontier.training import build_training_profile, training_profile_for_job
    one = training_profile_for_job("llama-3.1-8b", "H100-SXM", 1)      # 8B state does not fit 1 GPU
    eight = build_training_profile("llama-3.1-8b", "H100-SXM", 8)
    assert one.meta["scaled_from_gpus"] == 8 and one.gpus == 1
    assert one.step_time_s == eight.step_time_s
    assert one.step_power_w == pytest.approx(eight.step_power_w / 8)
    assert one.tokens_per_step == eight.tokens_per_step // 8
    # the estimate itself agrees with the energy helper's training estimate
    from fleet.frontier.train_estimate import training_estimate
    est = training_estimate("llama-3.1-8b", "H100-SXM", 8, 10 * eight.tokens_per_step,
                            tokens_per_step=eight.tokens_per_step, failures=False)  # the steady state, as the profile
    assert 10 * eight.step_energy_j == pytest.approx(est["gpu_energy_j"], rel=1e-9)
