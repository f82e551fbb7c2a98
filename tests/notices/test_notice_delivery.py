"""Notices delivered for real: e-mail to a local SMTP server, signed webhooks and apprise's
JSON notifications to a local HTTP receiver; retries with backoff when the peer is down, and
failure (visible to admins) when it never answers well. Alerts are stored as the engine stores
them (its statement, its database role), so the outbox is filled by the database's triggers."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import psycopg
import pytest
from api_helpers import config, create_migrated_database
from fastapi.testclient import TestClient
from notice_support import (
    Receiver,
    SmtpSink,
    attempts,
    build_world,
    engine_alert,
    notices,
    receiver,
    report_theft,
    wait_for,
)
from scenarios import line_city, registration
from testsupport import drop_database, free_port

from api.app import create_app
from api.notifications.channels import ChannelConfig, SmtpConfig, build_channels
from api.notifications.sender import NoticeSender, RetryPolicy, start_sender
from api.notifications.signing import SIGNATURE_HEADER, verify
from reader_gateway.wire import batch_from_columns
from track_engine.pipeline import Engine

CONSOLE = "https://tagtrail.example"


@pytest.fixture
def api_db(pg_admin_url: str) -> Iterator[str]:
    """A migrated database per test: the duty desk hears of every stolen bike, so tests
    sharing one outbox would see each other's notices."""
    name, url = create_migrated_database(pg_admin_url)
    try:
        yield url
    finally:
        drop_database(pg_admin_url, name)


@pytest.fixture
def client(api_db: str) -> Iterator[TestClient]:
    """The API, letting webhooks reach loopback and apprise use json:// (the receivers)."""
    cfg = config(api_db, notify_allow_private_targets=True, notify_apprise_schemes=("json",))
    with TestClient(create_app(cfg)) as test_client:
        yield test_client


def _sender(url: str, smtp_port: int, *, max_attempts: int = 5) -> NoticeSender:
    channels = build_channels(
        ChannelConfig(
            smtp=SmtpConfig(host="127.0.0.1", port=smtp_port, security="none"),
            timeout_s=3.0,
            allow_private_targets=True,
            apprise_schemes=("json",),
        )
    )
    policy = RetryPolicy(max_attempts=max_attempts, backoff_s=1.0, backoff_max_s=2.0, jitter=0.0)
    return NoticeSender(
        database_url=url, channels=channels, policy=policy, console_url=CONSOLE, poll_s=0.5
    )


def _subscribe(client: TestClient, who: dict[str, str], **body: object) -> dict:
    response = client.post("/api/v1/notifications/subscriptions", json=body, headers=who)
    assert response.status_code == 201, response.text
    return dict(response.json())


def _drain_until(sender: NoticeSender, url: str, done: str, timeout_s: float = 15.0) -> None:
    """Run the sender's queue (as its loop does) until the SQL condition ``done`` holds."""
    with psycopg.connect(url, autocommit=True) as conn:

        def finished() -> bool:
            sender.drain(conn)
            row = conn.execute(f"SELECT {done}").fetchone()
            return bool(row and row[0])

        wait_for(finished, done, timeout_s)


def _no_location(text: str, reader_id: str) -> None:
    assert reader_id not in text
    for coordinate in ("lon", "lat", "30.0", "120.0"):
        assert coordinate not in text, coordinate


def test_email_to_a_resident_smtp_down_then_up_is_delivered_once(
    api_db: str, client: TestClient
) -> None:
    world = build_world(client, api_db, 501)
    _subscribe(client, world.resident, channel="email", address="rider@example.org",
               kinds=["bike_moved"])  # fmt: skip
    sink = SmtpSink(free_port())  # not listening yet: the relay is down
    sender = _sender(api_db, sink.port)
    alert_id = engine_alert(api_db, world.armed_watch_id, world.tag_id, "R-ALLEY-7")
    [notice] = notices(api_db, "alert_id = %s", alert_id)
    assert (notice["kind"], notice["channel"], notice["status"]) == (
        "bike_moved",
        "email",
        "pending",
    )

    with psycopg.connect(api_db, autocommit=True) as conn:
        [first] = sender.drain(conn)
    assert first.outcome == "retry"
    sink.start()
    try:
        _drain_until(
            sender,
            api_db,
            f"(SELECT status = 'sent' FROM notices WHERE notice_id = {notice['notice_id']})",
        )
    finally:
        sink.stop()

    assert len(sink.messages) == 1
    mail = sink.messages[0]
    assert sink.recipients == [["rider@example.org"]]
    assert mail["Subject"] == "TagTrail: your bike moved"
    text = mail.get_payload(decode=True).decode()
    assert "Yadea DE3 red" in text
    assert f"{CONSOLE}/resident" in text
    _no_location(text, "R-ALLEY-7")
    history = attempts(api_db, notice["notice_id"])
    assert [(a, o) for a, o, _ in history] == [(1, "retry"), (2, "sent")]
    assert "SMTP" in history[0][2]  # the refused connection is recorded
    [row] = notices(api_db, "notice_id = %s", notice["notice_id"])
    assert row["attempts"] == 2
    assert row["sent_at"] is not None
    with psycopg.connect(api_db) as conn:
        audited = conn.execute(
            "SELECT detail->>'attempt', detail->>'outcome' FROM audit_log "
            "WHERE action = 'notice.deliver' AND subject = %s ORDER BY audit_id",
            (f"notice:{notice['notice_id']}",),
        ).fetchall()
    assert audited == [("1", "retry"), ("2", "sent")]


