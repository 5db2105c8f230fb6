"""Inference request traces: readers, format detection, writers and transforms.

Every reader returns the canonical request table of :mod:`fleet.workload.schema`.

Formats (detected from the *content*: the CSV header, the first JSON line, the Parquet magic
bytes; never from the file name):

``azure``     Azure LLM inference trace 2023 CSV: ``TIMESTAMP`` (wall clock, no zone: read as
              UTC), ``ContextTokens``, ``GeneratedTokens``.  ``t0`` = first timestamp.
``mooncake``  Mooncake FAST'25 JSON Lines: ``timestamp`` (ms from the trace start),
              ``input_length``, ``output_length``, optional ``hash_ids`` (-> ``prefix_blocks``).
``burstgpt``  BurstGPT CSV: ``Timestamp`` (s from the trace start), ``Model``, ``Request tokens``,
              ``Response tokens``, optional ``Log Type`` (-> ``tenant``).  A row with 0 response
              tokens is a *failed* request (BurstGPT logs failures that way): by default it is
              dropped with a :class:`TraceWarning` (``failed="drop"``); ``failed="keep"`` keeps
              it as a 1-token output (its prefill still ran); ``failed="error"`` refuses it.  A
              row with 0 request tokens is read as 1 token, with a warning.
``canonical`` what :func:`write_trace` writes (CSV or Parquet with the canonical columns).
``csv``, ``parquet``, ``jsonl``  anything else, read with a column ``mapping``::

                  {"arrival": "ts", "input_tokens": "prompt", "output_tokens": "completion",
                   "unit": "s" | "ms" | "us" | "ns" | "datetime",
                   "model": ..., "tenant": ..., "priority": ..., "slo_class": ...,
                   "prefix_blocks": ...}   # the last five optional

              Numeric times are offsets from the trace start unless they look like a Unix epoch
              (> 1e8 s after conversion), in which case ``t0`` is the first one.  ``datetime``
              strings without a zone are read as UTC.

Repairs and checks (documented behaviour):

* Unsorted timestamps: :func:`read_trace` stable-sorts by arrival and warns, naming the first
  out-of-order line; :func:`iter_trace_chunks` (streaming) cannot sort and raises instead.
* Duplicate timestamps are allowed (bursts are real); ties keep file order.
* Blank lines are skipped.  Anything else wrong (a missing or misnamed column, a non-numeric,
  negative, fractional or missing token count, a bad timestamp, a truncated JSON line, an empty
  file, a file with no rows) raises :class:`~fleet.errors.TraceError` naming the file, the line
  (1-based; the CSV header is line 1; for Parquet the row number + 1) and the column.
* Wrong units: a numeric time that would lie beyond the year 2096 (an epoch in ms read as s), a
  span over 366 days, or a mean rate over 1e5 requests/s (>= 1000 rows) is refused as an
  implausible unit; a span over 31 days or a mean rate over 1e4 requests/s only warns.

Large files are read in chunks (``chunksize`` rows, default 1,000,000): :func:`iter_trace_chunks`
holds one chunk at a time, so a 10-million-row trace streams in bounded memory.
"""

from __future__ import annotations

import csv
import json
import math
import re
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import pandas as pd

from ..errors import FleetError, TraceError
from .schema import (CATEGORY_COLUMNS, OPTIONAL_COLUMNS, REQUEST_COLUMNS, canonicalize,
                     check_columns, new_attrs)

DEFAULT_CHUNKSIZE = 1_000_000

AZURE_COLUMNS = ("TIMESTAMP", "ContextTokens", "GeneratedTokens")
MOONCAKE_FIELDS = ("timestamp", "input_length", "output_length")
BURSTGPT_COLUMNS = ("Timestamp", "Model", "Request tokens", "Response tokens")
CANONICAL_COLUMNS = ("arrival_s", "input_tokens", "output_tokens")
FORMATS = ("azure", "mooncake", "burstgpt", "canonical", "csv", "parquet", "jsonl")
UNITS_NS = {"s": 1_000_000_000, "ms": 1_000_000, "us": 1_000, "ns": 1}

#: Thresholds of the wrong-unit check (see the module docstring).
MAX_SPAN_S = 366 * 86400.0
WARN_SPAN_S = 31 * 86400.0
MAX_MEAN_RATE = 1e5
WARN_MEAN_RATE = 1e4
EPOCH_MIN_S = 1e8          # numeric times above this (in s) are taken as a Unix epoch
EPOCH_MAX_S = 4e9          # ... and above this (year 2096) as a wrong unit

_PARQUET_MAGIC = b"PAR1"
_ATTRS_KEY = b"fleet.attrs"


class TraceWarning(UserWarning):
    """A documented repair was applied to a trace (sorting, dropped failed requests)."""


# --------------------------------------------------------------------------- column mapping

@dataclass(frozen=True)
class ColumnMapping:
    """Which source column holds each canonical field, and the time unit."""

    arrival: str
    input_tokens: str
    output_tokens: str
    unit: str = "s"
    model: str | None = None
    tenant: str | None = None
    priority: str | None = None
    slo_class: str | None = None
    prefix_blocks: str | None = None

    @classmethod
    def from_any(cls, mapping: "ColumnMapping | Mapping[str, Any]", path: Any = None) -> "ColumnMapping":
        if isinstance(mapping, ColumnMapping):
            m = mapping
        else:
            if not isinstance(mapping, Mapping):
                raise TraceError(f"a column mapping must be a mapping, got {type(mapping).__name__}",
                                 path=path, expected="{arrival: col, input_tokens: col, output_tokens: col, unit: s}")
            allowed = {f for f in cls.__dataclass_fields__}
            # the canonical column names are accepted as keys too
            aliases = {"arrival_s": "arrival", "time": "arrival", "timestamp": "arrival"}
            mapping = {aliases.get(k, k): v for k, v in mapping.items()}
            for k in mapping:
                if k not in allowed:
                    raise TraceError("unknown key in the column mapping", path=path, column=str(k),
                                     expected=f"one of {sorted(allowed)}")
            for k in ("arrival", "input_tokens", "output_tokens"):
                if not isinstance(mapping.get(k), str) or not mapping.get(k):
                    raise TraceError("column mapping lacks a column name", path=path, column=k,
                                     expected="the name of a column in the file")
            kw: dict[str, Any] = {k: (str(v) if v is not None else None) for k, v in mapping.items()}
            m = cls(**kw)
        if m.unit not in (*UNITS_NS, "datetime"):
            raise TraceError(f"unknown time unit {m.unit!r} in the column mapping", path=path,
                             column="unit", expected="s, ms, us, ns or datetime")
        return m

    def extras(self) -> dict[str, str]:
        return {c: getattr(self, c) for c in OPTIONAL_COLUMNS if getattr(self, c)}


