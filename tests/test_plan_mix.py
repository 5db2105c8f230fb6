"""The GPU mix planner (fleet.plan.mix): hand-checkable optima, Mélange's example, infeasibility
in the scenario's words, the time-limit path, the Pareto front, derating, and the benchmark."""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import numpy as np
import pytest

from fleet.plan import mix as pm


def _cand(name, cap, price, *, busy=(0.0, 0.0), idle=0.0, acc=None, tp=1, emb=0.0, pricing="hourly", cap_w=300.0):
    return pm.Candidate(name, acc or name, tp, "bf16", cap_w, 300.0, idle, np.asarray(cap, float),
                        np.asarray(busy, float), price, pricing, emb, 8, 4, 0.0, 0.0)


BUCKETS = [pm.Bucket("small", 0, 512, 0, 128, 256, 64), pm.Bucket("large", 512, math.inf, 0, math.inf, 2048, 256)]


def _problem(cands, rates=((2.0, 1.0), (1.0, 2.0)), **kw):
    H = len(rates[0])
    return pm.MixProblem(cands, BUCKETS, np.asarray(rates, float), np.zeros(H), np.zeros(H), np.ones(H), **kw)


def toy(**kw):
    # A: 1 USD/GPU-h, serves small at 1 req/s, cannot serve large; B: 3 USD/GPU-h, 2 req/s on both
    return _problem([_cand("A", [1.0, 0.0], 1.0), _cand("B", [2.0, 2.0], 3.0)], **kw)


@pytest.mark.parametrize("solver", ["highs", "cp-sat"])
def test_two_types_two_buckets_two_hours_hand_checked(solver):
    """Hour 0: small 2, large 1 req/s -> 1 B (large + half its room for small) + 1 A = 4 USD;
    hour 1: small 1, large 2 -> 1 B full of large + 1 A = 4 USD; total 8 USD."""
    plan = pm.solve(pm.build(toy()), "cost", time_limit_s=10, solver=solver)
    assert plan.solution.status == "OPTIMAL"
    assert plan.figures["cost"] == pytest.approx(8.0, abs=1e-6)
    assert plan.active.tolist() == [[1, 1], [1, 1]]
    assert not plan.solution.violations


def test_availability_changes_the_optimum_as_by_hand():
    """No A at all: each hour needs 1.5 B replicas -> 2 B -> 6 USD per hour."""
    plan = pm.solve(pm.build(toy(availability_gpus={"A": 0})), "cost", time_limit_s=10)
    assert plan.figures["cost"] == pytest.approx(12.0, abs=1e-6)
    assert plan.allocation(toy()) == {"B": 2}


def test_zero_capacity_everywhere_is_explained_not_a_crash():
    P = _problem([_cand("A", [1.0, 0.0], 1.0)])
    plan = pm.solve(pm.build(P), "cost", time_limit_s=5)
    assert plan.solution.status == "INFEASIBLE"
    from fleet.planning.mix import explain
    lines = explain(P, 10)
    assert any("prompt" in s and "no allowed accelerator" in s for s in lines)


def test_infeasibility_names_the_count_limit():
    P = toy(availability_gpus={"A": 0, "B": 1})
    assert pm.solve(pm.build(P), "cost", time_limit_s=5).solution.status == "INFEASIBLE"
    from fleet.planning.mix import explain
    lines = explain(P, 10)
    assert any("at most 1 B GPUs are available (plan.mix.accelerators[B].max_gpus)" in s for s in lines), lines


def test_infeasibility_names_the_budget():
    P = toy(budget_usd=5.0)
    from fleet.planning.mix import explain
    lines = explain(P, 10)
    assert any("budget" in s for s in lines), lines


def test_power_budget_binds():
    # B at 300 W per GPU: site budget 300 W allows one B; the rest must go to A (which cannot serve large)
    P = toy(site_budget_w=300.0, rates=((2.0,), (2.0,)))
    assert pm.solve(pm.build(P), "cost", time_limit_s=5).solution.status == "INFEASIBLE"
    P = toy(site_budget_w=600.0, rates=((2.0,), (2.0,)))
    plan = pm.solve(pm.build(P), "cost", time_limit_s=5)
    assert plan.ok and int(plan.replicas[1]) * 300.0 <= 600.0


