"""PUE models and the region registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from fleet.errors import FleetError, GridError
from fleet.grid import DEFAULT_PUE_CURVE, PUE, PUECurve, Signal, load_region_signals, read_signal, region
from fleet.grid import regions as regions_mod

START = pd.Timestamp("2023-07-01", tz="UTC")


def test_constant_pue_facility_energy():
    pue = PUE.constant(1.25)
    e = pue.facility_energy(np.array([1e6, 2e6]), np.array([0.0, 10.0]), np.array([5.0, 3610.0]), START)
    np.testing.assert_allclose(e, [1.25e6, 2.5e6])
    with pytest.raises(GridError, match="below 1"):
        PUE.constant(0.9)
    with pytest.raises(GridError, match="not a number"):
        PUE.constant("high")


def test_default_curve_shape_and_labels():
    c = DEFAULT_PUE_CURVE
    assert c.status == "modelled" and "Google" in c.source
    assert c(-20.0) == pytest.approx(1.10) and c(10.0) == pytest.approx(1.10)
    assert c(17.5) == pytest.approx(1.15)  # halfway between 10 degC (1.10) and 25 degC (1.20)
    assert c(30.0) == pytest.approx(1.30) and c(50.0) == pytest.approx(1.40)
    t = np.linspace(-30, 50, 801)
    assert np.all(np.diff(c(t)) >= 0) and np.all(c(t) >= 1.0)
    with pytest.raises(GridError):
        PUECurve((10.0, 5.0), (1.1, 1.2))
    with pytest.raises(GridError):
        PUECurve((10.0,), (0.8,))


def test_pue_from_temperature_series():
    idx = pd.date_range(START, periods=24, freq="h")
    temp_c = 18.0 + 12.0 * np.sin(np.arange(24) / 24 * 2 * np.pi)  # 6..30 degC
    temp = Signal(idx, temp_c, "degC", "generic", source="test temperature")
    pue = PUE.from_temperature(temp)
    assert pue.signal.kind == "pue" and pue.signal.unit == "1"
    np.testing.assert_allclose(pue.signal.values, DEFAULT_PUE_CURVE(temp_c))
    # the same curve from a Fahrenheit series
    temp_f = Signal(idx, temp_c * 9 / 5 + 32, "degF", "generic")
    np.testing.assert_allclose(PUE.from_temperature(temp_f).signal.values, pue.signal.values, rtol=1e-12)
    # facility energy of 1 kWh each hour = sum of hourly PUEs kWh
    it = np.full(24, 3.6e6)
    t = np.arange(24) * 3600.0
    fac = pue.facility_energy(it, t, t + 3600.0, START)
    assert fac.sum() == pytest.approx(3.6e6 * pue.signal.values.sum(), rel=1e-12)
    pue.bind(START)
    assert pue.value_at(3600 * 5 + 10) == pue.signal.values[5]
    with pytest.raises(GridError, match="not a temperature unit"):
        PUE.from_temperature(Signal(idx, temp_c, "USD/MWh", "price"))


def test_pue_series_from_file(tmp_path):
    p = tmp_path / "pue.csv"
    p.write_text("time_utc,pue [1]\n2023-07-01T00:00Z,1.2\n2023-07-01T01:00Z,1.4\n")
    pue = PUE.from_signal(read_signal(p))
    got = pue.facility_energy(1000.0, 1800.0, 5400.0, START)  # half an hour at 1.2, half at 1.4
    assert float(got) == pytest.approx(1300.0)
    bad = tmp_path / "bad.csv"
    bad.write_text("time_utc,pue [1]\n2023-07-01T00:00Z,1.2\n2023-07-01T01:00Z,0.7\n")
    with pytest.raises(GridError, match=r"bad.csv:3, column 'pue \[1\]': value '0.7' is below 1"):
        read_signal(bad)
    with pytest.raises(GridError, match="kind 'pue'"):
        PUE.from_signal(Signal.constant(1.2, "1", "generic"))


@pytest.mark.parametrize("name,zone", [("caiso", "US-CAL-CISO"), ("US-CAL-CISO", "US-CAL-CISO"), ("ERCOT", "US-TEX-ERCO"),
                                       ("PJM", "US-MIDA-PJM"), ("DE", "DE-LU"), ("gb", "GB"), ("SG", "SG"),
                                       ("jp_tk", "JP-TK"), ("Tokyo", "JP-TK"), ("nyiso", "US-NY-NYIS")])
def test_region_names(name, zone):
    assert region(name).zone == zone


def test_every_region_file_exists_and_loads(shared_data):
    for r in regions_mod.REGIONS:
        for kind, rel in r.files.items():
            assert (shared_data / rel).is_file(), rel
    caiso = load_region_signals("caiso")
    assert set(caiso) == {"average_ci", "price", "marginal_ci"}
    assert caiso["average_ci"].meta["region"] == "US-CAL-CISO"
    assert caiso["average_ci"].values.mean() == pytest.approx(261, abs=0.5)  # LCA by default
    assert load_region_signals("caiso", "average_ci", basis="direct").values.mean() == pytest.approx(194, abs=0.5)
    assert load_region_signals("ERCOT", "price").values.mean() == pytest.approx(55.9, abs=0.05)
    de = load_region_signals("DE", "price")  # one missing hour: filled forward by default
    assert de.gaps() == [] and len(de) == 8760 and de.meta["filled_gaps"]["policy"] == "ffill"
    de.bind(de.start)
    assert np.isfinite(de.value_at(1000.0))


def test_unknown_region_and_missing_kind():
    with pytest.raises(GridError, match="unknown region 'atlantis'"):
        region("atlantis")
    with pytest.raises(GridError, match="GB has no price signal"):
        load_region_signals("GB", "price")


def test_missing_shared_data_says_how_to_give_a_file(monkeypatch, tmp_path):
    def nowhere():
        raise FleetError("reference data not found: looked for /nowhere")

    monkeypatch.setattr(regions_mod, "shared_data_dir", nowhere)
    with pytest.raises(GridError, match=r"reference data .* missing.*a file of your own in the scenario"):
        load_region_signals("caiso", "average_ci")
    monkeypatch.setattr(regions_mod, "shared_data_dir", lambda: tmp_path)
    with pytest.raises(GridError, match=r"reference file missing: .*US-CAL-CISO_2023_hourly.csv.*FLEET_SHARED_DATA"):
        load_region_signals("caiso", "average_ci")


def test_grid_imports_nothing_else_from_fleet(repo_root):
    """fleet/grid may import only fleet.errors, fleet.paths and fleet._io from the rest of fleet."""
    import ast

    allowed = {"errors", "paths", "_io"}
    for f in sorted((repo_root / "fleet" / "grid").glob("*.py")):
        tree = ast.parse(f.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom):
                if node.level == 2:  # from ..x import y
                    mod = (node.module or "").split(".")[0]
                    names = [a.name for a in node.names] if not node.module else [mod]
                    assert set(names) <= allowed, f"{f.name}: from ..{node.module or ''} import {names}"
                elif node.level == 0 and node.module and node.module.startswith("fleet"):
                    parts = node.module.split(".")
                    assert len(parts) > 1 and parts[1] in allowed | {"grid"}, f"{f.name}: {node.module}"
            elif isinstance(node, ast.Import):
                for a in node.names:
                    assert not a.name.startswith("fleet") or a.name.split(".")[1] in allowed | {"grid"}, f.name
