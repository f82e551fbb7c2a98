"""Operators' ingest figures: how far behind the stored reads are, and how many arrive."""

from __future__ import annotations

from datetime import datetime, timedelta

import psycopg
from pydantic import BaseModel, Field

from api.stats import store


class MinuteOut(BaseModel):
    """Reads stored for one minute of read time."""

    minute: datetime
    reads: int


class IngestOut(BaseModel):
    """Ingest lag and read rates over a recent window."""

    now: datetime
    window_minutes: int
    newest_read_at: datetime | None = Field(description="newest stored read (last day only)")
    lag_s: float | None = Field(
        description="now minus the newest stored read; None when nothing arrived for a day"
    )
    reads_per_minute: float = Field(description="mean over the window")
    minutes: list[MinuteOut] = Field(description="one entry per minute that had reads")
    reads_per_reader_per_minute: dict[str, float]


def ingest_figures(conn: psycopg.Connection, *, now: datetime, window_minutes: int) -> IngestOut:
    """Ingest lag and reads per minute, overall and per reader, over the last minutes."""
    activity = store.ingest_activity(conn, now=now, window=timedelta(minutes=window_minutes))
    lag_s = None
    if activity.newest_read_at is not None:
        # A reader whose clock runs ahead can store reads "from the future": that is not lag.
        lag_s = round(max((now - activity.newest_read_at).total_seconds(), 0.0), 3)
    total = sum(n for _, n in activity.reads_per_minute)
    return IngestOut(
        now=now,
        window_minutes=window_minutes,
        newest_read_at=activity.newest_read_at,
        lag_s=lag_s,
        reads_per_minute=round(total / window_minutes, 3),
        minutes=[MinuteOut(minute=m, reads=n) for m, n in activity.reads_per_minute],
        reads_per_reader_per_minute={
            r: round(n / window_minutes, 3) for r, n in sorted(activity.reads_per_reader.items())
        },
    )