_FORMAT_MAPPINGS = {
    "azure": ColumnMapping("TIMESTAMP", "ContextTokens", "GeneratedTokens", unit="datetime"),
    "mooncake": ColumnMapping("timestamp", "input_length", "output_length", unit="ms",
                              prefix_blocks="hash_ids"),
    "burstgpt": ColumnMapping("Timestamp", "Request tokens", "Response tokens", unit="s",
                              model="Model", tenant="Log Type"),
    "canonical": ColumnMapping("arrival_s", "input_tokens", "output_tokens", unit="s",
                               model="model", tenant="tenant", priority="priority",
                               slo_class="slo_class", prefix_blocks="prefix_blocks"),
}


# --------------------------------------------------------------------------- format detection

def _first_line(path: Path, limit: int = 1 << 20) -> str:
    with open(path, "rb") as fh:
        head = fh.read(limit)
    if not head.strip():
        raise TraceError("empty file", path=path, line=1, expected="a request trace with a header or JSON lines")
    if head.startswith(b"\xef\xbb\xbf"):
        head = head[3:]
    for raw in head.splitlines():
        if raw.strip():
            try:
                return raw.decode("utf-8").strip()
            except UnicodeDecodeError as exc:
                raise TraceError("not UTF-8 text", path=path, line=1,
                                 expected="a CSV, JSON Lines or Parquet trace") from exc
    return ""  # pragma: no cover - head.strip() was non-empty


def detect_format(path: str | Path) -> str:
    """The trace format of ``path`` from its content (see the module docstring for names).

    Raises :class:`TraceError` for a missing or empty file."""
    path = Path(path)
    if not path.is_file():
        raise TraceError("no such file", path=path, expected="a trace file")
    with open(path, "rb") as fh:
        magic = fh.read(4)
    if magic == _PARQUET_MAGIC:
        try:
            import pyarrow.parquet as pq
            names = pq.ParquetFile(path).schema_arrow.names
        except Exception as exc:  # noqa: BLE001 - a corrupt file is a user error
            raise TraceError(f"unreadable Parquet file: {exc}", path=path) from exc
        return "canonical" if set(CANONICAL_COLUMNS) <= set(names) else "parquet"
    line = _first_line(path)
    if line.startswith("{") or line.startswith("["):
        try:
            obj = json.loads(line)
        except ValueError as exc:
            raise TraceError("first line is not valid JSON (truncated?)", path=path, line=1,
                             expected="one JSON object per line") from exc
        if isinstance(obj, dict) and set(MOONCAKE_FIELDS) <= set(obj):
            return "mooncake"
        return "jsonl"
    try:
        header = [h.strip() for h in next(csv.reader([line]))]
    except (csv.Error, StopIteration):
        return "csv"
    hs = set(header)
    if set(AZURE_COLUMNS) <= hs:
        return "azure"
    if set(BURSTGPT_COLUMNS) <= hs:
        return "burstgpt"
    if set(CANONICAL_COLUMNS) <= hs:
        return "canonical"
    return "csv"


# --------------------------------------------------------------------------- raw chunk reading

@dataclass
class _Raw:
    """One chunk before canonicalisation: times in int64 ns (absolute epoch or relative)."""

    t_ns: np.ndarray
    lines: np.ndarray
    input_tokens: np.ndarray
    output_tokens: np.ndarray
    extras: dict[str, Any] = field(default_factory=dict)
    absolute: bool = False
    dropped_failed: int = 0
    clamped_input: int = 0


def _col_error(path, lines, mask, col, values, what, expected) -> TraceError:
    i = int(np.flatnonzero(mask)[0])
    v = (values.iloc[i] if hasattr(values, "iloc") else values[i]) if i < len(values) else None
    return TraceError(f"{what}: {v!r}", path=path, line=int(lines[i]), column=col, expected=expected)


def _parse_tokens(s: pd.Series, path, lines, col: str, allow_zero: bool = False) -> np.ndarray:
    """Token counts as int64; every bad value is a TraceError naming its line."""
    if s.dtype.kind in "iu" and not s.isna().any():
        arr = s.to_numpy(dtype=np.int64)
    else:
        raw = s
        num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        nan = np.isnan(num)
        if nan.any():
            missing = pd.isna(s).to_numpy()
            if (nan & missing).any():
                raise _col_error(path, lines, nan & missing, col, raw, "missing token count",
                                 "an integer token count")
            raise _col_error(path, lines, nan, col, raw, "not a number", "an integer token count")
        if not np.isfinite(num).all():
            raise _col_error(path, lines, ~np.isfinite(num), col, raw, "infinite token count",
                             "an integer token count")
        if (num != np.round(num)).any():
            raise _col_error(path, lines, num != np.round(num), col, raw, "fractional token count",
                             "an integer token count")
        if (np.abs(num) > 2 ** 53).any():
            raise _col_error(path, lines, np.abs(num) > 2 ** 53, col, raw, "token count out of range",
                             "an integer token count below 2**53")
        arr = num.astype(np.int64)
    if (arr < 0).any():
        raise _col_error(path, lines, arr < 0, col, arr, "negative token count", "an integer >= 0")
    if not allow_zero and (arr == 0).any():
        raise _col_error(path, lines, arr == 0, col, arr, "zero token count", "an integer >= 1")
    return arr


def _arrow_datetimes(s: pd.Series) -> np.ndarray | None:
    """Fast path: Arrow's ISO-8601 parser (no Python objects; naive times are UTC).  None when
    anything does not parse, so that the pandas path can name the bad line."""
    if str(s.dtype) not in ("str", "string") and s.dtype != object:
        return None
    try:
        import pyarrow as pa
        import pyarrow.compute as pc

        arr = pa.array(s, from_pandas=True)
        if arr.null_count or not pa.types.is_string(arr.type) and not pa.types.is_large_string(arr.type):
            return None
        for typ in (pa.timestamp("ns"), pa.timestamp("ns", tz="UTC")):
            try:
                out = pc.cast(arr, typ)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                continue
            return out.cast(pa.int64()).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    except Exception:  # noqa: BLE001 - any surprise: use the pandas path
        return None
    return None


