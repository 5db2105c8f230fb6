"""Shared fixtures.  Tests that need the public reference data find it beside the repository
(``../shared/data``) through the ``shared_data`` fixture: skipped with the reason when it is
missing, failed when it is missing under ``CI`` (see ``_shared.need_shared_data``)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from _shared import need_shared_data
from hypothesis import HealthCheck, settings

# Property tests: no per-example deadline (2 shared cores make timings noisy), and under CI a fixed
# seed, so a CI run is reproducible; locally hypothesis explores new examples on every run.
settings.register_profile("fleet", deadline=None, suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("fleet-ci", parent=settings.get_profile("fleet"), derandomize=True,
                          database=None, print_blob=True)
settings.load_profile("fleet-ci" if os.environ.get("CI") else "fleet")

# tests draw into files only; the library never picks a backend (the CLI does, for itself)
os.environ.setdefault("MPLBACKEND", "Agg")

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return need_shared_data()


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT
