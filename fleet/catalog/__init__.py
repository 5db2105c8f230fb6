"""The catalog: accelerators and LLM architectures as data, every number with unit and source.

Two CSV tables live beside this module, ``accelerators.csv`` and ``models.csv``; ``schema.yaml``
declares every column (type, unit, kind = spec | measured | estimated | price, and the source
column that must be filled whenever a value is).  Loading validates every row against the schema
and raises :class:`~fleet.errors.CatalogError` naming the file, the 1-based line (the header is
line 1) and the column.

Units (as stored, and as the dataclass attributes carry them): TFLOPS/TOPS = 1e12 op/s, GB = 1e9 B,
GB/s = 1e9 B/s one direction, W, MHz, mm^2, kgCO2e, USD.  Parameter counts in billions.

``FLEET_CATALOG_DIR`` points the loaders at another directory holding the two CSV files (the
schema always comes from the package).

This package imports nothing from fleet except :mod:`fleet.errors` and :mod:`fleet.paths`.
"""

from __future__ import annotations

import csv
import difflib
import functools
import math
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Iterable

import pandas as pd

from ..errors import CatalogError, ConfigurationError
from ..paths import CATALOG_DIR
from .precision import COMPUTE_FORMATS, compute_format, normalize_precision

__all__ = [
    "AcceleratorSpec",
    "ModelSpec",
    "PRECISIONS",
    "accelerators",
    "models",
    "schema",
    "get_accelerator",
    "get_model",
    "accelerator_names",
    "model_names",
    "load_accelerators",
    "load_models",
    "catalog_dir",
    "normalize_name",
    "normalize_precision",
]

#: Precisions that :meth:`AcceleratorSpec.peak_tflops` understands: the tensor-core formats of
#: the one precision vocabulary (:mod:`fleet.catalog.precision`).
PRECISIONS = COMPUTE_FORMATS

_SOURCE_SUFFIX = "_source"


# --------------------------------------------------------------------------------------------
# schema and files


@functools.lru_cache(maxsize=None)
def schema() -> dict:
    """The parsed ``schema.yaml``: ``{"accelerators": {...}, "models": {...}, "methods": {...}}``."""
    path = CATALOG_DIR / "schema.yaml"
    from .._yaml import parse_yaml

    return parse_yaml(path.read_text(encoding="utf-8"), path, error=CatalogError, what="catalog schema")


def catalog_dir() -> Path:
    """Directory holding the catalog CSV files: ``$FLEET_CATALOG_DIR`` or the package directory."""
    env = os.environ.get("FLEET_CATALOG_DIR")
    return Path(env) if env else CATALOG_DIR


def normalize_name(name: str) -> str:
    """Lookup key for names: lower case with ``-``, ``_`` and whitespace removed
    (``H100 SXM`` == ``h100-sxm`` == ``H100_SXM``)."""
    return re.sub(r"[\s_\-]+", "", str(name).strip().lower())


def _parse_cell(raw: str, spec: dict, *, path: Path, line: int, column: str) -> Any:
    """Parse one cell by its schema entry; blank -> None.  Raises CatalogError."""
    text = raw.strip()
    typ = spec.get("type", "str")
    if text == "":
        if spec.get("required"):
            raise CatalogError("value missing", path=path, line=line, column=column,
                               expected=f"a {typ} ({spec.get('meaning', column)})")
        return () if typ == "list" else None
    if typ == "str":
        allowed = spec.get("allowed")
        if allowed and text not in allowed:
            raise CatalogError(f"{text!r} is not allowed", path=path, line=line, column=column,
                               expected="one of " + ", ".join(allowed))
        return text
    if typ == "list":
        return tuple(a.strip() for a in text.split(";") if a.strip())
    if typ == "bool":
        low = text.lower()
        if low in ("true", "1", "yes"):
            return True
        if low in ("false", "0", "no"):
            return False
        raise CatalogError(f"{text!r} is not a boolean", path=path, line=line, column=column,
                           expected="true or false")
    if typ in ("float", "int"):
        try:
            value = float(text)
        except ValueError as exc:
            raise CatalogError(f"{text!r} is not a number", path=path, line=line, column=column,
                               expected=f"a number in {spec.get('unit', '-')}") from exc
        if not math.isfinite(value):
            raise CatalogError(f"{text!r} is not finite", path=path, line=line, column=column,
                               expected=f"a finite number in {spec.get('unit', '-')}")
        if typ == "int":
            if value != int(value):
                raise CatalogError(f"{text!r} is not a whole number", path=path, line=line,
                                   column=column, expected="an integer")
            value = int(value)
        if spec.get("positive") and value <= 0:
            raise CatalogError(f"{text} is not positive", path=path, line=line, column=column,
                               expected=f"a number > 0 in {spec.get('unit', '-')}")
        if value < 0:
            raise CatalogError(f"{text} is negative", path=path, line=line, column=column,
                               expected=f"a number >= 0 in {spec.get('unit', '-')}")
        return value
    raise CatalogError(f"schema type {typ!r} unknown", path=CATALOG_DIR / "schema.yaml", column=column)


