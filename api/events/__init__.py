"""Tagging events: free registration sessions; residents book, registrars check them in."""
