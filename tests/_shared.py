"""The public reference data (``../shared/data``) for tests: one rule for every test that needs it.

A fresh clone has no ``../shared``: there a test that needs the data is *skipped*, with the reason.
Under ``CI`` the data is part of the environment, so its absence is a *failure*, not a skip.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def need_shared_data() -> Path:
    """The reference data folder; skips the calling test when it is absent (fails under ``CI``)."""
    import fleet.paths
    from fleet.errors import FleetError

    try:
        return fleet.paths.shared_data_dir()
    except FleetError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"{exc}; CI is set, and CI must have the reference data", pytrace=False)
        pytest.skip(f"needs the public reference data: {exc}")
