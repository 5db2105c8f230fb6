"""Property tests on random small scenarios (hypothesis): the invariants of issue 4.

* every arrival is completed, dropped or running at the horizon;
* no request is admitted before it arrives, no first token before admission, no completion
  before the first token;
* energy equals the integral of the power series, per pool and for the site;
* the same seed gives identical results.
"""

from __future__ import annotations

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fleet.scenario import parse_scenario
from fleet.sim import simulate

ACCS = ["H100-SXM", "A100-80GB-SXM"]


@st.composite
def scenarios(draw):
    n_pools = draw(st.integers(1, 2))
    pools = []
    for i in range(n_pools):
        gps = draw(st.sampled_from([1, 2, 4, 8]))
        gpus = draw(st.integers(1, 6))
        pools.append({"name": f"p{i}", "accelerator": draw(st.sampled_from(ACCS)), "gpus": gpus,
                      "gpus_per_server": gps, "servers_per_rack": draw(st.integers(1, 3)),
                      "row": draw(st.sampled_from(["row0", "row1"])),
                      "serve": [{"model": "llama-3.1-8b", "tp": 1,
                                 "max_batch": draw(st.sampled_from([4, 32, 256])),
                                 "chunked_prefill": draw(st.booleans())}]})
    if draw(st.booleans()):
        pools.append({"name": "t", "accelerator": "H100-SXM", "gpus": 8, "role": "training", "row": "row1"})
    demand = {"inference": [{"model": "llama-3.1-8b", "synth": {
        "profile": draw(st.sampled_from(["poisson", "gamma"])),
        "rate": draw(st.floats(0.2, 20.0)), "hours": draw(st.floats(0.005, 0.03)),
        "cv": draw(st.floats(0.5, 3.0))}}]}
    if any(p["role"] == "training" for p in pools if "role" in p):
        demand["training"] = {"synth": {"jobs": draw(st.integers(1, 3)), "hours": 0.02, "max_gpus": 8}}
    sim = {"telemetry_interval_s": draw(st.sampled_from([0.5, 1.0, 3.0])),
           "router": draw(st.sampled_from(["round_robin", "jsq", "least_kv"]))}
    if draw(st.booleans()):
        sim["horizon_s"] = draw(st.floats(5.0, 60.0))      # may cut requests in flight
    return {"name": "prop", "seed": draw(st.integers(0, 2**31 - 1)), "fleet": {"pools": pools},
            "demand": demand, "simulation": sim}


@settings(max_examples=int(__import__("os").environ.get("FLEET_HYP_EXAMPLES", 12)), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_invariants(data):
    sc = parse_scenario(data)
    r = simulate(sc)
    req = r.requests
    H = r.meta["horizon_s"]
    dt = r.meta["telemetry_interval_s"]
    # every arrival accounted for, exactly once
    assert req.request_id.is_unique
    assert set(req.status) <= {"completed", "dropped", "running"}
    done = req[req.status == "completed"]
    assert done.completion_s.notna().all() and (done.completion_s <= H + 1e-9).all()
    assert (req[req.status == "running"].completion_s.isna()).all()
    # causality
    assert (req.admit_s.dropna() >= req.arrival_s[req.admit_s.notna()] - 1e-12).all()
    assert (req.first_token_s.dropna() >= req.admit_s[req.first_token_s.notna()] - 1e-12).all()
    assert (done.completion_s >= done.first_token_s - 1e-12).all()
    # energy = integral of the power series, per pool and site
    pw = r.power
    assert len(pw[pw.level == "site"]) == round(H / dt)
    for pool, e in r.pools.set_index("pool").it_energy_j.items():
        integ = (pw[(pw.level == "pool") & (pw.node == pool)].power_w * dt).sum()
        assert integ == pytest.approx(e, rel=1e-9)
    site = (pw[pw.level == "site"].power_w * dt).sum()
    assert site == pytest.approx(r.pools.it_energy_j.sum(), rel=1e-9)
    for level in ("gpu", "server", "rack", "row"):
        assert (pw[pw.level == level].power_w * dt).sum() == pytest.approx(
            site if level != "gpu" else r.pools.gpu_energy_j.sum(), rel=1e-9)
    assert (pw.power_w >= -1e-9).all()
    # jobs never start before they are submitted
    j = r.jobs
    if len(j):
        assert (j.start_s.dropna() >= j.submit_s[j.start_s.notna()]).all()
    # same seed, same result
    r2 = simulate(parse_scenario(data))
    for name in ("requests", "power", "pools", "jobs"):
        pd.testing.assert_frame_equal(getattr(r, name), getattr(r2, name))
