"""Physical lower bounds on the energy of LLM work (Landauer and learning-in-memory).

Landauer (1961): irreversibly erasing (or overwriting) one bit of information in an environment
at temperature ``T`` dissipates at least ``E_bit = k_B * T * ln 2`` (2.87e-21 J at 300 K).
Chen, Leugering, Cauwenberghs, Chakrabartty, "Energy-efficiency Limits on Training AI Systems
using Learning-in-Memory" (arXiv 2402.14878, 2024) apply the same reasoning to training: the
unavoidable cost of learning is *writing the updated parameters into memory* at the precision
training needs (their "update wall"), and in an ideal learning-in-memory device whose energy
barrier follows the optimiser's dynamics, that cost approaches the Landauer-like bound.  Their
projection for a brain-scale model (1e15 parameters) is 1e8-1e9 J, six to seven orders of
magnitude below what current accelerators would need.

What this module counts (every assumption is a choice, stated here):

Training (:func:`training_lower_bound_j`, the paper's memory-update argument)
    Each optimizer step writes every parameter once, at ``b`` bits (the training precision), and
    that write is irreversible (the old value is lost):
    ``E >= N_params * b * n_steps * k_B T ln 2`` with ``n_steps = ceil(tokens / tokens_per_step)``.
    The FLOP form (:func:`training_flop_bound_j`), following the paper's extension to FLOPs,
    counts every FLOP of training (``6 * N_active * tokens`` unless given) as one ``b``-bit
    memory update: ``E >= FLOPs * b * k_B T ln 2``.  It is much larger and rests on a stronger
    assumption (that each arithmetic result is written irreversibly), so it is the *looser*
    claim even though it is the bigger number.

Inference, per generated token (:func:`inference_token_lower_bound_j`)
    Bits that a conventional (non-reversible) machine must irreversibly write per token:
    the token's KV-cache entry (``kv_bytes_per_token * 8``; it must persist for later tokens),
    the residual stream each layer overwrites (``layers * hidden * act_bits``), and the sampled
    token (``log2 V``).  A reversible machine could uncompute the activations, so
    ``include_activations=False`` gives the stricter floor (KV + token only).
    The FLOP form (:func:`inference_flop_bound_j`): ``FLOPs * bits_per_op * k_B T ln 2`` with
    FLOPs per token ``2 * N_active`` (decode, short context) unless given and, by default, one
    bit erased per operation (a multiply-add merges two inputs into one output).

This module imports only the catalog (layering rule of DESIGN.md): it reads ``params_b``,
``active_params_b``, ``layers``, ``hidden_size``, ``vocab_size`` and ``kv_bytes_per_token()``
from a :class:`fleet.catalog.ModelSpec` (any object with those attributes).  Callers that have
exact counts from :mod:`fleet.workload.llm` pass them as ``flops=`` / ``kv_bits=``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from fleet.catalog.precision import PRECISION_BITS, default_kv_precision, precision_bits
from fleet.errors import ConfigurationError

BOLTZMANN_J_PER_K = 1.380649e-23
"""Boltzmann constant k_B (J/K), exact in the 2019 SI."""

BITS = PRECISION_BITS
"""Bits per stored value of each precision: the one vocabulary's table
(:data:`fleet.catalog.precision.PRECISION_BITS`; mxfp4: 4 bits + an 8-bit scale per 32 values)."""

DEFAULT_TOKENS_PER_STEP = 4_194_304
"""Global batch of 4M tokens per optimizer step (Llama-2/3 pre-training scale) when none is given."""


def _bits(precision: str) -> float:
    return float(precision_bits(precision))


def landauer_j_per_bit(temperature_k: float = 300.0) -> float:
    """Minimum energy (J) to irreversibly erase one bit at ``temperature_k``: ``k_B T ln 2``."""
    if not (temperature_k > 0 and math.isfinite(temperature_k)):
        raise ConfigurationError(f"temperature_k={temperature_k!r}; expected a positive number of kelvin")
    return BOLTZMANN_J_PER_K * temperature_k * math.log(2.0)


def _params(model: Any) -> tuple[float, float]:
    try:
        n = float(model.params_b) * 1e9
        a = float(getattr(model, "active_params_b", None) or model.params_b) * 1e9
    except (AttributeError, TypeError, ValueError) as exc:
        raise ConfigurationError(f"model {getattr(model, 'name', model)!r} has no params_b") from exc
    return n, a


@dataclass(frozen=True)
class TokenBound:
    """Bits irreversibly written per generated token and the Landauer energy of each floor (J)."""

    kv_bits: float
    activation_bits: float
    output_bits: float
    flops: float
    bits_per_op: float
    j_per_bit: float

    @property
    def memory_j(self) -> float:
        """KV entry + sampled token (what must persist)."""
        return (self.kv_bits + self.output_bits) * self.j_per_bit

    @property
    def write_j(self) -> float:
        """KV entry + activations overwritten + sampled token (conventional machine)."""
        return (self.kv_bits + self.activation_bits + self.output_bits) * self.j_per_bit

    @property
    def flop_j(self) -> float:
        """FLOPs x bits erased per operation."""
        return self.flops * self.bits_per_op * self.j_per_bit


def inference_token_bounds(model: Any, precision: str = "bf16", *, kv_precision: str | None = None,
                           act_precision: str = "bf16", flops: float | None = None,
                           kv_bits: float | None = None, bits_per_op: float = 1.0,
                           temperature_k: float = 300.0) -> TokenBound:
    """All per-token floors (see module docstring).  ``kv_precision`` defaults to bf16 (or
    ``precision`` when that is fp32/fp16); ``flops`` defaults to ``2 * active params``."""
    _, active = _params(model)
    _bits(precision)
    kvp = kv_precision or default_kv_precision(precision)
    if kv_bits is None:
        kv_bits = float(model.kv_bytes_per_token(_bits(kvp) / 8.0)) * 8.0
    act_bits = float(model.layers) * float(model.hidden_size) * _bits(act_precision)
    out_bits = math.log2(float(model.vocab_size))
    f = 2.0 * active if flops is None else float(flops)
    if bits_per_op < 0 or f < 0 or kv_bits < 0:
        raise ConfigurationError("flops, kv_bits and bits_per_op must be >= 0")
    return TokenBound(kv_bits, act_bits, out_bits, f, bits_per_op, landauer_j_per_bit(temperature_k))


def inference_token_lower_bound_j(model: Any, precision: str = "bf16", *,
                                  kv_precision: str | None = None, act_precision: str = "bf16",
                                  include_activations: bool = True, kv_bits: float | None = None,
                                  temperature_k: float = 300.0) -> float:
    """Landauer energy (J) of the bits one generated token must irreversibly write:
    ``(kv_bits + [layers*hidden*act_bits] + log2 V) * k_B T ln 2``."""
    b = inference_token_bounds(model, precision, kv_precision=kv_precision,
                               act_precision=act_precision, kv_bits=kv_bits,
                               temperature_k=temperature_k)
    return b.write_j if include_activations else b.memory_j


def inference_flop_bound_j(model: Any, *, flops: float | None = None, bits_per_op: float = 1.0,
                           temperature_k: float = 300.0) -> float:
    """FLOP form per token (J): ``FLOPs * bits_per_op * k_B T ln 2`` (``FLOPs = 2 N_active``
    unless given).  Assumes conventional irreversible arithmetic."""
    return inference_token_bounds(model, flops=flops, bits_per_op=bits_per_op,
                                  temperature_k=temperature_k).flop_j


def training_steps(tokens: float, tokens_per_step: float = DEFAULT_TOKENS_PER_STEP) -> int:
    """Optimizer steps to consume ``tokens``: ``ceil(tokens / tokens_per_step)``."""
    if tokens < 0 or tokens_per_step <= 0:
        raise ConfigurationError("tokens must be >= 0 and tokens_per_step > 0")
    return math.ceil(tokens / tokens_per_step)


def training_lower_bound_j(model: Any, tokens: float, precision: str = "bf16", *,
                           tokens_per_step: float = DEFAULT_TOKENS_PER_STEP,
                           temperature_k: float = 300.0) -> float:
    """Memory-update (update-wall) bound of Chen et al. 2024 for training on ``tokens`` tokens
    (J): every step irreversibly rewrites all ``N`` parameters at ``b`` bits,
    ``N * b * ceil(tokens/tokens_per_step) * k_B T ln 2``."""
    n, _ = _params(model)
    return n * _bits(precision) * training_steps(tokens, tokens_per_step) \
        * landauer_j_per_bit(temperature_k)


def training_flop_bound_j(model: Any, tokens: float, precision: str = "bf16", *,
                          flops: float | None = None, temperature_k: float = 300.0) -> float:
    """FLOP form of the training bound (J): ``FLOPs * b * k_B T ln 2``, each FLOP one ``b``-bit
    memory update; ``FLOPs = 6 * N_active * tokens`` unless given."""
    _, active = _params(model)
    f = 6.0 * active * tokens if flops is None else float(flops)
    if f < 0:
        raise ConfigurationError("flops must be >= 0")
    return f * _bits(precision) * landauer_j_per_bit(temperature_k)


def gap_orders_of_magnitude(estimate_j: float, bound_j: float) -> float:
    """How far an energy estimate sits above a lower bound: ``log10(estimate / bound)``."""
    if not (estimate_j > 0 and bound_j > 0):
        raise ConfigurationError(
            f"estimate_j={estimate_j!r} and bound_j={bound_j!r} must both be > 0")
    return math.log10(estimate_j / bound_j)


__all__ = [
    "BITS", "BOLTZMANN_J_PER_K", "TokenBound", "gap_orders_of_magnitude", "inference_flop_bound_j",
    "inference_token_bounds", "inference_token_lower_bound_j", "landauer_j_per_bit",
    "training_flop_bound_j", "training_lower_bound_j", "training_steps",
]
