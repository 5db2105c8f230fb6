"""Signal semantics: lookups, interpolation, energy weighting, resampling, coverage and year shifting,
checked on the real 2023 files against independent pandas computations and exact invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fleet.errors import GridError
from fleet.grid import Signal, read_signal, split_at_boundaries

CI = "electricitymaps-hourly-ci-2023"
PRICES = "hourly-electricity-prices-2023"
START = pd.Timestamp("2023-01-01", tz="UTC")


@pytest.fixture(scope="module")
def caiso(shared_data):
    return read_signal(shared_data / CI / "US-CAL-CISO_2023_hourly.csv", basis="direct")


@pytest.fixture(scope="module")
def caiso_series(shared_data):
    df = pd.read_csv(shared_data / CI / "US-CAL-CISO_2023_hourly.csv", encoding="utf-8")
    col = [c for c in df.columns if c.endswith("(direct)")][0]
    return pd.Series(df[col].to_numpy(float),
                     index=pd.DatetimeIndex(pd.to_datetime(df["Datetime (UTC)"]).dt.tz_localize("UTC")).as_unit("ns"))


def test_step_lookup_is_the_containing_hour(caiso, caiso_series):
    rng = np.random.default_rng(3)
    t = rng.uniform(0, 8760 * 3600, 2000)
    t = np.concatenate([t, np.arange(0, 8760 * 3600, 3600.0), [8760 * 3600.0 - 1e-6]])
    got = caiso.at(t, START)
    # independent: pandas asof (last stamp at or before the time) on the raw CSV
    want = caiso_series.asof(START + pd.to_timedelta(t, unit="s")).to_numpy()
    np.testing.assert_array_equal(got, want)
    b = caiso.bind(START)
    assert [b.value_at(x) for x in t[:200]] == list(want[:200])
    assert [caiso.value_at(x) for x in t[:200]] == list(want[:200])


def test_lookup_with_a_clock_that_starts_mid_hour(caiso, caiso_series):
    start = pd.Timestamp("2023-06-01T10:30:00Z")
    caiso.bind(start)
    assert caiso.value_at(0.0) == caiso_series[pd.Timestamp("2023-06-01T10:00Z")]
    assert caiso.value_at(1799.0) == caiso_series[pd.Timestamp("2023-06-01T10:00Z")]
    assert caiso.value_at(1800.0) == caiso_series[pd.Timestamp("2023-06-01T11:00Z")]
    assert caiso.value_at(-10 * 3600.0) == caiso_series[pd.Timestamp("2023-06-01T00:00Z")]


def test_out_of_span_lookups_raise_clear_errors(caiso):
    caiso.bind(START)
    with pytest.raises(GridError, match="outside the signal's span"):
        caiso.value_at(-1.0)
    with pytest.raises(GridError, match="outside the signal's span"):
        caiso.at([0.0, 8761 * 3600.0], START)
    # the closed end is allowed: the last hour's value
    assert caiso.value_at(8760 * 3600.0) == caiso.values[-1]


def test_linear_interpolation_between_points(caiso):
    lin = Signal(caiso.index, caiso.values, caiso.unit, "average_ci", "linear")
    b = lin.bind(START)
    k = np.arange(0, 8759)
    for frac in (0.0, 0.25, 0.5, 0.9):
        t = (k + frac) * 3600.0
        want = caiso.values[k] + frac * (caiso.values[k + 1] - caiso.values[k])
        np.testing.assert_allclose(lin.at(t, START), want, rtol=1e-12, atol=1e-9)
        assert b.value_at(t[100]) == pytest.approx(want[100], rel=1e-12)
    # numpy's own interpolation as an independent reference
    rng = np.random.default_rng(0)
    t = rng.uniform(0, 8759 * 3600, 5000)
    np.testing.assert_allclose(lin.at(t, START), np.interp(t, np.arange(8760) * 3600.0, caiso.values), rtol=1e-12)
    # held after the last stamp, up to the end of the last interval
    assert lin.at([8759.5 * 3600], START)[0] == caiso.values[-1]


def test_irregular_series_uses_searchsorted_and_agrees(caiso):
    keep = np.ones(len(caiso), bool)
    keep[1::7] = False  # makes stamps irregular; fill forward gives back a regular series
    irregular = Signal(caiso.index[keep], caiso.values[keep], caiso.unit, "average_ci").fill_gaps("ffill")
    raw = Signal(caiso.index[keep], caiso.values[keep], caiso.unit, "average_ci")
    assert not raw.is_regular and irregular.is_regular
    # an irregular but gap-free series: hours and half-hours mixed
    idx = pd.DatetimeIndex([START + pd.Timedelta(minutes=m) for m in (0, 60, 90, 120, 180)])
    s = Signal(idx, np.array([1.0, 2.0, 3.0, 4.0, 5.0]), "USD/MWh", "price", resolution_s=1800.0)
    # two 30-minute steps at 60 and 90 min, but 0->60 is a 'gap' at 30-min resolution
    assert len(s.gaps()) == 2
    s = Signal(idx, np.array([1.0, 2.0, 3.0, 4.0, 5.0]), "USD/MWh", "price", resolution_s=3600.0)
    assert s.gaps() == [] and not s.is_regular
    b = s.bind(START)
    assert [b.value_at(m * 60.0) for m in (0, 59, 60, 89, 90, 119, 120, 179, 180, 239)] == \
        [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]


def test_constant_signal_works_everywhere():
    c = Signal.constant(250.0, "gCO2eq/kWh", "average_ci")
    assert c.unit == "gCO2e/kWh" and c.is_constant and c.gaps() == []
    assert c.covers("2031-05-01T00:00Z", 10 * 365 * 86400)
    assert c.value_at(123.0) == 250.0
    np.testing.assert_array_equal(c.at(np.linspace(-1e9, 1e9, 7), "2026-01-01T00:00Z"), np.full(7, 250.0))
    # 1 kWh -> 250 g, regardless of when
    assert c.weighted_sum(3.6e6, 1e6, 1e6 + 7.0, "2026-01-01T00:00Z") == pytest.approx(250.0)
    assert c.resample(60) is c and c.shift_year(2030) is c and c.for_window("2040-01-01T00:00Z", 1e6) is c
    assert split_at_boundaries(c, [0.0], [7200.0], [10.0], "2026-01-01T00:00Z")["energy_j"].sum() == 10.0


def test_weighted_carbon_of_1kw_for_a_day_is_the_sum_of_hourly_intensities(caiso, caiso_series):
    day = pd.Timestamp("2023-06-01T00:00Z")
    hourly = caiso_series[day: day + pd.Timedelta(hours=23)]
    assert len(hourly) == 24
    want_g = float(hourly.sum())  # 1 kWh in each hour
    # telemetry every 7 minutes (does not divide an hour: samples straddle hour boundaries)
    dt = 420.0
    t = np.arange(0, 86400, dt)
    intervals = np.minimum(dt, 86400 - t)
    got = caiso.integrate_power(t, np.full(len(t), 1000.0), intervals, start_utc=day)
    assert got == pytest.approx(want_g, rel=1e-12)
    # energy per interval + interval starts (and lengths): 1 kWh per 15 minutes is 4 kWh per hour
    starts = np.arange(0, 86400, 900.0)
    assert caiso.weighted_sum(np.full(96, 3.6e6 / 4), starts, None, day, interval_s=900.0) == \
        pytest.approx(want_g, rel=1e-12)
    # one interval covering the whole day
    assert caiso.weighted_sum(86400 * 1000.0, 0.0, 86400.0, day) == pytest.approx(want_g, rel=1e-12)
    # a clock that starts mid-hour: same physical day
    start = day - pd.Timedelta(minutes=30)
    assert caiso.weighted_sum(86400 * 1000.0, 1800.0, 1800.0 + 86400, start) == pytest.approx(want_g, rel=1e-12)


def test_weighted_price_in_usd(shared_data):
    ercot = read_signal(shared_data / PRICES / "US-TEX-ERCO_prices_2023_utc.csv")
    start = ercot.start
    # 1 MW for every hour of the file: the sum of the hourly prices in USD
    usd = ercot.weighted_sum(np.full(len(ercot), 3.6e9), np.arange(len(ercot)) * 3600.0, None, start)
    assert usd == pytest.approx(ercot.values.sum(), rel=1e-12)
    assert ercot.weighted_unit == "USD"
    with pytest.raises(GridError, match="cannot weight an energy"):
        Signal.constant(20.0, "degC").weighted_sum(1.0, 0.0, 1.0)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 8759 * 3600.0), st.floats(0, 30 * 3600.0), st.floats(0, 1e9)),
                min_size=1, max_size=30))
def test_splitting_conserves_energy_and_agrees_with_weighted(caiso, intervals):
    a = np.array([x[0] for x in intervals])
    b = np.minimum(a + np.array([x[1] for x in intervals]), 8760 * 3600.0)
    e = np.array([x[2] for x in intervals])
    pieces = split_at_boundaries(caiso, a, b, e, START)
    per_parent = pieces.groupby("parent")["energy_j"].sum().reindex(range(len(a)), fill_value=0.0)
    np.testing.assert_allclose(per_parent.to_numpy(), e, rtol=1e-9, atol=1e-6)
    # every piece lies inside one hour of the signal
    inner = pieces[pieces.end_s > pieces.start_s]
    assert np.all(np.floor(inner.start_s / 3600) == np.ceil(inner.end_s / 3600) - 1)
    # weight by pieces (value of the containing hour) == exact integral
    by_piece = pieces.groupby("parent")["weighted"].sum().reindex(range(len(a)), fill_value=0.0).to_numpy()
    exact = caiso.weighted(e, a, b, START)
    np.testing.assert_allclose(by_piece, exact, rtol=1e-9, atol=1e-9)
    hour_vals = caiso.values[np.floor(inner.start_s / 3600).astype(int)]
    np.testing.assert_allclose(inner.value, hour_vals, rtol=1e-12)


def test_short_intervals_are_exact_far_from_the_start(caiso):
    # 1 ms of 1 J late in the year: no loss of precision from a year-long cumulative integral
    t0 = 8000 * 3600.0 + 123.0
    g = caiso.weighted(1.0, t0, t0 + 1e-3, START)
    assert g == pytest.approx(caiso.values[8000] / 3.6e6, rel=1e-12)


def test_resample_mean_matches_pandas(shared_data):
    moer = read_signal(shared_data / "vessim-watttime-caiso-north-moer" / "watttime_example.csv")
    hourly = moer.resample(3600)
    ref = moer.to_series().resample("1h").mean()
    assert len(hourly) == len(ref) == 744
    np.testing.assert_allclose(hourly.values, ref.to_numpy(), rtol=1e-10)  # cumulative-integral rounding
    assert hourly.resolution_s == 3600 and hourly.interpolation == "step"
    # energy weighting is unchanged by a mean resample for energy spread evenly over each hour
    e = np.full(744, 3.6e6)
    t = np.arange(744) * 3600.0
    assert hourly.weighted_sum(e, t, t + 3600, moer.start) == pytest.approx(moer.weighted_sum(e, t, t + 3600, moer.start),
                                                                             rel=1e-12)
    # upsampling a step series repeats values
    q = read_signal(shared_data / CI / "GB_2023_hourly.csv").resample(900)
    np.testing.assert_array_equal(q.values[:8], np.repeat(q.values[[0, 4]], 4))


def test_coverage_and_year_shift(caiso):
    with pytest.raises(GridError, match=r"simulation window 2026-06-01.* is not inside the signal's span 2023-01-01"):
        caiso.require_coverage("2026-06-01T00:00Z", 86400)
    s26 = caiso.shift_year(2026)
    assert s26.start == pd.Timestamp("2026-01-01", tz="UTC") and s26.end == pd.Timestamp("2027-01-01", tz="UTC")
    np.testing.assert_array_equal(s26.values, caiso.values)
    # hour of year kept: 2023-06-01T10 (hour 3658) -> 2026-06-01T10 (also hour 3658; neither year is leap)
    assert s26.at([0.0], "2026-06-01T10:00Z")[0] == caiso.at([0.0], "2023-06-01T10:00Z")[0]
    w = caiso.for_window("2026-06-01T00:00Z", 7 * 86400)
    assert w.covers("2026-06-01T00:00Z", 7 * 86400) and w.meta["year_shift"]["to"] == 2026
    # leap target year: 8784 hours, 31 December repeats 30 December
    s24 = caiso.shift_year(2024)
    assert len(s24) == 8784 and s24.end == pd.Timestamp("2025-01-01", tz="UTC")
    np.testing.assert_array_equal(s24.values[-24:], caiso.values[-24:])
    # a window across new year tiles two shifted years
    w = caiso.for_window("2026-12-31T12:00Z", 86400)
    assert w.covers("2026-12-31T12:00Z", 86400)
    assert w.at([0.0, 12 * 3600.0], "2026-12-31T12:00Z").tolist() == [caiso.values[8760 - 12], caiso.values[0]]
    with pytest.raises(GridError):
        caiso.for_window("2026-06-01T00:00Z", 3600, year_shift=False)


def test_naive_start_is_refused(caiso):
    with pytest.raises(GridError, match="has no time zone"):
        caiso.bind("2023-01-01 00:00")


def test_signal_validation():
    idx = pd.date_range("2023-01-01", periods=3, freq="h", tz="UTC")
    with pytest.raises(GridError, match="unknown signal kind"):
        Signal(idx, np.ones(3), "1", "carbon")
    with pytest.raises(GridError, match="non-finite"):
        Signal(idx, np.array([1.0, np.nan, 2.0]), "1")
    with pytest.raises(GridError, match="strictly increasing"):
        Signal(idx[::-1], np.ones(3), "1")
    with pytest.raises(GridError, match="no time zone"):
        Signal(idx.tz_localize(None), np.ones(3), "1")
    with pytest.raises(GridError, match="gap policy"):
        Signal(idx.delete(1), np.ones(2), "1", resolution_s=3600).fill_gaps("zero")
