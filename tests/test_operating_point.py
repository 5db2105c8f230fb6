"""The operating point (fleet.frontier.OperatingPoint) and the one precision vocabulary
(fleet.catalog.precision): validation, canonical values as cache keys, what-if constants, and
the same precision names accepted and refused by the Python API, a scenario and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from fleet.catalog.device_energy import load_device_constants
from fleet.catalog.precision import (ALIASES, COMPUTE_FORMATS, PRECISION_BITS, PRECISION_BYTES, STORAGE,
                                     activation_precision, compute_format, normalize_precision, precision_bytes)
from fleet.cli import main
from fleet.errors import ConfigurationError, ScenarioError
from fleet.frontier import OperatingPoint, build_serving_frontier, build_serving_profile, make_replica
from fleet.scenario import parse_scenario

MODEL = "llama-3.1-8b"


# ------------------------------------------------------------------ the vocabulary
def test_vocabulary_round_trips():
    for name, p in STORAGE.items():
        assert normalize_precision(name) == name == p.name
        assert normalize_precision(f"  {name.upper()} ") == name
        assert normalize_precision(p) == name
        assert precision_bytes(name) == PRECISION_BYTES[name] == PRECISION_BITS[name] / 8
        assert p.source
    for alias, target in ALIASES.items():
        assert target in STORAGE, alias
        assert normalize_precision(alias) == target
        assert normalize_precision(alias.upper()) == target
        assert normalize_precision(normalize_precision(alias)) == target      # idempotent
    # hand-checked sizes: bf16 2 B; OCP MXFP4 = 4 bit values + an 8-bit scale per 32 = 4.25 bit
    assert precision_bytes("bfloat16") == 2.0 and PRECISION_BITS["mxfp4"] == 4.25
    assert precision_bytes("mxfp4") == pytest.approx(0.53125)
    assert activation_precision("fp8") == "bf16" and activation_precision("half") == "fp16"


def test_unknown_precision_lists_the_valid_names():
    with pytest.raises(ConfigurationError) as ei:
        normalize_precision("bf17")
    msg = str(ei.value)
    assert "'bf17'" in msg and all(n in msg for n in STORAGE) and "bfloat16" in msg


def test_compute_formats():
    assert compute_format("tf32") == "tf32"          # a compute format, not a storage precision
    assert compute_format("mxfp4") == compute_format("nvfp4") == "fp4"
    assert compute_format("awq") == "int4" and compute_format("bfloat16") == "bf16"
    assert set(COMPUTE_FORMATS) >= {compute_format(n) for n in ("fp32", "bf16", "fp16", "fp8", "int8", "int4")}
    with pytest.raises(ConfigurationError):
        normalize_precision("tf32")                  # nothing is stored in tf32


# ------------------------------------------------------------------ the value
def test_operating_point_is_canonical_and_hashable():
    a = OperatingPoint("meta-llama/Llama-3.1-8B-Instruct", "h100", precision="bfloat16")
    b = OperatingPoint(MODEL, "H100-SXM", tp=1, ep=1, precision="bf16", kv_precision="bf16", max_batch=256)
    assert a == b and hash(a) == hash(b) and len({a, b}) == 1
    assert (a.model, a.accelerator, a.kv_precision, a.constants) == (MODEL, "H100-SXM", "bf16", "calibrated")
    assert OperatingPoint(MODEL, "H100", precision="fp8").kv_precision == "bf16"      # activation dtype
    assert OperatingPoint(MODEL, "H100", precision="float16").kv_precision == "fp16"
    assert OperatingPoint(MODEL, "H100", precision="fp8", kv_precision="e4m3").kv_precision == "fp8"


def test_operating_point_variants_and_label():
    op = OperatingPoint(MODEL, "H100", power_cap_w=400)
    c = op.with_cap(350)
    assert c.power_cap_w == 350.0 and op.power_cap_w == 400.0 and c != op
    k = op.with_clock(990)
    assert k.locked_clock_mhz == 990.0 and k.power_cap_w is None
    assert k.with_cap(300).locked_clock_mhz is None
    assert op.uncapped().power_cap_w is None
    assert op.label() == "llama-3.1-8b on 1 x H100-SXM, bf16, cap 400 W, max batch 256, calibrated"
    assert "KV fp8" in op.replace(kv_precision="fp8").label()
    assert json.loads(json.dumps(op.to_dict()))["power_cap_w"] == 400.0


@pytest.mark.parametrize("kw,words", [
    ({"tp": 0}, "positive integer"),
    ({"tp": 1.5}, "positive integer"),
    ({"tp": True}, "positive integer"),
    ({"max_batch": 0}, "max_batch"),
    ({"power_cap_w": -5}, "power cap"),
    ({"power_cap_w": math.nan}, "power cap"),
    ({"power_cap_w": 400, "locked_clock_mhz": 990}, "exclusive"),
    ({"locked_clock_mhz": 0}, "locked clock"),
    ({"ep": 2, "tp": 2}, "mixture-of-experts"),
    ({"precision": "bf17"}, "unknown precision"),
    ({"kv_precision": "int3"}, "unknown precision"),
    ({"constants": "what-if: HBM4"}, "device_constants"),
    ({"constants": "physical", "device_constants": load_device_constants(False)}, "label of its own"),
    ({"constants": ""}, "constants"),
])
def test_operating_point_validation(kw, words):
    with pytest.raises(ConfigurationError, match=words):
        OperatingPoint(MODEL, "H100", **kw)


def test_unknown_names_are_catalog_errors():
    from fleet.errors import CatalogError
    with pytest.raises(CatalogError):
        OperatingPoint("llama-9", "H100")
    with pytest.raises(CatalogError):
        OperatingPoint(MODEL, "H1000")


def test_accelerator_ranges_are_checked_when_built():
    with pytest.raises(ConfigurationError, match=r"\[200, 700\] W"):
        make_replica(OperatingPoint(MODEL, "H100", power_cap_w=900))
    with pytest.raises(ConfigurationError, match="MHz"):
        make_replica(OperatingPoint(MODEL, "H100", locked_clock_mhz=5000))


# ------------------------------------------------------------------ the cache
def test_profile_cache_is_keyed_by_the_value():
    op = OperatingPoint(MODEL, "H100", max_batch=16, constants="physical")
    p = build_serving_profile(op)
    assert build_serving_profile(OperatingPoint("meta-llama/Llama-3.1-8B-Instruct", "h100-sxm", max_batch=16,
                                                precision="bfloat16", constants="physical")) is p
    # the README's keyword form builds the same value
    assert build_serving_profile(MODEL, "H100", 1, max_batch=16) is p
    q = build_serving_profile(op.with_cap(400))
    assert q is not p and q.power_cap_w == 400.0 and p.power_cap_w == 700.0
    assert build_serving_profile(MODEL, "H100", tp=1, power_cap_w=400, max_batch=16) is q
    assert p.meta["operating_point"] == op.label() and p.meta["constants"] == "physical"
    # a frontier's profiles are the same cached values
    fr = build_serving_frontier(op, n_caps=3)
    assert fr.profiles[1] is build_serving_profile(op.with_cap(float(fr.caps_w[1])))
    with pytest.raises(TypeError):
        build_serving_profile(op, "H100")


def test_locked_clock_profile():
    op = OperatingPoint(MODEL, "H100", max_batch=16, constants="physical", locked_clock_mhz=990)
    prof = build_serving_profile(op)
    assert prof.meta["locked_clock"] == pytest.approx(0.5) and prof.meta["locked_clock_mhz"] == 990.0
    free = build_serving_profile(op.with_clock(None))
    t = lambda p, n: p.pre_t[0] + p.pre_t[1] * n + p.pre_t[2] * n * n  # noqa: E731
    assert t(prof, 4096) > 1.5 * t(free, 4096)          # a compute-bound prefill at half the clock


def test_whatif_constants_make_a_different_profile():
    base = load_device_constants(True)
    half = base.with_values({"memory.pj_per_bit.HBM3": base["memory.pj_per_bit.HBM3"] / 2}, kind="what-if")
    op = OperatingPoint(MODEL, "H100", max_batch=16)
    w = op.with_constants("what-if: HBM3 at half the pJ/bit", half)
    assert w.is_whatif and w.calibrated and w != op and w.resolve_constants() is half
    pc, pw = build_serving_profile(op), build_serving_profile(w)
    assert np.all(pw.dec_e1[1:] < pc.dec_e1[1:])               # less energy per byte of KV read
    assert np.allclose(pw.dec_t1, pc.dec_t1)                   # the same time
    # another set under the same label is another key
    other = base.with_values({"memory.pj_per_bit.HBM3": base["memory.pj_per_bit.HBM3"] / 4}, kind="what-if")
    assert build_serving_profile(w.with_constants(w.constants, other)) is not pw
    assert build_serving_profile(w) is pw
    # a DeviceConstants given as `constants` is carried under the label "custom"
    assert OperatingPoint(MODEL, "H100", max_batch=16, constants=half) == op.with_constants("custom", half)


# ------------------------------------------------------------------ scenario, API and CLI agree
def _scenario(precision, kv=None):
    serve = {"model": MODEL, "tp": 1, "precision": precision, "max_batch": 16}
    if kv is not None:
        serve["kv_precision"] = kv
    return {"name": "p", "fleet": {"pools": [{"name": "h100", "accelerator": "H100", "gpus": 1,
                                              "gpus_per_server": 1, "serve": [serve]}]},
            "demand": {"inference": [{"model": MODEL, "synth": {"rate": 1.0, "hours": 0.01}}]}}


def _cli(capsys, precision) -> int:
    rc = main(["estimate", "--model", MODEL, "--gpu", "H100", "--batch", "4", "--input-tokens", "64",
               "--output-tokens", "16", "--precision", precision, "--uncalibrated", "--json"])
    capsys.readouterr()
    return rc


@pytest.mark.parametrize("name", ["bf16", "bfloat16", "BF16", "float16", "half", "fp8", "e4m3", "fp8_e5m2", "int8",
                                  "awq", "mxfp4", "fp32", "bf17", "tf32", "fp12", ""])
def test_scenario_api_and_cli_accept_the_same_names(capsys, name):
    def api():
        return OperatingPoint(MODEL, "H100", precision=name)

    try:
        canon = normalize_precision(name)
    except ConfigurationError:
        canon = None
    if canon is None:
        with pytest.raises(ConfigurationError):
            api()
        with pytest.raises(ScenarioError) as ei:
            parse_scenario(_scenario(name))
        assert ei.value.field == "fleet.pools[0].serve[0].precision"
        assert "unknown precision" in str(ei.value) and "bf16" in str(ei.value) and "bfloat16" in str(ei.value)
        assert _cli(capsys, name) == 2
    else:
        assert api().precision == canon
        sc = parse_scenario(_scenario(name))
        assert sc.fleet.pools[0].serve[0].precision == canon
        assert sc.operating_point("h100") == OperatingPoint(MODEL, "H100", precision=canon, max_batch=16)
        assert _cli(capsys, name) == 0


def test_scenario_kv_precision_is_normalised_and_checked():
    sc = parse_scenario(_scenario("fp8", kv="float8"))
    assert sc.fleet.pools[0].serve[0].kv_precision == "fp8"
    assert sc.operating_point(0, 0).kv_precision == "fp8"
    with pytest.raises(ScenarioError) as ei:
        parse_scenario(_scenario("fp8", kv="int3"))
    assert ei.value.field == "fleet.pools[0].serve[0].kv_precision"


def test_scenario_operating_point_carries_the_whatif(repo_root):
    from fleet.scenario import load_scenario
    sc = load_scenario(repo_root / "scenarios" / "whatif_hbm_half.yaml")
    op = sc.operating_point(0, 0)
    assert op.is_whatif and op.constants == f"what-if: {sc.whatif.label}"
    assert op.device_constants["memory.pj_per_bit.HBM3"] == sc.whatif.device_constants["memory.pj_per_bit.HBM3"]
    plain = parse_scenario(_scenario("bf16"))
    assert plain.operating_point("h100").constants == "calibrated"
    with pytest.raises(ScenarioError, match="no pool named"):
        plain.operating_point("a100")
