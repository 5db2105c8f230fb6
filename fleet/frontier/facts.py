"""The few hardware facts the layers above the waist need besides frontiers.

The simulation and the planner know the hardware only through this package: a
:class:`ServingProfile` for the work, and :class:`AcceleratorPower` for the power envelope of an
accelerator (its canonical name, TDP, idle power and settable power-limit range), so that they
never reach into the catalog or the hardware model themselves.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class AcceleratorPower:
    name: str            # canonical catalog name, e.g. "H100-SXM"
    tdp_w: float         # board power at the default limit (W)
    idle_w: float        # model loaded, nothing running (W)
    power_min_w: float   # lowest settable power limit (W)
    power_max_w: float   # highest settable power limit (W)
    #: a GPU powered down in a running server (W; MODELLED, catalog standby_w, schema.yaml
    #: methods.standby); what an inactive replica draws under simulation.inactive: off
    standby_w: float = float("nan")


@lru_cache(maxsize=256)
def accelerator_power(name: str) -> AcceleratorPower:
    """The power envelope of the accelerator called ``name`` (any catalog alias)."""
    from ..hardware.accelerator import build_accelerator

    acc = build_accelerator(name)
    sb = getattr(acc.spec, "standby_w", None)
    return AcceleratorPower(acc.name, float(acc.tdp_w), float(acc.idle_w), float(acc.power_min_w),
                            float(acc.power_max_w), float("nan") if sb is None else float(sb))


@lru_cache(maxsize=1024)
def canonical_model(name: str) -> str:
    """The catalog's short name of a model given by any alias or Hugging Face id."""
    from ..catalog import get_model

    return get_model(name).name
