"""The bench's pty feeder counts what it fed exactly, and at a feed rate feeds every read.

A reader thread drains the slave side of each real pty (as the gateway's serial transport
does), slower than the pace when the test needs a pipeline that lags behind its feed.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time

from tagtrail.bench.ingest import feed_plan
from tagtrail.bench.ptys import PtyFeeder

_FRAME = 32


def _stream(pty: int, frames: int) -> bytes:
    """Distinct frames, so a lost, torn or reordered one shows in the bytes read."""
    return b"".join((pty * 1_000_000 + i).to_bytes(8, "big") * (_FRAME // 8) for i in range(frames))


class _SlowReader:
    """Reads one pty's slave side ``chunk`` bytes at a time, ``pause_s`` apart."""

    def __init__(self, path: str, *, chunk: int, pause_s: float) -> None:
        self.fd = os.open(path, os.O_RDONLY | os.O_NOCTTY | os.O_NONBLOCK)
        self.chunk, self.pause_s = chunk, pause_s
        self.got = bytearray()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            self.read_now()
            self.stop.wait(self.pause_s)

    def read_now(self) -> None:
        with contextlib.suppress(BlockingIOError):  # nothing there yet
            self.got += os.read(self.fd, self.chunk)

    def finish(self, expected: int, timeout_s: float = 10.0) -> bytes:
        """Stop pacing; read what is still in the pty until ``expected`` bytes have come."""
        self.stop.set()
        self.thread.join(5)
        deadline = time.monotonic() + timeout_s
        while len(self.got) < expected and time.monotonic() < deadline:
            self.read_now()
            time.sleep(0.01)
        self.read_now()
        os.close(self.fd)
        return bytes(self.got)


def test_at_a_feed_rate_every_frame_is_fed_though_the_reader_lags_behind_the_pace() -> None:
    frames, rate = 3000, 10_000.0  # two ptys: 0.6 s at the pace
    nominal_s = 2 * frames / rate
    feeder = PtyFeeder(2, frame_bytes=_FRAME)
    # ~1,600 frames/s per pty: the reader needs about three times the pace's time.
    readers = [_SlowReader(p, chunk=1024, pause_s=0.02) for p in feeder.paths]
    streams = [_stream(i, frames) for i in range(2)]
    try:
        started = time.monotonic()
        feeder.run(streams, **feed_plan(rate, started + nominal_s))
        elapsed = time.monotonic() - started
        got = [r.finish(len(s)) for r, s in zip(readers, streams, strict=True)]
    finally:
        feeder.close()
    assert elapsed > nominal_s  # a timer ending with the pace would have cut the tail off
    assert feeder.frames_written == 2 * frames
    assert got == streams


def test_as_fast_as_they_drain_the_feed_stops_at_its_deadline_and_counts_whole_frames() -> None:
    frames = 20_000  # far more than a slow reader takes in 0.5 s
    feeder = PtyFeeder(1, frame_bytes=_FRAME)
    reader = _SlowReader(feeder.paths[0], chunk=1000, pause_s=0.01)  # tears frames
    stream = _stream(0, frames)
    try:
        started = time.monotonic()
        feeder.run([stream], **feed_plan(None, started + 0.5))
        elapsed = time.monotonic() - started
        got = reader.finish(feeder.written[0])
    finally:
        feeder.close()
    assert 0.5 <= elapsed < 5.0
    assert 0 < feeder.frames_written < frames
    assert got == stream[: feeder.written[0]]
    assert feeder.frames_written == len(got) // _FRAME  # a torn last frame is not counted


def test_a_pty_nobody_reads_ends_the_feed_after_the_stall_bound() -> None:
    feeder = PtyFeeder(1, frame_bytes=_FRAME)
    stream = _stream(0, 50_000)  # 1.6 MB: far more than a pty buffers
    try:
        started = time.monotonic()
        feeder.run([stream], frames_per_s=1e9, stall_s=0.3)
        elapsed = time.monotonic() - started
    finally:
        feeder.close()
    assert 0.3 <= elapsed < 5.0
    assert feeder.frames_written * _FRAME <= feeder.written[0] < len(stream)
