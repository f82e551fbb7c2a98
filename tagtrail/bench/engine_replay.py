"""Simulated reads through the real gateway normalizer and the real engine, in memory.

What a deployment does to a read before path choice sees it, without a broker or a database:
the gateway's :class:`~reader_gateway.pipeline.normalize.Normalizer` takes each reader's
surveyed clock offset off and cuts wire batches, and the engine
(:class:`track_engine.core.engine.Engine`) folds them into passages, stored by
:class:`~track_engine.storage.memory.MemoryStorage`.
The benchmarks that score routes (``tagtrail bench accuracy``) read their passages from here,
so they measure the engine itself, not a copy of its fold.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from reader_gateway.pipeline.normalize import Normalizer
from reader_gateway.protocols.base import ReadBlock
from simulators.readers import SimReader
from track_engine.core.engine import Engine
from track_engine.storage.memory import MemoryStorage

# Reads per block handed to the normalizer, and per wire batch it publishes (the gateway's
# default batch size).
_BLOCK_READS = 5_000
_BATCH_READS = 500


def estimate_passages(
    reads: pd.DataFrame, readers: list[SimReader], *, gap_s: float = 10.0
) -> pd.DataFrame:
    """The passages the engine stores for simulated ``reads`` (columns tag_id, reader_id,
    antenna, rssi_dbm, read_at_us on the reader's clock, and true_at_us when there is one).

    Reads reach the gateway in true time (a reader with a fast clock still sends as it
    hears), so they are replayed in ``true_at_us`` order when the simulator gives it.

    Read times are corrected by each reader's surveyed clock offset (the gateway's
    normalizer), and the direction of travel at two-antenna readers comes from their surveyed
    antenna headings (what the registry knows). Replayed data: no wall-clock cap on event
    time.
    """
    normalizer = Normalizer(
        "bench-replay",
        shard_count=1,
        clock_offsets_s={r.reader_id: r.clock_offset_s for r in readers},
        max_batch_reads=_BATCH_READS,
    )
    storage = MemoryStorage(
        antenna_headings={r.reader_id: r.antenna_heading_deg for r in readers if r.antennas >= 2}
    )
    engine = Engine(storage, gap_s=gap_s)
    if "true_at_us" in reads.columns:
        reads = reads.sort_values("true_at_us", kind="stable")
    for lo in range(0, len(reads), _BLOCK_READS):
        normalizer.add_block(_block(reads.iloc[lo : lo + _BLOCK_READS]))
        batches = normalizer.take(now_us=0, force=True)
        engine.process([batch for _, batch in batches])
    engine.flush()
    return storage.passages()


def _block(reads: pd.DataFrame) -> ReadBlock:
    """Simulated reads as a decoder's block (reader sequence numbers in read order)."""
    reader, names = pd.factorize(reads["reader_id"].astype(str))
    n = len(reads)
    return ReadBlock(
        tag_id=reads["tag_id"].astype(str).to_numpy(dtype=object),
        antenna=reads["antenna"].to_numpy(dtype=np.int16),
        rssi_dbm=reads["rssi_dbm"].to_numpy(dtype=np.float32),
        read_at_us=reads["read_at_us"].to_numpy(dtype=np.int64),
        readers=tuple(str(r) for r in names),
        reader=reader.astype(np.intp),
        reader_seq=np.arange(n, dtype=np.int64),
        tamper=np.zeros(n, dtype=bool),
        low_battery=np.zeros(n, dtype=bool),
    )
