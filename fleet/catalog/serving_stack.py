"""Loader of the serving-software stacks (``serving_stacks.yaml``).

A :class:`ServingStack` is a named, sourced profile of what the serving software does to a step
(per-step, per-layer and per-sequence overhead, whether host work overlaps the GPU, kernel
efficiency by phase, all-reduce latency and bandwidth efficiency, power while waiting), kept apart
from the hardware.  The reference stack (``default:`` in the file, the ML.ENERGY v3 vLLM) takes
some values from the device constants it was calibrated on (``from:``), so it reproduces the model
of before stacks existed; :meth:`ServingStack.values` resolves them against a
:class:`~fleet.catalog.device_energy.DeviceConstants`.

Stacks are immutable and hashable (they key profile caches through the operating point's stack
name).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import yaml

from ..errors import CatalogError, ConfigurationError
from .device_energy import DeviceConstants

HERE = Path(__file__).resolve().parent
SERVING_STACKS_PATH = HERE / "serving_stacks.yaml"

#: every parameter a stack must give (serving_stacks.yaml documents each, with its unit)
STACK_PARAMS: tuple[str, ...] = (
    "overhead.iteration_s", "overhead.per_layer_s", "overhead.per_sequence_s", "overhead.per_moe_layer_s",
    "overhead.host_overlap", "kernel.decode_efficiency", "kernel.prefill_efficiency",
    "collective.latency_s", "collective.latency_per_gpu_s", "collective.bw_efficiency", "power.wait_fraction",
    "batching.prefill_tokens",
)
KINDS = ("measured", "modelled", "calibrated")


@dataclass(frozen=True)
class StackParam:
    """One stack parameter: ``value`` in ``unit`` (or taken ``from`` a device constant), its range
    and provenance."""

    name: str
    value: float | None
    from_constant: str | None
    unit: str
    lo: float
    hi: float
    source: str
    kind: str


@dataclass(frozen=True)
class ServingStack:
    """A serving stack: name, aliases, description, source and its parameters."""

    name: str
    aliases: tuple[str, ...]
    description: str
    source: str
    params: tuple[StackParam, ...]
    reference: bool = False
    fit: str = ""

    def param(self, name: str) -> StackParam:
        for p in self.params:
            if p.name == name:
                return p
        raise CatalogError(f"stack {self.name!r} has no parameter {name!r}", path=SERVING_STACKS_PATH,
                           expected=", ".join(STACK_PARAMS))

    def values(self, constants: DeviceConstants) -> dict[str, float]:
        """Every parameter's value (``from:`` entries read from ``constants``)."""
        out: dict[str, float] = {}
        for p in self.params:
            if p.from_constant:
                out[p.name] = float(constants[p.from_constant])
            else:
                assert p.value is not None, f"{p.name}: a parameter has a value or reads a constant (checked on load)"
                out[p.name] = float(p.value)
        return out

    def with_values(self, values: dict[str, float], *, name: str | None = None,
                    source: str = "override") -> "ServingStack":
        """A copy with some parameters replaced by numbers (a fit in progress, a what-if)."""
        unknown = set(values) - set(STACK_PARAMS)
        if unknown:
            raise CatalogError(f"unknown stack parameter(s) {sorted(unknown)}", path=SERVING_STACKS_PATH,
                               expected=", ".join(STACK_PARAMS))
        ps = tuple(StackParam(p.name, float(values[p.name]), None, p.unit, p.lo, p.hi, source, "calibrated")
                   if p.name in values else p for p in self.params)
        return ServingStack(name or self.name, self.aliases if name is None else (), self.description,
                            self.source, ps, self.reference and name is None, self.fit)

    def as_table(self) -> list[dict]:
        return [dict(name=p.name, value=p.value, from_constant=p.from_constant, unit=p.unit,
                     range=[p.lo, p.hi], kind=p.kind, source=p.source) for p in self.params]


def _err(msg: str, expected: str) -> CatalogError:
    return CatalogError(msg, path=SERVING_STACKS_PATH, expected=expected)


