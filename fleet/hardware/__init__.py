"""Accelerators and their first-principles time/energy model.

* :mod:`.accelerator` - an :class:`Accelerator`: a catalog spec sheet + the device constants
  (``fleet/catalog/device_energy.yaml``); nothing GPU-specific lives anywhere else.
* :mod:`.energy` - roofline time and compute + memory + interconnect + static energy of a unit
  of work (vectorised over numpy arrays), with power caps and locked clocks.
* :mod:`.dvfs` - the voltage-frequency curve and the cap -> clock solver.
* :mod:`.calibrate` - bounded least-squares fits of a few constants to measurements (kept apart
  from the physical values).
* :mod:`.zeus` - validation (and fit) of the DVFS shape against the Zeus power-limit curves.
* :mod:`.bounds` - physical lower bounds (Landauer / learning-in-memory).
"""

from .accelerator import Accelerator, build_accelerator
from .energy import Device, Evaluation, OperatingPoint, WorkArrays, evaluate  # noqa: F401 (OperatingPoint: old name)

__all__ = ["Accelerator", "build_accelerator", "Device", "Evaluation", "WorkArrays", "evaluate"]