def _parse_times(s: pd.Series, unit: str, path, lines, col: str) -> tuple[np.ndarray, bool]:
    """Times as int64 ns and whether they are absolute (epoch)."""
    raw = s  # looked up only to report a bad value
    if unit == "datetime":
        fast = _arrow_datetimes(s)
        if fast is not None:
            return fast, True
        txt = s if s.dtype == object or str(s.dtype) in ("str", "string") else s.astype(str)
        ts = pd.to_datetime(txt, format="ISO8601", utc=True, errors="coerce")
        bad = ts.isna().to_numpy()
        if bad.any():
            missing = pd.isna(s).to_numpy()
            what = "missing timestamp" if (bad & missing).any() else "not a date-time"
            raise _col_error(path, lines, bad, col, raw, what,
                             "an ISO-8601 date-time such as 2023-11-16 18:17:03.97")
        return ts.dt.tz_convert(None).to_numpy(dtype="datetime64[ns]").view(np.int64), True
    num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    bad = ~np.isfinite(num)
    if bad.any():
        missing = pd.isna(s).to_numpy()
        what = "missing timestamp" if (bad & missing).any() else "not a finite number"
        raise _col_error(path, lines, bad, col, raw, what, f"a time in {unit}")
    if (num < 0).any():
        raise _col_error(path, lines, num < 0, col, raw, "negative timestamp",
                         f"a time >= 0 in {unit} from the trace start")
    secs = num * (UNITS_NS[unit] / 1e9)
    if (secs > EPOCH_MAX_S).any():
        mag = float(secs.max())
        guess = next((u for u, k in (("ms", 1e3), ("us", 1e6), ("ns", 1e9))
                      if EPOCH_MIN_S < mag / k < EPOCH_MAX_S), None)
        hint = f"; they look like a Unix epoch in {guess}: give unit={guess}" if guess else ""
        raise _col_error(path, lines, secs > EPOCH_MAX_S, col, raw,
                         f"timestamp beyond the year 2096 when read in {unit}{hint}",
                         "a plausible time unit (s, ms, us, ns)")
    absolute = bool(secs.size) and float(secs.min()) > EPOCH_MIN_S
    # whole and fractional parts separately: float64 cannot hold epoch times in ns exactly
    whole = np.floor(num)
    ns = whole.astype(np.int64) * UNITS_NS[unit] + np.round((num - whole) * UNITS_NS[unit]).astype(np.int64)
    return ns, absolute


def _parse_blocks(s: pd.Series, path, lines, col: str) -> np.ndarray:
    out = np.empty(len(s), dtype=object)
    for i, v in enumerate(s.to_numpy(dtype=object)):
        try:
            if v is None or (isinstance(v, float) and math.isnan(v)):
                out[i] = ()
            elif isinstance(v, str):
                out[i] = tuple(int(x) for x in v.replace(",", " ").replace("[", " ").replace("]", " ").split())
            else:
                if any(isinstance(x, bool) or not isinstance(x, (int, np.integer)) for x in v):
                    raise ValueError
                out[i] = tuple(int(x) for x in v)
        except (TypeError, ValueError) as exc:
            raise TraceError(f"not a list of integer block ids: {v!r}", path=path,
                             line=int(lines[i]), column=col, expected="a list of integers") from exc
    return out


def _frame_to_raw(frame: pd.DataFrame, m: ColumnMapping, path, lines: np.ndarray, fmt: str,
                  failed: str = "drop") -> _Raw:
    # drop blank rows (every mapped column missing)
    used = [m.arrival, m.input_tokens, m.output_tokens]
    blank = frame[used].isna().all(axis=1).to_numpy()
    if blank.any():
        frame = frame.loc[~blank]
        lines = lines[~blank]
    t_ns, absolute = _parse_times(frame[m.arrival], m.unit, path, lines, m.arrival)
    burst = fmt == "burstgpt"
    inp = _parse_tokens(frame[m.input_tokens], path, lines, m.input_tokens, allow_zero=burst)
    out = _parse_tokens(frame[m.output_tokens], path, lines, m.output_tokens, allow_zero=burst)
    raw = _Raw(t_ns=t_ns, lines=lines, input_tokens=inp, output_tokens=out, absolute=absolute)
    for canon, col in m.extras().items():
        if col not in frame.columns:
            if fmt == "canonical" or (fmt == "burstgpt" and canon == "tenant") or (fmt == "mooncake"):
                continue
            raise TraceError("missing column named in the mapping", path=path, line=1, column=col,
                             expected=f"the column for {canon}")
        s = frame[col]
        if canon == "prefix_blocks":
            raw.extras[canon] = _parse_blocks(s, path, lines, col)
        elif canon == "priority":
            num = pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            ok = np.isfinite(num) & (num == np.round(num)) & (num >= -128) & (num <= 127)
            if not ok.all():
                raise _col_error(path, lines, ~ok, col, s.to_numpy(dtype=object), "bad priority",
                                 "an integer from -128 to 127")
            raw.extras[canon] = num.astype(np.int8)
        else:
            vals = s.to_numpy(dtype=object)
            raw.extras[canon] = np.array([None if (v is None or (isinstance(v, float) and math.isnan(v)))
                                          else str(v) for v in vals], dtype=object)
    if burst:
        fail = raw.output_tokens == 0
        if fail.any():
            if failed == "error":
                raise _col_error(path, lines, fail, m.output_tokens, raw.output_tokens,
                                 "failed request (0 response tokens)", "a successful request")
            if failed == "keep":
                raw.output_tokens = np.where(fail, 1, raw.output_tokens)
            else:
                keep = ~fail
                raw.t_ns, raw.lines = raw.t_ns[keep], raw.lines[keep]
                raw.input_tokens, raw.output_tokens = raw.input_tokens[keep], raw.output_tokens[keep]
                raw.extras = {k: v[keep] for k, v in raw.extras.items()}
            raw.dropped_failed = int(fail.sum())
        zero_in = raw.input_tokens == 0
        if zero_in.any():
            raw.clamped_input = int(zero_in.sum())
            raw.input_tokens = np.where(zero_in, 1, raw.input_tokens)
    return raw


_PANDAS_LINE = re.compile(r"line (\d+)")


