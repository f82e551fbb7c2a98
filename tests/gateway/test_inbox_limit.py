"""Serial reads queued past one step's item limit: every chunk is handled, none is dropped.

At an overfeed the ports keep the gateway's inbox from emptying, so a step reaches its limit
(``_MAX_TAKE`` items, so that acknowledgements and publishing keep up). The step used to take
one more item out of the inbox and then leave without handling it: one serial read (up to
64 KiB of frames, already gone from the port) lost each time, 512-2,449 frames in a 1-2 min
``tagtrail bench ingest --feed-rate 250000`` run. Here the limit is 2 and the inbox holds a
dozen reads from a real pty, so the old code drops several on every run.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gw_helpers import PtyReader, active_frames, spool_only_config, wait_until

from reader_gateway.orchestrator import gateway as gateway_module
from reader_gateway.orchestrator.gateway import Gateway
from reader_gateway.transport.serial import SerialChunk

_LIMIT = 2
_BURSTS = 12
_PER_BURST = 40  # frames written at once, each burst decoded (1-2 reads) before the next


def _queued(gateway: Gateway) -> tuple[int, int]:
    """(serial chunks, frames in them) waiting in the gateway's inbox."""
    inbox = gateway._inbox
    with inbox.mutex:
        items = list(inbox.queue)
    chunks = [i for i in items if isinstance(i, SerialChunk)]
    return len(chunks), sum(c.result.read_count for c in chunks)


@pytest.fixture
def gateway_with_queued_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Gateway, int, int]]:
    """A gateway (limit ``_LIMIT``) whose inbox holds a dozen reads from a real pty:
    (gateway, chunks queued, frames in them)."""
    reader = PtyReader(tmp_path / "ttyA")
    config = spool_only_config(tmp_path, reader.link, gateway_id="gw-inbox", max_delay_s=0.01)
    monkeypatch.setattr(gateway_module, "_MAX_TAKE", _LIMIT)
    gateway = Gateway(config)
    gateway.start()  # the serial thread reads into the inbox; steps are taken here, by hand
    try:
        wait_until(lambda: gateway._inbox.qsize() > 0, 10, "the port to open")
        gateway.step(timeout_s=0.01)
        assert gateway.readers["AT-00000007"].connected
        frames = active_frames(_BURSTS * _PER_BURST)
        for b in range(_BURSTS):
            reader.write(b"".join(frames[b * _PER_BURST : (b + 1) * _PER_BURST]))
            wait_until(
                lambda b=b: _queued(gateway)[1] == (b + 1) * _PER_BURST, 5, f"burst {b} read"
            )
        chunks, queued_frames = _queued(gateway)
        assert chunks >= _BURSTS > 2 * _LIMIT  # several steps reach the limit
        yield gateway, chunks, queued_frames
    finally:
        gateway.close()
        reader.close()


def test_a_step_at_its_item_limit_leaves_the_rest_queued(
    gateway_with_queued_reads: tuple[Gateway, int, int],
) -> None:
    gateway, chunks, frames = gateway_with_queued_reads
    health = gateway.readers["AT-00000007"]
    steps = 0
    while not gateway._inbox.empty():
        gateway.step(timeout_s=0.01)
        steps += 1
    assert health.messages == chunks, "reads taken from the inbox and never handled"
    assert health.frames == frames
    assert steps == -(-chunks // _LIMIT)  # each step took its limit, the last the rest
    for _ in range(100):  # cut what is pending (max_delay_s) and spool it
        if gateway.reads_accepted == frames:
            break
        gateway.step(timeout_s=0.01)
    assert gateway.reads_accepted == frames
    assert gateway.spool.unacked > 0


def test_stopping_spools_every_read_the_ports_had_read(
    gateway_with_queued_reads: tuple[Gateway, int, int],
) -> None:
    # Stopped with a dozen reads queued, many more than one step takes: all are spooled.
    gateway, _, frames = gateway_with_queued_reads
    stop = threading.Event()
    stop.set()
    gateway.run(stop)
    assert gateway._inbox.empty()
    assert gateway.readers["AT-00000007"].frames == frames
    assert gateway.reads_accepted == frames
    assert gateway.normalizer.pending_reads == 0
