"""Grid readers on the real reference files: every file loads, the numbers agree with an independent
pandas computation and with the SCHEMA.md tables, and every signal round-trips through the generic CSV."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fleet.errors import FleetError, GridError
from fleet.grid import detect_format, read_signal, write_signal_csv
from fleet.grid.readers import read_table
from fleet.grid.summary import summarize

CI = "electricitymaps-hourly-ci-2023"
PRICES = "hourly-electricity-prices-2023"
MOER = "vessim-watttime-caiso-north-moer"

CI_ZONES = ["US-CAL-CISO", "US-TEX-ERCO", "US-MIDA-PJM", "US-NY-NYIS", "DE-LU", "GB", "SG", "JP-TK"]
PRICE_ZONES = ["US-CAL-CISO", "US-TEX-ERCO", "US-MIDA-PJM", "US-NY-NYIS", "DE-LU", "FR", "SG", "JP-TK"]

# SCHEMA.md of electricitymaps-hourly-ci-2023: direct mean, LCA mean, lowest-CI hour (UTC, direct profile)
CI_TABLE = {
    "US-CAL-CISO": (194, 261, 20), "US-TEX-ERCO": (317, 381, 15), "US-MIDA-PJM": (322, 392, 7),
    "US-NY-NYIS": (210, 278, 8), "DE-LU": (308, 367, 11), "GB": (129, 188, 12), "SG": (369, 488, 4),
    "JP-TK": (450, 540, 3),
}
# SCHEMA.md of hourly-electricity-prices-2023: rows, mean USD/MWh
PRICE_TABLE = {
    "US-CAL-CISO": (8784, 61.5), "US-TEX-ERCO": (8760, 55.9), "US-MIDA-PJM": (8736, 35.8),
    "US-NY-NYIS": (8760, 36.4), "DE-LU": (8759, 102.6), "FR": (8735, 104.2), "JP-TK": (8760, 89.4),
    "SG": (8760, 184.9),
}


def _pandas_ci(path, col_suffix):
    df = pd.read_csv(path, encoding="utf-8")
    col = next(c for c in df.columns if c.endswith(col_suffix))
    t = pd.to_datetime(df["Datetime (UTC)"]).dt.tz_localize("UTC")
    return pd.Series(df[col].to_numpy(float), index=t)


@pytest.mark.parametrize("zone", CI_ZONES)
def test_electricitymaps_matches_pandas_and_schema(shared_data, zone):
    path = shared_data / CI / f"{zone}_2023_hourly.csv"
    direct_mean, lca_mean, low_hour = CI_TABLE[zone]
    for basis, suffix, schema_mean in (("direct", "(direct)", direct_mean), ("lca", "(LCA)", lca_mean)):
        sig = read_signal(path, basis=basis)
        ref = _pandas_ci(path, suffix)
        assert sig.kind == "average_ci" and sig.unit == "gCO2e/kWh" and sig.interpolation == "step"
        assert len(sig) == 8760 and sig.gaps() == [] and sig.is_regular and sig.resolution_s == 3600
        assert sig.start == pd.Timestamp("2023-01-01", tz="UTC") and sig.end == pd.Timestamp("2024-01-01", tz="UTC")
        np.testing.assert_array_equal(sig.values, ref.to_numpy())
        assert (sig.index == ref.index).all()
        assert sig.values.mean() == pytest.approx(schema_mean, abs=0.6)
        s = summarize(sig)
        assert s["mean"] == pytest.approx(ref.mean(), rel=1e-12)
        assert s["p5"] == pytest.approx(ref.quantile(0.05), rel=1e-12)
        assert s["p95"] == pytest.approx(ref.quantile(0.95), rel=1e-12)
        prof = ref.groupby(ref.index.hour).mean()
        np.testing.assert_allclose(s["hour_of_day_mean_utc"], prof.to_numpy(), rtol=1e-12)
        if basis == "direct":
            assert s["lowest_hour_utc"] == low_hour == int(prof.idxmin())


def test_default_basis_is_lca(shared_data):
    sig = read_signal(shared_data / CI / "US-CAL-CISO_2023_hourly.csv")
    assert sig.meta["basis"] == "lca"
    assert sig.values.mean() == pytest.approx(261, abs=0.5)
    assert read_signal(shared_data / CI / "US-CAL-CISO_2023_hourly.csv", basis="direct").values.mean() == \
        pytest.approx(194, abs=0.5)


@pytest.mark.parametrize("zone", PRICE_ZONES)
def test_prices_match_pandas_and_schema(shared_data, zone):
    path = shared_data / PRICES / f"{zone}_prices_2023_utc.csv"
    rows, mean_usd = PRICE_TABLE[zone]
    df = pd.read_csv(path)
    t = pd.to_datetime(df["datetime_utc"], utc=True)
    sig = read_signal(path)
    assert sig.kind == "price" and sig.unit == "USD/MWh"
    assert len(sig) == rows
    np.testing.assert_array_equal(sig.values, df["price_usd_per_mwh"].to_numpy(float))
    assert (sig.index == pd.DatetimeIndex(t)).all()
    assert sig.values.mean() == pytest.approx(mean_usd, abs=0.06)
    local = read_signal(path, currency="local")
    assert local.unit == f"{df['currency'].iloc[0]}/MWh"
    np.testing.assert_array_equal(local.values, df["price_local_per_mwh"].to_numpy(float))
    # gaps found by the reader agree with pandas: missing hours between first and last stamp
    expected_missing = int((t.iloc[-1] - t.iloc[0]) / pd.Timedelta(hours=1)) + 1 - len(t)
    assert sum(g.missing for g in sig.gaps()) == expected_missing


def test_ercot_price_mean(shared_data):
    sig = read_signal(shared_data / PRICES / "US-TEX-ERCO_prices_2023_utc.csv")
    assert sig.values.mean() == pytest.approx(55.9, abs=0.05)


def test_fr_and_de_price_gaps_located(shared_data):
    fr = read_signal(shared_data / PRICES / "FR_prices_2023_utc.csv")
    gaps = fr.gaps()
    assert [g.missing for g in gaps] == [1, 24]
    assert gaps[1].start == pd.Timestamp("2023-11-29T23:00", tz="UTC")
    assert gaps[1].end == pd.Timestamp("2023-11-30T23:00", tz="UTC")
    # the line before the gap is the file line of the last present hour
    df = pd.read_csv(shared_data / PRICES / "FR_prices_2023_utc.csv")
    line = gaps[1].after_line
    assert df["datetime_utc"].iloc[line - 2] == "2023-11-29T22:00:00Z"
    with pytest.raises(GridError, match="gap"):
        read_signal(shared_data / PRICES / "FR_prices_2023_utc.csv", gaps="error")
    filled = read_signal(shared_data / PRICES / "DE-LU_prices_2023_utc.csv", gaps="ffill")
    assert len(filled) == 8760 and filled.gaps() == [] and filled.is_regular


def test_watttime_moer_conversion(shared_data):
    path = shared_data / MOER / "watttime_example.csv"
    df = pd.read_csv(path)
    sig = read_signal(path)
    assert sig.kind == "marginal_ci" and sig.unit == "gCO2e/kWh"
    assert len(sig) == 8928 and sig.resolution_s == 300 and sig.gaps() == []
    assert df["Caiso_North"].mean() == pytest.approx(355, abs=0.5)
    # 1 lb/MWh = 0.45359237 g/kWh, i.e. divide by 2.20462 for kg/MWh = g/kWh
    np.testing.assert_allclose(sig.values, df["Caiso_North"].to_numpy() / 2.2046226218, rtol=1e-9)
    assert sig.values.mean() == pytest.approx(161.2, abs=0.1)
    assert sig.start == pd.Timestamp("2023-06-08", tz="UTC")
    # the MOER is lowest in the Californian daytime, 14-21 UTC
    assert 14 <= summarize(sig)["lowest_hour_utc"] <= 21


def test_format_detection_by_header(shared_data):
    assert detect_format(read_table(shared_data / CI / "GB_2023_hourly.csv").header) == "electricitymaps"
    assert detect_format(read_table(shared_data / PRICES / "SG_prices_2023_utc.csv").header) == "prices"
    assert detect_format(read_table(shared_data / MOER / "watttime_example.csv").header) == "watttime"
    assert detect_format(["time", "value [gCO2e/kWh]"]) == "generic"
    assert detect_format(["point_time", "value", "frequency"]) == "watttime"


def test_format_detected_by_content_not_name(shared_data, tmp_path):
    odd = tmp_path / "prices.txt"  # a misleading name: it is an Electricity Maps file
    odd.write_bytes((shared_data / CI / "SG_2023_hourly.csv").read_bytes())
    assert read_signal(odd).kind == "average_ci"
    with pytest.raises(GridError, match="holds a average_ci signal, not price"):
        read_signal(odd, kind="price")


def _all_files(shared):
    return ([shared / CI / f"{z}_2023_hourly.csv" for z in CI_ZONES]
            + [shared / PRICES / f"{z}_prices_2023_utc.csv" for z in PRICE_ZONES]
            + [shared / MOER / "watttime_example.csv"])


def test_every_file_round_trips(shared_data, tmp_path):
    files = _all_files(shared_data)
    assert len(files) == 17
    for f in files:
        sig = read_signal(f)
        out = write_signal_csv(sig, tmp_path / (f.stem + ".csv"))
        back = read_signal(out)
        assert back.kind == sig.kind and back.unit == sig.unit and back.resolution_s == sig.resolution_s
        assert (back.index == sig.index).all()
        np.testing.assert_array_equal(back.values, sig.values)
        assert [str(g).split(" (after")[0] for g in back.gaps()] == [str(g).split(" (after")[0] for g in sig.gaps()]


def test_gaps_found_in_file_with_removed_row(shared_data, tmp_path):
    src = (shared_data / CI / "US-TEX-ERCO_2023_hourly.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    removed_line = 1 + 100  # file line 101 holds hour 99 (line 2 is hour 0)
    cut = src[:removed_line - 1] + src[removed_line:]
    p = tmp_path / "ercot_cut.csv"
    p.write_text("".join(cut), encoding="utf-8")
    sig = read_signal(p)
    gaps = sig.gaps()
    assert len(gaps) == 1 and gaps[0].missing == 1
    assert gaps[0].start == pd.Timestamp("2023-01-01", tz="UTC") + pd.Timedelta(hours=99)
    assert gaps[0].after_line == removed_line - 1
    with pytest.raises(GridError, match="a lookup needs a series without gaps"):
        sig.bind("2023-01-01T00:00Z")
    ff = sig.fill_gaps("ffill")
    ip = sig.fill_gaps("interpolate")
    full = read_signal(shared_data / CI / "US-TEX-ERCO_2023_hourly.csv")
    assert len(ff) == len(ip) == 8760
    assert ff.values[99] == full.values[98]
    assert ip.values[99] == pytest.approx(0.5 * (full.values[98] + full.values[100]))
    mask = np.ones(8760, bool)
    mask[99] = False
    np.testing.assert_array_equal(ff.values[mask], full.values[mask])
    with pytest.raises(GridError, match=r"ercot_cut.csv:100, column 'Datetime \(UTC\)'"):
        read_signal(p, gaps="error")


# ---------------------------------------------------------------------------------------- generic CSV
def test_generic_csv_units_zones_and_kinds(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("time,ci [gCO2eq/kWh]\n2023-03-01T00:00:00+01:00,100\n2023-03-01T01:00:00+01:00,200\n")
    s = read_signal(p)
    assert s.unit == "gCO2e/kWh" and s.kind == "average_ci"
    assert s.start == pd.Timestamp("2023-02-28T23:00", tz="UTC")

    naive = tmp_path / "naive.csv"
    naive.write_text("time,price (EUR/MWh)\n2023-03-01 00:00,50\n2023-03-01 01:00,-3\n")
    with pytest.raises(GridError, match=r"naive.csv:2, column 'time': naive times .*expected the time zone given"):
        read_signal(naive)
    berlin = read_signal(naive, tz="Europe/Berlin")
    assert berlin.kind == "price" and berlin.unit == "EUR/MWh"
    assert berlin.start == pd.Timestamp("2023-02-28T23:00", tz="UTC")
    assert berlin.values.tolist() == [50.0, -3.0]

    utc_hdr = tmp_path / "utc.csv"
    utc_hdr.write_text("time_utc,pue\n2023-03-01 00:00,1.2\n2023-03-01 01:00,1.3\n")
    with pytest.raises(GridError, match="no unit"):
        read_signal(utc_hdr)
    s = read_signal(utc_hdr, unit="1")
    assert s.kind == "pue" and s.start == pd.Timestamp("2023-03-01", tz="UTC")

    unix = tmp_path / "unix.csv"
    unix.write_text("timestamp,moer [lbs/MWh]\n1672531200,1\n1672531500,2\n")
    s = read_signal(unix, kind="generic")
    assert s.start == pd.Timestamp("2023-01-01", tz="UTC") and s.resolution_s == 300

    two = tmp_path / "two.csv"
    two.write_text("time,a [1],b [1]\n2023-01-01T00:00Z,1,2\n2023-01-01T01:00Z,1,2\n")
    with pytest.raises(GridError, match="2 candidate value columns"):
        read_signal(two)
    assert read_signal(two, value_column="b [1]").values.tolist() == [2.0, 2.0]


def test_unsorted_rows_are_sorted_with_a_warning_and_duplicates_refused(tmp_path, caplog):
    p = tmp_path / "u.csv"
    p.write_text("time,v [USD/MWh]\n2023-01-01T02:00Z,3\n2023-01-01T00:00Z,1\n2023-01-01T01:00Z,2\n")
    with caplog.at_level("WARNING", logger="fleet.grid"):
        s = read_signal(p)
    assert s.values.tolist() == [1.0, 2.0, 3.0] and "sorted" in s.meta["repairs"][0]
    assert "not in time order" in caplog.text
    d = tmp_path / "d.csv"
    d.write_text("time,v [USD/MWh]\n2023-01-01T00:00Z,1\n2023-01-01T01:00Z,2\n2023-01-01T01:00Z,3\n")
    with pytest.raises(GridError, match=r"d.csv:4, column 'time': duplicate time .*also on line 3"):
        read_signal(d)


@pytest.mark.parametrize("body,match", [
    ("", "empty file"),
    ("time,v [USD/MWh]\n", "no data rows"),
    ("time,v [USD/MWh]\n2023-01-01T00:00Z,1\n2023-01-01T01:00Z\n", r":3: 1 fields \(expected 2 fields"),
    ("time,v [USD/MWh]\n2023-01-01T00:00Z,1\n2023-01-01T01:00Z,abc\n", r":3, column 'v \[USD/MWh\]': value 'abc'"),
    ("time,v [USD/MWh]\n2023-01-01T00:00Z,nan\n2023-01-01T01:00Z,1\n", r":2, column 'v \[USD/MWh\]': value 'nan'"),
    ("time,v [USD/MWh]\n2023-01-01T00:00Z,1\nyesterday,1\n", r":3, column 'time': cannot read 'yesterday'"),
    ("time,v [gCO2e/kWh]\n2023-01-01T00:00Z,1\n2023-01-01T01:00Z,-5\n", r"below 0"),
    ("time,v [USD/MWh]\n2023-01-01T00:00Z,1\n2023-01-01T01:00,1\n", r":3, column 'time': time .* has no zone"),
])
def test_bad_generic_files_name_line_and_column(tmp_path, body, match):
    p = tmp_path / "bad.csv"
    p.write_text(body, encoding="utf-8")
    with pytest.raises(GridError, match=match):
        read_signal(p)


def test_bad_bytes_and_missing_files(tmp_path):
    p = tmp_path / "latin1.csv"
    p.write_bytes("time,v [USD/MWh]\n2023-01-01T00:00Z,1\n2023-01-01T01:00Z,\xe9\n".encode("latin-1"))
    with pytest.raises(GridError, match=r"latin1.csv:3: not UTF-8"):
        read_signal(p)
    with pytest.raises(GridError, match="no such file"):
        read_signal(tmp_path / "nope.csv")
    with pytest.raises(GridError, match="is a directory"):
        read_signal(tmp_path)


def test_electricitymaps_file_with_damaged_value(shared_data, tmp_path):
    lines = (shared_data / CI / "GB_2023_hourly.csv").read_text(encoding="utf-8").splitlines(keepends=True)
    fields = lines[41].split(",")
    fields[5] = "n/a"
    lines[41] = ",".join(fields)
    p = tmp_path / "gb.csv"
    p.write_text("".join(lines), encoding="utf-8")
    with pytest.raises(GridError, match=r"gb.csv:42, column 'Carbon Intensity gCO₂eq/kWh \(LCA\)': value 'n/a'"):
        read_signal(p)
    # the direct column of the same file is intact
    assert len(read_signal(p, basis="direct")) == 8760


def test_errors_are_fleet_errors():
    assert issubclass(GridError, FleetError)


def test_naive_local_times_across_dst(tmp_path):
    p = tmp_path / "fallback.csv"
    # clocks go back in Berlin on 2023-10-29: 02:00 local happens twice, told apart by row order
    p.write_text("time,price [EUR/MWh]\n2023-10-29 01:00,1\n2023-10-29 02:00,2\n2023-10-29 02:00,3\n2023-10-29 03:00,4\n")
    s = read_signal(p, tz="Europe/Berlin")
    assert s.is_regular and len(s) == 4
    assert s.start == pd.Timestamp("2023-10-28T23:00Z") and s.end == pd.Timestamp("2023-10-29T03:00Z")
    assert s.to_series("Europe/Berlin").index[0].hour == 1
    q = tmp_path / "springforward.csv"
    q.write_text("time,price [EUR/MWh]\n2023-03-26 01:00,1\n2023-03-26 02:30,2\n")
    with pytest.raises(GridError, match=r"springforward.csv:3, column 'time': .*nonexistent"):
        read_signal(q, tz="Europe/Berlin")
    with pytest.raises(GridError, match="unknown time zone 'Mars/Olympus'"):
        read_signal(q, tz="Mars/Olympus")
