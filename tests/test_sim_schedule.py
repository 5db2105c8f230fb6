"""The replica schedule: active replicas per step, draining, routing, inactive power, waiting
requests (engine level, hand-made profiles), and the scenario's ``schedule`` section."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.sim.engine import Engine

from _sim_profiles import toy_profile

MODEL = "llama-3.1-8b"


def requests(n, t_end, seed=0, out=(1, 200)):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"request_id": np.arange(n), "arrival_s": np.sort(rng.uniform(0, t_end, n)),
                         "input_tokens": rng.integers(10, 2000, n), "output_tokens": rng.integers(*out, n)})


def run(df, schedule=None, *, replicas=4, horizon=math.inf, router="jsq", mode="coalesced", step=10.0,
        inactive_w=None, profile=None):
    eng = Engine(horizon, seed=0, mode=mode)
    eng.add_serving_pool("p", profile or toy_profile(max_batch=16, kv_tokens=40_000), replicas, MODEL)
    eng.set_router(MODEL, router)
    if schedule is not None:
        eng.set_schedule("p", schedule, step_s=step, inactive_w=inactive_w)
    eng.add_requests(df)
    return eng, eng.run()


def tiles(run, node, t_end):
    """The node's segments cover [0, t_end] without gap or overlap; returns them sorted."""
    seg = run.segments
    m = seg.node_id == seg.node_names.index(node)
    o = np.argsort(seg.t0[m], kind="stable")
    t0, t1, e = seg.t0[m][o], seg.t1[m][o], seg.energy_j[m][o]
    assert t0[0] == 0.0 and t1[-1] == pytest.approx(t_end)
    assert np.allclose(t1[:-1], t0[1:], rtol=0, atol=1e-12)
    return t0, t1, e


class Spy:
    """A custom router that records what it was offered."""

    def __init__(self):
        self.offered = []

    def choose(self, request, replicas):
        self.offered.append((request.arrival_s, [r.index for r in replicas], [r.active for r in replicas]))
        return min(replicas, key=lambda r: (r.queued + r.running, r.index))


@pytest.mark.parametrize("router", ["jsq", "round_robin", "least_kv", "custom"])
def test_routers_never_choose_inactive_replicas_and_zero_hours_wait(router):
    sched = [4, 2, 0, 3, 1]
    df = requests(400, 50.0, seed=1)
    spy = Spy() if router == "custom" else None
    eng, res = run(df, sched, router=spy or router, step=10.0)
    req = res.requests
    assert len(req) == len(df) and (req.status == "completed").all()     # nothing lost, nothing dropped
    step = np.floor(req.arrival_s.to_numpy() / 10.0).astype(int)
    count = np.array(sched)[step % len(sched)]
    routed_to = req.replica.to_numpy()
    live = count > 0
    assert (routed_to[live] < count[live]).all()
    # requests of the zero hour [20, 30) waited and went to the 3 replicas of the next hour
    z = ~live
    assert z.sum() > 10
    assert (routed_to[z] < 3).all()
    assert (req.admit_s[z] >= 30.0).all() and (req.ttft_s[z] > 0).all()
    if spy is not None:
        assert spy.offered and all(all(a) for _, _, a in spy.offered)
    assert eng.active_log()[0] == (0.0, "p", 4)
    assert [n for _, _, n in eng.active_log()][:5] == [4, 2, 0, 3, 1]   # (repeats while work remains)


def test_a_replica_deactivated_mid_request_finishes_it_then_powers_down():
    df = pd.DataFrame({"request_id": [0], "arrival_s": [9.0], "input_tokens": [500], "output_tokens": [1000]})
    eng, res = run(df, [1, 0], replicas=1, horizon=60.0, step=10.0, inactive_w=5.0)
    r = res.requests.iloc[0]
    assert r.status == "completed" and r.replica == 0 and r.admit_s == pytest.approx(9.0)
    assert 10.0 < r.completion_s < 20.0                # it ran past its deactivation at 10 s
    t0, t1, e = tiles(res, "p/r0", 60.0)
    p = e / (t1 - t0)
    drained = (t0 >= r.completion_s - 1e-9) & (t1 <= 20.0 + 1e-9)
    assert drained.any() and np.allclose(p[drained], 5.0)     # off once drained ...
    on_again = (t0 >= 20.0 - 1e-9) & (t1 <= 30.0 + 1e-9)
    assert np.allclose(p[on_again], 100.0)             # ... at idle power while active ([1, 0] repeats)
    assert np.allclose(p[t0 >= 30.0 - 1e-9][[0]], 5.0)
    # energy is the integral of the power: idle/off segments are their power x time
    assert res.replicas.energy_j.sum() == pytest.approx(e.sum(), rel=1e-12)
    assert e[(t0 >= 50.0 - 1e-9)].sum() == pytest.approx(5.0 * 10.0, rel=1e-12)


def test_all_max_schedule_equals_no_schedule():
    df = requests(300, 40.0, seed=2)
    _, a = run(df)
    _, b = run(df, [4, 4, 4], inactive_w=1.0)
    pd.testing.assert_frame_equal(a.requests, b.requests, check_exact=True)
    for f in ("node_id", "t0", "t1", "energy_j"):
        assert np.array_equal(getattr(a.segments, f), getattr(b.segments, f))
    assert a.meta["events"] == b.meta["events"]


