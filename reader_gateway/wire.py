"""The wire contract between reader gateways and track engines.

A gateway publishes *normalized read batches*; engines consume them. This module is a leaf: it
imports nothing else from the project, so gateways, engines and simulators can all depend on it
without depending on each other.

A batch is columnar (one array per field) because that is what the engine wants: it turns a
batch into numpy arrays without a per-read Python loop, and a batch of 500 reads is ~25 kB of
JSON instead of ~60 kB as an array of objects. Reader ids repeat within a batch, so they are
dictionary-encoded: ``readers`` lists each reader id once and ``reader`` holds indexes into it.

Version 1 layout (orjson-encoded UTF-8 JSON object)::

    {"v": 1, "gateway_id": "gw-1", "batch_seq": 17, "sent_at_us": 1764400000000000,
     "readers": ["R0001", "R0002"],
     "reader":     [0, 0, 1],                    # index into readers
     "antenna":    [1, 2, 1],                    # antenna port, 1-based
     "tag":        ["E2801160600002...", ...],   # canonical tag id: upper-case hex
     "rssi_dbm":   [-61.5, -58.0, -70.25],
     "read_at_us": [1764400000123456, ...],      # UTC microseconds since the Unix epoch,
                                                 # already corrected for the reader's clock
     "seq":        [1001, 1002, 77]}             # per-reader sequence number

Topics: ``tagtrail/v1/reads/<shard>`` carries batches; a gateway puts each tag on shard
``shard_of(tag, shard_count)`` so that one tag's reads stay in order in one engine worker.
Where the broker is (MQTT URLs, failover) is :mod:`reader_gateway.brokers`, built on this.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import orjson

WIRE_VERSION = 1
TOPIC_ROOT = "tagtrail/v1"
READS_TOPIC_PREFIX = f"{TOPIC_ROOT}/reads"
ALERTS_TOPIC_PREFIX = f"{TOPIC_ROOT}/alerts"
# Gateways and engines must agree on it (a tag's reads go to shard_of(tag, shard_count)).
DEFAULT_SHARD_COUNT = 4
MAX_TAG_HEX_CHARS = 124  # 496-bit EPC, the longest Gen2 allows
MAX_ABS_RSSI_DBM = 1000.0

_HEX_DIGITS = frozenset("0123456789ABCDEF")
_LOWER_HEX_DIGITS = frozenset("abcdef")
_HEX_TAG_LIST = re.compile(r"[0-9A-F]+(?:,[0-9A-F]+)*")


class WireError(ValueError):
    """A batch that does not follow the wire contract; the message says which rule it broke."""


def reads_topic(shard: int, prefix: str = READS_TOPIC_PREFIX) -> str:
    """Topic on which batches for ``shard`` are published."""
    return f"{prefix}/{shard}"


# -- stored confirmations (engine -> gateway) ---------------------------------------------------
# A broker's PUBACK is not durability: Mosquitto keeps queued messages in memory and writes its
# persistence file only now and then, so a kill -9 loses batches it had acknowledged. A gateway
# therefore keeps a batch in its spool until an engine says it committed it: the engine
# publishes ``{"v": 1, "gateway_id": "gw-1", "batch_seq": [17, 18]}`` on
# ``<prefix>/stored/<gateway_id>`` after each commit, and an empty announcement
# ``{"v": 1, "engine": "<client id>"}`` on ``<prefix>/stored`` whenever it (re)subscribes (a
# broker that lost its sessions dropped what was published before that: send it again).

_TOPIC_SAFE_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def stored_topic(prefix: str, gateway_id: str | None = None) -> str:
    """``<prefix>/stored/<gateway_id>`` (confirmations), or ``<prefix>/stored`` (announcements)."""
    return f"{prefix}/stored" if gateway_id is None else f"{prefix}/stored/{gateway_id}"


def topic_safe_id(name: str) -> bool:
    """Whether a gateway id can be a topic level (no ``/``, ``+``, ``#``; gateway config ids)."""
    return _TOPIC_SAFE_ID.fullmatch(name) is not None


def encode_stored(gateway_id: str, batch_seqs: Sequence[int]) -> bytes:
    """A confirmation that the engine committed these batches of ``gateway_id``."""
    return orjson.dumps(
        {"v": WIRE_VERSION, "gateway_id": gateway_id, "batch_seq": list(batch_seqs)}
    )


def decode_stored(payload: bytes) -> list[int]:
    """Batch numbers confirmed by a message on a stored topic (``[]`` for an announcement).

    Raises :class:`WireError` for anything else.
    """
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"stored confirmation is not JSON: {exc}") from None
    if not isinstance(doc, dict) or doc.get("v") != WIRE_VERSION:
        raise WireError("stored confirmation is not a version 1 object")
    seqs = doc.get("batch_seq", [])
    if not isinstance(seqs, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) for s in seqs
    ):
        raise WireError("batch_seq of a stored confirmation must be a list of integers")
    return seqs