def _csv_chunks(path: Path, m: ColumnMapping, fmt: str, chunksize: int, failed: str) -> Iterator[_Raw]:
    with open(path, "rb") as fh:
        first = fh.readline()
    if first.startswith(b"\xef\xbb\xbf"):
        first = first[3:]
    try:
        header = [h.strip() for h in next(csv.reader([first.decode("utf-8")]))]
    except (UnicodeDecodeError, csv.Error, StopIteration) as exc:
        raise TraceError("unreadable CSV header", path=path, line=1,
                         expected="a header line naming the columns") from exc
    needed = [m.arrival, m.input_tokens, m.output_tokens]
    check_columns(header, needed, path)
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise TraceError("duplicate column name", path=path, line=1, column=dup,
                         expected="unique column names")
    usecols = needed + [c for c in m.extras().values() if c in header]
    if fmt not in ("canonical", "burstgpt"):
        check_columns(header, list(m.extras().values()), path)
    dtypes = {c: object for c in usecols if c not in needed}
    try:
        # no usecols: with it pandas silently ignores rows with too many fields
        reader = pd.read_csv(path, chunksize=chunksize, skip_blank_lines=False,
                             dtype=dtypes, skipinitialspace=True, encoding="utf-8",
                             keep_default_na=True, na_values=[""], engine="c")
        rows = 0
        with reader:
            for frame in reader:
                if not isinstance(frame.index, pd.RangeIndex):
                    raise TraceError("rows have more fields than the header", path=path, line=rows + 2,
                                     expected=f"{len(header)} comma-separated fields per row")
                frame.columns = [str(c).strip() for c in frame.columns]
                lines = np.arange(rows, rows + len(frame), dtype=np.int64) + 2
                # a blank line has every field empty; a line whose needed fields are empty but
                # that has text ('# comment', a line without commas) is not blank: refuse it
                part = frame[needed].isna().all(axis=1).to_numpy() & ~frame.isna().all(axis=1).to_numpy()
                if part.any():
                    i = int(np.argmax(part))
                    text = next((str(v) for v in frame.iloc[i] if isinstance(v, str) or pd.notna(v)), "")
                    raise TraceError(f"not a data row: {text[:60]!r}" + (" (comment lines are not allowed)"
                                                                         if text.lstrip().startswith("#") else ""),
                                     path=path, line=int(lines[i]),
                                     expected=f"{len(header)} comma-separated fields, or an empty line")
                frame = frame[usecols]
                rows += len(frame)
                yield _frame_to_raw(frame, m, path, lines, fmt, failed)
    except FleetError:
        raise
    except pd.errors.EmptyDataError as exc:
        raise TraceError("empty file", path=path, line=1, expected="a header and data rows") from exc
    except pd.errors.ParserError as exc:
        mm = _PANDAS_LINE.search(str(exc))
        raise TraceError(f"malformed CSV row ({str(exc).strip()})", path=path,
                         line=int(mm.group(1)) if mm else None,
                         expected=f"{len(header)} comma-separated fields per row") from exc
    except UnicodeDecodeError as exc:
        raise TraceError(f"not UTF-8 text ({exc.reason} at byte {exc.start})", path=path) from exc


def _jsonl_chunks(path: Path, m: ColumnMapping, fmt: str, chunksize: int, failed: str) -> Iterator[_Raw]:
    needed = (m.arrival, m.input_tokens, m.output_tokens)
    recs: list[dict] = []
    lines: list[int] = []

    def flush() -> _Raw:
        frame = pd.DataFrame.from_records(recs, columns=list(dict.fromkeys(
            [*needed, *m.extras().values()])))
        return _frame_to_raw(frame, m, path, np.asarray(lines, dtype=np.int64), fmt, failed)

    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                obj = json.loads(raw)
            except UnicodeDecodeError as exc:
                raise TraceError("not UTF-8 text", path=path, line=lineno) from exc
            except ValueError as exc:
                raise TraceError(f"not valid JSON, truncated line? ({exc})", path=path, line=lineno,
                                 expected="one complete JSON object per line") from exc
            if not isinstance(obj, dict):
                raise TraceError(f"a JSON {type(obj).__name__}, not an object", path=path, line=lineno,
                                 expected="one JSON object per line")
            for k in needed:
                if k not in obj:
                    check_columns(list(obj), [k], path, line=lineno, what="field")
            for k in (m.arrival, m.input_tokens, m.output_tokens):
                v = obj[k]
                if isinstance(v, bool) or not isinstance(v, (int, float, str)) and v is not None:
                    raise TraceError(f"not a number: {v!r}", path=path, line=lineno, column=k,
                                     expected="a number")
            recs.append(obj)
            lines.append(lineno)
            if len(recs) >= chunksize:
                yield flush()
                recs, lines = [], []
    if recs:
        yield flush()


def _parquet_chunks(path: Path, m: ColumnMapping, fmt: str, chunksize: int, failed: str) -> Iterator[_Raw]:
    import pyarrow.parquet as pq

    pf = pq.ParquetFile(path)
    names = pf.schema_arrow.names
    needed = [m.arrival, m.input_tokens, m.output_tokens]
    check_columns(names, needed, path)
    if fmt != "canonical":
        check_columns(names, list(m.extras().values()), path)
    cols = needed + [c for c in m.extras().values() if c in names]
    rows = 0
    for batch in pf.iter_batches(batch_size=chunksize, columns=cols):
        frame = batch.to_pandas()
        if m.arrival in frame and frame[m.arrival].dtype.kind == "M":
            ts = frame[m.arrival]
            if ts.dt.tz is None:
                ts = ts.dt.tz_localize("UTC")
            frame[m.arrival] = ts.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            m = ColumnMapping(**{**m.__dict__, "unit": "datetime"})
        lines = np.arange(rows, rows + len(frame), dtype=np.int64) + 1
        rows += len(frame)
        yield _frame_to_raw(frame, m, path, lines, fmt, failed)


def _resolve(path: str | Path, format: str | None, mapping) -> tuple[Path, str, ColumnMapping]:
    path = Path(path)
    if not path.exists():
        raise TraceError("no such file", path=path, expected="a trace file")
    if path.is_dir():
        raise TraceError("is a directory", path=path, expected="a trace file")
    fmt = detect_format(path) if format is None else format
    if fmt not in FORMATS:
        raise TraceError(f"unknown trace format {fmt!r}", path=path, expected=f"one of {', '.join(FORMATS)}")
    if mapping is not None:
        m = ColumnMapping.from_any(mapping, path)
        if fmt in ("azure", "burstgpt", "canonical"):
            fmt = "csv" if _is_parquet(path) is False else "parquet"
        elif fmt == "mooncake":
            fmt = "jsonl"
    elif fmt in _FORMAT_MAPPINGS:
        m = _FORMAT_MAPPINGS[fmt]
    else:
        raise TraceError(f"a {fmt} file that is not a known trace format needs a column mapping",
                         path=path, expected="{arrival: col, input_tokens: col, output_tokens: col, unit: s|ms|us|datetime}")
    return path, fmt, m


