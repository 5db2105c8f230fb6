"""Serving profiles and frontiers agree with the direct model; the frontier lookup is consistent."""

from __future__ import annotations

import numpy as np
import pytest

from fleet.frontier import ServingProfile, build_serving_frontier, build_serving_profile, operating_point_breakdown
from fleet.frontier.build import decode_point, make_replica, prefill_point
from fleet.frontier.frontier import pareto_mask


@pytest.fixture(scope="module")
def prof() -> ServingProfile:
    return build_serving_profile("llama-3.1-8b", "H100", 1, max_batch=128, calibrated=False)


def test_profile_fills_the_contract(prof):
    prof.validate()
    assert prof.model == "llama-3.1-8b" and prof.accelerator == "H100-SXM"
    assert prof.max_batch == 128 and prof.dec_t0.shape == (129,)
    assert prof.kv_capacity_tokens > 100_000
    assert prof.idle_power_w == pytest.approx(make_replica("llama-3.1-8b", "H100").acc.idle_w)
    assert prof.decode_fit_max_rel_err < 0.02
    assert prof.prefill_fit_max_rel_err < 0.25
    assert prof.calibrated is False and prof.power_cap_w == 700.0


def test_profile_is_cached(prof):
    assert build_serving_profile("llama-3.1-8b", "H100", 1, max_batch=128, calibrated=False) is prof
    assert build_serving_profile("meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", 1, max_batch=128,
                                 calibrated=False) is prof


@pytest.mark.parametrize("b,ctx", [(1, 200), (7, 900), (64, 2000), (128, 3000)])
def test_profile_matches_direct_model_within_recorded_error(prof, b, ctx):
    rep = make_replica("llama-3.1-8b", "H100", 1)
    op = decode_point(rep, b, ctx)
    t, e = prof.decode_iter(b, b * ctx)
    tol = prof.decode_fit_max_rel_err + 1e-9
    assert t == pytest.approx(float(op.time_s), rel=tol)
    assert e == pytest.approx(float(op.energy_j), rel=tol)


def test_prefill_fit_matches_direct_model(prof):
    rep = make_replica("llama-3.1-8b", "H100", 1)
    for n in (512, 2048, 8192):
        op = prefill_point(rep, n)
        t, e = prof.prefill(n)
        assert t == pytest.approx(float(op.time_s), rel=prof.prefill_fit_max_rel_err + 1e-9)
        assert e == pytest.approx(float(op.energy_j), rel=prof.prefill_fit_max_rel_err + 1e-9)


def test_frontier_lookup_consistent_with_profiles_and_direct_model():
    fr = build_serving_frontier("llama-3.1-8b", "H100", 1, max_batch=64, n_caps=6, calibrated=False)
    assert fr.caps_w[0] == 200 and fr.caps_w[-1] == 700
    caps, t, e, p, mask = fr.pareto(32, 32 * 1000)
    rep = make_replica("llama-3.1-8b", "H100", 1)
    for i, c in enumerate(caps):
        prof = fr.at_cap(c)
        assert prof.power_cap_w == c
        tt, ee = prof.decode_iter(32, 32 * 1000)
        assert (t[i], e[i]) == (pytest.approx(tt), pytest.approx(ee))
        op = decode_point(rep, 32, 1000, power_cap_w=c)
        assert t[i] == pytest.approx(float(op.time_s), rel=prof.decode_fit_max_rel_err + 1e-6)
    # a lower cap never draws more power nor runs faster (as fitted lines)
    assert np.all(np.diff(t) <= 1e-12) and np.all(np.diff(p) >= -1e-6)
    assert mask.any()
    # the Pareto set is non-dominated
    for i in np.nonzero(mask)[0]:
        assert not np.any((t < t[i]) & (e < e[i]))
    # at_cap picks the highest grid cap not above the request
    assert fr.at_cap(fr.caps_w[2] + 1.0).power_cap_w == fr.caps_w[2]


def test_pareto_mask_small_example():
    t = np.array([1.0, 2.0, 3.0, 2.5])
    e = np.array([5.0, 3.0, 1.0, 4.0])
    assert pareto_mask(t, e).tolist() == [True, True, True, False]


def test_breakdown_sums_to_energy():
    d = operating_point_breakdown("llama-3.1-8b", "H100", 1, 16, 16 * 512, power_cap_w=500)
    assert sum(d["breakdown_j"].values()) == pytest.approx(d["energy_j"])
    assert d["power_w"] <= 500 + 1e-6
    p = operating_point_breakdown("llama-3.1-8b", "H100", 1, 2048, 0, phase="prefill")
    assert p["breakdown_j"]["compute"] > p["breakdown_j"]["memory"]


def test_what_if_memory_changes_energy_not_time():
    from fleet.catalog.device_energy import load_device_constants
    base = load_device_constants(False)
    half = base.with_values({"memory.pj_per_bit.HBM3": base["memory.pj_per_bit.HBM3"] / 2,
                             "memory.onchip_pj_per_bit": base["memory.onchip_pj_per_bit"] / 2})
    a = build_serving_profile("llama-3.1-8b", "H100", 1, max_batch=16, constants=base)
    b = build_serving_profile("llama-3.1-8b", "H100", 1, max_batch=16, constants=half)
    ta, ea = a.decode_iter(8, 8000)
    tb, eb = b.decode_iter(8, 8000)
    assert tb == pytest.approx(ta) and eb < ea
    assert build_serving_profile("llama-3.1-8b", "H100", 1, max_batch=16, constants=half) is b
