"""What a notice says. Never where: no reader, no position, no street, for any recipient.

A resident may see their own bike's alert positions in the console, and the duty desk every
stolen bike's; but a notice leaves the system (a mailbox, a phone, a chat, a third-party
webhook receiver) where nobody checks who reads it. So every notice carries the kind, the bike,
the case number and the time only, and a link to the console, where the reader's rights are
checked and the look is audited.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from api.notifications.store import Notice, NoticeContext

# The console page each kind's recipients work from.
_PAGES = {"bike_moved": "/resident", "stolen_seen": "/desk", "stolen_frame": "/desk"}


@dataclass(frozen=True, slots=True)
class Message:
    """One notice, written for every channel."""

    subject: str
    text: str
    payload: dict[str, Any]  # the webhook body and apprise's JSON


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S UTC") if at is not None else ""


def compose(notice: Notice, context: NoticeContext, *, console_url: str) -> Message:
    """The notice's subject, text and JSON payload."""
    link = console_url.rstrip("/") + _PAGES[notice.kind]
    bike = context.bike_label or f"bike {context.bike_id}"
    case = f" (case {context.case_number})" if context.case_number else ""
    if notice.kind == "bike_moved":
        subject = "TagTrail: your bike moved"
        body = f"Your {bike} was read by a TagTrail reader at {_when(context.read_at)}."
    elif notice.kind == "stolen_seen":
        subject = f"TagTrail: stolen bike seen{case}"
        body = f"A stolen {bike}{case} was read by a TagTrail reader at {_when(context.read_at)}."
    else:
        subject = f"TagTrail: registration matches a stolen bike{case}"
        body = f"A bike presented for registration matches the stolen {bike}{case}."
    text = f"{body}\nWhere and what next: {link}\n(Notices never say where; the console does.)"
    payload: dict[str, Any] = {
        "id": f"notice_{notice.notice_id}",
        "type": notice.kind,
        "created_at": notice.created_at.isoformat(),
        "alert_id": notice.alert_id,
        "flag_id": notice.flag_id,
        "bike_id": context.bike_id,
        "case_number": context.case_number,
        "read_at": context.read_at.isoformat() if context.read_at else None,
        "raised_at": context.raised_at.isoformat(),
        "console_url": link,
        "text": body,
    }
    return Message(subject=subject, text=text, payload=payload)
