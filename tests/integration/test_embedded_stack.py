"""The embedded defaults, as a newcomer meets them: `tagtrail demo` with no configuration.

Starts the embedded PostgreSQL (from the wheel) and the in-process MQTT broker in a data
directory of the test's own, serves the route of the stolen bike, and stops on Ctrl-C; a
second start reuses the data, and SIGTERM (``timeout 150 make demo``) stops it as Ctrl-C does.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
import pytest
from testsupport import free_port

URL_LINE = re.compile(r"(http://127\.0\.0\.1:\d+/routes/\S+)\?case_number=(\S+)")
LOGIN_LINE = re.compile(r"Log in as (\S+) with password (\S+)")


def _env(data_dir: Path, api_port: int, mqtt_port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGTRAIL_")}
    env.update(
        TAGTRAIL_DATA_DIR=str(data_dir),
        TAGTRAIL_API_PORT=str(api_port),
        TAGTRAIL_EMBEDDED_MQTT_PORT=str(mqtt_port),
        COLUMNS="200",  # keep the URL on one line in rich's output
    )
    return env


def _postgres_running(data_dir: Path) -> bool:
    pgdata = str(data_dir / "pgdata")
    for proc in psutil.process_iter(attrs=["name", "cmdline"]):
        if proc.info["name"] == "postgres" and pgdata in " ".join(proc.info["cmdline"] or []):
            return True
    return False


def _gone(pid: int, timeout_s: float = 15.0) -> bool:
    """Whether process ``pid`` has ended (a zombie counts: it is its reaper's to collect)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            if psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
                return True
        except psutil.NoSuchProcess:
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)  # polling the process table: its end is what is waited for


def _postmaster_pid(data_dir: Path) -> int:
    return int((data_dir / "pgdata" / "postmaster.pid").read_text().split("\n", 1)[0])


def _exited_pid() -> int:
    """The pid of a process that has exited (as one killed by SIGKILL would have)."""
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], check=True,
                          capture_output=True, text=True)  # fmt: skip
    return int(done.stdout)


def _demo_stops_on_sigterm(data_dir: Path) -> None:
    """Start a small demo on the existing data, SIGTERM its whole process group, check it all stops.

    Before the start, the embedded server's list of users gets the pid of a process that is
    gone: what a demo killed before it could stop the server left behind, after which no
    later run used to stop the server either.
    """
    handles = data_dir / "pgdata" / ".handle_pids.json"
    handles.write_text(json.dumps([_exited_pid()]))
    mqtt_port = free_port()
    env = _env(data_dir, free_port(), mqtt_port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tagtrail", "demo", "--bikes", "10", "--size-m", "1000"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # a group of its own, as `timeout`/a terminal gives `make demo`
    )
    output: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            output.append(line)
            if "Press Ctrl-C" in line:
                break
        assert "Press Ctrl-C" in "".join(output), "".join(output)
        postmaster = _postmaster_pid(data_dir)
        assert psutil.pid_exists(postmaster)
        # What `timeout` does (the whole group), then `make` forwarding its own SIGTERM.
        os.killpg(proc.pid, signal.SIGTERM)
        proc.send_signal(signal.SIGTERM)
        rest, _ = proc.communicate(timeout=60)
        output.append(rest)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert proc.returncode == 0, "".join(output)
    assert "stopped cleanly" in "".join(output)
    assert _gone(postmaster), "".join(output)
    assert not _postgres_running(data_dir)
    assert json.loads(handles.read_text()) == []
    with pytest.raises(ConnectionRefusedError):  # the in-process broker went with the demo
        socket.create_connection(("127.0.0.1", mqtt_port), timeout=5).close()


def test_demo_on_embedded_defaults_serves_route_and_stops_cleanly(tmp_path: Path) -> None:
    data_dir = tmp_path / "tagtrail-data"
    api_port, mqtt_port = free_port(), free_port()
    env = _env(data_dir, api_port, mqtt_port)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tagtrail", "demo"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    output: list[str] = []
    try:
        deadline = time.monotonic() + 180
        match = login = None
        assert proc.stdout is not None
        while login is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            output.append(line)
            match = match or URL_LINE.search(line)
            login = LOGIN_LINE.search(line)
        assert match, "".join(output)
        assert login, "".join(output)
        page_url, case_number = match.group(1), match.group(2)
        assert page_url.startswith(f"http://127.0.0.1:{api_port}/routes/")
        plate = page_url.rsplit("/", 1)[1]
        api = f"http://127.0.0.1:{api_port}/api/v1"
        token = None
        for _ in range(100):  # the API starts right after the URL is printed
            try:
                token = httpx.post(
                    f"{api}/auth/token",
                    data={"username": login.group(1), "password": login.group(2)},
                    timeout=10,
                )
                break
            except httpx.TransportError:
                time.sleep(0.2)
        assert token is not None
        assert token.status_code == 200, token.text
        # Under load the stolen bike's first passage may close a little after the API is up.
        route = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            route = httpx.get(
                f"{api}/routes/{plate}",
                params={"case_number": case_number},
                headers={"Authorization": f"Bearer {token.json()['access_token']}"},
                timeout=10,
            )
            if route.status_code != 404:
                break
            time.sleep(0.5)
        assert route is not None
        assert route.status_code == 200, route.text
        assert route.json()["geometry"]["type"] == "LineString"
        assert httpx.get(page_url, timeout=10).status_code == 200
        assert _postgres_running(data_dir)
    finally:
        proc.send_signal(signal.SIGINT)
        rest, _ = proc.communicate(timeout=60)
        output.append(rest)
    assert proc.returncode == 0, "".join(output)
    assert "stopped cleanly" in "".join(output)
    assert not _postgres_running(data_dir)

    # A second start reuses the data: the schema is there, nothing to migrate.
    again = subprocess.run(
        [sys.executable, "-m", "tagtrail", "db", "migrate"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert again.returncode == 0, again.stderr
    assert "schema is up to date" in again.stderr
    assert not _postgres_running(data_dir)

    _demo_stops_on_sigterm(data_dir)
