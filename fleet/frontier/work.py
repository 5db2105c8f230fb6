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
