"""Training pools: gang-scheduled jobs with priorities, EASY backfill, deferrable jobs, failures.

Scheduling (one :class:`TrainingScheduler` per training pool, SimPy processes on the serving
engine's clock ``Engine.env``, so serving and training power live on one timeline that a
power-capping controller can read and act on; a training-only fleet runs on an engine without
serving pools):

* The queue is ordered by priority (higher first), then submit time, then job id.  The head job
  starts as soon as enough GPUs are free (gang scheduling: all of its GPUs at once, filled
  first-fit over the pool's servers).
* EASY backfill: when the head does not fit, it gets a reservation at the earliest time enough
  GPUs will be free (from the planned end of the running jobs, failures not foreseen).  A later
  job may start now if it fits in the free GPUs and either ends before that reservation or uses
  only GPUs the head will not need then.
* Deferrable jobs are not eligible until released: by :meth:`TrainingScheduler.release`
  (a SimPy event the planner or a carbon-aware policy triggers), by ``release_times[job_id]``,
  by a ``release_signal(t) -> bool`` polled every ``release_check_s`` (e.g. a threshold on grid
  carbon intensity), and at the latest at ``deadline_s - planned run time`` so the deadline can
  still be met.  With no signal configured a deferrable job is released when submitted.
* Failures: a job with a finite ``fail_at_s`` fails once, ``fail_at_s`` seconds of wall time
  after its first start (if still running): the work since its last checkpoint is lost (its
  energy was spent and stays recorded), the GPUs are freed, and it re-enters the queue (same
  priority and submit order) after ``restart_delay_s``, resuming from the checkpoint.  After
  ``max_restarts`` restarts a job that fails again is marked ``failed``.

Work and power come from a :class:`~fleet.frontier.profile.TrainingProfile` per job.  Steps
needed: ``ceil(tokens / tokens_per_step)`` when the job has a token count, else
``round(duration_s / step_time_s)`` (at least 1).  A job's ``checkpoint_interval_s`` sets the
profile's checkpoint interval.

Power segments (see :mod:`fleet.sim.power`) are recorded per server, on the gpu-level node
``f"{pool}/s{k}"`` (all GPUs of server ``k``), each job contributing ``gpus on k / job gpus`` of
its energy, and the scheduler records the idle power of every unallocated GPU, so the training
servers need no idle fill.  Resolution: when a step lasts at least two telemetry intervals, each
step is recorded as a compute segment and a communication segment (the power dip at the
iteration boundary is visible in the telemetry); shorter steps are coalesced into one segment
per run of steps between checkpoints at the mean step power (a telemetry bin would average the
dip away anyway; energy is the same).  Checkpoints are always their own segments.  So the
number of segments is bounded by the number of telemetry bins, not by steps.  They go to
``Engine.record`` when an attempt ends (or a leg of it, see below), computed in closed form from
its plan: an attempt costs a handful of SimPy events (start, end), never one per step.

Power caps: :meth:`TrainingScheduler.set_cap` changes the pool's per-GPU cap mid-run.  Each
running job switches at its next step boundary (:meth:`RunPlan.next_boundary`): the attempt is
split there into legs, the remaining steps re-planned from the job's TrainingProfile at the new
cap.  :meth:`TrainingScheduler.power_w` / ``server_power_w`` give the current power, consistent
with the recorded segments, for a controller reading serving and training on one clock.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pandas as pd
import simpy

from ..errors import ConfigurationError
from ..frontier.profile import TrainingProfile
from .result import JOB_COLUMNS

#: default delay between a failure and the job re-entering the queue (s): detection, node
#: replacement and reloading the checkpoint.  A stated assumption (AcmeTrace reports restarts
#: taking minutes to tens of minutes).
DEFAULT_RESTART_DELAY_S = 600.0


@dataclass
class _Job:
    job_id: int
    submit_s: float
    gpus: int
    model: str
    priority: float
    deferrable: bool
    deadline_s: float
    fail_at_s: float
    profile: TrainingProfile
    total_steps: int
    done_steps: int = 0          # checkpointed progress (what a restart resumes from)
    progress_steps: int = 0      # steps done including those since the last checkpoint
    status: str = "pending"      # pending -> queued -> running -> completed | failed
    start_s: float = math.nan
    end_s: float = math.nan
    energy_j: float = 0.0
    restarts: int = 0
    failed_once: bool = False
    released: bool = True
    release_event: simpy.Event | None = None
    order: int = 0
    ci: float = 3600.0           # checkpoint interval asked for (s)
    cap_w: float | None = None   # per-job power cap (a planned schedule's); None: the pool's
    pauses: int = 0              # planned pauses (checkpoint, GPUs freed, resumed later)


@dataclass
class _Attempt:
    """One run of a job on its GPUs, from a start to completion, failure or the horizon.  A
    power-cap change splits it into legs, each with its own profile and plan."""

    job: _Job
    t_start: float
    alloc: list[tuple[int, int]]     # (server index, gpus)
    t_fail: float                    # failure time of this attempt (inf: none)
    plan: RunPlan                    # of the current leg
    profile: TrainingProfile         # of the current leg
    leg_base: int                    # job progress (steps) at the start of the current leg
    ckpt: int                        # job steps checkpointed so far
    plan_end: float = math.nan       # completion time if nothing fails or changes
    stop_s: float = math.nan         # min(plan_end, failure time)
    fails: bool = False
    gen: int = 0                     # bumped when re-planned: stale wake-ups are ignored
    switch_pending: bool = False
    pausing: bool = False            # a planned pause is due (at the next step boundary)
    writing: bool = False            # ... and is writing its checkpoint now (segments recorded)


@dataclass
class RunPlan:
    """Closed-form timeline of one attempt: blocks of steps separated by checkpoints."""

    t_start: float
    step_s: float
    ckpt_s: float
    block_steps: np.ndarray          # steps per block
    block_start: np.ndarray          # s

    @property
    def end(self) -> float:
        return float(self.block_start[-1] + self.block_steps[-1] * self.step_s)

    def progress_at(self, t: float) -> tuple[int, int]:
        """(steps done, steps checkpointed) counted from the attempt's start, at time ``t``."""
        rel = t - self.block_start
        done = np.clip(np.floor((rel + 1e-9 * self.step_s) / self.step_s), 0, self.block_steps)
        steps = int(done[rel > 0].sum()) if np.any(rel > 0) else 0
        # checkpoint after block i (not the last) is complete at start_i + m_i*T + C
        ck_end = self.block_start[:-1] + self.block_steps[:-1] * self.step_s + self.ckpt_s
        n_ck = int(np.sum(ck_end <= t + 1e-9))
        return steps, int(self.block_steps[:n_ck].sum())

    def next_boundary(self, t: float) -> float | None:
        """Earliest time >= ``t`` at which the job is between steps and owes no checkpoint
        (where a new operating point can take over): the end of the step in progress, or of
        the checkpoint in progress or following that step; ``t`` itself on such a boundary.
        None when the next boundary is the end of the plan."""
        bs = self.block_start
        i = int(np.searchsorted(bs, t, side="right")) - 1
        if i < 0:
            return float(bs[0])
        T = self.step_s
        j = max(0, math.ceil((t - float(bs[i])) / T - 1e-9))
        if j < int(self.block_steps[i]):
            return float(bs[i] + j * T)
        return None if i == len(bs) - 1 else float(bs[i + 1])


