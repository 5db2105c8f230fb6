"""``fleet sweep``: many scenarios at once, as Dask tasks, resumable.

A *sweep file* (YAML, ``kind: sweep``) names a base scenario, the parameters to vary by their
scenario paths, how to sample them, seeds for replications and the metrics to collect::

    kind: sweep
    name: prices_regions_caps
    base: small.yaml                  # a scenario file (relative to this file), or the scenario inline
    parameters:
      - {path: accounting.accelerators.H100-SXM.price_usd_per_gpu_hour, values: [2.0, 3.5]}
      - {path: site.region, values: [caiso, de]}
      - {path: "fleet.pools[0].power_cap_w", range: {start: 400, stop: 700, num: 4}}
      - {path: "demand.inference[0].synth.rate", low: 2.0, high: 8.0}     # continuous (sampled designs)
    design: {method: grid}            # grid | random | lhs | sobol, with samples: N and seed
    seeds: [1, 2]                     # replications: every point once per scenario seed
    metrics: [energy.it, cost.total, carbon.total, slo.attainment]
    report: {pareto: [cost.total, carbon.total], objective: cost.total,
             constraints: [{metric: slo.attainment, min: 0.99}], best: 10}

A *point* is the base scenario with one value per parameter (set on the raw mapping by path, then
re-validated by :func:`fleet.scenario.parse_scenario`, so a bad value is a recorded ``invalid``
point, not a crash) and one seed.  Its identity is the content hash of that applied scenario
(seed included): a resumed sweep runs only the points whose identity has no result yet, and the
same point reached twice by a design (a Sobol design with discrete parameters) runs once.

Points run in batches (one Dask task each, so that scheduling costs little at 10,000 points) on a
``LocalCluster`` of one single-threaded worker process per core, or on an existing scheduler.
Results are consumed as they finish (``distributed.as_completed``): each finished batch becomes
one Parquet file under ``OUT/results/`` written atomically.  Before anything runs, every worker
must report the same ``fleet.__version__`` and the same hash of the installed package's source as
this process; a worker that cannot import fleet or runs another version is refused by name.

The analysis (:func:`tornado_table`, :func:`sobol_indices`, :func:`pareto_front`,
:func:`best_points`) works on the results table; :mod:`fleet.report.sweep` draws it.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import itertools
import json
import logging
import math
import os
import re
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import Field, ValidationError, model_validator

from . import __version__
from ._io import atomic_path, write_json_atomic
from .errors import FleetError, ScenarioError
from .scenario import Strict, _format_errors, parse_scenario, read_yaml, scenario_hash

if TYPE_CHECKING:  # pragma: no cover
    import pandas as pd

log = logging.getLogger("fleet.sweep")

SWEEP_KIND = "sweep"
#: a sweep's output folder: the manifest, the design and the results dataset
MANIFEST = "sweep.json"
DESIGN_FILE = "design.parquet"
RESULTS_DIR = "results"
#: statuses of a point: it ran; its scenario did not validate; it failed while running
STATUSES = ("ok", "invalid", "error")
#: Parquet column prefixes
PARAM_PREFIX = "param."
METRIC_PREFIX = "metric."
#: default bootstrap resamples for the Sobol confidence intervals, and their level
SOBOL_BOOTSTRAP = 1000
SOBOL_CI_LEVEL = 0.95
#: batch size bounds: at most this many points per task (so progress and resumption stay fine
#: grained), and about this many tasks per worker (so load balances when points differ in cost)
MAX_BATCH = 256
TASKS_PER_WORKER = 8


# ================================================================================ the sweep file
class RangeSpec(Strict):
    """Evenly spaced values: ``num`` values from ``start`` to ``stop`` inclusive, or ``start``,
    ``start + step``, ... up to ``stop`` inclusive."""

    start: Annotated[float, Field(allow_inf_nan=False)]
    stop: Annotated[float, Field(allow_inf_nan=False)]
    num: Annotated[int, Field(strict=True, ge=2)] | None = None
    step: Annotated[float, Field(gt=0, allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _one(self):
        if (self.num is None) == (self.step is None):
            raise ValueError("expected exactly one of 'num' or 'step'")
        if self.stop < self.start:
            raise ValueError("expected stop >= start")
        return self

    def values(self) -> list[float]:
        if self.num is not None:
            return [float(v) for v in np.linspace(self.start, self.stop, self.num)]
        assert self.step is not None        # _one: exactly one of num and step
        n = int(math.floor((self.stop - self.start) / self.step + 1e-9)) + 1
        return [float(self.start + k * self.step) for k in range(n)]


class ParamSpec(Strict):
    """One parameter: a scenario path and its values (a list, or a range), or the interval
    ``[low, high]`` that random, Latin-hypercube and Sobol designs sample (``log``: uniform in
    log space; ``integer``: rounded)."""

    path: str
    name: str | None = None
    values: list[Any] | None = None
    range: RangeSpec | None = None
    low: Annotated[float, Field(allow_inf_nan=False)] | None = None
    high: Annotated[float, Field(allow_inf_nan=False)] | None = None
    log: bool = False
    integer: bool = False

    @model_validator(mode="after")
    def _one_source(self):
        n = sum([self.values is not None, self.range is not None, self.low is not None or self.high is not None])
        if n != 1:
            raise ValueError("expected exactly one of 'values', 'range' or 'low'/'high'")
        if self.values is not None and not self.values:
            raise ValueError("expected at least one value")
        if (self.low is None) != (self.high is None):
            raise ValueError("expected both 'low' and 'high'")
        if self.low is not None and not self.high > self.low:
            raise ValueError("expected high > low")
        if self.log and self.low is not None and self.low <= 0:
            raise ValueError("expected low > 0 for a log-uniform parameter")
        return self


class DesignSpec(Strict):
    """How points are chosen: ``grid`` (the cartesian product of every parameter's values, the
    first parameter varying slowest), ``random`` (``samples`` independent uniform draws), ``lhs``
    (a Latin hypercube of ``samples`` points) or ``sobol`` (Saltelli's design for Sobol indices:
    ``samples`` base points, a power of 2, give ``samples * (parameters + 2)`` points)."""

    method: Literal["grid", "random", "lhs", "sobol"] = "grid"
    samples: Annotated[int, Field(strict=True, gt=0)] | None = None
    seed: Annotated[int, Field(strict=True)] = 0


class ConstraintSpec(Strict):
    metric: str
    min: Annotated[float, Field(allow_inf_nan=False)] | None = None
    max: Annotated[float, Field(allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _something(self):
        if self.min is None and self.max is None:
            raise ValueError("expected 'min' and/or 'max'")
        return self


class SweepReportSpec(Strict):
    """The sweep report: a Pareto plot of two metrics (default: the first two), the best points
    by ``objective`` (default: the first metric) under ``constraints``; every metric is minimised
    unless it is listed in ``maximize``."""

    pareto: list[str] | None = None
    objective: str | None = None
    maximize: list[str] = Field(default_factory=list)
    constraints: list[ConstraintSpec] = Field(default_factory=list)
    best: Annotated[int, Field(strict=True, gt=0)] = 10
    pdf: bool = True
    png: bool = True
    dpi: Annotated[int, Field(strict=True, ge=50, le=600)] = 110

    @model_validator(mode="after")
    def _two(self):
        if self.pareto is not None and len(self.pareto) != 2:
            raise ValueError("expected two metrics for 'pareto'")
        return self


class SweepFile(Strict):
    kind: Literal["sweep"]
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")]
    description: str = ""
    base: str | dict
    parameters: list[ParamSpec]
    design: DesignSpec = Field(default_factory=DesignSpec)
    seeds: list[Annotated[int, Field(strict=True)]] | None = None
    metrics: list[str]
    batch_size: Annotated[int, Field(strict=True, gt=0)] | None = None
    report: SweepReportSpec = Field(default_factory=SweepReportSpec)

    @model_validator(mode="after")
    def _check(self):
        if not self.parameters:
            raise ValueError("expected at least one parameter")
        if not self.metrics:
            raise ValueError("expected at least one metric")
        for what, items in (("parameter paths", [p.path for p in self.parameters]),
                            ("parameter names", [p.name or p.path for p in self.parameters]),
                            ("metrics", self.metrics)):
            dup = sorted({x for x in items if items.count(x) > 1})
            if dup:
                raise ValueError(f"{what} must be unique: {', '.join(dup)}")
        return self


# ================================================================================ scenario paths
_TOKEN = re.compile(r"""\.?([^.\[\]'"]+)|\[(\d+)\]|\[(['"])(.*?)\3\]""")


def parse_path(path: str) -> list[str | int]:
    """``fleet.pools[0].power_cap_w`` -> ``['fleet', 'pools', 0, 'power_cap_w']``; a key with dots
    is quoted: ``accounting.accelerators["H100-SXM"].purchase_usd``."""
    out: list[str | int] = []
    pos = 0
    while pos < len(path):
        m = _TOKEN.match(path, pos)
        if m is None or m.end() == pos or (pos == 0 and path.startswith(".")):
            raise ValueError(f"cannot read the scenario path {path!r} at character {pos + 1}")
        if m.group(1) is not None:
            out.append(m.group(1))
        elif m.group(2) is not None:
            out.append(int(m.group(2)))
        else:
            out.append(m.group(4))
        pos = m.end()
    if not out:
        raise ValueError("empty scenario path")
    return out


@lru_cache(maxsize=4096)
def _keys(path: str) -> tuple[str | int, ...]:
    return tuple(parse_path(path))


def _shallow(x):
    return dict(x) if isinstance(x, dict) else list(x) if isinstance(x, list) else x


def set_path(data: dict, path: str, value: Any, *, copy_on_write: bool = False) -> None:
    """Set ``value`` at scenario ``path`` in the raw mapping ``data`` (in place).  Missing mapping
    keys on the way are created; a list index must exist.  Raises ``KeyError``/``IndexError``/
    ``TypeError`` with a message naming the part of the path that does not fit.

    ``copy_on_write``: copy (shallowly) every container on the way instead of changing it, so
    that ``data`` (itself a fresh shallow copy) shares everything else with the mapping it was
    copied from."""
    keys = _keys(path)
    node: Any = data
    for i, k in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(k, int):
            if not isinstance(node, list):
                raise TypeError(f"{_path_text(keys[:i + 1])}: expected a list at {_path_text(keys[:i]) or 'the top'}")
            if not -len(node) <= k < len(node):
                raise IndexError(f"{_path_text(keys[:i + 1])}: the list has {len(node)} entries")
        elif not isinstance(node, dict):
            raise TypeError(f"{_path_text(keys[:i + 1])}: expected a mapping at {_path_text(keys[:i]) or 'the top'}")
        if last:
            node[k] = value
            return
        child = node[k] if isinstance(k, int) else node.get(k)
        if child is None:
            if isinstance(k, int) or isinstance(keys[i + 1], int):
                raise IndexError(f"{_path_text(keys[:i + 1])}: no list here to index")
            child = {}
        elif copy_on_write:
            child = _shallow(child)
        node[k] = child
        node = child


def _path_text(keys: Sequence[str | int]) -> str:
    out = ""
    for k in keys:
        if isinstance(k, int):
            out += f"[{k}]"
        elif re.fullmatch(r"[^.\[\]'\"]+", k):
            out += ("." if out else "") + k
        else:
            out += f'["{k}"]'
    return out


def apply_point(base: dict, params: dict[str, Any], seed: int | None, *, share: bool = False) -> dict:
    """A copy of the raw scenario ``base`` with each ``params`` path set to its value and, when
    ``seed`` is not None, the scenario seed.  ``share``: copy only the containers on the paths and
    share the rest with ``base`` (for reading only, e.g. hashing: much faster than a deep copy)."""
    if share:
        data = dict(base)
        for path, value in params.items():
            set_path(data, path, value, copy_on_write=True)
    else:
        data = copy.deepcopy(base)
        for path, value in params.items():
            set_path(data, path, copy.deepcopy(value))
    if seed is not None:
        data["seed"] = int(seed)
    return data


def point_identity(data: dict) -> str:
    """The identity of a point: the content hash of its applied scenario (seed included)."""
    return scenario_hash(data)


# ================================================================================ the sweep
@dataclass(frozen=True)
class Parameter:
    path: str
    name: str
    values: tuple | None = None          # discrete values (lists and ranges)
    low: float | None = None             # continuous interval (sampled designs)
    high: float | None = None
    log: bool = False
    integer: bool = False

    @property
    def column(self) -> str:
        return PARAM_PREFIX + self.name

    @property
    def numeric(self) -> bool:
        return _numeric(self.values)

    def from_unit(self, u: float) -> Any:
        """The value at ``u`` in [0, 1): a discrete value by index, or a point of the interval."""
        if self.values is not None:
            k = min(int(u * len(self.values)), len(self.values) - 1)
            return self.values[k]
        assert self.low is not None and self.high is not None     # no values: an interval
        if self.log:
            v = math.exp(math.log(self.low) + u * (math.log(self.high) - math.log(self.low)))
        else:
            v = self.low + u * (self.high - self.low)
        return int(round(v)) if self.integer else float(v)

    def cell(self, value: Any):
        """The value as stored in the results table (a number, or text)."""
        if self.numeric:
            return float(value)
        return value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)