def shard_of(tag_id: str, shard_count: int) -> int:
    """Shard a tag's reads go to: stable across processes and Python versions (CRC-32)."""
    return zlib.crc32(tag_id.encode("ascii")) % shard_count


# -- tag ids: the one rule ------------------------------------------------------------------
# A tag id is what a decoder emits: the tag's EPC (or an active tag's 8-byte id) as upper-case
# hex, a whole number of bytes, at most a 496-bit EPC. The decoders' output, the registry's
# validation (API schemas) and the simulators all use the definitions below, so the registrar
# cannot register a tag id no reader will ever report.

# Input accepted for a tag id (either case; the registry stores it upper-cased).
TAG_ID_PATTERN = rf"^(?:[0-9A-Fa-f]{{2}}){{1,{MAX_TAG_HEX_CHARS // 2}}}$"
_TAG_ID_RE = re.compile(TAG_ID_PATTERN, re.ASCII)


def tag_id_problem(value: str) -> str | None:
    """Why ``value`` (hex, either case, no separators) is not a tag id; ``None`` if it is one."""
    if not value or not set(value) <= _HEX_DIGITS | _LOWER_HEX_DIGITS:
        return f"tag id is not hex: {value[:40]!r}"
    if len(value) % 2:
        return f"tag id has an odd number of hex digits: {value[:40]!r}"
    if len(value) > MAX_TAG_HEX_CHARS:
        return f"tag id longer than {MAX_TAG_HEX_CHARS} hex digits"
    return None


def is_tag_id(value: str) -> bool:
    """Whether ``value`` is a tag id in the input form (:data:`TAG_ID_PATTERN`)."""
    return _TAG_ID_RE.fullmatch(value) is not None


def canonical_tag_id(raw: str) -> str:
    """Canonical tag id: upper-case hex without separators (`` ``, ``-``, ``:``).

    Raises :class:`WireError` if what is left is not a tag id (:func:`tag_id_problem`).
    """
    tag = raw.replace(" ", "").replace("-", "").replace(":", "")
    problem = tag_id_problem(tag)
    if problem is not None:
        raise WireError(problem)
    return tag.upper()


# -- reader protocols: the one list ---------------------------------------------------------
# Every reader wire format the gateway can decode, as written in gateway configuration and in
# the reader registry. reader_gateway.protocols registers one decoder per name (its import
# refuses a mismatch); the readers API accepts exactly these.
READER_PROTOCOLS = (
    "impinj-iot",
    "impinj-iot-stream",
    "zebra-iotc",
    "r2000",
    "tagtrail-active",
    "llrp",
)
READER_PROTOCOL_PATTERN = "^(" + "|".join(re.escape(p) for p in READER_PROTOCOLS) + ")$"


