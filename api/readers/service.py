"""Reader health and import.

Health, in the words the gateway's retained status uses (reader_gateway/health.py) plus one:

- ``never_heard`` -- nothing ever came from it: no heartbeat, no read (its gateway may be
  up and its port open; nothing tells whether the reader is);
- ``offline``     -- its gateway says so (port closed, or nothing for the gateway's
  ``offline_after_s``), or neither a heartbeat nor a read came within OFFLINE_AFTER;
- ``silent``      -- up (heartbeats or a fresh gateway status) but no tag lately: the gateway
  says silent, or longer than its road's usual traffic explains (at least SILENT_EXPECTED
  passages would have been expected);
- ``deaf``        -- up and hearing some tags, but the passages say it misses most of those
  that pass it (learned miss rate at least 0.8 over at least 20 passes: ``DEAF_MISS_RATE``,
  ``DEAF_MIN_PASSES`` of the miss-rate job, :mod:`track_engine.db.reader_miss_rates`);
- ``online``      -- otherwise.

The gateway's verdict stands while it is fresh (judged within OFFLINE_AFTER): the gateway
sees every frame and heartbeat, the database only what was stored. A verdict of
``never_heard`` from a restarted gateway gives way to what the database remembers. The API
adds only what the gateway cannot know: ``deaf``, and ``silent`` by the road's traffic when
no fresh verdict exists.

An import sets the registry's miss rate (the survey figure, the prior of the learning); it
leaves the learned one alone.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pandas as pd
import psycopg
from pydantic import BaseModel, Field

from api.deps import Principal
from api.errors import UnavailableError
from api.network.service import NetworkCache
from api.readers import store as fleet
from api.registry import audit
from api.registry import loaders as registry
from api.request_model import RequestModel
from reader_gateway.wire import READER_PROTOCOL_PATTERN
from track_engine.db.reader_miss_rates import StoredMissRate
from track_engine.roads import DEFAULT_MISS_RATE, project_lonlat

OFFLINE_AFTER = timedelta(minutes=10)
SILENT_EXPECTED = 3.0
_WEEK_H = 7 * 24.0


class ReaderOut(BaseModel):
    """A reader with its health."""

    reader_id: str
    name: str
    address: str = Field(
        default="", description='the streets meeting where it stands ("Jiefang Road × 3rd Street")'
    )
    protocol: str
    lon: float
    lat: float
    antennas: int
    last_heard_at: datetime | None
    last_read_at: datetime | None
    passages_per_hour: float = Field(description="usual traffic: passages/hour over 7 days")
    health: str = Field(description="online, silent, deaf, offline or never_heard")
    gateway_status: str | None = Field(
        default=None, description="what its gateway last said (retained status), if anything"
    )
    gateway_status_at: datetime | None = None
    miss_rate: float = Field(
        default=DEFAULT_MISS_RATE,
        description="the registry's (surveyed) share of passing tags it misses",
    )
    miss_rate_learned: float | None = Field(
        default=None,
        description="the share of passing tags it missed, learned from the passages "
        "(used in path choice instead of miss_rate); null: not learned",
    )
    miss_rate_passes: float | None = Field(
        default=None, description="evidence behind miss_rate_learned: passes of a tag"
    )
    miss_rate_learned_at: datetime | None = None


class ReaderIn(RequestModel):
    """A reader to import (its position is snapped to the active road network)."""

    reader_id: str = Field(pattern=r"^[A-Za-z0-9_.:-]{1,64}$", examples=["R-0042"])
    protocol: str = Field(pattern=READER_PROTOCOL_PATTERN, examples=["r2000"])
    lon: float = Field(ge=-180, le=180, examples=[120.1551])
    lat: float = Field(ge=-90, le=90, examples=[30.2741])
    antennas: int = Field(default=1, ge=1, le=8)
    antenna_headings: list[float] = Field(default_factory=list, max_length=8)
    miss_rate: float = Field(default=DEFAULT_MISS_RATE, ge=0, lt=1)
    # The surveyed read range round the pole (meters): where it reaches a road past the
    # reader's node, route stitching lets a read come from that road (track_engine.route_zones).
    range_m: float | None = Field(default=None, gt=0, le=500, examples=[6.0])


HEALTHS = ("online", "silent", "deaf", "offline", "never_heard")


def health(
    activity: fleet.ReaderActivity, *, now: datetime, miss_rate: StoredMissRate | None = None
) -> str:
    """online, silent, deaf, offline or never_heard (see the module docstring)."""
    verdict = _gateway_verdict(activity, now=now) or _by_times(activity, now=now)
    if verdict == "online" and miss_rate is not None and miss_rate.deaf:
        return "deaf"
    return verdict


def _gateway_verdict(activity: fleet.ReaderActivity, *, now: datetime) -> str | None:
    """The gateway's retained status while fresh; None when there is none to go by."""
    status, at = activity.gateway_status, activity.gateway_status_at
    if status is None or at is None or now - at > OFFLINE_AFTER:
        return None  # no gateway reports on it, or the gateway itself went quiet
    if status == "never_heard" and (activity.last_heard_at or activity.last_read_at):
        return None  # a restarted gateway has not heard it yet; the database has
    return status


