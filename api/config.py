"""What the API needs to run; built by the composition root from the settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ApiConfig:
    """Connection, security and presentation settings of the API.

    The three keys come from the settings (environment or key files in the data directory).
    Left as None, :func:`api.app.create_app` makes random ones for this process only: fine for
    tests and throw-away demos, wrong for a deployment (tokens die with the process and stored
    ID numbers could not be decrypted or matched again).
    """

    database_url: str
    tile_url: str | None = None  # optional background tiles; the base map is our road network
    pool_max_size: int = 8  # each of the two pools (views on threads; lookups on the loop)
    lookup_pool_min_size: int = 2  # asyncio connections of route, last seen, next readers
    jwt_secret: bytes | None = None  # HS256 signing key of bearer tokens
    id_hash_key: bytes | None = None  # keyed hash of national ID numbers (lookup, duplicates)
    id_enc_key: bytes | None = None  # AES-GCM key of national ID numbers (32 bytes)
    token_ttl_s: int = 3600
    login_max_failures: int = 5  # per username and client address within the window
    login_max_failures_per_address: int = 20  # per client address, any usernames
    login_max_failures_per_user: int = 50  # per username, any addresses (> per address)
    login_window_s: float = 300.0
    # argon2 runs in a thread, outside any database connection, at most this many at a time
    # per process (~64 MiB each); a login finding every slot taken gets 429 + Retry-After.
    login_hash_slots: int = 1  # argon2 runs 4 lanes (threads) per hash
    # A refused login (429) is answered only after this pause: a client retrying at once is
    # paced to one attempt per pause per connection (api/login_gate.py). 0: answer at once.
    login_refusal_delay_s: float = 1.0
    # Request bodies larger than this are refused with 413 while they stream in (before they
    # are read into memory); a Content-Length above it is refused before a byte is read.
    max_body_bytes: int = 1_048_576
    # Addresses (or networks) of reverse proxies whose X-Forwarded-For / X-Forwarded-Proto
    # are believed; empty: no header is (the client address is the TCP peer's).
    trusted_proxies: tuple[str, ...] = ()
    # Live streams are woken by LISTEN tagtrail_live (one connection per process, migration
    # 0035) and read what is new at once; they also look every live_poll_s as a safety net,
    # and every live_fallback_poll_s while the listener is down (it reconnects with backoff).
    live_listen: bool = True  # False: no LISTEN (e.g. behind a transaction-pooling proxy)
    live_poll_s: float = 10.0
    live_fallback_poll_s: float = 1.0
    # How far back the duty desk's stream may replay when it resumes (Last-Event-ID): alerts
    # and flags raised in the last live_replay_max_s only, whatever the cursor asks for.
    live_replay_max_s: float = 600.0
    # Notice subscriptions (api/notifications/): webhooks to loopback/private addresses are
    # refused unless allowed; apprise URLs only with these schemes (settings.py has the list).
    notify_allow_private_targets: bool = False
    notify_apprise_schemes: tuple[str, ...] = ()
    # The duty desk's "this shift": shifts of desk_shift_hours, the first of the day starting
    # desk_shift_first_hour_utc hours after midnight UTC (06:00, 14:00, 22:00 by default).
    desk_shift_hours: int = 8
    desk_shift_first_hour_utc: int = 6