@lru_cache(maxsize=256)
def _numeric(values: tuple | None) -> bool:
    if values is None:
        return True
    return all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)


@dataclass
class Constraint:
    metric: str
    min: float | None = None
    max: float | None = None

    def describe(self) -> str:
        parts = []
        if self.min is not None:
            parts.append(f"{self.metric} >= {self.min:g}")
        if self.max is not None:
            parts.append(f"{self.metric} <= {self.max:g}")
        return " and ".join(parts)


@dataclass
class Sweep:
    """A validated sweep file."""

    name: str
    base: dict                        # the raw base scenario
    base_path: Path | None            # where relative paths in it resolve (its file, or the sweep file)
    parameters: list[Parameter]
    metrics: list[str]
    method: str = "grid"
    samples: int | None = None
    sample_seed: int = 0
    seeds: list[int] | None = None
    batch_size: int | None = None
    description: str = ""
    path: Path | None = None
    pareto: tuple[str, str] | None = None
    objective: str | None = None
    maximize: set[str] = field(default_factory=set)
    constraints: list[Constraint] = field(default_factory=list)
    best: int = 10
    pdf: bool = True
    png: bool = True
    dpi: int = 110

    def identity(self) -> dict:
        """What a resumed sweep must share with the first run (the results' columns)."""
        return {"parameters": [p.path for p in self.parameters],
                "parameter_names": [p.name for p in self.parameters], "metrics": list(self.metrics)}


