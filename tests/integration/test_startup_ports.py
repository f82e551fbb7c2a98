"""A port taken before start-up: ``tagtrail demo`` and ``tagtrail api`` say so in one line
naming the setting, exit non-zero, and start nothing nor open a case."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from testsupport import create_database, drop_database

from tagtrail.demo import DEMO_CASE_PREFIX

SMALL_DEMO = ["--bikes", "10", "--hours", "0.25", "--size-m", "1000"]


@pytest.fixture
def held_port() -> Iterator[int]:
    """A loopback port another process is listening on for the whole test."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


@pytest.fixture
def database(pg_admin_url: str) -> Iterator[str]:
    """A fresh, empty database."""
    name, url = create_database(pg_admin_url)
    try:
        yield url
    finally:
        drop_database(pg_admin_url, name)


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tagtrail", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _env(tmp_path: Path, database: str, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGTRAIL_")}
    env.update(
        TAGTRAIL_DATABASE_URL=database,
        TAGTRAIL_DATA_DIR=str(tmp_path / "data"),
        TAGTRAIL_TOPIC_PREFIX=f"tagtrail-test-{uuid.uuid4().hex[:12]}/v1",
        **settings,
    )
    return env


def _demo_cases(url: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute("SELECT to_regclass('public.thefts') IS NOT NULL").fetchone()
        if not (row and row[0]):
            return 0  # never migrated: nothing was written at all
        found = conn.execute(
            "SELECT count(*) FROM thefts WHERE case_number LIKE %s", (DEMO_CASE_PREFIX + "%",)
        ).fetchone()
        return int(found[0]) if found else 0


def _one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert len(lines) == 1, stderr[-3000:]
    return lines[0]


def test_demo_with_api_port_taken_says_which_setting_and_opens_no_case(
    tmp_path: Path, database: str, mqtt_url: str, held_port: int
) -> None:
    env = _env(tmp_path, database, TAGTRAIL_MQTT_URL=mqtt_url, TAGTRAIL_API_PORT=str(held_port))
    done = _run(["demo", *SMALL_DEMO], env)
    assert done.returncode == 1, done.stderr[-3000:]
    assert _one_line(done.stderr) == f"port {held_port} is taken: set TAGTRAIL_API_PORT"
    assert "Press Ctrl-C" not in done.stdout + done.stderr
    assert _demo_cases(database) == 0


def test_demo_with_embedded_broker_port_taken_says_which_setting_and_opens_no_case(
    tmp_path: Path, database: str, held_port: int
) -> None:
    # No TAGTRAIL_MQTT_URL: the demo would start its embedded broker on the held port.
    env = _env(tmp_path, database, TAGTRAIL_EMBEDDED_MQTT_PORT=str(held_port))
    done = _run(["demo", "--once", *SMALL_DEMO], env)
    assert done.returncode == 1, done.stderr[-3000:]
    assert _one_line(done.stderr) == f"port {held_port} is taken: set TAGTRAIL_EMBEDDED_MQTT_PORT"
    assert _demo_cases(database) == 0


def test_api_with_port_taken_says_which_setting_before_migrating(
    tmp_path: Path, database: str, held_port: int
) -> None:
    env = _env(tmp_path, database, TAGTRAIL_API_PORT=str(held_port))
    done = _run(["api"], env)
    assert done.returncode == 1, done.stderr[-3000:]
    assert _one_line(done.stderr) == f"port {held_port} is taken: set TAGTRAIL_API_PORT"
    with psycopg.connect(database) as conn:
        row = conn.execute("SELECT to_regclass('public.thefts') IS NULL").fetchone()
    assert row == (True,), "the database was migrated before the port was checked"


def test_api_with_port_option_taken_names_the_option(
    tmp_path: Path, database: str, held_port: int
) -> None:
    done = _run(["api", "--port", str(held_port)], _env(tmp_path, database))
    assert done.returncode == 1, done.stderr[-3000:]
    assert _one_line(done.stderr) == f"port {held_port} is taken: set --port"
