"""Fixtures of the API tests: one migrated database and app per module, a user per role
(defined in api_fixtures.py, which the security suite shares)."""

from __future__ import annotations

from api_fixtures import api_db, client, headers

__all__ = ["api_db", "client", "headers"]
