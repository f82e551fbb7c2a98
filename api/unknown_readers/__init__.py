"""Readers not in the deployment that send reads: what the engine held apart, for operators."""
