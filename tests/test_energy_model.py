"""The first-principles energy model: constants, roofline limits, energy accounting, DVFS
monotonicity, MoE and TP effects, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fleet.catalog.device_energy import load_device_constants
from fleet.errors import CatalogError, ConfigurationError
from fleet.frontier.build import decode_point, make_replica, prefill_point
from fleet.frontier.steady import steady_state
from fleet.hardware.energy import WorkArrays, evaluate


@pytest.fixture(scope="module")
def rep8():
    return make_replica("llama-3.1-8b", "H100", 1, calibrated=False)


# ------------------------------------------------------------------ constants
def test_every_constant_has_unit_range_source_kind():
    c = load_device_constants()
    assert len(c.items) >= 30
    for k in c.items:
        assert k.lo <= k.value <= k.hi, k.name
        assert k.unit and k.source.strip(), k.name
        assert k.kind in ("measured", "modelled"), k.name
    # the memory technologies of the catalog all have an energy per bit
    for tech in ("HBM2", "HBM2e", "HBM3", "HBM3e", "GDDR6"):
        assert 2.0 < c[f"memory.pj_per_bit.{tech}"] < 10.0


def test_what_if_constants_are_range_checked():
    c = load_device_constants()
    half = c.with_values({"memory.pj_per_bit.HBM3": 2.5})
    assert half["memory.pj_per_bit.HBM3"] == 2.5 and half.constant("memory.pj_per_bit.HBM3").kind == "what-if"
    with pytest.raises(CatalogError, match="outside its plausible range"):
        c.with_values({"memory.pj_per_bit.HBM3": 0.1}, kind="calibrated")
    # a what-if part may go beyond today's range, never negative
    assert c.with_values({"memory.pj_per_bit.HBM3": 0.1})["memory.pj_per_bit.HBM3"] == 0.1
    with pytest.raises(CatalogError, match="non-negative"):
        c.with_values({"memory.pj_per_bit.HBM3": -1.0})
    with pytest.raises(CatalogError, match="unknown device constant"):
        c.with_values({"memory.pj_per_bit.HBM9": 1.0})


# ------------------------------------------------------------------ roofline limits
def test_decode_batch1_is_memory_bound(rep8):
    op = decode_point(rep8, 1, 1024)
    w = decode_point(rep8, 1, 1024)
    # the GEMM part is set by the weight stream, not by the FLOPs
    t_compute = 2 * 8.03e9 / rep8.device.f_att
    assert float(op.t_linear_s) > 10 * t_compute
    # time ~ weights / attainable bandwidth (16 GB at ~2.8 TB/s ~ 5.6 ms) plus small terms
    assert 4e-3 < float(w.time_s) < 9e-3
    # and memory energy exceeds compute energy
    assert float(op.memory_j) > 5 * float(op.compute_j)


def test_prefill_4k_is_compute_bound(rep8):
    op = prefill_point(rep8, 4096)
    t_weights = 16.06e9 / rep8.device.bw_att
    assert float(op.t_linear_s) > 5 * t_weights
    assert float(op.compute_j) > float(op.memory_j)
    # time close to FLOPs / attainable FLOP/s (attention included): ~70-100 ms on one H100
    assert 0.05 < float(op.time_s) < 0.15


# ------------------------------------------------------------------ energy accounting
@settings(max_examples=40, deadline=None)
@given(b=st.integers(1, 256), ctx=st.floats(16, 8192), cap=st.one_of(st.none(), st.floats(200, 700)))
def test_energy_is_sum_of_parts_and_power_below_cap(rep8, b, ctx, cap):
    op = decode_point(rep8, b, ctx, power_cap_w=cap)
    parts = float(op.compute_j + op.memory_j + op.interconnect_j + op.static_j)
    assert float(op.energy_j) == pytest.approx(parts, rel=1e-12)
    assert float(op.power_w) == pytest.approx(float(op.energy_j / op.time_s), rel=1e-12)
    limit = 700.0 if cap is None else cap
    assert float(op.power_w) <= limit * (1 + 1e-9)


def test_evaluate_is_vectorised_and_matches_scalar(rep8):
    w = WorkArrays(flops=np.array([1e12, 5e13]), lin_bytes=np.array([16e9, 16e9]), kv_bytes=np.array([1e9, 0.0]))
    both = evaluate(w, rep8.device)
    one = evaluate(WorkArrays(flops=5e13, lin_bytes=16e9, kv_bytes=0.0), rep8.device)
    assert both.time_s.shape == (2,)
    assert both.time_s[1] == pytest.approx(float(one.time_s))
    assert both.energy_j[1] == pytest.approx(float(one.energy_j))


# ------------------------------------------------------------------ monotonicity
@settings(max_examples=30, deadline=None)
@given(b=st.integers(2, 256), inp=st.integers(16, 2048), out=st.integers(16, 2048))
def test_more_batch_never_lowers_throughput_below_batch_one(rep8, b, inp, out):
    one = steady_state(rep8, 1, inp, out)
    many = steady_state(rep8, b, inp, out)
    assert float(many.output_tokens_per_s) >= float(one.output_tokens_per_s)


@settings(max_examples=30, deadline=None)
@given(b=st.integers(1, 256), ctx=st.floats(64, 4096), c1=st.floats(200, 700), c2=st.floats(200, 700))
def test_lower_cap_never_raises_power_nor_lowers_time(rep8, b, ctx, c1, c2):
    lo, hi = sorted((c1, c2))
    a = decode_point(rep8, b, ctx, power_cap_w=lo)
    z = decode_point(rep8, b, ctx, power_cap_w=hi)
    assert float(a.power_w) <= float(z.power_w) * (1 + 1e-9)
    assert float(a.time_s) >= float(z.time_s) * (1 - 1e-9)
    pa = prefill_point(rep8, 2048, power_cap_w=lo)
    pz = prefill_point(rep8, 2048, power_cap_w=hi)
    assert float(pa.power_w) <= float(pz.power_w) * (1 + 1e-9)
    assert float(pa.time_s) >= float(pz.time_s) * (1 - 1e-9)


def test_a_cap_slows_compute_bound_prefill_but_barely_memory_bound_decode(rep8):
    pre_full, pre_cap = prefill_point(rep8, 4096), prefill_point(rep8, 4096, power_cap_w=300)
    dec_full, dec_cap = decode_point(rep8, 1, 1024), decode_point(rep8, 1, 1024, power_cap_w=300)
    assert float(pre_cap.time_s) > 1.2 * float(pre_full.time_s)
    assert float(dec_cap.time_s) < 1.05 * float(dec_full.time_s)
    assert float(dec_cap.energy_j) < float(dec_full.energy_j)       # capping decode saves energy


def test_locked_clock_scales_compute_time(rep8):
    full = prefill_point(rep8, 8192, clock=1.0)
    half = prefill_point(rep8, 8192, clock=0.5)
    # compute-bound: the GEMM time doubles at half the clock
    assert float(half.t_linear_s) == pytest.approx(2 * float(full.t_linear_s), rel=1e-6)
    assert float(half.compute_j) < float(full.compute_j)             # lower voltage, less J/FLOP


# ------------------------------------------------------------------ MoE and TP
def test_moe_cheaper_per_token_than_dense_of_same_total_size():
    moe = make_replica("qwen3-30b-a3b", "H100", 1)
    dense = make_replica("qwen3-32b", "H100", 1)
    for b in (1, 8, 64):
        em = steady_state(moe, b, 350, 400)
        ed = steady_state(dense, b, 350, 400)
        assert float(em.energy_per_output_token_j) < float(ed.energy_per_output_token_j)
        assert float(em.output_tokens_per_s) > float(ed.output_tokens_per_s)


def test_tensor_parallel_adds_interconnect_energy():
    r1 = make_replica("llama-3.1-8b", "H100", 1)
    r2 = make_replica("llama-3.1-8b", "H100", 2)
    a, b = decode_point(r1, 32, 1024), decode_point(r2, 32, 1024)
    assert float(a.interconnect_j) == 0.0
    assert float(b.interconnect_j) > 0.0
    assert float(b.t_comm_s) > 0.0
    # two GPUs stream the weights in parallel: faster, but more static power
    assert float(b.time_s) < float(a.time_s)
    assert float(b.static_j) / float(b.time_s) > float(a.static_j) / float(a.time_s)


def test_unmeasured_gpu_predicted_from_spec_sheet():
    # A100 and A40 were never fitted: predictions come from their catalog rows only, and order
    # as their bandwidths do for memory-bound decode
    h = decode_point(make_replica("llama-3.1-8b", "H100", 1), 1, 1024)
    a = decode_point(make_replica("llama-3.1-8b", "A100-80GB", 1), 1, 1024)
    g = decode_point(make_replica("llama-3.1-8b", "A40", 1), 1, 1024)
    assert float(h.time_s) < float(a.time_s) < float(g.time_s)
    # GDDR6 costs more energy per byte than HBM
    assert float(g.memory_j) > float(a.memory_j)


# ------------------------------------------------------------------ errors
def test_unknown_names_get_suggestions():
    with pytest.raises(CatalogError) as e:
        make_replica("llama-3.1-8b", "H1000")
    assert "H100" in str(e.value)
    with pytest.raises(CatalogError):
        make_replica("llama-9", "H100")


def test_model_that_does_not_fit_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="(?i)fit|GB"):
        make_replica("llama-3.1-405b", "H100", 1)


def test_cap_outside_range_names_the_range(rep8):
    with pytest.raises(ConfigurationError, match=r"\[200, 700\] W"):
        decode_point(rep8, 1, 100, power_cap_w=900)
    with pytest.raises(ConfigurationError, match=r"\[200, 700\] W"):
        decode_point(rep8, 1, 100, power_cap_w=100)
