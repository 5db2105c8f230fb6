"""Benchmark: each serving stack against the published rows kept out of its fit (issue 14 part 2).

Prints, per stack, predicted against published throughput (TensorRT-LLM) or prefill and decode
step times and power (Splitwise vLLM profiles) at TP 1 to 8, the rows held out of the fit marked,
their median error (target: within 20%), a refit from the catalog's start to show the catalog
values are what the fit gives, and the reference stack's ML.ENERGY accuracy (unchanged by stacks).

Run: PYTHONPATH=$PWD python3 -m pytest -m bench -s tests/test_stack_bench.py
"""

from __future__ import annotations

import numpy as np
import pytest

from _stack_rows import SPLITWISE_ROWS, TRTLLM_FIT_GPU, TRTLLM_ROWS
from fleet.catalog.device_energy import load_device_constants
from fleet.catalog.serving_stack import get_serving_stack
from fleet.frontier.stack_fit import (fit_stack, measured_steps, median_ape, predict_steps,
                                      predict_throughput)

pytestmark = pytest.mark.bench


def _splitwise_fit_row(r) -> bool:
    return r.model == "llama-2-70b" and r.tp in (2, 8)


def test_trtllm_stack_holdout():
    c = load_device_constants(True)
    st = get_serving_stack("tensorrt-llm-1.0")
    v = st.values(c)
    p = predict_throughput(TRTLLM_ROWS, v, c)
    ref = predict_throughput(TRTLLM_ROWS, get_serving_stack("vllm-mlenergy-v3").values(c), c)
    print("\nTensorRT-LLM 1.0 (fit on DGX H100, H200 held out): output tokens/s")
    print(f"{'model':15s} {'gpu':9s} tp  ISL/OSL      batch  published  predicted    err  | ref. vLLM stack err | ITL ms  prefill ms")
    held = []
    for r, pt, b, itl, pf, pr in zip(TRTLLM_ROWS, p["tokens_per_s"], p["batch"], p["itl_s"], p["prefill_s"],
                                     ref["tokens_per_s"]):
        ho = r.gpu != TRTLLM_FIT_GPU
        e = 100 * (pt / r.tokens_per_s - 1)
        if ho:
            held.append(abs(e))
        print(f"{r.model:15s} {r.gpu:9s} {r.tp}  {r.input_tokens:5d}/{r.output_tokens:<5d} {b:6.0f} {r.tokens_per_s:10.0f} "
              f"{pt:10.0f} {e:+6.1f}% {'held out' if ho else 'fit':8s}| {100 * (pr / r.tokens_per_s - 1):+6.1f}% "
              f"| {1e3 * itl:6.1f} {1e3 * pf:8.1f}")
    med = float(np.median(held))
    by_tp = {tp: float(np.median([abs(100 * (pt / r.tokens_per_s - 1)) for r, pt in zip(TRTLLM_ROWS, p["tokens_per_s"])
                                  if r.gpu != TRTLLM_FIT_GPU and r.tp == tp])) for tp in sorted({r.tp for r in TRTLLM_ROWS if r.gpu != TRTLLM_FIT_GPU})}
    print(f"hold-out median |error| {med:.1f}% over {len(held)} rows (target 20%); by tp: "
          + ", ".join(f"tp{k} {v:.1f}%" for k, v in by_tp.items()))
    ho = np.array([r.gpu != TRTLLM_FIT_GPU for r in TRTLLM_ROWS])
    meas = np.array([r.tokens_per_s for r in TRTLLM_ROWS])
    e_st = np.abs(p["tokens_per_s"][ho] / meas[ho] - 1) * 100
    e_ref = np.abs(ref["tokens_per_s"][ho] / meas[ho] - 1) * 100
    print(f"held-out p90/max |error|: stack {np.percentile(e_st, 90):.1f}/{e_st.max():.1f}%, "
          f"reference stack {np.percentile(e_ref, 90):.1f}/{e_ref.max():.1f}%")
    print(f"reference stack (vllm-mlenergy-v3) on the same held-out rows: median |error| "
          f"{median_ape(ref['tokens_per_s'][ho], meas[ho]):.1f}%, mean signed "
          f"{float(np.mean(100 * (ref['tokens_per_s'][ho] / meas[ho] - 1))):+.1f}%")
    fit = fit_stack(st, ["overhead.iteration_s", "overhead.per_sequence_s", "kernel.decode_efficiency",
                                    "kernel.prefill_efficiency", "collective.bw_efficiency"],
                    throughput=[r for r in TRTLLM_ROWS if r.gpu == TRTLLM_FIT_GPU], constants=c)
    print("refit on the H100 rows:", {k: float(f"{x:.4g}") for k, x in fit.values.items()})
    assert med < 20.0


