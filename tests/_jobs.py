"""A canonical training-job table from a few hand-written rows, for the training tests."""

from __future__ import annotations

import math

import pandas as pd


def jobs(*rows) -> pd.DataFrame:
    cols = ["job_id", "submit_s", "gpus", "model", "duration_s", "priority", "deferrable", "deadline_s",
            "fail_at_s", "checkpoint_interval_s"]
    recs = []
    for r in rows:
        d = {"priority": 0, "deferrable": False, "deadline_s": math.nan, "fail_at_s": math.nan,
             "checkpoint_interval_s": 0.0, "model": "m"}
        d.update(r)
        recs.append(d)
    return pd.DataFrame.from_records(recs, columns=cols)
