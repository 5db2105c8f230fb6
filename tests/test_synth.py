"""Synthetic demand: generated statistics match what was asked for, within stated tolerances;
same seed, same output.

Tolerances are set from the sampling error of each statistic (about 4 standard errors or more),
so a correct generator fails them essentially never and a wrong one (a rate off by a few %, a
CV of 2 instead of 3) fails them."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from fleet.errors import FleetError
from fleet.workload.schema import validate_requests
from fleet.workload.synth import (AZURE_CONV_LOGNORMAL, EmpiricalTokens, LognormalTokens, RateProfile,
                                  diurnal_profile, gamma_arrivals, poisson_arrivals, profile_arrivals,
                                  servegen_profile, stretch_trace, synth_trace)
from fleet.workload.traces import read_trace


def _cv(t: np.ndarray) -> float:
    d = np.diff(t)
    return float(d.std() / d.mean())


def test_poisson_rate_and_cv():
    t = poisson_arrivals(20.0, 10_000.0, seed=1)      # ~200,000 arrivals
    n = t.size
    assert abs(n - 200_000) < 4 * math.sqrt(200_000)   # Poisson count: sd = sqrt(mean)
    assert _cv(t) == pytest.approx(1.0, abs=0.02)
    assert t.min() >= 0 and t.max() < 10_000 and np.all(np.diff(t) >= 0)


@pytest.mark.parametrize("cv", [0.5, 3.0])
def test_gamma_rate_and_cv(cv):
    t = gamma_arrivals(10.0, cv, 20_000.0, seed=2)     # ~200,000 gaps
    assert t.size / 20_000.0 == pytest.approx(10.0, rel=0.03)
    assert _cv(t) == pytest.approx(cv, rel=0.05)


def test_same_seed_same_output_and_different_seed_differs():
    a = synth_trace("diurnal", 0.5, 6 * 3600, seed=7, cv=2.0)
    b = synth_trace("diurnal", 0.5, 6 * 3600, seed=7, cv=2.0)
    pd.testing.assert_frame_equal(a, b)
    c = synth_trace("diurnal", 0.5, 6 * 3600, seed=8, cv=2.0)
    assert len(c) != len(a) or not np.array_equal(c["arrival_s"], a["arrival_s"])
    # the token stream is independent of the arrival stream: same arrivals with other tokens
    d = synth_trace("diurnal", 0.5, 6 * 3600, seed=7, cv=2.0,
                    tokens=LognormalTokens.from_means(500, 50, cv=0.5))
    np.testing.assert_array_equal(d["arrival_s"], a["arrival_s"])


def test_diurnal_profile_shape_and_generated_hourly_rates():
    prof = diurnal_profile(2.0, peak_to_trough=3.0, peak_hour=14.0)
    assert prof.mean_rate_rps == pytest.approx(2.0, rel=1e-12)
    hourly = prof.hourly()
    assert int(np.argmax(hourly)) in (13, 14) and int(np.argmin(hourly)) in (1, 2)
    assert hourly.max() / hourly.min() == pytest.approx(3.0, rel=0.05)
    for cv in (1.0, 2.0):
        t = profile_arrivals(prof, 4 * 86400.0, seed=3, cv=cv)          # ~690,000 arrivals
        assert t.size / (4 * 86400.0) == pytest.approx(2.0, rel=0.02)
        counts = np.histogram(t % 86400.0, bins=24, range=(0, 86400))[0] / (4 * 3600.0)
        # each hour's generated rate within 8 % of the profile's (>= 14,000 arrivals per hour)
        np.testing.assert_allclose(counts, hourly, rtol=0.08)
        if cv != 1.0:
            # burstiness within the hour (rescaled time): CV of gaps within busy hours near cv
            gaps = np.concatenate([np.diff(t[(t >= d * 86400 + 13 * 3600) & (t < d * 86400 + 15 * 3600)])
                                   for d in range(4)])
            assert gaps.std() / gaps.mean() == pytest.approx(cv, rel=0.1)


def test_weekly_profile_has_quieter_weekends():
    prof = diurnal_profile(1.0, 2.0, weekend_factor=0.5)
    assert prof.period_s == 7 * 86400
    daily = prof.hourly().reshape(7, 24).mean(axis=1)
    assert daily[5] / daily[0] == pytest.approx(0.5, rel=1e-9)
    assert prof.mean_rate_rps == pytest.approx(1.0)


def test_servegen_profile_normalised_and_followed(shared_data):
    path = shared_data / "servegen-alibaba-bailian-aggregate" / "servegen_request_rate_600s.csv"
    raw = pd.read_csv(path)
    sel = raw[raw["model"] == "m-large"].sort_values("window_start_s")["total_rate_rps"].to_numpy()
    prof = servegen_profile("m-large", mean_rate_rps=3.0, path=path)
    assert prof.period_s == 14 * 86400 and len(prof.rates_rps) == 2016
    assert prof.mean_rate_rps == pytest.approx(3.0, rel=1e-12)
    # the shape is the data's, rescaled
    np.testing.assert_allclose(prof.rates_rps / prof.rates_rps.mean(), sel / sel.mean(), rtol=1e-12)
    # gaps in m-mid (84 empty windows) are filled, so the profile is positive everywhere
    mid = servegen_profile("m-mid", 1.0, path)
    assert (mid.rates_rps > 0).all() and "84 empty windows" in mid.notes[0]
    # two generated days follow the first two days' expected counts per 2 h
    t = profile_arrivals(prof, 2 * 86400.0, seed=5)
    edges = np.arange(0, 2 * 86400 + 1, 7200.0)
    got = np.histogram(t, edges)[0]
    want = np.diff(prof.cumulative(edges))
    assert np.all(np.abs(got - want) < 5 * np.sqrt(want))
    with pytest.raises(FleetError, match="m-huge"):
        servegen_profile("m-huge", 1.0, path)


def test_rate_profile_cumulative_inverse_round_trip():
    prof = RateProfile(np.array([0.0, 2.0, 0.0, 5.0]), 100.0, "test")
    t = np.array([0.0, 50.0, 150.0, 250.0, 399.0, 1234.0])
    lam = prof.cumulative(t)
    assert lam[1] == 0.0 and prof.cumulative(400.0) == pytest.approx(700.0)
    back = prof.inverse_cumulative(lam)
    # where the rate is > 0 the inverse is exact; in zero-rate windows it gives the window start
    np.testing.assert_allclose(prof.cumulative(back), lam)
    arr = profile_arrivals(prof, 4000.0, seed=1)
    assert np.all(prof.rate(arr) > 0)     # nothing arrives while the rate is zero
    arr2 = profile_arrivals(prof, 4000.0, seed=1, cv=2.0)
    assert np.all(prof.rate(arr2) > 0)


def test_azure_lognormal_constants_are_the_fit_of_the_file(shared_data):
    conv = read_trace(shared_data / "azure-llm-inference-2023" / "AzureLLMInferenceTrace_conv.csv")
    fit = LognormalTokens.fit(conv)
    for f in ("input_mu", "input_sigma", "output_mu", "output_sigma", "rho"):
        assert getattr(AZURE_CONV_LOGNORMAL, f) == pytest.approx(getattr(fit, f), abs=1e-6), f
    assert (AZURE_CONV_LOGNORMAL.input_max, AZURE_CONV_LOGNORMAL.output_max) == (14050, 1000)


def test_token_samplers_match_their_parameters():
    inp, out = AZURE_CONV_LOGNORMAL.sample(400_000, seed=4)
    li, lo = np.log(inp), np.log(out)
    # log-space moments (rounding and clipping move them a little: tolerance 0.02)
    assert li.mean() == pytest.approx(AZURE_CONV_LOGNORMAL.input_mu, abs=0.02)
    assert li.std() == pytest.approx(AZURE_CONV_LOGNORMAL.input_sigma, abs=0.02)
    assert lo.mean() == pytest.approx(AZURE_CONV_LOGNORMAL.output_mu, abs=0.02)
    assert np.corrcoef(li, lo)[0, 1] == pytest.approx(AZURE_CONV_LOGNORMAL.rho, abs=0.01)
    assert inp.min() >= 1 and inp.max() <= 14050 and out.max() <= 1000
    lm = LognormalTokens.from_means(800.0, 120.0, cv=1.0, input_max=10 ** 7, output_max=10 ** 7)
    a, b = lm.sample(400_000, seed=5)
    assert a.mean() == pytest.approx(800.0, rel=0.01) and b.mean() == pytest.approx(120.0, rel=0.01)
    assert a.std() / a.mean() == pytest.approx(1.0, rel=0.05)


def test_empirical_resampling_and_stretching_a_real_hour(shared_data):
    conv = read_trace(shared_data / "azure-llm-inference-2023" / "AzureLLMInferenceTrace_conv.csv")
    emp = EmpiricalTokens.from_trace(conv)
    i, o = emp.sample(200_000, seed=1)
    assert i.mean() == pytest.approx(conv["input_tokens"].mean(), rel=0.01)
    assert np.median(o) == pytest.approx(conv["output_tokens"].median(), rel=0.02)
    # one real hour's lengths stretched into 3 days of ServeGen-shaped demand at 0.5 req/s
    prof = servegen_profile("m-large", 0.5)
    st = stretch_trace(conv, prof, 3 * 86400.0, seed=2)
    validate_requests(st)
    expected = float(prof.cumulative(3 * 86400.0))
    assert abs(len(st) - expected) < 5 * math.sqrt(expected)
    assert st["output_tokens"].mean() == pytest.approx(conv["output_tokens"].mean(), rel=0.02)
    pairs = set(zip(conv["input_tokens"], conv["output_tokens"]))
    assert all(p in pairs for p in zip(st["input_tokens"].head(500), st["output_tokens"].head(500)))


def test_bad_parameters_are_fleet_errors():
    with pytest.raises(FleetError):
        poisson_arrivals(0.0, 10.0, 1)
    with pytest.raises(FleetError):
        gamma_arrivals(1.0, -1.0, 10.0, 1)
    with pytest.raises(FleetError):
        diurnal_profile(1.0, peak_to_trough=0.5)
    with pytest.raises(FleetError):
        synth_trace("weird", 1.0, 10.0, 1)
    with pytest.raises(FleetError):
        LognormalTokens(1, -1, 1, 1)


def test_synth_cli_is_byte_deterministic(tmp_path, capsys):
    from fleet.cli import main

    args = ["trace", "synth", "--profile", "gamma", "--rate", "3", "--hours", "0.5", "--cv", "2",
            "--seed", "9"]
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    assert main(args + ["-o", str(a)]) == 0
    assert main(args + ["-o", str(b)]) == 0
    assert a.read_bytes() == b.read_bytes()
    back = read_trace(a)
    validate_requests(back)
    assert len(back) == pytest.approx(3 * 1800, rel=0.15)
    assert main(["trace", "synth", "--profile", "poisson", "--rate", "1", "--hours", "0",
                 "--seed", "1", "-o", str(tmp_path / "c.csv")]) == 2
    assert "hours" in capsys.readouterr().err
