"""Request and response models of tagging events and bookings."""

from __future__ import annotations

from datetime import datetime

from pydantic import AwareDatetime, BaseModel, Field, model_validator

from api.request_model import RequestModel


class EventIn(RequestModel):
    """A new tagging event."""

    name: str = Field(min_length=1, max_length=200, examples=["Riverside estate tagging day"])
    place: str = Field(min_length=1, max_length=300, examples=["Riverside estate, north gate"])
    lon: float | None = Field(default=None, ge=-180, le=180, examples=[120.15])
    lat: float | None = Field(default=None, ge=-90, le=90, examples=[30.27])
    starts_at: AwareDatetime = Field(examples=["2026-12-05T01:00:00Z"])
    ends_at: AwareDatetime = Field(examples=["2026-12-05T09:00:00Z"])
    capacity: int = Field(ge=1, le=100_000, examples=[200])

    @model_validator(mode="after")
    def _ends_after_start(self) -> EventIn:
        if self.ends_at <= self.starts_at:
            raise ValueError("ends_at must be after starts_at")
        return self


class EventOut(BaseModel):
    """A tagging event with the places booked so far."""

    event_id: int
    name: str
    place: str
    lon: float | None
    lat: float | None
    starts_at: datetime
    ends_at: datetime
    capacity: int
    booked: int


class BookingOut(BaseModel):
    """A booking."""

    booking_id: int
    event_id: int
    user_id: int
    username: str
    booked_at: datetime
    checked_in_at: datetime | None
