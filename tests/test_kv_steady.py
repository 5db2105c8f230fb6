"""The KV-cache limit on steady-state occupancy: the estimate's rule, `--max-num-seqs`, and the
simulation agreeing with it (issue 14, part 3)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from fleet.cli import main
from fleet.frontier.build import build_serving_profile, make_replica
from fleet.frontier.steady import KV_WATERMARK, effective_batch, steady_max_batch, steady_state
from fleet.sim.engine import Engine


def test_rule_by_hand():
    # 10,000 tokens, 1 % watermark -> 9,900 usable; I + O/2 = 100 + 100 = 200 -> 49 sequences
    assert steady_max_batch(10_000, 100, 200) == 49
    # the old full-length rule would have allowed 10,000 // 300 = 33
    assert effective_batch(10_000, 100, 200, 16) == (16, "max_num_seqs")
    assert effective_batch(10_000, 100, 200, 256) == (49, "kv_cache")
    # a single request longer than the cache does not fit at all
    assert steady_max_batch(10_000, 9_000, 2_000) == 0


def test_simulation_uses_the_same_watermark():
    from fleet.sim import replica
    assert replica.KV_WATERMARK is KV_WATERMARK or replica.KV_WATERMARK == KV_WATERMARK


@pytest.mark.parametrize("gpu,I,O", [("L4", 200, 2000), ("A100-40GB", 2000, 1000)])
def test_estimate_and_simulation_agree(gpu, I, O):
    """A saturated replica (every request queued at t=0, max_batch 256 > what fits): the
    simulation's time-averaged running batch and its steady throughput match the estimate's
    effective batch and throughput (measured 34.07 vs 34 and 63.4 vs 63; throughput within 2 %)."""
    n = 600
    rep = make_replica("llama-3.1-8b", gpu)
    prof = build_serving_profile("llama-3.1-8b", gpu, max_batch=256)
    b, lim = effective_batch(rep.kv_capacity_tokens, I, O, 256)
    assert lim == "kv_cache"
    eng = Engine(float("inf"), seed=0)
    eng.add_serving_pool("p", prof, 1, "llama-3.1-8b", max_batch=256)
    eng.add_requests(pd.DataFrame({"request_id": np.arange(n), "arrival_s": np.zeros(n),
                                   "input_tokens": np.full(n, I), "output_tokens": np.full(n, O)}))
    run = eng.run()
    r = eng._replicas[0]
    assert r.batch_s / r.busy_s == pytest.approx(b, rel=0.05)
    c = np.sort(run.requests.completion_s.values)
    i0, i1 = int(0.3 * n), int(0.8 * n)
    sim_thr = O * (i1 - i0) / (c[i1] - c[i0])
    est_thr = float(steady_state(rep, b, I, O).output_tokens_per_s)
    assert sim_thr == pytest.approx(est_thr, rel=0.05)
    # the old rule (every sequence at its final length) is far off here
    if gpu == "L4":
        assert rep.kv_capacity_tokens // (I + O) < 0.6 * b


def _est(capsys, extra):
    rc = main(["estimate", "--model", "llama-3.1-8b", "--gpu", "L4", "--input-tokens", "200",
               "--output-tokens", "2000", "--json", "--uncalibrated"] + extra)
    out, err = capsys.readouterr()
    return rc, out, err


def test_cli_max_num_seqs_reports_effective_batch(capsys):
    rc, out, _ = _est(capsys, ["--max-num-seqs", "256"])
    d = json.loads(out)
    assert rc == 0 and d["batch_limited_by"] == "kv_cache" and d["max_num_seqs"] == 256
    assert d["batch"] == d["max_batch"] == steady_max_batch(d["kv_capacity_tokens"], 200, 2000)
    rc, out, _ = _est(capsys, ["--max-num-seqs", "8"])
    d = json.loads(out)
    assert d["batch"] == 8 and d["batch_limited_by"] == "max_num_seqs"
    # --batch keeps its meaning (an exact batch), now checked at steady-state occupancy
    rc, out, _ = _est(capsys, ["--batch", "30"])
    assert rc == 0 and json.loads(out)["batch"] == 30
    rc, _, err = _est(capsys, ["--batch", "300"])
    assert rc == 2 and "steady state" in err and "Traceback" not in err
    rc, _, err = _est(capsys, ["--batch", "8", "--max-num-seqs", "8"])
    assert rc == 2 and "not both" in err
