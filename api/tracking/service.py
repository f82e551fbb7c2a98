"""Route lookups for officers. Every lookup needs an open case's number or a reason that says
something (:mod:`api.grounds`) and is written to the audit log (who, role, bike, why, from
where) in the same transaction; one that finds nothing is audited too (``LookupNotFoundError``)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool
from starlette.concurrency import run_in_threadpool

from api.cameras import service as cameras
from api.errors import BadRequestError, LookupNotFoundError
from api.grounds import check_case, check_case_async, check_reason
from api.network.service import LoadedNetwork, NetworkCache, active_network
from api.registry import audit
from api.tracking import store
from api.tracking.caches import RouteCache, caches_of
from api.tracking.habit_store import personal_prior
from api.tracking.values import PlateBike
from track_engine.db import passage_rows
from track_engine.paths import NegativeEvidenceChooser
from track_engine.route_choice import PathChooser, choose_path
from track_engine.route_result import Route
from track_engine.routes import build_route
from track_engine.way_prior import PERSONAL_SHARE, WayPrior

MAX_WINDOW = timedelta(days=31)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)
FOOTAGE_MARGIN = timedelta(seconds=60)


@dataclass(frozen=True, slots=True)
class RouteRequest:
    """One route lookup: which bike and window, who asks (``actor`` in ``role``, from
    ``remote_addr``), why, and the audit action it is recorded as."""

    plate: str
    since: datetime | None
    until: datetime | None
    reason: str
    case_number: str | None
    actor: str
    role: str = "system"
    remote_addr: str = ""
    action: str = "route.view"

    def checked(self) -> RouteRequest:
        """This request with its reason as recorded (:func:`api.grounds.check_reason`);
        refuses a lookup without grounds or a plate, or with zone-less times (400/422)."""
        reason = check_reason(self.reason, self.case_number)
        if not self.plate:
            raise BadRequestError("give a plate or a frame_number")
        if any(t is not None and t.tzinfo is None for t in (self.since, self.until)):
            raise BadRequestError("since and until need a time zone, e.g. 2026-11-29T06:00:00Z")
        return dataclasses.replace(self, reason=reason)

    def miss(self) -> audit.AuditRow:
        """The audit entry of this lookup when the plate names no registered bike."""
        return audit.row_by(
            audit.Caller(self.actor, self.role, self.remote_addr),
            self.action,
            subject=f"plate:{self.plate}",
            reason=self.reason,
            case_number=self.case_number,
            detail={"plate": self.plate},
        )


def route_for_plate(
    conn: psycopg.Connection, network: NetworkCache, request: RouteRequest
) -> dict[str, Any]:
    """The bike's route as a GeoJSON Feature (LineString, a time per point, passages)."""
    request = request.checked()
    check_case(conn, request.miss())
    bike = _registered(store.plate_bike(request.plate).run(conn), request)
    since, until = _window(request.since, request.until, bike.stolen_at)
    store.lookup_settings(conn)
    record = _route_record(request, bike, since, until)
    rows, _ = store.audited_bike_passage_rows(
        bike_id=bike.bike_id, since=since, until=until, record=record
    ).run(conn)
    _seen(rows, bike, since, until, record)  # "not seen" comes before "no network"
    habits = _Habits(bike.stolen_at)
    if habits.may_apply(since):
        habits = habits.with_prior(personal_prior(_tags(rows)).run(conn))
    cache, key, build = _stitch_job_or_404(network.get(conn), rows, bike, record, habits)
    return _feature(cache.get(key, build), bike.plate, bike.bike_id, since, until)


