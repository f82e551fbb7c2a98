"""``tagtrail db migrate`` with only a database URL touches no broker.

A migration job (a deploy step, an init container) has a database and nothing else. Before the
fix the command started the embedded MQTT broker whenever ``TAGTRAIL_MQTT_URL`` was unset:
it bound the broker port, and failed outright when that port was taken.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys

from track_engine.db.migrate import applied_versions, load_migrations


def test_db_migrate_with_only_a_database_url_starts_no_broker(empty_db: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TAGTRAIL_")}
    with socket.socket() as held:
        # The embedded broker's port is taken: a command that started the broker would fail.
        held.bind(("127.0.0.1", 0))
        held.listen()
        env["TAGTRAIL_EMBEDDED_MQTT_PORT"] = str(held.getsockname()[1])
        env["TAGTRAIL_DATABASE_URL"] = empty_db
        done = subprocess.run(
            [sys.executable, "-m", "tagtrail", "db", "migrate"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        held.setblocking(False)
        try:
            held.accept()
            connected = True
        except BlockingIOError:
            connected = False
    assert done.returncode == 0, done.stderr
    assert not connected, "the command connected to the broker port"
    assert [v for v, _ in applied_versions(empty_db)] == [m.version for m in load_migrations()]
