"""Ports a command will listen on, checked before it starts anything; free ports for the
servers the benchmarks and tests start.

A demo whose API port was taken used to start PostgreSQL, open a theft case, print its
banner and only then die in uvicorn with a traceback (two for the broker), leaving an open
case behind. Checked first, a taken port costs one line naming the setting to change.
"""

from __future__ import annotations

import errno
import random
import socket
from dataclasses import dataclass


@dataclass(frozen=True)
class Listener:
    """A port a command will listen on, and the setting that chooses it."""

    host: str
    port: int
    setting: str


def refusal(listener: Listener) -> str | None:
    """Why ``listener`` cannot listen now (one line naming its setting), or None if it can.

    Binds a throwaway socket with SO_REUSEADDR, as uvicorn and asyncio servers do: a port
    left in TIME_WAIT counts as free, one with a live listener as taken.
    """
    try:
        infos = socket.getaddrinfo(listener.host, listener.port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return f"host {listener.host} cannot be resolved ({exc.strerror}): check the host setting"
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                return f"port {listener.port} is taken: set {listener.setting}"
            return f"port {listener.port} cannot be opened ({exc.strerror}): set {listener.setting}"
    return None


def first_refusal(listeners: list[Listener]) -> str | None:
    """The first of ``listeners`` that cannot listen, as one line; None when all can."""
    for listener in listeners:
        found = refusal(listener)
        if found is not None:
            return found
    return None


# Below Linux's default ephemeral range (32768-60999): a port asked of the kernel with bind(0)
# comes from that range, and every outgoing connection on the machine takes one from it too,
# so such a port can be taken again between the probe and the server's own bind ("Address
# already in use", seen with two test workers). Ports from here are only taken by choice.
_FREE_FIRST, _FREE_LAST = 20_000, 32_000
_FREE_TRIES = 200


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now, outside the ephemeral range."""
    for _ in range(_FREE_TRIES):
        port = random.randint(_FREE_FIRST, _FREE_LAST)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port in {_FREE_FIRST}-{_FREE_LAST} after {_FREE_TRIES} tries")
