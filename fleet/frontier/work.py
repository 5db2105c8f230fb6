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
                tp: int) -> WorkArrays:
    """One decode iteration of ``batch`` sequences holding ``total_context`` KV tokens together."""
    m = _get_model(model_name)
    cost = _llm().decode_cost(m, int(batch), float(total_context), precision=precision,
                              kv_precision=kv_precision, tp=int(tp))
    return WorkArrays.from_cost(cost, steps=1.0, layers=float(m.layers), seqs=float(batch))


@lru_cache(maxsize=50_000)
def prefill_work(model_name: str, n_tokens: int, precision: str, kv_precision: str, tp: int,
                 context_tokens: int = 0) -> WorkArrays:
    """Prefill of one request of ``n_tokens`` new prompt tokens (after ``context_tokens`` cached)."""
    m = _get_model(model_name)
    cost = _llm().prefill_cost(m, int(n_tokens), context_tokens=int(context_tokens), precision=precision,
                               kv_precision=kv_precision, tp=int(tp))
    return WorkArrays.from_cost(cost, steps=1.0, layers=float(m.layers), seqs=1.0)


def decode_grid(model_name: str, batches, contexts_per_seq, precision: str, kv_precision: str,
                tp: int) -> WorkArrays:
    """WorkArrays of shape (len(batches), len(contexts)) for per-sequence contexts."""
    rows = []
    for b in batches:
        rows.append([decode_work(model_name, int(b), float(c) * int(b), precision, kv_precision, tp)
                     for c in contexts_per_seq])
    fields = WorkArrays.__dataclass_fields__
    return WorkArrays(**{f: np.array([[np.asarray(getattr(w, f), float) for w in r] for r in rows])
                         for f in fields})