def _read_table(table: str, path: Path) -> list[tuple[int, dict[str, Any]]]:
    """Read and validate one catalog CSV against its schema; returns (line, row) pairs."""
    cols: dict[str, dict] = schema()[table]["columns"]
    if not path.is_file():
        raise CatalogError("catalog file not found", path=path,
                           expected=f"a CSV with columns {', '.join(cols)}")
    rows: list[tuple[int, dict[str, Any]]] = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader)
        except StopIteration as exc:
            raise CatalogError("empty file", path=path, line=1,
                               expected="a header row: " + ",".join(cols)) from exc
        header = [h.strip() for h in header]
        missing = [c for c in cols if c not in header]
        unknown = [h for h in header if h not in cols]
        if missing or unknown:
            msg = []
            if missing:
                msg.append("missing columns " + ", ".join(missing))
            if unknown:
                msg.append("unknown columns " + ", ".join(unknown))
            raise CatalogError("; ".join(msg), path=path, line=1,
                               column=(missing or unknown)[0],
                               expected="the columns declared in fleet/catalog/schema.yaml")
        start = 2
        for cells in reader:
            line = start
            start = reader.line_num + 1
            if not cells or all(not c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise CatalogError(f"{len(cells)} cells, header has {len(header)}", path=path,
                                   line=line, column=None,
                                   expected=f"{len(header)} comma-separated cells (quote cells containing commas)")
            raw = dict(zip(header, cells))
            row = {c: _parse_cell(raw[c], cols[c], path=path, line=line, column=c) for c in cols}
            for c, spec in cols.items():
                src = spec.get("source")
                if src and row[c] not in (None, ()) and not row.get(src):
                    raise CatalogError(f"{c} = {raw[c].strip()} has no source", path=path, line=line,
                                       column=src, expected=f"a citation for {c} in {src}")
            rows.append((line, row))
    if not rows:
        raise CatalogError("no rows", path=path, line=2, expected="at least one catalog row")
    return rows


def _build_index(entries: Iterable[tuple[int, str, Iterable[str]]], path: Path) -> dict[str, str]:
    """Map every normalised name/alias to its canonical name; clashes are errors."""
    index: dict[str, str] = {}
    for line, canonical, names in entries:
        for n in names:
            key = normalize_name(n)
            if not key:
                continue
            other = index.get(key)
            if other is not None and other != canonical:
                raise CatalogError(f"name {n!r} already names {other!r}", path=path, line=line,
                                   column="aliases", expected="names unique across rows")
            index[key] = canonical
    return index


def _unknown(kind: str, name: str, index: dict[str, str], canon: list[str]) -> CatalogError:
    key = normalize_name(name)
    close_keys = difflib.get_close_matches(key, list(index), n=10, cutoff=0.3)
    picks: list[str] = []
    for k in close_keys:
        if index[k] not in picks:
            picks.append(index[k])
        if len(picks) == 3:
            break
    if len(picks) < 3:
        for c in difflib.get_close_matches(str(name), canon, n=6, cutoff=0.0):
            if c not in picks:
                picks.append(c)
            if len(picks) == 3:
                break
    return CatalogError(f"unknown {kind} {name!r}; closest known: {', '.join(picks)}",
                        path=None, expected=f"one of the names listed by `fleet {'hardware' if kind == 'accelerator' else 'models'} list`")


# --------------------------------------------------------------------------------------------
# accelerators


@dataclass(frozen=True)
class AcceleratorSpec:
    """One accelerator row.  Units are in the attribute names (TFLOPS = 1e12 FLOP/s, GB = 1e9 B,
    GB/s one direction, W, MHz, mm^2).  ``None`` means not defined / not published."""

    name: str
    aliases: tuple[str, ...]
    vendor: str
    architecture: str
    form_factor: str
    release_year: int | None
    process_node_nm: float | None
    die_area_mm2: float | None
    transistors_b: float | None
    sm_count: int | None
    max_clock_mhz: float | None
    base_clock_mhz: float | None
    peak_fp32_tflops: float | None
    peak_tf32_tflops: float | None
    peak_bf16_tflops: float | None
    peak_fp16_tflops: float | None
    peak_fp8_tflops: float | None
    peak_int8_tops: float | None
    peak_fp4_tflops: float | None
    matmul_efficiency: float | None
    memory_gb: float
    memory_bw_gbs: float
    memory_tech: str
    tdp_w: float
    power_min_w: float | None
    power_max_w: float | None
    idle_w: float | None
    nvlink_gbs: float | None
    pcie_gen: int | None
    pcie_gbs: float | None
    price_usd_per_gpu_hour: float | None
    purchase_usd: float | None
    embodied_kgco2e: float | None
    standby_w: float | None = None      # W per GPU powered down (modelled; schema.yaml methods.standby)
    notes: str | None = None
    scaleup_gpus: int | None = None          # accelerators per scale-up domain (blank: 8)
    estimated_columns: tuple[str, ...] = ()  # columns whose values are estimates (estimate_source)
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    # --- derived ------------------------------------------------------------------------
    def precisions(self) -> tuple[str, ...]:
        """Precisions with a peak defined directly or through a documented fallback."""
        out = []
        for p in PRECISIONS:
            try:
                self.peak_tflops(p)
            except CatalogError:
                continue
            out.append(p)
        return tuple(out)

    def _direct(self, precision: str) -> float | None:
        return {
            "fp32": self.peak_fp32_tflops,
            "tf32": self.peak_tf32_tflops,
            "bf16": self.peak_bf16_tflops,
            "fp16": self.peak_fp16_tflops,
            "fp8": self.peak_fp8_tflops,
            "int8": self.peak_int8_tops,
            "fp4": self.peak_fp4_tflops,
            "int4": None,
        }[precision]

    def peak_tflops(self, precision: str) -> float:
        """Dense peak throughput in TFLOPS (TOPS for int8) at ``precision``.

        Fallbacks (documented, not guessed numbers): bf16 <-> fp16 use each other when only one is
        published (V100 has fp16 tensor cores only).  ``int4`` and ``fp4`` are treated as
        weight-only formats when the chip has no native peak: the weights are dequantised and the
        matmul runs at the best floating tensor precision the chip has (fp8, else bf16, else
        fp16).  Anything else undefined raises :class:`CatalogError` naming the GPU and the
        precisions it supports.
        """
        try:
            p = compute_format(precision)
        except ConfigurationError:
            p = None
        if p not in PRECISIONS:
            raise CatalogError(f"unknown precision {precision!r}", expected="one of " + ", ".join(PRECISIONS))
        v = self._direct(p)
        if v is None and p in ("bf16", "fp16"):
            v = self._direct("fp16" if p == "bf16" else "bf16")
        if v is None and p in ("int4", "fp4"):
            for q in ("fp8", "bf16", "fp16"):
                v = self._direct(q)
                if v is not None:
                    break
        if v is None:
            have = [q for q in PRECISIONS if self._direct(q) is not None]
            raise CatalogError(
                f"{self.name} has no {p} peak (not supported by the hardware); it has: "
                + ", ".join(have), expected="one of " + ", ".join(have))
        return float(v)

    @property
    def memory_bytes(self) -> float:
        """Device memory in bytes.

        GPU vendors market memory in binary units: an "80 GB" H100 carries five 16 GiB HBM3
        stacks (nvidia-smi reports 81,559 MiB usable = 85.5e9 B), a "24 GB" L4 24 GiB of GDDR6.
        So the marketed figure is read as GiB; reading it as 1e9 B would understate the KV-cache
        room by 7 % and reject deployments (Llama-70B bf16 on 2 x H100) that vLLM runs.
        """
        return self.memory_gb * 2.0**30

    @property
    def memory_bw_bytes_per_s(self) -> float:
        """Peak memory bandwidth in bytes/s."""
        return self.memory_bw_gbs * 1e9

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["aliases"] = list(self.aliases)
        return d


_ACC_FIELDS = {f.name for f in fields(AcceleratorSpec)}


def _row_to_obj(cls, row: dict[str, Any]):
    names = {f.name for f in fields(cls)}
    kwargs = {k: v for k, v in row.items() if k in names and k != "sources"}
    kwargs["sources"] = {k: v for k, v in row.items() if k.endswith(_SOURCE_SUFFIX) or k == "source"
                         if v}
    return cls(**kwargs)


@dataclass(frozen=True)
class _Table:
    path: Path
    rows: tuple  # of specs
    lines: dict[str, int]
    index: dict[str, str]
    frame: pd.DataFrame

    def by_name(self, canonical: str):
        return self.rows[self.order[canonical]]

    @functools.cached_property
    def order(self) -> dict[str, int]:
        return {name: i for i, name in enumerate(self.lines)}


def _frame(rows: list[tuple[int, dict]], table: str) -> pd.DataFrame:
    cols = list(schema()[table]["columns"])
    data = []
    for _, r in rows:
        d = dict(r)
        for c in cols:
            if isinstance(d.get(c), tuple):
                d[c] = ";".join(d[c])
        data.append(d)
    df = pd.DataFrame(data, columns=cols)
    for c, spec in schema()[table]["columns"].items():
        if spec.get("type") in ("float", "int"):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(float)
    return df


@functools.lru_cache(maxsize=8)
def _accelerator_table(path: str) -> _Table:
    p = Path(path)
    rows = _read_table("accelerators", p)
    specs: list[AcceleratorSpec] = []
    lines: dict[str, int] = {}
    for line, r in rows:
        if r["name"] in lines:
            raise CatalogError(f"duplicate name {r['name']!r} (first on line {lines[r['name']]})",
                               path=p, line=line, column="name", expected="unique names")
        lo, hi, tdp = r["power_min_w"], r["power_max_w"], r["tdp_w"]
        if lo is not None and hi is not None and lo > hi:
            raise CatalogError(f"power_min_w {lo} > power_max_w {hi}", path=p, line=line,
                               column="power_min_w", expected="power_min_w <= power_max_w")
        if hi is not None and tdp > hi:
            raise CatalogError(f"tdp_w {tdp} above power_max_w {hi}", path=p, line=line,
                               column="tdp_w", expected="tdp_w <= power_max_w")
        est = r.get("estimated_columns") or ()
        bad = [c for c in est if c not in schema()["accelerators"]["columns"]
               or schema()["accelerators"]["columns"][c].get("kind") == "id"]
        if bad:
            raise CatalogError(f"estimated_columns names {', '.join(bad)}", path=p, line=line,
                               column="estimated_columns", expected="value columns of accelerators.csv")
        if est and not r.get("estimate_source"):
            raise CatalogError("estimated_columns without estimate_source", path=p, line=line,
                               column="estimate_source", expected="how the estimated columns were estimated")
        eff = r["matmul_efficiency"]
        if eff is not None and eff > 1:
            raise CatalogError(f"matmul_efficiency {eff} > 1", path=p, line=line,
                               column="matmul_efficiency", expected="a fraction in (0, 1]")
        specs.append(_row_to_obj(AcceleratorSpec, r))
        lines[r["name"]] = line
    index = _build_index(((ln, r["name"], (r["name"], *r["aliases"])) for ln, r in rows), p)
    return _Table(p, tuple(specs), lines, index, _frame(rows, "accelerators"))


def load_accelerators(path: str | Path | None = None) -> tuple[AcceleratorSpec, ...]:
    """All accelerator rows from ``path`` (default: the catalog's ``accelerators.csv``)."""
    return _accelerator_table(str(_resolve(path, "accelerators"))).rows


def accelerators(path: str | Path | None = None) -> pd.DataFrame:
    """The accelerator table as a DataFrame (numeric columns as float, NaN where blank)."""
    return _accelerator_table(str(_resolve(path, "accelerators"))).frame.copy()


def accelerator_names(path: str | Path | None = None) -> list[str]:
    return [a.name for a in load_accelerators(path)]


def get_accelerator(name: str | AcceleratorSpec, path: str | Path | None = None) -> AcceleratorSpec:
    """Look up an accelerator by canonical name or alias (case, ``-``, ``_`` and spaces ignored).

    Raises :class:`CatalogError` listing the three closest names when unknown."""
    if isinstance(name, AcceleratorSpec):
        return name
    t = _accelerator_table(str(_resolve(path, "accelerators")))
    canon = t.index.get(normalize_name(name))
    if canon is None:
        raise _unknown("accelerator", name, t.index, [s.name for s in t.rows])
    return t.by_name(canon)


def _resolve(path: str | Path | None, table: str) -> Path:
    if path is not None:
        return Path(path)
    return catalog_dir() / schema()[table]["file"]


# --------------------------------------------------------------------------------------------
# models


@dataclass(frozen=True)
class ModelSpec:
    """One LLM architecture row (values from the official config.json).  Parameter counts in
    billions; sizes in elements; ``None`` where not applicable."""

    name: str
    hf_id: str | None
    aliases: tuple[str, ...]
    family: str
    architecture: str
    params_b: float
    active_params_b: float
    layers: int
    hidden_size: int
    heads: int
    kv_heads: int
    head_dim: int
    intermediate_size: int | None
    mlp_gated: bool
    experts: int | None
    experts_per_token: int | None
    shared_experts: int | None
    moe_intermediate_size: int | None
    dense_layers: int | None
    moe_layer_interval: int | None
    attention: str
    q_lora_rank: int | None
    kv_lora_rank: int | None
    qk_rope_head_dim: int | None
    sliding_window: int | None
    sliding_window_layers: float | None
    vocab_size: int
    max_context: int
    tied_embeddings: bool
    native_precision: str
    notes: str | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)

    @property
    def is_moe(self) -> bool:
        return self.architecture == "moe"

    @property
    def source(self) -> str:
        return self.sources.get("source", "")

    @property
    def moe_layers(self) -> int:
        """Number of MoE layers (0 for dense models)."""
        if not self.is_moe:
            return 0
        rest = self.layers - (self.dense_layers or 0)
        return -(-rest // (self.moe_layer_interval or 1))

    @property
    def dense_ffn_layers(self) -> int:
        """Number of layers with a dense FFN."""
        return self.layers - self.moe_layers

    def attention_params_per_layer(self) -> int:
        """Weights of one attention block (projections only; norms and biases ignored)."""
        h, hd = self.hidden_size, self.head_dim
        if self.attention == "mla":
            rope, kvr = self.qk_rope_head_dim or 0, self.kv_lora_rank or 0
            if self.q_lora_rank:
                q = h * self.q_lora_rank + self.q_lora_rank * self.heads * (hd + rope)
            else:
                q = h * self.heads * (hd + rope)
            kv = h * (kvr + rope) + kvr * self.heads * (hd + hd)
            return q + kv + self.heads * hd * h
        return h * self.heads * hd + 2 * h * self.kv_heads * hd + self.heads * hd * h

    def _ffn_params(self, width: int | None) -> int:
        return (3 if self.mlp_gated else 2) * self.hidden_size * (width or 0)

    def weight_params(self, active: bool = False) -> float:
        """Parameter count computed from the architecture columns (projections, FFNs, experts,
        routers and embeddings; norms, biases and position tables ignored).  ``active=True``
        counts only the routed experts used per token (plus shared experts)."""
        attn = self.layers * self.attention_params_per_layer()
        dense = self.dense_ffn_layers * self._ffn_params(self.intermediate_size)
        moe = 0
        if self.is_moe:
            expert = self._ffn_params(self.moe_intermediate_size)
            n = (self.experts_per_token if active else self.experts) or 0
            moe = self.moe_layers * ((n + (self.shared_experts or 0)) * expert
                                     + self.hidden_size * (self.experts or 0))
        emb = self.vocab_size * self.hidden_size * (1 if self.tied_embeddings else 2)
        return float(attn + dense + moe + emb)

    def kv_bytes_per_token(self, bytes_per_element: float = 2.0) -> float:
        """KV-cache bytes per token over all layers (full attention everywhere; MLA caches the
        compressed latent kv_lora_rank + qk_rope_head_dim per layer)."""
        if self.attention == "mla":
            per_layer = (self.kv_lora_rank or 0) + (self.qk_rope_head_dim or 0)
        else:
            per_layer = 2 * self.kv_heads * self.head_dim
        return float(self.layers * per_layer * bytes_per_element)

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in fields(self)}
        d["aliases"] = list(self.aliases)
        d["is_moe"] = self.is_moe
        return d


