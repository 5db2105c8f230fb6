"""Build serving profiles (the narrow waist) from the energy model.

:func:`build_serving_profile` evaluates the first-principles model (:mod:`fleet.hardware.energy`)
on a grid of decode batches x contexts and of prefill lengths, at one power cap (or locked clock),
and fits the affine / quadratic forms that :class:`~fleet.frontier.profile.ServingProfile`
promises, recording the worst relative fit error.  Results are cached on their (hashable)
arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..catalog import ModelSpec
from ..catalog.device_energy import DeviceConstants, load_device_constants
from ..errors import ConfigurationError
from ..hardware.accelerator import Accelerator, build_accelerator
from ..hardware.energy import Device, OperatingPoint, WorkArrays, check_cap, evaluate
from .profile import ServingProfile
from .work import _get_model, _llm, decode_grid, prefill_work

#: vLLM's default max_num_seqs: the running-batch limit when none is given.
DEFAULT_MAX_BATCH = 256
#: per-sequence context points (tokens) the affine decode lines are fitted over by default
DEFAULT_CONTEXT_RANGE = (128, 4096)
#: prompt lengths (tokens) the quadratic prefill is fitted over by default
DEFAULT_PREFILL_RANGE = (32, 8192)


@dataclass(frozen=True)
class Replica:
    """A model on ``tp`` GPUs of one accelerator at one precision: what every builder needs."""

    model: ModelSpec
    acc: Accelerator
    tp: int
    precision: str
    kv_precision: str
    device: Device
    kv_capacity_tokens: int
    weights_per_gpu_bytes: float
    ep: int = 1              # expert-parallel degree: 1 (off) or tp (MoE experts split over the GPUs)

    @property
    def model_name(self) -> str:
        return self.model.name


def _norm_precision(p: str | None) -> str | None:
    if p is None:
        return None
    p = str(p).lower()
    return {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float8": "fp8"}.get(p, p)


def check_ep(model, tp: int, ep: int | None) -> int:
    """The expert-parallel degree ``ep`` of a replica of ``model`` on ``tp`` GPUs, checked.

    ``None`` or 1: off.  Otherwise ``model`` must be MoE and ``ep`` must divide ``tp``; the work
    model (:mod:`fleet.workload.llm`), like vLLM's ``--enable-expert-parallel`` without data
    parallelism, splits the experts over ALL ``tp`` GPUs of the replica, so ``ep`` must equal
    ``tp``.  This is how the ML.ENERGY calibration reads its expert-parallel rows."""
    if ep is None:
        return 1
    if isinstance(ep, bool) or int(ep) != ep or int(ep) < 1:
        raise ConfigurationError(f"expert parallel degree must be a positive integer, got {ep!r}")
    ep, tp = int(ep), int(tp)
    if ep == 1:
        return 1
    m = _get_model(model)
    if not _llm().architecture(m).is_moe:
        raise ConfigurationError(f"expert parallelism (ep={ep}) needs a mixture-of-experts model; "
                                 f"{m.name} is dense: use ep=1")
    if tp % ep:
        raise ConfigurationError(f"expert parallel degree ep={ep} must divide the replica's GPU count "
                                 f"tp={tp}")
    if ep != tp:
        raise ConfigurationError(f"expert parallel degree ep={ep} on tp={tp} GPUs is not modelled: the experts "
                                 f"are split over all GPUs of the replica (vLLM --enable-expert-parallel); "
                                 f"expected ep=1 or ep={tp}")
    return ep


def make_replica(model, gpu, tp: int = 1, precision: str = "bf16", kv_precision: str | None = None, *,
                 calibrated: bool = False, constants: DeviceConstants | None = None,
                 ep: int | None = 1) -> Replica:
    """Resolve names, check the model fits, and build the device figures.

    ``ep``: expert-parallel degree (1 or None: off; MoE only, must equal ``tp``,
    see :func:`check_ep`); attention stays tensor-parallel, as the ML.ENERGY calibration reads
    its expert-parallel rows."""
    if int(tp) < 1:
        raise ConfigurationError(f"tensor parallel degree must be >= 1, got {tp}")
    m = _get_model(model)
    ep = check_ep(m, int(tp), ep)
    consts = constants if constants is not None else load_device_constants(calibrated)
    acc = build_accelerator(gpu, constants=consts)
    precision = _norm_precision(precision) or "bf16"
    plan = _llm().memory_plan(m, acc.memory_bytes, int(tp), precision=precision,
                              kv_precision=_norm_precision(kv_precision), gpu_name=acc.name)
    weights, kv_cap, fits, kvp = plan.weights_per_gpu, plan.kv_capacity_tokens, plan.fits, plan.kv_precision
    if not fits or kv_cap <= 0:
        raise ConfigurationError(
            f"{m.name} at {precision} does not fit on {tp} x {acc.name} "
            f"({acc.spec.memory_gb:g} GB each): no room for a KV cache; use more GPUs or a lower precision")
    dev = Device.from_accelerator(acc, precision, int(tp))
    return Replica(m, acc, int(tp), precision, kvp, dev, int(kv_cap), float(weights), ep)


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


def _scalar(op: OperatingPoint) -> OperatingPoint:
    return OperatingPoint(*(float(np.asarray(getattr(op, f)).ravel()[0]) for f in op.__dataclass_fields__))


def decode_point(rep: Replica, batch: int, context_per_seq: float, *, power_cap_w=None, clock=None) -> OperatingPoint:
    """The direct model (no fit) for one decode iteration of ``batch`` sequences of
    ``context_per_seq`` cached tokens each (scalar fields)."""
    w = decode_grid(rep.model_name, [batch], [context_per_seq], rep.precision, rep.kv_precision, rep.tp,
                    rep.ep > 1)
    return _scalar(evaluate(w, rep.device, **_cap_args(rep, power_cap_w, clock)))


def prefill_point(rep: Replica, n_tokens: int, *, power_cap_w=None, clock=None) -> OperatingPoint:
    """The direct model (no fit) for one prefill of ``n_tokens`` prompt tokens (scalar fields)."""
    w = prefill_work(rep.model_name, int(n_tokens), rep.precision, rep.kv_precision, rep.tp, 0, rep.ep > 1)
    return _scalar(evaluate(w, rep.device, **_cap_args(rep, power_cap_w, clock)))


def _profile(rep: Replica, power_cap_w, clock, max_batch, context_range, prefill_range) -> ServingProfile:
    m = rep.model
    max_ctx = int(getattr(m, "max_context", 0) or 131072)
    if max_batch is None:
        max_batch = DEFAULT_MAX_BATCH
    max_batch = int(max(1, min(int(max_batch), rep.kv_capacity_tokens)))
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
    pop = evaluate(pw, rep.device, **kw)
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
        "constants": "calibrated" if rep.acc.constants.calibrated else "physical",
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
def _cached_profile(model: str, accelerator: str, tp: int, precision: str, kv_precision, power_cap_w,
                    max_batch, context_range, prefill_range, calibrated: bool, clock,
                    constants: DeviceConstants | None = None, ep: int = 1) -> ServingProfile:
    rep = make_replica(model, accelerator, tp, precision, kv_precision, calibrated=calibrated, constants=constants,
                       ep=ep)
    return _profile(rep, power_cap_w, clock, max_batch, context_range, prefill_range)


def build_serving_profile(model, accelerator, tp: int = 1, precision: str = "bf16",
                          kv_precision: str | None = None, power_cap_w: float | None = None,
                          max_batch: int | None = None,
                          context_range: tuple[float, float] = DEFAULT_CONTEXT_RANGE, *,
                          prefill_range: tuple[float, float] = DEFAULT_PREFILL_RANGE,
                          clock: float | None = None, calibrated: bool = False,
                          constants: DeviceConstants | None = None, ep: int | None = 1) -> ServingProfile:
    """A :class:`ServingProfile` for ``model`` on ``tp`` x ``accelerator`` (names or specs).

    ``power_cap_w`` is per GPU (None: uncapped, the accelerator's max limit); ``clock`` locks the
    normalised SM clock instead.  ``context_range`` is the per-sequence context (tokens) over
    which the affine decode lines are fitted.  Raises :class:`~fleet.errors.CatalogError` for
    unknown names and :class:`~fleet.errors.ConfigurationError` for a model that does not fit or a
    cap outside ``[power_min_w, power_max_w]``.  ``constants`` replaces the device constants (a
    what-if part, e.g. ``load_device_constants().with_values({"memory.pj_per_bit.HBM3": 1.7})``);
    ``calibrated`` is then ignored.  ``ep``: expert-parallel degree (1 or None: off; MoE only,
    equal to ``tp``; see :func:`make_replica`).  Cached on its arguments.
    """
    mname = model.name if hasattr(model, "name") and hasattr(model, "layers") else _get_model(model).name
    aname = accelerator.name if hasattr(accelerator, "memory_bw_gbs") else build_accelerator(accelerator).name
    ep = check_ep(mname, int(tp), ep)
    return _cached_profile(mname, aname, int(tp), _norm_precision(precision) or "bf16",
                           _norm_precision(kv_precision), None if power_cap_w is None else float(power_cap_w),
                           None if max_batch is None else int(max_batch),
                           tuple(float(v) for v in context_range), tuple(float(v) for v in prefill_range),
                           bool(calibrated), None if clock is None else float(clock), constants, ep)
