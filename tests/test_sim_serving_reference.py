"""The engine against an independent, deliberately naive reference: a per-iteration loop over
explicit per-sequence state (no iteration counter, no finish heap, no incremental context sum,
no merged steps, no cut spans), with the same scheduling rules as documented in
:mod:`fleet.sim.replica` (FCFS, prefill ahead of decode, batch and KV limits with the one-iteration
headroom and 1 % watermark, preemption of the most recently admitted with recomputation)."""

from __future__ import annotations

import math
from collections import deque

import numpy as np
import pandas as pd
import pytest

from fleet.sim.engine import Engine

from _sim_profiles import toy_profile

MODEL = "llama-3.1-8b"


def reference(df: pd.DataFrame, p, max_prefill_tokens: int):
    arr = df.arrival_s.to_numpy()
    inp = df.input_tokens.to_numpy()
    out = df.output_tokens.to_numpy()
    n = len(df)
    B, cap = p.max_batch, p.kv_capacity_tokens
    wm = int(0.01 * cap)
    gen = [0] * n
    admit = [math.nan] * n
    first = [math.nan] * n
    done = [math.nan] * n
    energy = [0.0] * n
    preempt = [0] * n
    queue: deque[int] = deque()
    running: list[int] = []           # admission order
    t = 0.0
    nxt = 0
    busy_e = 0.0
    while nxt < n or queue or running:
        if not queue and not running:
            t = max(t, arr[nxt])
        while nxt < n and arr[nxt] <= t:
            queue.append(nxt)
            nxt += 1
        # prefill step?
        nb = len(running)
        used = sum(inp[i] + gen[i] for i in running)
        batch, tok = [], 0
        while queue:
            i = queue[0]
            P = inp[i] + gen[i]
            need = P + 1
            if nb + 1 > B:
                break
            if used + need + nb + 1 + wm > cap and not (nb == 0 and need <= cap):
                break
            if batch and tok + P > max_prefill_tokens:
                break
            queue.popleft()
            batch.append((i, P))
            tok += P
            used += need
            nb += 1
        if batch:
            dt, e = p.prefill(tok, sum(P * P for _, P in batch))
            t += dt
            busy_e += e
            for i, P in batch:
                if math.isnan(admit[i]):
                    admit[i] = t - dt
                energy[i] += e * P / tok
                gen[i] += 1
                if math.isnan(first[i]):
                    first[i] = t
                if gen[i] >= out[i]:
                    done[i] = t
                else:
                    running.append(i)
            continue
        # one decode iteration (preempting the latest admitted while it does not fit)
        while len(running) > B or sum(inp[i] + gen[i] - 1 for i in running) + 2 * len(running) > cap:
            i = running.pop()
            preempt[i] += 1
            queue.appendleft(i)
        b = len(running)
        C = sum(inp[i] + gen[i] - 1 for i in running)
        dt, e = p.decode_iter(b, C)
        t += dt
        busy_e += e
        for i in list(running):
            energy[i] += e / b
            gen[i] += 1
            if gen[i] >= out[i]:
                done[i] = t
                running.remove(i)
    return dict(admit=np.array(admit), first=np.array(first), done=np.array(done),
                energy=np.array(energy), preempt=np.array(preempt), busy_e=busy_e)


@pytest.mark.parametrize("seed", range(6))
def test_engine_matches_naive_reference(seed):
    rng = np.random.default_rng(seed)
    n = 120
    kv = int(rng.integers(2_000, 5_000))
    p = toy_profile(max_batch=int(rng.integers(6, 14)), kv_tokens=kv, speed=float(rng.choice([0.5, 1.0])))
    mpt = int(rng.choice([1_000, 4_000, 100_000]))
    size_in = rng.integers(5, 1_200, n)
    size_out = rng.integers(1, 250, n)
    keep = size_in + size_out <= kv
    df = pd.DataFrame({"request_id": np.arange(keep.sum()),
                       "arrival_s": np.sort(rng.uniform(0, 4, n))[keep],
                       "input_tokens": size_in[keep], "output_tokens": size_out[keep]})
    # a few requests arriving at the same instant
    df.loc[5:8, "arrival_s"] = df.arrival_s[5]
    ref = reference(df, p, mpt)
    for mode in ("coalesced", "iteration"):
        eng = Engine(math.inf, 0, mode=mode)
        eng.add_serving_pool("x", p, 1, MODEL, max_prefill_tokens=mpt)
        eng.add_requests(df)
        run = eng.run()
        req = run.requests
        assert (req.status == "completed").all()
        np.testing.assert_allclose(req.admit_s, ref["admit"], rtol=1e-9)
        np.testing.assert_allclose(req.first_token_s, ref["first"], rtol=1e-9)
        np.testing.assert_allclose(req.completion_s, ref["done"], rtol=1e-9)
        np.testing.assert_allclose(req.energy_j, ref["energy"], rtol=1e-8)
        assert (req.preemptions.to_numpy() == ref["preempt"]).all()
        rep = run.replicas.iloc[0]
        assert rep.energy_j - rep.idle_energy_j == pytest.approx(ref["busy_e"], rel=1e-9)
    assert ref["preempt"].sum() > 0                  # the KV limit was exercised
