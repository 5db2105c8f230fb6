"""The power tree and its telemetry: GPU -> server -> rack -> row -> site, plus a per-pool view.

Layout (decided here, stated in the scenario docs): each pool's GPUs fill servers of
``gpus_per_server`` in order (the last server may be partial), servers fill racks of
``servers_per_rack``, and each pool starts a new rack in its row; racks are numbered per row in
the order the pools are listed.  Node ids::

    site
    row0                        (row)
    row0/rack1                  (rack)
    row0/rack1/srv3             (server; index inside its rack)
    h100/r2                     (gpu level: a serving replica of tp GPUs, inside one server)
    h100/spare0                 (gpu level: GPUs of a serving pool that hold no replica, idle)
    train/s4                    (gpu level: all GPUs of server 4 of a training pool; jobs and
                                 idle GPUs record their share there, see fleet.sim.training)

Server overhead power (CPU, memory, fans, NICs, PSU loss) is modelled as::

    P_server_overhead = static_w + per_gpu_w * sum_over_its_gpus(P_gpu / TDP_gpu)

which is linear in the GPU power, so its energy in a telemetry bin follows exactly from the GPU
energy in that bin: ``E = static_w * dt + per_gpu_w / TDP * E_gpus``.

Agreement with the serving engine (fleet/sim/replica.py, sim-core): a replica records every
instant of its life as a segment (idle spans included), so the idle fill below finds no gap on
replica nodes; it is kept for engines or nodes that record only busy spans.  Training servers
(fleet/sim/training.py) record their idle GPUs themselves and have no fill (``idle_w`` NaN).

Telemetry (:func:`telemetry`) splits every recorded segment ``(node, t0, t1, energy_j)`` across
the telemetry bins it overlaps in proportion to the overlap (power is constant within a
segment), fills idle power where a gpu node has no segment (``idle_w`` of the tree: the gaps are
found from the covered time per bin, so an engine that records its own idle spans simply leaves
no gap), and sums up the tree.  ``sum(power_w) * interval_s`` over a node equals its energy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from .result import POWER_COLUMNS, TREE_COLUMNS

LEVELS = ("gpu", "server", "rack", "row", "site")


@dataclass
class GpuNode:
    """A gpu-level node: ``gpus`` GPUs of one server.  ``idle_w`` is the power filled in where no
    segment covers the node (NaN: no fill, e.g. training servers whose scheduler records idle)."""

    node: str
    pool: str
    server: int          # index into PowerTree.servers
    gpus: int
    idle_w: float = math.nan


@dataclass
class ServerNode:
    node: str
    pool: str
    rack: str
    gpus: int
    static_w: float      # W
    per_gpu_w: float     # W at full load per GPU
    tdp_w: float         # W per GPU (the load reference)
    budget_w: float = math.nan


@dataclass
class PowerTree:
    """The whole tree.  ``table`` is the TREE_COLUMNS view (plus ``gpus``)."""

    gpu_nodes: list[GpuNode]
    servers: list[ServerNode]
    racks: dict[str, tuple[str, str, float]]     # rack -> (row, pool, budget_w)
    rows: dict[str, float]                       # row -> budget_w
    site_budget_w: float = math.nan
    pools: list[str] = field(default_factory=list)

    # ------------------------------------------------------------------ views
    @property
    def table(self) -> pd.DataFrame:
        recs = [{"node": "site", "level": "site", "parent": "", "pool": _one(self.pools),
                 "budget_w": self.site_budget_w, "gpus": sum(s.gpus for s in self.servers)}]
        for row, budget in self.rows.items():
            pools = sorted({p for (r, p, _) in self.racks.values() if r == row})
            recs.append({"node": row, "level": "row", "parent": "site", "pool": _one(pools),
                         "budget_w": budget,
                         "gpus": sum(s.gpus for s in self.servers if self.racks[s.rack][0] == row)})
        for rack, (row, pool, budget) in self.racks.items():
            recs.append({"node": rack, "level": "rack", "parent": row, "pool": pool, "budget_w": budget,
                         "gpus": sum(s.gpus for s in self.servers if s.rack == rack)})
        for s in self.servers:
            recs.append({"node": s.node, "level": "server", "parent": s.rack, "pool": s.pool,
                         "budget_w": s.budget_w, "gpus": s.gpus})
        for g in self.gpu_nodes:
            recs.append({"node": g.node, "level": "gpu", "parent": self.servers[g.server].node,
                         "pool": g.pool, "budget_w": math.nan, "gpus": g.gpus})
        df = pd.DataFrame.from_records(recs, columns=list(TREE_COLUMNS) + ["gpus"])
        return df.astype({"budget_w": "float64", "gpus": "int64"})

    def gpu_index(self) -> dict[str, int]:
        return {g.node: i for i, g in enumerate(self.gpu_nodes)}

    def pool_servers(self, pool: str) -> list[int]:
        return [i for i, s in enumerate(self.servers) if s.pool == pool]


def _one(items) -> str:
    items = sorted(set(items))
    return items[0] if len(items) == 1 else ""


# ---------------------------------------------------------------------- building
@dataclass
class Placement:
    """``count`` gpu-level nodes named ``f"{prefix}{i}"`` (i from 0) of ``gpus_each`` GPUs,
    placed consecutively on a pool's GPUs starting at GPU ``first_gpu``."""

    prefix: str
    count: int
    gpus_each: int
    idle_w: float = math.nan


