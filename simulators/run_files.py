"""A run streamed to ``--out DIR`` on every core, with memory bounded by a chunk, not the day.

Stages, in order:

1. world (roads, readers, day plan, outages) in this process; ``roads.npz``, reader files;
2. paths of every intention, split by (route variant, source node) over the worker processes
   so that each single-source search runs once;
3. chunks of bikes (:func:`simulators.chunks.simulate_chunk`) on the workers, a few in flight;
   their results are taken *in bike order*: positions and visits are appended to Parquet in
   fixed row groups, trips and passages kept (small), and reads spilled to one file per group
   of readers in a temporary directory;
4. each reader group's reads on a worker: sorted into sending order, encoded by whole-column
   encoders (:mod:`simulators.emit_files`), its readers' streams written; the sorted reads come
   back for ``truth/reads.parquet`` (in reader-id, then sending order);
5. trips, passages, bikes, thefts, outages and ``summary.json``.

Every result is taken in a fixed order and every draw is keyed by bike or reader, so the files
are byte for byte the same for any ``chunk_bikes`` and any number of workers.
"""

from __future__ import annotations

import multiprocessing
import tempfile
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa

from simulators import output
from simulators.bike_days import router_for
from simulators.chunks import ChunkResult, World, simulate_chunk
from simulators.emit_files import EmitTables, order_reads, write_streams
from simulators.routing import FlatPaths, Router
from simulators.scenario import SimOptions, build_city, build_world, chunk_ranges, sorted_passages

READERS_PER_GROUP = 64
_ROUTE_PARTS = 16
_READ_DTYPE = np.dtype([
    ("reader", "<i2"), ("antenna", "<i2"), ("tag", "<i4"), ("rssi_dbm", "<f4"),
    ("read_at_us", "<i8"), ("true_at_us", "<i8"),
])  # fmt: skip

Progress = Callable[[str, float], None]
T = TypeVar("T")

# Per worker process: set once by _init (a fork start inherits it without pickling).
_world: World | None = None
_router: Router | None = None
_tables: EmitTables | None = None


def _init(world: World, tables: EmitTables) -> None:
    global _world, _router, _tables
    _world, _tables = world, tables
    _router = router_for(world.city, world.plan)


def _worker() -> tuple[World, Router]:
    if _world is None or _router is None:
        raise RuntimeError("not a worker process started by write_run")
    return _world, _router


def _route(rows: np.ndarray) -> FlatPaths:
    world, router = _worker()
    plan = world.plan
    return router.paths(plan.want_variant[rows], plan.want_from[rows], plan.want_to[rows])


def _chunk(b0: int, b1: int, paths: FlatPaths) -> ChunkResult:
    world, router = _worker()
    return simulate_chunk(world, router, b0, b1, paths=paths)


def _emit_group(out: Path, spill: Path) -> tuple[Counter[str], pd.DataFrame]:
    if _tables is None:
        raise RuntimeError("not a worker process started by write_run")
    reads = order_reads(pd.DataFrame(np.fromfile(spill, dtype=_READ_DTYPE)))
    spill.unlink()
    return write_streams(out, _tables, reads), reads


