"""Serving engine: golden timings by hand, batching rules, preemption, drops, set_profile."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fleet.errors import ConfigurationError
from fleet.sim.engine import Engine
from fleet.sim.result import REQUEST_COLUMNS

from _sim_profiles import toy_profile

MODEL = "llama-3.1-8b"


def trace(rows) -> pd.DataFrame:
    """rows: (arrival_s, input_tokens, output_tokens)."""
    a = np.array(rows, dtype=np.float64).reshape(-1, 3)
    return pd.DataFrame({"request_id": np.arange(len(a), dtype=np.int64), "arrival_s": a[:, 0],
                         "input_tokens": a[:, 1].astype(np.int64),
                         "output_tokens": a[:, 2].astype(np.int64)})


def run_one(rows, profile=None, replicas=1, horizon=math.inf, mode="coalesced", **pool):
    eng = Engine(horizon, seed=0, mode=mode)
    eng.add_serving_pool("h100", profile or toy_profile(), replicas, MODEL, **pool)
    eng.add_requests(trace(rows))
    return eng, eng.run()


@pytest.mark.parametrize("mode", ["coalesced", "iteration"])
def test_single_request_golden(mode):
    p = toy_profile()
    t_arr, n_in, n_out = 0.5, 1000, 100
    eng, run = run_one([(t_arr, n_in, n_out)], p, mode=mode)
    r = run.requests.iloc[0]
    tp, ep = p.prefill(n_in)
    td, ed = p.decode_span(1, n_in, n_out - 1)
    assert r.status == "completed"
    assert r.admit_s == pytest.approx(t_arr, abs=1e-12)
    assert r.ttft_s == pytest.approx(tp, rel=1e-12)
    assert r.e2e_s == pytest.approx(tp + td, rel=1e-9)
    assert r.tpot_s == pytest.approx(td / (n_out - 1), rel=1e-9)
    assert r.energy_j == pytest.approx(ep + ed, rel=1e-9)
    # the replica's energy is idle before the arrival + prefill + decode, nothing else
    seg = run.segments
    assert seg.energy_j.sum() == pytest.approx(p.idle_power_w * t_arr + ep + ed, rel=1e-9)
    assert seg.t1.max() == pytest.approx(t_arr + tp + td, rel=1e-12)
    assert list(run.requests.columns[:len(REQUEST_COLUMNS)]) == list(REQUEST_COLUMNS)
    assert run.requests.drop_reason.iloc[0] == ""


@pytest.mark.parametrize("mode", ["coalesced", "iteration"])
def test_two_overlapping_requests_by_hand(mode):
    p = toy_profile()
    # A: 100 in, 5 out at t=0.  B: 200 in, 4 out, arrives in the middle of A's 2nd decode iteration
    tpa, epa = p.prefill(100)
    it1 = p.decode_iter(1, 100)[0]
    it2 = p.decode_iter(1, 101)[0]
    tb_arr = tpa + it1 + 0.5 * it2
    eng, run = run_one([(0.0, 100, 5), (tb_arr, 200, 4)], p, mode=mode)
    a, b = run.requests.iloc[0], run.requests.iloc[1]
    # A decodes 2 iterations (the one in flight finishes), then B's prefill, then both decode
    t1 = tpa + p.decode_span(1, 100, 2)[0]
    tpb, epb = p.prefill(200)
    t2 = t1 + tpb                                   # B's first token
    c = (100 + 3 - 1) + (200 + 1 - 1)               # A has 3 tokens, B has 1
    td2, ed2 = p.decode_span(2, c, 2)               # A needs 2 more
    t3 = t2 + td2                                   # A completes
    td3, ed3 = p.decode_span(1, 200 + 3 - 1, 1)     # B: 1 more
    t4 = t3 + td3
    assert a.first_token_s == pytest.approx(tpa, rel=1e-12)
    assert b.admit_s == pytest.approx(t1, rel=1e-12)
    assert b.first_token_s == pytest.approx(t2, rel=1e-12)
    assert a.completion_s == pytest.approx(t3, rel=1e-12)
    assert b.completion_s == pytest.approx(t4, rel=1e-12)
    ed1 = p.decode_span(1, 100, 2)[1]
    assert a.energy_j == pytest.approx(epa + ed1 + ed2 / 2, rel=1e-9)
    assert b.energy_j == pytest.approx(epb + ed2 / 2 + ed3, rel=1e-9)
    assert run.segments.energy_j.sum() == pytest.approx(epa + ed1 + epb + ed2 + ed3, rel=1e-9)


def sample_every(eng, dt, fn):
    out = []
    eng.every(dt, lambda e, now: out.append(fn(e, now)))
    return out


def test_kv_overflow_preempts_and_all_complete():
    cap = 2000
    p = toy_profile(max_batch=8, kv_tokens=cap)
    eng = Engine(math.inf, 0)
    eng.add_serving_pool("h100", p, 1, MODEL)
    eng.add_requests(trace([(0.0, 300, 400)] * 4 + [(0.01, 200, 300)] * 2))
    kv = sample_every(eng, 0.002, lambda e, now: e.replicas()[0].kv_used_tokens)
    run = eng.run()
    req = run.requests
    assert (req.status == "completed").all()
    assert req.preemptions.sum() >= 1
    assert run.pools.recomputed_tokens.iloc[0] > 0
    assert max(kv) <= cap
    assert max(kv) > 0.8 * cap            # it really ran close to the limit
    # every request generated exactly its tokens: output tokens counted once, recompute apart
    assert run.pools.output_tokens.iloc[0] == req.output_tokens.sum()
    rep = run.replicas.iloc[0]
    assert req.energy_j.sum() + rep.idle_energy_j == pytest.approx(rep.energy_j, rel=1e-9)


def test_max_batch_respected_and_fcfs():
    p = toy_profile(max_batch=16)
    eng = Engine(math.inf, 0)
    eng.add_serving_pool("h100", p, 1, MODEL, max_batch=3)
    rng = np.random.default_rng(1)
    rows = [(0.001 * k, int(rng.integers(20, 200)), int(rng.integers(2, 40))) for k in range(12)]
    eng.add_requests(trace(rows))
    running = sample_every(eng, 0.0005, lambda e, now: e.replicas()[0].running)
    run = eng.run()
    req = run.requests
    assert (req.status == "completed").all()
    assert max(running) == 3
    # FCFS: admission and first tokens in arrival order
    assert np.all(np.diff(req.admit_s.to_numpy()) >= 0)
    assert np.all(np.diff(req.first_token_s.to_numpy()) >= 0)
    assert (req.admit_s >= req.arrival_s).all()


def test_max_prefill_tokens_splits_prefill_steps():
    p = toy_profile()
    eng, run = run_one([(0.0, 600, 3), (0.0, 600, 3), (0.0, 600, 3)], p, max_prefill_tokens=1300)
    f = run.requests.first_token_s.to_numpy()
    tp2 = p.prefill(1200, 2 * 600 ** 2)[0]
    assert f[0] == pytest.approx(tp2) and f[1] == pytest.approx(tp2)
    assert f[2] == pytest.approx(tp2 + p.prefill(600)[0])


def test_drops_with_reasons_and_horizon():
    p = toy_profile(kv_tokens=3000, max_context=2000)
    eng = Engine(10.0, 0)
    eng.add_serving_pool("h100", p, 1, MODEL)
    df = trace([(0.0, 100, 10), (1.0, 1900, 200), (2.0, 50, 5), (11.0, 10, 10)])
    df["model"] = [MODEL, MODEL, "other-model", MODEL]
    eng.add_requests(df)
    req = eng.run().requests.set_index("request_id")
    assert req.loc[0, "status"] == "completed"
    assert req.loc[1, "status"] == "dropped" and req.loc[1, "drop_reason"] == "exceeds_max_context"
    assert req.loc[2, "drop_reason"] == "no_pool_for_model" and req.loc[2, "pool"] == ""
    assert req.loc[3, "drop_reason"] == "after_horizon"
    assert req.loc[1, "replica"] == -1 and math.isnan(req.loc[1, "admit_s"])

    p2 = toy_profile(kv_tokens=1000)
    _, run = run_one([(0.0, 900, 200), (0.0, 100, 2)], p2)
    assert list(run.requests.drop_reason) == ["exceeds_kv_capacity", ""]


def test_running_at_horizon_energy_up_to_horizon():
    p = toy_profile()
    H = 0.3
    eng, run = run_one([(0.0, 500, 1000), (0.05, 500, 1000), (0.1, 20_000, 10)], p, horizon=H)
    req = run.requests
    assert (req.status == "running").all()
    seg = run.segments
    assert seg.t1.max() == pytest.approx(H)
    # energy up to H: requests + idle = segments, and mean power is within the profile's range
    rep = run.replicas.iloc[0]
    assert req.energy_j.sum() + rep.idle_energy_j == pytest.approx(seg.energy_j.sum(), rel=1e-9)
    assert p.idle_power_w * H < seg.energy_j.sum() < 800.0 * H


def test_set_profile_mid_decode():
    p1 = toy_profile()
    p2 = toy_profile(speed=0.5, power_scale=0.8, cap_w=400.0)
    n_in, n_out, t_c = 500, 2000, 3.0
    eng = Engine(math.inf, 0)
    eng.add_serving_pool("h100", p1, 1, MODEL)
    eng.add_requests(trace([(0.0, n_in, n_out)]))
    seen = {}

    def cap(e, now):
        r = e.replicas()[0]
        if now == t_c:
            seen["before"] = r.power_w
            r.set_profile(p2)
            seen["after_call"] = r.power_w        # still the old profile until the boundary
        elif "later" not in seen:
            seen["later"] = (r.power_w, now)

    eng.every(t_c, cap, start_s=t_c)
    run = eng.run()
    tp, ep = p1.prefill(n_in)
    n1 = p1.decode_iters_within(1, n_in, t_c - tp) + 1     # the iteration in flight completes
    tb, e1 = p1.decode_span(1, n_in, n1)
    tb += tp
    m = n_out - 1 - n1
    t2, e2 = p2.decode_span(1, n_in + n1, m)
    r = run.requests.iloc[0]
    assert r.completion_s == pytest.approx(tb + t2, rel=1e-9)
    assert r.energy_j == pytest.approx(ep + e1 + e2, rel=1e-9)
    idle = run.replicas.idle_energy_j.iloc[0]      # after the completion, until the last tick
    assert idle == pytest.approx(p2.idle_power_w * (run.meta["t_end_s"] - r.completion_s))
    assert run.segments.energy_j.sum() == pytest.approx(ep + e1 + e2 + idle, rel=1e-9)
    assert seen["before"] == pytest.approx(p1.decode_power(1, n_in + n1 - 1), rel=1e-9)
    assert seen["after_call"] == seen["before"]
    pw, t_later = seen["later"]
    k = p2.decode_iters_within(1, n_in + n1, t_later - tb)
    assert pw == pytest.approx(p2.decode_power(1, n_in + n1 + k), rel=1e-9)
    # power of the recorded segments: old profile before the boundary, new after
    seg = run.segments
    after = (seg.t0 >= tb - 1e-12) & (seg.t1 <= r.completion_s + 1e-12)
    mean_after = seg.energy_j[after].sum() / (seg.t1[after] - seg.t0[after]).sum()
    assert mean_after == pytest.approx(e2 / t2, rel=1e-9)
    assert mean_after < 0.85 * (e1 / (tb - tp))


def test_set_profile_when_idle_changes_idle_power_now():
    p1 = toy_profile(idle_w=100.0)
    p2 = toy_profile(idle_w=60.0)
    eng = Engine(10.0, 0)
    eng.add_serving_pool("h100", p1, 1, MODEL)
    eng.add_requests(trace([(9.0, 10, 2)]))
    eng.every(4.0, lambda e, now: e.replicas()[0].set_profile(p2), start_s=4.0)
    run = eng.run()
    seg = run.segments
    idle_e = 100.0 * 4.0 + 60.0 * 5.0 + 60.0 * (10.0 - run.requests.completion_s.iloc[0])
    busy_e = run.requests.energy_j.sum()
    assert seg.energy_j.sum() == pytest.approx(idle_e + busy_e, rel=1e-9)


def test_chunked_prefill_golden_and_no_decode_stall():
    p = toy_profile()
    # alone: chunks of 512 tokens; each pure-prefill step pays the fixed cost once
    P = 1500
    _, run = run_one([(0.0, P, 2)], p, chunked_prefill=True, max_prefill_tokens=512)
    t0, t1, t2 = p.pre_t
    assert run.requests.ttft_s.iloc[0] == pytest.approx(3 * t0 + t1 * P + t2 * P * P, rel=1e-9)
    # a running request keeps generating during a long chunked prefill
    rows = [(0.0, 100, 6), (0.02, 8000, 2)]
    _, plain = run_one(rows, p)
    _, chunk = run_one(rows, p, chunked_prefill=True, max_prefill_tokens=512)
    assert chunk.requests.completion_s.iloc[0] < plain.requests.completion_s.iloc[0] - 0.1
    for r in (plain, chunk):
        assert (r.requests.status == "completed").all()
        rep = r.replicas.iloc[0]
        assert r.requests.energy_j.sum() + rep.idle_energy_j == pytest.approx(rep.energy_j, rel=1e-9)


def test_engine_rejects_bad_configuration():
    with pytest.raises(ConfigurationError):
        Engine(10.0, 0, mode="fluid")
    eng = Engine(10.0, 0)
    with pytest.raises(ConfigurationError):
        eng.add_serving_pool("a", toy_profile(), 0, MODEL)
    with pytest.raises(ConfigurationError):
        eng.set_router(MODEL, "random-walk")


@pytest.mark.parametrize("mode", ["coalesced", "iteration"])
def test_horizon_inside_prefill_step(mode):
    """The horizon falls inside a prefill step (planned together with the decode span after
    it): only the elapsed fraction of its energy counts and no first token exists yet."""
    p = toy_profile()
    tp, ep = p.prefill(10_000)
    H = 0.1 + 0.4 * tp
    powers = []
    eng = Engine(H, 0, mode=mode)
    eng.add_serving_pool("h100", p, 1, MODEL)
    eng.add_requests(trace([(0.1, 10_000, 50)]))
    eng.every(0.1 + 0.2 * tp, lambda e, now: powers.append(e.replicas()[0].power_w), start_s=0.1 + 0.2 * tp)
    run = eng.run()
    r = run.requests.iloc[0]
    assert r.status == "running" and math.isnan(r.first_token_s) and r.admit_s == pytest.approx(0.1)
    assert r.energy_j == pytest.approx(ep * 0.4, rel=1e-9)
    assert run.segments.energy_j.sum() == pytest.approx(ep * 0.4 + p.idle_power_w * 0.1, rel=1e-9)
    assert powers[0] == pytest.approx(ep / tp, rel=1e-9)
    assert run.pools.output_tokens.iloc[0] == 0 and run.pools.input_tokens.iloc[0] == 0


def test_series_record_and_simpy_processes_share_the_clock():
    """Telemetry series per replica, external segments, and a SimPy process (as training or a
    capping controller would register) acting on a replica at its own times."""
    p1 = toy_profile()
    p2 = toy_profile(speed=0.5, power_scale=0.7)
    eng = Engine(6.0, 0, series_interval_s=0.5)
    eng.add_serving_pool("h100", p1, 2, MODEL)
    eng.add_requests(trace([(0.05 * k, 300, 200) for k in range(40)]))
    seen = []

    def controller(env):
        yield env.timeout(2.0)
        seen.append(env.now)
        for r in eng.replicas("h100"):
            r.set_profile(p2)
        while True:
            yield env.timeout(1.0)
            seen.append(env.now)
            eng.record("train/j0", env.now - 1.0, env.now, 500.0)

    eng.env.process(controller(eng.env))
    run = eng.run()
    assert seen == [2.0, 3.0, 4.0, 5.0, 6.0]
    e = run.segments.energy_by_node()
    assert e["train/j0"] == pytest.approx(4 * 500.0)
    s = run.series
    assert set(s.metric) == {"queue", "running", "kv_used_tokens"}
    assert len(s) == 3 * 2 * 12                           # 3 metrics x 2 replicas x t = 0, 0.5, ... 5.5
    run_max = s[s.metric == "running"].value.max()
    assert 1 <= run_max <= 40
    # after the change to the slower profile, decode spans draw less power
    seg = run.segments
    m = seg.node_id == seg.node_names.index("h100/r0")
    pw = seg.energy_j[m] / (seg.t1[m] - seg.t0[m])
    late = seg.t0[m] > 2.2
    assert pw[late].max() <= 0.7 * 700.0


@pytest.mark.parametrize("mode", ["coalesced", "iteration"])
def test_arrival_exactly_at_a_step_boundary_is_prefilled_first(mode):
    p = toy_profile()
    tpa = p.prefill(100)[0]
    _, run = run_one([(0.0, 100, 10), (tpa, 300, 5)], p, mode=mode)
    a, b = run.requests.iloc[0], run.requests.iloc[1]
    tpb = p.prefill(300)[0]
    assert b.admit_s == pytest.approx(tpa, rel=1e-12)
    assert b.first_token_s == pytest.approx(tpa + tpb, rel=1e-12)
    # A's 9 decode iterations start after B's prefill: 4 together with B, then 5 alone
    c = (100 + 1 - 1) + (300 + 1 - 1)
    t_both = p.decode_span(2, c, 4)[0]
    t_alone = p.decode_span(1, 100 + 5 - 1, 5)[0]
    assert b.completion_s == pytest.approx(tpa + tpb + t_both, rel=1e-12)
    assert a.completion_s == pytest.approx(tpa + tpb + t_both + t_alone, rel=1e-12)


def test_set_profile_during_prefill_applies_from_its_end():
    p1 = toy_profile()
    p2 = toy_profile(speed=0.5, power_scale=0.8)
    tp, ep = p1.prefill(10_000)
    eng = Engine(math.inf, 0)
    eng.add_serving_pool("h100", p1, 1, MODEL)
    eng.add_requests(trace([(0.0, 10_000, 100)]))
    eng.every(0.5 * tp, lambda e, now: e.replicas()[0].set_profile(p2) if now > 0 else None)
    run = eng.run()
    td, ed = p2.decode_span(1, 10_000, 99)
    r = run.requests.iloc[0]
    assert r.first_token_s == pytest.approx(tp, rel=1e-12)
    assert r.completion_s == pytest.approx(tp + td, rel=1e-9)
    assert r.energy_j == pytest.approx(ep + ed, rel=1e-9)
