"""The multi-page PDF and the PNG figures.

Pages are :class:`matplotlib.figure.Figure` objects made without pyplot, so rendering needs no
display and never touches the user's pyplot backend (the CLI chooses Agg for itself)."""

from __future__ import annotations

import datetime as _dt
import logging
from pathlib import Path
from typing import Callable

from .data import RunResult
from .figures import PAGES

log = logging.getLogger("fleet.report")


def _figures(r: RunResult):
    """Yield (stem, figure) for every page, in order (a page function may return several)."""
    for stem, _title, draw in PAGES:
        out = draw(r)
        figs = out if isinstance(out, list) else [out]    # a page function may draw none (no plan)
        for i, fig in enumerate(figs):
            yield (stem if i == 0 else f"{stem}_{i + 1}"), fig


def _scenario_date(r: RunResult) -> _dt.datetime:
    """The scenario's own start (UTC): the date a report is about, the same on every rerun."""
    start = r.meta.get("start_utc")
    if isinstance(start, _dt.datetime):
        d = start
    elif start:
        d = _dt.datetime.fromisoformat(str(start).replace("Z", "+00:00"))
    else:
        d = _dt.datetime(1970, 1, 1, tzinfo=_dt.timezone.utc)
    return d if d.tzinfo is not None else d.replace(tzinfo=_dt.timezone.utc)


def _pdf_metadata(r: RunResult) -> dict:
    """PDF document information without the clock: both dates are the scenario's start."""
    date = _scenario_date(r)
    return {"Title": r.title, "Creator": "fleet", "Subject": f"scenario {r.name} {r.scenario_hash}",
            "CreationDate": date, "ModDate": date}


def write_pdf_and_pngs(r: RunResult, out: Path, *, pdf: bool = True, png: bool = True, dpi: int = 110,
                       progress: Callable[[str], None] | None = None) -> list[str]:
    """Render every page into ``out/report.pdf`` and ``out/figures/<stem>.png``; returns file names."""
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    files: list[str] = []
    if png:
        (out / "figures").mkdir(exist_ok=True)
    pdf_file = PdfPages(out / "report.pdf", metadata=_pdf_metadata(r)) if pdf else None
    try:
        with matplotlib.rc_context({"font.size": 9, "axes.titlesize": 11, "figure.dpi": dpi,
                                    "svg.hashsalt": "fleet", "pdf.compression": 6}):
            for stem, fig in _figures(r):
                log.info("report page %s", stem)
                if progress:
                    progress(stem)
                if pdf_file is not None:
                    pdf_file.savefig(fig)
                if png:
                    fig.savefig(out / "figures" / f"{stem}.png", dpi=dpi)
                    files.append(f"figures/{stem}.png")
    finally:
        if pdf_file is not None:
            pdf_file.close()
    if pdf:
        files.append("report.pdf")
    return files
