"""Output locations (issue 8): a report folder is swapped so that the old or the new report is whole
at every instant (kills between steps simulated in a subprocess), temporaries of killed runs are
cleaned, and every unusable location is a clean error (exit 2) naming the path and the reason,
with nothing partial left behind."""

from __future__ import annotations

import errno
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fleet import _io
from fleet.cli import main
from fleet.errors import OutputError

from _scenarios import REPO, small_scenario

SYNTH = ["trace", "synth", "--profile", "poisson", "--rate", "1", "--hours", "0.01", "--seed", "1"]


def _fast(tmp_path: Path, name: str = "small") -> Path:
    return small_scenario(tmp_path, name, report={"pdf": False, "png": False})


def _write(tmp: Path, what: str) -> None:
    (tmp / "summary.json").write_text(what)
    (tmp / "table.csv").write_text(what * 100)


def _state(d: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(d.iterdir())}


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


# ---------------------------------------------------------------- the swap, killed between steps
KILL = textwrap.dedent("""
    import os, sys
    from pathlib import Path
    from fleet import _io
    target, step, exchange = Path(sys.argv[1]), sys.argv[2], sys.argv[3] == "1"
    if not exchange:
        _io._exchange = lambda a, b: False
    real_rename, real_rmtree, real_exchange = os.rename, _io.shutil.rmtree, _io._exchange
    def die(*a, **k):
        os._exit(9)
    if step == "writing":
        with _io.atomic_dir(target, marker="summary.json") as tmp:
            (tmp / "summary.json").write_text("new")
            die()
    calls = {"rename": 0}
    def rename(a, b):
        calls["rename"] += 1
        if step == "between-renames" and calls["rename"] == 2:
            die()
        return real_rename(a, b)
    def rmtree(p, *a, **k):
        if step == "before-cleanup":
            die()
        return real_rmtree(p, *a, **k)
    _io.os.rename = rename
    _io.shutil.rmtree = rmtree
    with _io.atomic_dir(target, marker="summary.json") as tmp:
        (tmp / "summary.json").write_text("new")
        (tmp / "table.csv").write_text("new" * 100)
""")


@pytest.mark.parametrize("exchange, step", [(True, "writing"), (True, "before-cleanup"),
                                            (False, "writing"), (False, "between-renames"),
                                            (False, "before-cleanup")])
def test_a_kill_at_any_step_leaves_a_whole_report(tmp_path, exchange, step):
    if exchange and not _io._exchange_supported(tmp_path):
        pytest.skip("no renameat2 RENAME_EXCHANGE on this platform / file system")
    target = tmp_path / "rep"
    with _io.atomic_dir(target, marker="summary.json") as tmp:
        _write(tmp, "old")
    old = _state(target)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-c", KILL, str(target), step, "1" if exchange else "0"], env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 9, r.stderr
    # right after the kill: the report folder is whole (old or new), or - only between the two
    # renames of the fallback - missing with the old report whole beside it
    leftovers = [p for p in tmp_path.iterdir() if p.name != "rep"]
    if target.exists():
        assert _state(target) in (old, {"summary.json": "new", "table.csv": "new" * 100})
    else:
        assert step == "between-renames"
        backups = [p for p in leftovers if _io.OLD_TAG in p.name]
        assert len(backups) == 1 and _state(backups[0]) == old
    # the next run recovers the old report if needed and cleans every temporary of the dead run
    _io.recover_and_clean(tmp_path, "rep")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]
    assert _state(target) in (old, {"summary.json": "new", "table.csv": "new" * 100})
    with _io.atomic_dir(target, marker="summary.json") as tmp:
        _write(tmp, "newer")
    assert _state(target)["summary.json"] == "newer"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["rep"]


def test_the_swap_leaves_the_report_whole_at_every_instant(tmp_path, monkeypatch):
    """Observed from inside the swap (the fallback's steps): after each rename either the target
    or its backup is a whole report."""
    target = tmp_path / "rep"
    with _io.atomic_dir(target, marker="summary.json") as tmp:
        _write(tmp, "old")
    seen = []
    real = os.rename

    def rename(a, b):
        real(a, b)
        whole = [d for d in tmp_path.iterdir() if d.is_dir() and (d / "table.csv").is_file()
                 and _state(d).get("summary.json") in ("old", "new") and _io.TMP_TAG not in d.name]
        seen.append(len(whole))

    monkeypatch.setattr(_io, "_exchange", lambda a, b: False)
    monkeypatch.setattr(_io.os, "rename", rename)
    with _io.atomic_dir(target, marker="summary.json") as tmp:
        _write(tmp, "new")
    assert seen and all(n >= 1 for n in seen)
    assert _state(target)["summary.json"] == "new"


