"""Readers for grid signal files; every problem is a :class:`~fleet.errors.GridError` naming the file,
the line (1-based, the header is line 1) and the column, and saying what was expected.

Formats (detected from the header, not the file name; ``fmt=`` overrides):

``electricitymaps``
    Electricity Maps hourly export (``Datetime (UTC)``, ``Zone Id``, ``Carbon Intensity gCO₂eq/kWh
    (direct)``, ``Carbon Intensity gCO₂eq/kWh (LCA)``, ...).  ``basis="lca"`` (the default) reads the
    life-cycle intensity, ``basis="direct"`` the combustion-only one.  **Why LCA by default:** it is
    the number Electricity Maps shows by default and includes upstream emissions of every source
    (a grid of nuclear and wind is not zero-carbon over its life cycle); use ``direct`` to compare with
    combustion-only (Scope 2 location-based factor) inventories.  Kind ``average_ci``, gCO2e/kWh, step.
``watttime``
    WattTime MOER: a time column (``point_time``, or ``oootime`` as in the Vessim example whose header
    has a typo) and one value column in lbs CO2/MWh.  Converted to gCO2e/kWh (x 0.45359237, see
    :mod:`fleet.grid.units`).  Naive stamps are read as UTC (WattTime's API times are UTC; the Vessim
    example's daily MOER minimum falls at 14-21 UTC, daytime in California).  Kind ``marginal_ci``, step.
``prices``
    Hourly price files (``datetime_utc`` with ``Z``, ``price_local_per_mwh``, ``currency``,
    ``price_usd_per_mwh``).  ``currency="USD"`` (default) reads the USD column, ``currency="local"``
    the local one (its unit is ``<currency>/MWh`` from the ``currency`` column, which must not change).
    Kind ``price``, step.  Negative prices are kept (they happen).
``generic``
    Any CSV with a time column and a value column.  The time column is ``time_column=``, else the first
    column named like time/timestamp/datetime/date, else the first column.  The value column is
    ``value_column=``, else the only other column.  The unit is ``unit=``, else taken from the value
    header in brackets (``ci [gCO2e/kWh]``, ``price (USD/MWh)``); otherwise the file is refused.  The kind
    is ``kind=``, else the value header if it is a kind name, else guessed from the unit (x/kWh of CO2 ->
    ``average_ci``, currency/MWh -> ``price``, ``1`` with a header containing ``pue`` -> ``pue``,
    otherwise ``generic``).  Times with an offset or ``Z`` are converted to UTC; **naive times need
    ``tz=``** (e.g. ``"UTC"`` or ``"Europe/Berlin"``) unless the time header says UTC
    (``time_utc``, ``Datetime (UTC)``); otherwise the file is refused.  Numeric times are Unix seconds.
    :func:`write_signal_csv` writes this format, so every signal round-trips.

Repairs: unsorted rows are sorted (a warning and ``meta["repairs"]``); duplicate stamps, empty or
non-numeric values, NaN and infinity are errors.  Gaps are kept unless ``gaps=`` says otherwise
(``"keep"`` default, ``"error"``, ``"ffill"``, ``"interpolate"``; see :meth:`Signal.fill_gaps`).
"""

from __future__ import annotations

import csv
import io
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import atomic_path
from ..errors import GridError
from .signal import KINDS, Signal
from .units import LB_PER_MWH_TO_G_PER_KWH, normalise_unit, per_energy

log = logging.getLogger("fleet.grid")

FORMATS = ("electricitymaps", "watttime", "prices", "generic")
_MAX_BYTES = 512 * 1024 * 1024

# a time of day followed by a zone designator (Z or +hh[:mm]); "2023-01-01" alone is naive
_TZ_SUFFIX = re.compile(r"(\d{1,2}:\d{2}(?::\d{2}(?:\.\d+)?)?)\s*(?:Z|[+-]\d{2}(?::?\d{2})?)$", re.IGNORECASE)
_NUMERIC = re.compile(r"^[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?$")
_UNIT_IN_HEADER = re.compile(r"^(.*?)\s*[\[(]\s*([^\])]+?)\s*[\])]\s*$")
_TIME_NAMES = ("time", "timestamp", "datetime", "date", "time_utc", "datetime_utc", "timestamp_utc",
               "datetime (utc)", "point_time", "oootime", "period_start", "start")