@functools.lru_cache(maxsize=8)
def _model_table(path: str) -> _Table:
    p = Path(path)
    rows = _read_table("models", p)
    specs: list[ModelSpec] = []
    lines: dict[str, int] = {}
    for line, r in rows:
        if r["name"] in lines:
            raise CatalogError(f"duplicate name {r['name']!r} (first on line {lines[r['name']]})",
                               path=p, line=line, column="name", expected="unique names")
        if r["architecture"] == "moe":
            for c in ("experts", "experts_per_token", "moe_intermediate_size"):
                if r[c] is None:
                    raise CatalogError("MoE model without " + c, path=p, line=line, column=c,
                                       expected="a positive integer for MoE models")
            if r["experts_per_token"] > r["experts"]:
                raise CatalogError("experts_per_token > experts", path=p, line=line,
                                   column="experts_per_token", expected="top-k <= experts")
        elif r["intermediate_size"] is None:
            raise CatalogError("dense model without intermediate_size", path=p, line=line,
                               column="intermediate_size", expected="a positive integer")
        if r["attention"] == "mla" and (r["kv_lora_rank"] is None or r["qk_rope_head_dim"] is None):
            raise CatalogError("MLA model without kv_lora_rank/qk_rope_head_dim", path=p, line=line,
                               column="kv_lora_rank", expected="both set for attention = mla")
        if r["heads"] % r["kv_heads"]:
            raise CatalogError(f"heads {r['heads']} not a multiple of kv_heads {r['kv_heads']}",
                               path=p, line=line, column="kv_heads", expected="a divisor of heads")
        if r["active_params_b"] > r["params_b"] * 1.0001:
            raise CatalogError("active_params_b > params_b", path=p, line=line,
                               column="active_params_b", expected="active <= total")
        specs.append(_row_to_obj(ModelSpec, r))
        lines[r["name"]] = line

    def names(r):
        out = [r["name"], *r["aliases"]]
        for hid in [r["hf_id"], *[a for a in r["aliases"] if "/" in a]]:
            if hid:
                out += [hid, hid.split("/", 1)[-1]]
        return out

    index = _build_index(((ln, r["name"], names(r)) for ln, r in rows), p)
    return _Table(p, tuple(specs), lines, index, _frame(rows, "models"))


def load_models(path: str | Path | None = None) -> tuple[ModelSpec, ...]:
    """All model rows from ``path`` (default: the catalog's ``models.csv``)."""
    return _model_table(str(_resolve(path, "models"))).rows


def models(path: str | Path | None = None) -> pd.DataFrame:
    """The model table as a DataFrame (numeric columns as float, NaN where blank)."""
    return _model_table(str(_resolve(path, "models"))).frame.copy()


def model_names(path: str | Path | None = None) -> list[str]:
    return [m.name for m in load_models(path)]


def get_model(name: str | ModelSpec, path: str | Path | None = None) -> ModelSpec:
    """Look up a model by short name, alias or Hugging Face id (with or without the org part);
    case, ``-``, ``_`` and spaces ignored.  Raises :class:`CatalogError` with the three closest
    names when unknown."""
    if isinstance(name, ModelSpec):
        return name
    t = _model_table(str(_resolve(path, "models")))
    canon = t.index.get(normalize_name(name))
    if canon is None:
        raise _unknown("model", name, t.index, [s.name for s in t.rows])
    return t.by_name(canon)
