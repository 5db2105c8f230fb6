"""`fleet sweep`: sweep files, designs, point identities, Dask against serial, resume, failures,
worker version checks, the sensitivity analysis and the report.

The Dask tests share one LocalCluster of 2 worker processes (module scope); points are small
scenarios (two minutes of Poisson traffic on 2 x H100, ~0.1 s each once warm) or trivial functions.
"""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from fleet.errors import FleetError, ScenarioError
from fleet.sweep import (
    METRIC_PREFIX,
    apply_point,
    design_points,
    load_sweep,
    pareto_front,
    parse_path,
    parse_sweep,
    read_results,
    run_sweep,
    set_path,
    sobol_estimates,
)

REPO = Path(__file__).resolve().parents[1]

BASE = {
    "name": "tiny", "seed": 3, "start_utc": "2023-06-01T10:00:00Z",
    "fleet": {"pools": [{"name": "h100", "accelerator": "H100-SXM", "gpus": 2, "gpus_per_server": 2,
                         "serve": [{"model": "llama-3.1-8b", "tp": 1, "max_batch": 64}]}],
              "power": {"site_budget_w": 2500}},
    "demand": {"inference": [{"model": "llama-3.1-8b", "synth": {"profile": "poisson", "rate": 2.0, "hours": 0.034},
                              "slo": {"ttft_s": 1.0, "tpot_s": 0.08}}]},
    "simulation": {"horizon_s": 120, "telemetry_interval_s": 10},
    "site": {"carbon_intensity": 300, "price": 80, "pue": 1.3},
}
METRICS = ["energy.it", "cost.total", "carbon.total", "slo.attainment", "latency.ttft_p99"]


def sweep_data(**over) -> dict:
    """8 points: power cap x GPU price x carbon intensity over the tiny base scenario."""
    d = {"kind": "sweep", "name": "t8", "base": copy.deepcopy(BASE),
         "parameters": [{"name": "cap", "path": "fleet.pools[0].power_cap_w", "values": [400, 700]},
                        {"name": "price", "path": "accounting.accelerators.H100-SXM.price_usd_per_gpu_hour",
                         "values": [2.0, 3.0]},
                        {"name": "ci", "path": "site.carbon_intensity", "values": [100, 400]}],
         "metrics": list(METRICS),
         "report": {"pareto": ["cost.total", "carbon.total"], "constraints": [{"metric": "slo.attainment", "min": 0.5}]}}
    d.update(over)
    return d


def write_sweep(tmp_path: Path, name: str = "sweep.yaml", **over) -> Path:
    p = tmp_path / name
    p.write_text(yaml.safe_dump(sweep_data(**over), sort_keys=False), encoding="utf-8")
    return p


def metrics_by_point(out: Path) -> pd.DataFrame:
    r = read_results(out)
    cols = ["point_id", "status", *[c for c in r.columns if c.startswith(METRIC_PREFIX) or c.startswith("param.")]]
    return r[cols].sort_values("point_id").reset_index(drop=True)


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0")
    c = distributed.Client(cluster)
    try:
        yield c
    finally:
        c.close()
        cluster.close()


# ------------------------------------------------------------------------------ paths and files
def test_scenario_paths():
    assert parse_path("fleet.pools[0].power_cap_w") == ["fleet", "pools", 0, "power_cap_w"]
    assert parse_path('demand.models["llama-3.1-8b"].x') == ["demand", "models", "llama-3.1-8b", "x"]
    d = copy.deepcopy(BASE)
    set_path(d, "fleet.pools[0].power_cap_w", 450)
    set_path(d, "accounting.accelerators.H100-SXM.price_usd_per_gpu_hour", 2.5)   # created on the way
    assert d["fleet"]["pools"][0]["power_cap_w"] == 450
    assert d["accounting"]["accelerators"]["H100-SXM"]["price_usd_per_gpu_hour"] == 2.5
    with pytest.raises(IndexError, match=r"fleet.pools\[3\]: the list has 1 entries"):
        set_path(d, "fleet.pools[3].gpus", 1)
    with pytest.raises(TypeError, match="expected a mapping"):
        set_path(d, "seed.x", 1)
    with pytest.raises(ValueError):
        parse_path("fleet..pools")
    # apply_point copies: the base is never changed
    a = apply_point(BASE, {"site.carbon_intensity": 1.0}, 9)
    assert a["seed"] == 9 and a["site"]["carbon_intensity"] == 1.0 and BASE["site"]["carbon_intensity"] == 300


