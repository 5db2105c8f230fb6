"""DVFS / power-cap model against the measured Zeus (NSDI'23) power-limit profiles."""

from __future__ import annotations

import numpy as np
import pytest

from fleet.catalog import get_accelerator
from fleet.catalog.device_energy import load_device_constants
from fleet.hardware.accelerator import Accelerator, build_accelerator
from fleet.hardware.dvfs import VFCurve, solve_clock
from fleet.frontier.calibration import calibrate_all
from fleet.hardware.zeus import validate

ZEUS = "zeus-gpu-power-limit-profiles"
MLE = ("mlenergy-llm-inference-energy-h100", "mlenergy_v3_llm_configs_h100.csv")
CASES = [("V100-PCIe-32GB", "summary_power_v100.csv"), ("A40", "summary_power_a40.csv")]


@pytest.fixture(scope="module")
def calib(shared_data):
    """Both fits in order, as `fleet calibrate` runs them."""
    rep, merged = calibrate_all(shared_data.joinpath(*MLE), shared_data / ZEUS)
    return rep, merged.constants(load_device_constants(False))


@pytest.mark.parametrize("gpu,file", CASES)
def test_zeus_shape_calibrated_within_0_10(shared_data, calib, gpu, file):
    _, consts = calib
    r = validate(shared_data / ZEUS / file, Accelerator(get_accelerator(gpu), consts))
    assert r["workloads"] >= 50
    assert r["max_abs_err_time"] <= 0.10, r
    assert r["max_abs_err_energy"] <= 0.10, r
    assert r["argmin_energy_predicted_w"] == r["argmin_energy_measured_w"]
    # time never falls as the limit is lowered, and the curve is normalised at the top limit
    pt = np.array(r["predicted_time"])
    assert np.all(np.diff(pt) <= 1e-9) and pt[-1] == pytest.approx(1.0)


def test_committed_constants_give_the_same_shape(shared_data):
    for gpu, file in CASES:
        r = validate(shared_data / ZEUS / file, build_accelerator(gpu, calibrated=True))
        assert max(r["max_abs_err_time"], r["max_abs_err_energy"]) <= 0.10, r
        assert r["argmin_energy_predicted_w"] == r["argmin_energy_measured_w"]


@pytest.mark.parametrize("gpu,file", CASES)
def test_zeus_shape_physical_constants(shared_data, gpu, file):
    """The round physical values, before any fit: close, energy minimum within one 25 W step."""
    r = validate(shared_data / ZEUS / file, build_accelerator(gpu, calibrated=False))
    assert r["max_abs_err_time"] <= 0.12, r
    assert r["max_abs_err_energy"] <= 0.12, r
    assert abs(r["argmin_energy_predicted_w"] - r["argmin_energy_measured_w"]) <= 25.0


def test_zeus_fit_generalises(calib):
    """Fit the DVFS constants on one GPU, predict the other; GPUs never fitted (RTX 6000, P100)
    predicted from their spec sheets."""
    z = calib[0]["zeus"]
    for gpu, r in z["holdout"].items():
        assert r["max_abs_err_time"] <= 0.12 and r["max_abs_err_energy"] <= 0.12, (gpu, r)
        assert r["argmin_energy_predicted_w"] == r["argmin_energy_measured_w"]
    assert set(z["heldout_gpus_uncalibrated"]) == {"RTX6000", "P100-PCIe-16GB"}
    for gpu, r in z["heldout_gpus_uncalibrated"].items():
        assert r["max_abs_err_time"] <= 0.10 and r["max_abs_err_energy"] <= 0.10, (gpu, r)
        assert abs(r["argmin_energy_predicted_w"] - r["argmin_energy_measured_w"]) <= 25.0


def test_voltage_curve():
    vf = VFCurve(0.7, 0.6, 0.2, 0.3)
    assert vf.voltage(1.0) == pytest.approx(1.0)
    assert vf.voltage(0.3) == pytest.approx(0.7)
    x = np.linspace(0.2, 1, 50)
    assert np.all(np.diff(vf.voltage(x)) >= 0)
    assert np.all(np.diff(vf.baseline_factor(x)) > 0)
    assert vf.dynamic_factor(1.0) == pytest.approx(1.0)


def test_solve_clock_finds_highest_feasible_clock():
    p = lambda x: 100.0 + 200.0 * x ** 3  # noqa: E731
    x = solve_clock(p, np.array([300.0, 150.0, 400.0, 50.0]), 0.1)
    assert x[0] == pytest.approx(1.0)
    assert p(x[1]) == pytest.approx(150.0, rel=1e-6)
    assert x[2] == 1.0
    assert x[3] == pytest.approx(0.1)          # infeasible: lowest clock
