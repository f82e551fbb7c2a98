"""Whether the tracking lookups run on Citus, where a few of them need another statement.

Citus (issue #19) plans a statement over distributed tables by pushing it down to the shards,
and refuses what it cannot push down: a ``LATERAL`` subquery with ``LIMIT`` that refers to a
reference table or a CTE ("cannot push down this subquery"). Those lookups keep their plain
PostgreSQL statement (a per-tag ``LIMIT 1`` walks one index backwards through the newest
partition only) and have a Citus twin with the same answer (an ``ORDER BY … LIMIT`` each shard
answers, or ``DISTINCT ON``). Which one runs is decided once per database and process: the
first lookup that has a twin asks whether the ``citus`` extension is installed.
"""

from __future__ import annotations

from typing import Any

import psycopg

_HAS_CITUS = "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'citus')"
# (host, port, database) -> whether it is a Citus coordinator.
_KNOWN: dict[tuple[str, int, str], bool] = {}


def _key(info: psycopg.ConnectionInfo) -> tuple[str, int, str]:
    return (info.host, info.port, info.dbname)


def on_citus(conn: psycopg.Connection) -> bool:
    """True when ``conn``'s database has the citus extension (asked once per database)."""
    key = _key(conn.info)
    known = _KNOWN.get(key)
    if known is None:
        row = conn.execute(_HAS_CITUS).fetchone()
        known = _KNOWN[key] = bool(row and row[0])
    return known


async def on_citus_async(conn: psycopg.AsyncConnection[Any]) -> bool:
    """:func:`on_citus` on an asyncio connection."""
    key = _key(conn.info)
    known = _KNOWN.get(key)
    if known is None:
        cur = await conn.execute(_HAS_CITUS)
        row = await cur.fetchone()
        known = _KNOWN[key] = bool(row and row[0])
    return known