def _bench_problem(B=20, H=24, C=10, seed=0, scale=10.0):
    rng = np.random.default_rng(seed)
    buckets = [pm.Bucket(f"b{i}", i, i + 1, 0, 1, 100 * (i + 1), 50) for i in range(B)]
    cands = []
    for c in range(C):
        cap = rng.uniform(0.5, 8, B) * (1 + c * 0.3)
        cap[rng.random(B) < 0.1] = 0
        cands.append(pm.Candidate(f"t{c}", f"T{c}", 1 + (c % 3 == 0), "bf16", 300 + 40 * c, 400 + 40 * c, 80.0, cap,
                                  rng.uniform(200, 600, B), 0.5 + 0.4 * c, "hourly", 500 + 50 * c,
                                  row=f"row{c % 2}"))
    hours = np.arange(H)
    shape = 1 + 0.6 * np.cos((hours - 14) / 24 * 2 * np.pi)
    rates = scale * rng.uniform(0.5, 6, B)[:, None] * shape[None, :]
    return pm.MixProblem(cands, buckets, rates, np.full(H, 0.08), 250 + 50 * np.sin(hours), np.full(H, 1.2),
                         availability_gpus={f"T{c}": 40 for c in range(C)}, site_budget_w=900e3,
                         row_budget_w={"row0": 500e3, "row1": 500e3})


def test_time_limit_returns_the_best_plan_with_its_gap():
    P = _bench_problem(B=8, H=6, C=5, seed=1, scale=10.0)
    plan = pm.solve(pm.build(P), "cost", time_limit_s=0.05)
    assert plan.solution.status in ("OPTIMAL", "FEASIBLE", "UNKNOWN")
    if plan.ok:
        assert not plan.solution.violations
        assert plan.solution.bound <= plan.solution.objective + 1e-6
        assert 0.0 <= plan.solution.gap < 1.0
    full = pm.solve(pm.build(P), "cost", time_limit_s=20)
    assert full.ok and full.solution.bound <= full.solution.objective + 1e-6
    if plan.ok:
        assert full.solution.bound <= plan.solution.objective + 1e-6


def test_pareto_front_is_monotone_and_every_point_feasible():
    # A: cheap but power-hungry; B: dear but frugal; carbon from a constant intensity
    cands = [_cand("A", [1.0, 1.0], 1.0, busy=[900.0, 900.0], idle=100.0),
             _cand("B", [1.0, 1.0], 2.0, busy=[200.0, 200.0], idle=50.0)]
    H = 2
    P = pm.MixProblem(cands, BUCKETS, np.array([[2.0, 3.0], [1.0, 2.0]]), np.full(H, 0.1), np.full(H, 400.0),
                      np.full(H, 1.2))
    mm = pm.build(P)
    front = pm.pareto(mm, "cost", "carbon", points=5, time_limit_s=10)
    assert len(front.points) >= 2
    f1 = [p.f1 for p in front.points]
    f2 = [p.f2 for p in front.points]
    assert all(a <= b + 1e-9 for a, b in zip(f1, f1[1:]))
    assert all(a >= b - 1e-9 for a, b in zip(f2, f2[1:]))
    for p in front.points:
        assert p.plan.ok and not p.plan.solution.violations
        assert p.eps is None or p.f2 <= p.eps * (1 + 1e-6)
    assert all(m >= 0 for m in front.marginal)
    # the ends are the single-objective optima
    assert front.points[0].f1 == pytest.approx(pm.solve(pm.build(P), "cost").figures["cost"], rel=1e-6)
    assert front.points[-1].f2 == pytest.approx(pm.solve(pm.build(P), "carbon").figures["carbon"], rel=1e-6)


