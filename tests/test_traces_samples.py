"""The committed samples in traces/ are reproduced byte for byte by the commands in
traces/README.md (the commands are read from the README, so the two cannot drift apart)."""

from __future__ import annotations

import shlex

import pytest

from fleet.cli import main
from fleet.workload.jobs import read_jobs
from fleet.workload.traces import read_trace, trace_stats


def _commands(repo_root):
    text = (repo_root / "traces" / "README.md").read_text()
    block = text.split("```sh", 1)[1].split("```", 1)[0]
    return [shlex.split(line) for line in block.splitlines() if line.startswith("fleet trace")]


def test_readme_lists_every_sample(repo_root):
    outs = sorted(c[c.index("-o") + 1] for c in _commands(repo_root))
    files = sorted(f"traces/{p.name}" for p in (repo_root / "traces").iterdir() if p.suffix == ".csv")
    assert outs == files and len(files) >= 3


def test_regenerating_each_sample_gives_the_same_bytes(repo_root, tmp_path, capsys):
    for argv in _commands(repo_root):
        i = argv.index("-o")
        committed = repo_root / argv[i + 1]
        fresh = tmp_path / committed.name
        assert main(argv[1:i + 1] + [str(fresh)] + argv[i + 2:]) == 0
        assert committed.stat().st_size < 1_000_000
        assert fresh.read_bytes() == committed.read_bytes(), (
            f"{committed} differs from a fresh run of: {' '.join(argv)} (numpy stream change? "
            "regenerate and re-commit)")
    capsys.readouterr()


def test_default_scenario_sample_is_small_and_as_documented(repo_root):
    df = read_trace(repo_root / "traces" / "diurnal_24h_llama8b.csv")
    st = trace_stats(df)
    assert 2000 <= st["rows"] <= 6000                      # a default run must stay fast
    assert st["mean_rate_rps"] == pytest.approx(0.05, rel=0.05)
    assert set(df["model"].astype(str)) == {"llama-3.1-8b"}
    jobs = read_jobs(repo_root / "traces" / "jobs_seren_7d.csv")
    assert len(jobs) == 164 and jobs["gpus"].max() <= 64
