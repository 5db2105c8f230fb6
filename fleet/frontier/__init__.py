"""The narrow waist: time-energy frontiers per unit of work and per operating point.

Everything above this package (sim, plan, account, report) knows the hardware only through
:class:`ServingProfile` (and the frontier built from it).
"""

from .profile import ServingProfile

__all__ = ["ServingProfile"]
