"""Loader of the device-level energy constants (``device_energy.yaml``).

Physical constants (measured or modelled, each with unit, plausible range and source) live in
``device_energy.yaml``; values fitted by ``fleet calibrate --write`` live apart in
``device_energy_calibrated.yaml`` and are applied on top only when asked for.  A
:class:`DeviceConstants` is immutable and hashable, so models built from it can be cached, and
:meth:`DeviceConstants.with_values` makes a what-if variant (a new memory at half the pJ/bit)
without touching the files.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Iterable, Mapping


from ..errors import CatalogError

HERE = Path(__file__).resolve().parent
DEVICE_ENERGY_PATH = HERE / "device_energy.yaml"
CALIBRATED_PATH = HERE / "device_energy_calibrated.yaml"

KINDS = ("measured", "modelled", "calibrated", "what-if")


@dataclass(frozen=True)
class Constant:
    """One device constant: ``value`` in ``unit``, allowed ``range`` and its provenance."""

    name: str
    value: float
    unit: str
    lo: float
    hi: float
    source: str
    kind: str

    def in_range(self, v: float | None = None) -> bool:
        v = self.value if v is None else v
        return self.lo <= v <= self.hi


@dataclass(frozen=True)
class DeviceConstants:
    """An immutable set of device constants (name -> :class:`Constant`)."""

    items: tuple[Constant, ...]
    calibrated: bool = False
    _index: dict = field(default=None, compare=False, hash=False, repr=False)  # type: ignore[arg-type]

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {c.name: c for c in self.items})

    def __getitem__(self, name: str) -> float:
        return self.constant(name).value

    def constant(self, name: str) -> Constant:
        try:
            return self._index[name]
        except KeyError as exc:
            raise CatalogError(f"unknown device constant {name!r}", path=DEVICE_ENERGY_PATH,
                               expected="one of " + ", ".join(sorted(self._index))) from exc

    def get(self, name: str, default: float | None = None) -> float | None:
        c = self._index.get(name)
        return default if c is None else c.value

    def names(self) -> list[str]:
        return [c.name for c in self.items]

    def with_values(self, values: Mapping[str, float], *, kind: str = "what-if",
                    source: str = "override", check_range: bool | None = None,
                    calibrated: bool | None = None) -> "DeviceConstants":
        """A copy with some values replaced.

        Calibrated values must stay inside the plausible range; a what-if part (the default
        ``kind``) may go beyond today's range (a memory at half today's pJ/bit) but not below 0.
        ``check_range`` forces the range check on or off."""
        if check_range is None:
            check_range = kind != "what-if"
        new = []
        for c in self.items:
            if c.name in values:
                v = float(values[c.name])
                if not math.isfinite(v) or v < 0:
                    raise CatalogError(f"{c.name} = {v} {c.unit} must be a finite non-negative number",
                                       path=DEVICE_ENERGY_PATH, expected=f"a value in {c.unit}")
                if check_range and not c.in_range(v):
                    raise CatalogError(f"{c.name} = {v} {c.unit} is outside its plausible range",
                                       path=DEVICE_ENERGY_PATH, expected=f"[{c.lo}, {c.hi}] {c.unit}")
                new.append(Constant(c.name, v, c.unit, c.lo, c.hi, source, kind))
            else:
                new.append(c)
        unknown = set(values) - {c.name for c in self.items}
        if unknown:
            raise CatalogError(f"unknown device constant(s) {sorted(unknown)}", path=DEVICE_ENERGY_PATH,
                               expected="names from device_energy.yaml")
        return DeviceConstants(tuple(new), self.calibrated if calibrated is None else calibrated)

    def as_table(self) -> list[dict]:
        return [dict(name=c.name, value=c.value, unit=c.unit, range=[c.lo, c.hi], kind=c.kind,
                     source=c.source) for c in self.items]


def _parse(path: Path, section: str, kinds: Iterable[str]) -> list[Constant]:
    from .._yaml import parse_yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise CatalogError(f"cannot read the catalog file: {exc}", path=path) from exc
    doc = parse_yaml(text, path, error=CatalogError, what="catalog file")
    if not isinstance(doc, dict) or not isinstance(doc.get(section), dict):
        raise CatalogError(f"missing mapping {section!r}", path=path, expected=f"a top-level '{section}:' mapping")
    out = []
    for name, entry in doc[section].items():
        where = f"{section}.{name}"
        if not isinstance(entry, dict):
            raise CatalogError(f"{where} must be a mapping", path=path,
                               expected="value, unit, range, source, kind")
        missing = [k for k in ("value", "unit", "range", "source", "kind") if k not in entry]
        if missing:
            raise CatalogError(f"{where} lacks {missing}", path=path, expected="value, unit, range, source, kind")
        try:
            v = float(entry["value"])
            lo, hi = (float(x) for x in entry["range"])
        except (TypeError, ValueError) as exc:
            raise CatalogError(f"{where}: value and range must be numbers", path=path,
                               expected="value: float, range: [lo, hi]") from exc
        if not (math.isfinite(v) and lo <= v <= hi):
            raise CatalogError(f"{where}: value {v} outside its range [{lo}, {hi}]", path=path,
                               expected="lo <= value <= hi")
        if entry["kind"] not in kinds:
            raise CatalogError(f"{where}: kind {entry['kind']!r}", path=path, expected=" | ".join(kinds))
        if not str(entry["source"]).strip():
            raise CatalogError(f"{where}: empty source", path=path, expected="a citation")
        out.append(Constant(str(name), v, str(entry["unit"]), lo, hi, str(entry["source"]), str(entry["kind"])))
    return out


@lru_cache(maxsize=None)
def _physical(path: str) -> DeviceConstants:
    return DeviceConstants(tuple(_parse(Path(path), "constants", ("measured", "modelled"))))


def load_device_constants(calibrated: bool = False, *, path: Path | None = None,
                          calibrated_path: Path | None = None) -> DeviceConstants:
    """The physical constants, with the calibrated overrides applied when ``calibrated``.

    Raises :class:`CatalogError` if ``calibrated`` is asked for and no calibration file exists.
    """
    base = _physical(str(path or DEVICE_ENERGY_PATH))
    if not calibrated:
        return base
    cpath = Path(calibrated_path or CALIBRATED_PATH)
    if not cpath.exists():
        raise CatalogError("no calibrated constants yet", path=cpath,
                           expected="run `fleet calibrate --data ... --write` first")
    return _calibrated(str(cpath), base)


@lru_cache(maxsize=None)
def _calibrated_cached(cpath: str, mtime: float, base: DeviceConstants) -> DeviceConstants:
    fitted = _parse(Path(cpath), "calibrated", ("calibrated",))
    items = []
    byname = {c.name: c for c in fitted}
    for c in base.items:
        f = byname.pop(c.name, None)
        if f is None:
            items.append(c)
            continue
        if not (c.lo <= f.value <= c.hi):
            raise CatalogError(f"calibrated {c.name} = {f.value} outside the physical range", path=cpath,
                               expected=f"[{c.lo}, {c.hi}] {c.unit}")
        items.append(Constant(c.name, f.value, c.unit, c.lo, c.hi, f.source, "calibrated"))
    if byname:
        raise CatalogError(f"calibrated constants {sorted(byname)} are not in device_energy.yaml", path=cpath,
                           expected="names from device_energy.yaml")
    return DeviceConstants(tuple(items), calibrated=True)


def _calibrated(cpath: str, base: DeviceConstants) -> DeviceConstants:
    return _calibrated_cached(cpath, Path(cpath).stat().st_mtime, base)


def has_calibration(calibrated_path: Path | None = None) -> bool:
    return Path(calibrated_path or CALIBRATED_PATH).exists()
