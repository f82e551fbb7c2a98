"""GET /api/v1/public/stolen-check: is this e-bike reported stolen? No account needed;
limited per client address; audited; never a location."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request
from limits import parse_many
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from api.deps import ConnDep, client_address
from api.errors import TooManyRequestsError
from api.public.schemas import StolenCheckOut
from api.public.service import check_stolen

router = APIRouter(prefix="/api/v1/public", tags=["public"])

# Enough for a buyer checking a few bikes; too few to walk the registry for stolen plates.
# Counted per API process (like the login limits), so N workers allow N times as many.
LIMITS = parse_many("10/minute;60/day")
LIMIT_STORAGE = MemoryStorage()
_limiter = MovingWindowRateLimiter(LIMIT_STORAGE)


async def _within_limits(request: Request) -> str:
    """The caller's address, once it is within :data:`LIMITS` (else 429 with Retry-After)."""
    address = await client_address(request)
    for limit in LIMITS:
        if not _limiter.hit(limit, "public-stolen-check", address):
            reset_at, _ = _limiter.get_window_stats(limit, "public-stolen-check", address)
            raise TooManyRequestsError(
                f"too many checks from this address ({limit}); try again later",
                retry_after_s=max(1, int(reset_at - time.time()) + 1),
            )
    return address


@router.get(
    "/stolen-check",
    responses={400: {"description": "neither or both of plate and frame_number"},
               429: {"description": "too many checks from this address"}},
)  # fmt: skip
def stolen_check(
    conn: ConnDep,
    address: Annotated[str, Depends(_within_limits)],
    plate: Annotated[str | None, Query(min_length=1, max_length=32)] = None,
    frame_number: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
) -> StolenCheckOut:
    """Whether the e-bike with this plate or frame number (exactly one) is reported stolen,
    and since which day. No location, no owner, no registration status. No login."""
    return check_stolen(conn, plate=plate, frame_number=frame_number, remote_addr=address)
