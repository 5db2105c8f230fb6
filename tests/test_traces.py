"""Trace readers, format detection, round trips, transforms and `fleet trace inspect` on the real
files in ../shared/data."""

from __future__ import annotations

import json
import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from fleet.cli import main
from fleet.errors import TraceError
from fleet.workload.schema import REQUIRED_COLUMNS, validate_requests
from fleet.workload.traces import (TraceWarning, detect_format, iter_trace_chunks, merge, read_trace,
                                   sample, scale_rate, time_shift, trace_stats, window, write_trace)

AZURE = ("azure-llm-inference-2023", "AzureLLMInferenceTrace_code.csv"), \
        ("azure-llm-inference-2023", "AzureLLMInferenceTrace_conv.csv")
MOONCAKE = ("mooncake-fast25-traces", "conversation_trace.jsonl"), \
           ("mooncake-fast25-traces", "synthetic_trace.jsonl")
ALL_TRACES = AZURE + MOONCAKE
# rows as stated in each folder's SCHEMA.md
ROWS = {"AzureLLMInferenceTrace_code.csv": 8819, "AzureLLMInferenceTrace_conv.csv": 19366,
        "conversation_trace.jsonl": 12031, "synthetic_trace.jsonl": 3993}


@pytest.fixture(scope="module")
def conv(shared_data):
    return read_trace(shared_data.joinpath(*AZURE[1]))


@pytest.mark.parametrize("parts", ALL_TRACES, ids=lambda p: p[1])
def test_every_shared_trace_loads_and_round_trips(shared_data, tmp_path, parts):
    path = shared_data.joinpath(*parts)
    df = read_trace(path)
    validate_requests(df)
    assert len(df) == ROWS[parts[1]]
    assert df.attrs["format"] == ("azure" if parts[0].startswith("azure") else "mooncake")
    assert df["arrival_s"].iloc[0] == 0.0
    for suffix in (".csv", ".parquet"):
        out = write_trace(df, tmp_path / f"t{suffix}")
        assert detect_format(out) == "canonical"
        back = read_trace(out)
        pd.testing.assert_frame_equal(back, df, check_categorical=False)
    if "prefix_blocks" in df:
        assert all(isinstance(v, tuple) for v in df["prefix_blocks"].head(50))
        raw = json.loads(path.read_text().splitlines()[1])
        assert df["prefix_blocks"].iloc[1] == tuple(raw["hash_ids"])


def test_parquet_keeps_provenance(shared_data, tmp_path, conv):
    from fleet.workload.traces import read_canonical_attrs

    out = write_trace(conv, tmp_path / "c.parquet")
    attrs = read_canonical_attrs(out)
    assert attrs["t0"] == "2023-11-16T18:15:46.680590+00:00"
    assert attrs["format"] == "azure"


