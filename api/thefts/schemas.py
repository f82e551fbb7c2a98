"""Request and response models of thefts, watches and residents' alerts."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field

from api.deps import MAX_ID
from api.request_model import RequestModel

CASE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,63}$"


class TheftIn(RequestModel):
    """A theft report: which bike, when, where, what happened."""

    bike_id: int = Field(ge=1, le=MAX_ID, examples=[1])
    stolen_at: AwareDatetime = Field(examples=["2026-11-29T05:40:00Z"])
    place: str = Field(default="", max_length=300, examples=["outside the metro station"])
    description: str = Field(default="", max_length=2000, examples=["lock cut, gone in 5 min"])


class TheftOut(BaseModel):
    """A theft and its state."""

    theft_id: int
    bike_id: int
    plate: str | None
    reported_at: datetime
    stolen_at: datetime
    place: str
    description: str
    status: str
    case_number: str | None
    recovered_at: datetime | None


class ConfirmIn(RequestModel):
    """An officer's confirmation."""

    case_number: str = Field(pattern=CASE_PATTERN, examples=["HZ-2026-001234"])


class RecoverIn(RequestModel):
    """When the bike was recovered (default: now)."""

    recovered_at: AwareDatetime | None = None


class WatchIn(RequestModel):
    """Arm "alert me if my bike moves" for a window (at most 31 days)."""

    starts_at: AwareDatetime | None = Field(default=None, description="default: now")
    ends_at: AwareDatetime = Field(examples=["2026-11-30T07:00:00Z"])


class WatchOut(BaseModel):
    """A watch on a bike."""

    watch_id: int
    bike_id: int
    kind: str
    theft_id: int | None
    starts_at: datetime
    ends_at: datetime | None
    closed_at: datetime | None


class ReportAction(BaseModel):
    """The one-step "report stolen": POST this body to ``href``."""

    method: str = "POST"
    href: str = "/api/v1/thefts"
    body: TheftIn


class ResidentAlertOut(BaseModel):
    """Your bike was read while "alert me" was armed."""

    alert_id: int
    bike_id: int
    reader_id: str
    read_at: datetime
    lon: float | None
    lat: float | None
    report_stolen: ReportAction
