"""Units of grid signals and the conversions at the edges.

Inside ``fleet`` energy is in joules; a grid signal is "something per unit of energy"
(gCO2e/kWh, USD/MWh) or a dimensionless ratio (PUE, unit ``"1"``).  Weighting an energy in J by
such a signal needs the number of joules in the signal's energy denominator, which
:func:`per_energy` gives.

Conversions used by the readers:

* WattTime MOER is published in lbs CO2/MWh.  1 lb = 0.45359237 kg (exact, by definition of the
  international avoirdupois pound), so 1 lb/MWh = 453.59237 g / 1000 kWh = 0.45359237 g/kWh
  (the same as dividing by 2.20462 to get kg/MWh, which equals g/kWh).
* Electricity Maps writes ``gCO₂eq/kWh`` (with a UTF-8 subscript two); we normalise every spelling
  of CO2-equivalent grams to ``gCO2e/kWh``.
"""

from __future__ import annotations

import re

#: g/kWh per lb/MWh (exact: 1 lb = 0.45359237 kg).
LB_PER_MWH_TO_G_PER_KWH = 0.45359237

#: joules in one unit of the energy denominators we accept
ENERGY_UNITS_J = {"J": 1.0, "kJ": 1e3, "MJ": 1e6, "GJ": 1e9, "Wh": 3600.0, "kWh": 3.6e6,
                  "MWh": 3.6e9, "GWh": 3.6e12}

_CO2_SPELLINGS = re.compile(r"g\s*CO(?:2|₂)\s*(?:e|eq|-eq|e\.q\.)?", re.IGNORECASE)


def normalise_unit(unit: str) -> str:
    """Canonical spelling of a unit string (``gCO₂eq/kWh`` -> ``gCO2e/kWh``, ``usd/mwh`` ->
    ``USD/MWh``, ``""``/``"-"``/``"ratio"`` -> ``"1"``)."""
    u = unit.strip()
    if u in ("", "-", "1", "ratio", "dimensionless"):
        return "1"
    u = u.replace(" per ", "/").replace(" / ", "/").replace(" ", "")
    if "/" in u:
        num, den = u.split("/", 1)
        if _CO2_SPELLINGS.fullmatch(num):
            num = "gCO2e"
        elif num.lower() in ("kgco2e", "kgco2eq", "kgco₂eq"):
            num = "kgCO2e"
        elif re.fullmatch(r"[A-Za-z]{3}", num):
            num = num.upper()  # a currency code
        for name in ENERGY_UNITS_J:
            if den.lower() == name.lower():
                den = name
        return f"{num}/{den}"
    return u


def per_energy(unit: str) -> tuple[str, float] | None:
    """Split ``"<numerator>/<energy unit>"`` into (numerator, joules per energy unit).

    ``"1"`` (a ratio such as PUE) returns ``("J", 1.0)``: weighting energy by a ratio gives energy.
    Anything else (e.g. ``degC``) returns None: it cannot weight energy.
    """
    u = normalise_unit(unit)
    if u == "1":
        return ("J", 1.0)
    if "/" not in u:
        return None
    num, den = u.split("/", 1)
    if den not in ENERGY_UNITS_J:
        return None
    return num, ENERGY_UNITS_J[den]


def temperature_to_celsius(values, unit: str):
    """Convert a temperature array from ``degC``/``°C``/``C``, ``K`` or ``degF``/``°F``/``F`` to °C."""
    u = unit.strip().replace("°", "deg").lower()
    if u in ("degc", "c", "celsius"):
        return values
    if u in ("k", "kelvin"):
        return values - 273.15
    if u in ("degf", "f", "fahrenheit"):
        return (values - 32.0) * 5.0 / 9.0
    raise ValueError(f"not a temperature unit: {unit!r} (expected degC, K or degF)")
