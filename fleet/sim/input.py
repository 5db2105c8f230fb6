"""What the simulation reads: a typed, frozen description of one run, built from a scenario.

The simulation (:func:`fleet.sim.simulate`) takes a :class:`SimInput`, not the pydantic scenario:
plain frozen dataclasses, every name resolved (canonical model and accelerator names, the
replicas of a serve entry that omits them, the training pool a training demand goes to), every
item carrying ``field``, the YAML path it came from (``"fleet.pools[1].serve[0]"``,
``"demand.inference[0].trace"``), so an error raised while simulating names the right place in
the scenario.  :func:`fleet.siminput.sim_input` builds one from a :class:`fleet.scenario.Scenario`
(at the scenario level: ``fleet.sim`` never imports the scenario).  Mappings are read-only
(``types.MappingProxyType``).  Units: SI (s, W) unless the name says otherwise.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import datetime as _dt
import math
from dataclasses import dataclass, field as _field
from pathlib import Path
from types import MappingProxyType
from typing import Mapping

if TYPE_CHECKING:
    from ..frontier.operating_point import OperatingPoint

#: length of one schedule entry (s): entry h of a replica schedule covers [h*3600, (h+1)*3600)
SCHEDULE_STEP_S = 3600.0

_EMPTY: Mapping = MappingProxyType({})


def frozen_map(d: Mapping | None) -> Mapping:
    """A read-only copy of ``d`` (an empty read-only mapping for None)."""
    return MappingProxyType(dict(d)) if d else _EMPTY


@dataclass(frozen=True)
class ServeInput:
    """One model served by a pool (``fleet.pools[i].serve[j]``): ``replicas`` replicas of ``tp``
    GPUs, resolved (a serve entry without ``replicas`` gets the pool's remaining GPUs // tp)."""

    field: str
    model: str                   # canonical model name
    model_as_written: str
    engine_pool: str             # the pool's name when it serves one model, else "pool:model"
    replicas: int
    tp: int
    precision: str
    kv_precision: str | None
    max_batch: int | None
    chunked_prefill: bool
    max_prefill_tokens: int | None
    ep: int | None
    #: where one replica runs (model, accelerator, parallelism, precisions, the pool's cap, max batch,
    #: device constants): a :class:`fleet.frontier.OperatingPoint`, what the profile factory takes
    op: OperatingPoint | None = None


@dataclass(frozen=True)
class PoolInput:
    """A pool (``fleet.pools[i]``) with its accelerator's power envelope resolved (per GPU, W)."""

    field: str
    name: str
    role: str                    # "serving" | "training"
    accelerator: str             # canonical catalog name
    gpus: int
    gpus_per_server: int
    servers_per_rack: int
    row: str
    static_w: float              # server static overhead (W per server)
    per_gpu_w: float             # server load-proportional overhead (W per GPU at full load)
    power_cap_w: float | None    # per GPU; None: uncapped
    tdp_w: float
    idle_w: float
    standby_w: float             # powered down (modelled; catalog standby_w)
    serve: tuple[ServeInput, ...] = ()

    @property
    def servers(self) -> int:
        return math.ceil(self.gpus / self.gpus_per_server)


@dataclass(frozen=True)
class BreakerInput:
    """Breakers of one level (``fleet.power.breakers[k]``): every node of ``level`` with a budget
    (or the one ``node``), rated at ``rating_w`` (None: the node's budget).  ``curve``: (ratio,
    seconds) points; power above ``ratio x rating`` for ``seconds`` without a break trips it.
    A tripped breaker's servers go dark for ``reset_s``; the requests they held are dropped or
    re-routed (``on_trip``).  Power is checked every ``check_s`` (the curve's resolution)."""

    field: str
    level: str                    # 'site' | 'row' | 'rack'
    node: str | None = None
    rating_w: float | None = None
    curve: tuple[tuple[float, float], ...] = ((1.0, 600.0), (1.25, 60.0), (1.5, 5.0), (2.0, 0.0))
    reset_s: float = 1800.0
    on_trip: str = "drop"         # 'drop' | 'reroute'
    check_s: float = 1.0
    model: str = "average"        # 'average' | 'definite'


@dataclass(frozen=True)
class ControllerInput:
    """The row power-capping controller (``fleet.power.controller``), see :mod:`fleet.sim.control`.
    Thresholds and levels are fractions: ``t1``/``t2``/``brake``/``admission`` of the row budget,
    ``cap_low``/``cap_all``/``cap_brake`` of each accelerator's maximum power limit (or of its
    maximum SM clock with ``lever: clock``)."""

    field: str
    kind: str = "polca"
    rows: tuple[str, ...] | None = None       # None: every row with a budget
    interval_s: float = 2.0
    samples: int = 4                          # live samples averaged into one reading
    telemetry_delay_s: float = 2.0
    actuation_delay_s: float = 1.0
    t1: float = 0.85
    t2: float = 0.92
    brake: float = 0.97
    admission: float | None = None
    hysteresis: float = 0.05
    release_hold_s: float = 60.0
    release: str = "threshold"                # 'threshold' | 'predictive'
    lever: str = "cap"                        # 'cap' | 'clock'
    cap_low: float = 0.6
    cap_all: float = 0.75
    cap_brake: float = 0.4
    low_priority: tuple[str, ...] = ("training", "batch")
    priority: Mapping[str, str] = _field(default_factory=lambda: _EMPTY)   # pool -> class
    on_telemetry_loss: str = "hold"           # 'hold' | 'cap_low' | 'cap_all'
    stale_s: float = 10.0
    outages: tuple[tuple[float, float], ...] = ()   # telemetry outages [t0, t1) s
    fail_at_s: float | None = None            # the controller stops at this time (s)
    fail_mode: str = "hold"                   # 'hold': its levers stay | 'release': they return to uncapped


@dataclass(frozen=True)
class PowerBudgets:
    """Budgets of the power tree (``fleet.power``; W, NaN/None: none), its breakers and its
    capping controller (none: the simulation runs exactly as without protection)."""

    field: str = "fleet.power"
    site_budget_w: float | None = None
    rows: Mapping[str, float] = _field(default_factory=lambda: _EMPTY)
    rack_budget_w: float | None = None
    racks: Mapping[str, float] = _field(default_factory=lambda: _EMPTY)
    server_budget_w: float | None = None
    breakers: tuple[BreakerInput, ...] = ()
    controller: ControllerInput | None = None


@dataclass(frozen=True)
class StretchInput:
    """A short trace shaped into a diurnal day (``demand.inference[k].trace.stretch``)."""

    rate: float
    hours: float = 24.0
    peak_to_trough: float = 2.0
    peak_hour: float = 14.0
    cv: float = 1.0


@dataclass(frozen=True)
class SizeRouteInput:
    """One row of the size-aware router's table (``simulation.size_routes[k]``)."""

    model: str | None
    pool: str
    input_tokens: tuple[float, float]
    output_tokens: tuple[float, float]
    weight: tuple[float, ...]


@dataclass(frozen=True)
class TraceInput:
    """A request trace (``demand.inference[k].trace``)."""

    field: str
    path: Path
    format: str | None = None
    mapping: Mapping[str, str] | None = None
    rate_scale: float = 1.0
    window: tuple[float, float] | None = None
    time_shift_s: float = 0.0
    stretch: StretchInput | None = None


@dataclass(frozen=True)
class SynthInput:
    """A synthetic request stream (``demand.inference[k].synth``); see fleet.scenario.SynthSource."""

    field: str
    profile: str
    rate: float
    hours: float
    cv: float
    seed: int | None
    input_tokens: float | None
    output_tokens: float | None
    tokens_cv: float
    peak_to_trough: float
    peak_hour: float
    servegen_model: str


@dataclass(frozen=True)
class InferenceInput:
    """One inference demand (``demand.inference[k]``): exactly one of ``trace`` and ``synth``."""

    field: str
    model: str                   # canonical
    trace: TraceInput | None = None
    synth: SynthInput | None = None


@dataclass(frozen=True)
class TrainingSynthInput:
    field: str
    jobs: int
    hours: float
    seed: int | None
    model: str | None
    max_gpus: int | None
    deferrable_fraction: float


@dataclass(frozen=True)
class TrainingInput:
    """The training demand (``demand.training``), with the pool it goes to resolved."""

    field: str
    pool: str | None             # the training pool that runs the jobs (None: none does)
    model: str | None
    jobs: Path | None
    synth: TrainingSynthInput | None
    release_times: Mapping[int, float] | None = None
    #: a planned schedule: per job id, windows (start_s, end_s, cap_w per GPU or None)
    schedule: Mapping[int, tuple[tuple[float, float, float | None], ...]] | None = None


@dataclass(frozen=True)
class SimOptions:
    """``simulation``: horizon (None: end of the demand), telemetry, mode, router, records,
    device constants, and what an inactive replica draws (``inactive``: 'idle' | 'off')."""

    field: str = "simulation"
    horizon_s: float | None = None
    telemetry_interval_s: float = 1.0
    mode: str = "coalesced"
    router: str = "jsq"
    record: tuple[str, ...] = ("requests", "power")
    progress: bool = False
    constants: str = "calibrated"
    inactive: str = "idle"
    size_routes: tuple[SizeRouteInput, ...] = ()


@dataclass(frozen=True)
class ScheduleInput:
    """Active replicas of one engine pool per hour from the start (``schedule.<key>``); the list
    repeats when the horizon is longer (24 entries: a daily profile)."""

    field: str
    pool: str                    # the scenario pool
    engine_pool: str
    active: tuple[int, ...]

    def at(self, hour: int) -> int:
        return self.active[hour % len(self.active)]


@dataclass(frozen=True)
class SimInput:
    """Everything one simulation run reads."""

    name: str
    seed: int
    start_utc: _dt.datetime
    pools: tuple[PoolInput, ...]
    inference: tuple[InferenceInput, ...] = ()
    training: TrainingInput | None = None
    power: PowerBudgets = _field(default_factory=PowerBudgets)
    simulation: SimOptions = _field(default_factory=SimOptions)
    schedule: tuple[ScheduleInput, ...] = ()
    #: the scenario's identity (recorded in SimResult.meta) and its file, if any (error messages)
    scenario_hash: str = ""
    path: Path | None = None

    def training_pools(self) -> list[PoolInput]:
        return [p for p in self.pools if p.role == "training"]

    def pool(self, name: str) -> PoolInput:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)

    def schedule_of(self, engine_pool: str) -> ScheduleInput | None:
        for s in self.schedule:
            if s.engine_pool == engine_pool:
                return s
        return None