def test_signed_webhook_to_the_desk_receiver_down_then_up(api_db: str, client: TestClient) -> None:
    world = build_world(client, api_db, 502)
    hook = receiver()
    sub = _subscribe(client, world.officer, channel="webhook", address=hook.url,
                     kinds=["stolen_seen"])  # fmt: skip
    secret = sub["webhook_secret"]
    assert secret
    assert len(secret) >= 32
    theft_watch = report_theft(client, api_db, world)
    sender = _sender(api_db, free_port())
    alert_id = engine_alert(api_db, theft_watch, world.tag_id, "R-BRIDGE-2")
    [notice] = notices(api_db, "alert_id = %s", alert_id)
    assert notice["kind"] == "stolen_seen"

    with psycopg.connect(api_db, autocommit=True) as conn:
        assert [o.outcome for o in sender.drain(conn)] == ["retry"]  # refused: nobody listens
    hook.start()
    try:
        done = f"(SELECT status = 'sent' FROM notices WHERE notice_id = {notice['notice_id']})"
        _drain_until(sender, api_db, done)
    finally:
        hook.stop()

    assert len(hook.requests) == 1
    request = hook.requests[0]
    signed_at = verify(
        request.body, request.headers[SIGNATURE_HEADER], secret=secret, now=int(time.time())
    )
    assert abs(signed_at - time.time()) < 60
    with pytest.raises(Exception, match="does not match"):
        verify(request.body + b" ", request.headers[SIGNATURE_HEADER], secret=secret,
               now=int(time.time()))  # fmt: skip
    payload = json.loads(request.body)
    assert payload["type"] == "stolen_seen"
    assert payload["alert_id"] == alert_id
    assert payload["console_url"] == f"{CONSOLE}/desk"
    assert request.headers["TagTrail-Notice-Id"] == f"notice_{notice['notice_id']}"
    _no_location(request.body.decode(), "R-BRIDGE-2")
    assert [(a, o) for a, o, _ in attempts(api_db, notice["notice_id"])] == [
        (1, "retry"), (2, "sent"),
    ]  # fmt: skip


def test_a_receiver_that_keeps_failing_ends_failed_and_admins_see_it(
    api_db: str, client: TestClient
) -> None:
    world = build_world(client, api_db, 503)
    hook = Receiver(free_port(), status=503)
    _subscribe(client, world.officer, channel="webhook", address=hook.url, kinds=["stolen_seen"])
    theft_watch = report_theft(client, api_db, world)
    sender = _sender(api_db, free_port(), max_attempts=3)
    hook.start()
    thread, stop = start_sender(sender)  # the real loop: woken by NOTIFY, then by due retries
    try:
        alert_id = engine_alert(api_db, theft_watch, world.tag_id, "R-9")
        wait_for(lambda: notices(api_db, "alert_id = %s", alert_id)[0]["status"] == "failed",
                 "the notice to fail")  # fmt: skip
    finally:
        stop.set()
        thread.join(10)
        hook.stop()
    [notice] = notices(api_db, "alert_id = %s", alert_id)
    assert notice["attempts"] == 3
    assert "HTTP 503" in notice["last_error"]
    assert len(hook.requests) == 3
    assert [o for _, o, _ in attempts(api_db, notice["notice_id"])] == ["retry", "retry", "failed"]

    outbox = client.get("/api/v1/notifications/outbox", params={"status": "failed"},
                        headers=world.admin)  # fmt: skip
    assert outbox.status_code == 200, outbox.text
    [shown] = [n for n in outbox.json()["items"] if n["notice_id"] == notice["notice_id"]]
    assert [h["outcome"] for h in shown["history"]] == ["retry", "retry", "failed"]
    assert client.get("/api/v1/notifications/outbox", headers=world.officer).status_code == 403
    mine = client.get("/api/v1/notifications/notices", headers=world.officer).json()
    assert [n["status"] for n in mine["items"]] == ["failed"]

    # An admin queues it once more; the receiver is healthy now.
    hook.status = 200
    hook.start()
    try:
        retried = client.post(
            f"/api/v1/notifications/outbox/{notice['notice_id']}/retry", headers=world.admin
        )
        assert retried.status_code == 204, retried.text
        done = f"(SELECT status = 'sent' FROM notices WHERE notice_id = {notice['notice_id']})"
        _drain_until(sender, api_db, done)
    finally:
        hook.stop()
    assert len(hook.requests) == 4


