"""Where things are: the repository root and the shared reference data beside it."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import FleetError

PACKAGE_DIR = Path(__file__).resolve().parent
REPO_ROOT = PACKAGE_DIR.parent
CATALOG_DIR = PACKAGE_DIR / "catalog"


def shared_data_dir() -> Path:
    """The public reference data (``../shared/data`` next to the repository root).

    ``FLEET_SHARED_DATA`` overrides the location.  Raises a clear error if it is missing.
    """
    env = os.environ.get("FLEET_SHARED_DATA")
    candidates = [Path(env)] if env else []
    candidates += [REPO_ROOT.parent / "shared" / "data", Path.cwd().parent / "shared" / "data"]
    for c in candidates:
        if c.is_dir():
            return c.resolve()
    raise FleetError(
        "reference data not found: looked for "
        + ", ".join(str(c) for c in candidates)
        + " (expected the shared/ folder beside the repository, or FLEET_SHARED_DATA set)"
    )


def shared_data(*parts: str) -> Path:
    p = shared_data_dir().joinpath(*parts)
    if not p.exists():
        raise FleetError(f"reference data file missing: {p}")
    return p
