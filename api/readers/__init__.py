"""Readers in the field: registry and import, health, last read."""
