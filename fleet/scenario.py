"""The YAML scenario: schema, loading and validation.

A scenario is read with ``yaml.safe_load`` (no code execution; anchors and aliases are refused so
that a small file cannot expand into a huge one) and validated by pydantic.  Every problem is
reported as a :class:`~fleet.errors.ScenarioError` naming the file and the YAML path, e.g.
``scenarios/x.yaml: pools[1].gpus: expected a positive integer, got -4``.

Sections (each a pydantic model below, owned by the layer it configures):
``fleet`` (pools, servers, power tree), ``demand`` (traces and generators), ``simulation``
(horizon, seed, telemetry), ``site`` (region, grid signals, PUE), ``accounting``,
``plan`` (the OR-Tools planner), ``report``, ``expectations`` (scenario regression),
``schedule`` (active replicas per serving pool and hour; the planner writes it).

The simulation does not read this pydantic model: :meth:`Scenario.sim_input` (``fleet.siminput``)
turns it into the typed, frozen :class:`fleet.sim.input.SimInput`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal, Mapping

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_validator

from ._yaml import StrictLoader, parse_yaml
from .errors import ScenarioError, fmt_value
from .limits import MAX_BATCH, MAX_FLEET_GPUS, MAX_JOBS, MAX_REQUESTS


class Strict(BaseModel):
    """Base of every scenario section: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", frozen=False)


_NoAliasLoader = StrictLoader     # the name this module used before the loader moved to fleet._yaml


def load_yaml_text(text: str, path: str | Path | None = None, what: str = "scenario"):
    """Parse YAML ``text`` with :class:`fleet._yaml.StrictLoader`; every problem is a ScenarioError."""
    return parse_yaml(text, path, error=ScenarioError, what=what)


def read_text_utf8(path: Path, what: str = "scenario") -> str:
    """The text of a YAML file, or a ScenarioError that says why it cannot be read."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ScenarioError(f"cannot read the {what} file: {exc.strerror or exc}", path=path) from exc
    if raw[:2] == b"\x1f\x8b":
        raise ScenarioError(f"a gzip-compressed file, not a {what} (expected UTF-8 YAML text; decompress it "
                            f"first)", path=path)
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise ScenarioError(f"UTF-16 text; expected a {what} in UTF-8 (re-save the file as UTF-8)", path=path)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[:exc.start].count(b"\n") + 1
        raise ScenarioError(f"not UTF-8 text: byte 0x{raw[exc.start]:02x} at line {line} (expected a {what} "
                            f"in UTF-8; a Latin-1 or binary file must be converted)", path=path) from exc
    if "\x00" in text:
        line = text[:text.index("\x00")].count("\n") + 1
        raise ScenarioError(f"a binary file, not a {what}: NUL byte at line {line}", path=path)
    return text.removeprefix("\ufeff")


def _yaml_path(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def read_yaml(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise ScenarioError("no such scenario file", path=path)
    data = load_yaml_text(read_text_utf8(path), path)
    if not isinstance(data, dict):
        raise ScenarioError("expected a mapping at the top level", path=path)
    return data


def scenario_hash(data: dict) -> str:
    """A stable hash of the scenario's content (key order does not matter)."""
    import json

    blob = json.dumps(data, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


# =====================================================================================
# Section models: fleet, demand, simulation.  Values are SI (W, s) unless a field
# name says otherwise.  Checks that need the catalog or the model table (accelerator names,
# power-cap range, "does the model fit") run after pydantic, in :func:`_check_scenario`, so that
# each error names its YAML path exactly.
# =====================================================================================

#: a name used as a file or folder name (reports/<name>/, row and rack labels): letters, digits,
#: '_', '.', '-', with at least one character that is not a dot ('.' and '..' name folders that
#: already exist: a report named '.' would replace the whole output folder)
NAME_PATTERN = r"^[A-Za-z0-9_.-]*[A-Za-z0-9_-][A-Za-z0-9_.-]*$"
Name = Annotated[str, Field(pattern=NAME_PATTERN, max_length=100)]
PosInt = Annotated[int, Field(strict=True, gt=0)]
NonNegInt = Annotated[int, Field(strict=True, ge=0)]
#: a random seed: numpy's SeedSequence takes non-negative integers
Seed = Annotated[int, Field(strict=True, ge=0, le=2**63 - 1)]
Int = Annotated[int, Field(strict=True)]
PosFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(gt=0, le=1)]

#: Default server overhead (everything in a server that is not a GPU: CPUs, memory, fans, NICs,
#: PSU losses).  MODELLED from the NVIDIA DGX H100 datasheet: 10.2 kW maximum system power with
#: 8 x 700 W GPUs -> about 4.6 kW non-GPU at peak.  We split it as a static part of 225 W per GPU
#: slot (1.8 kW for an 8-GPU server: CPUs, DRAM, NICs, fans at base speed) and a load-proportional
#: part of 350 W per GPU at full GPU load (fans, CPU and NIC activity scale with GPU power):
#: 1.8 kW + 8 x 350 W = 4.6 kW at peak.  The split itself is an estimate, not a measurement.
DEFAULT_STATIC_W_PER_GPU_SLOT = 225.0
DEFAULT_OVERHEAD_PER_GPU_W = 350.0
#: Plausibility bounds of the server overhead (W): 10x the defaults above.  A DGX B200 is 14.3 kW
#: for 8 x 1 kW GPUs, i.e. about 6.3 kW (790 W per GPU) that is not GPU; values far beyond are
#: typos (kW entered as W) and would dominate every result.
MAX_SERVER_STATIC_W = 10 * 8 * DEFAULT_STATIC_W_PER_GPU_SLOT
MAX_OVERHEAD_PER_GPU_W = 10 * DEFAULT_OVERHEAD_PER_GPU_W


class ServerSpec(Strict):
    """Server overhead: ``static_w + per_gpu_w * sum_over_gpus(P_gpu / TDP_gpu)`` (W).

    ``static_w`` defaults to 225 W per GPU slot (1.8 kW for 8 GPUs), ``per_gpu_w`` to 350 W.
    """

    static_w: Annotated[float, Field(ge=0, le=MAX_SERVER_STATIC_W, allow_inf_nan=False)] | None = None
    per_gpu_w: Annotated[float, Field(ge=0, le=MAX_OVERHEAD_PER_GPU_W, allow_inf_nan=False)] = \
        DEFAULT_OVERHEAD_PER_GPU_W


class ServeSpec(Strict):
    """One model served by a pool: ``replicas`` replicas of ``tp`` GPUs each."""

    model: str
    tp: PosInt = 1
    #: weight precision, a name of the one vocabulary (fleet.catalog.precision; aliases such as
    #: bfloat16 are accepted and stored canonical)
    precision: str = "bf16"
    kv_precision: str | None = None          # None: the activation dtype (bf16; fp32/fp16 stay)
    replicas: PosInt | None = None           # None: the pool's remaining GPUs // tp
    max_batch: Annotated[int, Field(strict=True, gt=0, le=MAX_BATCH)] = 256
    chunked_prefill: bool = False
    max_prefill_tokens: PosInt | None = None
    ep: PosInt | None = None                 # expert-parallel degree (MoE only; None/1: off; = tp)
    stack: str = "vllm-mlenergy-v3"          # serving software (fleet/catalog/serving_stacks.yaml)

    @field_validator("stack")
    @classmethod
    def _stack(cls, v: str) -> str:
        from .catalog.serving_stack import canonical_stack
        from .errors import FleetError

        try:
            return canonical_stack(v)
        except FleetError as exc:
            raise ValueError(str(exc)) from exc

    @field_validator("precision", "kv_precision")
    @classmethod
    def _precision(cls, v: str | None) -> str | None:
        if v is None:
            return None
        from .catalog.precision import normalize_precision
        from .errors import FleetError

        try:
            return normalize_precision(v)
        except FleetError as exc:
            raise ValueError(str(exc)) from exc