@dataclass
class Point:
    """One design row: its values, its seed and the identity of the scenario they make."""

    row: int                          # position in the design
    params: dict[str, Any]            # path -> value
    seed: int | None
    point_id: str
    sobol: tuple[str, int] | None = None   # ('A'|'B'|'AB<i>', base row) in a Sobol design


def is_sweep_file(path: str | Path) -> bool:
    """True when ``path`` is a YAML mapping with ``kind: sweep`` (fleet check skips those)."""
    try:
        return read_yaml(path).get("kind") == SWEEP_KIND
    except FleetError:
        return False


def load_sweep(path: str | Path) -> Sweep:
    """Read and validate a sweep file; every problem is a :class:`ScenarioError` naming the file
    and the YAML path.  The base scenario is validated too, and every parameter path must fit
    it."""
    path = Path(path)
    return parse_sweep(read_yaml(path), path=path)


def parse_sweep(data: dict, *, path: str | Path | None = None) -> Sweep:
    try:
        spec = SweepFile.model_validate(data)
    except ValidationError as exc:
        raise _format_errors(exc, path) from exc
    here = Path(path).resolve().parent if path is not None else Path.cwd()
    base_path: Path | None
    if isinstance(spec.base, str):
        base_path = (here / spec.base).resolve()
        if not base_path.is_file():
            raise ScenarioError(f"no such base scenario file {spec.base!r} (looked for {base_path})",
                                path=path, field="base")
        base = read_yaml(base_path)
    else:
        base_path = Path(path).resolve() if path is not None else None
        base = copy.deepcopy(spec.base)
    parse_scenario(base, path=base_path)      # the base itself must be a valid scenario

    params = []
    for i, p in enumerate(spec.parameters):
        where = f"parameters[{i}]"
        try:
            parse_path(p.path)
            set_path(copy.deepcopy(base), p.path, None)
        except (ValueError, KeyError, IndexError, TypeError) as exc:
            raise ScenarioError(f"the path does not fit the base scenario: {exc}", path=path,
                                field=f"{where}.path") from exc
        values = tuple(p.values) if p.values is not None else tuple(p.range.values()) if p.range else None
        params.append(Parameter(path=p.path, name=p.name or p.path, values=values, low=p.low, high=p.high,
                                log=p.log, integer=p.integer))
    d = spec.design
    if d.method == "grid":
        for i, par in enumerate(params):
            if par.values is None:
                raise ScenarioError("a grid needs 'values' or 'range' for every parameter "
                                    "(low/high is for random, lhs and sobol designs)", path=path,
                                    field=f"parameters[{i}]")
        if d.samples is not None:
            raise ScenarioError("'samples' is for random, lhs and sobol designs, not a grid", path=path,
                                field="design.samples")
    elif d.samples is None:
        raise ScenarioError(f"a {d.method} design needs 'samples'", path=path, field="design.samples")
    elif d.method == "sobol" and d.samples & (d.samples - 1):
        raise ScenarioError(f"a Sobol design needs a power of 2 base samples, got {d.samples}", path=path,
                            field="design.samples")
    rep = spec.report
    # two metrics (ReportSpec checks a given pair)
    pair = rep.pareto if rep.pareto else spec.metrics[:2] if len(spec.metrics) >= 2 else None
    pareto = (pair[0], pair[1]) if pair else None
    named = {*(pareto or ()), *( [rep.objective] if rep.objective else []), *rep.maximize,
             *(c.metric for c in rep.constraints)}
    unknown = sorted(m for m in named if m not in spec.metrics)
    if unknown:
        raise ScenarioError(f"report names metrics that the sweep does not collect: {', '.join(unknown)} "
                            f"(add them to 'metrics')", path=path, field="report")
    return Sweep(name=spec.name, base=base, base_path=base_path, parameters=params, metrics=list(spec.metrics),
                 method=d.method, samples=d.samples, sample_seed=d.seed, seeds=spec.seeds,
                 batch_size=spec.batch_size, description=spec.description,
                 path=Path(path).resolve() if path is not None else None, pareto=pareto,
                 objective=rep.objective or spec.metrics[0], maximize=set(rep.maximize),
                 constraints=[Constraint(c.metric, c.min, c.max) for c in rep.constraints], best=rep.best,
                 pdf=rep.pdf, png=rep.png, dpi=rep.dpi)


