"""Response models of the tracking domain's documents that are not GeoJSON."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class SightingOut(BaseModel):
    """Where and when a bike was last heard."""

    reader_id: str
    at: datetime
    lon: float | None = Field(description="the reader's position; null if it has none")
    lat: float | None
    source: str = Field(description="passage (closest approach) or read (a watched tag's alert)")


class OpenTheftOut(BaseModel):
    """An open theft (reported or confirmed) and its bike's last sighting."""

    theft_id: int
    bike_id: int
    plate: str | None
    case_number: str | None
    status: str
    stolen_at: datetime
    last_seen: SightingOut | None = Field(description="null: not seen yet")


class OpenTheftsOut(BaseModel):
    """Every open theft with its last sighting: the duty desk's overview map."""

    items: list[OpenTheftOut]
    generated_at: datetime
