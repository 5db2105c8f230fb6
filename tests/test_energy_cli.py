"""`fleet estimate`, `fleet frontier`, `fleet calibrate` on the command line."""

from __future__ import annotations

import json

import pytest

from fleet.cli import main

KEYS = {"energy_per_output_token_j", "output_tokens_per_s", "avg_power_w", "itl_ms", "ttft_ms", "breakdown_j",
        "max_batch", "calibrated"}


def _run(capsys, argv):
    rc = main(argv)
    out, err = capsys.readouterr()
    return rc, out, err


def test_estimate_json_keys_and_consistency(capsys):
    rc, out, _ = _run(capsys, ["estimate", "--model", "llama-3.1-8b", "--gpu", "H100", "--gpus", "1", "--batch", "32",
                               "--input-tokens", "350", "--output-tokens", "400", "--uncalibrated", "--json"])
    assert rc == 0
    d = json.loads(out)
    assert KEYS <= set(d)
    assert set(d["breakdown_j"]) == {"compute", "memory", "interconnect", "static"}
    assert sum(d["breakdown_j"].values()) == pytest.approx(d["energy_per_output_token_j"])
    assert d["avg_power_w"] == pytest.approx(d["energy_per_output_token_j"] * d["output_tokens_per_s"])
    assert d["calibrated"] is False and d["max_batch"] >= 32
    assert d["ttft_ms"] > d["itl_ms"] > 0


def test_estimate_power_cap_and_tp(capsys):
    rc, out, _ = _run(capsys, ["estimate", "--model", "llama-3.1-70b", "--gpu", "H100", "--gpus", "4", "--batch", "64",
                               "--input-tokens", "350", "--output-tokens", "400", "--power-cap", "350", "--json",
                               "--uncalibrated"])
    d = json.loads(out)
    assert rc == 0 and d["avg_power_w"] <= 4 * 350 + 1e-6
    assert d["breakdown_j"]["interconnect"] > 0


@pytest.mark.parametrize("argv,needle", [
    (["--model", "llama-3.1-8b", "--gpu", "H1000"], "H100"),
    (["--model", "llama-3.1-405b", "--gpu", "H100"], "GB"),
    (["--model", "llama-3.1-8b", "--gpu", "H100", "--power-cap", "900"], "[200, 700] W"),
    (["--model", "llama-3.1-8b", "--gpu", "H100", "--batch", "100000"], "max_batch"),
])
def test_estimate_errors_are_clear(capsys, argv, needle):
    base = ["estimate", "--batch", "8", "--input-tokens", "100", "--output-tokens", "100"]
    rc, _, err = _run(capsys, base + argv)
    assert rc == 2
    assert needle in err and "Traceback" not in err


def test_train_estimate(capsys):
    rc, out, _ = _run(capsys, ["estimate", "--train", "--model", "llama-3.1-8b", "--gpu", "H100", "--gpus", "64",
                               "--tokens", "1e12", "--pue", "1.3", "--carbon-intensity", "300", "--json"])
    d = json.loads(out)
    assert rc == 0
    assert d["facility_energy_j"] == pytest.approx(1.3 * d["gpu_energy_j"])
    assert d["operational_co2e_t"] == pytest.approx(d["facility_energy_j"] / 3.6e6 * 300 / 1e6)
    # 6ND lower bound on time at peak
    assert d["time_s"] > 6 * 8e9 * 1e12 / (64 * 989e12)
    assert 0.2 < d["mfu"] < 0.8
    assert d["max_micro_batch_tokens"] > 0


def test_frontier_json(capsys):
    rc, out, _ = _run(capsys, ["frontier", "--model", "llama-3.1-8b", "--gpu", "H100", "--batch", "16",
                               "--context", "512", "--caps", "5", "--json", "--uncalibrated"])
    d = json.loads(out)
    assert rc == 0 and len(d["points"]) == 5 and d["pareto"]
    for q in d["points"]:
        assert q["power_w"] <= q["cap_w"] + 1e-6


def test_calibrate_cli(capsys, shared_data):
    csv = shared_data / "mlenergy-llm-inference-energy-h100" / "mlenergy_v3_llm_configs_h100.csv"
    rc, out, _ = _run(capsys, ["calibrate", "--data", str(csv), "--json"])
    d = json.loads(out)
    assert rc == 0 and "written" not in d
    assert d["calibrated"]["dense"]["overall"]["energy_per_token_j"]["median_ape_pct"] <= 10
    rc, out, _ = _run(capsys, ["calibrate", "--data", str(csv)])
    assert "energy/token" in out and "held-out" in out


def test_frontier_prefill_phase(capsys):
    rc, out, _ = _run(capsys, ["frontier", "--model", "llama-3.1-8b", "--gpu", "H100", "--phase", "prefill",
                               "--context", "4096", "--caps", "6", "--json", "--uncalibrated"])
    d = json.loads(out)
    assert rc == 0 and d["phase"] == "prefill"
    t = [q["time_s"] for q in d["points"]]
    # compute-bound prefill: every lower cap is slower
    assert all(a > b for a, b in zip(t, t[1:]))


def test_estimate_locked_clock(capsys):
    base = ["estimate", "--model", "llama-3.1-8b", "--gpu", "H100", "--batch", "128", "--input-tokens", "2000",
            "--output-tokens", "200", "--json", "--uncalibrated"]
    _, full, _ = _run(capsys, base)
    rc, low, _ = _run(capsys, base + ["--sm-clock", "990"])
    full, low = json.loads(full), json.loads(low)
    assert rc == 0 and low["clock_fraction"] == pytest.approx(0.5)
    assert low["output_tokens_per_s"] < full["output_tokens_per_s"]
    assert low["avg_power_w"] < full["avg_power_w"]
    rc, _, err = _run(capsys, base + ["--sm-clock", "5000"])
    assert rc == 2 and "MHz" in err
