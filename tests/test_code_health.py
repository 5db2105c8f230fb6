"""Code health: errors keep their cause, readers let our own bugs surface, no backend switching,
no import fallbacks for our own modules, no notes about numbered issues."""

from __future__ import annotations

import ast
import re

import pytest

import fleet.workload.traces as traces
from fleet.cli import main
from fleet.errors import FleetError, GridError, TraceError

from _scenarios import REPO

SOURCES = sorted((REPO / "fleet").rglob("*.py"))


def _src(p):
    return p.read_text(encoding="utf-8")


def test_no_error_hides_its_cause():
    """`raise ... from None` hid the cause even under --verbose (63 places): chain it instead."""
    bad = [f"{p.relative_to(REPO)}:{i}" for p in SOURCES for i, line in enumerate(_src(p).splitlines(), 1)
           if re.search(r"\bfrom None\s*$", line)]
    assert bad == []


def test_verbose_shows_the_cause(tmp_path):
    """The one-line message stays as it was; with --verbose the traceback carries the original error."""
    bad = tmp_path / "ci.csv"
    bad.write_bytes("datetime,carbon_intensity\n2023-01-01T00:00:00Z,10\n".encode() + b"\xe9\xff,1\n")
    assert main(["grid", "inspect", str(bad)]) == 2
    with pytest.raises(GridError, match="not UTF-8") as info:
        main(["-v", "grid", "inspect", str(bad)])
    assert isinstance(info.value.__cause__, UnicodeDecodeError)


@pytest.mark.parametrize("reader", ["read_trace", "iter_trace_chunks"])
def test_trace_readers_let_bugs_be_bugs(reader, monkeypatch, tmp_path):
    """Both trace readers turned ANY exception into "could not read the trace", our bugs included.
    A parser's error on bad bytes is still a TraceError (with its cause); a TypeError is a bug."""
    path = tmp_path / "t.csv"
    path.write_text("arrival_s,input_tokens,output_tokens\n0,1,1\n", encoding="utf-8")
    read = getattr(traces, reader)

    def run():
        out = read(path)
        return out if reader == "read_trace" else list(out)

    def parser_error(*a, **k):
        raise ValueError("malformed bytes")

    def bug(*a, **k):
        raise TypeError("a bug in fleet")

    inner = "_read_trace" if reader == "read_trace" else "_iter_trace_chunks"
    monkeypatch.setattr(traces, inner, parser_error)
    with pytest.raises(TraceError, match="could not read the trace") as info:
        run()
    assert isinstance(info.value.__cause__, ValueError)
    monkeypatch.setattr(traces, inner, bug)
    with pytest.raises(TypeError, match="a bug in fleet"):
        run()
    assert not issubclass(TypeError, FleetError)


def test_library_never_chooses_a_matplotlib_backend():
    bad = [str(p.relative_to(REPO)) for p in SOURCES
           if p.name != "cli.py" and re.search(r"matplotlib\.use\(|import matplotlib\.pyplot|from matplotlib import pyplot",
                                                 _src(p))]
    assert bad == []


def _own_import(node: ast.stmt) -> bool:
    return (isinstance(node, ast.ImportFrom) and (node.level > 0 or (node.module or "").startswith("fleet"))) or \
        (isinstance(node, ast.Import) and any(a.name.startswith("fleet") for a in node.names))


def _catches_import_error(h: ast.ExceptHandler) -> bool:
    names = [n.id for n in ast.walk(h.type) if isinstance(n, ast.Name)] if h.type is not None else ["*"]
    return any(n in ("ImportError", "ModuleNotFoundError", "Exception", "*") for n in names)


def test_no_import_fallbacks_for_our_own_modules():
    """`try: from .x import y / except ImportError:` for a module of this package hides a broken
    package behind a degraded result; our own modules are always there."""
    bad = []
    for p in SOURCES:
        for node in ast.walk(ast.parse(_src(p))):
            if isinstance(node, ast.Try) and any(_own_import(s) for s in node.body) \
                    and any(_catches_import_error(h) for h in node.handlers):
                bad.append(f"{p.relative_to(REPO)}:{node.lineno}")
    assert bad == []


def test_no_notes_about_numbered_issues():
    """Comments such as '(issue 4)' or '# issue 5 section' describe how the code was built, not what it does."""
    bad = [f"{p.relative_to(REPO)}:{i}" for p in SOURCES for i, line in enumerate(_src(p).splitlines(), 1)
           if re.search(r"\bissue \d", line, re.I)]
    assert bad == []


#: top-level definitions that are used from outside the repository only: the package's lazy
#: attribute hooks, and two helpers for user-written trace transformations
_USED_FROM_OUTSIDE = {"__getattr__", "__dir__", "log_transform", "empty_requests"}


def test_no_dead_top_level_functions():
    """A function or class defined at module level and named nowhere else in the package, the
    tests or the README is dead code (an unused validation-error formatter, an unused Zeus
    helper, an unused embodied-carbon note were found this way)."""
    texts = {p: _src(p) for p in SOURCES + sorted((REPO / "tests").glob("*.py"))}
    corpus = "\n".join(texts.values()) + (REPO / "README.md").read_text(encoding="utf-8")
    dead = []
    for p in SOURCES:
        for node in ast.parse(texts[p]).body:
            if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name not in _USED_FROM_OUTSIDE \
                    and len(re.findall(rf"\b{re.escape(node.name)}\b", corpus)) <= 1:
                dead.append(f"{p.relative_to(REPO)}:{node.lineno} {node.name}")
    assert dead == []
