"""Simulator commands (``tagtrail simulate``, ``roads import``, ``readers import``)."""

from __future__ import annotations

import typer


def register(app: typer.Typer, bench: typer.Typer) -> None:
    """Add the simulator's commands and benchmarks (none yet)."""
    del app, bench
