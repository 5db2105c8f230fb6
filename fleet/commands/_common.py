"""Helpers shared by the CLI command modules."""

from __future__ import annotations

import json
import math
import sys
from typing import Any

import numpy as np


def _jsonable(obj: Any):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if hasattr(obj, "isoformat"):
        return obj.isoformat()
    return obj


def to_json(obj: Any) -> str:
    return json.dumps(_jsonable(obj), indent=2)


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
