"""One type for every grid signal: carbon intensity (average or marginal), price, PUE, anything.

A :class:`Signal` is a piecewise function of wall-clock time:

* ``index``: tz-aware UTC :class:`pandas.DatetimeIndex` of **interval starts**, strictly increasing
  (nanosecond resolution inside).  The last interval ends at ``index[-1] + resolution_s``.
* ``values``: float64, one per interval start, in ``unit``.
* ``interpolation``:

  - ``"step"``: the value of a stamp holds over its whole interval ``[t_i, t_i+1)`` (the meaning of an
    hourly average such as an Electricity Maps hour or a day-ahead price).  A lookup inside an hour
    returns that hour's value.
  - ``"linear"``: the values are samples at the stamps; between two stamps the value is the straight
    line joining them; after the last stamp it is held until the end of the last interval.

* ``is_constant=True``: one value at every time (``Signal.constant(value, unit, kind)``); it covers every window.

Times on the simulation clock are float seconds from ``start_utc`` (the wall-clock time of t = 0,
``SimResult.meta["start_utc"]``).  :meth:`Signal.at` looks up an array of such times;
:meth:`Signal.bind` precomputes numpy arrays (and plain lists) so that :meth:`Signal.value_at` is an
O(1) scalar lookup (index arithmetic for a regular series, :func:`bisect.bisect_right` otherwise).

Gaps: a series whose stamps are not all one resolution apart has gaps (:meth:`Signal.gaps`).  The
readers keep the file as it is; lookups, resampling and weighting refuse a series with gaps (a
clear :class:`~fleet.errors.GridError`) until a policy is chosen with :meth:`Signal.fill_gaps`:
``"error"`` (raise), ``"ffill"`` (the last value before the gap holds through it) or
``"interpolate"`` (straight line between the values on either side).

Energy weighting (:meth:`Signal.weighted`): an energy ``E`` spent uniformly over ``[a, b)`` is
weighted by the exact time-mean of the signal over ``[a, b)`` (intervals that straddle hour
boundaries are split exactly, by a cumulative integral of the signal).  For a signal in
``gCO2e/kWh`` the result is gCO2e, for ``USD/MWh`` it is USD, for a ratio (PUE) it is J.
"""

from __future__ import annotations

import bisect
import logging
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, cast

import numpy as np
import pandas as pd

from ..errors import GridError
from .units import normalise_unit, per_energy

log = logging.getLogger("fleet.grid")

KINDS = ("average_ci", "marginal_ci", "price", "pue", "generic")
INTERPOLATIONS = ("step", "linear")
GAP_POLICIES = ("error", "ffill", "interpolate")

_NS = 1_000_000_000


def to_utc(ts: Any, what: str = "start_utc") -> pd.Timestamp:
    """A tz-aware UTC Timestamp from a str/datetime/Timestamp; naive input is refused."""
    try:
        t = pd.Timestamp(ts)
    except (ValueError, TypeError) as exc:
        raise GridError(f"{what}: cannot read {ts!r} as a time ({exc})",
                        expected="an ISO 8601 time with a zone, e.g. 2023-06-01T00:00:00Z") from exc
    if t is pd.NaT:
        raise GridError(f"{what}: got NaT", expected="a time")
    if t.tzinfo is None:
        raise GridError(f"{what}: {ts!r} has no time zone",
                        expected="a time with a zone, e.g. 2023-06-01T00:00:00Z or +02:00")
    return t.tz_convert("UTC").as_unit("ns")


@dataclass(frozen=True)
class Gap:
    """Missing intervals between two present stamps: ``[start, end)`` has no data."""

    start: pd.Timestamp
    end: pd.Timestamp
    missing: int  # number of missing intervals of the nominal resolution
    after_line: int | None = None  # file line of the last stamp before the gap, if known

    def __str__(self) -> str:
        where = f" (after line {self.after_line})" if self.after_line is not None else ""
        return f"{self.start.isoformat()} to {self.end.isoformat()}: {self.missing} missing interval(s){where}"


