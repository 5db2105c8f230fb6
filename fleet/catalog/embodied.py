"""ACT-style embodied-carbon estimate for one accelerator package (kgCO2e).

Method (Gupta et al., "ACT: Designing Sustainable Computer Systems with an Architectural Carbon
Modeling Tool", ISCA 2022), applied to the logic dies and the device memory only::

    E = (die_area / yield) * CPA(node) + memory_gb * CPS_DRAM
    CPA(node) = CI_fab * EPA(node) + GPA(node) + MPA(node)

EPA (fab electricity, kWh/cm^2), GPA (fab direct gases at 95 % abatement, g/cm^2) and MPA (raw
materials, g/cm^2) come from ACT's parameter tables in ``../shared/data/act-embodied-carbon-params``
(read at call time, never copied); CI_fab is ACT's grid intensity of the fab's location (Taiwan
for TSMC, Korea for Samsung); yield 0.875 is ACT's default; CPS_DRAM is ACT's newest DRAM entry
(``ddr4_10nm``, 65 gCO2e/GB).  HBM stacking, interposer, substrate, board and assembly are not
counted, so the result is a lower bound for the package.

The catalog stores the results in ``accelerators.csv`` (column ``embodied_kgco2e``, kind
``estimated``); a test recomputes them with this module.  Used only offline: nothing at run time
needs the shared data.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from ..errors import CatalogError
from ..paths import shared_data

#: ACT default die yield.
YIELD = 0.875
#: DRAM entry of ACT's dram_hynix table used for device memory (gCO2e/GB).
DRAM_KEY = "ddr4_10nm"
#: Fab location per process node (nm) for the parts in the catalog: every 8 nm part is a Samsung
#: 8N GA102 (A10G, A40); everything else is TSMC.
FAB_LOCATION = {8.0: "korea"}
DEFAULT_FAB_LOCATION = "taiwan"
#: Logic dies assumed where the vendor publishes no area: name -> ([(area mm^2, node nm), ...], reason).
ASSUMED_DIES = {
    "B200": ([(1600.0, 4.0)],
             "B200 die area not published: two reticle-limited dies assumed at 800 mm2 each"),
    "MI300X": ([(8 * 115.0, 5.0), (4 * 370.0, 6.0)],
               "MI300X die areas not published by AMD: assumed 8 XCDs x ~115 mm2 (N5) + 4 IODs x ~370 mm2 (N6), "
               "rough third-party die-shot estimates, +-20%"),
    # rows without a vendor die area: ASSUMPTIONS where no vendor publishes die areas (stated, +- as given)
    "GB200": ([(1600.0, 4.0)], "GB200's Blackwell GPU is the B200 silicon: two reticle-limited dies assumed at "
                               "800 mm2 each (area not published)"),
    "B300": ([(1600.0, 4.0)], "B300 (Blackwell Ultra) die area not published: two reticle-limited dies assumed at "
                              "800 mm2 each, as B200"),
    "GB300": ([(1600.0, 4.0)], "GB300's Blackwell Ultra GPU: two reticle-limited dies assumed at 800 mm2 each, "
                               "as B300 (area not published)"),
    "MI325X": ([(8 * 115.0, 5.0), (4 * 370.0, 6.0)],
               "MI325X is the MI300X silicon with HBM3E: same assumed dies, 8 XCDs x ~115 mm2 (N5) + 4 IODs x "
               "~370 mm2 (N6), +-20%"),
    "MI355X": ([(8 * 110.0, 3.0), (2 * 740.0, 6.0)],
               "MI355X: 8 XCDs x 110 mm2 on N3P (AMD at ISSCC 2026, as reported) + 2 IODs on N6 assumed at ~740 mm2 "
               "each (two IODs replace MI300X's four; area not published), +-30%"),
    "Gaudi3": ([(2 * 600.0, 5.0)], "Gaudi 3: two compute dies on TSMC 5 nm, area not published: assumed ~600 mm2 "
                                   "each, +-30%"),
    "TPU-v5e": ([(350.0, 5.0)], "TPU v5e die area and node not published: assumed ~350 mm2 at a 5 nm-class node, "
                                "+-50%"),
    "TPU-v5p": ([(600.0, 5.0)], "TPU v5p die area and node not published: assumed ~600 mm2 at a 5 nm-class node "
                                "(TPU v4 is <600 mm2 at 7 nm, Jouppi et al. ISCA 2023), +-50%"),
    "TPU-v6e": ([(500.0, 5.0)], "TPU v6e (Trillium) die area and node not published: assumed ~500 mm2 at a "
                                "5 nm-class node, +-50%"),
}


def act_node(node_nm: float) -> str:
    """Map a marketing node to the nearest ACT table row."""
    n = float(node_nm)
    if n <= 5:
        return "5nm"
    if n <= 7:
        return "7nm"
    if n <= 8:
        return "8nm"
    if n <= 10:
        return "10nm"
    if n <= 16:
        return "14nm"
    if n <= 20:
        return "20nm"
    return "28nm"


def _read_act_yaml(name: str) -> dict[str, float]:
    """ACT's yaml files hold ``"key" : <number> <unit>`` lines; return key -> number."""
    path: Path = shared_data("act-embodied-carbon-params", name)
    out: dict[str, float] = {}
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.match(r'^"?([^":]+)"?\s*:\s*([0-9.eE+-]+)', line)
        if not m:
            raise CatalogError("unreadable ACT parameter line", path=path, line=i,
                               expected='"key" : <number> <unit>')
        out[m.group(1).strip()] = float(m.group(2))
    return out


@lru_cache(maxsize=1)
def act_tables() -> dict[str, dict[str, float]]:
    return {
        "epa": _read_act_yaml("logic_epa.yaml"),
        "gpa": _read_act_yaml("logic_gpa_95.yaml"),
        "mpa": _read_act_yaml("logic_materials.yaml"),
        "ci": _read_act_yaml("carbon_intensity_location_2023.yaml"),
        "dram": _read_act_yaml("dram_dram_hynix.yaml"),
    }


def cpa_g_per_cm2(node_nm: float, location: str | None = None) -> float:
    """Carbon per die area, gCO2e/cm^2, for a node fabbed at ``location``."""
    t = act_tables()
    node = act_node(node_nm)
    loc = location or FAB_LOCATION.get(float(node_nm), DEFAULT_FAB_LOCATION)
    return t["ci"][loc] * t["epa"][node] + t["gpa"][node] + t["mpa"][node]


def estimate_kgco2e(name: str, die_area_mm2: float | None, node_nm: float | None,
                    memory_gb: float) -> float | None:
    """Embodied carbon of one package in kgCO2e, or None when area or node is unknown."""
    if die_area_mm2 is None or (isinstance(die_area_mm2, float) and die_area_mm2 != die_area_mm2):
        assumed = ASSUMED_DIES.get(name)
        if assumed is None:
            return None
        dies = assumed[0]
    elif node_nm is None:
        return None
    else:
        dies = [(float(die_area_mm2), float(node_nm))]
    logic_g = sum((area / 100.0) / YIELD * cpa_g_per_cm2(node) for area, node in dies)
    mem_g = memory_gb * act_tables()["dram"][DRAM_KEY]
    return (logic_g + mem_g) / 1000.0

