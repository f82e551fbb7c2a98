"""What the API needs to run; built by the composition root from the settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiConfig:
    """Connection and presentation settings of the API."""

    database_url: str
    tile_url: str | None = None  # optional background tiles; the base map is our road network
    pool_max_size: int = 8