def test_a_webhook_refusing_with_4xx_fails_at_once(api_db: str, client: TestClient) -> None:
    world = build_world(client, api_db, 504)
    hook = Receiver(free_port(), status=410)
    _subscribe(client, world.admin, channel="webhook", address=hook.url, kinds=["stolen_seen"])
    theft_watch = report_theft(client, api_db, world)
    alert_id = engine_alert(api_db, theft_watch, world.tag_id, "R-1")
    hook.start()
    try:
        with psycopg.connect(api_db, autocommit=True) as conn:
            outcomes = _sender(api_db, free_port()).drain(conn)
    finally:
        hook.stop()
    [notice] = notices(api_db, "alert_id = %s", alert_id)
    assert [o.outcome for o in outcomes] == ["failed"]
    assert notice["status"] == "failed"
    assert notice["attempts"] == 1


def test_sms_or_chat_through_apprise(api_db: str, client: TestClient) -> None:
    """apprise's json:// service posts to the local receiver: the same library path as its
    SMS and chat services, which need accounts this test cannot have."""
    world = build_world(client, api_db, 505)
    hook = receiver()
    chat = f"json://127.0.0.1:{hook.port}/chat"
    sub = _subscribe(client, world.resident, channel="apprise", address=chat, kinds=["bike_moved"])
    assert sub["webhook_secret"] is None
    alert_id = engine_alert(api_db, world.armed_watch_id, world.tag_id, "R-PARK-3")
    hook.start()
    try:
        with psycopg.connect(api_db, autocommit=True) as conn:
            outcomes = _sender(api_db, free_port()).drain(conn)
    finally:
        hook.stop()
    assert [o.outcome for o in outcomes] == ["sent"]
    [request] = hook.requests
    body = json.loads(request.body)
    assert body["title"] == "TagTrail: your bike moved"
    assert f"{CONSOLE}/resident" in body["message"]
    _no_location(body["message"], "R-PARK-3")
    assert notices(api_db, "alert_id = %s", alert_id)[0]["status"] == "sent"


def test_who_hears_of_what(api_db: str, client: TestClient) -> None:
    """Residents hear of their own bike's "alert me" watch only; the desk of stolen bikes and
    of registrations matching one; a disabled subscription or removed one hears nothing."""
    world = build_world(client, api_db, 506)
    other = build_world(client, api_db, 507)
    _subscribe(
        client, world.resident, channel="email", address="a@example.org", kinds=["bike_moved"]
    )
    _subscribe(
        client, other.resident, channel="email", address="b@example.org", kinds=["bike_moved"]
    )
    desk = _subscribe(client, world.officer, channel="email", address="desk@example.org",
                      kinds=["stolen_seen", "stolen_frame"])  # fmt: skip
    theft_watch = report_theft(client, api_db, world)

    armed = engine_alert(api_db, world.armed_watch_id, world.tag_id, "R-1")
    stolen = engine_alert(api_db, theft_watch, world.tag_id, "R-2")
    to_armed = notices(api_db, "alert_id = %s", armed)
    to_stolen = notices(api_db, "alert_id = %s", stolen)
    resident_id = to_armed[0]["user_id"]
    assert [(n["kind"], n["user_id"]) for n in to_armed] == [("bike_moved", resident_id)]
    # The stolen bike's owner is not told where (nor that) the thief rode: the desk is.
    assert [n["kind"] for n in to_stolen] == ["stolen_seen"]
    assert to_stolen[0]["subscription_id"] == desk["subscription_id"]

    # A registration presenting the stolen frame number: flagged, and the desk hears of it.
    copy = registration(1506, frame_number=world.frame_number)
    refused = client.post("/api/v1/bikes", json=copy, headers=world.registrar)
    assert refused.status_code == 409, refused.text
    to_flag = notices(api_db, "flag_id IS NOT NULL AND bike_id = %s", world.bike_id)
    assert [(n["kind"], n["subscription_id"]) for n in to_flag] == [
        ("stolen_frame", desk["subscription_id"])
    ]

    # Disabled: nothing queued for the next alert.
    client.patch(f"/api/v1/notifications/subscriptions/{desk['subscription_id']}",
                 json={"enabled": False}, headers=world.officer)  # fmt: skip
    quiet = engine_alert(api_db, theft_watch, world.tag_id, "R-3")
    assert notices(api_db, "alert_id = %s", quiet) == []


