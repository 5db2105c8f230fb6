"""The YAML scenario: schema, loading and validation.

A scenario is read with ``yaml.safe_load`` (no code execution; anchors and aliases are refused so
that a small file cannot expand into a huge one) and validated by pydantic.  Every problem is
reported as a :class:`~fleet.errors.ScenarioError` naming the file and the YAML path, e.g.
``scenarios/x.yaml: pools[1].gpus: expected a positive integer, got -4``.

Sections (each a pydantic model below, owned by the layer it configures):
``fleet`` (pools, servers, power tree), ``demand`` (traces and generators), ``simulation``
(horizon, seed, telemetry), ``site`` (region, grid signals, PUE), ``accounting``,
``plan`` (reserved for the OR-Tools planner), ``report``, ``expectations`` (scenario regression).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from .errors import ScenarioError


class Strict(BaseModel):
    """Base of every scenario section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=False)


class _NoAliasLoader(yaml.SafeLoader):
    """A safe loader that refuses anchors/aliases (no 'billion laughs')."""

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"YAML aliases (*{event.anchor}) are not allowed in a scenario "
                                 f"(line {event.start_mark.line + 1})")
        return super().compose_node(parent, index)


def _yaml_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def format_validation_error(exc: ValidationError, path: str | Path | None) -> ScenarioError:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err.get("loc", ()) if not (isinstance(p, str) and p.startswith("function-")))
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key"
        got = err.get("input")
        if err.get("type") != "extra_forbidden" and not isinstance(got, (dict, list)):
            msg += f", got {got!r}"
        lines.append((_yaml_path(loc), msg))
    first_field, first_msg = lines[0]
    text = first_msg
    if len(lines) > 1:
        text += "".join(f"\n  {f}: {m}" for f, m in lines[1:])
    return ScenarioError(text, path=path, field=first_field or None)


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ScenarioError("no such scenario file", path=path)
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.load(text, Loader=_NoAliasLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise ScenarioError(f"not valid YAML: {exc}", path=path) from None
    if not isinstance(data, dict):
        raise ScenarioError("expected a mapping at the top level", path=path)
    return data


def scenario_hash(data: dict) -> str:
    """A stable hash of the scenario's content (key order does not matter)."""
    import json

    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
