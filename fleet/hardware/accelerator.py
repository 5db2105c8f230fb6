"""An accelerator as the energy model sees it: catalog spec sheet + device constants.

Everything GPU-specific comes from the catalog row (:class:`fleet.catalog.AcceleratorSpec`);
everything physical (pJ/FLOP, pJ/bit, static fraction, DVFS curve) from the shared device
constants (:mod:`fleet.catalog.device_energy`).  A GPU that was never measured is therefore
predicted from its spec sheet alone.

Units: FLOP/s, B/s, J/FLOP, J/B, W, s (SI inside).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..catalog.device_energy import DeviceConstants, load_device_constants
from ..catalog.precision import compute_format
from ..errors import ConfigurationError

#: GPUs that share one scale-up domain (NVLink/NVSwitch or Infinity Fabric) in a server.
GPUS_PER_NODE = 8

#: weight precisions whose GEMMs run at that precision when the GPU has the tensor format;
#: everything else (int4/mxfp4/nf4 weights) is dequantised and multiplied in bf16 (W4A16).
_NATIVE_COMPUTE = {"fp8": "fp8", "int8": "int8", "fp4": "fp4", "bf16": "bf16", "fp16": "fp16",
                   "fp32": "fp32", "tf32": "tf32"}


def _canon_precision(p: str) -> str:
    """The tensor-core format family of a precision name (the one vocabulary,
    :func:`fleet.catalog.precision.compute_format`)."""
    return compute_format(p)


@dataclass(frozen=True)
class Accelerator:
    """One GPU (per-device figures) with the constants of the energy model resolved."""

    spec: Any                       # fleet.catalog.AcceleratorSpec
    constants: DeviceConstants

    # ----------------------------------------------------------------- identity / power
    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def tdp_w(self) -> float:
        return float(self.spec.tdp_w)

    @property
    def idle_w(self) -> float:
        v = getattr(self.spec, "idle_w", None)
        # modelled fallback where no idle power is published: 10% of TDP
        return float(v) if v else 0.10 * self.tdp_w

    @property
    def power_min_w(self) -> float:
        v = getattr(self.spec, "power_min_w", None)
        return float(v) if v else 0.5 * self.tdp_w

    @property
    def power_max_w(self) -> float:
        v = getattr(self.spec, "power_max_w", None)
        return float(v) if v else self.tdp_w

    @property
    def active_base_w(self) -> float:
        """Extra power of a busy GPU at max clock over idle, before any FLOP or byte (W)."""
        return self.constants["static.active_fraction"] * max(self.tdp_w - self.idle_w, 0.0)

    @property
    def memory_bytes(self) -> float:
        """Device memory (B); the catalog reads marketed GPU GB as GiB (see AcceleratorSpec)."""
        return float(self.spec.memory_bytes)

    # ----------------------------------------------------------------- compute
    def compute_precision(self, weight_precision: str) -> str:
        """The tensor-core format the GEMMs of ``weight_precision`` weights run at."""
        p = _NATIVE_COMPUTE.get(_canon_precision(weight_precision), "bf16")
        if self._peak(p) is None:
            for q in ("bf16", "fp16", "fp32"):
                if self._peak(q) is not None:
                    return q
        return p

    def _peak(self, p: str) -> float | None:
        col = {"int8": "peak_int8_tops"}.get(p, f"peak_{p}_tflops")
        v = getattr(self.spec, col, None)
        return float(v) * 1e12 if v else None

    def peak_flops(self, precision: str) -> float:
        p = self.compute_precision(precision)
        v = self._peak(p)
        if v is None:
            raise ConfigurationError(f"{self.name} has no published peak for {precision}")
        return v

    @property
    def matmul_efficiency(self) -> float:
        v = getattr(self.spec, "matmul_efficiency", None)
        return float(v) if v else self.constants["compute.default_matmul_efficiency"]

    def attainable_flops(self, precision: str) -> float:
        """Attainable dense FLOP/s per GPU at max clock (peak x matmul efficiency)."""
        return self.peak_flops(precision) * self.matmul_efficiency

    def j_per_flop(self, precision: str) -> float:
        """Dynamic energy per FLOP at max-clock voltage (J), scaled from 45 nm by process node."""
        p = self.compute_precision(precision)
        c = self.constants
        key = f"compute.pj_per_flop_45nm.{p}"
        e45 = c.get(key)
        if e45 is None:
            e45 = c["compute.pj_per_flop_45nm.bf16"]
        node = float(getattr(self.spec, "process_node_nm", None) or 7.0)
        scale = (node / 45.0) ** c["compute.node_exponent"]
        # tensor-core formats pay operand delivery; fp32 runs on the SIMT pipes (no tensor cores)
        overhead = c["compute.simt_overhead_factor"] if p == "fp32" else c["compute.operand_delivery_factor"]
        return e45 * scale * overhead * 1e-12

    # ----------------------------------------------------------------- memory
    @property
    def peak_bw(self) -> float:
        return float(self.spec.memory_bw_gbs) * 1e9

    @property
    def attainable_bw(self) -> float:
        return self.peak_bw * self.constants["memory.attainable_bw_fraction"]

    @property
    def j_per_byte_memory(self) -> float:
        """DRAM access + on-chip delivery energy per byte (J/B)."""
        c = self.constants
        tech = str(self.spec.memory_tech)
        pj = c.get(f"memory.pj_per_bit.{tech}")
        if pj is None:
            pj = c["memory.pj_per_bit.HBM3"]
        return 8.0 * (pj + c["memory.onchip_pj_per_bit"]) * 1e-12

    @property
    def memory_background_w(self) -> float:
        """Power of the active memory interface (PHY, DLL, refresh) over idle, whatever the traffic (W)."""
        c = self.constants
        k = c.get(f"memory.background_w_per_gbs.{self.spec.memory_tech}")
        if k is None:
            k = c["memory.background_w_per_gbs.HBM3"]
        return k * float(self.spec.memory_bw_gbs)

    def moe_weight_stream_fraction(self, weight_precision: str) -> float:
        """Fraction of the attainable bandwidth at which MoE grouped-GEMM kernels stream expert
        weights of ``weight_precision`` (device constant ``moe.weight_stream_fraction.<p>``, by
        storage format: bf16/fp16 -> bf16, fp8/int8 -> fp8, mxfp4/fp4/int4 -> fp4; 1 if absent)."""
        p = _canon_precision(weight_precision)
        key = {"fp16": "bf16", "int8": "fp8", "int4": "fp4"}.get(p, p)
        v = self.constants.get(f"moe.weight_stream_fraction.{key}")
        return float(v) if v else 1.0

    # ----------------------------------------------------------------- links
    @property
    def scaleup_gpus(self) -> int:
        """Accelerators in one scale-up domain (catalog ``scaleup_gpus``; blank: 8, an HGX/OAM board;
        72 on an NVL72 rack)."""
        v = getattr(self.spec, "scaleup_gpus", None)
        return int(v) if v else GPUS_PER_NODE

    def link_kind(self, gpus: int) -> str:
        """Which link a collective over ``gpus`` GPUs crosses: ``"nvlink"`` (or the vendor's
        scale-up fabric, catalog ``nvlink_gbs``), ``"pcie"`` (no scale-up link) or ``"network"``
        (beyond the scale-up domain)."""
        if gpus > self.scaleup_gpus:
            return "network"
        return "nvlink" if float(getattr(self.spec, "nvlink_gbs", 0.0) or 0.0) > 0 else "pcie"

    def link(self, gpus: int, *, bw_efficiency: float | None = None, latency_s: float | None = None,
             latency_per_gpu_s: float = 0.0) -> tuple[float, float, float]:
        """(bandwidth B/s per GPU one direction, J/B, latency s) of a collective over ``gpus`` GPUs.

        Within a scale-up domain (:attr:`scaleup_gpus`): NVLink (or PCIe where the part has none);
        beyond it: the network.  The serving stack may give the collective's bandwidth efficiency
        and latency (``latency_s`` at 2 GPUs plus ``latency_per_gpu_s`` per GPU beyond 2; over
        PCIe twice that, a modelled hardware factor: each step crosses the host bridge or a PCIe
        switch); None: the device constants ``link.collective_efficiency`` and
        ``link.nvlink_latency_s`` (flat in the GPU count).  The network keeps the device constants.
        """
        c = self.constants
        eff = c["link.collective_efficiency"] if bw_efficiency is None else float(bw_efficiency)
        kind = self.link_kind(gpus)
        if kind == "network":
            eff = c["link.collective_efficiency"]
            return (c["link.network_gbs"] * 1e9 * eff, 8e-12 * c["link.network_pj_per_bit"],
                    c["link.network_latency_s"])
        lat = (c["link.nvlink_latency_s"] if latency_s is None else float(latency_s)) \
            + float(latency_per_gpu_s) * max(int(gpus) - 2, 0)
        if kind == "nvlink":
            nv = float(getattr(self.spec, "nvlink_gbs", 0.0) or 0.0)
            return nv * 1e9 * eff, 8e-12 * c["link.nvlink_pj_per_bit"], lat
        pcie = float(getattr(self.spec, "pcie_gbs", 0.0) or 32.0)
        return pcie * 1e9 * eff, 8e-12 * c["link.pcie_pj_per_bit"], 2.0 * lat

    def network(self) -> tuple[float, float, float]:
        c = self.constants
        return (c["link.network_gbs"] * 1e9 * c["link.collective_efficiency"],
                8e-12 * c["link.network_pj_per_bit"], c["link.network_latency_s"])


def _resolve_spec(gpu):
    if hasattr(gpu, "memory_bw_gbs"):
        return gpu
    from ..catalog import get_accelerator
    return get_accelerator(str(gpu))


@lru_cache(maxsize=256)
def _build(spec_name: str, constants: DeviceConstants) -> Accelerator:
    return Accelerator(_resolve_spec(spec_name), constants)


def build_accelerator(gpu, *, calibrated: bool = False,
                      constants: DeviceConstants | None = None) -> Accelerator:
    """An :class:`Accelerator` from a catalog name (or spec) and the device constants.

    ``constants`` overrides the file constants (what-if parts, calibration in progress).
    """
    consts = constants if constants is not None else load_device_constants(calibrated)
    if hasattr(gpu, "memory_bw_gbs"):
        return Accelerator(gpu, consts)
    spec = _resolve_spec(gpu)
    return _build(spec.name, consts)
