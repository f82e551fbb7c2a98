"""The grounds of a location lookup: a reason that says something, or a case that exists.

Every route, live, last-seen, next-readers and companions lookup needs a case number or a
reason (docs/security.md). A reason is counted in letters and digits after Unicode NFKC, with
zero-width and other invisible characters removed: at least :data:`MIN_REASON` of them (a
Chinese character counts two: ``盗窃调查`` is enough; ``x``, ``x.......``, ``x`` with eight
combining accents or a zero-width space is not) and at least one letter (``12345678`` is not a
reason). What the audit log records is
the reason so cleaned (NFKC, invisible characters gone, spaces collapsed), so that the log
shows what an auditor can read. A case number must name an open theft (reported or
confirmed): 404 for one that does not exist, 422 for a case already closed. Cases are not
assigned to officers here, so every officer may look under every open case.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

import psycopg

from api.errors import BadRequestError, InvalidInputError, LookupNotFoundError
from api.registry import audit, cases
from track_engine.identifiers import remove_invisible

MIN_REASON = 8  # letters or digits: 8 Latin ones, or 4 Chinese characters
_SPACES = re.compile(r"\s+")
_OPEN = ("reported", "confirmed")


def clean_reason(reason: str) -> str:
    """``reason`` as recorded: NFKC, invisible characters removed, spaces collapsed."""
    spaced = _SPACES.sub(" ", unicodedata.normalize("NFKC", reason))  # a tab is a space
    return " ".join(remove_invisible(spaced).split())


def _columns(text: str) -> int:
    """Letters and digits, a wide (Chinese) one counting two: punctuation, spaces and
    combining marks stacked on one letter do not make a reason longer."""
    return sum(
        2 if unicodedata.east_asian_width(ch) in ("W", "F") else 1
        for ch in text
        if unicodedata.category(ch)[0] in ("L", "N")
    )


def check_reason(reason: str, case_number: str | None) -> str:
    """The reason as recorded (cleaned; empty when the case number is the ground).

    BadRequestError (400) with neither a case number nor a reason; InvalidInputError (422)
    for a reason given that says nothing, even beside a case number (the log would show it).
    """
    if not reason.strip():  # none given (invisible characters are not nothing: see below)
        if case_number:
            return ""
        raise BadRequestError("a location lookup needs a case number or a reason")
    cleaned = clean_reason(reason)
    if _columns(cleaned) < MIN_REASON or not any(ch.isalpha() for ch in cleaned):
        raise InvalidInputError(
            f"the reason must say why in words: at least {MIN_REASON} letters or digits "
            "(4 Chinese characters) and a letter; spaces, punctuation and invisible "
            f"characters do not count (got {cleaned!r})"
        )
    return cleaned


def check_case(conn: psycopg.Connection, record: audit.AuditRow) -> None:
    """Refuse the case number of ``record`` (if any) when it names no theft (404, audited as
    ``record``) or a closed one (422)."""
    if record.case_number is not None:
        _case_verdict(record, cases.case_status(conn, record.case_number))


async def check_case_async(conn: psycopg.AsyncConnection[Any], record: audit.AuditRow) -> None:
    """:func:`check_case` on an asyncio connection."""
    if record.case_number is not None:
        _case_verdict(record, await cases.case_status_async(conn, record.case_number))


def _case_verdict(record: audit.AuditRow, status: str | None) -> None:
    if status is None:
        raise LookupNotFoundError(
            f"no case {record.case_number}: check the case number", record=record
        )
    if status not in _OPEN:
        raise InvalidInputError(
            f"case {record.case_number} is {status}: a closed case is no ground for a "
            "lookup; give a reason instead"
        )
