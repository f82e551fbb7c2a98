"""The gateway's quarantine: reader input it refused, kept as evidence beside the spool.

One JSON object per line in ``quarantine.ndjson`` (in the spool directory): ``at`` (the
gateway's receive time, ISO 8601 UTC), ``reader_id`` (the reader the transport proves),
``reason`` (``reader_id_mismatch``, ``read_at_out_of_window``, or a decoder's reject reason),
``reads`` (how many reads the entry stands for; 0 for bytes that decoded to none),
``detail`` and ``raw_b64`` (the refused message or frame bytes, base64). A refused message
is evidence — a forged sighting, a broken reader clock — so every refusal is written, not
one per interval as in the log.

Bounded: past ``max_bytes`` the file is renamed ``quarantine.ndjson.1`` (replacing the older
one) and a new one started, so the quarantine never takes more than twice ``max_bytes``. It
never stops the gateway: a write that fails (a full disk) is counted in :attr:`Quarantine.
failed` and logged, and the refusal is still counted in the metrics.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import orjson

log = logging.getLogger(__name__)

FILE_NAME = "quarantine.ndjson"
MAX_RAW_BYTES = 64 << 10  # of one refused message kept; a longer one is cut (and says so)


@dataclass(frozen=True, slots=True)
class QuarantineEntry:
    """One refusal as written."""

    at: datetime
    reader_id: str
    reason: str
    reads: int
    detail: str
    raw: bytes


class Quarantine:
    """Append-only, size-bounded NDJSON file of refused reader input."""

    def __init__(self, directory: Path, *, max_bytes: int) -> None:
        self.path = directory / FILE_NAME
        self.max_bytes = max_bytes
        self.written = 0
        self.failed = 0
        directory.mkdir(parents=True, exist_ok=True)

    def add(self, entry: QuarantineEntry) -> None:
        """Write one entry (rotating the file first if it is full); never raises."""
        raw = entry.raw[:MAX_RAW_BYTES]
        doc = {
            "at": entry.at.isoformat(),
            "reader_id": entry.reader_id,
            "reason": entry.reason,
            "reads": entry.reads,
            "detail": entry.detail,
            "raw_b64": base64.b64encode(raw).decode("ascii"),
            "raw_bytes": len(entry.raw),
        }
        line = orjson.dumps(doc) + b"\n"
        try:
            if self.path.exists() and self.path.stat().st_size + len(line) > self.max_bytes:
                self.path.replace(self.path.with_name(FILE_NAME + ".1"))
            with self.path.open("ab") as handle:
                handle.write(line)
        except OSError as exc:
            self.failed += 1
            log.error("quarantine: cannot write %s: %s", self.path, exc)
            return
        self.written += 1

    def entries(self) -> list[dict[str, object]]:
        """Every entry of the current file, oldest first (for tools and tests)."""
        if not self.path.exists():
            return []
        lines = self.path.read_bytes().splitlines()
        return [orjson.loads(line) for line in lines if line.strip()]