def test_bucket_capacity_zero_when_the_slo_cannot_be_met():
    from fleet.frontier import build_serving_profile
    prof = build_serving_profile("llama-3.1-8b", "H100-SXM", 1)
    ok = pm.bucket_capacity(prof, 512, 128, ttft_s=1.0, tpot_s=0.05, utilisation=1.0)
    assert ok.rps > 0 and ok.batch >= 1 and ok.itl_s <= 0.05 and ok.ttft_s <= 1.0
    assert pm.bucket_capacity(prof, 512, 128, ttft_s=1.0, tpot_s=0.05, utilisation=0.5).rps == pytest.approx(ok.rps / 2)
    tight = pm.bucket_capacity(prof, 512, 128, ttft_s=1.0, tpot_s=1e-4)
    assert tight.rps == 0.0 and "TPOT" in tight.reason
    huge = pm.bucket_capacity(prof, 10 ** 7, 10, ttft_s=None, tpot_s=None)
    assert huge.rps == 0.0


def test_derating_scales_only_the_failed_pairs():
    P = toy()
    D = pm.derate(P, {("B", 1): 0.5})
    assert D.candidates[1].capacity_rps.tolist() == [2.0, 1.0]
    assert D.candidates[0].capacity_rps.tolist() == P.candidates[0].capacity_rps.tolist()
    # B must now carry large at 1 req/s per replica: hour 1 needs 2 B for large + 1 A = 7; hour 0: 1 B + 1 A... 
    plan = pm.solve(pm.build(D), "cost", time_limit_s=10)
    assert plan.ok and plan.figures["cost"] > 8.0


# ------------------------------------------------------------------ Mélange compatibility
EXAMPLE = {  # tyler-griggs/melange-release, melange/config/example.json
    "gpu_info": {"A10G": {"cost": 1.01, "tputs": [[2, 1], [5, 2]]},
                 "A100-80GB": {"cost": 3.67, "tputs": [[20, 20], [40, 20]]}},
    "workload_distribution": [[0.2, 0.1], [0.5, 0.2]],
    "total_request_rate": 30.0,
    "slice_factor": 1,
}


def _brute_force(cfg) -> float:
    """The optimum of Mélange's ILP by enumeration: every assignment of slices to GPU types, the
    count of each type the ceiling of its load (exact fractions)."""
    names = list(cfg["gpu_info"])
    sf = cfg["slice_factor"]
    rate = Fraction(str(cfg["total_request_rate"]))
    slices = []
    for i, row in enumerate(cfg["workload_distribution"]):
        for j, share in enumerate(row):
            if share > 0:
                slices += [(i, j, Fraction(str(share)) * rate / sf)] * sf
    best = math.inf
    for assign in itertools.product(range(len(names)), repeat=len(slices)):
        load = [Fraction(0)] * len(names)
        ok = True
        for (i, j, r), g in zip(slices, assign):
            t = cfg["gpu_info"][names[g]]["tputs"][i][j]
            if t <= 0:
                ok = False
                break
            load[g] += r / Fraction(str(t))
        if ok:
            best = min(best, sum(math.ceil(ld) * cfg["gpu_info"][n]["cost"] for ld, n in zip(load, names)))
    return best


@pytest.mark.parametrize("sf", [1, 2, 3])
def test_melange_example_reaches_the_proven_optimum(sf):
    cfg = dict(EXAMPLE, slice_factor=sf)
    res = pm.melange(cfg)
    assert res.status == "OPTIMAL"
    assert res.cost_per_hour == pytest.approx(_brute_force(cfg), abs=1e-9)
    assert res.cost_per_hour == pytest.approx(sum(res.allocation[g] * EXAMPLE["gpu_info"][g]["cost"]
                                                  for g in res.allocation))


def test_melange_example_slice_factor_one_matches_its_readme():
    res = pm.melange(EXAMPLE)
    assert res.allocation == {"A10G": 3, "A100-80GB": 1} and res.cost_per_hour == pytest.approx(6.7)


