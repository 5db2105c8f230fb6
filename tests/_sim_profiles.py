"""Hand-made serving profiles with plausible numbers, for the serving-engine tests.

Until ``fleet.frontier.build_serving_profile`` is available these stand in for a real profile.
Numbers (H100-SXM + Llama-3.1-8B, bf16): decode iteration ~6 ms + 20 us per sequence (weights
read once per iteration at ~3 TB/s) plus 40 ns per context token (128 KiB of KV per token at
~3.3 TB/s); prefill ~27 us per prompt token (16 GFLOP/token at ~600 TFLOP/s); power from
~350 W (small batch) towards ~650 W (large batch); 100 W idle; ~420 k KV tokens.
These are modelled guesses for testing the engine, not calibrated hardware data.
"""

from __future__ import annotations

import numpy as np

from fleet.frontier.profile import ServingProfile


def toy_profile(max_batch: int = 256, kv_tokens: int = 420_000, speed: float = 1.0,
                power_scale: float = 1.0, max_context: int = 131_072, idle_w: float = 100.0,
                accelerator: str = "H100-SXM", cap_w: float = 700.0) -> ServingProfile:
    """``speed`` > 1 makes every step faster (e.g. 0.5 for an A100-like replica)."""
    b = np.arange(max_batch + 1, dtype=np.float64)
    t0 = (6e-3 + 2e-5 * b) / speed
    t1 = np.full(max_batch + 1, 4e-8) / speed
    p = (350.0 + 300.0 * (1.0 - np.exp(-b / 32.0))) * power_scale
    e0 = t0 * p
    e1 = t1 * 600.0 * power_scale
    t0[0] = t1[0] = e0[0] = e1[0] = 0.0
    pre_t = (4e-3 / speed, 2.7e-5 / speed, 1.5e-12 / speed)
    pre_e = tuple(650.0 * power_scale * x for x in pre_t)
    return ServingProfile(
        model="llama-3.1-8b", accelerator=accelerator, tp=1, precision="bf16", kv_precision="bf16",
        power_cap_w=cap_w, clock_fraction=1.0, max_batch=max_batch, kv_capacity_tokens=kv_tokens,
        max_context_tokens=max_context, idle_power_w=idle_w * power_scale, dec_t0=t0, dec_t1=t1,
        dec_e0=e0, dec_e1=e1, pre_t=pre_t, pre_e=pre_e)