@dataclass
class Table:
    """A CSV file as text: header, rows, and the file line of each row."""

    path: Path
    header: list[str]
    rows: list[list[str]]
    lines: np.ndarray

    def column(self, name: str) -> tuple[int, list[str]]:
        try:
            i = self.header.index(name)
        except ValueError as exc:
            raise GridError(f"no column {name!r}", path=self.path, line=1,
                            expected="one of the header columns " + ", ".join(repr(h) for h in self.header)) from exc
        return i, [r[i] for r in self.rows]


def read_table(path: str | Path) -> Table:
    """Read a CSV strictly: UTF-8 (a BOM is allowed), a header, every row with the header's field count.
    Blank lines are skipped."""
    p = Path(path)
    if not p.exists():
        raise GridError("no such file", path=p, expected="a grid signal CSV")
    if p.is_dir():
        raise GridError("is a directory", path=p, expected="a grid signal CSV file")
    try:
        size = p.stat().st_size
        if size > _MAX_BYTES:
            raise GridError(f"file is {size} bytes", path=p, expected=f"at most {_MAX_BYTES} bytes")
        raw = p.read_bytes()
    except OSError as exc:
        raise GridError(f"cannot read: {exc.strerror or exc}", path=p) from exc
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise GridError(f"not UTF-8 text (byte {exc.start})", path=p, line=line, expected="a UTF-8 CSV file") from exc
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise GridError("NUL byte in file", path=p, line=line, expected="a text CSV file")
    if not text.strip():
        raise GridError("empty file", path=p, expected="a header line and data rows")
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    header: list[str] | None = None
    rows: list[list[str]] = []
    lines: list[int] = []
    try:
        for row in reader:
            if not row or all(not c.strip() for c in row):
                continue
            if header is None:
                header = [c.strip() for c in row]
                if len(set(header)) != len(header):
                    dup = next(h for h in header if header.count(h) > 1)
                    raise GridError(f"column {dup!r} appears twice in the header", path=p, line=reader.line_num,
                                    expected="unique column names")
                continue
            if len(row) != len(header):
                raise GridError(f"{len(row)} fields", path=p, line=reader.line_num,
                                expected=f"{len(header)} fields as in the header ({', '.join(header)})")
            rows.append(row)
            lines.append(reader.line_num)
    except csv.Error as exc:
        raise GridError(f"malformed CSV: {exc}", path=p, line=reader.line_num, expected="valid CSV") from exc
    if header is None:
        raise GridError("no header", path=p, expected="a header line and data rows")
    if not rows:
        raise GridError("no data rows after the header", path=p, line=1, expected="at least one data row")
    return Table(p, header, rows, np.asarray(lines, dtype=np.int64))


def detect_format(header: list[str]) -> str:
    """Which reader a header belongs to (see the module docstring)."""
    low = [h.strip().lower() for h in header]
    if low and low[0].startswith("datetime") and any(h.startswith("carbon intensity") for h in low):
        return "electricitymaps"
    if "datetime_utc" in low and ("price_usd_per_mwh" in low or "price_local_per_mwh" in low):
        return "prices"
    if len(low) == 2 and (low[0] in ("oootime", "point_time")
                          or ("moer" in low[1] and not _UNIT_IN_HEADER.match(low[1]))):
        return "watttime"
    if "point_time" in low and "value" in low:
        return "watttime"
    return "generic"


