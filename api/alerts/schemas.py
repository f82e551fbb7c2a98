"""Request and response models of the duty desk's history and acknowledgements."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from api.request_model import RequestModel

Period = Literal["shift", "24h"]
Kind = Literal["theft", "armed", "stolen_frame", "stolen_motor"]


class DeskItemOut(BaseModel):
    """An alert (a watched bike passed a reader) or a stolen-match flag (a stolen bike's frame
    or motor number presented at registration), and who acknowledged it when."""

    source: Literal["alert", "flag"] = Field(description="alert or flag: ids are per source")
    id: int = Field(description="alert_id or flag_id")
    kind: str = Field(description="theft, armed (alerts); stolen_frame, stolen_motor (flags)")
    raised_at: datetime
    read_at: datetime | None = Field(description="alerts: when the reader heard the bike")
    bike_id: int
    plate: str | None
    case_number: str | None
    reader_id: str | None
    lon: float | None
    lat: float | None
    event_id: int | None = Field(description="flags: the tagging event it was presented at")
    presented_by: str | None = Field(description="flags: the registrar")
    acknowledged_by: str | None = Field(description="username; null: not acknowledged")
    acknowledged_at: datetime | None


class DeskHistoryOut(BaseModel):
    """A page of the desk's history, newest first, and the window it covers."""

    items: list[DeskItemOut]
    total: int
    limit: int
    offset: int
    since: datetime = Field(description="start of the period: this shift's, or 24 h ago")
    waiting_since: datetime | None = Field(
        description="this shift also lists what nobody acknowledged since then (24 h ago)"
    )
    unacknowledged: int = Field(description="of those matching, how many wait for someone")


class WaitingOut(BaseModel):
    """How many alerts and flags of the last 24 h wait for someone, under the desk's filters:
    a count only (no bike, no place), for a desk to correct its figure after an ``ack`` event
    about an item it does not list."""

    unacknowledged: int = Field(description="matching items nobody has acknowledged yet")
    waiting_since: datetime = Field(description="the count covers what was raised since then")


class AcknowledgeIn(RequestModel):
    """An acknowledgement, with an optional note (recorded in the audit log)."""

    note: str = Field(default="", max_length=500, examples=["unit 12 on its way"])
