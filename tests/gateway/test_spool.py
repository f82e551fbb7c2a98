"""The disk spool: order, acknowledgement-driven deletion, crash recovery, refusal when full."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from reader_gateway.spool import Spool, SpoolError, SpoolFullError


def _spool(path: Path, **kw: int) -> Spool:
    return Spool(path, max_bytes=kw.get("max_bytes", 1 << 20), segment_bytes=kw.get("seg", 256))


def test_records_come_back_in_order_and_acked_segments_go(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    ids = [i for n in range(20) for i in spool.append([f"batch-{n}".encode() * 10])]
    assert ids == list(range(1, 21))
    # One append is one write to one segment; 256-byte segments roll between appends.
    assert len(list(tmp_path.glob("*.seg"))) > 3
    taken = spool.take_unsent(100)
    assert [r.payload for r in taken] == [f"batch-{i}".encode() * 10 for i in range(20)]
    for record in taken:
        spool.ack(record.record_id)
    assert spool.unacked == 0
    # Only the fresh, empty newest segment is left; its name keeps ids rising.
    [left] = list(tmp_path.glob("*.seg"))
    assert left.stat().st_size == 0
    spool.close()
    assert _spool(tmp_path).append([b"x"]) == [21]


def test_restart_replays_everything_not_acknowledged_in_order(tmp_path: Path) -> None:
    spool = _spool(tmp_path)
    for i in range(12):
        spool.append([bytes([i]) * 50])
    for record in spool.take_unsent(5):
        spool.ack(record.record_id)
    spool.take_unsent(3)  # sent, never acknowledged: the process dies here
    spool.close()
    again = _spool(tmp_path)
    replay = again.take_unsent(100)
    # At-least-once: what was in an acked segment is gone, the rest comes back in order.
    assert [r.record_id for r in replay] == sorted(r.record_id for r in replay)
    assert {r.record_id for r in replay} >= set(range(6, 13))
    assert [r.payload for r in replay if r.record_id >= 6] == [
        bytes([i]) * 50 for i in range(5, 12)
    ]


def test_torn_tail_is_cut_and_appending_goes_on(tmp_path: Path) -> None:
    spool = _spool(tmp_path, seg=1 << 16)
    spool.append([b"one", b"two"])
    spool.close()
    [seg] = list(tmp_path.glob("*.seg"))
    with seg.open("ab") as handle:  # a crash in the middle of writing a third record
        handle.write(b"\x00\x00\x00\x10\xde\xad")
    again = _spool(tmp_path, seg=1 << 16)
    assert again.torn_tails == 1
    assert [r.payload for r in again.take_unsent(10)] == [b"one", b"two"]
    assert again.append([b"three"]) == [3]
    again.close()
    assert [r.payload for r in _spool(tmp_path, seg=1 << 16).take_unsent(10)] == [
        b"one",
        b"two",
        b"three",
    ]


def test_a_corrupt_older_segment_is_kept_aside(tmp_path: Path) -> None:
    spool = _spool(tmp_path, seg=64)
    for payload in (b"a" * 40, b"b" * 40, b"c" * 40):
        spool.append([payload])
    spool.close()
    first = sorted(tmp_path.glob("*.seg"))[0]
    data = bytearray(first.read_bytes())
    data[-1] ^= 0xFF  # flip a payload bit: the CRC no longer matches
    first.write_bytes(bytes(data))
    again = _spool(tmp_path, seg=64)
    assert again.corrupt_segments == 1
    assert list(tmp_path.glob("*.corrupt"))
    # Records before the damage and in later segments are replayed; the damaged one is not.
    assert [r.payload for r in again.take_unsent(10)] == [b"a" * 40, b"c" * 40]


def test_a_full_spool_refuses_loudly_and_writes_nothing(tmp_path: Path) -> None:
    spool = _spool(tmp_path, max_bytes=1 << 16, seg=1 << 20)
    spool.append([b"x" * 30_000, b"y" * 30_000])
    size = spool.bytes_used
    with pytest.raises(SpoolFullError, match="full"):
        spool.append([b"z" * 10_000])
    assert spool.bytes_used == size
    assert spool.unacked == 2


def test_a_failed_write_is_cut_off_and_later_records_survive(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = _spool(tmp_path, seg=1 << 16)
    spool.append([b"before"])
    real_write = os.write

    def half_then_fail(fd: int, data: bytes) -> int:
        real_write(fd, data[: len(data) // 2])
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("reader_gateway.spool.os.write", half_then_fail)
    with pytest.raises(SpoolError, match="No space"):
        spool.append([b"lost" * 100])
    monkeypatch.undo()
    assert spool.append([b"after"]) == [2]  # the refused record took no id
    spool.close()
    again = _spool(tmp_path, seg=1 << 16)
    assert again.torn_tails == 0
    assert [r.payload for r in again.take_unsent(10)] == [b"before", b"after"]
