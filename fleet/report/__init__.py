"""fleet.report: the PDF/PNG report, ``summary.json``, CSV tables and run record of a run.

The report reads a :class:`~fleet.report.data.RunResult` only (results, never simulation or
planner internals).  :func:`write_report` writes everything into a temporary directory and moves
it into place when complete (:func:`fleet._io.atomic_dir`): a failed run leaves no half report.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Callable

from .._io import atomic_dir, write_json_atomic
from .data import PoolAnalysis, RunResult

log = logging.getLogger("fleet.report")

__all__ = ["RunResult", "PoolAnalysis", "write_report"]

#: every report folder holds this file: a folder without it is not replaced (it is not ours)
REPORT_MARKER = "summary.json"


def _readable(root: Path) -> None:
    """Temporary files and folders are created private (0600/0700); a report is for reading."""
    import os

    mask = os.umask(0)
    os.umask(mask)
    for p in [root, *root.rglob("*")]:
        p.chmod((0o777 if p.is_dir() else 0o666) & ~mask)


def write_report(r: RunResult, out_dir: str | Path, *, pdf: bool = True, png: bool = True,
                 dpi: int = 110, progress: Callable[[str], None] | None = None) -> Path:
    """Write ``report.pdf``, ``figures/*.png``, CSV tables, ``summary.json`` and the run record
    ``run.json`` into ``out_dir`` (replacing it atomically).  Returns ``out_dir``.

    Every file but ``run.json`` (wall times) is a function of the scenario and its seed: a rerun
    gives the same bytes (the PDF is dated with the scenario's ``start_utc``, not the clock)."""
    from .pdf import write_pdf_and_pngs
    from .summary import RUN_RECORD, run_record, summary_dict
    from .tables import write_tables

    out_dir = Path(out_dir)
    with atomic_dir(out_dir, marker=REPORT_MARKER) as tmp:
        files = write_tables(r, tmp)
        files += write_pdf_and_pngs(r, tmp, pdf=pdf, png=png, dpi=dpi, progress=progress)
        files += ["summary.json", RUN_RECORD]
        write_json_atomic(tmp / "summary.json", summary_dict(r, files))
        write_json_atomic(tmp / RUN_RECORD, run_record(r))
        _readable(tmp)
    log.info("report written to %s", out_dir)
    return out_dir
