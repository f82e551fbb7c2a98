"""The live demo is live: after the banner the stolen bike is still being ridden, and its route
grows while the officer watches. Run at ``--speedup 10`` so that five simulated minutes after
the banner take thirty seconds of the test (every stage is the real one: simulator, broker,
gateway, engine, PostgreSQL, API)."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from testsupport import create_database, drop_database, free_port

SPEEDUP = 10
WATCH_SIMULATED_S = 300  # "5 minutes after the banner"


@pytest.fixture
def database(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database."""
    name, url = create_database(pg_admin_url)
    try:
        yield url
    finally:
        drop_database(pg_admin_url, name)


class _Demo:
    """``tagtrail demo`` in a child process; its stderr collected line by line."""

    def __init__(self, env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tagtrail", "demo", "--speedup", str(SPEEDUP)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[str] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.lines.append(line.rstrip("\n"))

    def text(self) -> str:
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout_s: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text())
            if found:
                return found
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        pytest.fail(f"the demo never printed {pattern!r}; it said:\n{self.text()[-3000:]}")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                return self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def _passages(api: httpx.Client, plate: str, case: str, token: str) -> list[dict]:
    answer = api.get(
        f"/routes/{plate}",
        params={"case_number": case, "until": (datetime.now(UTC) + timedelta(hours=2)).isoformat()},
        headers={"Authorization": f"Bearer {token}"},
    )
    if answer.status_code == 404:
        return []
    assert answer.status_code == 200, answer.text
    return list(answer.json()["properties"]["passages"])


def _today_at(hour: str, minute: str, second: str) -> datetime:
    """A banner's HH:MM:SS (UTC) as the nearest such instant to now."""
    now = datetime.now(UTC)
    at = now.replace(hour=int(hour), minute=int(minute), second=int(second), microsecond=0)
    return min((at + timedelta(days=d) for d in (-1, 0, 1)), key=lambda t: abs(t - now))


def _log_in(api: httpx.Client, password: str) -> httpx.Response:
    """The demo officer's login, once the API (started just after the banner) listens."""
    deadline = time.monotonic() + 30
    while True:
        try:
            return api.post("/auth/token", data={"username": "duty-officer", "password": password})
        except httpx.ConnectError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def test_the_stolen_bikes_route_grows_after_the_banner(
    tmp_path: Path, database: str, mqtt_url: str
) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGTRAIL_")}
    env.update(
        TAGTRAIL_DATABASE_URL=database,
        TAGTRAIL_MQTT_URL=mqtt_url,
        TAGTRAIL_API_PORT=str(port),
        TAGTRAIL_DATA_DIR=str(tmp_path / "data"),
        TAGTRAIL_TOPIC_PREFIX=f"tagtrail-test-{uuid.uuid4().hex[:12]}/v1",
        COLUMNS="400",  # one banner line per line
    )
    demo = _Demo(env)
    try:
        banner = demo.wait_for(r"with password (\S+)", 120)
        password = banner.group(1)
        stolen = demo.wait_for(r"bike (\S+) was stolen at .*\(case (\S+)\)", 1)
        plate, case = stolen.group(1), stolen.group(2)
        rides_until = demo.wait_for(r"its route grows until about (\d\d):(\d\d) UTC", 1)
        sim_clock = demo.wait_for(r"it is now (\d\d):(\d\d):(\d\d) UTC there", 1)
        banner_wall = time.monotonic()
        banner_sim = _today_at(*sim_clock.groups())
        with httpx.Client(base_url=f"http://127.0.0.1:{port}/api/v1", timeout=30) as api:
            login = _log_in(api, password)
            assert login.status_code == 200, login.text
            token = login.json()["access_token"]
            at_banner = _passages(api, plate, case, token)
            time.sleep(max(0.0, banner_wall + WATCH_SIMULATED_S / SPEEDUP - time.monotonic()))
            later = _passages(api, plate, case, token)
        assert len(later) > len(at_banner), (at_banner, later)
        newest = datetime.fromisoformat(later[-1]["closest_at"].replace("Z", "+00:00"))
        assert newest > banner_sim, "the route grew with passages after the banner"
        # What the banner promised: the thief rides on for at least 15 minutes after it.
        until = _today_at(*rides_until.groups(), "59")
        assert until - banner_sim >= timedelta(minutes=15)
    finally:
        code = demo.stop()
    assert code == 0, demo.text()[-3000:]
    assert "stopped cleanly" in demo.text()
