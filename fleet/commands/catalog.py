"""``fleet hardware list|show`` and ``fleet models list|show``: the catalog on the command line.

Human output is an aligned table with units in the headers; ``--json`` prints every column
(units are those of ``fleet/catalog/schema.yaml``).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from .. import catalog
from ._common import add_json_flag, emit

# (header with unit, attribute, format)
_HW_COLUMNS: list[tuple[str, str, str]] = [
    ("name", "name", "s"),
    ("arch", "architecture", "s"),
    ("bf16 TFLOPS", "peak_bf16_tflops", ".0f"),
    ("fp8 TFLOPS", "peak_fp8_tflops", ".0f"),
    ("mem GB", "memory_gb", ".0f"),
    ("mem GB/s", "memory_bw_gbs", ".0f"),
    ("memory", "memory_tech", "s"),
    ("TDP W", "tdp_w", ".0f"),
    ("cap W", "_cap_range", "s"),
    ("link GB/s", "nvlink_gbs", ".0f"),
    ("USD/h", "price_usd_per_gpu_hour", ".2f"),
    ("kgCO2e", "embodied_kgco2e", ".1f"),
]

_MODEL_COLUMNS: list[tuple[str, str, str]] = [
    ("name", "name", "s"),
    ("arch", "architecture", "s"),
    ("params B", "params_b", ".1f"),
    ("active B", "active_params_b", ".1f"),
    ("layers", "layers", "d"),
    ("hidden", "hidden_size", "d"),
    ("heads", "heads", "d"),
    ("kv", "kv_heads", "d"),
    ("experts", "_experts", "s"),
    ("attn", "attention", "s"),
    ("context", "max_context", "d"),
    ("dtype", "native_precision", "s"),
    ("hf_id", "hf_id", "s"),
]


def _value(obj: Any, attr: str) -> Any:
    if attr == "_cap_range":
        lo, hi = obj.power_min_w, obj.power_max_w
        if lo is None and hi is None:
            return None
        return f"{'?' if lo is None else f'{lo:.0f}'}-{'?' if hi is None else f'{hi:.0f}'}"
    if attr == "_experts":
        if not obj.is_moe:
            return None
        shared = f"+{obj.shared_experts}" if obj.shared_experts else ""
        return f"{obj.experts_per_token}/{obj.experts}{shared}"
    return getattr(obj, attr)


def _fmt(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v == "":
        return "-"
    if spec == "s":
        return str(v)
    return format(v, spec)


def format_table(rows: Sequence[Any], columns: list[tuple[str, str, str]]) -> str:
    """Aligned text table: text left-aligned, numbers right-aligned."""
    cells = [[_fmt(_value(r, a), f) for _, a, f in columns] for r in rows]
    widths = [max([len(h)] + [len(c[i]) for c in cells]) for i, (h, _, _) in enumerate(columns)]
    right = [f != "s" for _, _, f in columns]

    def line(items: Sequence[str]) -> str:
        return "  ".join(s.rjust(w) if r else s.ljust(w) for s, w, r in zip(items, widths, right)).rstrip()

    out = [line([h for h, _, _ in columns]), line(["-" * w for w in widths])]
    out += [line(c) for c in cells]
    return "\n".join(out)


def _show_text(obj: Any, table: str) -> str:
    cols = catalog.schema()[table]["columns"]
    d = obj.to_dict()
    lines = []
    width = max(len(c) for c in cols)
    for c, spec in cols.items():
        if c.endswith("_source") or c == "source":
            continue
        v = d.get(c)
        if v in (None, (), []):
            continue
        if isinstance(v, list):
            v = "; ".join(v)
        unit = spec.get("unit", "-")
        unit = "" if unit == "-" else f" {unit}"
        kind = spec.get("kind", "")
        kind = "" if kind in ("id", "spec") else f"  [{kind}]"
        lines.append(f"{c:<{width}}  {v}{unit}{kind}")
    lines.append("")
    lines.append("sources:")
    for k, v in obj.sources.items():
        lines.append(f"  {k}: {v}")
    return "\n".join(lines)


def _hardware_list(args) -> int:
    rows = catalog.load_accelerators()
    emit([a.to_dict() for a in rows], args.json,
         text=format_table(rows, _HW_COLUMNS)
         + "\n\npeaks dense; link = NVLink/Infinity Fabric one direction; cap = settable power-limit range;"
           " kgCO2e = estimated embodied carbon (fleet hardware show NAME for sources)")
    return 0


def _hardware_show(args) -> int:
    a = catalog.get_accelerator(args.name)
    d = a.to_dict()
    d["precisions"] = list(a.precisions())
    emit(d, args.json, text=_show_text(a, "accelerators"))
    return 0


def _models_list(args) -> int:
    rows = catalog.load_models()
    emit([m.to_dict() for m in rows], args.json,
         text=format_table(rows, _MODEL_COLUMNS)
         + "\n\nexperts = active/routed(+shared); params in billions; context in tokens")
    return 0


def _models_show(args) -> int:
    m = catalog.get_model(args.name)
    d = m.to_dict()
    d["computed_params_b"] = m.weight_params() / 1e9
    d["kv_cache_bytes_per_token_bf16"] = m.kv_bytes_per_token(2.0)
    emit(d, args.json, text=_show_text(m, "models"))
    return 0


def register(sub) -> None:
    hw = sub.add_parser("hardware", help="accelerators in the catalog (list, show)")
    hws = hw.add_subparsers(dest="hardware_command", metavar="SUBCOMMAND")
    p = hws.add_parser("list", help="all accelerators: peaks, memory, power, price, embodied carbon")
    add_json_flag(p)
    p.set_defaults(func=_hardware_list)
    p = hws.add_parser("show", help="every column of one accelerator, with units and sources")
    p.add_argument("name", help="name or alias, e.g. H100, a100-80gb, 'NVIDIA H100 80GB HBM3'")
    add_json_flag(p)
    p.set_defaults(func=_hardware_show)
    hw.set_defaults(func=_hardware_list, json=False)

    md = sub.add_parser("models", help="LLM architectures in the catalog (list, show)")
    mds = md.add_subparsers(dest="models_command", metavar="SUBCOMMAND")
    p = mds.add_parser("list", help="all models: parameters, layers, attention, experts, context")
    add_json_flag(p)
    p.set_defaults(func=_models_list)
    p = mds.add_parser("show", help="every column of one model, with units and sources")
    p.add_argument("name", help="short name or Hugging Face id, e.g. llama-3.1-8b, meta-llama/Llama-3.1-8B-Instruct")
    add_json_flag(p)
    p.set_defaults(func=_models_show)
    md.set_defaults(func=_models_list, json=False)
