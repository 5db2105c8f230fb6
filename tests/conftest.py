"""Shared fixtures.  Tests that need the public reference data find it beside the repository
(``../shared/data``) and fail with a clear message when it is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    from fleet.paths import shared_data_dir
    from fleet.errors import FleetError

    try:
        return shared_data_dir()
    except FleetError as exc:  # pragma: no cover - environment problem, not a code bug
        pytest.fail(str(exc))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
