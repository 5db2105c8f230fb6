"""The YAML loader of every file fleet reads (scenarios, catalog tables).

``yaml.safe_load`` (no code execution) with three refusals: anchors and aliases (a small file
cannot expand into a huge one), duplicate keys (YAML keeps the last one silently) and nesting
deeper than :data:`fleet.limits.MAX_YAML_DEPTH` (the parser is recursive).
"""

from __future__ import annotations

from pathlib import Path

import yaml

from .limits import MAX_YAML_DEPTH


class StrictLoader(yaml.SafeLoader):
    """A safe loader that refuses anchors/aliases (no 'billion laughs'), duplicate keys (YAML
    would keep the last one silently: ``gpus: 4`` then ``gpus: 4096``) and nesting deeper than
    :data:`fleet.limits.MAX_YAML_DEPTH` (before the recursive parser overflows the stack)."""

    _depth = 0

    def compose_node(self, parent, index):  # type: ignore[override]
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.YAMLError(f"YAML aliases (*{event.anchor}) are not allowed in a scenario "
                                 f"(line {event.start_mark.line + 1})")
        self._depth += 1
        try:
            if self._depth > MAX_YAML_DEPTH:
                mark = self.peek_event().start_mark
                raise yaml.YAMLError(f"nesting deeper than {MAX_YAML_DEPTH} levels at line {mark.line + 1} "
                                     f"(a scenario needs a handful)")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node, deep=False):  # type: ignore[override]
        if isinstance(node, yaml.MappingNode):
            seen: dict = {}
            for key_node, _ in node.value:
                try:
                    key = self.construct_object(key_node, deep=True)
                    hash(key)
                except (TypeError, yaml.YAMLError):
                    continue            # an unhashable key: the base class reports it
                if key in seen:
                    raise yaml.YAMLError(f"duplicate key {key!r} at line {key_node.start_mark.line + 1} "
                                         f"(first at line {seen[key] + 1}); a key may appear once in a mapping")
                seen[key] = key_node.start_mark.line
        return super().construct_mapping(node, deep=deep)


def parse_yaml(text: str, path: str | Path | None, *, error, what: str = "scenario"):
    """``text`` parsed with :class:`StrictLoader`; a problem raises ``error(message, path=path)``."""
    try:
        return yaml.load(text, Loader=StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        raise error(f"not valid YAML: {exc}", path=path) from exc
    except RecursionError as exc:   # belt and braces: the depth limit should come first
        raise error(f"not a {what}: nested too deeply", path=path) from exc
