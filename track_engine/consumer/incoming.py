"""A message as it comes off the broker: decoded and screened on paho's network thread.

Decoding happens when the message arrives, so it overlaps the worker's waits on PostgreSQL.
:func:`receive` never raises: a message that breaks the wire contract, or whose reads the
engine will not store (:mod:`track_engine.screening`), is marked for the quarantine with the
reason, and still names its gateway's batch when it can, so that the batch is confirmed (dealt
with) rather than sent again forever.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import orjson
import paho.mqtt.client as mqtt

from reader_gateway.wire import ReadBatch, WireError, decode_batch
from track_engine.screening import UNBOUNDED, ReadWindow, Refusal, screen

__all__ = ["Received", "receive"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Received:
    """A message as it came off the broker, already decoded and checked.

    Decoding happens on paho's network thread, when the message arrives: it then overlaps the
    worker's waits on PostgreSQL (a busy worker spends half its time waiting for the COPY).
    """

    msg: mqtt.MQTTMessage
    batch: ReadBatch | None  # the reads that may be stored (None: none may)
    problem: str | None  # why the message (or some of its reads) goes to the quarantine
    origin: tuple[str, int] | None = None  # (gateway id, batch_seq) to confirm once committed
    refused: dict[Refusal, int] = field(default_factory=dict)  # reads not stored, by reason


def _origin(payload: bytes) -> tuple[str, int] | None:
    """(gateway id, batch_seq) of a payload that broke the wire contract, if it names them:
    a quarantined batch is dealt with, and its gateway must not send it again forever."""
    try:
        doc = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(doc, dict):
        return None
    gateway_id, seq = doc.get("gateway_id"), doc.get("batch_seq")
    if isinstance(gateway_id, str) and isinstance(seq, int) and not isinstance(seq, bool):
        return gateway_id, seq
    return None


def receive(
    msg: mqtt.MQTTMessage, *, window: ReadWindow = UNBOUNDED, now_us: int | None = None
) -> Received:
    """Decode and screen one message; never raises (a bad message is quarantined, not lost).

    Read times are judged against ``window`` around ``now_us`` (default: the engine's clock
    now), not against the gateway's clock: the engine trusts no publisher.
    """
    payload = bytes(msg.payload)
    try:
        batch = decode_batch(payload)
    except WireError as exc:
        return Received(msg, None, str(exc), _origin(payload))
    except Exception as exc:  # a decoder bug must not stop the worker: keep the message
        log.exception("decoding a batch failed unexpectedly")
        return Received(msg, None, f"undecodable ({type(exc).__name__}: {exc})", _origin(payload))
    origin = (batch.gateway_id, batch.batch_seq)
    try:
        now = time.time_ns() // 1000 if now_us is None else now_us
        screened = screen(batch, window=window, now_us=now)
    except Exception as exc:
        log.exception("checking a batch failed unexpectedly")
        return Received(msg, None, f"uncheckable ({type(exc).__name__}: {exc})", origin)
    return Received(msg, screened.batch, screened.problem, origin, screened.refused)
