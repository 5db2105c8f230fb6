"""The curated public API: every advertised name resolves, lazily, to the real object."""

from __future__ import annotations

import subprocess
import sys

import pytest

import fleet


@pytest.mark.parametrize("name", sorted(fleet._LAZY))
def test_every_public_name_resolves(name):
    obj = getattr(fleet, name)
    assert obj is not None
    assert name in dir(fleet) and name in fleet.__all__


_KINDS_CHILD = r"""
import importlib, inspect, json, pkgutil, sys
import fleet

def kinds():
    out = {}
    for name in fleet.__all__:
        obj = getattr(fleet, name)
        out[name] = ("str" if isinstance(obj, str) else "class" if inspect.isclass(obj)
                     else "function" if inspect.isfunction(obj) else "module" if inspect.ismodule(obj)
                     else type(obj).__name__)
    return out

if sys.argv[1] == "after":
    for m in pkgutil.walk_packages(fleet.__path__, "fleet."):
        if m.name != "fleet.__main__":
            importlib.import_module(m.name)
print(json.dumps(kinds()))
"""


def _documented_kind(name: str) -> str:
    """The rule the public API follows (and its docs state): ``__version__`` is a string, names in
    CamelCase are classes, every other public name is a function.  No public name is a module."""
    if name == "__version__":
        return "str"
    return "class" if name[0].isupper() else "function"


def test_every_public_name_is_what_the_docs_say_before_and_after_importing_everything(repo_root):
    """`fleet.account` was the function until `fleet.run` imported the module of the same name,
    which then replaced it (calling it raised "'module' object is not callable").  In a fresh
    interpreter each: the kind of every public name on its own, and after importing every submodule
    of the package first."""
    import json
    import os
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(repo_root)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    want = {name: _documented_kind(name) for name in fleet.__all__}
    for when in ("before", "after"):
        out = subprocess.run([sys.executable, "-c", _KINDS_CHILD, when], capture_output=True, text=True,
                             env=env, cwd=repo_root, timeout=300)
        assert out.returncode == 0, out.stderr[-3000:]
        got = json.loads(out.stdout.strip().splitlines()[-1])
        assert {k: v for k, v in got.items() if v != want[k]} == {}, when


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        fleet.no_such_thing  # noqa: B018


def test_import_is_light():
    """`import fleet` must not drag in the heavy layers (the CLI starts on every command)."""
    code = "import sys, fleet; print(' '.join(m for m in ('pandas', 'matplotlib', 'ortools', 'simpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""


def test_simulate_takes_a_path_or_a_loaded_scenario(repo_root):
    path = repo_root / "scenarios" / "power_uncapped.yaml"
    a = fleet.simulate(path)
    b = fleet.simulate(fleet.load_scenario(path))
    assert len(a.requests) == len(b.requests) > 0
    assert a.pools["it_energy_j"].sum() == b.pools["it_energy_j"].sum()


LAYERS = {  # DESIGN.md: what each layer may import from fleet (besides errors, paths, _io)
    "catalog": set(),
    "hardware": {"catalog"},
    "workload": {"catalog"},
    "grid": set(),
    "frontier": {"hardware", "workload", "catalog"},
    "sim": {"frontier", "workload", "grid"},
    "plan": {"frontier", "workload", "grid"},
    "report": {"accounting", "sim.result"},
}


def test_foundation_modules_import_no_layer(repo_root):
    import re

    for name in ("errors", "paths", "_io", "_yaml", "limits"):
        text = (repo_root / "fleet" / f"{name}.py").read_text(encoding="utf-8")
        targets = {m.group(1).split(".")[0] for m in re.finditer(r"^\s*from \.([\w.]*) import", text, re.M)}
        assert targets <= {"errors", "paths", "_io", "_yaml", "limits"}, (name, targets)


@pytest.mark.parametrize("layer", sorted(LAYERS))
def test_imports_point_down_the_layers(layer, repo_root):
    """`sim` and `plan` know the hardware only through frontiers; no layer imports one above it."""
    import re

    # foundation modules every layer may use: errors, paths, atomic output (_io), the strict YAML
    # loader (_yaml) and the stated size limits (limits); none of them imports a layer
    allowed = LAYERS[layer] | {layer, "errors", "paths", "_io", "_yaml", "limits"}
    bad = []
    for f in sorted((repo_root / "fleet" / layer).glob("*.py")):
        for m in re.finditer(r"^\s*from (\.+|fleet\.)([\w.]*) import|^\s*import fleet\.([\w.]*)",
                             f.read_text(encoding="utf-8"), re.M):
            dots, target = m.group(1) or "", m.group(2) or m.group(3) or ""
            if dots == ".":          # same package
                continue
            top = target.split(".")[0]
            if target in allowed or top in allowed:
                continue
            bad.append(f"{f.name}: {m.group(0).strip()}")
    assert bad == []