def _by_times(activity: fleet.ReaderActivity, *, now: datetime) -> str:
    heard = [t for t in (activity.last_heard_at, activity.last_read_at) if t is not None]
    if not heard:
        return "never_heard"
    if now - max(heard) > OFFLINE_AFTER:
        return "offline"
    per_hour = activity.passages_7d / _WEEK_H
    quiet_since = activity.last_read_at or activity.installed_at
    quiet_h = max((now - quiet_since).total_seconds(), 0.0) / 3600.0
    return "silent" if per_hour * quiet_h >= SILENT_EXPECTED else "online"


def reader_out(
    activity: fleet.ReaderActivity,
    *,
    now: datetime,
    miss_rate: StoredMissRate | None = None,
    address: str = "",
) -> ReaderOut:
    """Response model of a reader (``miss_rate``: its stored miss rates, when known;
    ``address``: the streets meeting where it stands)."""
    return ReaderOut(
        reader_id=activity.reader_id,
        name=activity.name,
        address=address,
        protocol=activity.protocol,
        lon=activity.lon,
        lat=activity.lat,
        antennas=activity.antennas,
        last_heard_at=activity.last_heard_at,
        last_read_at=activity.last_read_at,
        gateway_status=activity.gateway_status,
        gateway_status_at=activity.gateway_status_at,
        passages_per_hour=round(activity.passages_7d / _WEEK_H, 3),
        health=health(activity, now=now, miss_rate=miss_rate),
        miss_rate=DEFAULT_MISS_RATE if miss_rate is None else round(miss_rate.miss_rate, 4),
        miss_rate_learned=_rounded(None if miss_rate is None else miss_rate.miss_rate_learned),
        miss_rate_passes=_rounded(None if miss_rate is None else miss_rate.miss_rate_passes, 1),
        miss_rate_learned_at=None if miss_rate is None else miss_rate.miss_rate_learned_at,
    )


def _rounded(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(value, digits)


def import_readers(
    conn: psycopg.Connection, network: NetworkCache, *, readers: list[ReaderIn], by: Principal
) -> dict[str, Any]:
    """Snap each reader to the nearest road node of the active network and upsert it."""
    origin = fleet.network_origin(conn)
    if origin is None:
        raise UnavailableError("load a road network before importing readers")
    network_id, lon0, lat0 = origin
    loaded = network.get(conn)
    before = fleet.reader_ids(conn)
    xy = project_lonlat([[r.lon, r.lat] for r in readers], (lon0, lat0))
    frame = pd.DataFrame(
        {
            "reader_id": [r.reader_id for r in readers],
            "protocol": [r.protocol for r in readers],
            "lon": [r.lon for r in readers],
            "lat": [r.lat for r in readers],
            "x_m": xy[:, 0],
            "y_m": xy[:, 1],
            "node_id": [loaded.graph.nearest_node(float(x), float(y)) for x, y in xy],
            "antennas": [r.antennas for r in readers],
            "antenna_headings": [r.antenna_headings for r in readers],
            "clock_offset_ms": [0.0] * len(readers),
            "miss_rate": [r.miss_rate for r in readers],
            "range_m": [r.range_m for r in readers],
        }
    )
    registry.upsert_readers(conn, frame, network_id=network_id)
    network.invalidate()
    ids = [r.reader_id for r in readers]
    audit.record(conn, by, "readers.import", detail={"readers": ids})
    return {
        "created": sorted(set(ids) - before),
        "updated": sorted(set(ids) & before),
    }
