"""Property test (issue 8): random damage to a scenario file - keys deleted, types changed, wrong
numbers, truncation, garbage bytes, duplicated keys, deep nesting - fed through the CLI entry
point.  Whatever the damage: exit 0 or 2, an error that names the file (and the field or line),
never another exception, never a hang (each case bounded by an alarm)."""

from __future__ import annotations

import copy
import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fleet.cli import main

from _scenarios import REPO

#: seconds one damaged scenario may take (a valid one simulates a minute of demand in well under 1 s)
CASE_LIMIT_S = 20

BASE = {
    "name": "dmg", "seed": 3, "start_utc": "2023-06-01T10:00:00Z",
    "fleet": {"pools": [{"name": "h100", "accelerator": "H100-SXM", "gpus": 2, "gpus_per_server": 2,
                         "serve": [{"model": "llama-3.1-8b", "tp": 1, "max_batch": 64}]}],
              "power": {"site_budget_w": 2500, "rows": {"row0": 2500}}},
    "demand": {"inference": [{"model": "llama-3.1-8b",
                              "trace": {"path": str(REPO / "traces" / "poisson_1h.csv"), "window": [0, 60]},
                              "slo": {"ttft_s": 0.5, "tpot_s": 0.05}},
                             {"model": "llama-3.1-8b", "synth": {"profile": "poisson", "rate": 0.5, "hours": 0.02}}]},
    "simulation": {"horizon_s": 60, "telemetry_interval_s": 10},
    "site": {"carbon_intensity": 300, "price": 80, "pue": 1.3},
    "report": {"pdf": False, "png": False},
}

ODD_VALUES = [None, "x", "", [], {}, True, -1, 0, 1, 2.5, -1e300, 1e300, 10**12, ".nan", "1e9", [1, "a"],
              {"constant": -5}, "../../etc/passwd", "H100-SXM", "llama-3.1-8b", "."]


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout(f"a damaged scenario ran longer than {CASE_LIMIT_S} s")


def _paths(obj, prefix=()):
    """Every (path, value) in a nested dict/list."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _set(obj, path, value=None, delete=False):
    for p in path[:-1]:
        obj = obj[p]
    if delete:
        del obj[path[-1]]
    else:
        obj[path[-1]] = value


@st.composite
def damaged(draw) -> bytes:
    data = copy.deepcopy(BASE)
    kind = draw(st.sampled_from(["delete", "retype", "number", "nest", "truncate", "garbage", "duplicate"]))
    paths = [p for p, _ in _paths(data) if p]
    if kind in ("delete", "retype", "number", "nest"):
        for _ in range(draw(st.integers(1, 3))):
            paths = [p for p, _ in _paths(data) if p]
            path = draw(st.sampled_from(paths))
            if kind == "delete":
                _set(data, path, delete=True)
            elif kind == "retype":
                _set(data, path, draw(st.sampled_from(ODD_VALUES)))
            elif kind == "number":
                _set(data, path, draw(st.one_of(st.integers(-10**15, 10**15),
                                                st.floats(allow_nan=False, allow_infinity=False))))
            else:
                _set(data, path, "NEST-HERE")
        text = yaml.safe_dump(data, sort_keys=False)
        if kind == "nest":      # in the text: dumping a deep list would recurse in the test itself
            depth = draw(st.sampled_from([3, 70, 500, 3000]))
            text = text.replace("NEST-HERE", "[" * depth + "1" + "]" * depth)
        return text.encode()
    text = yaml.safe_dump(data, sort_keys=False).encode()
    if kind == "truncate":
        return text[:draw(st.integers(0, len(text)))]
    if kind == "garbage":
        at = draw(st.integers(0, len(text)))
        return text[:at] + draw(st.binary(min_size=1, max_size=12)) + text[at:]
    lines = text.splitlines(keepends=True)
    i = draw(st.integers(0, len(lines) - 1))
    return b"".join(lines[:i + 1] + [lines[i]] + lines[i + 1:])


def _check(raw: bytes, capsys) -> None:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "dmg.yaml"
        p.write_bytes(raw)
        old = signal.signal(signal.SIGALRM, _alarm)
        signal.alarm(CASE_LIMIT_S)
        try:
            rc = main(["-q", "simulate", str(p), "-o", str(Path(d) / "out"), "--format", "csv"])
        finally:
            signal.alarm(0)
            signal.signal(signal.SIGALRM, old)
        err = capsys.readouterr().err
        assert rc in (0, 2), (rc, err)
        if rc == 2:
            assert err.startswith("fleet: error: "), err
            assert str(p) in err, f"error does not name the file: {err}"
            assert "Traceback" not in err
            assert sorted(x.name for x in Path(d).iterdir()) == ["dmg.yaml"], "partial output left"


@pytest.mark.skipif(not hasattr(signal, "SIGALRM"), reason="needs SIGALRM to bound each case")
@settings(max_examples=int(os.environ.get("FLEET_DAMAGE_EXAMPLES", "40")), deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(raw=damaged())
def test_damaged_scenarios_give_a_located_error_or_run(raw, capsys):
    _check(raw, capsys)


def test_the_undamaged_base_runs(capsys):
    _check(yaml.safe_dump(BASE, sort_keys=False).encode(), capsys)


@pytest.mark.parametrize("raw", [
    b"name: a\nname: b\n",
    b"\x1f\x8b\x08\x00garbage",
    "name: café\n".encode("latin-1"),
    b"name: x\nfleet: " + b"[" * 5000 + b"]" * 5000 + b"\n",
])
def test_damaged_scenarios_in_a_subprocess(tmp_path, raw):
    p = tmp_path / "dmg.yaml"
    p.write_bytes(raw)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "fleet", "-q", "simulate", str(p), "-o", str(tmp_path / "o")],
                       capture_output=True, text=True, timeout=120, env=env, cwd=tmp_path)
    assert r.returncode == 2, r.stderr
    assert r.stderr.startswith(f"fleet: error: {p}"), r.stderr
    assert "Traceback" not in r.stderr
