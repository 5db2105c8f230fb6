"""Predict published serving measurements under a serving stack, and fit a stack's parameters.

Two kinds of published rows (the rows themselves, with their citations, live with the benchmark
and tests, ``tests/_stack_rows.py``; the stack parameters fitted on them go into
``fleet/catalog/serving_stacks.yaml`` with the fit's provenance):

* :class:`ThroughputRow`: an offline maximum-throughput run (TensorRT-LLM ``trtllm-bench
  throughput``: every request queued at once, fixed input and output lengths).  Predicted as the
  steady state (:mod:`fleet.frontier.steady`) at the largest running batch the KV cache holds at
  steady-state occupancy, up to the engine's batch limit.  Also reported: the decode step time
  (inter-token latency) and one prompt's prefill time at that batch.
* :class:`StepRow`: a profiled step (the Splitwise profiles of vLLM): the time of one prefill of
  ``batch`` prompts of ``prompt_tokens`` each (one forward pass, weights read once), the mean
  decode step time of ``batch`` sequences generating ``output_tokens`` after such a prompt
  (context ``prompt + output/2`` per sequence), and where measured the mean power per GPU over
  the request (prefill + decode) as a share of TDP.

The fit (:func:`fit_stack`) is a bounded least-squares fit of log residuals inside each
parameter's range in ``serving_stacks.yaml``, like :mod:`fleet.hardware.calibrate`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Mapping, Sequence

import numpy as np

from ..catalog.device_energy import DeviceConstants, load_device_constants
from ..catalog.serving_stack import ServingStack, get_serving_stack
from ..hardware.accelerator import build_accelerator
from ..hardware.calibrate import abs_pct_error
from ..hardware.energy import Device, WorkArrays, evaluate
from .steady import combine, serving_works, steady_max_batch
from .work import _get_model, _llm


@dataclass(frozen=True)
class ThroughputRow:
    """A published offline-throughput measurement (output tokens/s of the whole replica)."""

    model: str
    gpu: str
    tp: int
    precision: str
    kv_precision: str
    input_tokens: int
    output_tokens: int
    tokens_per_s: float
    max_batch: int = 2048
    source: str = ""


@dataclass(frozen=True)
class StepRow:
    """A published step profile: prefill and decode step times (ms), power share of TDP or None."""

    model: str
    gpu: str
    tp: int
    precision: str
    prompt_tokens: int
    batch: int
    output_tokens: int
    prompt_ms: float
    token_ms: float
    power_share_of_tdp: float | None = None
    source: str = ""


@lru_cache(maxsize=4096)
def _kv_capacity(model: str, gpu: str, tp: int, precision: str, kv_precision: str) -> int:
    acc = build_accelerator(gpu)
    plan = _llm().memory_plan(_get_model(model), acc.memory_bytes, tp, precision=precision,
                              kv_precision=kv_precision, gpu_name=acc.name)
    return int(plan.kv_capacity_tokens) if plan.fits else 0


def throughput_batch(row: ThroughputRow) -> int:
    """The running batch of an offline run: the largest that fits the KV cache at steady-state
    occupancy (``I + O/2`` per sequence), at most ``row.max_batch``."""
    cap = _kv_capacity(row.model, row.gpu, row.tp, row.precision, row.kv_precision)
    return max(0, min(int(row.max_batch), steady_max_batch(cap, row.input_tokens, row.output_tokens)))


@lru_cache(maxsize=4096)
def _throughput_works(row: ThroughputRow, prefill_tokens: float = 0.0):
    b = throughput_batch(row)
    if b < 1:
        raise ValueError(f"{row.model} at {row.precision} does not fit {row.tp} x {row.gpu} for "
                         f"{row.input_tokens}/{row.output_tokens}")
    dw, pw = serving_works(_get_model(row.model).name, b, row.input_tokens, row.output_tokens, row.precision,
                           row.kv_precision, row.tp, prefill_batch_tokens=prefill_tokens)
    return b, dw, pw


@lru_cache(maxsize=4096)
def _step_works(row: StepRow):
    m = _get_model(row.model)
    llm = _llm()
    b, p = int(row.batch), int(row.prompt_tokens)
    # one forward pass over b prompts of p tokens: weights read once, the rest per prompt
    cost = llm.prefill_cost(m, b * p, tokens_sq=float(b * p * p), n_requests=b, precision=row.precision,
                            tp=row.tp)
    pre = WorkArrays.from_cost(cost, steps=1.0, layers=float(m.layers), seqs=float(b),
                               moe_layers=float(llm.architecture(m).n_moe_layers))
    ctx = b * (p + 0.5 * row.output_tokens)
    dec = llm.decode_cost(m, b, float(ctx), precision=row.precision, tp=row.tp)
    dec = WorkArrays.from_cost(dec, steps=1.0, layers=float(m.layers), seqs=float(b),
                               moe_layers=float(llm.architecture(m).n_moe_layers))
    return pre, dec


def _devices(gpu: str, precision: str, tp: int, values: Mapping[str, float], constants: DeviceConstants):
    acc = build_accelerator(gpu, constants=constants)
    return (Device.from_accelerator(acc, precision, tp, values, "decode"),
            Device.from_accelerator(acc, precision, tp, values, "prefill"), acc)


def predict_throughput(rows: Sequence[ThroughputRow], values: Mapping[str, float],
                       constants: DeviceConstants) -> dict[str, np.ndarray]:
    """Per row: predicted output tokens/s, running batch, decode step time (s), one prompt's
    prefill time (s) and mean power per GPU (W)."""
    out: dict[str, list[float]] = {k: [] for k in ("tokens_per_s", "batch", "itl_s", "prefill_s",
                                                   "power_w_per_gpu")}
    for r in rows:
        b, dw, pw = _throughput_works(r, float(values["batching.prefill_tokens"]))
        dd, pd_, _ = _devices(r.gpu, r.precision, r.tp, values, constants)
        s = combine(b, r.output_tokens, evaluate(dw, dd), evaluate(pw, pd_))
        out["tokens_per_s"].append(float(np.asarray(s.output_tokens_per_s)))
        out["batch"].append(b)
        out["itl_s"].append(float(np.asarray(s.decode.time_s)))
        out["prefill_s"].append(float(np.asarray(s.prefill.time_s)))
        out["power_w_per_gpu"].append(float(np.asarray(s.avg_power_w)) / r.tp)
    return {k: np.asarray(v, float) for k, v in out.items()}


def predict_steps(rows: Sequence[StepRow], values: Mapping[str, float],
                  constants: DeviceConstants) -> dict[str, np.ndarray]:
    """Per row: predicted prefill time (ms), decode step time (ms) and mean power per GPU over
    the request as a share of TDP."""
    pm, tm, ps = [], [], []
    for r in rows:
        pre, dec = _step_works(r)
        dd, pd_, acc = _devices(r.gpu, r.precision, r.tp, values, constants)
        ep, ed = evaluate(pre, pd_), evaluate(dec, dd)
        tp_, td = float(np.asarray(ep.time_s)), float(np.asarray(ed.time_s))
        pm.append(1e3 * tp_)
        tm.append(1e3 * td)
        e = float(np.asarray(ep.energy_j)) + r.output_tokens * float(np.asarray(ed.energy_j))
        ps.append(e / (tp_ + r.output_tokens * td) / r.tp / acc.tdp_w)
    return {"prompt_ms": np.asarray(pm), "token_ms": np.asarray(tm), "power_share_of_tdp": np.asarray(ps)}


def measured_steps(rows: Sequence[StepRow]) -> dict[str, np.ndarray]:
    return {"prompt_ms": np.array([r.prompt_ms for r in rows], float),
            "token_ms": np.array([r.token_ms for r in rows], float),
            "power_share_of_tdp": np.array([np.nan if r.power_share_of_tdp is None else r.power_share_of_tdp
                                            for r in rows], float)}


@dataclass
class StackFit:
    values: dict[str, float]          # fitted parameter -> value
    cost: float
    nfev: int
    success: bool
    at_bound: list[str]


def fit_stack(stack: ServingStack | str, params: Sequence[str], *, throughput: Sequence[ThroughputRow] = (),
              steps: Sequence[StepRow] = (), constants: DeviceConstants | None = None,
              power_weight: float = 1.0, max_nfev: int = 200) -> StackFit:
    """Fit ``params`` of ``stack`` (within their ranges) to published rows (log residuals):
    throughput rows on tokens/s, step rows on prefill and decode times and, where measured,
    power (weighted by ``power_weight``)."""
    from scipy.optimize import least_squares

    st = get_serving_stack(stack) if isinstance(stack, str) else stack
    consts = constants or load_device_constants(True)
    base = st.values(consts)
    ps = [st.param(p) for p in params]
    lo = np.array([p.lo for p in ps])
    hi = np.array([p.hi for p in ps])
    x0 = np.array([(np.clip(base[p.name], p.lo, p.hi) - p.lo) / (p.hi - p.lo) for p in ps])
    meas_t = np.log([r.tokens_per_s for r in throughput]) if throughput else np.zeros(0)
    ms = measured_steps(steps) if steps else None

    def values_of(z):
        v = dict(base)
        v.update({p.name: float(lo[i] + np.clip(z[i], 0, 1) * (hi[i] - lo[i])) for i, p in enumerate(ps)})
        return v

    def resid(z):
        v = values_of(z)
        parts = []
        if throughput:
            parts.append(np.log(predict_throughput(throughput, v, consts)["tokens_per_s"]) - meas_t)
        if steps:
            pr = predict_steps(steps, v, consts)
            parts.append(np.log(pr["prompt_ms"] / ms["prompt_ms"]))
            parts.append(np.log(pr["token_ms"] / ms["token_ms"]))
            ok = np.isfinite(ms["power_share_of_tdp"])
            if ok.any():
                parts.append(power_weight * np.log(pr["power_share_of_tdp"][ok] / ms["power_share_of_tdp"][ok]))
        return np.concatenate(parts)

    res = least_squares(resid, x0, bounds=(np.zeros_like(x0), np.ones_like(x0)), diff_step=1e-3,
                        max_nfev=max_nfev, method="trf")
    vals = {p.name: values_of(res.x)[p.name] for p in ps}
    at_bound = [p.name for i, p in enumerate(ps) if res.x[i] < 1e-3 or res.x[i] > 1 - 1e-3]
    return StackFit(vals, float(res.cost), int(res.nfev), bool(res.success), at_bound)


def median_ape(pred, meas) -> float:
    """Median absolute percentage error (NaN measurements ignored)."""
    e = abs_pct_error(pred, meas)
    e = e[np.isfinite(e)]
    return float(np.median(e)) if e.size else float("nan")
