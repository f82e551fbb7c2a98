"""The SQL of notices (migration 0095): subscriptions, the outbox, delivery attempts.

The caller owns the transaction. The outbox is filled by triggers on ``alerts`` and
``registration_flags``; this module only reads it, claims due rows and records what came of
each delivery.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.rows import class_row

KINDS = ("bike_moved", "stolen_seen", "stolen_frame")
CHANNELS = ("email", "webhook", "apprise")


@dataclass(frozen=True, slots=True)
class Subscription:
    """Where one user wants to hear of which kinds of alert."""

    subscription_id: int
    user_id: int
    channel: str
    address: str
    kinds: list[str]
    webhook_secret: str | None
    enabled: bool
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Notice:
    """One outbox row: a notice to one subscription about one alert or flag."""

    notice_id: int
    created_at: datetime
    kind: str
    alert_id: int | None
    flag_id: int | None
    bike_id: int
    user_id: int
    subscription_id: int
    channel: str
    status: str
    attempts: int
    next_attempt_at: datetime
    last_error: str
    sent_at: datetime | None


@dataclass(frozen=True, slots=True)
class Attempt:
    """One delivery attempt of a notice."""

    attempt: int
    started_at: datetime
    duration_ms: float
    outcome: str
    error: str


@dataclass(frozen=True, slots=True)
class NoticeContext:
    """What a notice's text may say (never where the bike was: no reader, no position)."""

    bike_id: int
    bike_label: str  # brand, model, colour
    case_number: str | None
    read_at: datetime | None  # when the reader heard the tag (alerts), None for flags
    raised_at: datetime


_SUB_COLUMNS = """subscription_id, user_id, channel, address, kinds, webhook_secret, enabled,
                  created_at"""
_NOTICE_COLUMNS = """notice_id, created_at, kind, alert_id, flag_id, bike_id, user_id,
                     subscription_id, channel, status, attempts, next_attempt_at, last_error,
                     sent_at"""


def add_subscription(
    conn: psycopg.Connection,
    *,
    user_id: int,
    channel: str,
    address: str,
    kinds: list[str],
    webhook_secret: str | None,
    enabled: bool,
) -> Subscription:
    """Store a new subscription."""
    with conn.cursor(row_factory=class_row(Subscription)) as cur:
        row = cur.execute(
            f"""INSERT INTO notice_subscriptions
                    (user_id, channel, address, kinds, webhook_secret, enabled)
                VALUES (%s, %s, %s, %s, %s, %s) RETURNING {_SUB_COLUMNS}""",
            (user_id, channel, address, kinds, webhook_secret, enabled),
        ).fetchone()
    if row is None:  # INSERT ... RETURNING always returns the row
        raise RuntimeError("subscription was not stored")
    return row


def subscriptions_of(conn: psycopg.Connection, user_id: int) -> list[Subscription]:
    """The user's current (not removed) subscriptions, oldest first."""
    with conn.cursor(row_factory=class_row(Subscription)) as cur:
        return cur.execute(
            f"""SELECT {_SUB_COLUMNS} FROM notice_subscriptions
                WHERE user_id = %s AND removed_at IS NULL ORDER BY subscription_id""",
            (user_id,),
        ).fetchall()


def subscription(
    conn: psycopg.Connection, subscription_id: int, *, user_id: int
) -> Subscription | None:
    """The user's current subscription of that id (None: missing, removed or someone else's)."""
    with conn.cursor(row_factory=class_row(Subscription)) as cur:
        return cur.execute(
            f"""SELECT {_SUB_COLUMNS} FROM notice_subscriptions
                WHERE subscription_id = %s AND user_id = %s AND removed_at IS NULL
                FOR UPDATE""",
            (subscription_id, user_id),
        ).fetchone()


def update_subscription(
    conn: psycopg.Connection, subscription_id: int, changes: dict[str, Any]
) -> None:
    """Set the given columns (address, kinds, enabled) of a subscription."""
    allowed = {"address", "kinds", "enabled"}
    names = sorted(set(changes) & allowed)
    if not names:
        return
    sets = ", ".join(f"{name} = %({name})s" for name in names)
    conn.execute(
        f"UPDATE notice_subscriptions SET {sets} WHERE subscription_id = %(id)s",
        {**{name: changes[name] for name in names}, "id": subscription_id},
    )


def remove_subscription(conn: psycopg.Connection, subscription_id: int) -> None:
    """Mark a subscription removed; its pending notices are cancelled."""
    conn.execute(
        "UPDATE notice_subscriptions SET removed_at = now() WHERE subscription_id = %s",
        (subscription_id,),
    )
    conn.execute(
        """UPDATE notices SET status = 'cancelled', last_error = 'subscription removed'
           WHERE subscription_id = %s AND status = 'pending'""",
        (subscription_id,),
    )


def list_notices(
    conn: psycopg.Connection,
    *,
    user_id: int | None,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[Notice], int]:
    """A page of notices, newest first: one user's (or everyone's, ``user_id`` None)."""
    where = """(%(u)s::bigint IS NULL OR user_id = %(u)s)
               AND (%(s)s::text IS NULL OR status = %(s)s)"""
    params = {"u": user_id, "s": status, "l": limit, "o": offset}
    with conn.cursor(row_factory=class_row(Notice)) as cur:
        rows = cur.execute(
            f"""SELECT {_NOTICE_COLUMNS} FROM notices WHERE {where}
                ORDER BY notice_id DESC LIMIT %(l)s OFFSET %(o)s""",
            params,
        ).fetchall()
    total = conn.execute(f"SELECT count(*) FROM notices WHERE {where}", params).fetchone()
    return rows, int(total[0]) if total else 0


