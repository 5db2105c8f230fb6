"""Bad input: every malformed trace gets a TraceError naming file, line and column (or a
documented repair with a warning); hypothesis feeds random malformed files to every reader."""

from __future__ import annotations

import json
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.errors import FleetError, TraceError
from fleet.workload.schema import validate_requests
from fleet.workload.traces import TraceWarning, iter_trace_chunks, read_trace

AZ_HEADER = "TIMESTAMP,ContextTokens,GeneratedTokens\n"


def _write(tmp_path: Path, name: str, text: str | bytes) -> Path:
    p = tmp_path / name
    if isinstance(text, bytes):
        p.write_bytes(text)
    else:
        p.write_text(text)
    return p


def _err(path: Path, **kw) -> TraceError:
    with pytest.raises(TraceError) as ei:
        read_trace(path, **kw)
    e = ei.value
    assert e.path == str(path) and str(path) in str(e)
    return e


def test_missing_or_misnamed_column(tmp_path):
    p = _write(tmp_path, "a.csv", "TIMESTAMP,contexttokens,GeneratedTokens\n2023-01-01 00:00:00,5,5\n")
    e = _err(p, format="azure")
    assert (e.line, e.column) == (1, "ContextTokens")
    assert "differs only in case" in str(e)
    # not detected as Azure at all without the right header: a mapping is asked for
    e = _err(p)
    assert "column mapping" in str(e)
    q = _write(tmp_path, "m.csv", "x,y,z\n1,2,3\n")
    e = _err(q, mapping={"arrival": "x", "input_tokens": "in", "output_tokens": "z"})
    assert e.column == "in" and e.line == 1
    e = _err(q, mapping={"arrival": "x", "input_tokens": "y", "output_tokens": "z", "bogus": "q"})
    assert e.column == "bogus"
    e = _err(q, mapping={"arrival": "x", "input_tokens": "y", "output_tokens": "z", "unit": "hours"})
    assert e.column == "unit"


@pytest.mark.parametrize("cell,what", [("abc", "not a number"), ("-4", "negative"), ("", "missing"),
                                       ("3.5", "fractional"), ("0", "zero"), ("inf", "infinite")])
def test_bad_token_cells_name_line_and_column(tmp_path, cell, what):
    p = _write(tmp_path, "t.csv", AZ_HEADER + "2023-01-01 00:00:00,5,5\n2023-01-01 00:00:01,5,5\n"
               f"2023-01-01 00:00:02,{cell},5\n")
    e = _err(p)
    assert (e.line, e.column) == (4, "ContextTokens")
    assert what in str(e)


def test_bad_timestamp_and_malformed_row(tmp_path):
    p = _write(tmp_path, "t.csv", AZ_HEADER + "2023-01-01 00:00:00,5,5\nyesterday,5,5\n")
    e = _err(p)
    assert (e.line, e.column) == (3, "TIMESTAMP") and "date-time" in str(e)
    q = _write(tmp_path, "r.csv", AZ_HEADER + "2023-01-01 00:00:00,5,5\n2023-01-01 00:00:01,5,5,9\n")
    e = _err(q)
    assert e.line == 3 and "malformed CSV row" in str(e)


def test_empty_file_header_only_and_blank_lines(tmp_path):
    assert "empty file" in str(_err(_write(tmp_path, "e.csv", "")))
    assert "empty file" in str(_err(_write(tmp_path, "w.csv", "\n  \n")))
    assert "no requests" in str(_err(_write(tmp_path, "h.csv", AZ_HEADER)))
    # blank lines are skipped and do not shift the reported line numbers
    p = _write(tmp_path, "b.csv", AZ_HEADER + "2023-01-01 00:00:00,5,5\n\n2023-01-01 00:00:01,x,5\n")
    assert _err(p).line == 4
    ok = _write(tmp_path, "ok.csv", AZ_HEADER + "2023-01-01 00:00:00,5,5\n\n2023-01-01 00:00:01,6,5\n\n")
    assert read_trace(ok)["input_tokens"].tolist() == [5, 6]