def test_melange_zero_throughput_does_not_crash():
    cfg = {"gpu_info": {"A10G": {"cost": 1.01, "tputs": [[2, 0], [5, 2]]},
                        "A100-80GB": {"cost": 3.67, "tputs": [[20, 20], [40, 20]]}},
           "workload_distribution": [[0.2, 0.1], [0.5, 0.2]], "total_request_rate": 30.0, "slice_factor": 2}
    res = pm.melange(cfg)
    assert res.status == "OPTIMAL" and res.cost_per_hour == pytest.approx(_brute_force(cfg))
    assert all(a["gpu"] != "A10G" or a["bucket"] != [0, 1] for a in res.assignment)
    # zero everywhere for a bucket: infeasible, still no crash
    cfg["gpu_info"]["A100-80GB"]["tputs"][0][1] = 0
    assert pm.melange(cfg).status == "INFEASIBLE"


def test_melange_cli(tmp_path, capsys):
    import json
    from fleet.cli import main
    p = tmp_path / "example.json"
    p.write_text(json.dumps(EXAMPLE))
    assert main(["plan", "mix", "--melange", str(p), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["cost_per_hour"] == pytest.approx(6.7) and out["allocation"] == {"A10G": 3, "A100-80GB": 1}
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    assert main(["plan", "mix", "--melange", str(bad)]) == 2


# ------------------------------------------------------------------ benchmark
@pytest.mark.bench
def test_bench_mix_24h_20_buckets_10_types():
    """Target (issue 10): within 1% of the proven bound in under 10 s on 2 cores, build and solve
    together: the solve gets what the build left of the 10 s and stops once within 1%."""
    import time
    P = _bench_problem()
    t0 = time.perf_counter()
    mm = pm.build(P)
    tb = time.perf_counter() - t0
    plan = pm.solve(mm, "cost", time_limit_s=max(0.5, 10.0 - tb), gap_tolerance=0.01)
    total = time.perf_counter() - t0
    s = plan.solution
    print(f"\nmix bench: 24 h x 20 buckets x 10 types, {mm.model.n_vars} variables, {len(mm.model.constraints)} rows: "
          f"build {tb:.2f} s + solve {s.wall_s:.2f} s = {total:.2f} s, {s.status}, objective {s.objective:.2f} USD, "
          f"bound {s.bound:.2f}, gap {s.gap:.2%} ({s.solver.name})")
    assert plan.ok and not s.violations
    assert s.gap <= 0.01, f"gap {s.gap:.2%} above 1%"
    assert total < 10.0 + 1.0, f"build + solve took {total:.1f} s"       # 1 s for reading the answer back


def test_dominated_candidates_are_dropped_and_the_optimum_stays():
    """Same accelerator, tp and price: 'fp8' serves more of every bucket at no more power than
    'bf16', so bf16 is dominated; dropping it leaves the optimum unchanged."""
    a = _cand("x-bf16", [1.0, 0.5], 1.0, acc="X", busy=(200.0, 200.0), idle=50.0)
    b = _cand("x-fp8", [2.0, 1.0], 1.0, acc="X", busy=(200.0, 200.0), idle=50.0)
    c = _cand("y", [3.0, 0.0], 1.5, acc="Y")
    P = _problem([a, b, c])
    assert pm.dominated(P) == {"x-bf16": "x-fp8"}
    full = pm.solve(pm.build(P), "cost", time_limit_s=10)
    small = pm.solve(pm.build(_problem([b, c])), "cost", time_limit_s=10)
    assert full.figures["cost"] == pytest.approx(small.figures["cost"], abs=1e-6)


def test_a_hint_from_a_single_type_plan_is_feasible_in_the_mix():
    P = toy()
    sub = _problem([P.candidates[1]])
    single = pm.solve(pm.build(sub), "cost", time_limit_s=10)
    mm = pm.build(P)
    h = pm.hint_from(mm, single, sub)
    assert not [c for c in mm.model.constraints if c.violation(h, tol=1e-9) > 0]
    assert pm.solve(mm, "cost", time_limit_s=10, hint=h).figures["cost"] <= single.figures["cost"] + 1e-9