def _is_parquet(path: Path) -> bool:
    with open(path, "rb") as fh:
        return fh.read(4) == _PARQUET_MAGIC


def _raw_chunks(path: Path, fmt: str, m: ColumnMapping, chunksize: int, failed: str) -> Iterator[_Raw]:
    if failed not in ("drop", "keep", "error"):
        raise TraceError(f"unknown failed-request policy {failed!r}", path=path, expected="drop, keep or error")
    if _is_parquet(path):
        return _parquet_chunks(path, m, fmt, chunksize, failed)
    if fmt in ("mooncake", "jsonl"):
        return _jsonl_chunks(path, m, fmt, chunksize, failed)
    if fmt == "parquet":
        raise TraceError("not a Parquet file (no PAR1 magic)", path=path, expected="a Parquet file")
    return _csv_chunks(path, m, fmt, chunksize, failed)


def _malformed_input_errors() -> tuple[type[BaseException], ...]:
    """What the parsers we call raise on malformed bytes: pandas (ParserError, EmptyDataError and
    bad conversions are ValueErrors), json (JSONDecodeError), codecs (UnicodeDecodeError), csv
    (csv.Error), numbers too large (OverflowError), pyarrow (ArrowException), a truncated gzip
    stream (EOFError, zlib.error).  Anything else (TypeError, KeyError, AttributeError, ...) is a
    bug in fleet and propagates as itself."""
    import zlib

    import pyarrow as pa

    return (ValueError, OverflowError, csv.Error, EOFError, zlib.error, pa.ArrowException)


def _guard(path, fn, *args, **kwargs):
    """Run ``fn``; a parser's error on malformed input becomes a TraceError naming ``path``."""
    try:
        return fn(*args, **kwargs)
    except FleetError:
        raise
    except OSError as exc:
        raise TraceError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    except _malformed_input_errors() as exc:
        raise TraceError(f"could not read the trace ({type(exc).__name__}: {exc})", path=path) from exc


def _check_plausible(path, unit: str, col: str, n: int, span_s: float, last_line: int | None) -> None:
    if unit == "datetime":
        if span_s > WARN_SPAN_S:
            warnings.warn(f"{path}: the trace spans {span_s / 86400:.1f} days", TraceWarning, stacklevel=4)
        return
    if span_s > MAX_SPAN_S:
        raise TraceError(f"implausible span of {span_s / 86400:.0f} days when the times are read in "
                         f"{unit}; are they in a smaller unit (e.g. ms)?", path=path, line=last_line,
                         column=col, expected="a trace span below 366 days (give the right unit)")
    if n >= 1000 and span_s > 0 and n / span_s > MAX_MEAN_RATE:
        raise TraceError(f"implausible mean rate of {n / span_s:.3g} requests/s when the times are "
                         f"read in {unit}; are they in a larger unit (e.g. s, not ms)?", path=path,
                         line=last_line, column=col, expected="a mean rate below 1e5 requests/s")
    if span_s > WARN_SPAN_S:
        warnings.warn(f"{path}: the trace spans {span_s / 86400:.1f} days when read in {unit}; "
                      "check the time unit", TraceWarning, stacklevel=4)
    elif n >= 1000 and span_s > 0 and n / span_s > WARN_MEAN_RATE:
        warnings.warn(f"{path}: mean rate {n / span_s:.3g} requests/s when read in {unit}; check the "
                      "time unit", TraceWarning, stacklevel=4)


def _to_frame(t_rel_ns: np.ndarray, raws_in, raws_out, extras: dict[str, np.ndarray], attrs: dict,
              id_offset: int = 0, sort: bool = False) -> pd.DataFrame:
    data: dict[str, Any] = {
        "arrival_s": t_rel_ns / 1e9,
        "input_tokens": raws_in,
        "output_tokens": raws_out,
    }
    data.update(extras)
    df = canonicalize(data, sort=sort, attrs=attrs)
    if id_offset:
        df["request_id"] += id_offset
    return df


def _concat_extras(raws: list[_Raw]) -> dict[str, np.ndarray]:
    keys = [k for k in OPTIONAL_COLUMNS if any(k in r.extras for r in raws)]
    out = {}
    for k in keys:
        parts = []
        for r in raws:
            if k in r.extras:
                parts.append(r.extras[k])
            else:
                fill = np.empty(len(r.t_ns), dtype=object)
                fill[:] = [()] * len(r.t_ns) if k == "prefix_blocks" else None
                parts.append(fill if k != "priority" else np.zeros(len(r.t_ns), dtype=np.int8))
        out[k] = np.concatenate(parts) if parts else np.array([], dtype=object)
    return out


def _repair_notes(path, raws: list[_Raw], fmt: str) -> list[str]:
    notes = []
    dropped = sum(r.dropped_failed for r in raws)
    if dropped:
        notes.append(f"burstgpt: {dropped} failed requests (0 response tokens) handled by policy")
        warnings.warn(f"{path}: {dropped} failed requests (0 response tokens) dropped or kept as "
                      "1-token outputs (failed= policy)", TraceWarning, stacklevel=4)
    clamped = sum(r.clamped_input for r in raws)
    if clamped:
        notes.append(f"burstgpt: {clamped} requests with 0 request tokens read as 1 token")
        warnings.warn(f"{path}: {clamped} requests with 0 request tokens read as 1 token",
                      TraceWarning, stacklevel=4)
    return notes


def read_trace(path: str | Path, format: str | None = None, mapping=None,
               chunksize: int | None = None, *, failed: str = "drop") -> pd.DataFrame:
    """Read a request trace into the canonical table (see the module docstring).

    ``format`` overrides detection; ``mapping`` (a dict or :class:`ColumnMapping`) reads any CSV,
    Parquet or JSON Lines file; ``chunksize`` bounds the rows parsed at a time (the result is
    still held whole: use :func:`iter_trace_chunks` to stream); ``failed`` is the BurstGPT
    failed-request policy.  Unsorted rows are stable-sorted with a :class:`TraceWarning`."""
    return _guard(path, _read_trace, path, format, mapping, chunksize, failed)


