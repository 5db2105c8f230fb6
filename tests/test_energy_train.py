"""Training estimates: time, energy, carbon, layouts and links."""

from __future__ import annotations

import pytest

from fleet.errors import ConfigurationError
from fleet.frontier.train_estimate import training_estimate


def test_training_energy_adds_up_and_scales_with_tokens():
    a = training_estimate("llama-3.1-8b", "H100", 8, 1e11, calibrated=False)
    b = training_estimate("llama-3.1-8b", "H100", 8, 2e11, calibrated=False)
    assert b["gpu_energy_j"] == pytest.approx(2 * a["gpu_energy_j"])
    assert b["time_s"] == pytest.approx(2 * a["time_s"])
    assert sum(a["breakdown_j"].values()) == pytest.approx(a["gpu_energy_j"])
    # 6ND at the attainable rate is a lower bound on time
    assert a["time_s"] > 6 * 8.03e9 * 1e11 / (8 * 989.4e12 * 0.803)
    assert 0 < a["mfu"] < 0.803
    assert a["avg_power_w"] <= 8 * 700 + 1e-6


def test_crossing_the_node_puts_data_parallel_traffic_on_the_network():
    one = training_estimate("llama-3.1-8b", "H100", 8, 1e11, calibrated=False)
    two = training_estimate("llama-3.1-8b", "H100", 16, 1e11, calibrated=False)
    # same tokens: per-token interconnect energy is higher once gradients cross the network
    assert two["breakdown_j"]["interconnect"] > 2 * one["breakdown_j"]["interconnect"]
    assert two["time_s"] < one["time_s"]


def test_large_model_gets_model_parallel_layout_and_pue_carbon():
    d = training_estimate("llama-3.1-70b", "H100", 64, 1e10, pue=1.1, carbon_intensity_g_per_kwh=200,
                          calibrated=False)
    assert d["layout"]["tp"] * d["layout"]["pp"] > 1
    assert d["facility_energy_j"] == pytest.approx(1.1 * d["gpu_energy_j"])
    assert d["operational_co2e_t"] == pytest.approx(d["facility_energy_j"] / 3.6e6 * 200 / 1e6)
    assert d["max_micro_batch_tokens"] > 0


def test_lower_utilisation_is_slower_and_costs_more_static_energy():
    hi = training_estimate("llama-3.1-8b", "H100", 8, 1e11, utilization=0.9, calibrated=False)
    lo = training_estimate("llama-3.1-8b", "H100", 8, 1e11, utilization=0.4, calibrated=False)
    assert lo["time_s"] > hi["time_s"]
    assert lo["breakdown_j"]["static"] > hi["breakdown_j"]["static"]
    assert lo["breakdown_j"]["compute"] == pytest.approx(hi["breakdown_j"]["compute"])


@pytest.mark.parametrize("kw,needle", [
    (dict(gpus=0), "gpus"), (dict(tokens=-1.0), "tokens"), (dict(pue=5.0), "PUE"),
    (dict(utilization=1.5), "utilization"),
])
def test_training_errors(kw, needle):
    args = dict(model="llama-3.1-8b", gpu="H100", gpus=8, tokens=1e10)
    args.update(kw)
    with pytest.raises(ConfigurationError, match=needle):
        training_estimate(args.pop("model"), args.pop("gpu"), args.pop("gpus"), args.pop("tokens"), **args)


def test_training_that_cannot_fit_is_a_configuration_error():
    with pytest.raises(ConfigurationError, match="does not fit"):
        training_estimate("gpt-3-175b", "L4", 2, 1e9)
