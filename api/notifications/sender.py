"""The notice sender: delivers due outbox rows, retrying with exponential backoff.

One notice at a time, each in a transaction of its own that holds the row (``FOR UPDATE SKIP
LOCKED``) while it is delivered: several senders (``tagtrail api`` workers, ``tagtrail
notify``) share the queue without sending a notice twice at once, and a sender that dies
mid-delivery leaves the notice pending for the next. Delivery is therefore at least once;
webhook receivers deduplicate by ``TagTrail-Notice-Id``.

Every attempt is appended to ``notice_attempts`` and to the audit log (``notice.deliver``:
which notice, user, channel, attempt, outcome; never the address nor the text).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import psycopg

from api.notifications import store
from api.notifications.channels import Channel, DeliveryError
from api.notifications.message import Message, compose
from api.registry import audit

log = logging.getLogger(__name__)

WAKE_CHANNEL = "tagtrail_notices"  # NOTIFY'd by migration 0095's triggers


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How often and how long to try: ``backoff_s`` before the 2nd attempt, doubling after
    each, at most ``backoff_max_s``, ±``jitter`` of it (so receivers that come back are not
    hit by every sender at once); failed after ``max_attempts``."""

    max_attempts: int = 8
    backoff_s: float = 30.0
    backoff_max_s: float = 3600.0
    jitter: float = 0.1

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.backoff_s * 2.0 ** (attempt - 1), self.backoff_max_s)
        return base * (1.0 + random.uniform(-self.jitter, self.jitter))


@dataclass(frozen=True, slots=True)
class Outcome:
    """What one delivery attempt came to."""

    notice_id: int
    outcome: str  # sent | retry | failed | cancelled


class NoticeSender:
    """Delivers the outbox of one database over the configured channels."""

    def __init__(
        self,
        *,
        database_url: str,
        channels: dict[str, Channel],
        policy: RetryPolicy,
        console_url: str,
        poll_s: float = 5.0,
    ) -> None:
        self._database_url = database_url
        self._channels = channels
        self._policy = policy
        self._console_url = console_url
        self._poll_s = poll_s

    def send_one(self, conn: psycopg.Connection) -> Outcome | None:
        """Deliver the oldest due notice, if there is one (in a transaction of its own)."""
        with conn.transaction():
            notice = store.claim_due(conn)
            if notice is None:
                return None
            target = store.delivery_target(conn, notice)
            if target is None:
                store.cancel(conn, notice, "subscription removed, disabled or no longer allowed")
                return Outcome(notice.notice_id, "cancelled")
            return self._attempt(conn, notice, target)

    def _attempt(
        self, conn: psycopg.Connection, notice: store.Notice, target: store.Subscription
    ) -> Outcome:
        message = compose(notice, store.context_of(conn, notice), console_url=self._console_url)
        started_at, clock = datetime.now(UTC), time.perf_counter()
        outcome, error, retry_in_s = "sent", "", None
        channel = self._channels.get(notice.channel)
        try:
            _send(channel, message, target)
        except DeliveryError as exc:
            error = str(exc)[:500]
            attempt = notice.attempts + 1
            if exc.permanent or attempt >= self._policy.max_attempts:
                outcome = "failed"
            else:
                outcome, retry_in_s = "retry", self._policy.delay_s(attempt)
        duration_ms = (time.perf_counter() - clock) * 1000.0
        store.record_attempt(
            conn, notice=notice, started_at=started_at, duration_ms=duration_ms,
            outcome=outcome, error=error, retry_in_s=retry_in_s,
        )  # fmt: skip
        audit.append(
            conn,
            actor="system:notify",
            role="system",
            action="notice.deliver",
            subject=f"notice:{notice.notice_id}",
            bike_id=notice.bike_id,
            detail={
                "user_id": notice.user_id,
                "kind": notice.kind,
                "channel": notice.channel,
                "attempt": notice.attempts + 1,
                "outcome": outcome,
                "error": error,
            },
        )
        if outcome != "sent":
            log.warning("notice %d attempt %d: %s", notice.notice_id, notice.attempts + 1, error)
        return Outcome(notice.notice_id, outcome)

    def drain(self, conn: psycopg.Connection, *, limit: int = 100) -> list[Outcome]:
        """Deliver due notices until none is due (at most ``limit``)."""
        outcomes: list[Outcome] = []
        while len(outcomes) < limit:
            outcome = self.send_one(conn)
            if outcome is None:
                break
            outcomes.append(outcome)
        return outcomes

    def run(self, stop: threading.Event) -> None:
        """Deliver until ``stop`` is set; after a database or any other error, log it and go
        on after ``poll_s`` (a sender thread that died would silence every notice)."""
        while not stop.is_set():
            try:
                self._serve(stop)
            except psycopg.OperationalError as exc:
                log.warning("notice sender lost the database (%s); retrying", exc)
                stop.wait(self._poll_s)
            except Exception:
                log.exception("notice sender failed; going on in %s s", self._poll_s)
                stop.wait(self._poll_s)

    def _serve(self, stop: threading.Event) -> None:
        with (
            psycopg.connect(self._database_url, autocommit=True) as conn,
            psycopg.connect(self._database_url, autocommit=True) as listen,
        ):
            listen.execute(f"LISTEN {WAKE_CHANNEL}")
            while not stop.is_set():
                self.drain(conn)
                due_s = store.next_due_in_s(conn)
                wait_s = self._poll_s if due_s is None else min(self._poll_s, max(due_s, 0.05))
                _wait(listen, stop, wait_s)


def _wait(listen: psycopg.Connection, stop: threading.Event, wait_s: float) -> None:
    """Until a new notice is queued (NOTIFY), ``wait_s`` passes, or ``stop`` is set: in short
    slices, so that stopping (Ctrl-C on `tagtrail api` or the demo) is prompt."""
    deadline = time.monotonic() + wait_s
    while not stop.is_set():
        left_s = deadline - time.monotonic()
        if left_s <= 0:
            return
        for _ in listen.notifies(timeout=min(left_s, 0.25), stop_after=1):
            return


def _send(channel: Channel | None, message: Message, target: store.Subscription) -> None:
    """Deliver on the channel; whatever goes wrong becomes a DeliveryError to record (a bug
    or surprise in a channel library must cost one attempt, not the sender)."""
    if channel is None:
        raise DeliveryError(f"channel {target.channel} is not configured here")
    try:
        channel.send(message, address=target.address, secret=target.webhook_secret)
    except DeliveryError:
        raise
    except Exception as exc:
        log.exception("channel %s raised", target.channel)
        raise DeliveryError(f"{type(exc).__name__}: {exc}") from exc


def start_sender(sender: NoticeSender) -> tuple[threading.Thread, threading.Event]:
    """Run ``sender`` on a daemon thread; set the returned event to stop it."""
    stop = threading.Event()
    thread = threading.Thread(target=sender.run, args=(stop,), name="notice-sender", daemon=True)
    thread.start()
    return thread, stop