def _read_trace(path, format, mapping, chunksize, failed) -> pd.DataFrame:
    path, fmt, m = _resolve(path, format, mapping)
    chunksize = int(chunksize or DEFAULT_CHUNKSIZE)
    if chunksize < 1:
        raise TraceError(f"chunksize must be >= 1, got {chunksize}", path=path)
    raws: list[_Raw] = []
    first_unsorted: int | None = None
    prev_last: int | None = None
    for r in _raw_chunks(path, fmt, m, chunksize, failed):
        if len(r.t_ns) == 0:
            continue
        if raws and r.absolute != raws[0].absolute:
            raise TraceError("mixed absolute (epoch) and relative times", path=path, line=int(r.lines[0]),
                             column=m.arrival, expected="one kind of timestamp")
        if first_unsorted is None:
            d = np.diff(r.t_ns)
            idx = np.flatnonzero(d < 0)
            if prev_last is not None and r.t_ns[0] < prev_last:
                first_unsorted = int(r.lines[0])
            elif idx.size:
                first_unsorted = int(r.lines[idx[0] + 1])
        prev_last = int(r.t_ns[-1])
        r.lines = np.empty(0, dtype=np.int64)  # not needed any more: free the memory
        raws.append(r)
    if not raws:
        raise TraceError("no requests in the file", path=path, line=2,
                         expected="at least one data row after the header")
    t = np.concatenate([r.t_ns for r in raws])
    absolute = raws[0].absolute
    notes = _repair_notes(path, raws, fmt)
    if first_unsorted is not None:
        warnings.warn(f"{path}:{first_unsorted}: timestamps not sorted (first out-of-order row); "
                      "sorted by arrival (stable)", TraceWarning, stacklevel=3)
        notes.append(f"sorted by arrival (first out-of-order line {first_unsorted})")
    t_min, t_max = int(t.min()), int(t.max())
    t0_ns = t_min if absolute else 0
    _check_plausible(path, m.unit, m.arrival, len(t), (t_max - t0_ns) / 1e9, None)
    attrs = new_attrs(source=str(path), fmt=fmt,
                      t0=pd.Timestamp(t0_ns, tz="UTC").isoformat() if absolute else None,
                      transformations=notes)
    inp = np.concatenate([r.input_tokens for r in raws])
    out = np.concatenate([r.output_tokens for r in raws])
    extras = _concat_extras(raws)
    del raws
    return _to_frame(t - t0_ns, inp, out, extras, attrs, sort=first_unsorted is not None)


def iter_trace_chunks(path: str | Path, chunksize: int = DEFAULT_CHUNKSIZE, format: str | None = None,
                      mapping=None, *, failed: str = "drop") -> Iterator[pd.DataFrame]:
    """Stream a trace as canonical chunks of at most ``chunksize`` rows (bounded memory).

    ``request_id`` and ``arrival_s`` are global (as :func:`read_trace` would give for a sorted
    file).  An out-of-order row raises :class:`TraceError` (a stream cannot be sorted; use
    :func:`read_trace`, which sorts with a warning)."""
    try:
        yield from _iter_trace_chunks(path, chunksize, format, mapping, failed)
    except FleetError:
        raise
    except OSError as exc:
        raise TraceError(f"cannot read: {exc.strerror or exc}", path=path) from exc
    except _malformed_input_errors() as exc:
        raise TraceError(f"could not read the trace ({type(exc).__name__}: {exc})", path=path) from exc


def _iter_trace_chunks(path, chunksize, format, mapping, failed) -> Iterator[pd.DataFrame]:
    path, fmt, m = _resolve(path, format, mapping)
    chunksize = int(chunksize)
    if chunksize < 1:
        raise TraceError(f"chunksize must be >= 1, got {chunksize}", path=path)
    t0_ns: int | None = None
    absolute = False
    prev_last: int | None = None
    n = 0
    last_line = None
    for r in _raw_chunks(path, fmt, m, chunksize, failed):
        if len(r.t_ns) == 0:
            continue
        if t0_ns is None:
            absolute = r.absolute
            t0_ns = int(r.t_ns[0]) if absolute else 0
        elif r.absolute != absolute:
            raise TraceError("mixed absolute (epoch) and relative times", path=path, line=int(r.lines[0]),
                             column=m.arrival, expected="one kind of timestamp")
        d = np.diff(r.t_ns)
        idx = np.flatnonzero(d < 0)
        bad_line = None
        if prev_last is not None and r.t_ns[0] < prev_last:
            bad_line = int(r.lines[0])
        elif idx.size:
            bad_line = int(r.lines[idx[0] + 1])
        if bad_line is not None:
            raise TraceError("timestamp earlier than the previous row; a streamed trace must be "
                             "sorted (read_trace sorts it with a warning)", path=path, line=bad_line,
                             column=m.arrival, expected="non-decreasing timestamps")
        if (r.t_ns[-1] - t0_ns) / 1e9 > MAX_SPAN_S and m.unit != "datetime":
            i = int(np.flatnonzero((r.t_ns - t0_ns) / 1e9 > MAX_SPAN_S)[0])
            _check_plausible(path, m.unit, m.arrival, n + i + 1, (r.t_ns[i] - t0_ns) / 1e9, int(r.lines[i]))
        prev_last = int(r.t_ns[-1])
        last_line = int(r.lines[-1])
        attrs = new_attrs(source=str(path), fmt=fmt,
                          t0=pd.Timestamp(t0_ns, tz="UTC").isoformat() if absolute else None,
                          transformations=_repair_notes(path, [r], fmt))
        chunk = _to_frame(r.t_ns - t0_ns, r.input_tokens, r.output_tokens, _concat_extras([r]),
                          attrs, id_offset=n)
        n += len(chunk)
        yield chunk
    if t0_ns is None or prev_last is None:
        raise TraceError("no requests in the file", path=path, line=2,
                         expected="at least one data row after the header")
    _check_plausible(path, m.unit, m.arrival, n, (prev_last - t0_ns) / 1e9, last_line)


# --------------------------------------------------------------------------- writing