# ---------------------------------------------------------------------------------------------- parsing
def _parse_numbers(table: Table, column: str, unit: str, *, minimum: float | None = None) -> np.ndarray:
    _, cells = table.column(column)
    s = pd.Series(cells, dtype=object).astype(str).str.strip()
    ok = s.str.match(_NUMERIC.pattern)
    if not ok.all():
        k = int(np.flatnonzero(~ok.to_numpy())[0])
        raise GridError(f"value {cells[k]!r} is not a number", path=table.path, line=int(table.lines[k]),
                        column=column, expected=f"a finite number in {unit}")
    vals = s.astype(np.float64).to_numpy()
    if not np.all(np.isfinite(vals)):
        k = int(np.flatnonzero(~np.isfinite(vals))[0])
        raise GridError(f"value {cells[k]!r} is out of range", path=table.path, line=int(table.lines[k]),
                        column=column, expected=f"a finite number in {unit}")
    if minimum is not None and np.any(vals < minimum):
        k = int(np.flatnonzero(vals < minimum)[0])
        raise GridError(f"value {cells[k]!r} is below {minimum:g}", path=table.path, line=int(table.lines[k]),
                        column=column, expected=f"a number >= {minimum:g} {unit}")
    return vals


def _parse_times(table: Table, column: str, *, tz: str | None, assume_utc: bool, fmt: str | None = None) -> np.ndarray:
    """Parse a time column to int64 ns since the epoch, UTC."""
    _, cells = table.column(column)
    s = pd.Series(cells, dtype=object).astype(str).str.strip()
    empty = s == ""
    if empty.any():
        k = int(np.flatnonzero(empty.to_numpy())[0])
        raise GridError("empty time", path=table.path, line=int(table.lines[k]), column=column,
                        expected="a time such as 2023-01-01T00:00:00Z")
    numeric = s.str.match(_NUMERIC.pattern)
    if numeric.all() and fmt is None:
        secs = s.astype(np.float64).to_numpy()
        ok = np.isfinite(secs) & (np.abs(secs) <= 9.0e9)
        if not ok.all():
            k = int(np.flatnonzero(~ok)[0])
            raise GridError(f"Unix time {cells[k]!r} out of range", path=table.path, line=int(table.lines[k]),
                            column=column, expected="Unix seconds within +-9e9 (years 1685 to 2255)")
        return np.round(secs * 1e9).astype(np.int64)
    s = s.str.upper()  # ISO 8601 allows a lower-case "t" and "z"; pandas reads only upper case
    aware = s.str.contains(_TZ_SUFFIX.pattern.replace("(", "(?:", 1), regex=True, case=False)
    # unreadable times first (a clearer message than "mixed zones" for a stray word)
    try:
        plain = pd.to_datetime(s.str.replace(_TZ_SUFFIX.pattern, r"\1", regex=True, case=False),
                               format=fmt or "ISO8601", errors="coerce")
    except (ValueError, TypeError, OverflowError):
        plain = None
    if plain is not None and plain.isna().any():
        k = int(np.flatnonzero(plain.isna().to_numpy())[0])
        raise GridError(f"cannot read {cells[k]!r} as a time", path=table.path, line=int(table.lines[k]),
                        column=column, expected=f"a time in the format {fmt or 'ISO 8601, e.g. 2023-01-01T00:00:00Z'}")
    if aware.any() and not aware.all():
        k = int(np.flatnonzero(~aware.to_numpy())[0])
        raise GridError(f"time {cells[k]!r} has no zone but others in the column do", path=table.path,
                        line=int(table.lines[k]), column=column, expected="every time with a zone, or none")
    parse_fmt = fmt or "ISO8601"
    try:
        if aware.all():
            t = pd.to_datetime(s, format=parse_fmt, utc=True, errors="coerce")
        else:
            t = pd.to_datetime(s, format=parse_fmt, errors="coerce")
    except (ValueError, TypeError, OverflowError) as exc:
        raise GridError(f"cannot read times: {exc}", path=table.path, column=column,
                        expected="ISO 8601 times") from exc
    bad = t.isna().to_numpy()
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise GridError(f"cannot read {cells[k]!r} as a time", path=table.path, line=int(table.lines[k]),
                        column=column, expected=f"a time in the format {fmt or 'ISO 8601, e.g. 2023-01-01T00:00:00Z'}")
    if not aware.all():
        zone = tz or ("UTC" if assume_utc else None)
        if zone is None:
            raise GridError(f"naive times (no zone), e.g. {cells[0]!r}", path=table.path, line=int(table.lines[0]),
                            column=column,
                            expected="the time zone given (tz='UTC' or e.g. tz='Europe/Berlin'; CLI --tz), "
                                     "times with an offset such as 2023-01-01T00:00:00Z, or a header that says UTC")
        try:
            try:  # the repeated hour when clocks go back: told apart by the order of the rows
                t = t.dt.tz_localize(zone, ambiguous="infer", nonexistent="raise")
            except ValueError as exc:
                if "nonexistent" in str(exc).lower() or "does not exist" in str(exc).lower():
                    raise
                t = t.dt.tz_localize(zone, ambiguous="raise", nonexistent="raise")
        except (ValueError, TypeError, OverflowError) as exc:
            # pandas' DST errors are ValueError subclasses (AmbiguousTimeError, NonExistentTimeError); find the row
            line = None
            m = re.search(r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}", str(exc))
            if m:
                hit = np.flatnonzero((t == pd.Timestamp(m.group(0))).to_numpy())
                line = int(table.lines[hit[0]]) if len(hit) else None
            raise GridError(f"cannot place the naive times in zone {zone!r}: {exc}", path=table.path, line=line,
                            column=column,
                            expected="a valid IANA zone, and times that exist exactly once in it (DST)") from exc
        except Exception as exc:  # unknown zone names raise zoneinfo/pytz specific errors
            raise GridError(f"unknown time zone {zone!r} ({type(exc).__name__})", path=table.path, column=column,
                            expected="an IANA zone name such as UTC or Europe/Berlin") from exc
        t = t.dt.tz_convert("UTC")
    try:
        return pd.DatetimeIndex(t).as_unit("ns").asi8.copy()
    except (ValueError, OverflowError) as exc:
        raise GridError(f"times out of range: {exc}", path=table.path, column=column,
                        expected="times between 1678 and 2261") from exc


