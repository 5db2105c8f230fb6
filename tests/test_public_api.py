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


def test_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError):
        fleet.no_such_thing  # noqa: B018


def test_import_is_light():
    """`import fleet` must not drag in the heavy layers (the CLI starts on every command)."""
    code = "import sys, fleet; print(' '.join(m for m in ('pandas', 'matplotlib', 'ortools', 'simpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == ""
