"""Serving stacks (issue 14 part 2): the catalog file, the all-reduce latency term, host overlap
and power while waiting in the energy model, the reference stack's identity with the model of
before stacks, ``fleet estimate --stack`` and ``serve[].stack`` in a scenario."""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from fleet.catalog.device_energy import load_device_constants
from fleet.catalog.serving_stack import (SERVING_STACKS_PATH, STACK_PARAMS, canonical_stack, default_stack_name,
                                         get_serving_stack, serving_stacks)
from fleet.cli import main
from fleet.errors import CatalogError, ConfigurationError, ScenarioError
from fleet.frontier import OperatingPoint
from fleet.frontier.build import make_replica
from fleet.frontier.steady import steady_state
from fleet.hardware.accelerator import build_accelerator
from fleet.hardware.energy import Device, WorkArrays, evaluate


# ------------------------------------------------------------------ the catalog file
def test_every_stack_parameter_has_unit_range_source_and_kind():
    stacks = serving_stacks()
    assert default_stack_name() == "vllm-mlenergy-v3" and stacks["vllm-mlenergy-v3"].reference
    assert {"tensorrt-llm-1.0", "vllm-splitwise-2023"} <= set(stacks)
    consts = load_device_constants(True)
    for st in stacks.values():
        assert st.source.strip() and st.description.strip()
        assert [p.name for p in st.params] == list(STACK_PARAMS)
        for p in st.params:
            assert p.unit and p.source.strip() and p.kind in ("measured", "modelled", "calibrated"), (st.name, p.name)
            assert "start value" not in p.source and "placeholder" not in p.source.lower(), (st.name, p.name)
            if p.from_constant is None:
                assert p.lo <= p.value <= p.hi, (st.name, p.name)
            else:
                consts.constant(p.from_constant)            # names a real device constant
            if p.kind == "calibrated" and not st.reference:
                assert "fit" in p.source, (st.name, p.name)  # says what it was fitted on
        if not st.reference:                                 # a fitted stack records its fit and hold-out
            fit = yaml.safe_load(st.fit)
            assert fit["held_out"] and fit["holdout_median_ape_pct"] and fit["fitted_on"]
            assert all(p in STACK_PARAMS for p in fit["fitted"])
            assert "github.com" in st.source or "commit" in st.source


def test_aliases_and_unknown_stack():
    assert canonical_stack("TRTLLM") == "tensorrt-llm-1.0"
    assert canonical_stack("vllm") == "vllm-mlenergy-v3"
    with pytest.raises(ConfigurationError, match="unknown serving stack 'sglang'.*tensorrt-llm-1.0"):
        canonical_stack("sglang")


def test_stack_without_source_is_rejected(tmp_path):
    doc = yaml.safe_load(SERVING_STACKS_PATH.read_text())
    doc["stacks"]["tensorrt-llm-1.0"]["params"]["kernel.decode_efficiency"]["source"] = ""
    p = tmp_path / "stacks.yaml"
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(CatalogError, match="kernel.decode_efficiency: no source") as e:
        serving_stacks(p)
    assert str(p) in str(e.value)
    del doc["stacks"]["tensorrt-llm-1.0"]["params"]["kernel.decode_efficiency"]
    p.write_text(yaml.safe_dump(doc))
    with pytest.raises(CatalogError, match="missing \\['kernel.decode_efficiency'\\]"):
        serving_stacks(p)


# ------------------------------------------------------------------ the all-reduce latency term
def test_allreduce_latency_grows_with_gpu_count_and_pcie_doubles_it():
    h100 = build_accelerator("H100-SXM")
    lat = {n: h100.link(n, latency_s=8e-6, latency_per_gpu_s=1e-6)[2] for n in (2, 4, 8)}
    assert lat == pytest.approx({2: 8e-6, 4: 10e-6, 8: 14e-6})
    bw, _, _ = h100.link(8, bw_efficiency=0.5)
    assert bw == pytest.approx(450e9 * 0.5)                 # NVLink 4: 450 GB/s one way, at the stack's efficiency
    pcie = build_accelerator("L40S")                        # no NVLink: PCIe, latency twice NVLink's
    assert pcie.link_kind(4) == "pcie"
    assert pcie.link(4, latency_s=8e-6, latency_per_gpu_s=1e-6)[2] == pytest.approx(2 * 10e-6)
    assert h100.link_kind(16) == "network"                  # beyond the scale-up domain: device constants
    assert h100.link(16, latency_s=1.0)[2] == h100.network()[2]


