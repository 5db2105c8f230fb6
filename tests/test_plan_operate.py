"""The operate model (caps and active replicas per hour): hand-checkable optima, budgets
explained in the scenario's words, the time-limit path, and the capacity rule."""

import itertools

import numpy as np
import pytest

from fleet.plan.operate import CapOption, Group, OperateProblem, build, replica_capacity, solve


def _group(key, caps_rps, power_w, replicas=2):
    opts = tuple(CapOption(c, r, (p,), c) for c, r, p in zip((300.0, 700.0), caps_rps, power_w))
    return Group(key, key, "m", replicas, 1, "row0", opts, inactive_w=50.0, overhead_per_w=0.0)


def _problem(**kw):
    # two pools, two caps (300 W, 700 W), three hours; replicas run at full load (one level)
    a = _group("a", (1.0, 2.0), (250.0, 500.0))
    b = _group("b", (1.5, 3.0), (400.0, 800.0))
    base = dict(groups=(a, b), pool_caps={"a": (300.0, 700.0), "b": (300.0, 700.0)},
                pool_row={"a": "row0", "b": "row0"}, pool_static_w={"a": 0.0, "b": 0.0},
                demand_rps={"m": np.array([1.0, 2.0, 4.0])}, pue=np.ones(3), price_usd_per_mwh=np.full(3, 50.0),
                ci_g_per_kwh=np.full(3, 300.0), levels=(1.0,), model_words={"m": "model m"})
    base.update(kw)
    return OperateProblem(**base)


def test_hand_checkable_optimum():
    # W above inactive per replica: a@300 200 W for 1 req/s, a@700 450 W for 2, b@300 350 W for 1.5,
    # b@700 750 W for 3.  Caps (300, 300): hour 0 one a (200), hour 1 two a (400), hour 2 one a + two b
    # (4 req/s, 900) = 1500 Wh; (300, 700): 200+400+950; (700, 300): 350+450+900; (700, 700): 450+450+900.
    # Plus four replicas x 50 W inactive floor x 3 h = 0.6 kWh.
    plan, sol, ex = solve(_problem())
    assert sol.status == "OPTIMAL" and ex is None
    assert plan.caps == {"a": 300.0, "b": 300.0}
    assert plan.schedule == {"a": [1, 2, 1], "b": [0, 0, 2]}
    assert sol.objective == pytest.approx(2.1)
    assert plan.planned_energy_kwh == pytest.approx(2.1)
    assert sol.violations == []


def test_optimum_matches_brute_force_with_cost_objective_and_hourly_prices():
    prob = _problem(objective="cost", price_usd_per_mwh=np.array([10.0, 200.0, 50.0]))
    plan, sol, _ = solve(prob)
    best = np.inf
    opts = {g.key: g.options for g in prob.groups}
    for ca, cb in itertools.product(range(2), range(2)):
        total = 0.0
        for h, lam in enumerate(prob.demand_rps["m"]):
            hbest = np.inf
            for na, nb in itertools.product(range(3), range(3)):
                oa, ob = opts["a"][ca], opts["b"][cb]
                if na * oa.capacity_rps + nb * ob.capacity_rps < lam - 1e-9:
                    continue
                p = na * oa.level_power_w[0] + nb * ob.level_power_w[0] + (4 - na - nb) * 50.0
                hbest = min(hbest, p / 1000 * prob.price_usd_per_mwh[h] / 1000)
            total += hbest
        best = min(best, total)
    assert sol.objective == pytest.approx(best, rel=1e-6)


def test_budget_conflict_explained_in_the_scenarios_words():
    # with every active replica counted at its cap, hour 2 needs 0.95 kW (one a, two b at 300 W,
    # one inactive at 50 W): a 0.9 kW site budget cannot hold it
    plan, sol, ex = solve(_problem(site_budget_w=900.0))
    assert plan is None and sol.status == "INFEASIBLE"
    assert ex.confirmed and len(ex.conflicts) == 1
    text = ex.conflicts[0].text
    assert text.startswith("site: 0.9 kW budget in hour 2")
    assert "needs 0.95 kW" in text


def test_budget_that_binds_changes_the_plan():
    # 1.0 kW site budget: hour 2's (one a, two b) at 0.95 kW fits; a 0.94 kW budget would not
    plan, sol, _ = solve(_problem(site_budget_w=1000.0))
    assert sol.status == "OPTIMAL"
    assert float(plan.planned_peak_w["site"].max()) <= 1000.0


def test_time_limit_path_returns_best_with_gap():
    rng = np.random.default_rng(0)
    groups, caps = [], {}
    H = 24
    for p in range(10):
        cs = tuple(float(x) for x in np.linspace(300, 700, 8))
        opts = tuple(CapOption(c, 1.0 + c / 400 + rng.uniform(0, 0.3), tuple(0.6 * c * u + 80 for u in (0.25, 0.5, 0.75, 1.0)), c)
                     for c in cs)
        groups.append(Group(f"p{p}", f"p{p}", "m", 8, 1, "row0", opts, 60.0, 0.5))
        caps[f"p{p}"] = cs
    lam = 30 + 20 * np.sin(np.arange(H) / 24 * 2 * np.pi)
    prob = OperateProblem(tuple(groups), caps, {g.pool: "row0" for g in groups}, {g.pool: 900.0 for g in groups},
                          {"m": lam}, np.full(H, 1.2), np.full(H, 60.0), np.full(H, 300.0),
                          site_budget_w=40_000.0)
    om = build(prob)
    s = om.model.solve(first_solution=True)
    assert s.status in ("FEASIBLE", "OPTIMAL") and s.bound <= s.objective + 1e-9
    plan, full, _ = solve(prob, time_limit_s=20)
    assert full.ok and full.objective <= s.objective + 1e-9
    assert full.violations == []


class _Prof:
    """A toy ServingProfile: decode time 10 ms + 1 ms per sequence, no context term."""

    max_batch = 64
    kv_capacity_tokens = 64 * 1000
    idle_power_w = 100.0

    def prefill(self, tokens):
        return 0.001 * tokens / 100, 0.5 * tokens / 100

    def decode_iter(self, b, ctx):
        return 0.010 + 0.001 * b, 3.0 + 0.2 * b


def test_capacity_is_the_largest_batch_within_the_tpot_slo():
    # I=100, O=100: t_iter = 0.010 + 0.001 B + (B/100) 0.001 = 0.010 + 0.00101 B <= 0.05 -> B <= 39.6 -> 39
    c = replica_capacity(_Prof(), 100, 100, ttft_s=None, tpot_s=0.05)
    assert c.batch == 39
    t = 0.010 + 0.00101 * 39
    assert c.rps_model == pytest.approx(39 / (100 * t))
    # power rises with throughput (concave: energy per request falls)
    assert np.all(np.diff(c.curve_w) >= 0)
    e_per_req = c.curve_w[1:] / c.curve_rps[1:]
    assert e_per_req[-1] < e_per_req[0]
    # KV limit: sequences of 900 + 100/2 tokens, 64k tokens -> 67 would fit, max_batch 64 binds; with
    # a 10k-token cache only 10 fit
    p = _Prof()
    p.kv_capacity_tokens = 10_000
    assert replica_capacity(p, 900, 100, ttft_s=None, tpot_s=1.0).batch == 10
    # an SLO nothing meets: zero capacity with the reason
    z = replica_capacity(_Prof(), 100, 100, ttft_s=None, tpot_s=0.001)
    assert z.rps_model == 0 and "misses the SLO" in z.reason
