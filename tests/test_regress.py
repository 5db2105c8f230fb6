"""Scenario regression: expectation logic, `fleet check` exit codes and messages, `--update`
rewriting only the expectations block, and the pytest fixture."""

from __future__ import annotations

import math

import pytest
import yaml

from fleet.cli import main
from fleet.regress import (DEFAULT_REL_TOL, check_scenario, evaluate, rewrite_expectations,
                           update_scenario)
from fleet.scenario import Expectation, load_scenario
from fleet.testing import fleet_check  # noqa: F401  (the plugin's fixture, used below)

from _scenarios import small_scenario

METRICS = {"energy.it": (1000.0, "J"), "slo.attainment": (0.97, "1"), "odd": (math.nan, "J")}


@pytest.mark.parametrize("exp, ok", [
    (dict(value=1000.0), True),
    (dict(value=1000.0 * (1 + DEFAULT_REL_TOL * 0.99)), True),
    (dict(value=1000.0 * (1 + DEFAULT_REL_TOL * 1.5)), False),
    (dict(value=1100.0, rel_tol=0.1), True),
    (dict(value=1100.0, rel_tol=0.05), False),
    (dict(value=1050.0, abs_tol=60.0), True),
    (dict(value=1050.0, abs_tol=40.0), False),        # abs_tol alone: no default rel_tol added
    (dict(min=900.0, max=1100.0), True),
    (dict(min=1001.0), False),
    (dict(max=999.0), False),
])
def test_evaluate_tolerances_and_bounds(exp, ok):
    (o,) = evaluate([Expectation(metric="energy.it", **exp)], METRICS)
    assert o.ok is ok
    if not ok:
        assert "energy.it: expected" in o.describe() and "actual 1000 J" in o.describe()


def test_evaluate_missing_and_nan_metrics_fail_with_a_hint():
    out = evaluate([Expectation(metric="energy.itt", value=1.0), Expectation(metric="odd", min=0.0)], METRICS)
    assert not out[0].ok and "did you mean energy.it" in out[0].describe()
    assert not out[1].ok and "not a finite number" in out[1].describe()


TEXT = """# my scenario
name: x   # inline comment kept
fleet:
  pools: []
expectations:
  # old comment
  - metric: energy.it
    value: 5
    rel_tol: 0.1
  - {metric: slo.attainment, min: 0.9}    # why this bound

# trailing section comment
report:
  title: t
"""


def test_rewrite_keeps_everything_but_the_block():
    new = rewrite_expectations(TEXT, [{"metric": "energy.it", "value": 1234.5, "rel_tol": 0.1},
                                      {"metric": "slo.attainment", "min": 0.9}])
    assert new.startswith("# my scenario\nname: x   # inline comment kept\n")
    assert "# trailing section comment\nreport:\n  title: t\n" in new
    assert "  - {metric: energy.it, value: 1234.5, rel_tol: 0.1}" in new
    assert "  - {metric: slo.attainment, min: 0.9}   # why this bound" in new      # entry comments kept
    d = yaml.safe_load(new)
    assert d["expectations"] == [{"metric": "energy.it", "value": 1234.5, "rel_tol": 0.1},
                                 {"metric": "slo.attainment", "min": 0.9}]
    assert d["report"] == {"title": "t"}
    # appended when absent
    added = rewrite_expectations("name: y\n", [{"metric": "a", "value": 2.5e9}])
    assert yaml.safe_load(added)["expectations"] == [{"metric": "a", "value": 2.5e9}]


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    d = tmp_path_factory.mktemp("chk")
    path = small_scenario(d, "chk", expectations=[
        {"metric": "energy.it", "value": 1.0, "rel_tol": 0.01},          # deliberately wrong
        {"metric": "slo.attainment", "min": 0.0, "max": 1.0},
        {"metric": "pool.h100.gpus", "value": 2, "abs_tol": 0}])
    return path, check_scenario(path)


def test_check_lists_every_metric_outside_its_tolerance(checked):
    path, res = checked
    assert not res.ok and len(res.outcomes) == 3 and len(res.failures) == 1
    msg = res.describe()
    assert "1 of 3 expectations failed" in msg and "energy.it: expected 1" in msg and " J " in msg


def test_update_rewrites_values_then_check_passes(checked, capsys):
    path, res = checked
    before = path.read_text()
    diff = update_scenario(path, res.metrics)
    assert diff.startswith("---") and "+  - {metric: energy.it, value: " in diff
    sc = load_scenario(path)
    e = {x.metric: x for x in sc.expectations}
    assert e["energy.it"].value == pytest.approx(res.metrics["energy.it"][0], rel=1e-5)
    assert e["energy.it"].rel_tol == 0.01 and e["slo.attainment"].min == 0.0
    assert update_scenario(path, res.metrics) == ""              # idempotent
    # the rest of the file reads back the same
    old, new = yaml.safe_load(before), yaml.safe_load(path.read_text())
    old.pop("expectations"), new.pop("expectations")
    assert old == new
    assert main(["check", str(path), "--quiet"]) == 0
    assert "1 scenarios checked, 0 failed" in capsys.readouterr().out


def test_cli_check_exit_codes_and_update(tmp_path, capsys):
    path = small_scenario(tmp_path, "cli", expectations=[{"metric": "carbon.total", "value": 3.0}])
    plain = small_scenario(tmp_path, "noexp")                     # no expectations: skipped
    assert main(["check", str(tmp_path), "-q"]) == 1
    out = capsys.readouterr().out
    assert "carbon.total: expected 3" in out and "noexp.yaml: skipped (no expectations)" in out
    assert main(["check", str(path), "--update", "-q"]) == 0
    assert "+  - {metric: carbon.total, value: " in capsys.readouterr().out
    assert main(["check", str(tmp_path), "-q"]) == 0
    # --update on a scenario without expectations writes the default set
    assert main(["check", str(plain), "--update", "-q"]) == 0
    assert len(load_scenario(plain).expectations) >= 5
    assert main(["check", str(plain), "-q"]) == 0


def test_check_reports_a_bad_scenario_as_an_error(tmp_path, capsys):
    bad = small_scenario(tmp_path, "bad", expectations=[{"metric": "energy.it", "value": 1.0}],
                         fleet={"pools": [{"name": "p", "accelerator": "NoSuchGPU", "gpus": 1}]})
    res = check_scenario(bad)
    assert res.error and "fleet.pools[0].accelerator" in res.error and not res.ok
    assert main(["check", str(bad)]) == 1


def test_fixture_passes_and_fails(tmp_path, fleet_check):  # noqa: F811 (the imported fixture)
    good = small_scenario(tmp_path, "good", expectations=[{"metric": "pool.h100.gpus", "value": 2}])
    assert fleet_check(good).ok
    wrong = small_scenario(tmp_path, "wrong", expectations=[{"metric": "pool.h100.gpus", "value": 3}])
    with pytest.raises(pytest.fail.Exception, match="pool.h100.gpus: expected 3"):
        fleet_check(wrong)
