"""Scenarios that used to destroy or falsify data, crash, hang or be silently accepted (issue 8):
each is now a ScenarioError naming the file and the field (or line), before any work is done."""

from __future__ import annotations

import copy
import gzip
from pathlib import Path

import pytest
import yaml

from fleet.data import DEFAULT_SCENARIO
from fleet.errors import FleetError, ScenarioError
from fleet.scenario import load_scenario

from _scenarios import small_scenario

REPO = Path(__file__).resolve().parents[1]


def _base(tmp_path: Path) -> dict:
    return yaml.safe_load(small_scenario(tmp_path, "base").read_text())


def _write(tmp_path: Path, data: dict, name: str = "bad") -> Path:
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return p


def _refused(tmp_path: Path, edit, field: str, *words: str) -> ScenarioError:
    data = copy.deepcopy(_base(tmp_path))
    edit(data)
    p = _write(tmp_path, data)
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p)
    msg = str(ei.value)
    assert str(p) in msg
    assert ei.value.field is not None and ei.value.field.startswith(field), msg
    for w in words:
        assert w in msg, msg
    return ei.value


# ---------------------------------------------------------------- destroy or falsify data
@pytest.mark.parametrize("name", [".", "..", "...", "./x", "a/b", ""])
def test_names_of_only_dots_or_with_slashes_are_refused(tmp_path, name):
    _refused(tmp_path, lambda d: d.update(name=name), "name")


@pytest.mark.parametrize("name", ["a.b", ".hidden", "v1.2-x_y", "x..y"])
def test_names_with_dots_and_letters_are_fine(tmp_path, name):
    data = _base(tmp_path)
    data["name"] = name
    assert load_scenario(_write(tmp_path, data)).name == name


def test_pool_and_row_names_of_only_dots_are_refused(tmp_path):
    _refused(tmp_path, lambda d: d["fleet"]["pools"][0].update(name=".."), "fleet.pools[0].name", "not only dots")
    _refused(tmp_path, lambda d: d["fleet"]["pools"][0].update(row="."), "fleet.pools[0].row")


def test_telemetry_interval_longer_than_the_horizon_is_refused(tmp_path):
    # it used to stretch the horizon to the interval: energy, cost and carbon inflated 100x here
    _refused(tmp_path, lambda d: d["simulation"].update(telemetry_interval_s=60000), "simulation",
             "telemetry_interval_s", "horizon_s")


def test_telemetry_interval_longer_than_the_demand_without_horizon_is_refused(tmp_path):
    from fleet.sim import simulate

    data = _base(tmp_path)
    data["simulation"] = {"telemetry_interval_s": 86400}
    sc = load_scenario(_write(tmp_path, data))
    with pytest.raises(ScenarioError, match="telemetry_interval_s"):
        simulate(sc, progress=False)


def test_duplicate_keys_are_refused_with_both_lines(tmp_path):
    p = tmp_path / "dup.yaml"
    text = small_scenario(tmp_path, "dup").read_text().replace("gpus: 2\n", "gpus: 2\n    gpus: 4096\n", 1)
    p.write_text(text)
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p)
    first = text.splitlines().index("    gpus: 2") + 1
    assert f"duplicate key 'gpus' at line {first + 1} (first at line {first})" in str(ei.value)


def test_unknown_whatif_constant_is_refused_naming_the_key(tmp_path):
    _refused(tmp_path, lambda d: d.update(whatif={"label": "x", "device_constants": {"memory.pj_per_bit.HBM9": 1.0}}),
             "whatif.device_constants.memory.pj_per_bit.HBM9", "unknown device constant")


def test_rack_budget_for_a_rack_that_does_not_exist_is_refused(tmp_path):
    _refused(tmp_path, lambda d: d["fleet"]["power"].update(racks={"row0/rack7": 5000}),
             "fleet.power.racks.row0/rack7", "unknown rack", "row0/rack0")
    data = _base(tmp_path)
    data["fleet"]["power"]["racks"] = {"row0/rack0": 5000}
    load_scenario(_write(tmp_path, data))       # the one rack exists


# ---------------------------------------------------------------- tracebacks, by cause
@pytest.mark.parametrize("kind", ["binary", "gzip", "utf16", "latin1", "nul"])
def test_files_that_are_not_utf8_yaml_are_refused(tmp_path, kind):
    text = small_scenario(tmp_path, "enc").read_text().replace("name: enc", "name: enc  # café")
    raw = {"binary": bytes(range(256)) * 4, "gzip": gzip.compress(text.encode()),
           "utf16": text.encode("utf-16"), "latin1": text.encode("latin-1"),
           "nul": text.encode() + b"\x00\x01"}[kind]
    p = tmp_path / "enc.yaml"
    p.write_bytes(raw)
    with pytest.raises(ScenarioError) as ei:
        load_scenario(p)
    assert str(p) in str(ei.value)


def test_a_bom_is_accepted(tmp_path):
    p = small_scenario(tmp_path, "bom")
    p.write_bytes(b"\xef\xbb\xbf" + p.read_bytes())
    assert load_scenario(p).name == "bom"


