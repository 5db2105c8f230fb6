"""Helpers shared by the CLI command modules."""

from __future__ import annotations

import argparse as _argparse
import math as _math

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


# ------------------------------------------------------------------ argument types
# argparse ``type=`` helpers: a bad value makes the CLI exit 2 with "argument --flag: <why>",
# before any work is done.  Each one names what was expected.


def _number(text: str, kind=float) -> float:
    try:
        v = kind(text)
    except (TypeError, ValueError) as exc:
        raise _argparse.ArgumentTypeError(
            f"expected {'an integer' if kind is int else 'a number'}, got {text!r}") from exc
    if kind is float and not _math.isfinite(v):
        raise _argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return v


def int_in(lo: int | None = None, hi: int | None = None, what: str = "an integer"):
    """An integer in ``[lo, hi]`` (either bound may be None)."""
    def parse(text: str) -> int:
        v = int(_number(text, int))
        if (lo is not None and v < lo) or (hi is not None and v > hi):
            rng = (f">= {lo:,}" if hi is None else f"<= {hi:,}" if lo is None else f"in [{lo:,}, {hi:,}]")
            raise _argparse.ArgumentTypeError(f"expected {what} {rng}, got {text}")
        return v
    parse.__name__ = "int"
    return parse


def float_in(lo: float | None = None, hi: float | None = None, *, lo_open: bool = False,
             hi_open: bool = False, what: str = "a number"):
    """A finite number in the interval from ``lo`` to ``hi`` (open ends when asked)."""
    def parse(text: str) -> float:
        v = _number(text, float)
        bad = ((lo is not None and (v <= lo if lo_open else v < lo))
               or (hi is not None and (v >= hi if hi_open else v > hi)))
        if bad:
            left = "" if lo is None else f"{'>' if lo_open else '>='} {lo:g}"
            right = "" if hi is None else f"{'<' if hi_open else '<='} {hi:g}"
            raise _argparse.ArgumentTypeError(
                f"expected {what} {' and '.join(x for x in (left, right) if x)}, got {text}")
        return v
    parse.__name__ = "float"
    return parse


positive_int = int_in(1, what="an integer")
nonneg_int = int_in(0, what="an integer")
positive_float = float_in(0.0, lo_open=True, what="a finite number")
nonneg_float = float_in(0.0, what="a finite number")
finite_float = float_in(what="a finite number")
#: a random seed: numpy's SeedSequence takes non-negative integers
seed_int = int_in(0, what="a seed (an integer)")
#: PUE = facility energy / IT energy, >= 1 by definition; 3 is far above any reported facility
pue_float = float_in(1.0, 3.0, what="a PUE (facility / IT energy)")


def nonempty(text: str) -> str:
    if not text.strip():
        raise _argparse.ArgumentTypeError("expected a non-empty value")
    return text


def out_path(text: str) -> str:
    """An output location: not empty (``-o ''`` would mean the current folder)."""
    if not text.strip():
        raise _argparse.ArgumentTypeError("expected a path, got an empty one")
    return text