def _build(table: Table, t_ns: np.ndarray, vals: np.ndarray, *, unit: str, kind: str, interpolation: str,
           fmt: str, time_column: str, meta: dict, resolution_s: float | None, gaps: str) -> Signal:
    lines = table.lines
    repairs = []
    if len(t_ns) > 1 and np.any(np.diff(t_ns) <= 0):
        order = np.argsort(t_ns, kind="stable")
        ts = t_ns[order]
        dup = np.flatnonzero(np.diff(ts) == 0)
        if len(dup):
            a, b = int(lines[order[dup[0]]]), int(lines[order[dup[0] + 1]])
            when = pd.Timestamp(int(ts[dup[0]]), tz="UTC").isoformat()
            raise GridError(f"duplicate time {when} (also on line {a})", path=table.path, line=b, column=time_column,
                            expected="one row per interval")
        k = int(np.flatnonzero(np.diff(t_ns) <= 0)[0])
        msg = f"rows not in time order (first at line {int(lines[k + 1])}); sorted them"
        log.warning("%s: %s", table.path, msg)
        repairs.append(msg)
        t_ns, vals, lines = ts, vals[order], lines[order]
    meta = {**meta, "format": fmt, "path": str(table.path), "rows": int(len(vals)), "lines": lines}
    if repairs:
        meta["repairs"] = repairs
    if resolution_s is None and len(t_ns) < 2:
        raise GridError("only one row, so the interval length is unknown", path=table.path, line=int(lines[0]),
                        expected="at least two rows, or resolution_s given")
    sig = Signal(pd.DatetimeIndex(pd.to_datetime(t_ns, utc=True)).as_unit("ns"), vals, unit, kind, interpolation,
                 f"{table.path} ({fmt})", meta, resolution_s)
    if gaps not in ("keep", "error", "ffill", "interpolate"):
        raise GridError(f"unknown gap policy {gaps!r}", expected="keep | error | ffill | interpolate")
    if gaps != "keep":
        found = sig.gaps()
        if found and gaps == "error":
            g = found[0]
            raise GridError(f"{len(found)} gap(s); first {g.start.isoformat()} to {g.end.isoformat()}",
                            path=table.path, line=g.after_line, column=time_column,
                            expected="one row per interval with no gaps, or gap policy ffill/interpolate")
        if found:
            sig = sig.fill_gaps(gaps)
    return sig


