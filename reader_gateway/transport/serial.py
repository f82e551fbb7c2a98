"""Serial transport: one thread per configured port, decoding as bytes arrive.

The thread opens the port (a device path or a stable symlink such as /dev/serial/by-id/...),
sends the protocol's start command, then reads whatever bytes the port has, hands them to the
port's decoder with the time they arrived, writes the decoder's reply bytes back (e.g. the
R2000 inventory command after each round summary) and passes the result to ``sink``.
Garbage is the decoder's business: it rejects it and resynchronises on the next frame.

When the port goes away (USB unplugged, pty closed) the thread flushes the decoder (a frame
cut in half is a reject), reports the port closed, and reopens it with exponential backoff
for as long as the gateway runs. A fresh decoder is used after a reopen: bytes from before the
unplug cannot complete a frame after it.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import serial

from reader_gateway.config import SerialPortConfig
from reader_gateway.protocols import make_decoder, start_command
from reader_gateway.protocols.base import DecodeResult

log = logging.getLogger(__name__)

_READ_TIMEOUT_S = 0.1  # how often a blocked read wakes up to look at the stop flag
# A read that returns this much found the kernel's buffer (4 KiB for a tty) nearly full: the
# port is busy (a concentrator, a pty under test), and it pays to gather more before decoding,
# because each hand-over to the gateway thread has a fixed cost. Gathering stops at
# _GATHER_BYTES or after _GATHER_S, so a read waits at most a few ms longer.
_BUSY_BYTES = 2048
_GATHER_BYTES = 64 * 1024
_GATHER_S = 0.004
_GATHER_POLL_S = 0.0005


@dataclass(frozen=True, slots=True)
class SerialChunk:
    """What one read from a port produced, already decoded."""

    config: SerialPortConfig
    result: DecodeResult
    received_at: datetime


@dataclass(frozen=True, slots=True)
class PortState:
    """A port was opened (``connected``) or lost."""

    config: SerialPortConfig
    connected: bool
    detail: str = ""


class SerialReader:
    """Reads one serial port on a thread of its own until :meth:`stop`."""

    def __init__(
        self, config: SerialPortConfig, sink: Callable[[SerialChunk | PortState], None]
    ) -> None:
        self.config = config
        self._sink = sink
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, name=f"serial-{config.reader_id}", daemon=True
        )
        self.opens = 0

    def start(self) -> None:
        """Start the reading thread."""
        self._thread.start()

    def stop(self, timeout_s: float = 2.0) -> None:
        """Ask the thread to stop and wait for it."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def _run(self) -> None:
        backoff_s = self.config.reopen_min_s
        while not self._stop.is_set():
            try:
                port = serial.serial_for_url(
                    self.config.port, baudrate=self.config.baud, timeout=_READ_TIMEOUT_S
                )
            except (serial.SerialException, OSError, ValueError) as exc:
                log.debug("serial %s: cannot open: %s", self.config.port, exc)
                # Wait on the stop flag, not a sleep, so that stop() is never held up.
                self._stop.wait(backoff_s)
                backoff_s = min(backoff_s * 2, self.config.reopen_max_s)
                continue
            backoff_s = self.config.reopen_min_s
            self.opens += 1
            try:
                self._serve(port)
            finally:
                port.close()

    def _serve(self, port: serial.Serial) -> None:
        cfg = self.config
        decoder = make_decoder(cfg.protocol)
        log.info("serial %s: open for reader %s (%s)", cfg.port, cfg.reader_id, cfg.protocol)
        detail = "closed by the gateway"
        try:
            hello = start_command(cfg.protocol)
            if hello:
                port.write(hello)
            self._sink(PortState(cfg, connected=True))
            while not self._stop.is_set():
                data = port.read(port.in_waiting or 1)
                if not data:
                    continue
                if len(data) >= _BUSY_BYTES:
                    data = _gather(port, data)
                received_at = datetime.now(UTC)
                result = decoder.decode(data, received_at)
                if result.reply:
                    port.write(result.reply)
                self._sink(SerialChunk(cfg, result, received_at))
        except (serial.SerialException, OSError) as exc:
            detail = str(exc)
            log.warning("serial %s: lost (%s); reopening", cfg.port, exc)
        finally:
            now = datetime.now(UTC)
            self._sink(SerialChunk(cfg, decoder.flush(now), now))
            self._sink(PortState(cfg, connected=False, detail=detail))


def _gather(port: serial.Serial, data: bytes) -> bytes:
    """``data`` and what else a busy port receives within ``_GATHER_S`` (up to
    ``_GATHER_BYTES``)."""
    chunks = [data]
    size = len(data)
    deadline = time.monotonic() + _GATHER_S
    while size < _GATHER_BYTES:
        waiting = port.in_waiting
        if waiting:
            more = port.read(min(waiting, _GATHER_BYTES - size))
            chunks.append(more)
            size += len(more)
        elif time.monotonic() < deadline:
            time.sleep(_GATHER_POLL_S)  # let the sender refill the kernel's buffer
        else:
            break
    return b"".join(chunks)
