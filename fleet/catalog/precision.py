"""The one precision vocabulary: names, aliases, bits per element and tensor-core families.

Every layer that takes a precision (the Python API, the CLI's ``--precision``/``--kv-precision``,
a scenario's ``serve[].precision``/``kv_precision``, the ML.ENERGY reader, the work model's byte
counts, the physical lower bounds, the accelerator's tensor-core format) normalises it here, so
they all accept and refuse exactly the same names.

Two kinds of name live here:

* **storage precisions** (:data:`STORAGE`): how weights or KV-cache entries are stored, with
  their bits per element (block scales included).  These are what a deployment names.
* **compute formats** (:data:`COMPUTE_FORMATS`): the tensor-core formats an accelerator
  publishes a peak for (``tf32`` is one, though nothing is stored in it).
  :func:`compute_format` maps a storage precision to the format family its GEMMs would use
  (``mxfp4``/``nvfp4`` -> ``fp4``); whether a chip runs it natively is the hardware layer's call.

This module imports nothing from fleet but :mod:`fleet.errors`.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigurationError

__all__ = ["Precision", "STORAGE", "ALIASES", "COMPUTE_FORMATS", "PRECISION_BITS", "PRECISION_BYTES",
           "normalize_precision", "precision_bits", "precision_bytes", "activation_precision",
           "default_kv_precision", "compute_format", "valid_precisions"]


@dataclass(frozen=True)
class Precision:
    """One storage precision: ``bits`` per stored element (block scales included) and its source."""

    name: str
    bits: float
    family: str          # the tensor-core format family of its GEMMs (see compute_format)
    source: str


#: The canonical storage precisions, in order of decreasing width.
STORAGE: dict[str, Precision] = {p.name: p for p in (
    Precision("fp32", 32.0, "fp32", "IEEE 754 binary32"),
    Precision("bf16", 16.0, "bf16", "bfloat16 (Google Brain; Kalamkar et al., arXiv 1905.12322)"),
    Precision("fp16", 16.0, "fp16", "IEEE 754 binary16"),
    Precision("fp8", 8.0, "fp8", "OCP 8-bit floating point E4M3/E5M2 (Micikevicius et al., arXiv 2209.05433)"),
    Precision("int8", 8.0, "int8", "8-bit integer (per-channel scales not counted)"),
    Precision("fp6", 6.0, "fp6", "FP6 E3M2 as in ZeroQuant(4+2) / FP6-LLM (arXiv 2312.08583, 2401.14112)"),
    Precision("nvfp4", 4.5, "fp4", "NVIDIA NVFP4: E2M1 values + one E4M3 scale per 16 values = 4 + 8/16 bit"),
    Precision("mxfp4", 4.25, "fp4", "OCP Microscaling MXFP4 v1.0: E2M1 values + one E8M0 scale per 32 values "
                                    "= 4 + 8/32 bit"),
    Precision("int4", 4.0, "int4", "4-bit integer weights (AWQ/GPTQ group scales not counted)"),
    Precision("fp4", 4.0, "fp4", "FP4 E2M1 values without block scales"),
    Precision("int2", 2.0, "int2", "2-bit integer, as KIVI's 2-bit KV cache (arXiv 2402.02750)"),
)}

#: Other spellings (framework dtypes, quantisation schemes) -> canonical storage name.
ALIASES: dict[str, str] = {
    "float32": "fp32", "float": "fp32",
    "bfloat16": "bf16",
    "float16": "fp16", "half": "fp16",
    "float8": "fp8", "e4m3": "fp8", "e5m2": "fp8", "fp8_e4m3": "fp8", "fp8_e5m2": "fp8",
    "float8_e4m3fn": "fp8", "float8_e5m2": "fp8",
    "e3m2": "fp6", "e2m3": "fp6",
    "e2m1": "fp4",
    "w4a16": "int4", "awq": "int4", "gptq": "int4",
}

#: Tensor-core formats with a published peak (the catalog's ``peak_*`` columns).
COMPUTE_FORMATS: tuple[str, ...] = ("fp32", "tf32", "bf16", "fp16", "fp8", "int8", "int4", "fp4")

#: bits / bytes per stored element of each canonical storage precision
PRECISION_BITS: dict[str, float] = {k: p.bits for k, p in STORAGE.items()}
PRECISION_BYTES: dict[str, float] = {k: p.bits / 8.0 for k, p in STORAGE.items()}


def valid_precisions() -> str:
    """The accepted names, for error messages: canonical names, then the aliases."""
    return (", ".join(STORAGE) + " (aliases: "
            + ", ".join(f"{a}={c}" for a, c in ALIASES.items()) + ")")


def _key(name) -> str:
    return str(name).strip().lower().replace("-", "_")


def normalize_precision(name: str) -> str:
    """The canonical storage name of ``name`` (case-insensitive; aliases such as ``bfloat16``,
    ``float16``, ``e4m3``, ``awq`` accepted).  Raises :class:`ConfigurationError` listing the
    valid names."""
    if isinstance(name, Precision):
        return name.name
    if not isinstance(name, str):
        raise ConfigurationError(f"precision must be a name, got {name!r}; expected one of {valid_precisions()}")
    k = _key(name)
    k = ALIASES.get(k, k)
    if k not in STORAGE:
        raise ConfigurationError(f"unknown precision {name!r}; expected one of {valid_precisions()}")
    return k


def precision_bits(name: str) -> float:
    """Bits per stored element of ``name`` (block scales included)."""
    return STORAGE[normalize_precision(name)].bits


def precision_bytes(name: str) -> float:
    """Bytes per stored element of ``name`` (block scales included)."""
    return PRECISION_BYTES[normalize_precision(name)]


def activation_precision(precision: str) -> str:
    """The activation dtype that goes with a weight precision: fp32/fp16 stay, everything else
    runs its activations in bf16 (vLLM's ``dtype="auto"`` for bf16 checkpoints and quantised ones)."""
    p = normalize_precision(precision)
    return p if p in ("fp32", "fp16") else "bf16"


def default_kv_precision(precision: str) -> str:
    """The KV-cache precision when none is given: the activation dtype (vLLM's
    ``kv_cache_dtype="auto"``)."""
    return activation_precision(precision)


def compute_format(name: str) -> str:
    """The tensor-core format family of ``name``: a compute format (``tf32`` included) as is, a
    storage precision or alias through its family (``mxfp4``/``nvfp4`` -> ``fp4``, ``awq`` ->
    ``int4``).  May return a family without a published peak (``fp6``, ``int2``): the hardware
    layer decides what runs it.  Unknown names raise :class:`ConfigurationError`."""
    k = _key(name)
    if k in COMPUTE_FORMATS:
        return k
    return STORAGE[normalize_precision(name)].family
