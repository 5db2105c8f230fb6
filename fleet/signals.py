"""The scenario's site, resolved for a simulated window: grid carbon intensity, electricity price
and PUE as signals, and the accounting facts of its accelerators.

This is resolved once, before planning (the planner needs hourly intensity and prices) and
again for accounting, by the same functions, so the plan and the report read the same numbers.
A scenario without a site signal gets stated default constants, so a fresh clone runs without
any external data.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from .accounting import (SERVER_EMBODIED_KGCO2E, SERVER_EMBODIED_SOURCE, SLO, AcceleratorFacts,
                      AccountingInputs, SignalInput)
from .errors import FleetError, ScenarioError
from .scenario import Scenario, SignalSpec

#: Stated defaults when a scenario names no grid signal (so a fresh clone runs with no data).
DEFAULT_CI_G_PER_KWH = 250.0
DEFAULT_PRICE_USD_PER_MWH = 60.0
DEFAULT_SIGNAL_NOTE = "default constant (no site signal in the scenario)"


# ------------------------------------------------------------------------------ accounting inputs
def resolve_signal(spec: SignalSpec | None, site_region: str | None, kind: str, sc: Scenario, horizon_s: float,
            default: float, unit: str, sources: list[str]) -> SignalInput:
    """Resolve a site signal (constant, region or file) for the simulated window."""
    field = {"average_ci": "carbon_intensity", "price": "price", "pue": "pue"}[kind]
    if spec is None and site_region is not None and kind != "pue":
        spec = SignalSpec(region=site_region)
    if spec is None:
        return SignalInput(default, unit, f"{default:g} {unit}, {DEFAULT_SIGNAL_NOTE}")
    if spec.constant is not None:
        shown = f"{spec.constant:g}" + (f" {unit}" if unit != "1" else "")
        return SignalInput(float(spec.constant), unit, f"constant {shown} (scenario)")
    from . import grid

    start = sc.start_utc
    try:
        if spec.region is not None:
            k = "marginal_ci" if (kind == "average_ci" and spec.signal == "marginal") else kind
            sig = grid.load_region_signals(spec.region, k, basis=spec.basis, gaps=spec.gaps)
            reg = grid.region(spec.region)
            what = {"average_ci": f"Electricity Maps 2023 hourly {spec.basis.upper()} average intensity",
                    "marginal_ci": "WattTime MOER (marginal)", "price": "2023 hourly wholesale price"}[k]
            desc = f"{what}, {reg.zone}"
            sources.append(f"{desc}: {sig.source}")
        else:
            assert spec.file is not None, "a signal spec names a region, a file or a value (checked on load)"
            path = spec.file if spec.file.is_absolute() else (sc.base_dir / spec.file)
            sig = grid.read_signal(path, basis=spec.basis, gaps=spec.gaps)
            desc = f"{path.name} ({sig.kind})"
            sources.append(f"{field}: {path}")
        sig = sig.for_window(start, horizon_s, year_shift=spec.year_shift)
        if "year_shift" in sig.meta:
            desc += f", moved from {sig.meta['year_shift'].get('from')} to the simulated year"
    except FleetError as exc:
        raise ScenarioError(str(exc), path=sc.path, field=f"site.{field}") from exc
    if kind == "pue":
        if float(np.min(sig.values)) < 1.0:
            raise ScenarioError("PUE below 1 in the series", path=sc.path, field="site.pue")
    return SignalInput(sig, unit if kind != "pue" else "1", desc)


def _canon_model(name: str) -> str:
    from .catalog import get_model

    try:
        return get_model(name).name
    except FleetError:
        return name


def accounting_inputs(sc: Scenario, horizon_s: float) -> tuple[AccountingInputs, list[str], str]:
    """AccountingInputs from the scenario's site and accounting sections and the catalog;
    also the data sources used and the carbon signal type ('average' | 'marginal')."""
    from .catalog import get_accelerator

    sources: list[str] = []
    site = sc.site
    ci = resolve_signal(site.carbon_intensity, site.region, "average_ci", sc, horizon_s, DEFAULT_CI_G_PER_KWH,
                 "gCO2e/kWh", sources)
    price = resolve_signal(site.price, site.region, "price", sc, horizon_s, DEFAULT_PRICE_USD_PER_MWH,
                    "USD/MWh", sources)
    pue = resolve_signal(site.pue, None, "pue", sc, horizon_s, 1.2, "1", sources)
    carbon_signal = site.carbon_intensity.signal if site.carbon_intensity is not None else "average"
    a = sc.accounting
    facts: dict[str, AcceleratorFacts] = {}
    for p in sc.fleet.pools:
        spec = get_accelerator(p.accelerator)
        src = spec.sources if hasattr(spec, "sources") else {}
        f = AcceleratorFacts(spec.name, spec.embodied_kgco2e, src.get("embodied_source", "catalog"),
                             spec.purchase_usd, spec.price_usd_per_gpu_hour, src.get("price_source", "catalog"),
                             spec.tdp_w)
        for key, ov in a.accelerators.items():
            try:
                same = get_accelerator(key).name == spec.name
            except FleetError as exc:
                raise ScenarioError("unknown accelerator", path=sc.path,
                                    field=f"accounting.accelerators.{key}") from exc
            if same:
                f = AcceleratorFacts(
                    spec.name,
                    ov.embodied_kgco2e if ov.embodied_kgco2e is not None else f.embodied_kgco2e,
                    ov.source if ov.embodied_kgco2e is not None else f.embodied_source,
                    ov.purchase_usd if ov.purchase_usd is not None else f.purchase_usd,
                    ov.price_usd_per_gpu_hour if ov.price_usd_per_gpu_hour is not None else f.price_usd_per_gpu_hour,
                    ov.source if (ov.purchase_usd is not None or ov.price_usd_per_gpu_hour is not None)
                    else f.price_source, f.tdp_w)
        facts[spec.name] = f
        facts[p.accelerator] = f
    slo: dict[str, SLO] = {}
    for d in sc.demand.inference:
        s = SLO(ttft_s=d.slo.ttft_s or math.inf, tpot_s=d.slo.tpot_s or math.inf, e2e_s=d.slo.e2e_s or math.inf)
        slo[d.model] = s
        slo[_canon_model(d.model)] = s
    inputs = AccountingInputs(
        carbon_intensity=ci, price=price, pue=pue, accelerators=facts, carbon_signal=carbon_signal,
        lifetime_years=a.lifetime_years,
        lifetime_source="LLMCarbon (ICLR 2024): 5-year hardware lifetime" if a.lifetime_years == 5.0
        else "scenario accounting.lifetime_years",
        server_embodied_kgco2e=a.server_embodied_kgco2e if a.server_embodied_kgco2e is not None
        else SERVER_EMBODIED_KGCO2E,
        server_embodied_source=a.server_embodied_source or (SERVER_EMBODIED_SOURCE if a.server_embodied_kgco2e
                                                            is None else "scenario"),
        cost_model=a.cost_model, amortisation_years=a.amortisation_years, server_capex_usd=a.server_capex_usd,
        slo=slo)
    return inputs, sources, carbon_signal



def hourly(sig: SignalInput, start_utc, hours: int) -> np.ndarray:
    """The signal's mean over each of ``hours`` hours from ``start_utc`` (a float array)."""
    times = pd.date_range(pd.Timestamp(start_utc), periods=int(hours), freq="h")
    return np.asarray(sig.at(times), dtype=float)
