"""Build serving profiles (the narrow waist) from the energy model.

:func:`build_serving_profile` evaluates the first-principles model (:mod:`fleet.hardware.energy`)
on a grid of decode batches x contexts and of prefill lengths, at one
:class:`~fleet.frontier.operating_point.OperatingPoint` (its power cap or locked clock), and fits
the affine / quadratic forms that :class:`~fleet.frontier.profile.ServingProfile` promises,
recording the worst relative fit error.  Results are cached on the operating point (a hashable
value) and the fit ranges.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..catalog import ModelSpec
from ..catalog.device_energy import DeviceConstants
from ..errors import ConfigurationError
from ..hardware.accelerator import Accelerator, build_accelerator
from ..hardware.energy import Device, Evaluation, WorkArrays, check_cap, evaluate
from .operating_point import DEFAULT_MAX_BATCH, OperatingPoint, check_ep
from .profile import ServingProfile
from .work import _get_model, _llm, decode_grid, prefill_work

__all__ = ["DEFAULT_MAX_BATCH", "DEFAULT_CONTEXT_RANGE", "DEFAULT_PREFILL_RANGE", "Replica", "OperatingPoint",
           "check_ep", "make_replica", "operating_point", "build_serving_profile", "decode_point", "prefill_point"]

#: per-sequence context points (tokens) the affine decode lines are fitted over by default
DEFAULT_CONTEXT_RANGE = (128, 4096)
#: prompt lengths (tokens) the quadratic prefill is fitted over by default
DEFAULT_PREFILL_RANGE = (32, 8192)


@dataclass(frozen=True)
class Replica:
    """A model on ``tp`` GPUs of one accelerator at one precision: what every builder needs.

    ``op`` is the operating point it was built for (its cap or clock is what
    :func:`build_serving_profile` applies; :func:`decode_point` and friends take theirs
    explicitly)."""

    model: ModelSpec
    acc: Accelerator
    tp: int
    precision: str
    kv_precision: str
    device: Device
    kv_capacity_tokens: int
    weights_per_gpu_bytes: float
    ep: int = 1              # expert-parallel degree: 1 (off) or tp (MoE experts split over the GPUs)
    op: OperatingPoint | None = None
    prefill_device: Device | None = None   # the prefill phase's figures (the stack's prefill kernels)

    @property
    def prefill_dev(self) -> Device:
        """The device figures for prefill work (``device`` where no stack sets them apart)."""
        return self.device if self.prefill_device is None else self.prefill_device

    @property
    def model_name(self) -> str:
        return self.model.name

    @property
    def clock_fraction(self) -> float | None:
        """The locked clock of ``op`` as a fraction of the maximum clock (None: not locked)."""
        return None if self.op is None else clock_fraction(self.op, self.acc)


def _name(x) -> str:
    """A catalog name from a name or a spec object (ModelSpec, AcceleratorSpec, Accelerator)."""
    if isinstance(x, str):
        return x
    return str(getattr(x, "name", x))


def operating_point(model, accelerator, tp: int = 1, precision: str = "bf16", kv_precision: str | None = None, *,
                    power_cap_w: float | None = None, clock: float | None = None,
                    locked_clock_mhz: float | None = None, max_batch: int | None = None,
                    calibrated: bool = False, constants: DeviceConstants | None = None,
                    ep: int | None = 1, stack: str | None = None) -> OperatingPoint:
    """An :class:`OperatingPoint` from the keyword form the convenience wrappers take.

    ``calibrated`` picks the catalog's constant set; ``constants`` (a what-if
    :class:`DeviceConstants`) replaces it under the label ``"custom"``.  ``clock`` is the locked
    SM clock as a fraction of the accelerator's maximum (converted to ``locked_clock_mhz``)."""
    if clock is not None:
        if locked_clock_mhz is not None:
            raise ConfigurationError("give the locked clock once: clock (fraction) or locked_clock_mhz")
        locked_clock_mhz = _clock_mhz(_name(accelerator), clock)
        if power_cap_w is not None:      # the keyword form always let a locked clock win over a cap
            power_cap_w = None
    label = "custom" if constants is not None else ("calibrated" if calibrated else "physical")
    return OperatingPoint(_name(model), _name(accelerator), tp=tp, ep=1 if ep is None else ep,
                          precision="bf16" if precision is None else precision,
                          kv_precision=kv_precision, power_cap_w=power_cap_w, locked_clock_mhz=locked_clock_mhz,
                          max_batch=DEFAULT_MAX_BATCH if max_batch is None else max_batch,
                          constants=label, device_constants=constants,
                          **({} if stack is None else {"stack": stack}))