# ---------------------------------------------------------------------------------------------- readers
def read_electricitymaps(path: str | Path, basis: str = "lca", *, gaps: str = "keep", table: Table | None = None) -> Signal:
    """Electricity Maps hourly export -> average carbon intensity in gCO2e/kWh (step, hourly)."""
    table = table or read_table(path)
    b = basis.strip().lower()
    if b not in ("lca", "direct"):
        raise GridError(f"unknown intensity basis {basis!r}", path=table.path, expected="lca | direct")
    want = "(lca)" if b == "lca" else "(direct)"
    col = next((h for h in table.header if h.lower().startswith("carbon intensity") and h.lower().endswith(want)), None)
    if col is None:
        raise GridError(f"no {b} carbon intensity column", path=table.path, line=1,
                        expected=f"a header 'Carbon Intensity gCO₂eq/kWh {want.replace('(lca)', '(LCA)')}'")
    unit_m = re.search(r"intensity\s+(\S+)", col, re.IGNORECASE)
    unit = normalise_unit(unit_m.group(1)) if unit_m else "gCO2e/kWh"
    if unit != "gCO2e/kWh":
        raise GridError(f"unit {unit!r} in column header", path=table.path, line=1, column=col, expected="gCO2eq/kWh")
    time_col = table.header[0]
    t = _parse_times(table, time_col, tz=None, assume_utc=True, fmt=None)
    vals = _parse_numbers(table, col, unit, minimum=0.0)
    meta: dict[str, Any] = {"basis": b}
    for key, name in (("zone", "Zone Id"), ("zone_name", "Zone Name"), ("country", "Country")):
        if name in table.header:
            vs = sorted(set(table.column(name)[1]))
            meta[key] = vs[0] if len(vs) == 1 else vs
    if "Data Estimated" in table.header:
        est = [c.strip().lower() == "true" for c in table.column("Data Estimated")[1]]
        meta["estimated_fraction"] = float(np.mean(est))
    return _build(table, t, vals, unit=unit, kind="average_ci", interpolation="step", fmt="electricitymaps",
                  time_column=time_col, meta=meta, resolution_s=3600.0 if len(t) < 2 else None, gaps=gaps)


def read_watttime(path: str | Path, *, gaps: str = "keep", tz: str | None = None, table: Table | None = None) -> Signal:
    """WattTime MOER (lbs CO2/MWh) -> marginal intensity in gCO2e/kWh (step)."""
    table = table or read_table(path)
    low = [h.lower() for h in table.header]
    time_col = table.header[low.index("point_time")] if "point_time" in low else table.header[0]
    if "value" in low:
        val_col = table.header[low.index("value")]
    else:
        others = [h for h in table.header if h != time_col]
        if len(others) != 1:
            raise GridError("cannot tell the MOER column", path=table.path, line=1,
                            expected="two columns (time, MOER) or point_time and value")
        val_col = others[0]
    t = _parse_times(table, time_col, tz=tz, assume_utc=True)
    lbs = _parse_numbers(table, val_col, "lbs CO2/MWh", minimum=0.0)
    meta = {"region": val_col if val_col.lower() != "value" else None, "source_unit": "lbs/MWh",
            "conversion": f"x {LB_PER_MWH_TO_G_PER_KWH} (1 lb/MWh = 0.45359237 g/kWh)",
            "mean_lbs_per_mwh": float(lbs.mean())}
    return _build(table, t, lbs * LB_PER_MWH_TO_G_PER_KWH, unit="gCO2e/kWh", kind="marginal_ci",
                  interpolation="step", fmt="watttime", time_column=time_col, meta=meta,
                  resolution_s=300.0 if len(t) < 2 else None, gaps=gaps)


