"""Static checks as part of the test suite: ruff (the rules in pyproject.toml [tool.ruff]) over the
package and the tests, and mypy (pyproject.toml [tool.mypy]: the package, with the seams between
the layers fully typed).  A finding fails the test and is printed."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys

import pytest

from _scenarios import REPO


def _tool(name: str) -> None:
    if importlib.util.find_spec(name) is None:
        msg = f"{name} is not installed (pip install -e '.[test]')"
        if os.environ.get("CI"):
            pytest.fail(msg + "; CI installs the test extra", pytrace=False)
        pytest.skip(msg)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=REPO, capture_output=True, text=True, timeout=600)


def test_ruff_finds_nothing():
    _tool("ruff")
    out = _run("ruff", "check", "--no-cache", "fleet", "tests")
    assert out.returncode == 0, out.stdout + out.stderr


def test_mypy_finds_nothing():
    _tool("mypy")
    out = _run("mypy", "--config-file", str(REPO / "pyproject.toml"))
    assert out.returncode == 0, out.stdout + out.stderr


def test_warnings_are_errors(pytestconfig):
    """pyproject.toml runs the suite with every warning an error (a test that expects one says
    so with pytest.warns); any ignore listed after it must carry its reason in a comment."""
    assert pytestconfig.getini("filterwarnings")[0] == "error"