# ================================================================================ designs
def _unit_design(sw: Sweep) -> tuple[np.ndarray, list[tuple[str, int] | None]]:
    """Rows of values in [0, 1) per parameter for the sampled designs, with their Sobol role."""
    from scipy.stats import qmc

    d = len(sw.parameters)
    n = int(sw.samples or 0)
    if sw.method == "random":
        return np.random.default_rng(sw.sample_seed).random((n, d)), [None] * n
    if sw.method == "lhs":
        return qmc.LatinHypercube(d=d, seed=np.random.default_rng(sw.sample_seed)).random(n), [None] * n
    # sobol: Saltelli's design from one 2d-dimensional scrambled Sobol' sequence: A, B and, for
    # each parameter i, AB_i = A with column i from B (Saltelli et al. 2010, Comput. Phys. Commun.)
    ab = qmc.Sobol(d=2 * d, scramble=True, seed=np.random.default_rng(sw.sample_seed)).random_base2(
        int(math.log2(n)))
    a, b = ab[:, :d], ab[:, d:]
    rows: list[np.ndarray] = []
    roles: list[tuple[str, int] | None] = []
    for j in range(n):
        rows.append(a[j])
        roles.append(("A", j))
        rows.append(b[j])
        roles.append(("B", j))
        for i in range(d):
            r = a[j].copy()
            r[i] = b[j, i]
            rows.append(r)
            roles.append((f"AB{i}", j))
    return np.asarray(rows), roles


def design_points(sw: Sweep) -> list[Point]:
    """Every design row of the sweep, replications included (seed outermost within a row)."""
    if sw.method == "grid":
        grids: list[tuple] = []
        for p in sw.parameters:
            assert p.values is not None         # parse_sweep: a grid has values for every parameter
            grids.append(p.values)
        combos = list(itertools.product(*grids))
        roles: list = [None] * len(combos)
    else:
        unit, roles = _unit_design(sw)
        combos = [tuple(p.from_unit(float(u)) for p, u in zip(sw.parameters, row)) for row in unit]
    seeds: list[int | None] = list(sw.seeds) if sw.seeds else [None]
    out: list[Point] = []
    for combo, role in zip(combos, roles):
        params = {p.path: v for p, v in zip(sw.parameters, combo)}
        for s in seeds:
            data = apply_point(sw.base, params, s, share=True)
            out.append(Point(row=len(out), params=params, seed=int(data.get("seed", 0)) if s is None else s,
                             point_id=point_identity(data), sobol=role))
    return out


# ================================================================================ running points
PointFn = Callable[[dict, "Path | None"], dict]


def run_point(data: dict, base_path: Path | None) -> dict[str, tuple[float, str]]:
    """The default point: validate the applied scenario, run it (no report) and return every
    metric by name, as ``fleet check`` reads them (:func:`fleet.regress.flat_metrics`)."""
    from .regress import flat_metrics
    from .run import run_scenario

    sc = parse_scenario(data, path=base_path)
    return flat_metrics(run_scenario(sc, None, quiet=True, report=False))


def _worker_name() -> str:
    if "distributed" not in sys.modules:         # run here, serially: no need to import Dask
        return "local"
    try:
        from distributed import get_worker

        return str(get_worker().address)
    except (ImportError, ValueError):
        return "local"


_WORKER_LOGGING = False


def once_per_message() -> Callable[[logging.LogRecord], bool]:
    """A logging filter that lets each distinct (logger, message) through once: every point of a
    sweep repeats the same warning (a gap filled in a region's data, say)."""
    seen: set[tuple[str, str]] = set()

    def once(record: logging.LogRecord) -> bool:
        key = (record.name, record.getMessage())
        if key in seen:
            return False
        seen.add(key)
        return True

    return once


def _worker_logging() -> None:
    """On a Dask worker: fleet's warnings to stderr once per distinct message (every point of a
    sweep repeats the same note about, say, a gap filled in a region's data)."""
    global _WORKER_LOGGING
    if _WORKER_LOGGING:
        return
    _WORKER_LOGGING = True
    h = logging.StreamHandler(sys.stderr)
    h.setFormatter(logging.Formatter("%(levelname)s %(name)s (worker): %(message)s"))
    h.addFilter(once_per_message())
    h.setLevel(logging.WARNING)
    lg = logging.getLogger("fleet")
    lg.addHandler(h)
    lg.propagate = False


