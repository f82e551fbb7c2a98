"""The clients of ``tagtrail bench query`` (:mod:`tagtrail.bench.query`): closed-loop officers
asking the API for routes, last sightings and next readers, each timed from its first byte
sent to its last byte received.

``"processes"`` (the default) forks each client as its own process speaking plain HTTP/1.1 on
a socket (:class:`Http`), so the clients share no interpreter lock; ``"threads"`` is the
earlier client, one httpx client per thread in the benchmark's own process, kept to compare.
"""

from __future__ import annotations

import multiprocessing
import socket
import threading
import time
from typing import Any, Literal, Protocol
from urllib.parse import quote

import httpx
import numpy as np

from tagtrail.bench.common import BenchError

ENDPOINTS = ("route", "last_seen", "next_readers")


class ClientPlan(Protocol):
    """How many clients, for how long, which kind (a ``QueryOptions`` fits)."""

    @property
    def clients(self) -> int: ...

    @property
    def seconds(self) -> float: ...

    @property
    def warmup_s(self) -> float: ...

    @property
    def client(self) -> Literal["processes", "threads"]: ...


def _path(name: str, bike_id: int, plate: str) -> str:
    return {
        "route": f"/api/v1/routes/{quote(plate, safe='')}",
        "last_seen": f"/api/v1/bikes/{bike_id}/last-seen",
        "next_readers": f"/api/v1/bikes/{bike_id}/next-readers",
    }[name]


def _client(
    base: str,
    token: str,
    bikes: list[tuple[int, str]],
    *,
    until: float,
    warm_at: float,
    seed: int,
    out: dict[str, list[float]],
    errors: list[str],
) -> None:
    """The ``"threads"`` client: httpx, in a thread of the benchmark's process."""
    rng = np.random.default_rng(seed)
    headers = {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=base, headers=headers, timeout=30) as client:
        turn = 0
        while time.monotonic() < until:
            bike_id, plate = bikes[int(rng.integers(len(bikes)))]
            name = ENDPOINTS[turn % len(ENDPOINTS)]
            turn += 1
            warm = time.monotonic() >= warm_at
            started = time.perf_counter()
            resp = client.get(_path(name, bike_id, plate), params={"reason": "benchmark"})
            elapsed = time.perf_counter() - started
            if resp.status_code == 404:
                # "not seen in that window": an answer too (timed), but counted apart
                out[f"{name}_not_found"].append(elapsed)
                continue
            if resp.status_code != 200:
                errors.append(f"{name} {resp.status_code}: {resp.text[:200]}")
                continue
            out[name].append(elapsed)
            if warm:
                out[f"{name}_warm"].append(elapsed)


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


def _client_process(
    port: int,
    token: str,
    bikes: list[tuple[int, str]],
    start_at: float,
    until: float,
    warm_at: float,
    seed: int,
    results: Any,
) -> None:
    """The ``"processes"`` client: its own process, plain HTTP/1.1; its timings go back
    through ``results`` (a pipe end) when ``until`` (monotonic; shared by all processes on
    Linux) has passed."""
    rng = np.random.default_rng(seed)
    out = _timings()
    errors: list[str] = []
    http = Http("127.0.0.1", port)
    headers = (
        f"Host: 127.0.0.1:{port}\r\nAuthorization: Bearer {token}\r\n"
        "Accept: */*\r\nUser-Agent: tagtrail-bench\r\n\r\n"
    ).encode()
    while time.monotonic() < start_at:
        time.sleep(0.001)
    turn = 0
    try:
        while time.monotonic() < until:
            bike_id, plate = bikes[int(rng.integers(len(bikes)))]
            name = ENDPOINTS[turn % len(ENDPOINTS)]
            turn += 1
            target = _path(name, bike_id, plate) + "?reason=benchmark"
            warm = time.monotonic() >= warm_at
            started = time.perf_counter()
            try:
                status, body = http.get(target, headers)
            except (OSError, BenchError) as exc:
                errors.append(f"{name}: {exc}")
                http.close()
                continue
            elapsed = time.perf_counter() - started
            if status == 404:
                out[f"{name}_not_found"].append(elapsed)
            elif status != 200 or not body:
                errors.append(f"{name} {status}: {body[:200]!r}")
            else:
                out[name].append(elapsed)
                if warm:
                    out[f"{name}_warm"].append(elapsed)
    finally:
        http.close()
        results.send((out, errors))
        results.close()


def _timings() -> dict[str, list[float]]:
    """Per endpoint: every answer, answers after the warm-up, and "not found" answers."""
    return {key: [] for name in ENDPOINTS for key in (name, f"{name}_warm", f"{name}_not_found")}


def run_clients(
    opts: ClientPlan, port: int, token: str, bikes: list[tuple[int, str]]
) -> tuple[dict[str, list[float]], list[str]]:
    """Run ``opts.clients`` closed-loop clients for ``opts.seconds`` against the API on
    ``port``, each asking about ``bikes`` in turn; their timings and the failed requests."""
    out = _timings()
    errors: list[str] = []
    if opts.client == "threads":
        until = time.monotonic() + opts.seconds
        warm_at = until - opts.seconds + opts.warmup_s
        threads = [
            threading.Thread(
                target=_client,
                args=(f"http://127.0.0.1:{port}", token, bikes),
                kwargs={
                    "until": until,
                    "warm_at": warm_at,
                    "seed": i,
                    "out": out,
                    "errors": errors,
                },
            )
            for i in range(opts.clients)
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join(opts.seconds + 60)
        return out, errors
    # Forked, not spawned: a client needs nothing but a socket, and forking skips importing
    # the benchmark's modules 16 times. Every client starts at the same moment.
    ctx = multiprocessing.get_context("fork")
    start_at = time.monotonic() + 0.5
    until = start_at + opts.seconds
    pipes, procs = [], []
    for i in range(opts.clients):
        receiver, sender = ctx.Pipe(duplex=False)
        proc = ctx.Process(
            target=_client_process,
            args=(port, token, bikes, start_at, until, start_at + opts.warmup_s, i, sender),
            daemon=True,
        )
        proc.start()
        sender.close()
        pipes.append(receiver)
        procs.append(proc)
    for receiver, proc in zip(pipes, procs, strict=True):
        if not receiver.poll(opts.seconds + 60):
            errors.append(f"client process {proc.pid} sent nothing")
            continue
        got, failed = receiver.recv()
        for key, values in got.items():
            out[key].extend(values)
        errors.extend(failed)
    for proc in procs:
        proc.join(10)
    return out, errors
