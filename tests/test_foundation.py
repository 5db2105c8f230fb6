"""The foundation: errors, atomic output, the CLI shell."""

from __future__ import annotations

import json

import pytest

from fleet import _io
from fleet.cli import main
from fleet.errors import InputError, InfeasibleError, ScenarioError


def test_input_error_names_file_line_column_and_expectation():
    err = InputError("not a number: 'abc'", path="t.csv", line=7, column="ContextTokens",
                     expected="a non-negative integer")
    text = str(err)
    assert "t.csv:7" in text and "'ContextTokens'" in text and "non-negative integer" in text


def test_scenario_and_infeasible_errors_carry_their_location():
    assert str(ScenarioError("expected a positive integer, got -4", path="s.yaml",
                             field="pools[1].gpus")) == "s.yaml: pools[1].gpus: expected a positive integer, got -4"
    e = InfeasibleError("no plan", ["site power 100 kW", "demand 2000 req/s"])
    assert "site power 100 kW" in str(e) and e.conflicts == ["site power 100 kW", "demand 2000 req/s"]


def test_atomic_dir_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out"
    with pytest.raises(RuntimeError):
        with _io.atomic_dir(target) as d:
            (d / "half.txt").write_text("x")
            raise RuntimeError("boom")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_atomic_dir_replaces_old_output(tmp_path):
    target = tmp_path / "out"
    target.mkdir()
    (target / "old.txt").write_text("old")
    with _io.atomic_dir(target) as d:
        (d / "new.txt").write_text("new")
    assert sorted(p.name for p in target.iterdir()) == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_atomic_json(tmp_path):
    p = _io.write_json_atomic(tmp_path / "a" / "s.json", {"x": 1})
    assert json.loads(p.read_text()) == {"x": 1}


def test_cli_without_command_prints_help_and_fails(capsys):
    assert main([]) == 2
    assert "usage: fleet" in capsys.readouterr().out