def run_batch(base: dict, base_path: Path | None, metrics: list[str],
              items: list[tuple[str, dict, int | None]], point_fn: PointFn | None = None) -> dict:
    """Run a batch of points (one Dask task); never raises for a point's own failure.

    Returns ``{"rows": [...], "units": {metric: unit}}``; each row has ``point_id``, ``status``
    (ok | invalid | error), ``error``, ``wall_s``, ``worker`` and ``metrics`` (name -> value)."""
    fn = point_fn or run_point
    worker = _worker_name()
    if worker != "local":
        _worker_logging()
    rows: list[dict[str, Any]] = []
    units: dict[str, str] = {}
    for pid, params, seed in items:
        t0 = time.perf_counter()
        row: dict[str, Any] = {"point_id": pid, "status": "ok", "error": None, "metrics": {}}
        try:
            data = apply_point(base, params, seed)
            try:
                values = fn(data, base_path)
            except ScenarioError as exc:
                row.update(status="invalid", error=str(exc))
                values = None
            if values is not None:
                missing = [m for m in metrics if m not in values]
                row["metrics"] = {m: float(values[m][0]) for m in metrics if m in values}
                for m in metrics:
                    if m in values:
                        units.setdefault(m, str(values[m][1]))
                if missing:
                    import difflib

                    hints = {m: difflib.get_close_matches(m, list(values), n=2) for m in missing}
                    row.update(status="error", error="no such metric: " + "; ".join(
                        m + (f" (did you mean {', '.join(h)}?)" if h else "") for m, h in hints.items()))
        except FleetError as exc:
            row.update(status="error", error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a point's failure is recorded, the sweep goes on
            row.update(status="error", error=f"{type(exc).__name__}: {exc}")
        row["wall_s"] = time.perf_counter() - t0
        row["worker"] = worker
        rows.append(row)
    return {"rows": rows, "units": units}


# ================================================================================ versions
@lru_cache(maxsize=1)
def source_hash() -> str:
    """A hash of the installed fleet package: every .py, .csv, .yaml and .json file under it."""
    root = Path(__file__).resolve().parent
    h = hashlib.sha256()
    for f in sorted(root.rglob("*")):
        if f.suffix in (".py", ".csv", ".yaml", ".yml", ".json") and "__pycache__" not in f.parts and f.is_file():
            h.update(f.relative_to(root).as_posix().encode() + b"\0")
            h.update(f.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def local_identity() -> dict:
    return {"version": __version__, "source": source_hash(), "python": sys.version.split()[0]}


#: the probe run on each worker; built from source so that it is pickled by value and a worker
#: that cannot import fleet can still run it and say so
_PROBE_SRC = """
def probe():
    try:
        import sys
        import fleet
        import fleet.sweep as fs
        return {"version": getattr(fleet, "__version__", "?"), "source": fs.source_hash(),
                "python": sys.version.split()[0]}
    except Exception as exc:
        return {"error": "cannot import fleet: %s: %s" % (type(exc).__name__, exc)}
"""


def _probe() -> Callable[[], dict]:
    ns: dict = {}
    exec(_PROBE_SRC, ns)  # noqa: S102 - our own constant source
    fn = ns["probe"]
    fn.__module__ = "__fleet_sweep_probe__"     # not importable: cloudpickle sends it by value
    return fn


def check_workers(client) -> dict[str, dict]:
    """Ask every worker which fleet it runs; refuse (FleetError naming each bad worker) those that
    cannot import fleet or whose version or source hash differs from this process's."""
    mine = local_identity()
    try:
        answers = client.run(_probe(), on_error="return")
    except Exception as exc:  # noqa: BLE001
        raise FleetError(f"cannot ask the Dask workers which fleet they run: {exc}") from exc
    if not answers:
        raise FleetError("the Dask cluster has no workers")
    bad = []
    for addr, a in sorted(answers.items()):
        if isinstance(a, BaseException):
            bad.append(f"{addr}: cannot import fleet ({type(a).__name__}: {a})")
        elif "error" in a:
            bad.append(f"{addr}: {a['error']}")
        elif a.get("version") != mine["version"] or a.get("source") != mine["source"]:
            bad.append(f"{addr}: fleet {a.get('version')} (source {a.get('source')}), "
                       f"but this process runs fleet {mine['version']} (source {mine['source']})")
    if bad:
        raise FleetError("refusing to sweep on workers that do not run this fleet; install the same fleet "
                         "on every worker:\n  - " + "\n  - ".join(bad))
    return answers


# ================================================================================ storage
def _schema(sw: Sweep):
    import pyarrow as pa

    fields = [pa.field("point_id", pa.string()), pa.field("seed", pa.int64())]
    for p in sw.parameters:
        fields.append(pa.field(p.column, pa.float64() if p.numeric else pa.string()))
    fields += [pa.field("status", pa.string()), pa.field("error", pa.string()),
               pa.field("wall_s", pa.float64()), pa.field("worker", pa.string())]
    fields += [pa.field(METRIC_PREFIX + m, pa.float64()) for m in sw.metrics]
    return pa.schema(fields)


def _table(sw: Sweep, rows: list[dict], points: dict[str, Point]):
    import pyarrow as pa

    cols: dict[str, list] = {f.name: [] for f in _schema(sw)}
    for r in rows:
        pt = points[r["point_id"]]
        cols["point_id"].append(r["point_id"])
        cols["seed"].append(pt.seed)
        for p in sw.parameters:
            cols[p.column].append(p.cell(pt.params[p.path]))
        for k in ("status", "error", "wall_s", "worker"):
            cols[k].append(r[k])
        for m in sw.metrics:
            v = r["metrics"].get(m)
            cols[METRIC_PREFIX + m].append(float(v) if v is not None else None)
    return pa.table(cols, schema=_schema(sw))


def _part_files(out: Path) -> list[Path]:
    d = out / RESULTS_DIR
    return sorted(d.glob("part-*.parquet")) if d.is_dir() else []


def read_results(out_dir: str | Path) -> pd.DataFrame:
    """Every recorded point of a sweep folder (one row per point identity), in file order."""
    import pandas as pd
    import pyarrow as pa
    import pyarrow.parquet as pq

    files = _part_files(Path(out_dir))
    if not files:
        return pd.DataFrame()
    return pa.concat_tables([pq.read_table(f) for f in files], promote_options="permissive").to_pandas()


read_sweep_results = read_results      # the name in fleet's public API


def read_design(out_dir: str | Path) -> pd.DataFrame:
    import pandas as pd

    return pd.read_parquet(Path(out_dir) / DESIGN_FILE)


def _write_design(sw: Sweep, points: list[Point], out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    cols: dict[str, list] = {"row": [], "point_id": [], "seed": [], "sobol_role": [], "sobol_row": []}
    for p in sw.parameters:
        cols[p.column] = []
    for pt in points:
        cols["row"].append(pt.row)
        cols["point_id"].append(pt.point_id)
        cols["seed"].append(pt.seed)
        cols["sobol_role"].append(pt.sobol[0] if pt.sobol else None)
        cols["sobol_row"].append(pt.sobol[1] if pt.sobol else None)
        for p in sw.parameters:
            cols[p.column].append(p.cell(pt.params[p.path]))
    types = {"row": pa.int64(), "point_id": pa.string(), "seed": pa.int64(), "sobol_role": pa.string(),
             "sobol_row": pa.int64()}
    for p in sw.parameters:
        types[p.column] = pa.float64() if p.numeric else pa.string()
    table = pa.table({k: pa.array(v, type=types[k]) for k, v in cols.items()})
    with atomic_path(out / DESIGN_FILE) as tmp:
        pq.write_table(table, tmp)
        _readable(tmp)


def _readable(p: Path) -> None:
    """Temporary files are created private (0600); results are for reading."""
    mask = os.umask(0)
    os.umask(mask)
    p.chmod(0o666 & ~mask)


# ================================================================================ the run
@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did."""

    name: str
    out_dir: Path
    points: int                         # distinct points in the design
    design_rows: int
    already_done: int                   # points found in the results at the start (--resume)
    executed: list[str]                 # point identities run now, in the order they finished
    lost: int = 0                       # points of batches lost to the cluster (no result written)
    lost_error: str | None = None       # why the first lost batch was lost
    counts: dict[str, int] = field(default_factory=dict)   # status -> points, over the whole dataset
    errors: list[tuple[str, str, str]] = field(default_factory=list)  # (point_id, status, error)
    wall_s: float = 0.0
    workers: int = 0
    batch_size: int = 0
    report_files: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.lost == 0 and sum(self.counts.values()) == self.points


def _batch_size(n: int, workers: int, wanted: int | None) -> int:
    if wanted:
        return int(wanted)
    return max(1, min(MAX_BATCH, math.ceil(n / max(1, workers * TASKS_PER_WORKER))))


def _prepare_out(sw: Sweep, out: Path, resume: bool) -> set[str]:
    """Check the output folder and return the identities already recorded there."""
    manifest = out / MANIFEST
    parts = _part_files(out)
    if (manifest.exists() or parts) and not resume:
        raise FleetError(f"{out} already holds a sweep; pass --resume to run only its missing points, "
                         f"or choose another output folder")
    if manifest.exists():
        try:
            old = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise FleetError(f"{manifest}: cannot read the sweep manifest ({exc})") from exc
        if old.get("identity") != sw.identity():
            raise FleetError(f"{out} holds a sweep with other parameters or metrics "
                             f"({old.get('identity')}); --resume needs the same parameters and metrics")
    elif parts:
        raise FleetError(f"{out}: results without a {MANIFEST}; not a sweep folder")
    done: set[str] = set()
    if parts:
        import pyarrow.parquet as pq

        for f in parts:
            done.update(pq.read_table(f, columns=["point_id"]).column("point_id").to_pylist())
    return done


def _start_client(workers: int | None, scheduler: str | None):
    """A Dask client and the cluster we started for it (None for an existing scheduler)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:  # pragma: no cover - a dependency
        raise FleetError(f"fleet sweep needs dask.distributed: {exc}") from exc
    if scheduler:
        try:
            return Client(scheduler, timeout="20s"), None
        except (OSError, TimeoutError) as exc:
            raise FleetError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
    n = int(workers or os.cpu_count() or 1)
    # one single-threaded process per worker: a point is pure Python (the GIL), so threads would not
    # help; a random dashboard port so that several sweeps (or users) on one machine never collide
    cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, dashboard_address=":0",
                           silence_logs=logging.ERROR)
    return Client(cluster), cluster


def _progress(total: int, quiet: bool, name: str):
    from .run import progress_enabled

    if not progress_enabled(quiet) or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, desc=f"fleet sweep {name}", unit="pt", file=sys.stderr, leave=False)


def run_sweep(sweep: Sweep | str | Path, out_dir: str | Path, *, workers: int | None = None,
              scheduler: str | None = None, client=None, resume: bool = False, quiet: bool = False,
              batch_size: int | None = None, point_fn: PointFn | None = None,
              on_batch: Callable[[int, list[dict]], None] | None = None, report: bool = True) -> SweepOutcome:
    """Run every missing point of a sweep and write ``out_dir``: ``sweep.json`` (manifest),
    ``design.parquet`` (every design row), ``results/part-*.parquet`` (one file per finished batch,
    one row per point) and the report (``report.pdf``, ``figures/*.png``, CSV tables).

    ``workers=0`` runs the points here, serially, without Dask; otherwise on ``client``, on the
    scheduler at ``scheduler``, or on a new ``LocalCluster`` of ``workers`` processes (default:
    one per core).  ``point_fn(data, base_path) -> {metric: (value, unit)}`` replaces the default
    :func:`run_point` (tests, benchmarks).  ``on_batch(k, rows)`` is called after the k-th batch
    (1-based) of this run is written."""
    t0 = time.perf_counter()
    sw = sweep if isinstance(sweep, Sweep) else load_sweep(sweep)
    out = Path(out_dir)
    design = design_points(sw)
    unique: dict[str, Point] = {}
    for pt in design:
        unique.setdefault(pt.point_id, pt)
    done = _prepare_out(sw, out, resume)
    todo = [pt for pid, pt in unique.items() if pid not in done]
    (out / RESULTS_DIR).mkdir(parents=True, exist_ok=True)
    manifest = {"kind": SWEEP_KIND, "name": sw.name, "sweep_file": str(sw.path) if sw.path else None,
                "base_scenario": str(sw.base_path) if sw.base_path else None, "identity": sw.identity(),
                "design": {"method": sw.method, "samples": sw.samples, "seed": sw.sample_seed, "seeds": sw.seeds},
                "points": len(unique), "design_rows": len(design), "fleet_version": __version__,
                "fleet_source": source_hash()}
    old_units = {}
    if (out / MANIFEST).exists():
        old_units = json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("units", {})
    manifest["units"] = old_units
    write_json_atomic(out / MANIFEST, manifest)
    _readable(out / MANIFEST)
    _write_design(sw, design, out)

    outcome = SweepOutcome(name=sw.name, out_dir=out, points=len(unique), design_rows=len(design),
                           already_done=len(unique) - len(todo), executed=[])
    units: dict[str, str] = dict(old_units)
    next_part = 1 + max((int(f.stem.split("-")[1]) for f in _part_files(out)), default=0)
    bar = _progress(len(todo), quiet, sw.name)
    own_client = own_cluster = None
    futures = None
    try:
        if todo:
            if workers == 0 and client is None and scheduler is None:
                nworkers = 1
                bs = _batch_size(len(todo), 1, batch_size or sw.batch_size)
                batches = [todo[i:i + bs] for i in range(0, len(todo), bs)]
                results = (run_batch(sw.base, sw.base_path, sw.metrics,
                                     [(p.point_id, p.params, p.seed) for p in b], point_fn) for b in batches)
            else:
                if client is None:
                    own_client, own_cluster = _start_client(workers, scheduler)
                    client = own_client
                check_workers(client)
                nworkers = max(1, sum(client.nthreads().values()))
                bs = _batch_size(len(todo), nworkers, batch_size or sw.batch_size)
                batches = [todo[i:i + bs] for i in range(0, len(todo), bs)]
                from distributed import as_completed

                token = uuid.uuid4().hex[:8]
                futures = {client.submit(run_batch, sw.base, sw.base_path, sw.metrics,
                                         [(p.point_id, p.params, p.seed) for p in b], point_fn,
                                         pure=False, key=f"fleet-sweep-{sw.name}-{token}-{k}"): len(b)
                           for k, b in enumerate(batches)}
                results = _consume(as_completed(list(futures), with_results=True, raise_errors=False),
                                   futures, outcome)
            outcome.workers, outcome.batch_size = nworkers, bs
            k = 0
            for res in results:
                if res is None:
                    continue
                rows = res["rows"]
                for m, u in res["units"].items():
                    units.setdefault(m, u)
                with atomic_path(out / RESULTS_DIR / f"part-{next_part:06d}.parquet") as tmp:
                    import pyarrow.parquet as pq

                    pq.write_table(_table(sw, rows, unique), tmp)
                    _readable(tmp)
                next_part += 1
                k += 1
                outcome.executed += [r["point_id"] for r in rows]
                if bar is not None:
                    bar.update(len(rows))
                if on_batch is not None:
                    on_batch(k, rows)
    finally:
        if bar is not None:
            bar.close()
        if futures:
            with contextlib.suppress(Exception):
                client.cancel(list(futures))
        if own_client is not None:
            with contextlib.suppress(Exception):
                own_client.close()
        if own_cluster is not None:
            with contextlib.suppress(Exception):
                own_cluster.close()
        if units != old_units:
            manifest["units"] = units
            write_json_atomic(out / MANIFEST, manifest)
            _readable(out / MANIFEST)

    res = read_results(out)
    if len(res):
        # a resumed sweep whose design changed keeps the old points' rows: count and report only
        # the points of the design that ran now
        res = res[res["point_id"].isin(unique)].reset_index(drop=True)
    if len(res):
        counts = res["status"].value_counts()
        outcome.counts = {s: int(counts.get(s, 0)) for s in STATUSES}
        bad = res[res["status"] != "ok"]
        outcome.errors = list(zip(bad["point_id"], bad["status"], bad["error"].fillna("")))
    outcome.wall_s = time.perf_counter() - t0
    if report and len(res):
        outcome.report_files = write_sweep_report(sw, out, results=res, units=units)
    return outcome


def _consume(completed, sizes: dict, outcome: SweepOutcome):
    """Yield each finished batch's result; a batch lost to the cluster (a worker died) is counted,
    not written, so that ``--resume`` runs its points again."""
    for fut, res in completed:
        if fut.status == "error" or isinstance(res, BaseException):
            outcome.lost += sizes.get(fut, 0)
            if outcome.lost_error is None:
                exc = fut.exception()
                outcome.lost_error = f"{type(exc).__name__}: {exc}"
            log.warning("a batch of %d points was lost (%s); run again with --resume to complete it",
                        sizes.get(fut, 0), res if isinstance(res, BaseException) else fut.exception())
            fut.release()
            continue
        fut.release()
        yield res


# ================================================================================ analysis
def _ok(res) -> pd.DataFrame:
    return res[res["status"] == "ok"]


def _levels(series, max_levels: int = 5):
    """Group labels for a parameter column: its values, or quantile bins when it has many."""
    import pandas as pd
    import pandas.api.types as ptypes

    uniq = series.dropna().unique()
    if len(uniq) <= max_levels or not ptypes.is_numeric_dtype(series):
        return series, None
    bins = pd.qcut(series.rank(method="first"), max_levels, labels=False)
    return bins, series.groupby(bins).mean()


def tornado_table(sw: Sweep, res) -> pd.DataFrame:
    """Each metric's sensitivity to each parameter: the mean of the metric at each level of the
    parameter (averaged over every other parameter and seed; quantile bins for a sampled,
    continuous parameter), its lowest and highest level means and their swing.  Rows are sorted
    by swing within each metric.  Columns: metric, parameter, low_level, low, high_level, high,
    first_level, at_first, last_level, at_last, swing, mean, levels."""
    import pandas as pd

    ok = _ok(res)
    rows = []
    for m in sw.metrics:
        col = METRIC_PREFIX + m
        if col not in ok or ok[col].notna().sum() == 0:
            continue
        mean = float(ok[col].mean())
        for p in sw.parameters:
            if p.column not in ok:
                continue
            keys, bin_means = _levels(ok[p.column])
            g = ok[col].groupby(keys).mean().dropna()
            if len(g) < 1:
                continue

            def label(k, bin_means=bin_means):
                if bin_means is not None:
                    return f"~{float(bin_means[k]):.4g}"
                return f"{k:.4g}" if isinstance(k, float) else str(k)

            order = list(g.index)
            lo_k, hi_k = g.idxmin(), g.idxmax()
            rows.append({"metric": m, "parameter": p.name, "low_level": label(lo_k), "low": float(g[lo_k]),
                         "high_level": label(hi_k), "high": float(g[hi_k]),
                         "first_level": label(order[0]), "at_first": float(g[order[0]]),
                         "last_level": label(order[-1]), "at_last": float(g[order[-1]]),
                         "swing": float(g[hi_k] - g[lo_k]), "mean": mean, "levels": len(g)})
    df = pd.DataFrame(rows)
    if len(df):
        df = df.sort_values(["metric", "swing"], ascending=[True, False], kind="stable").reset_index(drop=True)
    return df


def sobol_estimates(f_a: np.ndarray, f_b: np.ndarray, f_ab: np.ndarray, *, n_boot: int = SOBOL_BOOTSTRAP,
                    seed: int = 0, level: float = SOBOL_CI_LEVEL) -> dict[str, np.ndarray]:
    """First-order (Saltelli 2010) and total (Jansen 1999) Sobol indices from ``f(A)``, ``f(B)``
    (shape N) and ``f(AB_i)`` (shape N x d), with percentile bootstrap intervals over the N base
    rows (resampled together, ``n_boot`` times, seeded).

        V    = Var([f(A), f(B)])
        S_i  = mean(f(B) * (f(AB_i) - f(A))) / V
        ST_i = mean((f(A) - f(AB_i))**2) / (2 V)
    """
    f_a, f_b, f_ab = (np.asarray(x, dtype=float) for x in (f_a, f_b, f_ab))

    def est(a, b, ab):
        v = np.var(np.concatenate([a, b], axis=-1), axis=-1, ddof=1)
        with np.errstate(divide="ignore", invalid="ignore"):
            s1 = np.mean(b[..., None] * (ab - a[..., None]), axis=-2) / v[..., None]
            st = 0.5 * np.mean((a[..., None] - ab) ** 2, axis=-2) / v[..., None]
        bad = ~(v > 0)
        s1 = np.where(bad[..., None], np.nan, s1)
        st = np.where(bad[..., None], np.nan, st)
        return s1, st

    s1, st = est(f_a, f_b, f_ab)
    n = len(f_a)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_boot, n))
    b1, bt = est(f_a[idx], f_b[idx], f_ab[idx])
    q = [(1 - level) / 2 * 100, (1 + level) / 2 * 100]
    lo1, hi1 = np.nanpercentile(b1, q, axis=0) if np.isfinite(b1).any() else (s1 * np.nan, s1 * np.nan)
    lot, hit = np.nanpercentile(bt, q, axis=0) if np.isfinite(bt).any() else (st * np.nan, st * np.nan)
    return {"S1": s1, "S1_lo": lo1, "S1_hi": hi1, "ST": st, "ST_lo": lot, "ST_hi": hit}


