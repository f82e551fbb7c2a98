"""One ``LISTEN tagtrail_live`` connection per API process, waking the live streams.

Migration 0035 makes PostgreSQL ``NOTIFY tagtrail_live`` when an alert, a stolen-match flag or
a passage is stored (payloads carry ids only). The hub holds one asynchronous connection that
listens, and rings the bell of every stream the notice concerns; a stream then reads what is
new after its cursor, exactly as it would after a poll. Notifications are only a hint: a
stream still looks every ``poll_s`` (a slow safety net), every ``fallback_poll_s`` while the
listener is down, and at once whenever the listener (re)connects, so nothing committed in a
gap is missed. A lost connection is retried with exponential backoff.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
import psycopg

from api.live import store as live_notify

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Notice:
    """What one notification says: its kind ("alert", "flag", "passage", "ack": a desk
    acknowledged an alert or flag) and the bike."""

    kind: str
    bike_id: int | None = None


def parse_notice(payload: str) -> Notice | None:
    """The notice in a payload; None if it is not one we know (then every stream looks)."""
    try:
        doc: Any = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict) or doc.get("t") not in ("alert", "flag", "passage", "ack"):
        return None
    bike = doc.get("bike")
    return Notice(str(doc["t"]), bike if isinstance(bike, int) else None)


@dataclass(eq=False, slots=True)
class Bell:
    """One stream's doorbell: what it listens for, and the event that wakes it."""

    bike_id: int | None  # None: the duty desk (every alert, flag and acknowledgement)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def concerns(self, notice: Notice | None) -> bool:
        """True if the notice may bring this stream something new."""
        if notice is None:
            return True
        if self.bike_id is None:
            return notice.kind in ("alert", "flag", "ack")
        if notice.kind == "alert":
            return notice.bike_id is None or notice.bike_id == self.bike_id
        return notice.kind == "passage"


class LiveHub:
    """The process's listener and the streams' bells (all on the event loop's thread)."""

    def __init__(
        self,
        conninfo: str,
        *,
        listen: bool = True,
        poll_s: float = 10.0,
        fallback_poll_s: float = 1.0,
        backoff_min_s: float = 0.1,
        backoff_max_s: float = 5.0,
        check_s: float = 30.0,
    ) -> None:
        """Prepare the hub; :meth:`start` connects it."""
        self.conninfo = conninfo
        self.listen = listen
        self.poll_s = poll_s
        self.fallback_poll_s = fallback_poll_s
        self.backoff_min_s = backoff_min_s
        self.backoff_max_s = backoff_max_s
        self.check_s = check_s  # quiet this long: probe the connection with a query
        self.connected = False
        self.connects = 0  # successful LISTENs so far (a reconnect makes it 2, 3, ...)
        self.notices = 0  # notifications received
        self.backend_pid: int | None = None  # of the listening connection, while connected
        self._bells: set[Bell] = set()
        self._task: asyncio.Task[None] | None = None
        self._up: asyncio.Event | None = None

    @property
    def interval_s(self) -> float:
        """How long a stream waits for a bell before it looks anyway."""
        return self.poll_s if self.connected else self.fallback_poll_s

    @contextlib.contextmanager
    def subscribe(self, *, bike_id: int | None) -> Iterator[Bell]:
        """A bell for one stream (of a bike, or of the duty desk with ``bike_id=None``)."""
        bell = Bell(bike_id)
        self._bells.add(bell)
        try:
            yield bell
        finally:
            self._bells.discard(bell)

    async def wait(self, bell: Bell, limit_s: float) -> None:
        """Until the bell rings or ``min(limit_s, interval_s)`` has passed."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(bell.event.wait(), max(0.0, min(limit_s, self.interval_s)))

    def dispatch(self, payload: str) -> None:
        """Ring the bells a notification concerns."""
        self.notices += 1
        notice = parse_notice(payload)
        for bell in self._bells:
            if bell.concerns(notice):
                bell.event.set()

    def ring_all(self) -> None:
        """Wake every stream (the listener came up or went down)."""
        for bell in self._bells:
            bell.event.set()

    async def start(self, *, wait_s: float = 5.0) -> None:
        """Start listening; wait up to ``wait_s`` for the first connection (streams poll
        every ``fallback_poll_s`` until it is up, so a slow start only costs latency)."""
        if not self.listen or self._task is not None:
            return
        self._up = asyncio.Event()
        self._task = asyncio.create_task(self._run(), name="tagtrail-live-listener")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._up.wait(), wait_s)

    async def stop(self) -> None:
        """Stop listening and close the connection."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _run(self) -> None:
        delay = self.backoff_min_s
        while True:
            try:
                async with await psycopg.AsyncConnection.connect(
                    self.conninfo, autocommit=True, connect_timeout=10
                ) as conn:
                    await live_notify.listen(conn)
                    self.backend_pid = conn.info.backend_pid
                    self.connected = True
                    self.connects += 1
                    delay = self.backoff_min_s
                    if self._up is not None:
                        self._up.set()
                    if self.connects > 1:
                        log.info("live listener reconnected (backend %s)", self.backend_pid)
                    self.ring_all()  # whatever was stored while no one listened
                    await self._listen(conn)
            except Exception as exc:  # any failure: log it, back off, connect again
                if not isinstance(exc, psycopg.Error | OSError):
                    log.exception("live listener failed")
                log.warning("live listener down (%s); retrying in %.1f s", exc, delay)
            finally:
                was_connected, self.connected, self.backend_pid = self.connected, False, None
                if was_connected:
                    self.ring_all()  # the streams poll every fallback_poll_s meanwhile
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(delay * 2, self.backoff_max_s)

    async def _listen(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            async for notify in conn.notifies(timeout=self.check_s):
                self.dispatch(notify.payload)
            await live_notify.ping(conn)  # quiet for check_s: is the connection alive?