def test_allreduce_time_is_latency_plus_size_over_bandwidth():
    """t_comm = messages * (L0 + L1 (n-2)) + bytes / (n * BW * eff), by hand."""
    h100 = build_accelerator("H100-SXM")
    vals = get_serving_stack("tensorrt-llm-1.0").values(h100.constants)
    vals.update({"collective.latency_s": 5e-6, "collective.latency_per_gpu_s": 2e-6, "collective.bw_efficiency": 0.5})
    n, msgs, nbytes = 8, 161, 8 * 2 * 7 / 8 * 1e6 * 161      # 161 all-reduces of 1 MB, ring bytes over 8 GPUs
    dev = Device.from_accelerator(h100, "bf16", n, vals)
    ev = evaluate(WorkArrays(flops=0.0, lin_bytes=0.0, kv_bytes=0.0, comm_bytes=nbytes, comm_messages=msgs,
                             steps=0.0), dev)
    want = msgs * (5e-6 + 2e-6 * 6) + nbytes / (n * 450e9 * 0.5)
    assert float(ev.t_comm_s) == pytest.approx(want, rel=1e-12)
    assert float(ev.time_s) == pytest.approx(want, rel=1e-12)


# ------------------------------------------------------------------ host overlap and power while waiting
def _stack_device(**over):
    acc = build_accelerator("H100-SXM", constants=load_device_constants(True))
    vals = get_serving_stack().values(acc.constants)
    vals.update(over)
    return Device.from_accelerator(acc, "bf16", 2, vals)


def test_host_overlap_takes_the_max_and_waiting_draws_less():
    w = WorkArrays(flops=0.0, lin_bytes=2 * 3.35e12 * 0.01, kv_bytes=0.0, comm_bytes=0.0, comm_messages=10.0,
                   steps=1.0, layers=80.0, seqs=0.0)
    add = _stack_device(**{"overhead.per_layer_s": 5e-4, "overhead.iteration_s": 1e-3})
    ovl = _stack_device(**{"overhead.per_layer_s": 5e-4, "overhead.iteration_s": 1e-3, "overhead.host_overlap": 1.0})
    a, o = evaluate(w, add), evaluate(w, ovl)
    t_gpu = float(a.t_linear_s) + float(a.t_comm_s)
    host = 80 * 5e-4                                       # 40 ms of launches, longer than the GPU work
    assert host > t_gpu
    assert float(a.time_s) == pytest.approx(t_gpu + 1e-3 + host)
    assert float(o.time_s) == pytest.approx(1e-3 + host + t_gpu - t_gpu)      # max(gpu, host) + per-step
    assert float(o.t_overhead_s) == pytest.approx(1e-3 + host - t_gpu)
    # power while waiting: the busy baseline is billed at wait_fraction over latency + overhead
    half = _stack_device(**{"overhead.per_layer_s": 5e-4, "overhead.iteration_s": 1e-3, "power.wait_fraction": 0.5})
    h = evaluate(w, half)
    dev = add
    g = 2 * float(dev.base_w)                              # x = 1: baseline factor 1
    wait = 10 * float(dev.link_lat) + float(a.t_overhead_s)
    assert float(a.energy_j) - float(h.energy_j) == pytest.approx(g * 0.5 * wait, rel=1e-9)
    assert float(h.time_s) == pytest.approx(float(a.time_s))


@pytest.mark.parametrize("gpu,tp", [("H100-SXM", 1), ("H100-SXM", 8), ("A100-80GB-SXM", 4), ("L40S", 2)])
@pytest.mark.parametrize("calibrated", [True, False])
def test_reference_stack_is_the_model_of_before_stacks(gpu, tp, calibrated):
    """Its parameters resolve to the device constants: the same Device, field for field, so every
    profile, scenario expectation and calibration figure stays as it was."""
    acc = build_accelerator(gpu, constants=load_device_constants(calibrated))
    old = Device.from_accelerator(acc, "bf16", tp)
    for phase in ("decode", "prefill"):
        new = Device.from_accelerator(acc, "bf16", tp, get_serving_stack().values(acc.constants), phase)
        assert new == old