def build_tree(pools, power, placements: dict[str, list[Placement]], *,
               tdp_w: dict[str, float] | None = None,
               spare_idle_w: dict[str, float] | None = None) -> PowerTree:
    """Build the tree of a fleet: ``pools`` (:class:`fleet.sim.input.PoolInput`, in scenario
    order) and ``power`` (:class:`fleet.sim.input.PowerBudgets`) of a :class:`SimInput`.

    ``placements[pool]`` lists the replica groups of a serving pool in GPU order; GPUs of a
    serving pool left over become one ``{pool}/spare{k}`` node per server that has any, idle at
    ``spare_idle_w[pool]`` per GPU (default: the pool's ``idle_w``).  A training pool gets one
    ``{pool}/s{k}`` node per server.  ``tdp_w[pool]`` (default: the pool's ``tdp_w``) is the
    per-GPU TDP that scales the load-proportional server overhead.
    """
    tdp_w = {p.name: p.tdp_w for p in pools} if tdp_w is None else tdp_w
    spare_idle_w = {p.name: p.idle_w for p in pools} if spare_idle_w is None else spare_idle_w
    servers: list[ServerNode] = []
    gpu_nodes: list[GpuNode] = []
    racks: dict[str, tuple[str, str, float]] = {}
    rows: dict[str, float] = {}
    next_rack: dict[str, int] = {}
    for pool in pools:
        row = pool.row
        rows.setdefault(row, float(power.rows.get(row, math.nan)))
        n_srv = pool.servers
        first = len(servers)
        for k in range(n_srv):
            r_local = k // pool.servers_per_rack
            r_idx = next_rack.get(row, 0) + r_local
            rack = f"{row}/rack{r_idx}"
            if rack not in racks:
                budget = power.racks.get(rack, power.rack_budget_w)
                racks[rack] = (row, pool.name, float(math.nan if budget is None else budget))
            g = min(pool.gpus_per_server, pool.gpus - k * pool.gpus_per_server)
            servers.append(ServerNode(
                node=f"{rack}/srv{k % pool.servers_per_rack}", pool=pool.name, rack=rack, gpus=g,
                static_w=pool.static_w, per_gpu_w=pool.per_gpu_w, tdp_w=float(tdp_w[pool.name]),
                budget_w=float(math.nan if power.server_budget_w is None else power.server_budget_w)))
        next_rack[row] = next_rack.get(row, 0) + math.ceil(n_srv / pool.servers_per_rack)
        gps = pool.gpus_per_server
        if pool.role == "training":
            for k in range(n_srv):
                gpu_nodes.append(GpuNode(f"{pool.name}/s{k}", pool.name, first + k, servers[first + k].gpus))
            continue
        gpu = 0
        for pl in placements.get(pool.name, []):
            for i in range(pl.count):
                srv = gpu // gps
                if (gpu + pl.gpus_each - 1) // gps != srv:
                    raise ValueError(f"replica {pl.prefix}{i} would straddle two servers")
                gpu_nodes.append(GpuNode(f"{pl.prefix}{i}", pool.name, first + srv, pl.gpus_each, pl.idle_w))
                gpu += pl.gpus_each
        if gpu > pool.gpus:
            raise ValueError(f"pool {pool.name}: replicas need {gpu} GPUs, it has {pool.gpus}")
        # the rest of the pool's GPUs: idle spares, one node per server
        while gpu < pool.gpus:
            srv = gpu // gps
            n = min((srv + 1) * gps, pool.gpus) - gpu
            gpu_nodes.append(GpuNode(f"{pool.name}/spare{srv}", pool.name, first + srv, n,
                                     n * float(spare_idle_w.get(pool.name, 0.0))))
            gpu += n
    return PowerTree(gpu_nodes=gpu_nodes, servers=servers, racks=racks, rows=rows,
                     site_budget_w=float(math.nan if power.site_budget_w is None else power.site_budget_w),
                     pools=[p.name for p in pools])


