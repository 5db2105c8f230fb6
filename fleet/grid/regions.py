"""A small registry of grid regions and the reference data files that describe them.

A scenario says ``region: caiso`` and gets the 2023 hourly carbon intensity (Electricity Maps), the
2023 hourly wholesale price and, where one exists, a marginal (WattTime MOER) signal, all from the
shared reference data (``../shared/data`` or ``FLEET_SHARED_DATA``).  Names are matched without
regard to case, ``-``/``_``/spaces, and through aliases (``caiso``, ``ERCOT``, ``PJM``, ``DE``, ...).

If the reference data is not there, :func:`load_region_signals` raises a :class:`GridError` that says
which file was expected where, and how to give a file of one's own instead.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence, overload

from ..errors import FleetError, GridError
from ..paths import shared_data_dir
from .readers import read_signal
from .signal import Signal

CI_DIR = "electricitymaps-hourly-ci-2023"
PRICE_DIR = "hourly-electricity-prices-2023"
MOER_DIR = "vessim-watttime-caiso-north-moer"


@dataclass(frozen=True)
class Region:
    """A grid zone and its reference files (paths relative to the shared data folder)."""

    zone: str
    name: str
    timezone: str
    aliases: tuple[str, ...] = ()
    files: dict = field(default_factory=dict)  # kind -> relative path
    notes: str = ""


REGIONS: tuple[Region, ...] = (
    Region("US-CAL-CISO", "California (CAISO)", "America/Los_Angeles", ("caiso", "ciso", "california", "us-ca"),
           {"average_ci": f"{CI_DIR}/US-CAL-CISO_2023_hourly.csv",
            "price": f"{PRICE_DIR}/US-CAL-CISO_prices_2023_utc.csv",
            "marginal_ci": f"{MOER_DIR}/watttime_example.csv"},
           "price: CAISO day-ahead LMP TH_NP15_GEN-APND; marginal: WattTime MOER CAISO_NORTH, "
           "2023-06-08..2023-07-08 only"),
    Region("US-TEX-ERCO", "Texas (ERCOT)", "America/Chicago", ("ercot", "erco", "texas", "us-tx"),
           {"average_ci": f"{CI_DIR}/US-TEX-ERCO_2023_hourly.csv",
            "price": f"{PRICE_DIR}/US-TEX-ERCO_prices_2023_utc.csv"},
           "price: ERCOT day-ahead SPP HB_HUBAVG"),
    Region("US-MIDA-PJM", "PJM", "America/New_York", ("pjm",),
           {"average_ci": f"{CI_DIR}/US-MIDA-PJM_2023_hourly.csv",
            "price": f"{PRICE_DIR}/US-MIDA-PJM_prices_2023_utc.csv"},
           "price: PJM real-time hourly LMP, DOM zone; ends 2023-12-31T04 UTC"),
    Region("US-NY-NYIS", "New York (NYISO)", "America/New_York", ("nyiso", "nyis", "new-york", "ny"),
           {"average_ci": f"{CI_DIR}/US-NY-NYIS_2023_hourly.csv",
            "price": f"{PRICE_DIR}/US-NY-NYIS_prices_2023_utc.csv"},
           "price: NYISO day-ahead LBMP, CAPITL zone"),
    Region("DE-LU", "Germany-Luxembourg", "Europe/Berlin", ("de", "germany", "de_lu"),
           {"average_ci": f"{CI_DIR}/DE-LU_2023_hourly.csv",
            "price": f"{PRICE_DIR}/DE-LU_prices_2023_utc.csv"},
           "price: EPEX day-ahead DE-LU; one hour missing (DST), filled forward"),
    Region("GB", "Great Britain", "Europe/London", ("uk", "great-britain"),
           {"average_ci": f"{CI_DIR}/GB_2023_hourly.csv"},
           "no price file in the reference data"),
    Region("SG", "Singapore", "Asia/Singapore", ("singapore",),
           {"average_ci": f"{CI_DIR}/SG_2023_hourly.csv",
            "price": f"{PRICE_DIR}/SG_prices_2023_utc.csv"},
           "price: USEP (first half hour of each hour)"),
    Region("JP-TK", "Tokyo", "Asia/Tokyo", ("tokyo", "jp", "tk"),
           {"average_ci": f"{CI_DIR}/JP-TK_2023_hourly.csv",
            "price": f"{PRICE_DIR}/JP-TK_prices_2023_utc.csv"},
           "carbon intensity: every hour estimated by Electricity Maps; price: JEPX spot Tokyo area"),
    Region("FR", "France", "Europe/Paris", ("france",),
           {"price": f"{PRICE_DIR}/FR_prices_2023_utc.csv"},
           "no carbon intensity file in the reference data; price: EPEX day-ahead FR, one day missing"),
)

SIGNAL_KINDS = ("average_ci", "marginal_ci", "price")


def _key(name: str) -> str:
    return re.sub(r"[\s_\-]+", "-", name.strip().lower())


_LOOKUP: dict[str, Region] = {}
for _r in REGIONS:
    for _n in (_r.zone, *_r.aliases):
        _LOOKUP[_key(_n)] = _r


def region(name: str) -> Region:
    """The :class:`Region` called ``name`` (zone id or alias, any case)."""
    r = _LOOKUP.get(_key(str(name)))
    if r is None:
        raise GridError(f"unknown region {name!r}",
                        expected="one of " + ", ".join(f"{r.zone} ({'/'.join(r.aliases)})" for r in REGIONS)
                        + ", or a signal file of your own")
    return r


def region_file(name: str, kind: str) -> Path:
    """Path of the reference file for ``kind`` of region ``name`` (raises a clear error if absent)."""
    r = region(name)
    if kind not in SIGNAL_KINDS:
        raise GridError(f"unknown signal kind {kind!r} for a region", expected=" | ".join(SIGNAL_KINDS))
    rel = r.files.get(kind)
    if rel is None:
        have = ", ".join(r.files) or "nothing"
        raise GridError(f"region {r.zone} has no {kind} signal in the reference data (it has {have})",
                        expected=f"a {kind} file of your own in the scenario (site.grid.{kind}: path/to/file.csv)")
    try:
        base = shared_data_dir()
    except FleetError as exc:
        raise GridError(f"region {r.zone}: the reference data for its {kind} signal is missing ({exc})",
                        expected=f"the shared data folder with {rel} (set FLEET_SHARED_DATA), or a file of your own "
                                 f"in the scenario (site.grid.{kind}: path/to/file.csv, any format "
                                 "`fleet grid inspect` reads)") from exc
    p = base / rel
    if not p.is_file():
        raise GridError(f"region {r.zone}: reference file missing: {p}",
                        expected=f"{rel} under {base} (or FLEET_SHARED_DATA), or a file of your own in the scenario "
                                 f"(site.grid.{kind}: path/to/file.csv)")
    return p


@overload
def load_region_signals(name: str, kind: str, *, basis: str = ..., currency: str = ..., gaps: str = ...) -> Signal: ...  # type: ignore[overload-overlap]  # a str is also a Sequence[str]; the str form wins
@overload
def load_region_signals(name: str, kind: Sequence[str] | None = None, *, basis: str = ..., currency: str = ...,
                        gaps: str = ...) -> dict[str, Signal]: ...


def load_region_signals(name, kind=None, *, basis="lca", currency="USD", gaps="ffill"):
    """The reference signals of a region.

    ``kind`` a string (``average_ci`` | ``marginal_ci`` | ``price``) returns that one :class:`Signal`;
    a list, or None (every kind the region has), returns ``{kind: Signal}``.  Gaps in a file are filled
    forward by default (``gaps="ffill"``, with a warning; the DE-LU and FR price files have them),
    because a lookup needs a gap-free series.  ``basis`` (lca|direct) and ``currency`` (USD|local) are
    passed to the readers.
    """
    if isinstance(kind, str):
        p = region_file(name, kind)
        sig = read_signal(p, basis=basis, currency=currency, gaps=gaps)
        sig.meta["region"] = region(name).zone
        if sig.kind != kind:
            raise GridError(f"{p} holds a {sig.kind} signal, not {kind}", path=p)
        return sig
    r = region(name)
    kinds = list(kind) if kind is not None else list(r.files)
    return {k: load_region_signals(name, k, basis=basis, currency=currency, gaps=gaps) for k in kinds}