def _parse_param(stack: str, name: str, e, path: Path) -> StackParam:
    where = f"stacks.{stack}.params.{name}"
    if not isinstance(e, dict):
        raise CatalogError(f"{where} must be a mapping", path=path, expected="value or from, unit, range, source, kind")
    missing = [k for k in ("unit", "range", "source", "kind") if k not in e]
    if ("value" in e) == ("from" in e):
        missing.append("exactly one of value / from")
    if missing:
        raise CatalogError(f"{where} lacks {missing}", path=path, expected="value or from, unit, range, source, kind")
    try:
        lo, hi = (float(x) for x in e["range"])
        v = None if "value" in e else None
        if "value" in e:
            v = float(e["value"])
    except (TypeError, ValueError) as exc:
        raise CatalogError(f"{where}: value and range must be numbers", path=path,
                           expected="value: float, range: [lo, hi]") from exc
    if v is not None and not (math.isfinite(v) and lo <= v <= hi):
        raise CatalogError(f"{where}: value {v} outside its range [{lo}, {hi}]", path=path, expected="lo <= value <= hi")
    if e["kind"] not in KINDS:
        raise CatalogError(f"{where}: kind {e['kind']!r}", path=path, expected=" | ".join(KINDS))
    src = str(e["source"]).strip()
    if not src or src.lower().startswith("placeholder"):
        raise CatalogError(f"{where}: no source", path=path, expected="a citation or the reasoning of the value")
    return StackParam(name, v, str(e["from"]) if "from" in e else None, str(e["unit"]), lo, hi, src, str(e["kind"]))


@lru_cache(maxsize=None)
def _load(path: str) -> tuple[str, dict[str, ServingStack], dict[str, str]]:
    p = Path(path)
    try:
        doc = yaml.safe_load(p.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise CatalogError(f"invalid YAML: {exc}", path=p, line=(mark.line + 1) if mark else None) from exc
    if not isinstance(doc, dict) or not isinstance(doc.get("stacks"), dict) or not doc.get("default"):
        raise CatalogError("missing 'default:' or 'stacks:' mapping", path=p, expected="default: NAME, stacks: {...}")
    stacks: dict[str, ServingStack] = {}
    names: dict[str, str] = {}
    for name, s in doc["stacks"].items():
        if not isinstance(s, dict) or not isinstance(s.get("params"), dict):
            raise CatalogError(f"stacks.{name} needs a params mapping", path=p, expected="params: {...}")
        for k in ("description", "source"):
            if not str(s.get(k, "")).strip():
                raise CatalogError(f"stacks.{name} lacks {k}", path=p, expected="a description and a source")
        missing = [k for k in STACK_PARAMS if k not in s["params"]]
        extra = [k for k in s["params"] if k not in STACK_PARAMS]
        if missing or extra:
            raise CatalogError(f"stacks.{name}: missing {missing}, unknown {extra}", path=p,
                               expected=", ".join(STACK_PARAMS))
        params = tuple(_parse_param(name, k, s["params"][k], p) for k in STACK_PARAMS)
        fit = s.get("fit", "")
        st = ServingStack(str(name), tuple(str(a) for a in s.get("aliases", []) or []), str(s["description"]),
                          str(s["source"]), params, bool(s.get("reference", False)),
                          yaml.safe_dump(fit, sort_keys=False, width=110) if fit else "")
        stacks[st.name] = st
        for key in (st.name, *st.aliases):
            k = key.lower()
            if k in names:
                raise CatalogError(f"stack name or alias {key!r} used twice", path=p, expected="unique names")
            names[k] = st.name
    default = str(doc["default"])
    if default not in stacks:
        raise CatalogError(f"default stack {default!r} is not defined", path=p, expected=", ".join(stacks))
    if not stacks[default].reference:
        raise CatalogError(f"default stack {default!r} must be the reference stack", path=p,
                           expected="reference: true on the default stack")
    return default, stacks, names


def serving_stacks(path: Path | None = None) -> dict[str, ServingStack]:
    """All stacks by canonical name."""
    return dict(_load(str(path or SERVING_STACKS_PATH))[1])


def default_stack_name(path: Path | None = None) -> str:
    return _load(str(path or SERVING_STACKS_PATH))[0]


def canonical_stack(name: str, path: Path | None = None) -> str:
    """The canonical name of stack ``name`` (an alias, any case); ConfigurationError if unknown."""
    _, stacks, names = _load(str(path or SERVING_STACKS_PATH))
    if not isinstance(name, str) or name.strip().lower() not in names:
        raise ConfigurationError(f"unknown serving stack {name!r}; expected one of {', '.join(stacks)} "
                                 f"(fleet/catalog/serving_stacks.yaml)")
    return names[name.strip().lower()]


def get_serving_stack(name: str | None = None, path: Path | None = None) -> ServingStack:
    """The :class:`ServingStack` called ``name`` (None: the default, reference stack)."""
    default, stacks, _ = _load(str(path or SERVING_STACKS_PATH))
    return stacks[default if name is None else canonical_stack(name, path)]
