"""Power tree layout, exact splitting of segments over telemetry bins, idle fill, overhead, roll-up."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from fleet.scenario import parse_scenario
from fleet.sim.power import Placement, bin_energy, build_tree, instant_power, rollup, split_segments, telemetry
from fleet.sim.result import POWER_COLUMNS, TREE_COLUMNS


def fleet_spec(**power):
    sc = parse_scenario({
        "name": "p",
        "fleet": {"pools": [
            {"name": "a", "accelerator": "H100-SXM", "gpus": 20, "gpus_per_server": 8, "servers_per_rack": 2,
             "row": "row0", "serve": [{"model": "llama-3.1-8b", "tp": 2}]},
            {"name": "b", "accelerator": "A100-80GB-SXM", "gpus": 8, "gpus_per_server": 4,
             "servers_per_rack": 1, "row": "row0", "server": {"static_w": 500.0, "per_gpu_w": 100.0},
             "serve": [{"model": "llama-3.1-8b", "tp": 1, "replicas": 6}]},
            {"name": "t", "accelerator": "H100-SXM", "gpus": 16, "role": "training", "row": "row1"},
        ], "power": power},
    }, check=False)
    return sc.sim_input()


def make_tree(**power):
    fl = fleet_spec(**power)
    tree = build_tree(fl.pools, fl.power, {"a": [Placement("a/r", 9, 2, idle_w=200.0)],   # 18 of 20 GPUs
                           "b": [Placement("b/r", 6, 1, idle_w=60.0)]},
                      tdp_w={"a": 700.0, "b": 400.0, "t": 700.0}, spare_idle_w={"a": 70.0, "b": 50.0})
    return tree


def test_tree_layout_and_budgets():
    tree = make_tree(site_budget_w=1e6, rows={"row0": 5e5}, rack_budget_w=4e4, racks={"row0/rack1": 3e4})
    df = tree.table
    assert list(df.columns)[:len(TREE_COLUMNS)] == list(TREE_COLUMNS)
    srv = df[df.level == "server"]
    # pool a: 20 GPUs in 3 servers (8, 8, 4), 2 per rack -> racks 0, 1; pool b starts rack 2
    a = srv[srv.pool == "a"]
    assert list(a.gpus) == [8, 8, 4]
    assert list(a.node) == ["row0/rack0/srv0", "row0/rack0/srv1", "row0/rack1/srv0"]
    b = srv[srv.pool == "b"]
    assert list(b.node) == ["row0/rack2/srv0", "row0/rack3/srv0"]
    t = srv[srv.pool == "t"]
    assert list(t.node) == ["row1/rack0/srv0", "row1/rack0/srv1"]
    racks = df[df.level == "rack"].set_index("node")
    assert racks.loc["row0/rack0", "budget_w"] == 4e4 and racks.loc["row0/rack1", "budget_w"] == 3e4
    rows = df[df.level == "row"].set_index("node")
    assert rows.loc["row0", "budget_w"] == 5e5 and math.isnan(rows.loc["row1", "budget_w"])
    assert rows.loc["row0", "pool"] == ""          # mixed row
    assert df[df.level == "site"].budget_w.iloc[0] == 1e6
    gpu = df[df.level == "gpu"].set_index("node")
    # replica a/r8 (GPUs 16-17) sits in the third server; two spare GPUs (18, 19) too
    assert gpu.loc["a/r8", "parent"] == "row0/rack1/srv0"
    assert gpu.loc["a/spare2", "gpus"] == 2
    assert gpu.loc["b/spare1", "gpus"] == 2
    assert gpu.loc["t/s1", "parent"] == "row1/rack0/srv1"
    assert df.gpus[df.level == "site"].iloc[0] == 44
    # every parent exists
    assert set(df.parent) - {""} <= set(df.node)


def test_split_exact_and_proportional():
    # one segment 0.5 .. 2.25 s of 7 J at 1 s bins: 2/7, 4/7, 1/7 of it (power 4 W)
    e, c = split_segments(np.array([0]), np.array([0.5]), np.array([2.25]), np.array([7.0]), 1, 1.0, 3)
    np.testing.assert_allclose(e[0], [2.0, 4.0, 1.0])
    np.testing.assert_allclose(c[0], [0.5, 1.0, 0.25])
    # ending exactly on an edge touches no further bin; zero-length goes to its bin
    e, c = split_segments(np.array([0, 0]), np.array([1.0, 2.0]), np.array([2.0, 2.0]),
                          np.array([3.0, 5.0]), 1, 1.0, 3)
    np.testing.assert_allclose(e[0], [0.0, 3.0, 5.0])


@settings(max_examples=40, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 3), st.floats(0, 50), st.floats(0, 30), st.floats(0, 1e4)),
                min_size=1, max_size=60),
       st.sampled_from([0.1, 1.0, 3.0, 7.5]))
def test_split_conserves_energy(segs, dt):
    node = np.array([s[0] for s in segs])
    t0 = np.array([s[1] for s in segs])
    t1 = t0 + np.array([s[2] for s in segs])
    e = np.array([s[3] for s in segs])
    n_bins = int(math.ceil(t1.max() / dt)) + 1
    out, cov = split_segments(node, t0, t1, e, 4, dt, n_bins)
    for k in range(4):
        assert out[k].sum() == pytest.approx(e[node == k].sum(), rel=1e-12, abs=1e-9)
        assert cov[k].sum() == pytest.approx((t1 - t0)[node == k].sum(), rel=1e-9, abs=1e-9)
    assert np.all(out >= -1e-9)


def test_site_energy_is_segments_plus_idle_plus_overhead():
    tree = make_tree()
    rng = np.random.default_rng(0)
    horizon, dt = 20.0, 1.0
    # replica a/r0 busy the whole time in back-to-back segments; a/r1 busy 2..5.5 s only;
    # training server t/s0 gets an explicit segment (no idle fill there)
    t = np.sort(rng.uniform(0, horizon, 30))
    t = np.concatenate([[0.0], t, [horizon]])
    seg_nodes = ["a/r0"] * (len(t) - 1) + ["a/r1", "t/s0"]
    t0 = np.concatenate([t[:-1], [2.0, 0.0]])
    t1 = np.concatenate([t[1:], [5.5, 20.0]])
    e = np.concatenate([(t1[:-2] - t0[:-2]) * 900.0, [3.5 * 1000.0, 20 * 8 * 300.0]])
    segs = {"node": np.array(seg_nodes), "t0": t0, "t1": t1, "energy_j": e}
    b = bin_energy(segs, tree, dt, horizon)
    # idle fill: a/r1 idles 16.5 s at 200 W; a/r2..a/r8 (7 replicas) and b's six 20 s each;
    # spares: a 2 GPUs x 70 W, b 2 GPUs x 50 W; t/s1 has no fill (NaN idle)
    idle = 16.5 * 200 + 7 * 20 * 200 + 6 * 20 * 60 + 20 * (2 * 70 + 2 * 50)
    gpu_total = e.sum() + idle
    assert b.gpu.sum() == pytest.approx(gpu_total, rel=1e-12)
    # overhead: static per server x horizon + per_gpu_w/TDP x GPU energy of its servers
    gpu_a = b.gpu[[i for i, g in enumerate(tree.gpu_nodes) if g.pool == "a"]].sum()
    gpu_b = b.gpu[[i for i, g in enumerate(tree.gpu_nodes) if g.pool == "b"]].sum()
    gpu_t = 20 * 8 * 300.0
    overhead = (3 * 1800 + 2 * 1800) * horizon + 2 * 500 * horizon \
        + 350 / 700 * (gpu_a + gpu_t) + 100 / 400 * gpu_b
    rolled = rollup(b, tree)
    site = rolled["site"][1].sum()
    assert site == pytest.approx(gpu_total + overhead, rel=1e-12)
    # every level sums to the site
    for level in ("server", "rack", "row", "pool"):
        assert rolled[level][1].sum() == pytest.approx(site, rel=1e-12)


def test_telemetry_frame_and_power_values():
    tree = make_tree()
    segs = {"node": np.array(["b/r0"]), "t0": np.array([0.0]), "t1": np.array([4.0]),
            "energy_j": np.array([4 * 250.0])}
    df = telemetry(segs, tree, 2.0, 6.0)
    assert list(df.columns) == list(POWER_COLUMNS)
    r0 = df[(df.level == "gpu") & (df.node == "b/r0")]
    np.testing.assert_allclose(r0.time_s, [0.0, 2.0, 4.0])
    np.testing.assert_allclose(r0.power_w, [250.0, 250.0, 60.0])   # then idle
    srv = df[(df.level == "server") & (df.node == "row0/rack2/srv0")]
    # b's first server: r0..r3; static 500 W + 100 W x sum(P/400 W)
    expect0 = 250 + 3 * 60 + 500 + 100 * (250 + 3 * 60) / 400
    assert srv.power_w.iloc[0] == pytest.approx(expect0)
    # energy = sum(power x interval) for every node
    site = df[df.level == "site"]
    assert (site.power_w * 2.0).sum() == pytest.approx(rollup(bin_energy(segs, tree, 2.0, 6.0), tree)["site"][1].sum())


def test_unknown_segment_node_is_a_bug():
    tree = make_tree()
    with pytest.raises(ValueError, match="not in the power tree"):
        bin_energy({"node": np.array(["zz/r0"]), "t0": np.array([0.0]), "t1": np.array([1.0]),
                    "energy_j": np.array([1.0])}, tree, 1.0, 2.0)


def test_instant_power_matches_a_one_bin_telemetry():
    tree = make_tree()
    now = {"a/r0": 900.0, "b/r1": 300.0, "t/s0": 8 * 500.0}
    live = instant_power(tree, now)
    segs = {"node": np.array(list(now)), "t0": np.zeros(3), "t1": np.ones(3), "energy_j": np.array(list(now.values()))}
    ref = rollup(bin_energy(segs, tree, 1.0, 1.0), tree)
    for level, (names, e) in ref.items():
        if level == "gpu":
            continue
        for n, v in zip(names, e[:, 0]):
            assert live[level][n] == pytest.approx(v, rel=1e-12), (level, n)
    assert live["gpu"]["a/r0"] == 900.0 and live["gpu"]["a/r1"] == 200.0