def read_prices(path: str | Path, currency: str = "USD", *, gaps: str = "keep", table: Table | None = None) -> Signal:
    """Hourly price file -> price in USD/MWh (default) or the local currency per MWh (step, hourly)."""
    table = table or read_table(path)
    cur = currency.strip()
    time_col = "datetime_utc"
    t = _parse_times(table, time_col, tz=None, assume_utc=True)
    if cur.upper() == "USD":
        col, unit = "price_usd_per_mwh", "USD/MWh"
        local = None
    elif cur.lower() == "local":
        col = "price_local_per_mwh"
        _, curs = table.column("currency")
        codes = sorted(set(c.strip().upper() for c in curs))
        if len(codes) != 1 or not re.fullmatch(r"[A-Z]{3}", codes[0]):
            k = next((i for i, c in enumerate(curs) if c.strip().upper() != curs[0].strip().upper()), 0)
            raise GridError(f"currency codes {codes[:5]} in one file", path=table.path, line=int(table.lines[k]),
                            column="currency", expected="one three-letter currency code throughout")
        local = codes[0]
        unit = f"{local}/MWh"
    else:
        raise GridError(f"unknown currency choice {currency!r}", path=table.path, expected="USD | local")
    vals = _parse_numbers(table, col, unit)
    meta = {"currency": "USD" if local is None else local, "column": col}
    return _build(table, t, vals, unit=unit, kind="price", interpolation="step", fmt="prices", time_column=time_col,
                  meta=meta, resolution_s=3600.0 if len(t) < 2 else None, gaps=gaps)


def _guess_kind(value_header: str, unit: str) -> str:
    name = value_header.strip().lower()
    if name in KINDS:
        return name
    u = normalise_unit(unit)
    pe = per_energy(u)
    if pe and pe[0] in ("gCO2e", "kgCO2e") and u != "1":
        return "marginal_ci" if ("marginal" in name or "moer" in name) else "average_ci"
    if pe and re.fullmatch(r"[A-Z]{3}", pe[0]):
        return "price"
    if u == "1" and "pue" in name:
        return "pue"
    return "generic"


def read_generic(path: str | Path, *, unit: str | None = None, kind: str | None = None, tz: str | None = None,
                 time_column: str | None = None, value_column: str | None = None, interpolation: str = "step",
                 resolution_s: float | None = None, gaps: str = "keep", table: Table | None = None) -> Signal:
    """A time column and a value column (see the module docstring for every rule)."""
    table = table or read_table(path)
    hdr = table.header
    if len(hdr) < 2:
        raise GridError(f"{len(hdr)} column(s)", path=table.path, line=1, expected="a time column and a value column")
    if time_column is None:
        time_column = next((h for h in hdr if h.strip().lower() in _TIME_NAMES), hdr[0])
    elif time_column not in hdr:
        table.column(time_column)  # raises with the header listed
    if value_column is None:
        others = [h for h in hdr if h != time_column]
        if len(others) != 1:
            raise GridError(f"{len(others)} candidate value columns ({', '.join(others)})", path=table.path, line=1,
                            expected="value_column named (CLI --column), or a file with one value column")
        value_column = others[0]
    elif value_column not in hdr:
        table.column(value_column)
    m = _UNIT_IN_HEADER.match(value_column)
    header_unit = m.group(2) if m else None
    base_name = m.group(1) if m else value_column
    if unit is None:
        unit = header_unit
    elif header_unit is not None and normalise_unit(header_unit) != normalise_unit(unit):
        raise GridError(f"the header says {header_unit!r} but {unit!r} was given", path=table.path, line=1,
                        column=value_column, expected="the same unit, or no unit argument")
    if unit is None:
        raise GridError("no unit for the values", path=table.path, line=1, column=value_column,
                        expected="a unit in the header, e.g. 'value [gCO2e/kWh]', or unit= (CLI --unit)")
    kind = kind or _guess_kind(base_name, unit)
    if kind not in KINDS:
        raise GridError(f"unknown kind {kind!r}", path=table.path, expected=" | ".join(KINDS))
    tlow = time_column.lower()
    assume_utc = "utc" in tlow
    t = _parse_times(table, time_column, tz=tz, assume_utc=assume_utc)
    minimum = 0.0 if kind in ("average_ci", "marginal_ci") else (1.0 if kind == "pue" else None)
    vals = _parse_numbers(table, value_column, normalise_unit(unit), minimum=minimum)
    return _build(table, t, vals, unit=unit, kind=kind, interpolation=interpolation, fmt="generic",
                  time_column=time_column, meta={"value_column": value_column}, resolution_s=resolution_s, gaps=gaps)