class PoolSpec(Strict):
    """A pool: ``gpus`` accelerators of one type, in servers of ``gpus_per_server``.

    The last server may be partial (``gpus`` need not be a multiple of ``gpus_per_server``);
    its static overhead is still a whole server's.  Servers fill racks of ``servers_per_rack``
    in the pool's ``row``; each pool starts a new rack.
    """

    name: Name
    accelerator: str
    gpus: PosInt
    gpus_per_server: PosInt = 8
    servers_per_rack: PosInt = 4
    row: Name = "row0"
    server: ServerSpec = Field(default_factory=ServerSpec)
    power_cap_w: PosFloat | None = None      # per GPU; None = TDP (uncapped)
    role: Literal["serving", "training"] = "serving"
    serve: list[ServeSpec] = Field(default_factory=list)

    @property
    def servers(self) -> int:
        return math.ceil(self.gpus / self.gpus_per_server)

    @property
    def static_w(self) -> float:
        s = self.server.static_w
        return DEFAULT_STATIC_W_PER_GPU_SLOT * self.gpus_per_server if s is None else s


class BreakerSpec(Strict):
    """``fleet.power.breakers[k]``: breakers on every ``level`` node with a budget (or on ``node``),
    rated at ``rating_w`` (default the node's budget).  ``curve``: ``[ratio, seconds]`` points
    (power above ratio x rating for that long trips it; default: a thermal-magnetic shape, 100 %
    for 10 min, 125 % for 60 s, 150 % for 5 s, 200 % at once).  A trip darkens the node's servers
    for ``reset_s``; their requests are dropped or re-routed (``on_trip``)."""

    level: Literal["site", "row", "rack"] = "row"
    node: str | None = None
    rating_w: PosFloat | None = None
    curve: list[tuple[PosFloat, NonNegFloat]] = Field(
        default_factory=lambda: [(1.0, 600.0), (1.25, 60.0), (1.5, 5.0), (2.0, 0.0)])
    reset_s: NonNegFloat = 1800.0
    on_trip: Literal["drop", "reroute"] = "drop"
    check_s: PosFloat = 1.0
    model: Literal["average", "definite"] = "average"


class ControllerSpec(Strict):
    """``fleet.power.controller``: the POLCA-style row controller (:mod:`fleet.sim.control`).
    Row thresholds ``t1 < t2 < brake`` (and ``admission``) are fractions of the row budget;
    ``cap_low``/``cap_all``/``cap_brake`` fractions of each accelerator's maximum power limit (of
    its maximum SM clock with ``lever: clock``).  ``priority``: pool -> class (default: training
    pools 'training', serving pools 'interactive'); classes in ``low_priority`` are capped first.
    Faults: ``outages`` ([start, end) s of lost telemetry), ``fail_at_s`` (the controller stops)."""

    kind: Literal["polca"] = "polca"
    rows: list[str] | None = None
    interval_s: PosFloat = 2.0
    #: a reading is the mean of this many live samples spread over the interval (a meter's average)
    samples: Annotated[int, Field(strict=True, ge=1, le=100)] = 4
    telemetry_delay_s: NonNegFloat = 2.0
    actuation_delay_s: NonNegFloat = 1.0
    t1: Fraction = 0.85
    t2: Fraction = 0.92
    brake: Annotated[float, Field(gt=0, le=2)] = 0.97
    admission: Annotated[float, Field(gt=0, le=2)] | None = None
    hysteresis: Annotated[float, Field(ge=0, lt=1)] = 0.05
    release_hold_s: NonNegFloat = 60.0
    release: Literal["threshold", "predictive"] = "threshold"
    lever: Literal["cap", "clock"] = "cap"
    cap_low: Fraction = 0.6
    cap_all: Fraction = 0.75
    cap_brake: Fraction = 0.4
    low_priority: list[str] = Field(default_factory=lambda: ["training", "batch"])
    priority: dict[str, str] = Field(default_factory=dict)
    on_telemetry_loss: Literal["hold", "cap_low", "cap_all"] = "hold"
    stale_s: PosFloat = 10.0
    outages: list[tuple[NonNegFloat, NonNegFloat]] = Field(default_factory=list)
    fail_at_s: NonNegFloat | None = None
    fail_mode: Literal["hold", "release"] = "hold"   # at the failure the levers stay, or return to uncapped

    @model_validator(mode="after")
    def _ordered(self):
        if not self.t1 < self.t2 < self.brake:
            raise ValueError(f"expected t1 < t2 < brake, got {self.t1}, {self.t2}, {self.brake}")
        if self.admission is not None and self.admission <= self.brake:
            raise ValueError(f"expected admission above brake ({self.brake}), got {self.admission}")
        for k, (a, b) in enumerate(self.outages):
            if not b > a:
                raise ValueError(f"outages[{k}]: expected [start, end) with end > start, got [{a}, {b}]")
        return self


class PowerSpec(Strict):
    """Budgets of the power tree (W).  A node without a budget has NaN in the tree table.
    ``breakers`` and ``controller``: protection and capping (none: the simulation is unchanged)."""

    site_budget_w: PosFloat | None = None
    rows: dict[str, PosFloat] = Field(default_factory=dict)
    rack_budget_w: PosFloat | None = None    # every rack
    racks: dict[str, PosFloat] = Field(default_factory=dict)   # 'row0/rack1': W, overrides
    server_budget_w: PosFloat | None = None  # every server
    breakers: list[BreakerSpec] = Field(default_factory=list)
    controller: ControllerSpec | None = None


class FleetSpec(Strict):
    pools: list[PoolSpec]
    power: PowerSpec = Field(default_factory=PowerSpec)

    @field_validator("pools")
    @classmethod
    def _non_empty_unique(cls, v: list[PoolSpec]) -> list[PoolSpec]:
        if not v:
            raise ValueError("expected at least one pool")
        seen = set()
        for p in v:
            if p.name in seen:
                raise ValueError(f"pool names must be unique, {p.name!r} appears twice")
            seen.add(p.name)
        return v

    def pool(self, name: str) -> PoolSpec:
        for p in self.pools:
            if p.name == name:
                return p
        raise KeyError(name)


class TraceStretch(Strict):
    """Shape a short trace into a longer diurnal day: arrivals follow a daily cosine with mean
    ``rate`` req/s for ``hours``, token pairs resampled from the trace
    (:func:`fleet.workload.synth.stretch_trace`)."""

    rate: PosFloat
    hours: PosFloat = 24.0
    peak_to_trough: PosFloat = 2.0
    peak_hour: Annotated[float, Field(ge=0, lt=24)] = 14.0
    cv: PosFloat = 1.0


class TraceSource(Strict):
    """A request trace file, read by :mod:`fleet.workload.traces`."""

    path: Path
    format: str | None = None                 # None: detect from the file
    mapping: dict[str, str] | None = None     # canonical column -> file column
    rate_scale: PosFloat = 1.0                # x req/s: thinning (<1) or jittered copies (>1)
    window: tuple[NonNegFloat, PosFloat] | None = None   # [start_s, end_s) of the trace as read (re-zeroed), before rate_scale
    time_shift_s: NonNegFloat = 0.0           # added to every arrival
    stretch: TraceStretch | None = None       # a diurnal day shaped from the trace (after window, before rate_scale)


class SynthSource(Strict):
    """A synthetic request stream, made by :func:`fleet.workload.synth.synth_trace`.

    ``profile``: 'poisson' (constant ``rate``), 'gamma' (renewal with inter-arrival CV ``cv``),
    'diurnal' (cosine day with ``peak_to_trough`` and ``peak_hour``) or 'servegen' (the
    ServeGen/Alibaba load shape of ``servegen_model``, rescaled to mean ``rate``).  Token lengths:
    the Azure-conversation lognormal fit unless ``input_tokens``/``output_tokens`` (means) are
    given, then lognormal with coefficient of variation ``tokens_cv``.
    """

    profile: Literal["poisson", "gamma", "diurnal", "servegen"] = "poisson"
    rate: PosFloat                            # mean requests per second
    hours: PosFloat = 1.0
    cv: PosFloat = 1.0                        # inter-arrival coefficient of variation (1 = Poisson)
    seed: Seed | None = None                  # None: derived from the scenario seed
    input_tokens: PosFloat | None = None      # mean (tokens)
    output_tokens: PosFloat | None = None     # mean (tokens)
    tokens_cv: PosFloat = 1.0
    peak_to_trough: PosFloat = 2.0
    peak_hour: Annotated[float, Field(ge=0, lt=24)] = 14.0
    servegen_model: str = "m-large"


