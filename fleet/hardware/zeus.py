"""Validation of the DVFS / power-cap model against the Zeus (NSDI'23) power-limit profiles.

The Zeus files (``summary_power_{gpu}.csv``) hold, for DNN training workloads (dataset, network,
batch size, optimizer), the epoch time and average GPU power at each power limit.  We compare
the *shape*: per workload, time and energy (= time x power) normalised to their values at the
highest limit, then the median across workloads at each limit.

How a workload is modelled (stated assumptions, two shared parameters, nothing per point):

* A training step is a busy phase plus, for input-bound workloads, GPU-idle gaps (data loading,
  host work) that no clock change shortens.  The busy phase spends a fraction ``phi`` of its
  time in compute-bound kernels (time ~ 1/f, energy ~ V^2) and ``1 - phi`` in memory-bound
  kernels (time and HBM energy unchanged).  ``phi`` is shared by all workloads of all GPUs.
* The busy phase's work (FLOPs, bytes) at max clock is the accelerator's attainable rates times
  those time fractions, at precision ``precision`` (shared; Zeus trained in fp32 without AMP,
  on CUDA cores).  Its power comes from the same device constants as every other prediction.
* Each workload's busy share ``u`` is read from its MEASURED power at the highest limit
  (``P1 = u P_busy + (1 - u) P_idle``): an observation of the workload, not a fit to the curve.
* The power limiter acts on the busy phase (its averaging window is short against a training
  step's kernels): the busy phase runs at the highest clock whose power fits under the cap; the
  idle gaps burn idle power and take the same time at every cap.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from ..errors import InputError

if TYPE_CHECKING:  # pragma: no cover
    from ..catalog import AcceleratorSpec
from .accelerator import Accelerator
from .energy import Device, WorkArrays, evaluate

KEYS = ["dataset", "network", "batch_size", "optimizer"]
#: Zeus file name -> catalog accelerator (the power-limit ranges match these parts)
ZEUS_GPUS = {"v100": "V100-PCIe-32GB", "a40": "A40", "rtx6000": "RTX6000", "p100": "P100"}

#: shared workload assumptions (see module docstring)
ZEUS_PHI = 0.4
ZEUS_PRECISION = "fp32"


@dataclass(frozen=True)
class Curves:
    limits: np.ndarray        # W
    time: np.ndarray          # median normalised time per limit
    energy: np.ndarray        # median normalised energy per limit

    @property
    def argmin_energy(self) -> float:
        return float(self.limits[int(np.argmin(self.energy))])


def load_zeus(path: str | Path) -> pd.DataFrame:
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", path=path, expected="a Zeus summary_power_*.csv")
    df = pd.read_csv(path)
    need = KEYS + ["power_limit", "time_per_epoch", "average_power"]
    miss = [c for c in need if c not in df.columns]
    if miss:
        raise InputError(f"missing columns {miss}", path=path, line=1, expected=", ".join(need))
    df = df.copy()
    df["energy"] = df["time_per_epoch"] * df["average_power"]
    return df


def measured_curves(df: pd.DataFrame) -> tuple[Curves, pd.DataFrame]:
    """Median normalised curves and the per-workload reference rows (at the highest limit)."""
    top = df["power_limit"].max()
    ref = df[df["power_limit"] == top].groupby(KEYS)[["time_per_epoch", "energy", "average_power"]].mean()
    j = df.merge(ref.add_suffix("_ref"), left_on=KEYS, right_index=True, how="inner")
    j["nt"] = j["time_per_epoch"] / j["time_per_epoch_ref"]
    j["ne"] = j["energy"] / j["energy_ref"]
    g = j.groupby("power_limit")[["nt", "ne"]].median()
    return Curves(g.index.to_numpy(float), g["nt"].to_numpy(), g["ne"].to_numpy()), ref.reset_index()


def _phase_table(acc: Accelerator, phi: float, precision: str, n: int = 400):
    """Time, energy, power of the compute phase and the memory phase over a clock grid."""
    dev = Device.from_accelerator(acc, precision, 1)
    assert dev.vf is not None, "a device built from an accelerator has its V/f curve"
    x = np.linspace(dev.vf.x_min, 1.0, n)
    comp = evaluate(WorkArrays(flops=phi * dev.f_att, lin_bytes=0.0, kv_bytes=0.0, steps=0.0), dev, clock=x)
    mem = evaluate(WorkArrays(flops=0.0, lin_bytes=0.0, kv_bytes=(1.0 - phi) * dev.bw_att, steps=0.0), dev, clock=x)
    return dev, comp, mem


def _capped(op, cap: float, idle: float) -> tuple[float, float]:
    """(time, energy) of one phase at the highest clock whose power fits under ``cap``."""
    pw, t, e = op.power_w, op.time_s, op.energy_j
    ok = pw <= cap + 1e-9
    if ok.any():
        j = int(np.nonzero(ok)[0].max())
        return float(t[j]), float(e[j])
    t2 = max((e[0] - idle * t[0]) / max(cap - idle, 1e-9), t[0])     # duty-cycled
    return float(t2), float(e[0] + idle * (t2 - t[0]))


def predicted_curves(acc: Accelerator, limits, p1_measured, *, phi: float = ZEUS_PHI,
                     precision: str = ZEUS_PRECISION) -> Curves:
    """Model median normalised curves for workloads with measured max-limit powers ``p1``.

    The busy phase is a compute-bound part (``phi`` of its max-clock time) and a memory-bound
    part; the limiter reacts within milliseconds, so each part runs at the highest clock whose
    own power fits under the cap.
    """
    limits = np.asarray(limits, float)
    p1 = np.asarray(p1_measured, float)
    dev, comp, mem = _phase_table(acc, phi, precision)
    idle = float(dev.idle_w)
    tb, eb = np.empty(len(limits)), np.empty(len(limits))
    for i, cap in enumerate(limits):
        tc, ec = _capped(comp, cap, idle + float(dev.mem_bg_w))
        tm, em = _capped(mem, cap, idle + float(dev.mem_bg_w))
        tb[i], eb[i] = tc + tm, ec + em
    top = int(np.argmax(limits))
    p_busy = eb[top] / tb[top]
    u = np.clip((p1 - idle) / max(p_busy - idle, 1e-9), 0.0, 1.0)      # busy share per workload
    t = u[None, :] * tb[:, None] + (1 - u[None, :])
    e = u[None, :] * eb[:, None] + (1 - u[None, :]) * idle
    nt = t / t[top]
    ne = e / e[top]
    return Curves(limits, np.median(nt, axis=1), np.median(ne, axis=1))


def validate(path: str | Path, acc: Accelerator, *, phi: float = ZEUS_PHI, precision: str = ZEUS_PRECISION) -> dict:
    """Measured vs predicted median curves for one Zeus file."""
    df = load_zeus(path)
    meas, ref = measured_curves(df)
    pred = predicted_curves(acc, meas.limits, ref["average_power"].to_numpy(), phi=phi, precision=precision)
    return {
        "gpu": acc.name, "workloads": int(len(ref)), "limits_w": meas.limits.tolist(),
        "measured_time": meas.time.tolist(), "predicted_time": pred.time.tolist(),
        "measured_energy": meas.energy.tolist(), "predicted_energy": pred.energy.tolist(),
        "max_abs_err_time": float(np.max(np.abs(pred.time - meas.time))),
        "max_abs_err_energy": float(np.max(np.abs(pred.energy - meas.energy))),
        "argmin_energy_measured_w": meas.argmin_energy, "argmin_energy_predicted_w": pred.argmin_energy,
    }


#: the constants the Zeus fit may move (each inside its range); none of them changes an
#: uncapped bf16 H100 prediction, so this fit and the ML.ENERGY fit are independent
DVFS_FIT_PARAMS: tuple[str, ...] = (
    "dvfs.v_floor", "dvfs.x_knee", "dvfs.x_min", "dvfs.leakage_fraction",
    "compute.simt_overhead_factor", "memory.background_w_per_gbs.HBM2", "memory.background_w_per_gbs.GDDR6",
)
#: Zeus file stem -> catalog accelerator used in the fit and the validation
ZEUS_FILES = {"v100": "V100-PCIe-32GB", "a40": "A40"}
#: Zeus GPUs never used in any fit: predicted from their spec sheets (generalisation check)
ZEUS_HELDOUT = {"rtx6000": "RTX6000", "p100": "P100-PCIe-16GB"}


def load_zeus_set(folder: str | Path, gpus: dict[str, str] | None = None) -> list[tuple[AcceleratorSpec, Curves, np.ndarray]]:
    """(accelerator spec, measured median curves, per-workload max-limit power) per Zeus file."""
    from ..catalog import get_accelerator
    out = []
    for stem, name in (gpus or ZEUS_FILES).items():
        df = load_zeus(Path(folder) / f"summary_power_{stem}.csv")
        meas, ref = measured_curves(df)
        out.append((get_accelerator(name), meas, ref["average_power"].to_numpy()))
    return out


#: deterministic multi-start of the DVFS fit: the physical start plus this many points of an
#: unscrambled Sobol sequence over the scaled box (no random numbers, so no seed)
DVFS_FIT_STARTS = 6
#: two polished optima whose costs differ by less than this (relative) are a tie: the earlier
#: start wins, so rounding differences between BLAS kernels (~1e-12) cannot flip the choice
_COST_TIE_REL = 1e-6


def _sobol_points(dim: int, n: int) -> np.ndarray:
    """``n`` points of the unscrambled Sobol sequence in ``[0, 1]^dim`` (skipping the corner 0)."""
    from scipy.stats import qmc

    m = int(np.ceil(np.log2(n + 1)))
    return qmc.Sobol(d=dim, scramble=False).random_base2(m)[1:n + 1]


def fit_dvfs(zset, base, params=DVFS_FIT_PARAMS, *, phi: float = ZEUS_PHI, hinge: float = 0.06,
             max_nfev: int = 300, starts: int = DVFS_FIT_STARTS):
    """Bounded least-squares fit of the DVFS-shape constants to the Zeus median curves.

    Residuals are the differences of normalised time and energy at every limit, plus a hinge
    penalty ``3 * max(|r| - hinge, 0)`` so that the fit aims at the worst limit (the criterion
    the validation uses) rather than only the average.  Parameters move inside their ranges
    (scaled to [0, 1]).  Returns a :class:`~.calibrate.FitResult`.

    The answer must not depend on floating-point rounding (BLAS kernels differ between
    machines), so:

    * a parameter the curves cannot see (moving it across its whole range changes no residual,
      e.g. the HBM2 background power when only GDDR6 GPUs are fitted) is not fitted: it keeps
      ``base``'s value instead of drifting on rounding noise;
    * the objective is piecewise flat at a fine scale (the limiter picks a clock on a grid), so
      one local descent can stop in a different dent; the fit polishes from ``base`` and from
      ``starts`` deterministic Sobol points, and keeps the lowest cost (ties within
      ``1e-6`` relative go to the earlier start)."""
    from scipy.optimize import least_squares

    from .calibrate import FitResult

    consts = [base.constant(p) for p in params]
    lo = np.array([c.lo for c in consts])
    hi = np.array([c.hi for c in consts])
    z0 = np.array([(c.value - c.lo) / (c.hi - c.lo) for c in consts])

    def values_of(z):
        return {p: float(lo[i] + np.clip(z[i], 0.0, 1.0) * (hi[i] - lo[i])) for i, p in enumerate(params)}

    def raw(z):
        c = base.with_values(values_of(z), kind="calibrated", source="fit", check_range=False)
        r = []
        for spec, meas, p1 in zset:
            pred = predicted_curves(Accelerator(spec, c), meas.limits, p1, phi=phi)
            r.append(pred.time - meas.time)
            r.append(pred.energy - meas.energy)
        return np.concatenate(r)

    r0 = raw(z0)
    free = []
    for i in range(len(params)):
        if any(not np.array_equal(raw(np.where(np.arange(len(z0)) == i, end, z0)), r0) for end in (0.0, 1.0)):
            free.append(i)
    free_idx = np.array(free, dtype=int)

    def full(zf):
        z = z0.copy()
        z[free_idx] = zf
        return z

    def resid(zf):
        r = raw(full(zf))
        return np.concatenate([r, 3.0 * np.maximum(np.abs(r) - hinge, 0.0)])

    best = None
    nfev = 0
    if len(free_idx):
        x_starts = [z0[free_idx]] + list(_sobol_points(len(free_idx), starts)) if starts > 0 else [z0[free_idx]]
        for xs in x_starts:
            res = least_squares(resid, xs, bounds=(np.zeros(len(free_idx)), np.ones(len(free_idx))),
                                diff_step=1e-2, max_nfev=max_nfev, method="trf")
            nfev += int(res.nfev)
            if best is None or res.cost < best.cost * (1.0 - _COST_TIE_REL):
                best = res
        assert best is not None
        z = full(best.x)
        cost, success, message = float(best.cost), bool(best.success), str(best.message)
    else:
        z = z0
        cost, success, message = float(0.5 * np.sum(resid(z0[free_idx]) ** 2)), True, "nothing to fit"
    at_bound = [params[i] for i in free_idx if z[i] < 1e-3 or z[i] > 1 - 1e-3]
    return FitResult(values=values_of(z), start={c.name: c.value for c in consts}, cost=cost,
                     nfev=nfev, success=success, message=message, at_bound=at_bound)


def zeus_report(folder: str | Path, constants, *, phi: float = ZEUS_PHI, files: dict[str, str] | None = None) -> dict:
    """Shape errors per Zeus GPU for ``constants``."""
    out = {}
    for stem, name in (files or ZEUS_FILES).items():
        from ..catalog import get_accelerator
        r = validate(Path(folder) / f"summary_power_{stem}.csv", Accelerator(get_accelerator(name), constants), phi=phi)
        out[name] = {k: r[k] for k in ("max_abs_err_time", "max_abs_err_energy", "argmin_energy_measured_w",
                                        "argmin_energy_predicted_w")}
    return out