async def route_for_plate_async(
    conn: psycopg.AsyncConnection[Any],
    network: NetworkCache,
    pool: ConnectionPool,
    request: RouteRequest,
) -> dict[str, Any]:
    """:func:`route_for_plate` on the event loop: the same checks, audit row and answer, on
    the request's asyncio connection (its session is set up for short lookups); a route not
    stitched yet is stitched in a worker thread, so other requests go on meanwhile. ``pool``
    loads the road network if it is not loaded yet."""
    request = request.checked()
    await check_case_async(conn, request.miss())
    bike = _registered(await store.plate_bike(request.plate).run_async(conn), request)
    since, until = _window(request.since, request.until, bike.stolen_at)
    record = _route_record(request, bike, since, until)
    rows, network_id = await store.audited_bike_passage_rows(
        bike_id=bike.bike_id, since=since, until=until, record=record
    ).run_async(conn)
    _seen(rows, bike, since, until, record)  # "not seen" comes before "no network"
    habits = _Habits(bike.stolen_at)
    if habits.may_apply(since):
        habits = habits.with_prior(await personal_prior(_tags(rows)).run_async(conn))
    loaded = await active_network(network, pool, network_id)
    cache, key, build = _stitch_job_or_404(loaded, rows, bike, record, habits)
    route = cache.peek(key)
    if route is None:  # stitched once however many requests ask for it meanwhile
        flights = caches_of(loaded).route_flights
        route = await flights.run(key, lambda: run_in_threadpool(cache.get, key, build))
    return _feature(route, bike.plate, bike.bike_id, since, until)


@dataclass(frozen=True, slots=True)
class _Habits:
    """The bike's own way prior for its route, and when it stops applying: a stolen bike no
    longer rides its owner's ways, so stretches from an open theft's ``stolen_at`` on use the
    fleet's prior alone (docs/engine.md, "Way priors")."""

    stolen_at: datetime | None
    prior: WayPrior | None = None
    learned_at: datetime | None = None

    def may_apply(self, since: datetime) -> bool:
        """Whether any stretch of a window from ``since`` can use it (not one that starts
        after the theft: an officer's default window of a stolen bike)."""
        return self.stolen_at is None or since < self.stolen_at

    def with_prior(self, loaded: tuple[WayPrior, datetime | None]) -> _Habits:
        """These habits with the prior loaded for the bike's tags."""
        return dataclasses.replace(self, prior=loaded[0] or None, learned_at=loaded[1])

    def chooser(self, fleet: WayPrior | None) -> PathChooser:
        """The path chooser of the route: the fleet's prior plus ``PERSONAL_SHARE`` times the
        bike's own, the latter only before the theft; the default without a prior of its own."""
        if self.prior is None:
            return choose_path
        until = None if self.stolen_at is None else (self.stolen_at - _EPOCH) // _MICROSECOND
        combined = (fleet or WayPrior()).combined(self.prior, PERSONAL_SHARE)
        return NegativeEvidenceChooser(prior=combined, prior_until_us=until)

    def key(self) -> tuple[Any, ...]:
        """What of these habits a stitched route depends on (part of its cache key)."""
        return () if self.prior is None else (self.learned_at, self.stolen_at)


def _tags(rows: list[tuple[Any, ...]]) -> list[str]:
    return sorted({str(row[0]) for row in rows})


def _registered(bike: PlateBike | None, request: RouteRequest) -> PlateBike:
    if bike is None:
        raise LookupNotFoundError(
            f"no registered bike with plate {request.plate}", record=request.miss()
        )
    return bike


def _route_record(
    request: RouteRequest, bike: PlateBike, since: datetime, until: datetime
) -> audit.AuditRow:
    return audit.row_by(
        audit.Caller(request.actor, request.role, request.remote_addr),
        request.action,
        subject=f"bike:{bike.bike_id}",
        bike_id=bike.bike_id,
        reason=request.reason,
        case_number=request.case_number,
        detail={"plate": bike.plate, "since": since.isoformat(), "until": until.isoformat()},
    )


def _seen(
    rows: list[tuple[Any, ...]],
    bike: PlateBike,
    since: datetime,
    until: datetime,
    record: audit.AuditRow,
) -> None:
    if not rows:
        raise LookupNotFoundError(
            f"bike {bike.plate} was not seen between {since} and {until}", record=record
        )


def _stitch_job_or_404(
    loaded: LoadedNetwork,
    rows: list[tuple[Any, ...]],
    bike: PlateBike,
    record: audit.AuditRow,
    habits: _Habits,
) -> tuple[RouteCache, tuple[Any, ...], Callable[[], Route]]:
    job = _stitch_job(loaded, rows, habits)
    if job is None:
        raise LookupNotFoundError(
            f"bike {bike.plate} was seen only by readers off the road network", record=record
        )
    return job


def _window(
    since: datetime | None, until: datetime | None, stolen_at: datetime | None
) -> tuple[datetime, datetime]:
    """The window looked at: since the theft (or a day back) until now, unless given."""
    until = until or datetime.now(UTC)
    since = since or stolen_at or until - timedelta(days=1)
    if since >= until or until - since > MAX_WINDOW:
        raise BadRequestError("since must be before until, and the window at most 31 days")
    return since, until


