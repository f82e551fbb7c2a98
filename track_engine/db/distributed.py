"""How a distributed PostgreSQL (Citus) reports what plain PostgreSQL reports otherwise.

Measured on Citus 13.2.2 (issue #19, ../shared/pg15-ext/README.md):

- a duplicate key met inside a distributed COPY comes back as SQLSTATE XX000 (internal error)
  with PostgreSQL's own message, not as 23505 (unique_violation): the writer must still take
  it for a redelivered batch, or it quarantines a whole message of good reads;
- a worker that is restarting or unreachable shows on the coordinator as an error of the
  statement (often XX000 too, "connection to the remote node … failed"), not as a lost
  connection of the client's own: the engine must wait and redo the micro-batch, as it does
  when its own connection drops, never quarantine it.
"""

from __future__ import annotations

import psycopg
from psycopg import errors as pg_errors

_DUPLICATE = "duplicate key value violates unique constraint"
# Messages Citus gives when a worker cannot be reached, or went away mid-statement.
_WORKER_GONE = (
    "connection to the remote node",
    "failure on connection marked as essential",
    "could not connect to",
    "connection not open",
    "server closed the connection unexpectedly",
    "terminating connection due to administrator command",
    "failed to commit transaction on",
    "could not establish any connections to the node",
    "the database system is shutting down",
    "the database system is starting up",
    "the database system is in recovery mode",
    "connection timed out",
    "connection refused",
)


def is_duplicate_key(exc: BaseException) -> bool:
    """True for a unique violation, as PostgreSQL (23505) or a distributed COPY (XX000)
    reports it."""
    if isinstance(exc, pg_errors.UniqueViolation):
        return True
    return (
        isinstance(exc, psycopg.Error)
        and exc.sqlstate == "XX000"
        and str(exc).startswith(_DUPLICATE)
    )


def is_worker_unavailable(exc: BaseException) -> bool:
    """True when the coordinator could not reach a worker: transient, redo after a wait."""
    if isinstance(exc, psycopg.OperationalError):
        return True
    if not isinstance(exc, psycopg.Error) or exc.sqlstate is None:
        return False
    if exc.sqlstate.startswith("08") or exc.sqlstate in ("57P01", "57P03"):
        return True
    message = str(exc).lower()
    return exc.sqlstate == "XX000" and any(m in message for m in _WORKER_GONE)
