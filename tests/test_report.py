"""Report: the data each figure plots (image-free), the files written, atomic output, and the
rendered PDF pages (page count, every page has content)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from fleet.report import write_report
from fleet.report import figures as F
from fleet.testing import synthetic_run_result


@pytest.fixture(scope="module")
def run():
    return synthetic_run_result(seed=11)


@pytest.fixture(scope="module")
def written(run, tmp_path_factory):
    out = tmp_path_factory.mktemp("rep") / "synthetic"
    write_report(run, out, dpi=60)
    return out


# ------------------------------------------------------------------ formatting
def test_formatting_of_quantities():
    assert F.fmt_si(12345.0, "W") == "12.3 kW"
    assert F.fmt_si(0.0123, "s") == "12.3 ms"
    assert F.fmt_energy(3.6e6 * 2.5) == "2.5 kWh"
    assert F.fmt_energy(3.6e9 * 1.25) == "1.25 MWh"
    assert F.fmt_mass_g(2.5e6) == "2.5 tCO2e"
    assert F.fmt_metric(float("nan"), "J") == "n/a"
    assert F.fmt_metric(7200.0, "s") == "2 h"
    assert F.fmt_metric(3.6e6 * 0.143, "J/1k tokens") == "0.143 kWh/1k tokens"


# ------------------------------------------------------------------ figure data (no images)
def test_summary_data_covers_every_section(run):
    sec = dict(F.summary_data(run))
    assert list(sec)[:6] == ["Fleet", "Energy", "Carbon", "Cost", "Service", "Power peaks against budgets"]
    models = dict(sec["By model, per 1k output tokens"])
    assert set(models) == set(run.accounts.models["model"])
    row = run.accounts.models.set_index("model").loc["m8b"]
    assert models["m8b"].startswith(F.fmt_si(row["it_energy_j_per_1k_tokens"], "J"))
    assert len(sec["Fleet"]) == len(run.accounts.pools) + 1
    energy = dict(sec["Energy"])
    assert energy["IT energy"] == F.fmt_energy(run.accounts.value("energy.it"))
    peaks = sec["Power peaks against budgets"]
    nodes = run.accounts.nodes
    top = nodes.sort_values("peak_to_budget", ascending=False).iloc[0]
    assert peaks[0][0].startswith(top["node"])


def test_fleet_data(run):
    d = F.fleet_data(run)
    assert d["energy_share"].sum() == pytest.approx(1.0)
    assert list(d["pool"]) == list(run.sim.pools["pool"])
    assert (d["busy_fraction"].between(0, 1)).all()


def test_power_levels_data_matches_telemetry_and_budgets(run):
    levels = {ls.level: ls for ls in F.power_levels_data(run)}
    assert set(levels) == {"site", "row", "rack", "pool"}
    site = levels["site"]
    tel = run.sim.power[run.sim.power["node"] == "site"].sort_values("time_s")
    np.testing.assert_allclose(site.power_w["site"], tel["power_w"].to_numpy())
    assert site.budget_w["site"] == pytest.approx(60_000.0)
    assert np.isnan(levels["pool"].budget_w["h100"])


def test_power_levels_data_keeps_the_top_nodes_by_peak(run):
    many = synthetic_run_result(seed=12)
    extra = []
    for k in range(12):
        extra.append(pd.DataFrame({"time_s": [0.0, 60.0], "level": "server", "node": f"s{k}",
                                   "power_w": [100.0 * k, 50.0]}))
    many.sim.power = pd.concat([many.sim.power[many.sim.power["level"] != "server"], *extra])
    ls = F.power_levels_data(many, levels=("server",))[0]
    assert ls.nodes == [f"s{k}" for k in range(11, 11 - F.MAX_LINES, -1)]
    assert ls.hidden == 12 - F.MAX_LINES


def test_power_cdf_data(run):
    d = F.power_cdf_data(run)
    assert set(d) == {"row0", "row1"}
    v, p, b = d["row0"]
    assert np.all(np.diff(v) >= 0) and p[-1] == pytest.approx(1.0)
    tel = run.sim.power[run.sim.power["node"] == "row0"]["power_w"]
    assert v.max() == pytest.approx(tel.max()) and len(v) == len(tel)
    assert b == pytest.approx(0.55 * 60_000.0)


def test_latency_cdf_data(run):
    d = F.latency_cdf_data(run)
    req = run.sim.requests
    done = req[(req["status"] == "completed") & (req["model"] == "m8b")]
    v, slo = d["ttft_s"]["m8b"]
    np.testing.assert_allclose(v, np.sort(done["ttft_s"].to_numpy()))
    assert slo == pytest.approx(0.5)
    assert np.isnan(d["e2e_s"]["m8b"][1])          # no e2e SLO set


def test_energy_per_token_data(run):
    d = F.energy_per_token_data(run).set_index("pool")
    pools = run.accounts.pools.set_index("pool")
    assert set(d.index) == {"h100", "a100"}                 # serving pools only
    exp = pools.loc["h100", "gpu_energy_j"] / pools.loc["h100", "output_tokens"]
    assert d.loc["h100", "simulated_gpu_j"] == pytest.approx(exp)
    assert d.loc["h100", "gap_ratio"] == pytest.approx(exp / d.loc["h100", "lower_bound_j"])
    comp = sum(d.loc["h100", f"{c}_j"] for c in F.COMPONENTS)
    assert comp == pytest.approx(0.95 * exp)                 # the synthetic breakdown


def test_carbon_hourly_data_adds_up(run):
    d = F.carbon_hourly_data(run)
    assert d["carbon_g"].sum() == pytest.approx(run.accounts.value("carbon.operational"))
    assert d["facility_kwh"].sum() * 3.6e6 == pytest.approx(run.accounts.value("energy.facility"))


def test_frontier_data_sorted_by_cap(run):
    d = F.frontier_data(run)
    assert set(d) == {"h100 · m8b", "a100 · m8b", "a100 · m70b"}
    for g in d.values():
        assert np.all(np.diff(g["power_cap_w"]) > 0)
        assert g["current"].sum() == 1


def test_appendix_lists_every_assumption_with_its_source(run):
    rows = F.appendix_data(run)
    names = [r[0] for r in rows]
    for a in run.accounts.assumptions:
        assert a.name in names
    assert any("server embodied" in n for n in names)


# ------------------------------------------------------------------ files
def test_files_and_summary_json(run, written):
    for f in ("report.pdf", "summary.json", "metrics.csv", "pools.csv", "models.csv", "hourly.csv",
              "nodes.csv", "requests.csv", "assumptions.csv", "frontier.csv"):
        assert (written / f).is_file(), f
    pngs = sorted(p.name for p in (written / "figures").glob("*.png"))
    # every page, in order; the plan page only when the run was planned (this one was not)
    assert pngs[:9] == [f"{stem}.png" for stem, _, _ in F.PAGES if stem != "01b_plan"]
    s = json.loads((written / "summary.json").read_text())
    for k in ("scenario", "scenario_hash", "fleet_version", "git_commit", "seed", "metrics"):
        assert k in s
    for name, m in s["metrics"].items():
        assert set(m) == {"value", "unit", "note"} and m["unit"], name
    assert s["metrics"]["energy.it"]["value"] == pytest.approx(run.accounts.value("energy.it"))
    csv = pd.read_csv(written / "metrics.csv")
    assert set(csv.columns) == {"metric", "value", "unit", "note"}
    assert len(csv) == len(run.accounts.metrics)
    assert not list(written.parent.glob(".synthetic.tmp.*"))


def test_failed_report_leaves_no_half_output(run, tmp_path, monkeypatch):
    out = tmp_path / "synthetic"
    out.mkdir()
    (out / "summary.json").write_text("previous report")   # a fleet report (it has its marker)

    def boom(_r):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(F, "PAGES", F.PAGES[:2] + [("99_boom", "boom", boom)])
    import fleet.report.pdf as pdf
    monkeypatch.setattr(pdf, "PAGES", F.PAGES)
    with pytest.raises(RuntimeError):
        write_report(run, out, dpi=40)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]
    assert [p.name for p in out.iterdir()] == ["summary.json"]


# ------------------------------------------------------------------ rendered pages
def _render_pages(pdf, tmp_path) -> list[np.ndarray]:
    """Grey-scale pixel arrays of every page: pdftoppm (poppler-utils) when installed, else pypdfium2."""
    if shutil.which("pdftoppm"):
        subprocess.run(["pdftoppm", "-r", "30", "-gray", str(pdf), str(tmp_path / "page")], check=True)
        from matplotlib.image import imread
        files = sorted(tmp_path.glob("page*.pgm"))
        return [np.asarray(imread(f), dtype=float) for f in files]
    pdfium = pytest.importorskip("pypdfium2", reason="neither pdftoppm (apt-get install poppler-utils) "
                                                     "nor pypdfium2 is installed to render the PDF")
    doc = pdfium.PdfDocument(str(pdf))
    out = []
    for i in range(len(doc)):
        img = doc[i].render(scale=30 / 72).to_pil().convert("L")
        out.append(np.asarray(img, dtype=float))
    return out


def test_pdf_pages_render_and_none_is_blank(written, tmp_path):
    pages = _render_pages(written / "report.pdf", tmp_path)
    assert len(pages) == len(list((written / "figures").glob("*.png")))
    assert len(pages) >= len(F.PAGES) - 1          # no plan page without a plan
    for i, img in enumerate(pages):
        white = img.max()
        ink = float(np.mean(img < 0.9 * white))
        assert ink > 0.005, f"page {i + 1} looks blank ({ink:.4f} of pixels inked)"
        # content spread over the page, not one speck: inked rows in both halves
        rows = np.flatnonzero((img < 0.9 * white).any(axis=1))
        assert rows.min() < img.shape[0] / 2 < rows.max(), f"page {i + 1} has content in one half only"


def test_frontier_labels_merge_caps_that_land_on_one_point():
    g = pd.DataFrame({"power_cap_w": [300.0, 400.0, 500.0, 700.0], "itl_s": [0.02, 0.015, 0.0140001, 0.014],
                      "j_per_token": [1.0, 1.2, 1.3, 1.3]})
    assert F.frontier_labels(g) == [(0.02, 1.0, "300 W"), (0.015, 1.2, "400 W"), (0.0140001, 1.3, "500-700 W")]


def test_frontier_labels_merge_points_that_would_overlap_on_the_plot():
    g = pd.DataFrame({"power_cap_w": [300.0, 400.0, 500.0], "itl_s": [0.010, 0.0101, 0.020],
                      "j_per_token": [2.0, 2.01, 3.0]})
    assert [t for _, _, t in F.frontier_labels(g, span=(0.01, 1.0))] == ["300-400 W", "500 W"]
    assert [t for _, _, t in F.frontier_labels(g)] == ["300 W", "400 W", "500 W"]


def test_training_only_fleet_renders_plain_empty_pages(tmp_path):
    r = synthetic_run_result(seed=3, serving=False)
    assert F.energy_per_token_data(r).empty and F.frontier_data(r) == {}
    assert F.latency_cdf_data(r) == {}
    out = write_report(r, tmp_path / "train", dpi=40)
    pages = _render_pages(out / "report.pdf", tmp_path)
    assert len(pages) >= len(F.PAGES) - 1          # no plan page without a plan
    s = json.loads((out / "summary.json").read_text())
    assert s["metrics"]["slo.attainment"]["value"] is None          # NaN is written as null
    assert s["metrics"]["training.energy"]["unit"] == "J"


_BACKEND_CHILD = r"""
import sys, tempfile
from pathlib import Path
import matplotlib
matplotlib.use("template")              # a user's choice (a notebook's inline backend, say)
from fleet.report import write_report
from fleet.testing import synthetic_run_result
out = Path(tempfile.mkdtemp()) / "r"
write_report(synthetic_run_result(seed=1, horizon_s=1800.0), out, dpi=30)
assert (out / "report.pdf").is_file() and list((out / "figures").glob("*.png"))
print(matplotlib.get_backend(), "matplotlib.pyplot" in sys.modules)
"""


def test_rendering_leaves_the_users_backend_alone(repo_root):
    """Library code used to call matplotlib.use("Agg", force=True), switching a notebook's backend
    under the user.  Pages are plain Figures now: the backend is the user's (the CLI picks Agg)."""
    import sys
    env = {k: v for k, v in os.environ.items() if k != "MPLBACKEND"}
    env["PYTHONPATH"] = os.pathsep.join([str(repo_root)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    out = subprocess.run([sys.executable, "-c", _BACKEND_CHILD], capture_output=True, text=True, env=env,
                         cwd=repo_root, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["template", "False"]


def test_cli_chooses_a_headless_backend(monkeypatch):
    from fleet.cli import main
    monkeypatch.delenv("MPLBACKEND", raising=False)
    assert main(["hardware"]) == 0
    assert os.environ["MPLBACKEND"] == "Agg"
