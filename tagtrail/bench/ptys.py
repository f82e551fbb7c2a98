"""Serial readers on pseudo-terminals, fed from prepared byte streams as fast as they drain.

Each pty's slave side is what the gateway opens as a serial port (raw mode, kept open here so
the line never hangs up); the master side gets that port's stream. A pty holds only a few
kilobytes, so a gateway that falls behind blocks the writer: the rate that comes out is what
the pipeline accepts, not what the feeder could write. The gateway's replies (none for
active-tag readers) are drained so they can never fill the other direction.
"""

from __future__ import annotations

import contextlib
import os
import select
import threading
import time
import tty
from collections.abc import Sequence

_WRITE_BYTES = 32 * 1024


class PtyFeeder:
    """One pty per stream; :meth:`run` writes the streams until done, a deadline, a stall or
    stop."""

    def __init__(self, count: int, *, frame_bytes: int) -> None:
        """Open ``count`` ptys; streams are cut at multiples of ``frame_bytes``."""
        self.frame_bytes = frame_bytes
        self._master: list[int] = []
        self._slave: list[int] = []
        self.paths: list[str] = []
        for _ in range(count):
            master, slave = os.openpty()
            tty.setraw(slave)
            os.set_blocking(master, False)
            self._master.append(master)
            self._slave.append(slave)
            self.paths.append(os.ttyname(slave))
        self.written = [0] * count
        self.stop = threading.Event()

    @property
    def frames_written(self) -> int:
        """Whole frames written so far, all ptys together."""
        return sum(w // self.frame_bytes for w in self.written)

    def run(
        self,
        streams: Sequence[bytes],
        *,
        deadline: float | None = None,
        frames_per_s: float | None = None,
        stall_s: float | None = None,
    ) -> None:
        """Write each stream to its pty until all are written, ``deadline`` (monotonic) or stop.

        With ``frames_per_s`` the streams together go no faster than that (a background load);
        without, as fast as the ptys drain. Without ``deadline`` every frame is written however
        long the reader takes to accept them (a fixed count, not a fixed time); ``stall_s``
        gives up when the ptys have accepted nothing for that long (the reader stopped).
        """
        views = [memoryview(s) for s in streams]
        started = last_progress = time.monotonic()
        while not self.stop.is_set():
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                return
            if stall_s is not None and now - last_progress > stall_s:
                return
            todo = [i for i, v in enumerate(views) if self.written[i] < len(v)]
            if not todo:
                return
            if frames_per_s is not None:
                allowed = (now - started) * frames_per_s
                if self.frames_written >= allowed:
                    last_progress = now  # held back by the pace, not by the reader
                    self.stop.wait(0.005)  # pacing, not synchronisation
                    continue
            fds = [self._master[i] for i in todo]
            readable, writable, _ = select.select(fds, fds, [], 0.1)
            for fd in readable:
                self._drain(fd)
            for fd in writable:
                i = self._master.index(fd)
                chunk = views[i][self.written[i] : self.written[i] + _WRITE_BYTES]
                try:
                    self.written[i] += os.write(fd, chunk)
                except BlockingIOError:
                    continue
                last_progress = time.monotonic()

    @staticmethod
    def _drain(fd: int) -> None:
        # Stops at nothing more to read now, or at a port the gateway closed: both fine.
        with contextlib.suppress(BlockingIOError, OSError):
            while os.read(fd, 4096):
                continue

    def close(self) -> None:
        """Close both sides of every pty."""
        for fd in (*self._master, *self._slave):
            os.close(fd)
        self._master.clear()
        self._slave.clear()
