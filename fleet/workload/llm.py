"""The LLM work model: FLOPs, HBM bytes, interconnect bytes and memory of one unit of LLM work.

Everything here is *counting*, never timing: the energy model (:mod:`fleet.hardware`) turns the
counts into time and energy with a roofline and DVFS.  A model is any object with the attributes
of :class:`fleet.catalog.ModelSpec` (``layers, hidden_size, heads, kv_heads, head_dim,
intermediate_size, experts, experts_per_token, shared_experts, moe_intermediate_size,
dense_layers, attention, kv_lora_rank, qk_rope_head_dim, sliding_window, vocab_size,
tied_embeddings`` ...; ``None`` where blank).  Optional attributes used when present:
``mlp_gated`` (default True), ``q_lora_rank`` (MLA), ``moe_layer_interval`` (default 1) and
``sliding_window_layers`` (fraction of layers with the window, default 1.0 when a window is set).

Units: FLOPs (a multiply-add counts 2), bytes (B), tokens.  All :class:`WorkCost` figures are
totals for the whole replica (all ``tp`` GPUs together).

Counting conventions (h = hidden_size, a = heads, g = kv_heads, d = head_dim, I = FFN width):

Parameters per layer
    * GQA/MHA attention: ``q: h*a*d, k,v: h*g*d each, o: a*d*h`` (biases ignored).
    * MLA (DeepSeek-V2/V3): ``q_a: h*r_q, q_b: r_q*a*(d+d_r)`` (or ``h*a*(d+d_r)`` without
      ``q_lora_rank``), ``kv_a: h*(r_kv+d_r)``, ``kv_b: r_kv*a*2d`` (K-nope and V, with
      ``d = qk_nope_head_dim = v_head_dim``), ``o: a*d*h``; norms on the two latents.
    * FFN: gated (SwiGLU) ``3*h*I``, plain ``2*h*I``.  MoE layer: ``E`` routed experts of width
      ``moe_intermediate_size`` (``intermediate_size`` if blank), ``shared_experts`` always-active
      experts of the same width, router ``h*E``.  The first ``dense_layers`` layers are dense;
      after them every ``moe_layer_interval``-th layer is MoE, the rest dense.
    * Two RMSNorms of ``h`` per layer, one final norm.
    * Embedding ``V*h``; LM head ``V*h`` unless tied (then counted once in the totals).

FLOPs
    * Linear layers: ``2 * active_linear_params`` per token processed, where active linear params
      are attention + dense FFN + (router + k routed + shared experts) + the LM head matrix
      (``V*h``, tied or not).  The input-embedding lookup is a gather: no FLOPs.
    * LM head: only for tokens whose logits are needed: every token in decode, the *last* token
      of each prompt in prefill (what vLLM does).
    * Attention core per (query, key) pair and layer: GQA/MHA ``2*a*d`` (scores) ``+ 2*a*d``
      (values) ``= 4*a*d``; MLA prefill (expanded form) ``2*a*(d+d_r) + 2*a*d``; MLA decode
      (absorbed form, DeepSeek-V2 sec. 2.1.3: W_UK folded into the query, W_UV into the output)
      ``2*a*(r_kv+d_r) + 2*a*r_kv``.  The absorbed form's extra per-token projections (``2*a*d*r_kv``
      each way) equal ``2 * kv_b`` params, so the linear count is the same in both forms.
      MLA prefill on a cached prefix re-expands the cached latents through ``kv_b``:
      ``2 * kv_b_params * context_tokens`` per layer.
    * Pairs per layer: decode ``context_tokens`` (total over the batch); prefill, causal,
      ``(tokens_sq + n)/2 + context_tokens * tokens_sq / n`` (the cross term is
      ``sum_r L_r * C_r``, exact for one request and for prefixes proportional to prompt length).
      Sliding-window layers cap each query at ``W`` keys: decode ``min(C, batch*W)``, prefill
      ``min(pairs, n*W - R*W(W-1)/2)`` for ``R`` requests when ``n > R*W``, else uncapped
      (exact for one request, and for requests all at least ``W`` long; a cached prefix is
      ignored on those layers).
    * Norms, softmax, activation functions and the router's top-k are not counted (< 1%).

HBM bytes
    * Weights: read once per forward pass (per decode iteration, per prefill step); for a MoE
      layer only the experts the step's tokens touch: with uniform routing the expected number of
      distinct experts hit by ``T`` tokens is ``E * (1 - (1 - k/E)**T)`` (``k`` at ``T=1``,
      ``-> E`` for large ``T``).  The embedding reads only the ``T`` looked-up rows.
    * KV cache: decode reads every cached token of every sequence once per iteration (sliding
      layers at most ``W`` per sequence) and writes one token per sequence; prefill writes
      ``n`` tokens and reads K/V once per 128-query flash-attention tile (``pairs/128`` tokens,
      at least ``context + n``).  Under TP the KV cache is replicated when ``tp > kv_heads``
      (GQA: factor ``tp/kv_heads``) and, for MLA, on every rank (factor ``tp``; vLLM stores the
      whole latent on each rank).
    * Activations: each op reads its inputs and writes its outputs once (norms, residual adds,
      projections, attention output, FFN); logits: ``V * (2 + 2 + 4 + 4)`` bytes per sampled
      token (bf16 write/read, fp32 write/read for sampling).

Interconnect (TP, Megatron style): per layer two all-reduces of ``T*h*act_bytes`` plus one
for the vocab-parallel embedding; ring all-reduce puts ``2(tp-1)/tp * M`` on the link per GPU,
i.e. ``2(tp-1) * M`` for the replica.  Logits are gathered to rank 0: ``(tp-1)/tp * T_out*V*act``.
``comm_messages`` counts the collectives of one forward pass (``2L + 2``), all on the critical
path.  K/V projection weights replicated when ``tp > kv_heads`` are not added to the weight reads.

Expert parallelism (``expert_parallel=True``, MoE only; EP size = the replica's ``tp`` GPUs)
    * Attention tensor-parallel (vLLM ``-tp N --enable-expert-parallel``, no DP): traffic as TP
      (tokens are replicated after the attention all-reduce, each rank runs its local experts on
      them, the MoE output is all-reduced), but each rank holds ``E/ep`` whole experts instead of
      a 1/tp slice of each, so the step waits for the rank whose experts the step's tokens hit
      most: :func:`ep_expert_load` (binomial mean + expected maximum over ranks).  The excess is
      ``WorkCost.expert_skew_bytes`` (time only; the waiting ranks idle).
    * Data-parallel attention (``attention_dp=True``; vLLM ``-dp N --enable-expert-parallel``,
      DeepSeek-V3 style): non-routed weights are read by every rank, KV is not replicated, and
      each MoE layer has a dispatch and a combine all-to-all: ``2 * T * h * act_bytes *
      (ep-1)/ep`` bytes and 2 messages per MoE layer (:func:`ep_all_to_all_bytes`); no attention
      all-reduce.
    * ``WorkCost.expert_bytes``: the routed-expert weight bytes, which the energy model streams at
      the grouped-GEMM efficiency (``moe.weight_stream_fraction.<format>``).

Precision: FLOPs do not depend on precision; bytes do.  A sub-16-bit weight precision applies to
the transformer's linear layers; embeddings, LM head, norms and routers stay in the activation
dtype (what FP8/INT8/INT4 checkpoints for vLLM do).  ``mxfp4`` on a MoE model quantizes only
the routed experts (the published gpt-oss checkpoints).  Activations are bf16 (fp32 for fp32
models).  ``kv_precision=None`` means the activation dtype (vLLM's ``kv_cache_dtype="auto"``).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any

from fleet.catalog.precision import PRECISION_BYTES as _PRECISION_BYTES
from fleet.catalog.precision import activation_precision, normalize_precision
from fleet.catalog.precision import precision_bytes as _precision_bytes
from fleet.errors import ConfigurationError

PRECISION_BYTES: dict[str, float] = _PRECISION_BYTES
"""Bytes per element of each storage precision: the one vocabulary's table
(:data:`fleet.catalog.precision.PRECISION_BYTES`; mxfp4 = 4-bit values plus one 8-bit scale per
32 values = 4.25 bit; fp6 as in ZeroQuant(4+2)/FP6-LLM; int2 as in KIVI's 2-bit KV)."""

FLASH_TILE_Q = 128
"""Query rows per flash-attention tile; K/V are re-read once per tile in prefill."""

PROFILE_TOKENS = 8192
"""Tokens of vLLM's memory-profiling forward pass (max_num_batched_tokens default)."""

PROFILE_SEQS = 256
"""Sequences whose logits vLLM's profiling pass samples (max_num_seqs default)."""

RUNTIME_OVERHEAD_BYTES = 0.5e9
"""Per-GPU memory for CUDA graphs, NCCL and cuBLAS workspaces (modelled, order of magnitude of
what vLLM logs for CUDA-graph capture)."""

KV_BLOCK_TOKENS = 16
"""vLLM paged-attention block size: a sequence occupies whole blocks."""


# --------------------------------------------------------------------------- precision helpers
def precision_bytes(precision: str) -> float:
    """Bytes per element of a precision name or alias; ConfigurationError if unknown."""
    return _precision_bytes(precision)


def _norm_precision(precision: str) -> str:
    return normalize_precision(precision)


def _kv_prec(precision: str, kv_precision: str | None) -> str:
    return activation_precision(precision) if kv_precision is None else _norm_precision(kv_precision)


def _check_tp(tp: int) -> int:
    if not isinstance(tp, int) or isinstance(tp, bool) or tp < 1:
        raise ConfigurationError(f"tensor-parallel degree tp={tp!r} is invalid; expected an integer >= 1")
    return tp


def _check_nonneg(name: str, value: float) -> float:
    if value is None or not math.isfinite(value) or value < 0:
        raise ConfigurationError(f"{name}={value!r} is invalid; expected a finite number >= 0")
    return value


# --------------------------------------------------------------------------- architecture
@dataclass(frozen=True)
class Architecture:
    """Per-layer parameter and width counts derived from a model spec (see module docstring)."""

    name: str
    layers: int
    hidden: int
    heads: int
    kv_heads: int
    head_dim: int
    attention: str                 # 'mha' | 'gqa' | 'mla'
    gated: bool
    vocab: int
    tied: bool
    kv_lora_rank: int
    rope_dim: int
    q_lora_rank: int
    n_dense_layers: int            # layers with a dense FFN
    n_moe_layers: int              # layers with a MoE FFN
    dense_ffn: int                 # dense FFN width I
    expert_ffn: int                # one expert's width
    experts: int                   # routed experts E
    top_k: int                     # routed experts per token k
    shared_experts: int
    sliding_window: int            # 0 if none
    n_swa_layers: int              # layers that use the sliding window
    attn_params: float             # per layer
    kv_b_params: float             # per layer (MLA up-projection), 0 otherwise
    norm_params: float             # per layer
    dense_ffn_params: float        # per dense layer
    expert_params: float           # per routed or shared expert
    router_params: float           # per MoE layer
    embed_params: float            # V*h

    @property
    def is_moe(self) -> bool:
        return self.n_moe_layers > 0

    @property
    def lm_head_params(self) -> float:
        """Separate LM-head parameters (0 when tied)."""
        return 0.0 if self.tied else self.embed_params

    @property
    def q_dim(self) -> int:
        return self.heads * (self.head_dim + (self.rope_dim if self.attention == "mla" else 0))

    @property
    def kv_dim(self) -> int:
        """Width of K (= V) produced per token per layer (MLA: of the cached latent)."""
        if self.attention == "mla":
            return self.kv_lora_rank + self.rope_dim
        return self.kv_heads * self.head_dim

    @property
    def kv_elems_per_token_layer(self) -> int:
        """Cached elements per token per layer: GQA 2*g*d, MLA r_kv + d_r."""
        if self.attention == "mla":
            return self.kv_lora_rank + self.rope_dim
        return 2 * self.kv_heads * self.head_dim

    @property
    def n_full_layers(self) -> int:
        return self.layers - self.n_swa_layers

    def routed_expert_total(self) -> float:
        return self.n_moe_layers * self.experts * self.expert_params

    def total_params(self) -> float:
        """All parameters (tied embedding counted once)."""
        per_layer = self.attn_params + self.norm_params
        moe = self.n_moe_layers * ((self.experts + self.shared_experts) * self.expert_params
                                   + self.router_params)
        return (self.layers * per_layer + self.n_dense_layers * self.dense_ffn_params + moe
                + self.embed_params + self.lm_head_params + self.hidden)

    def active_linear_params(self) -> float:
        """Parameters in matrix multiplies per token: attention, dense FFN, router + k routed +
        shared experts, LM head matrix.  Twice this is the linear FLOPs per token."""
        moe = self.n_moe_layers * ((self.top_k + self.shared_experts) * self.expert_params
                                   + self.router_params)
        return (self.layers * self.attn_params + self.n_dense_layers * self.dense_ffn_params
                + moe + self.embed_params)

    def active_params(self) -> float:
        """Parameters used per token (LM head included, input embedding not, norms included)."""
        return self.active_linear_params() + self.layers * self.norm_params + self.hidden


def _get(model: Any, attr: str, default: Any = None) -> Any:
    v = getattr(model, attr, default)
    if v is None:
        return default
    try:
        if isinstance(v, float) and math.isnan(v):
            return default
    except TypeError:  # pragma: no cover
        pass
    return v


def architecture(model: Any) -> Architecture:
    """Normalise a model spec into an :class:`Architecture` (memoised for hashable specs such
    as the catalog's frozen :class:`~fleet.catalog.ModelSpec`)."""
    if isinstance(model, Architecture):
        return model
    try:
        return _architecture_cached(model)
    except TypeError:                     # unhashable spec object
        return _architecture(model)


@functools.lru_cache(maxsize=256)
def _architecture_cached(model: Any) -> Architecture:
    return _architecture(model)


def _architecture(model: Any) -> Architecture:
    name = str(_get(model, "name", "model"))
    try:
        L = int(model.layers)
        h = int(model.hidden_size)
        a = int(model.heads)
        V = int(model.vocab_size)
    except (AttributeError, TypeError, ValueError) as exc:
        raise ConfigurationError(
            f"model {name!r} lacks a required architecture field ({exc}); expected layers, "
            "hidden_size, heads and vocab_size") from exc
    if min(L, h, a, V) <= 0:
        raise ConfigurationError(f"model {name!r}: layers, hidden_size, heads, vocab_size must be > 0")
    g = int(_get(model, "kv_heads", a))
    d = int(_get(model, "head_dim", h // a))
    attn = str(_get(model, "attention", "gqa" if g < a else "mha")).lower()
    gated = bool(_get(model, "mlp_gated", True))
    tied = bool(_get(model, "tied_embeddings", False))
    r_kv = int(_get(model, "kv_lora_rank", 0))
    d_r = int(_get(model, "qk_rope_head_dim", 0))
    r_q = int(_get(model, "q_lora_rank", 0))
    if attn == "mla":
        if r_kv <= 0:
            raise ConfigurationError(f"model {name!r} uses MLA but has no kv_lora_rank")
        q_params = (h * r_q + r_q * a * (d + d_r)) if r_q > 0 else h * a * (d + d_r)
        kv_b = r_kv * a * 2 * d
        attn_params = q_params + h * (r_kv + d_r) + kv_b + a * d * h
        norm_params = 2 * h + r_kv + (r_q if r_q > 0 else 0)
    else:
        kv_b = 0
        attn_params = h * a * d + 2 * h * g * d + a * d * h
        norm_params = 2 * h
    mats = 3 if gated else 2
    I_dense = int(_get(model, "intermediate_size", 0))
    E = int(_get(model, "experts", 0))
    k = int(_get(model, "experts_per_token", 0))
    arch_kind = str(_get(model, "architecture", "moe" if E > 1 else "dense")).lower()
    if arch_kind == "moe" and E > 0 and k > 0:
        n_lead = int(_get(model, "dense_layers", 0))
        interval = max(1, int(_get(model, "moe_layer_interval", 1)))
        spec_moe = getattr(model, "moe_layers", None)       # the catalog's own count, if any
        n_moe = int(spec_moe) if isinstance(spec_moe, int) and not isinstance(spec_moe, bool) \
            else max(0, L - n_lead) // interval          # HF: (i+1) % interval == 0
        I_exp = int(_get(model, "moe_intermediate_size", I_dense))
        shared = int(_get(model, "shared_experts", 0))
        if k > E:
            raise ConfigurationError(f"model {name!r}: experts_per_token={k} > experts={E}")
    else:
        n_moe, I_exp, shared, E, k = 0, 0, 0, 0, 0
    n_dense = L - n_moe
    if n_dense > 0 and I_dense <= 0:
        raise ConfigurationError(f"model {name!r} has dense FFN layers but no intermediate_size")
    W = int(_get(model, "sliding_window", 0))
    if W > 0:
        frac = float(_get(model, "sliding_window_layers", 1.0))
        n_swa = min(L, max(0, int(round(L * frac))))
    else:
        n_swa = 0
    return Architecture(
        name=name, layers=L, hidden=h, heads=a, kv_heads=g, head_dim=d, attention=attn,
        gated=gated, vocab=V, tied=tied, kv_lora_rank=r_kv, rope_dim=d_r, q_lora_rank=r_q,
        n_dense_layers=n_dense, n_moe_layers=n_moe, dense_ffn=I_dense, expert_ffn=I_exp,
        experts=E, top_k=k, shared_experts=shared, sliding_window=W, n_swa_layers=n_swa,
        attn_params=float(attn_params), kv_b_params=float(kv_b), norm_params=float(norm_params),
        dense_ffn_params=float(mats * h * I_dense), expert_params=float(mats * h * I_exp),
        router_params=float(h * E), embed_params=float(V * h))


def expected_distinct_experts(experts: int, top_k: int, tokens: float) -> float:
    """Expected number of distinct experts that ``tokens`` tokens touch in one MoE layer, each
    token picking ``top_k`` of ``experts`` uniformly: ``E * (1 - (1 - k/E)**T)``.
    (Per token the chance a given expert is among its k is k/E; tokens are independent.)
    Equals k at T=1 and tends to E as T grows."""
    if experts <= 0 or tokens <= 0:
        return 0.0
    return experts * (1.0 - (1.0 - top_k / experts) ** tokens)


def _blom_max_z(n: int) -> float:
    """Expected maximum of ``n`` independent standard normal draws, Blom's approximation
    ``Phi^-1((n - 0.375) / (n + 0.25))`` (Blom 1958; within 1% of the exact order-statistic
    means for n = 2..64: 0.56 at n=2, 1.03 at 4, 1.42 at 8); 0 for n <= 1."""
    if n <= 1:
        return 0.0
    from statistics import NormalDist
    return NormalDist().inv_cdf((n - 0.375) / (n + 0.25))


def ep_expert_load(experts: int, top_k: int, tokens: float, ep: int) -> tuple[float, float]:
    """(mean, busiest) number of distinct local experts one expert-parallel rank runs in one
    MoE layer when ``tokens`` tokens each pick ``top_k`` of ``experts`` uniformly and the experts
    are split evenly over ``ep`` ranks (``E/ep`` each).

    Each expert is hit with probability ``p = 1 - (1 - k/E)**T`` (see
    :func:`expected_distinct_experts`), so a rank's count is about Binomial(E/ep, p): mean
    ``E/ep * p``, standard deviation ``sqrt(E/ep * p (1-p))``.  The step waits for the busiest
    rank: ``mean + z_ep * sd`` with ``z_ep`` the expected maximum of ``ep`` standard normals
    (:func:`_blom_max_z`), capped at ``E/ep``.  Under tensor parallelism every rank holds a
    1/tp slice of every expert, so there is no such imbalance (ep=1: busiest == mean)."""
    if experts <= 0 or tokens <= 0:
        return 0.0, 0.0
    ep = max(1, int(ep))
    local = experts / ep
    p = 1.0 - (1.0 - top_k / experts) ** tokens
    mean = local * p
    if ep == 1:
        return mean, mean
    sd = math.sqrt(local * p * (1.0 - p))
    return mean, min(local, mean + _blom_max_z(ep) * sd)


def ep_all_to_all_bytes(tokens: float, hidden: int, act_bytes: float, ep: int,
                        moe_layers: int = 1) -> float:
    """Bytes all ``ep`` ranks put on the links for the expert-parallel dispatch and combine
    all-to-alls of ``tokens`` tokens (counted once each, the DeepEP/pplx style where a token is
    sent to each distinct remote rank that holds one of its experts; here the upper bound of
    one copy per token per layer for dispatch and one for combine):
    ``moe_layers * 2 * tokens * hidden * act_bytes * (ep - 1) / ep``.  A fraction ``(ep-1)/ep``
    of the tokens live on another rank than their expert under uniform routing."""
    if ep <= 1 or tokens <= 0:
        return 0.0
    return moe_layers * 2.0 * tokens * hidden * act_bytes * (ep - 1) / ep


# --------------------------------------------------------------------------- bytes helpers
def _weight_split(arch: Architecture, precision: str) -> tuple[float, float, float]:
    """Bytes per parameter for (linear layers, routed experts, embeddings/norms/routers)."""
    p = _norm_precision(precision)
    pb = precision_bytes(p)
    ab = precision_bytes(activation_precision(p))
    if p == "mxfp4" and arch.is_moe:
        return ab, pb, ab
    if pb < ab:
        return pb, pb, ab
    return pb, pb, pb


def weight_bytes(model: Any, precision: str = "bf16") -> float:
    """Bytes of all weights of the model at ``precision`` (embedding counted once if tied).

    ``= linear_params * b_lin + routed_expert_params * b_exp + (embed + LM head + norms + routers)
    * b_other``; see the module docstring for which parts a low precision applies to."""
    arch = architecture(model)
    b_lin, b_exp, b_other = _weight_split(arch, precision)
    routed = arch.routed_expert_total()
    other = (arch.embed_params + arch.lm_head_params + arch.layers * arch.norm_params + arch.hidden
             + arch.n_moe_layers * arch.router_params)
    linear = arch.total_params() - routed - other
    return linear * b_lin + routed * b_exp + other * b_other


def kv_bytes_per_token(model: Any, kv_precision: str = "bf16") -> float:
    """KV-cache bytes one token occupies in the whole model (all layers, one copy):
    GQA/MHA ``2 * kv_heads * head_dim * layers * b``; MLA ``(kv_lora_rank + qk_rope_head_dim) *
    layers * b``.  Sliding-window layers are counted like the others (per token)."""
    arch = architecture(model)
    return arch.kv_elems_per_token_layer * arch.layers * precision_bytes(kv_precision)


def kv_replication(model: Any, tp: int) -> float:
    """How many copies of each KV entry a TP replica stores: GQA ``max(1, tp/kv_heads)`` (heads
    replicated when there are fewer KV heads than ranks), MLA ``tp`` (the latent is on every
    rank), 1 at tp=1."""
    arch = architecture(model)
    _check_tp(tp)
    if arch.attention == "mla":
        return float(tp)
    return max(1.0, tp / arch.kv_heads)


def kv_bytes_per_sequence(model: Any, context_len: float, kv_precision: str = "bf16", *,
                          tp: int = 1) -> float:
    """Replica bytes one sequence of ``context_len`` tokens occupies: full-attention layers hold
    every token, sliding-window layers at most ``W`` (vLLM's hybrid allocator); rounded up to
    whole 16-token blocks; times the TP replication."""
    arch = architecture(model)
    ctx = math.ceil(max(0.0, context_len) / KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS
    swa_ctx = min(ctx, math.ceil(arch.sliding_window / KV_BLOCK_TOKENS) * KV_BLOCK_TOKENS + KV_BLOCK_TOKENS) \
        if arch.n_swa_layers else 0
    per_layer = arch.kv_elems_per_token_layer * precision_bytes(kv_precision)
    return per_layer * (arch.n_full_layers * ctx + arch.n_swa_layers * swa_ctx) * kv_replication(model, tp)


def _act_elems_per_token_layer(arch: Architecture, moe: bool) -> float:
    """Activation elements read + written per token in one layer (module docstring)."""
    h = arch.hidden
    elems = 4 * h + 6 * h                                  # 2 norms (r+w), 2 residual adds (2r+1w)
    elems += h + arch.q_dim + 2 * arch.kv_dim              # QKV projection in/out
    elems += 2 * arch.q_dim                                # attention reads Q, writes O
    elems += arch.q_dim + h                                # output projection in/out
    if moe:
        n_exp = arch.top_k + arch.shared_experts
        I = arch.expert_ffn
        elems += h + arch.experts                          # router
        elems += 2 * arch.top_k * h                        # token permutation to experts and back
    else:
        n_exp = 1
        I = arch.dense_ffn
    ffn = (2 * h + 6 * I) if arch.gated else (2 * h + 4 * I)
    return elems + n_exp * ffn


def _act_elems_per_token(arch: Architecture) -> float:
    return (arch.n_dense_layers * _act_elems_per_token_layer(arch, False)
            + arch.n_moe_layers * _act_elems_per_token_layer(arch, True))


LOGIT_BYTES_PER_VOCAB = 12.0
"""HBM bytes per vocabulary entry per sampled token: bf16 logits written and read (2+2), fp32
copy written and read by the sampler (4+4)."""


# --------------------------------------------------------------------------- WorkCost
@dataclass(frozen=True)
class WorkCost:
    """Counts of one unit of work for a whole replica (all ``tp`` GPUs together).

    flops: floating-point operations (multiply-add = 2); *_bytes: bytes (B);
    comm_messages: number of collective operations (for a latency term);
    expert_bytes: the routed-expert share of ``weight_bytes`` (read by grouped-GEMM kernels);
    expert_skew_bytes: under expert parallelism, how many more expert bytes the busiest rank
    streams than the mean rank, times the rank count (so ``/(tp*BW)`` is its extra time; no
    extra energy: the other ranks wait, which the static power already charges)."""

    flops: float = 0.0
    weight_bytes: float = 0.0
    kv_read_bytes: float = 0.0
    kv_write_bytes: float = 0.0
    act_bytes: float = 0.0
    comm_bytes: float = 0.0
    comm_messages: int = 0
    expert_bytes: float = 0.0        # routed-expert weight bytes (part of weight_bytes)
    expert_skew_bytes: float = 0.0   # EP: busiest rank's excess expert bytes x ep (time only)

    @property
    def hbm_bytes(self) -> float:
        """All HBM traffic: weights + KV reads + KV writes + activations (B)."""
        return self.weight_bytes + self.kv_read_bytes + self.kv_write_bytes + self.act_bytes

    @property
    def arithmetic_intensity(self) -> float:
        """FLOPs per HBM byte (inf when no bytes move)."""
        return self.flops / self.hbm_bytes if self.hbm_bytes > 0 else math.inf

    def __add__(self, other: "WorkCost") -> "WorkCost":
        if not isinstance(other, WorkCost):
            return NotImplemented
        return WorkCost(self.flops + other.flops, self.weight_bytes + other.weight_bytes,
                        self.kv_read_bytes + other.kv_read_bytes,
                        self.kv_write_bytes + other.kv_write_bytes,
                        self.act_bytes + other.act_bytes, self.comm_bytes + other.comm_bytes,
                        self.comm_messages + other.comm_messages,
                        self.expert_bytes + other.expert_bytes,
                        self.expert_skew_bytes + other.expert_skew_bytes)

    def __radd__(self, other: Any) -> "WorkCost":
        if other == 0:  # lets sum() start from 0
            return self
        return NotImplemented

    def scaled(self, factor: float) -> "WorkCost":
        """This cost ``factor`` times (messages rounded)."""
        return WorkCost(self.flops * factor, self.weight_bytes * factor, self.kv_read_bytes * factor,
                        self.kv_write_bytes * factor, self.act_bytes * factor,
                        self.comm_bytes * factor, int(round(self.comm_messages * factor)),
                        self.expert_bytes * factor, self.expert_skew_bytes * factor)

    def as_dict(self) -> dict[str, float]:
        return {"flops": self.flops, "weight_bytes": self.weight_bytes,
                "kv_read_bytes": self.kv_read_bytes, "kv_write_bytes": self.kv_write_bytes,
                "act_bytes": self.act_bytes, "hbm_bytes": self.hbm_bytes,
                "comm_bytes": self.comm_bytes, "comm_messages": self.comm_messages,
                "expert_bytes": self.expert_bytes, "expert_skew_bytes": self.expert_skew_bytes}


# --------------------------------------------------------------------------- shared pieces
def _weights_read(arch: Architecture, tokens: float, precision: str) -> float:
    """Weight bytes read by one forward pass over ``tokens`` tokens (module docstring)."""
    b_lin, b_exp, b_other = _weight_split(arch, precision)
    # dense part: attention + dense FFN + shared experts
    lin = (arch.layers * arch.attn_params + arch.n_dense_layers * arch.dense_ffn_params
           + arch.n_moe_layers * arch.shared_experts * arch.expert_params)
    other = (arch.layers * arch.norm_params + arch.hidden + arch.n_moe_layers * arch.router_params
             + arch.embed_params)                              # LM head matrix, read whole
    if not arch.tied:
        other += min(tokens, arch.vocab) * arch.hidden          # embedding rows gathered
    routed = arch.n_moe_layers * expected_distinct_experts(arch.experts, arch.top_k, tokens) \
        * arch.expert_params
    return lin * b_lin + routed * b_exp + other * b_other


def _expert_bytes(arch: Architecture, tokens: float, precision: str, ep: int) -> tuple[float, float]:
    """(routed-expert bytes read by one forward pass over ``tokens`` tokens, EP skew bytes).

    The first is the routed part of :func:`_weights_read`; the second is
    ``n_moe * ep * (busiest - mean) * expert_params * b_exp`` from :func:`ep_expert_load`
    (0 without expert parallelism)."""
    if not arch.is_moe or tokens <= 0:
        return 0.0, 0.0
    _, b_exp, _ = _weight_split(arch, precision)
    per = arch.n_moe_layers * arch.expert_params * b_exp
    mean_bytes = per * expected_distinct_experts(arch.experts, arch.top_k, tokens)
    if ep <= 1:
        return mean_bytes, 0.0
    mean, busiest = ep_expert_load(arch.experts, arch.top_k, tokens, ep)
    return mean_bytes, per * ep * (busiest - mean)


def _ep_degree(arch: Architecture, tp: int, expert_parallel: bool) -> int:
    """EP ranks: vLLM's ``--enable-expert-parallel`` without data parallelism puts the experts
    of a MoE model over the ``tp`` GPUs of the replica (EP size = TP size); 1 otherwise."""
    return tp if (expert_parallel and arch.is_moe and tp > 1) else 1


def _dp_attention(arch: Architecture, wbytes: float, expert_b: float, tokens: float, precision: str,
                  act_b: float, ep: int) -> tuple[float, float, int]:
    """(weight bytes, link bytes, messages) of one pass under data-parallel attention + EP
    (vLLM ``--data-parallel-size ep --enable-expert-parallel``, tensor parallel 1; DeepSeek-V3
    style): every rank holds and reads all non-routed weights (attention, dense FFN, shared
    experts, norms, routers, LM head) for its own tokens, so those are read ``ep`` times; the
    routed experts are read once, by their owner; the embedding gather is per token.  The MoE
    layers exchange tokens with a dispatch and a combine all-to-all
    (:func:`ep_all_to_all_bytes`, two messages per MoE layer); there is no attention all-reduce
    and no logit gather (each rank samples its own sequences)."""
    _, _, b_other = _weight_split(arch, precision)
    gather = 0.0 if arch.tied else min(tokens, arch.vocab) * arch.hidden * b_other
    replicated = max(0.0, wbytes - expert_b - gather)
    w = replicated * ep + expert_b + gather
    comm = ep_all_to_all_bytes(tokens, arch.hidden, act_b, ep, arch.n_moe_layers)
    return w, comm, 2 * arch.n_moe_layers


def _tp_comm(arch: Architecture, tokens: float, out_tokens: float, act_b: float,
             tp: int) -> tuple[float, int]:
    """(bytes on the link by all GPUs, collectives) for one forward pass under TP."""
    if tp <= 1 or tokens <= 0:
        return 0.0, 0
    msg = tokens * arch.hidden * act_b
    n_ar = 2 * arch.layers + 1                       # 2 per layer + vocab-parallel embedding
    ring = 2.0 * (tp - 1) * msg                      # tp GPUs x 2(tp-1)/tp x msg
    gather = (tp - 1) / tp * out_tokens * arch.vocab * act_b
    return n_ar * ring + gather, n_ar + (1 if out_tokens > 0 else 0)


def _attn_pair_flops(arch: Architecture, absorbed: bool) -> float:
    """FLOPs per (query, key) pair per layer (module docstring)."""
    a, d = arch.heads, arch.head_dim
    if arch.attention == "mla":
        if absorbed:
            return 2 * a * (arch.kv_lora_rank + arch.rope_dim) + 2 * a * arch.kv_lora_rank
        return 2 * a * (d + arch.rope_dim) + 2 * a * d
    return 4.0 * a * d


# --------------------------------------------------------------------------- prefill / decode
def prefill_cost(model: Any, n_tokens: int, *, context_tokens: int = 0,
                 tokens_sq: float | None = None, n_requests: int | None = None,
                 precision: str = "bf16", kv_precision: str | None = None,
                 tp: int = 1, expert_parallel: bool = False,
                 attention_dp: bool = False) -> WorkCost:
    """Counts of one prefill step over ``n_tokens`` new prompt tokens (summed over requests).

    ``context_tokens``: tokens already in the KV cache that the new tokens attend to (total over
    the step's requests; prefix caching / chunked prefill).  ``tokens_sq``: sum over requests of
    the squared new-token counts (default ``n_tokens**2 / n_requests``, equal lengths).
    ``n_requests``: prompts whose last token gets logits (default ``ceil(n**2/tokens_sq)``,
    the fewest requests consistent with ``tokens_sq``; 1 for the defaults).  Formulas in the module docstring.

    ``expert_parallel``: MoE experts split over the ``tp`` GPUs (see :func:`ep_expert_load`)."""
    arch = architecture(model)
    _check_tp(tp)
    n = float(_check_nonneg("n_tokens", n_tokens))
    ctx = float(_check_nonneg("context_tokens", context_tokens))
    if n == 0:
        return WorkCost()
    if tokens_sq is None:
        reqs = 1 if n_requests is None else max(1, int(n_requests))
        tsq = n * n / reqs
    else:
        tsq = float(_check_nonneg("tokens_sq", tokens_sq))
        if tsq < n or tsq > n * n * (1 + 1e-9):
            raise ConfigurationError(
                f"tokens_sq={tokens_sq} is impossible for n_tokens={n_tokens}; expected "
                f"n_tokens <= tokens_sq <= n_tokens**2")
        # Cauchy-Schwarz: n**2 <= R * tokens_sq, so ceil(n**2 / tokens_sq) is the fewest
        # requests consistent with the inputs (exact for equal lengths and for two requests)
        reqs = (max(1, math.ceil(n * n / tsq - 1e-9)) if n_requests is None
                else max(1, int(n_requests)))
    out = float(min(reqs, n))
    kvp = _kv_prec(precision, kv_precision)
    act_b = precision_bytes(activation_precision(precision))
    kv_b = precision_bytes(kvp)
    ep = _ep_degree(arch, tp, expert_parallel)
    dp = ep > 1 and attention_dp
    rep = 1.0 if dp else kv_replication(arch, tp)

    # FLOPs
    lin = 2.0 * (arch.active_linear_params() - arch.embed_params) * n + 2.0 * arch.embed_params * out
    pairs_full = (tsq + n) / 2.0 + ctx * tsq / n
    if arch.n_swa_layers:
        W = arch.sliding_window
        # one request of L >= W: L*W - W(W-1)/2 pairs, of L <= W: L(L+1)/2 (no cap)
        pairs_swa = (pairs_full if n <= reqs * W
                     else min(pairs_full, n * W - reqs * W * (W - 1) / 2.0))
    else:
        pairs_swa = 0.0
    pair_f = _attn_pair_flops(arch, absorbed=False)
    attn = pair_f * (arch.n_full_layers * pairs_full + arch.n_swa_layers * pairs_swa)
    if arch.attention == "mla":
        attn += 2.0 * arch.kv_b_params * ctx * arch.layers
    flops = lin + attn

    # bytes
    wbytes = _weights_read(arch, n, precision)
    per_tok_layer = arch.kv_elems_per_token_layer * kv_b * rep
    kv_write = per_tok_layer * arch.layers * n
    def _reads(pairs: float, cap_ctx: float) -> float:
        return max(pairs / FLASH_TILE_Q, cap_ctx + n)
    swa_ctx = min(ctx, reqs * arch.sliding_window) if arch.n_swa_layers else 0.0
    kv_read = per_tok_layer * (arch.n_full_layers * _reads(pairs_full, ctx)
                               + (arch.n_swa_layers * _reads(pairs_swa, swa_ctx) if arch.n_swa_layers else 0.0))
    act = _act_elems_per_token(arch) * act_b * n + 2 * arch.hidden * act_b * n \
        + out * arch.vocab * LOGIT_BYTES_PER_VOCAB
    eb, skew = _expert_bytes(arch, n, precision, ep)
    if dp:
        wbytes, comm, msgs = _dp_attention(arch, wbytes, eb, n, precision, act_b, ep)
    else:
        comm, msgs = _tp_comm(arch, n, out, act_b, tp)
    return WorkCost(flops, wbytes, kv_read, kv_write, act, comm, msgs, eb, skew)


def decode_cost(model: Any, batch: int, context_tokens: float, *, precision: str = "bf16",
                kv_precision: str | None = None, tp: int = 1,
                expert_parallel: bool = False, attention_dp: bool = False) -> WorkCost:
    """Counts of one decode iteration: ``batch`` sequences each produce one token while
    attending to ``context_tokens`` cached tokens in total (summed over the batch).

    Weights are read once per iteration (MoE: the expected distinct experts the ``batch``
    tokens touch, ``E*(1-(1-k/E)**batch)`` per MoE layer, uniform routing).  KV: reads all
    ``context_tokens`` (sliding layers at most ``batch*W``), writes ``batch`` tokens.  MLA in
    absorbed form.  Formulas in the module docstring."""
    arch = architecture(model)
    _check_tp(tp)
    b = float(_check_nonneg("batch", batch))
    ctx = float(_check_nonneg("context_tokens", context_tokens))
    if b == 0:
        return WorkCost()
    kvp = _kv_prec(precision, kv_precision)
    act_b = precision_bytes(activation_precision(precision))
    ep = _ep_degree(arch, tp, expert_parallel)
    dp = ep > 1 and attention_dp
    rep = 1.0 if dp else kv_replication(arch, tp)
    per_tok_layer = arch.kv_elems_per_token_layer * precision_bytes(kvp) * rep

    swa_ctx = min(ctx, b * arch.sliding_window) if arch.n_swa_layers else 0.0
    attn_tokens = arch.n_full_layers * ctx + arch.n_swa_layers * swa_ctx
    flops = 2.0 * arch.active_linear_params() * b + _attn_pair_flops(arch, absorbed=True) * attn_tokens
    wbytes = _weights_read(arch, b, precision)
    kv_read = per_tok_layer * attn_tokens
    kv_write = per_tok_layer * arch.layers * b
    act = _act_elems_per_token(arch) * act_b * b + 2 * arch.hidden * act_b * b \
        + b * arch.vocab * LOGIT_BYTES_PER_VOCAB
    eb, skew = _expert_bytes(arch, b, precision, ep)
    if dp:
        wbytes, comm, msgs = _dp_attention(arch, wbytes, eb, b, precision, act_b, ep)
    else:
        comm, msgs = _tp_comm(arch, b, b, act_b, tp)
    return WorkCost(flops, wbytes, kv_read, kv_write, act, comm, msgs, eb, skew)


# --------------------------------------------------------------------------- serving memory
@dataclass(frozen=True)
class MemoryPlan:
    """How a serving replica's memory is used (bytes per GPU unless stated).

    kv_capacity_tokens: tokens the replica's KV cache holds, counting every layer per token and
    the TP replication (whole replica).  kv_bytes_available: KV bytes of the whole replica."""

    weights_per_gpu: float
    kv_capacity_tokens: int
    fits: bool
    reason: str
    memory_per_gpu: float = 0.0
    usable_per_gpu: float = 0.0
    activation_reserve_per_gpu: float = 0.0
    kv_bytes_available: float = 0.0
    tp: int = 1
    precision: str = "bf16"
    kv_precision: str = "bf16"


def default_activation_reserve(model: Any, tp: int = 1, precision: str = "bf16") -> float:
    """Per-GPU bytes vLLM keeps for activations, as its profiling pass would measure them:
    ``PROFILE_TOKENS * (4h + q + 2kv + 3*I_act) * act_bytes / tp`` (the widest intermediates
    alive at once; ``I_act`` the dense FFN or ``(k+shared) * expert`` width) plus sampled logits
    ``PROFILE_SEQS * V * 4 B`` plus :data:`RUNTIME_OVERHEAD_BYTES`."""
    arch = architecture(model)
    act_b = precision_bytes(activation_precision(precision))
    i_act = max(arch.dense_ffn if arch.n_dense_layers else 0,
                (arch.top_k + arch.shared_experts) * arch.expert_ffn if arch.is_moe else 0)
    per_tok = 4 * arch.hidden + arch.q_dim + 2 * arch.kv_dim + 3 * i_act
    return (PROFILE_TOKENS * per_tok * act_b / tp + PROFILE_SEQS * arch.vocab * 4.0
            + RUNTIME_OVERHEAD_BYTES)


def _fmt_gb(x: float) -> str:
    return f"{x / 1e9:.0f} GB" if x >= 10e9 else f"{x / 1e9:.1f} GB"


def memory_plan(model: Any, memory_bytes_per_gpu: float, tp: int, *, precision: str = "bf16",
                kv_precision: str | None = None, reserve_fraction: float = 0.10,
                activation_reserve_bytes: float | None = None, gpu_name: str | None = None,
                strict: bool = True) -> MemoryPlan:
    """Split each GPU's memory into weights, activation reserve and KV cache.

    ``usable = memory * (1 - reserve_fraction)`` (vLLM's gpu_memory_utilization=0.9);
    ``kv per GPU = usable - weights/tp - activation_reserve``;
    ``kv_capacity_tokens = floor(kv per GPU * tp / (kv_bytes_per_token * replication))``.
    Weights are split evenly over the ``tp`` ranks.  When the weights plus activation reserve
    do not fit, raises :class:`ConfigurationError` naming the fix (``strict=True``) or returns a
    plan with ``fits=False`` and the reason (``strict=False``).  ``fits`` is also False when the
    weights fit but no KV space is left."""
    arch = architecture(model)
    _check_tp(tp)
    prec = _norm_precision(precision)
    kvp = _kv_prec(prec, kv_precision)
    mem = float(memory_bytes_per_gpu)
    if not math.isfinite(mem) or mem <= 0:
        raise ConfigurationError(f"memory_bytes_per_gpu={memory_bytes_per_gpu!r}; expected > 0")
    if not 0 <= reserve_fraction < 1:
        raise ConfigurationError(f"reserve_fraction={reserve_fraction!r}; expected 0 <= f < 1")
    usable = mem * (1.0 - reserve_fraction)
    w_total = weight_bytes(arch, prec)
    w_gpu = w_total / tp
    act = (default_activation_reserve(arch, tp, prec) if activation_reserve_bytes is None
           else float(activation_reserve_bytes))
    kv_gpu = usable - w_gpu - act
    common: dict[str, Any] = dict(memory_per_gpu=mem, usable_per_gpu=usable, activation_reserve_per_gpu=act,
                  tp=tp, precision=prec, kv_precision=kvp)
    if kv_gpu <= 0:
        gpu = gpu_name or "GPU"
        need = w_gpu + act
        msg = (f"{arch.name} in {prec} needs {_fmt_gb(w_total)} of weights, {tp} x {gpu} has "
               f"{_fmt_gb(mem * tp)} = {mem * tp / 2**30:.0f} GiB ({_fmt_gb(usable * tp)} usable after the "
               f"{reserve_fraction:.0%} reserve, {_fmt_gb(need)} per GPU needed with "
               f"{_fmt_gb(act)} of activations)")
        fixes = []
        tp_fit = next((t for t in (2, 4, 8, 16, 32, 64) if t > tp
                       and usable - w_total / t - (default_activation_reserve(arch, t, prec)
                                                   if activation_reserve_bytes is None else act) > 0), None)
        if tp_fit is not None:
            fixes.append(f"tp>={tp_fit}")
        for p in ("fp8", "int4"):
            if PRECISION_BYTES[p] < PRECISION_BYTES[prec] and usable - weight_bytes(arch, p) / tp - act > 0:
                fixes.append(p)
                break
        if fixes:
            msg += "; use " + " or ".join(fixes)
        else:
            msg += "; use more GPUs per replica or a smaller model"
        if strict:
            raise ConfigurationError(msg)
        return MemoryPlan(w_gpu, 0, False, msg, kv_bytes_available=0.0, **common)
    per_tok = kv_bytes_per_token(arch, kvp) * kv_replication(arch, tp)
    kv_total = kv_gpu * tp
    cap = int(kv_total // per_tok)
    fits = cap >= 1
    reason = (f"{_fmt_gb(w_gpu)} weights + {_fmt_gb(act)} activations per GPU; KV cache "
              f"{_fmt_gb(kv_total)} holds {cap} tokens" if fits else
              f"{arch.name}: weights fit but no KV-cache space is left")
    return MemoryPlan(w_gpu, cap, fits, reason, kv_bytes_available=kv_total, **common)


def max_batch(model: Any, memory_bytes_per_gpu: float, tp: int, context_len: int, **kw: Any) -> int:
    """How many sequences of ``context_len`` tokens fit in the KV cache at once:
    ``floor(kv_bytes_available / kv_bytes_per_sequence(context_len))`` (sliding-window layers
    hold at most W tokens, 16-token blocks).  ``kw`` go to :func:`memory_plan`."""
    plan = memory_plan(model, memory_bytes_per_gpu, tp, **kw)
    if not plan.fits:
        return 0
    per_seq = kv_bytes_per_sequence(model, max(1, context_len), plan.kv_precision, tp=tp)
    return int(plan.kv_bytes_available // per_seq)


# --------------------------------------------------------------------------- training
OPTIMIZER_STATE_BYTES = {"adam": 12.0, "adamw": 12.0, "sgd_momentum": 8.0, "sgd": 4.0}
"""fp32 bytes per parameter of optimizer state including the fp32 master weights:
Adam/AdamW master + m + v = 12; SGD with momentum master + m = 8; plain SGD master = 4."""


def _optimizer_bytes(optimizer: str) -> float:
    key = str(optimizer).lower()
    if key not in OPTIMIZER_STATE_BYTES:
        raise ConfigurationError(
            f"unknown optimizer {optimizer!r}; expected one of {', '.join(OPTIMIZER_STATE_BYTES)}")
    return OPTIMIZER_STATE_BYTES[key]


@dataclass(frozen=True)
class TrainCost:
    """Counts of one training step, totals over all ``tp*pp*dp`` GPUs.

    flops: all FLOPs executed (with recomputation); model_flops: without recomputation
    (``3 x forward``, the MFU numerator); *_comm_bytes: bytes put on links by all GPUs; tp and
    pp traffic is intra-/inter-node per the parallel layout, dp traffic is the gradient
    synchronisation; *_messages: collectives on ONE GPU's critical path (its pipeline stage's
    layers and its data-parallel replica's micro-batches), for a latency term;
    micro_batches: over all replicas."""

    flops: float
    model_flops: float
    hbm_bytes: float
    tp_comm_bytes: float
    pp_comm_bytes: float
    dp_comm_bytes: float
    tp_messages: int
    pp_messages: int
    dp_messages: int
    tokens: int
    n_gpus: int
    micro_batches: int
    # the HBM traffic split by what hides it.  weight_bytes: weight and
    # gradient-buffer streams that run under the GEMMs (roofline max with compute);
    # membound_bytes: activations of the memory-bound kernels (norms, residual adds, activation
    # functions, attention I/O, softmax/loss over the vocabulary), which run between GEMMs and add
    # to the step time; optimizer_bytes: the optimizer update (master weights, moments, gradient,
    # low-precision copy), a memory-bound kernel after the last micro-batch.  Totals.
    weight_bytes: float = 0.0
    membound_bytes: float = 0.0
    optimizer_bytes: float = 0.0

    @property
    def comm_bytes(self) -> float:
        return self.tp_comm_bytes + self.pp_comm_bytes + self.dp_comm_bytes

    @property
    def per_gpu_flops(self) -> float:
        return self.flops / self.n_gpus

    @property
    def per_gpu_hbm_bytes(self) -> float:
        return self.hbm_bytes / self.n_gpus

    @property
    def per_gpu_comm_bytes(self) -> float:
        return self.comm_bytes / self.n_gpus


def training_forward_flops_per_token(model: Any, seq_len: int) -> tuple[float, float]:
    """(linear, attention) forward FLOPs per training token: linear ``2 * active_linear_params``
    (LM head on every token), attention ``pair_flops * layers * (S+1)/2`` (causal mean; sliding
    layers ``min((S+1)/2, W)``; MLA in expanded form)."""
    arch = architecture(model)
    lin = 2.0 * arch.active_linear_params()
    mean_ctx = (seq_len + 1) / 2.0
    swa = min(mean_ctx, arch.sliding_window) if arch.n_swa_layers else 0.0
    attn = _attn_pair_flops(arch, absorbed=False) * (arch.n_full_layers * mean_ctx
                                                     + arch.n_swa_layers * swa)
    return lin, attn


def training_step_cost(model: Any, tokens_per_step: int, *, precision: str = "bf16",
                       recompute: bool = False, tp: int = 1, pp: int = 1, dp: int = 1,
                       optimizer: str = "adam", zero_stage: int = 0, seq_len: int = 4096,
                       micro_batch_tokens: int | None = None, grad_bytes: float = 4.0) -> TrainCost:
    """Counts of one optimizer step over ``tokens_per_step`` tokens (global batch).

    FLOPs: ``(3 or 4) * D * (2*N_active + attention)``: forward 1x, backward 2x, full activation
    recomputation one more forward (Korthikanti et al. 2022) -> ``6ND`` / ``8ND`` plus attention.
    HBM (totals): per micro-batch of ``micro_batch_tokens`` (default ``seq_len``) the weights are
    read (2 or 3) times (forward, backward data-grad, recompute; MoE experts touched as in
    inference) and the gradient buffers read+written (``2*grad_bytes`` per param); activations
    ``(3 or 4) x`` the inference activation traffic per token; optimizer update reads and
    writes master weights and state and the gradient, writes the low-precision weights:
    ``(2*state + grad_bytes + w)`` per param, done by every DP rank without ZeRO and once with
    ZeRO>=1.
    TP (Megatron, sequence-parallel equivalent volume): per layer and token, forward 2
    all-reduces, backward 2, recompute 2 more, of ``h*act_bytes``; ring total ``2(tp-1)*msg``.
    PP: every token's activation (``h*act_bytes``) crosses ``pp-1`` stage boundaries forward
    and its gradient backward.
    DP: gradients (``grad_bytes``, Megatron's fp32 main grads by default) all-reduced, ring
    total ``2(dp-1) * N * grad_bytes``; ZeRO-1/2 reduce-scatter grads + all-gather weights
    ``(dp-1)*N*(grad_bytes + w)``; ZeRO-3 also all-gathers weights for the backward
    ``(dp-1)*N*(grad_bytes + 2w)``.  Expert-parallel all-to-all is not modelled (MoE experts are
    treated as tensor-parallel)."""
    arch = architecture(model)
    for name, v in (("tp", tp), ("pp", pp), ("dp", dp)):
        if not isinstance(v, int) or v < 1:
            raise ConfigurationError(f"{name}={v!r} is invalid; expected an integer >= 1")
    if zero_stage not in (0, 1, 2, 3):
        raise ConfigurationError(f"zero_stage={zero_stage!r}; expected 0, 1, 2 or 3")
    D = float(_check_nonneg("tokens_per_step", tokens_per_step))
    if seq_len < 1:
        raise ConfigurationError(f"seq_len={seq_len!r}; expected >= 1")
    state_b = _optimizer_bytes(optimizer)
    prec = _norm_precision(precision)
    w_b = precision_bytes(prec)
    act_b = precision_bytes(activation_precision(prec))
    mbt = float(micro_batch_tokens or seq_len)
    m = max(1, math.ceil(D / mbt)) if D > 0 else 0
    passes = 4.0 if recompute else 3.0
    lin, attn = training_forward_flops_per_token(arch, seq_len)
    fwd = lin + attn
    flops = passes * D * fwd
    model_flops = 3.0 * D * fwd

    N = arch.total_params()
    w_reads = (3.0 if recompute else 2.0) * _weights_read(arch, mbt, prec) * m
    grad_traffic = 2.0 * grad_bytes * N * m
    act = passes * (_act_elems_per_token(arch) + 2 * arch.hidden) * act_b * D \
        + 2.0 * D * arch.vocab * 4.0          # fp32 logits written and read by the loss
    upd_ranks = dp if zero_stage == 0 else 1
    opt = (2.0 * state_b + grad_bytes + w_b) * N * upd_ranks
    hbm = w_reads + grad_traffic + act + opt

    n_tp_ar = (6 if recompute else 4) * arch.layers
    m_rep = math.ceil(m / dp)                        # micro-batches one DP replica runs
    tp_comm = n_tp_ar * 2.0 * (tp - 1) * D * arch.hidden * act_b if tp > 1 else 0.0
    # messages: collectives on one GPU's critical path (its stage's layers, its replica's
    # micro-batches); the pipeline bubble is not counted
    tp_msgs = math.ceil(n_tp_ar / pp) * m_rep if tp > 1 else 0
    pp_comm = 2.0 * (pp - 1) * D * arch.hidden * act_b
    pp_msgs = 2 * m_rep if pp > 1 else 0
    if dp <= 1:
        dp_comm, dp_msgs = 0.0, 0
    elif zero_stage == 0:
        dp_comm, dp_msgs = 2.0 * (dp - 1) * N * grad_bytes, 1
    elif zero_stage in (1, 2):
        dp_comm, dp_msgs = (dp - 1) * N * (grad_bytes + w_b), 2
    else:
        dp_comm, dp_msgs = (dp - 1) * N * (grad_bytes + 2 * w_b), 3
    return TrainCost(flops=flops, model_flops=model_flops, hbm_bytes=hbm, tp_comm_bytes=tp_comm,
                     pp_comm_bytes=pp_comm, dp_comm_bytes=dp_comm, tp_messages=tp_msgs,
                     pp_messages=pp_msgs, dp_messages=dp_msgs, tokens=int(D),
                     n_gpus=tp * pp * dp, micro_batches=m, weight_bytes=w_reads + grad_traffic,
                     membound_bytes=act, optimizer_bytes=opt)


@dataclass(frozen=True)
class TrainMemory:
    """Per-GPU training memory (bytes) and the largest micro-batch that fits."""

    fits: bool
    reason: str
    weights: float
    grads: float
    optimizer: float
    activations: float
    total: float
    usable: float
    activation_bytes_per_token: float
    max_micro_batch_tokens: int
    max_micro_batch_seqs: int


def training_activation_bytes_per_token(model: Any, *, tp: int = 1, recompute: bool = False) -> float:
    """Per-GPU activation bytes stored per micro-batch token, Korthikanti et al. 2022
    ("Reducing Activation Recomputation in Large Transformer Models") adapted to GQA and gated
    FFNs, with flash attention (no ``5as^2b`` score term, as their selective recomputation) and
    sequence parallelism (everything divided by ``tp``).  Per layer, bf16:
    attention ``2h + 2q + 4kv + 2q + h`` (= 11h for MHA), FFN ``3h + 6I`` gated / ``3h + 4I``
    plain (= 19h at I=4h), MoE FFN ``h + (k+shared)*(3h+6I)``, norms ``4h``: 34h per layer for
    GPT-3.  1F1B pipelining keeps ``pp`` micro-batches of ``L/pp`` layers on the first stage, i.e.
    all ``L`` layers' worth.  Full recomputation stores only each layer's input (``2h``) plus one
    layer's full set.  Plus fp32 logits ``4V`` for the loss."""
    arch = architecture(model)
    h = arch.hidden
    attn = 2 * h + 2 * arch.q_dim + 4 * arch.kv_dim + 2 * arch.q_dim + h

    def ffn(I: int) -> float:
        return 3 * h + (6 if arch.gated else 4) * I

    dense_layer = attn + ffn(arch.dense_ffn) + 4 * h
    moe_layer = attn + h + (arch.top_k + arch.shared_experts) * ffn(arch.expert_ffn) + 4 * h
    full = arch.n_dense_layers * dense_layer + arch.n_moe_layers * moe_layer
    if recompute:
        stored = 2 * h * arch.layers + max(dense_layer if arch.n_dense_layers else 0,
                                           moe_layer if arch.n_moe_layers else 0)
    else:
        stored = full
    return (stored + 4.0 * arch.vocab) / tp


def training_memory(model: Any, memory_bytes_per_gpu: float, *, tp: int = 1, pp: int = 1,
                    dp: int = 1, precision: str = "bf16", recompute: bool = False,
                    micro_batch_tokens: int | None = None, seq_len: int = 4096,
                    zero_stage: int = 0, optimizer: str = "adam",
                    reserve_fraction: float = 0.05) -> TrainMemory:
    """Does training fit, and what is the largest micro-batch (tokens) that does?

    Model state per parameter (mixed-precision Adam, 16 B): weights ``w`` (2 at bf16), gradients
    2 (bf16), optimizer master+m+v 12 (fp32); split over ``tp*pp`` model-parallel ranks; ZeRO
    stage >=1 also divides optimizer state by ``dp``, >=2 gradients, 3 weights.  Activations
    from :func:`training_activation_bytes_per_token`.  ``usable = memory*(1-reserve_fraction)``
    (allocator fragmentation, NCCL and CUDA context).  ``fits`` is judged at
    ``micro_batch_tokens`` (default ``seq_len``)."""
    arch = architecture(model)
    for name, v in (("tp", tp), ("pp", pp), ("dp", dp)):
        if not isinstance(v, int) or v < 1:
            raise ConfigurationError(f"{name}={v!r} is invalid; expected an integer >= 1")
    prec = _norm_precision(precision)
    N = arch.total_params() / (tp * pp)
    w = N * precision_bytes(prec)
    g = N * 2.0
    o = N * _optimizer_bytes(optimizer)
    if zero_stage >= 1:
        o /= dp
    if zero_stage >= 2:
        g /= dp
    if zero_stage >= 3:
        w /= dp
    usable = float(memory_bytes_per_gpu) * (1.0 - reserve_fraction)
    per_tok = training_activation_bytes_per_token(arch, tp=tp, recompute=recompute)
    mbt = int(micro_batch_tokens or seq_len)
    acts = per_tok * mbt
    states = w + g + o
    total = states + acts
    free = usable - states
    max_tok = max(0, int(free // per_tok)) if free > 0 else 0
    fits = total <= usable
    if fits:
        reason = (f"{_fmt_gb(total)} of {_fmt_gb(usable)} usable per GPU "
                  f"(states {_fmt_gb(states)}, activations {_fmt_gb(acts)})")
    elif free <= 0:
        reason = (f"{arch.name}: model and optimizer state alone need {_fmt_gb(states)} per GPU "
                  f"at tp={tp} pp={pp} dp={dp} zero={zero_stage}, usable {_fmt_gb(usable)}; "
                  "raise tp*pp or the ZeRO stage")
    else:
        reason = (f"{arch.name}: micro-batch of {mbt} tokens needs {_fmt_gb(acts)} of "
                  f"activations, {_fmt_gb(free)} free; largest micro-batch {max_tok} tokens"
                  + ("" if recompute else " (or enable recomputation)"))
    return TrainMemory(fits=fits, reason=reason, weights=w, grads=g, optimizer=o, activations=acts,
                       total=total, usable=usable, activation_bytes_per_token=per_tok,
                       max_micro_batch_tokens=max_tok, max_micro_batch_seqs=max_tok // seq_len)


__all__ = [
    "PRECISION_BYTES", "Architecture", "MemoryPlan", "TrainCost", "TrainMemory", "WorkCost",
    "activation_precision", "architecture", "decode_cost", "default_activation_reserve",
    "ep_all_to_all_bytes", "ep_expert_load", "expected_distinct_experts", "kv_bytes_per_sequence", "kv_bytes_per_token", "kv_replication",
    "max_batch", "memory_plan", "precision_bytes", "prefill_cost", "training_activation_bytes_per_token",
    "training_forward_flops_per_token", "training_memory", "training_step_cost", "weight_bytes",
]
