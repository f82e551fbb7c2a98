"""The active-tag decoder's fast path (runs of good frames) must decode exactly as the
resyncing splitter alone does, wherever the stream is cut and whatever noise sits in it.

Regression for the decoder speed-up of the performance work: benchmark streams cut at every
kind of offset, with noise, a corrupted CRC and a reserved flag bit between good frames, are
compared read by read and reject by reject with the same decoder whose fast path is off.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from reader_gateway.protocols.base import DecodeResult, TagRead
from reader_gateway.protocols.tagtrail_active import FRAME_LEN, TagtrailActiveDecoder
from tagtrail.bench.workload import Workload, frames, make_reads, reader_seq

_AT = datetime(2026, 11, 29, 8, 0, tzinfo=UTC)


def _stream(passages: int) -> bytes:
    reads = make_reads(
        Workload(tags=500), first_passage=0, passages=passages, t0_us=1_795_900_000_000_000
    )
    return frames(reads, reader_seq(reads["reader"].to_numpy(np.int64), {}))


_GOOD = _stream(40)  # 600 frames


class _SplitterOnly(TagtrailActiveDecoder):
    """The same decoder with the fast path switched off: the reference behaviour."""

    def _fast_run(self, result: DecodeResult) -> None:
        del result


def _decode(
    decoder: TagtrailActiveDecoder, data: bytes, cuts: list[int]
) -> tuple[list[TagRead], list[str]]:
    reads: list[TagRead] = []
    rejects: list[str] = []
    edges = sorted({0, len(data), *(c % (len(data) + 1) for c in cuts)})
    for lo, hi in itertools.pairwise(edges):
        result = decoder.decode(data[lo:hi], _AT)
        reads += result.tag_reads()
        rejects += [r.reason for r in result.rejects]
    tail = decoder.flush(_AT)
    return reads + tail.tag_reads(), rejects + [r.reason for r in tail.rejects]


def _damaged(data: bytes, where: list[int], kinds: list[int]) -> bytes:
    out = bytearray(data)
    for at, kind in sorted(zip(where, kinds, strict=False), reverse=True):
        pos = (at % (len(data) // FRAME_LEN)) * FRAME_LEN
        if kind == 0:
            out[pos:pos] = b"\xa5\x5a\x01noise"  # a false sync in noise
        elif kind == 1:
            out[pos + FRAME_LEN - 1] ^= 0xFF  # broken CRC
        else:
            out[pos + 29] |= 0x80  # a reserved flag bit (so the CRC fails as well)
    return bytes(out)


def test_clean_stream_in_4k_chunks_decodes_every_frame() -> None:
    reads, rejects = _decode(TagtrailActiveDecoder(), _GOOD, list(range(0, len(_GOOD), 4096)))
    assert len(reads) == len(_GOOD) // FRAME_LEN
    assert rejects == []
    assert reads == _decode(_SplitterOnly(), _GOOD, [len(_GOOD)])[0]


@settings(max_examples=60, deadline=None)
@given(
    cuts=st.lists(st.integers(min_value=0, max_value=len(_GOOD)), max_size=12),
    where=st.lists(st.integers(min_value=0, max_value=10_000), max_size=4),
    kinds=st.lists(st.integers(min_value=0, max_value=2), min_size=4, max_size=4),
)
def test_fast_path_equals_the_splitter(cuts: list[int], where: list[int], kinds: list[int]) -> None:
    data = _damaged(_GOOD, where, kinds)
    assert _decode(TagtrailActiveDecoder(), data, cuts) == _decode(_SplitterOnly(), data, cuts)
