"""Small scenarios shared by the tests of the main job (`fleet run`, `fleet check`)."""

from __future__ import annotations

from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]


def small_scenario(tmp_path: Path, name: str = "small", **over) -> Path:
    """Ten minutes of the committed Poisson sample on 2 x H100 (one 2-GPU server)."""
    data = {
        "name": name, "seed": 3, "start_utc": "2023-06-01T10:00:00Z",
        "fleet": {"pools": [{"name": "h100", "accelerator": "H100-SXM", "gpus": 2, "gpus_per_server": 2,
                             "serve": [{"model": "llama-3.1-8b", "tp": 1}]}],
                  "power": {"site_budget_w": 2500}},
        "demand": {"inference": [{"model": "llama-3.1-8b",
                                  "trace": {"path": str(REPO / "traces" / "poisson_1h.csv"), "window": [0, 600]},
                                  "slo": {"ttft_s": 0.5, "tpot_s": 0.05}}]},
        "simulation": {"horizon_s": 600, "telemetry_interval_s": 10},
        "site": {"carbon_intensity": 300, "price": 80, "pue": 1.3},
    }
    for k, v in over.items():
        data[k] = v
    p = tmp_path / f"{name}.yaml"
    p.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")
    return p