def test_splitwise_stack_holdout():
    c = load_device_constants(True)
    st = get_serving_stack("vllm-splitwise-2023")
    v = st.values(c)
    p = predict_steps(SPLITWISE_ROWS, v, c)
    ref = predict_steps(SPLITWISE_ROWS, get_serving_stack("vllm-mlenergy-v3").values(c), c)
    m = measured_steps(SPLITWISE_ROWS)
    print("\nvLLM 2023 (Splitwise profiles; fit on Llama-2-70B TP2+TP8, TP4 and BLOOM-176B held out)")
    print("model        gpu            tp prompt batch | prefill ms pub/pred   | decode step ms pub/pred (ref. stack) "
          "| power share of TDP pub/pred")
    for i, r in enumerate(SPLITWISE_ROWS):
        tag = "fit" if _splitwise_fit_row(r) else "held out"
        print(f"{r.model:12s} {r.gpu:14s} {r.tp}  {r.prompt_tokens:5d} {r.batch:4d} | {m['prompt_ms'][i]:7.1f} "
              f"{p['prompt_ms'][i]:7.1f} | {m['token_ms'][i]:6.1f} {p['token_ms'][i]:6.1f} ({ref['token_ms'][i]:5.1f}) "
              f"| {m['power_share_of_tdp'][i]:5.2f} {p['power_share_of_tdp'][i]:5.2f} ({ref['power_share_of_tdp'][i]:4.2f}) {tag}")
    ho = np.array([not _splitwise_fit_row(r) for r in SPLITWISE_ROWS])
    meds = {k: median_ape(p[k][ho], m[k][ho]) for k in p}
    for tp in sorted({r.tp for r in SPLITWISE_ROWS}):
        sel = ho & np.array([r.tp == tp for r in SPLITWISE_ROWS])
        if sel.any():
            print(f"  held out tp{tp}: prefill {median_ape(p['prompt_ms'][sel], m['prompt_ms'][sel]):.1f}%, "
                  f"decode {median_ape(p['token_ms'][sel], m['token_ms'][sel]):.1f}%")
    print("hold-out median |error|: " + ", ".join(f"{k} {x:.1f}%" for k, x in meds.items()) + " (target 20%)")
    print("reference stack on the same held-out rows: "
          + ", ".join(f"{k} {median_ape(ref[k][ho], m[k][ho]):.1f}%" for k in ref))
    assert max(meds.values()) < 20.0


def test_reference_stack_mlenergy_accuracy_unchanged(shared_data):
    """The reference stack reproduces the calibrated model: ML.ENERGY dense errors as calibrated."""
    from fleet.frontier.mlenergy import load_problem
    from fleet.hardware.calibrate import error_summary

    prob = load_problem(shared_data / "mlenergy-llm-inference-energy-h100" / "mlenergy_v3_llm_configs_h100.csv")
    pred = prob.predict(load_device_constants(True))
    meas = prob.measured
    dense = prob.dense
    one = dense & (prob.rows["tp"] == 1).to_numpy()
    for name, mask in (("dense, all tp", dense), ("dense, single GPU", one)):
        s = error_summary(pred, meas, mask)
        print(f"\nML.ENERGY {name} (n={int(mask.sum())}), reference stack: energy/token "
              f"{s['energy_per_token_j']['median_ape_pct']:.1f}/{s['energy_per_token_j']['p90_ape_pct']:.1f}%, "
              f"throughput {s['output_throughput_tok_s']['median_ape_pct']:.1f}/"
              f"{s['output_throughput_tok_s']['p90_ape_pct']:.1f}% (median/p90)")
    for tp in sorted(prob.rows["tp"][dense].unique()):
        s = error_summary(pred, meas, dense & (prob.rows["tp"] == tp).to_numpy())
        print(f"  tp{tp}: n={s['energy_per_token_j']['n']} energy {s['energy_per_token_j']['median_ape_pct']:.1f}%, "
              f"throughput {s['output_throughput_tok_s']['median_ape_pct']:.1f}%")
    s = error_summary(pred, meas, dense)
    assert s["energy_per_token_j"]["median_ape_pct"] < 7.4 and s["output_throughput_tok_s"]["median_ape_pct"] < 5.4
