"""Power-capping controllers: the :class:`Controller` protocol and the built-in POLCA-style row
controller.

A controller sees row power telemetry (what :mod:`fleet.sim.protection` sampled every
``interval_s`` and delivered ``telemetry_delay_s`` later) and answers with :class:`Action` s,
which the harness applies after ``actuation_delay_s`` through the levers:

* ``cap``: the per-GPU power cap of the row's GPUs of some priority classes (W; None: back to the
  pool's own); serving replicas switch to the profile built by the frontier at that cap
  (``op.with_cap(w)``: decode barely slows, prefill slows more), training pools re-plan their
  steps at it (``TrainingScheduler.set_cap``);
* ``clock``: the locked SM clock (MHz; ``op.with_clock(mhz)``) of serving replicas (training has
  no clock lever in the training model: it gets the cap of the same level instead, logged so);
* ``admission``: the row's serving replicas of some classes are offered to the router or not
  (they finish what they hold; requests wait for a replica elsewhere or for admission again).

A controller of your own implements ``start(rows)``, ``step(t, readings) -> list[Action]`` and
``finish(t)`` and has an ``interval_s``; ``readings`` maps row -> (time measured, W), or is
None while telemetry is lost.

POLCA-style policy (Patel et al., ASPLOS 2024; thresholds on the row power as a fraction of its
budget): level 0 nothing; level 1 above ``t1``: low-priority classes capped at ``cap_low``;
level 2 above ``t2``: every class at ``cap_all`` (low priority stays at ``cap_low``); level 3
above ``brake``: every GPU at ``cap_brake`` (the power brake); level 4 above ``admission`` (if
set): brake plus admission closed.  Escalation jumps straight to the highest level whose
threshold the reading exceeds.  Release, one level at a time, once the reading stayed below the
current level's threshold minus ``hysteresis`` for ``release_hold_s`` (``release: threshold``,
POLCA's rule, the default; ``predictive``: the power expected after the release, the row's power
above its static part scaled by the ratio of the two levels' caps, must be below that mark, so
that a release does not by itself push the row back over the threshold).  Telemetry lost for more
than ``stale_s``: 'hold' keeps the levers as they are, 'cap_low'/'cap_all' go at least to level
1/2 until it returns (Thunderbolt's fail-safe).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Protocol

#: the levels of the POLCA-style controller
LEVEL_NAMES = ("none", "low_priority_capped", "all_capped", "brake", "brake_admission")


@dataclass(frozen=True)
class Action:
    """One lever move: on ``row``, for the priority ``classes`` (empty: all), ``lever`` 'cap' |
    'clock' | 'admission' to ``value`` (W | MHz fraction | open 1 / closed 0; None: release),
    because of ``reason``."""

    row: str
    lever: str
    classes: tuple[str, ...]
    value: float | None
    reason: str
    level: int = -1


@dataclass(frozen=True)
class RowInfo:
    """What a controller knows of a row: its budget (W) and the priority classes present."""

    row: str
    budget_w: float
    classes: tuple[str, ...]
    static_w: float = 0.0          # the row's servers' static overhead (W), which no cap changes


class Controller(Protocol):
    interval_s: float

    def start(self, rows: Mapping[str, RowInfo]) -> None: ...

    def step(self, t: float, readings: Mapping[str, tuple[float, float]] | None) -> list[Action]: ...

    def finish(self, t: float) -> None: ...


class PolcaController:
    """The built-in row controller (see the module docstring).  ``cfg`` is a
    :class:`fleet.sim.input.ControllerInput`; caps are passed to the levers as fractions of the
    maximum limit (the harness turns them into W or MHz per accelerator)."""

    def __init__(self, cfg) -> None:
        self.cfg = cfg
        self.interval_s = float(cfg.interval_s)
        self.rows: dict[str, RowInfo] = {}
        self.level: dict[str, int] = {}
        self.below_since: dict[str, float] = {}
        self.last_seen: float = 0.0
        self.lost = False
        self.state: dict[tuple[str, str], float | None] = {}     # (row, class) -> lever value

    def start(self, rows: Mapping[str, RowInfo]) -> None:
        self.rows = dict(rows)
        self.level = {r: 0 for r in rows}
        self.below_since = {r: math.nan for r in rows}

    def thresholds(self) -> list[float]:
        c = self.cfg
        th = [c.t1, c.t2, c.brake]
        if c.admission is not None:
            th.append(c.admission)
        return th

    def step(self, t, readings):
        c = self.cfg
        acts: list[Action] = []
        if readings is None:
            if t - self.last_seen >= c.stale_s and c.on_telemetry_loss != "hold":
                floor = 1 if c.on_telemetry_loss == "cap_low" else 2
                for row in self.rows:
                    if self.level[row] < floor:
                        acts += self._go(row, floor, f"telemetry lost for {t - self.last_seen:.0f} s: fail-safe "
                                                      f"{LEVEL_NAMES[floor]}")
                self.lost = True
            return acts
        self.last_seen = t
        self.lost = False
        th = self.thresholds()
        for row, info in self.rows.items():
            if row not in readings:
                continue
            t_meas, p = readings[row]
            frac = p / info.budget_w
            lv = self.level[row]
            want = 0
            for k, x in enumerate(th):
                if frac > x:
                    want = k + 1
            if want > lv:
                acts += self._go(row, want, f"row power {p / 1e3:.1f} kW = {frac:.1%} of budget (measured at "
                                            f"{t_meas:.0f} s) above {LEVEL_NAMES[want]} threshold {th[want - 1]:.0%}")
                self.below_since[row] = math.nan
                continue
            if lv == 0:
                continue
            release_at = th[lv - 1] - c.hysteresis
            if getattr(c, "release", "threshold") == "predictive":
                # the power after releasing one level, estimated as if the row's power above its
                # static part scaled with the cap (conservative: GPUs below their cap scale less)
                st = info.static_w
                after = st + (p - st) * self._cap_of(lv - 1) / self._cap_of(lv)
                frac = max(frac, after / info.budget_w)
            if frac < release_at:
                if math.isnan(self.below_since[row]):
                    self.below_since[row] = t
                if t - self.below_since[row] >= c.release_hold_s:
                    acts += self._go(row, lv - 1, f"row power {frac:.1%} of budget below {release_at:.0%} "
                                                  f"for {c.release_hold_s:g} s: release")
                    self.below_since[row] = math.nan if lv - 1 > 0 else math.nan
            else:
                self.below_since[row] = math.nan
        return acts

    def _cap_of(self, level: int) -> float:
        """The cap (fraction of the maximum) of the highest-priority class at ``level``."""
        c = self.cfg
        return (1.0, 1.0, c.cap_all, c.cap_brake, c.cap_brake)[level]

    def _go(self, row: str, level: int, reason: str) -> list[Action]:
        """Actions taking ``row`` from its level to ``level`` (the whole lever state of that level)."""
        c = self.cfg
        info = self.rows[row]
        prev = self.level[row]
        self.level[row] = level
        low = tuple(k for k in info.classes if k in c.low_priority)
        high = tuple(k for k in info.classes if k not in c.low_priority)
        lever = c.lever
        acts = []
        state = self.state

        def set_(classes, value):
            changed = tuple(k for k in classes if state.get((row, k)) != value)
            if changed:
                for k in changed:
                    state[(row, k)] = value
                acts.append(Action(row, lever, changed, value, reason, level))

        if level == 0:
            set_(low + high, None)
        elif level == 1:
            set_(low, c.cap_low)
            set_(high, None)
        elif level == 2:
            set_(low, min(c.cap_low, c.cap_all))
            set_(high, c.cap_all)
        else:
            set_(low + high, c.cap_brake)
        if c.admission is not None and (level >= 4) != (prev >= 4):
            acts.append(Action(row, "admission", low + high, 0.0 if level >= 4 else 1.0, reason, level))
        return acts

    def finish(self, t: float) -> None:
        pass
