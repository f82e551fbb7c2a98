"""The gateway's quarantine file: every refusal kept with its bytes, bounded, never fatal."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from pathlib import Path

from reader_gateway.quarantine import FILE_NAME, Quarantine, QuarantineEntry

AT = datetime(2026, 12, 7, 4, 0, tzinfo=UTC)


def _entry(i: int) -> QuarantineEntry:
    raw = b'{"hostname":"POLICE-HQ-GATE","n":%d}' % i
    return QuarantineEntry(AT, "R0001", "reader_id_mismatch", 1, f"forged {i}", raw)


def test_quarantine_keeps_each_refusal_with_its_bytes(tmp_path: Path) -> None:
    quarantine = Quarantine(tmp_path, max_bytes=1 << 20)
    for i in range(3):
        quarantine.add(_entry(i))
    entries = quarantine.entries()
    assert [e["detail"] for e in entries] == ["forged 0", "forged 1", "forged 2"]
    assert base64.b64decode(str(entries[2]["raw_b64"])) == _entry(2).raw
    assert entries[0]["at"] == "2026-12-07T04:00:00+00:00"


def test_quarantine_rotates_and_stays_within_twice_its_budget(tmp_path: Path) -> None:
    quarantine = Quarantine(tmp_path, max_bytes=4096)
    for i in range(500):
        quarantine.add(_entry(i))
    assert quarantine.written == 500
    current, older = tmp_path / FILE_NAME, tmp_path / f"{FILE_NAME}.1"
    assert current.stat().st_size <= 4096
    assert older.stat().st_size <= 4096
    assert quarantine.entries()[-1]["detail"] == "forged 499"  # the newest are kept


def test_a_quarantine_that_cannot_write_counts_and_carries_on(tmp_path: Path) -> None:
    (tmp_path / FILE_NAME).mkdir()  # opening it for appending fails
    quarantine = Quarantine(tmp_path, max_bytes=1 << 20)
    quarantine.add(_entry(1))
    assert (quarantine.written, quarantine.failed) == (0, 1)