@dataclass(frozen=True, slots=True)
class ReadBatch:
    """A columnar batch of normalized reads, as published by one gateway.

    All per-read arrays have the same length. ``reader`` indexes ``readers``.
    """

    gateway_id: str
    batch_seq: int
    sent_at_us: int
    readers: tuple[str, ...]
    reader: npt.NDArray[np.int32]
    antenna: npt.NDArray[np.int16]
    tag: npt.NDArray[np.object_]
    rssi_dbm: npt.NDArray[np.float32]
    read_at_us: npt.NDArray[np.int64]
    seq: npt.NDArray[np.int64]

    def __len__(self) -> int:
        return int(self.read_at_us.shape[0])

    def reader_ids(self) -> npt.NDArray[np.object_]:
        """Reader id of each read (dictionary decoded)."""
        return np.asarray(self.readers, dtype=object)[self.reader]

    def validate(self) -> None:
        """Raise WireError unless the batch is internally consistent."""
        n = len(self)
        for name in ("reader", "antenna", "tag", "rssi_dbm", "seq"):
            if getattr(self, name).shape != (n,):
                raise WireError(
                    f"column {name!r} has {getattr(self, name).shape[0]} values, not {n}"
                )
        if n and (self.reader.min() < 0 or self.reader.max() >= len(self.readers)):
            raise WireError("reader index out of range of 'readers'")
        if n and (self.antenna.min() < 1):
            raise WireError("antenna ports are 1-based")
        if not np.isfinite(self.rssi_dbm).all():
            raise WireError("rssi_dbm must be finite")
        # Beyond this, rounding to 0.01 dB overflows float32 and the batch could not be encoded
        # again (found by fuzzing); no radio reports anything near it.
        if n and np.abs(self.rssi_dbm).max() > MAX_ABS_RSSI_DBM:
            raise WireError(f"rssi_dbm must be within ±{MAX_ABS_RSSI_DBM:g} dBm")
        if n and not _all_hex_tags(self.tag):
            for tag in self.tag:  # name the first bad one
                if not isinstance(tag, str) or not tag or not set(tag) <= _HEX_DIGITS:
                    raise WireError(f"tag id {tag!r} is not canonical upper-case hex")


def _all_hex_tags(tags: npt.NDArray[np.object_]) -> bool:
    """True when every tag is a non-empty string of upper-case hex digits (no per-tag loop:
    one regex over the tags joined by commas, which no valid tag contains)."""
    try:
        joined = ",".join(tags.tolist())
    except TypeError:  # not all strings
        return False
    return _HEX_TAG_LIST.fullmatch(joined) is not None


def _int64(value: object, name: str) -> int:
    """A JSON integer that fits int64 (orjson reads larger ones as floats; found by fuzzing:
    a 100-digit ``batch_seq`` decoded fine and then could not be encoded again)."""
    if type(value) is not int or not -(2**63) <= value < 2**63:
        raise WireError(f"{name} must be an integer within int64, not {str(value)[:30]}")
    return value


def encode_batch(batch: ReadBatch) -> bytes:
    """Serialize a batch to its wire bytes (version ``WIRE_VERSION``)."""
    doc: dict[str, Any] = {
        "v": WIRE_VERSION,
        "gateway_id": batch.gateway_id,
        "batch_seq": batch.batch_seq,
        "sent_at_us": batch.sent_at_us,
        "readers": list(batch.readers),
        "reader": np.ascontiguousarray(batch.reader),
        "antenna": np.ascontiguousarray(batch.antenna),
        "tag": batch.tag.tolist(),
        # float32 written as float32 (shortest form: -61.37, not -61.369998931884766)
        "rssi_dbm": batch.rssi_dbm.round(2),
        "read_at_us": np.ascontiguousarray(batch.read_at_us),
        "seq": np.ascontiguousarray(batch.seq),
    }
    # orjson writes numeric numpy columns itself: 5x faster than going through lists.
    return orjson.dumps(doc, option=orjson.OPT_SERIALIZE_NUMPY)


