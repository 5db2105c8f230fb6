"""Shared fixtures.  Tests that need the public reference data find it beside the repository
(``../shared/data``) and fail with a clear message when it is missing."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings

# Property tests: no per-example deadline (2 shared cores make timings noisy), and under CI a fixed
# seed, so a CI run is reproducible; locally hypothesis explores new examples on every run.
settings.register_profile("fleet", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fleet-ci", parent=settings.get_profile("fleet"), derandomize=True,
                          database=None, print_blob=True)
settings.load_profile("fleet-ci" if os.environ.get("CI") else "fleet")

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
