"""Training pools: gang-scheduled jobs with priorities, EASY backfill, deferrable jobs, failures.

Scheduling (one :class:`TrainingScheduler` per training pool, SimPy processes on an environment
that may be shared with the serving engine):

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
number of segments is bounded by the number of telemetry bins, not by steps.
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


@dataclass
class _Attempt:
    job: _Job
    t_start: float
    alloc: list[tuple[int, int]]     # (server index, gpus)
    plan_end: float                  # completion time if nothing fails
    stop_s: float                    # min(plan_end, failure time)
    fails: bool
    proc: object = None


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


def plan_run(profile: TrainingProfile, t_start: float, done_steps: int, total_steps: int) -> RunPlan:
    k = profile.checkpoint_interval_steps
    remaining = total_steps - done_steps
    if k > 0 and remaining > k:
        # checkpoints after every step index that is a multiple of k (and before the end)
        first = k - (done_steps % k)
        sizes = [first] + [k] * ((remaining - first - 1) // k)
        sizes.append(remaining - sum(sizes))
        sizes = np.array([s for s in sizes if s > 0], dtype=np.int64)
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


class TrainingScheduler:
    """Training jobs on one pool.  Call :meth:`start` before running ``env`` and
    :meth:`finalize` after; then read :meth:`segments` and :meth:`jobs_frame`."""

    def __init__(self, env: simpy.Environment, pool: str, server_gpus: list[int], jobs: pd.DataFrame,
                 profile_for: Callable[[str, int, float], TrainingProfile], *, idle_w_per_gpu: float,
                 interval_s: float, horizon_s: float,
                 release_times: dict[int, float] | None = None,
                 release_signal: Callable[[float], bool] | None = None, release_check_s: float = 3600.0,
                 restart_delay_s: float = DEFAULT_RESTART_DELAY_S, max_restarts: int = 3,
                 backfill: bool = True):
        self.env = env
        self.pool = pool
        self.server_gpus = [int(g) for g in server_gpus]
        self.free = list(self.server_gpus)
        self.capacity = sum(self.server_gpus)
        self.idle_w = float(idle_w_per_gpu)
        self.interval_s = float(interval_s)
        self.horizon_s = float(horizon_s)
        self.release_times = dict(release_times or {})
        self.release_signal = release_signal
        self.release_check_s = float(release_check_s)
        self.restart_delay_s = float(restart_delay_s)
        self.max_restarts = int(max_restarts)
        self.backfill = backfill
        self._last_change = [0.0] * len(self.server_gpus)
        self._seg: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []
        self.queue: list[_Job] = []
        self.running: dict[int, _Attempt] = {}
        self.jobs: list[_Job] = []
        for order, row in enumerate(_job_rows(jobs)):
            gpus = int(row["gpus"])
            if gpus > self.capacity:
                raise ConfigurationError(f"training job {row['job_id']} needs {gpus} GPUs; pool {pool!r} "
                                         f"has {self.capacity}")
            prof = profile_for(str(row["model"]), gpus, float(row["checkpoint_interval_s"]))
            tokens = row["tokens"]
            if tokens is not None and np.isfinite(tokens) and tokens > 0:
                steps = int(math.ceil(float(tokens) / prof.tokens_per_step))
            else:
                steps = max(1, int(round(float(row["duration_s"]) / prof.step_time_s)))
            self.jobs.append(_Job(
                job_id=int(row["job_id"]), submit_s=float(row["submit_s"]), gpus=gpus, model=str(row["model"]),
                priority=float(row["priority"]), deferrable=bool(row["deferrable"]),
                deadline_s=float(row["deadline_s"]), fail_at_s=float(row["fail_at_s"]), profile=prof,
                total_steps=steps, order=order))
        self.events = 0
        self.busy_gpu_s = 0.0    # GPU-seconds allocated to jobs

    # ------------------------------------------------------------------ public
    def start(self) -> None:
        for job in self.jobs:
            self.env.process(self._arrive(job))

    def release(self, job_id: int) -> None:
        """Release a deferrable job now (the planner's or a carbon-aware policy's start signal)."""
        for job in self.jobs:
            if job.job_id == job_id and job.release_event is not None and not job.release_event.triggered:
                job.release_event.succeed()

    def finalize(self, t_end: float | None = None) -> None:
        """Close the books at ``t_end`` (default the horizon): running attempts and idle GPUs."""
        t_end = self.horizon_s if t_end is None else float(t_end)
        for att in list(self.running.values()):
            self._close_attempt(att, t_end, horizon=True)
        for k in range(len(self.server_gpus)):
            self._idle_until(k, t_end)
        for job in self.jobs:
            if job.status in ("pending",):
                job.status = "queued"

    def segments(self) -> dict[str, np.ndarray]:
        if not self._seg:
            z = np.zeros(0)
            return {"node": np.zeros(0, dtype=object), "t0": z, "t1": z, "energy_j": z}
        return {"node": np.concatenate([s[0] for s in self._seg]),
                "t0": np.concatenate([s[1] for s in self._seg]),
                "t1": np.concatenate([s[2] for s in self._seg]),
                "energy_j": np.concatenate([s[3] for s in self._seg])}

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

    # ------------------------------------------------------------------ processes
    def _arrive(self, job: _Job):
        if job.submit_s > self.env.now:
            yield self.env.timeout(job.submit_s - self.env.now)
        job.status = "queued"
        if job.deferrable:
            job.released = False
            job.release_event = self.env.event()
            self.env.process(self._wait_release(job))
        self.queue.append(job)
        self._schedule()

    def _wait_release(self, job: _Job):
        env = self.env
        waits = []
        if job.job_id in self.release_times:
            waits.append(env.timeout(max(0.0, self.release_times[job.job_id] - env.now)))
        if math.isfinite(job.deadline_s):
            latest = job.deadline_s - self._est_runtime(job)
            waits.append(env.timeout(max(0.0, latest - env.now)))
        if self.release_signal is not None:
            waits.append(env.process(self._poll_signal(job)))
        if not waits:   # no signal configured: released when submitted
            waits.append(env.timeout(0.0))
        waits.append(job.release_event)
        yield env.any_of(waits)
        job.released = True
        self._schedule()

    def _poll_signal(self, job: _Job):
        while not job.released:
            if self.release_signal(self.env.now):
                return
            yield self.env.timeout(self.release_check_s)

    def _run(self, att: _Attempt):
        yield self.env.timeout(att.stop_s - self.env.now)
        if att.job.job_id in self.running and self.running[att.job.job_id] is att:
            self._close_attempt(att, att.stop_s)
            self._schedule()

    def _requeue(self, job: _Job):
        yield self.env.timeout(self.restart_delay_s)
        job.status = "queued"
        self.queue.append(job)
        self._schedule()

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
        plan = plan_run(job.profile, now, job.done_steps, job.total_steps)
        stop = plan.end
        fails = False
        if not job.failed_once and math.isfinite(job.fail_at_s):
            t_fail = job.start_s + job.fail_at_s
            if now <= t_fail < stop:
                stop, fails = t_fail, True
        att = _Attempt(job, now, alloc, plan.end, stop, fails)
        att.plan = plan  # type: ignore[attr-defined]
        self.running[job.job_id] = att
        att.proc = self.env.process(self._run(att))

    def _close_attempt(self, att: _Attempt, t: float, horizon: bool = False) -> None:
        job = att.job
        plan: RunPlan = att.plan  # type: ignore[attr-defined]
        t0, t1, e = plan_segments(job.profile, plan, t, self.interval_s)
        job.energy_j += float(e.sum())
        self.busy_gpu_s += job.gpus * max(0.0, t - att.t_start)
        for k, g in att.alloc:
            share = g / job.gpus
            self._seg.append((np.full(len(t0), f"{self.pool}/s{k}", dtype=object), t0, t1, e * share))
            self._idle_until(k, t)
            self.free[k] += g
        del self.running[job.job_id]
        steps, ck = plan.progress_at(t)
        if horizon:
            job.progress_steps = job.done_steps + steps
            if job.progress_steps >= job.total_steps:
                job.status, job.end_s = "completed", t
            else:
                job.status = "running"
            return
        if att.fails:
            job.failed_once = True
            job.done_steps += ck
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
                self._seg.append((np.array([f"{self.pool}/s{k}"], dtype=object), np.array([t_prev]),
                                  np.array([t]), np.array([self.free[k] * self.idle_w * (t - t_prev)])))
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
                 profile_for: Callable[[str, int, float], TrainingProfile], *, idle_w_per_gpu: float,
                 interval_s: float, horizon_s: float, env: simpy.Environment | None = None,
                 **kwargs) -> TrainingScheduler:
    """Run one training pool on its own SimPy environment (or ``env``) to the horizon."""
    env = env or simpy.Environment()
    sched = TrainingScheduler(env, pool, server_gpus, jobs, profile_for, idle_w_per_gpu=idle_w_per_gpu,
                              interval_s=interval_s, horizon_s=horizon_s, **kwargs)
    sched.start()
    env.run(until=horizon_s)
    sched.finalize(horizon_s)
    return sched
