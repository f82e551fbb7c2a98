"""A decoder's column block normalizes exactly as the same reads one object at a time.

``Normalizer.add_block`` is the busy gateway's numpy path; ``Normalizer.add`` is the reference.
Both run on the same reads (several blocks in a row, readers named by the frames or by the
transport, reader aliases, antenna maps, clock estimation, one or several shards) and must
leave the same batches and clock estimates behind.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from reader_gateway.pipeline.clock import ClockEstimator
from reader_gateway.pipeline.normalize import Normalizer
from reader_gateway.pipeline.refusals import ReadWindow
from reader_gateway.protocols.base import ReadBlock

T0_US = int(datetime(2026, 11, 29, 6, 0, tzinfo=UTC).timestamp()) * 1_000_000
RECEIVED = datetime(2026, 11, 29, 6, 0, 5, tzinfo=UTC)

_read = st.tuples(
    st.sampled_from(["AT-00000001", "AT-00000002", "AT-0000000A", "R9"]),  # reader
    st.sampled_from(["0123456789ABCDEF", "00000000000000FF", "E2801160600002AB"]),  # tag
    st.integers(1, 4),  # antenna
    st.integers(-100, 20),  # rssi
    st.integers(0, 30_000_000),  # reader time after T0, µs
    st.integers(0, 2**32 - 1),  # reader sequence number
    st.booleans(),  # tamper
)


def _block(reads: list[tuple[str, str, int, int, int, int, bool]]) -> ReadBlock:
    def objects(values: list[str]) -> np.ndarray:
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out

    return ReadBlock(
        tag_id=objects([r[1] for r in reads]),
        antenna=np.array([r[2] for r in reads], dtype=np.int16),
        rssi_dbm=np.array([r[3] for r in reads], dtype=np.float32),
        read_at_us=np.array([T0_US + r[4] for r in reads], dtype=np.int64),
        readers=tuple(dict.fromkeys(r[0] for r in reads)),
        reader=np.array([list(dict.fromkeys(r[0] for r in reads)).index(r[0]) for r in reads]),
        reader_seq=np.array([r[5] for r in reads], dtype=np.int64),
        tamper=np.array([r[6] for r in reads], dtype=bool),
        low_battery=np.zeros(len(reads), dtype=bool),
    )


def _normalizer(shards: int, aliases: bool, window: ReadWindow | None) -> Normalizer:
    return Normalizer(
        "gw",
        shard_count=shards,
        clock=ClockEstimator({"AT-00000002": 1.5}, min_samples=2),
        reader_aliases={"AT-0000000A": "pole-10"} if aliases else None,
        read_window=window,
    )


def _state(norm: Normalizer) -> object:
    batches = [
        (
            shard,
            b.readers,
            b.reader.tolist(),
            b.antenna.tolist(),
            b.tag.tolist(),
            b.rssi_dbm.tolist(),
            b.read_at_us.tolist(),
            b.seq.tolist(),
        )
        for shard, b in sorted(norm.take(now_us=1, force=True), key=lambda sb: sb[0])
    ]
    return batches, norm.clock.offsets_s(), norm.counters.rejects


@settings(max_examples=150, deadline=None)
@given(
    blocks=st.lists(st.lists(_read, min_size=1, max_size=40), min_size=1, max_size=4),
    shards=st.sampled_from([1, 3]),
    aliases=st.booleans(),
    antenna_map=st.sampled_from([None, {1: 2, 2: 1}, {4: 7}]),
    # The transport's reader: none (every read names its own), or one that frames naming
    # other readers are refused against.
    bound=st.sampled_from([None, "AT-00000001", "pole-10"]),
    # Reads lie 0-30 s after T0 and arrive at T0 + 5 s: a narrow window refuses some.
    window=st.sampled_from([None, ReadWindow(max_age_s=3.0, max_lead_s=12.0)]),
)
def test_a_block_normalizes_as_its_reads_do(
    blocks: list[list[tuple[str, str, int, int, int, int, bool]]],
    shards: int,
    aliases: bool,
    antenna_map: dict[int, int] | None,
    bound: str | None,
    window: ReadWindow | None,
) -> None:
    by_block = _normalizer(shards, aliases, window)
    by_read = _normalizer(shards, aliases, window)
    for reads in blocks:
        block = _block(reads)
        kept = by_block.add_block(
            block, reader_id=bound, received_at=RECEIVED, antenna_map=antenna_map
        )
        assert kept == by_read.add(
            block.tag_reads(), reader_id=bound, received_at=RECEIVED, antenna_map=antenna_map
        )
        refused = sum(r.reads for r in by_block.take_refusals())
        assert refused == sum(r.reads for r in by_read.take_refusals())
        assert kept + refused == len(reads)
        assert by_block.pending_reads == by_read.pending_reads
    assert _state(by_block) == _state(by_read)


def test_with_deduplication_a_block_goes_read_by_read() -> None:
    reads = [("AT-00000001", "0123456789ABCDEF", 1, -60, t, 1, False) for t in (0, 100, 2_000_000)]
    norm = Normalizer("gw", shard_count=1, dedupe_window_s=1.0)
    assert norm.add_block(_block(reads), received_at=RECEIVED) == 2
    assert norm.counters.duplicates["AT-00000001"] == 1
