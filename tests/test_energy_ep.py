"""Expert parallelism on the public path: ``make_replica(..., ep=)``, profiles, frontiers,
``fleet estimate --ep`` and the scenario's ``serve[].ep`` give exactly what the ML.ENERGY
calibration (:func:`fleet.frontier.mlenergy.load_problem`) predicts for an expert-parallel row,
and ``ep=1`` (or unset) changes nothing."""

from __future__ import annotations

import copy
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from fleet.catalog.device_energy import load_device_constants
from fleet.cli import main
from fleet.errors import ConfigurationError, ScenarioError
from fleet.frontier import build_serving_frontier, build_serving_profile, make_replica
from fleet.frontier.mlenergy import load_problem
from fleet.frontier.steady import steady_state
from fleet.frontier.work import decode_work, prefill_work
from fleet.hardware.energy import evaluate
from fleet.scenario import load_scenario
from fleet.sim import simulate
from fleet.sim.assemble import default_profile_factory

CSV = ("mlenergy-llm-inference-energy-h100", "mlenergy_v3_llm_configs_h100.csv")
FIELDS = ("energy_per_output_token_j", "output_tokens_per_s", "avg_power_w", "itl_s")
PRED = {"energy_per_output_token_j": "energy_per_token_j", "output_tokens_per_s": "output_throughput_tok_s",
        "avg_power_w": "avg_power_w_total", "itl_s": "itl_ms"}


def _f(v) -> float:
    return float(np.asarray(v).ravel()[0])


@pytest.fixture(scope="module")
def csv_path(shared_data):
    return shared_data.joinpath(*CSV)


@pytest.fixture(scope="module")
def ep_rows(csv_path):
    """Raw CSV rows that are expert-parallel over several GPUs, one per (model, precision)."""
    df = pd.read_csv(csv_path)
    ep = df[(df["gpu_model"] == "H100") & (df["expert_parallel"] > 1) & (df["tensor_parallel"] == 1)
            & (df["num_gpus"] > 1) & (df["task"] == "lm-arena-chat")]
    assert len(ep) > 0, "the ML.ENERGY table has expert-parallel rows"
    return ep.groupby(["model_id", "weight_precision"], sort=True).head(1)


def _one_row_problem(tmp_path, row: pd.Series, **change):
    """A one-row CSV (in tmp) made from a real row, read by the calibration's own loader."""
    r = row.copy()
    for k, v in change.items():
        r[k] = v
    p = tmp_path / "row.csv"
    pd.DataFrame([r]).to_csv(p, index=False)
    return load_problem(p)


def test_ep_rows_public_path_equals_calibration(csv_path, ep_rows):
    """steady_state(make_replica(..., tp=N, ep=N)) == the calibration's prediction for each
    expert-parallel row (several models and precisions), calibrated and physical constants."""
    prob = load_problem(csv_path)
    rows = prob.rows
    picked = rows[rows["line"].isin(ep_rows.index + 2)]
    assert len(picked) >= 3 and picked["ep"].all() and (picked["tp"] > 1).all()
    for calibrated in (False, True):
        c = load_device_constants(calibrated)
        pred = prob.predict(c)
        for i, r in picked.iterrows():
            rep = make_replica(r["model"], r["gpu"], int(r["num_gpus"]), r["precision"], constants=c,
                               ep=int(r["num_gpus"]))
            assert rep.ep == rep.tp == int(r["tp"])
            s = steady_state(rep, int(r["batch"]), int(r["input_tokens"]), float(r["avg_output_len"]))
            for f in FIELDS:
                got = _f(getattr(s, f)) * (1e3 if f == "itl_s" else 1.0)
                assert got == pytest.approx(float(pred[PRED[f]][i]), rel=1e-9, abs=0.0), (r["model"], f)
            # and the expert-parallel terms are really on: plain TP predicts something else
            s_tp = steady_state(make_replica(r["model"], r["gpu"], int(r["num_gpus"]), r["precision"], constants=c),
                                int(r["batch"]), int(r["input_tokens"]), float(r["avg_output_len"]))
            assert _f(s_tp.itl_s) != pytest.approx(_f(s.itl_s), rel=1e-6)


