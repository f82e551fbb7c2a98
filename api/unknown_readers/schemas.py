"""Response models of the unknown readers' list."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class UnknownReaderOut(BaseModel):
    """A reader id not in the deployment registry that sent reads: they were held apart,
    never used as any bike's position or last seen. Counts only: no tag, no bike."""

    reader_id: str
    reads: int = Field(description="reads held apart")
    tags: int = Field(description="distinct tags among them")
    first_read_at: datetime
    last_read_at: datetime
    last_stored_at: datetime = Field(description="when the engine last held one apart")
    gateway_ids: list[str] = Field(description="the gateways that sent them")
    registered: bool = Field(
        description="imported since: its reads from then on are tracked (these stay apart)"
    )
