"""Calibration against the ML.ENERGY v3 H100 measurements: accuracy targets on dense rows,
hold-out generalisation, constants kept within their ranges and apart from the physical file."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from fleet.catalog.device_energy import load_device_constants
from fleet.errors import CatalogError, InputError
from fleet.frontier.mlenergy import calibrate, load_problem
from fleet.hardware.calibrate import write_calibration

CSV = ("mlenergy-llm-inference-energy-h100", "mlenergy_v3_llm_configs_h100.csv")


@pytest.fixture(scope="module")
def report(shared_data):
    prob = load_problem(shared_data.joinpath(*CSV))
    rep = calibrate(prob)
    rep["_prob"] = prob
    return rep


def _err(rep, model, metric, arch="dense", scope="overall"):
    return rep[model][arch][scope][metric]


def test_rows_mapped_and_skips_counted(report):
    prob = report["_prob"]
    assert report["dense_rows"] >= 80 and report["moe_rows"] >= 100
    assert sum(report["skipped"].values()) + report["rows_used"] == 405
    assert report["skipped"].get("task image-chat (not modelled)", 0) > 0
    assert set(prob.rows["task"]) <= {"lm-arena-chat", "gpqa", "sourcegraph-fim"}


def test_uncalibrated_dense_median_within_30pct(report):
    for m in ("energy_per_token_j", "output_throughput_tok_s"):
        assert _err(report, "uncalibrated", m)["median_ape_pct"] <= 30.0, m


def test_calibrated_dense_targets(report):
    for m in ("energy_per_token_j", "output_throughput_tok_s"):
        e = _err(report, "calibrated", m)
        assert e["median_ape_pct"] <= 10.0, (m, e)
        assert e["p90_ape_pct"] <= 25.0, (m, e)
    # power is not fitted directly but follows
    assert _err(report, "calibrated", "avg_power_w_total")["median_ape_pct"] <= 15.0


def test_calibration_generalises_to_held_out_models(report):
    h = report["holdout"]
    assert h["rows"] >= 15
    for m in ("energy_per_token_j", "output_throughput_tok_s"):
        assert h["errors_on_heldout"][m]["median_ape_pct"] <= 15.0, (m, h["errors_on_heldout"][m])
        assert h["errors_on_heldout"][m]["median_ape_pct"] < h["uncalibrated_on_heldout"][m]["median_ape_pct"]


def test_fitted_constants_in_range(report):
    dense_fit = [k for k in report["fitted"] if not k.startswith("moe.")]
    moe_fit = [k for k in report["fitted"] if k.startswith("moe.")]
    assert 1 <= len(dense_fit) <= 6
    assert len(moe_fit) <= 3          # MoE-only constants, fitted on the MoE rows alone
    for name, v in report["fitted"].items():
        lo, hi = v["range"]
        assert lo <= v["value"] <= hi, name


def test_moe_reported_separately(report):
    moe = report["calibrated"]["moe"]["overall"]["energy_per_token_j"]
    assert moe["n"] == report["moe_rows"]
    assert np.isfinite(moe["median_ape_pct"])


def test_written_calibration_is_apart_and_reloads(report, tmp_path):
    base = load_device_constants(False)
    fit = report["_fit"]
    path = write_calibration(fit, base, data="x.csv", path=tmp_path / "cal.yaml")
    doc = yaml.safe_load(path.read_text())
    assert set(doc["calibrated"]) == set(fit.values)
    cal = load_device_constants(True, calibrated_path=path)
    assert cal.calibrated
    for name, v in fit.values.items():
        assert cal[name] == pytest.approx(v)
        assert cal.constant(name).kind == "calibrated"
        assert base.constant(name).kind in ("measured", "modelled")     # physical file untouched
    with pytest.raises(CatalogError, match="calibrate"):
        load_device_constants(True, calibrated_path=tmp_path / "missing.yaml")


def test_bad_data_file_is_an_input_error(tmp_path):
    bad = tmp_path / "x.csv"
    bad.write_text("task,model_id\ngpqa,foo\n")
    with pytest.raises(InputError, match="missing columns"):
        load_problem(bad)
    with pytest.raises(InputError, match="not found"):
        load_problem(tmp_path / "nope.csv")


def test_committed_calibration_reproduces(shared_data):
    """The committed device_energy_calibrated.yaml is what `fleet calibrate --write` produces now."""
    from fleet.catalog.device_energy import CALIBRATED_PATH
    from fleet.frontier.calibration import calibrate_all
    rep, merged = calibrate_all(shared_data.joinpath(*CSV), shared_data / "zeus-gpu-power-limit-profiles")
    cal = load_device_constants(True)
    assert cal.calibrated and CALIBRATED_PATH.exists()
    for name, v in merged.values.items():
        assert cal[name] == pytest.approx(v, rel=1e-3, abs=1e-9), name
        assert cal.constant(name).kind == "calibrated"
    # everything not fitted is the physical value
    base = load_device_constants(False)
    for c in base.items:
        if c.name not in merged.values:
            assert cal[c.name] == c.value
