"""Helpers shared by the CLI command modules."""

from __future__ import annotations

import sys
from typing import Any

from .._io import to_json  # noqa: F401  (re-exported for the command modules)


def emit(obj: Any, as_json: bool, text: str | None = None) -> None:
    """Print ``obj`` as JSON when ``as_json``, else ``text`` (or a plain key: value listing)."""
    if as_json:
        sys.stdout.write(to_json(obj) + "\n")
        return
    if text is None:
        if isinstance(obj, dict):
            width = max((len(str(k)) for k in obj), default=0)
            text = "\n".join(f"{k:<{width}}  {v}" for k, v in obj.items())
        else:
            text = str(obj)
    sys.stdout.write(text.rstrip("\n") + "\n")


def add_json_flag(p) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable JSON on stdout")
