"""The oversubscription model (fleet.plan.power): an optimum known by hand, a feasible case with
every constraint holding on the samples, an infeasible one explained by name."""

import numpy as np
import pytest

from fleet.plan.power import PowerProblem, RowData, build, solve


def _row(**kw):
    base = dict(row="row0", budget_w=1000.0, samples_w=np.arange(10.0, 101.0, 10.0), rise_w=0.0, brake_w=5.0,
                nameplate_w=200.0)
    base.update(kw)
    return RowData(**base)


def test_hand_checkable_optimum():
    # samples 10..100 W per server (10 of them, the same when capped); 1 of 10 may exceed the first
    # threshold (10 %), none may exceed the brake threshold (t1 + 0.1, at most the 1 kW budget):
    # t1 = 0.9: N x 100 <= 1000 and the second largest (90 W) under 900 W -> N <= 10; t1 = 0.8:
    # N x 90 <= 800 -> N <= 8.  Nameplate: 5.
    pr = PowerProblem(rows=(_row(),), t1=(0.8, 0.9), max_capped_share=0.1, budget_exceed_share=0.0)
    plan, sol, ex = solve(pr)
    assert sol.status == "OPTIMAL" and ex is None and sol.violations == []
    r = plan.rows["row0"]
    assert (r.servers, r.t1) == (10, 0.9)
    assert r.nameplate_servers == 5 and plan.extra_pct == pytest.approx(100.0)
    assert r.capped_share_model == pytest.approx(0.1)        # only the 100 W sample is above 900 W
    assert r.exceed_share_model == 0.0


def test_reaction_headroom_and_brake_bind():
    # a 20 W rise per server within the reaction time: N x 20 <= (1 - t1) x 1000: t1 = 0.9 -> N <= 5,
    # t1 = 0.8 -> N <= 10 but then N x 90 <= 800 -> N <= 8 (capping chance): 8 at t1 = 0.8
    plan, sol, _ = solve(PowerProblem(rows=(_row(rise_w=20.0),), t1=(0.8, 0.9), max_capped_share=0.1))
    assert (plan.rows["row0"].servers, plan.rows["row0"].t1) == (8, 0.8)
    # a brake floor of 140 W per server: N <= 7
    plan, _, _ = solve(PowerProblem(rows=(_row(rise_w=20.0, brake_w=140.0),), t1=(0.8, 0.9), max_capped_share=0.1))
    assert plan.rows["row0"].servers == 7


def test_feasible_plan_holds_on_every_sample():
    rng = np.random.default_rng(0)
    s = rng.gamma(8.0, 40.0, 2000)
    rd = _row(budget_w=50_000.0, samples_w=s, rise_w=30.0, brake_w=150.0, nameplate_w=900.0)
    plan, sol, _ = solve(PowerProblem(rows=(rd,), max_capped_share=0.02, budget_exceed_share=0.001))
    r = plan.rows["row0"]
    assert sol.status == "OPTIMAL"
    assert r.servers > rd.nameplate_servers
    assert np.mean(r.servers * s > r.t1 * rd.budget_w) <= 0.02
    assert np.mean(r.servers * s > rd.budget_w) <= 0.001
    assert r.servers * rd.rise_w <= (1 - r.t1) * rd.budget_w + 1e-6
    # one server more breaks a constraint (it is the optimum)
    n1 = r.servers + 1
    broken = (np.mean(n1 * s > max(0.95, r.t1) * rd.budget_w) > 0.02 or np.mean(n1 * s > rd.budget_w) > 0.001
              or n1 * rd.brake_w > rd.budget_w or n1 * rd.rise_w > (1 - 0.75) * rd.budget_w)
    assert broken


def test_capped_samples_decide_how_far_the_second_level_holds():
    # free samples 100 W; at the second level 70 W.  A quarter of the time may be capped, and the
    # brake (t1 + 0.1 = 1.0 of 1 kW) must never be needed: N x 70 <= 1000 -> N <= 14 (t1 0.9).
    s = np.array([50.0, 60.0, 90.0, 100.0])
    q = np.array([40.0, 45.0, 65.0, 70.0])
    pr = PowerProblem(rows=(_row(samples_w=s, capped_w=q),), t1=(0.8, 0.9), max_capped_share=0.5)
    plan, _, _ = solve(pr)
    # capped share 0.5: the third largest (60 W) under t1 B: 0.9 -> N <= 15; the capped bound: 14
    assert (plan.rows["row0"].servers, plan.rows["row0"].t1) == (14, 0.9)


def test_infeasible_explained_by_name():
    # asking for 12 servers where the brake floor (100 W per server) allows 10 in a 1 kW row
    pr = PowerProblem(rows=(_row(brake_w=100.0, min_servers=12),), t1=(0.8, 0.9), max_capped_share=1.0,
                      budget_exceed_share=1.0)
    plan, sol, ex = solve(pr)
    assert plan is None and sol.status == "INFEASIBLE"
    assert ex.confirmed and len(ex.conflicts) == 1
    assert ex.conflicts[0].text.startswith("row0: ")
    assert "brake" in ex.conflicts[0].text or "at least 12 servers" in ex.conflicts[0].text


def test_model_keeps_only_the_samples_that_matter():
    s = np.linspace(1.0, 100.0, 5000)
    pm = build(PowerProblem(rows=(_row(samples_w=s),), max_capped_share=0.01, budget_exceed_share=0.0))
    # 50 + 50 kept for capping, 0 + 50 for the budget: 150 indicators, not 10 000
    assert sum(1 for n in pm.model.names if "[" in n and ("capped" in n or "over_brake" in n)) == 100 + 50
