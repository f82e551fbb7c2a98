"""Reading what is new after a cursor, when the listener rings, and framing it as SSE.

A cursor is two integers ``"<a>.<b>"``: for a bike, the last alert id and the last passage's
closest approach (epoch µs); for the duty desk, the last alert id and the last flag id. Both
only grow, so a client that reconnects with its ``Last-Event-ID`` misses nothing and sees
nothing twice. A stream looks when :class:`api.live.listener.LiveHub` rings its bell (a
NOTIFY from the database) and, as a safety net, every ``poll_s`` without one.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
import orjson
import psycopg
from psycopg_pool import ConnectionPool

from api.errors import BadRequestError, UnavailableError
from api.live.listener import LiveHub
from api.network.service import LoadedNetwork, NetworkCache
from api.registry import cases
from track_engine.errors import EngineError

HEARTBEAT_S = 15.0

Event = tuple[str, dict[str, Any], "Cursor"]


@dataclass(frozen=True, slots=True)
class Cursor:
    """Where a stream stands: two monotonic positions."""

    a: int
    b: int

    def __str__(self) -> str:
        return f"{self.a}.{self.b}"

    @classmethod
    def parse(cls, text: str) -> Cursor:
        """Parse ``"<a>.<b>"``; BadRequestError for anything else."""
        parts = text.strip().split(".")
        if len(parts) != 2 or not all(p.isdigit() and len(p) <= 18 for p in parts):
            raise BadRequestError("Last-Event-ID must look like '<number>.<number>'")
        return cls(int(parts[0]), int(parts[1]))


def start_cursor(
    conn: psycopg.Connection, *, last_event_id: str | None, since: datetime | None, desk: bool
) -> Cursor:
    """Resume from ``last_event_id``, or start now (passages from ``since`` if given)."""
    if last_event_id:
        return Cursor.parse(last_event_id)
    alert_id, flag_id = cases.latest_ids(conn)
    if desk:
        return Cursor(alert_id, flag_id)
    start = since or datetime.now(UTC)
    return Cursor(alert_id if since is None else 0, int(start.timestamp() * 1_000_000))


def resume_desk(
    conn: psycopg.Connection, cursor: Cursor, *, since: datetime
) -> tuple[Cursor, dict[str, Any]]:
    """Where a resuming duty desk starts: after ``cursor``, but never before what was raised
    ``since`` (a ``Last-Event-ID`` of ``0.0`` is not "every alert ever"); and what it is about
    to replay (counts, id ranges, bikes), for the audit log."""
    floor_alert, floor_flag = cases.replay_floor(conn, since=since)
    start = Cursor(max(cursor.a, floor_alert), max(cursor.b, floor_flag))
    replay = cases.replay_summary(conn, after_alert=start.a, after_flag=start.b, raised_since=since)
    return start, {"from": str(start), "since": since.isoformat(), **replay}


def _alert_data(row: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in row.items()}


def _extension(
    network: LoadedNetwork | None, previous: str | None, reader_id: str
) -> list[list[float]] | None:
    """The road path from the previous passage's reader to this one (the route's new piece)."""
    if network is None or previous is None or previous == reader_id:
        return None
    try:
        nodes = network.graph.path_nodes(
            network.reader_nodes[previous], network.reader_nodes[reader_id]
        )
    except (KeyError, ValueError, EngineError):
        return None
    return [[round(float(x), 7) for x in network.arrays.node_lonlat[n]] for n in nodes]


def bike_poller(
    pool: ConnectionPool, cache: NetworkCache, *, bike_id: int
) -> Callable[[Cursor], list[Event]]:
    """What is new for one bike after a cursor: passages (with route extension) and alerts."""
    last_reader: list[str | None] = [None]

    def poll(cursor: Cursor) -> list[Event]:
        with pool.connection() as conn:
            alerts = cases.alerts_after(conn, after_id=cursor.a, bike_id=bike_id)
            passages = cases.passages_after(conn, bike_id=bike_id, after_us=cursor.b)
            try:
                network: LoadedNetwork | None = cache.get(conn) if passages else None
            except UnavailableError:  # no network only means no extension drawn
                network = None
        events, a = _alert_events(alerts, cursor)
        b = cursor.b
        for row in passages:
            b = int(row.pop("closest_at_us"))
            row["route_extension"] = _extension(network, last_reader[0], str(row["reader_id"]))
            last_reader[0] = str(row["reader_id"])
            events.append(("passage", row, Cursor(a, b)))
        return events

    return poll


# An acknowledgement's time is its transaction's start: one that commits late can carry a time
# before the newest already sent. Each look reaches this far back (the ones sent are skipped).
ACK_OVERLAP = timedelta(seconds=30)


def _alert_events(alerts: list[dict[str, Any]], cursor: Cursor) -> tuple[list[Event], int]:
    """``alerts`` (newer than ``cursor``, oldest first) as events, each cursor at its alert;
    and the last alert's id (the cursor's own when there is none)."""
    events: list[Event] = []
    a = cursor.a
    for row in alerts:
        a = int(row["alert_id"])
        events.append(("alert", _alert_data(row), Cursor(a, cursor.b)))
    return events, a


def desk_poller(
    pool: ConnectionPool, *, raised_since: datetime | None = None, acks_since: datetime
) -> Callable[[Cursor], list[Event]]:
    """What is new for the duty desk after a cursor: every alert and stolen-match flag (of
    those raised since ``raised_since``, for a resumed stream: the replay's bound), and every
    acknowledgement made since ``acks_since`` (who and when: other desks mark the row). An
    acknowledgement does not move the cursor; one sent twice (a resume) only marks again."""
    acked_after = [acks_since]
    sent: dict[tuple[str, int], datetime] = {}

    def poll(cursor: Cursor) -> list[Event]:
        with pool.connection() as conn:
            alerts = cases.alerts_after(
                conn, after_id=cursor.a, bike_id=None, raised_since=raised_since
            )
            flags = cases.flags_after(conn, after_id=cursor.b, raised_since=raised_since)
            acks = cases.acks_after(conn, after=acked_after[0] - ACK_OVERLAP)
        events, a = _alert_events(alerts, cursor)
        b = cursor.b
        for row in flags:
            b = int(row["flag_id"])
            events.append(("stolen_match", row, Cursor(a, b)))
        for row in acks:
            key = (str(row["source"]), int(row["id"]))
            if key in sent:
                continue
            sent[key] = row["acknowledged_at"]
            acked_after[0] = max(acked_after[0], row["acknowledged_at"])
            events.append(("ack", row, Cursor(a, b)))
        floor = acked_after[0] - ACK_OVERLAP
        for key in [k for k, at in sent.items() if at < floor]:
            del sent[key]
        return events

    return poll


def frame(event: str, data: dict[str, Any], cursor: Cursor) -> bytes:
    """One SSE frame."""
    payload = orjson.dumps(data, default=str, option=orjson.OPT_NAIVE_UTC)
    return b"id: %s\nevent: %s\ndata: %s\n\n" % (str(cursor).encode(), event.encode(), payload)


async def stream(
    poll: Callable[[Cursor], list[Event]],
    cursor: Cursor,
    *,
    hub: LiveHub,
    bike_id: int | None,
    max_events: int | None,
    max_seconds: float | None,
) -> AsyncIterator[bytes]:
    """Yield SSE frames of what is new, as the hub rings (or its safety poll comes round),
    until the client leaves or a limit is reached. ``bike_id`` None is the duty desk."""
    yield b"retry: 3000\n\n"
    sent = 0
    started = last_beat = time.monotonic()
    with hub.subscribe(bike_id=bike_id) as bell:
        while True:
            bell.event.clear()  # before reading: a notice that comes meanwhile rings again
            events = await anyio.to_thread.run_sync(poll, cursor)
            for event, data, after in events:
                yield frame(event, data, after)
                cursor = after
                sent += 1
                if max_events is not None and sent >= max_events:
                    return
            now = time.monotonic()
            if max_seconds is not None and now - started >= max_seconds:
                return
            if now - last_beat >= HEARTBEAT_S:
                last_beat = now
                yield b": keep-alive\n\n"
            if not events:
                limit = last_beat + HEARTBEAT_S - now
                if max_seconds is not None:
                    limit = min(limit, started + max_seconds - now)
                await hub.wait(bell, limit)
