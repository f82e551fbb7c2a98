"""Serial readers on pseudo-terminals: each one writes its real frames to the master side of a
pty, and anything that opens the slave device (pyserial, the gateway) reads them as from a
USB-serial reader.

The slave is put in raw mode (no echo, no newline translation: frames are binary), and it stays
open here so that the line does not hang up between a consumer's close and its next open. The
gateway's answers (R2000 inventory commands) arrive on the master; they are drained and dropped,
because a pty whose input is never read blocks its writer once the buffer fills.
"""

from __future__ import annotations

import os
import time
import tty
from collections.abc import Callable, Iterable
from threading import Event

from simulators.emit import ReaderMessage


class PtyPorts:
    """One pty per serial reader; :attr:`paths` maps reader id to the slave device path."""

    def __init__(self, reader_ids: Iterable[str]) -> None:
        self._master: dict[str, int] = {}
        self._slave: dict[str, int] = {}
        self.paths: dict[str, str] = {}
        self.written = 0
        for reader_id in sorted(set(reader_ids)):
            master, slave = os.openpty()
            tty.setraw(slave)
            os.set_blocking(master, True)
            self._master[reader_id], self._slave[reader_id] = master, slave
            self.paths[reader_id] = os.ttyname(slave)

    def write(self, message: ReaderMessage) -> None:
        """Write one message's bytes to its reader's pty (blocks while the consumer lags)."""
        master = self._master[message.reader_id]
        view = memoryview(message.payload)
        while view:
            view = view[os.write(master, view) :]
        self.written += 1
        self._drain(master)

    @staticmethod
    def _drain(master: int) -> None:
        os.set_blocking(master, False)
        try:
            while os.read(master, 4096):
                pass
        except (BlockingIOError, OSError):
            pass  # nothing to read (or the consumer is gone): both are fine here
        finally:
            os.set_blocking(master, True)

    def close(self) -> None:
        """Close both sides of every pty."""
        for fd in (*self._master.values(), *self._slave.values()):
            os.close(fd)
        self._master.clear()
        self._slave.clear()


def paced(
    messages: Iterable[ReaderMessage],
    send: Callable[[ReaderMessage], None],
    *,
    stop: Event,
    speedup: float | None,
    sim_start_us: int,
    wall_start: float | None = None,
) -> int:
    """Send messages at their true time × ``speedup`` (None: as fast as possible); returns count.

    A message whose time has already passed goes out at once, so a slow consumer makes the
    stream late, never reordered.
    """
    start = time.time() if wall_start is None else wall_start
    sent = 0
    for message in messages:
        if stop.is_set():
            break
        if speedup is not None:
            delay = start + (message.true_at_us - sim_start_us) / 1e6 / speedup - time.time()
            if delay > 0 and stop.wait(delay):
                break
        send(message)
        sent += 1
    return sent
