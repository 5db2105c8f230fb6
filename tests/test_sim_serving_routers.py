"""Routers over replicas and heterogeneous pools (H100 and A100 serving the same model)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fleet.frontier.build import build_serving_profile
from fleet.sim.engine import Engine
from fleet.sim.router import JoinShortestQueue, RequestInfo, Router, make_router

from _sim_profiles import toy_profile

MODEL = "llama-3.1-8b"


def poisson(n, rate, seed, inp=(100, 2000), out=(20, 400)):
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"request_id": np.arange(n),
                         "arrival_s": np.cumsum(rng.exponential(1.0 / rate, n)),
                         "input_tokens": rng.integers(*inp, n), "output_tokens": rng.integers(*out, n)})


def test_round_robin_even_split():
    eng = Engine(math.inf, 0)
    eng.add_serving_pool("a", toy_profile(), 3, MODEL)
    eng.add_serving_pool("b", toy_profile(), 1, MODEL)
    eng.set_router(MODEL, "round_robin")
    eng.add_requests(poisson(40, 5.0, 0))
    req = eng.run().requests
    counts = req.groupby(["pool", "replica"]).size()
    assert list(counts) == [10, 10, 10, 10]
    # in turn: pool a replicas 0,1,2 then pool b replica 0
    assert list(req.pool[:4]) == ["a", "a", "a", "b"] and list(req.replica[:4]) == [0, 1, 2, 0]


@pytest.fixture(scope="module")
def hetero_profiles():
    return (build_serving_profile(MODEL, "H100-SXM", 1, max_batch=64),
            build_serving_profile(MODEL, "A100", 1, max_batch=64))


def run_hetero(router, profiles, df):
    h100, a100 = profiles
    eng = Engine(math.inf, 0)
    eng.add_serving_pool("h100", h100, 2, MODEL)
    eng.add_serving_pool("a100", a100, 2, MODEL)
    eng.set_router(MODEL, router)
    eng.add_requests(df)
    return eng.run()


def test_jsq_heterogeneous_pools_share_by_capacity(hetero_profiles):
    h100, a100 = hetero_profiles
    eng = Engine(1.0, 0)
    rh = eng.add_serving_pool("h", h100, 1, MODEL).replicas[0]
    ra = eng.add_serving_pool("a", a100, 1, MODEL).replicas[0]
    assert rh.capacity > 1.3 * ra.capacity           # an H100 decodes faster than an A100
    df = poisson(3000, 24.0, 3)
    runs = {r: run_hetero(r, hetero_profiles, df) for r in ("jsq", "round_robin", "least_kv")}
    for run in runs.values():
        assert (run.requests.status == "completed").all()
    share = runs["jsq"].requests.pool.value_counts(normalize=True)
    assert share["h100"] > 0.55                    # the faster pool takes more of the load
    assert runs["round_robin"].requests.pool.value_counts(normalize=True)["h100"] == pytest.approx(0.5, abs=0.01)
    # load-aware routing beats blind turns on tail latency on a mixed fleet
    p99 = {k: v.requests.e2e_s.quantile(0.99) for k, v in runs.items()}
    assert p99["jsq"] < p99["round_robin"]
    assert p99["least_kv"] < p99["round_robin"]


def test_custom_router_protocol():
    seen = []

    class LastReplica:
        def choose(self, request, replicas):
            seen.append(request)
            return replicas[-1]

    assert isinstance(LastReplica(), Router)
    eng = Engine(math.inf, 0)
    eng.add_serving_pool("a", toy_profile(), 2, MODEL)
    eng.add_serving_pool("b", toy_profile(), 2, MODEL)
    eng.set_router(MODEL, LastReplica())
    df = poisson(20, 4.0, 1)
    eng.add_requests(df)
    req = eng.run().requests
    assert (req.pool == "b").all() and (req.replica == 1).all()
    assert isinstance(seen[0], RequestInfo) and seen[0].request_id == 0
    assert seen[3].input_tokens == df.input_tokens[3] and seen[3].model == MODEL


def test_router_filters_replicas_too_small_for_a_request():
    small = toy_profile(kv_tokens=3000)
    big = toy_profile(kv_tokens=50_000)
    eng = Engine(math.inf, 0)
    eng.add_serving_pool("small", small, 3, MODEL)
    eng.add_serving_pool("big", big, 1, MODEL)
    eng.set_router(MODEL, "round_robin")
    df = pd.DataFrame({"request_id": np.arange(6), "arrival_s": np.arange(6) * 0.01,
                       "input_tokens": [5000, 100, 100, 100, 9000, 100], "output_tokens": 10})
    eng.add_requests(df)
    req = eng.run().requests
    assert (req.status == "completed").all()
    assert req.pool[0] == "big" and req.pool[4] == "big"


def test_make_router_names():
    assert isinstance(make_router("jsq"), JoinShortestQueue)
    assert make_router("least_kv").name == "least_kv"


def test_custom_router_must_return_an_offered_replica():
    from fleet.errors import ConfigurationError

    class Wrong:
        def choose(self, request, replicas):
            return "replica-7"

    eng = Engine(math.inf, 0)
    eng.add_serving_pool("a", toy_profile(), 2, MODEL)
    eng.set_router(MODEL, Wrong())
    eng.add_requests(poisson(3, 4.0, 1))
    with pytest.raises(ConfigurationError, match="not one of the replicas"):
        eng.run()


def test_two_models_routed_to_their_own_pools():
    eng = Engine(math.inf, 0)
    eng.add_serving_pool("small", toy_profile(), 2, "llama-3.1-8b")
    eng.add_serving_pool("big", toy_profile(speed=0.3), 1, "llama-3.1-70b")
    eng.set_router("llama-3.1-8b", "round_robin")
    df = poisson(30, 5.0, 2)
    df["model"] = np.where(np.arange(30) % 3 == 0, "llama-3.1-70b", "llama-3.1-8b")
    eng.add_requests(df)
    req = eng.run().requests
    assert (req.status == "completed").all()
    assert (req.pool[req.model == "llama-3.1-70b"] == "big").all()
    assert (req.pool[req.model == "llama-3.1-8b"] == "small").all()
    assert sorted(req[req.pool == "small"].replica.value_counts()) == [10, 10]
