"""Adapters from the LLM work model (:mod:`fleet.workload.llm`) to the energy model's arrays.

The workload layer counts FLOPs and bytes; the hardware layer turns them into time and energy.
This module is the only place where the two meet, so a change of either side's conventions is
fixed here once.  Contexts are TOTAL KV tokens over the running batch (the convention of
:class:`~fleet.frontier.profile.ServingProfile`).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from ..hardware.energy import WorkArrays


def _llm():
    from ..workload import llm
    return llm


def _get_model(model):
    if hasattr(model, "layers"):
        return model
    from ..catalog import get_model
    return get_model(str(model))


@lru_cache(maxsize=200_000)
def decode_work(model_name: str, batch: int, total_context: float, precision: str, kv_precision: str,
                tp: int, expert_parallel: bool = False, attention_dp: bool = False) -> WorkArrays:
    """One decode iteration of ``batch`` sequences holding ``total_context`` KV tokens together
    (``expert_parallel``: MoE experts split over the ``tp`` GPUs; ``attention_dp``: with
    data-parallel attention over them instead of tensor-parallel attention)."""
    m = _get_model(model_name)
    llm = _llm()
    cost = llm.decode_cost(m, int(batch), float(total_context), precision=precision,
                           kv_precision=kv_precision, tp=int(tp), expert_parallel=bool(expert_parallel),
                           attention_dp=bool(attention_dp))
    return WorkArrays.from_cost(cost, steps=1.0, layers=float(m.layers), seqs=float(batch),
                                moe_layers=float(llm.architecture(m).n_moe_layers))


@lru_cache(maxsize=50_000)
def prefill_work(model_name: str, n_tokens: int, precision: str, kv_precision: str, tp: int,
                 context_tokens: int = 0, expert_parallel: bool = False,
                 attention_dp: bool = False) -> WorkArrays:
    """Prefill of one request of ``n_tokens`` new prompt tokens (after ``context_tokens`` cached;
    ``expert_parallel`` as in :func:`decode_work`)."""
    m = _get_model(model_name)
    llm = _llm()
    cost = llm.prefill_cost(m, int(n_tokens), context_tokens=int(context_tokens), precision=precision,
                            kv_precision=kv_precision, tp=int(tp), expert_parallel=bool(expert_parallel),
                           attention_dp=bool(attention_dp))
    return WorkArrays.from_cost(cost, steps=1.0, layers=float(m.layers), seqs=1.0,
                                moe_layers=float(llm.architecture(m).n_moe_layers))


@lru_cache(maxsize=50_000)
def prefill_share_work(model_name: str, n_tokens: int, n_requests: int, precision: str, kv_precision: str,
                       tp: int, expert_parallel: bool = False, attention_dp: bool = False) -> WorkArrays:
    """One request's share of a prefill pass over ``n_requests`` prompts of ``n_tokens`` each (an
    engine that batches prompts, e.g. TensorRT-LLM up to ``max_num_tokens``): the pass's work
    divided by ``n_requests``, so the weight stream, the collectives and the step overhead are
    shared.  ``n_requests == 1`` is :func:`prefill_work`."""
    import dataclasses

    k = max(1, int(n_requests))
    if k == 1:
        return prefill_work(model_name, n_tokens, precision, kv_precision, tp, 0, expert_parallel, attention_dp)
    m = _get_model(model_name)
    llm = _llm()
    n = int(n_tokens)
    cost = llm.prefill_cost(m, k * n, tokens_sq=float(k) * n * n, n_requests=k, precision=precision,
                            kv_precision=kv_precision, tp=int(tp), expert_parallel=bool(expert_parallel),
                            attention_dp=bool(attention_dp))
    w = WorkArrays.from_cost(cost, steps=1.0 / k, layers=float(m.layers), seqs=1.0,
                             moe_layers=float(llm.architecture(m).n_moe_layers))
    return dataclasses.replace(w, **{f: float(getattr(w, f)) / k for f in (
        "flops", "lin_bytes", "kv_bytes", "comm_bytes", "comm_messages", "expert_bytes", "expert_skew_bytes")})


def decode_grid(model_name: str, batches, contexts_per_seq, precision: str, kv_precision: str,
                tp: int, expert_parallel: bool = False) -> WorkArrays:
    """WorkArrays of shape (len(batches), len(contexts)) for per-sequence contexts
    (``expert_parallel`` as in :func:`decode_work`, tensor-parallel attention)."""
    rows = []
    for b in batches:
        rows.append([decode_work(model_name, int(b), float(c) * int(b), precision, kv_precision, tp,
                                 bool(expert_parallel))
                     for c in contexts_per_seq])
    fields = WorkArrays.__dataclass_fields__
    return WorkArrays(**{f: np.array([[np.asarray(getattr(w, f), float) for w in r] for r in rows])
                         for f in fields})