def sobol_indices(sw: Sweep, design, res, *, n_boot: int = SOBOL_BOOTSTRAP) -> pd.DataFrame:
    """Sobol indices of every metric for a Sobol design: one row per (metric, parameter) with
    S1, ST and their bootstrap intervals.  Replications are averaged per design point; a base row
    any of whose points failed is left out (``n`` says how many rows were used)."""
    import pandas as pd

    if sw.method != "sobol" or design is None or not len(design) or not len(res):
        return pd.DataFrame()
    d = len(sw.parameters)
    rows = []
    merged = design[["point_id", "sobol_role", "sobol_row"]].merge(
        res[["point_id", "status", *[METRIC_PREFIX + m for m in sw.metrics]]], on="point_id", how="left")
    for m in sw.metrics:
        col = METRIC_PREFIX + m
        vals = merged[col].where(merged["status"] == "ok")
        # replications: mean over seeds of a (role, row); a missing seed makes the mean NaN
        tab = vals.groupby([merged["sobol_row"], merged["sobol_role"]]).agg(
            lambda s: s.mean() if s.notna().all() else np.nan).unstack("sobol_role")
        need = ["A", "B", *[f"AB{i}" for i in range(d)]]
        if any(r not in tab for r in need):
            continue
        tab = tab[need].dropna()
        if len(tab) < 2:
            continue
        est = sobol_estimates(tab["A"].to_numpy(), tab["B"].to_numpy(), tab[need[2:]].to_numpy(), n_boot=n_boot,
                              seed=sw.sample_seed)
        for i, p in enumerate(sw.parameters):
            rows.append({"metric": m, "parameter": p.name, **{k: float(v[i]) for k, v in est.items()},
                         "n": len(tab)})
    return pd.DataFrame(rows)