def test_inactive_idle_draws_idle_power_and_off_the_stated_standby():
    df = requests(50, 5.0, seed=3, out=(1, 20))
    _, idle = run(df, [4, 1], horizon=40.0, step=20.0)
    _, off = run(df, [4, 1], horizon=40.0, step=20.0, inactive_w=3.0)
    pd.testing.assert_frame_equal(idle.requests, off.requests)   # the schedule, not the power, decides service
    for k in (1, 2, 3):
        t0, t1, e = tiles(off, f"p/r{k}", 40.0)
        late = t0 >= 20.0 - 1e-9
        assert np.allclose(e[late] / (t1[late] - t0[late]), 3.0)
        t0, t1, e = tiles(idle, f"p/r{k}", 40.0)
        assert np.allclose(e[t0 >= 20.0 - 1e-9] / (t1[t0 >= 20.0 - 1e-9] - t0[t0 >= 20.0 - 1e-9]), 100.0)
    saved = idle.segments.energy_j.sum() - off.segments.energy_j.sum()
    assert saved == pytest.approx(3 * 20.0 * (100.0 - 3.0), rel=1e-9)


def test_requests_waiting_at_the_horizon_are_accounted_for():
    df = requests(40, 20.0, seed=4)
    eng, res = run(df, [2, 0], horizon=20.0, step=10.0)
    req = res.requests
    assert len(req) == 40
    late = req.arrival_s >= 10.0
    assert (req.status[late] == "running").all() and req.admit_s[late].isna().all()
    assert res.meta["waiting_at_end"] == late.sum()


@st.composite
def cases(draw):
    n = draw(st.integers(1, 30))
    arr = sorted(draw(st.lists(st.floats(0.0, 6.0, allow_nan=False), min_size=n, max_size=n)))
    reps = draw(st.integers(1, 3))
    return dict(
        df=pd.DataFrame({"request_id": np.arange(n), "arrival_s": arr,
                         "input_tokens": draw(st.lists(st.integers(1, 400), min_size=n, max_size=n)),
                         "output_tokens": draw(st.lists(st.integers(1, 120), min_size=n, max_size=n))}),
        replicas=reps,
        schedule=draw(st.lists(st.integers(0, reps), min_size=1, max_size=5)),
        step=draw(st.sampled_from([0.5, 1.0, 2.5])),
        router=draw(st.sampled_from(["round_robin", "jsq", "least_kv"])),
        horizon=draw(st.sampled_from([math.inf, 3.0, 8.0])),
        mode=draw(st.sampled_from(["coalesced", "iteration"])),
        inactive_w=draw(st.sampled_from([None, 0.0, 4.0])),
        kv=draw(st.integers(300, 3000)),
        max_batch=draw(st.integers(1, 6)),
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(cases())
def test_draining_keeps_every_request_and_energy_is_the_integral_of_power(c):
    prof = toy_profile(max_batch=c["max_batch"], kv_tokens=c["kv"])
    sched = c["schedule"]
    if c["horizon"] == math.inf and max(sched) == 0:
        sched = sched + [1]            # an endless run needs an active step to drain
    eng, res = run(c["df"], sched, replicas=c["replicas"], horizon=c["horizon"], router=c["router"],
                   mode=c["mode"], step=c["step"], inactive_w=c["inactive_w"], profile=prof)
    req, df = res.requests, c["df"]
    assert sorted(req.request_id) == sorted(df.request_id)
    too_big = (df.input_tokens + df.output_tokens > c["kv"]).to_numpy()
    after = (df.arrival_s >= c["horizon"]).to_numpy()
    dropped = (req.status == "dropped").to_numpy()
    assert (dropped == (too_big | after)).all()       # never dropped for want of an active replica
    if c["horizon"] == math.inf:
        assert (req.status[~dropped] == "completed").all()
    # routed only to replicas active at the routing time (arrival, or when one activated)
    counts = np.array(sched)
    k = np.floor(req.arrival_s.to_numpy() / c["step"]).astype(int)
    ok = ~dropped & (req.replica.to_numpy() >= 0)
    direct = ok & (counts[k % len(counts)] > 0)
    assert (req.replica.to_numpy()[direct] < counts[k[direct] % len(counts)]).all()
    # every replica's segments tile its life; energy = idle/off segments + the requests' shares
    t_end = res.meta["t_end_s"]
    for _, rep in res.replicas.iterrows():
        t0, t1, e = tiles(res, rep.node, t_end) if t_end > 0 else (None, None, None)
        if t0 is None:
            continue
        mine = (req.pool == rep.pool) & (req.replica == rep.replica)
        assert req.energy_j[mine].sum() + rep.idle_energy_j == pytest.approx(e.sum(), rel=1e-9, abs=1e-9)
        p = e / (t1 - t0)
        floor = min(prof.idle_power_w, c["inactive_w"] if c["inactive_w"] is not None else prof.idle_power_w)
        assert (p >= floor * (1 - 1e-9) - 1e-12).all() and (p <= 700.0).all()


def test_an_endless_run_ends_when_a_model_is_never_scheduled():
    """Requests of a model whose every replica is scheduled off in every step wait (accounted
    for as 'running'); an endless run still ends once the other model's work is done."""
    df = requests(30, 10.0, seed=5)
    df["model"] = np.where(np.arange(30) % 2 == 0, MODEL, "other")
    eng = Engine(math.inf, seed=0)
    eng.add_serving_pool("p", toy_profile(), 2, MODEL)
    eng.add_serving_pool("q", toy_profile(), 1, "other")
    eng.set_schedule("p", [2, 1], step_s=5.0)
    eng.set_schedule("q", [0, 0], step_s=5.0)
    eng.add_requests(df)
    res = eng.run()
    req = res.requests
    assert (req.status[req.model == MODEL] == "completed").all()
    assert (req.status[req.model == "other"] == "running").all()
    assert res.meta["waiting_at_end"] == 15
