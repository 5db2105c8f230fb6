"""Testing helpers for users of ``fleet`` (and for fleet's own tests).

* A pytest plugin: put your own scenarios with ``expectations`` into your test suite::

      # conftest.py
      pytest_plugins = ["fleet.testing"]

      # test_my_fleet.py
      def test_my_fleet(fleet_check):
          fleet_check("scenarios/my_fleet.yaml")      # fails listing every metric out of tolerance

  (``fleet`` also registers this plugin through the ``pytest11`` entry point when installed,
  so the ``fleet_check`` fixture is available without the conftest line.)

* :func:`synthetic_result`: a small, internally consistent :class:`~fleet.sim.result.SimResult`
  (power tree, telemetry at every level, requests, pools, training jobs) made from a seed, for
  testing accounting and reports without running a simulation.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from .sim.result import SimResult

try:  # the plugin part needs pytest; the synthetic result does not
    import pytest
except ImportError:  # pragma: no cover
    pytest = None  # type: ignore[assignment]


# ------------------------------------------------------------------------------- pytest plugin
if pytest is not None:

    @pytest.fixture
    def fleet_check(tmp_path) -> Callable[..., object]:
        """Run a scenario and assert its expectations: ``fleet_check(path, report=False)``.

        Fails the test with the list of metrics outside their tolerance (expected vs actual).
        Returns the :class:`fleet.regress.CheckResult` when everything passes.
        """
        from .regress import check_scenario

        def _check(path: str | Path, report: bool = False):
            res = check_scenario(Path(path), report_dir=tmp_path / "reports" if report else None)
            if not res.ok:
                pytest.fail(res.describe(), pytrace=False)
            return res

        return _check


# ------------------------------------------------------------------------------- synthetic result
def synthetic_result(seed: int = 0, horizon_s: float = 7200.0, interval_s: float = 60.0,
                     start_utc: str = "2023-06-01T10:30:00+00:00", training: bool = True,
                     requests_per_pool: int = 400, site_budget_w: float = 60_000.0,
                     serving: bool = True) -> SimResult:
    """A small fleet: pool ``h100`` (2 servers x 8 GPUs) serving model ``m8b``, pool ``a100``
    (2 servers x 8) serving ``m8b`` and ``m70b``, and (``training``) pool ``train`` (1 server x 8)
    running one job.  Two rows, one rack each; power follows a smooth load with noise.
    Energies in the pools table equal the integrals of the telemetry exactly."""
    rng = np.random.default_rng(seed)
    n = int(round(horizon_s / interval_s))
    t = np.arange(n) * interval_s
    pool_defs = [("h100", "serving", "H100-SXM", "m8b", 2, 700.0, 70.0, 0),
                 ("a100", "serving", "A100-SXM4-80GB", "m8b;m70b", 2, 400.0, 50.0, 1)]
    if not serving:
        pool_defs = []
    if training:
        pool_defs.append(("train", "training", "H100-SXM", "m8b", 1, 700.0, 70.0, 1))
    tree_rows = [{"node": "site", "level": "site", "parent": "", "pool": "", "budget_w": site_budget_w}]
    for r in (0, 1):
        tree_rows.append({"node": f"row{r}", "level": "row", "parent": "site", "pool": "",
                          "budget_w": site_budget_w * 0.55})
        tree_rows.append({"node": f"row{r}/rack0", "level": "rack", "parent": f"row{r}", "pool": "",
                          "budget_w": site_budget_w * 0.5})
    power_rows: list[pd.DataFrame] = []

    def rec(level: str, node: str, p: np.ndarray) -> None:
        power_rows.append(pd.DataFrame({"time_s": t, "level": level, "node": node, "power_w": p}))

    row_p = {0: np.zeros(n), 1: np.zeros(n)}
    pools, req_tables, jobs = [], [], []
    srv_idx = {0: 0, 1: 0}
    for name, role, acc, models, n_srv, tdp, idle, row in pool_defs:
        load = 0.55 + 0.35 * np.sin(2 * np.pi * t / max(horizon_s, 1.0)) ** 2
        pool_gpu = np.zeros(n)
        pool_srv_overhead = np.zeros(n)
        for i in range(n_srv):
            util = np.clip(load + rng.normal(0, 0.05, n), 0.0, 1.0)
            if role == "training":
                util = np.where((t // 600) % 10 == 9, 0.3, 0.95)   # checkpoint dips
            gpu = 8 * (idle + (tdp - idle) * util)
            ovh = 600.0 + 0.1 * gpu
            node = f"row{row}/rack0/srv{srv_idx[row]}"
            srv_idx[row] += 1
            tree_rows.append({"node": node, "level": "server", "parent": f"row{row}/rack0",
                              "pool": name, "budget_w": np.nan})
            rec("gpu", f"{name}/r{i}", gpu)
            rec("server", node, gpu + ovh)
            pool_gpu += gpu
            pool_srv_overhead += ovh
            row_p[row] += gpu + ovh
        rec("pool", name, pool_gpu + pool_srv_overhead)
        gpu_e = float(pool_gpu.sum() * interval_s)
        ovh_e = float(pool_srv_overhead.sum() * interval_s)
        in_tok = out_tok = done = 0
        if role == "serving":
            m = models.split(";")
            k = requests_per_pool
            arr = np.sort(rng.uniform(0, horizon_s * 0.98, k))
            it = rng.integers(50, 2000, k)
            ot = rng.integers(1, 600, k)
            ttft = rng.lognormal(np.log(0.3), 0.6, k)
            tpot = np.where(ot > 1, rng.lognormal(np.log(0.03), 0.3, k), np.nan)
            e2e = ttft + np.nan_to_num(tpot) * (ot - 1)
            status = np.where(rng.uniform(size=k) < 0.02, "dropped", "completed")
            status = np.where((status == "completed") & (arr + e2e > horizon_s), "running", status)
            comp = status == "completed"
            w = (it + 4 * ot).astype(float) * comp
            energy = w / w.sum() * gpu_e * 0.8 if w.sum() > 0 else np.zeros(k)
            req_tables.append(pd.DataFrame({
                "request_id": np.arange(k, dtype=np.int64), "model": rng.choice(m, k),
                "pool": np.where(status == "dropped", "", name),
                "replica": np.where(status == "dropped", -1, rng.integers(0, n_srv, k)),
                "status": status, "arrival_s": arr,
                "admit_s": np.where(status == "dropped", np.nan, arr + 0.05),
                "first_token_s": np.where(status == "dropped", np.nan, arr + ttft),
                "completion_s": np.where(comp, arr + e2e, np.nan),
                "input_tokens": it.astype(np.int64), "output_tokens": ot.astype(np.int64),
                "ttft_s": np.where(status == "dropped", np.nan, ttft),
                "tpot_s": np.where(comp, tpot, np.nan), "e2e_s": np.where(comp, e2e, np.nan),
                "preemptions": np.zeros(k, dtype=np.int64), "energy_j": energy}))
            in_tok, out_tok, done = int(it[comp].sum()), int(ot[comp].sum()), int(comp.sum())
        else:
            jobs.append({"job_id": 0, "pool": name, "gpus": 8 * n_srv, "status": "running",
                         "submit_s": 0.0, "start_s": 0.0, "end_s": np.nan, "steps": int(n * 10),
                         "energy_j": gpu_e, "restarts": 0})
        pools.append({"pool": name, "role": role, "accelerator": acc, "models": models,
                      "gpus": 8 * n_srv, "servers": n_srv, "replicas": n_srv, "tp": 8,
                      "power_cap_w": np.nan, "gpu_energy_j": gpu_e, "server_overhead_energy_j": ovh_e,
                      "it_energy_j": gpu_e + ovh_e, "input_tokens": in_tok, "output_tokens": out_tok,
                      "requests_completed": done, "busy_fraction": float(load.mean()),
                      "mean_batch": 24.0 if role == "serving" else np.nan})
    for r in (0, 1):
        rec("rack", f"row{r}/rack0", row_p[r])
        rec("row", f"row{r}", row_p[r])
    rec("site", "site", row_p[0] + row_p[1])
    from .sim.result import REQUEST_COLUMNS
    requests = pd.concat(req_tables, ignore_index=True) if req_tables else pd.DataFrame(columns=list(REQUEST_COLUMNS))
    if len(requests):
        requests = requests.sort_values("arrival_s", kind="stable").reset_index(drop=True)
        requests["request_id"] = np.arange(len(requests), dtype=np.int64)
    job_cols = ["job_id", "pool", "gpus", "status", "submit_s", "start_s", "end_s", "steps",
                "energy_j", "restarts"]
    return SimResult(
        requests=requests,
        power=pd.concat(power_rows, ignore_index=True),
        tree=pd.DataFrame(tree_rows),
        pools=pd.DataFrame(pools),
        jobs=pd.DataFrame(jobs, columns=job_cols),
        meta={"scenario": "synthetic", "seed": seed, "horizon_s": horizon_s,
              "telemetry_interval_s": interval_s, "start_utc": start_utc, "mode": "synthetic"},
    )


def synthetic_run_result(seed: int = 0, **kw):
    """A :class:`~fleet.report.data.RunResult` around :func:`synthetic_result`, with constant grid
    signals, an SLO per model and plausible energy-model tables (for report tests)."""
    from .accounting import SLO, AcceleratorFacts, AccountingInputs, SignalInput, account
    from .report.data import PoolAnalysis, RunResult

    sim = synthetic_result(seed=seed, **kw)
    hours = pd.date_range("2023-06-01T00:00Z", periods=72, freq="h")
    ci = pd.Series(250 + 120 * np.sin(np.arange(72) * 2 * np.pi / 24), index=hours)
    price = pd.Series(60 + 30 * np.cos(np.arange(72) * 2 * np.pi / 24), index=hours)
    slo = {"m8b": SLO(ttft_s=0.5, tpot_s=0.04), "m70b": SLO(ttft_s=1.0, tpot_s=0.06)}
    inputs = AccountingInputs(
        carbon_intensity=SignalInput(ci, "gCO2e/kWh", "synthetic diurnal intensity"),
        price=SignalInput(price, "USD/MWh", "synthetic diurnal price"),
        pue=SignalInput(1.2, "1", "constant 1.2"),
        accelerators={"H100-SXM": AcceleratorFacts("H100-SXM", 30.3, "test", 25000, 3.0, "test"),
                      "A100-SXM4-80GB": AcceleratorFacts("A100-SXM4-80GB", 26.3, "test", 12000, 1.6, "test")},
        slo=slo)
    acc = account(sim, inputs)
    br, lb, fr = [], [], []
    for p in acc.pools.itertuples():
        if p.role != "serving":
            continue
        tot = p.gpu_energy_j / max(p.output_tokens, 1)
        for m in p.models.split(";"):
            br.append({"pool": p.pool, "model": m, "accelerator": p.accelerator, "batch": 24,
                       "power_cap_w": 700.0, "compute_j": 0.3 * tot, "memory_j": 0.4 * tot,
                       "interconnect_j": 0.05 * tot, "static_j": 0.2 * tot, "model_j": 0.95 * tot,
                       "simulated_gpu_j": tot})
            lb.append({"pool": p.pool, "model": m, "lower_bound_j": tot * 1e-4, "method": "synthetic"})
            tdp = 700.0 if p.accelerator.startswith("H100") else 400.0
            for f in (0.5, 0.6, 0.7, 0.8, 0.9, 1.0):
                fr.append({"pool": p.pool, "model": m, "power_cap_w": f * tdp, "cap_fraction": f,
                           "itl_s": 0.02 / f ** 0.5, "j_per_token": tot * (0.8 + 0.3 * (f - 0.6) ** 2),
                           "tokens_per_s": 24 / (0.02 / f ** 0.5), "current": f == 1.0})
    analysis = PoolAnalysis(pd.DataFrame(br), pd.DataFrame(lb), pd.DataFrame(fr), ["synthetic tables"])
    return RunResult(name="synthetic", title="Synthetic fleet (test)", scenario_hash="0" * 16, seed=seed,
                     sim=sim, accounts=acc, analysis=analysis,
                     slo={k: {"ttft_s": v.ttft_s, "tpot_s": v.tpot_s, "e2e_s": None} for k, v in slo.items()},
                     meta={"version": "test", "git_commit": None, "start_utc": sim.meta["start_utc"],
                           "horizon_s": sim.meta["horizon_s"], "carbon_signal": "average",
                           "data_sources": ["synthetic"]})