def test_a_notice_to_a_subscription_removed_before_delivery_is_cancelled(
    api_db: str, client: TestClient
) -> None:
    world = build_world(client, api_db, 508)
    sub = _subscribe(client, world.resident, channel="email", address="c@example.org",
                     kinds=["bike_moved"])  # fmt: skip
    alert_id = engine_alert(api_db, world.armed_watch_id, world.tag_id, "R-4")
    removed = client.delete(
        f"/api/v1/notifications/subscriptions/{sub['subscription_id']}", headers=world.resident
    )
    assert removed.status_code == 204
    [notice] = notices(api_db, "alert_id = %s", alert_id)
    assert notice["status"] == "cancelled"
    with psycopg.connect(api_db, autocommit=True) as conn:
        assert _sender(api_db, free_port()).drain(conn) == []


def test_the_engine_s_own_alerts_queue_notices(api_db: str, client: TestClient) -> None:
    """The track engine (its pipeline, logged in as its database role) folds a ride of the
    stolen bike past two readers; the alerts it raises queue notices for the resident's
    "alert me" watch and for the desk, and both are delivered."""
    line_city(api_db)
    world = build_world(client, api_db, 509)
    hook = receiver()
    _subscribe(client, world.officer, channel="webhook", address=hook.url, kinds=["stolen_seen"])
    sink = SmtpSink(free_port())
    _subscribe(client, world.resident, channel="email", address="r@example.org",
               kinds=["bike_moved"])  # fmt: skip
    report_theft(client, api_db, world)

    # Read from now on: the "alert me" watch was armed a moment ago and alerts from its start.
    start_us = int(datetime.now(UTC).timestamp() * 1e6)
    readers, read_at_us = [], []
    for k, reader in enumerate(["R0", "R1"]):
        for i in range(11):
            readers.append(reader)
            read_at_us.append(start_us + k * 20_000_000 + i * 200_000)
    batch = batch_from_columns(
        gateway_id="gw-notices", batch_seq=1, sent_at_us=read_at_us[-1], reader_ids=readers,
        antenna=[1] * len(readers), tag=[world.tag_id] * len(readers),
        rssi_dbm=[-60.0] * len(readers), read_at_us=read_at_us, seq=list(range(len(readers))),
    )  # fmt: skip
    with psycopg.connect(api_db) as conn:
        conn.execute("SET ROLE tagtrail_engine")
        engine = Engine(conn, gap_s=5.0)
        raised = engine.process([batch]).alerts
        engine.flush()
    assert raised

    queued = notices(api_db)
    assert {n["kind"] for n in queued} == {"bike_moved", "stolen_seen"}
    sink.start()
    hook.start()
    try:
        _drain_until(_sender(api_db, sink.port), api_db,
                     "NOT EXISTS (SELECT 1 FROM notices WHERE status <> 'sent')")  # fmt: skip
    finally:
        sink.stop()
        hook.stop()
    assert len(sink.messages) == len([n for n in queued if n["kind"] == "bike_moved"])
    assert len(hook.requests) == len([n for n in queued if n["kind"] == "stolen_seen"])
    for request in hook.requests:
        for reader in ("R0", "R1"):
            assert f'"{reader}"' not in request.body.decode()


def test_email_without_a_relay_is_retried_with_the_reason(api_db: str, client: TestClient) -> None:
    """A deployment without TAGTRAIL_SMTP_HOST has no e-mail channel: the notice waits (an
    operator may configure the relay) and says why."""
    world = build_world(client, api_db, 510)
    _subscribe(client, world.resident, channel="email", address="d@example.org",
               kinds=["bike_moved"])  # fmt: skip
    alert_id = engine_alert(api_db, world.armed_watch_id, world.tag_id, "R-5")
    sender = NoticeSender(
        database_url=api_db, channels=build_channels(ChannelConfig()), policy=RetryPolicy(),
        console_url=CONSOLE,
    )  # fmt: skip
    with psycopg.connect(api_db, autocommit=True) as conn:
        assert [o.outcome for o in sender.drain(conn)] == ["retry"]
    [notice] = notices(api_db, "alert_id = %s", alert_id)
    assert notice["status"] == "pending"
    assert notice["last_error"] == "channel email is not configured here"