def plan_run(profile: TrainingProfile, t_start: float, done_steps: int, total_steps: int) -> RunPlan:
    k = profile.checkpoint_interval_steps
    remaining = total_steps - done_steps
    if k > 0 and remaining > k:
        # checkpoints after every step index that is a multiple of k (and before the end)
        first = k - (done_steps % k)
        parts = [first] + [k] * ((remaining - first - 1) // k)
        parts.append(remaining - sum(parts))
        sizes = np.array([s for s in parts if s > 0], dtype=np.int64)
    else:
        sizes = np.array([remaining], dtype=np.int64)
    ck = profile.checkpoint_time_s if k > 0 else 0.0
    starts = t_start + np.concatenate([[0.0], np.cumsum(sizes[:-1] * profile.step_time_s + ck)])
    return RunPlan(t_start, profile.step_time_s, ck, sizes, starts)


def plan_segments(profile: TrainingProfile, plan: RunPlan, t_stop: float, interval_s: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Segments (t0, t1, energy_j) of the whole job for ``plan`` cut at ``t_stop``."""
    T = profile.step_time_s
    nb = len(plan.block_steps)
    t0s, t1s, es = [], [], []
    fine = T >= 2.0 * interval_s and profile.comm_fraction > 0
    if fine:
        # one compute and one communication segment per step
        m = plan.block_steps
        # only the steps that start before t_stop
        n_keep = np.clip(np.ceil((t_stop - plan.block_start) / T), 0, m).astype(np.int64)
        idx_block = np.repeat(np.arange(nb), n_keep)
        first = np.repeat(np.cumsum(n_keep) - n_keep, n_keep)
        j = np.arange(int(n_keep.sum())) - first
        s0 = plan.block_start[idx_block] + j * T
        f = profile.comm_fraction
        mid = s0 + (1.0 - f) * T
        pc, pm = profile.compute_power_w, profile.comm_power_w
        t0s += [s0, mid]
        t1s += [mid, s0 + T]
        es += [pc * (mid - s0), pm * (s0 + T - mid)]
    else:
        b0 = plan.block_start
        b1 = b0 + plan.block_steps * T
        t0s.append(b0)
        t1s.append(b1)
        es.append(plan.block_steps * profile.step_energy_j)
    if nb > 1 and plan.ckpt_s > 0:
        c0 = plan.block_start[:-1] + plan.block_steps[:-1] * T
        t0s.append(c0)
        t1s.append(c0 + plan.ckpt_s)
        es.append(np.full(nb - 1, profile.checkpoint_power_w * plan.ckpt_s))
    t0 = np.concatenate(t0s)
    t1 = np.concatenate(t1s)
    e = np.concatenate(es)
    keep = t0 < t_stop
    t0, t1, e = t0[keep], t1[keep], e[keep]
    cut = t1 > t_stop
    if np.any(cut):
        frac = (t_stop - t0[cut]) / (t1[cut] - t0[cut])
        e[cut] = e[cut] * frac
        t1[cut] = t_stop
    order = np.argsort(t0, kind="stable")
    return t0[order], t1[order], e[order]


def plan_power(profile: TrainingProfile, plan: RunPlan, t: float, interval_s: float) -> float:
    """Power (W, all GPUs of the job) of ``plan`` at time ``t`` as its segments record it
    (:func:`plan_segments`): compute or communication power when steps are resolved, the mean
    step power when they are coalesced, checkpoint power during a checkpoint; 0 outside the
    plan."""
    bs = plan.block_start
    i = int(np.searchsorted(bs, t, side="right")) - 1
    if i < 0 or t >= plan.end:
        return 0.0
    T = profile.step_time_s
    rel = t - float(bs[i])
    if rel >= float(plan.block_steps[i]) * T:
        return profile.checkpoint_power_w
    if T >= 2.0 * interval_s and profile.comm_fraction > 0:
        phase = rel - math.floor(rel / T) * T
        return profile.compute_power_w if phase < (1.0 - profile.comm_fraction) * T else profile.comm_power_w
    return profile.step_energy_j / T


class TrainingScheduler:
    """Training jobs on one pool, on the serving engine's clock.

    ``eng`` is a :class:`fleet.sim.engine.Engine` (with or without serving pools): the jobs are
    SimPy processes on ``eng.env``, driven by the engine's run loop together with the serving
    replicas and any periodic callback (``eng.every``), their power segments go to
    ``eng.record`` (nodes ``f"{pool}/s{k}"``), and ``eng.at_end`` closes what is still open at
    the horizon.  Call :meth:`start` before ``eng.run()``; afterwards read :meth:`jobs_frame`
    and :meth:`segments` (of the engine's result).

    ``profile_for(model, gpus, checkpoint_interval_s)`` gives a job's profile at the pool's power
    cap; for :meth:`set_cap` it is also called as ``profile_for(model, gpus,
    checkpoint_interval_s, power_cap_w=W)`` (W per GPU).  A job's work is fixed in steps when it
    is read (from its tokens or duration at the initial cap); a cap changes how long and at what
    power the remaining steps run.
    """

    def __init__(self, eng, pool: str, server_gpus: list[int], jobs: pd.DataFrame,
                 profile_for: Callable[..., TrainingProfile], *, idle_w_per_gpu: float,
                 interval_s: float, horizon_s: float | None = None,
                 release_times: dict[int, float] | None = None,
                 release_signal: Callable[[float], bool] | None = None, release_check_s: float = 3600.0,
                 restart_delay_s: float = DEFAULT_RESTART_DELAY_S, max_restarts: int = 3,
                 backfill: bool = True):
        self.eng = eng
        self.env: simpy.Environment = eng.env
        self.pool = pool
        self.server_gpus = [int(g) for g in server_gpus]
        self.free = list(self.server_gpus)
        self.capacity = sum(self.server_gpus)
        self.idle_w = float(idle_w_per_gpu)
        self.interval_s = float(interval_s)
        self.horizon_s = float(eng.horizon_s if horizon_s is None else horizon_s)
        self.release_times = dict(release_times or {})
        self.release_signal = release_signal
        self.release_check_s = float(release_check_s)
        self.restart_delay_s = float(restart_delay_s)
        self.max_restarts = int(max_restarts)
        self.backfill = backfill
        self.profile_for = profile_for
        self.cap_w: float | None = None      # None: profile_for's own (the pool's configured cap)
        self._profiles: dict[tuple, TrainingProfile] = {}
        self._nodes = [f"{pool}/s{k}" for k in range(len(self.server_gpus))]
        self._last_change = [0.0] * len(self.server_gpus)
        self._finalized = False
        self.queue: list[_Job] = []
        self.running: dict[int, _Attempt] = {}
        self.jobs: list[_Job] = []
        self.cap_changes: list[tuple[float, float | None]] = []   # (time s, cap W) as asked
        self.job_plan: dict[int, list[tuple[float, float, float | None]]] = {}
        for order, row in enumerate(_job_rows(jobs)):
            gpus = int(row["gpus"])
            if gpus > self.capacity:
                raise ConfigurationError(f"training job {row['job_id']} needs {gpus} GPUs; pool {pool!r} "
                                         f"has {self.capacity}")
            ci = float(row["checkpoint_interval_s"])
            prof = self._profile_at(str(row["model"]), gpus, ci, None)
            tokens = row["tokens"]
            if tokens is not None and np.isfinite(tokens) and tokens > 0:
                steps = int(math.ceil(float(tokens) / prof.tokens_per_step))
            else:
                steps = max(1, int(round(float(row["duration_s"]) / prof.step_time_s)))
            self.jobs.append(_Job(
                job_id=int(row["job_id"]), submit_s=float(row["submit_s"]), gpus=gpus, model=str(row["model"]),
                priority=float(row["priority"]), deferrable=bool(row["deferrable"]),
                deadline_s=float(row["deadline_s"]), fail_at_s=float(row["fail_at_s"]), profile=prof,
                total_steps=steps, order=order, ci=ci))
        self.events = 0
        self.busy_gpu_s = 0.0    # GPU-seconds allocated to jobs
        self.run_result = None   # the engine's ServingRun, when run by run_training

    # ------------------------------------------------------------------ public
    @property
    def sim_origin(self) -> tuple[str, str]:
        """Where an error raised by this scheduler comes from (its training pool)."""
        return ("training", self.pool)

    def start(self) -> None:
        """Register the jobs' processes on the engine's clock (before ``eng.run()``)."""
        for job in self.jobs:
            self.env.process(self._arrive(job))
        self.eng.at_end(lambda eng, t_end: self.finalize(t_end))

    def release(self, job_id: int) -> None:
        """Release a deferrable job now (the planner's or a carbon-aware policy's start signal)."""
        for job in self.jobs:
            if job.job_id == job_id and job.release_event is not None and not job.release_event.triggered:
                job.release_event.succeed()

    def set_cap(self, cap_w: float | None) -> None:
        """Set the pool's per-GPU power cap (W; None: back to the configured one) from now on.

        A running job switches at its next step boundary (the end of the step in progress, or
        of the checkpoint in progress or following it): its segments up to there are recorded
        at the old operating point and its remaining steps are re-planned from the profile at
        the new cap (``profile_for(..., power_cap_w=cap_w)``), checkpoints still every
        ``checkpoint_interval_steps`` steps of the job.  Jobs started later, and the runtime
        estimates of queued jobs (backfill, deadlines), use the new cap.  Call it from a SimPy
        process on ``eng.env`` or an ``eng.every`` callback (a power-capping controller)."""
        cap = None if cap_w is None else float(cap_w)
        if cap is not None and not (cap > 0):
            raise ConfigurationError(f"pool {self.pool!r}: power cap must be positive, got {cap_w}")
        self.cap_changes.append((self.env.now, cap))
        if cap == self.cap_w:
            return
        self.cap_w = cap
        for job in self.jobs:
            if job.job_id not in self.running:
                job.profile = self._profile(job)
        for att in list(self.running.values()):
            self._request_switch(att)

    def set_job_plan(self, plan: dict[int, list[tuple[float, float, float | None]]]) -> None:
        """Run some jobs by a planned schedule (the training planner's, :mod:`fleet.plan.training`):
        ``plan[job_id] = [(t0_s, t1_s, cap_w), ...]``, windows in time order, not overlapping.

        Call before ``eng.run()`` (e.g. from ``simulate(on_engine=...)``).  A planned job is not
        eligible outside its windows (its release times, signal and deadline release are
        ignored): at a window's start it is released at that window's per-job cap (or switches
        to it at its next step boundary when the previous window ran up to this one); where the
        next window does not follow on, it pauses so that its GPUs are free by the window's end:
        at the step boundary after ``t1 - (step time + checkpoint time)`` it writes a checkpoint
        (at checkpoint power), frees its GPUs and waits for its next window, where it first
        reloads the checkpoint (the same time, at checkpoint power).  After its last window it
        is never paused: a job slower than planned runs on (and the caller sees its deadline).
        Within a window the scheduler's rules still apply (priority, gang scheduling)."""
        out = {}
        for jid, wins in plan.items():
            ws = sorted((float(a), float(b), None if c is None else float(c)) for a, b, c in wins)
            for (a0, a1, _), (b0, _, _) in zip(ws, ws[1:]):
                if b0 < a1 - 1e-9:
                    raise ConfigurationError(f"pool {self.pool!r}: planned windows of job {jid} overlap")
            if any(not (b > a) for a, b, _ in ws):
                raise ConfigurationError(f"pool {self.pool!r}: job {jid} has an empty planned window")
            out[int(jid)] = ws
        self.job_plan = out

    def set_dark(self, servers, dark: bool) -> list[int]:
        """Servers ``servers`` (indices) lose power now (a breaker trip, fleet.sim.protection) or
        get it back.  A job running on any of them fails at once (its work since the last
        checkpoint is lost, it restarts like after a failure, after ``restart_delay_s``); a dark
        server draws nothing and takes no job until it is back.  Returns the ids of the jobs hit."""
        now = self.env.now
        servers = sorted(set(int(k) for k in servers))
        if not hasattr(self, "_dark_free"):
            self._dark_free: dict[int, int] = {}
        hit = []
        if dark:
            for att in list(self.running.values()):
                if any(k in servers for k, _ in att.alloc):
                    att.fails = True
                    att.t_fail = att.stop_s = now
                    self._close_attempt(att, now)
                    hit.append(att.job.job_id)
            for k in servers:
                if k in self._dark_free:
                    continue
                self._idle_until(k, now)
                self._dark_free[k] = self.free[k]
                self.free[k] = 0
            self.events += 1
            return hit
        for k in servers:
            if k not in self._dark_free:
                continue
            self._idle_until(k, now)
            self.free[k] = self._dark_free.pop(k)
        self._schedule()
        return hit

    def power_w(self) -> float:
        """GPU power of the whole pool now (W): running jobs at their current phase plus every
        unallocated GPU at idle, consistent with the segments recorded."""
        return float(sum(self.server_power_w()))

    def server_power_w(self) -> list[float]:
        """GPU power of each server now (W), the gpu-level node ``f"{pool}/s{k}"``."""
        now = self.env.now
        out = [f * self.idle_w for f in self.free]
        for att in self.running.values():
            p = plan_power(att.profile, att.plan, now, self.interval_s) if now < att.stop_s else 0.0
            for k, g in att.alloc:
                out[k] += p * g / att.job.gpus
        return out

    def finalize(self, t_end: float | None = None) -> None:
        """Close the books at ``t_end`` (default the horizon): running attempts and idle GPUs.
        Called by the engine at the end of its run (``eng.at_end``); later calls do nothing."""
        if self._finalized:
            return
        self._finalized = True
        t_end = self.horizon_s if t_end is None else float(t_end)
        for att in list(self.running.values()):
            if att.writing:
                # a planned pause writing its checkpoint at the horizon: already recorded
                self.busy_gpu_s += att.job.gpus * max(0.0, t_end - att.t_start)
                for k, g in att.alloc:
                    self._idle_until(k, t_end)
                    self.free[k] += g
                del self.running[att.job.job_id]
                continue
            self._close_attempt(att, t_end, horizon=True)
        for k in range(len(self.server_gpus)):
            self._idle_until(k, t_end)
        for job in self.jobs:
            if job.status in ("pending",):
                job.status = "queued"

    def segments(self, run=None) -> dict[str, np.ndarray]:
        """This pool's power segments (node, t0, t1, energy_j) from the engine's result ``run``
        (default: the one :func:`run_training` kept)."""
        run = run if run is not None else self.run_result
        if run is None:
            raise ConfigurationError("segments are read from the engine's result: pass eng.run()'s value")
        seg = run.segments
        names = np.asarray(seg.node_names, dtype=object)
        mine = np.array([n.startswith(f"{self.pool}/s") and n[len(self.pool) + 2:].isdigit() for n in names],
                        dtype=bool)
        keep = mine[seg.node_id] if len(seg) else np.zeros(0, dtype=bool)
        return {"node": names[seg.node_id[keep]] if len(seg) else np.zeros(0, dtype=object),
                "t0": seg.t0[keep], "t1": seg.t1[keep], "energy_j": seg.energy_j[keep]}

    def jobs_frame(self) -> pd.DataFrame:
        recs = []
        for j in self.jobs:
            steps = j.total_steps if j.status == "completed" else j.progress_steps
            recs.append({"job_id": j.job_id, "pool": self.pool, "gpus": j.gpus, "status": j.status,
                         "submit_s": j.submit_s, "start_s": j.start_s, "end_s": j.end_s, "steps": steps,
                         "energy_j": j.energy_j, "restarts": j.restarts, "model": j.model,
                         "total_steps": j.total_steps, "deferrable": j.deferrable,
                         "tokens_per_step": j.profile.tokens_per_step})
        df = pd.DataFrame.from_records(recs, columns=list(JOB_COLUMNS) + [
            "model", "total_steps", "deferrable", "tokens_per_step"])
        return df.astype({"job_id": "int64", "gpus": "int64", "steps": "int64", "restarts": "int64",
                          "submit_s": "float64", "start_s": "float64", "end_s": "float64",
                          "energy_j": "float64", "total_steps": "int64", "deferrable": "bool"})

    # ------------------------------------------------------------------ profiles
    def _profile_at(self, model: str, gpus: int, ci: float, cap: float | None) -> TrainingProfile:
        key = (model, gpus, ci, cap)
        p = self._profiles.get(key)
        if p is None:
            p = self.profile_for(model, gpus, ci) if cap is None else \
                self.profile_for(model, gpus, ci, power_cap_w=cap)
            self._profiles[key] = p
        return p

    def _profile(self, job: _Job) -> TrainingProfile:
        return self._profile_at(job.model, job.gpus, job.ci, job.cap_w if job.cap_w is not None else self.cap_w)

    # ------------------------------------------------------------------ processes
    def _arrive(self, job: _Job):
        if job.submit_s > self.env.now:
            yield self.env.timeout(job.submit_s - self.env.now)
        job.status = "queued"
        if job.job_id in self.job_plan:
            job.released = False
            self.queue.append(job)
            self.env.process(self._follow_plan(job, self.job_plan[job.job_id]))
            return
        if job.deferrable:
            job.released = False
            job.release_event = self.env.event()
            self.env.process(self._wait_release(job))
        self.queue.append(job)
        self._schedule()

    def _wait_release(self, job: _Job):
        env = self.env
        waits: list[simpy.Event] = []
        if job.job_id in self.release_times:
            waits.append(env.timeout(max(0.0, self.release_times[job.job_id] - env.now)))
        if math.isfinite(job.deadline_s):
            latest = job.deadline_s - self._est_runtime(job)
            waits.append(env.timeout(max(0.0, latest - env.now)))
        if self.release_signal is not None:
            waits.append(env.process(self._poll_signal(job)))
        if not waits:   # no signal configured: released when submitted
            waits.append(env.timeout(0.0))
        if job.release_event is not None:
            waits.append(job.release_event)
        yield env.any_of(waits)
        job.released = True
        self._schedule()

    def _poll_signal(self, job: _Job):
        signal = self.release_signal
        assert signal is not None, "polled only when a release signal is set"
        while not job.released:
            if signal(self.env.now):
                return
            yield self.env.timeout(self.release_check_s)

    def _follow_plan(self, job: _Job, wins: list[tuple[float, float, float | None]]):
        env = self.env
        for i, (t0, t1, cap) in enumerate(wins):
            if job.status in ("completed", "failed"):
                return
            if t0 > env.now:
                yield env.timeout(t0 - env.now)
            if job.status in ("completed", "failed"):
                return
            old = job.cap_w
            job.cap_w = cap
            att = self.running.get(job.job_id)
            if att is not None and not att.pausing:
                if cap != old:
                    self._request_switch(att)
            else:
                if job.job_id not in self.running:
                    job.profile = self._profile(job)
                job.released = True
                self._schedule()
            last = i == len(wins) - 1
            if last or wins[i + 1][0] > t1 + 1e-9:
                if last:
                    return
                prof = self._profile(job)
                t_req = max(env.now, t1 - (prof.step_time_s + prof.checkpoint_time_s))
                if t_req > env.now:
                    yield env.timeout(t_req - env.now)
                job.released = False
                att = self.running.get(job.job_id)
                if att is not None and not att.pausing:
                    tb = att.plan.next_boundary(env.now)
                    if tb is not None and tb < att.stop_s:
                        att.pausing = True
                        env.process(self._pause(att, att.gen, tb))

    def _pause(self, att: _Attempt, gen: int, t_b: float):
        """A planned pause at the step boundary ``t_b``: checkpoint, free the GPUs, queue again
        (not released)."""
        env = self.env
        if t_b > env.now:
            yield env.timeout(t_b - env.now)
        job = att.job
        if att.gen != gen or self.running.get(job.job_id) is not att or self._finalized or env.now >= att.stop_s:
            att.pausing = False
            return
        now = env.now
        progress = self._close_leg(att, now)
        att.gen += 1                      # the attempt's own wake-ups are stale from here
        ck, pw = att.profile.checkpoint_time_s, att.profile.checkpoint_power_w
        t_end = min(now + ck, self.horizon_s)
        self._record_job(att, now, t_end, pw * (t_end - now))
        job.done_steps = job.progress_steps = att.ckpt = progress
        att.stop_s = att.plan_end = now
        att.writing = True
        if t_end > now:
            yield env.timeout(t_end - now)
        if self._finalized or self.running.get(job.job_id) is not att:
            return
        t = env.now
        self.busy_gpu_s += job.gpus * max(0.0, t - att.t_start)
        for k, g in att.alloc:
            self._idle_until(k, t)
            self.free[k] += g
        del self.running[job.job_id]
        job.pauses += 1
        job.status = "queued"
        self.queue.append(job)
        self._schedule()

    def _record_job(self, att: _Attempt, t0: float, t1: float, energy_j: float) -> None:
        if t1 <= t0:
            return
        att.job.energy_j += energy_j
        for k, g in att.alloc:
            self.eng.record(self._nodes[k], t0, t1, energy_j * g / att.job.gpus)

    def _run(self, att: _Attempt, gen: int):
        yield self.env.timeout(att.stop_s - self.env.now)
        if att.gen == gen and self.running.get(att.job.job_id) is att and not self._finalized:
            self._close_attempt(att, att.stop_s)
            self._schedule()

    def _requeue(self, job: _Job):
        yield self.env.timeout(self.restart_delay_s)
        job.status = "queued"
        self.queue.append(job)
        self._schedule()

    def _request_switch(self, att: _Attempt) -> None:
        if att.switch_pending:
            return
        tb = att.plan.next_boundary(self.env.now)
        if tb is None or tb >= att.stop_s:
            return          # the attempt ends (or fails) first; its successor starts at the new cap
        att.switch_pending = True
        self.env.process(self._switch(att, att.gen, tb))

    def _switch(self, att: _Attempt, gen: int, t_b: float):
        if t_b > self.env.now:
            yield self.env.timeout(t_b - self.env.now)
        att.switch_pending = False
        job = att.job
        now = self.env.now
        if att.gen != gen or self.running.get(job.job_id) is not att or self._finalized or now >= att.stop_s:
            return
        new = self._profile(job)
        if new == att.profile:
            return
        progress = self._close_leg(att, now)
        job.progress_steps = progress
        att.leg_base = progress
        att.profile = job.profile = new
        att.plan = plan_run(new, now, progress, job.total_steps)
        att.gen += 1
        self._set_stop(att)
        self.events += 1
        self.env.process(self._run(att, att.gen))

    # ------------------------------------------------------------------ scheduling
    def _est_runtime(self, job: _Job) -> float:
        p = job.profile
        rem = job.total_steps - job.done_steps
        n_ck = (rem - 1) // p.checkpoint_interval_steps if p.checkpoint_interval_steps > 0 else 0
        return rem * p.step_time_s + n_ck * p.checkpoint_time_s

    def _ordered_queue(self) -> list[_Job]:
        return sorted(self.queue, key=lambda j: (-j.priority, j.submit_s, j.order))

    def _schedule(self) -> None:
        self.events += 1
        now = self.env.now
        if self._finalized or now >= self.horizon_s:
            return          # nothing starts at or after the horizon
        while True:
            eligible = [j for j in self._ordered_queue() if j.released]
            if not eligible:
                return
            head = eligible[0]
            free = sum(self.free)
            if head.gpus <= free:
                self._start(head)
                continue
            if not self.backfill:
                return
            # reservation for the head: walk the planned ends of running jobs
            ends = sorted((a.plan_end, a.job.gpus) for a in self.running.values())
            avail, shadow = free, math.inf
            for t_end, g in ends:
                avail += g
                if avail >= head.gpus:
                    shadow = t_end
                    break
            extra = avail - head.gpus if math.isfinite(shadow) else 0
            started = False
            for j in eligible[1:]:
                free = sum(self.free)
                if j.gpus > free:
                    continue
                if now + self._est_runtime(j) <= shadow:
                    self._start(j)
                    started = True
                    break
                if j.gpus <= extra:
                    extra -= j.gpus
                    self._start(j)
                    started = True
                    break
            if not started:
                return

    def _start(self, job: _Job) -> None:
        now = self.env.now
        self.queue.remove(job)
        need = job.gpus
        alloc = []
        # first fit, preferring servers with the most free GPUs (fewer servers per job)
        for k in sorted(range(len(self.free)), key=lambda i: (-self.free[i], i)):
            if need == 0:
                break
            take = min(need, self.free[k])
            if take > 0:
                self._idle_until(k, now)
                self.free[k] -= take
                alloc.append((k, take))
                need -= take
        assert need == 0
        job.status = "running"
        if not math.isfinite(job.start_s):
            job.start_s = now
        prof = job.profile = self._profile(job)
        t_fail = math.inf
        if not job.failed_once and math.isfinite(job.fail_at_s) and job.start_s + job.fail_at_s >= now:
            t_fail = job.start_s + job.fail_at_s
        t_run = now
        if job.pauses > 0 and job.done_steps > 0:
            # resuming after a planned pause: reload the checkpoint first (as long as writing it)
            t_run = now + prof.checkpoint_time_s
        att = _Attempt(job, now, alloc, t_fail, plan_run(prof, t_run, job.done_steps, job.total_steps), prof,
                       leg_base=job.done_steps, ckpt=job.done_steps)
        if t_run > now:
            t_end = min(t_run, self.horizon_s)
            self._record_job(att, now, t_end, prof.checkpoint_power_w * (t_end - now))
        self._set_stop(att)
        self.running[job.job_id] = att
        self.env.process(self._run(att, att.gen))

    @staticmethod
    def _set_stop(att: _Attempt) -> None:
        att.plan_end = att.stop_s = att.plan.end
        att.fails = att.t_fail < att.stop_s
        if att.fails:
            att.stop_s = att.t_fail

    def _close_leg(self, att: _Attempt, t: float, free: bool = False) -> int:
        """Record the current leg's segments up to ``t`` (and, with ``free``, release the
        GPUs); returns the job's progress (steps) at ``t``."""
        job = att.job
        t0, t1, e = plan_segments(att.profile, att.plan, t, self.interval_s)
        job.energy_j += float(e.sum())
        t0l, t1l = t0.tolist(), t1.tolist()
        rec = self.eng.record
        for k, g in att.alloc:
            node = self._nodes[k]
            share = g / job.gpus
            for a, b, x in zip(t0l, t1l, (e * share).tolist()):
                rec(node, a, b, x)
            if free:
                self._idle_until(k, t)
                self.free[k] += g
        steps, ck = att.plan.progress_at(t)
        if ck > 0:
            att.ckpt = att.leg_base + ck
        return att.leg_base + steps

    def _close_attempt(self, att: _Attempt, t: float, horizon: bool = False) -> None:
        job = att.job
        self.busy_gpu_s += job.gpus * max(0.0, t - att.t_start)
        progress = self._close_leg(att, t, free=True)
        del self.running[job.job_id]
        att.gen += 1
        if horizon:
            job.progress_steps = progress
            if job.progress_steps >= job.total_steps:
                job.status, job.end_s = "completed", t
            else:
                job.status = "running"
            return
        if att.fails:
            job.failed_once = True
            job.done_steps = att.ckpt
            job.progress_steps = job.done_steps
            if job.restarts >= self.max_restarts:
                job.status = "failed"
                job.end_s = t
                return
            job.restarts += 1
            job.status = "restarting"
            self.env.process(self._requeue(job))
        else:
            job.done_steps = job.progress_steps = job.total_steps
            job.status, job.end_s = "completed", t

    def _idle_until(self, k: int, t: float) -> None:
        t_prev = self._last_change[k]
        if t > t_prev:
            if self.free[k] > 0 and self.idle_w > 0:
                self.eng.record(self._nodes[k], t_prev, t, self.free[k] * self.idle_w * (t - t_prev))
            self._last_change[k] = t


def _job_rows(jobs: pd.DataFrame):
    """Rows of a job table with defaults for the optional columns."""
    defaults = {"priority": 0.0, "deadline_s": math.nan, "deferrable": False, "fail_at_s": math.nan,
                "checkpoint_interval_s": 3600.0, "tokens": math.nan, "duration_s": math.nan}
    need = ("job_id", "submit_s", "gpus", "model")
    missing = [c for c in need if c not in jobs.columns]
    if missing:
        raise ConfigurationError(f"training job table lacks columns {missing}")
    cols = list(jobs.columns)
    for rec in jobs.sort_values(["submit_s", "job_id"], kind="stable").to_dict("records"):
        for c, d in defaults.items():
            v = rec.get(c, d) if c in cols else d
            if v is None or (isinstance(v, float) and math.isnan(v)):
                v = d
            rec[c] = v
        if not (math.isfinite(float(rec["tokens"])) and float(rec["tokens"]) > 0) \
                and not (math.isfinite(float(rec["duration_s"])) and float(rec["duration_s"]) > 0):
            raise ConfigurationError(f"training job {rec['job_id']} has neither tokens nor duration_s")
        yield rec


def run_training(pool: str, server_gpus: list[int], jobs: pd.DataFrame,
                 profile_for: Callable[..., TrainingProfile], *, idle_w_per_gpu: float,
                 interval_s: float, horizon_s: float, eng=None, setup: Callable | None = None,
                 **kwargs) -> TrainingScheduler:
    """Run one training pool to the horizon on ``eng`` (default: a new
    :class:`~fleet.sim.engine.Engine` without serving pools).  ``setup(eng, scheduler)`` runs
    before the engine does (register ``eng.every`` callbacks, e.g. a controller calling
    ``set_cap``).  The engine's result is kept as ``scheduler.run_result``."""
    from .engine import Engine

    eng = eng if eng is not None else Engine(horizon_s)
    sched = TrainingScheduler(eng, pool, server_gpus, jobs, profile_for, idle_w_per_gpu=idle_w_per_gpu,
                              interval_s=interval_s, horizon_s=horizon_s, **kwargs)
    sched.start()
    if setup is not None:
        setup(eng, sched)
    sched.run_result = eng.run()
    return sched