def test_mooncake_errors(tmp_path):
    good = '{"timestamp": 0, "input_length": 10, "output_length": 3, "hash_ids": [0]}\n'
    p = _write(tmp_path, "t.jsonl", good * 2 + '{"timestamp": 5, "input_length": 10, "outp\n')
    e = _err(p)
    assert e.line == 3 and "truncated" in str(e)
    q = _write(tmp_path, "k.jsonl", good + '{"timestamp": 5, "input_len": 10, "output_length": 3}\n')
    e = _err(q)
    assert (e.line, e.column) == (2, "input_length")
    r = _write(tmp_path, "h.jsonl", good + '{"timestamp": 5, "input_length": 1, "output_length": 3, '
                                           '"hash_ids": "abc"}\n')
    assert (_err(r).line, _err(r).column) == (2, "hash_ids")
    s = _write(tmp_path, "n.jsonl", good + '{"timestamp": -5, "input_length": 1, "output_length": 3}\n')
    assert _err(s).column == "timestamp" and "negative" in str(_err(s))
    t = _write(tmp_path, "a.jsonl", good + "[1, 2, 3]\n")
    assert _err(t, format="mooncake").line == 2
    u = _write(tmp_path, "s.jsonl", good + '{"timestamp": 5, "input_length": "many", "output_length": 3}\n')
    assert (_err(u).line, _err(u).column) == (2, "input_length")


def test_wrong_units_are_refused_or_warned(tmp_path):
    m = {"arrival": "t", "input_tokens": "i", "output_tokens": "o"}
    # epoch milliseconds read as seconds
    p = _write(tmp_path, "ep.csv", "t,i,o\n1700000000000,1,1\n1700000000500,1,1\n")
    e = _err(p, mapping={**m, "unit": "s"})
    assert "epoch in ms" in str(e) and e.column == "t" and e.line == 2
    assert read_trace(p, mapping={**m, "unit": "ms"})["arrival_s"].tolist() == [0.0, 0.5]
    # one hour in microseconds read as seconds: a 42,000-day span
    us = np.arange(0, 3600e6, 3.6e6)
    q = _write(tmp_path, "us.csv", "t,i,o\n" + "".join(f"{v:.0f},1,1\n" for v in us))
    assert "implausible span" in str(_err(q, mapping={**m, "unit": "s"}))
    # 2,000 requests over 100 s read as nanoseconds: 2e10 requests/s
    s = np.linspace(0, 100, 2000)
    r = _write(tmp_path, "ns.csv", "t,i,o\n" + "".join(f"{v:.6f},1,1\n" for v in s))
    assert "implausible mean rate" in str(_err(r, mapping={**m, "unit": "ns"}))
    # two hours in ms read as s: 83 days, possible but suspicious -> a warning
    ms = np.arange(0, 7200e3, 1000.0)
    w = _write(tmp_path, "ms.csv", "t,i,o\n" + "".join(f"{v:.0f},1,1\n" for v in ms))
    with pytest.warns(TraceWarning, match="check the time unit"):
        read_trace(w, mapping={**m, "unit": "s"})


def test_duplicate_timestamps_are_allowed(tmp_path):
    p = _write(tmp_path, "d.csv", AZ_HEADER + "2023-01-01 00:00:00,5,5\n" * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        df = read_trace(p)
    assert df["arrival_s"].tolist() == [0.0, 0.0, 0.0] and df["request_id"].tolist() == [0, 1, 2]


def test_missing_file_directory_and_binary(tmp_path):
    assert "no such file" in str(_err(tmp_path / "nope.csv"))
    with pytest.raises(TraceError, match="directory"):
        read_trace(tmp_path)
    assert "UTF-8" in str(_err(_write(tmp_path, "b.bin", b"\xff\xfe\x00garbage\x81\n1,2,3\n")))
    bad_pq = _write(tmp_path, "x.parquet", b"PAR1 this is not parquet")
    with pytest.raises(TraceError):
        read_trace(bad_pq)


def test_streaming_reports_errors_with_lines(tmp_path):
    rows = "".join(f"2023-01-01 00:00:{i:02d},5,5\n" for i in range(30)) + "2023-01-01 00:00:40,x,5\n"
    p = _write(tmp_path, "s.csv", AZ_HEADER + rows)
    it = iter_trace_chunks(p, chunksize=10)
    assert len(next(it)) == 10
    with pytest.raises(TraceError) as ei:
        list(it)
    assert (ei.value.line, ei.value.column) == (32, "ContextTokens")


# --------------------------------------------------------------------------- property tests

CELL = st.one_of(
    st.integers(-10, 10 ** 6).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["", " ", "nan", "NaN", "-", "1e400", "0x10", "2023-11-16 18:17:03.97",
                     "2023-13-45 99:99:99", "\"", "\"a,b\"", "true", "None", "1,5", "١٢"]),
    st.text(max_size=6),
)
HEADERS = st.sampled_from([
    "TIMESTAMP,ContextTokens,GeneratedTokens",
    "Timestamp,Model,Request tokens,Response tokens,Total tokens,Log Type",
    "request_id,arrival_s,input_tokens,output_tokens,model,tenant,priority,slo_class,prefix_blocks",
    "arrival_s,input_tokens,output_tokens",
    "t,i,o",
    "TIMESTAMP,ContextTokens",
    "",
])
MAPPING = {"arrival": "t", "input_tokens": "i", "output_tokens": "o", "unit": "ms"}


