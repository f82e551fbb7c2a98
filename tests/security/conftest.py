"""Fixtures of the security tests: the API on a migrated database, one account per role.

The API tests' helpers and fixtures (tests/http_api: accounts, logins, valid registrations)
and the gateway tests' helpers (tests/gateway: waiting, a private Mosquitto) are shared.
"""

from __future__ import annotations

import sys
from pathlib import Path

for shared in ("http_api", "gateway"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / shared))

from api_fixtures import api_db, client, headers  # noqa: E402

__all__ = ["api_db", "client", "headers"]