def _feature(
    route: Route, plate: str, bike_id: int, since: datetime, until: datetime
) -> dict[str, Any]:
    feature = route.to_geojson()
    feature["properties"].update(
        {
            "plate": plate,
            "bike_id": bike_id,
            "since": since.isoformat(),
            "until": until.isoformat(),
            "last_seen": feature["properties"]["passages"][-1]
            if feature["properties"].get("passages")
            else None,
        }
    )
    return feature


def stitched_route(loaded: LoadedNetwork, rows: list[tuple[Any, ...]]) -> Route | None:
    """The route through a bike's passage rows (``passage_rows.PASSAGE_COLUMNS``, in time order);
    None when no passage is at a reader on the road network."""
    job = _stitch_job(loaded, rows)
    if job is None:
        return None
    cache, key, build = job
    return cache.get(key, build)


def _stitch_job(
    loaded: LoadedNetwork, rows: list[tuple[Any, ...]], habits: _Habits | None = None
) -> tuple[RouteCache, tuple[Any, ...], Callable[[], Route]] | None:
    """The route cache, the key of the route through ``rows`` and how to stitch it; None when
    no passage is at a reader on the road network."""
    reader_nodes = loaded.reader_nodes
    known = [row for row in rows if row[1] in reader_nodes]
    if not known:
        return None
    # A bike re-tagged within the window has passages under two tag ids; each was filtered to
    # its binding's validity, so together they are the bike's route.
    last_tag = rows[-1][0]

    def build() -> Route:
        passages = passage_rows.passages_frame(known)
        if any(row[0] != last_tag for row in known):
            passages = passages.assign(tag_id=last_tag)
        return build_route(
            passages, loaded.graph, reader_nodes, loaded.reader_paths,
            reader_range_m=loaded.reader_ranges_m, path_chooser=chooser,
            reader_zones=loaded.reader_zones,
        )  # fmt: skip

    habits = habits or _Habits(None)
    chooser = habits.chooser(loaded.reader_paths.way_prior)
    cache = caches_of(loaded).routes
    return cache, (last_tag, tuple(known), *habits.key()), build


def _distance_m(lon1: float, lat1: float, lon2: float, lat2: float) -> float:
    rad = math.pi / 180
    x = (lon2 - lon1) * rad * math.cos((lat1 + lat2) / 2 * rad)
    return 6_371_000.0 * math.hypot(x, (lat2 - lat1) * rad)


def cameras_near_passages(
    conn: psycopg.Connection, *, feature: dict[str, Any], radius_m: float
) -> list[dict[str, Any]]:
    """For each passage of a route, the cameras within ``radius_m`` and the footage window."""
    registry = cameras.all_cameras(conn)
    out: list[dict[str, Any]] = []
    for passage in feature["properties"].get("passages", []):
        lon, lat = passage.get("lon"), passage.get("lat")
        if lon is None or lat is None:
            continue
        at = datetime.fromisoformat(passage["closest_at"])
        start, end = at - FOOTAGE_MARGIN, at + FOOTAGE_MARGIN
        for cam in registry:
            distance = _distance_m(lon, lat, cam.lon, cam.lat)
            if distance <= radius_m:
                out.append(
                    {
                        "reader_id": passage["reader_id"],
                        "passage_at": passage["closest_at"],
                        "camera_id": cam.camera_id,
                        "name": cam.name,
                        "distance_m": round(distance, 1),
                        "from": start.isoformat(),
                        "to": end.isoformat(),
                        "footage_url": footage_url(
                            cam.footage_url_template, cam.camera_id, start, end
                        ),
                    }
                )
    return out


def footage_url(template: str, camera_id: str, start: datetime, end: datetime) -> str:
    """Fill ``{camera_id}``, ``{start}``, ``{end}`` (ISO-8601 UTC) and ``{start_epoch}`` /
    ``{end_epoch}`` (seconds) into a camera's footage URL template."""
    values = {
        "camera_id": camera_id,
        "start": start.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "end": end.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "start_epoch": str(int(start.timestamp())),
        "end_epoch": str(int(end.timestamp())),
    }
    out = template
    for key, value in values.items():
        out = out.replace("{" + key + "}", value)
    return out
