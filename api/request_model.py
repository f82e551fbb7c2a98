"""The one base of every JSON request body: a field the API does not know is refused.

Pydantic ignores unknown fields by default, so a typo (``case_numbr``) or a field nested one
level too deep passed unnoticed, or surfaced as a misleading "Field required" on its
neighbour. With ``extra="forbid"`` the 422 problem names the field that is not allowed
(api/errors.py).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RequestModel(BaseModel):
    """A request body: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid")