# ------------------------------------------------------------------ the operating point, the estimate, a scenario
def test_operating_point_carries_the_stack():
    op = OperatingPoint("llama-3.1-8b", "H100", stack="trtllm")
    assert op.stack == "tensorrt-llm-1.0" and hash(op) != hash(op.with_stack("vllm"))
    assert OperatingPoint("llama-3.1-8b", "H100").stack == "vllm-mlenergy-v3"
    assert "stack tensorrt-llm-1.0" in op.label() and "stack" not in OperatingPoint("llama-3.1-8b", "H100").label()
    assert op.to_dict()["stack"] == "tensorrt-llm-1.0"
    with pytest.raises(ConfigurationError, match="unknown serving stack"):
        OperatingPoint("llama-3.1-8b", "H100", stack="nope")
    # a faster stack is faster on the same hardware
    slow = steady_state(make_replica(op.with_stack("vllm-splitwise-2023").replace(precision="fp16", tp=4,
                                                                                  model="llama-2-70b")),
                        8, 512, 128)
    ref = steady_state(make_replica(op.replace(precision="fp16", tp=4, model="llama-2-70b", stack="vllm")), 8, 512, 128)
    assert float(slow.itl_s) > 1.3 * float(ref.itl_s)
    assert float(slow.avg_power_w) < float(ref.avg_power_w)     # GPUs wait on the host, at lower power


def _estimate(capsys, *extra):
    rc = main(["estimate", "--model", "llama-3.1-8b", "--gpu", "H100", "--max-num-seqs", "1024", "--input-tokens",
               "128", "--output-tokens", "2048", "--precision", "fp8", "--kv-precision", "fp8", "--json", *extra])
    out, err = capsys.readouterr()
    return rc, out, err


def test_estimate_stack_flag(capsys):
    rc, out, _ = _estimate(capsys)
    assert rc == 0
    ref = json.loads(out)
    rc, out, _ = _estimate(capsys, "--stack", "trtllm")
    assert rc == 0
    trt = json.loads(out)
    assert ref["stack"] == "vllm-mlenergy-v3" and trt["stack"] == "tensorrt-llm-1.0"
    assert trt["batch"] == ref["batch"]                          # the same hardware and KV cache
    # TensorRT-LLM's per-sequence cost (5.7 us vs 45 us) makes large batches much faster
    assert trt["output_tokens_per_s"] > 1.3 * ref["output_tokens_per_s"]
    rc, out, err = _estimate(capsys, "--stack", "sglang")
    assert rc == 2 and "unknown serving stack 'sglang'" in err and out == ""


def test_scenario_serve_stack(tmp_path):
    from _scenarios import small_scenario
    from fleet.scenario import load_scenario, serve_operating_point

    p = small_scenario(tmp_path)
    data = yaml.safe_load(p.read_text())
    data["fleet"]["pools"][0]["serve"][0]["stack"] = "trtllm"
    p.write_text(yaml.safe_dump(data))
    sc = load_scenario(p)
    assert sc.fleet.pools[0].serve[0].stack == "tensorrt-llm-1.0"
    assert serve_operating_point(sc, 0, 0).stack == "tensorrt-llm-1.0"
    del data["fleet"]["pools"][0]["serve"][0]["stack"]
    p.write_text(yaml.safe_dump(data))
    assert serve_operating_point(load_scenario(p), 0, 0).stack == "vllm-mlenergy-v3"
    data["fleet"]["pools"][0]["serve"][0]["stack"] = "nope"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ScenarioError, match="serve.*stack|stack.*serve") as e:
        load_scenario(p)
    assert "unknown serving stack" in str(e.value)


def test_stack_prefill_batching_shares_the_weight_stream():
    from fleet.frontier.work import prefill_share_work, prefill_work
    one = prefill_work("llama-3.1-8b", 128, "fp8", "fp8", 1)
    share = prefill_share_work("llama-3.1-8b", 128, 64, "fp8", "fp8", 1)
    assert float(share.flops) == pytest.approx(float(one.flops), rel=0.02)      # the same arithmetic per prompt
    assert float(share.lin_bytes) < 0.2 * float(one.lin_bytes)                  # weights read once per 64 prompts
    assert float(share.steps) == pytest.approx(1 / 64) and float(share.layers) == float(one.layers)
    assert np.isclose(float(prefill_share_work("llama-3.1-8b", 128, 1, "fp8", "fp8", 1).flops), float(one.flops))