@dataclass(eq=False)
class Signal:
    """A grid time series; see the module docstring for the exact semantics."""

    index: pd.DatetimeIndex
    values: np.ndarray
    unit: str
    kind: str = "generic"
    interpolation: str = "step"
    source: str = ""
    meta: dict = field(default_factory=dict)
    #: nominal interval length in seconds; inferred (the most common spacing) when None
    resolution_s: float | None = None
    is_constant: bool = False
    _bound: "BoundSignal | None" = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        where = self.source or "signal"
        if self.kind not in KINDS:
            raise GridError(f"{where}: unknown signal kind {self.kind!r}", expected=" | ".join(KINDS))
        if self.interpolation not in INTERPOLATIONS:
            raise GridError(f"{where}: unknown interpolation {self.interpolation!r}",
                            expected=" | ".join(INTERPOLATIONS))
        self.unit = normalise_unit(self.unit)
        idx = pd.DatetimeIndex(self.index)
        if idx.tz is None:
            raise GridError(f"{where}: the index has no time zone", expected="a tz-aware (UTC) index")
        self.index = idx.tz_convert("UTC").as_unit("ns")
        vals = np.asarray(self.values, dtype=np.float64).reshape(-1)
        if len(vals) != len(self.index):
            raise GridError(f"{where}: {len(vals)} values for {len(self.index)} stamps")
        if len(vals) == 0:
            raise GridError(f"{where}: empty signal", expected="at least one value")
        if not np.all(np.isfinite(vals)):
            bad = int(np.flatnonzero(~np.isfinite(vals))[0])
            raise GridError(f"{where}: non-finite value {vals[bad]} at {self.index[bad].isoformat()}",
                            expected="finite numbers")
        self.values = vals
        t = self.index.asi8
        if len(t) > 1 and not np.all(np.diff(t) > 0):
            raise GridError(f"{where}: stamps are not strictly increasing", expected="sorted, unique times")
        if self.is_constant:
            if len(vals) != 1:
                raise GridError(f"{where}: a constant signal has exactly one value")
            self.resolution_s = math.inf
        elif self.resolution_s is None:
            if len(t) < 2:
                raise GridError(f"{where}: one stamp and no resolution given",
                                expected="at least two stamps, or resolution_s")
            d = np.diff(t)
            vals_d, counts = np.unique(d, return_counts=True)
            self.resolution_s = float(vals_d[np.argmax(counts)]) / _NS
        elif not (self.resolution_s > 0 and math.isfinite(self.resolution_s)):
            raise GridError(f"{where}: resolution_s must be a positive number of seconds, got {self.resolution_s}")
        if not self.is_constant and int(t[-1]) + self.resolution_s * _NS >= pd.Timestamp.max.value:
            raise GridError(f"{where}: the series would end after {pd.Timestamp.max.isoformat()}",
                            expected="times before the year 2262")

    # ------------------------------------------------------------------ construction
    @classmethod
    def constant(cls, value: float, unit: str, kind: str = "generic", source: str = "constant",
                       meta: dict | None = None) -> "Signal":
        """A signal with the same value at every time (covers every window)."""
        try:
            v = float(value)
        except (TypeError, ValueError) as exc:
            raise GridError(f"{source}: constant value {value!r} is not a number") from exc
        return cls(pd.DatetimeIndex([pd.Timestamp("2000-01-01", tz="UTC")]), np.array([v]), unit, kind,
                   "step", source, dict(meta or {}), is_constant=True)

    @classmethod
    def from_series(cls, series: pd.Series, unit: str, kind: str = "generic", interpolation: str = "step",
                    source: str = "", meta: dict | None = None, resolution_s: float | None = None) -> "Signal":
        """From a pandas Series with a tz-aware DatetimeIndex of interval starts."""
        return cls(pd.DatetimeIndex(series.index), series.to_numpy(dtype=np.float64), unit, kind,
                   interpolation, source, dict(meta or {}), resolution_s)

    def to_series(self, tz: str | None = None) -> pd.Series:
        """The values as a pandas Series; the index in UTC, or converted to ``tz`` (e.g. for local-time
        display: ``to_series("America/Los_Angeles")``).  Inside fleet, times stay UTC."""
        idx = self.index if tz is None else self.index.tz_convert(tz)
        return pd.Series(self.values, index=idx, name=f"{self.kind} [{self.unit}]")

    def __repr__(self) -> str:
        if self.is_constant:
            return f"Signal.constant({self.values[0]!r}, {self.unit!r}, {self.kind!r})"
        return (f"Signal({self.kind}, {len(self)} x {self.resolution_s:g} s, {self.start.isoformat()} .. "
                f"{self.end.isoformat()}, unit={self.unit!r}, {self.interpolation}, source={self.source!r})")

    def with_values(self, values: np.ndarray, unit: str | None = None, kind: str | None = None,
                    note: str | None = None) -> "Signal":
        """The same stamps with new values (e.g. a unit conversion)."""
        meta = dict(self.meta)
        if note:
            meta["history"] = [*meta.get("history", []), note]
        return Signal(self.index, np.asarray(values, dtype=np.float64), unit or self.unit, kind or self.kind,
                      self.interpolation, self.source, meta, self.resolution_s, self.is_constant)

    # ------------------------------------------------------------------ basic facts
    def __len__(self) -> int:
        return len(self.values)

    @property
    def step_s(self) -> float:
        """``resolution_s`` once construction has settled it (inferred when not given; inf for a
        constant), typed as the float it then always is."""
        return cast(float, self.resolution_s)

    @property
    def start(self) -> pd.Timestamp:
        """First interval start; far past for a constant."""
        if self.is_constant:
            return pd.Timestamp.min.tz_localize("UTC")
        return self.index[0]

    @property
    def end(self) -> pd.Timestamp:
        """End of the last interval (``index[-1] + resolution``); far future for a constant."""
        if self.is_constant:
            return pd.Timestamp.max.tz_localize("UTC")
        return self.index[-1] + pd.Timedelta(seconds=self.resolution_s)

    def describe_where(self) -> str:
        return self.source or f"{self.kind} signal"

    def gaps(self) -> list[Gap]:
        """Missing intervals: places where two stamps are more than one resolution apart."""
        if self.is_constant or len(self.index) < 2:
            return []
        t = self.index.asi8
        res_ns = int(round(self.step_s * _NS))
        d = np.diff(t)
        lines = self.meta.get("lines")
        out = []
        for i in np.flatnonzero(d > res_ns):
            start = pd.Timestamp(int(t[i]) + res_ns, tz="UTC")
            end = pd.Timestamp(int(t[i + 1]), tz="UTC")
            missing = int(round((d[i] - res_ns) / res_ns))
            line = int(lines[i]) if lines is not None else None
            out.append(Gap(start, end, max(missing, 1), line))
        return out

    @property
    def is_regular(self) -> bool:
        """True if every stamp is exactly one resolution after the previous one."""
        if self.is_constant or len(self.index) < 2:
            return True
        d = np.diff(self.index.asi8)
        return bool(np.all(d == int(round(self.step_s * _NS))))

    def _require_usable(self, what: str) -> None:
        if self.is_constant:
            return
        gaps = self.gaps()
        if gaps:
            raise GridError(
                f"{self.describe_where()}: {what} needs a series without gaps, and this one has {len(gaps)} "
                f"(first: {gaps[0]})",
                expected="a gap policy: signal.fill_gaps('ffill' | 'interpolate'), "
                         "or gaps='ffill' when reading")

    # ------------------------------------------------------------------ gap repair, resampling, windows
    def fill_gaps(self, policy: str = "error") -> "Signal":
        """A gap-free copy on the regular grid of ``resolution_s``.

        ``"error"`` raises :class:`GridError` naming the first gap; ``"ffill"`` holds the last value
        before a gap through it; ``"interpolate"`` fills it with the straight line between the values on
        either side.  Off-grid stamps (spacing not a multiple of the resolution) are refused.
        """
        if policy not in GAP_POLICIES:
            raise GridError(f"unknown gap policy {policy!r}", expected=" | ".join(GAP_POLICIES))
        gaps = self.gaps()
        if not gaps:
            return self
        if policy == "error":
            raise GridError(f"{self.describe_where()}: {len(gaps)} gap(s) in the series; first: {gaps[0]}",
                            expected="a series without gaps, or gap policy 'ffill' or 'interpolate'")
        t = self.index.asi8
        res_ns = int(round(self.step_s * _NS))
        if np.any((t - t[0]) % res_ns != 0):
            bad = int(np.flatnonzero((t - t[0]) % res_ns != 0)[0])
            raise GridError(f"{self.describe_where()}: stamp {self.index[bad].isoformat()} is off the "
                            f"{self.resolution_s:g} s grid, so gaps cannot be filled on a regular grid",
                            expected="stamps a whole number of intervals apart")
        # integer arithmetic: np.arange on ~1e18 ns values computes its length in float64 and can drop one
        grid = int(t[0]) + res_ns * np.arange((int(t[-1]) - int(t[0])) // res_ns + 1, dtype=np.int64)
        pos = np.searchsorted(t, grid, side="right") - 1
        if policy == "ffill":
            vals = self.values[pos]
        else:
            vals = np.interp(grid.astype(np.float64), t.astype(np.float64), self.values)
        meta = dict(self.meta)
        meta.pop("lines", None)
        meta["filled_gaps"] = {"policy": policy, "gaps": [str(g) for g in gaps],
                               "intervals": int(len(grid) - len(t))}
        log.warning("%s: filled %d gap(s) (%d intervals) by %s", self.describe_where(), len(gaps),
                    len(grid) - len(t), policy)
        return Signal(pd.DatetimeIndex(pd.to_datetime(grid, utc=True)).as_unit("ns"), vals, self.unit, self.kind,
                      self.interpolation, self.source, meta, self.resolution_s)

    def resample(self, resolution_s: float, how: str = "mean") -> "Signal":
        """A new step signal with intervals of ``resolution_s`` aligned to the Unix epoch (so an hourly
        grid falls on whole UTC hours).

        ``how="mean"`` (the default): each new value is the exact time-mean of this signal over the new
        interval (right for averages such as intensities, prices and PUE; for upsampling a step signal it
        repeats values).  ``how="sample"``: the value at the new interval start.  Only new intervals that
        lie entirely inside this signal are kept.
        """
        if self.is_constant:
            return self
        self._require_usable("resample")
        if not (resolution_s > 0):
            raise GridError(f"resample: resolution must be positive, got {resolution_s}")
        if how not in ("mean", "sample"):
            raise GridError(f"resample: unknown method {how!r}", expected="mean | sample")
        res_ns = int(round(resolution_s * _NS))
        a = int(self.index.asi8[0])
        b = int(self.end.value)
        first = -(-a // res_ns) * res_ns
        count = (b - res_ns - first) // res_ns + 1 if b - res_ns >= first else 0
        starts = first + res_ns * np.arange(count, dtype=np.int64)
        if len(starts) == 0:
            raise GridError(f"{self.describe_where()}: resampling to {resolution_s:g} s leaves no whole interval")
        bound = self.bind(pd.Timestamp(a, tz="UTC"), _store=False)
        rel = (starts - a) / _NS
        if how == "mean":
            vals = bound.mean_over(rel, rel + resolution_s)
        else:
            vals = bound.at(rel)
        meta = dict(self.meta)
        meta.pop("lines", None)
        meta["resampled"] = {"from_s": self.resolution_s, "to_s": float(resolution_s), "how": how}
        return Signal(pd.DatetimeIndex(pd.to_datetime(starts, utc=True)).as_unit("ns"), vals, self.unit, self.kind,
                      "step", self.source, meta, float(resolution_s))

    def window(self, start_utc: Any, end_utc: Any) -> "Signal":
        """The intervals that overlap ``[start_utc, end_utc)``."""
        if self.is_constant:
            return self
        a, b = to_utc(start_utc), to_utc(end_utc, "end_utc")
        t = self.index.asi8
        res_ns = int(round(self.step_s * _NS))
        keep = (t < b.value) & (t + res_ns > a.value)
        if not keep.any():
            raise GridError(f"{self.describe_where()}: no data between {a.isoformat()} and {b.isoformat()}",
                            expected=f"a window inside {self.start.isoformat()} .. {self.end.isoformat()}")
        meta = dict(self.meta)
        if "lines" in meta:
            meta["lines"] = np.asarray(meta["lines"])[keep]
        return Signal(self.index[keep], self.values[keep], self.unit, self.kind, self.interpolation, self.source,
                      meta, self.resolution_s)

    def covers(self, start_utc: Any, duration_s: float) -> bool:
        if self.is_constant:
            return True
        a = to_utc(start_utc)
        b = a + pd.Timedelta(seconds=float(duration_s))
        return bool(self.start <= a and b <= self.end)

    def require_coverage(self, start_utc: Any, duration_s: float) -> None:
        """Raise a clear :class:`GridError` unless ``[start_utc, start_utc + duration_s]`` lies inside."""
        if self.covers(start_utc, duration_s):
            return
        a = to_utc(start_utc)
        b = a + pd.Timedelta(seconds=float(duration_s))
        raise GridError(
            f"{self.describe_where()}: the simulation window {a.isoformat()} .. {b.isoformat()} is not inside "
            f"the signal's span {self.start.isoformat()} .. {self.end.isoformat()}",
            expected="a window inside the data, or a year shift (signal.for_window(...) / shift_year)")

    def shift_year(self, target_year: int, source_year: int | None = None) -> "Signal":
        """Move the series onto another year, keeping the hour of the year.

        Every stamp moves by ``Jan 1 target_year - Jan 1 source_year`` (``source_year`` defaults to the
        year holding most of the data), so hour ``h`` of 2023 becomes hour ``h`` of the target year
        (1 January 00:00 UTC stays 1 January 00:00 UTC).  Weekdays are not kept (2023-01-01 was a
        Sunday, 2026-01-01 is a Thursday): weekly patterns in prices shift by some days.  A leap target
        year has 24 hours more than a common source year: the last 24 hours of the shifted data are
        repeated to fill 31 December (recorded in ``meta["year_shift"]``); a leap source moved onto a
        common year runs 24 hours into the next year.
        """
        if self.is_constant:
            return self
        if source_year is None:
            years = self.index.year
            source_year = int(pd.Series(years).mode().iloc[0])
        offset = pd.Timestamp(f"{int(target_year)}-01-01", tz="UTC") - pd.Timestamp(f"{int(source_year)}-01-01",
                                                                                     tz="UTC")
        idx = self.index + offset
        vals = self.values
        padded = 0
        year_end = pd.Timestamp(f"{int(target_year) + 1}-01-01", tz="UTC")
        res = pd.Timedelta(seconds=self.resolution_s)
        src_len = pd.Timestamp(f"{int(source_year) + 1}-01-01", tz="UTC") - pd.Timestamp(f"{int(source_year)}-01-01", tz="UTC")
        tgt_len = year_end - pd.Timestamp(f"{int(target_year)}-01-01", tz="UTC")
        if tgt_len > src_len and idx[-1] + res < year_end and self.is_regular:
            day = pd.Timedelta(days=1)
            tail = (idx >= idx[-1] + res - day)
            idx = idx.append(idx[tail] + day)
            vals = np.concatenate([vals, vals[tail]])
            padded = int(tail.sum())
        meta = dict(self.meta)
        meta.pop("lines", None)
        meta["year_shift"] = {"from": int(source_year), "to": int(target_year), "offset_s": offset.total_seconds(),
                              "padded_intervals": padded}
        return Signal(idx, vals, self.unit, self.kind, self.interpolation, self.source, meta, self.resolution_s)

    def for_window(self, start_utc: Any, duration_s: float, year_shift: bool = True) -> "Signal":
        """This signal if it covers the window; otherwise (``year_shift=True``) the data moved by
        :meth:`shift_year` onto the window's year(s), tiled across a new year if the window crosses one.
        """
        if self.covers(start_utc, duration_s):
            return self
        if not year_shift:
            self.require_coverage(start_utc, duration_s)
        a = to_utc(start_utc)
        b = a + pd.Timedelta(seconds=float(duration_s))
        self._require_usable("a year shift")
        parts = [self.shift_year(y) for y in range(a.year, b.year + 1)]
        out = parts[0]
        for p in parts[1:]:
            keep = p.index >= out.end
            out = Signal(out.index.append(p.index[keep]), np.concatenate([out.values, p.values[keep]]), out.unit,
                         out.kind, out.interpolation, out.source, {**out.meta, "year_shift": {
                             "from": out.meta["year_shift"]["from"], "to": [a.year, b.year], "tiled": True}},
                         out.resolution_s)
        out.require_coverage(a, duration_s)
        return out

    # ------------------------------------------------------------------ lookups
    def bind(self, start_utc: Any, _store: bool = True) -> "BoundSignal":
        """Precompute the arrays for lookups on a simulation clock whose t = 0 is ``start_utc``.

        Returns the :class:`BoundSignal` and (unless ``_store=False``) keeps it, so that
        :meth:`value_at` works on this signal afterwards.
        """
        self._require_usable("a lookup")
        b = BoundSignal(self, to_utc(start_utc))
        if _store:
            self._bound = b
            # the instance attribute shadows the method: signal.value_at(t) is the bound closure itself
            self.__dict__["value_at"] = b.value_at
        return b

    def value_at(self, t_s: float) -> float:
        """The value at ``t_s`` seconds after the bound ``start_utc`` (call :meth:`bind` first). O(1)."""
        if self._bound is None:
            if self.is_constant:
                return float(self.values[0])
            raise GridError(f"{self.describe_where()}: value_at() before bind(start_utc)",
                            expected="signal.bind(start_utc) first")
        return self._bound.value_at(t_s)

    def at(self, t_s: Iterable[float] | np.ndarray, start_utc: Any = None) -> np.ndarray:
        """Vectorised lookup of many times (seconds after ``start_utc``; the bound start if omitted)."""
        return self._bound_for(start_utc).at(np.asarray(t_s, dtype=np.float64))

    def at_times(self, times_utc: pd.DatetimeIndex) -> np.ndarray:
        """Vectorised lookup at wall-clock times."""
        times = pd.DatetimeIndex(times_utc)
        if times.tz is None:
            raise GridError("at_times: times have no time zone", expected="tz-aware times")
        t = times.tz_convert("UTC").as_unit("ns").asi8
        if len(t) == 0:
            return np.zeros(0)
        t0 = pd.Timestamp(int(t[0]), tz="UTC")
        return self.bind(t0, _store=False).at((t - t[0]) / _NS)

    def _bound_for(self, start_utc: Any) -> "BoundSignal":
        if start_utc is None:
            if self._bound is None:
                if self.is_constant:
                    return self.bind("2000-01-01T00:00:00Z", _store=True)
                raise GridError(f"{self.describe_where()}: no start_utc given and bind() not called",
                                expected="start_utc, or signal.bind(start_utc) first")
            return self._bound
        start = to_utc(start_utc)
        if self._bound is not None and self._bound.start_utc == start:
            return self._bound
        return self.bind(start, _store=False)

    # ------------------------------------------------------------------ energy weighting
    def weighted(self, energy_j: np.ndarray | float, start_s: np.ndarray | float, end_s: np.ndarray | float | None = None,
                 start_utc: Any = None, *, interval_s: np.ndarray | float | None = None) -> np.ndarray:
        """Per interval: energy ``energy_j`` spent uniformly over ``[start_s, end_s)`` times the exact
        time-mean of the signal over that interval, converted by the signal's energy unit.

        Result units: gCO2e for a ``gCO2e/kWh`` signal, USD for ``USD/MWh``, J for a ratio (PUE).
        Give the interval ends as ``end_s`` or as lengths ``interval_s`` (``end_s = start_s + interval_s``);
        with neither (or ``end_s == start_s``) the energy is weighted by the value at ``start_s``.
        """
        if interval_s is not None:
            if end_s is not None:
                raise GridError("weighted: give end_s or interval_s, not both")
            end_s = np.asarray(start_s, dtype=np.float64) + np.asarray(interval_s, dtype=np.float64)
        pe = per_energy(self.unit)
        if pe is None:
            raise GridError(f"{self.describe_where()}: unit {self.unit!r} cannot weight an energy",
                            expected="a unit per energy such as gCO2e/kWh or USD/MWh, or '1'")
        e = np.asarray(energy_j, dtype=np.float64)
        a = np.asarray(start_s, dtype=np.float64)
        bound = self._bound_for(start_utc)
        if end_s is None:
            mean = bound.at(np.atleast_1d(a)).reshape(np.shape(a))
        else:
            mean = bound.mean_over(np.atleast_1d(a), np.atleast_1d(np.asarray(end_s, dtype=np.float64)))
            mean = mean.reshape(np.broadcast_shapes(np.shape(a), np.shape(end_s)))
        return e * mean / pe[1]

    def weighted_sum(self, energy_j, start_s, end_s=None, start_utc: Any = None, *, interval_s=None) -> float:
        """Total of :meth:`weighted` (gCO2e, USD or J, see :attr:`weighted_unit`)."""
        return float(np.sum(self.weighted(energy_j, start_s, end_s, start_utc, interval_s=interval_s)))

    @property
    def weighted_unit(self) -> str:
        pe = per_energy(self.unit)
        return pe[0] if pe else "?"

    def integrate_power(self, time_s: np.ndarray, power_w: np.ndarray, interval_s: float | np.ndarray,
                        start_utc: Any = None) -> float:
        """Weight a power series: ``power_w[i]`` is the mean power over ``[time_s[i], time_s[i] + interval_s)``
        (the telemetry convention of :data:`fleet.sim.result.POWER_COLUMNS`); returns gCO2e/USD/J."""
        t = np.asarray(time_s, dtype=np.float64)
        p = np.asarray(power_w, dtype=np.float64)
        dt = np.broadcast_to(np.asarray(interval_s, dtype=np.float64), t.shape)
        return self.weighted_sum(p * dt, t, None, start_utc, interval_s=dt)

    # ------------------------------------------------------------------ statistics
    def hour_of_day_profile(self) -> np.ndarray:
        """Mean value by UTC hour of day (24 values; NaN for an hour with no data).  For a step series
        coarser than an hour, each stamp counts for the hour it starts in."""
        if self.is_constant:
            return np.full(24, self.values[0])
        hours = self.index.hour.to_numpy()
        sums = np.bincount(hours, weights=self.values, minlength=24)
        counts = np.bincount(hours, minlength=24)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


class BoundSignal:
    """A signal precomputed for one simulation clock (t = 0 at ``start_utc``).

    ``value_at(t)`` is a closure over plain Python floats and lists (no attribute lookups, no numpy
    scalar overhead): index arithmetic for a regular series, :func:`bisect.bisect_right` otherwise.
    ``at(t_array)`` is the vectorised form.  Times outside ``[first stamp, end]`` raise :class:`GridError`.
    """

    def __init__(self, signal: Signal, start_utc: pd.Timestamp):
        self.signal = signal
        self.start_utc = start_utc
        self.interpolation = signal.interpolation
        self.is_constant = bool(signal.is_constant)
        vals = signal.values
        self.values = vals
        if self.is_constant:
            self.times = np.array([-math.inf])
            self.t_first, self.t_end = -math.inf, math.inf
            self.dt: float | None = math.inf
            c = float(vals[0])
            self.value_at: Callable[[float], float] = lambda t: c
            return
        t_rel = (signal.index.asi8 - start_utc.value) / _NS
        self.times = t_rel
        self.n = n = len(vals)
        self.t_first = t0 = float(t_rel[0])
        self.t_end = t_end = t0 + float((signal.index.asi8[-1] - signal.index.asi8[0]) / _NS) + signal.step_s
        regular = signal.is_regular
        dt = float(signal.step_s)          # used only where the series is regular
        self.dt = dt if regular else None
        vl = vals.tolist()
        tl = t_rel.tolist()
        # slopes for linear interpolation (0 on the last, held interval)
        nxt = np.append(t_rel[1:], t_end)
        width = nxt - t_rel
        if self.interpolation == "linear" and n > 1:
            slope = np.zeros(n)
            slope[:-1] = np.diff(vals) / np.diff(t_rel)
        else:
            slope = np.zeros(n)
        self.slope = slope
        # cumulative integral of the signal at each stamp (value x seconds)
        area = vals * width + 0.5 * slope * width * width
        self.cum = np.concatenate([[0.0], np.cumsum(area)])
        sl = slope.tolist()
        out_of_range = self._out_of_range

        if self.interpolation == "step":
            if regular:
                def value_at(t: float) -> float:
                    i = int((t - t0) // dt)
                    if 0 <= i < n:
                        return vl[i]
                    return vl[out_of_range(t)]
            else:
                def value_at(t: float) -> float:
                    i = bisect.bisect_right(tl, t) - 1
                    if 0 <= i and t < t_end:
                        return vl[i]
                    return vl[out_of_range(t)]
        else:
            if regular:
                def value_at(t: float) -> float:
                    i = int((t - t0) // dt)
                    if not 0 <= i < n:
                        i = out_of_range(t)
                    return vl[i] + sl[i] * (t - tl[i])
            else:
                def value_at(t: float) -> float:
                    i = bisect.bisect_right(tl, t) - 1
                    if not (0 <= i and t < t_end):
                        i = out_of_range(t)
                    return vl[i] + sl[i] * (t - tl[i])
        self.value_at = value_at

    def _out_of_range(self, t: float) -> int:
        """Index for ``t`` exactly at the end of the data (closed end); otherwise raise."""
        if t == self.t_end:
            return self.n - 1
        s = self.signal
        raise GridError(
            f"{s.describe_where()}: time t={t!r} s after {self.start_utc.isoformat()} is outside the signal's span "
            f"{s.start.isoformat()} .. {s.end.isoformat()}",
            expected="a window inside the data (check coverage with require_coverage, or year-shift it)")

    def _index(self, t: np.ndarray) -> np.ndarray:
        if self.dt is not None:
            i = np.floor((t - self.t_first) / self.dt).astype(np.int64)
        else:
            i = np.searchsorted(self.times, t, side="right") - 1
        bad = (i < 0) | (i >= self.n) | ~(t <= self.t_end)
        if bad.any():
            at_end = bad & (t == self.t_end)
            i[at_end] = self.n - 1
            bad &= ~at_end
            if bad.any():
                self._out_of_range(float(t[np.flatnonzero(bad)[0]]))
        return i

    def at(self, t: np.ndarray) -> np.ndarray:
        t = np.asarray(t, dtype=np.float64)
        if self.is_constant:
            return np.full(t.shape, float(self.values[0]))
        flat = t.reshape(-1)
        i = self._index(flat)
        v = self.values[i]
        if self.interpolation == "linear":
            v = v + self.slope[i] * (flat - self.times[i])
        return v.reshape(t.shape)

    def _partial(self, i: np.ndarray, t: np.ndarray) -> np.ndarray:
        """Integral of the signal from stamp ``i`` to ``t`` (t inside interval i)."""
        x = t - self.times[i]
        return self.values[i] * x + 0.5 * self.slope[i] * x * x

    def integral(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Exact integral of the signal over ``[a, b]`` (value x seconds), elementwise."""
        return self._integral(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))[0]

    def _integral(self, a: np.ndarray, b: np.ndarray):
        if self.is_constant:
            return float(self.values[0]) * (b - a), None, None
        if np.any(b < a):
            k = int(np.flatnonzero(b < a)[0])
            raise GridError(f"interval {k} ends before it starts ({a.reshape(-1)[k]} s > {b.reshape(-1)[k]} s)",
                            expected="end_s >= start_s")
        ia = self._index(a)
        ib = self._index(b)
        # an interval that ends exactly on a boundary ends in the interval before it (no empty tail)
        ib = np.where((ib > ia) & (self.times[ib] == b), ib - 1, ib)
        pa = self._partial(ia, a)
        pb = self._partial(ib, b)
        # different intervals: rest of a's interval + whole intervals between + head of b's interval
        full = self.cum[ib] - self.cum[ia]
        return np.where(ia == ib, pb - pa, full - pa + pb), ia, ib

    def mean_over(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Exact time-mean of the signal over ``[a, b)``; the point value where ``b == a``.

        Inside one interval the mean is computed directly (the interval's value for a step signal, the
        value at the midpoint for a linear one), so it carries no rounding from the cumulative integral."""
        a, b = np.broadcast_arrays(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64))
        a, b = a.reshape(-1), b.reshape(-1)
        shape = np.shape(a)
        if self.is_constant:
            return np.full(shape, float(self.values[0]))
        integ, ia, ib = self._integral(a, b)
        width = b - a
        same = ia == ib
        mid = 0.5 * (a + b)
        inside = self.values[ia] + self.slope[ia] * (mid - self.times[ia])
        with np.errstate(invalid="ignore", divide="ignore"):
            across = integ / np.where(same, 1.0, width)
        return np.where(same, inside, across)


def split_at_boundaries(signal: Signal, start_s: np.ndarray, end_s: np.ndarray, energy_j: np.ndarray,
                        start_utc: Any = None) -> pd.DataFrame:
    """Split energy intervals at the signal's interval boundaries.

    Energy ``energy_j[k]`` spent uniformly over ``[start_s[k], end_s[k])`` is divided among the
    pieces in proportion to their duration.  Returns one row per piece: ``parent`` (k), ``start_s``,
    ``end_s``, ``energy_j``, ``value`` (the signal's time-mean over the piece) and ``weighted``
    (energy x value in the signal's weighted unit).  The pieces' energies sum to the input's
    (zero-length intervals stay one piece).
    """
    a = np.asarray(start_s, dtype=np.float64).reshape(-1)
    b = np.asarray(end_s, dtype=np.float64).reshape(-1)
    e = np.asarray(energy_j, dtype=np.float64).reshape(-1)
    bound = signal._bound_for(start_utc)
    if bound.is_constant:
        bounds_rel = np.array([])
        ia = np.zeros(len(a), dtype=np.int64)
        ib = ia.copy()
    else:
        ia = bound._index(a)
        ib = bound._index(b)
        # a piece ends exactly on a boundary: the last piece would be empty
        ib = np.where((b > a) & (bound.times[ib] == b), ib - 1, ib)
        ib = np.maximum(ib, ia)
        bounds_rel = bound.times
    counts = ib - ia + 1
    parent = np.repeat(np.arange(len(a)), counts)
    offset = np.arange(len(parent)) - np.repeat(np.cumsum(counts) - counts, counts)
    k = np.repeat(ia, counts) + offset
    ps = np.where(offset == 0, a[parent], bounds_rel[k] if len(bounds_rel) else a[parent])
    last = offset == counts[parent] - 1
    nxt = np.where(last, b[parent], bounds_rel[np.minimum(k + 1, len(bounds_rel) - 1)] if len(bounds_rel) else b[parent])
    width = b[parent] - a[parent]
    with np.errstate(invalid="ignore", divide="ignore"):
        frac = np.where(width > 0, (nxt - ps) / np.where(width > 0, width, 1.0), 1.0)
    pe = e[parent] * frac
    value = bound.mean_over(ps, nxt)
    per = per_energy(signal.unit)
    j_per = per[1] if per else math.nan
    return pd.DataFrame({"parent": parent, "start_s": ps, "end_s": nxt, "energy_j": pe, "value": value,
                         "weighted": pe * value / j_per})
