"""Steady-state serving with continuous batching: what `fleet estimate` and calibration report.

``B`` requests run concurrently; each has ``I`` prompt tokens and ``O`` output tokens.  Every
decode iteration emits one token per running sequence, so on average ``B / O`` requests finish
per iteration and as many new ones are prefilled (the prefill is amortised into the decode
stream, as vLLM's continuous batching does).  The average sequence holds ``I + O/2`` tokens of
KV cache, so one iteration sees ``C = B (I + O/2)`` context tokens in total.  Per iteration::

    t_iter = t_decode(B, C) + (B / O) * t_prefill(I)
    E_iter = E_decode(B, C) + (B / O) * E_prefill(I)

and energy per output token = ``E_iter / B`` (prefill included, as the ML.ENERGY Benchmark
counts it), throughput = ``B / t_iter``, average power = ``E_iter / t_iter``, mean inter-token
latency = ``t_iter``, time to first token = ``t_prefill(I) + t_iter`` (the prompt, then the
iteration that emits its first token).

KV-cache limit (steady-state occupancy).  In steady state the running sequences are spread evenly
over their decode, so the cache holds on average ``I + O/2`` tokens per sequence, not the final
``I + O``.  The largest running batch that fits is therefore::

    B_kv = floor(kv_capacity_tokens * (1 - KV_WATERMARK) / (I + O/2))

(``KV_WATERMARK``: vLLM's 1 % block watermark, the same constant the simulation's admission rule
uses, :mod:`fleet.sim.replica`).  vLLM's ``--max-num-seqs N`` is an upper bound, not a demand:
the scheduler runs ``min(N, B_kv)`` sequences (:func:`effective_batch`).  A single request must
still fit at its full length ``I + O`` (the simulation drops it otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..hardware.energy import Evaluation, WorkArrays, evaluate
from .build import Replica, _cap_args
from .work import decode_work, prefill_share_work


#: vLLM's default KV-cache block watermark (``watermark=0.01``): the fraction of the cache kept free
#: when admitting (vllm/core/block_manager.py, v0).  The simulation (fleet.sim.replica) imports it.
KV_WATERMARK = 0.01


def steady_kv_tokens_per_seq(input_tokens: float, output_tokens: float) -> float:
    """Mean KV tokens one running sequence holds in steady state: ``I + O/2`` (tokens)."""
    return float(input_tokens) + 0.5 * float(output_tokens)


def steady_max_batch(kv_capacity_tokens: int, input_tokens: float, output_tokens: float) -> int:
    """Largest running batch whose steady-state KV occupancy fits the cache (see module doc);
    0 when one request does not fit at its full length ``I + O``."""
    cap = int(kv_capacity_tokens)
    if float(input_tokens) + float(output_tokens) > cap:
        return 0
    usable = cap * (1.0 - KV_WATERMARK)
    return max(1, int(usable // steady_kv_tokens_per_seq(input_tokens, output_tokens)))


def effective_batch(kv_capacity_tokens: int, input_tokens: float, output_tokens: float,
                    max_num_seqs: int) -> tuple[int, str]:
    """vLLM's meaning of a batch limit: the running batch is ``min(max_num_seqs, B_kv)``.
    Returns (batch, what limits it: ``"max_num_seqs"`` or ``"kv_cache"``); batch 0 when one
    request does not fit at all."""
    b_kv = steady_max_batch(kv_capacity_tokens, input_tokens, output_tokens)
    if int(max_num_seqs) <= b_kv:
        return int(max_num_seqs), "max_num_seqs"
    return b_kv, "kv_cache"


@dataclass(frozen=True)
class SteadyState:
    """Steady-state serving figures (arrays broadcast over whatever was stacked; SI units)."""

    batch: Any
    energy_per_output_token_j: Any
    output_tokens_per_s: Any
    avg_power_w: Any
    itl_s: Any
    ttft_s: Any
    breakdown_j: dict            # per output token: compute, memory, interconnect, static
    clock_fraction: Any
    decode: Evaluation
    prefill: Evaluation


def prefill_requests_per_pass(batch: float, input_tokens: float, output_tokens: float,
                              prefill_batch_tokens: float) -> int:
    """Prompts one prefill pass holds: ``floor(prefill_batch_tokens / I)`` (at least 1), at most
    the prompts that arrive per decode iteration rounded up (``ceil(B / O)``); 1 when the engine
    prefills one prompt per pass (``prefill_batch_tokens`` 0, the reference stack)."""
    if not prefill_batch_tokens or prefill_batch_tokens <= input_tokens:
        return 1
    per_iter = max(1, int(np.ceil(float(batch) / max(float(output_tokens), 1.0))))
    return int(max(1, min(int(float(prefill_batch_tokens) // max(float(input_tokens), 1.0)), per_iter)))


def serving_works(model_name: str, batch: float, input_tokens: float, output_tokens: float, precision: str,
                  kv_precision: str | None, tp: int, expert_parallel: bool = False,
                  attention_dp: bool = False, prefill_batch_tokens: float = 0.0) -> tuple[WorkArrays, WorkArrays]:
    """(decode iteration work, one request's prefill work) of the steady state: the ONE place
    that turns a deployment into work, shared by :func:`steady_works` (``fleet estimate``,
    profiles) and the ML.ENERGY calibration (:func:`fleet.frontier.mlenergy.load_problem`).

    ``expert_parallel``: MoE experts split over the ``tp`` GPUs (EP size = TP size, vLLM
    ``--enable-expert-parallel``); ``attention_dp``: with data-parallel attention instead.
    ``prefill_batch_tokens``: prompt tokens the engine prefills in one pass (a serving-stack
    parameter, :func:`prefill_requests_per_pass`); the prefill work returned is then one request's
    share of such a pass."""
    b = max(1, int(round(batch)))
    ctx = b * (float(input_tokens) + 0.5 * float(output_tokens))
    xp = bool(expert_parallel)
    dp = xp and bool(attention_dp)
    n_in = max(1, int(round(input_tokens)))
    k = prefill_requests_per_pass(b, n_in, output_tokens, prefill_batch_tokens)
    return (decode_work(model_name, b, ctx, precision, kv_precision, tp, xp, dp),
            prefill_share_work(model_name, n_in, k, precision, kv_precision, tp, xp, dp))


def steady_works(rep: Replica, batch: int, input_tokens: int, output_tokens: int) -> tuple[WorkArrays, WorkArrays]:
    """(decode iteration work, one request's prefill work) of the steady state on ``rep``
    (expert-parallel when ``rep.ep > 1``, attention tensor-parallel as the calibration reads
    the ML.ENERGY EP rows)."""
    pbt = 0.0 if rep.op is None else rep.op.resolve_stack().values(rep.acc.constants)["batching.prefill_tokens"]
    return serving_works(rep.model_name, batch, input_tokens, output_tokens, rep.precision, rep.kv_precision,
                         rep.tp, rep.ep > 1, prefill_batch_tokens=pbt)


def combine(batch, output_tokens, dec: Evaluation, pre: Evaluation) -> SteadyState:
    """Steady-state figures from evaluated decode and prefill operating points."""
    b = np.maximum(np.asarray(batch, float), 1.0)
    k = b / np.maximum(np.asarray(output_tokens, float), 1.0)      # prefills per iteration
    t = dec.time_s + k * pre.time_s
    e = dec.energy_j + k * pre.energy_j
    br = {name: (getattr(dec, f"{name}_j") + k * getattr(pre, f"{name}_j")) / b
          for name in ("compute", "memory", "interconnect", "static")}
    return SteadyState(batch=b, energy_per_output_token_j=e / b, output_tokens_per_s=b / t,
                       avg_power_w=e / t, itl_s=t, ttft_s=pre.time_s + t, breakdown_j=br,
                       clock_fraction=dec.clock_fraction, decode=dec, prefill=pre)


def steady_state(rep: Replica, batch: int, input_tokens: int, output_tokens: int, *,
                 power_cap_w: float | None = None, clock: float | None = None) -> SteadyState:
    """The direct model (no profile fit) of steady-state serving on replica ``rep``."""
    dw, pw = steady_works(rep, batch, input_tokens, output_tokens)
    kw = _cap_args(rep, power_cap_w, clock)
    return combine(max(1, int(round(batch))), output_tokens, evaluate(dw, rep.device, **kw),
                   evaluate(pw, rep.prefill_dev, **kw))
