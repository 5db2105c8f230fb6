"""``fleet grid inspect`` and ``fleet grid regions`` through the real CLI entry point."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fleet.cli import main


def _run_json(capsys, argv):
    rc = main(argv)
    out = capsys.readouterr().out
    assert rc == 0, out
    return json.loads(out)


def test_inspect_caiso_json_matches_pandas(shared_data, capsys, tmp_path):
    path = shared_data / "electricitymaps-hourly-ci-2023" / "US-CAL-CISO_2023_hourly.csv"
    png = tmp_path / "plots" / "caiso.png"
    s = _run_json(capsys, ["grid", "inspect", str(path), "--basis", "direct", "--json", "--plot", str(png)])
    df = pd.read_csv(path, encoding="utf-8")
    v = df["Carbon Intensity gCO₂eq/kWh (direct)"]
    hours = pd.to_datetime(df["Datetime (UTC)"]).dt.hour
    assert s["rows"] == len(df) == 8760
    assert s["mean"] == pytest.approx(v.mean(), rel=1e-12) and s["mean"] == pytest.approx(194, abs=0.5)
    assert s["min"] == v.min() and s["max"] == v.max()
    assert s["p5"] == pytest.approx(v.quantile(0.05)) and s["p95"] == pytest.approx(v.quantile(0.95))
    assert s["lowest_hour_utc"] == int(v.groupby(hours).mean().idxmin()) == 20
    assert s["resolution_s"] == 3600 and s["gaps"] == 0 and s["span_h"] == 8760
    assert s["unit"] == "gCO2e/kWh" and s["kind"] == "average_ci"
    data = png.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert not list(png.parent.glob(".*"))  # atomic write: no temporary left behind


def test_inspect_prices_reports_gaps(shared_data, capsys):
    path = shared_data / "hourly-electricity-prices-2023" / "FR_prices_2023_utc.csv"
    s = _run_json(capsys, ["grid", "inspect", str(path), "--json"])
    assert s["gaps"] == 2 and s["missing_intervals"] == 25 and s["rows"] == 8735
    assert s["mean"] == pytest.approx(104.2, abs=0.05)


def test_inspect_moer_and_region_name(shared_data, capsys):
    s = _run_json(capsys, ["grid", "inspect", "caiso", "--kind", "marginal_ci", "--json"])
    assert s["mean"] == pytest.approx(161.2, abs=0.1) and s["resolution_s"] == 300
    s = _run_json(capsys, ["grid", "inspect", "caiso", "--kind", "marginal_ci", "--resample", "3600", "--json"])
    assert s["rows"] == 744 and s["mean"] == pytest.approx(161.2, abs=0.1)
    s = _run_json(capsys, ["grid", "inspect", "ERCOT", "--kind", "price", "--json"])
    assert s["mean"] == pytest.approx(55.9, abs=0.05)


def test_inspect_text_output(shared_data, capsys):
    rc = main(["grid", "inspect", str(shared_data / "hourly-electricity-prices-2023" / "JP-TK_prices_2023_utc.csv"),
               "--currency", "local"])
    out = capsys.readouterr().out
    assert rc == 0 and "JPY/MWh" in out and "lowest hour" in out and "rows           8760" in out


def test_inspect_bad_input_exits_2_with_a_clear_message(tmp_path, capsys):
    p = tmp_path / "naive.csv"
    p.write_text("time,v [USD/MWh]\n2023-01-01 00:00,1\n2023-01-01 01:00,2\n")
    assert main(["grid", "inspect", str(p)]) == 2
    err = capsys.readouterr().err
    assert "naive.csv:2, column 'time'" in err and "--tz" in err
    assert main(["grid", "inspect", str(p), "--tz", "UTC", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["rows"] == 2 and s["unit"] == "USD/MWh"
    assert main(["grid", "inspect", "atlantis"]) == 2
    assert "not a region name" in capsys.readouterr().err


def test_regions_listing(capsys):
    rows = _run_json(capsys, ["grid", "regions", "--json"])
    zones = {r["zone"] for r in rows}
    assert {"US-CAL-CISO", "US-TEX-ERCO", "US-MIDA-PJM", "DE-LU", "GB", "SG", "JP-TK"} <= zones
    assert all(np.all([isinstance(a, str) for a in r["aliases"]]) for r in rows)
