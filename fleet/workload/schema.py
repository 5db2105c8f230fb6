"""The canonical inference-request table: one shape for every trace format.

Every reader in :mod:`fleet.workload.traces` and every generator in :mod:`fleet.workload.synth`
returns a :class:`pandas.DataFrame` with exactly these columns, sorted by arrival:

=================  ==========  ===================================================================
column             dtype       meaning (unit)
=================  ==========  ===================================================================
``request_id``     int64       0..n-1 in arrival order (re-assigned after every transform)
``arrival_s``      float64     arrival time, seconds from the trace start (>= 0, non-decreasing)
``input_tokens``   int64       prompt length, tokens (>= 1)
``output_tokens``  int64       generated length, tokens (>= 1)
``model``          category    optional: model name; absent or missing = the scenario decides
``tenant``         category    optional: tenant / client / log type
``priority``       int8        optional: higher is served first
``slo_class``      category    optional: SLO class name (e.g. ``interactive``, ``batch``)
``prefix_blocks``  object      optional: tuple of ints, one id per KV-cache block (Mooncake
                               ``hash_ids``; equal ids = a reusable prefix)
=================  ==========  ===================================================================

Duplicate arrival times are allowed: real traces have bursts (Mooncake logs whole batches at the
same millisecond).  Ties keep their file order (stable sort).

``df.attrs`` carries provenance:

``source``           the file (or list of files) the rows came from
``format``           the detected or given format name (``azure``, ``mooncake``, ...)
``t0``               UTC ISO-8601 timestamp of ``arrival_s == 0`` when the trace had absolute
                     times, else ``None``
``transformations``  list of human-readable strings, one per transform / repair applied
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from ..errors import TraceError

#: Columns every request table has, in this order.
REQUIRED_COLUMNS: tuple[str, ...] = ("request_id", "arrival_s", "input_tokens", "output_tokens")
#: Optional columns, in this order after the required ones.
OPTIONAL_COLUMNS: tuple[str, ...] = ("model", "tenant", "priority", "slo_class", "prefix_blocks")
REQUEST_COLUMNS: tuple[str, ...] = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
CATEGORY_COLUMNS: tuple[str, ...] = ("model", "tenant", "slo_class")

#: dtype of each column (``category`` and ``object`` columns hold Python strings / tuples).
REQUEST_DTYPES: dict[str, str] = {
    "request_id": "int64",
    "arrival_s": "float64",
    "input_tokens": "int64",
    "output_tokens": "int64",
    "model": "category",
    "tenant": "category",
    "priority": "int8",
    "slo_class": "category",
    "prefix_blocks": "object",
}

#: Units of the numeric columns (for reports and docs).
REQUEST_UNITS: dict[str, str] = {
    "request_id": "-",
    "arrival_s": "s",
    "input_tokens": "tokens",
    "output_tokens": "tokens",
    "priority": "-",
}

ATTR_KEYS: tuple[str, ...] = ("source", "format", "t0", "transformations")


def new_attrs(source: Any = None, fmt: str | None = None, t0: str | None = None,
              transformations: Iterable[str] = ()) -> dict[str, Any]:
    """A fresh ``attrs`` dict with every provenance key present."""
    return {"source": source, "format": fmt, "t0": t0, "transformations": list(transformations)}


def log_transform(df: pd.DataFrame, text: str) -> None:
    """Append ``text`` to ``df.attrs['transformations']`` (creating the attrs if needed)."""
    attrs = df.attrs
    for k, v in new_attrs().items():
        attrs.setdefault(k, v)
    attrs["transformations"] = list(attrs.get("transformations") or []) + [text]


def empty_requests(attrs: dict[str, Any] | None = None) -> pd.DataFrame:
    """A request table with no rows (required columns only)."""
    df = pd.DataFrame({c: pd.Series([], dtype=REQUEST_DTYPES[c]) for c in REQUIRED_COLUMNS})
    df.attrs.update(attrs or new_attrs())
    return df


def _as_block_tuple(v: Any) -> tuple[int, ...]:
    if v is None:
        return ()
    if isinstance(v, float) and np.isnan(v):
        return ()
    if isinstance(v, str):
        return tuple(int(x) for x in v.split()) if v.strip() else ()
    return tuple(int(x) for x in v)


def canonicalize(df: pd.DataFrame, *, sort: bool = True, attrs: dict[str, Any] | None = None
                 ) -> pd.DataFrame:
    """Put ``df`` into the canonical column order and dtypes, stable-sort by arrival and
    re-number ``request_id``.  ``df`` must already hold valid values (see
    :func:`validate_requests`); this only reshapes.  Returns a new frame."""
    attrs = dict(attrs if attrs is not None else getattr(df, "attrs", {}))
    for k, v in new_attrs().items():
        attrs.setdefault(k, v)
    out: dict[str, Any] = {}
    columns = list(df.columns) if hasattr(df, "columns") else list(df.keys())
    arrival = np.asarray(df["arrival_s"], dtype=np.float64)
    n = len(arrival)
    order = np.argsort(arrival, kind="stable") if sort else None

    def take(a: np.ndarray) -> np.ndarray:
        return a[order] if order is not None else a

    out["request_id"] = np.arange(n, dtype=np.int64)
    out["arrival_s"] = take(arrival)
    out["input_tokens"] = take(np.asarray(df["input_tokens"], dtype=np.int64))
    out["output_tokens"] = take(np.asarray(df["output_tokens"], dtype=np.int64))
    for c in OPTIONAL_COLUMNS:
        if c not in columns:
            continue
        v = df[c]
        col = (v.to_numpy(dtype=object) if hasattr(v, "to_numpy") else np.asarray(v, dtype=object)) \
            if c != "priority" else np.asarray(v)
        col = take(col)
        if c in CATEGORY_COLUMNS:
            vals = [None if (v is None or (isinstance(v, float) and np.isnan(v))) else str(v)
                    for v in col]
            out[c] = pd.Categorical(vals)
        elif c == "priority":
            out[c] = np.asarray(col, dtype=np.int8)
        else:  # prefix_blocks
            s = np.empty(n, dtype=object)
            s[:] = [_as_block_tuple(v) for v in col]
            out[c] = s
    res = pd.DataFrame(out, index=pd.RangeIndex(n), copy=False)
    res.attrs.update(attrs)
    res.attrs["transformations"] = list(attrs.get("transformations") or [])
    return res


def validate_requests(df: pd.DataFrame, source: str | Path | None = None) -> pd.DataFrame:
    """Check that ``df`` is a canonical request table; return it unchanged.

    Raises :class:`~fleet.errors.TraceError` naming ``source``, the row (as ``line``, 1-based
    data row + 1 for a header, i.e. the line in a canonical CSV) and the column, for: a missing
    required column, an unknown column, a wrong dtype, NaN, a token count < 1, a negative or
    decreasing arrival time, or request ids that are not 0..n-1.
    """
    src = source if source is not None else df.attrs.get("source")
    if isinstance(src, (list, tuple)):
        src = ", ".join(map(str, src))
    for c in REQUIRED_COLUMNS:
        if c not in df.columns:
            raise TraceError("missing column", path=src, column=c,
                             expected=f"the columns {', '.join(REQUIRED_COLUMNS)}")
    for c in df.columns:
        if c not in REQUEST_DTYPES:
            raise TraceError("unknown column in a canonical request table", path=src, column=str(c),
                             expected=f"only {', '.join(REQUEST_COLUMNS)}")
    for c in ("request_id", "arrival_s", "input_tokens", "output_tokens", "priority"):
        if c in df.columns and str(df[c].dtype) != REQUEST_DTYPES[c]:
            raise TraceError(f"wrong dtype {df[c].dtype}", path=src, column=c,
                             expected=REQUEST_DTYPES[c])

    def bad(mask: np.ndarray, col: str, what: str, expected: str) -> None:
        idx = np.flatnonzero(mask)
        if idx.size:
            i = int(idx[0])
            raise TraceError(f"{what} in row {i} (value {df[col].iloc[i]!r}; {idx.size} such rows)",
                             path=src, line=i + 2, column=col, expected=expected)

    arr = df["arrival_s"].to_numpy()
    bad(~np.isfinite(arr), "arrival_s", "non-finite arrival time", "a finite number of seconds")
    bad(arr < 0, "arrival_s", "negative arrival time", "seconds >= 0 from the trace start")
    if arr.size > 1:
        d = np.diff(arr)
        idx = np.flatnonzero(d < 0)
        if idx.size:
            i = int(idx[0]) + 1
            raise TraceError(f"arrival times decrease at row {i} ({arr[i - 1]!r} then {arr[i]!r})",
                             path=src, line=i + 2, column="arrival_s",
                             expected="rows sorted by arrival (canonicalize() sorts)")
    for c in ("input_tokens", "output_tokens"):
        bad(df[c].to_numpy() < 1, c, "token count below 1", "an integer >= 1")
    rid = df["request_id"].to_numpy()
    bad(rid != np.arange(len(df)), "request_id", "request ids out of sequence",
        "request_id = 0..n-1 in arrival order")
    return df


def check_columns(found: Iterable[str], needed: Iterable[str], path: str | Path | None,
                  line: int = 1, what: str = "column") -> None:
    """Raise a :class:`TraceError` for the first ``needed`` name not in ``found``, suggesting a
    near miss (case or whitespace difference) when there is one."""
    found = [str(f) for f in found]
    norm = {f.strip().lower().replace(" ", "").replace("_", ""): f for f in found}
    for n in needed:
        if n in found:
            continue
        near = norm.get(n.strip().lower().replace(" ", "").replace("_", ""))
        hint = f"; found {near!r}, which differs only in case/spacing" if near else ""
        raise TraceError(f"missing {what}{hint}; the file has {found}", path=path, line=line,
                         column=n, expected=f"a {what} named {n!r}")