def feasible_mask(sw: Sweep, res) -> pd.Series:
    """Ok points that meet every constraint of the sweep's report section."""
    mask = res["status"] == "ok"
    for c in sw.constraints:
        col = res[METRIC_PREFIX + c.metric]
        if c.min is not None:
            mask &= col >= c.min
        if c.max is not None:
            mask &= col <= c.max
    return mask


def pareto_front(x: np.ndarray, y: np.ndarray, *, maximize_x: bool = False, maximize_y: bool = False) -> np.ndarray:
    """Indices of the points that no other point beats on both ``x`` and ``y`` (ties kept once),
    ordered by ``x``.  NaNs are never on the front."""
    x = np.asarray(x, dtype=float) * (-1 if maximize_x else 1)
    y = np.asarray(y, dtype=float) * (-1 if maximize_y else 1)
    ok = np.flatnonzero(np.isfinite(x) & np.isfinite(y))
    order = ok[np.lexsort((y[ok], x[ok]))]
    front, best = [], math.inf
    for i in order:
        if y[i] < best:
            front.append(i)
            best = y[i]
    return np.asarray(front, dtype=int)


def best_points(sw: Sweep, res) -> pd.DataFrame:
    """The ``best`` feasible points by the objective (rank 1 first)."""
    feas = res[feasible_mask(sw, res)]
    assert sw.objective is not None         # parse_sweep: the report's objective or the first metric
    col = METRIC_PREFIX + sw.objective
    asc = sw.objective not in sw.maximize
    out = feas.sort_values([col, "point_id"], ascending=[asc, True], kind="stable").head(sw.best).copy()
    out.insert(0, "rank", range(1, len(out) + 1))
    return out.reset_index(drop=True)