@pytest.mark.parametrize("over, field, message", [
    ({"parameters": [{"path": "fleet.pools[5].gpus", "values": [1]}]}, "parameters[0].path", "does not fit"),
    ({"parameters": [{"path": "seed", "low": 1, "high": 2}]}, "parameters[0]", "a grid needs"),
    ({"design": {"method": "sobol", "samples": 6},
      "parameters": [{"path": "site.price", "low": 1, "high": 2}]}, "design.samples", "power of 2"),
    ({"design": {"method": "lhs"}}, "design.samples", "needs 'samples'"),
    ({"report": {"objective": "power.it_peak"}}, "report", "does not collect"),
    ({"parameters": [{"path": "seed", "values": [1], "low": 0, "high": 1}]}, "parameters[0]", "exactly one of"),
    ({"base": {**BASE, "fleet": {"pools": []}}}, None, "at least one pool"),
    ({"kind": "scenario"}, "kind", "expected one of"),
])
def test_bad_sweep_files_name_the_field(tmp_path, over, field, message):
    p = write_sweep(tmp_path, **over)
    with pytest.raises(ScenarioError, match=message) as ei:
        load_sweep(p)
    if field:
        assert ei.value.field == field
    assert str(p) in str(ei.value)


def test_the_example_sweep_file(repo_root):
    sw = load_sweep(repo_root / "scenarios" / "sweep_example.yaml")
    pts = design_points(sw)
    assert len({p.point_id for p in pts}) == len(pts) >= 8
    paths = {p.path for p in sw.parameters}
    assert {"site.region", "fleet.pools[0].power_cap_w"} <= paths
    assert any("price" in p for p in paths)


def test_grid_design_seeds_and_identity(tmp_path):
    sw = load_sweep(write_sweep(tmp_path, seeds=[1, 2]))
    pts = design_points(sw)
    assert len(pts) == 16 and len({p.point_id for p in pts}) == 16
    assert [p.seed for p in pts[:4]] == [1, 2, 1, 2]
    assert pts[0].params == {"fleet.pools[0].power_cap_w": 400, "accounting.accelerators.H100-SXM.price_usd_per_gpu_hour": 2.0,
                             "site.carbon_intensity": 100}
    # the identity is the applied content: the same sweep read again, or a base key order change, gives the same ids
    again = parse_sweep(yaml.safe_load(yaml.safe_dump(sweep_data(seeds=[1, 2]), sort_keys=True)), path=tmp_path / "x.yaml")
    assert [p.point_id for p in design_points(again)] == [p.point_id for p in pts]
    # and a changed base changes every identity
    d = sweep_data(seeds=[1, 2])
    d["base"]["simulation"]["horizon_s"] = 121
    assert not {p.point_id for p in design_points(parse_sweep(d, path=tmp_path / "x.yaml"))} & {p.point_id for p in pts}


def test_sampled_designs_are_seeded_and_in_range(tmp_path):
    params = [{"path": "site.price", "low": 10.0, "high": 100.0},
              {"path": "fleet.pools[0].power_cap_w", "low": 300, "high": 700, "integer": True},
              {"path": "site.carbon_intensity", "values": [100, 200, 300]}]
    for method, n, rows in (("random", 20, 20), ("lhs", 16, 16), ("sobol", 8, 8 * 5)):
        d = sweep_data(parameters=params, design={"method": method, "samples": n, "seed": 4})
        pts = design_points(parse_sweep(d, path=tmp_path / "s.yaml"))
        assert len(pts) == rows
        assert [p.point_id for p in pts] == [p.point_id for p in design_points(parse_sweep(d, path=tmp_path / "s.yaml"))]
        price = np.array([p.params["site.price"] for p in pts])
        assert price.min() >= 10 and price.max() <= 100
        assert all(isinstance(p.params["fleet.pools[0].power_cap_w"], int) for p in pts)
        assert {p.params["site.carbon_intensity"] for p in pts} <= {100, 200, 300}
    # LHS: exactly one sample in each of the n strata of each continuous parameter
    d = sweep_data(parameters=params, design={"method": "lhs", "samples": 16, "seed": 4})
    u = (np.array([p.params["site.price"] for p in design_points(parse_sweep(d, path=tmp_path / "s.yaml"))]) - 10) / 90
    assert sorted(np.floor(u * 16).astype(int)) == list(range(16))


