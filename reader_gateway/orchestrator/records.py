"""Spool records of the gateway: one wire batch with the shard it goes to and its read count.

The shard and the count sit in a fixed header in front of the wire bytes, so that publishing
(and counting a confirmed batch) needs no JSON decode.
"""

from __future__ import annotations

import struct

from reader_gateway.wire import ReadBatch, encode_batch

_RECORD_HEAD = struct.Struct(">HI")  # shard, number of reads; then the wire batch bytes


def encode_record(shard: int, batch: ReadBatch) -> bytes:
    """Spool record of one batch: shard, read count, wire bytes."""
    return _RECORD_HEAD.pack(shard, len(batch)) + encode_batch(batch)


def decode_record(payload: bytes) -> tuple[int, int, bytes]:
    """(shard, read count, wire bytes) of a spool record."""
    shard, count = _RECORD_HEAD.unpack_from(payload)
    return shard, count, payload[_RECORD_HEAD.size :]
