"""Scenario schema: loading, defaults, relative paths, and one clear error per kind of mistake."""

from __future__ import annotations

import copy
import datetime as dt
from pathlib import Path

import pytest
import yaml

from fleet.errors import ScenarioError
from fleet.scenario import Scenario, load_scenario, parse_scenario

BASE = {
    "name": "t",
    "seed": 3,
    "fleet": {
        "pools": [
            {"name": "h100", "accelerator": "H100-SXM", "gpus": 8, "row": "row0",
             "serve": [{"model": "llama-3.1-8b", "tp": 1}]},
            {"name": "train", "accelerator": "H100-SXM", "gpus": 16, "role": "training", "row": "row1"},
        ],
        "power": {"site_budget_w": 100000.0, "rows": {"row0": 30000.0}},
    },
    "demand": {"inference": [{"model": "llama-3.1-8b",
                              "synth": {"rate": 2.0, "hours": 0.1}, "slo": {"ttft_s": 1.0}}]},
    "simulation": {"telemetry_interval_s": 1.0},
}


def write(tmp_path: Path, data: dict | str, name: str = "s.yaml") -> Path:
    p = tmp_path / name
    p.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
    return p


def mutate(**paths) -> dict:
    d = copy.deepcopy(BASE)
    for dotted, value in paths.items():
        keys = dotted.split("__")
        cur = d
        for k in keys[:-1]:
            cur = cur[int(k)] if k.isdigit() else cur[k]
        last = keys[-1]
        if value is _DEL:
            del cur[last]
        elif last.isdigit():
            cur[int(last)] = value
        else:
            cur[last] = value
    return d


_DEL = object()


def err_of(tmp_path, data, check=True) -> ScenarioError:
    p = write(tmp_path, data)
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p, check=check)
    assert str(p) in str(ei.value)          # names the file
    return ei.value


# ------------------------------------------------------------------ the happy path
def test_load_defaults_and_hash(tmp_path):
    sc = load_scenario(write(tmp_path, BASE))
    assert isinstance(sc, Scenario)
    assert sc.path == (tmp_path / "s.yaml").resolve()
    assert sc.start_utc == dt.datetime(2023, 6, 1, tzinfo=dt.timezone.utc)
    p0 = sc.fleet.pools[0]
    assert p0.gpus_per_server == 8 and p0.servers == 1 and p0.static_w == 1800.0
    assert sc.simulation.mode == "coalesced"
    assert sc.fleet.power.rack_budget_w is None
    # the hash ignores key order and changes with content
    reordered = dict(reversed(list(BASE.items())))
    sc2 = load_scenario(write(tmp_path, reordered, "r.yaml"))
    assert sc.hash() == sc2.hash() and len(sc.hash()) == 16
    sc3 = load_scenario(write(tmp_path, mutate(seed=4), "x.yaml"))
    assert sc3.hash() != sc.hash()


def test_start_utc_must_be_aware(tmp_path):
    sc = load_scenario(write(tmp_path, mutate(start_utc="2023-01-02T03:00:00+02:00")))
    assert sc.start_utc == dt.datetime(2023, 1, 2, 1, tzinfo=dt.timezone.utc)
    e = err_of(tmp_path, mutate(start_utc="2023-01-02T03:00:00"))
    assert e.field == "start_utc" and "time-zone" in str(e)


def test_relative_trace_path_resolves_against_scenario_dir(tmp_path):
    sub = tmp_path / "scen"
    sub.mkdir()
    (tmp_path / "traces").mkdir()
    trace = tmp_path / "traces" / "x.csv"
    trace.write_text("request_id,arrival_s,input_tokens,output_tokens\n0,0.0,10,5\n")
    d = mutate()
    d["demand"]["inference"][0] = {"model": "llama-3.1-8b", "trace": {"path": "../traces/x.csv"}}
    sc = load_scenario(write(sub, d))
    assert sc.demand.inference[0].trace.path == trace.resolve()
    # a missing trace names its field
    d["demand"]["inference"][0]["trace"]["path"] = "../traces/missing.csv"
    e = err_of(sub, d)
    assert e.field == "demand.inference[0].trace.path"


# ------------------------------------------------------------------ errors with YAML paths
@pytest.mark.parametrize("data, field, words", [
    (mutate(fleet__pools__1__gpus=-4), "fleet.pools[1].gpus", "expected a positive integer, got -4"),
    (mutate(fleet__pools__0__gpus="eight"), "fleet.pools[0].gpus", "expected an integer, got 'eight'"),
    (mutate(fleet__pools__0__gpus=2.5), "fleet.pools[0].gpus", "expected an integer"),
    (mutate(fleet__pools__0__gpus=True), "fleet.pools[0].gpus", "expected an integer"),
    (mutate(fleet__pools__0__gpu_count=8), "fleet.pools[0].gpu_count", "unknown key"),
    (mutate(simulation__horizon=10), "simulation.horizon", "unknown key"),
    (mutate(fleet__pools__0__serve__0__tp=0), "fleet.pools[0].serve[0].tp", "positive integer"),
    (mutate(fleet__pools__0__role="inference"), "fleet.pools[0].role", "expected one of"),
    (mutate(simulation__telemetry_interval_s=-1.0), "simulation.telemetry_interval_s", "> 0"),
    (mutate(simulation__mode="fast"), "simulation.mode", "expected one of"),
    (mutate(fleet__pools__0__name="a/b"), "fleet.pools[0].name", "expected a name"),
    (mutate(fleet___DELETE=None), None, None),
], ids=lambda x: str(x)[:30])
def test_schema_errors(tmp_path, data, field, words):
    if field is None:  # the 'fleet' section missing
        data = copy.deepcopy(BASE)
        del data["fleet"]
        field, words = "fleet", "required key is missing"
    e = err_of(tmp_path, data, check=False)
    assert e.field == field, str(e)
    assert words in str(e), str(e)
    assert str(e).startswith(f"{tmp_path / 's.yaml'}: {field}: ")