def _csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    out = pd.DataFrame(index=df.index)
    for c in REQUEST_COLUMNS:
        if c not in df.columns:
            continue
        if c == "prefix_blocks":
            out[c] = [" ".join(str(int(x)) for x in v) for v in df[c]]
        elif c in CATEGORY_COLUMNS:
            out[c] = df[c].astype(object).where(df[c].notna(), "")
        else:
            out[c] = df[c]
    return out


def write_trace(df: pd.DataFrame, path: str | Path, float_format: str | None = None) -> Path:
    """Write a canonical request table atomically: ``.csv`` (floats as Python ``repr``, i.e.
    exact round trip, unless ``float_format`` is given, e.g. ``"%.6f"``) or ``.parquet``
    (``df.attrs`` kept in the file's metadata).  Returns the path."""
    from .._io import atomic_path
    from .schema import validate_requests

    path = Path(path)
    validate_requests(df, source=path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = _csv_frame(df)
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False, lineterminator="\n", float_format=float_format)
    elif suffix in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        cols = {}
        for c in REQUEST_COLUMNS:
            if c not in df.columns:
                continue
            if c == "prefix_blocks":
                cols[c] = pa.array([list(v) for v in df[c]], type=pa.list_(pa.int64()))
            elif c in CATEGORY_COLUMNS:
                cols[c] = pa.array([None if pd.isna(v) else str(v) for v in df[c].astype(object)],
                                   type=pa.string())
            else:
                cols[c] = pa.array(df[c].to_numpy())
        table = pa.table(cols)
        meta = {_ATTRS_KEY: json.dumps(_jsonable_attrs(df.attrs)).encode()}
        table = table.replace_schema_metadata(meta)
        with atomic_path(path) as tmp:
            pq.write_table(table, tmp)
    else:
        raise TraceError(f"unknown output format {suffix!r}", path=path, expected=".csv or .parquet")
    return path


def _jsonable_attrs(attrs: Mapping[str, Any]) -> dict:
    return {k: (v if isinstance(v, (str, int, float, list, type(None))) else str(v))
            for k, v in attrs.items() if k in ("source", "format", "t0", "transformations")}