def _max_clock_mhz(acc_name: str) -> float:
    from ..catalog import get_accelerator

    fmax = float(getattr(get_accelerator(acc_name), "max_clock_mhz", 0) or 0)
    if not fmax > 0:
        raise ConfigurationError(f"{acc_name} has no max_clock_mhz in the catalog; cannot lock a clock")
    return fmax


def _clock_mhz(acc_name: str, fraction: float) -> float:
    if not (0.0 < float(fraction) <= 1.0):
        raise ConfigurationError(f"locked clock fraction must be in (0, 1], got {fraction}")
    return float(fraction) * _max_clock_mhz(acc_name)


def clock_fraction(op: OperatingPoint, acc: Accelerator | None = None) -> float | None:
    """``op``'s locked clock as a fraction of its accelerator's maximum clock (None: not locked);
    :class:`ConfigurationError` outside ``(0, max_clock_mhz]``."""
    if op.locked_clock_mhz is None:
        return None
    fmax = _max_clock_mhz(op.accelerator)
    if not (0 < op.locked_clock_mhz <= fmax):
        raise ConfigurationError(f"locked clock {op.locked_clock_mhz:g} MHz is outside (0, {fmax:g}] MHz for "
                                 f"{op.accelerator}")
    return op.locked_clock_mhz / fmax


def _replica(op: OperatingPoint) -> Replica:
    m = _get_model(op.model)
    acc = build_accelerator(op.accelerator, constants=op.resolve_constants())
    plan = _llm().memory_plan(m, acc.memory_bytes, op.tp, precision=op.precision,
                              kv_precision=op.kv_precision, gpu_name=acc.name)
    weights, kv_cap, fits, kvp = plan.weights_per_gpu, plan.kv_capacity_tokens, plan.fits, plan.kv_precision
    if not fits or kv_cap <= 0:
        raise ConfigurationError(
            f"{m.name} at {op.precision} does not fit on {op.tp} x {acc.name} "
            f"({acc.spec.memory_gb:g} GB each): no room for a KV cache; use more GPUs or a lower precision")
    stack = op.resolve_stack().values(acc.constants)
    dev = Device.from_accelerator(acc, op.precision, op.tp, stack, "decode")
    pdev = Device.from_accelerator(acc, op.precision, op.tp, stack, "prefill")
    check_cap(dev, op.power_cap_w, acc.name)
    clock_fraction(op, acc)
    return Replica(m, acc, op.tp, op.precision, kvp, dev, int(kv_cap), float(weights), op.ep, op, pdev)


def make_replica(op, gpu=None, tp: int = 1, precision: str = "bf16", kv_precision: str | None = None, *,
                 calibrated: bool = False, constants: DeviceConstants | None = None,
                 ep: int | None = 1) -> Replica:
    """Resolve names, check the model fits, and build the device figures of ``op`` (an
    :class:`OperatingPoint`; its cap and clock are checked against the accelerator's range).

    Convenience form: ``make_replica(model, gpu, tp, precision, kv_precision, calibrated=,
    constants=, ep=)`` builds the operating point (uncapped; see :func:`operating_point`).
    ``ep``: expert-parallel degree (1 or None: off; MoE only, must equal ``tp``, see
    :func:`check_ep`); attention stays tensor-parallel, as the ML.ENERGY calibration reads
    its expert-parallel rows."""
    if isinstance(op, OperatingPoint):
        if gpu is not None:
            raise TypeError("make_replica(op) takes an OperatingPoint alone; the keyword form starts "
                            "make_replica(model, gpu, ...)")
        return _replica(op)
    if gpu is None:
        raise TypeError("make_replica() needs an OperatingPoint, or a model and an accelerator")
    return _replica(operating_point(op, gpu, tp, precision, kv_precision, calibrated=calibrated,
                                    constants=constants, ep=ep))


