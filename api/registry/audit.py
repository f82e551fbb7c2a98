"""The audit trail: who (and in which role) looked at or changed what, why, and from where.

``audit_log`` refuses UPDATE, DELETE and TRUNCATE in the database (migration 0002), so
appending (:func:`record` for an API caller, :func:`append` / :func:`append_row` otherwise;
the officers' hot lookups put :data:`INSERT` in front of their own statement,
``api.tracking.store``) and searching are all there is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol, TypedDict, Unpack

import psycopg
from psycopg.rows import class_row
from psycopg.types.json import Jsonb


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One row of the audit log."""

    audit_id: int
    at: datetime
    actor: str
    role: str
    action: str
    subject: str
    bike_id: int | None
    reason: str
    case_number: str | None
    remote_addr: str
    detail: dict[str, Any]


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One entry to append: who, in which role, did what to which subject, why, from where."""

    actor: str
    role: str
    action: str
    subject: str = ""
    bike_id: int | None = None
    reason: str = ""
    case_number: str | None = None
    remote_addr: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def values(self) -> tuple[Any, ...]:
        """The entry's values in :data:`COLUMNS` order."""
        return (self.actor, self.role, self.action, self.subject, self.bike_id, self.reason,
                self.case_number, self.remote_addr, Jsonb(self.detail))  # fmt: skip


COLUMNS = "actor, role, action, subject, bike_id, reason, case_number, remote_addr, detail"
INSERT = f"INSERT INTO audit_log ({COLUMNS}) VALUES ({', '.join(['%s'] * 9)})"

# INSERT as a data-modifying WITH in front of a lookup (its record and its answer in one
# round trip: api.tracking.store), with named parameters (:func:`named_params`) or positional
# ones (:meth:`AuditRow.values`), to suit the lookup's.
_CTE_NAMES = tuple(f"audit_{c.strip()}" for c in COLUMNS.split(","))
CTE_NAMED = f"""
    WITH audit_row AS (
        INSERT INTO audit_log ({COLUMNS})
        VALUES ({", ".join(f"%({n})s" for n in _CTE_NAMES)}))"""
CTE_POSITIONAL = f"""
    WITH audit_row AS ({INSERT})"""


def named_params(row: AuditRow) -> dict[str, Any]:
    """``row`` as the named parameters of :data:`CTE_NAMED`."""
    return dict(zip(_CTE_NAMES, row.values(), strict=True))


def append_row(conn: psycopg.Connection, row: AuditRow) -> None:
    """Append ``row``, in the caller's transaction (a lookup and its record commit together)."""
    conn.execute(INSERT, row.values())


class Actor(Protocol):
    """Who acts, in which role, from where: an API principal (``api.deps.Principal``) fits."""

    @property
    def username(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def remote_addr(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Caller:
    """An :class:`Actor` from its parts, where no principal is at hand (a login attempt, a
    service handed the admin's name, role and address, a route request)."""

    username: str
    role: str
    remote_addr: str


class AuditFields(TypedDict, total=False):
    """What an entry says beyond who did what (each as in :class:`AuditRow`, which defaults
    what is left out)."""

    subject: str
    bike_id: int | None
    reason: str
    case_number: str | None
    detail: dict[str, Any]


def row_by(by: Actor, action: str, **fields: Unpack[AuditFields]) -> AuditRow:
    """The entry of ``by`` doing ``action``: the one place a caller's name, role and address
    become an audit row."""
    return AuditRow(by.username, by.role, action, remote_addr=by.remote_addr, **fields)


def record(conn: psycopg.Connection, by: Actor, action: str, **fields: Unpack[AuditFields]) -> None:
    """Append :func:`row_by`'s entry, in the caller's transaction."""
    append_row(conn, row_by(by, action, **fields))


def append(
    conn: psycopg.Connection,
    *,
    actor: str,
    role: str,
    action: str,
    remote_addr: str = "",
    **fields: Unpack[AuditFields],
) -> None:
    """Append one entry, in the caller's transaction (a lookup and its record commit together)."""
    record(conn, Caller(actor, role, remote_addr), action, **fields)


def search(
    conn: psycopg.Connection,
    *,
    actor: str | None,
    action: str | None,
    bike_id: int | None,
    case_number: str | None,
    since: datetime | None,
    until: datetime | None,
    limit: int,
    offset: int,
) -> tuple[list[AuditEntry], int]:
    """A page of entries matching every given filter (an action ending in ``.`` is a prefix),
    newest first, and the total count."""
    params: dict[str, Any] = {
        "actor": actor,
        "action": action,
        "prefix": (action or "").replace("%", r"\%").replace("_", r"\_") + "%",
        "bike": bike_id,
        "case": case_number,
        "since": since,
        "until": until,
    }
    where = """(%(actor)s::text IS NULL OR actor = %(actor)s)
               AND (%(action)s::text IS NULL OR action = %(action)s
                    OR (right(%(action)s, 1) = '.' AND action LIKE %(prefix)s))
               AND (%(bike)s::bigint IS NULL OR bike_id = %(bike)s)
               AND (%(case)s::text IS NULL OR case_number = %(case)s)
               AND (%(since)s::timestamptz IS NULL OR at >= %(since)s)
               AND (%(until)s::timestamptz IS NULL OR at < %(until)s)"""
    with conn.cursor(row_factory=class_row(AuditEntry)) as cur:
        rows = cur.execute(
            f"""SELECT audit_id, at, actor, role, action, subject, bike_id, reason, case_number,
                       remote_addr, detail
                FROM audit_log WHERE {where}
                ORDER BY at DESC, audit_id DESC LIMIT %(limit)s OFFSET %(offset)s""",
            {**params, "limit": limit, "offset": offset},
        ).fetchall()
    total = conn.execute(f"SELECT count(*) FROM audit_log WHERE {where}", params).fetchone()
    return rows, int(total[0]) if total else 0