def _check(path: Path, **kw) -> None:
    """Either a valid canonical table or a FleetError: nothing else may escape."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            df = read_trace(path, **kw)
        except FleetError as exc:
            # a located, specific message: not the last-resort wrapper of an unexpected exception
            assert "could not read the trace" not in str(exc), str(exc)
            assert str(path) in str(exc)
        else:
            validate_requests(df)
            assert len(df) >= 1
        try:
            for chunk in iter_trace_chunks(path, chunksize=3, **kw):
                validate_requests(chunk.reset_index(drop=True).assign(
                    request_id=np.arange(len(chunk), dtype=np.int64)))
        except FleetError:
            pass


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(header=HEADERS, rows=st.lists(st.lists(CELL, min_size=0, max_size=7), max_size=8),
       fmt=st.sampled_from([None, "azure", "burstgpt", "canonical", "csv"]),
       use_mapping=st.booleans(), trailing=st.sampled_from(["", "\n", "\n\n", "\r\n"]))
def test_random_csv_raises_only_fleet_errors(header, rows, fmt, use_mapping, trailing):
    text = header + "\n" + "\n".join(",".join(r) for r in rows) + trailing
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.csv"
        p.write_text(text, encoding="utf-8", errors="surrogatepass") if False else p.write_bytes(
            text.encode("utf-8", errors="replace"))
        _check(p, format=fmt, mapping=MAPPING if use_mapping else None)


JSON_VALUE = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(-10 ** 20, 10 ** 20),
              st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=3), inner, max_size=3)),
    max_leaves=5)
RECORD = st.fixed_dictionaries(
    {}, optional={"timestamp": JSON_VALUE | st.integers(0, 10 ** 7), "input_length": JSON_VALUE | st.integers(0, 9999),
                  "output_length": JSON_VALUE | st.integers(0, 999),
                  "hash_ids": JSON_VALUE | st.lists(st.integers(0, 99), max_size=4)})


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(records=st.lists(RECORD, min_size=0, max_size=6), cut=st.integers(0, 400),
       garbage=st.sampled_from(["", "\n", "[1,2]\n", "{\"timestamp\": 1,\n", "null\n", "\x00\n"]),
       fmt=st.sampled_from([None, "mooncake", "jsonl"]))
def test_random_jsonl_raises_only_fleet_errors(records, cut, garbage, fmt):
    lines = [json.dumps(r) for r in records]
    text = "\n".join(lines) + "\n" + garbage
    if cut and cut < len(text):
        text = text[:cut]  # truncate somewhere, possibly mid-line
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.jsonl"
        p.write_text(text)
        _check(p, format=fmt, mapping=None if fmt != "jsonl" else
               {"arrival": "timestamp", "input_tokens": "input_length", "output_tokens": "output_length",
                "unit": "ms"})


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=200), magic=st.sampled_from([b"", b"PAR1", b"{", b"\xef\xbb\xbf"]))
def test_random_bytes_raise_only_fleet_errors(data, magic):
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.bin"
        p.write_bytes(magic + data)
        _check(p)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arr=st.lists(st.one_of(st.floats(), st.integers(-5, 10 ** 12)), min_size=1, max_size=6),
       tok=st.lists(st.one_of(st.integers(-3, 10 ** 6), st.none()), min_size=1, max_size=6),
       blocks=st.booleans())
def test_random_parquet_raises_only_fleet_errors(arr, tok, blocks):
    n = min(len(arr), len(tok))
    df = pd.DataFrame({"arrival_s": pd.Series(arr[:n], dtype="float64"),
                       "input_tokens": pd.Series(tok[:n], dtype="Int64"),
                       "output_tokens": pd.Series(tok[:n][::-1], dtype="Int64")})
    if blocks:
        df["prefix_blocks"] = [[i, -i] for i in range(n)]
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "x.parquet"
        df.to_parquet(p)
        _check(p)


def test_cli_reports_a_located_error_and_exits_2(tmp_path, capsys):
    from fleet.cli import main

    p = _write(tmp_path, "t.csv", AZ_HEADER + "2023-01-01 00:00:00,5,5\n2023-01-01 00:00:01,-5,5\n")
    assert main(["trace", "inspect", str(p)]) == 2
    err = capsys.readouterr().err
    assert f"{p}:3" in err and "'ContextTokens'" in err and "Traceback" not in err
