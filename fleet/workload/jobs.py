"""Training jobs: the canonical job table, its reader/writer, and a generator calibrated to the
AcmeTrace cluster statistics (Hu et al., "Characterization of Large Language Model Development
in the Datacenter", NSDI 2024; data CC-BY-4.0).

Canonical job table (a pandas DataFrame sorted by ``submit_s``):

=========================  =======  ================================================================
column                     dtype    meaning (unit)
=========================  =======  ================================================================
``job_id``                 int64    0..n-1 in submission order
``submit_s``               float64  submission time, s from the trace start (>= 0)
``gpus``                   int64    GPUs the job runs on (>= 1)
``model``                  object   model name (str) or None
``tokens``                 float64  training tokens to process; NaN when the job is given by time
``duration_s``             float64  run time on its GPUs, s (> 0); NaN only when ``tokens`` is given
``priority``               int8     higher first
``deadline_s``             float64  latest completion time, s from the trace start; NaN = none
``deferrable``             bool     may be delayed (e.g. to low-carbon hours) within its deadline
``fail_at_s``              float64  run time (s) after which the job fails once and restarts from
                                    its last checkpoint; NaN = no failure
``checkpoint_interval_s``  float64  run time between checkpoints, s (> 0)
=========================  =======  ================================================================

How :func:`generate_jobs` is calibrated (targets from ``cluster_summary.csv``; copied into
:data:`ACME_CLUSTERS` so the generator runs without the data folder; a test checks the copy):

* **GPUs per job** live on the powers of two ``1, 2, 4, ..., max_gpu``.  ``P(1 GPU) = p1`` and
  the rest follows a geometric law in ``log2(gpus)``: ``P(2^k) ∝ theta^k``, ``k >= 1``.  First the
  one-parameter law (``p1`` part of the same geometric) is fitted to the mean; if that puts
  ``p1`` below :data:`P1_MIN` (= 0.55, so that the median is robustly 1 GPU, as published), ``p1``
  is set to 0.55 and ``theta`` is refitted to the mean (bisection).  Matches: mean, median, max.
* **Run time** is lognormal with median = the published median and ``sigma`` chosen (bisection)
  so that the mean of ``min(T, max_run_time)`` equals the published mean (run times are capped
  at the published maximum).  Matches: median, mean, max.
* **GPUs and run time are coupled** by a Gaussian copula with correlation ``rho`` fitted
  (bisection, closed form) so that ``E[gpus x run time]`` equals the published total GPU time
  (complete + cancel + fail) / GPU job count; big jobs run longer.  Marginals stay exact.  The
  fit ignores the run-time cap, so the generated GPU time per job is slightly lower.
* **Failures**: a job fails with the published ``fail_rate_gpu`` (share of GPU jobs that failed,
  by count), at a uniform point of its run time, once, and restarts from its last checkpoint.
  (AcmeTrace failures end the job; in a capacity plan the work is resubmitted, which is what a
  restart models.  Cancelled jobs are not modelled: they are counted as normal jobs.)
* **Submissions** are Poisson at ``gpu_job_num / span`` (span: Seren Mar-Aug 2023 = 184 days,
  Kalos May-Aug 2023 = 123 days, from the AcmeTrace README; approximate), or at ``rate_per_s``.
* **Not calibrated (assumptions, parameters)**: the deferrable share (default 0.3), the deadline
  slack of deferrable jobs (default 24 h after the earliest possible end), priority (0), the
  checkpoint interval (default 1800 s), model and tokens (None / NaN: jobs are given by time).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from statistics import NormalDist
from typing import Any

import numpy as np
import pandas as pd

from ..errors import FleetError, TraceError, fmt_value

JOB_COLUMNS: tuple[str, ...] = ("job_id", "submit_s", "gpus", "model", "tokens", "duration_s", "priority",
                                "deadline_s", "deferrable", "fail_at_s", "checkpoint_interval_s")
JOB_DTYPES: dict[str, str] = {
    "job_id": "int64", "submit_s": "float64", "gpus": "int64", "model": "object",
    "tokens": "float64", "duration_s": "float64", "priority": "int8", "deadline_s": "float64",
    "deferrable": "bool", "fail_at_s": "float64", "checkpoint_interval_s": "float64",
}
JOB_UNITS: dict[str, str] = {"submit_s": "s", "gpus": "GPUs", "tokens": "tokens", "duration_s": "s",
                             "deadline_s": "s", "fail_at_s": "s (run time)", "checkpoint_interval_s": "s"}

P1_MIN = 0.55
_N = NormalDist()


@dataclass(frozen=True)
class ClusterStats:
    """Published per-cluster GPU-job statistics (AcmeTrace ``cluster_summary.csv``; times in s)."""

    name: str
    gpu_job_num: int
    avg_run_time_s: float
    med_run_time_s: float
    max_run_time_s: float
    avg_gpus: float
    med_gpus: float
    max_gpus: int
    fail_rate: float
    gpu_time_total_s: float     # complete + cancel + fail GPU time, GPU-seconds
    span_days: float            # trace span (assumption, see module docstring)

    @property
    def gpu_time_per_job_s(self) -> float:
        return self.gpu_time_total_s / self.gpu_job_num

    @property
    def rate_per_s(self) -> float:
        return self.gpu_job_num / (self.span_days * 86400.0)


#: Copied from acmetrace-power-distributions/cluster_summary.csv (AcmeTrace commit 6d6ac9c,
#: CC-BY-4.0); span_days is our reading of "March to August 2023" (see module docstring).
ACME_CLUSTERS: dict[str, ClusterStats] = {
    "seren": ClusterStats("Seren", 663813, 1414.335, 122.0, 1209604.0, 5.68, 1.0, 1024, 0.429,
                          4560592618.0 + 14274584510.0 + 2675447459.0, 184.0),
    "kalos": ClusterStats("Kalos", 19907, 1259.689, 124.0, 625740.0, 26.77, 1.0, 1024, 0.397,
                          1667685146.0 + 3239202064.0 + 426292851.0, 123.0),
}


def load_cluster_summary(path: str | Path | None = None, span_days: dict[str, float] | None = None
                         ) -> dict[str, ClusterStats]:
    """Read AcmeTrace's ``cluster_summary.csv`` (default: the shared data copy) for the clusters
    with GPU-job statistics and failure rates (Seren, Kalos, Philly, Helios)."""
    if path is None:
        from ..paths import shared_data
        path = shared_data("acmetrace-power-distributions", "cluster_summary.csv")
    try:
        df = pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001
        raise TraceError(f"unreadable cluster summary ({exc})", path=path) from exc
    spans = {"seren": 184.0, "kalos": 123.0, **(span_days or {})}
    out = {}
    for i, row in df.iterrows():
        key = str(row["id"]).lower()
        if pd.isna(row.get("fail_rate_gpu")):
            continue
        try:
            out[key] = ClusterStats(
                str(row["id"]), int(row["gpu_job_num"]), float(row["avg_run_time_gpu"]),
                float(row["med_run_time_gpu"]), float(row["max_run_time_gpu"]), float(row["avg_gpu_num"]),
                float(row["med_gpu_num"]), int(row["max_gpu"]), float(row["fail_rate_gpu"]),
                float(row["complete_gpu_time"] + row["cancel_gpu_time"] + row["fail_gpu_time"]),
                spans.get(key, float("nan")))
        except (KeyError, ValueError, TypeError) as exc:
            raise TraceError(f"bad cluster row ({exc})", path=path, line=int(i) + 2) from exc
    return out


# --------------------------------------------------------------------------- calibration

def _bisect(f, lo: float, hi: float, iters: int = 200) -> float:
    flo = f(lo)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        fm = f(mid)
        if (fm > 0) == (flo > 0):
            lo, flo = mid, fm
        else:
            hi = mid
    return 0.5 * (lo + hi)


def _gpu_pmf(p1: float, theta: float, kmax: int) -> np.ndarray:
    k = np.arange(1, kmax + 1)
    tail = theta ** k
    return np.concatenate([[p1], (1 - p1) * tail / tail.sum()])


def fit_gpu_distribution(mean: float, max_gpus: int) -> tuple[np.ndarray, np.ndarray, dict[str, float]]:
    """(GPU counts, probabilities, parameters) per the module docstring."""
    kmax = int(round(math.log2(max_gpus)))
    if 2 ** kmax != max_gpus or kmax < 1:
        raise FleetError(f"max GPUs {max_gpus} is not a power of two >= 2")
    g = 2.0 ** np.arange(kmax + 1)
    if not 1 < mean < max_gpus:
        raise FleetError(f"mean GPUs {mean} outside (1, {max_gpus})")

    def geo_mean(theta: float) -> float:
        w = theta ** np.arange(kmax + 1)
        return float((g * w).sum() / w.sum())

    theta = _bisect(lambda th: geo_mean(th) - mean, 1e-9, 1e3)
    w = theta ** np.arange(kmax + 1)
    p1 = float(w[0] / w.sum())
    if p1 >= P1_MIN:
        pmf = w / w.sum()
    else:
        p1 = P1_MIN
        tail_mean = (mean - p1) / (1 - p1)

        def tmean(th: float) -> float:
            pm = _gpu_pmf(0.0, th, kmax)[1:]
            return float((g[1:] * pm).sum())

        theta = _bisect(lambda th: tmean(th) - tail_mean, 1e-9, 1e3)
        pmf = _gpu_pmf(p1, theta, kmax)
    return g.astype(np.int64), pmf, {"p1": p1, "theta": theta}


def _capped_lognormal_mean(mu: float, sigma: float, cap: float) -> float:
    if sigma <= 0:
        return min(math.exp(mu), cap)
    a = (math.log(cap) - mu) / sigma
    return math.exp(mu + sigma ** 2 / 2) * _N.cdf(a - sigma) + cap * (1 - _N.cdf(a))


def fit_runtime(mean: float, median: float, cap: float) -> tuple[float, float]:
    """(mu, sigma) of the lognormal run time: median exact, capped mean = ``mean``."""
    if not 0 < median < mean < cap:
        raise FleetError(f"run-time statistics need 0 < median < mean < max, got {median}, {mean}, {cap}")
    mu = math.log(median)
    # the capped mean rises with sigma until it peaks; search below the peak
    grid = np.linspace(1e-3, 8, 800)
    vals = np.array([_capped_lognormal_mean(mu, s, cap) for s in grid])
    hi_idx = int(np.argmax(vals >= mean)) if (vals >= mean).any() else None
    if hi_idx is None:
        raise FleetError(f"no lognormal with median {median} and capped mean {mean} below {cap}")
    sigma = _bisect(lambda s: _capped_lognormal_mean(mu, s, cap) - mean, 1e-6, float(grid[hi_idx]))
    return mu, sigma


def _expected_gpu_time(g: np.ndarray, pmf: np.ndarray, mu: float, sigma: float, rho: float) -> float:
    cdf = np.clip(np.cumsum(pmf), 0, 1)
    lo = np.concatenate([[0.0], cdf[:-1]])
    shift = rho * sigma

    def phi_inv(p: float) -> float:
        if p <= 0:
            return -math.inf
        if p >= 1:
            return math.inf
        return _N.inv_cdf(p)

    def Phi(x: float) -> float:
        return 0.0 if x == -math.inf else 1.0 if x == math.inf else _N.cdf(x)

    tot = 0.0
    for gi, a, b in zip(g, lo, cdf):
        tot += gi * (Phi(phi_inv(b) - shift) - Phi(phi_inv(a) - shift))
    return math.exp(mu + sigma ** 2 / 2) * tot


@dataclass(frozen=True)
class JobModel:
    """The fitted generator of one cluster (see the module docstring)."""

    cluster: str
    gpu_values: tuple[int, ...]
    gpu_probs: tuple[float, ...]
    p1: float
    theta: float
    runtime_mu: float
    runtime_sigma: float
    runtime_cap_s: float
    rho: float
    fail_rate: float
    rate_per_s: float
    target_gpu_time_per_job_s: float
    rho_capped: bool

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def fit_job_model(stats: ClusterStats) -> JobModel:
    g, pmf, par = fit_gpu_distribution(stats.avg_gpus, stats.max_gpus)
    mu, sigma = fit_runtime(stats.avg_run_time_s, stats.med_run_time_s, stats.max_run_time_s)
    target = stats.gpu_time_per_job_s
    f = lambda r: _expected_gpu_time(g, pmf, mu, sigma, r) - target  # noqa: E731
    capped = False
    if f(0.0) >= 0:
        rho = 0.0
    elif f(0.99) < 0:
        rho, capped = 0.99, True
    else:
        rho = _bisect(f, 0.0, 0.99, iters=80)
    return JobModel(stats.name, tuple(int(x) for x in g), tuple(float(p) for p in pmf), par["p1"],
                    par["theta"], mu, sigma, stats.max_run_time_s, rho, stats.fail_rate,
                    stats.rate_per_s, target, capped)


# --------------------------------------------------------------------------- generation

def generate_jobs(n: int | None = None, horizon_s: float | None = None, cluster: str = "seren",
                  seed: int = 0, *, rate_per_s: float | None = None, deferrable_frac: float = 0.3,
                  deadline_slack_s: float = 86400.0, checkpoint_interval_s: float = 1800.0,
                  max_gpus: int | None = None, stats: ClusterStats | None = None,
                  model: str | None = None) -> pd.DataFrame:
    """Training jobs drawn from the fitted model of ``cluster`` (``seren`` or ``kalos``, or give
    ``stats``).  Give ``n`` (that many jobs, Poisson submissions at ``rate_per_s``, default the
    cluster's rate), ``horizon_s`` (Poisson submissions in ``[0, horizon_s)``), or both (exactly
    ``n`` jobs at uniform random times in ``[0, horizon_s)``: a Poisson process conditioned on its
    count; ``rate_per_s`` is then ignored).  ``model`` fills the model column.  ``max_gpus`` caps the GPU count for a smaller fleet (the larger draws
    are set to the cap: GPU counts then no longer match the cluster).  Same seed, same table."""
    if stats is None:
        key = cluster.lower()
        if key not in ACME_CLUSTERS:
            raise FleetError(f"unknown cluster {cluster!r}; expected one of {sorted(ACME_CLUSTERS)}")
        stats = ACME_CLUSTERS[key]
    if n is None and horizon_s is None:
        raise FleetError("generate_jobs needs n or horizon_s")
    if not 0 <= deferrable_frac <= 1:
        raise FleetError(f"deferrable_frac must be in [0, 1], got {deferrable_frac}")
    if checkpoint_interval_s <= 0 or deadline_slack_s < 0:
        raise FleetError("checkpoint_interval_s must be > 0 and deadline_slack_s >= 0")
    jm = fit_job_model(stats)
    rate = float(rate_per_s) if rate_per_s is not None else jm.rate_per_s
    if not rate > 0:
        raise FleetError(f"job arrival rate must be > 0, got {rate}")
    from ..limits import MAX_GENERATED_JOBS

    expected = float(n) if n is not None else rate * float(horizon_s or 0.0)
    if expected > MAX_GENERATED_JOBS:
        raise FleetError(f"about {expected:,.0f} jobs would be generated; expected at most {MAX_GENERATED_JOBS:,} "
                         f"(fleet.limits.MAX_GENERATED_JOBS): use fewer jobs, fewer days or a lower rate")
    if int(seed) < 0:
        raise FleetError(f"seed must be a non-negative integer, got {seed}")
    ss = np.random.SeedSequence(int(seed)).spawn(3)
    r_arr, r_size, r_misc = (np.random.default_rng(s) for s in ss)
    if n is not None and int(n) < 1:
        raise FleetError(f"n must be >= 1, got {n}")
    if horizon_s is not None and not horizon_s > 0:
        raise FleetError(f"horizon_s must be > 0, got {horizon_s}")
    if n is not None and horizon_s is not None:
        submit = np.sort(r_arr.random(int(n))) * float(horizon_s)
    elif n is not None:
        submit = np.cumsum(r_arr.exponential(1.0 / rate, int(n)))
    else:
        assert horizon_s is not None, "n or horizon_s (checked above)"
        count = int(rate * horizon_s * 1.2 + 10 * math.sqrt(rate * horizon_s) + 20)
        submit = np.cumsum(r_arr.exponential(1.0 / rate, count))
        while submit[-1] < horizon_s:
            submit = np.concatenate([submit, np.cumsum(r_arr.exponential(1.0 / rate, count)) + submit[-1]])
        submit = submit[submit < horizon_s]
    m = submit.size
    z1 = r_size.standard_normal(m)
    z2 = jm.rho * z1 + math.sqrt(1 - jm.rho ** 2) * r_size.standard_normal(m)
    cdf = np.cumsum(jm.gpu_probs)
    cdf[-1] = 1.0
    u1 = _vec_cdf(z1)
    gpus = np.asarray(jm.gpu_values, dtype=np.int64)[np.searchsorted(cdf, u1, side="right").clip(0, len(cdf) - 1)]
    if max_gpus is not None:
        gpus = np.minimum(gpus, int(max_gpus))
    dur = np.minimum(np.exp(jm.runtime_mu + jm.runtime_sigma * z2), jm.runtime_cap_s)
    dur = np.maximum(np.round(dur), 1.0)
    fails = r_misc.random(m) < jm.fail_rate
    fail_at = np.where(fails, np.round(r_misc.random(m) * dur, 3), np.nan)
    deferrable = r_misc.random(m) < deferrable_frac
    deadline = np.where(deferrable, np.round(submit + dur + deadline_slack_s, 3), np.nan)
    df = pd.DataFrame({
        "job_id": np.arange(m, dtype=np.int64),
        "submit_s": np.round(submit, 3),
        "gpus": gpus,
        "model": pd.Series([model] * m, dtype=object),
        "tokens": np.full(m, np.nan),
        "duration_s": dur,
        "priority": np.zeros(m, dtype=np.int8),
        "deadline_s": deadline,
        "deferrable": deferrable,
        "fail_at_s": fail_at,
        "checkpoint_interval_s": np.full(m, float(checkpoint_interval_s)),
    })
    df.attrs.update({"source": f"generate_jobs cluster={stats.name} seed={seed}", "format": "jobs",
                     "model": jm.as_dict()})
    return validate_jobs(df)


def _vec_cdf(z: np.ndarray) -> np.ndarray:
    from math import erf, sqrt
    verf = np.vectorize(erf, otypes=[np.float64])
    return 0.5 * (1.0 + verf(z / sqrt(2.0)))


# --------------------------------------------------------------------------- table I/O

def validate_jobs(df: pd.DataFrame, source: str | Path | None = None) -> pd.DataFrame:
    """Check a canonical job table; return it.  Errors name the file, line (data row + 2) and column."""
    src = source if source is not None else df.attrs.get("source")
    for c in JOB_COLUMNS:
        if c not in df.columns:
            raise TraceError("missing column", path=src, line=1, column=c,
                             expected=f"the columns {', '.join(JOB_COLUMNS)}")

    def bad(mask, col, what, expected):
        idx = np.flatnonzero(np.asarray(mask))
        if idx.size:
            i = int(idx[0])
            raise TraceError(f"{what}: {fmt_value(df[col].iloc[i])}", path=src, line=i + 2, column=col, expected=expected)

    sub = df["submit_s"].to_numpy(dtype=np.float64)
    bad(~np.isfinite(sub) | (sub < 0), "submit_s", "bad submit time", "seconds >= 0")
    bad(np.concatenate([[False], np.diff(sub) < 0]), "submit_s", "submit times decrease",
        "rows sorted by submit_s")
    bad(df["gpus"].to_numpy() < 1, "gpus", "bad GPU count", "an integer >= 1")
    dur = df["duration_s"].to_numpy(dtype=np.float64)
    tok = df["tokens"].to_numpy(dtype=np.float64)
    bad(np.isnan(dur) & np.isnan(tok), "duration_s", "neither duration nor tokens given",
        "a duration in s or a token count")
    bad(~np.isnan(dur) & ~(np.isfinite(dur) & (dur > 0)), "duration_s", "bad duration", "a finite run time > 0 s")
    bad(~np.isnan(tok) & ~(np.isfinite(tok) & (tok > 0)), "tokens", "bad token count",
        "a finite token count > 0, or empty")
    fa = df["fail_at_s"].to_numpy(dtype=np.float64)
    bad(~np.isnan(fa) & (~np.isfinite(fa) | (fa < 0) | (~np.isnan(dur) & (fa > dur))), "fail_at_s",
        "bad failure time",
        "0 <= fail_at_s <= duration_s, or empty")
    dl = df["deadline_s"].to_numpy(dtype=np.float64)
    bad(~np.isnan(dl) & (~np.isfinite(dl) | (dl < sub)), "deadline_s", "bad deadline",
        "a finite deadline_s >= submit_s, or empty")
    ck = df["checkpoint_interval_s"].to_numpy(dtype=np.float64)
    bad(~(np.isfinite(ck) & (ck > 0)), "checkpoint_interval_s", "bad checkpoint interval", "finite seconds > 0")
    bad(df["job_id"].to_numpy() != np.arange(len(df)), "job_id", "job ids out of sequence", "0..n-1")
    return df


def write_jobs(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a job table as CSV atomically (floats with up to 3 decimals: ms resolution)."""
    from .._io import atomic_path

    validate_jobs(df, source=path)
    out = df[list(JOB_COLUMNS)].copy()
    out["model"] = out["model"].where(out["model"].notna(), "")
    out["deferrable"] = out["deferrable"].map({True: "true", False: "false"})
    with atomic_path(path) as tmp:
        out.to_csv(tmp, index=False, lineterminator="\n", float_format="%.3f")
    return Path(path)