class SLOSpec(Strict):
    ttft_s: PosFloat | None = None
    tpot_s: PosFloat | None = None
    e2e_s: PosFloat | None = None


class InferenceDemand(Strict):
    model: str
    trace: TraceSource | None = None
    synth: SynthSource | None = None
    slo: SLOSpec = Field(default_factory=SLOSpec)

    @model_validator(mode="after")
    def _one_source(self):
        if (self.trace is None) == (self.synth is None):
            raise ValueError("expected exactly one of 'trace' or 'synth'")
        return self


class TrainingSynth(Strict):
    """Synthetic training jobs (:mod:`fleet.workload.jobs`)."""

    jobs: Annotated[int, Field(strict=True, gt=0, le=MAX_JOBS)] = 10
    hours: PosFloat = 24.0
    seed: Seed | None = None
    model: str | None = None
    max_gpus: PosInt | None = None
    deferrable_fraction: Annotated[float, Field(ge=0, le=1)] = 0.0


class TrainingDemand(Strict):
    pool: str | None = None                   # None: the only training pool
    model: str | None = None                  # for jobs without a model (None: llama-3.1-8b)
    jobs: Path | None = None
    synth: TrainingSynth | None = None
    #: deferrable jobs wait for a release signal: fixed release times (s) by job id, or all at a time
    release_times: dict[int, NonNegFloat] | None = None
    #: a planned schedule (fleet.plan.training): per job id, windows [start_s, end_s, cap_w per GPU
    #: or null] in which it runs (paused in between); see TrainingScheduler.set_job_plan
    schedule: dict[int, list[tuple[NonNegFloat, PosFloat, PosFloat | None]]] | None = None

    @model_validator(mode="after")
    def _one_source(self):
        if (self.jobs is None) == (self.synth is None):
            raise ValueError("expected exactly one of 'jobs' or 'synth'")
        return self


class DemandSpec(Strict):
    inference: list[InferenceDemand] = Field(default_factory=list)
    training: TrainingDemand | None = None


class SizeRoute(Strict):
    """``simulation.size_routes[*]`` (router ``size_aware``): requests of ``model`` with
    ``input_tokens`` in [lo, hi) and ``output_tokens`` in [lo, hi) go to ``pool`` with ``weight``
    (a list: one weight per hour, repeating over the horizon; 0: not that hour)."""

    model: str | None = None
    pool: str
    input_tokens: tuple[NonNegFloat, Annotated[float, Field(gt=0)]]
    output_tokens: tuple[NonNegFloat, Annotated[float, Field(gt=0)]]
    weight: list[NonNegFloat]


class SimulationSpec(Strict):
    horizon_s: PosFloat | None = None         # None: end of the demand
    telemetry_interval_s: PosFloat = 1.0
    #: coalesced | iteration (request level), or fluid (hourly steps calibrated on request-level
    #: windows, for weeks to a year; telemetry interval at least an hour)
    mode: Literal["coalesced", "iteration", "fluid"] = "coalesced"
    router: Literal["round_robin", "jsq", "least_kv", "size_aware"] = "jsq"
    #: size_aware: which pools serve which request sizes in which hour (a plan writes it)
    size_routes: list[SizeRoute] = Field(default_factory=list)
    record: list[Literal["requests", "power", "series"]] = ["requests", "power"]   # pydantic copies it
    progress: bool = False
    #: device constants of the energy model: 'calibrated' (fitted to ML.ENERGY H100 and Zeus
    #: measurements, fleet/catalog/device_energy_calibrated.yaml) or 'physical' (the sourced values)
    constants: Literal["calibrated", "physical"] = "calibrated"
    #: what a replica switched off by the replica schedule draws once it has drained: 'idle' (the
    #: accelerator's idle power, catalog idle_w, measured) or 'off' (powered down: catalog
    #: standby_w per GPU, modelled)
    inactive: Literal["idle", "off"] = "idle"

    @model_validator(mode="after")
    def _interval_within_horizon(self):
        if self.horizon_s is not None and self.telemetry_interval_s > self.horizon_s:
            raise ValueError(f"telemetry_interval_s ({self.telemetry_interval_s:g} s) is longer than "
                             f"horizon_s ({self.horizon_s:g} s); expected an interval <= the horizon")
        if self.horizon_s is not None and self.mode == "fluid" and self.horizon_s < 3600.0:
            raise ValueError(f"fluid mode steps an hour at a time; horizon_s {self.horizon_s:g} s is shorter: "
                             f"expected horizon_s >= 3600 or a request-level mode")
        return self


# =====================================================================================
# Section models: site, accounting, report, expectations, plan (the main job:
# fleet/accounting.py, fleet/report/, fleet/regress.py, fleet/run.py read these).
# =====================================================================================

class SignalSpec(Strict):
    """A grid signal: exactly one of ``constant`` (in the signal's unit), ``region`` (2023 data in
    ../shared/data: caiso, ercot, pjm, nyiso, de, gb, sg, jp-tk) or ``file`` (a CSV read by
    :mod:`fleet.grid`).  In YAML a bare number means ``{constant: number}``."""

    constant: Annotated[float, Field(allow_inf_nan=False)] | None = None
    region: str | None = None
    file: Path | None = None
    #: carbon intensity: 'average' (Electricity Maps) or 'marginal' (WattTime MOER); stated in the report
    signal: Literal["average", "marginal"] = "average"
    #: Electricity Maps basis: 'lca' (life-cycle factors) or 'direct' (combustion only)
    basis: Literal["lca", "direct"] = "lca"
    #: move a signal of another year onto the simulation's year (hour of year kept)
    year_shift: bool = True
    #: missing hours in a file: fill forward (with a warning), interpolate, or refuse the file
    gaps: Literal["ffill", "interpolate", "error"] = "ffill"

    @model_validator(mode="before")
    @classmethod
    def _bare_number(cls, v):
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return {"constant": v}
        if isinstance(v, str):
            return {"region": v}
        return v

    @model_validator(mode="after")
    def _one_source(self):
        n = sum(x is not None for x in (self.constant, self.region, self.file))
        if n != 1:
            raise ValueError("expected exactly one of 'constant', 'region' or 'file'")
        return self


class SiteSpec(Strict):
    """Where the fleet runs: grid carbon intensity (gCO2e/kWh), electricity price (USD/MWh) and
    PUE (facility / IT energy).  ``region`` is the default for both grid signals.  Defaults (no
    site section): 250 gCO2e/kWh, 60 USD/MWh, PUE 1.2 as stated constants, so a scenario runs
    without any external data."""

    name: str = "site"
    region: str | None = None
    carbon_intensity: SignalSpec | None = None
    price: SignalSpec | None = None
    pue: SignalSpec = Field(default_factory=lambda: SignalSpec(constant=1.2))

    @field_validator("pue")
    @classmethod
    def _pue(cls, v: SignalSpec) -> SignalSpec:
        if v.constant is not None and v.constant < 1.0:
            raise ValueError("expected a PUE >= 1")
        return v


class AcceleratorOverride(Strict):
    """Accounting facts for one accelerator that replace (or fill) the catalog's."""

    embodied_kgco2e: NonNegFloat | None = None
    purchase_usd: NonNegFloat | None = None
    price_usd_per_gpu_hour: NonNegFloat | None = None
    source: str = "scenario"


class AccountingSpec(Strict):
    """Embodied carbon and hardware cost assumptions (see fleet/accounting.py for defaults' sources)."""

    lifetime_years: PosFloat = 5.0                  # embodied amortisation (LLMCarbon: 5 years)
    server_embodied_kgco2e: NonNegFloat | None = None   # None: LLMCarbon per-node value
    server_embodied_source: str | None = None
    cost_model: Literal["rental", "purchase"] = "rental"
    amortisation_years: PosFloat = 4.0              # capex amortisation (purchase)
    server_capex_usd: NonNegFloat = 0.0             # per server excluding GPUs (purchase)
    accelerators: dict[str, AcceleratorOverride] = Field(default_factory=dict)