def attempts_of(conn: psycopg.Connection, notice_id: int) -> list[Attempt]:
    """A notice's delivery attempts, first first."""
    with conn.cursor(row_factory=class_row(Attempt)) as cur:
        return cur.execute(
            """SELECT attempt, started_at, duration_ms, outcome, error FROM notice_attempts
               WHERE notice_id = %s ORDER BY attempt""",
            (notice_id,),
        ).fetchall()


def claim_due(conn: psycopg.Connection) -> Notice | None:
    """The oldest due pending notice, locked for this transaction (other senders skip it)."""
    with conn.cursor(row_factory=class_row(Notice)) as cur:
        return cur.execute(
            f"""SELECT {_NOTICE_COLUMNS} FROM notices
                WHERE status = 'pending' AND next_attempt_at <= now()
                ORDER BY next_attempt_at, notice_id LIMIT 1
                FOR UPDATE SKIP LOCKED"""
        ).fetchone()


def next_due_in_s(conn: psycopg.Connection) -> float | None:
    """Seconds until the next pending notice is due (0 if one is), None if none is pending."""
    row = conn.execute(
        """SELECT greatest(0, extract(epoch FROM min(next_attempt_at) - now()))
           FROM notices WHERE status = 'pending'"""
    ).fetchone()
    return None if row is None or row[0] is None else float(row[0])


def delivery_target(conn: psycopg.Connection, notice: Notice) -> Subscription | None:
    """The notice's subscription if it may still be delivered to: present, enabled, and its
    user enabled and still in a role that may hear of this kind."""
    roles = ["resident"] if notice.kind == "bike_moved" else ["admin", "officer"]
    with conn.cursor(row_factory=class_row(Subscription)) as cur:
        return cur.execute(
            f"""SELECT {", ".join("s." + c.strip() for c in _SUB_COLUMNS.split(","))}
                FROM notice_subscriptions s JOIN users u USING (user_id)
                WHERE s.subscription_id = %s AND s.removed_at IS NULL AND s.enabled
                  AND NOT u.disabled AND u.role = ANY(%s) AND %s = ANY(s.kinds)""",
            (notice.subscription_id, roles, notice.kind),
        ).fetchone()


def context_of(conn: psycopg.Connection, notice: Notice) -> NoticeContext:
    """What the notice's text may say about its alert or flag."""
    if notice.alert_id is not None:
        row = conn.execute(
            """SELECT w.bike_id, concat_ws(' ', nullif(b.brand, ''), nullif(b.model, ''),
                                           nullif(b.colour, '')),
                      t.case_number, a.read_at, a.raised_at
               FROM alerts a JOIN watches w USING (watch_id) JOIN bikes b USING (bike_id)
               LEFT JOIN thefts t ON t.theft_id = w.theft_id
               WHERE a.alert_id = %s""",
            (notice.alert_id,),
        ).fetchone()
    else:
        row = conn.execute(
            """SELECT f.stolen_bike_id, concat_ws(' ', nullif(b.brand, ''),
                      nullif(b.model, ''), nullif(b.colour, '')),
                      t.case_number, NULL::timestamptz, f.raised_at
               FROM registration_flags f JOIN bikes b ON b.bike_id = f.stolen_bike_id
               JOIN thefts t ON t.theft_id = f.theft_id
               WHERE f.flag_id = %s""",
            (notice.flag_id,),
        ).fetchone()
    if row is None:  # the foreign keys keep alerts and flags of notices
        raise RuntimeError(f"notice {notice.notice_id} names no alert or flag")
    return NoticeContext(int(row[0]), str(row[1] or ""), row[2], row[3], row[4])


def record_attempt(
    conn: psycopg.Connection,
    *,
    notice: Notice,
    started_at: datetime,
    duration_ms: float,
    outcome: str,
    error: str,
    retry_in_s: float | None,
) -> None:
    """Append the attempt and move the notice on: sent, failed, or pending again after
    ``retry_in_s`` seconds from now (the clock's now, not the transaction's start: the
    delivery in between may have taken the timeout)."""
    attempt = notice.attempts + 1
    conn.execute(
        """INSERT INTO notice_attempts (notice_id, attempt, started_at, duration_ms, outcome,
                                        error)
           VALUES (%s, %s, %s, %s, %s, %s)""",
        (notice.notice_id, attempt, started_at, duration_ms, outcome, error),
    )
    status = {"sent": "sent", "failed": "failed", "retry": "pending"}[outcome]
    conn.execute(
        """UPDATE notices
           SET attempts = %(a)s, status = %(s)s, last_error = %(e)s,
               sent_at = CASE WHEN %(s)s = 'sent' THEN clock_timestamp() END,
               next_attempt_at = CASE WHEN %(r)s::float8 IS NULL THEN next_attempt_at
                                      ELSE clock_timestamp() + make_interval(secs => %(r)s)
                                 END
           WHERE notice_id = %(n)s""",
        {"a": attempt, "s": status, "e": error, "r": retry_in_s, "n": notice.notice_id},
    )


def cancel(conn: psycopg.Connection, notice: Notice, why: str) -> None:
    """Give up a notice that may no longer be delivered (no attempt is made)."""
    conn.execute(
        "UPDATE notices SET status = 'cancelled', last_error = %s WHERE notice_id = %s",
        (why, notice.notice_id),
    )


def requeue(conn: psycopg.Connection, notice_id: int) -> bool:
    """Put a failed notice back in the queue, due now (attempts kept). False if not failed."""
    cur = conn.execute(
        """UPDATE notices SET status = 'pending', next_attempt_at = now()
           WHERE notice_id = %s AND status = 'failed'""",
        (notice_id,),
    )
    return cur.rowcount == 1
