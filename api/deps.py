"""Typed FastAPI dependencies shared by the domain views."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

import psycopg
from fastapi import Depends, Request
from psycopg_pool import ConnectionPool

from api.network.service import NetworkCache


def _pool(request: Request) -> ConnectionPool:
    pool: ConnectionPool = request.app.state.pool
    return pool


def get_conn(pool: Annotated[ConnectionPool, Depends(_pool)]) -> Iterator[psycopg.Connection]:
    """A pooled connection; its transaction commits when the request succeeds."""
    with pool.connection() as conn:
        yield conn


def get_network(request: Request) -> NetworkCache:
    """The road network cache (loaded on first use, reloaded when the active network changes)."""
    cache: NetworkCache = request.app.state.network
    return cache


ConnDep = Annotated[psycopg.Connection, Depends(get_conn)]
NetworkDep = Annotated[NetworkCache, Depends(get_network)]
