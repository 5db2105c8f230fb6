"""The ML.ENERGY Benchmark v3 table as a calibration / validation problem for the energy model.

Each row of ``mlenergy_v3_llm_configs_h100.csv`` is one vLLM deployment measured in steady
state: model, GPUs, tensor/expert parallelism, weight precision, the measured mean running batch
(``avg_batch_size``), mean output length, and the measured total GPU power, energy per output
token and output throughput.  We predict each row with the steady-state serving model
(:mod:`fleet.frontier.steady`) at the row's own running batch.

Mapping and stated assumptions
------------------------------
* ``model_id`` -> :func:`fleet.catalog.get_model` (FP8 / Instruct / Thinking variants resolve to
  the same architecture); rows whose model the catalog lacks are skipped and counted.
* ``weight_precision``: bfloat16 -> bf16, fp8 -> fp8 (W8A8 GEMMs on H100), mxfp4 -> mxfp4
  (dequantised to bf16 for the GEMMs).  KV cache in the activation dtype (vLLM default).
* Parallelism: ``tensor_parallel`` GPUs per replica.  Expert-parallel rows (tp=1, ep=N, all
  MoE) are one replica over ``num_gpus`` GPUs with the experts split over them
  (``expert_parallel=True``: EP load imbalance, see :func:`fleet.workload.llm.ep_expert_load`).
  On the public path that is ``make_replica(model, gpu, N, ep=N)`` (``fleet estimate --gpus N
  --ep N``, scenario ``serve: [{tp: N, ep: N}]``); both build their work with
  :func:`fleet.frontier.steady.serving_works`, so they predict exactly what calibration fits.
  The table does not say how attention was parallelised: the benchmark's vLLM configs set
  ``enable-expert-parallel`` and no ``data-parallel-size`` (``data_parallel`` is 1 in every row),
  i.e. attention tensor-parallel over the same GPUs (``load_problem(ep_attention_dp=False)``).  The
  data-parallel-attention reading (all-to-all dispatch/combine, replicated attention weights)
  fits the throughput better but the energy worse (MoE calibrated median energy 17.6% vs 12.1%,
  throughput 8.0% vs 10.2%; measured per-GPU power of 230-250 W at small EP batches says the
  GPUs mostly wait rather than stream replicated weights), so it is not the default.
* Input (prompt) lengths are NOT in the file.  Per task we assume the mean prompt length
  :data:`TASK_INPUT_TOKENS` (tokens, chat template included):

  - ``lm-arena-chat`` 350: LMArena conversations are short chat prompts.  Consistency check
    with the data itself: Llama-3.1-8B at max_num_seqs 768 runs only 691 sequences, i.e. the
    KV cache (about 4.0e5 tokens on one H100 after weights) is full at about 580 tokens per
    sequence = I + O/2 with O = 397, so I is about 380 or less.
  - ``gpqa`` 300: a GPQA-diamond question (about 150-250 words) with four options and the
    instruction; Qwen3-8B at max_num_seqs 96 is KV-bound at 82 sequences, i.e. about 4.3e3
    tokens per sequence = I + O/2 with O = 8052, so I is about 300.
  - ``sourcegraph-fim`` 1500: fill-in-the-middle requests carry prefix and suffix code context.
  Override with ``input_tokens={"task": n}``.
* ``image-chat`` and ``video-chat`` are skipped: the vision encoder's work and the image-token
  counts are not modelled.
* Energy per output token includes prefill energy (as the benchmark counts it); throughput is
  output tokens per second of the whole deployment; power is total GPU power.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np
import pandas as pd

from ..catalog.device_energy import DeviceConstants, load_device_constants
from ..catalog.precision import normalize_precision, valid_precisions
from ..errors import CatalogError, ConfigurationError, InputError, fmt_value
from ..hardware.accelerator import Accelerator
from ..hardware.calibrate import DEFAULT_FIT_PARAMS, error_summary, fit_constants
from ..hardware.energy import Device, WorkArrays, evaluate
from .steady import combine, serving_works

TASK_INPUT_TOKENS: dict[str, int] = {"lm-arena-chat": 350, "gpqa": 300, "sourcegraph-fim": 1500}
TEXT_TASKS = tuple(TASK_INPUT_TOKENS)
REQUIRED = ("task", "model_id", "weight_precision", "gpu_model", "num_gpus", "tensor_parallel",
            "avg_batch_size", "avg_output_len", "avg_power_w_total", "energy_per_token_j",
            "output_throughput_tok_s")
METRICS = ("energy_per_token_j", "output_throughput_tok_s", "avg_power_w_total")


@dataclass
class MLEnergyProblem:
    """Rows mapped to the model, with their work precomputed (constants-independent)."""

    path: Path
    rows: pd.DataFrame                  # kept rows with model/arch/tp/precision/input columns
    skipped: dict[str, int]             # reason -> count
    dec: WorkArrays                     # per row: one decode iteration
    pre: WorkArrays                     # per row: one prefill of the task's input length
    input_tokens: dict[str, int] = field(default_factory=dict)

    @property
    def measured(self) -> dict[str, np.ndarray]:
        return {m: self.rows[m].to_numpy(float) for m in METRICS}

    @property
    def dense(self) -> np.ndarray:
        return (self.rows["arch"] == "dense").to_numpy()

    def devices(self, constants: DeviceConstants) -> Device:
        """Per-row device arrays for ``constants``."""
        groups: dict[tuple, Device] = {}
        cols: dict[str, list] = {f: [] for f in Device.__dataclass_fields__ if f != "vf"}
        from ..catalog import get_accelerator
        vf = None
        for gpu, prec, tp in zip(self.rows["gpu"], self.rows["precision"], self.rows["tp"]):
            key = (gpu, prec, tp)
            if key not in groups:
                groups[key] = Device.from_accelerator(Accelerator(get_accelerator(gpu), constants), prec, int(tp))
            d = groups[key]
            vf = d.vf
            for f in cols:
                cols[f].append(getattr(d, f))
        return Device(**{f: np.asarray(v, float) for f, v in cols.items()}, vf=vf)

    def predict(self, constants: DeviceConstants) -> dict[str, np.ndarray]:
        dev = self.devices(constants)
        s = combine(self.rows["batch"].to_numpy(float), self.rows["avg_output_len"].to_numpy(float),
                    evaluate(self.dec, dev), evaluate(self.pre, dev))
        return {"energy_per_token_j": np.asarray(s.energy_per_output_token_j),
                "output_throughput_tok_s": np.asarray(s.output_tokens_per_s),
                "avg_power_w_total": np.asarray(s.avg_power_w),
                "itl_ms": 1e3 * np.asarray(s.itl_s)}


def load_problem(path: str | Path, *, input_tokens: Mapping[str, int] | None = None,
                 gpu_model: str = "H100", ep_attention_dp: bool = False) -> MLEnergyProblem:
    """Read the table, map rows to catalog models and precompute their work.

    ``ep_attention_dp``: read expert-parallel rows as data-parallel attention + EP (all-to-all)
    instead of tensor-parallel attention + EP (module docstring)."""
    from ..catalog import get_model
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path=path, expected="the ML.ENERGY v3 configuration CSV")
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a user input problem
        raise InputError(f"cannot read CSV: {exc}", path=path) from exc
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise InputError(f"missing columns {missing}", path=path, line=1, expected=", ".join(REQUIRED))
    tasks = dict(TASK_INPUT_TOKENS)
    tasks.update({k: int(v) for k, v in (input_tokens or {}).items()})
    skipped: dict[str, int] = {}

    def skip(reason):
        skipped[reason] = skipped.get(reason, 0) + 1

    keep, dec, pre = [], [], []
    for i, r in df.iterrows():
        if r["gpu_model"] != gpu_model:
            skip(f"gpu {r['gpu_model']}")
            continue
        if r["task"] not in tasks:
            skip(f"task {r['task']} (not modelled)")
            continue
        try:
            m = get_model(str(r["model_id"]))
        except CatalogError:
            skip("model not in catalog")
            continue
        try:
            prec = normalize_precision(str(r["weight_precision"]))
        except ConfigurationError as exc:
            raise InputError(f"unknown weight_precision {r['weight_precision']!r}", path=path, line=int(i) + 2,
                             column="weight_precision", expected=valid_precisions()) from exc
        for c in ("num_gpus", "avg_batch_size", "avg_output_len", "avg_power_w_total", "energy_per_token_j",
                  "output_throughput_tok_s"):
            v = r[c]
            if not (isinstance(v, (int, float, np.integer, np.floating)) and np.isfinite(v) and v > 0):
                raise InputError(f"{c} must be a positive number, got {fmt_value(v)}", path=path, line=int(i) + 2, column=c)
        tp = int(r["tensor_parallel"])
        ep_flag = int(r.get("expert_parallel", 1) or 1) > 1
        if tp == 1 and int(r["num_gpus"]) > 1:
            # vLLM --enable-expert-parallel without data parallelism: attention TP over all GPUs,
            # experts split over the same GPUs (EP size = TP size), outputs all-reduced
            tp = int(r["num_gpus"])
        b = max(1, int(round(float(r["avg_batch_size"]))))
        n_in = int(tasks[r["task"]])
        n_out = float(r["avg_output_len"])
        try:
            # the same works as fleet.frontier.steady.steady_works on make_replica(..., tp, ep=tp)
            dw, pw = serving_works(m.name, b, n_in, n_out, prec, None, tp, ep_flag, ep_attention_dp)
        except ConfigurationError:
            skip("configuration not modelled")
            continue
        row = r.to_dict()
        row.update(model=m.name, arch=str(m.architecture), precision=prec, tp=tp, batch=b, gpu=gpu_model,
                   input_tokens=n_in, ep=ep_flag, line=int(i) + 2)
        keep.append(row)
        dec.append(dw)
        pre.append(pw)
    if not keep:
        raise InputError("no usable rows (unknown models or tasks only)", path=path)
    rows = pd.DataFrame(keep).reset_index(drop=True)
    return MLEnergyProblem(path=path, rows=rows, skipped=skipped, dec=WorkArrays.stack(dec),
                           pre=WorkArrays.stack(pre), input_tokens=tasks)


def _summaries(prob: MLEnergyProblem, pred: dict, mask_base) -> dict:
    meas = prob.measured
    out = {"overall": error_summary(pred, meas, mask_base)}
    for task in sorted(prob.rows["task"].unique()):
        m = mask_base & (prob.rows["task"] == task).to_numpy()
        if m.any():
            out[task] = error_summary(pred, meas, m)
    return out


def holdout_mask(prob: MLEnergyProblem, holdout_models: tuple[str, ...]) -> np.ndarray:
    return prob.rows["model"].isin(holdout_models).to_numpy()


#: models held out of the fit to show that the calibration generalises (one per size class)
DEFAULT_HOLDOUT = ("qwen3-14b", "llama-3.3-70b")

#: MoE-only constants, fitted on the MoE rows AFTER the dense fit (they do not touch dense rows):
#: the grouped-GEMM expert-weight stream fraction per weight format.
MOE_FIT_PARAMS: tuple[str, ...] = (
    "moe.weight_stream_fraction.bf16",
    "moe.weight_stream_fraction.fp8",
    "moe.weight_stream_fraction.fp4",
)

#: MoE models held out of the MoE fit (one per weight format; each format keeps another model)
MOE_HOLDOUT = ("llama-4-maverick", "qwen3-coder-30b-a3b", "gpt-oss-20b")


def _merge_fits(a, b):
    from ..hardware.calibrate import FitResult
    return FitResult(values={**a.values, **b.values}, start={**a.start, **b.start}, cost=a.cost + b.cost,
                     nfev=a.nfev + b.nfev, success=a.success and b.success,
                     message=f"{a.message}; {b.message}", at_bound=a.at_bound + b.at_bound)


def calibrate(prob: MLEnergyProblem, *, params=DEFAULT_FIT_PARAMS, base: DeviceConstants | None = None,
              holdout: tuple[str, ...] = DEFAULT_HOLDOUT, moe_params=MOE_FIT_PARAMS,
              moe_holdout: tuple[str, ...] = MOE_HOLDOUT) -> dict:
    """Fit on the dense rows (all of them, and separately without the held-out models) and report
    median / p90 absolute percentage errors before and after, per task and overall; MoE apart.

    Then, starting from the dense-fitted constants, fit the MoE-only constants (``moe_params``,
    which no dense row depends on) on the MoE rows, and again without ``moe_holdout`` to show
    that they carry over to MoE models outside the fit."""
    base = base or load_device_constants(False)
    meas = prob.measured
    dense = prob.dense
    fit_metrics = ("energy_per_token_j", "output_throughput_tok_s")
    fit_d = fit_constants(prob.predict, meas, base, params, metrics=fit_metrics, mask=dense)
    moe = ~dense
    moe_params = tuple(p for p in moe_params if base.get(p) is not None)
    if moe.any() and moe_params:
        fit_m = fit_constants(prob.predict, meas, fit_d.constants(base), moe_params, metrics=fit_metrics,
                              mask=moe)
        fit = _merge_fits(fit_d, fit_m)
    else:
        fit_m, fit = None, fit_d
    cal = fit.constants(base)
    p0, p1 = prob.predict(base), prob.predict(cal)
    ho = holdout_mask(prob, holdout) & dense
    report = {
        "data": str(prob.path),
        "rows_used": int(len(prob.rows)), "dense_rows": int(dense.sum()), "moe_rows": int((~dense).sum()),
        "skipped": prob.skipped,
        "input_tokens_assumed": prob.input_tokens,
        "fitted": {k: {"value": v, "physical": fit.start[k], "unit": base.constant(k).unit,
                       "range": [base.constant(k).lo, base.constant(k).hi]} for k, v in fit.values.items()},
        "fit": {"cost": fit.cost, "nfev": fit.nfev, "success": fit.success, "at_bound": fit.at_bound},
        "uncalibrated": {"dense": _summaries(prob, p0, dense), "moe": _summaries(prob, p0, ~dense)},
        "calibrated": {"dense": _summaries(prob, p1, dense), "moe": _summaries(prob, p1, ~dense)},
    }
    if ho.any() and (dense & ~ho).any():
        fit_h = fit_constants(prob.predict, meas, base, params, metrics=fit_metrics, mask=dense & ~ho)
        ph = prob.predict(fit_h.constants(base))
        report["holdout"] = {
            "models": list(holdout), "rows": int(ho.sum()),
            "fitted_without_them": fit_h.values,
            "errors_on_heldout": error_summary(ph, meas, ho),
            "uncalibrated_on_heldout": error_summary(p0, meas, ho),
        }
    mho = holdout_mask(prob, moe_holdout) & moe
    if fit_m is not None and mho.any() and (moe & ~mho).any():
        dense_only = fit_d.constants(base)
        fit_mh = fit_constants(prob.predict, meas, dense_only, moe_params, metrics=fit_metrics, mask=moe & ~mho)
        report["moe_holdout"] = {
            "models": list(moe_holdout), "rows": int(mho.sum()),
            "fitted_without_them": fit_mh.values,
            "errors_on_heldout": error_summary(prob.predict(fit_mh.constants(dense_only)), meas, mho),
            "dense_fit_only_on_heldout": error_summary(prob.predict(dense_only), meas, mho),
        }
    report["_fit"] = fit
    return report