# ------------------------------------------------------------------------------ running
def test_dask_gives_the_same_metrics_as_serial(tmp_path, client):
    """8 real scenario points on 2 worker processes and in this process: identical Parquet metrics."""
    p = write_sweep(tmp_path)
    a = run_sweep(p, tmp_path / "serial", workers=0, quiet=True, report=False)
    b = run_sweep(p, tmp_path / "dask", client=client, quiet=True, report=False, batch_size=1)
    assert a.points == b.points == 8 and a.counts["ok"] == b.counts["ok"] == 8
    ra, rb = metrics_by_point(tmp_path / "serial"), metrics_by_point(tmp_path / "dask")
    pd.testing.assert_frame_equal(ra, rb, check_exact=True)
    assert len(list((tmp_path / "dask" / "results").glob("part-*.parquet"))) == 8   # one file per batch
    workers = set(read_results(tmp_path / "dask")["worker"])
    assert workers <= set(client.nthreads()) and read_results(tmp_path / "serial")["worker"].eq("local").all()
    # the metrics move the way the inputs say: price -> cost only, carbon intensity -> carbon only
    r = read_results(tmp_path / "serial")
    g = r.groupby("param.price")["metric.cost.total"].mean()
    assert g[3.0] > g[2.0]
    assert r.groupby("param.price")["metric.energy.it"].nunique().eq(2).all()     # energy: the cap alone
    c = r.groupby("param.ci")["metric.carbon.total"].mean()
    assert c[400] > 3 * c[100]


def _trivial(log_file: str | None = None):
    def fn(data, base_path):
        if log_file:
            with open(log_file, "a", encoding="utf-8") as f:
                f.write(f"{data['site']['carbon_intensity']}:{data['seed']}\n")
        x = float(data["site"]["carbon_intensity"])
        return {"energy.it": (x, "J"), "cost.total": (2 * x, "USD"), "carbon.total": (x + data["seed"], "gCO2e"),
                "slo.attainment": (1.0, "1"), "latency.ttft_p99": (0.1, "s")}
    return fn


def test_interrupted_sweep_resumes_only_the_missing_points(tmp_path, client):
    """Stopped after 3 finished batches (in flight batches are lost), then resumed: every point is
    recorded exactly once, and no recorded point runs again."""
    vals = list(range(100, 124))                       # 24 points
    p = write_sweep(tmp_path, parameters=[{"path": "site.carbon_intensity", "values": vals}])
    log1, log2 = tmp_path / "run1.log", tmp_path / "run2.log"

    class Stop(KeyboardInterrupt):
        pass

    def stop_after_3(k, rows):
        if k == 3:
            raise Stop

    with pytest.raises(Stop):
        run_sweep(p, tmp_path / "out", client=client, quiet=True, report=False, batch_size=2,
                  point_fn=_trivial(str(log1)), on_batch=stop_after_3)
    first = read_results(tmp_path / "out")
    assert len(first) == 6 and first["point_id"].is_unique
    with pytest.raises(FleetError, match="--resume"):
        run_sweep(p, tmp_path / "out", workers=0, quiet=True, report=False, point_fn=_trivial())
    o = run_sweep(p, tmp_path / "out", client=client, quiet=True, report=False, batch_size=2, resume=True,
                  point_fn=_trivial(str(log2)))
    assert o.already_done == 6 and len(o.executed) == 18 and o.complete
    allr = read_results(tmp_path / "out")
    assert len(allr) == 24 and allr["point_id"].is_unique
    assert not set(o.executed) & set(first["point_id"])
    ran_again = {int(line.split(":")[0]) for line in log2.read_text().split()}
    assert ran_again == set(vals) - set(first["param.site.carbon_intensity"].astype(int))
    # a second resume has nothing to do
    o2 = run_sweep(p, tmp_path / "out", workers=0, quiet=True, report=False, resume=True, point_fn=_trivial())
    assert o2.executed == [] and o2.already_done == 24
    # a resume with a changed design (some points dropped, two new ones) runs only the new ones and
    # counts only the points of the design
    p = write_sweep(tmp_path, parameters=[{"path": "site.carbon_intensity", "values": vals[:10] + [500, 501]}])
    o3 = run_sweep(p, tmp_path / "out", workers=0, quiet=True, report=False, resume=True, point_fn=_trivial())
    assert o3.already_done == 10 and len(o3.executed) == 2 and o3.complete and sum(o3.counts.values()) == 12


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("FLEET_SLOW_TESTS"), reason="two cold `fleet sweep` processes (~10 s); "
                    "set FLEET_SLOW_TESTS=1 (the interrupted-sweep test above covers the logic)")