def test_estimate_cli_ep_equals_calibration(tmp_path, capsys, ep_rows):
    """``fleet estimate --model qwen3-235b-a22b --gpu H100 --gpus 8 --ep 8`` == the calibration's
    prediction for the matching ML.ENERGY row (output length rounded to an integer, as the CLI takes)."""
    qwen = ep_rows[ep_rows["model_id"].str.contains("Qwen3-235B-A22B", case=False)
                   & (ep_rows["num_gpus"] == 8)]
    assert len(qwen), "an 8-GPU expert-parallel Qwen3-235B-A22B row"
    row = qwen.iloc[0]
    n_out = int(round(float(row["avg_output_len"])))
    prob = _one_row_problem(tmp_path, row, avg_output_len=float(n_out))
    r = prob.rows.iloc[0]
    assert bool(r["ep"]) and int(r["tp"]) == 8
    pred = prob.predict(load_device_constants(False))
    prec = {"bfloat16": "bf16"}.get(str(row["weight_precision"]).lower(), str(row["weight_precision"]).lower())
    argv = ["estimate", "--model", "qwen3-235b-a22b", "--gpu", "H100", "--gpus", "8",
            "--precision", prec, "--batch", str(int(r["batch"])), "--input-tokens", str(int(r["input_tokens"])),
            "--output-tokens", str(n_out), "--uncalibrated", "--json"]
    assert main(argv + ["--ep", "8"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["ep"] == 8 and d["gpus"] == 8
    assert d["energy_per_output_token_j"] == pytest.approx(float(pred["energy_per_token_j"][0]), rel=1e-9)
    assert d["output_tokens_per_s"] == pytest.approx(float(pred["output_throughput_tok_s"][0]), rel=1e-9)
    assert d["avg_power_w"] == pytest.approx(float(pred["avg_power_w_total"][0]), rel=1e-9)
    assert d["itl_ms"] == pytest.approx(float(pred["itl_ms"][0]), rel=1e-9)
    # without --ep the same deployment is read as plain tensor parallelism: a different answer
    assert main(argv) == 0
    d_tp = json.loads(capsys.readouterr().out)
    assert "ep" not in d_tp
    assert d_tp["itl_ms"] != pytest.approx(d["itl_ms"], rel=1e-6)


@pytest.mark.parametrize("model,tp", [("llama-3.1-8b", 1), ("llama-3.1-8b", 2), ("qwen3-30b-a3b", 1),
                                      ("qwen3-30b-a3b", 2)])
def test_ep_one_changes_nothing(model, tp):
    """ep=1 and ep=None are plain tensor parallelism, dense and MoE: same works, same steady
    state, the very same (cached) profile."""
    c = load_device_constants(False)
    base = make_replica(model, "H100", tp, constants=c)
    for ep in (1, None):
        rep = make_replica(model, "H100", tp, constants=c, ep=ep)
        assert rep.ep == 1
        s0 = steady_state(base, 16, 350, 400)
        s1 = steady_state(rep, 16, 350, 400)
        for f in FIELDS:
            assert _f(getattr(s1, f)) == _f(getattr(s0, f))
        # the works are those of expert_parallel=False
        ctx = 16 * (350 + 0.5 * 400)
        dec = evaluate(decode_work(rep.model_name, 16, ctx, rep.precision, rep.kv_precision, tp, False, False),
                       rep.device)
        pre = evaluate(prefill_work(rep.model_name, 350, rep.precision, rep.kv_precision, tp, 0, False, False),
                       rep.device)
        assert _f(s1.decode.time_s) == _f(dec.time_s) and _f(s1.prefill.energy_j) == _f(pre.energy_j)
        assert build_serving_profile(model, "H100", tp, ep=ep) is build_serving_profile(model, "H100", tp)


def test_ep_profile_and_frontier_carry_the_ep_terms():
    """A MoE profile with ep=tp differs from plain TP (the step waits for the busiest GPU), by
    the same amount the direct model says; the frontier's profiles are EP ones."""
    tp_prof = build_serving_profile("qwen3-30b-a3b", "H100", 2, max_batch=32)
    ep_prof = build_serving_profile("qwen3-30b-a3b", "H100", 2, max_batch=32, ep=2)
    assert ep_prof.meta["expert_parallel"] == 2 and "expert_parallel" not in tp_prof.meta
    assert not np.allclose(ep_prof.dec_t0, tp_prof.dec_t0)
    rep = make_replica("qwen3-30b-a3b", "H100", 2, ep=2)
    s = steady_state(rep, 8, 512, 0)           # decode of 8 x 512 tokens, one prompt of 512
    t_fit = ep_prof.dec_t0[8] + ep_prof.dec_t1[8] * 8 * 512
    assert t_fit == pytest.approx(_f(s.decode.time_s), rel=max(ep_prof.decode_fit_max_rel_err, 1e-9) + 1e-9)
    fr = build_serving_frontier("qwen3-30b-a3b", "H100", 2, max_batch=16, n_caps=3, ep=2)
    assert all(p.meta.get("expert_parallel") == 2 for p in fr.profiles)
    fr_tp = build_serving_frontier("qwen3-30b-a3b", "H100", 2, max_batch=16, n_caps=3)
    assert not np.allclose(fr.t0, fr_tp.t0)


@pytest.mark.parametrize("model,tp,ep,needle", [
    ("llama-3.1-8b", 2, 2, "mixture-of-experts"),
    ("qwen3-30b-a3b", 4, 3, "must divide"),
    ("qwen3-30b-a3b", 4, 2, "expected ep=1 or ep=4"),
    ("qwen3-30b-a3b", 2, 0, "positive integer"),
    ("qwen3-30b-a3b", 1, 2, "must divide"),
])
def test_ep_errors(model, tp, ep, needle):
    with pytest.raises(ConfigurationError, match=needle):
        make_replica(model, "H100", tp, ep=ep)
    with pytest.raises(ConfigurationError, match=needle):
        build_serving_profile(model, "H100", tp, ep=ep)


def test_cli_ep_errors(capsys):
    rc = main(["estimate", "--model", "llama-3.1-8b", "--gpu", "H100", "--gpus", "2", "--ep", "2", "--batch", "8",
               "--input-tokens", "100", "--output-tokens", "100"])
    err = capsys.readouterr().err
    assert rc == 2 and "mixture-of-experts" in err and "Traceback" not in err
    rc = main(["frontier", "--model", "qwen3-30b-a3b", "--gpu", "H100", "--gpus", "2", "--ep", "3"])
    err = capsys.readouterr().err
    assert rc == 2 and "must divide" in err


def test_frontier_cli_ep(capsys):
    argv = ["frontier", "--model", "qwen3-30b-a3b", "--gpu", "H100", "--gpus", "2", "--batch", "8", "--caps", "3",
            "--uncalibrated", "--json"]
    assert main(argv + ["--ep", "2"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert main(argv) == 0
    d_tp = json.loads(capsys.readouterr().out)
    assert d["ep"] == 2 and "ep" not in d_tp
    t = [p["time_s"] for p in d["points"]]
    t_tp = [p["time_s"] for p in d_tp["points"]]
    assert len(t) == len(t_tp) == 3 and not np.allclose(t, t_tp)


# ------------------------------------------------------------------ scenarios
SCEN = {
    "name": "moe-ep",
    "seed": 5,
    "fleet": {"pools": [
        {"name": "h100", "accelerator": "H100-SXM", "gpus": 2, "gpus_per_server": 2, "row": "row0",
         "serve": [{"model": "qwen3-30b-a3b", "tp": 2, "ep": 2, "max_batch": 32}]},
    ]},
    "demand": {"inference": [{"model": "qwen3-30b-a3b", "synth": {"rate": 2.0, "hours": 0.01, "seed": 3}}]},
    "simulation": {"telemetry_interval_s": 5.0},
}


def _write(tmp_path, d, name="s.yaml"):
    p = tmp_path / name
    p.write_text(yaml.safe_dump(d), encoding="utf-8")
    return p


def _scen(**serve):
    d = copy.deepcopy(SCEN)
    s = d["fleet"]["pools"][0]["serve"][0]
    for k, v in serve.items():
        if v is None:
            s.pop(k, None)
        else:
            s[k] = v
    return d


def test_scenario_ep_reaches_the_profile_and_the_simulation(tmp_path):
    seen: dict = {}

    def recorder(op):
        prof = default_profile_factory(op)
        seen[op.ep] = prof
        return prof

    sc_ep = load_scenario(_write(tmp_path, _scen(), "ep.yaml"))
    sc_tp = load_scenario(_write(tmp_path, _scen(ep=None), "tp.yaml"))
    assert sc_ep.fleet.pools[0].serve[0].ep == 2 and sc_tp.fleet.pools[0].serve[0].ep is None
    r_ep = simulate(sc_ep, profile_factory=recorder)
    simulate(sc_tp, profile_factory=recorder)
    assert set(seen) == {2, 1}
    assert seen[2].meta.get("expert_parallel") == 2 and "expert_parallel" not in seen[1].meta
    assert not np.allclose(seen[2].dec_t0, seen[1].dec_t0)
    # the default factory (no hook) gets ep too: same profile, same simulation
    r_default = simulate(sc_ep)
    assert len(r_ep.requests) > 0
    assert r_default.pools.equals(r_ep.pools)
    r_tp = simulate(sc_tp)
    e_ep, e_tp = float(r_default.pools["gpu_energy_j"].sum()), float(r_tp.pools["gpu_energy_j"].sum())
    assert e_ep > 0 and e_tp > 0 and e_ep != pytest.approx(e_tp, rel=1e-9)


def test_factories_take_the_operating_point(tmp_path):
    """A profile factory gets the serve entry's OperatingPoint, ep and constants resolved."""
    from fleet.frontier import OperatingPoint

    got = []

    def factory(op):
        got.append(op)
        return default_profile_factory(op)

    sc = load_scenario(_write(tmp_path, _scen(ep=None)))
    res = simulate(sc, profile_factory=factory)
    assert len(res.requests) > 0
    assert got == [OperatingPoint("qwen3-30b-a3b", "H100-SXM", tp=2, ep=1, max_batch=32, constants="calibrated")]
    assert got[0] == sc.operating_point("h100") and got[0].kv_precision == "bf16"


@pytest.mark.parametrize("serve,check,words", [
    ({"ep": 3}, True, "must divide"),
    ({"ep": 0}, False, "positive integer"),
    ({"ep": "two"}, False, "expected an integer"),
    ({"model": "llama-3.1-8b", "ep": 2}, True, "mixture-of-experts"),
])
def test_scenario_ep_errors_name_the_yaml_path(tmp_path, serve, check, words):
    d = _scen(**serve)
    if "model" in serve:
        d["demand"]["inference"][0]["model"] = serve["model"]
    p = _write(tmp_path, d)
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p, check=check)
    e = ei.value
    assert e.field == "fleet.pools[0].serve[0].ep", str(e)
    assert words in str(e) and str(p) in str(e)


def test_whatif_factory_takes_ep(repo_root):
    from fleet.run import whatif_profile_factory
    sc = load_scenario(repo_root / "scenarios" / "whatif_hbm_half.yaml")
    f = whatif_profile_factory(sc)
    op = sc.operating_point(0, 0)
    assert op.is_whatif and op.constants.startswith("what-if")
    qwen = op.replace(model="qwen3-30b-a3b", tp=2, ep=1, max_batch=16)
    a, b = f(qwen), f(qwen.replace(ep=2))
    assert b.meta.get("expert_parallel") == 2 and not np.allclose(a.dec_t0, b.dec_t0)
    assert f(qwen.replace(ep=1)) is a
