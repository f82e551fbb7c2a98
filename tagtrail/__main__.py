"""``python -m tagtrail`` runs the CLI."""

from tagtrail.cli import app

app()
