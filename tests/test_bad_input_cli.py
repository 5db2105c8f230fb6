"""Command-line arguments that used to crash, hang, falsify results or be silently accepted
(issue 8): each now exits 2 with a message naming the flag (or the file and line), in-process
through :func:`fleet.cli.main`, before any work is done."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import yaml

from fleet.cli import main

from _scenarios import REPO, small_scenario

EST = ["estimate", "--model", "llama-3.1-8b", "--gpu", "H100"]
SERVE = EST + ["--batch", "8", "--input-tokens", "100", "--output-tokens", "100"]
TRAIN = EST + ["--train", "--gpus", "8", "--tokens", "1e9"]
SYNTH = ["trace", "synth", "--profile", "poisson", "--rate", "1", "--hours", "0.01", "--seed", "1"]


def _fails(capsys, argv, *words, code=2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    for w in words:
        assert w in err, err
    return err


# ---------------------------------------------------------------- falsified results
def test_training_power_never_exceeds_the_gpu_power_limit(capsys):
    """It used to report 740 W per GPU against the H100's 700 W TDP."""
    assert main(TRAIN + ["--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["avg_power_w"] / out["gpus"] <= 700.0 * (1 + 1e-9)
    assert main(TRAIN + ["--power-cap", "400", "--json"]) == 0
    capped = json.loads(capsys.readouterr().out)
    assert capped["avg_power_w"] / capped["gpus"] <= 400.0 * (1 + 1e-9)
    assert capped["time_s"] > out["time_s"]


@pytest.mark.parametrize("cap", [None, 450.0])
def test_the_simulated_training_nodes_stay_under_the_cap(cap):
    from fleet.frontier.training import build_training_profile

    for gpus in (8, 64):
        p = build_training_profile("llama-3.1-8b", "H100-SXM", gpus, power_cap_w=cap, calibrated=True)
        mean = p.step_energy_j / p.step_time_s
        cf, cpf = p.comm_fraction, p.comm_power_fraction
        compute_phase_w = mean / (1 - cf + cf * cpf)        # the higher of the two phases
        assert compute_phase_w / gpus <= (cap or 700.0) * (1 + 1e-6)


def test_fleet_simulate_applies_the_whatif_part_like_fleet_run(tmp_path, capsys):
    """`fleet simulate` used to ignore the scenario's what-if section."""
    base = small_scenario(tmp_path, "wi0")
    data = yaml.safe_load(base.read_text())
    data["name"] = "wi1"
    data["whatif"] = {"label": "HBM at a tenth of the energy per bit",
                      "device_constants": {"memory.pj_per_bit.HBM3": 0.34}}
    wi = tmp_path / "wi1.yaml"
    wi.write_text(yaml.safe_dump(data))
    energies = []
    for sc in (base, wi):
        out = tmp_path / f"sim-{sc.stem}"
        assert main(["-q", "simulate", str(sc), "-o", str(out), "--format", "csv", "--json"]) == 0
        energies.append(json.loads(capsys.readouterr().out)["site_energy_kwh"])
    assert energies[1] < 0.97 * energies[0]


# ---------------------------------------------------------------- crashes and hangs
@pytest.mark.parametrize("argv, flag", [
    (TRAIN[:-1] + ["nan"], "--tokens"),
    (TRAIN[:-1] + ["inf"], "--tokens"),
    (TRAIN + ["--seq-len", "0"], "--seq-len"),
    (EST + ["--train", "--gpus", "1000000", "--tokens", "1e9"], "--gpus"),
    (SERVE + ["--precision", ""], "--precision"),
    (TRAIN + ["--carbon-intensity", "-1"], "--carbon-intensity"),
    (TRAIN + ["--pue", "0.5"], "--pue"),
    (TRAIN + ["--utilization", "0"], "--utilization"),
    (SERVE + ["--power-cap", "nan"], "--power-cap"),
    (["frontier", "--model", "llama-3.1-8b", "--gpu", "H100", "--caps", "1000000"], "--caps"),
    (SYNTH + ["--seed", "-1", "-o", "x.csv"], "--seed"),
    (SYNTH + ["--profile", "diurnal", "--peak-hour", "25", "-o", "x.csv"], "--peak-hour"),
    (SYNTH + ["--lognormal", "5", "1", "5", "1", "--input-max", "0", "-o", "x.csv"], "--input-max"),
    (SYNTH + ["-o", ""], "--output"),
    (["trace", "jobs", "--n", "100000000", "--seed", "1", "-o", "j.csv"], "--n"),
    (["trace", "jobs", "--n", "10", "--seed", "-1", "-o", "j.csv"], "--seed"),
    (["grid", "inspect", "caiso", "--resample", "0"], "--resample"),
    (["run", "fleet/data/default.yaml", "-o", ""], "--out"),
])
def test_bad_arguments_exit_2_naming_the_flag(capsys, argv, flag):
    _fails(capsys, argv, f"argument {flag}" if flag.startswith("--") and flag not in ("--output", "--out")
           else "argument -o/")


@pytest.mark.parametrize("argv, words", [
    (EST + ["--gpus", "1000000", "--batch", "1", "--input-tokens", "10", "--output-tokens", "10"], ["--gpus"]),
    (EST + ["--gpus", "128", "--batch", "1", "--input-tokens", "10", "--output-tokens", "10"], ["72"]),
    (["frontier", "--model", "llama-3.1-8b", "--gpu", "H100", "--phase", "prefill", "--context", "0"], ["--context"]),
])
def test_impossible_requests_are_refused(capsys, argv, words):
    _fails(capsys, argv, *words)


def test_synthetic_trace_too_large_is_refused_saying_how_large(capsys, tmp_path):
    _fails(capsys, ["trace", "synth", "--profile", "poisson", "--rate", "1e7", "--hours", "1", "--seed", "1",
                          "-o", str(tmp_path / "x.csv")], "36,000,000,000", "MAX_REQUESTS")
    assert not list(tmp_path.iterdir())


def test_grid_resample_too_fine_is_refused(capsys):
    _fails(capsys, ["grid", "inspect", "caiso", "--resample", "0.001"], "points", "longer interval")


def test_compare_refuses_a_summary_that_is_not_an_object(capsys, tmp_path):
    for text in ("[1, 2]", "3", '"x"', '{"metrics": [1]}', '{"metrics": {"energy.it": 5}}'):
        (tmp_path / "summary.json").write_text(text)
        _fails(capsys, ["compare", str(tmp_path), str(tmp_path)], "summary.json")


def test_check_on_a_folder_without_scenarios_fails(capsys, tmp_path):
    _fails(capsys, ["check", str(tmp_path)], "no scenario files")


def test_check_where_no_scenario_has_expectations_fails(capsys, tmp_path):
    small_scenario(tmp_path, "noexp")
    assert main(["-q", "check", str(tmp_path)]) == 1
    assert "nothing checked" in capsys.readouterr().err


# ---------------------------------------------------------------- damaged tables
def test_canonical_trace_comment_or_non_csv_line_is_an_error_naming_the_line(capsys, tmp_path):
    src = (REPO / "traces" / "poisson_1h.csv").read_text().splitlines()
    for bad in ("# a comment", "not csv at all"):
        p = tmp_path / "t.csv"
        p.write_text("\n".join([*src[:3], bad, *src[3:6]]) + "\n")
        _fails(capsys, ["trace", "inspect", str(p)], f"{p}:4", "not a data row")
    p.write_text("\n".join([*src[:3], "", *src[3:6]]) + "\n")   # a blank line is still fine
    assert main(["trace", "inspect", str(p), "--json"]) == 0


def test_job_table_with_a_duplicated_column_is_an_error(capsys, tmp_path):
    from fleet.workload.jobs import generate_jobs, write_jobs

    p = tmp_path / "jobs.csv"
    write_jobs(generate_jobs(n=3, seed=1), p)
    df = pd.read_csv(p)
    lines = p.read_text().splitlines()
    lines = [lines[0] + ",gpus"] + [ln + ",1" for ln in lines[1:]]
    p.write_text("\n".join(lines) + "\n")
    from fleet.errors import TraceError
    from fleet.workload.jobs import read_jobs

    with pytest.raises(TraceError) as ei:
        read_jobs(p)
    assert f"{p}:1" in str(ei.value) and "'gpus'" in str(ei.value) and len(df) == 3
