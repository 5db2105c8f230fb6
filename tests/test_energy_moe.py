"""MoE terms of the energy model: expert-parallel load imbalance, data-parallel-attention
all-to-all, the grouped-GEMM expert stream and the MoE accuracy bound on the ML.ENERGY rows.

Hand counts use Qwen3-235B-A22B (config.json: 94 layers, hidden 4096, 128 experts, top-8,
moe_intermediate_size 1536, all layers MoE) and Llama-4-Scout (48 layers, hidden 5120, 16
experts, top-1, one shared expert, expert width 8192)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fleet.catalog import get_model
from fleet.catalog.device_energy import load_device_constants
from fleet.frontier.build import make_replica
from fleet.hardware.energy import WorkArrays, evaluate
from fleet.workload.llm import (
    architecture, decode_cost, ep_all_to_all_bytes, ep_expert_load, expected_distinct_experts,
    prefill_cost,
)

CSV = ("mlenergy-llm-inference-energy-h100", "mlenergy_v3_llm_configs_h100.csv")


@pytest.fixture(scope="module")
def qwen235():
    return get_model("qwen3-235b-a22b-2507")


# ------------------------------------------------------------------ counting
def test_ep_expert_load_by_hand():
    # 128 experts, top-8, 8 tokens, 8 ranks: p = 1 - (1 - 8/128)^8; 16 local experts per rank
    p = 1 - (120 / 128) ** 8
    mean, busiest = ep_expert_load(128, 8, 8, 8)
    assert mean == pytest.approx(16 * p)
    sd = math.sqrt(16 * p * (1 - p))
    from statistics import NormalDist
    z8 = NormalDist().inv_cdf(7.625 / 8.25)     # Blom's approximation of E[max of 8 N(0,1)]
    assert z8 == pytest.approx(1.4236, rel=0.01)  # the exact order-statistic mean (Harter 1961)
    assert busiest == pytest.approx(16 * p + z8 * sd, rel=1e-9)
    # tensor parallelism (ep=1): no imbalance; saturated routing: every rank runs all its experts
    assert ep_expert_load(128, 8, 8, 1) == (pytest.approx(128 * p), pytest.approx(128 * p))
    m, b = ep_expert_load(128, 8, 10_000, 8)
    assert m == pytest.approx(16.0) and b == pytest.approx(16.0)


@settings(max_examples=60, deadline=None)
@given(st.sampled_from([(8, 2), (16, 1), (64, 6), (128, 8), (256, 8)]), st.integers(1, 4096),
       st.sampled_from([2, 4, 8, 16]))
def test_ep_expert_load_properties(ek, tokens, ep):
    E, k = ek
    if ep > E:
        return
    mean, busiest = ep_expert_load(E, k, tokens, ep)
    assert mean == pytest.approx(expected_distinct_experts(E, k, tokens) / ep)
    assert mean - 1e-9 <= busiest <= E / ep + 1e-9


@pytest.mark.parametrize("ep", [2, 4, 8])
def test_all_to_all_bytes_by_hand(ep):
    # 64 tokens of hidden 4096 in bf16 over 94 MoE layers: dispatch + combine, (ep-1)/ep remote
    assert ep_all_to_all_bytes(64, 4096, 2.0, ep, 94) == pytest.approx(94 * 2 * 64 * 4096 * 2 * (ep - 1) / ep)
    assert ep_all_to_all_bytes(64, 4096, 2.0, 1, 94) == 0.0


def test_expert_parallel_decode_counts(qwen235):
    arch = architecture(qwen235)
    tp_only = decode_cost(qwen235, 8, 8 * 500, precision="fp8", tp=8)
    ep = decode_cost(qwen235, 8, 8 * 500, precision="fp8", tp=8, expert_parallel=True)
    # routed-expert bytes: 94 layers x distinct experts x 3*4096*1536 params x 1 B (fp8)
    routed = 94 * expected_distinct_experts(128, 8, 8) * 3 * 4096 * 1536 * 1.0
    assert tp_only.expert_bytes == pytest.approx(routed)
    assert ep.expert_bytes == pytest.approx(routed)
    assert tp_only.expert_skew_bytes == 0.0
    mean, busiest = ep_expert_load(128, 8, 8, 8)
    assert ep.expert_skew_bytes == pytest.approx(94 * 8 * (busiest - mean) * 3 * 4096 * 1536)
    # same FLOPs, bytes, traffic: EP inside the TP group keeps the all-reduces
    for f in ("flops", "weight_bytes", "kv_read_bytes", "act_bytes", "comm_bytes", "comm_messages"):
        assert getattr(ep, f) == pytest.approx(getattr(tp_only, f)), f
    assert arch.n_moe_layers == 94
    # a dense model ignores the flag
    d = get_model("llama-3.1-8b")
    assert decode_cost(d, 8, 4000, tp=2, expert_parallel=True) == decode_cost(d, 8, 4000, tp=2)


def test_attention_dp_counts_by_hand(qwen235):
    b, tp = 16, 8
    tp_cost = decode_cost(qwen235, b, b * 500, tp=tp, expert_parallel=True)
    dp_cost = decode_cost(qwen235, b, b * 500, tp=tp, expert_parallel=True, attention_dp=True)
    arch = architecture(qwen235)
    gather = b * arch.hidden * 2.0
    replicated = tp_cost.weight_bytes - tp_cost.expert_bytes - gather
    assert dp_cost.weight_bytes == pytest.approx(replicated * tp + tp_cost.expert_bytes + gather)
    assert dp_cost.comm_bytes == pytest.approx(94 * 2 * b * 4096 * 2.0 * (tp - 1) / tp)
    assert dp_cost.comm_messages == 2 * 94
    # KV is not replicated under DP attention (4 KV heads < 8 ranks would replicate it under TP)
    assert dp_cost.kv_read_bytes == pytest.approx(tp_cost.kv_read_bytes / 2.0)
    assert dp_cost.flops == pytest.approx(tp_cost.flops)
    pre = prefill_cost(qwen235, 350, tp=tp, expert_parallel=True, attention_dp=True)
    assert pre.comm_bytes == pytest.approx(ep_all_to_all_bytes(350, 4096, 2.0, tp, 94))


# ------------------------------------------------------------------ energy model
def test_skew_costs_time_not_memory_energy_and_idles_waiting_ranks():
    rep = make_replica("qwen3-235b-a22b-2507", "H100", 8, "fp8", calibrated=False)
    base = WorkArrays(flops=1e11, lin_bytes=2e10, kv_bytes=1e9, expert_bytes=1.5e10)
    skewed = WorkArrays(flops=1e11, lin_bytes=2e10, kv_bytes=1e9, expert_bytes=1.5e10, expert_skew_bytes=8e9)
    a, b = evaluate(base, rep.device), evaluate(skewed, rep.device)
    dev = rep.device
    extra = 8e9 / dev.moe_bw_fraction / (8 * dev.bw_att)
    assert float(b.time_s - a.time_s) == pytest.approx(extra, rel=1e-9)
    assert float(b.memory_j) == pytest.approx(float(a.memory_j))
    # 7 of 8 ranks wait at the idle floor: static energy grows by less than the busy power x time
    busy = 8 * (dev.idle_w + dev.mem_bg_w + dev.base_w)
    floor = 8 * (dev.idle_w + dev.mem_bg_w) + dev.base_w
    assert float(b.static_j - a.static_j) == pytest.approx(floor * extra, rel=1e-6)
    assert floor < busy


def test_expert_stream_fraction_slows_only_experts():
    c = load_device_constants(False)
    rep = make_replica("qwen3-235b-a22b-2507", "H100", 8, "fp8", constants=c)
    eta = rep.device.moe_bw_fraction
    assert eta == pytest.approx(c["moe.weight_stream_fraction.fp8"]) and 0 < eta < 1
    bf = make_replica("qwen3-235b-a22b-2507", "H100", 8, "bf16", constants=c).device.moe_bw_fraction
    assert bf == pytest.approx(c["moe.weight_stream_fraction.bf16"])
    no_exp = evaluate(WorkArrays(flops=0.0, lin_bytes=2e10, kv_bytes=0.0), rep.device)
    exp = evaluate(WorkArrays(flops=0.0, lin_bytes=2e10, kv_bytes=0.0, expert_bytes=1e10), rep.device)
    t_ref = 2e10 / (8 * rep.device.bw_att)
    assert float(exp.t_linear_s) == pytest.approx(t_ref + 1e10 * (1 / eta - 1) / (8 * rep.device.bw_att))
    assert float(no_exp.t_linear_s) == pytest.approx(t_ref)
    # dense replicas see none of it
    d = make_replica("llama-3.1-8b", "H100", 1, constants=c)
    from fleet.frontier.work import decode_work
    w = decode_work("llama-3.1-8b", 8, 4000, "bf16", None, 1)
    assert float(w.expert_bytes) == 0.0 and float(w.moe_layers) == 0.0
    assert float(evaluate(w, d.device).time_s) > 0


# ------------------------------------------------------------------ accuracy (real data)
@pytest.fixture(scope="module")
def moe_report(shared_data):
    from fleet.frontier.mlenergy import calibrate, load_problem
    return calibrate(load_problem(shared_data.joinpath(*CSV)))


def test_moe_rows_accuracy_bound(moe_report):
    """MoE rows, calibrated (dense constants fitted on dense rows, then the three
    moe.weight_stream_fraction constants on MoE rows).  Before the MoE terms: energy/token
    median/p90 17.1/43.0%, throughput 16.4/78.8%.  Bounds a little above what is reached now
    (12.1/25.9 and 10.2/32.2)."""
    moe = moe_report["calibrated"]["moe"]["overall"]
    assert moe["energy_per_token_j"]["median_ape_pct"] <= 14.0
    assert moe["energy_per_token_j"]["p90_ape_pct"] <= 30.0
    assert moe["output_throughput_tok_s"]["median_ape_pct"] <= 12.0
    assert moe["output_throughput_tok_s"]["p90_ape_pct"] <= 36.0
    for name in ("moe.weight_stream_fraction.bf16", "moe.weight_stream_fraction.fp8",
                 "moe.weight_stream_fraction.fp4"):
        v = moe_report["fitted"][name]
        assert v["range"][0] <= v["value"] <= v["range"][1], name
    # the dense rows are untouched by the MoE constants (their targets still hold)
    dense = moe_report["calibrated"]["dense"]["overall"]
    assert dense["energy_per_token_j"]["median_ape_pct"] <= 10.0
    assert dense["output_throughput_tok_s"]["median_ape_pct"] <= 10.0


def test_moe_fit_carries_to_held_out_moe_models(moe_report):
    h = moe_report["moe_holdout"]
    assert h["rows"] >= 30
    err, base = h["errors_on_heldout"], h["dense_fit_only_on_heldout"]
    # fitted without them, the MoE constants improve the held-out models' throughput over the
    # physical MoE values.  Energy does not improve: without Llama-4-Maverick (per-channel fp8)
    # the fp8 stream fraction is set by Qwen3-235B's block-scaled fp8 alone and is too low for
    # Maverick -- a known limit (one fp8 constant for two kernel families), kept visible here.
    t = "output_throughput_tok_s"
    assert err[t]["median_ape_pct"] <= base[t]["median_ape_pct"], (err[t], base[t])
    assert err[t]["median_ape_pct"] <= 12.0
    assert err["energy_per_token_j"]["median_ape_pct"] <= 20.0


def test_ep_rows_are_no_longer_twice_too_fast(moe_report, shared_data):
    """The worst rows before: Qwen3-235B-A22B fp8 on 4/8 GPUs predicted ~2-3x too fast at small
    batch.  Now within 1.6x everywhere."""
    from fleet.frontier.mlenergy import load_problem
    from fleet.hardware.calibrate import FitResult  # noqa: F401  (report holds the merged fit)
    prob = load_problem(shared_data.joinpath(*CSV))
    base = load_device_constants(False)
    cal = base.with_values({k: v["value"] for k, v in moe_report["fitted"].items()}, kind="calibrated",
                           source="test", calibrated=True)
    pred = prob.predict(cal)["output_throughput_tok_s"]
    meas = prob.measured["output_throughput_tok_s"]
    sel = ((prob.rows["model"] == "qwen3-235b-a22b-2507") & (prob.rows["precision"] == "fp8")).to_numpy()
    ratio = pred[sel] / meas[sel]
    assert sel.sum() >= 20
    assert np.all(ratio < 1.6) and np.all(ratio > 0.7), ratio


def test_data_parallel_attention_reading_is_documented_tradeoff(moe_report, shared_data):
    """The alternative reading of the EP rows (data-parallel attention + all-to-all) predicts
    throughput better but energy worse than the default (tensor-parallel attention); the
    module docstring of fleet.frontier.mlenergy states both, this keeps the statement true."""
    from fleet.frontier.mlenergy import calibrate, load_problem
    alt = calibrate(load_problem(shared_data.joinpath(*CSV), ep_attention_dp=True))
    d = moe_report["calibrated"]["moe"]["overall"]
    a = alt["calibrated"]["moe"]["overall"]
    assert a["output_throughput_tok_s"]["median_ape_pct"] < d["output_throughput_tok_s"]["median_ape_pct"]
    assert a["energy_per_token_j"]["median_ape_pct"] > d["energy_per_token_j"]["median_ape_pct"]
    # dense rows do not depend on the reading
    assert alt["calibrated"]["dense"] == moe_report["calibrated"]["dense"]