def test_stale_temporaries_are_cleaned_and_nothing_else(tmp_path):
    host = _io._host()
    dead = _dead_pid()
    stale = tmp_path / f".rep{_io.TMP_TAG}{host}.{dead}.abc"
    live = tmp_path / f".rep{_io.TMP_TAG}{host}.{os.getppid()}.abc"
    other_host = tmp_path / f".rep{_io.TMP_TAG}ffffff.{dead}.abc"
    foreign = [tmp_path / ".rep.tmp.123", tmp_path / ".rep.old.123", tmp_path / "notes"]
    stale_file = tmp_path / f".x.csv{_io.TMP_TAG}{host}.{dead}.q.csv"
    for d in (stale, live, other_host, *foreign):
        d.mkdir()
        (d / "f").write_text("x")
    stale_file.write_text("partial")
    old = tmp_path / f".gone{_io.OLD_TAG}ffffff.{dead}"
    old.mkdir()
    os.utime(old, (0, 0))           # older than STALE_TEMP_S: its host no longer matters
    with _io.atomic_dir(tmp_path / "rep", marker="summary.json") as tmp:
        _write(tmp, "new")
    names = sorted(p.name for p in tmp_path.iterdir())
    assert stale.name not in names and stale_file.name not in names
    assert live.name in names and other_host.name in names
    assert all(f.name in names for f in foreign)
    assert "gone" in names and old.name not in names      # a stale backup whose target is missing: restored


def test_a_fleet_run_writes_next_to_other_folders_without_touching_them(tmp_path, capsys):
    out = tmp_path / "out"
    (out / "mine").mkdir(parents=True)
    (out / "mine" / "keep.txt").write_text("keep")
    (out / "notes.txt").write_text("keep")
    assert main(["-q", "run", str(_fast(tmp_path)), "-o", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["mine", "notes.txt", "small"]
    assert (out / "mine" / "keep.txt").read_text() == "keep"


# ---------------------------------------------------------------- unusable locations
def test_o_naming_an_existing_file_is_refused(tmp_path, capsys):
    f = tmp_path / "afile"
    f.write_text("precious")
    assert main(["-q", "simulate", str(_fast(tmp_path)), "-o", str(f)]) == 2
    assert "not a folder" in capsys.readouterr().err
    assert f.read_text() == "precious"
    assert main(["-q", "run", str(_fast(tmp_path)), "-o", str(f)]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert f.read_text() == "precious"


def test_a_folder_that_is_not_a_fleet_output_is_not_replaced(tmp_path, capsys):
    d = tmp_path / "home"
    d.mkdir()
    (d / "thesis.tex").write_text("precious")
    assert main(["-q", "simulate", str(_fast(tmp_path)), "-o", str(d)]) == 2
    assert "not a fleet output" in capsys.readouterr().err
    assert (d / "thesis.tex").read_text() == "precious"


@pytest.mark.parametrize("case", ["under-file", "dir", "too-long", "too-long-folder", "dot"])
def test_unusable_file_outputs_are_clean_errors(tmp_path, capsys, case):
    (tmp_path / "afile").write_text("x")
    target = {"under-file": tmp_path / "afile" / "x.csv", "dir": tmp_path,
              "too-long": tmp_path / ("a" * 300 + ".csv"), "too-long-folder": tmp_path / ("d" * 300) / "x.csv",
              "dot": tmp_path / "."}[case]
    before = sorted(p.name for p in tmp_path.iterdir())
    assert main(SYNTH + ["-o", str(target)]) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err and "fleet: error:" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_plot_path_that_is_a_folder_is_refused_before_reading(tmp_path, capsys):
    assert main(["trace", "inspect", str(REPO / "traces" / "poisson_1h.csv"), "--plot", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err
    assert main(["grid", "inspect", "caiso", "--plot", str(tmp_path)]) == 2
    assert "is a folder" in capsys.readouterr().err


@pytest.mark.parametrize("err", [errno.ENOSPC, errno.EROFS, errno.EACCES])
def test_write_failures_are_clean_errors_and_leave_nothing(tmp_path, capsys, monkeypatch, err):
    """A full disk or a read-only / forbidden target while the output is written."""
    import fleet.sim.assemble as A

    out = tmp_path / "sim"
    assert main(["-q", "simulate", str(_fast(tmp_path)), "-o", str(out), "--format", "csv"]) == 0
    old = _state(out)
    capsys.readouterr()

    def fail(*a, **k):
        raise OSError(err, os.strerror(err))

    monkeypatch.setattr(A.pd.DataFrame, "to_csv", fail)
    assert main(["-q", "simulate", str(_fast(tmp_path)), "-o", str(out), "--format", "csv"]) == 2
    msg = capsys.readouterr().err
    assert str(out) in msg and "cannot write" in msg and "Traceback" not in msg
    assert _state(out) == old
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sim", "small.yaml"]


def test_full_disk_writing_a_file_is_a_clean_error(tmp_path, capsys, monkeypatch):
    import pandas as pd

    def full(*a, **k):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(pd.DataFrame, "to_csv", full)
    out = tmp_path / "x.csv"
    assert main(SYNTH + ["-o", str(out)]) == 2
    assert "no space left" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_read_only_folder_is_a_clean_error(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        assert main(SYNTH + ["-o", str(ro / "x.csv")]) == 2
        assert "cannot write" in capsys.readouterr().err
        assert main(["-q", "run", str(_fast(tmp_path)), "-o", str(ro)]) == 2
    finally:
        ro.chmod(0o700)


def test_check_output_helpers_name_the_path_and_reason(tmp_path):
    for bad in ("", ".", ".."):
        with pytest.raises(OutputError):
            _io.check_output_dir(bad)
    with pytest.raises(OutputError, match="too long"):
        _io.check_output_file(tmp_path / ("n" * 256))
