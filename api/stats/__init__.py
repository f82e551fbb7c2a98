"""Figures for supervisors."""