@pytest.mark.parametrize("depth", [100, 5000])
def test_deeply_nested_yaml_is_refused(tmp_path, depth):
    p = tmp_path / "deep.yaml"
    p.write_text("name: x\ndescription: " + "[" * depth + "]" * depth + "\n")
    with pytest.raises(ScenarioError, match="nesting deeper than"):
        load_scenario(p)
    p.write_text("name: x\nfleet:\n" + "".join("  " * i + "a:\n" for i in range(1, depth // 10 + 70)))
    with pytest.raises(ScenarioError, match="nesting deeper than"):
        load_scenario(p)


@pytest.mark.parametrize("where", ["seed", "synth", "training"])
def test_negative_seeds_are_refused(tmp_path, where):
    def edit(d):
        if where == "seed":
            d["seed"] = -1
        elif where == "synth":
            d["demand"]["inference"][0] = {"model": "llama-3.1-8b", "synth": {"rate": 1, "hours": 0.1, "seed": -5}}
        else:
            d["fleet"]["pools"].append({"name": "t", "accelerator": "H100-SXM", "gpus": 8, "role": "training"})
            d["demand"]["training"] = {"synth": {"jobs": 2, "seed": -1}}
    field = {"seed": "seed", "synth": "demand.inference[0].synth.seed", "training": "demand.training.synth.seed"}
    _refused(tmp_path, edit, field[where], "-")


@pytest.mark.parametrize("start", ["9999-12-31T23:00:00Z", "1066-10-14T00:00:00Z"])
def test_a_start_date_outside_the_supported_years_is_refused(tmp_path, start):
    _refused(tmp_path, lambda d: d.update(start_utc=start), "start_utc", "2200")


# ---------------------------------------------------------------- sizes
@pytest.mark.parametrize("edit, field, words", [
    (lambda d: d["fleet"]["pools"][0].update(gpus=10_000_000), "fleet.pools[0].gpus", ["10,000,000", "100,000"]),
    (lambda d: d["fleet"]["pools"][0]["serve"][0].update(max_batch=10**9), "fleet.pools[0].serve[0].max_batch",
     ["4,096"]),
    (lambda d: d["demand"]["inference"].__setitem__(0, {"model": "llama-3.1-8b", "synth": {"rate": 1e7, "hours": 1}}),
     "demand.inference[0].synth", ["fluid", "requests"]),
    (lambda d: (d["demand"]["inference"].__setitem__(0, {"model": "llama-3.1-8b", "synth": {"rate": 10, "hours": 1e6}}),
                d["simulation"].pop("horizon_s")), "demand.inference[0].synth", ["fluid", "horizon"]),
    (lambda d: (d["fleet"]["pools"].append({"name": "t", "accelerator": "H100-SXM", "gpus": 8, "role": "training"}),
                d["demand"].update(training={"synth": {"jobs": 1_000_000}})), "demand.training.synth.jobs",
     ["100,000"]),
])
def test_requests_too_large_are_refused_before_any_work(tmp_path, edit, field, words):
    _refused(tmp_path, edit, field, *words)


def test_rate_scale_too_large_is_refused_saying_how_large(tmp_path):
    from fleet.sim import simulate

    data = _base(tmp_path)
    data["demand"]["inference"][0]["trace"]["rate_scale"] = 1e5
    sc = load_scenario(_write(tmp_path, data))
    with pytest.raises(ScenarioError) as ei:
        simulate(sc, progress=False)
    assert ei.value.field == "demand.inference[0].trace" and "rate_scale" in str(ei.value)


def test_fluid_mode_takes_long_synthetic_demand(tmp_path):
    data = _base(tmp_path)
    data["demand"]["inference"][0] = {"model": "llama-3.1-8b", "synth": {"rate": 10, "hours": 24 * 365}}
    data["simulation"] = {"mode": "fluid", "telemetry_interval_s": 3600}
    load_scenario(_write(tmp_path, data))       # accepted: fluid mode never generates every request


# ---------------------------------------------------------------- bad values accepted silently
@pytest.mark.parametrize("edit, field", [
    (lambda d: d["site"].update(carbon_intensity=-1), "site.carbon_intensity"),
    (lambda d: d["site"].update(pue=0.9), "site.pue"),
    (lambda d: d["site"].update(region="atlantis"), "site.region"),
    (lambda d: d["fleet"]["pools"][0].update(server={"per_gpu_w": 1e300}), "fleet.pools[0].server.per_gpu_w"),
    (lambda d: d["fleet"]["pools"][0].update(server={"static_w": 1e12}), "fleet.pools[0].server.static_w"),
])
def test_implausible_values_are_refused(tmp_path, edit, field):
    _refused(tmp_path, edit, field)


def test_error_messages_print_plain_numbers():
    import numpy as np

    from fleet.errors import fmt_value
    from fleet.scenario import parse_scenario

    assert fmt_value(np.float64(212471.399)) == "212471.399"
    assert fmt_value(np.int64(7)) == "7" and fmt_value("x") == "'x'" and fmt_value(float("nan")) == "nan"
    data = yaml.safe_load(DEFAULT_SCENARIO.read_text())
    data["simulation"]["horizon_s"] = np.float64(-212471.399)
    with pytest.raises(ScenarioError) as ei:
        parse_scenario(data, path="x.yaml")
    assert "got -212471.399" in str(ei.value) and "np." not in str(ei.value)


def test_error_from_a_job_table_prints_plain_numbers(tmp_path):
    from fleet.workload.jobs import generate_jobs, read_jobs, write_jobs

    p = tmp_path / "jobs.csv"
    write_jobs(generate_jobs(n=3, seed=1), p)
    lines = p.read_text().splitlines()
    cols = lines[0].split(",")
    cells = lines[1].split(",")
    cells[cols.index("submit_s")] = "-12.5"
    p.write_text("\n".join([lines[0], ",".join(cells), *lines[2:]]) + "\n")
    with pytest.raises(FleetError) as ei:
        read_jobs(p)
    assert "-12.5" in str(ei.value) and "np." not in str(ei.value)
