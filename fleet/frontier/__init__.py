"""The narrow waist: time-energy frontiers per unit of work and per operating point.

Everything above this package (sim, plan, account, report) knows the hardware only through
:class:`ServingProfile` (and the frontier built from it).
"""

from .facts import AcceleratorPower, accelerator_power, canonical_model
from .operating_point import DEFAULT_MAX_BATCH, OperatingPoint
from .profile import ServingProfile
from .build import build_serving_profile, make_replica, operating_point
from .frontier import ServingFrontier, build_serving_frontier, operating_point_breakdown, pareto_mask

__all__ = ["OperatingPoint", "DEFAULT_MAX_BATCH", "operating_point", "ServingProfile", "AcceleratorPower", "accelerator_power", "canonical_model", "build_serving_profile", "make_replica", "ServingFrontier",
           "build_serving_frontier", "operating_point_breakdown", "pareto_mask"]
