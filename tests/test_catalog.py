"""The catalog: name resolution, datasheet spot checks, sources, architecture consistency,
bad-row errors, and the CLI."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet import catalog
from fleet.catalog import (
    AcceleratorSpec,
    get_accelerator,
    get_model,
    load_accelerators,
    load_models,
    schema,
)
from fleet.errors import CatalogError

CAT_DIR = Path(catalog.__file__).resolve().parent


# ------------------------------------------------------------------------------------------
# name resolution


@pytest.mark.parametrize("name", ["H100", "h100-sxm", "H100_SXM", "h100 sxm5", "NVIDIA H100 80GB HBM3", " H100-SXM "])
def test_h100_aliases_resolve(name):
    assert get_accelerator(name).name == "H100-SXM"


@pytest.mark.parametrize("name,expected", [
    ("A100-SXM4-80GB", "A100-80GB-SXM"), ("NVIDIA A100-SXM4-40GB", "A100-40GB-SXM"),
    ("Tesla V100-SXM2-32GB", "V100-SXM2-32GB"), ("v100", "V100-SXM2-32GB"), ("a40", "A40"),
    ("Quadro RTX 6000", "RTX6000"), ("p100", "P100-PCIe-16GB"), ("mi300x", "MI300X"),
    ("h200", "H200-SXM"), ("b200", "B200"), ("nvidia l4", "L4"), ("l40s", "L40S"), ("a10g", "A10G"),
])
def test_other_gpu_aliases(name, expected):
    assert get_accelerator(name).name == expected


@pytest.mark.parametrize("name", [
    "meta-llama/Llama-3.1-8B-Instruct", "llama-3.1-8b", "Llama-3.1-8B-Instruct", "LLAMA_3.1_8B",
    "meta-llama/Meta-Llama-3.1-8B", "llama 3.1 8b",
])
def test_llama_names_resolve(name):
    assert get_model(name).name == "llama-3.1-8b"


def test_unknown_names_suggest_three_closest():
    with pytest.raises(CatalogError) as e:
        get_accelerator("H100-SMX")
    msg = str(e.value)
    assert "H100-SMX" in msg and "H100-SXM" in msg
    assert msg.split("closest known: ")[1].split(" (")[0].count(",") == 2
    with pytest.raises(CatalogError) as e:
        get_model("llama-3.1-9b")
    assert "llama-3.1-8b" in str(e.value)


def test_spec_objects_pass_through():
    a = get_accelerator("H100")
    assert get_accelerator(a) is a
    m = get_model("qwen3-8b")
    assert get_model(m) is m


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_separators_and_case_never_change_the_match(data):
    """Any alias, re-cased and with '-', '_' or ' ' inserted or removed, names the same row."""
    rows = load_accelerators() + load_models()
    row = data.draw(st.sampled_from(rows))
    name = data.draw(st.sampled_from([row.name, *row.aliases]))
    chars = []
    for ch in name:
        if ch in "-_ ":
            ch = data.draw(st.sampled_from(["-", "_", " ", ""]))
        elif data.draw(st.booleans()):
            ch = ch.swapcase()
        chars.append(ch)
    mangled = "".join(chars)
    lookup = get_accelerator if isinstance(row, AcceleratorSpec) else get_model
    assert lookup(mangled).name == row.name


# ------------------------------------------------------------------------------------------
# datasheet spot checks (NVIDIA H100/A100/V100/A40 datasheets)


def test_h100_sxm_datasheet():
    h = get_accelerator("H100")
    assert h.peak_tflops("bf16") == pytest.approx(989, rel=0.002)
    assert h.peak_tflops("fp8") == pytest.approx(1979, rel=0.002)
    assert h.memory_bw_gbs == 3350 and h.memory_gb == 80 and h.tdp_w == 700
    assert h.memory_tech == "HBM3" and h.nvlink_gbs == 450
    assert (h.power_min_w, h.power_max_w) == (200, 700)


def test_a100_80gb_datasheet():
    a = get_accelerator("A100-80GB")
    assert a.peak_tflops("bf16") == pytest.approx(312)
    assert a.memory_bw_gbs == 2039 and a.tdp_w == 400 and a.memory_tech == "HBM2e"
    with pytest.raises(CatalogError, match="A100-80GB-SXM has no fp8"):
        a.peak_tflops("fp8")


def test_v100_and_a40_datasheets():
    v = get_accelerator("V100")
    assert v.peak_tflops("fp16") == 125 and v.memory_bw_gbs == 900 and v.tdp_w == 300
    a40 = get_accelerator("A40")
    assert a40.peak_tflops("bf16") == pytest.approx(149.7) and a40.memory_bw_gbs == 696 and a40.tdp_w == 300


def test_llama_3_1_8b_config():
    m = get_model("meta-llama/Llama-3.1-8B-Instruct")
    assert (m.layers, m.hidden_size, m.heads, m.kv_heads, m.head_dim) == (32, 4096, 32, 8, 128)
    assert m.intermediate_size == 14336 and m.vocab_size == 128256 and not m.is_moe
    # 32 layers x (K+V) x 8 heads x 128 dims x 2 bytes
    assert m.kv_bytes_per_token(2) == 32 * 2 * 8 * 128 * 2


def test_moe_and_mla_fields():
    d = get_model("deepseek-ai/DeepSeek-V3")
    assert d.is_moe and d.attention == "mla" and d.dense_layers == 3 and d.moe_layers == 58
    assert d.kv_bytes_per_token(1) == 61 * (512 + 64)
    mav = get_model("llama-4-maverick")
    assert mav.moe_layers == 24 and mav.dense_ffn_layers == 24
    assert get_model("mixtral-8x7b").experts_per_token == 2


# ------------------------------------------------------------------------------------------
# precisions


def test_peak_precision_fallbacks():
    v = get_accelerator("V100")
    assert v.peak_tflops("bf16") == v.peak_fp16_tflops  # fp16 <-> bf16
    assert v.peak_tflops("int4") == v.peak_fp16_tflops  # weight-only: best float tensor format
    h = get_accelerator("H100")
    assert h.peak_tflops("fp4") == h.peak_fp8_tflops
    b = get_accelerator("B200")
    assert b.peak_tflops("fp4") == 9000 and b.peak_tflops("bfloat16") == 2250
    with pytest.raises(CatalogError, match="unknown precision"):
        h.peak_tflops("fp7")
    with pytest.raises(CatalogError, match="V100-SXM2-32GB has no tf32.*fp32, fp16"):
        v.peak_tflops("tf32")


def test_tensor_peaks_ordered():
    """Lower precision is never slower, and dense tensor peaks exceed the fp32 vector peak."""
    for a in load_accelerators():
        seq = [a._direct(p) for p in ("fp32", "tf32", "bf16", "fp8", "fp4")]
        seq = [x for x in seq if x is not None]
        assert seq == sorted(seq), a.name
        if a.peak_int8_tops and a.peak_bf16_tflops:
            assert a.peak_int8_tops >= a.peak_bf16_tflops, a.name


# ------------------------------------------------------------------------------------------
# every number has unit, kind and source


def test_schema_declares_every_column():
    kinds = {"spec", "measured", "estimated", "price", "id"}
    for table in ("accelerators", "models"):
        cols = schema()[table]["columns"]
        with open(CAT_DIR / schema()[table]["file"], newline="") as fh:
            header = next(csv.reader(fh))
        assert header == list(cols)
        for name, spec in cols.items():
            assert spec["kind"] in kinds, name
            assert spec.get("unit") and spec.get("meaning"), name
            if spec["kind"] != "id":
                assert spec.get("source") in cols, f"{name} has no source column"


def test_every_value_has_its_source():
    for table, rows in (("accelerators", load_accelerators()), ("models", load_models())):
        cols = schema()[table]["columns"]
        for r in rows:
            d = r.to_dict()
            for c, spec in cols.items():
                v = d.get(c)
                if spec.get("source") and v not in (None, (), [], ""):
                    src = r.sources.get(spec["source"], "")
                    assert len(src) > 10, f"{r.name}.{c} lacks {spec['source']}"


def test_sources_cite_documents():
    for a in load_accelerators():
        assert "http" in a.sources["spec_source"], a.name
        assert a.embodied_kgco2e is not None, a.name
    for m in load_models():
        assert "huggingface.co" in m.source or "arxiv" in m.source.lower(), m.name


# ------------------------------------------------------------------------------------------
# architecture consistency


#: gpt-oss's published active count leaves out the input embedding (a lookup, no matmul).
ACTIVE_EXCLUDES_INPUT_EMBEDDING = {"gpt-oss-120b", "gpt-oss-20b"}


#: published totals that the published shape does not reproduce (the catalog keeps both; notes say why).
PUBLISHED_TOTAL_DIFFERS = {"gopher-280b": 0.10}


@pytest.mark.parametrize("model", [m.name for m in load_models()])
def test_params_match_architecture(model):
    m = get_model(model)
    total = m.weight_params() / 1e9
    tol = PUBLISHED_TOTAL_DIFFERS.get(model, 0.03)
    assert total == pytest.approx(m.params_b, rel=tol), f"{model}: computed {total:.2f}B"
    if model in PUBLISHED_TOTAL_DIFFERS:
        return
    active = m.weight_params(active=True) / 1e9
    if model in ACTIVE_EXCLUDES_INPUT_EMBEDDING:
        active -= m.vocab_size * m.hidden_size / 1e9
    assert active == pytest.approx(m.active_params_b, rel=0.03), f"{model}: active {active:.2f}B"
    assert m.heads * m.head_dim >= m.hidden_size * 0.5


def test_required_models_present():
    need = ["llama-2-7b", "llama-2-13b", "llama-2-70b", "llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b",
            "mistral-7b", "mixtral-8x7b", "qwen3-8b", "qwen3-14b", "qwen3-32b", "qwen3-30b-a3b",
            "qwen3-235b-a22b", "deepseek-v3", "gpt-oss-120b", "gpt-oss-20b", "gpt-3-175b"]
    for n in need:
        get_model(n)
    for g in ["V100", "A100-40GB", "A100-80GB", "H100-SXM", "H100-PCIe", "H200", "B200", "L4", "L40S",
              "A10G", "MI300X", "A40", "RTX 6000", "P100"]:
        get_accelerator(g)


# ------------------------------------------------------------------------------------------
# against the shared reference data


#: ML.ENERGY model ids that are deliberately not in the catalog: vision-language / omni models
#: (a vision or audio encoder the text-only FLOP model does not describe) and hybrid Mamba-2
#: models (no attention KV cache on most layers).
NOT_IN_CATALOG = ("-VL-", "-Omni-", "Nemotron")


def test_mlenergy_text_llms_resolve(shared_data):
    df = pd.read_csv(shared_data / "mlenergy-llm-inference-energy-h100" / "mlenergy_v3_llm_configs_h100.csv")
    ids = df.drop_duplicates("model_id").set_index("model_id")
    checked = 0
    for mid, row in ids.iterrows():
        if any(s in mid for s in NOT_IN_CATALOG):
            continue
        m = get_model(mid)
        # the benchmark lists nominal, rounded sizes (Qwen3-14B: "14" for 14.77B; 30B-A3B: "3" active)
        assert m.params_b == pytest.approx(row.total_params_b, rel=0.08), mid
        assert m.active_params_b == pytest.approx(row.activated_params_b, rel=0.2), mid
        assert m.is_moe == ("moe" in row.architecture.lower()), mid
        checked += 1
    assert checked >= 17
    assert get_accelerator(df.gpu_model.iloc[0]).name == "H100-SXM"


@pytest.mark.parametrize("gpu,fname", [("V100-PCIe-32GB", "v100"), ("A40", "a40"),
                                       ("RTX6000", "rtx6000"), ("P100-PCIe-16GB", "p100")])
def test_zeus_power_limits_inside_catalog_range(shared_data, gpu, fname):
    df = pd.read_csv(shared_data / "zeus-gpu-power-limit-profiles" / f"summary_power_{fname}.csv")
    a = get_accelerator(gpu)
    assert a.power_min_w <= df.power_limit.min() and df.power_limit.max() <= a.power_max_w
    assert df.power_limit.max() == a.power_max_w  # the sweep runs up to the card's maximum
    assert df.average_power.max() <= a.tdp_w


def test_embodied_column_recomputes_from_act_tables(shared_data):
    from fleet.catalog import embodied

    for a in load_accelerators():
        v = embodied.estimate_kgco2e(a.name, a.die_area_mm2, a.process_node_nm, a.memory_gb)
        assert v == pytest.approx(a.embodied_kgco2e, abs=0.051), a.name
    # same order as LLMCarbon's per-die figures (H100 14.7, V100 9.8 kgCO2e for the die alone)
    llm = pd.read_csv(shared_data / "llmcarbon-chip-embodied" / "hardware.csv").set_index("hardware")
    for gpu, key in (("H100-SXM", "H100"), ("V100-SXM2-32GB", "V100")):
        a = get_accelerator(gpu)
        die_only = a.embodied_kgco2e - a.memory_gb * 0.065
        ratio = die_only / llm.loc[key, "CO2e_chip (kgCO2eq)"]
        assert 0.5 < ratio < 3.0, (gpu, ratio)


# ------------------------------------------------------------------------------------------
# bad rows


def _copy_with(tmp_path: Path, table: str, row: int, column: str, value: str) -> Path:
    src = CAT_DIR / f"{table}.csv"
    with open(src, newline="") as fh:
        rows = list(csv.reader(fh))
    j = rows[0].index(column)
    rows[row][j] = value
    out = tmp_path / f"{table}.csv"
    with open(out, "w", newline="") as fh:
        csv.writer(fh, lineterminator="\n").writerows(rows)
    return out


@pytest.mark.parametrize("column,value,expect", [
    ("memory_bw_gbs", "fast", "is not a number"),
    ("tdp_w", "-5", "not positive"),
    ("memory_tech", "HBM9", "not allowed"),
    ("tdp_w", "", "value missing"),
    ("power_min_w", "900", "power_min_w 900.0 > power_max_w"),
    ("matmul_efficiency", "1.4", "matmul_efficiency 1.4 > 1"),
    ("release_year", "2020.5", "not a whole number"),
])
def test_bad_accelerator_cell_names_line_and_column(tmp_path, column, value, expect):
    path = _copy_with(tmp_path, "accelerators", 9, column, value)  # H100-SXM
    with pytest.raises(CatalogError) as e:
        load_accelerators(path)
    err = e.value
    assert err.line == 10 and err.path == str(path)
    assert err.column == column
    assert expect in str(err) and f"{path}:10" in str(err)


def test_value_without_source_is_rejected(tmp_path):
    rows = load_accelerators()
    i = next(i for i, a in enumerate(rows) if a.price_usd_per_gpu_hour is None and "price_source" not in a.sources)
    path = _copy_with(tmp_path, "accelerators", i + 1, "price_usd_per_gpu_hour", "2.5")
    with pytest.raises(CatalogError) as e:
        load_accelerators(path)
    assert e.value.line == i + 2 and e.value.column == "price_source"
    assert "has no source" in str(e.value)


def test_bad_model_rows(tmp_path):
    path = _copy_with(tmp_path, "models", 5, "architecture", "hybrid")
    with pytest.raises(CatalogError) as e:
        load_models(path)
    assert e.value.line == 6 and e.value.column == "architecture" and "dense, moe" in str(e.value)
    path = _copy_with(tmp_path, "models", 1, "kv_heads", "7")
    with pytest.raises(CatalogError, match="not a multiple of kv_heads") as e:
        load_models(path)
    assert e.value.line == 2


def test_duplicate_alias_and_short_row(tmp_path):
    path = _copy_with(tmp_path, "accelerators", 2, "aliases", "H100")  # H100 belongs to H100-SXM
    with pytest.raises(CatalogError, match="already names") as e:
        load_accelerators(path)
    assert e.value.column == "aliases"
    src = (CAT_DIR / "accelerators.csv").read_text().splitlines()
    bad = tmp_path / "short" / "accelerators.csv"
    bad.parent.mkdir()
    bad.write_text("\n".join(src[:3] + ["V100-X,only,three"] + src[3:]) + "\n")
    with pytest.raises(CatalogError, match="cells, header has") as e:
        load_accelerators(bad)
    assert e.value.line == 4


def test_catalog_dir_env_override(tmp_path, monkeypatch):
    _copy_with(tmp_path, "accelerators", 1, "memory_gb", "lots")
    monkeypatch.setenv("FLEET_CATALOG_DIR", str(tmp_path))
    with pytest.raises(CatalogError) as e:
        get_accelerator("V100")
    assert e.value.path == str(tmp_path / "accelerators.csv") and e.value.column == "memory_gb"
    monkeypatch.delenv("FLEET_CATALOG_DIR")
    assert get_accelerator("V100").memory_gb == 32


# ------------------------------------------------------------------------------------------
# tables and CLI


def test_dataframes():
    df = catalog.accelerators()
    assert len(df) == len(load_accelerators()) and df["peak_bf16_tflops"].dtype == float
    assert math.isnan(df.set_index("name").loc["V100-SXM2-32GB", "peak_bf16_tflops"])
    mf = catalog.models()
    assert set(mf["architecture"]) == {"dense", "moe"} and len(mf) == len(load_models())


def test_cli_json(capsys):
    from fleet.cli import main

    assert main(["hardware", "list", "--json"]) == 0
    hw = json.loads(capsys.readouterr().out)
    assert {h["name"] for h in hw} >= {"H100-SXM", "A100-80GB-SXM", "MI300X"}
    assert main(["models", "list", "--json"]) == 0
    ms = json.loads(capsys.readouterr().out)
    assert any(m["hf_id"] == "meta-llama/Llama-3.1-8B-Instruct" for m in ms)
    assert main(["hardware", "show", "h100", "--json"]) == 0
    h = json.loads(capsys.readouterr().out)
    assert h["peak_bf16_tflops"] == pytest.approx(989.4) and "fp8" in h["precisions"]
    assert main(["models", "show", "Qwen/Qwen3-30B-A3B-Instruct-2507", "--json"]) == 0
    q = json.loads(capsys.readouterr().out)
    assert q["is_moe"] and q["computed_params_b"] == pytest.approx(30.5, rel=0.03)


def test_cli_text_and_errors(capsys):
    from fleet.cli import main

    assert main(["hardware", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert "bf16 TFLOPS" in out[0] and "mem GB/s" in out[0]
    end = out[0].index("TDP W") + len("TDP W")  # numbers are right-aligned under their header
    rows = out[2:2 + len(load_accelerators())]
    assert all(r[end - 1].isdigit() and r[end] == " " for r in rows)
    tdps = sorted(float(r[:end].split()[-1]) for r in rows)
    assert tdps == sorted(a.tdp_w for a in load_accelerators())
    assert main(["hardware", "show", "nonesuch-gpu"]) == 2
    assert "closest known" in capsys.readouterr().err