def _fit_affine(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Row-wise relative least-squares line y ~ a + b x; returns (a, b, worst relative error)."""
    w = 1.0 / np.maximum(y, 1e-30)
    # weighted normal equations per row
    sw2 = np.sum(w * w, axis=1)
    sx = np.sum(w * w * x, axis=1)
    sxx = np.sum(w * w * x * x, axis=1)
    sy = np.sum(w * w * y, axis=1)
    sxy = np.sum(w * w * x * y, axis=1)
    det = sw2 * sxx - sx * sx
    safe = np.abs(det) > 1e-300
    b = np.where(safe, (sw2 * sxy - sx * sy) / np.where(safe, det, 1.0), 0.0)
    a = np.where(safe, (sy - b * sx) / sw2, np.mean(y, axis=1))
    # physical lines: non-negative slope and intercept
    b = np.maximum(b, 0.0)
    a = np.maximum(a, 1e-12)
    err = np.max(np.abs(a[:, None] + b[:, None] * x - y) / y)
    return a, b, float(err)


def _fit_quadratic(n: np.ndarray, y: np.ndarray) -> tuple[tuple[float, float, float], float]:
    """Minimax relative fit y ~ c0 + c1 n + c2 n^2 with non-negative coefficients.

    Solved as a linear programme (minimise e subject to |fit - y| <= e y), so the recorded
    worst relative error is the smallest any such quadratic can have on these points."""
    from scipy.optimize import linprog
    scale = np.array([1.0, float(n.max()), float(n.max()) ** 2])
    A = np.stack([np.ones_like(n), n, n * n], axis=1) / scale / y[:, None]     # fit / y per point
    k = len(n)
    # variables (c0', c1', c2', e): minimise e;  A c - e <= 1  and  -A c - e <= -1
    A_ub = np.block([[A, -np.ones((k, 1))], [-A, -np.ones((k, 1))]])
    b_ub = np.concatenate([np.ones(k), -np.ones(k)])
    res = linprog(c=[0, 0, 0, 1], A_ub=A_ub, b_ub=b_ub, bounds=[(0, None)] * 4, method="highs")
    if res.status == 0:
        coef = res.x[:3] / scale
    else:                                   # fall back to relative least squares
        from scipy.optimize import nnls
        coef, _ = nnls(A, np.ones_like(y))
        coef = coef / scale
    err = float(np.max(np.abs(coef[0] + coef[1] * n + coef[2] * n * n - y) / y))
    return (float(coef[0]), float(coef[1]), float(coef[2])), err


def _cap_args(rep: Replica, power_cap_w, clock):
    if clock is not None:
        if not (0.0 < float(clock) <= 1.0):
            raise ConfigurationError(f"locked clock fraction must be in (0, 1], got {clock}")
        return dict(clock=float(clock))
    if power_cap_w is not None:
        check_cap(rep.device, power_cap_w, rep.acc.name)
        return dict(cap_w=float(power_cap_w))
    return {}


def _scalar(ev: Evaluation) -> Evaluation:
    return Evaluation(*(float(np.asarray(getattr(ev, f)).ravel()[0]) for f in ev.__dataclass_fields__))


def decode_point(rep: Replica, batch: int, context_per_seq: float, *, power_cap_w=None, clock=None) -> Evaluation:
    """The direct model (no fit) for one decode iteration of ``batch`` sequences of
    ``context_per_seq`` cached tokens each (scalar fields)."""
    w = decode_grid(rep.model_name, [batch], [context_per_seq], rep.precision, rep.kv_precision, rep.tp,
                    rep.ep > 1)
    return _scalar(evaluate(w, rep.device, **_cap_args(rep, power_cap_w, clock)))


def prefill_point(rep: Replica, n_tokens: int, *, power_cap_w=None, clock=None) -> Evaluation:
    """The direct model (no fit) for one prefill of ``n_tokens`` prompt tokens (scalar fields)."""
    w = prefill_work(rep.model_name, int(n_tokens), rep.precision, rep.kv_precision, rep.tp, 0, rep.ep > 1)
    return _scalar(evaluate(w, rep.prefill_dev, **_cap_args(rep, power_cap_w, clock)))


def _profile(rep: Replica, context_range, prefill_range) -> ServingProfile:
    m, point = rep.model, rep.op
    assert point is not None, "a serving profile is built from a replica made for an operating point"
    power_cap_w, clock = point.power_cap_w, rep.clock_fraction
    max_ctx = int(getattr(m, "max_context", 0) or 131072)
    max_batch = int(max(1, min(int(point.max_batch), rep.kv_capacity_tokens)))
    lo, hi = context_range or DEFAULT_CONTEXT_RANGE
    hi = max(min(float(hi), float(max_ctx)), float(lo) + 1.0)
    ctx = np.geomspace(max(float(lo), 1.0), hi, 7)
    batches = np.arange(1, max_batch + 1)
    work = decode_grid(m.name, batches, ctx, rep.precision, rep.kv_precision, rep.tp, rep.ep > 1)
    kw = _cap_args(rep, power_cap_w, clock)
    op = evaluate(work, rep.device, **kw)
    total_ctx = batches[:, None] * ctx[None, :]
    t0, t1, et = _fit_affine(total_ctx, op.time_s)
    e0, e1, ee = _fit_affine(total_ctx, op.energy_j)
    z = np.zeros(1)
    dec_t0, dec_t1 = np.concatenate([z, t0]), np.concatenate([z, t1])
    dec_e0, dec_e1 = np.concatenate([z, e0]), np.concatenate([z, e1])

    plo, phi = prefill_range or DEFAULT_PREFILL_RANGE
    phi = max(min(float(phi), float(max_ctx)), float(plo) + 1.0)
    ns = np.unique(np.geomspace(plo, phi, 16).astype(int))
    pw = WorkArrays.stack([prefill_work(m.name, int(n), rep.precision, rep.kv_precision, rep.tp, 0, rep.ep > 1)
                           for n in ns])
    pop = evaluate(pw, rep.prefill_dev, **kw)
    pre_t, pt_err = _fit_quadratic(ns.astype(float), pop.time_s)
    pre_e, pe_err = _fit_quadratic(ns.astype(float), pop.energy_j)

    mid_b = max(1, max_batch // 2)
    clock_frac = float(op.clock_fraction[mid_b - 1, len(ctx) // 2])
    cap = float(power_cap_w) if power_cap_w is not None else float(rep.device.power_max_w)
    meta = {
        "context_points_per_seq": ctx.tolist(),
        "prefill_points": ns.tolist(),
        "weights_per_gpu_bytes": rep.weights_per_gpu_bytes,
        "compute_precision": rep.acc.compute_precision(rep.precision),
        "decode_time_fit_err": et, "decode_energy_fit_err": ee,
        "prefill_time_fit_err": pt_err, "prefill_energy_fit_err": pe_err,
        "locked_clock": clock,
        "locked_clock_mhz": point.locked_clock_mhz,
        "constants": point.constants,
        "stack": point.stack,
        "operating_point": point.label(),
    }
    if rep.ep > 1:
        meta["expert_parallel"] = rep.ep
    prof = ServingProfile(
        model=m.name, accelerator=rep.acc.name, tp=rep.tp, precision=rep.precision,
        kv_precision=rep.kv_precision, power_cap_w=cap, clock_fraction=clock_frac,
        max_batch=max_batch, kv_capacity_tokens=int(rep.kv_capacity_tokens), max_context_tokens=max_ctx,
        idle_power_w=rep.tp * rep.acc.idle_w,
        dec_t0=dec_t0, dec_t1=dec_t1, dec_e0=dec_e0, dec_e1=dec_e1,
        pre_t=pre_t, pre_e=pre_e,
        decode_fit_max_rel_err=max(et, ee), prefill_fit_max_rel_err=max(pt_err, pe_err),
        calibrated=bool(rep.acc.constants.calibrated), meta=meta)
    prof.validate()
    return prof


@lru_cache(maxsize=512)
def _cached_profile(op: OperatingPoint, context_range: tuple, prefill_range: tuple) -> ServingProfile:
    return _profile(_replica(op), context_range, prefill_range)


def build_serving_profile(op, accelerator=None, tp: int = 1, precision: str = "bf16",
                          kv_precision: str | None = None, power_cap_w: float | None = None,
                          max_batch: int | None = None,
                          context_range: tuple[float, float] = DEFAULT_CONTEXT_RANGE, *,
                          prefill_range: tuple[float, float] = DEFAULT_PREFILL_RANGE,
                          clock: float | None = None, calibrated: bool = False,
                          constants: DeviceConstants | None = None, ep: int | None = 1) -> ServingProfile:
    """The :class:`ServingProfile` of operating point ``op`` (cached on ``op`` and the fit ranges).

    ``context_range`` is the per-sequence context (tokens) over which the affine decode lines are
    fitted, ``prefill_range`` the prompt lengths of the quadratic prefill fit.  Raises
    :class:`~fleet.errors.CatalogError` for unknown names and
    :class:`~fleet.errors.ConfigurationError` for a model that does not fit or a cap outside
    ``[power_min_w, power_max_w]``.

    Convenience form (the README's): ``build_serving_profile(model, accelerator, tp=1,
    precision="bf16", kv_precision=None, power_cap_w=None, max_batch=None, clock=None,
    calibrated=False, constants=None, ep=1)`` builds the operating point with
    :func:`operating_point` (``power_cap_w`` per GPU, None: uncapped; ``clock``: locked SM clock as
    a fraction of the maximum; ``constants``: a what-if :class:`DeviceConstants`, ``calibrated``
    then ignored; ``ep``: expert-parallel degree).
    """
    if isinstance(op, OperatingPoint):
        if accelerator is not None:
            raise TypeError("build_serving_profile(op) takes an OperatingPoint alone; the keyword form "
                            "starts build_serving_profile(model, accelerator, ...)")
    elif accelerator is None:
        raise TypeError("build_serving_profile() needs an OperatingPoint, or a model and an accelerator")
    else:
        op = operating_point(op, accelerator, tp, precision, kv_precision, power_cap_w=power_cap_w, clock=clock,
                             max_batch=max_batch, calibrated=calibrated, constants=constants, ep=ep)
    return _cached_profile(op, tuple(float(v) for v in context_range), tuple(float(v) for v in prefill_range))
