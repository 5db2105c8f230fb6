"""The operating point: one value that says where a piece of hardware runs.

An :class:`OperatingPoint` names a model on ``tp`` GPUs of one accelerator, with its expert
parallelism, weight and KV-cache precision, power cap or locked clock, running-batch limit and
the device constants of the energy model.  Profiles and frontiers are built for operating
points (:func:`fleet.frontier.build_serving_profile` takes one and is cached on it), the
simulation's profile factories take one, and the planner's decisions are operating points
(``op.with_cap(350)``) and counts.

The value is frozen, validated and canonical on construction (catalog names, the one precision
vocabulary of :mod:`fleet.catalog.precision`, the KV precision resolved), so two spellings of the
same deployment are equal and hash alike: it is the cache key.

Device constants: ``constants`` is a hashable label, ``"calibrated"`` or ``"physical"`` (the
files in ``fleet/catalog``), or any other label (e.g. ``"what-if: HBM3 at half the pJ/bit"``)
naming the :class:`~fleet.catalog.device_energy.DeviceConstants` carried in
``device_constants``.  The constants object is part of equality and the hash too (it is
immutable), so two what-if sets under one label never share a cache entry.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, SupportsInt, cast

from ..catalog.device_energy import DeviceConstants, load_device_constants
from ..catalog.precision import default_kv_precision, normalize_precision
from ..catalog.serving_stack import canonical_stack, default_stack_name
from ..errors import ConfigurationError

#: vLLM's default max_num_seqs: the running-batch limit when none is given.
DEFAULT_MAX_BATCH = 256
#: the reference serving stack (fleet/catalog/serving_stacks.yaml ``default:``): the one the
#: device constants were calibrated on
DEFAULT_STACK = "vllm-mlenergy-v3"
#: the two constant sets that live in fleet/catalog (device_energy.yaml, and it with
#: device_energy_calibrated.yaml applied on top)
CONSTANT_SETS = ("calibrated", "physical")


@lru_cache(maxsize=1024)
def _canonical_model(name: str) -> str:
    from ..catalog import get_model

    return get_model(name).name


@lru_cache(maxsize=256)
def _canonical_accelerator(name: str) -> str:
    from ..catalog import get_accelerator

    return get_accelerator(name).name


@lru_cache(maxsize=1024)
def _is_moe(model: str) -> bool:
    from ..catalog import get_model
    from ..workload import llm

    return bool(llm.architecture(get_model(model)).is_moe)


def _pos_int(name: str, v: object) -> int:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)):
        raise ConfigurationError(f"{name} must be a positive integer, got {v!r}")
    # every concrete Real (int, float, numpy's, Fraction) has __int__; the ABC declares only __trunc__
    n = int(cast(SupportsInt, v))
    if n != v or n < 1:
        raise ConfigurationError(f"{name} must be a positive integer, got {v!r}")
    return n


def _pos_float(name: str, v, unit: str) -> float:
    if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(float(v)) or float(v) <= 0:
        raise ConfigurationError(f"{name} must be a positive number of {unit}, got {v!r}")
    return float(v)


def check_ep(model, tp: int, ep: int | None) -> int:
    """The expert-parallel degree ``ep`` of a replica of ``model`` on ``tp`` GPUs, checked.

    ``None`` or 1: off.  Otherwise ``model`` must be MoE and ``ep`` must divide ``tp``; the work
    model (:mod:`fleet.workload.llm`), like vLLM's ``--enable-expert-parallel`` without data
    parallelism, splits the experts over ALL ``tp`` GPUs of the replica, so ``ep`` must equal
    ``tp``.  This is how the ML.ENERGY calibration reads its expert-parallel rows."""
    if ep is None:
        return 1
    if isinstance(ep, bool) or not isinstance(ep, numbers.Real) or not math.isfinite(float(ep)) \
            or int(ep) != ep or int(ep) < 1:
        raise ConfigurationError(f"expert parallel degree must be a positive integer, got {ep!r}")
    ep, tp = int(ep), int(tp)
    if ep == 1:
        return 1
    name = model if isinstance(model, str) else getattr(model, "name", str(model))
    if not _is_moe(_canonical_model(name)):
        raise ConfigurationError(f"expert parallelism (ep={ep}) needs a mixture-of-experts model; "
                                 f"{_canonical_model(name)} is dense: use ep=1")
    if tp % ep:
        raise ConfigurationError(f"expert parallel degree ep={ep} must divide the replica's GPU count "
                                 f"tp={tp}")
    if ep != tp:
        raise ConfigurationError(f"expert parallel degree ep={ep} on tp={tp} GPUs is not modelled: the experts "
                                 f"are split over all GPUs of the replica (vLLM --enable-expert-parallel); "
                                 f"expected ep=1 or ep={tp}")
    return ep


@dataclass(frozen=True)
class OperatingPoint:
    """Where one replica runs: a hashable, validated, canonical value.

    * ``model``, ``accelerator``: catalog names (any alias or Hugging Face id is accepted and
      replaced by the canonical name);
    * ``tp``: GPUs per replica (tensor parallelism); ``ep``: expert-parallel degree (1 = off;
      MoE only, equal to ``tp``, see :func:`check_ep`);
    * ``precision``: weight precision; ``kv_precision``: KV-cache precision (None on input means
      the activation dtype; always resolved on the value), both canonical names of
      :mod:`fleet.catalog.precision` (aliases such as ``bfloat16`` accepted);
    * ``power_cap_w``: per-GPU power limit in W (None: uncapped, the accelerator's maximum
      limit), or ``locked_clock_mhz``: the SM clock locked at this many MHz (not both);
    * ``max_batch``: the running-batch limit (vLLM ``max_num_seqs``; the profile clamps it to
      what the KV cache holds);
    * ``constants``: ``"calibrated"``, ``"physical"`` or the label of a what-if set carried in
      ``device_constants`` (a :class:`DeviceConstants` given as ``constants`` is moved there
      under the label ``"custom"``);
    * ``stack``: the serving software (a name or alias of ``fleet/catalog/serving_stacks.yaml``,
      stored canonical): its per-step overhead, kernel efficiency by phase, all-reduce latency and
      bandwidth efficiency and power while waiting, apart from the hardware.  The default is the
      reference stack the device constants were calibrated on (ML.ENERGY v3's vLLM).

    The accelerator-dependent ranges (power cap within the settable limits, clock up to the
    maximum) are checked when a replica is built (:func:`fleet.frontier.make_replica`).
    """

    model: str
    accelerator: str
    tp: int = 1
    ep: int = 1
    precision: str = "bf16"
    kv_precision: str | None = None
    power_cap_w: float | None = None
    locked_clock_mhz: float | None = None
    max_batch: int = DEFAULT_MAX_BATCH
    constants: str = "calibrated"
    device_constants: DeviceConstants | None = field(default=None, repr=False)
    stack: str = DEFAULT_STACK

    def __post_init__(self) -> None:
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731
        for k in ("model", "accelerator"):
            v = getattr(self, k)
            if not isinstance(v, str) or not v.strip():
                raise ConfigurationError(f"{k} must be a catalog name, got {v!r}")
        set_("model", _canonical_model(self.model))
        set_("accelerator", _canonical_accelerator(self.accelerator))
        set_("tp", _pos_int("tensor parallel degree tp", self.tp))
        set_("ep", check_ep(self.model, self.tp, self.ep))
        set_("precision", normalize_precision(self.precision))
        set_("kv_precision", default_kv_precision(self.precision) if self.kv_precision is None
             else normalize_precision(self.kv_precision))
        if self.power_cap_w is not None and self.locked_clock_mhz is not None:
            raise ConfigurationError(f"a power cap ({self.power_cap_w!r} W) and a locked clock "
                                     f"({self.locked_clock_mhz!r} MHz) are exclusive; give one")
        if self.power_cap_w is not None:
            set_("power_cap_w", _pos_float("power cap", self.power_cap_w, "W"))
        if self.locked_clock_mhz is not None:
            set_("locked_clock_mhz", _pos_float("locked clock", self.locked_clock_mhz, "MHz"))
        set_("max_batch", _pos_int("max_batch", self.max_batch))
        c, dc = self.constants, self.device_constants
        if isinstance(c, DeviceConstants):
            if dc is not None:
                raise ConfigurationError("give the device constants once: a label in 'constants' and the set "
                                         "in 'device_constants'")
            c, dc = "custom", c
        if not isinstance(c, str) or not c.strip():
            raise ConfigurationError(f"constants must be 'calibrated', 'physical' or a what-if label, got {c!r}")
        if dc is not None and not isinstance(dc, DeviceConstants):
            raise ConfigurationError(f"device_constants must be a DeviceConstants, got {type(dc).__name__}")
        if c in CONSTANT_SETS and dc is not None:
            raise ConfigurationError(f"constants={c!r} names the catalog's set; a DeviceConstants of your own "
                                     f"needs a label of its own (e.g. 'what-if: ...')")
        if c not in CONSTANT_SETS and dc is None:
            raise ConfigurationError(f"constants={c!r} is not 'calibrated' or 'physical', so it labels a what-if "
                                     f"set: give that DeviceConstants as device_constants")
        set_("constants", c)
        set_("device_constants", dc)
        set_("stack", canonical_stack(self.stack))

    # ------------------------------------------------------------------ derived
    @property
    def calibrated(self) -> bool:
        """Whether the device constants are (based on) the calibrated set."""
        if self.device_constants is not None:
            return bool(self.device_constants.calibrated)
        return self.constants == "calibrated"

    @property
    def is_whatif(self) -> bool:
        return self.device_constants is not None

    def resolve_constants(self) -> DeviceConstants:
        """The :class:`DeviceConstants` this point names."""
        if self.device_constants is not None:
            return self.device_constants
        return load_device_constants(self.constants == "calibrated")

    # ------------------------------------------------------------------ variants (the planner's moves)
    def replace(self, **changes: Any) -> "OperatingPoint":
        """A copy with some fields changed, validated again (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)

    def with_cap(self, power_cap_w: float | None) -> "OperatingPoint":
        """The same deployment at another per-GPU power cap (None: uncapped); drops a locked clock."""
        return dataclasses.replace(self, power_cap_w=power_cap_w, locked_clock_mhz=None)

    def with_clock(self, locked_clock_mhz: float | None) -> "OperatingPoint":
        """The same deployment with the SM clock locked at ``locked_clock_mhz`` (None: free); drops a cap."""
        return dataclasses.replace(self, locked_clock_mhz=locked_clock_mhz, power_cap_w=None)

    def with_constants(self, constants: str, device_constants: DeviceConstants | None = None) -> "OperatingPoint":
        """The same deployment on other device constants (a label, and the set for a what-if)."""
        return dataclasses.replace(self, constants=constants, device_constants=device_constants)

    def with_stack(self, stack: str) -> "OperatingPoint":
        """The same deployment under another serving stack (a name or alias)."""
        return dataclasses.replace(self, stack=stack)

    def resolve_stack(self):
        """The :class:`~fleet.catalog.serving_stack.ServingStack` this point names."""
        from ..catalog.serving_stack import get_serving_stack
        return get_serving_stack(self.stack)

    def uncapped(self) -> "OperatingPoint":
        return dataclasses.replace(self, power_cap_w=None, locked_clock_mhz=None)

    # ------------------------------------------------------------------ reporting
    def label(self) -> str:
        """A one-line description for reports, e.g.
        ``llama-3.1-8b on 1 x H100-SXM, bf16 (KV bf16), cap 400 W, max batch 256, calibrated``."""
        par = f"{self.tp} x {self.accelerator}" + ("" if self.ep == 1 else f" (ep {self.ep})")
        prec = self.precision + ("" if self.kv_precision == self.precision else f" (KV {self.kv_precision})")
        if self.locked_clock_mhz is not None:
            limit = f"clock {self.locked_clock_mhz:g} MHz"
        elif self.power_cap_w is not None:
            limit = f"cap {self.power_cap_w:g} W"
        else:
            limit = "uncapped"
        stack = "" if self.stack == default_stack_name() else f", stack {self.stack}"
        return f"{self.model} on {par}, {prec}, {limit}, max batch {self.max_batch}, {self.constants}{stack}"

    def to_dict(self) -> dict:
        """The fields as plain JSON-able values (the what-if set by its label only)."""
        return {"model": self.model, "accelerator": self.accelerator, "tp": self.tp, "ep": self.ep,
                "precision": self.precision, "kv_precision": self.kv_precision,
                "power_cap_w": self.power_cap_w, "locked_clock_mhz": self.locked_clock_mhz,
                "max_batch": self.max_batch, "constants": self.constants, "stack": self.stack}

    def __str__(self) -> str:
        return self.label()
