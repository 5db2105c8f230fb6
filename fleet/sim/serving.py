"""Serving pools and the per-request state table shared by all replicas of one engine.

The request table is stored column-wise in flat Python lists / ``array`` buffers indexed by the
request's *row* (0..N-1 in arrival order), not by ``request_id``: the hot loop of the engine
touches a handful of scalars per event and plain lists are the fastest containers CPython has
for that.  Everything is converted to a pandas DataFrame once, at the end
(:meth:`RequestStore.to_frame`).

Units: seconds, joules, tokens.
"""

from __future__ import annotations

import math
from array import array
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from ..frontier.profile import ServingProfile
    from .replica import Replica

NAN = math.nan

#: status codes used inside the engine (the DataFrame holds the strings)
ST_WAITING = 0      # not yet arrived / queued, never admitted
ST_RUNNING = 1      # admitted at least once, not finished
ST_COMPLETED = 2
ST_DROPPED = 3
STATUS_NAMES = np.array(["running", "running", "completed", "dropped"], dtype=object)

#: drop reasons (column ``drop_reason``; '' when not dropped)
DROP_NONE = 0
DROP_CONTEXT = 1        # input + output longer than every serving replica's max_context_tokens
DROP_KV = 2             # input + output larger than every serving replica's whole KV cache
DROP_NO_POOL = 3        # no pool serves the request's model
DROP_AFTER_HORIZON = 4  # arrival at or after the simulation horizon: never entered the system
DROP_TRIP = 5           # held by a replica whose breaker tripped (fleet.sim.protection, on_trip: drop)
DROP_NAMES = np.array(["", "exceeds_max_context", "exceeds_kv_capacity", "no_pool_for_model",
                       "after_horizon", "breaker_trip"], dtype=object)


class RequestStore:
    """Column store of every request of the demand (one row each, arrival order).

    Input columns: ``arrival`` (s), ``inp`` / ``out`` (tokens), ``model`` (code into
    ``model_names``), ``rid`` (request_id).  Mutable state used by replicas: ``gen`` (tokens
    generated so far), ``ctxbase`` (context minus the replica's iteration counter while
    decoding), ``eentry`` (replica's cumulative per-sequence decode energy at decode entry).
    Results: ``admit``, ``first``, ``done`` (s, NaN if not reached), ``energy`` (J),
    ``preempt`` (count), ``status``, ``drop``, ``pool`` (pool code, -1 none), ``replica``.
    """

    def __init__(self, df: pd.DataFrame, default_model: str | None) -> None:
        n = len(df)
        self.n = n
        self.rid = df["request_id"].to_numpy(dtype=np.int64)
        self.arrival: list[float] = df["arrival_s"].to_numpy(dtype=np.float64).tolist()
        self.inp: list[int] = df["input_tokens"].to_numpy(dtype=np.int64).tolist()
        self.out: list[int] = df["output_tokens"].to_numpy(dtype=np.int64).tolist()
        if "model" in df.columns:
            codes, names = pd.factorize(df["model"].astype(str), sort=True)
            self.model_names: list[str] = [str(x) for x in names]
            self.model_code = codes.astype(np.int64)
        else:
            if default_model is None:
                raise InputError("the request table has no 'model' column and the engine serves "
                                 "more than one model", expected="a 'model' column")
            self.model_names = [default_model]
            self.model_code = np.zeros(n, dtype=np.int64)
        self.gen: list[int] = [0] * n
        self.ctxbase: list[int] = [0] * n
        self.eentry: list[float] = [0.0] * n
        self.admit = array("d", [NAN]) * n
        self.first = array("d", [NAN]) * n
        self.done = array("d", [NAN]) * n
        self.energy = array("d", [0.0]) * n
        self.preempt = array("l", [0]) * n
        self.status = array("b", [ST_WAITING]) * n
        self.drop = array("b", [DROP_NONE]) * n
        self.pool = array("l", [-1]) * n
        self.replica = array("l", [-1]) * n

    def to_frame(self, pool_names: list[str]) -> pd.DataFrame:
        """The per-request table, columns exactly as ``fleet.sim.result.REQUEST_COLUMNS`` plus
        ``drop_reason`` (str, '' unless dropped)."""
        n = self.n
        arrival = np.asarray(self.arrival, dtype=np.float64) if n else np.zeros(0)
        admit = np.frombuffer(self.admit, dtype=np.float64) if n else np.zeros(0)
        first = np.frombuffer(self.first, dtype=np.float64) if n else np.zeros(0)
        done = np.frombuffer(self.done, dtype=np.float64) if n else np.zeros(0)
        out = np.asarray(self.out, dtype=np.int64)
        inp = np.asarray(self.inp, dtype=np.int64)
        status = np.asarray(self.status, dtype=np.int8) if n else np.zeros(0, np.int8)
        pool = np.asarray(self.pool, dtype=np.int64) if n else np.zeros(0, np.int64)
        pool_arr = np.array(pool_names + [""], dtype=object)
        models = np.array(self.model_names, dtype=object) if self.model_names else np.array([], object)
        with np.errstate(invalid="ignore", divide="ignore"):
            tpot = np.where(out > 1, (done - first) / np.maximum(out - 1, 1), NAN)
        return pd.DataFrame({
            "request_id": self.rid,
            "model": models[self.model_code] if n else np.array([], dtype=object),
            "pool": pool_arr[pool],
            "replica": np.asarray(self.replica, dtype=np.int64) if n else np.zeros(0, np.int64),
            "status": STATUS_NAMES[status],
            "arrival_s": arrival,
            "admit_s": admit.copy(),
            "first_token_s": first.copy(),
            "completion_s": done.copy(),
            "input_tokens": inp,
            "output_tokens": out,
            "ttft_s": first - arrival,
            "tpot_s": tpot,
            "e2e_s": done - arrival,
            "preemptions": np.asarray(self.preempt, dtype=np.int64) if n else np.zeros(0, np.int64),
            "energy_j": np.frombuffer(self.energy, dtype=np.float64).copy() if n else np.zeros(0),
            "drop_reason": DROP_NAMES[np.asarray(self.drop, dtype=np.int8)] if n else np.array([], object),
        })


@dataclass
class ServingPool:
    """A group of identical replicas serving one model (one accelerator type, one tp).

    ``max_batch`` caps the running batch (the replica uses min(max_batch, profile.max_batch));
    ``max_prefill_tokens`` is the token budget of one prefill step (vLLM's
    ``max_num_batched_tokens``; default 8192, or 2048 with chunked prefill)."""

    name: str
    code: int
    model: str
    profile: "ServingProfile"
    max_batch: int | None
    chunked_prefill: bool
    max_prefill_tokens: int
    replicas: list["Replica"] = field(default_factory=list)
    mcode: int = -1              # the engine's code of ``model`` (set at run; -1: no request asks for it)

    @property
    def accelerator(self) -> str:
        return self.profile.accelerator

    @property
    def tp(self) -> int:
        return self.profile.tp
