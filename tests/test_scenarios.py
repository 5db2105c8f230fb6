"""The project's scenarios: each loads, the default needs nothing outside the repository, and
every example meets its expectations (`fleet check`, through the pytest fixture) -- this is how CI
runs scenario regression."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleet.errors import FleetError
from fleet.scenario import load_scenario
from fleet.testing import fleet_check  # noqa: F401  (fixture)

from fleet.data import DEFAULT_SCENARIO
from fleet.sweep import is_sweep_file

SCENARIOS = Path(__file__).resolve().parents[1] / "scenarios"
#: the examples (not sweep files), and the default scenario that ships inside the package (what
#: `fleet run` runs)
FILES = sorted(f for f in SCENARIOS.glob("*.yaml") if not is_sweep_file(f)) + [DEFAULT_SCENARIO]
NEEDS_SHARED = {"region_caiso", "region_de", "region_sg", "mix_azure", "mix_azure_planned", "training_carbon"}
#: scenarios whose traces live in ../shared/data (they do not even load without it)
NEEDS_SHARED_TRACES = {"mix_azure", "mix_azure_planned", "oversub_inference", "oversub_mixed", "oversub_outage"}


def test_the_examples_are_all_there():
    names = {f.stem for f in FILES}
    assert {"default", "hetero_fleet", "whatif_today", "whatif_hbm_half", "power_capped", "power_uncapped",
            "oversub_training", *NEEDS_SHARED, *NEEDS_SHARED_TRACES} <= names


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_scenario_loads_and_carries_expectations(path, request):
    if path.stem in NEEDS_SHARED_TRACES:
        request.getfixturevalue("shared_data")      # a clear failure if ../shared/data is missing
    sc = load_scenario(path)
    assert sc.name == path.stem
    assert len(sc.expectations) >= 5
    uses_region = sc.site.region is not None or any(
        s is not None and s.region is not None for s in (sc.site.carbon_intensity, sc.site.price))
    assert uses_region == (path.stem in NEEDS_SHARED)


def test_default_runs_without_the_shared_data(monkeypatch, tmp_path):
    """A fresh clone has no ../shared: the default scenario must not need it."""
    import fleet.grid.regions as regions
    import fleet.paths as paths

    def missing():
        raise FleetError("reference data not found (test)")

    monkeypatch.setattr(paths, "shared_data_dir", missing)
    monkeypatch.setattr(regions, "shared_data_dir", missing)
    sc = load_scenario(DEFAULT_SCENARIO)
    for d in sc.demand.inference:
        if d.trace is not None:
            assert DEFAULT_SCENARIO.parent in d.trace.path.parents   # package files only
    from fleet.run import run_scenario
    r = run_scenario(sc, None, quiet=True)
    assert r.accounts.value("requests.completed") > 0
    # and a region scenario says clearly what is missing
    with pytest.raises(FleetError, match="site.carbon_intensity.*reference data"):
        run_scenario(SCENARIOS / "region_caiso.yaml", None, quiet=True)


#: scenarios whose planned run takes minutes (mix_azure plans seven accelerator types over a day and
#: verifies every single-type baseline: about 1.5 min); checked by `fleet check` and, in the test
#: suite, with FLEET_SLOW_TESTS=1.  mix_azure_planned pins that plan's verified cost in the default suite.
HEAVY = {"mix_azure"}


@pytest.mark.parametrize("path", FILES, ids=[f.stem for f in FILES])
def test_scenario_meets_its_expectations(path, fleet_check, request):  # noqa: F811 (the imported fixture)
    if path.stem in HEAVY and not os.environ.get("FLEET_SLOW_TESTS"):
        pytest.skip(f"{path.name}: its planned run takes minutes; FLEET_SLOW_TESTS=1 checks it "
                    "(mix_azure_planned pins the plan)")
    if path.stem in NEEDS_SHARED | NEEDS_SHARED_TRACES:
        request.getfixturevalue("shared_data")      # a clear failure if ../shared/data is missing
    res = fleet_check(path)
    assert res.outcomes and all(o.ok for o in res.outcomes)
