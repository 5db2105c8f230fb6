"""The project's error types.

Every error a user can cause (bad input file, bad scenario, impossible configuration,
infeasible plan) is a :class:`FleetError`.  The message names *where* (file, line, column or
YAML path) and *what was expected*, so a planner can act on it.  The CLI prints the message
and exits with status 2; nothing else ever escapes to the user as a traceback.
"""

from __future__ import annotations

from pathlib import Path


class FleetError(Exception):
    """Base class of every error the user can cause and fix."""

    exit_code = 2
    # the simulation component the error comes from, e.g. ("router", model): set by its raiser or by
    # fleet.sim.engine.tag_origin, mapped to the scenario's YAML field by fleet.sim.assemble
    sim_origin: tuple[str, str] | None = None


def fmt_value(v: object) -> str:
    """A value as an error message shows it: numbers plainly (``212471.399``, never
    ``np.float64(212471.399)``), text quoted, anything else as ``repr``."""
    item = getattr(v, "item", None)
    if item is not None and type(v).__module__ == "numpy":
        try:
            v = item()
        except (TypeError, ValueError):
            pass
    if isinstance(v, bool) or v is None:
        return repr(v)
    if isinstance(v, float):
        return repr(v) if v != v or v in (float("inf"), float("-inf")) else f"{v:.10g}"
    if isinstance(v, int):
        return str(v)
    return repr(v)


def _where(path: str | Path | None, line: int | None = None, column: str | None = None) -> str:
    parts = []
    if path is not None:
        loc = str(path)
        if line is not None:
            loc += f":{line}"
        parts.append(loc)
    elif line is not None:
        parts.append(f"line {line}")
    if column is not None:
        parts.append(f"column {column!r}")
    return ", ".join(parts)


class InputError(FleetError):
    """A malformed input file (trace, grid signal, catalog row).

    ``path``, ``line`` (1-based, counting the header as line 1 for CSV) and ``column`` locate the
    problem; ``expected`` says what would have been valid.
    """

    def __init__(self, message: str, *, path: str | Path | None = None, line: int | None = None,
                 column: str | None = None, expected: str | None = None):
        self.path = str(path) if path is not None else None
        self.line = line
        self.column = column
        self.expected = expected
        where = _where(path, line, column)
        text = f"{where}: {message}" if where else message
        if expected:
            text += f" (expected {expected})"
        super().__init__(text)


class TraceError(InputError):
    """A malformed request or job trace."""


class GridError(InputError):
    """A malformed grid signal (carbon intensity, price, PUE series)."""


class CatalogError(InputError):
    """A malformed catalog row, or a name that the catalog does not know."""


class ScenarioError(FleetError):
    """An invalid scenario: ``field`` is the YAML path, e.g. ``pools[1].gpus``."""

    def __init__(self, message: str, *, path: str | Path | None = None, field: str | None = None):
        self.path = str(path) if path is not None else None
        self.field = field
        where = ": ".join(p for p in (self.path, field) if p)
        super().__init__(f"{where}: {message}" if where else message)


class OutputError(FleetError):
    """An output location fleet cannot or will not write: ``path`` and the ``reason`` (read-only,
    full disk, a file where a folder is expected, a name too long, ...)."""

    def __init__(self, reason: str, *, path: str | Path | None = None):
        self.path = str(path) if path is not None else None
        self.reason = reason
        super().__init__(f"{path}: {reason}" if path is not None else reason)


class ConfigurationError(FleetError):
    """A configuration that cannot run: a model that does not fit the GPUs, a batch above the
    memory limit, a power cap outside the accelerator's range."""


class InfeasibleError(FleetError):
    """An optimisation model with no solution; ``conflicts`` names the constraints that clash, in
    the scenario's own words."""

    def __init__(self, message: str, conflicts: list[str] | None = None):
        self.conflicts = list(conflicts or [])
        text = message
        if self.conflicts:
            text += "\n  conflicting constraints:\n" + "\n".join(f"  - {c}" for c in self.conflicts)
        super().__init__(text)
