"""Bike lookup by plate or frame number."""
