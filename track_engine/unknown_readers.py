"""Reads of readers the deployment registry does not know are held apart, never tracked.

A reader id that is not in ``readers`` has no position: its reads would become a bike's
"last seen" nowhere, and a mistyped or rogue reader id would feed routes and alerts. Such reads
are taken out of the micro-batch before the engine codes it (:meth:`UnknownReaders.hold_apart`,
called once, in ``track_engine.pipeline.Engine.prepare`` before the pure core sees the batch),
stored in ``unknown_reader_reads`` (idempotent: a redelivered batch adds nothing) and counted
(``on_held``: the engine's metric), for operators to see (``/api/v1/unknown-readers``) and to
import the reader or fix its configuration.

A registry with no reader at all holds nothing apart: no deployment is loaded yet (a replay, a
benchmark, a test of the engine alone), so there is nothing to tell known from unknown by.
A reader imported while the engine runs is known at its next read: an id not in the set
loaded is looked up again (at most every ``reload_s``) before its reads are held apart.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import replace

import numpy as np
import psycopg

from reader_gateway.wire import ReadBatch

_INSERT = """
    INSERT INTO unknown_reader_reads (reader_id, tag_id, antenna, rssi_dbm, read_at, gateway_id)
    SELECT r, t, a, s, timestamptz 'epoch' + u * interval '1 microsecond', g
    FROM unnest(%s::text[], %s::text[], %s::smallint[], %s::real[], %s::bigint[], %s::text[])
         AS x(r, t, a, s, u, g)
    ON CONFLICT DO NOTHING"""


class UnknownReaders:
    """The registry's reader ids, and what to do with reads of any other reader."""

    def __init__(
        self,
        *,
        reload_s: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        on_held: Callable[[int], object] | None = None,
    ) -> None:
        self.known: frozenset[str] = frozenset()
        self.held_reads = 0  # new ones stored since start
        self.on_held = on_held
        self._reload_s = reload_s
        self._clock = clock
        self._loaded_at = float("-inf")

    def load(self, conn: psycopg.Connection) -> None:
        """Read the registry's reader ids (in the caller's transaction)."""
        self.known = frozenset(str(r[0]) for r in conn.execute("SELECT reader_id FROM readers"))
        self._loaded_at = self._clock()

    def hold_apart(self, conn: psycopg.Connection, batches: Sequence[ReadBatch]) -> list[ReadBatch]:
        """``batches`` without the reads of unknown readers, which are stored and counted
        (in a transaction of their own, or a savepoint of the caller's)."""
        kept = list(batches)
        if not self.known:
            return kept
        unknown = {r for b in kept for r in b.readers if r not in self.known}
        if unknown and self._clock() - self._loaded_at >= self._reload_s:
            with conn.transaction():
                self.load(conn)  # imported since we last looked?
            unknown -= self.known
        if not unknown:
            return kept
        held: list[tuple[list[object], ...]] = []
        out = []
        for batch in kept:
            batch_kept, columns = _split(batch, unknown)
            out.append(batch_kept)
            if columns is not None:
                held.append(columns)
        if held:
            columns = tuple([v for c in held for v in c[i]] for i in range(6))
            with conn.transaction():
                count = conn.execute(_INSERT, columns).rowcount  # a redelivery adds none
            self.held_reads += count
            if count and self.on_held is not None:
                self.on_held(count)
        return out


def _split(
    batch: ReadBatch, unknown: set[str]
) -> tuple[ReadBatch, tuple[list[object], ...] | None]:
    """The batch without reads of ``unknown`` readers, and those reads as insert columns."""
    codes = [i for i, r in enumerate(batch.readers) if r in unknown]
    if not codes:
        return batch, None
    held = np.isin(batch.reader, codes)
    keep_codes = [i for i, r in enumerate(batch.readers) if r not in unknown]
    remap = np.full(len(batch.readers), -1, dtype=batch.reader.dtype)
    remap[keep_codes] = np.arange(len(keep_codes), dtype=batch.reader.dtype)
    kept = ~held
    batch_kept = replace(
        batch,
        readers=tuple(batch.readers[i] for i in keep_codes),
        reader=remap[batch.reader[kept]],
        antenna=batch.antenna[kept],
        tag=batch.tag[kept],
        rssi_dbm=batch.rssi_dbm[kept],
        read_at_us=batch.read_at_us[kept],
        seq=batch.seq[kept],
    )
    names = np.asarray(batch.readers, dtype=object)[batch.reader[held]]
    n = int(held.sum())
    columns: tuple[list[object], ...] = (
        names.tolist(),
        batch.tag[held].tolist(),
        batch.antenna[held].astype(int).tolist(),
        batch.rssi_dbm[held].astype(float).tolist(),
        batch.read_at_us[held].astype(int).tolist(),
        [batch.gateway_id] * n,
    )
    return batch_kept, columns
