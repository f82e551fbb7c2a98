"""SingleFlight: concurrent misses of one key share one computation; failures are not shared."""

from __future__ import annotations

import asyncio

import pytest

from api.singleflight import SingleFlight


def test_concurrent_calls_for_one_key_share_one_computation() -> None:
    async def main() -> None:
        flights: SingleFlight[str] = SingleFlight()
        calls: list[str] = []

        async def compute(key: str) -> str:
            calls.append(key)
            await asyncio.sleep(0.05)
            return f"answer {key}"

        results = await asyncio.gather(
            *(flights.run(k, lambda k=k: compute(k)) for k in ["a"] * 8 + ["b"] * 3)
        )
        assert results == ["answer a"] * 8 + ["answer b"] * 3
        assert sorted(calls) == ["a", "b"]
        assert flights.in_flight == 0
        # Done flights are forgotten: a later miss computes again (the cache is the caller's).
        assert await flights.run("a", lambda: compute("a")) == "answer a"
        assert calls.count("a") == 2

    asyncio.run(main())


def test_a_failure_goes_to_its_own_caller_and_the_waiting_ones_compute_again() -> None:
    async def main() -> None:
        flights: SingleFlight[int] = SingleFlight()
        attempts = 0

        async def flaky() -> int:
            nonlocal attempts
            attempts += 1
            await asyncio.sleep(0.05)
            if attempts == 1:
                raise RuntimeError("database went away")
            return 42

        first = asyncio.ensure_future(flights.run("k", flaky))
        await asyncio.sleep(0.01)  # the first call is under way
        waiting = [asyncio.ensure_future(flights.run("k", flaky)) for _ in range(5)]
        with pytest.raises(RuntimeError):
            await first
        assert await asyncio.gather(*waiting) == [42] * 5
        assert attempts == 2  # one retry among the five, not five

    asyncio.run(main())


def test_a_cancelled_first_call_does_not_cancel_the_ones_waiting_on_it() -> None:
    async def main() -> None:
        flights: SingleFlight[str] = SingleFlight()

        async def slow() -> str:
            await asyncio.sleep(0.05)
            return "route"

        first = asyncio.ensure_future(flights.run("bike", slow))
        await asyncio.sleep(0.01)
        waiting = asyncio.ensure_future(flights.run("bike", slow))
        await asyncio.sleep(0.01)
        first.cancel()  # the officer closed the tab
        assert await waiting == "route"
        assert first.cancelled()
        assert flights.in_flight == 0

    asyncio.run(main())
