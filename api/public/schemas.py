"""What the public stolen check answers: yes or no, and since when; never where."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field


class StolenCheckOut(BaseModel):
    """The answer to "is this e-bike reported stolen?"."""

    checked_by: Literal["plate", "frame_number"]
    value: str = Field(description="the plate or frame number as given")
    reported_stolen: bool
    reported_on: date | None = Field(
        None, description="the day the theft was reported (no time, no place)"
    )
    advice: str = Field(description="what to do next, in plain words")
