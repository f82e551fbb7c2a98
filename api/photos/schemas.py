"""A bike's photo as the API lists it."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class PhotoOut(BaseModel):
    """One photo of a bike; fetch its bytes at ``url`` (JPEG) or ``thumbnail_url``."""

    photo_id: int
    uploaded_at: datetime
    uploaded_by: str
    caption: str
    width: int
    height: int
    url: str = Field(description="the photo, JPEG, at most 1600 px")
    thumbnail_url: str = Field(description="its thumbnail, JPEG, at most 320 px")