def test_killed_cli_sweep_resumes(tmp_path):
    """A real kill: `fleet sweep` (serial) is SIGKILLed after its first results, then resumed."""
    vals = [round(100 + 10 * k, 1) for k in range(12)]
    p = write_sweep(tmp_path, parameters=[{"path": "site.carbon_intensity", "values": vals}], batch_size=1)
    out = tmp_path / "out"
    env = {**os.environ, "PYTHONPATH": str(REPO), "CI": "true"}
    cmd = [sys.executable, "-m", "fleet", "-q", "sweep", str(p), "-o", str(out), "--workers", "0", "--no-report"]
    proc = subprocess.Popen(cmd, env=env, cwd=REPO, start_new_session=True, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    t0 = time.monotonic()
    try:
        while len(list((out / "results").glob("part-*.parquet"))) < 2 and proc.poll() is None:
            assert time.monotonic() - t0 < 120, "the sweep wrote no results"
            time.sleep(0.02)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
    done = read_results(out)
    assert 2 <= len(done) <= 12 and done["point_id"].is_unique
    if len(done) == 12:
        pytest.skip("the sweep finished before it could be killed")
    r = subprocess.run(cmd + ["--resume", "--json"], env=env, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    import json
    js = json.loads(r.stdout)
    assert js["already_done"] == len(done) and js["run_now"] == 12 - len(done) and js["complete"]
    allr = read_results(out)
    assert len(allr) == 12 and allr["point_id"].is_unique and allr["status"].eq("ok").all()


def test_failing_points_are_recorded_and_the_sweep_goes_on(tmp_path):
    def fn(data, base_path):
        x = data["site"]["carbon_intensity"]
        if x == 200:
            raise RuntimeError("boom at 200")
        if x == 300:
            return {"energy.it": (1.0, "J")}                # a requested metric is missing
        return _trivial()(data, base_path)

    p = write_sweep(tmp_path, parameters=[{"path": "site.carbon_intensity", "values": [100, 200, 300]}])
    o = run_sweep(p, tmp_path / "out", workers=0, quiet=True, report=False, point_fn=fn)
    r = read_results(tmp_path / "out").set_index("param.site.carbon_intensity")
    assert o.counts == {"ok": 1, "invalid": 0, "error": 2} and o.complete
    assert r.loc[100, "status"] == "ok" and pd.isna(r.loc[100, "error"])
    assert r.loc[200, "status"] == "error" and r.loc[200, "error"] == "RuntimeError: boom at 200"
    assert r.loc[300, "status"] == "error" and "no such metric: cost.total" in r.loc[300, "error"]


def test_invalid_point_with_the_real_runner(tmp_path):
    p = write_sweep(tmp_path, parameters=[{"path": "fleet.pools[0].gpus", "values": [2, -2]}])
    o = run_sweep(p, tmp_path / "out", workers=0, quiet=True, report=False)
    r = read_results(tmp_path / "out").set_index("param.fleet.pools[0].gpus")
    assert o.counts["ok"] == 1 and o.counts["invalid"] == 1
    assert "fleet.pools[0].gpus" in r.loc[-2, "error"] and "positive" in r.loc[-2, "error"]
    assert np.isnan(r.loc[-2, "metric.energy.it"]) and r.loc[2, "metric.energy.it"] > 0


def test_wrong_fleet_on_a_worker_is_refused(tmp_path, client):
    p = write_sweep(tmp_path)
    worker = sorted(client.nthreads())[0]

    def set_version(v):
        import fleet
        old = fleet.__version__
        fleet.__version__ = v
        return old

    old = client.run(set_version, "0.0.0-other", workers=[worker])[worker]
    try:
        with pytest.raises(FleetError, match=rf"{worker}: fleet 0.0.0-other .*but this process runs fleet {old}"):
            run_sweep(p, tmp_path / "a", client=client, quiet=True, report=False, point_fn=_trivial())
    finally:
        client.run(set_version, old, workers=[worker])

    def hide_fleet(hide):
        import sys
        if hide:
            sys._fleet_hidden = {k: sys.modules.pop(k) for k in list(sys.modules) if k == "fleet" or k.startswith("fleet.")}
            sys.modules["fleet"] = None
        else:
            sys.modules.pop("fleet", None)
            sys.modules.update(sys._fleet_hidden)

    client.run(hide_fleet, True, workers=[worker])
    try:
        with pytest.raises(FleetError, match=rf"{worker}: cannot import fleet"):
            run_sweep(p, tmp_path / "b", client=client, quiet=True, report=False, point_fn=_trivial())
    finally:
        client.run(hide_fleet, False, workers=[worker])
    # restored: the same cluster is accepted again, here through its address (--scheduler)
    o = run_sweep(p, tmp_path / "c", scheduler=client.scheduler.address, quiet=True, report=False,
                  point_fn=_trivial())
    assert o.counts["ok"] == 8 and o.workers == 2


# ------------------------------------------------------------------------------ analysis and report
def test_sobol_estimators_on_a_known_function():
    """Y = 2 X1 + X2 + 0 X3 with X uniform: S_i = ST_i = a_i^2 / sum a^2 = 0.8, 0.2, 0."""
    from scipy.stats import qmc

    d = 3
    ab = qmc.Sobol(d=2 * d, scramble=True, seed=1).random_base2(10)
    a, b = ab[:, :d], ab[:, d:]
    def f(x):
        return 2 * x[:, 0] + x[:, 1]
    f_ab = np.column_stack([f(np.where(np.arange(d) == i, b, a)) for i in range(d)])
    est = sobol_estimates(f(a), f(b), f_ab, n_boot=300, seed=0)
    np.testing.assert_allclose(est["S1"], [0.8, 0.2, 0.0], atol=0.03)
    np.testing.assert_allclose(est["ST"], [0.8, 0.2, 0.0], atol=0.03)
    assert np.all(est["S1_lo"] <= est["S1"] + 1e-12) and np.all(est["S1_hi"] >= est["S1"] - 1e-12)
    assert est["ST_lo"][0] < 0.8 < est["ST_hi"][0] and est["ST_hi"][2] < 1e-9 + 0.01
    # a constant output has no variance to share out
    assert np.isnan(sobol_estimates(np.ones(8), np.ones(8), np.ones((8, 2)), n_boot=10)["S1"]).all()


def test_sobol_sweep_end_to_end_and_report(tmp_path):
    """A Sobol design through run_sweep (trivial points: carbon = intensity + 0.1 price): the
    indices put (almost) everything on the intensity; the report has every page."""
    def fn(data, base_path):
        ci, price = float(data["site"]["carbon_intensity"]), float(data["site"]["price"])
        return {"energy.it": (1.0, "J"), "cost.total": (price, "USD"), "carbon.total": (ci + 0.1 * price, "gCO2e"),
                "slo.attainment": (1.0 if ci < 350 else 0.0, "1"), "latency.ttft_p99": (0.1, "s")}

    p = write_sweep(tmp_path, parameters=[{"name": "ci", "path": "site.carbon_intensity", "low": 100, "high": 500},
                                          {"name": "price", "path": "site.price", "low": 20, "high": 120}],
                    design={"method": "sobol", "samples": 64, "seed": 2},
                    metrics=["carbon.total", "cost.total", "slo.attainment"],
                    report={"pareto": ["cost.total", "carbon.total"], "objective": "carbon.total",
                            "constraints": [{"metric": "slo.attainment", "min": 0.5}], "best": 3, "dpi": 50})
    o = run_sweep(p, tmp_path / "out", workers=0, quiet=True, point_fn=fn)
    assert o.points == 64 * 4 and o.counts["ok"] == 256
    s = pd.read_csv(tmp_path / "out" / "sobol.csv").set_index(["metric", "parameter"])
    assert s.loc[("carbon.total", "ci"), "S1"] == pytest.approx(1.0, abs=0.05)
    assert s.loc[("carbon.total", "price"), "ST"] == pytest.approx(0.0006, abs=0.01)
    assert s.loc[("cost.total", "price"), "S1"] == pytest.approx(1.0, abs=0.05)
    best = pd.read_csv(tmp_path / "out" / "best_points.csv")
    assert list(best["rank"]) == [1, 2, 3] and best["metric.carbon.total"].is_monotonic_increasing
    assert (best["metric.slo.attainment"] >= 0.5).all()
    files = set(o.report_files)
    assert {"report.pdf", "figures/overview.png", "figures/tornado_carbon.total.png", "figures/sobol_carbon.total.png",
            "figures/pareto.png", "figures/best_points.png", "sensitivity.csv", "sobol.csv", "pareto.csv"} <= files
    assert (tmp_path / "out" / "report.pdf").read_bytes()[:4] == b"%PDF"
    t = pd.read_csv(tmp_path / "out" / "sensitivity.csv")
    top = t[t["metric"] == "carbon.total"].iloc[0]
    assert top["parameter"] == "ci" and top["swing"] > 100


def test_pareto_front_by_hand():
    x = np.array([1.0, 2.0, 3.0, 2.0, 4.0, np.nan])
    y = np.array([5.0, 3.0, 1.0, 4.0, 0.5, 0.0])
    assert list(pareto_front(x, y)) == [0, 1, 2, 4]
    assert list(pareto_front(x, y, maximize_y=True)) == [0]
    assert list(pareto_front(x, y, maximize_x=True, maximize_y=True)) == [4, 2, 3, 0]


def test_report_does_not_touch_pyplot(tmp_path):
    """The report draws on Figure objects: no pyplot figure is opened (a user's backend stays)."""
    import matplotlib.pyplot as plt

    before = plt.get_fignums()
    p = write_sweep(tmp_path, parameters=[{"path": "site.carbon_intensity", "values": [100, 200, 300]}],
                    metrics=["energy.it", "cost.total"], report={"png": False})
    o = run_sweep(p, tmp_path / "out", workers=0, quiet=True, point_fn=_trivial())
    assert o.report_files[-1] == "report.pdf" and plt.get_fignums() == before


def test_cli(tmp_path, capsys):
    from fleet.cli import main

    p = write_sweep(tmp_path, parameters=[{"path": "fleet.pools[0].power_cap_w", "values": [400, -1]}])
    assert main(["-q", "sweep", str(p), "-o", str(tmp_path / "o"), "--workers", "0", "--no-report"]) == 0
    out = capsys.readouterr().out
    assert "t8: 2 points (0 already done, 2 run now" in out and "ok 1, invalid 1, error 0" in out
    assert "invalid: " in out and "power_cap_w" in out
    assert main(["-q", "sweep", str(p), "-o", str(tmp_path / "o"), "--workers", "0"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["-q", "sweep", str(p), "-o", str(tmp_path / "o"), "--workers", "0", "--resume", "--no-report"]) == 0
    assert "2 already done, 0 run now" in capsys.readouterr().out
    assert main(["-q", "sweep", str(tmp_path / "nope.yaml"), "-o", str(tmp_path / "x")]) == 2
    assert main(["-q", "sweep", str(p), "-o", str(tmp_path / "y"), "--workers", "2", "--scheduler", "tcp://x:1"]) == 2


def test_sobol_indices_average_replications_and_drop_failed_rows(tmp_path):
    from fleet.sweep import sobol_indices

    d = sweep_data(parameters=[{"name": "ci", "path": "site.carbon_intensity", "low": 100, "high": 500},
                               {"name": "price", "path": "site.price", "low": 20, "high": 120}],
                   design={"method": "sobol", "samples": 32, "seed": 1}, seeds=[1, 2])
    sw = parse_sweep(d, path=tmp_path / "s.yaml")
    pts = design_points(sw)
    assert len(pts) == 32 * 4 * 2
    design = pd.DataFrame({"point_id": [p.point_id for p in pts], "sobol_role": [p.sobol[0] for p in pts],
                           "sobol_row": [p.sobol[1] for p in pts]})
    uniq = {p.point_id: p for p in pts}
    res = pd.DataFrame({"point_id": list(uniq), "status": "ok"})
    # carbon: the intensity plus seed noise that the average over the two seeds cancels exactly
    res["metric.carbon.total"] = [p.params["site.carbon_intensity"] + (50.0 if p.seed == 1 else -50.0)
                                  for p in uniq.values()]
    for m in METRICS:
        if METRIC_PREFIX + m not in res:
            res[METRIC_PREFIX + m] = 1.0
    s = sobol_indices(sw, design, res, n_boot=50).set_index(["metric", "parameter"])
    assert s.loc[("carbon.total", "ci"), "S1"] == pytest.approx(1.0, abs=0.05)
    assert s.loc[("carbon.total", "price"), "ST"] == pytest.approx(0.0, abs=1e-12)
    assert s.loc[("carbon.total", "ci"), "n"] == 32
    # one failed point (one seed of one AB row) takes its base row out of the estimate
    res.loc[res["point_id"] == pts[3].point_id, "status"] = "error"
    s = sobol_indices(sw, design, res, n_boot=50).set_index(["metric", "parameter"])
    assert s.loc[("carbon.total", "ci"), "n"] == 31
