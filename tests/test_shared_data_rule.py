"""Tests that need ../shared/data: skipped with the reason on a fresh clone, failed under CI."""

from __future__ import annotations

import pytest

import fleet.paths
from fleet.errors import FleetError

from _shared import need_shared_data


@pytest.fixture
def no_data(monkeypatch):
    def missing():
        raise FleetError("reference data not found: looked for /nowhere/shared/data")
    monkeypatch.setattr(fleet.paths, "shared_data_dir", missing)


def test_absent_data_skips_with_the_reason(no_data, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="reference data.*/nowhere/shared/data"):
        need_shared_data()


def test_absent_data_fails_under_ci(no_data, monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="CI is set"):
        need_shared_data()


def test_present_data_is_the_folder(monkeypatch, tmp_path):
    monkeypatch.setattr(fleet.paths, "shared_data_dir", lambda: tmp_path)
    assert need_shared_data() == tmp_path