def read_canonical_attrs(path: str | Path) -> dict:
    """The ``attrs`` stored in a canonical Parquet file by :func:`write_trace` ({} if none)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).schema_arrow.metadata or {}
    blob = meta.get(_ATTRS_KEY)
    return json.loads(blob) if blob else {}


# --------------------------------------------------------------------------- transforms

def _derived(df: pd.DataFrame, data: pd.DataFrame, note: str, sort: bool = True) -> pd.DataFrame:
    attrs = dict(df.attrs) if df.attrs else new_attrs()
    attrs["transformations"] = list(attrs.get("transformations") or []) + [note]
    return canonicalize(data, sort=sort, attrs=attrs)


def merge(traces: Sequence[pd.DataFrame], offsets_s: Sequence[float] | None = None,
          tenants: Sequence[str] | None = None) -> pd.DataFrame:
    """Merge request tables into one, sorted by arrival (ties: earlier trace first).

    ``offsets_s`` shifts each trace (s, >= 0 result); ``tenants`` labels each trace's rows in the
    ``tenant`` column.  ``attrs['source']`` becomes the list of sources; ``t0`` is kept only when
    all traces share it."""
    if not traces:
        raise TraceError("merge needs at least one trace")
    if offsets_s is not None and len(offsets_s) != len(traces):
        raise TraceError(f"{len(offsets_s)} offsets for {len(traces)} traces")
    if tenants is not None and len(tenants) != len(traces):
        raise TraceError(f"{len(tenants)} tenant labels for {len(traces)} traces")
    parts = []
    for i, df in enumerate(traces):
        p = df.drop(columns=["request_id"]).copy()
        for c in CATEGORY_COLUMNS:
            if c in p.columns:
                p[c] = p[c].astype(object)
        if offsets_s is not None:
            p["arrival_s"] = p["arrival_s"] + float(offsets_s[i])
        if tenants is not None:
            p["tenant"] = str(tenants[i])
        parts.append(p)
    data = pd.concat(parts, ignore_index=True)
    if "prefix_blocks" in data.columns:
        data["prefix_blocks"] = [v if isinstance(v, tuple) else () for v in data["prefix_blocks"]]
    if "priority" in data.columns:
        data["priority"] = data["priority"].fillna(0).astype(np.int8)
    if (data["arrival_s"] < 0).any():
        raise TraceError("merge offsets make some arrivals negative", expected="offsets that keep arrivals >= 0")
    t0s = {d.attrs.get("t0") for d in traces}
    attrs = new_attrs(source=[d.attrs.get("source") for d in traces],
                      fmt="merged", t0=t0s.pop() if len(t0s) == 1 and offsets_s is None else None,
                      transformations=[f"merged {len(traces)} traces"
                                       + (f" with offsets {list(map(float, offsets_s))} s" if offsets_s is not None else "")])
    return canonicalize(data, sort=True, attrs=attrs)


def time_shift(df: pd.DataFrame, shift_s: float) -> pd.DataFrame:
    """Add ``shift_s`` seconds to every arrival (``t0`` is moved back by the same amount, so the
    absolute times stay right).  A shift that makes an arrival negative is refused."""
    data = df.copy()
    data["arrival_s"] = data["arrival_s"] + float(shift_s)
    if len(data) and data["arrival_s"].iloc[0] < 0:
        raise TraceError(f"a time shift of {shift_s} s makes arrivals negative",
                         path=df.attrs.get("source"), expected=f"a shift >= {-df['arrival_s'].iloc[0]}")
    out = _derived(df, data, f"time_shift {float(shift_s)!r} s", sort=False)
    if df.attrs.get("t0"):
        out.attrs["t0"] = (pd.Timestamp(df.attrs["t0"]) - pd.Timedelta(seconds=float(shift_s))).isoformat()
    return out


def scale_rate(df: pd.DataFrame, factor: float, seed: int, jitter_s: float | None = None) -> pd.DataFrame:
    """Scale the request rate by ``factor``, keeping the token-length distributions.

    ``factor < 1``: independent thinning (each request kept with probability ``factor``).
    ``factor > 1``: every request is kept; ``floor(factor) - 1`` copies, plus one more with
    probability ``factor - floor(factor)``, are added, each shifted by an independent uniform
    jitter in ``[-jitter_s, +jitter_s]`` (default: the mean inter-arrival time of the input,
    so bursts on longer time scales are kept) and reflected into ``[0, last arrival]``.  Copies
    keep every column (tokens, model, prefix blocks).  Same seed, same output."""
    factor = float(factor)
    if not (factor > 0 and math.isfinite(factor)):
        raise TraceError(f"rate factor must be > 0, got {factor}", expected="a positive number")
    from ..limits import MAX_REQUESTS

    n = len(df)
    if n * factor > MAX_REQUESTS:
        raise TraceError(f"scaling {n:,} requests by {factor:g} makes about {n * factor:,.0f}; expected at most "
                         f"{MAX_REQUESTS:,} (fleet.limits.MAX_REQUESTS): use a lower rate_scale or a window of "
                         f"the trace", expected="a smaller rate factor")
    rng = np.random.default_rng(seed)
    data = df.drop(columns=["request_id"])
    if factor == 1.0 or n == 0:
        return _derived(df, data, "scale_rate x1.0 (unchanged)", sort=False)
    if factor < 1:
        keep = rng.random(n) < factor
        return _derived(df, data.loc[keep].reset_index(drop=True),
                        f"scale_rate x{factor!r} by thinning (seed {seed})", sort=False)
    arr = data["arrival_s"].to_numpy()
    end = float(arr[-1])
    if jitter_s is None:
        jitter_s = end / max(n - 1, 1) if end > 0 else 0.0
    whole = int(math.floor(factor))
    extra = factor - whole
    copies = [np.arange(n)] * whole
    if extra > 0:
        copies.append(np.flatnonzero(rng.random(n) < extra))
    parts = [data]
    for idx in copies[1:]:
        p = data.iloc[idx].reset_index(drop=True)
        t = p["arrival_s"].to_numpy() + rng.uniform(-jitter_s, jitter_s, len(idx))
        if end > 0:  # reflect into [0, end]
            t = np.abs(t)
            t = np.where(t > end, 2 * end - t, t)
            t = np.clip(t, 0.0, end)
        else:
            t = np.zeros(len(idx))
        p["arrival_s"] = t
        parts.append(p)
    data = pd.concat(parts, ignore_index=True)
    for c in CATEGORY_COLUMNS:
        if c in data.columns:
            data[c] = data[c].astype(object)
    return _derived(df, data, f"scale_rate x{factor!r} by replication with jitter +-{jitter_s:.6g} s "
                              f"(seed {seed})", sort=True)


def window(df: pd.DataFrame, start_s: float, end_s: float, rezero: bool = True) -> pd.DataFrame:
    """The requests with ``start_s <= arrival_s < end_s``; ``rezero`` subtracts ``start_s`` (and
    moves ``t0`` forward) so the window starts at 0."""
    if not end_s > start_s:
        raise TraceError(f"empty window [{start_s}, {end_s})", expected="end_s > start_s")
    arr = df["arrival_s"].to_numpy()
    lo, hi = np.searchsorted(arr, [start_s, end_s], side="left")
    data = df.iloc[lo:hi].drop(columns=["request_id"]).reset_index(drop=True)
    if rezero:
        data["arrival_s"] = data["arrival_s"] - float(start_s)
        data["arrival_s"] = data["arrival_s"].clip(lower=0.0)
    out = _derived(df, data, f"window [{float(start_s)!r}, {float(end_s)!r}) s"
                             + (" re-zeroed" if rezero else ""), sort=False)
    if rezero and df.attrs.get("t0"):
        out.attrs["t0"] = (pd.Timestamp(df.attrs["t0"]) + pd.Timedelta(seconds=float(start_s))).isoformat()
    return out


def sample(df: pd.DataFrame, n: int | None = None, frac: float | None = None, seed: int = 0) -> pd.DataFrame:
    """A reproducible random subset of ``n`` rows (or ``frac`` of them), without replacement,
    in arrival order."""
    if (n is None) == (frac is None):
        raise TraceError("sample needs exactly one of n and frac")
    total = len(df)
    if frac is not None:
        if not 0 <= frac <= 1:
            raise TraceError(f"frac must be in [0, 1], got {frac}")
        n = int(round(frac * total))
    assert n is not None        # exactly one of n and frac (checked above)
    if not 0 <= int(n) <= total:
        raise TraceError(f"cannot sample {n} of {total} requests", expected=f"0 <= n <= {total}")
    rng = np.random.default_rng(seed)
    idx = np.sort(rng.choice(total, size=int(n), replace=False))
    data = df.iloc[idx].drop(columns=["request_id"]).reset_index(drop=True)
    return _derived(df, data, f"sample {int(n)} of {total} (seed {seed})", sort=False)


# --------------------------------------------------------------------------- statistics

def trace_stats(df: pd.DataFrame) -> dict[str, Any]:
    """Summary numbers of a request table (what ``fleet trace inspect`` prints).

    Rates are counted in bins of 1 s and 60 s starting at the first arrival (bin k holds
    ``first + k*w <= t < first + (k+1)*w``); the peak 60 s rate is the busiest bin's count / 60.
    The mean rate is ``rows / span`` with span = last - first arrival.  Percentiles use numpy's
    default (linear) interpolation.  Burstiness is the coefficient of variation (std / mean,
    population std) of the inter-arrival times (1 for a Poisson process)."""
    n = len(df)
    out: dict[str, Any] = {"rows": n, "source": df.attrs.get("source"), "format": df.attrs.get("format"),
                           "t0": df.attrs.get("t0")}
    if n == 0:
        return out
    t = df["arrival_s"].to_numpy()
    span = float(t[-1] - t[0])
    rel = t - t[0]
    out["span_s"] = span
    out["mean_rate_rps"] = n / span if span > 0 else float("nan")
    out["peak_rate_1s_rps"] = float(np.bincount(np.floor(rel).astype(np.int64)).max())
    out["peak_rate_60s_rps"] = float(np.bincount(np.floor(rel / 60.0).astype(np.int64)).max()) / 60.0
    ia = np.diff(t)
    out["interarrival_cv"] = float(ia.std() / ia.mean()) if ia.size and ia.mean() > 0 else float("nan")
    out["duplicate_arrivals"] = int((ia == 0).sum())
    for c in ("input_tokens", "output_tokens"):
        x = df[c].to_numpy()
        out[f"{c}_mean"] = float(x.mean())
        out[f"{c}_p50"] = float(np.percentile(x, 50))
        out[f"{c}_p99"] = float(np.percentile(x, 99))
        out[f"{c}_max"] = int(x.max())
    return out