def write_run(
    options: SimOptions,
    out: Path,
    *,
    garbage_prob: float,
    workers: int = 2,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Simulate ``options`` into ``out``; returns the summary (also in ``summary.json``)."""
    report = progress or (lambda _stage, _done: None)
    report("roads", 0.0)
    out.mkdir(parents=True, exist_ok=True)
    city = build_city(options)
    world = build_world(options, city)
    output.write_world(out, city, world.readers)
    tables = EmitTables.build(world.readers, list(world.plan.tag_names), seed=options.seed,
                              garbage_prob=garbage_prob)  # fmt: skip
    context = multiprocessing.get_context("fork")
    with (
        ProcessPoolExecutor(workers, context, initializer=_init, initargs=(world, tables)) as pool,
        tempfile.TemporaryDirectory(prefix="tagtrail-spill-", dir=out) as spill_dir,
    ):
        report("routes", 0.02)
        paths = _route_all(pool, world)
        counts = _run_chunks(pool, world, paths, out, Path(spill_dir), options, report)
        report("emit", 0.9)
        per_protocol, reads_per_protocol = _emit_all(pool, world, tables, out, Path(spill_dir))
    counts["messages_per_protocol"] = dict(sorted(per_protocol.items()))
    counts["reads_per_protocol"] = dict(sorted(reads_per_protocol.items()))
    counts["reads"] = sum(reads_per_protocol.values())
    output.write_summary(out, counts)
    report("done", 1.0)
    return counts


def _in_order(pool: Executor, calls: Iterable[tuple[Callable[..., T], tuple[Any, ...]]],
              window: int) -> Iterator[T]:  # fmt: skip
    """Results of ``calls`` in submission order, at most ``window`` running or waiting."""
    pending: deque[Future[T]] = deque()
    for fn, args in calls:
        pending.append(pool.submit(fn, *args))
        if len(pending) >= window:
            yield pending.popleft().result()
    while pending:
        yield pending.popleft().result()


def _route_all(pool: Executor, world: World) -> FlatPaths:
    """Every intention's path; a (variant, source) pair lives in exactly one part."""
    plan = world.plan
    part = (plan.want_from * 7 + plan.want_variant) % _ROUTE_PARTS
    rows = [np.flatnonzero(part == k) for k in range(_ROUTE_PARTS)]
    found = list(_in_order(pool, ((_route, (r,)) for r in rows), 2 * _ROUTE_PARTS))
    order = np.argsort(np.concatenate(rows), kind="stable")
    return FlatPaths.concat(found).take(order)


def _run_chunks(
    pool: Executor, world: World, paths: FlatPaths, out: Path, spill: Path,
    options: SimOptions, report: Progress,
) -> dict[str, Any]:  # fmt: skip
    """Stage 3: chunk results in bike order to Parquet, spills and in-memory tables."""
    plan = world.plan
    names = pa.array(list(plan.tag_names), pa.string())
    positions = output.RowGroupWriter(out / "truth" / "positions.parquet")
    visits = output.RowGroupWriter(out / "truth" / "visits.parquet")
    trips: list[pd.DataFrame] = []
    passages: list[pd.DataFrame] = []
    thefts = []
    ranges = chunk_ranges(options)
    calls = ((_chunk, (b0, b1, paths.take(plan.intentions_of(b0, b1)))) for b0, b1 in ranges)
    offset = 0
    try:
        for k, res in enumerate(_in_order(pool, calls, window=3)):
            report("bikes", 0.05 + 0.85 * k / len(ranges))
            positions.write(output.positions_table(world.city, res.positions, names, offset))
            visits.write(pa.Table.from_pandas(
                res.visits.assign(trip_id=(res.visits["trip_id"] + offset).astype(np.int32)),
                preserve_index=False,
            ))  # fmt: skip
            trips.append(res.trips.assign(trip_id=(res.trips["trip_id"] + offset).astype(np.int32)))
            offset += len(res.trips)
            passages.append(res.passages)
            thefts.extend(res.thefts)
            _spill(spill, res.reads)
    finally:
        positions.close()
        visits.close()
    all_trips = pd.concat(trips, ignore_index=True)
    # One dtype whatever the number of chunks (pandas infers object or str per concat).
    all_trips["kind"] = all_trips["kind"].astype(str)
    output.write_parquet(all_trips, out / "truth" / "trips.parquet")
    found = sorted_passages(pd.concat(passages, ignore_index=True))
    ranks = np.array(world.reader_ids, dtype=object)
    found = found.assign(tag=plan.tag_names[found["tag"]], reader=ranks[found["reader"]])
    found = found.rename(columns={"tag": "tag_id", "reader": "reader_id"})
    output.write_parquet(found, out / "truth" / "passages.parquet")
    output.write_population(out, plan.bikes, thefts, world.outages)
    return {
        "seed": options.seed, "bikes": len(plan.bikes), "readers": len(world.readers),
        "road_nodes": world.city.n_nodes, "road_edges": world.city.n_edges,
        "trips": len(all_trips), "thefts": len(thefts),
        "thefts_by_van": sum(t.by_van for t in thefts), "positions": positions.rows,
        "passages": len(found), "passages_heard": int(found["heard"].sum()),
        "outages": len(world.outages),
    }  # fmt: skip


def _spill(spill: Path, reads: pd.DataFrame) -> None:
    """Append a chunk's reads to its reader groups' spill files (chunks come in bike order)."""
    group = reads["reader"].to_numpy() // READERS_PER_GROUP
    order = np.argsort(group, kind="stable")
    records = np.empty(len(reads), _READ_DTYPE)
    for name in _READ_DTYPE.names or ():
        records[name] = reads[name].to_numpy()[order]
    bounds = np.searchsorted(group[order], np.arange(group.max(initial=-1) + 2))
    for g in range(len(bounds) - 1):
        if bounds[g + 1] > bounds[g]:
            with (spill / f"{g:05d}.reads").open("ab") as f:
                records[bounds[g] : bounds[g + 1]].tofile(f)


def _emit_all(
    pool: Executor, world: World, tables: EmitTables, out: Path, spill: Path
) -> tuple[Counter[str], Counter[str]]:
    """Stage 4: every reader group's streams, and ``truth/reads.parquet`` in group order."""
    groups = sorted(spill.glob("*.reads"))
    writer = output.RowGroupWriter(out / "truth" / "reads.parquet")
    names = pa.array(list(world.plan.tag_names), pa.string())
    ranks = pa.array(world.reader_ids, pa.string())
    per_protocol: Counter[str] = Counter()
    reads_per_protocol: Counter[str] = Counter()
    try:
        for counts, reads in _in_order(pool, ((_emit_group, (out, g)) for g in groups), 3):
            per_protocol.update(counts)
            reader = reads["reader"].to_numpy()
            kinds, n = np.unique(tables.protocol[reader].astype(str), return_counts=True)
            for protocol, count in zip(kinds.tolist(), n.tolist(), strict=True):
                reads_per_protocol[protocol] += count
            writer.write(pa.table({
                "reader_id": ranks.take(pa.array(reader)), "antenna": reads["antenna"].to_numpy(),
                "tag_id": names.take(pa.array(reads["tag"].to_numpy())),
                "rssi_dbm": reads["rssi_dbm"].to_numpy(),
                "read_at_us": reads["read_at_us"].to_numpy(),
                "true_at_us": reads["true_at_us"].to_numpy(),
            }))  # fmt: skip
        if not groups:  # no reads at all: still an (empty) file with the columns
            writer.write(pa.table({"reader_id": pa.array([], pa.string()),
                                   "antenna": pa.array([], pa.int16()),
                                   "tag_id": pa.array([], pa.string()),
                                   "rssi_dbm": pa.array([], pa.float32()),
                                   "read_at_us": pa.array([], pa.int64()),
                                   "true_at_us": pa.array([], pa.int64())}))  # fmt: skip
    finally:
        writer.close()
    return per_protocol, reads_per_protocol
