"""Issue 14 catalog rows: rack-scale Blackwell, MI325X/MI355X, Gaudi 3, TPU v5e/v5p/v6e and the
BLOOM/OPT/Gopher/Qwen3-Coder/DeepSeek-V3.1/R1 models: every value sourced, estimates kept apart,
Hugging Face ids resolve, and the scale-up domain reaches the link model."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fleet import catalog
from fleet.catalog import get_accelerator, get_model, load_accelerators, schema
from fleet.errors import CatalogError

NEW_ACCELERATORS = ["GB200", "B300", "GB300", "MI325X", "MI355X", "Gaudi3", "TPU-v5e", "TPU-v5p", "TPU-v6e"]
NEW_MODELS = ["bloom-176b", "opt-175b", "gopher-280b", "qwen3-coder-480b-a35b"]
CAT_DIR = Path(catalog.__file__).resolve().parent


@pytest.mark.parametrize("name", NEW_ACCELERATORS)
def test_new_accelerator_rows_are_sourced(name):
    a = get_accelerator(name)
    cols = schema()["accelerators"]["columns"]
    assert "http" in a.sources["spec_source"]
    d = a.to_dict()
    for c, spec in cols.items():
        if spec.get("source") and d.get(c) not in (None, (), ""):
            assert len(a.sources.get(spec["source"], "")) > 20, f"{name}.{c}"
    # estimates are named and explained, never passed off as vendor figures
    for c in a.estimated_columns:
        assert c in cols and cols[c]["kind"] != "id"
        assert c.split("_")[0] in a.sources["estimate_source"] or c in a.sources["estimate_source"]
    assert a.embodied_kgco2e is not None and "assumed" in a.sources["embodied_source"]


def test_tpu_power_is_an_estimate_and_the_vendor_figures_are_specs():
    for n in ("TPU-v5e", "TPU-v5p", "TPU-v6e"):
        a = get_accelerator(n)
        assert {"tdp_w", "power_max_w"} <= set(a.estimated_columns)
        assert "Jouppi" in a.sources["estimate_source"]
        assert "peak_bf16_tflops" not in a.estimated_columns          # a Google figure
    assert get_accelerator("TPU v6e").peak_bf16_tflops == 918 and get_accelerator("v5p").memory_bw_gbs == 2765
    assert get_accelerator("MI355X").estimated_columns == ("nvlink_gbs",)
    assert get_accelerator("GB200").estimated_columns == ()


def test_datasheet_spot_checks():
    gb = get_accelerator("GB200 NVL72")
    assert (gb.memory_gb, gb.memory_bw_gbs, gb.tdp_w, gb.scaleup_gpus) == (186, 8000, 1200, 72)
    # NVL72 per-GPU figures are the rack totals / 72: 13.4 TB, 5,760 TFLOPS FP32
    assert gb.memory_gb * 72 == pytest.approx(13_400, rel=0.01) and gb.peak_fp32_tflops * 72 == 5760
    mi = get_accelerator("AMD Instinct MI355X")
    assert mi.peak_bf16_tflops == pytest.approx(256 * 4096 * 2.4e9 / 1e12, rel=1e-3)   # CUs x FLOP/clk x clock
    assert get_accelerator("MI325X").peak_bf16_tflops == get_accelerator("MI300X").peak_bf16_tflops
    g3 = get_accelerator("Intel Gaudi 3")
    assert (g3.peak_bf16_tflops, g3.memory_gb, g3.tdp_w) == (1835, 128, 900)
    assert get_accelerator("HGX B300").memory_gb == 288


def test_scaleup_domain_reaches_the_link_model():
    from fleet.hardware.accelerator import build_accelerator
    nvl = build_accelerator("GB200")
    hgx = build_accelerator("B200")
    net = hgx.network()[0]
    assert nvl.scaleup_gpus == 72 and hgx.scaleup_gpus == 8
    assert nvl.link(16)[0] > 5 * net           # NVLink across the rack
    assert hgx.link(16)[0] == pytest.approx(net)   # the network beyond 8


@pytest.mark.parametrize("name", NEW_MODELS)
def test_new_model_rows_are_sourced(name):
    m = get_model(name)
    assert "arxiv" in m.source.lower()
    if m.hf_id:
        assert get_model(m.hf_id).name == name and f"huggingface.co/{m.hf_id}" in m.source


@pytest.mark.parametrize("hf_id,name", [
    ("deepseek-ai/DeepSeek-V3.1", "deepseek-v3"), ("deepseek-ai/DeepSeek-R1", "deepseek-v3"),
    ("deepseek-ai/DeepSeek-R1-0528", "deepseek-v3"), ("DeepSeek-V3.1-Terminus", "deepseek-v3"),
    ("bigscience/bloom", "bloom-176b"), ("Qwen/Qwen3-Coder-480B-A35B-Instruct-FP8", "qwen3-coder-480b-a35b"),
    ("facebook/opt-175b", "opt-175b"), ("llama-4-scout", "llama-4-scout"), ("llama-4-maverick", "llama-4-maverick"),
])
def test_hugging_face_ids_resolve(hf_id, name):
    assert get_model(hf_id).name == name


def test_estimated_columns_are_checked(tmp_path):
    src = CAT_DIR / "accelerators.csv"
    with open(src, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    j, k = rows[0].index("estimated_columns"), rows[0].index("estimate_source")
    rows[1][j], rows[1][k] = "tdp_w", ""
    out = tmp_path / "accelerators.csv"

    def write() -> None:
        with open(out, "w", newline="", encoding="utf-8") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)

    write()
    with pytest.raises(CatalogError, match="estimate_source"):
        load_accelerators(out)
    rows[1][j], rows[1][k] = "no_such_column", "because"
    write()
    with pytest.raises(CatalogError, match="no_such_column"):
        load_accelerators(out)