def test_both_or_no_demand_source(tmp_path):
    d = mutate()
    d["demand"]["inference"][0]["trace"] = {"path": "x.csv"}
    e = err_of(tmp_path, d, check=False)
    assert e.field == "demand.inference[0]" and "exactly one of 'trace' or 'synth'" in str(e)


def test_duplicate_pool_names(tmp_path):
    d = mutate(fleet__pools__1__name="h100")
    e = err_of(tmp_path, d, check=False)
    assert e.field == "fleet.pools" and "'h100' appears twice" in str(e)


def test_yaml_aliases_refused(tmp_path):
    text = ("name: t\nfleet:\n  pools:\n    - &p {name: a, accelerator: H100-SXM, gpus: 8, "
            "serve: [{model: llama-3.1-8b}]}\n    - *p\n")
    e = err_of(tmp_path, text)
    assert "aliases" in str(e)


def test_billion_laughs_refused_quickly(tmp_path):
    text = "a: &a [x, x, x, x, x, x, x, x, x]\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]\n" \
           "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]\nname: t\n"
    e = err_of(tmp_path, text)
    assert "aliases" in str(e)


def test_not_yaml_and_not_mapping(tmp_path):
    assert "not valid YAML" in str(err_of(tmp_path, "name: [unclosed\n"))
    assert "mapping at the top level" in str(err_of(tmp_path, "- 1\n- 2\n"))
    with pytest.raises(ScenarioError, match="no such scenario file"):
        load_scenario(tmp_path / "nope.yaml")


# ------------------------------------------------------------------ checks against the catalog
def test_unknown_accelerator_names_field_and_suggests(tmp_path):
    e = err_of(tmp_path, mutate(fleet__pools__0__accelerator="H100-SXN"))
    assert e.field == "fleet.pools[0].accelerator"
    assert "H100" in str(e)   # the catalog's suggestion


def test_unknown_model(tmp_path):
    e = err_of(tmp_path, mutate(fleet__pools__0__serve__0__model="llama-9-zillion"))
    assert e.field == "fleet.pools[0].serve[0].model"


def test_power_cap_outside_catalog_range(tmp_path):
    e = err_of(tmp_path, mutate(fleet__pools__0__power_cap_w=2000.0))
    assert e.field == "fleet.pools[0].power_cap_w" and "between" in str(e) and "2000" in str(e)
    sc = load_scenario(write(tmp_path, mutate(fleet__pools__0__power_cap_w=500.0), "ok.yaml"))
    assert sc.fleet.pools[0].power_cap_w == 500.0


def test_model_that_does_not_fit(tmp_path):
    d = mutate()
    d["fleet"]["pools"][0]["serve"] = [{"model": "llama-3.1-70b", "tp": 1, "precision": "bf16"}]
    d["demand"]["inference"][0]["model"] = "llama-3.1-70b"
    e = err_of(tmp_path, d)
    assert e.field == "fleet.pools[0].serve[0].tp"
    assert "does not fit" in str(e) and "would fit with tp=" in str(e), str(e)


def test_demanded_model_not_served(tmp_path):
    d = mutate()
    d["demand"]["inference"][0]["model"] = "llama-3.1-70b"
    e = err_of(tmp_path, d)
    assert e.field == "demand.inference[0].model", str(e)
    assert "llama-3.1-70b" in str(e) and "h100" in str(e) and "no pool serves it" in str(e)


def test_tp_must_divide_server(tmp_path):
    e = err_of(tmp_path, mutate(fleet__pools__0__serve__0__tp=3))
    assert e.field == "fleet.pools[0].serve[0].tp" and "divisor of gpus_per_server" in str(e)


def test_replicas_exceed_gpus(tmp_path):
    e = err_of(tmp_path, mutate(fleet__pools__0__serve__0__replicas=9))
    assert e.field == "fleet.pools[0].serve" and "need 9 GPUs" in str(e)


def test_budget_for_unknown_row(tmp_path):
    d = mutate()
    d["fleet"]["power"]["rows"] = {"row7": 1000.0}
    e = err_of(tmp_path, d)
    assert e.field == "fleet.power.rows.row7" and "row0" in str(e)


def test_training_demand_needs_a_training_pool(tmp_path):
    d = mutate()
    d["fleet"]["pools"] = d["fleet"]["pools"][:1]
    d["demand"]["training"] = {"synth": {"jobs": 3}}
    e = err_of(tmp_path, d)
    assert e.field == "demand.training" and "training pool" in str(e)


def test_parse_without_file_hash_is_stable():
    a = parse_scenario(copy.deepcopy(BASE), check=False)
    b = parse_scenario(copy.deepcopy(BASE), check=False)
    assert a.path is None and a.hash() == b.hash()


def test_training_demand_names(tmp_path):
    d = mutate()
    d["demand"]["training"] = {"pool": "h100", "synth": {"jobs": 3}}
    e = err_of(tmp_path, d)
    assert e.field == "demand.training.pool" and "'train'" in str(e)
    d["demand"]["training"] = {"synth": {"jobs": 3, "model": "gpt-9"}}
    e = err_of(tmp_path, d)
    assert e.field == "demand.training.synth.model" and "gpt-9" in str(e)
    d["demand"]["training"] = {"synth": {"jobs": -3}}
    e = err_of(tmp_path, d, check=False)
    assert e.field == "demand.training.synth.jobs" and "positive integer, got -3" in str(e)
