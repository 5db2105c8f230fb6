"""The closed forms of the narrow-waist contract agree with step-by-step sums."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fleet.frontier import ServingProfile


def make_profile(t0=6e-3, t0b=2e-5, t1=4e-8, e0=3.0, e0b=0.01, e1=2e-5, max_batch=64) -> ServingProfile:
    b = np.arange(max_batch + 1, dtype=float)
    return ServingProfile(
        model="m", accelerator="a", tp=1, precision="bf16", kv_precision="bf16", power_cap_w=700.0,
        clock_fraction=1.0, max_batch=max_batch, kv_capacity_tokens=100_000, max_context_tokens=8192,
        idle_power_w=80.0,
        dec_t0=t0 + t0b * b, dec_t1=np.full(max_batch + 1, t1),
        dec_e0=e0 + e0b * b, dec_e1=np.full(max_batch + 1, e1),
        pre_t=(2e-3, 5e-5, 1e-9), pre_e=(1.0, 0.03, 1e-7),
    )


def brute_span(p, b, c0, n):
    t = e = 0.0
    for i in range(n):
        ti, ei = p.decode_iter(b, c0 + i * b)
        t += ti
        e += ei
    return t, e


@settings(max_examples=60, deadline=None)
@given(b=st.integers(1, 64), c0=st.integers(0, 50_000), n=st.integers(0, 300),
       t1=st.floats(0, 1e-6), e1=st.floats(0, 1e-4))
def test_span_equals_sum_of_iterations(b, c0, n, t1, e1):
    p = make_profile(t1=t1, e1=e1)
    t, e = p.decode_span(b, c0, n)
    bt, be = brute_span(p, b, c0, n)
    assert t == pytest.approx(bt, rel=1e-9, abs=1e-12)
    assert e == pytest.approx(be, rel=1e-9, abs=1e-12)


@settings(max_examples=60, deadline=None)
@given(b=st.integers(1, 64), c0=st.integers(0, 50_000), secs=st.floats(0, 5.0), t1=st.floats(0, 1e-6))
def test_iters_within_is_the_largest_fitting_count(b, c0, secs, t1):
    p = make_profile(t1=t1)
    n = p.decode_iters_within(b, c0, secs)
    assert n >= 0
    assert p.decode_span(b, c0, n)[0] <= secs
    assert p.decode_span(b, c0, n + 1)[0] > secs


def test_prefill_is_quadratic_in_prompt_and_zero_for_nothing():
    p = make_profile()
    assert p.prefill(0) == (0.0, 0.0)
    t1, _ = p.prefill(1000)
    t2, _ = p.prefill(2000)
    assert t2 > 2 * t1 - 2e-3  # superlinear apart from the fixed term
    # two requests of 1000 tokens cost less attention than one of 2000
    assert p.prefill(2000, tokens_sq=2 * 1000**2)[0] < t2


def test_validate_rejects_bad_tables():
    p = make_profile()
    p.validate()
    bad = make_profile(t0=-1.0)
    with pytest.raises(ValueError):
        bad.validate()
