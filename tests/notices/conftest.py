"""Fixtures of the notice tests: the API tests' helpers (accounts, logins, registrations)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "http_api"))
