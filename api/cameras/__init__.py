"""The cameras registry: positions and footage URL templates."""
