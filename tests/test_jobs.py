"""Training jobs: the generator reproduces the AcmeTrace cluster statistics it is calibrated to.

Tolerances (1,000,000 jobs, fixed seeds): mean GPUs 3 %, median GPUs exact, max GPUs exact,
mean run time 5 % (lognormal sigma ~2.2: the sample mean's standard error is about 1 %), median
run time 2 %, failure share 0.5 percentage points, GPU time per job 12 % (a product of two heavy
tails: standard error about 3 %), arrival rate 1 %.  The closed-form fit itself is checked to
1e-6."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.errors import FleetError, TraceError
from fleet.workload.jobs import (ACME_CLUSTERS, JOB_COLUMNS, _capped_lognormal_mean, _expected_gpu_time,
                                 fit_job_model, generate_jobs, load_cluster_summary, read_jobs,
                                 validate_jobs, write_jobs)


def test_embedded_targets_equal_the_published_file(shared_data):
    loaded = load_cluster_summary(shared_data / "acmetrace-power-distributions" / "cluster_summary.csv")
    for key, stats in ACME_CLUSTERS.items():
        assert loaded[key] == stats


@pytest.mark.parametrize("cluster", ["seren", "kalos"])
def test_fit_matches_targets_in_closed_form(cluster):
    st = ACME_CLUSTERS[cluster]
    m = fit_job_model(st)
    g, p = np.array(m.gpu_values), np.array(m.gpu_probs)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert (g * p).sum() == pytest.approx(st.avg_gpus, rel=1e-6)
    assert p[0] >= 0.5 and g.max() == st.max_gpus                      # median 1 GPU, max
    assert math.exp(m.runtime_mu) == pytest.approx(st.med_run_time_s, rel=1e-12)
    assert _capped_lognormal_mean(m.runtime_mu, m.runtime_sigma, st.max_run_time_s) == \
        pytest.approx(st.avg_run_time_s, rel=1e-6)
    assert not m.rho_capped and 0 < m.rho < 1
    assert _expected_gpu_time(g, p, m.runtime_mu, m.runtime_sigma, m.rho) == \
        pytest.approx(st.gpu_time_per_job_s, rel=1e-6)


@pytest.mark.parametrize("cluster", ["seren", "kalos"])
def test_generated_statistics_match_the_cluster(cluster):
    st = ACME_CLUSTERS[cluster]
    df = generate_jobs(n=1_000_000, cluster=cluster, seed=1)
    g = df["gpus"].to_numpy()
    d = df["duration_s"].to_numpy()
    assert g.mean() == pytest.approx(st.avg_gpus, rel=0.03)
    assert np.median(g) == st.med_gpus
    assert g.max() == st.max_gpus
    assert d.mean() == pytest.approx(st.avg_run_time_s, rel=0.05)
    assert np.median(d) == pytest.approx(st.med_run_time_s, rel=0.02)
    assert d.max() <= st.max_run_time_s
    assert df["fail_at_s"].notna().mean() == pytest.approx(st.fail_rate, abs=0.005)
    assert (g * d).mean() == pytest.approx(st.gpu_time_per_job_s, rel=0.12)
    assert len(df) / df["submit_s"].iloc[-1] == pytest.approx(st.rate_per_s, rel=0.01)


def test_job_table_invariants_and_determinism():
    a = generate_jobs(n=2000, horizon_s=7 * 86400, seed=3, deferrable_frac=0.4, max_gpus=64,
                      model="llama-3.1-8b")
    validate_jobs(a)
    assert list(a.columns) == list(JOB_COLUMNS)
    assert len(a) == 2000 and a["submit_s"].max() < 7 * 86400
    assert a["gpus"].max() <= 64 and (a["model"] == "llama-3.1-8b").all()
    assert a["deferrable"].mean() == pytest.approx(0.4, abs=0.05)
    f = a["fail_at_s"].notna()
    assert (a.loc[f, "fail_at_s"] <= a.loc[f, "duration_s"]).all()
    dl = a["deadline_s"].notna()
    assert (dl == a["deferrable"]).all()
    assert (a.loc[dl, "deadline_s"] >= a.loc[dl, "submit_s"] + a.loc[dl, "duration_s"]).all()
    pd.testing.assert_frame_equal(a, generate_jobs(n=2000, horizon_s=7 * 86400, seed=3, deferrable_frac=0.4,
                                                   max_gpus=64, model="llama-3.1-8b"))
    h = generate_jobs(horizon_s=86400.0, cluster="kalos", seed=1)
    assert h["submit_s"].max() < 86400
    assert abs(len(h) - ACME_CLUSTERS["kalos"].rate_per_s * 86400) < 5 * math.sqrt(ACME_CLUSTERS["kalos"].rate_per_s * 86400)


def test_write_read_round_trip(tmp_path):
    a = generate_jobs(n=500, seed=5, model="gpt-3-175b")
    b = generate_jobs(n=500, seed=5)
    for df in (a, b):
        p = write_jobs(df, tmp_path / "j.csv")
        back = read_jobs(p)
        # the CSV keeps 3 decimals (ms); the generator rounds to that already
        pd.testing.assert_frame_equal(back, df, check_dtype=True, check_exact=False, atol=5e-4, rtol=0)


def test_bad_job_tables(tmp_path):
    p = write_jobs(generate_jobs(n=5, seed=1), tmp_path / "j.csv")
    lines = p.read_text().splitlines()
    bad = lines[:3] + [lines[3].replace(",0,", ",x,", 1)] + lines[4:]
    q = tmp_path / "bad.csv"
    q.write_text("\n".join(bad) + "\n")
    with pytest.raises(TraceError) as ei:
        read_jobs(q)
    assert ei.value.line == 4
    r = tmp_path / "cols.csv"
    r.write_text(lines[0].replace("gpus", "gpu") + "\n" + lines[1] + "\n")
    with pytest.raises(TraceError, match="gpus"):
        read_jobs(r)
    e = tmp_path / "empty.csv"
    e.write_text("")
    with pytest.raises(TraceError, match="empty"):
        read_jobs(e)
    with pytest.raises(FleetError):
        generate_jobs(n=10, cluster="nowhere")
    with pytest.raises(FleetError):
        generate_jobs()


_CELL = st.one_of(st.integers(-5, 10 ** 7).map(str), st.floats().map(repr),
                  st.sampled_from(["", "true", "false", "TRUE", "x", "nan", "1e999", "\"", "0"]),
                  st.text(max_size=4))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rows=st.lists(st.lists(_CELL, min_size=9, max_size=12), max_size=5),
       header_cut=st.integers(0, 2))
def test_random_job_tables_raise_only_fleet_errors(rows, header_cut):
    cols = list(JOB_COLUMNS)[: len(JOB_COLUMNS) - header_cut]
    text = ",".join(cols) + "\n" + "\n".join(",".join(r) for r in rows) + "\n"
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "j.csv"
        p.write_bytes(text.encode("utf-8", errors="replace"))
        try:
            df = read_jobs(p)
        except FleetError as exc:
            assert "unreadable job table" not in str(exc) or str(p) in str(exc)
        else:
            validate_jobs(df)