def test_azure_arrivals_match_an_independent_computation(shared_data, conv):
    raw = pd.read_csv(shared_data.joinpath(*AZURE[1]))
    ts = pd.to_datetime(raw["TIMESTAMP"])
    rel = (ts - ts.iloc[0]).dt.total_seconds().to_numpy()
    np.testing.assert_allclose(conv["arrival_s"].to_numpy(), rel, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(conv["input_tokens"].to_numpy(), raw["ContextTokens"].to_numpy())
    np.testing.assert_array_equal(conv["output_tokens"].to_numpy(), raw["GeneratedTokens"].to_numpy())


def _independent_stats(df_raw: pd.DataFrame) -> dict:
    """The inspect numbers from a plain pandas computation on the raw Azure CSV."""
    ts = pd.to_datetime(df_raw["TIMESTAMP"])
    t0 = ts.iloc[0]
    rel = ts - t0
    span = (ts.iloc[-1] - t0).total_seconds()
    per_s = rel.dt.total_seconds().floordiv(1).value_counts()
    per_min = rel.dt.total_seconds().floordiv(60).value_counts()
    gaps = ts.diff().dt.total_seconds().dropna()
    return {
        "rows": len(df_raw), "span_s": span, "mean_rate_rps": len(df_raw) / span,
        "peak_rate_1s_rps": per_s.max(), "peak_rate_60s_rps": per_min.max() / 60,
        "interarrival_cv": gaps.std(ddof=0) / gaps.mean(),
        "input_tokens_mean": df_raw["ContextTokens"].mean(),
        "input_tokens_p50": df_raw["ContextTokens"].quantile(0.5),
        "input_tokens_p99": df_raw["ContextTokens"].quantile(0.99),
        "output_tokens_mean": df_raw["GeneratedTokens"].mean(),
        "output_tokens_p50": df_raw["GeneratedTokens"].quantile(0.5),
        "output_tokens_p99": df_raw["GeneratedTokens"].quantile(0.99),
    }


@pytest.mark.parametrize("parts", AZURE, ids=lambda p: p[1])
def test_inspect_matches_independent_pandas(shared_data, parts, capsys):
    path = shared_data.joinpath(*parts)
    assert main(["trace", "inspect", str(path), "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    want = _independent_stats(pd.read_csv(path))
    for k, v in want.items():
        assert got[k] == pytest.approx(v, rel=1e-9, abs=1e-6), k


def test_inspect_conv_matches_schema_table(conv):
    """The numbers in azure-llm-inference-2023/SCHEMA.md (rounded as printed there)."""
    st = trace_stats(conv)
    assert st["rows"] == 19366
    assert st["span_s"] / 60 == pytest.approx(58.4, abs=0.05)
    assert st["mean_rate_rps"] == pytest.approx(5.53, abs=0.005)
    assert st["peak_rate_1s_rps"] == 16
    assert st["peak_rate_60s_rps"] == pytest.approx(8.45, abs=0.005)
    assert (st["input_tokens_mean"], st["input_tokens_p50"], st["input_tokens_p99"]) == \
        (pytest.approx(1155, abs=0.5), 1020, 4142)
    assert (st["output_tokens_mean"], st["output_tokens_p50"], st["output_tokens_p99"]) == \
        (pytest.approx(211, abs=0.5), 129, 601)


def test_inspect_mooncake_matches_schema_table(shared_data):
    st = trace_stats(read_trace(shared_data.joinpath(*MOONCAKE[0])))
    assert st["rows"] == 12031
    assert st["mean_rate_rps"] == pytest.approx(3.40, abs=0.005)
    assert st["peak_rate_1s_rps"] == 28
    assert st["peak_rate_60s_rps"] == pytest.approx(4.12, abs=0.005)
    assert st["input_tokens_p50"] == 6909 and st["output_tokens_p50"] == 350
    assert st["duplicate_arrivals"] > 0  # bursts logged at the same millisecond are kept


def test_inspect_plot_is_a_png(shared_data, tmp_path, capsys):
    out = tmp_path / "sub" / "conv.png"
    assert main(["trace", "inspect", str(shared_data.joinpath(*AZURE[0])), "--plot", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert out.stat().st_size > 10_000
    assert [p.name for p in out.parent.iterdir()] == ["conv.png"]  # no temp file left
    assert "19," not in capsys.readouterr().err


def test_format_detection_uses_content_not_name(shared_data, tmp_path):
    a = tmp_path / "misleading.jsonl"
    shutil.copy(shared_data.joinpath(*AZURE[0]), a)
    m = tmp_path / "misleading.csv"
    shutil.copy(shared_data.joinpath(*MOONCAKE[1]), m)
    assert detect_format(a) == "azure"
    assert detect_format(m) == "mooncake"
    assert len(read_trace(m)) == 3993


def test_chunked_stream_equals_whole_read(shared_data, conv):
    path = shared_data.joinpath(*AZURE[1])
    chunks = list(iter_trace_chunks(path, chunksize=5000))
    assert [len(c) for c in chunks] == [5000, 5000, 5000, 4366]
    whole = pd.concat(chunks, ignore_index=True)
    pd.testing.assert_frame_equal(whole, conv)
    small = read_trace(path, chunksize=777)
    pd.testing.assert_frame_equal(small, conv)
    mc = list(iter_trace_chunks(shared_data.joinpath(*MOONCAKE[1]), chunksize=1000))
    assert sum(map(len, mc)) == 3993 and mc[-1]["request_id"].iloc[-1] == 3992


BURST = """Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type
5,ChatGPT,472,18,490,Conversation log
45,ChatGPT,1087,0,1087,Conversation log
118,GPT-4,417,216,633,API log
125,ChatGPT,0,33,33,API log
"""


def test_burstgpt_failed_requests_are_dropped_with_a_warning(tmp_path):
    p = tmp_path / "b.csv"
    p.write_text(BURST)
    assert detect_format(p) == "burstgpt"
    with warnings.catch_warnings(record=True) as rec:
        warnings.simplefilter("always")
        df = read_trace(p)
    msgs = [str(w.message) for w in rec if issubclass(w.category, TraceWarning)]
    assert any("1 failed requests" in m for m in msgs) and any("0 request tokens" in m for m in msgs)
    assert df["arrival_s"].tolist() == [5.0, 118.0, 125.0]
    assert df["model"].astype(str).tolist() == ["ChatGPT", "GPT-4", "ChatGPT"]
    assert df["tenant"].astype(str).tolist() == ["Conversation log", "API log", "API log"]
    assert df["input_tokens"].tolist() == [472, 417, 1]   # 0 request tokens read as 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TraceWarning)
        kept = read_trace(p, failed="keep")
    assert kept["output_tokens"].tolist() == [18, 1, 216, 33]
    with pytest.raises(TraceError, match=r"b\.csv:3.*Response tokens"):
        read_trace(p, failed="error")


def test_generic_csv_with_mapping_and_units(tmp_path):
    p = tmp_path / "g.csv"
    p.write_text("t_ms,prompt,completion,who,prio\n0,10,5,a,1\n1500,20,6,b,0\n1500,30,7,a,2\n")
    assert detect_format(p) == "csv"
    with pytest.raises(TraceError, match="needs a column mapping"):
        read_trace(p)
    m = {"arrival": "t_ms", "input_tokens": "prompt", "output_tokens": "completion", "unit": "ms",
         "tenant": "who", "priority": "prio"}
    df = read_trace(p, mapping=m)
    assert df["arrival_s"].tolist() == [0.0, 1.5, 1.5]
    assert df["priority"].dtype == np.int8 and df["priority"].tolist() == [1, 0, 2]
    assert df.attrs["t0"] is None
    # the same data as ISO datetimes with a zone: t0 in UTC
    q = tmp_path / "d.csv"
    q.write_text("when,in,out\n2024-03-01T10:00:00+01:00,1,1\n2024-03-01T10:00:02.5+01:00,2,2\n")
    d = read_trace(q, mapping={"arrival": "when", "input_tokens": "in", "output_tokens": "out",
                               "unit": "datetime"})
    assert d.attrs["t0"] == "2024-03-01T09:00:00+00:00"
    assert d["arrival_s"].tolist() == [0.0, 2.5]
    # epoch seconds are recognised as absolute times
    e = tmp_path / "e.csv"
    e.write_text("ts,i,o\n1700000000.25,3,4\n1700000001.75,3,4\n")
    de = read_trace(e, mapping={"arrival": "ts", "input_tokens": "i", "output_tokens": "o", "unit": "s"})
    assert de.attrs["t0"].startswith("2023-11-14T22:13:20.25")
    assert de["arrival_s"].tolist() == [0.0, 1.5]


def test_generic_parquet_with_mapping(tmp_path):
    p = tmp_path / "g.parquet"
    pd.DataFrame({"ts": pd.to_datetime(["2024-01-01 00:00:00", "2024-01-01 00:00:03"]),
                  "a": [5, 6], "b": [7, 8]}).to_parquet(p)
    assert detect_format(p) == "parquet"
    df = read_trace(p, mapping={"arrival": "ts", "input_tokens": "a", "output_tokens": "b"})
    assert df["arrival_s"].tolist() == [0.0, 3.0] and df.attrs["t0"] == "2024-01-01T00:00:00+00:00"


def test_unsorted_trace_is_sorted_with_a_warning_or_refused_when_streamed(tmp_path):
    p = tmp_path / "u.csv"
    p.write_text("TIMESTAMP,ContextTokens,GeneratedTokens\n2023-01-01 00:00:05,1,1\n"
                 "2023-01-01 00:00:01,2,2\n2023-01-01 00:00:01,3,3\n")
    with pytest.warns(TraceWarning, match=r"u\.csv:3: timestamps not sorted"):
        df = read_trace(p)
    assert df["input_tokens"].tolist() == [2, 3, 1]    # stable: ties keep file order
    assert df["arrival_s"].tolist() == [0.0, 0.0, 4.0]
    assert any("sorted" in t for t in df.attrs["transformations"])
    with pytest.raises(TraceError, match=r"u\.csv:3.*must be sorted"):
        list(iter_trace_chunks(p))


def test_transforms(conv):
    n = len(conv)
    # time shift moves t0 back so absolute times stay right
    sh = time_shift(conv, 100.0)
    assert sh["arrival_s"].iloc[0] == 100.0
    assert pd.Timestamp(sh.attrs["t0"]) == pd.Timestamp(conv.attrs["t0"]) - pd.Timedelta(seconds=100)
    with pytest.raises(TraceError):
        time_shift(conv, -1.0)
    # window, re-zeroed
    w = window(conv, 600.0, 1200.0)
    mask = (conv["arrival_s"] >= 600) & (conv["arrival_s"] < 1200)
    assert len(w) == int(mask.sum())
    assert w["arrival_s"].min() >= 0 and w["arrival_s"].max() < 600
    validate_requests(w)
    # sample: reproducible, sorted, without replacement
    s1, s2 = sample(conv, n=1000, seed=3), sample(conv, n=1000, seed=3)
    pd.testing.assert_frame_equal(s1, s2)
    assert len(s1) == 1000 and s1["arrival_s"].is_monotonic_increasing
    assert len(sample(conv, frac=0.25, seed=1)) == round(0.25 * n)
    # merge two traces with tenants: sorted, ids renumbered, all rows kept
    other = time_shift(window(conv, 0, 600), 30.0)
    mg = merge([conv, other], tenants=["conv", "copy"])
    validate_requests(mg)
    assert len(mg) == n + len(other)
    assert (mg["tenant"] == "copy").sum() == len(other)
    for t in (sh, w, s1, mg):
        assert t.attrs["transformations"]


@pytest.mark.parametrize("factor", [0.3, 2.5])
def test_scale_rate_scales_the_rate_and_keeps_token_distributions(conv, factor):
    out = scale_rate(conv, factor, seed=11)
    validate_requests(out)
    n = len(conv)
    # count: thinning is Binomial(n, f); replication adds Binomial(n, f - floor f) to floor(f)*n
    sd = np.sqrt(n * (factor % 1) * (1 - factor % 1))
    assert abs(len(out) - factor * n) < 4 * sd + 1
    span = conv["arrival_s"].iloc[-1]
    assert out["arrival_s"].iloc[-1] <= span + 1e-9
    # token distributions: means within 3 %, medians within 5 %
    for c in ("input_tokens", "output_tokens"):
        assert out[c].mean() == pytest.approx(conv[c].mean(), rel=0.03)
        assert out[c].median() == pytest.approx(conv[c].median(), rel=0.05)
    # the per-10-minute rate follows the original shape
    bins = np.arange(0, span + 600, 600)
    a = np.histogram(conv["arrival_s"], bins)[0] * factor
    b = np.histogram(out["arrival_s"], bins)[0]
    assert np.corrcoef(a[:-1], b[:-1])[0, 1] > 0.8
    pd.testing.assert_frame_equal(out, scale_rate(conv, factor, seed=11))


def test_validate_requests_catches_broken_tables(conv):
    bad = conv.copy()
    bad.loc[5, "output_tokens"] = 0
    with pytest.raises(TraceError, match="output_tokens"):
        validate_requests(bad)
    with pytest.raises(TraceError, match="missing column"):
        validate_requests(conv.drop(columns=["input_tokens"]))
    assert set(REQUIRED_COLUMNS) <= set(conv.columns)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        validate_requests(conv)


def test_bom_crlf_and_spaces_after_commas(tmp_path):
    p = tmp_path / "w.csv"
    p.write_bytes(b"\xef\xbb\xbfTIMESTAMP, ContextTokens, GeneratedTokens\r\n"
                  b"2023-11-16 18:17:03.9799600, 4808, 10\r\n2023-11-16 18:17:04.0319600,3180,8\r\n")
    assert detect_format(p) == "azure"
    df = read_trace(p)
    assert df["input_tokens"].tolist() == [4808, 3180]
    assert df["arrival_s"].tolist() == pytest.approx([0.0, 0.052], abs=1e-9)
