"""A real ``tagtrail api`` process for the security tests that need uvicorn and real sockets
(where a TestClient would hide the bug): started on a port, waited for, stopped with SIGINT."""

from __future__ import annotations

import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

from gw_helpers import wait_until


def start_api(
    port: int, env: dict[str, str], log: Path, *, verbose: bool = False
) -> subprocess.Popen[bytes]:
    """``tagtrail [-v] api --port port`` with ``env``, its output in ``log``; returns once
    ``/api/v1/health`` answers (the test fails with the log if the process dies first)."""
    argv = [sys.executable, "-m", "tagtrail", *(["-v"] if verbose else []), "api"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*argv, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT
        )
    base = f"http://127.0.0.1:{port}"

    def up() -> bool:
        assert proc.poll() is None, log.read_text()
        try:
            with urllib.request.urlopen(f"{base}/api/v1/health", timeout=1):
                return True
        except OSError:
            return False

    try:
        wait_until(up, 60, "the API process")
    except BaseException:
        stop_api(proc)
        raise
    return proc


def stop_api(proc: subprocess.Popen[bytes]) -> None:
    """SIGINT, as an operator's Ctrl-C; killed if it has not stopped within 20 s."""
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)
