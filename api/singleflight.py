"""One computation for concurrent cache misses of the same key, on one event loop.

When sixteen officers' requests miss the same cache entry at once (a worker's first seconds,
or a bike everyone is following), each would otherwise run the same 30 ms history query or
stitch the same route: a thundering herd that, on two cores, stalls every other request of
the worker. Here the first miss computes and the others wait for its answer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

V = TypeVar("V")


class SingleFlight(Generic[V]):
    """Concurrent :meth:`run` calls with the same key share the first one's result.

    If that first call fails or is cancelled (its client went away), the ones waiting on it
    elect a new first among themselves and compute again: a failure is never handed to a
    request that did not cause it. Not thread-safe: for coroutines of one event loop.
    """

    def __init__(self) -> None:
        self._flights: dict[Hashable, asyncio.Future[V]] = {}

    @property
    def in_flight(self) -> int:
        """Keys being computed now."""
        return len(self._flights)

    async def run(self, key: Hashable, compute: Callable[[], Awaitable[V]]) -> V:
        """``compute()``'s result, or that of a call for ``key`` already under way."""
        while (flight := self._flights.get(key)) is not None:
            await asyncio.wait({flight})  # returns when it is done, however it ended
            if not flight.cancelled():
                return flight.result()
        flight = asyncio.get_running_loop().create_future()
        self._flights[key] = flight
        try:
            value = await compute()
        except BaseException:
            flight.cancel()  # the waiting calls compute again
            raise
        else:
            flight.set_result(value)
            return value
        finally:
            del self._flights[key]