def read_signal(path: str | Path, *, fmt: str | None = None, kind: str | None = None, basis: str = "lca",
                currency: str = "USD", unit: str | None = None, tz: str | None = None,
                time_column: str | None = None, value_column: str | None = None, interpolation: str | None = None,
                resolution_s: float | None = None, gaps: str = "keep") -> Signal:
    """Read any supported grid signal file; the format is detected from the header (``fmt`` overrides).

    ``kind``, when given, must agree with what the file holds (an Electricity Maps file is ``average_ci``, a
    WattTime file ``marginal_ci``, a price file ``price``); for a generic file it sets the kind.
    ``interpolation`` overrides the reader's (``step`` for every format unless stated).
    """
    table = read_table(path)
    detected = detect_format(table.header)
    f = fmt or detected
    if f not in FORMATS:
        raise GridError(f"unknown format {f!r}", path=table.path, expected=" | ".join(FORMATS))
    if kind is not None and kind not in KINDS:
        raise GridError(f"unknown kind {kind!r}", path=table.path, expected=" | ".join(KINDS))
    if f == "electricitymaps":
        sig = read_electricitymaps(path, basis, gaps=gaps, table=table)
    elif f == "watttime":
        sig = read_watttime(path, gaps=gaps, tz=tz, table=table)
    elif f == "prices":
        sig = read_prices(path, currency, gaps=gaps, table=table)
    else:
        sig = read_generic(path, unit=unit, kind=kind, tz=tz, time_column=time_column, value_column=value_column,
                           interpolation=interpolation or "step", resolution_s=resolution_s, gaps=gaps, table=table)
    if kind is not None and sig.kind != kind:
        raise GridError(f"this {f} file holds a {sig.kind} signal, not {kind}", path=table.path,
                        expected=f"kind {sig.kind} (or no kind)")
    if interpolation is not None and interpolation != sig.interpolation:
        sig = Signal(sig.index, sig.values, sig.unit, sig.kind, interpolation, sig.source, sig.meta, sig.resolution_s)
    return sig


def write_signal_csv(signal: Signal, path: str | Path) -> Path:
    """Write a signal in the generic format (``time_utc,<kind> [<unit>]``, ISO 8601 with Z, full float
    precision); :func:`read_signal` reads it back to the same stamps, values, unit and kind. Atomic."""
    if signal.is_constant:
        raise GridError("a constant signal has no rows to write", expected="a time series")
    stamps = signal.index.strftime("%Y-%m-%dT%H:%M:%S.%fZ") if np.any(signal.index.asi8 % 1_000_000_000) \
        else signal.index.strftime("%Y-%m-%dT%H:%M:%SZ")
    with atomic_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, lineterminator="\n")
            w.writerow(["time_utc", f"{signal.kind} [{signal.unit}]"])
            for s, v in zip(stamps, signal.values.tolist()):
                w.writerow([s, repr(float(v))])
    return Path(path)
