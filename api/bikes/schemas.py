"""Response models of the bikes domain."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class TagBindingOut(BaseModel):
    """A tag bound to the bike over a time range."""

    tag_id: str
    valid_from: datetime
    valid_to: datetime | None


class BikeOut(BaseModel):
    """A bike as an officer sees it; the owner's phone is masked."""

    bike_id: int
    plate: str
    frame_number: str
    brand: str
    colour: str
    owner_name: str
    owner_phone: str
    tags: list[TagBindingOut]
    stolen_at: datetime | None
    case_number: str | None