def _check_header(path: Path) -> None:
    """Unique column names (pandas would rename a second 'gpus' to 'gpus.1' and read the first)."""
    import csv

    try:
        with open(path, encoding="utf-8", newline="") as fh:
            header = next(csv.reader(fh), [])
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise TraceError(f"unreadable job table header ({exc})", path=path, line=1,
                         expected="a CSV header naming the columns") from exc
    names = [h.strip() for h in header]
    dup = next((h for h in names if names.count(h) > 1), None)
    if dup is not None:
        raise TraceError("duplicate column name", path=path, line=1, column=dup, expected="unique column names")


def read_jobs(path: str | Path) -> pd.DataFrame:
    """Read a job table written by :func:`write_jobs` (or by hand with the same columns)."""
    path = Path(path)
    if not path.is_file():
        raise TraceError("no such file", path=path, expected="a job table CSV")
    _check_header(path)
    try:
        df = pd.read_csv(path, dtype={"model": object, "deferrable": object}, keep_default_na=True)
    except pd.errors.EmptyDataError as exc:
        raise TraceError("empty file", path=path, line=1, expected="a header and job rows") from exc
    except Exception as exc:  # noqa: BLE001
        raise TraceError(f"unreadable job table ({type(exc).__name__}: {exc})", path=path) from exc
    for c in JOB_COLUMNS:
        if c not in df.columns:
            from .schema import check_columns
            check_columns(df.columns, [c], path)
    from ..limits import MAX_JOBS

    if len(df) > MAX_JOBS:
        raise TraceError(f"{len(df):,} jobs; expected at most {MAX_JOBS:,} (fleet.limits.MAX_JOBS): simulate a "
                         f"shorter period", path=path)
    out = {}
    lines = np.arange(len(df)) + 2
    for c in JOB_COLUMNS:
        s = df[c]
        if c == "model":
            out[c] = pd.Series([None if pd.isna(v) or v == "" else str(v) for v in s], dtype=object)
        elif c == "deferrable":
            vals = s.astype(str).str.strip().str.lower()
            ok = vals.isin(["true", "false", "1", "0"])
            if not ok.all():
                i = int(np.flatnonzero(~ok.to_numpy())[0])
                raise TraceError(f"not a boolean: {fmt_value(s.iloc[i])}", path=path, line=int(lines[i]), column=c,
                                 expected="true or false")
            out[c] = vals.isin(["true", "1"]).to_numpy()
        else:
            num = pd.to_numeric(s, errors="coerce")
            bad = num.isna() & s.notna()
            if bad.any():
                i = int(np.flatnonzero(bad.to_numpy())[0])
                raise TraceError(f"not a number: {s.iloc[i]!r}", path=path, line=int(lines[i]), column=c,
                                 expected="a number")
            if c in ("job_id", "gpus", "priority"):
                arr = num.to_numpy(dtype=np.float64, na_value=np.nan)
                limit = 127 if c == "priority" else 2 ** 62
                badi = ~np.isfinite(arr) | (arr != np.round(arr)) | (np.abs(arr) > limit)
                if badi.any():
                    i = int(np.flatnonzero(badi)[0])
                    raise TraceError(f"not an integer in range: {s.iloc[i]!r}", path=path,
                                     line=int(lines[i]), column=c, expected=f"an integer, |value| <= {limit}")
            out[c] = num.to_numpy(dtype=np.float64).astype(JOB_DTYPES[c]) if c in (
                "job_id", "gpus", "priority") else num.to_numpy(dtype=np.float64)
    res = pd.DataFrame(out)
    res.attrs.update({"source": str(path), "format": "jobs"})
    return validate_jobs(res, source=path)