def write_sweep_report(sw: Sweep, out_dir: str | Path, *, results=None, units: dict | None = None) -> list[str]:
    """Analyse a sweep's results and write the report (PDF, PNGs and CSV tables) into ``out_dir``."""
    from .report.sweep import SweepReportData
    from .report.sweep import write_sweep_report as _write

    out = Path(out_dir)
    res = read_results(out) if results is None else results
    design = read_design(out) if (out / DESIGN_FILE).exists() else None
    if results is None and design is not None and len(res):
        res = res[res["point_id"].isin(set(design["point_id"]))].reset_index(drop=True)
    if units is None and (out / MANIFEST).exists():
        units = json.loads((out / MANIFEST).read_text(encoding="utf-8")).get("units", {})
    front = None
    feas = feasible_mask(sw, res)
    if sw.pareto:
        xc, yc = (METRIC_PREFIX + m for m in sw.pareto)
        sub = res[feas]
        idx = pareto_front(sub[xc].to_numpy(), sub[yc].to_numpy(), maximize_x=sw.pareto[0] in sw.maximize,
                           maximize_y=sw.pareto[1] in sw.maximize)
        front = sub.iloc[idx]
    data = SweepReportData(
        name=sw.name, description=sw.description, method=sw.method, metrics=list(sw.metrics),
        parameters=[p.name for p in sw.parameters], units=dict(units or {}), results=res, feasible=feas,
        tornado=tornado_table(sw, res), sobol=sobol_indices(sw, design, res), pareto=sw.pareto, pareto_front=front,
        best=best_points(sw, res), objective=sw.objective, maximize=set(sw.maximize),
        constraints=[c.describe() for c in sw.constraints], fleet_version=__version__,
        design_rows=0 if design is None else len(design))
    return _write(data, out, pdf=sw.pdf, png=sw.png, dpi=sw.dpi)