class ReportSpec(Strict):
    """What ``fleet run`` writes into ``reports/<scenario>/``."""

    title: str | None = None
    pdf: bool = True
    png: bool = True
    dpi: Annotated[int, Field(strict=True, ge=50, le=600)] = 110
    #: power caps (fraction of TDP) at which each pool's time-energy frontier is drawn
    frontier_cap_fractions: list[Fraction] = Field(
        default_factory=lambda: [0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])


class Expectation(Strict):
    """One regression expectation on a metric of ``summary.json``: ``value`` with a tolerance
    (``rel_tol`` relative, ``abs_tol`` absolute; default rel_tol 0.02), and/or bounds."""

    metric: str
    value: Annotated[float, Field(allow_inf_nan=False)] | None = None
    rel_tol: NonNegFloat | None = None
    abs_tol: NonNegFloat | None = None
    min: Annotated[float, Field(allow_inf_nan=False)] | None = None
    max: Annotated[float, Field(allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _something(self):
        if self.value is None and self.min is None and self.max is None:
            raise ValueError("expected 'value' (with rel_tol/abs_tol) or 'min'/'max'")
        return self


class WhatIfSpec(Strict):
    """A what-if part: device constants of ``fleet/catalog/device_energy.yaml`` replaced for the
    pools whose accelerator is in ``accelerators`` (all pools when omitted), e.g. an HBM at half
    the pJ/bit: ``{label: "HBM3 at half the pJ/bit", device_constants: {memory.pj_per_bit.HBM3: 1.7}}``.
    Values outside a constant's plausible range are allowed (that is the point of a what-if) and
    are labelled ``what-if`` in the report."""

    label: str
    device_constants: dict[str, Annotated[float, Field(gt=0, allow_inf_nan=False)]]
    accelerators: list[str] | None = None


class OperatePlanSpec(Strict):
    """``plan.operate``: per serving pool one power cap and, per hour, how many replicas are active
    (:mod:`fleet.plan.operate`).  ``objective``: energy (facility kWh), cost (energy at hourly
    prices, with the hardware cost as a constant), carbon (operational, hourly intensity) or
    weighted (``weights``: a sum of the three, each in its unit: kWh, USD, kgCO2e).
    ``slo_target``: the share of requests of each model that must meet its TTFT and TPOT SLO in
    every hour of the simulation (the SLO percentile).  ``caps``: candidate caps as fractions of
    the accelerator's maximum power limit (clipped to its range).  ``utilisation``: the share of a
    replica's SLO-bound throughput that the plan loads it to (queueing margin before the
    simulation calibrates it).  ``rounds``: most verification rounds (plan, simulate, derate)."""

    objective: Literal["energy", "cost", "carbon", "weighted"] = "energy"
    weights: dict[Literal["energy", "cost", "carbon"], NonNegFloat] = Field(default_factory=dict)
    slo_target: Annotated[float, Field(gt=0, le=1)] = 0.99
    caps: list[Fraction] = Field(default_factory=lambda: [0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    utilisation: Fraction = 0.85
    time_limit_s: PosFloat = 20.0
    rounds: Annotated[int, Field(strict=True, ge=1, le=10)] = 4
    derate: Annotated[float, Field(gt=0, lt=1)] = 0.85
    #: budgets the plan must keep: peak power as planned (cap x GPUs of active replicas + idle of
    #: the rest + server overhead) within site and row budgets
    keep_budgets: bool = True
    #: MILP solver: 'highs' (HiGHS branch and cut through OR-Tools MathOpt; default: it proves this
    #: model's optima far faster than CP-SAT, whose LP bound on fractional replicas is weak) or
    #: 'cp-sat' (integer coefficients at a stated resolution)
    solver: Literal["highs", "cp-sat"] = "highs"


class PowerPlanSpec(Strict):
    """``plan.power``: how many servers each row holds and the controller's thresholds
    (:mod:`fleet.plan.power`), chosen over per-server power samples from simulating the row at
    its nameplate size on ``seeds`` seeds, then verified with the controller and breakers on
    ``verify_seeds`` other seeds (with ``outages``: telemetry lost for [start, end) s): zero
    trips, p99 TTFT and TPOT within ``latency_tolerance_pct`` of the nameplate row, SLO attainment
    at least ``slo_target``.  Demand grows with the servers (each server hosts the same work).
    ``horizon_s``: each run's length (None: the scenario's)."""

    rows: list[str] | None = None
    seeds: Annotated[int, Field(strict=True, ge=1, le=100)] = 3
    verify_seeds: Annotated[int, Field(strict=True, ge=1, le=100)] = 3
    horizon_s: PosFloat | None = None
    t1: list[Fraction] = Field(default_factory=lambda: [0.75, 0.8, 0.85, 0.9, 0.95])
    t2_offset: Annotated[float, Field(gt=0, lt=1)] = 0.05
    brake_offset: Annotated[float, Field(gt=0, lt=1)] = 0.1
    max_capped_share: Annotated[float, Field(ge=0, le=1)] = 0.05
    budget_exceed_share: Annotated[float, Field(ge=0, le=1)] = 0.0
    rise_quantile: Annotated[float, Field(gt=0, le=1)] = 1.0
    warmup_s: NonNegFloat = 60.0             # samples before this (s) of each run are left out (it starts empty)
    max_extra_pct: PosFloat | None = None
    slo_target: Annotated[float, Field(gt=0, le=1)] = 0.99
    latency_tolerance_pct: PosFloat = 5.0
    outages: list[tuple[NonNegFloat, NonNegFloat]] = Field(default_factory=list)
    time_limit_s: PosFloat = 20.0
    rounds: Annotated[int, Field(strict=True, ge=1, le=10)] = 4


class MixAcceleratorSpec(Strict):
    """One accelerator type the mix planner may buy or rent (``plan.mix.accelerators.<name>``)."""

    max_gpus: NonNegInt | None = None            # availability (None: unlimited)
    tp: list[PosInt] | None = None               # None: the two smallest of 1, 2, 4, 8 that fit
    precisions: list[str] | None = None          # None: plan.mix.precisions
    #: 'reserved' (paid every hour for the peak count) | 'hourly' (per active GPU-hour)
    pricing: Literal["reserved", "hourly"] | None = None
    price_usd_per_gpu_hour: NonNegFloat | None = None   # None: accounting.accelerators, then the catalog
    row: Annotated[str, Field(pattern=r"^[A-Za-z0-9_.-]+$")] = "row0"
    gpus_per_server: PosInt = 8
    servers_per_rack: PosInt = 4


class MixBucketSpec(Strict):
    """Request-size buckets: stated edges (tokens) or ``quantiles`` buckets per axis from the trace."""

    input_edges: list[PosFloat] | None = None
    output_edges: list[PosFloat] | None = None
    quantiles: Annotated[int, Field(strict=True, ge=1, le=8)] = 3


class MixPlanSpec(Strict):
    """``plan.mix``: which accelerators to buy or rent and how many, which request sizes each
    serves hour by hour (:mod:`fleet.plan.mix`).  ``objective``: cost (hardware + facility energy at
    hourly prices, USD), energy (facility kWh), carbon (operational kgCO2e), embodied, total_carbon,
    or weighted (``weights`` by name).  ``pareto``: two objectives whose front is traced
    (epsilon-constraint, ``pareto_points`` points).  ``caps``: candidate power caps as fractions of
    each accelerator's maximum limit.  ``utilisation``: the share of a replica's SLO-bound
    throughput the plan loads it to (queueing margin).  ``rounds``: most verification rounds;
    a bucket that misses ``slo_target`` on a pool has that capacity multiplied by ``derate``."""

    model: str | None = None                     # None: the only inference demand's model
    accelerators: dict[str, MixAcceleratorSpec]
    precisions: list[str] = Field(default_factory=lambda: ["bf16"])
    caps: list[Fraction] = Field(default_factory=lambda: [1.0])
    buckets: MixBucketSpec = Field(default_factory=MixBucketSpec)
    objective: Literal["cost", "energy", "carbon", "embodied", "total_carbon", "weighted"] = "cost"
    weights: dict[Literal["cost", "energy", "carbon", "embodied", "total_carbon"], NonNegFloat] = \
        Field(default_factory=dict)
    pareto: list[Literal["cost", "energy", "carbon", "embodied", "total_carbon"]] | None = None
    pareto_points: Annotated[int, Field(strict=True, ge=2, le=20)] = 5
    utilisation: Fraction = 0.8
    slo_target: Annotated[float, Field(gt=0, le=1)] = 0.99
    max_batch: PosInt = 256
    slices: PosInt = 4
    racks: PosInt | None = None
    budget_usd: PosFloat | None = None
    time_limit_s: PosFloat = 10.0
    rounds: Annotated[int, Field(strict=True, ge=1, le=10)] = 3
    derate: Annotated[float, Field(gt=0, lt=1)] = 0.8
    baselines: bool = True

    @field_validator("pareto")
    @classmethod
    def _two(cls, v):
        if v is not None and (len(v) != 2 or v[0] == v[1]):
            raise ValueError("expected two different objectives, e.g. [cost, carbon]")
        return v

    @field_validator("accelerators")
    @classmethod
    def _some(cls, v):
        if not v:
            raise ValueError("expected at least one accelerator")
        return v


class TrainingPlanSpec(Strict):
    """``plan.training``: when each training job runs and at which power limit
    (:mod:`fleet.plan.training`).  ``objective``: carbon (operational, the site's hourly intensity,
    average or marginal as the site says), cost (hourly prices), energy (facility kWh) or weighted
    (``weights`` in kgCO2e, USD, kWh).  ``caps``: the power-limit grid as fractions of the pool's
    maximum (its configured cap, else the accelerator's maximum limit; clipped to the lowest
    settable limit).  ``interruptible``: every job (true), none (false) or these job ids.
    ``power_budget``: keep the jobs' hourly draw within the site/row budget less inference (from
    the simulation of the scenario as written) and the pool's idle floor.  ``rounds``: most
    plan-simulate-verify rounds; a job the simulation finds late is re-planned with ``derate``
    times its work.  ``tolerance``: the agreement asked of plan and simulation (energy, carbon)."""

    objective: Literal["energy", "cost", "carbon", "weighted"] = "carbon"
    weights: dict[Literal["energy", "cost", "carbon"], NonNegFloat] = Field(default_factory=dict)
    caps: list[Fraction] = Field(default_factory=lambda: [0.5, 0.65, 0.8, 1.0])
    interruptible: bool | list[Int] = True
    pool: str | None = None
    power_budget: bool = True
    time_limit_s: PosFloat = 20.0
    workers: Annotated[int, Field(strict=True, ge=1, le=64)] = 1
    rounds: Annotated[int, Field(strict=True, ge=1, le=10)] = 3
    derate: Annotated[float, Field(gt=1, lt=2)] = 1.02
    tolerance: Annotated[float, Field(gt=0, lt=1)] = 0.02


class PlanSpec(Strict):
    """What the OR-Tools planner decides before the simulation (each section optional):
    ``operate`` (caps and active replicas per hour).  ``fleet run`` plans, applies the decisions
    as a re-validated scenario, simulates and verifies it, and reports it against the scenario as
    written."""

    operate: OperatePlanSpec | None = None
    mix: MixPlanSpec | None = None
    training: TrainingPlanSpec | None = None
    power: PowerPlanSpec | None = None

    @property
    def enabled(self) -> bool:
        return any(getattr(self, k) is not None for k in type(self).model_fields)


#: Time stamps are pandas nanosecond times, which end in April 2262; a start before 2200 leaves
#: room for horizons of decades.  Grid data begins well after 1970.
START_UTC_MIN = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
START_UTC_MAX = _dt.datetime(2200, 1, 1, tzinfo=_dt.timezone.utc)


def _default_start() -> _dt.datetime:
    return _dt.datetime(2023, 6, 1, tzinfo=_dt.timezone.utc)


class Scenario(Strict):
    """A whole scenario.  Load one with :func:`load_scenario`."""

    name: Name
    description: str = ""
    seed: Seed = 0
    start_utc: _dt.datetime = Field(default_factory=_default_start)
    fleet: FleetSpec
    demand: DemandSpec = Field(default_factory=DemandSpec)
    simulation: SimulationSpec = Field(default_factory=SimulationSpec)
    site: SiteSpec = Field(default_factory=lambda: SiteSpec())
    accounting: AccountingSpec = Field(default_factory=lambda: AccountingSpec())
    report: ReportSpec = Field(default_factory=lambda: ReportSpec())
    expectations: list[Expectation] = Field(default_factory=list)
    plan: PlanSpec = Field(default_factory=lambda: PlanSpec())
    whatif: WhatIfSpec | None = None  # a what-if part (device constants)
    #: replica schedule: serving pool (``POOL``, or ``POOL:MODEL`` for a pool serving several
    #: models) -> active replicas in each hour from the start (entry h covers [3600 h, 3600 (h+1)) s;
    #: the list repeats over longer horizons, so 24 entries are a daily profile).  Replicas beyond
    #: the hour's count drain (finish what they hold, take nothing new) and then draw their inactive
    #: power (``simulation.inactive``); pools without an entry keep every replica active.
    schedule: dict[str, list[NonNegInt]] = Field(default_factory=dict)

    _path: Path | None = PrivateAttr(default=None)
    _raw: dict | None = PrivateAttr(default=None)
    _derived_from: str | None = PrivateAttr(default=None)
    _updates: dict | None = PrivateAttr(default=None)
    _update_note: str = PrivateAttr(default="")

    @field_validator("start_utc")
    @classmethod
    def _aware(cls, v: _dt.datetime) -> _dt.datetime:
        if v.tzinfo is None:
            raise ValueError("expected a time-zone-aware time, e.g. 2023-06-01T00:00:00Z")
        v = v.astimezone(_dt.timezone.utc)
        if not (START_UTC_MIN <= v < START_UTC_MAX):
            raise ValueError(f"expected a start between {START_UTC_MIN:%Y-%m-%d} and {START_UTC_MAX:%Y-%m-%d}")
        return v

    @property
    def path(self) -> Path | None:
        """The file this scenario was loaded from (None if built in code)."""
        return self._path

    @property
    def base_dir(self) -> Path:
        return self._path.parent if self._path is not None else Path.cwd()

    def hash(self) -> str:
        """A stable 16-hex-digit hash of the scenario's content as written (key order ignored)."""
        data = self._raw if self._raw is not None else self.model_dump(mode="json")
        return scenario_hash(data)

    def training_pools(self) -> list[PoolSpec]:
        return [p for p in self.fleet.pools if p.role == "training"]

    def content(self) -> dict:
        """The scenario's content as a plain mapping (as written, or as dumped when built in code)."""
        import copy

        return copy.deepcopy(self._raw) if self._raw is not None else self.model_dump(mode="json", exclude_none=True)

    def with_updates(self, updates: dict[str, Any], *, note: str = "") -> "Scenario":
        """A new scenario: this one's content with ``updates`` applied and everything validated and
        checked again, exactly as a hand-written file would be.  Keys are scenario paths
        (``fleet.pools[h100].power_cap_w``: a list item by its index or by its ``name``;
        ``schedule.h100``: a mapping key); a value of None removes the key.  The result records
        where it came from (``derived_from``: this scenario's hash; ``updates``), so a report can
        show both identities.  This scenario is left unchanged (it is never edited in place)."""
        data = self.content()
        for key, value in updates.items():
            set_path(data, key, value)
        new = parse_scenario(data, path=self._path)
        new._derived_from = self.hash()
        new._updates = dict(updates)
        new._update_note = note
        return new

    @property
    def derived_from(self) -> str | None:
        """The hash of the scenario this one was planned from (None if written by hand)."""
        return self._derived_from

    def sim_input(self):
        """The typed :class:`fleet.sim.input.SimInput` the simulation reads (see :mod:`fleet.siminput`)."""
        from .siminput import sim_input

        return sim_input(self)

    def operating_point(self, pool: int | str, serve: int = 0):
        """The :class:`~fleet.frontier.OperatingPoint` of ``fleet.pools[pool].serve[serve]``
        (``pool``: index or name); see :func:`serve_operating_point`."""
        if isinstance(pool, str):
            names = [p.name for p in self.fleet.pools]
            if pool not in names:
                raise ScenarioError(f"no pool named {pool!r}; the pools are {names}", path=self.path,
                                    field="fleet.pools")
            pool = names.index(pool)
        return serve_operating_point(self, pool, serve)


# ------------------------------------------------------------------ paths
_PATH_TOKEN = re.compile(r"([^.\[\]]+)|\[([^\]]*)\]")


def parse_path(path: str) -> list[str | int]:
    """``fleet.pools[h100].power_cap_w`` -> ``['fleet', 'pools', 'h100', 'power_cap_w']`` (an index in
    brackets becomes an int; a name in brackets stays a string and selects by ``name``)."""
    out: list[str | int] = []
    pos = 0
    for m in _PATH_TOKEN.finditer(path):
        if m.start() != pos and path[pos:m.start()] != ".":
            raise ScenarioError(f"bad scenario path {path!r} near {path[pos:]!r}")
        pos = m.end()
        if m.group(1) is not None:
            out.append(m.group(1))
        else:
            tok = m.group(2)
            out.append(int(tok) if tok.lstrip("-").isdigit() else tok)
    if pos != len(path) or not out:
        raise ScenarioError(f"bad scenario path {path!r}")
    return out


def set_path(data: dict, path: str, value: Any) -> None:
    """Set (or with ``value=None`` remove) the item at scenario ``path`` in a raw mapping, creating
    mappings on the way.  A list item is found by index or by its ``name`` key."""
    keys = parse_path(path)
    node: Any = data
    for i, k in enumerate(keys):
        last = i == len(keys) - 1
        if isinstance(node, list):
            if isinstance(k, str):
                hits = [j for j, item in enumerate(node) if isinstance(item, dict) and item.get("name") == k]
                if not hits:
                    raise ScenarioError(f"no item named {k!r}", field=path)
                k = hits[0]
            if not -len(node) <= k < len(node):
                raise ScenarioError(f"index {k} out of range (the list has {len(node)} items)", field=path)
            if last:
                node[k] = value
                return
            node = node[k]
        elif isinstance(node, dict):
            if last:
                if value is None:
                    node.pop(k, None)
                else:
                    node[k] = value
                return
            if node.get(k) is None:
                node[k] = {}
            node = node[k]
        else:
            raise ScenarioError(f"cannot set {path!r}: {'.'.join(map(str, keys[:i]))} is not a mapping or a list",
                                field=path)


# ------------------------------------------------------------------ loading
def _friendly(err: Mapping[str, Any]) -> str | None:
    """A planner-readable 'expected ...' for the common pydantic error types."""
    typ = err.get("type", "")
    ctx = err.get("ctx") or {}
    got = err.get("input")
    if typ in ("less_than", "less_than_equal") and isinstance(got, (int, float)) and not isinstance(got, bool):
        bound = ctx.get("lt", ctx.get("le"))
        return f"expected a number {'<' if typ == 'less_than' else '<='} {bound:,}"
    if typ in ("greater_than", "greater_than_equal") and isinstance(got, (int, float)) \
            and not isinstance(got, bool):
        bound = ctx.get("gt", ctx.get("ge"))
        if isinstance(got, int) and bound == 0:
            return "expected a positive integer" if typ == "greater_than" else "expected a non-negative integer"
        return f"expected a number {'>' if typ == 'greater_than' else '>='} {bound}"
    if typ in ("int_type", "int_parsing", "int_from_float"):
        return "expected an integer"
    if typ in ("float_type", "float_parsing"):
        return "expected a number"
    if typ in ("string_type",):
        return "expected a string"
    if typ in ("bool_type", "bool_parsing"):
        return "expected true or false"
    if typ == "literal_error":
        return f"expected one of {ctx.get('expected')}"
    if typ == "missing":
        return "required key is missing"
    if typ == "string_pattern_mismatch":
        return "expected a name of letters, digits, '_', '.' or '-', not only dots"
    if typ == "string_too_long":
        return f"expected at most {ctx.get('max_length')} characters"
    if typ in ("list_type", "dict_type", "model_type", "model_attributes_type"):
        return {"list_type": "expected a list", "dict_type": "expected a mapping"}.get(typ, "expected a mapping")
    if typ == "value_error":
        return str(ctx.get("error", err.get("msg", "invalid")))
    return None


def _format_errors(exc: ValidationError, path: str | Path | None) -> ScenarioError:
    lines = []
    for err in exc.errors():
        loc = tuple(p for p in err.get("loc", ())
                    if not (isinstance(p, str) and (p.startswith("function-") or p in ("int", "float", "str"))))
        msg = err.get("msg", "invalid")
        if err.get("type") == "extra_forbidden":
            msg = "unknown key"
        else:
            msg = _friendly(err) or msg
            got = err.get("input")
            if err.get("type") not in ("missing",) and not isinstance(got, (dict, list)) \
                    and not isinstance(got, BaseModel):
                msg += f", got {fmt_value(got)}"
        lines.append((_yaml_path(loc), msg))
    # one line per distinct path (unions report the same field several times)
    seen, uniq = set(), []
    for f, m in lines:
        if f not in seen:
            seen.add(f)
            uniq.append((f, m))
    first_field, first_msg = uniq[0]
    text = first_msg
    if len(uniq) > 1:
        text += "".join(f"\n  {f}: {m}" for f, m in uniq[1:])
    return ScenarioError(text, path=path, field=first_field or None)


def parse_scenario(data: dict, *, path: str | Path | None = None, check: bool = True) -> Scenario:
    """Validate a scenario given as a mapping (what :func:`read_yaml` returns)."""
    try:
        sc = Scenario.model_validate(data)
    except ValidationError as exc:
        raise _format_errors(exc, path) from exc
    sc._path = Path(path).resolve() if path is not None else None
    sc._raw = data
    _resolve_paths(sc)
    if check:
        _check_scenario(sc)
    return sc


def load_scenario(path: str | Path, *, check: bool = True) -> Scenario:
    """Read, validate and check a scenario file.

    Relative paths inside the file (traces, job tables) resolve against the file's directory.
    Every problem raises :class:`~fleet.errors.ScenarioError` with the file and the YAML path.
    """
    return parse_scenario(read_yaml(path), path=path, check=check)


def _resolve_paths(sc: Scenario) -> None:
    base = sc.base_dir
    for d in sc.demand.inference:
        if d.trace is not None and not d.trace.path.is_absolute():
            d.trace.path = (base / d.trace.path).resolve()
    tr = sc.demand.training
    if tr is not None and tr.jobs is not None and not tr.jobs.is_absolute():
        tr.jobs = (base / tr.jobs).resolve()


# ------------------------------------------------------------------ semantic checks
def _err(sc: Scenario, field: str, message: str) -> ScenarioError:
    return ScenarioError(message, path=sc.path, field=field)


def resolve_accelerator(name: str):
    """The catalog entry for ``name`` (raises the catalog's error for an unknown name)."""
    from .catalog import get_accelerator

    return get_accelerator(name)


def resolve_model(name: str):
    from .catalog import get_model

    return get_model(name)


def _check_scenario(sc: Scenario) -> None:
    """Checks that need the catalog and the model table; raise ScenarioError on the first."""
    from .errors import FleetError

    served: dict[str, list[str]] = {}
    for i, pool in enumerate(sc.fleet.pools):
        where = f"fleet.pools[{i}]"
        try:
            acc = resolve_accelerator(pool.accelerator)
        except FleetError as exc:
            raise _err(sc, f"{where}.accelerator", _strip_where(exc)) from exc
        lo = getattr(acc, "power_min_w", None)
        hi = getattr(acc, "power_max_w", None) or getattr(acc, "tdp_w", None)
        if pool.power_cap_w is not None:
            if (lo is not None and not _nan(lo) and pool.power_cap_w < lo) or \
                    (hi is not None and not _nan(hi) and pool.power_cap_w > hi):
                raise _err(sc, f"{where}.power_cap_w",
                           f"expected a cap between {lo:g} and {hi:g} W for {acc.name}, "
                           f"got {pool.power_cap_w:g}")
        if pool.role == "training":
            if pool.serve:
                raise _err(sc, f"{where}.serve", "a training pool serves no models (remove 'serve' "
                                                 "or set role: serving)")
            continue
        if not pool.serve:
            raise _err(sc, f"{where}.serve", "a serving pool needs at least one model to serve")
        free = pool.gpus
        unspecified = [j for j, s in enumerate(pool.serve) if s.replicas is None]
        if len(unspecified) > 1:
            raise _err(sc, f"{where}.serve[{unspecified[1]}].replicas",
                       "when a pool serves several models, at most one may omit 'replicas'")
        for j, s in enumerate(pool.serve):
            sw = f"{where}.serve[{j}]"
            try:
                m = resolve_model(s.model)
            except FleetError as exc:
                raise _err(sc, f"{sw}.model", _strip_where(exc)) from exc
            if s.tp > pool.gpus_per_server or pool.gpus_per_server % s.tp:
                raise _err(sc, f"{sw}.tp", f"expected a divisor of gpus_per_server "
                                           f"({pool.gpus_per_server}) so a replica stays in one server, "
                                           f"got {s.tp}")
            if s.ep is not None:
                from .frontier.build import check_ep
                try:
                    check_ep(m, s.tp, s.ep)
                except FleetError as exc:
                    raise _err(sc, f"{sw}.ep", _strip_where(exc)) from exc
            _check_fit(sc, sw, s, acc, m)
            if s.replicas is not None:
                free -= s.replicas * s.tp
            served.setdefault(_canon(m, s.model), []).append(pool.name)
        if free < 0:
            raise _err(sc, f"{where}.serve", f"replicas x tp need {pool.gpus - free} GPUs, "
                                             f"the pool has {pool.gpus}")
        if unspecified and free < pool.serve[unspecified[0]].tp:
            raise _err(sc, f"{where}.serve[{unspecified[0]}].replicas",
                       f"no GPUs left for this model ({free} free, tp={pool.serve[unspecified[0]].tp})")
    # budgets name rows and racks that exist
    rows = {p.row for p in sc.fleet.pools}
    for r in sc.fleet.power.rows:
        if r not in rows:
            raise _err(sc, f"fleet.power.rows.{r}", f"unknown row; the fleet's rows are {sorted(rows)}")
    racks = rack_names(sc.fleet)
    for r in sc.fleet.power.racks:
        if r not in racks:
            shown = ", ".join(racks[:8]) + (", ..." if len(racks) > 8 else "")
            raise _err(sc, f"fleet.power.racks.{r}", f"unknown rack; the fleet's racks are {shown} "
                                                     f"(row/rackN, numbered per row in pool order)")
    _check_sizes(sc)
    _check_site(sc)
    _check_whatif(sc)
    # demand
    for k, d in enumerate(sc.demand.inference):
        where = f"demand.inference[{k}]"
        try:
            m = resolve_model(d.model)
        except FleetError as exc:
            raise _err(sc, f"{where}.model", _strip_where(exc)) from exc
        key = _canon(m, d.model)
        if key not in served:
            pools = ", ".join(f"{p.name} ({'; '.join(s.model for s in p.serve) or p.role})"
                              for p in sc.fleet.pools)
            raise _err(sc, f"{where}.model", f"model {d.model!r} is demanded but no pool serves it "
                                             f"(pools: {pools})")
        if d.trace is not None and not d.trace.path.is_file():
            raise _err(sc, f"{where}.trace.path", f"no such trace file: {d.trace.path}")
    _check_schedule(sc)
    pool_names = {p.name for p in sc.fleet.pools}
    for k, route in enumerate(sc.simulation.size_routes):
        if route.pool not in pool_names:
            raise _err(sc, f"simulation.size_routes[{k}].pool", f"unknown pool {route.pool!r}; the fleet's pools "
                                                                f"are {sorted(pool_names)}")
        if not route.weight:
            raise _err(sc, f"simulation.size_routes[{k}].weight", "expected at least one weight (one per hour)")
    if sc.simulation.router == "size_aware" and not sc.simulation.size_routes:
        raise _err(sc, "simulation.size_routes", "the size_aware router needs size_routes (a mix plan writes them)")
    tr = sc.demand.training
    if tr is not None:
        tpools = sc.training_pools()
        if tr.pool is not None:
            if tr.pool not in [p.name for p in tpools]:
                raise _err(sc, "demand.training.pool",
                           f"expected the name of a training pool ({[p.name for p in tpools]}), got {tr.pool!r}")
        elif len(tpools) != 1:
            raise _err(sc, "demand.training.pool" if tpools else "demand.training",
                       "training demand needs a training pool (role: training)" if not tpools else
                       f"several training pools: say which with 'pool' ({[p.name for p in tpools]})")
        if tr.jobs is not None and not tr.jobs.is_file():
            raise _err(sc, "demand.training.jobs", f"no such job table: {tr.jobs}")
        for fld, name in (("demand.training.model", tr.model),
                          ("demand.training.synth.model", tr.synth.model if tr.synth is not None else None)):
            if name is not None:
                try:
                    resolve_model(name)
                except FleetError as exc:
                    raise _err(sc, fld, _strip_where(exc)) from exc


def rack_names(fleet: FleetSpec) -> list[str]:
    """The racks of the power tree, as :func:`fleet.sim.power.build_tree` numbers them: per row,
    in pool order, each pool starting a new rack."""
    out: list[str] = []
    nxt: dict[str, int] = {}
    for pool in fleet.pools:
        n = math.ceil(pool.servers / pool.servers_per_rack)
        first = nxt.get(pool.row, 0)
        out += [f"{pool.row}/rack{first + k}" for k in range(n)]
        nxt[pool.row] = first + n
    return out


def _check_sizes(sc: Scenario) -> None:
    """Refuse, before anything is allocated, a scenario whose simulation would not fit in memory
    or finish (limits in :mod:`fleet.limits`)."""
    total = sum(p.gpus for p in sc.fleet.pools)
    if total > MAX_FLEET_GPUS:
        big = max(range(len(sc.fleet.pools)), key=lambda i: sc.fleet.pools[i].gpus)
        raise _err(sc, f"fleet.pools[{big}].gpus",
                   f"the fleet has {total:,} GPUs; expected at most {MAX_FLEET_GPUS:,} in one simulation "
                   f"(fleet.limits.MAX_FLEET_GPUS): simulate a representative slice")
    if sc.simulation.mode == "fluid":
        return          # fluid mode never generates every request
    expected, first = 0.0, None
    for k, d in enumerate(sc.demand.inference):
        if d.synth is not None:
            n = d.synth.rate * d.synth.hours * 3600.0      # generated in full, whatever the horizon
            expected += n
            if first is None and n > MAX_REQUESTS / 10:
                first = k
    if expected > MAX_REQUESTS:
        k = first if first is not None else 0
        raise _err(sc, f"demand.inference[{k}].synth",
                   f"the demand is about {expected:,.0f} requests; a request-level simulation takes at most "
                   f"{MAX_REQUESTS:,} (fleet.limits.MAX_REQUESTS): use simulation.mode: fluid, a shorter "
                   f"horizon (synth.hours, simulation.horizon_s) or a lower rate")


def _check_site(sc: Scenario) -> None:
    """Grid signals: a carbon intensity is never negative; regions are ones fleet knows (even when
    both signals are constants, a misspelt region is a mistake worth reporting)."""
    from .errors import FleetError

    site = sc.site
    ci = site.carbon_intensity
    if ci is not None and ci.constant is not None and ci.constant < 0:
        raise _err(sc, "site.carbon_intensity", f"expected a carbon intensity >= 0 gCO2e/kWh, got {ci.constant:g}")
    if site.pue.constant is not None and site.pue.constant >= 3.0:
        raise _err(sc, "site.pue", f"expected a PUE between 1 and 3 (facility / IT energy), got {site.pue.constant:g}")
    from .grid.regions import region

    for fld, name in (("site.region", site.region),
                      ("site.carbon_intensity.region", ci.region if ci is not None else None),
                      ("site.price.region", site.price.region if site.price is not None else None),
                      ("site.pue.region", site.pue.region)):
        if name is not None:
            try:
                region(name)
            except FleetError as exc:
                raise _err(sc, fld, _strip_where(exc)) from exc


def _check_whatif(sc: Scenario) -> None:
    """A what-if part names device constants that exist and accelerators the catalog knows."""
    from .errors import FleetError

    if sc.whatif is None:
        return
    from difflib import get_close_matches

    from .catalog.device_energy import load_device_constants

    known = [c.name for c in load_device_constants(False).items]
    for key in sc.whatif.device_constants:
        if key not in known:
            close = get_close_matches(key, known, n=3)
            hint = f"; did you mean {' or '.join(close)}?" if close else \
                f"; expected a name from fleet/catalog/device_energy.yaml, e.g. {', '.join(known[:4])}"
            raise _err(sc, f"whatif.device_constants.{key}", f"unknown device constant {key!r}{hint}")
    for i, a in enumerate(sc.whatif.accelerators or []):
        try:
            resolve_accelerator(a)
        except FleetError as exc:
            raise _err(sc, f"whatif.accelerators[{i}]", _strip_where(exc)) from exc


def _nan(x) -> bool:
    try:
        return math.isnan(float(x))
    except (TypeError, ValueError):
        return True


def _canon(model_entry, fallback: str) -> str:
    return str(getattr(model_entry, "name", fallback))


def _strip_where(exc: Exception) -> str:
    return str(exc)


def _check_fit(sc: Scenario, where: str, s: ServeSpec, acc, model) -> None:
    """A model that does not fit ``tp`` GPUs at this precision is an error naming what would fit."""
    from .errors import FleetError

    try:
        fits = _fits(model, acc, s.tp, s.precision, s.kv_precision)
    except FleetError as exc:
        raise _err(sc, where, _strip_where(exc)) from exc
    if not fits:
        hint = _what_fits(model, acc, s)
        raise _err(sc, f"{where}.tp", f"{s.model} at {s.precision} does not fit on {s.tp} x "
                                      f"{acc.name}{hint}")


def _fits(model, acc, tp: int, precision: str, kv_precision: str | None) -> bool:
    """Whether the weights leave room for a KV cache on ``tp`` GPUs (fleet.workload.llm's
    memory plan, the one the profiles use; ``kv_precision`` None: the activation dtype)."""
    from .workload.llm import memory_plan

    plan = memory_plan(model, float(acc.memory_bytes), tp, precision=precision,
                       kv_precision=kv_precision, gpu_name=acc.name, strict=False)
    return bool(plan.fits)


def _what_fits(model, acc, s: ServeSpec) -> str:
    options = []
    for prec in dict.fromkeys([s.precision, "fp8", "int4"]):
        for tp in (1, 2, 4, 8):
            try:
                ok = _fits(model, acc, tp, prec, s.kv_precision)
            except Exception:  # noqa: BLE001 - a precision the model layer does not know
                continue
            if ok:
                options.append(f"tp={tp} at {prec}")
                break
    return f"; it would fit with {' or '.join(options)}" if options else "; it fits no tp up to 8"


# ------------------------------------------------------------------ replica schedule
def _schedule_target(sc: Scenario, key: str) -> tuple[PoolSpec, int]:
    """The pool and the index of its serve entry that the schedule key ``POOL`` or
    ``POOL:MODEL`` names (MODEL as written in serve[].model, or its canonical name)."""
    from .errors import FleetError

    field = f"schedule.{key}"
    name, _, model = key.partition(":")
    pools = {p.name: p for p in sc.fleet.pools}
    pool = pools.get(name)
    if pool is None:
        raise _err(sc, field, f"unknown pool {name!r}; the fleet's pools are {sorted(pools)}")
    if pool.role != "serving":
        raise _err(sc, field, f"pool {name!r} is a training pool; a replica schedule applies to serving pools")
    models = [s.model for s in pool.serve]
    if not model:
        if len(pool.serve) != 1:
            raise _err(sc, field, f"pool {name!r} serves several models ({', '.join(models)}): key the schedule "
                                  f"by POOL:MODEL, e.g. '{name}:{models[0]}'")
        return pool, 0
    for j, s in enumerate(pool.serve):
        if model == s.model:
            return pool, j
    try:
        canon = _canon(resolve_model(model), model)
    except FleetError:
        canon = None
    for j, s in enumerate(pool.serve):
        try:
            if canon is not None and _canon(resolve_model(s.model), s.model) == canon:
                return pool, j
        except FleetError:
            continue
    raise _err(sc, field, f"pool {name!r} does not serve {model!r}; it serves {', '.join(models)}")


def schedule_targets(sc: Scenario) -> dict[str, tuple[PoolSpec, int]]:
    """Every key of the scenario's ``schedule`` with the pool and serve index it names."""
    return {key: _schedule_target(sc, key) for key in sc.schedule}


def _check_schedule(sc: Scenario) -> None:
    seen: dict[tuple[str, int], str] = {}
    for key, hours in sc.schedule.items():
        field = f"schedule.{key}"
        pool, j = _schedule_target(sc, key)
        if (pool.name, j) in seen:
            raise _err(sc, field, f"the same serving pool as schedule.{seen[(pool.name, j)]}")
        seen[(pool.name, j)] = key
        if not hours:
            raise _err(sc, field, "expected at least one hour (a list of active replicas per hour)")
        s = pool.serve[j]
        if s.replicas is not None:
            reps = s.replicas
        else:
            used = sum(x.replicas * x.tp for x in pool.serve if x.replicas is not None)
            reps = (pool.gpus - used) // s.tp
        what = "the pool has" if len(pool.serve) == 1 else f"{pool.name} serves {s.model} on"
        for h, n in enumerate(hours):
            if n > reps:
                raise _err(sc, f"{field}[{h}]", f"{n} active replicas, but {what} {reps}")
    if sc.schedule and sc.simulation.mode == "fluid":
        raise _err(sc, "simulation.mode", "a replica schedule is simulated at request level only: "
                                          "use mode coalesced or iteration, or remove 'schedule'")


# ------------------------------------------------------------------ operating points
def whatif_constants(sc: Scenario):
    """The device constants of the scenario's what-if part (None without one): the scenario's
    constant set (``simulation.constants``) with ``whatif.device_constants`` replaced."""
    if sc.whatif is None:
        return None
    from .catalog.device_energy import load_device_constants
    from .errors import FleetError

    try:
        return load_device_constants(sc.simulation.constants == "calibrated").with_values(
            dict(sc.whatif.device_constants), kind="what-if", source=f"what-if: {sc.whatif.label}",
            check_range=False)
    except FleetError as exc:
        raise ScenarioError(str(exc), path=sc.path, field="whatif.device_constants") from exc


def whatif_applies(sc: Scenario, accelerator: str) -> bool:
    """Whether the what-if part replaces the constants of pools of ``accelerator`` (any alias)."""
    if sc.whatif is None:
        return False
    if sc.whatif.accelerators is None:
        return True
    from .catalog import get_accelerator
    from .errors import FleetError

    names = set()
    for i, a in enumerate(sc.whatif.accelerators):
        try:
            names.add(get_accelerator(a).name)
        except FleetError as exc:
            raise ScenarioError(str(exc), path=sc.path, field=f"whatif.accelerators[{i}]") from exc
    return get_accelerator(accelerator).name in names


def serve_operating_point(sc: Scenario, pool: int, serve: int):
    """The :class:`~fleet.frontier.OperatingPoint` of ``fleet.pools[pool].serve[serve]`` as
    written: its model on ``tp`` GPUs of the pool's accelerator at the pool's power cap, with the
    scenario's device constants (``simulation.constants``, or the what-if set where it applies,
    labelled ``what-if: <label>``).  An invalid point is a ScenarioError naming that entry."""
    from .errors import FleetError
    from .frontier.operating_point import OperatingPoint

    p = sc.fleet.pools[pool]
    s = p.serve[serve]
    where = f"fleet.pools[{pool}].serve[{serve}]"
    consts = whatif_constants(sc) if whatif_applies(sc, p.accelerator) else None
    try:
        return OperatingPoint(
            s.model, p.accelerator, tp=s.tp, ep=s.ep or 1, precision=s.precision, kv_precision=s.kv_precision,
            power_cap_w=p.power_cap_w, max_batch=s.max_batch,
            constants=(f"what-if: {sc.whatif.label}" if consts is not None and sc.whatif is not None
                       else sc.simulation.constants),
            device_constants=consts, stack=s.stack)
    except FleetError as exc:
        if isinstance(exc, ScenarioError):
            raise
        raise ScenarioError(str(exc), path=sc.path, field=where) from exc
