"""The one name of the PostgreSQL channel live updates go out on.

Migration 0035's triggers ``NOTIFY tagtrail_live`` (ids only, never personal data) when an
alert, a stolen-match flag or passages are stored; where those triggers cannot be (Citus), the
engine (:mod:`track_engine.db.live_notify`) and the registry notify on it themselves; the API
listens on it (:mod:`api.live.store`).
"""

LIVE_CHANNEL = "tagtrail_live"
