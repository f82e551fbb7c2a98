"""What operators see of unknown readers: ids, counts, times and gateways (never tags)."""

from __future__ import annotations

import dataclasses

import psycopg

from api.pagination import Page, PageParams, page_of
from api.unknown_readers import store
from api.unknown_readers.schemas import UnknownReaderOut


def list_unknown(conn: psycopg.Connection, *, page: PageParams) -> Page[UnknownReaderOut]:
    """A page of unknown readers, most recently heard first."""
    rows, total = store.unknown_readers(conn, limit=page.limit, offset=page.offset)
    return page_of([UnknownReaderOut(**dataclasses.asdict(r)) for r in rows], total, page)