def decode_batch(payload: bytes) -> ReadBatch:
    """Parse wire bytes into a validated batch; raises WireError with the reason otherwise."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise WireError(f"not JSON: {exc}") from exc
    if not isinstance(doc, dict):
        raise WireError("batch must be a JSON object")
    if doc.get("v") != WIRE_VERSION:
        raise WireError(
            f"unsupported wire version {doc.get('v')!r}; this build speaks {WIRE_VERSION}"
        )
    try:
        batch = ReadBatch(
            gateway_id=str(doc["gateway_id"]),
            batch_seq=_int64(doc["batch_seq"], "batch_seq"),
            sent_at_us=_int64(doc["sent_at_us"], "sent_at_us"),
            readers=tuple(str(r) for r in doc["readers"]),
            reader=np.asarray(doc["reader"], dtype=np.int32),
            antenna=np.asarray(doc["antenna"], dtype=np.int16),
            tag=np.asarray(doc["tag"], dtype=object),
            rssi_dbm=np.asarray(doc["rssi_dbm"], dtype=np.float32),
            read_at_us=np.asarray(doc["read_at_us"], dtype=np.int64),
            seq=np.asarray(doc["seq"], dtype=np.int64),
        )
    except KeyError as exc:
        raise WireError(f"missing field {exc.args[0]!r}") from exc
    except (TypeError, ValueError, OverflowError) as exc:
        raise WireError(f"bad field value: {exc}") from exc
    # A scalar where a list belongs makes a 0-d array (found by fuzzing: ``"read_at_us": 1``
    # made ``len(batch)`` raise IndexError instead of WireError).
    for name in ("reader", "antenna", "tag", "rssi_dbm", "read_at_us", "seq"):
        if getattr(batch, name).ndim != 1:
            raise WireError(f"column {name!r} must be a flat list")
    batch.validate()
    return batch


def batch_from_columns(
    *,
    gateway_id: str,
    batch_seq: int,
    sent_at_us: int,
    reader_ids: list[str],
    antenna: list[int],
    tag: list[str],
    rssi_dbm: list[float],
    read_at_us: list[int],
    seq: list[int],
) -> ReadBatch:
    """Build a batch from plain per-read lists (see :func:`batch_from_arrays`)."""
    index: dict[str, int] = {}
    codes = [index.setdefault(r, len(index)) for r in reader_ids]
    tags = np.empty(len(tag), dtype=object)
    tags[:] = tag
    return batch_from_arrays(
        gateway_id=gateway_id,
        batch_seq=batch_seq,
        sent_at_us=sent_at_us,
        reader_code=np.asarray(codes, dtype=np.int32),
        reader_names=list(index),
        antenna=np.asarray(antenna, dtype=np.int16),
        tag=tags,
        rssi_dbm=np.asarray(rssi_dbm, dtype=np.float32),
        read_at_us=np.asarray(read_at_us, dtype=np.int64),
        seq=np.asarray(seq, dtype=np.int64),
    )


def batch_from_arrays(
    *,
    gateway_id: str,
    batch_seq: int,
    sent_at_us: int,
    reader_code: npt.NDArray[np.integer],
    reader_names: Sequence[str],
    antenna: npt.NDArray[np.int16],
    tag: npt.NDArray[np.object_],
    rssi_dbm: npt.NDArray[np.float32],
    read_at_us: npt.NDArray[np.int64],
    seq: npt.NDArray[np.int64],
) -> ReadBatch:
    """Build a batch from per-read columns; read ``i``'s reader is
    ``reader_names[reader_code[i]]``. The batch lists only the readers it uses, sorted."""
    used, index = np.unique(reader_code, return_inverse=True)
    names = [reader_names[c] for c in used.tolist()]
    order = sorted(range(len(names)), key=names.__getitem__)
    rank = np.empty(len(names), dtype=np.int32)
    rank[order] = np.arange(len(names), dtype=np.int32)
    return ReadBatch(
        gateway_id=gateway_id,
        batch_seq=batch_seq,
        sent_at_us=sent_at_us,
        readers=tuple(names[i] for i in order),
        reader=rank[index.reshape(-1)],
        antenna=antenna.astype(np.int16, copy=False),
        tag=tag,
        rssi_dbm=rssi_dbm.astype(np.float32, copy=False),
        read_at_us=read_at_us.astype(np.int64, copy=False),
        seq=seq.astype(np.int64, copy=False),
    )
