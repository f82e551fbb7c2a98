"""The sender as shipped: inside a real ``tagtrail api`` process, and alone as ``tagtrail
notify``, configured only through TAGTRAIL_* settings, delivering to a real SMTP server and a
webhook receiver on loopback; both stop cleanly on SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from api_helpers import config, create_migrated_database
from fastapi.testclient import TestClient
from notice_support import SmtpSink, build_world, engine_alert, notices, receiver, wait_for
from testsupport import drop_database, free_port

from api.app import create_app
from api.notifications.signing import SIGNATURE_HEADER, verify

KEYS = {
    "TAGTRAIL_JWT_SECRET": "jwt-" + "4d1f0b9e" * 6,
    "TAGTRAIL_ID_HASH_KEY": "hash-" + "77ac03d2" * 6,
    "TAGTRAIL_ID_ENC_KEY": "enc-" + "0be9f615" * 6,
}


@pytest.fixture
def api_db(pg_admin_url: str) -> Iterator[str]:
    """A migrated database of this test's own."""
    name, url = create_migrated_database(pg_admin_url)
    try:
        yield url
    finally:
        drop_database(pg_admin_url, name)


@contextmanager
def tagtrail(args: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """``tagtrail <args>`` as a process; SIGINT at the end, which it must obey in 20 s."""
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "tagtrail", "-v", *args],
            env={**os.environ, **KEYS, **env, "PYTHONUNBUFFERED": "1"},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            assert proc.wait(20) is not None
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
            raise AssertionError("did not stop on SIGINT:\n" + log.read_text()) from None


def _settings(api_db: str, tmp_path: Path) -> dict[str, str]:
    return {
        "TAGTRAIL_DATABASE_URL": api_db,
        "TAGTRAIL_DATA_DIR": str(tmp_path / "data"),
        "TAGTRAIL_CONSOLE_URL": "https://console.city.example",
        "TAGTRAIL_NOTIFY_BACKOFF_S": "0.5",
        "TAGTRAIL_NOTIFY_POLL_S": "1",
        "TAGTRAIL_NOTIFY_ALLOW_PRIVATE_TARGETS": "true",
    }


def test_tagtrail_api_sends_email_and_webhooks(api_db: str, tmp_path: Path) -> None:
    sink, hook, port = SmtpSink(free_port()), receiver(), free_port()
    env = {
        **_settings(api_db, tmp_path),
        "TAGTRAIL_SMTP_HOST": "127.0.0.1",
        "TAGTRAIL_SMTP_PORT": str(sink.port),
        "TAGTRAIL_SMTP_SECURITY": "none",
        "TAGTRAIL_SMTP_FROM": "Duty desk <desk@city.example>",
    }
    sink.start()
    hook.start()
    try:
        with (
            tagtrail(["api", "--port", str(port)], env, tmp_path / "api.log") as proc,
            httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as http,
        ):

            def up() -> bool:
                assert proc.poll() is None, (tmp_path / "api.log").read_text()
                try:
                    return http.get("/api/v1/health").status_code == 200
                except httpx.HTTPError:
                    return False

            wait_for(up, "the API process", 60)
            world = build_world(http, api_db, 601)  # type: ignore[arg-type]
            subs = "/api/v1/notifications/subscriptions"
            mail = {"channel": "email", "address": "rider@city.example", "kinds": ["bike_moved"]}
            assert http.post(subs, json=mail, headers=world.resident).status_code == 201
            hook_body = {"channel": "webhook", "address": hook.url, "kinds": ["bike_moved"]}
            created = http.post(subs, json=hook_body, headers=world.resident)
            assert created.status_code == 201, created.text
            engine_alert(api_db, world.armed_watch_id, world.tag_id, "R-QUAY-1")
            wait_for(lambda: len(sink.messages) == 1 and len(hook.requests) == 1, "both notices")
    finally:
        sink.stop()
        hook.stop()
    assert sink.messages[0]["From"] == "Duty desk <desk@city.example>"
    assert "https://console.city.example/resident" in sink.messages[0].get_payload()
    request = hook.requests[0]
    secret = created.json()["webhook_secret"]
    verify(request.body, request.headers[SIGNATURE_HEADER], secret=secret, now=int(time.time()))
    assert json.loads(request.body)["console_url"] == "https://console.city.example/resident"
    assert {n["status"] for n in notices(api_db)} == {"sent"}


def test_tagtrail_notify_alone_retries_until_the_receiver_is_up(
    api_db: str, tmp_path: Path
) -> None:

    hook = receiver()
    with TestClient(create_app(config(api_db, notify_allow_private_targets=True))) as client:
        world = build_world(client, api_db, 602)
        body = {"channel": "webhook", "address": hook.url, "kinds": ["bike_moved"]}
        created = client.post(
            "/api/v1/notifications/subscriptions", json=body, headers=world.resident
        )
        assert created.status_code == 201, created.text
    alert_id = engine_alert(api_db, world.armed_watch_id, world.tag_id, "R-2")
    with tagtrail(["notify"], _settings(api_db, tmp_path), tmp_path / "notify.log") as proc:
        wait_for(lambda: notices(api_db)[0]["attempts"] >= 1, "a refused first attempt", 60)
        assert proc.poll() is None
        hook.start()
        try:
            wait_for(lambda: notices(api_db)[0]["status"] == "sent", "delivery")
        finally:
            hook.stop()
    [notice] = notices(api_db, "alert_id = %s", alert_id)
    assert notice["attempts"] >= 2
    assert len(hook.requests) == 1