# ---------------------------------------------------------------------- binning
@dataclass
class Binned:
    """Energy per node and telemetry bin (J), before and after the roll-up."""

    interval_s: float
    n_bins: int
    gpu: np.ndarray          # (gpu nodes, bins) J, including idle fill
    gpu_recorded: np.ndarray  # (gpu nodes, bins) J from segments only
    overhead: np.ndarray     # (servers, bins) J of server overhead
    server: np.ndarray       # (servers, bins) J: its GPUs + overhead

    @property
    def times(self) -> np.ndarray:
        return np.arange(self.n_bins, dtype=np.float64) * self.interval_s


def split_segments(node_idx: np.ndarray, t0: np.ndarray, t1: np.ndarray, energy: np.ndarray,
                   n_nodes: int, interval_s: float, n_bins: int) -> tuple[np.ndarray, np.ndarray]:
    """Split segments over bins of width ``interval_s``: returns (energy, covered seconds), each
    of shape (n_nodes, n_bins).  A segment's energy is shared in proportion to its overlap with
    each bin (constant power inside a segment); zero-length segments go to the bin of ``t0``.
    The last piece of each segment takes the remainder, so the split sums back to ``energy``
    up to one rounding."""
    node_idx = np.asarray(node_idx, dtype=np.int64)
    t0 = np.asarray(t0, dtype=np.float64)
    t1 = np.asarray(t1, dtype=np.float64)
    energy = np.asarray(energy, dtype=np.float64)
    horizon = n_bins * interval_s
    if len(t0) and (np.any(t1 < t0) or np.any(t0 < 0) or np.any(t1 > horizon * (1 + 1e-12) + 1e-9)):
        raise ValueError("segments must satisfy 0 <= t0 <= t1 <= horizon")
    t1 = np.minimum(t1, horizon)
    b0 = np.minimum((t0 // interval_s).astype(np.int64), n_bins - 1)
    # the bin holding the segment's last instant (a segment ending on an edge does not touch the next bin)
    b1 = np.maximum(np.ceil(t1 / interval_s).astype(np.int64) - 1, b0)
    b1 = np.minimum(b1, n_bins - 1)
    size = n_nodes * n_bins
    # fast path: most serving segments lie inside one bin and go there whole
    one = b0 == b1
    flat1 = node_idx[one] * n_bins + b0[one]
    e = np.bincount(flat1, weights=energy[one], minlength=size).astype(np.float64, copy=False)
    c = np.bincount(flat1, weights=(t1 - t0)[one], minlength=size).astype(np.float64, copy=False)
    if one.all():
        return e.reshape(n_nodes, n_bins), c.reshape(n_nodes, n_bins)
    many = ~one
    node_idx, t0, t1, energy, b0, b1 = node_idx[many], t0[many], t1[many], energy[many], b0[many], b1[many]
    k = b1 - b0 + 1
    total = int(k.sum())
    seg = np.repeat(np.arange(len(t0)), k)
    first = np.repeat(np.cumsum(k) - k, k)
    b = b0[seg] + (np.arange(total) - first)
    lo = np.maximum(t0[seg], b * interval_s)
    hi = np.minimum(t1[seg], (b + 1) * interval_s)
    ov = np.maximum(hi - lo, 0.0)
    dur = (t1 - t0)[seg]
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(dur > 0, energy[seg] * ov / np.where(dur > 0, dur, 1.0), energy[seg])
    # the last piece of every segment takes the remainder (exact sums)
    last = np.cumsum(k) - 1
    if len(last):
        before = np.bincount(seg, weights=share, minlength=len(t0)) - share[last]
        share[last] = energy - before
    flat = node_idx[seg] * n_bins + b
    e += np.bincount(flat, weights=share, minlength=size)
    c += np.bincount(flat, weights=ov, minlength=size)
    return e.reshape(n_nodes, n_bins), c.reshape(n_nodes, n_bins)


def bin_energy(segments, tree: PowerTree, interval_s: float, horizon_s: float, dark=None) -> Binned:
    """Per-bin energy of every gpu node (segments + idle fill) and server (GPUs + overhead).

    ``dark``: spans during which servers had no power (a breaker trip; ``{"server": indices,
    "t0", "t1"}``): no idle fill and no static overhead there.

    ``segments``: a mapping (or DataFrame / object) with ``node`` (names), ``t0``, ``t1``,
    ``energy_j``; or a mapping with ``node_idx`` (indices into ``tree.gpu_nodes``) instead of
    ``node``, which avoids millions of strings."""
    n_bins = max(1, int(math.ceil(horizon_s / interval_s - 1e-9)))
    if isinstance(segments, dict) and "node_idx" in segments:
        node_idx = np.asarray(segments["node_idx"], dtype=np.int64)
        t0, t1, e = (np.asarray(segments[k], dtype=np.float64) for k in ("t0", "t1", "energy_j"))
        if len(node_idx) and (node_idx.min() < 0 or node_idx.max() >= len(tree.gpu_nodes)):
            raise ValueError("segment node indices outside the power tree")
        nodes = None
    else:
        nodes, t0, t1, e = _segment_arrays(segments)
    idx = tree.gpu_index()
    if nodes is None:
        pass
    elif len(nodes):
        uniq, inv = np.unique(nodes, return_inverse=True)
        missing = [u for u in uniq if u not in idx]
        if missing:
            raise ValueError(f"segments for nodes not in the power tree: {missing[:5]}")
        node_idx = np.array([idx[u] for u in uniq], dtype=np.int64)[inv]
    else:
        node_idx = np.zeros(0, dtype=np.int64)
    n = len(tree.gpu_nodes)
    rec, covered = split_segments(node_idx, t0, t1, e, n, interval_s, n_bins)
    idle = np.array([g.idle_w for g in tree.gpu_nodes], dtype=np.float64)
    gpu = rec.copy()
    fill = np.isfinite(idle) & (idle > 0)
    srv_dark = None
    if dark is not None and len(dark["t0"]):
        ns = len(tree.servers)
        _, srv_dark = split_segments(dark["server"], dark["t0"], dark["t1"], np.zeros(len(dark["t0"])), ns,
                                     interval_s, n_bins)
        srv_dark = np.minimum(srv_dark, interval_s)
        g_srv = np.array([g.server for g in tree.gpu_nodes], dtype=np.int64)
        covered = covered + srv_dark[g_srv]
    if fill.any():
        gaps = np.clip(interval_s - covered[fill], 0.0, None)
        gaps[gaps < 1e-9 * interval_s] = 0.0
        gpu[fill] += idle[fill, None] * gaps
    srv_of = np.array([g.server for g in tree.gpu_nodes], dtype=np.int64)
    ns = len(tree.servers)
    gpu_per_server = np.zeros((ns, n_bins))
    np.add.at(gpu_per_server, srv_of, gpu)
    static = np.array([s.static_w for s in tree.servers])
    k = np.array([s.per_gpu_w / s.tdp_w for s in tree.servers])
    overhead = static[:, None] * interval_s + k[:, None] * gpu_per_server
    if srv_dark is not None:
        overhead -= static[:, None] * srv_dark
    return Binned(interval_s, n_bins, gpu, rec, overhead, gpu_per_server + overhead)


def _segment_arrays(segments):
    if segments is None:
        z = np.zeros(0)
        return np.zeros(0, dtype=object), z, z, z
    if isinstance(segments, pd.DataFrame):
        get = segments.__getitem__
    elif isinstance(segments, dict):
        get = segments.__getitem__
    else:
        def get(k):
            return getattr(segments, k)
    return (np.asarray(get("node")), np.asarray(get("t0"), dtype=np.float64),
            np.asarray(get("t1"), dtype=np.float64), np.asarray(get("energy_j"), dtype=np.float64))


def rollup(binned: Binned, tree: PowerTree) -> dict[str, tuple[list[str], np.ndarray]]:
    """Energy (J) per bin at every level: {level: (node names, array (nodes, bins))}."""
    out: dict[str, tuple[list[str], np.ndarray]] = {}
    out["gpu"] = ([g.node for g in tree.gpu_nodes], binned.gpu)
    out["server"] = ([s.node for s in tree.servers], binned.server)
    racks = list(tree.racks)
    r_idx = {r: i for i, r in enumerate(racks)}
    rack_e = np.zeros((len(racks), binned.n_bins))
    np.add.at(rack_e, np.array([r_idx[s.rack] for s in tree.servers], dtype=np.int64), binned.server)
    out["rack"] = (racks, rack_e)
    rows = list(tree.rows)
    w_idx = {w: i for i, w in enumerate(rows)}
    row_e = np.zeros((len(rows), binned.n_bins))
    np.add.at(row_e, np.array([w_idx[tree.racks[r][0]] for r in racks], dtype=np.int64), rack_e)
    out["row"] = (rows, row_e)
    out["site"] = (["site"], row_e.sum(axis=0, keepdims=True))
    pools = list(tree.pools)
    p_idx = {p: i for i, p in enumerate(pools)}
    pool_e = np.zeros((len(pools), binned.n_bins))
    np.add.at(pool_e, np.array([p_idx[s.pool] for s in tree.servers], dtype=np.int64), binned.server)
    out["pool"] = (pools, pool_e)
    return out


def telemetry(segments, tree: PowerTree, interval_s: float, horizon_s: float, *,
              levels: tuple[str, ...] = ("gpu", "server", "rack", "row", "site", "pool"),
              binned: Binned | None = None) -> pd.DataFrame:
    """Mean power per node and interval, long form (POWER_COLUMNS), for the chosen levels.

    ``level`` and ``node`` are pandas Categoricals of strings (compare them with strings as
    usual; they keep a year of telemetry small)."""
    if binned is None:
        binned = bin_energy(segments, tree, interval_s, horizon_s)
    rolled = rollup(binned, tree)
    times = binned.times
    nb = binned.n_bins
    names_per_level = [(lv, rolled[lv][0], rolled[lv][1]) for lv in levels if len(rolled[lv][0])]
    if not names_per_level:
        return pd.DataFrame({c: pd.Series(dtype="float64" if c in ("time_s", "power_w") else "object")
                             for c in POWER_COLUMNS})
    # level and node as categoricals of strings: millions of rows at a few bytes each
    lv_names = [lv for lv, _, _ in names_per_level]
    lv_codes = np.concatenate([np.full(len(n) * nb, i, dtype=np.int16) for i, (_, n, _) in enumerate(names_per_level)])
    all_names = [str(x) for _, n, _ in names_per_level for x in n]
    cats, node_code = np.unique(np.array(all_names, dtype=object), return_inverse=True)
    node_codes = np.repeat(node_code.astype(np.int32), nb)
    power = np.concatenate([(e / interval_s).ravel() for _, _, e in names_per_level])
    df = pd.DataFrame({
        "time_s": np.tile(times, len(all_names)),
        "level": pd.Categorical.from_codes(lv_codes, categories=lv_names),
        "node": pd.Categorical.from_codes(node_codes, categories=[str(c) for c in cats]),
        "power_w": power,
    })
    return df[list(POWER_COLUMNS)]


# ---------------------------------------------------------------------- live view (for controllers)
def instant_power(tree: PowerTree, gpu_power_w: dict[str, float]) -> dict[str, dict[str, float]]:
    """Instantaneous power (W) at every level from the current power of the gpu nodes.

    ``gpu_power_w`` maps gpu-node names (e.g. ``{r.node: r.power_w for r in eng.replicas()}``
    during a run) to W; nodes not given draw their ``idle_w`` (0 if it is NaN).  Server overhead
    follows the same linear model as the telemetry, so a capping controller sees
    what the telemetry will record.  Returns ``{level: {node: W}}`` for gpu, server, rack, row,
    site and pool."""
    gpu = np.array([gpu_power_w.get(g.node, 0.0 if math.isnan(g.idle_w) else g.idle_w)
                    for g in tree.gpu_nodes], dtype=np.float64)
    b = Binned(1.0, 1, gpu[:, None], gpu[:, None], np.zeros((len(tree.servers), 1)), np.zeros((len(tree.servers), 1)))
    srv_of = np.array([g.server for g in tree.gpu_nodes], dtype=np.int64)
    per_srv = np.zeros(len(tree.servers))
    np.add.at(per_srv, srv_of, gpu)
    static = np.array([s.static_w for s in tree.servers])
    k = np.array([s.per_gpu_w / s.tdp_w for s in tree.servers])
    b.overhead = (static + k * per_srv)[:, None]
    b.server = (per_srv + b.overhead[:, 0])[:, None]
    rolled = rollup(b, tree)
    return {lv: {n: float(v) for n, v in zip(names, e[:, 0])} for lv, (names, e) in rolled.items()}
