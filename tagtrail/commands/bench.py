"""Pipeline benchmarks: ``tagtrail bench ingest|latency|query|memory``."""

from __future__ import annotations

import typer


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the pipeline benchmarks (none yet)."""
    del app, bench
