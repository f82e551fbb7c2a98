"""The API under test: ``tagtrail api`` as its own process, and the plain HTTP/1.1 client
the benchmarks time it with (``tagtrail bench query``, ``bench login-flood``)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tagtrail.bench.common import BenchError, Service, service_env, wait_for
from tagtrail.bench.latency import up
from tagtrail.ports import free_port


@contextmanager
def api_service(
    url: str,
    data_dir: Path,
    log_dir: Path,
    *,
    workers: int,
    topic: str,
    up_timeout_s: float,
    extra_env: dict[str, str] | None = None,
) -> Iterator[tuple[int, Service]]:
    """`tagtrail api --workers N` on a free loopback port over ``url`` (no broker), up and
    answering; stopped on leaving. Yields its port and the service (``check()`` it)."""
    port = free_port()
    env = service_env(url, "mqtt://127.0.0.1:1", f"tagtrail-bench/{topic}", data_dir)
    env |= extra_env or {}
    api = Service(
        "api",
        ["api", "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
        env=env,
        log_dir=log_dir,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: up(base), timeout_s=up_timeout_s, what="the API", services=[api])
        yield port, api
    finally:
        api.stop()


class Http:
    """One keep-alive HTTP/1.1 connection: a request out, the whole answer (``Content-Length``
    or chunked) read back. Just enough client for the benchmark, so that the client's own CPU
    does not stand in for the server's."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self._sock: socket.socket | None = None
        self._buf = b""

    def get(self, target: str, headers: bytes) -> tuple[int, bytes]:
        """``GET target``; the status and the body."""
        return self.request(b"GET " + target.encode() + b" HTTP/1.1\r\n" + headers)

    def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one whole request (request line, headers, body); the status and the body."""
        if self._sock is None:
            self._sock = socket.create_connection((self.host, self.port), timeout=30)
            self._sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self._buf = b""
        self._sock.sendall(raw)
        head = self._until(b"\r\n\r\n")
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        fields = {}
        for line in lines[1:]:
            key, _, value = line.partition(b":")
            fields[key.strip().lower()] = value.strip()
        if b"content-length" in fields:
            body = self._take(int(fields[b"content-length"]))
        elif fields.get(b"transfer-encoding", b"").lower() == b"chunked":
            parts = []
            while size := int(self._until(b"\r\n").split(b";")[0], 16):
                parts.append(self._take(size))
                self._until(b"\r\n")
            self._until(b"\r\n")  # no trailers
            body = b"".join(parts)
        else:
            raise BenchError(f"an answer without a length: {head[:200]!r}")
        if fields.get(b"connection", b"").lower() == b"close":
            self.close()
        return status, body

    def _fill(self) -> None:
        if self._sock is None:
            raise RuntimeError("_fill: the connection is not open")
        data = self._sock.recv(262144)
        if not data:
            self.close()
            raise BenchError("the API closed the connection")
        self._buf += data

    def _until(self, mark: bytes) -> bytes:
        while (at := self._buf.find(mark)) < 0:
            self._fill()
        out, self._buf = self._buf[:at], self._buf[at + len(mark) :]
        return out

    def _take(self, size: int) -> bytes:
        while len(self._buf) < size:
            self._fill()
        out, self._buf = self._buf[:size], self._buf[size:]
        return out

    def close(self) -> None:
        """Close the socket (the next request opens a new one)."""
        if self._sock is not None:
            self._sock.close()
            self._sock = None
