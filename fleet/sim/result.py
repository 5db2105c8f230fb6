"""What a simulation returns: the contract between :mod:`fleet.sim` and everything that reads
its results (:mod:`fleet.accounting`, :mod:`fleet.report`, :mod:`fleet.regress`).

All times are seconds from the simulation start (``meta["start_utc"]`` is the wall-clock time
of t = 0, used to align grid signals); power in W, energy in J.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

#: One row per request of the demand (every arrival appears exactly once).
REQUEST_COLUMNS = {
    "request_id": "int64: id from the canonical trace",
    "model": "str: model the request asked for",
    "pool": "str: pool that served it ('' if dropped before routing)",
    "replica": "int64: replica index inside the pool (-1 if never admitted)",
    "status": "str: 'completed' | 'dropped' | 'running' (still in flight at the horizon)",
    "arrival_s": "float64 s",
    "admit_s": "float64 s (NaN if never admitted)",
    "first_token_s": "float64 s (NaN if no token yet)",
    "completion_s": "float64 s (NaN unless completed)",
    "input_tokens": "int64 tokens",
    "output_tokens": "int64 tokens (requested)",
    "ttft_s": "float64 s = first_token_s - arrival_s",
    "tpot_s": "float64 s = (completion_s - first_token_s) / (output_tokens - 1); NaN if output_tokens <= 1",
    "e2e_s": "float64 s = completion_s - arrival_s",
    "preemptions": "int64: times the request was preempted and recomputed",
    "energy_j": "float64 J: replica GPU energy attributed to the request (shares of each step)",
}

#: Telemetry, long form: one row per (sample interval, node).  ``power_w`` is the mean power over
#: [time_s, time_s + interval), so sum(power_w * interval) over a node is its exact energy.
POWER_COLUMNS = {
    "time_s": "float64 s, start of the sample interval",
    "level": "str: 'gpu' | 'server' | 'rack' | 'row' | 'site' | 'pool'",
    "node": "str: node id, e.g. 'site', 'row0', 'row0/rack1', 'row0/rack1/srv3', 'h100/r2' (gpu: replica)",
    "power_w": "float64 W, mean over the interval",
}

#: The power tree: one row per node.
TREE_COLUMNS = {
    "node": "str", "level": "str", "parent": "str ('' for the site)",
    "pool": "str ('' above server level when mixed)", "budget_w": "float64 W (NaN if none)",
}

#: One row per pool.
POOL_COLUMNS = {
    "pool": "str", "role": "str: 'serving' | 'training'", "accelerator": "str", "models": "str, ';'-joined",
    "gpus": "int64", "servers": "int64", "replicas": "int64", "tp": "int64",
    "power_cap_w": "float64 W per GPU (NaN = uncapped / TDP)",
    "gpu_energy_j": "float64 J", "server_overhead_energy_j": "float64 J", "it_energy_j": "float64 J",
    "input_tokens": "int64 (prefilled)", "output_tokens": "int64 (generated)",
    "requests_completed": "int64", "busy_fraction": "float64 0-1: share of replica-time not idle",
    "mean_batch": "float64: time-weighted mean running batch while busy",
}

#: One row per training job.
JOB_COLUMNS = {
    "job_id": "int64", "pool": "str", "gpus": "int64", "status": "str: 'completed' | 'running' | 'queued' | 'failed'",
    "submit_s": "float64 s", "start_s": "float64 s", "end_s": "float64 s", "steps": "int64", "energy_j": "float64 J",
    "restarts": "int64",
}


#: Replica schedule as applied: one row per hour from the start (the last may be partial) and
#: engine pool (a served model of a pool), every serving pool, scheduled or not.
SCHEDULE_COLUMNS = {
    "hour": "int64: hour from the simulation start (row covers [3600 hour, 3600 (hour + 1)) s)",
    "time_s": "float64 s, start of the hour",
    "pool": "str: the scenario pool", "engine_pool": "str: the pool, or 'pool:model' when it serves several",
    "model": "str", "replicas": "int64: replicas of the engine pool",
    "active": "int64: replicas the schedule keeps active in that hour (the others drain, then draw their "
              "inactive power)",
}


@dataclass
class SimResult:
    requests: pd.DataFrame
    power: pd.DataFrame
    tree: pd.DataFrame
    pools: pd.DataFrame
    jobs: pd.DataFrame
    #: scenario name, seed, horizon_s, telemetry_interval_s, start_utc (ISO 8601), mode ('coalesced'|'iteration'),
    #: wall_s, events, and anything else a reader needs to interpret the tables
    meta: dict = field(default_factory=dict)
    #: optional extra time series (queue length, running batch, KV use): long form time_s, pool, replica, metric, value
    series: pd.DataFrame | None = None
    #: active replicas per hour and engine pool (SCHEDULE_COLUMNS); None from code that predates it
    schedule: pd.DataFrame | None = None
    #: breaker trips (fleet.sim.protection.TRIP_COLUMNS); None: no breakers or controller configured
    trips: pd.DataFrame | None = None
    #: every lever the capping controller moved (fleet.sim.protection.ACTION_COLUMNS); None: none configured
    controller_actions: pd.DataFrame | None = None
