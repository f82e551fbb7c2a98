"""/api/v1/readers: the registry with health and last read, and import."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Path

from api.deps import AdminDep, ConnDep, NetworkDep, OperatorDep
from api.pagination import Page, PageDep, page_of
from api.readers import store as fleet
from api.readers.service import ReaderIn, ReaderOut, import_readers, reader_out
from track_engine.db import reader_miss_rates
from track_engine.errors import NotFoundError

router = APIRouter(prefix="/api/v1/readers", tags=["readers"])


@router.get("")
def list_readers(conn: ConnDep, principal: OperatorDep, page: PageDep) -> Page[ReaderOut]:
    """Readers with health (online / silent / deaf / offline), last read, miss rates
    (registry and learned) and address (the streets meeting where each stands).
    Roles: admin, officer, operator."""
    del principal
    now = datetime.now(UTC)
    rows = fleet.reader_activity(conn, now=now)
    rates = reader_miss_rates.stored_miss_rates(conn)
    addresses = fleet.reader_addresses(conn)
    items = [
        reader_out(
            r, now=now, miss_rate=rates.get(r.reader_id), address=addresses.get(r.reader_id, "")
        )
        for r in rows[page.offset : page.offset + page.limit]
    ]
    return page_of(items, len(rows), page)


@router.get("/{reader_id}")
def get_reader(
    conn: ConnDep,
    principal: OperatorDep,
    reader_id: Annotated[str, Path(max_length=64)],
) -> ReaderOut:
    """One reader with health, last read and miss rates. Roles: admin, officer, operator."""
    del principal
    now = datetime.now(UTC)
    rows = fleet.reader_activity(conn, now=now, reader_id=reader_id)
    if not rows:
        raise NotFoundError(f"no reader {reader_id}")
    rates = reader_miss_rates.stored_miss_rates(conn, reader_id=reader_id)
    address = fleet.reader_addresses(conn, reader_id=reader_id).get(reader_id, "")
    return reader_out(rows[0], now=now, miss_rate=rates.get(reader_id), address=address)


@router.post("/import")
def import_reader_list(
    conn: ConnDep,
    network: NetworkDep,
    principal: AdminDep,
    readers: Annotated[list[ReaderIn], Body(min_length=1, max_length=10_000)],
) -> dict[str, Any]:
    """Add or update readers (snapped to the active road network). Roles: admin."""
    return import_readers(conn, network, readers=readers, by=principal)
