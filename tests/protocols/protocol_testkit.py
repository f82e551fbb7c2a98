"""Checks shared by every protocol's tests (imported by the test modules in this folder).

Like Traccar's shared decoder check, :func:`assert_sane` runs on every protocol's output: tag
ids canonical, antennas 1-based, RSSI plausible, times aware UTC.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from reader_gateway.protocols.base import Decoder, DecodeResult

FIXTURES = Path(__file__).parent / "fixtures"
RECEIVED_AT = datetime(2026, 11, 29, 6, 30, 0, tzinfo=UTC)
_CANONICAL = re.compile(r"(?:[0-9A-F]{2})+")


def fixture(protocol: str, name: str) -> bytes:
    """Bytes of ``tests/protocols/fixtures/<protocol>/<name>``."""
    return (FIXTURES / protocol / name).read_bytes()


def fixture_names(protocol: str) -> list[str]:
    """All fixture file names of one protocol, sorted."""
    return sorted(p.name for p in (FIXTURES / protocol).iterdir() if p.is_file())


def assert_sane(result: DecodeResult) -> None:
    """The shared check every decoder's output must pass."""
    for read in result.reads:
        assert _CANONICAL.fullmatch(read.tag_id), read.tag_id
        assert read.antenna >= 1, read
        assert -150.0 <= read.rssi_dbm <= 30.0, read
        assert read.read_at.tzinfo is not None, read
        assert read.read_at.utcoffset() == timedelta(0), read
    for event in result.events:
        assert event.at.utcoffset() == timedelta(0), event
        assert event.kind, event
    for reject in result.rejects:
        assert isinstance(reject.raw, bytes)
        assert reject.reason


def run(
    factory: Callable[[], Decoder],
    chunks: Iterable[bytes],
    received_at: datetime = RECEIVED_AT,
) -> DecodeResult:
    """Feed ``chunks`` to a fresh decoder, then flush; return everything it produced."""
    decoder = factory()
    total = DecodeResult()
    for chunk in chunks:
        total.extend(decoder.decode(chunk, received_at))
    total.extend(decoder.flush(received_at))
    assert_sane(total)
    return total


def comparable(result: DecodeResult) -> tuple[object, ...]:
    """A value that compares equal for equal results (exceptions compare by type and raw)."""
    rejects = [(type(r.error).__name__, r.raw) for r in result.rejects]
    return (result.reads, rejects, result.events, result.reply)


def split_at(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """Split ``data`` at the given (unsorted, possibly repeated) positions."""
    points = [0, *sorted({min(max(c, 0), len(data)) for c in cuts}), len(data)]
    return [data[a:b] for a, b in itertools.pairwise(points)]


def reasons(result: DecodeResult) -> list[str]:
    """Reject reasons in order."""
    return [r.reason for r in result.rejects]
